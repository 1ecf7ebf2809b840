//! Mapping a parsed config tree onto [`Options`] (Go: `server/opts.go` processConfigFileLine).
//!
//! Keys compare case-insensitively, as in nats-server. A key nats-server does not know is an
//! error naming its position; a key nats-server knows but natsd does not implement yet
//! (websocket, mqtt, operator, resolver, …) is accepted
//! and reported in [`ConfReport::ignored`] so the server can warn about it.

use std::path::PathBuf;
use std::time::Duration;

use super::duration::{nanos_to_duration, parse_duration, parse_nanos};
use super::{ConfError, ConfMap, Entry, Node, Pos, Value};
use crate::options::{
    ClusterConfig, JetStreamConfig, Options, TlsConfig, DEFAULT_CLUSTER_PORT, DEFAULT_PORT,
};

/// A recognised key whose feature natsd does not have yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredKey {
    /// Dotted path of the key, e.g. `cluster` or `tls.cipher_suites`.
    pub key: String,
    /// Where the key is written.
    pub pos: Pos,
}

/// What the mapping noticed besides errors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfReport {
    /// Keys accepted but not acted upon.
    pub ignored: Vec<IgnoredKey>,
    /// Deprecated forms that still work (e.g. `ping_interval: 60`, which should be `"60s"`).
    pub warnings: Vec<ConfError>,
}

/// Builds [`Options`] from defaults and the parsed config.
pub fn options_from_conf(map: &ConfMap) -> Result<(Options, ConfReport), ConfError> {
    let mut opts = Options::default();
    let report = apply_conf(&mut opts, map)?;
    Ok((opts, report))
}

/// Applies the parsed config onto `opts` (settings absent from the file are left alone).
pub fn apply_conf(opts: &mut Options, map: &ConfMap) -> Result<ConfReport, ConfError> {
    let mut m = Mapper::default();
    // Go: server/opts.go processConfigFile reads system_account before anything else.
    for e in map {
        if matches!(lower(e).as_str(), "system_account" | "system") {
            opts.system_account = Some(str_of(e)?);
        }
    }
    let mut seen = Seen::default();
    for e in map {
        m.top_level(opts, e, &mut seen)?;
    }
    if let Some(tk) = seen.accounts.take() {
        super::options_accounts::accounts(&mut m, opts, tk)?;
    }
    if let Some(tk) = seen.authorization.take() {
        super::options_auth::authorization(opts, tk)?;
    }
    validate(opts, &seen)?;
    Ok(m.report)
}

/// Entries whose handling waits until every key is read.
#[derive(Default)]
struct Seen<'a> {
    accounts: Option<&'a Entry>,
    authorization: Option<&'a Entry>,
    max_payload: Option<&'a Entry>,
    no_auth_user: Option<&'a Entry>,
    gateway: Option<&'a Entry>,
}

/// Collects the report while mapping.
#[derive(Default)]
pub(super) struct Mapper {
    pub(super) report: ConfReport,
}

impl Mapper {
    pub(super) fn ignore(&mut self, prefix: &str, e: &Entry) {
        let key = if prefix.is_empty() {
            e.key.clone()
        } else {
            format!("{prefix}.{}", e.key)
        };
        self.report.ignored.push(IgnoredKey {
            key,
            pos: e.key_pos.clone(),
        });
    }

    fn warn(&mut self, pos: &Pos, msg: String) {
        self.report.warnings.push(ConfError::new(pos, msg));
    }

    /// Go: parseDuration — a duration string, or (deprecated) an integer number of seconds.
    pub(super) fn lenient_duration(&mut self, e: &Entry) -> Result<Duration, ConfError> {
        match &e.value.value {
            Value::Int(n) => {
                self.warn(
                    &e.key_pos,
                    format!("{} should be converted to a duration", e.key),
                );
                let secs = u64::try_from(*n)
                    .map_err(|_| type_err(e, "a non-negative number of seconds"))?;
                Ok(Duration::from_secs(secs))
            }
            _ => duration_of(e),
        }
    }

    fn top_level<'a>(
        &mut self,
        o: &mut Options,
        e: &'a Entry,
        seen: &mut Seen<'a>,
    ) -> Result<(), ConfError> {
        match lower(e).as_str() {
            "listen" => {
                let (host, port) = listen_of(e)?;
                if let Some(h) = host {
                    o.host = h;
                }
                o.port = client_port(e, port)?;
            }
            "port" => o.port = client_port(e, int_of(e)?)?,
            "host" | "net" => o.host = str_of(e)?,
            // Go: server_tags takes a string or strings, kept lowercased and unique.
            "server_tags" => {
                for t in string_list(e)? {
                    let t = t.trim().to_lowercase();
                    if !t.is_empty() && !o.server_tags.contains(&t) {
                        o.server_tags.push(t);
                    }
                }
            }
            "server_name" => {
                let name = str_of(e)?;
                // Go: validateOptions — spaces would break subjects built from the name.
                if name.contains(' ') {
                    return Err(ConfError::new(
                        &e.value.pos,
                        "server name cannot contain spaces",
                    ));
                }
                o.server_name = Some(name);
            }
            "client_advertise" => o.client_advertise = Some(str_of(e)?),
            "http" | "https" => {
                let (host, port) = listen_of(e)?;
                if let Some(h) = host {
                    o.http_host = h;
                }
                let p = monitor_port(e, port)?;
                if lower(e) == "http" {
                    o.http_port = p;
                } else {
                    o.https_port = p;
                }
            }
            "http_port" | "monitor_port" => o.http_port = monitor_port(e, int_of(e)?)?,
            "https_port" => o.https_port = monitor_port(e, int_of(e)?)?,
            "http_base_path" => o.http_base_path = str_of(e)?,
            "max_payload" => {
                o.max_payload = u32_of(e, i64::from(i32::MAX))?;
                seen.max_payload = Some(e);
            }
            "max_control_line" => o.max_control_line = u32_of(e, i64::from(i32::MAX))?,
            "max_pending" => o.max_pending = u64::try_from(int_of(e)?).map_err(|_| negative(e))?,
            "max_connections" | "max_conn" => o.max_connections = u32_of(e, i64::from(u32::MAX))?,
            "max_subscriptions" | "max_subs" => {
                o.max_subscriptions = u32_of(e, i64::from(u32::MAX))?;
            }
            "ping_interval" => o.ping_interval = self.lenient_duration(e)?,
            "ping_max" => o.ping_max = u32_of(e, i64::from(u32::MAX))?,
            "write_deadline" => o.write_deadline = self.lenient_duration(e)?,
            // natsd's own key: nats-server fixes this bound at 10000.
            "max_closed_clients" => {
                o.max_closed_clients = usize::try_from(int_of(e)?).map_err(|_| negative(e))?;
            }
            "lame_duck_duration" => {
                let d = strict_duration(e)?;
                if d < Duration::from_secs(30) {
                    return Err(ConfError::new(
                        &e.value.pos,
                        format!("invalid lame_duck_duration of {d:?}, minimum is 30 seconds"),
                    ));
                }
                o.lame_duck_duration = d;
            }
            "lame_duck_grace_period" => {
                let n = parse_nanos(&str_of(e)?).map_err(|err| {
                    ConfError::new(&e.value.pos, format!("error parsing {}: {err}", e.key))
                })?;
                if n < 0 {
                    return Err(ConfError::new(
                        &e.value.pos,
                        "invalid lame_duck_grace_period, needs to be positive",
                    ));
                }
                o.lame_duck_grace_period = nanos_to_duration(n);
            }
            "authorization" => seen.authorization = Some(e),
            "accounts" => seen.accounts = Some(e),
            "no_auth_user" => {
                o.no_auth_user = Some(str_of(e)?);
                seen.no_auth_user = Some(e);
            }
            "system_account" | "system" => {} // read first, above
            "tls" => o.tls = Some(self.tls(e)?),
            "debug" => o.debug = bool_of(e)?,
            "trace" => o.trace = bool_of(e)?,
            "trace_verbose" => {
                o.trace = bool_of(e)?;
                self.ignore("", e);
            }
            "logtime" => o.logtime = bool_of(e)?,
            "logfile" | "log_file" => o.log_file = Some(PathBuf::from(str_of(e)?)),
            "pidfile" | "pid_file" => o.pid_file = Some(PathBuf::from(str_of(e)?)),
            "ports_file_dir" => o.ports_file_dir = Some(PathBuf::from(str_of(e)?)),
            "cluster" => o.cluster = Some(self.cluster(o, e)?),
            "jetstream" => o.jetstream = self.jetstream(e)?,
            "leafnodes" | "leaf" => o.leafnodes = Some(self.leafnodes(e)?),
            "gateway" => {
                o.gateway = Some(self.gateway(e)?);
                seen.gateway = Some(e);
            }
            k if IGNORED_TOP.contains(&k) => self.ignore("", e),
            _ => unknown(e)?,
        }
        Ok(())
    }

    /// Go: server/opts.go parseCluster.
    fn cluster(&mut self, o: &mut Options, e: &Entry) -> Result<ClusterConfig, ConfError> {
        let mut c = ClusterConfig::default();
        for ce in map_of(e)? {
            match lower(ce).as_str() {
                "name" => {
                    let name = str_of(ce)?;
                    if name.contains(' ') {
                        return Err(ConfError::new(
                            &ce.value.pos,
                            "cluster name cannot contain spaces",
                        ));
                    }
                    c.name = Some(name);
                }
                "listen" => {
                    let (host, port) = listen_of(ce)?;
                    if let Some(h) = host {
                        c.host = h;
                    }
                    c.port = cluster_port(ce, port)?;
                }
                "port" => c.port = cluster_port(ce, int_of(ce)?)?,
                "host" | "net" => c.host = str_of(ce)?,
                "advertise" | "cluster_advertise" => c.advertise = Some(str_of(ce)?),
                "no_advertise" => o.no_advertise = bool_of(ce)?,
                "routes" => c.routes = string_list(ce)?,
                "connect_retries" => c.connect_retries = u32_of(ce, i64::from(u32::MAX))?,
                "pool_size" => c.pool_size = Some(int_of(ce)?),
                "accounts" | "pinned_accounts" => c.pinned_accounts = string_list(ce)?,
                "write_deadline" => c.write_deadline = Some(self.lenient_duration(ce)?),
                "tls" => c.tls = Some(self.tls(ce)?),
                "authorization" => {
                    for ae in map_of(ce)? {
                        match lower(ae).as_str() {
                            "user" | "username" => c.user = Some(str_of(ae)?),
                            "password" | "pass" => c.password = Some(str_of(ae)?),
                            "timeout" => c.auth_timeout = seconds_of(ae)?,
                            // Go: "Cluster authorization does not allow multiple users".
                            "users" => {
                                return Err(ConfError::new(
                                    &ae.key_pos,
                                    "Cluster authorization does not allow multiple users",
                                ))
                            }
                            "token" => {
                                return Err(ConfError::new(
                                    &ae.key_pos,
                                    "Cluster authorization does not support tokens",
                                ))
                            }
                            "permissions" => self.route_permissions(&mut c, ae)?,
                            _ => self.ignore("cluster.authorization", ae),
                        }
                    }
                }
                "permissions" => self.route_permissions(&mut c, ce)?,
                // Known to nats-server, no effect here (JetStream and compression settings).
                "compression" | "ping_interval" | "ping_max" => self.ignore("cluster", ce),
                _ => unknown(ce)?,
            }
        }
        Ok(c)
    }

    /// `permissions { import, export }` of the cluster block (Go: parseClusterPermissions).
    fn route_permissions(&mut self, c: &mut ClusterConfig, e: &Entry) -> Result<(), ConfError> {
        for pe in map_of(e)? {
            match lower(pe).as_str() {
                "import" => c.import = super::options_auth::subject_permission(pe)?,
                "export" => c.export = super::options_auth::subject_permission(pe)?,
                _ => unknown(pe)?,
            }
        }
        Ok(())
    }

    /// Go: parseJetStream — `jetstream: enabled|disabled|true|false` or a block.
    fn jetstream(&mut self, e: &Entry) -> Result<Option<JetStreamConfig>, ConfError> {
        let on = match &e.value.value {
            Value::Bool(b) => *b,
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "enabled" | "enable" | "true" | "yes" | "on" => true,
                "disabled" | "disable" | "false" | "no" | "off" => false,
                _ => return Err(type_err(e, "enabled, disabled or a map")),
            },
            Value::Map(_) => true,
            _ => return Err(type_err(e, "a boolean, a string or a map")),
        };
        let mut cfg = JetStreamConfig::default();
        let mut enabled = on;
        if let Value::Map(m) = &e.value.value {
            for je in m {
                match lower(je).as_str() {
                    "store_dir" | "storedir" => cfg.store_dir = Some(PathBuf::from(str_of(je)?)),
                    "max_memory_store" | "max_mem_store" | "max_mem" => {
                        cfg.max_memory_store = limit_of(je)?;
                    }
                    "max_file_store" | "max_file" => cfg.max_file_store = limit_of(je)?,
                    "domain" => cfg.domain = Some(str_of(je)?).filter(|d| !d.is_empty()),
                    "sync_interval" | "sync" => {
                        let always = matches!(&je.value.value, Value::String(s) if s == "always");
                        cfg.sync_interval = if always {
                            None
                        } else {
                            Some(strict_duration(je)?)
                        };
                    }
                    "enabled" | "enable" => enabled = bool_of(je)?,
                    // Go 2.12: `strict` takes a boolean only (opts.go parseJetStream).
                    "strict" => cfg.strict = bool_of(je)?,
                    _ => self.ignore(&e.key, je),
                }
            }
        }
        Ok(enabled.then_some(cfg))
    }

    /// Go: parseTLS for the client listener.
    fn tls(&mut self, e: &Entry) -> Result<TlsConfig, ConfError> {
        self.tls_with(e, true)
    }

    /// A `tls { … }` block; a dialer's (a leaf node's remote) may leave out its own key pair
    /// (an empty `cert_file`/`key_file`: no client certificate).
    pub(super) fn tls_with(&mut self, e: &Entry, need_cert: bool) -> Result<TlsConfig, ConfError> {
        let map = map_of(e)?;
        let mut cfg = TlsConfig::new(PathBuf::new(), PathBuf::new());
        let (mut cert, mut key) = (None, None);
        for te in map {
            match lower(te).as_str() {
                "cert_file" => cert = Some(PathBuf::from(str_of(te)?)),
                "key_file" => key = Some(PathBuf::from(str_of(te)?)),
                "ca_file" => cfg.ca_file = Some(PathBuf::from(str_of(te)?)),
                "verify" => cfg.verify = bool_of(te)?,
                "verify_and_map" => {
                    let v = bool_of(te)?;
                    // Go: verify_and_map implies verify, but `false` leaves verify alone.
                    cfg.verify |= v;
                    cfg.verify_and_map = v;
                }
                "timeout" => {
                    cfg.timeout = match &te.value.value {
                        Value::Int(_) | Value::Float(_) => seconds_of(te)?,
                        _ => duration_of(te)?,
                    };
                }
                "handshake_first" | "first" | "immediate" => {
                    cfg.handshake_first = handshake_first(te)?;
                }
                "insecure"
                | "cipher_suites"
                | "curve_preferences"
                | "verify_cert_and_check_known_urls"
                | "connection_rate_limit"
                | "pinned_certs"
                | "ocsp_peer"
                | "cert_store"
                | "cert_match_by"
                | "cert_match"
                | "cert_match_skip_invalid"
                | "ca_certs_match"
                | "min_version" => self.ignore(&e.key, te),
                _ => {
                    return Err(ConfError::new(
                        &te.key_pos,
                        format!("error parsing tls config, unknown field \"{}\"", te.key),
                    ))
                }
            }
        }
        if !need_cert && cert.is_none() && key.is_none() {
            return Ok(cfg);
        }
        cfg.cert_file = cert.ok_or_else(|| {
            ConfError::new(&e.key_pos, "missing 'cert_file' in TLS configuration")
        })?;
        cfg.key_file = key
            .ok_or_else(|| ConfError::new(&e.key_pos, "missing 'key_file' in TLS configuration"))?;
        Ok(cfg)
    }
}

/// Top-level keys of nats-server features natsd does not have yet.
const IGNORED_TOP: &[&str] = &[
    "store_dir",
    "storedir",
    "mappings",
    "maps",
    "disable_sublist_cache",
    "no_sublist_cache",
    "logfile_size_limit",
    "log_size_limit",
    "logfile_max_num",
    "log_max_files",
    "logtime_utc",
    "syslog",
    "remote_syslog",
    "prof_port",
    "max_traced_msg_len",
    "max_sub_tokens",
    "max_subscription_tokens",
    "ocsp",
    "ocsp_cache",
    "allow_non_tls",
    "operator",
    "operators",
    "roots",
    "root",
    "root_operators",
    "root_operator",
    "resolver",
    "account_resolver",
    "accounts_resolver",
    "resolver_tls",
    "resolver_preload",
    "resolver_pinned_accounts",
    "no_system_account",
    "no_system",
    "no_sys_acc",
    "no_header_support",
    "trusted",
    "trusted_keys",
    "connect_error_reports",
    "reconnect_error_reports",
    "websocket",
    "ws",
    "mqtt",
    "default_js_domain",
    "jetstream_max_memory",
    "jetstream_max_store",
    "auth_callout",
    "max_tracked_msgs",
];

/// Go: validateOptions — checks across keys, reported at the key that breaks them.
fn validate(o: &Options, seen: &Seen<'_>) -> Result<(), ConfError> {
    // Go: server.go validateCluster — a cluster must be named as its gateway.
    if let (Some(e), Some(g)) = (seen.gateway, &o.gateway) {
        let cluster = o.cluster.as_ref().and_then(|c| c.name.as_deref());
        if !g.name.is_empty() && cluster.is_some_and(|c| c != g.name) {
            return Err(ConfError::new(
                &e.key_pos,
                "cluster name conflicts between cluster and gateway definitions",
            ));
        }
    }
    if let Some(e) = seen.max_payload {
        if u64::from(o.max_payload) > o.max_pending {
            return Err(ConfError::new(
                &e.value.pos,
                format!(
                    "max_payload ({}) cannot be higher than max_pending ({})",
                    o.max_payload, o.max_pending
                ),
            ));
        }
    }
    if let (Some(e), Some(name)) = (seen.no_auth_user, &o.no_auth_user) {
        let users = o
            .authorization
            .users
            .iter()
            .chain(o.accounts.iter().flat_map(|a| a.users.iter()));
        if !users.clone().any(|u| u.username.as_deref() == Some(name)) {
            let msg = if users.count() == 0 {
                format!("no_auth_user: \"{name}\" present, but users are not defined")
            } else {
                format!(
                    "no_auth_user: \"{name}\" not present as user in authorization block or account configuration"
                )
            };
            return Err(ConfError::new(&e.value.pos, msg));
        }
    }
    Ok(())
}

fn handshake_first(e: &Entry) -> Result<Option<Duration>, ConfError> {
    match &e.value.value {
        Value::Bool(true) => Ok(Some(Duration::ZERO)),
        Value::Bool(false) => Ok(None),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "on" => Ok(Some(Duration::ZERO)),
            "false" | "off" => Ok(None),
            // Go (2.10+): DEFAULT_TLS_HANDSHAKE_FIRST_FALLBACK_DELAY.
            "auto" | "auto_fallback" => Ok(Some(Duration::from_millis(50))),
            _ => parse_duration(s).map(Some).map_err(|_| {
                ConfError::new(
                    &e.value.pos,
                    format!("field \"{}\"'s value \"{s}\" is invalid", e.key),
                )
            }),
        },
        _ => Err(type_err(e, "a boolean or a string")),
    }
}

/// Go: parseListen — a port number or `host:port`. An empty host is `None`.
pub(super) fn listen_of(e: &Entry) -> Result<(Option<String>, i64), ConfError> {
    match &e.value.value {
        Value::Int(p) => Ok((None, *p)),
        Value::String(s) => {
            let bad = || {
                ConfError::new(
                    &e.value.pos,
                    format!("could not parse address string {s:?}"),
                )
            };
            let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
            let host = match host.strip_prefix('[') {
                Some(h) => h.strip_suffix(']').ok_or_else(bad)?,
                None if host.contains(':') => return Err(bad()),
                None => host,
            };
            let port: i64 = port.parse().map_err(|_| {
                ConfError::new(&e.value.pos, format!("could not parse port {port:?}"))
            })?;
            Ok(((!host.is_empty()).then(|| host.to_owned()), port))
        }
        _ => Err(type_err(e, "a port or host:port")),
    }
}

/// Client port: -1 asks for a random port, 0 means the default (Go: setBaselineOptions).
fn client_port(e: &Entry, p: i64) -> Result<Option<u16>, ConfError> {
    match p {
        -1 => Ok(None),
        0 => Ok(Some(DEFAULT_PORT)),
        _ => u16::try_from(p).map(Some).map_err(|_| bad_port(e, p)),
    }
}

/// Cluster port: -1 asks for a random port, 0 means the default.
fn cluster_port(e: &Entry, p: i64) -> Result<Option<u16>, ConfError> {
    match p {
        -1 => Ok(None),
        0 => Ok(Some(DEFAULT_CLUSTER_PORT)),
        _ => u16::try_from(p).map(Some).map_err(|_| bad_port(e, p)),
    }
}

/// Monitoring port: -1 is random (`Some(0)`), 0 is off.
fn monitor_port(e: &Entry, p: i64) -> Result<Option<u16>, ConfError> {
    match p {
        -1 => Ok(Some(0)),
        0 => Ok(None),
        _ => u16::try_from(p).map(Some).map_err(|_| bad_port(e, p)),
    }
}

fn bad_port(e: &Entry, p: i64) -> ConfError {
    ConfError::new(&e.value.pos, format!("invalid port {p} for \"{}\"", e.key))
}

/// The key in lower case, as nats-server compares it.
pub(super) fn lower(e: &Entry) -> String {
    e.key.to_ascii_lowercase()
}

/// `unknown field "foo"` at the key, unless the key only defines a variable used elsewhere.
pub(super) fn unknown(e: &Entry) -> Result<(), ConfError> {
    if e.used_as_variable {
        return Ok(());
    }
    Err(ConfError::new(
        &e.key_pos,
        format!("unknown field \"{}\"", e.key),
    ))
}

pub(super) fn type_err(e: &Entry, wanted: &str) -> ConfError {
    node_type_err(&e.key, &e.value, wanted)
}

pub(super) fn node_type_err(key: &str, n: &Node, wanted: &str) -> ConfError {
    ConfError::new(
        &n.pos,
        format!("\"{key}\" expects {wanted}, got {}", n.value.type_name()),
    )
}

fn negative(e: &Entry) -> ConfError {
    ConfError::new(&e.value.pos, format!("\"{}\" can not be negative", e.key))
}

pub(super) fn str_of(e: &Entry) -> Result<String, ConfError> {
    match &e.value.value {
        Value::String(s) => Ok(s.clone()),
        _ => Err(type_err(e, "a string")),
    }
}

pub(super) fn int_of(e: &Entry) -> Result<i64, ConfError> {
    match &e.value.value {
        Value::Int(n) => Ok(*n),
        _ => Err(type_err(e, "an integer")),
    }
}

pub(super) fn bool_of(e: &Entry) -> Result<bool, ConfError> {
    match &e.value.value {
        Value::Bool(b) => Ok(*b),
        _ => Err(type_err(e, "a boolean")),
    }
}

pub(super) fn map_of(e: &Entry) -> Result<&ConfMap, ConfError> {
    match &e.value.value {
        Value::Map(m) => Ok(m),
        _ => Err(type_err(e, "a map")),
    }
}

/// A JetStream size limit: a negative value means unlimited.
fn limit_of(e: &Entry) -> Result<Option<u64>, ConfError> {
    Ok(u64::try_from(int_of(e)?).ok())
}

/// A non-negative integer no larger than `max`.
fn u32_of(e: &Entry, max: i64) -> Result<u32, ConfError> {
    let n = int_of(e)?;
    if n < 0 {
        return Err(negative(e));
    }
    if n > max {
        return Err(ConfError::new(
            &e.value.pos,
            format!("{} value is too big", e.key),
        ));
    }
    u32::try_from(n)
        .map_err(|_| ConfError::new(&e.value.pos, format!("{} value is too big", e.key)))
}

/// An integer or float number of seconds.
pub(super) fn seconds_of(e: &Entry) -> Result<Duration, ConfError> {
    let secs = match &e.value.value {
        Value::Int(n) => *n as f64,
        Value::Float(f) => *f,
        _ => return Err(type_err(e, "a number of seconds")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| negative(e))
}

/// A duration string.
pub(super) fn duration_of(e: &Entry) -> Result<Duration, ConfError> {
    let Value::String(s) = &e.value.value else {
        return Err(type_err(e, "a duration string such as \"2m\""));
    };
    parse_duration(s)
        .map_err(|err| ConfError::new(&e.value.pos, format!("error parsing {}: {err}", e.key)))
}

/// A duration string only (Go: `lame_duck_duration` type-asserts a string).
fn strict_duration(e: &Entry) -> Result<Duration, ConfError> {
    duration_of(e)
}

/// A string or an array of strings.
pub(super) fn string_list(e: &Entry) -> Result<Vec<String>, ConfError> {
    match &e.value.value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|n| match &n.value {
                Value::String(s) => Ok(s.clone()),
                _ => Err(node_type_err(&e.key, n, "strings in its array")),
            })
            .collect(),
        _ => Err(type_err(e, "a string or an array of strings")),
    }
}
