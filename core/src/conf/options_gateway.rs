//! The `gateway { … }` block (Go: server/opts.go parseGateway, parseGateways; checks of
//! server/gateway.go validateGatewayOptions), with nats-server's error texts.

use std::time::Duration;

use super::options::{
    bool_of, int_of, listen_of, lower, map_of, node_type_err, seconds_of, str_of, unknown, Mapper,
};
use super::{ConfError, Entry, Node, Value};
use crate::options::TlsConfig;

/// Default `gateway.authorization.timeout` (the client default).
pub const DEFAULT_GATEWAY_AUTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The `gateway { … }` block (Go: server/opts.go GatewayOpts).
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// `name`: this cluster's name in the super-cluster (every server of a cluster has the
    /// same).
    pub name: String,
    /// Listen host.
    pub host: String,
    /// Listen port: `None` when unset (an error once a name is given), `Some(0)` asks the OS
    /// for a free port (`-1` in the file).
    pub port: Option<u16>,
    /// `advertise`: the `host:port` other clusters are told to dial.
    pub advertise: Option<String>,
    /// `authorization.user`: the single user every remote gateway must present.
    pub user: Option<String>,
    /// `authorization.password`.
    pub password: Option<String>,
    /// `authorization.timeout`.
    pub auth_timeout: Duration,
    /// `tls`: inbound gateways must upgrade to TLS after our INFO; also used to dial remotes
    /// without their own `tls`.
    pub tls: Option<TlsConfig>,
    /// `connect_retries`: attempts on an explicit gateway before giving up its first connect
    /// (0: retry forever).
    pub connect_retries: u32,
    /// `reject_unknown` / `reject_unknown_cluster`: refuse inbound gateways not in `gateways`.
    pub reject_unknown: bool,
    /// `gateways`: the remote clusters to dial.
    pub gateways: Vec<RemoteGateway>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            host: "0.0.0.0".to_owned(),
            port: None,
            advertise: None,
            user: None,
            password: None,
            auth_timeout: DEFAULT_GATEWAY_AUTH_TIMEOUT,
            tls: None,
            connect_retries: 0,
            reject_unknown: false,
            gateways: Vec::new(),
        }
    }
}

/// One entry of `gateway.gateways` (Go: RemoteGatewayOpts).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteGateway {
    /// The remote cluster's gateway name.
    pub name: String,
    /// `url` / `urls`: its servers' gateway URLs (credentials in the user-info part).
    pub urls: Vec<String>,
    /// `tls`: upgrade to TLS when dialing this cluster.
    pub tls: Option<TlsConfig>,
}

impl GatewayConfig {
    /// Go: server/gateway.go validateGatewayOptions — the checks made at start, with its
    /// texts. A block with neither name nor port is no gateway at all.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() && self.port.is_none() {
            return Ok(());
        }
        if self.name.is_empty() {
            return Err("gateway has no name".to_owned());
        }
        if self.port.is_none() {
            return Err(format!(
                "gateway {:?} has no port specified (select -1 for random port)",
                self.name
            ));
        }
        for (i, g) in self.gateways.iter().enumerate() {
            if g.name.is_empty() {
                return Err(format!("gateway in the list {i} has no name"));
            }
            if g.urls.is_empty() {
                return Err(format!("gateway {:?} has no URL", g.name));
            }
        }
        Ok(())
    }

    /// Whether gateways are on: a name and a port (Go: srvGateway.enabled).
    pub fn enabled(&self) -> bool {
        !self.name.is_empty() && self.port.is_some()
    }
}

impl Mapper {
    /// Go: parseGateway, then validateGatewayOptions.
    pub(super) fn gateway(&mut self, e: &Entry) -> Result<GatewayConfig, ConfError> {
        let Value::Map(map) = &e.value.value else {
            return Err(ConfError::new(
                &e.value.pos,
                format!(
                    "Expected gateway to be a map, got {}",
                    e.value.value.type_name()
                ),
            ));
        };
        let mut c = GatewayConfig::default();
        for ge in map {
            match lower(ge).as_str() {
                "name" => c.name = str_of(ge)?,
                "listen" => {
                    let (host, port) = listen_of(ge)?;
                    if let Some(h) = host {
                        c.host = h;
                    }
                    c.port = gateway_port(ge, port)?;
                }
                "port" => c.port = gateway_port(ge, int_of(ge)?)?,
                "host" | "net" => c.host = str_of(ge)?,
                "authorization" => gateway_authorization(&mut c, ge)?,
                "tls" => c.tls = Some(self.tls_with(ge, true)?),
                "advertise" => c.advertise = Some(str_of(ge)?),
                "connect_retries" => {
                    c.connect_retries = u32::try_from(int_of(ge)?).map_err(|_| {
                        ConfError::new(&ge.value.pos, format!("\"{}\" can not be negative", ge.key))
                    })?;
                }
                "gateways" => c.gateways = self.remote_gateways(ge)?,
                "reject_unknown" | "reject_unknown_cluster" => c.reject_unknown = bool_of(ge)?,
                _ => unknown(ge)?,
            }
        }
        c.validate()
            .map_err(|msg| ConfError::new(&e.key_pos, msg))?;
        Ok(c)
    }

    /// Go: parseGateways.
    fn remote_gateways(&mut self, e: &Entry) -> Result<Vec<RemoteGateway>, ConfError> {
        let Value::Array(items) = &e.value.value else {
            return Err(ConfError::new(
                &e.value.pos,
                format!(
                    "Expected gateways field to be an array, got {}",
                    e.value.value.type_name()
                ),
            ));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Value::Map(m) = &item.value else {
                return Err(ConfError::new(
                    &item.pos,
                    format!(
                        "Expected gateway entry to be a map/struct, got {}",
                        item.value.type_name()
                    ),
                ));
            };
            let mut g = RemoteGateway::default();
            for re in m {
                match lower(re).as_str() {
                    "name" => g.name = str_of(re)?,
                    "tls" => g.tls = Some(self.tls_with(re, false)?),
                    "url" => g.urls.push(gateway_url(&re.value, &re.key)?),
                    "urls" => {
                        let Value::Array(us) = &re.value.value else {
                            return Err(node_type_err(&re.key, &re.value, "an array"));
                        };
                        let mut urls: Vec<String> = Vec::with_capacity(us.len());
                        for u in us {
                            let u = gateway_url(u, &re.key)?;
                            // Go: parseURLs — a duplicate is a warning, and dropped.
                            if !urls.contains(&u) {
                                urls.push(u);
                            }
                        }
                        g.urls = urls;
                    }
                    _ => unknown(re)?,
                }
            }
            out.push(g);
        }
        Ok(out)
    }
}

/// Go: parseGateway's `authorization` — one user, no `users`, no token.
fn gateway_authorization(c: &mut GatewayConfig, e: &Entry) -> Result<(), ConfError> {
    for ae in map_of(e)? {
        match lower(ae).as_str() {
            "user" | "username" => c.user = Some(str_of(ae)?),
            "pass" | "password" => c.password = Some(str_of(ae)?),
            "timeout" => c.auth_timeout = seconds_of(ae)?,
            "users" => {
                return Err(ConfError::new(
                    &e.value.pos,
                    "Gateway authorization does not allow multiple users",
                ))
            }
            "token" => {
                return Err(ConfError::new(
                    &e.value.pos,
                    "Gateway authorization does not support tokens",
                ))
            }
            _ => unknown(ae)?,
        }
    }
    Ok(())
}

/// Gateway port: -1 asks for a random port (`Some(0)`), 0 means unset.
fn gateway_port(e: &Entry, p: i64) -> Result<Option<u16>, ConfError> {
    match p {
        -1 => Ok(Some(0)),
        0 => Ok(None),
        _ => u16::try_from(p).map(Some).map_err(|_| {
            ConfError::new(&e.value.pos, format!("invalid port {p} for \"{}\"", e.key))
        }),
    }
}

/// One gateway URL, `scheme://[user:pass@]host:port` (Go: parseURL, "error parsing gateway
/// url").
fn gateway_url(n: &Node, key: &str) -> Result<String, ConfError> {
    let Value::String(s) = &n.value else {
        return Err(node_type_err(key, n, "a string"));
    };
    let s = s.trim();
    let ok = s.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty() && !rest.is_empty() && !rest.contains(' ')
    });
    if !ok {
        return Err(ConfError::new(
            &n.pos,
            format!("error parsing gateway url [{s:?}]"),
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::conf::{options_from_conf, parse, NoEnv, NoIncludes};

    fn gw(src: &str) -> Result<GatewayConfig, ConfError> {
        let m = parse(src, Path::new("t.conf"), &NoIncludes, &NoEnv)?;
        let (o, rep) = options_from_conf(&m)?;
        assert!(!rep.ignored.iter().any(|k| k.key == "gateway"), "{rep:?}");
        Ok(o.gateway.expect("gateway"))
    }

    fn err(src: &str) -> String {
        match gw(src) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn full_block() {
        let c = gw(concat!(
            "gateway {\n  name: A\n  listen: 127.0.0.1:7222\n  advertise: \"10.0.0.1:7222\"\n",
            "  authorization { user: g, password: p, timeout: 0.5 }\n",
            "  connect_retries: 3\n  reject_unknown_cluster: true\n",
            "  gateways: [\n",
            "    { name: B, url: \"nats://u:p@127.0.0.1:7333\" },\n",
            "    { name: C, urls: [\"nats://h1:7444\", \"nats://h2:7444\", \"nats://h1:7444\"] }\n",
            "  ]\n}\n"
        ))
        .unwrap();
        assert_eq!(c.name, "A");
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", Some(7222)));
        assert_eq!(c.advertise.as_deref(), Some("10.0.0.1:7222"));
        assert_eq!(
            (c.user.as_deref(), c.password.as_deref()),
            (Some("g"), Some("p"))
        );
        assert_eq!(c.auth_timeout, Duration::from_millis(500));
        assert_eq!(c.connect_retries, 3);
        assert!(c.reject_unknown);
        assert!(c.enabled());
        assert_eq!(c.gateways.len(), 2);
        assert_eq!(c.gateways[0].name, "B");
        assert_eq!(c.gateways[0].urls, ["nats://u:p@127.0.0.1:7333"]);
        // A duplicate URL is dropped (nats-server warns).
        assert_eq!(c.gateways[1].urls, ["nats://h1:7444", "nats://h2:7444"]);
    }

    #[test]
    fn ports_and_hosts() {
        assert_eq!(gw("gateway { name: A, port: -1 }").unwrap().port, Some(0));
        let c =
            gw("gateway { name: A, host: 127.0.0.1, port: 7222, reject_unknown: true }").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.reject_unknown),
            ("127.0.0.1", Some(7222), true)
        );
        assert!(err("gateway { name: A, port: 70000 }").contains("invalid port"));
    }

    #[test]
    fn validation_texts() {
        assert_eq!(err("gateway { port: 7222 }"), "gateway has no name");
        assert_eq!(
            err("gateway { name: A }"),
            "gateway \"A\" has no port specified (select -1 for random port)"
        );
        assert_eq!(
            err("gateway { name: A, port: -1, gateways: [ { url: \"nats://h:1\" } ] }"),
            "gateway in the list 0 has no name"
        );
        assert_eq!(
            err("gateway { name: A, port: -1, gateways: [ { name: B } ] }"),
            "gateway \"B\" has no URL"
        );
        // Neither name nor port: no gateway, no error.
        let c = gw("gateway { reject_unknown: true }").unwrap();
        assert!(!c.enabled());
    }

    #[test]
    fn type_and_field_errors() {
        assert!(err("gateway: 1").starts_with("Expected gateway to be a map"));
        assert!(err("gateway { name: A, port: -1, gateways: 1 }")
            .starts_with("Expected gateways field to be an array"));
        assert!(err("gateway { name: A, port: -1, gateways: [ 1 ] }")
            .starts_with("Expected gateway entry to be a map/struct"));
        assert_eq!(
            err("gateway { name: A, port: -1, authorization { users: [ {user: a} ] } }"),
            "Gateway authorization does not allow multiple users"
        );
        assert_eq!(
            err("gateway { name: A, port: -1, authorization { token: t } }"),
            "Gateway authorization does not support tokens"
        );
        assert!(err("gateway { name: A, port: -1, bogus: 1 }").contains("bogus"));
        assert!(
            err("gateway { name: A, port: -1, gateways: [ { name: B, nope: 1 } ] }")
                .contains("nope")
        );
        assert!(
            err("gateway { name: A, port: -1, gateways: [ { name: B, url: \"h:1\" } ] }")
                .starts_with("error parsing gateway url")
        );
        assert_eq!(
            err("cluster { name: X, port: -1 }\ngateway { name: A, port: -1 }"),
            "cluster name conflicts between cluster and gateway definitions"
        );
        assert!(gw("cluster { name: A, port: -1 }\ngateway { name: A, port: -1 }").is_ok());
    }
}
