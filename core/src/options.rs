//! Server options: what the config file and the command line resolve to.
//!
//! Defaults follow nats-server (`server/const.go`, `server/opts.go`). The config-file format is
//! parsed by [`crate::conf`]; `conf::options` maps the parsed tree onto [`Options`].

use std::path::PathBuf;
use std::time::Duration;

pub use crate::conf::options_gateway::{GatewayConfig, RemoteGateway};
pub use crate::conf::options_leaf::{LeafConfig, LeafRemote, LeafUser};

/// Default client port.
pub const DEFAULT_PORT: u16 = 4222;
/// Default maximum payload: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: u32 = 1024 * 1024;
/// Default maximum control line: 4 KiB.
pub const DEFAULT_MAX_CONTROL_LINE: u32 = 4096;
/// Default maximum pending outbound bytes per connection: 64 MiB.
pub const DEFAULT_MAX_PENDING: u64 = 64 * 1024 * 1024;
/// Default maximum number of client connections.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 64 * 1024;
/// Default PING interval.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(120);
/// Default number of unanswered PINGs before 'Stale Connection'.
pub const DEFAULT_PING_MAX: u32 = 2;
/// Default write deadline.
pub const DEFAULT_WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Default authentication timeout.
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Default TLS handshake timeout.
pub const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);
/// Default bound of the closed-connections ring kept for monitoring.
pub const DEFAULT_MAX_CLOSED_CLIENTS: usize = 10_000;
/// Default lame duck duration.
pub const DEFAULT_LAME_DUCK_DURATION: Duration = Duration::from_secs(120);
/// Default lame duck grace period.
pub const DEFAULT_LAME_DUCK_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// The name of the default (global) account.
pub const GLOBAL_ACCOUNT: &str = "$G";
/// The default name of the system account.
pub const DEFAULT_SYSTEM_ACCOUNT: &str = "$SYS";

/// Everything the server runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `server_name`; the server id is used when unset.
    pub server_name: Option<String>,
    /// Client listen host.
    pub host: String,
    /// Client listen port; `None` asks the OS for a free port (`-p -1` / `port: -1`).
    pub port: Option<u16>,
    /// `client_advertise`: the URL advertised to clients instead of host:port.
    pub client_advertise: Option<String>,
    /// `no_advertise`: do not gossip this server's client URLs.
    pub no_advertise: bool,
    /// Monitoring host.
    pub http_host: String,
    /// Monitoring HTTP port (`-m`); `Some(0)` picks a free port.
    pub http_port: Option<u16>,
    /// Monitoring HTTPS port (`-ms`).
    pub https_port: Option<u16>,
    /// `http_base_path`.
    pub http_base_path: String,

    /// `max_payload`.
    pub max_payload: u32,
    /// `max_control_line`.
    pub max_control_line: u32,
    /// `max_pending`: outbound bytes per connection before it is a slow consumer.
    pub max_pending: u64,
    /// `max_connections`.
    pub max_connections: u32,
    /// `max_subscriptions` per connection; 0 is unlimited.
    pub max_subscriptions: u32,
    /// `ping_interval`.
    pub ping_interval: Duration,
    /// `ping_max`.
    pub ping_max: u32,
    /// `write_deadline`.
    pub write_deadline: Duration,
    /// `max_closed_clients` kept for `/connz?state=closed`.
    pub max_closed_clients: usize,
    /// `lame_duck_duration`.
    pub lame_duck_duration: Duration,
    /// `lame_duck_grace_period`.
    pub lame_duck_grace_period: Duration,

    /// Top-level `authorization` block and the `--user/--pass/--auth` flags.
    pub authorization: Authorization,
    /// `accounts` block, in file order.
    pub accounts: Vec<AccountConfig>,
    /// `no_auth_user`: the user a connection without credentials becomes.
    pub no_auth_user: Option<String>,
    /// `system_account`.
    pub system_account: Option<String>,

    /// `tls` block for the client port.
    pub tls: Option<TlsConfig>,

    /// `cluster { … }` / `--cluster`: routes to the other servers of a cluster.
    pub cluster: Option<ClusterConfig>,

    /// `debug` / `-D`.
    pub debug: bool,
    /// `trace` / `-V`.
    pub trace: bool,
    /// `logtime` (default true); `-T=false` turns it off.
    pub logtime: bool,
    /// `log_file` / `-l`.
    pub log_file: Option<PathBuf>,
    /// `pid_file` / `-P` / `--pid`.
    pub pid_file: Option<PathBuf>,
    /// `ports_file_dir` / `--ports_file_dir`.
    pub ports_file_dir: Option<PathBuf>,
    /// The config file these options were read from, if any (for reload).
    pub config_file: Option<PathBuf>,
    /// `jetstream {}` / `-js`: JetStream on this server (`None`: disabled).
    pub jetstream: Option<JetStreamConfig>,
    /// `leafnodes { … }`: the leaf-node listener (hub side) and the remotes we dial.
    pub leafnodes: Option<LeafConfig>,
    /// `gateway { … }`: this cluster's gateway to the other clusters of a super-cluster.
    pub gateway: Option<GatewayConfig>,
    /// `server_tags`: lowercased (Go: jwt.TagList), for JetStream placement.
    pub server_tags: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            server_name: None,
            host: "0.0.0.0".to_owned(),
            port: Some(DEFAULT_PORT),
            client_advertise: None,
            no_advertise: false,
            http_host: "0.0.0.0".to_owned(),
            http_port: None,
            https_port: None,
            http_base_path: String::new(),
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_control_line: DEFAULT_MAX_CONTROL_LINE,
            max_pending: DEFAULT_MAX_PENDING,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_subscriptions: 0,
            ping_interval: DEFAULT_PING_INTERVAL,
            ping_max: DEFAULT_PING_MAX,
            write_deadline: DEFAULT_WRITE_DEADLINE,
            max_closed_clients: DEFAULT_MAX_CLOSED_CLIENTS,
            lame_duck_duration: DEFAULT_LAME_DUCK_DURATION,
            lame_duck_grace_period: DEFAULT_LAME_DUCK_GRACE_PERIOD,
            authorization: Authorization::default(),
            accounts: Vec::new(),
            no_auth_user: None,
            system_account: None,
            tls: None,
            cluster: None,
            debug: false,
            trace: false,
            logtime: true,
            log_file: None,
            pid_file: None,
            ports_file_dir: None,
            config_file: None,
            jetstream: None,
            leafnodes: None,
            gateway: None,
            server_tags: Vec::new(),
        }
    }
}

impl Options {
    /// The authentication timeout in force: the configured one, else 2 s, or the TLS timeout
    /// plus one second when TLS is on (nats-server's rule).
    pub fn auth_timeout(&self) -> Duration {
        if let Some(t) = self.authorization.timeout {
            return t;
        }
        match &self.tls {
            Some(tls) => tls.timeout + Duration::from_secs(1),
            None => DEFAULT_AUTH_TIMEOUT,
        }
    }

    /// Is any form of client authentication configured?
    pub fn auth_required(&self) -> bool {
        let a = &self.authorization;
        a.user.is_some()
            || a.token.is_some()
            || !a.users.is_empty()
            || self.accounts.iter().any(|acc| !acc.users.is_empty())
            || self.tls.as_ref().is_some_and(|t| t.verify_and_map)
    }
}

/// The top-level `authorization { … }` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Authorization {
    /// Single user name.
    pub user: Option<String>,
    /// Single user's password: plain text, or a bcrypt hash (`$2a$…`, `$2b$…`, `$2y$…`).
    pub pass: Option<String>,
    /// Token: plain text or bcrypt hash.
    pub token: Option<String>,
    /// `users = [ … ]` (user/password and nkey users), all in the global account.
    pub users: Vec<User>,
    /// `timeout` (seconds or duration).
    pub timeout: Option<Duration>,
    /// `default_permissions`, applied to users without their own.
    pub default_permissions: Option<Permissions>,
    /// Permissions of the single user / token user.
    pub permissions: Option<Permissions>,
}

/// A user: by name and password, or by nkey.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct User {
    /// User name (absent for nkey users).
    pub username: Option<String>,
    /// Plain or bcrypt password.
    pub password: Option<String>,
    /// Public user nkey (`U…`).
    pub nkey: Option<String>,
    /// Permissions; `None` falls back to the default permissions.
    pub permissions: Option<Permissions>,
    /// The account this user belongs to; `None` is the global account.
    pub account: Option<String>,
    /// `allowed_connection_types` (STANDARD, WEBSOCKET, MQTT, LEAFNODE, …); empty allows all.
    pub allowed_connection_types: Vec<String>,
}

/// `permissions { publish, subscribe, allow_responses }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Permissions {
    /// Publish permissions; `None` allows everything.
    pub publish: Option<SubjectPermission>,
    /// Subscribe permissions; `None` allows everything. Entries may be `"subject queue"` forms.
    pub subscribe: Option<SubjectPermission>,
    /// `allow_responses`: may publish to reply subjects of requests received.
    pub allow_responses: Option<ResponsePermission>,
}

/// Allow and deny lists of subjects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubjectPermission {
    /// Allowed subjects; empty with a non-empty deny list means "everything but the denied".
    pub allow: Vec<String>,
    /// Denied subjects; deny wins over allow.
    pub deny: Vec<String>,
}

/// `allow_responses: true` or `{ max, expires }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsePermission {
    /// Responses allowed per request (default 1).
    pub max: u32,
    /// How long the permission lasts (default 2 minutes; zero means no expiry).
    pub expires: Duration,
}

impl Default for ResponsePermission {
    fn default() -> Self {
        Self {
            max: 1,
            expires: Duration::from_secs(120),
        }
    }
}

/// One entry of the `accounts { … }` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountConfig {
    /// Account name.
    pub name: String,
    /// Users (name/password or nkey) bound to this account.
    pub users: Vec<User>,
    /// `exports = [ … ]`.
    pub exports: Vec<ExportConfig>,
    /// `imports = [ … ]`.
    pub imports: Vec<ImportConfig>,
    /// `default_permissions` for this account's users.
    pub default_permissions: Option<Permissions>,
    /// `jetstream: enabled | disabled | { max_mem, max_file, … }` (`None`: disabled).
    pub jetstream: Option<crate::jetstream::limits::AccountLimits>,
}

/// What kind of export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// A stream of messages the importer subscribes to.
    Stream,
    /// A service the importer sends requests to.
    Service,
}

/// How many responses a service request may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseType {
    /// Exactly one response.
    #[default]
    Singleton,
    /// Any number of responses until the response threshold passes.
    Stream,
    /// Several chunks of one response.
    Chunked,
}

/// `{ stream: "subj", accounts: [..] }` or `{ service: "subj", response: stream, accounts: [..] }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportConfig {
    /// Stream or service.
    pub kind: ExportKind,
    /// The exported subject (may hold wildcards).
    pub subject: String,
    /// Accounts allowed to import; `None` is public.
    pub accounts: Option<Vec<String>>,
    /// Service response type.
    pub response_type: ResponseType,
    /// `response_threshold` for stream/chunked responses.
    pub response_threshold: Option<Duration>,
}

/// `{ stream: { account, subject }, prefix }` or `{ service: { account, subject }, to }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportConfig {
    /// Stream or service.
    pub kind: ExportKind,
    /// The exporting account.
    pub account: String,
    /// The subject in the exporting account.
    pub subject: String,
    /// For streams: `to`/`prefix` remapping; for services: `to`, the local subject.
    pub to: Option<String>,
    /// For streams: a prefix prepended to delivered subjects (legacy form).
    pub prefix: Option<String>,
}

/// Default cluster port (Go: server/const.go DEFAULT_ROUTE_PORT).
pub const DEFAULT_CLUSTER_PORT: u16 = 6222;
/// Default `cluster.authorization.timeout` (Go: setBaselineOptions, the client default).
pub const DEFAULT_CLUSTER_AUTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The `cluster { … }` block (Go: server/opts.go ClusterOpts). The client-URL gossip switch,
/// `cluster.no_advertise`, is [`Options::no_advertise`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// `name`; `None` lets the servers agree on a generated one.
    pub name: Option<String>,
    /// Listen host.
    pub host: String,
    /// Listen port; `None` asks the OS for a free port (`-1`).
    pub port: Option<u16>,
    /// `advertise` / `cluster_advertise`: the `host:port` other servers are told to dial.
    pub advertise: Option<String>,
    /// `routes`: URLs to dial, `nats-route://[user:pass@]host:port`.
    pub routes: Vec<String>,
    /// `authorization.user`: the user every route that dials us must present.
    pub user: Option<String>,
    /// `authorization.password` (plain or bcrypt).
    pub password: Option<String>,
    /// `authorization.timeout`.
    pub auth_timeout: Duration,
    /// `permissions.import`: subjects we accept messages for (we only send interest in these).
    pub import: Option<SubjectPermission>,
    /// `permissions.export`: subjects whose remote interest we accept.
    pub export: Option<SubjectPermission>,
    /// `tls` block of the route listener and dialer.
    pub tls: Option<TlsConfig>,
    /// `connect_retries`: extra attempts for a route learned by gossip (configured routes are
    /// retried forever).
    pub connect_retries: u32,
    /// `pool_size` (nats-server 2.10): route connections per peer, each account's traffic on
    /// the one its name hashes to. `None` or `< 1`: one route per peer, as 2.9.10.
    pub pool_size: Option<i64>,
    /// `accounts` / `pinned_accounts` (nats-server 2.10): accounts with a route of their own.
    pub pinned_accounts: Vec<String>,
    /// `write_deadline` of the cluster block (nats-server 2.11; 2.9.10 uses the server's):
    /// a route whose writes make no progress this long is dropped as a slow consumer.
    pub write_deadline: Option<Duration>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            name: None,
            host: "0.0.0.0".to_owned(),
            port: Some(DEFAULT_CLUSTER_PORT),
            advertise: None,
            routes: Vec::new(),
            user: None,
            password: None,
            auth_timeout: DEFAULT_CLUSTER_AUTH_TIMEOUT,
            import: None,
            export: None,
            tls: None,
            connect_retries: 0,
            pool_size: None,
            pinned_accounts: Vec::new(),
            write_deadline: None,
        }
    }
}

/// The `tls { … }` block of a listener.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// PEM CA bundle used to verify client certificates.
    pub ca_file: Option<PathBuf>,
    /// Require and verify client certificates.
    pub verify: bool,
    /// Require client certificates and map their subject/SAN to a user.
    pub verify_and_map: bool,
    /// Handshake timeout.
    pub timeout: Duration,
    /// `handshake_first`: TLS before INFO. `Some(d)` with a non-zero `d` falls back to INFO-first
    /// when the client says nothing for `d`.
    pub handshake_first: Option<Duration>,
}

impl TlsConfig {
    /// A TLS config with nats-server's defaults around the given key pair.
    pub fn new(cert_file: PathBuf, key_file: PathBuf) -> Self {
        Self {
            cert_file,
            key_file,
            ca_file: None,
            verify: false,
            verify_and_map: false,
            timeout: DEFAULT_TLS_TIMEOUT,
            handshake_first: None,
        }
    }
}

/// JetStream settings (Go: `jetstream {}` block, `-js`, `-sd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamConfig {
    /// Where file-backed streams live; `None`: a `jetstream` directory under the system temp dir.
    pub store_dir: Option<PathBuf>,
    /// Memory-storage limit in bytes (`None`: 75% of system memory, as nats-server).
    pub max_memory_store: Option<u64>,
    /// File-storage limit in bytes (`None`: unlimited here).
    pub max_file_store: Option<u64>,
    /// JetStream domain.
    pub domain: Option<String>,
    /// `sync_interval`: `None` syncs before every acknowledgement (natsd's default); `Some(d)`
    /// acknowledges at once and syncs every `d`, as nats-server does by default.
    pub sync_interval: Option<Duration>,
    /// `strict`: API requests with fields nats-server does not know are refused (on by
    /// default, as from nats-server 2.12; see README's JetStream section).
    pub strict: bool,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        Self {
            store_dir: None,
            max_memory_store: None,
            max_file_store: None,
            domain: None,
            sync_interval: None,
            strict: true,
        }
    }
}
