//! The `leafnodes { … }` block (Go: server/opts.go parseLeafNodes, parseLeafAuthorization,
//! parseLeafUsers, parseRemoteLeafNodes), with nats-server's error texts.
//!

use std::collections::BTreeSet;
use std::time::Duration;

use super::options::{
    bool_of, int_of, listen_of, lower, map_of, node_type_err, seconds_of, str_of, string_list,
    unknown, Mapper,
};
use super::{ConfError, Entry, Node, Value};
use crate::options::TlsConfig;

/// Default leaf-node port (Go: server/const.go DEFAULT_LEAFNODE_PORT).
pub const DEFAULT_LEAFNODE_PORT: u16 = 7422;
/// Default wait between attempts to reach a remote (Go: DEFAULT_LEAF_NODE_RECONNECT).
pub const DEFAULT_LEAF_RECONNECT: Duration = Duration::from_secs(1);
/// Default `leafnodes.authorization.timeout` (the client default).
pub const DEFAULT_LEAF_AUTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The `leafnodes { … }` block (Go: server/opts.go LeafNodeOpts).
#[derive(Debug, Clone, PartialEq)]
pub struct LeafConfig {
    /// Listen host of the hub side.
    pub host: String,
    /// Listen port: `None` accepts no leaf connections (only `remotes`), `Some(0)` asks the
    /// OS for a free port (`-1` in the file).
    pub port: Option<u16>,
    /// `advertise`: the `host:port` leaf nodes are told to dial.
    pub advertise: Option<String>,
    /// `no_advertise`: keep our leaf URL out of the route INFO (our own leaves still get it).
    pub no_advertise: bool,
    /// `authorization.user`: the single user every leaf node must present.
    pub user: Option<String>,
    /// `authorization.password`.
    pub password: Option<String>,
    /// `authorization.account`: the account a leaf bound by the single user (or no user)
    /// joins; `None` is the global account.
    pub account: Option<String>,
    /// `authorization.timeout`.
    pub auth_timeout: Duration,
    /// `authorization.users`: each binds the leaf node to its account.
    pub users: Vec<LeafUser>,
    /// `remotes`: hubs this server dials as a leaf node.
    pub remotes: Vec<LeafRemote>,
    /// `reconnect` / `reconnect_delay` / `reconnect_interval` (whole seconds).
    pub reconnect: Duration,
    /// `tls`: accepted leaf nodes must upgrade to TLS after our INFO.
    pub tls: Option<TlsConfig>,
}

impl Default for LeafConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: None,
            advertise: None,
            no_advertise: false,
            user: None,
            password: None,
            account: None,
            auth_timeout: DEFAULT_LEAF_AUTH_TIMEOUT,
            users: Vec::new(),
            remotes: Vec::new(),
            reconnect: DEFAULT_LEAF_RECONNECT,
            tls: None,
        }
    }
}

/// One entry of `leafnodes.authorization.users`.
#[derive(Clone, PartialEq, Eq)]
pub struct LeafUser {
    /// User name.
    pub user: String,
    /// Password (plain or bcrypt).
    pub password: String,
    /// The account the leaf node is bound to; `None` is the global account.
    pub account: Option<String>,
}

impl std::fmt::Debug for LeafUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafUser")
            .field("user", &self.user)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// One entry of `leafnodes.remotes` (Go: RemoteLeafOpts).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LeafRemote {
    /// `url` / `urls`: the hub's leaf-node URLs (`nats-leaf://`, `nats://`; credentials in the
    /// user-info part).
    pub urls: Vec<String>,
    /// `account` / `local`: the local account bound to this link; `None` is the global one.
    pub account: Option<String>,
    /// `tls`: upgrade to TLS after the hub's INFO (also with a `tls://` URL, or when the hub
    /// asks for it). Its `cert_file` may be empty: no client certificate.
    pub tls: Option<TlsConfig>,
    /// `deny_imports`: subjects this leaf will not receive from the hub.
    pub deny_imports: Vec<String>,
    /// `deny_exports`: subjects this leaf will not send to the hub.
    pub deny_exports: Vec<String>,
    /// `credentials`: a `.creds` file (user JWT and nkey seed) to authenticate with.
    pub credentials: Option<String>,
}

impl Mapper {
    /// Go: parseLeafNodes.
    pub(super) fn leafnodes(&mut self, e: &Entry) -> Result<LeafConfig, ConfError> {
        let map = match &e.value.value {
            Value::Map(m) => m,
            other => {
                return Err(ConfError::new(
                    &e.value.pos,
                    format!(
                        "Expected map to define a leafnode, got {}",
                        other.type_name()
                    ),
                ))
            }
        };
        let mut c = LeafConfig::default();
        for le in map {
            match lower(le).as_str() {
                "listen" => {
                    let (host, port) = listen_of(le)?;
                    if let Some(h) = host {
                        c.host = h;
                    }
                    c.port = leaf_port(le, port)?;
                }
                "port" => c.port = leaf_port(le, int_of(le)?)?,
                "host" | "net" => c.host = str_of(le)?,
                "authorization" => self.leaf_authorization(&mut c, le)?,
                "remotes" => c.remotes = self.leaf_remotes(le)?,
                "reconnect" | "reconnect_delay" | "reconnect_interval" => {
                    let secs = u64::try_from(int_of(le)?).map_err(|_| {
                        ConfError::new(&le.value.pos, format!("\"{}\" can not be negative", le.key))
                    })?;
                    c.reconnect = Duration::from_secs(secs);
                }
                "tls" => c.tls = Some(self.tls_with(le, true)?),
                "leafnode_advertise" | "advertise" => c.advertise = Some(str_of(le)?),
                "no_advertise" => c.no_advertise = bool_of(le)?,
                "min_version" | "minimum_version" | "compression" => self.ignore("leafnodes", le),
                _ => unknown(le)?,
            }
        }
        Ok(c)
    }

    /// Go: parseLeafAuthorization, then validateLeafNodeAuthOptions.
    fn leaf_authorization(&mut self, c: &mut LeafConfig, e: &Entry) -> Result<(), ConfError> {
        for ae in map_of(e)? {
            match lower(ae).as_str() {
                "user" | "username" => c.user = Some(str_of(ae)?),
                "pass" | "password" => c.password = Some(str_of(ae)?),
                "timeout" => c.auth_timeout = seconds_of(ae)?,
                "users" => c.users = leaf_users(ae)?,
                "account" => c.account = Some(str_of(ae)?),
                _ => unknown(ae)?,
            }
        }
        if c.users.is_empty() {
            return Ok(());
        }
        if c.user.as_deref().is_some_and(|u| !u.is_empty()) {
            return Err(ConfError::new(
                &e.key_pos,
                "can not have a single user/pass and a users array",
            ));
        }
        let mut seen = BTreeSet::new();
        for u in &c.users {
            if !seen.insert(u.user.as_str()) {
                return Err(ConfError::new(
                    &e.key_pos,
                    format!(
                        "duplicate user {:?} detected in leafnode authorization",
                        u.user
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Go: parseRemoteLeafNodes.
    fn leaf_remotes(&mut self, e: &Entry) -> Result<Vec<LeafRemote>, ConfError> {
        let Value::Array(items) = &e.value.value else {
            return Err(ConfError::new(
                &e.value.pos,
                format!(
                    "Expected remotes field to be an array, got {}",
                    e.value.value.type_name()
                ),
            ));
        };
        let mut remotes = Vec::with_capacity(items.len());
        for item in items {
            let Value::Map(m) = &item.value else {
                return Err(ConfError::new(
                    &item.pos,
                    format!(
                        "Expected remote leafnode entry to be a map/struct, got {}",
                        item.value.type_name()
                    ),
                ));
            };
            let mut r = LeafRemote::default();
            for re in m {
                match lower(re).as_str() {
                    "url" | "urls" => r.urls = remote_urls(re)?,
                    "account" | "local" => r.account = Some(str_of(re)?),
                    "creds" | "credentials" => r.credentials = Some(str_of(re)?),
                    "tls" => r.tls = Some(self.tls_with(re, false)?),
                    "deny_imports" | "deny_import" => r.deny_imports = string_list(re)?,
                    "deny_exports" | "deny_export" => r.deny_exports = string_list(re)?,
                    "no_randomize"
                    | "dont_randomize"
                    | "hub"
                    | "ws_compress"
                    | "ws_compression"
                    | "websocket_compress"
                    | "websocket_compression"
                    | "ws_no_masking"
                    | "websocket_no_masking"
                    | "jetstream_cluster_migrate"
                    | "js_cluster_migrate"
                    | "compression" => {
                        self.ignore("leafnodes.remotes", re);
                    }
                    _ => unknown(re)?,
                }
            }
            remotes.push(r);
        }
        Ok(remotes)
    }
}

/// Leaf port: -1 asks for a random port (`Some(0)`), 0 means no listener.
fn leaf_port(e: &Entry, p: i64) -> Result<Option<u16>, ConfError> {
    match p {
        -1 => Ok(Some(0)),
        0 => Ok(None),
        _ => u16::try_from(p).map(Some).map_err(|_| {
            ConfError::new(&e.value.pos, format!("invalid port {p} for \"{}\"", e.key))
        }),
    }
}

/// Go: parseLeafUsers.
fn leaf_users(e: &Entry) -> Result<Vec<LeafUser>, ConfError> {
    let Value::Array(items) = &e.value.value else {
        return Err(ConfError::new(
            &e.value.pos,
            format!(
                "Expected users field to be an array, got {}",
                e.value.value.type_name()
            ),
        ));
    };
    let mut users = Vec::with_capacity(items.len());
    for item in items {
        let Value::Map(m) = &item.value else {
            return Err(ConfError::new(
                &item.pos,
                format!(
                    "Expected user entry to be a map/struct, got {}",
                    item.value.type_name()
                ),
            ));
        };
        let mut u = LeafUser {
            user: String::new(),
            password: String::new(),
            account: None,
        };
        for ue in m {
            match lower(ue).as_str() {
                "user" | "username" => u.user = str_of(ue)?,
                "pass" | "password" => u.password = str_of(ue)?,
                "account" => u.account = Some(str_of(ue)?),
                _ => unknown(ue)?,
            }
        }
        users.push(u);
    }
    Ok(users)
}

/// `url` (a string) or `urls` (an array of strings), each `scheme://[user:pass@]host:port`.
fn remote_urls(e: &Entry) -> Result<Vec<String>, ConfError> {
    let one = |n: &Node| -> Result<String, ConfError> {
        let Value::String(s) = &n.value else {
            return Err(node_type_err(&e.key, n, "strings in its array"));
        };
        let ok = s
            .split_once("://")
            .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty());
        if !ok {
            return Err(ConfError::new(
                &n.pos,
                format!("error parsing leafnode url [{s:?}]"),
            ));
        }
        Ok(s.trim().to_owned())
    };
    match &e.value.value {
        Value::String(_) => Ok(vec![one(&e.value)?]),
        Value::Array(items) => items.iter().map(one).collect(),
        other => Err(ConfError::new(
            &e.value.pos,
            format!(
                "Expected remote leafnode url to be an array or string, got {}",
                other.type_name()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::conf::{options_from_conf, parse, NoEnv, NoIncludes};

    fn leaf(src: &str) -> Result<LeafConfig, ConfError> {
        let m = parse(src, Path::new("t.conf"), &NoIncludes, &NoEnv)?;
        let (o, rep) = options_from_conf(&m)?;
        assert!(!rep.ignored.iter().any(|k| k.key == "leafnodes"), "{rep:?}");
        Ok(o.leafnodes.expect("leafnodes"))
    }

    fn err(src: &str) -> String {
        match leaf(src) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn hub_block() {
        let c = leaf(concat!(
            "leafnodes {\n  listen: 127.0.0.1:7433\n  advertise: \"10.0.0.1:7433\"\n",
            "  no_advertise: true\n",
            "  authorization { user: l, password: p, timeout: 0.5, account: A }\n}\n"
        ))
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", Some(7433)));
        assert_eq!(c.advertise.as_deref(), Some("10.0.0.1:7433"));
        assert!(c.no_advertise);
        assert_eq!(
            (
                c.user.as_deref(),
                c.password.as_deref(),
                c.account.as_deref()
            ),
            (Some("l"), Some("p"), Some("A"))
        );
        assert_eq!(c.auth_timeout, Duration::from_millis(500));
        assert_eq!(c.reconnect, DEFAULT_LEAF_RECONNECT);
    }

    #[test]
    fn ports() {
        assert_eq!(leaf("leafnodes { port: -1 }").unwrap().port, Some(0));
        assert_eq!(leaf("leafnodes { port: 0 }").unwrap().port, None);
        assert_eq!(leaf("leaf { port: 7422 }").unwrap().port, Some(7422));
        assert!(err("leafnodes { port: 70000 }").contains("invalid port"));
    }

    #[test]
    fn users_and_remotes() {
        let c = leaf(concat!(
            "leafnodes {\n  port: 7422\n  reconnect: 3\n",
            "  authorization { users: [ {user: a, password: x, account: A}, {user: b, pass: y} ] }\n",
            "  remotes: [ { url: \"nats-leaf://u:p@127.0.0.1:7422\", account: A },\n",
            "             { urls: [\"nats://h1:7422\", \"nats://h2:7422\"] } ]\n}\n"
        ))
        .unwrap();
        assert_eq!(c.reconnect, Duration::from_secs(3));
        assert_eq!(c.users.len(), 2);
        assert_eq!(c.users[0].account.as_deref(), Some("A"));
        assert_eq!(
            (c.users[1].user.as_str(), c.users[1].account.as_deref()),
            ("b", None)
        );
        assert_eq!(c.remotes[0].urls, ["nats-leaf://u:p@127.0.0.1:7422"]);
        assert_eq!(c.remotes[0].account.as_deref(), Some("A"));
        assert_eq!(c.remotes[1].urls, ["nats://h1:7422", "nats://h2:7422"]);
        assert_eq!(c.remotes[1].account, None);
    }

    #[test]
    fn nats_server_error_texts() {
        assert!(err("leafnodes: 1").contains("Expected map to define a leafnode"));
        assert!(err("leafnodes { remotes: 1 }").contains("Expected remotes field to be an array"));
        assert!(err("leafnodes { remotes: [1] }")
            .contains("Expected remote leafnode entry to be a map/struct"));
        assert!(err("leafnodes { remotes: [ { url: 1 } ] }")
            .contains("Expected remote leafnode url to be an array or string"));
        assert!(err("leafnodes { remotes: [ { url: \"h:1\" } ] }")
            .contains("error parsing leafnode url"));
        assert!(err("leafnodes { authorization { users: 1 } }")
            .contains("Expected users field to be an array"));
        assert!(err("leafnodes { authorization { users: [1] } }")
            .contains("Expected user entry to be a map/struct"));
        assert!(
            err("leafnodes { authorization { user: a, users: [ {user: b} ] } }")
                .contains("can not have a single user/pass and a users array")
        );
        assert!(
            err("leafnodes { authorization { users: [ {user: b}, {user: b} ] } }")
                .contains("duplicate user \"b\" detected in leafnode authorization")
        );
        assert!(err("leafnodes { bogus: 1 }").contains("unknown field \"bogus\""));
        assert!(err("leafnodes { remotes: [ { bogus: 1 } ] }").contains("unknown field"));
    }

    #[test]
    fn tls_on_the_hub_and_on_remotes() {
        let c = leaf(concat!(
            "leafnodes {\n  port: 7422\n  tls { cert_file: s.pem, key_file: s.key, ca_file: ca.pem, verify: true }\n",
            "  remotes: [ { url: \"tls://127.0.0.1:7422\", tls { ca_file: ca.pem } },\n",
            "             { url: \"nats://h:1\", tls { cert_file: c.pem, key_file: c.key, ca_file: ca.pem } } ]\n}\n"
        ))
        .unwrap();
        let hub = c.tls.expect("hub tls");
        assert!(hub.verify);
        assert_eq!(hub.cert_file.to_str(), Some("s.pem"));
        let r0 = c.remotes[0].tls.as_ref().expect("remote tls");
        assert_eq!(r0.cert_file.as_os_str(), "");
        assert_eq!(
            r0.ca_file.as_deref().and_then(|p| p.to_str()),
            Some("ca.pem")
        );
        let r1 = c.remotes[1].tls.as_ref().expect("remote tls");
        assert_eq!(r1.key_file.to_str(), Some("c.key"));
        assert!(err("leafnodes { tls { ca_file: a } }").contains("missing 'cert_file'"));
        assert!(
            err("leafnodes { remotes: [ { url: \"nats://h:1\", tls { cert_file: c } } ] }")
                .contains("missing 'key_file'")
        );
    }

    #[test]
    fn creds_and_deny_lists() {
        let c = leaf(concat!(
            "leafnodes { remotes: [ { url: \"nats://h:1\", credentials: \"x.creds\",\n",
            "  deny_exports: [\"a.>\", b], deny_import: c } ] }"
        ))
        .unwrap();
        let r = &c.remotes[0];
        assert_eq!(r.credentials.as_deref(), Some("x.creds"));
        assert_eq!(
            (r.deny_exports.len(), r.deny_imports.as_slice()),
            (2, &["c".to_owned()][..])
        );
    }
}
