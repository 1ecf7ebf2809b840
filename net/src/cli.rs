//! The `natsd` command line: nats-server's flags (Go: server/opts.go ConfigureOptions).
//!
//! Parsed the way Go's `flag` package does: `-flag` and `--flag` are the same, values follow
//! as `-flag value` or `-flag=value`, boolean flags take no separate value (`-D`, `-D=false`),
//! and parsing stops at `--` or at the first argument that is not a flag. `-DV`, `-DVV` and
//! `-VV` are flags of their own, not bundles. Flags override the config file.

use std::path::PathBuf;

use natsd_core::options::{ClusterConfig, Options, TlsConfig};

/// A command-line error; the binary prints it with [`USAGE`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// A flag nats-server does not have.
    #[error("flag provided but not defined: -{0}")]
    UnknownFlag(String),
    /// A flag that needs a value came last.
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    /// A value of the wrong form.
    #[error("invalid value {value:?} for flag -{flag}: {reason}")]
    BadValue {
        /// The flag.
        flag: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A positional argument other than `version` or `help`.
    #[error("unrecognized command: {0:?}")]
    UnknownCommand(String),
    /// `--tls` (or another TLS flag) without a certificate or key.
    #[error("{0}")]
    Tls(&'static str),
}

/// `--signal <command>[=<pid or pid file>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRequest {
    /// `stop`, `quit`, `term`, `reopen`, `reload` or `ldm`.
    pub command: String,
    /// A pid or a pid file; `None` finds the process by name.
    pub pid: Option<String>,
}

/// Flags of features natsd does not have yet, kept so the server can warn about them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LaterFlags {
    /// `-js` / `--jetstream`.
    pub jetstream: Option<bool>,
    /// `-sd` / `--store_dir`.
    pub store_dir: Option<String>,
    /// `-s` / `--syslog`.
    pub syslog: Option<bool>,
    /// `-r` / `--remote_syslog`.
    pub remote_syslog: Option<String>,
    /// `--log_size_limit`.
    pub log_size_limit: Option<i64>,
    /// `--max_traced_msg_len`.
    pub max_traced_msg_len: Option<i64>,
    /// `--profile`.
    pub profile_port: Option<i64>,
    /// `-VV` / `-DVV`: trace the system account too.
    pub trace_verbose: Option<bool>,
}

/// Everything given on the command line; `None` means "not given".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cli {
    /// `-h` / `--help` (or the `help` command).
    pub help: bool,
    /// `--help_tls`.
    pub help_tls: bool,
    /// `-v` / `--version` (or the `version` command).
    pub version: bool,
    /// `-t`: check the configuration and exit.
    pub check_config: bool,
    /// `-c` / `--config`.
    pub config: Option<PathBuf>,
    /// `--signal` / `-sl`.
    pub signal: Option<SignalRequest>,
    /// `-a` / `--addr` / `--net`.
    pub host: Option<String>,
    /// `-p` / `--port`.
    pub port: Option<i64>,
    /// `-n` / `--name` / `--server_name`.
    pub server_name: Option<String>,
    /// `--client_advertise`.
    pub client_advertise: Option<String>,
    /// `-m` / `--http_port`.
    pub http_port: Option<i64>,
    /// `-ms` / `--https_port`.
    pub https_port: Option<i64>,
    /// `--user`.
    pub user: Option<String>,
    /// `--pass`.
    pub pass: Option<String>,
    /// `--auth`.
    pub auth: Option<String>,
    /// `-D` / `--debug` (and `-DV`, `-DVV`).
    pub debug: Option<bool>,
    /// `-V` / `--trace` (and `-DV`, `-VV`, `-DVV`).
    pub trace: Option<bool>,
    /// `-T` / `--logtime`.
    pub logtime: Option<bool>,
    /// `-l` / `--log`.
    pub log_file: Option<PathBuf>,
    /// `-P` / `--pid`.
    pub pid_file: Option<PathBuf>,
    /// `--ports_file_dir`.
    pub ports_file_dir: Option<PathBuf>,
    /// `--no_advertise`.
    pub no_advertise: Option<bool>,
    /// `--tls`.
    pub tls: Option<bool>,
    /// `--tlsverify`.
    pub tls_verify: Option<bool>,
    /// `--tlscert`.
    pub tls_cert: Option<PathBuf>,
    /// `--tlskey`.
    pub tls_key: Option<PathBuf>,
    /// `--tlscacert`.
    pub tls_ca_cert: Option<PathBuf>,
    /// `--cluster` / `--cluster_listen`: `nats://[user:pass@]host:port` of the route listener.
    pub cluster_listen: Option<String>,
    /// `--cluster_advertise`.
    pub cluster_advertise: Option<String>,
    /// `--cluster_name`.
    pub cluster_name: Option<String>,
    /// `--routes`: comma-separated route URLs.
    pub routes: Option<String>,
    /// `--connect_retries`.
    pub connect_retries: Option<i64>,
    /// Flags accepted now, acted upon once their features exist.
    pub later: LaterFlags,
    /// Warnings for the log (flags accepted but ignored).
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Str,
}

/// Every flag nats-server 2.9 defines, by name.
const FLAGS: &[(&str, Kind)] = &[
    ("h", Kind::Bool),
    ("help", Kind::Bool),
    ("help_tls", Kind::Bool),
    ("v", Kind::Bool),
    ("version", Kind::Bool),
    ("t", Kind::Bool),
    ("c", Kind::Str),
    ("config", Kind::Str),
    ("sl", Kind::Str),
    ("signal", Kind::Str),
    ("a", Kind::Str),
    ("addr", Kind::Str),
    ("net", Kind::Str),
    ("p", Kind::Int),
    ("port", Kind::Int),
    ("n", Kind::Str),
    ("name", Kind::Str),
    ("server_name", Kind::Str),
    ("client_advertise", Kind::Str),
    ("m", Kind::Int),
    ("http_port", Kind::Int),
    ("ms", Kind::Int),
    ("https_port", Kind::Int),
    ("user", Kind::Str),
    ("pass", Kind::Str),
    ("auth", Kind::Str),
    ("D", Kind::Bool),
    ("debug", Kind::Bool),
    ("V", Kind::Bool),
    ("trace", Kind::Bool),
    ("VV", Kind::Bool),
    ("DV", Kind::Bool),
    ("DVV", Kind::Bool),
    ("T", Kind::Bool),
    ("logtime", Kind::Bool),
    ("l", Kind::Str),
    ("log", Kind::Str),
    ("log_size_limit", Kind::Int),
    ("s", Kind::Bool),
    ("syslog", Kind::Bool),
    ("r", Kind::Str),
    ("remote_syslog", Kind::Str),
    ("P", Kind::Str),
    ("pid", Kind::Str),
    ("ports_file_dir", Kind::Str),
    ("profile", Kind::Int),
    ("routes", Kind::Str),
    ("cluster", Kind::Str),
    ("cluster_listen", Kind::Str),
    ("cluster_advertise", Kind::Str),
    ("no_advertise", Kind::Bool),
    ("connect_retries", Kind::Int),
    ("cluster_name", Kind::Str),
    ("tls", Kind::Bool),
    ("tlsverify", Kind::Bool),
    ("tlscert", Kind::Str),
    ("tlskey", Kind::Str),
    ("tlscacert", Kind::Str),
    ("max_traced_msg_len", Kind::Int),
    ("js", Kind::Bool),
    ("jetstream", Kind::Bool),
    ("sd", Kind::Str),
    ("store_dir", Kind::Str),
];

/// A flag's value, once read.
enum Val {
    Bool(bool),
    Int(i64),
    Str(String),
}

/// Parses the arguments after the program name.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, CliError> {
    let mut cli = Cli::default();
    let mut it = args.into_iter();
    let mut rest = Vec::new();
    while let Some(arg) = it.next() {
        // Go: flag.Parse stops at "--", at "-" and at the first non-flag argument.
        if arg == "--" {
            rest.extend(it.by_ref());
            break;
        }
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            rest.push(arg);
            rest.extend(it.by_ref());
            break;
        };
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            if body.is_empty() {
                rest.push(arg);
                rest.extend(it.by_ref());
                break;
            }
            return Err(CliError::UnknownFlag(body.to_owned()));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (body, None),
        };
        let Some(&(_, kind)) = FLAGS.iter().find(|(n, _)| *n == name) else {
            return Err(CliError::UnknownFlag(name.to_owned()));
        };
        let val = match kind {
            Kind::Bool => Val::Bool(match inline {
                None => true,
                Some(v) => parse_bool(name, &v)?,
            }),
            Kind::Int | Kind::Str => {
                let v = match inline {
                    Some(v) => v,
                    None => it
                        .next()
                        .ok_or_else(|| CliError::MissingValue(name.to_owned()))?,
                };
                if kind == Kind::Int {
                    Val::Int(parse_int(name, &v)?)
                } else {
                    Val::Str(v)
                }
            }
        };
        cli.set(name, val)?;
    }
    // Go: ProcessCommandLineArgs — `version` and `help` are the only commands.
    if let Some(first) = rest.first() {
        match first.as_str() {
            "version" => cli.version = true,
            "help" => cli.help = true,
            other => return Err(CliError::UnknownCommand(other.to_owned())),
        }
    }
    cli.check_tls()?;
    Ok(cli)
}

/// Go: strconv.ParseBool.
fn parse_bool(flag: &str, v: &str) -> Result<bool, CliError> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(CliError::BadValue {
            flag: flag.to_owned(),
            value: v.to_owned(),
            reason: "parse error",
        }),
    }
}

/// Go: strconv.ParseInt(v, 0, 64) — decimal, 0x/0o/0b prefixed or 0-led octal, with a sign.
fn parse_int(flag: &str, v: &str) -> Result<i64, CliError> {
    let bad = || CliError::BadValue {
        flag: flag.to_owned(),
        value: v.to_owned(),
        reason: "parse error",
    };
    let (neg, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b)
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return Err(bad());
    }
    let n = i64::from_str_radix(body, radix).map_err(|_| bad())?;
    Ok(if neg { -n } else { n })
}

impl Cli {
    fn set(&mut self, name: &str, val: Val) -> Result<(), CliError> {
        match (name, val) {
            ("h" | "help", Val::Bool(b)) => self.help = b,
            ("help_tls", Val::Bool(b)) => self.help_tls = b,
            ("v" | "version", Val::Bool(b)) => self.version = b,
            ("t", Val::Bool(b)) => self.check_config = b,
            ("c" | "config", Val::Str(s)) => self.config = Some(PathBuf::from(s)),
            ("sl" | "signal", Val::Str(s)) => self.signal = Some(parse_signal(name, &s)?),
            ("a" | "addr" | "net", Val::Str(s)) => self.host = Some(s),
            ("p" | "port", Val::Int(n)) => self.port = Some(port_value(name, n)?),
            ("n" | "name" | "server_name", Val::Str(s)) => self.server_name = Some(s),
            ("client_advertise", Val::Str(s)) => self.client_advertise = Some(s),
            ("m" | "http_port", Val::Int(n)) => self.http_port = Some(port_value(name, n)?),
            ("ms" | "https_port", Val::Int(n)) => self.https_port = Some(port_value(name, n)?),
            ("user", Val::Str(s)) => self.user = Some(s),
            ("pass", Val::Str(s)) => self.pass = Some(s),
            ("auth", Val::Str(s)) => self.auth = Some(s),
            ("D" | "debug", Val::Bool(b)) => self.debug = Some(b),
            ("V" | "trace", Val::Bool(b)) => self.trace = Some(b),
            ("DV", Val::Bool(b)) => {
                self.debug = Some(b);
                self.trace = Some(b);
            }
            ("VV", Val::Bool(b)) => {
                self.trace = Some(b);
                self.later.trace_verbose = Some(b);
            }
            ("DVV", Val::Bool(b)) => {
                self.debug = Some(b);
                self.trace = Some(b);
                self.later.trace_verbose = Some(b);
            }
            ("T" | "logtime", Val::Bool(b)) => self.logtime = Some(b),
            ("l" | "log", Val::Str(s)) => self.log_file = Some(PathBuf::from(s)),
            ("P" | "pid", Val::Str(s)) => self.pid_file = Some(PathBuf::from(s)),
            ("ports_file_dir", Val::Str(s)) => self.ports_file_dir = Some(PathBuf::from(s)),
            ("no_advertise", Val::Bool(b)) => self.no_advertise = Some(b),
            ("tls", Val::Bool(b)) => self.tls = Some(b),
            ("tlsverify", Val::Bool(b)) => self.tls_verify = Some(b),
            ("tlscert", Val::Str(s)) => self.tls_cert = Some(PathBuf::from(s)),
            ("tlskey", Val::Str(s)) => self.tls_key = Some(PathBuf::from(s)),
            ("tlscacert", Val::Str(s)) => self.tls_ca_cert = Some(PathBuf::from(s)),
            ("s" | "syslog", Val::Bool(b)) => {
                self.later.syslog = Some(b);
                self.warn(
                    name,
                    "syslog is not supported; logging goes to stderr or --log",
                );
            }
            ("r" | "remote_syslog", Val::Str(s)) => {
                self.later.remote_syslog = Some(s);
                self.warn(name, "remote syslog is not supported");
            }
            ("log_size_limit", Val::Int(n)) => self.later.log_size_limit = Some(n),
            ("max_traced_msg_len", Val::Int(n)) => self.later.max_traced_msg_len = Some(n),
            ("profile", Val::Int(n)) => {
                self.later.profile_port = Some(n);
                self.warn(name, "the profiling port is not supported");
            }
            ("js" | "jetstream", Val::Bool(b)) => {
                self.later.jetstream = Some(b);
            }
            ("sd" | "store_dir", Val::Str(s)) => self.later.store_dir = Some(s),
            ("cluster" | "cluster_listen", Val::Str(s)) => self.cluster_listen = Some(s),
            ("cluster_advertise", Val::Str(s)) => self.cluster_advertise = Some(s),
            ("cluster_name", Val::Str(s)) => self.cluster_name = Some(s),
            ("routes", Val::Str(s)) => self.routes = Some(s),
            ("connect_retries", Val::Int(n)) => self.connect_retries = Some(n),
            // The table and this match list the same flags with the same kinds.
            _ => return Err(CliError::UnknownFlag(name.to_owned())),
        }
        Ok(())
    }

    fn warn(&mut self, flag: &str, what: &str) {
        self.warnings.push(format!("flag -{flag} ignored: {what}"));
    }

    /// Go: the TLS override applies when any `-tls*` flag is set, unless `-tls=false`; it
    /// then needs both a certificate and a key.
    fn tls_override(&self) -> bool {
        if self.tls == Some(false) {
            return false;
        }
        self.tls.is_some()
            || self.tls_verify.is_some()
            || self.tls_cert.is_some()
            || self.tls_key.is_some()
            || self.tls_ca_cert.is_some()
    }

    fn check_tls(&self) -> Result<(), CliError> {
        if !self.tls_override() {
            return Ok(());
        }
        if self.tls_cert.is_none() {
            return Err(CliError::Tls(
                "TLS Server certificate must be present and valid",
            ));
        }
        if self.tls_key.is_none() {
            return Err(CliError::Tls(
                "TLS Server private key must be present and valid",
            ));
        }
        Ok(())
    }

    /// Applies the flags over `opts` (already holding the config file's settings): flags win.
    /// As in nats-server, a zero port or an empty string does not override.
    pub fn apply(&self, opts: &mut Options) {
        if let Some(h) = self.host.as_ref().filter(|h| !h.is_empty()) {
            opts.host = h.clone();
        }
        match self.port {
            Some(-1) => opts.port = None,
            Some(p) if p > 0 => opts.port = u16::try_from(p).ok(),
            _ => {}
        }
        if let Some(n) = self.server_name.as_ref().filter(|s| !s.is_empty()) {
            opts.server_name = Some(n.clone());
        }
        if let Some(a) = self.client_advertise.as_ref().filter(|s| !s.is_empty()) {
            opts.client_advertise = Some(a.clone());
        }
        if let Some(p) = monitor_override(self.http_port) {
            opts.http_port = Some(p);
        }
        if let Some(p) = monitor_override(self.https_port) {
            opts.https_port = Some(p);
        }
        if let Some(u) = self.user.as_ref().filter(|s| !s.is_empty()) {
            opts.authorization.user = Some(u.clone());
        }
        if let Some(p) = self.pass.as_ref().filter(|s| !s.is_empty()) {
            opts.authorization.pass = Some(p.clone());
        }
        if let Some(t) = self.auth.as_ref().filter(|s| !s.is_empty()) {
            opts.authorization.token = Some(t.clone());
        }
        if let Some(b) = self.debug {
            opts.debug = b;
        }
        if let Some(b) = self.trace {
            opts.trace = b;
        }
        if let Some(b) = self.logtime {
            opts.logtime = b;
        }
        if let Some(p) = nonempty_path(&self.log_file) {
            opts.log_file = Some(p);
        }
        if let Some(p) = nonempty_path(&self.pid_file) {
            opts.pid_file = Some(p);
        }
        if let Some(p) = nonempty_path(&self.ports_file_dir) {
            opts.ports_file_dir = Some(p);
        }
        if let Some(b) = self.no_advertise {
            opts.no_advertise = b;
        }
        if self.tls == Some(false) {
            // Go: `-tls=false` turns off TLS configured in the file.
            opts.tls = None;
        } else if self.tls_override() {
            if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
                let mut t = TlsConfig::new(cert.clone(), key.clone());
                t.ca_file = self.tls_ca_cert.clone();
                t.verify = self.tls_verify.unwrap_or(false);
                opts.tls = Some(t);
            }
        }
        self.apply_cluster(opts);
        if let Some(c) = &self.config {
            opts.config_file = Some(c.clone());
        }
        self.apply_jetstream(opts);
    }

    /// Go: `-js` enables JetStream; `-sd` sets (and, as in nats-server, enables) the store.
    fn apply_jetstream(&self, opts: &mut Options) {
        let sd = self.later.store_dir.as_ref().filter(|s| !s.is_empty());
        match self.later.jetstream {
            Some(false) => opts.jetstream = None,
            Some(true) => {
                opts.jetstream.get_or_insert_with(Default::default);
            }
            None => {}
        }
        if let (Some(sd), Some(js)) = (sd, opts.jetstream.as_mut()) {
            js.store_dir = Some(PathBuf::from(sd));
        }
    }

    /// Go: server/opts.go overrideCluster and the `--routes` handling of ConfigureOptions.
    fn apply_cluster(&self, opts: &mut Options) {
        let listen = self.cluster_listen.as_ref().filter(|s| !s.is_empty());
        let routes = self.routes.as_ref().filter(|s| !s.is_empty());
        let name = self.cluster_name.as_ref().filter(|s| !s.is_empty());
        let advertise = self.cluster_advertise.as_ref().filter(|s| !s.is_empty());
        let any = listen.is_some()
            || routes.is_some()
            || name.is_some()
            || advertise.is_some()
            || self.connect_retries.is_some();
        if !any {
            return;
        }
        let c = opts.cluster.get_or_insert_with(ClusterConfig::default);
        if let Some(url) = listen {
            // `nats://[user:pass@]host:port`: the credentials are the ones routes must present.
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let rest = rest.trim_end_matches('/');
            let hostport = match rest.rsplit_once('@') {
                Some((cred, hp)) => {
                    let (u, p) = cred.split_once(':').unwrap_or((cred, ""));
                    c.user = Some(u.to_owned());
                    c.password = Some(p.to_owned());
                    hp
                }
                None => rest,
            };
            if let Some((h, p)) = hostport.rsplit_once(':') {
                c.host = h.trim_start_matches('[').trim_end_matches(']').to_owned();
                c.port = match p.parse::<i64>() {
                    Ok(-1) => None,
                    Ok(p) => u16::try_from(p).ok().or(c.port),
                    Err(_) => c.port,
                };
            }
        }
        if let Some(r) = routes {
            c.routes = r
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(n) = name {
            c.name = Some(n.clone());
        }
        if let Some(a) = advertise {
            c.advertise = Some(a.clone());
        }
        if let Some(n) = self.connect_retries {
            c.connect_retries = u32::try_from(n).unwrap_or(0);
        }
    }
}

/// `-1` is a random port (`Some(0)`), a positive value that port, `0` no override.
fn monitor_override(p: Option<i64>) -> Option<u16> {
    match p? {
        -1 => Some(0),
        p if p > 0 => u16::try_from(p).ok(),
        _ => None,
    }
}

fn nonempty_path(p: &Option<PathBuf>) -> Option<PathBuf> {
    p.as_ref().filter(|p| !p.as_os_str().is_empty()).cloned()
}

fn port_value(flag: &str, n: i64) -> Result<i64, CliError> {
    if n < -1 || n > i64::from(u16::MAX) {
        return Err(CliError::BadValue {
            flag: flag.to_owned(),
            value: n.to_string(),
            reason: "not a port (use -1 for a random port)",
        });
    }
    Ok(n)
}

fn parse_signal(flag: &str, s: &str) -> Result<SignalRequest, CliError> {
    let (command, pid) = match s.split_once('=') {
        Some((c, p)) => (c, Some(p.to_owned())),
        None => (s, None),
    };
    if !matches!(
        command,
        "stop" | "quit" | "term" | "reopen" | "reload" | "ldm"
    ) {
        return Err(CliError::BadValue {
            flag: flag.to_owned(),
            value: s.to_owned(),
            reason: "unknown signal (use stop, quit, term, reopen, reload or ldm)",
        });
    }
    if pid.as_deref() == Some("") {
        return Err(CliError::BadValue {
            flag: flag.to_owned(),
            value: s.to_owned(),
            reason: "empty pid",
        });
    }
    Ok(SignalRequest {
        command: command.to_owned(),
        pid,
    })
}

/// The `--help` text.
pub const USAGE: &str = "\
Usage: natsd [options]

Server:
    -a, --addr, --net <host>         Bind to this host (default: 0.0.0.0)
    -p, --port <port>                Client port (default: 4222; -1 picks a free port)
    -n, --name, --server_name <name> Server name (default: the server id)
    -P, --pid <file>                 Write the process id to this file
    -m, --http_port <port>           HTTP monitoring port (-1 picks a free port)
    -ms, --https_port <port>         HTTPS monitoring port (-1 picks a free port)
    -c, --config <file>              Read this configuration file
    -t                               Check the configuration file and exit
    -sl, --signal <cmd>[=<pid>]      Send a signal to a running server and exit:
                                     stop, quit, term, reopen, reload or ldm (lame duck);
                                     <pid> is a process id or a pid file
        --client_advertise <url>     Client URL to advertise instead of host:port
        --ports_file_dir <dir>       Write a <name>_<pid>.ports file into this directory

Logging:
    -l, --log <file>                 Log to this file instead of stderr
    -T, --logtime                    Timestamp log lines (default: true; -T=false turns off)
    -s, --syslog                     Accepted, not supported yet
    -D, --debug                      Debug logging
    -V, --trace                      Protocol tracing
    -VV                              Verbose tracing (system account too)
    -DV                              Debug logging and tracing
    -DVV                             Debug logging and verbose tracing

Authorization:
        --user <user>                Require this user name
        --pass <password>            ... with this password
        --auth <token>               Require this token

TLS:
        --tls                        Enable TLS on the client port
        --tlscert <file>             Server certificate (PEM)
        --tlskey <file>              Server private key (PEM)
        --tlsverify                  Require and verify client certificates
        --tlscacert <file>           CA bundle for client certificates

Cluster:
        --cluster, --cluster_listen <url>  Route listener, nats://[user:pass@]host:port
        --routes <urls>              Comma-separated routes to dial
        --cluster_name <name>        Cluster name (default: agreed on a generated one)
        --cluster_advertise <url>    Route address to gossip instead of host:port
        --no_advertise               Do not gossip client URLs to other servers
        --connect_retries <n>        Retries for routes learned by gossip

Accepted now, used once the features exist:
    -js, --jetstream, -sd, --store_dir <dir>, --log_size_limit <n>,
    --max_traced_msg_len <n>, --profile <port>

Common:
    -h, --help                       Show this help
    -v, --version                    Show the version

Flags take one dash or two; values follow as '-p 4222' or '-p=4222'; boolean flags
take '=false' to turn them off. Flags override the configuration file.
";

#[cfg(test)]
mod tests;
