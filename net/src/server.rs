//! The server: shared state, the `Server` handle and its lifecycle. Startup and the accept
//! loop, the connection registry, counters, the client INFO updates and the embedding API's
//! monitoring views live in the submodules.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime};

use natsd_core::account::Account;
use natsd_core::conn::{ClientConfig, CloseReason};
use natsd_core::options::Options;
use natsd_core::rng::SplitMix64;
use tokio::sync::watch;

mod api;
mod counters;
mod info;
mod lifecycle;
mod registry;
mod setup;
mod startup;
mod urls;

use setup::{build_accounts, client_config};

pub(crate) use counters::{unix_nanos, AccountTotals};
pub(crate) use registry::AuthRecord;
pub use registry::{ClientEntry, ClosedClient};
pub(crate) use startup::bind_listener;
pub use startup::os_seed;

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
    /// Gateways to the other clusters of a super-cluster.
    pub(crate) gateways: Arc<crate::gateway::Gateways>,
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

    pub(crate) fn next_seed(&self) -> u64 {
        lock(&self.rng).next_u64()
    }

    pub(crate) fn wall_clock(&self) -> SystemTime {
        (self.wall_clock)()
    }
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

impl<T: Transport> Server<T> {
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
        self.shared.gateways.shutdown();
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
