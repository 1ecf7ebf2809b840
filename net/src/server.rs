//! The server: shared state, the accept loop, and the embedding API.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, VecDeque};
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::auth::AuthOutcome;
use natsd_core::conn::{ClientConfig, CloseReason};
use natsd_core::options::{Options, DEFAULT_SYSTEM_ACCOUNT, GLOBAL_ACCOUNT};
use natsd_core::proto::info::{ConnectInfo, ServerInfo};
use natsd_core::rng::SplitMix64;
use natsd_core::router::ClientShared;
use tokio::sync::watch;

mod lifecycle;
mod setup;
mod urls;

use setup::{build_accounts, client_config};

use crate::client;
use crate::monitor::types::{
    AccountStatz, Accountz, Connz, Gatewayz, HealthStatus, Jsz, Leafz, Raftz, Routez, Subsz, Varz,
};
use crate::monitor::{AccountStatzOptions, AccountzOptions, ConnzOptions, SubszOptions};
use crate::tls::TlsSetup;
use crate::transport::{Tokio, Transport};

/// The NATS protocol level natsd implements, reported as `version` in INFO so that clients
/// gate features on what is really there.
pub const NATS_COMPAT_VERSION: &str = "2.9.10";
/// The JetStream API level sent as `api_lvl` in INFO. nats-server sends it from 2.12 on (2.12.0
/// sends 2, later 2.12 releases 3); earlier releases omit it, so it stays 0 (omitted) while
/// [`NATS_COMPAT_VERSION`] names one of them. Change the two together. (Claiming 2.10+ also
/// means an `xkey` in INFO, and 2.12+ an INFO with `connect_info` after the first PING.)
pub const JS_API_LEVEL: u32 = 0;
/// The compiler that built natsd (`rustc 1.95.0`), sent where nats-server sends its Go version.
pub const BUILD_TOOLCHAIN: &str = env!("NATSD_RUSTC_VERSION");
/// natsd's own version.
pub const NATSD_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why the server could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The options are inconsistent.
    #[error("configuration error: {0}")]
    Config(String),
    /// TLS material could not be loaded.
    #[error("TLS configuration error: {0}")]
    Tls(String),
    /// A listener could not be bound.
    #[error("error listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the server keeps about a connection (for monitoring and the embedding API).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientEntry {
    /// The router's view of the connection.
    pub shared: Arc<ClientShared>,
    /// Peer address.
    pub peer: SocketAddr,
    /// When it connected.
    pub start: SystemTime,
    /// Account name, once CONNECT was accepted.
    pub account: Option<String>,
    /// Authenticated user.
    pub user: Option<String>,
    /// Client name from CONNECT.
    pub name: Option<String>,
    /// Client library language.
    pub lang: Option<String>,
    /// Client library version.
    pub version: Option<String>,
    /// Protocol level from CONNECT (1 and up take asynchronous INFO updates).
    pub protocol: i32,
    /// Wall-clock time of the last input, in nanoseconds since the Unix epoch.
    pub last_activity: Arc<AtomicU64>,
}

impl ClientEntry {
    /// The last time the client sent anything.
    pub fn last_activity(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(self.last_activity.load(Ordering::Relaxed))
    }
}

/// A connection that has gone, kept in a bounded ring for `/connz?state=closed`.
#[derive(Debug, Clone)]
pub struct ClosedClient {
    /// What was known about it while it was open.
    pub entry: ClientEntry,
    /// When it closed.
    pub stop: SystemTime,
    /// Why it closed.
    pub reason: CloseReason,
    /// Its subscriptions at the time (subject, queue, sid).
    pub subs: Vec<(Bytes, Option<Bytes>, Bytes)>,
}

/// A client's CONNECT and nonce, kept to authenticate it again after a reload. Holds secrets:
/// never shown, and its Debug output is redacted.
#[derive(Clone)]
pub(crate) struct AuthRecord {
    pub(crate) connect: ConnectInfo,
    pub(crate) nonce: String,
    pub(crate) outcome: AuthOutcome,
}

impl std::fmt::Debug for AuthRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthRecord([REDACTED])")
    }
}

/// Counters of one account that outlive its connections.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AccountTotals {
    pub(crate) out_msgs: u64,
    pub(crate) out_bytes: u64,
    pub(crate) slow_consumers: u64,
}

pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// State shared by every task of one server.
#[derive(Debug)]
pub(crate) struct Shared {
    opts: RwLock<Arc<Options>>,
    client_cfg: RwLock<Arc<ClientConfig>>,
    accounts: RwLock<BTreeMap<String, Arc<Account>>>,
    default_account: RwLock<Arc<Account>>,
    clients: Mutex<BTreeMap<u64, ClientEntry>>,
    next_cid: AtomicU64,
    rng: Mutex<SplitMix64>,
    pub(crate) server_id: String,
    pub(crate) server_name: String,
    pub(crate) in_msgs: AtomicU64,
    pub(crate) in_bytes: AtomicU64,
    pub(crate) total_connections: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
    /// Deliveries to connections that have since closed (live ones count in their own stats).
    pub(crate) closed_out_msgs: AtomicU64,
    pub(crate) closed_out_bytes: AtomicU64,
    pub(crate) closed: Mutex<VecDeque<ClosedClient>>,
    pub(crate) account_totals: Mutex<BTreeMap<String, AccountTotals>>,
    pub(crate) http_req_stats: Mutex<BTreeMap<String, u64>>,
    pub(crate) config_load_time: Mutex<SystemTime>,
    pub(crate) cpu_sample: Mutex<Option<(std::time::Instant, u64)>>,
    pub(crate) http_addr: Mutex<Option<SocketAddr>>,
    pub(crate) https_addr: Mutex<Option<SocketAddr>>,
    pub(crate) lame_duck: AtomicBool,
    /// Bumped each time the cluster fields of the client INFO change (Go: lastCURLsUpdate).
    info_gen: AtomicU64,
    /// `info_gen` when each connection not yet past CONNECT was accepted: its INFO is at
    /// least that recent.
    info_gen_at_accept: Mutex<BTreeMap<u64, u64>>,
    pub(crate) tls: RwLock<Option<Arc<TlsSetup>>>,
    /// What each client authenticated with, to check again after a reload.
    pub(crate) auth_records: Mutex<BTreeMap<u64, AuthRecord>>,
    pub(crate) sys: crate::sys::SysState,
    pub(crate) js: crate::jetstream::JsState,
    pub(crate) start_time: SystemTime,
    wall_clock: fn() -> SystemTime,
    /// Routes to the other servers of the cluster (inert without a `cluster` block).
    pub(crate) cluster: Arc<crate::route::Cluster>,
    /// Leaf-node links, hub and leaf side (inert without a `leafnodes` block).
    pub(crate) leafs: Arc<crate::leaf::Leafs>,
}

impl Shared {
    pub(crate) fn opts(&self) -> Arc<Options> {
        Arc::clone(&self.opts.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn tls(&self) -> Option<Arc<TlsSetup>> {
        self.tls.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.client_cfg.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn lookup_account(&self, name: &str) -> Option<Arc<Account>> {
        self.accounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub(crate) fn default_account(&self) -> Arc<Account> {
        Arc::clone(
            &self
                .default_account
                .read()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    pub(crate) fn next_seed(&self) -> u64 {
        lock(&self.rng).next_u64()
    }

    pub(crate) fn wall_clock(&self) -> SystemTime {
        (self.wall_clock)()
    }

    pub(crate) fn register_client(
        &self,
        id: u64,
        shared: &Arc<ClientShared>,
        peer: SocketAddr,
    ) -> Arc<AtomicU64> {
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        if self.leafs.enabled {
            shared.set_interest_hook(Arc::new(crate::leaf::ServerInterest {
                cluster: self.cluster.enabled.then(|| Arc::clone(&self.cluster)),
                leafs: Arc::clone(&self.leafs),
            }));
        } else if self.cluster.enabled {
            shared.set_interest_hook(self.cluster.interest_hook(self.system_account_name()));
        }
        let start = self.wall_clock();
        let last_activity = Arc::new(AtomicU64::new(unix_nanos(start)));
        lock(&self.clients).insert(
            id,
            ClientEntry {
                shared: Arc::clone(shared),
                peer,
                start,
                account: None,
                user: None,
                name: None,
                lang: None,
                version: None,
                protocol: 0,
                last_activity: Arc::clone(&last_activity),
            },
        );
        last_activity
    }

    pub(crate) fn set_client_identity(
        &self,
        id: u64,
        outcome: &AuthOutcome,
        connect: &ConnectInfo,
        nonce: &str,
    ) {
        lock(&self.auth_records).insert(
            id,
            AuthRecord {
                connect: connect.clone(),
                nonce: nonce.to_owned(),
                outcome: outcome.clone(),
            },
        );
        if let Some(e) = lock(&self.clients).get_mut(&id) {
            e.account = Some(outcome.account.clone());
            e.user = outcome.user.clone().or_else(|| outcome.nkey.clone());
            e.name = connect.name.clone();
            e.lang = connect.lang.clone();
            e.version = connect.version.clone();
            e.protocol = connect.protocol;
        }
        // Go: client.go processPing — a client whose INFO went out before a cluster change
        // it was not yet registered to hear about gets the current INFO (before its first
        // PONG: the PING after CONNECT is read only once this event is handled).
        let accepted_at = lock(&self.info_gen_at_accept).remove(&id);
        if connect.protocol >= 1
            && accepted_at.is_some_and(|g| g != self.info_gen.load(Ordering::Acquire))
        {
            if let Some(e) = self.get_client(id) {
                let mut info = self.client_config().info.clone();
                info.client_id = id;
                info.client_ip = e.peer.ip().to_canonical().to_string();
                let mut buf = bytes::BytesMut::new();
                natsd_core::proto::client::encode_info(&mut buf, &info);
                e.shared.send_control(&buf);
            }
        }
        if let Some(e) = self.get_client(id) {
            crate::sys::events::client_connected(self, &e);
        }
    }

    pub(crate) fn get_client(&self, id: u64) -> Option<ClientEntry> {
        lock(&self.clients).get(&id).cloned()
    }

    /// Forgets a live connection and keeps its record in the closed ring. `subs` is what it
    /// was subscribed to (taken before the router dropped the subscriptions).
    pub(crate) fn unregister_client(
        &self,
        id: u64,
        reason: CloseReason,
        subs: Vec<(Bytes, Option<Bytes>, Bytes)>,
    ) {
        lock(&self.auth_records).remove(&id);
        lock(&self.info_gen_at_accept).remove(&id);
        let Some(entry) = lock(&self.clients).remove(&id) else {
            return;
        };
        let st = &entry.shared.stats;
        let (out_msgs, out_bytes) = (
            st.out_msgs.load(Ordering::Relaxed),
            st.out_bytes.load(Ordering::Relaxed),
        );
        self.closed_out_msgs.fetch_add(out_msgs, Ordering::Relaxed);
        self.closed_out_bytes
            .fetch_add(out_bytes, Ordering::Relaxed);
        let slow = matches!(
            reason,
            CloseReason::SlowConsumerPendingBytes | CloseReason::SlowConsumerWriteDeadline
        );
        if slow {
            self.slow_consumers.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(acc) = &entry.account {
            let mut totals = lock(&self.account_totals);
            let t = totals.entry(acc.clone()).or_default();
            t.out_msgs += out_msgs;
            t.out_bytes += out_bytes;
            t.slow_consumers += u64::from(slow);
        }
        let closed = ClosedClient {
            entry,
            stop: self.wall_clock(),
            reason,
            subs,
        };
        crate::sys::events::client_disconnected(self, &closed);
        let max = self.opts().max_closed_clients;
        if max > 0 {
            let mut ring = lock(&self.closed);
            while ring.len() >= max {
                ring.pop_front();
            }
            ring.push_back(closed);
        }
    }

    pub(crate) fn clients_snapshot(&self) -> Vec<ClientEntry> {
        lock(&self.clients).values().cloned().collect()
    }

    pub(crate) fn accounts_snapshot(&self) -> Vec<Arc<Account>> {
        self.accounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The system account's name: `system_account`, else `$SYS`.
    pub(crate) fn system_account_name(&self) -> String {
        self.opts()
            .system_account
            .clone()
            .unwrap_or_else(|| DEFAULT_SYSTEM_ACCOUNT.to_owned())
    }

    pub(crate) fn count_in(&self, msgs: u64, bytes: u64) {
        self.in_msgs.fetch_add(msgs, Ordering::Relaxed);
        self.in_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn num_clients(&self) -> usize {
        lock(&self.clients).len()
    }

    /// A fresh connection id (clients and routes share the sequence, as in nats-server).
    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::Relaxed)
    }

    /// This server's own client URLs (`host:port`), as gossiped to routes and listed in
    /// `connect_urls`: `client_advertise`, else the listen address, or the machine's addresses
    /// when that is unspecified.
    pub(crate) fn own_client_urls(&self) -> Vec<String> {
        let opts = self.opts();
        let info = &self.client_config().info;
        urls::client_connect_urls(opts.client_advertise.as_deref(), &info.host, info.port)
    }

    /// Recomputes the cluster fields of the client INFO (`connect_urls`, `cluster`) and, when
    /// they changed, sends the new INFO to every connected client (Go:
    /// sendAsyncInfoToClients).
    pub(crate) fn update_client_urls(&self) {
        if !self.cluster.enabled {
            return;
        }
        let opts = self.opts();
        // Go: server.go sendLDMToClients — once in lame duck mode this server no longer
        // offers itself, only its peers.
        let mut urls = if self.lame_duck.load(Ordering::Acquire) {
            Vec::new()
        } else {
            self.own_client_urls()
        };
        if !opts.no_advertise {
            for u in self.cluster.peer_client_urls() {
                if !urls.contains(&u) {
                    urls.push(u);
                }
            }
        }
        let name = Some(self.cluster.name());
        let info = {
            let mut cfg = self.client_cfg.write().unwrap_or_else(|e| e.into_inner());
            if cfg.info.connect_urls == urls && cfg.info.cluster == name {
                return;
            }
            let mut info = cfg.info.clone();
            info.connect_urls = urls;
            info.cluster = name;
            *cfg = Arc::new(ClientConfig {
                info: info.clone(),
                max_control_line: cfg.max_control_line,
                max_payload: cfg.max_payload,
                ping_interval: cfg.ping_interval,
                ping_max: cfg.ping_max,
                auth_timeout: cfg.auth_timeout,
                authenticator: Arc::clone(&cfg.authenticator),
            });
            // After the swap: a connection accepted before this bump may hold the old INFO.
            self.info_gen.fetch_add(1, Ordering::AcqRel);
            info
        };
        self.send_async_info(&info);
    }

    /// Sends `info` to every client that is past CONNECT and takes asynchronous INFO
    /// (protocol 1), each copy with that client's own `client_id` and `client_ip`.
    /// Go: server/route.go sendAsyncInfoToClients, client.go generateClientInfoJSON.
    pub(crate) fn send_async_info(&self, info: &ServerInfo) {
        let mut info = info.clone();
        let mut buf = bytes::BytesMut::new();
        for c in self.clients_snapshot() {
            if c.account.is_none() || c.protocol < 1 {
                continue;
            }
            buf.clear();
            info.client_id = c.shared.id;
            info.client_ip = c.peer.ip().to_canonical().to_string();
            natsd_core::proto::client::encode_info(&mut buf, &info);
            c.shared.send_control(&buf);
        }
    }
}

/// Binds a listener and reads back the address it got (the port, when 0 asked for any).
pub(crate) async fn bind_listener<T: Transport>(
    addr: SocketAddr,
) -> Result<(T::Listener, SocketAddr), ServerError> {
    let listen_err = |source| ServerError::Listen {
        addr: addr.to_string(),
        source,
    };
    let listener = T::bind(addr).await.map_err(listen_err)?;
    let mut bound = T::local_addr(&listener).map_err(listen_err)?;
    if addr.ip().is_unspecified() {
        // A dual-stack listener asked for as 0.0.0.0 reports `[::]`; keep the asked-for form
        // in logs and monitoring, as nats-server does.
        bound = SocketAddr::new(addr.ip(), bound.port());
    }
    Ok((listener, bound))
}

fn server_identity(seed: u64) -> String {
    let mut raw = [0u8; 32];
    SplitMix64::new(seed).fill(&mut raw);
    nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::Server, raw)
        .map(|kp| kp.public_key())
        .unwrap_or_else(|_| format!("N{seed:016X}"))
}

/// A seed from the OS: production runs log it so a run can be related to its choices.
pub fn os_seed() -> u64 {
    RandomState::new().hash_one((SystemTime::now(), std::process::id()))
}

/// A natsd server. Build it with [`Server::new`], then [`Server::start`] it on a tokio runtime.
///
/// The library never installs signal handlers or exits the process; the binary does. Several
/// servers can run side by side in one process.
#[derive(Debug)]
pub struct Server<T: Transport = Tokio> {
    _transport: std::marker::PhantomData<T>,
    shared: Arc<Shared>,
    client_addr: Mutex<Option<SocketAddr>>,
    shutdown_tx: watch::Sender<bool>,
    /// Set when the client listener must stop accepting (lame duck mode).
    stop_accept_tx: watch::Sender<bool>,
    running: AtomicBool,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    ready_tx: watch::Sender<bool>,
}

impl Server<Tokio> {
    /// Builds a server from options, with a seed drawn from the OS.
    pub fn new(opts: Options) -> Result<Self, ServerError> {
        Self::with_seed(opts, os_seed())
    }
}

impl<T: Transport> Server<T> {
    /// Builds a server whose every random choice derives from `seed`.
    pub fn with_seed(opts: Options, seed: u64) -> Result<Self, ServerError> {
        let mut rng = SplitMix64::new(seed);
        let server_id = server_identity(rng.next_u64());
        let server_name = opts
            .server_name
            .clone()
            .unwrap_or_else(|| server_id.clone());
        let accounts = build_accounts(&opts, &BTreeMap::new())?;
        let default_account = Arc::clone(&accounts[GLOBAL_ACCOUNT]);
        let tls = opts
            .tls
            .as_ref()
            .map(|t| TlsSetup::new(t).map(Arc::new))
            .transpose()
            .map_err(|e| ServerError::Tls(e.to_string()))?;
        let cfg = client_config(&opts, &server_id, &server_name, opts.port.unwrap_or(0))?;
        let cluster_enabled = opts.cluster.is_some();
        let leaf_enabled = opts.leafnodes.is_some();
        let name_seed = rng.next_u64();
        let (cluster_name, cluster_dynamic) =
            match opts.cluster.as_ref().and_then(|c| c.name.clone()) {
                Some(n) => (n, false),
                // Go: an unnamed cluster starts with a generated name that may give way.
                None => (crate::route::generated_name(name_seed), true),
            };
        let (shutdown_tx, _) = watch::channel(false);
        let (stop_accept_tx, _) = watch::channel(false);
        let (ready_tx, _) = watch::channel(false);
        Ok(Self {
            _transport: std::marker::PhantomData,
            shared: Arc::new(Shared {
                opts: RwLock::new(Arc::new(opts)),
                client_cfg: RwLock::new(Arc::new(cfg)),
                accounts: RwLock::new(accounts),
                default_account: RwLock::new(default_account),
                clients: Mutex::new(BTreeMap::new()),
                next_cid: AtomicU64::new(1),
                rng: Mutex::new(rng),
                server_id,
                server_name,
                in_msgs: AtomicU64::new(0),
                in_bytes: AtomicU64::new(0),
                total_connections: AtomicU64::new(0),
                slow_consumers: AtomicU64::new(0),
                closed_out_msgs: AtomicU64::new(0),
                closed_out_bytes: AtomicU64::new(0),
                closed: Mutex::new(VecDeque::new()),
                account_totals: Mutex::new(BTreeMap::new()),
                http_req_stats: Mutex::new(BTreeMap::new()),
                config_load_time: Mutex::new(T::wall_clock()),
                cpu_sample: Mutex::new(None),
                http_addr: Mutex::new(None),
                https_addr: Mutex::new(None),
                lame_duck: AtomicBool::new(false),
                info_gen: AtomicU64::new(0),
                info_gen_at_accept: Mutex::new(BTreeMap::new()),
                tls: RwLock::new(tls),
                auth_records: Mutex::new(BTreeMap::new()),
                sys: crate::sys::SysState::default(),
                js: crate::jetstream::JsState::default(),
                start_time: T::wall_clock(),
                wall_clock: T::wall_clock,
                cluster: Arc::new(crate::route::Cluster::new(
                    cluster_enabled,
                    cluster_name,
                    cluster_dynamic,
                )),
                leafs: Arc::new(crate::leaf::Leafs::new(leaf_enabled)),
            }),
            client_addr: Mutex::new(None),
            shutdown_tx,
            stop_accept_tx,
            running: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            ready_tx,
        })
    }

    /// Binds the client listener and starts accepting. Must be called within a tokio runtime.
    pub async fn start(&self) -> Result<(), ServerError> {
        let opts = self.shared.opts();
        let host: IpAddr = opts
            .host
            .parse()
            .map_err(|_| ServerError::Config(format!("invalid listen host {:?}", opts.host)))?;
        let addr = SocketAddr::new(host, opts.port.unwrap_or(0));
        let (listener, bound) = bind_listener::<T>(addr).await?;
        if bound.port() != opts.port.unwrap_or(0) {
            // A random port: INFO must carry the real one.
            let cfg = client_config(
                &opts,
                &self.shared.server_id,
                &self.shared.server_name,
                bound.port(),
            )?;
            *self
                .shared
                .client_cfg
                .write()
                .unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
        }
        *lock(&self.client_addr) = Some(bound);
        // Before the first client can connect: `$JS.API` must answer from the start.
        crate::jetstream::start(&self.shared, T::INLINE_WORKERS).map_err(ServerError::Config)?;
        tracing::info!("Listening for client connections on {bound}");
        if self.shared.tls().is_some() {
            tracing::info!("TLS required for client connections");
        }
        let shared = Arc::clone(&self.shared);
        let mut shutdown = self.shutdown_tx.subscribe();
        let mut stop_accept = self.stop_accept_tx.subscribe();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = T::accept(&listener) => match r {
                        Ok((stream, peer)) => accept::<T>(&shared, shared.tls(), stream, peer),
                        Err(e) => {
                            tracing::error!("Error accepting client connection: {e}");
                            // Out of file descriptors and the like: back off instead of spinning.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    },
                    _ = shutdown.changed() => break,
                    _ = stop_accept.changed() => break,
                }
            }
        });
        lock(&self.tasks).push(task);
        let own_urls = self.shared.own_client_urls();
        if let Some(t) = crate::route::dial::start::<T>(
            &self.shared,
            &opts,
            own_urls,
            self.shutdown_tx.subscribe(),
        )
        .await?
        {
            lock(&self.tasks).push(t);
            self.shared.update_client_urls();
        }
        if let Some(t) =
            crate::leaf::dial::start::<T>(&self.shared, &opts, self.shutdown_tx.subscribe()).await?
        {
            lock(&self.tasks).push(t);
        }
        self.start_monitoring(&opts).await?;
        let sys_tasks = crate::sys::start(&self.shared, self.shutdown_tx.subscribe());
        lock(&self.tasks).extend(sys_tasks);
        self.running.store(true, Ordering::Release);
        let _ = self.ready_tx.send(true);
        tracing::info!("Server is ready");
        Ok(())
    }

    /// Waits until the server accepts connections, at most `timeout`.
    pub async fn ready_for_connections(&self, timeout: Duration) -> bool {
        let mut rx = self.ready_tx.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The server id (an nkey-style public key).
    pub fn id(&self) -> &str {
        &self.shared.server_id
    }

    /// The server name.
    pub fn name(&self) -> &str {
        &self.shared.server_name
    }

    /// When the server was built (wall clock).
    pub fn start_time(&self) -> SystemTime {
        self.shared.start_time
    }

    /// Is the server running?
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// The bound client address, once started.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        *lock(&self.client_addr)
    }

    /// `nats://host:port` for clients, once started.
    pub fn client_url(&self) -> Option<String> {
        self.client_addr().map(|a| {
            let host = if a.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                a.ip().to_string()
            };
            format!("nats://{host}:{}", a.port())
        })
    }

    /// Number of client connections.
    pub fn num_clients(&self) -> usize {
        self.shared.num_clients()
    }

    /// The options in force.
    pub fn options(&self) -> Arc<Options> {
        self.shared.opts()
    }

    /// A live connection by id.
    pub fn get_client(&self, id: u64) -> Option<ClientEntry> {
        lock(&self.shared.clients).get(&id).cloned()
    }

    /// Closes a client connection by id. Returns false when there is no such connection.
    pub fn disconnect_client(&self, id: u64) -> bool {
        match lock(&self.shared.clients).get(&id) {
            Some(e) => {
                e.shared.close(CloseReason::Kicked);
                true
            }
            None => false,
        }
    }

    /// Looks up an account by name.
    pub fn lookup_account(&self, name: &str) -> Option<Arc<Account>> {
        self.shared.lookup_account(name)
    }

    /// Messages received from clients.
    pub fn in_msgs(&self) -> u64 {
        self.shared.in_msgs.load(Ordering::Relaxed)
    }

    async fn start_monitoring(&self, opts: &Options) -> Result<(), ServerError> {
        let ports = [(opts.http_port, false), (opts.https_port, true)];
        for (port, secure) in ports {
            let Some(port) = port else { continue };
            let acceptor = if secure {
                let tls = opts.tls.as_ref().ok_or_else(|| {
                    ServerError::Config("https_port requires a tls block".to_owned())
                })?;
                // Go: monitoring over HTTPS uses the client TLS config without client certs.
                let cfg = natsd_core::options::TlsConfig {
                    verify: false,
                    verify_and_map: false,
                    handshake_first: None,
                    ..tls.clone()
                };
                Some(
                    TlsSetup::new(&cfg)
                        .map_err(|e| ServerError::Tls(e.to_string()))?
                        .acceptor(),
                )
            } else {
                None
            };
            let host: IpAddr = opts.http_host.parse().map_err(|_| {
                ServerError::Config(format!("invalid monitoring host {:?}", opts.http_host))
            })?;
            let addr = SocketAddr::new(host, port);
            let (listener, bound) = bind_listener::<T>(addr).await?;
            let scheme = if secure { "https" } else { "http" };
            tracing::info!("Starting {scheme} monitor on {scheme}://{bound}");
            if secure {
                *lock(&self.shared.https_addr) = Some(bound);
            } else {
                *lock(&self.shared.http_addr) = Some(bound);
            }
            let task = tokio::spawn(crate::monitor::serve::<T>(
                Arc::clone(&self.shared),
                listener,
                acceptor,
                self.shutdown_tx.subscribe(),
            ));
            lock(&self.tasks).push(task);
        }
        Ok(())
    }

    /// The bound monitoring (HTTP) address, once started with `http_port`.
    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        *lock(&self.shared.http_addr)
    }

    /// The bound monitoring (HTTPS) address, once started with `https_port`.
    pub fn monitor_tls_addr(&self) -> Option<SocketAddr> {
        *lock(&self.shared.https_addr)
    }

    /// `/varz`: configuration and counters.
    pub fn varz(&self) -> Varz {
        self.shared.varz()
    }

    /// `/connz`: connections. Errors are nats-server's texts for bad options.
    pub fn connz(&self, opts: &ConnzOptions) -> Result<Connz, String> {
        self.shared.connz(opts)
    }

    /// `/subsz`: subscription counters and, on request, the subscriptions.
    pub fn subsz(&self, opts: &SubszOptions) -> Subsz {
        self.shared.subsz(opts)
    }

    /// `/routez`: the registered routes and their counters.
    pub fn routez(&self) -> Routez {
        self.shared.routez(false)
    }

    /// `/routez?subs=1`: the routes with the interest each brought.
    pub fn routez_with_subs(&self) -> Routez {
        self.shared.routez(true)
    }

    /// The bound route listener, once started with a `cluster` block.
    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        *lock(&self.shared.cluster.addr)
    }

    /// `/gatewayz` (no gateways in this build).
    pub fn gatewayz(&self) -> Gatewayz {
        self.shared.gatewayz()
    }

    /// `/leafz`.
    pub fn leafz(&self) -> Leafz {
        self.shared.leafz()
    }

    /// `/accountz`: account names, or one account in detail.
    pub fn accountz(&self, opts: &AccountzOptions) -> Result<Accountz, String> {
        self.shared.accountz(opts)
    }

    /// `/accstatz`: per-account counters.
    pub fn account_statz(&self, opts: &AccountStatzOptions) -> AccountStatz {
        self.shared.account_statz(opts)
    }

    /// `/jsz`: JetStream usage (`disabled` when JetStream is off).
    pub fn jsz(&self) -> Jsz {
        self.shared.jsz()
    }

    /// Turns JetStream on with `cfg` (Go: `EnableJetStream`): every JetStream account gets its
    /// API, and streams kept in the store are recovered. Fails when it is already on.
    pub fn enable_jetstream(
        &self,
        cfg: natsd_core::options::JetStreamConfig,
    ) -> Result<(), ServerError> {
        if self.jetstream_enabled() {
            return Err(ServerError::Config("jetstream already enabled".to_owned()));
        }
        self.set_jetstream_option(Some(cfg))?;
        let r = crate::jetstream::start(&self.shared, T::INLINE_WORKERS);
        if r.is_err() {
            self.set_jetstream_option(None)?;
        }
        r.map_err(ServerError::Config)
    }

    /// Turns JetStream off (Go: `DisableJetStream`): what was queued is committed, then the
    /// API stops answering (requests get no responders). The stores stay on disk.
    pub fn disable_jetstream(&self) -> Result<(), ServerError> {
        crate::jetstream::stop(&self.shared);
        self.set_jetstream_option(None)
    }

    /// Is JetStream on?
    pub fn jetstream_enabled(&self) -> bool {
        self.shared.js.enabled.load(Ordering::Acquire)
    }

    /// Puts JetStream's stores on the factories `f` makes (one per account, by name) from the
    /// next time JetStream starts: the simulation's fault-injecting disks, for instance.
    pub fn set_store_factory(&self, f: crate::jetstream::StoreFactoryFn) {
        self.shared.js.set_factory(f);
    }

    /// Damage found in the stores when JetStream last started them (never silent: a damaged
    /// record is skipped, not served).
    pub fn jetstream_damage(&self) -> Vec<crate::jetstream::StreamDamage> {
        self.shared.js.damage()
    }

    /// Records the JetStream config in the options (for INFO and monitoring).
    fn set_jetstream_option(
        &self,
        cfg: Option<natsd_core::options::JetStreamConfig>,
    ) -> Result<(), ServerError> {
        let mut opts = (*self.shared.opts()).clone();
        opts.jetstream = cfg;
        let port = self
            .client_addr()
            .map_or(opts.port.unwrap_or(0), |a| a.port());
        let mut cc = client_config(
            &opts,
            &self.shared.server_id,
            &self.shared.server_name,
            port,
        )?;
        // Keep what the cluster added to INFO.
        let old = self.shared.client_config();
        cc.info.connect_urls.clone_from(&old.info.connect_urls);
        cc.info.cluster.clone_from(&old.info.cluster);
        *self.shared.opts.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(opts);
        *self
            .shared
            .client_cfg
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(cc);
        Ok(())
    }

    /// `/healthz`.
    pub fn healthz(&self) -> HealthStatus {
        self.shared.healthz()
    }

    /// `/raftz` (no Raft groups in this build).
    pub fn raftz(&self) -> Raftz {
        Raftz::new()
    }

    /// Recently closed connections, oldest first.
    pub fn closed_clients(&self) -> Vec<ClosedClient> {
        lock(&self.shared.closed).iter().cloned().collect()
    }

    /// Stops accepting and closes every connection. Idempotent.
    pub fn shutdown(&self) {
        if !self.running.swap(false, Ordering::AcqRel) {
            return;
        }
        crate::sys::events::shutdown(&self.shared);
        crate::jetstream::stop(&self.shared);
        let _ = self.shutdown_tx.send(true);
        self.shared.cluster.shutdown();
        self.shared.leafs.shutdown();
        let clients: Vec<_> = lock(&self.shared.clients)
            .values()
            .map(|e| Arc::clone(&e.shared))
            .collect();
        for c in clients {
            c.close(CloseReason::ServerShutdown);
        }
        tracing::info!("Server Exiting..");
    }

    /// Waits until [`Server::shutdown`] has been called and the connections are gone.
    pub async fn wait_for_shutdown(&self) {
        let mut rx = self.shutdown_tx.subscribe();
        let _ = rx.wait_for(|s| *s).await;
        let tasks: Vec<_> = lock(&self.tasks).drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
        // Connections finish on their own once closed; wait for them to unregister, bounded.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.shared.num_clients() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl<T: Transport> Drop for Server<T> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept<T: Transport>(
    shared: &Arc<Shared>,
    tls: Option<Arc<TlsSetup>>,
    stream: T::Stream,
    peer: SocketAddr,
) {
    let id = shared.next_cid.fetch_add(1, Ordering::Relaxed);
    // Before the connection's INFO is built (see set_client_identity).
    lock(&shared.info_gen_at_accept).insert(id, shared.info_gen.load(Ordering::Acquire));
    let mut rng = SplitMix64::new(shared.next_seed());
    let rejected = (shared.num_clients() >= shared.opts().max_connections as usize)
        .then_some(CloseReason::MaxConnectionsExceeded);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        match tls {
            None => {
                let conn = client::new_conn(&shared, peer, id, &mut rng);
                client::run(Arc::clone(&shared), stream, peer, conn, rng, rejected).await;
            }
            // Boxed: the TLS session makes this branch's future several KiB, and unboxed
            // every plain connection's task would be that size too.
            Some(tls) => match Box::pin(tls.accept(&shared, stream, peer, id, &mut rng)).await {
                Ok((tls_stream, conn)) => {
                    Box::pin(client::run(
                        Arc::clone(&shared),
                        tls_stream,
                        peer,
                        conn,
                        rng,
                        rejected,
                    ))
                    .await;
                }
                Err(e) => tracing::debug!(cid = id, %peer, "TLS handshake error: {e}"),
            },
        }
        // A connection that never registered (failed TLS handshake) leaves no record.
        lock(&shared.info_gen_at_accept).remove(&id);
    });
}
