//! Clustering: the route listener, route dialing, and what the server keeps about its routes.
//!
//! Each route connection runs the sans-IO [`RouteConn`] machine in a driver ([`conn`]) generic
//! over the [`Transport`](crate::transport::Transport), like the client driver, so the
//! simulation runs this very code. The machine sits behind a mutex in a [`RouteHandle`]: its
//! driver feeds it input and drains its output, and publishers on other tasks append `RMSG`s
//! through it (the [`RouteSink`] of the publish path) and wake its writer.
//!
//! What spans routes lives in [`Cluster`]: the route table (connection id → route, peer server
//! id → connection id), the local interest every route is told about (`RS+`/`RS-` on 0↔1
//! transitions; queue groups with their member count as weight), the remote interest entered
//! into the account sublists as [`SubTarget::Route`](natsd_core::router::SubTarget::Route) subscriptions, and the client URLs gossiped
//! by the peers.

pub(crate) mod conn;
pub(crate) mod dial;
pub(crate) mod interest;
mod register;
pub(crate) mod tls;
mod url;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use natsd_core::outbound::{StallGate, READ_AHEAD_BYTES};
use natsd_core::proto::route::RouteInfo;
use natsd_core::route::{RouteCloseReason, RouteConfig, RouteConn};
use natsd_core::router::{Message, RouteSink, SubRef};
use tokio::sync::Notify;

use crate::server::lock;
pub(crate) use url::RouteUrl;

/// Local interest: (account, subject, queue) → number of local subscriptions.
type InterestKey = (String, Bytes, Option<Bytes>);

/// Adds to a counter whose writers all hold one lock (readers may be anywhere).
fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

/// One route connection as the rest of the server sees it.
#[derive(Debug)]
pub(crate) struct RouteHandle {
    pub(crate) id: u64,
    pub(crate) conn: Mutex<RouteConn>,
    write: Notify,
    close: Notify,
    flush: AtomicBool,
    pub(crate) in_msgs: AtomicU64,
    pub(crate) in_bytes: AtomicU64,
    pub(crate) out_msgs: AtomicU64,
    pub(crate) out_bytes: AtomicU64,
    /// Wall-clock time of the last read, nanoseconds since the Unix epoch (0: none yet), for
    /// `/routez` `last_activity`.
    pub(crate) last_activity: AtomicU64,
    /// The machine's stall gate, readable without the machine's lock.
    gate: Arc<StallGate>,
    /// The writer has more than `READ_AHEAD_BYTES` not yet taken (set by each send).
    behind: AtomicBool,
}

impl RouteHandle {
    fn new(conn: RouteConn) -> Arc<Self> {
        Arc::new(Self {
            id: conn.id(),
            gate: Arc::clone(conn.stall_gate()),
            conn: Mutex::new(conn),
            write: Notify::new(),
            close: Notify::new(),
            flush: AtomicBool::new(false),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            out_msgs: AtomicU64::new(0),
            out_bytes: AtomicU64::new(0),
            last_activity: AtomicU64::new(0),
            behind: AtomicBool::new(false),
        })
    }

    /// Runs `f` on the machine, then wakes the writer (and the reader, if `f` closed it).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut RouteConn) -> R) -> R {
        crate::link::run_on(&self.conn, &self.write, &self.close, f)
    }

    /// Closes the route from outside (duplicate, name conflict, shutdown).
    pub(crate) fn close(&self, reason: RouteCloseReason) {
        self.with(|c| c.close(reason));
    }
}

impl crate::link::LinkIo for RouteHandle {
    fn link_id(&self) -> u64 {
        self.id
    }

    fn take_output(&self, out: &mut std::collections::VecDeque<Bytes>) -> bool {
        crate::link::take_output(&self.conn, out)
    }

    fn write_wakeup(&self) -> &Notify {
        &self.write
    }

    fn write_failed(&self, why: crate::link::WriteFailure) {
        self.close(why.close_reason());
    }
}

impl RouteSink for RouteHandle {
    fn route_id(&self) -> u64 {
        self.id
    }

    fn send_msg(&self, account: &str, m: &Message<'_>, queues: &[&[u8]]) -> bool {
        // No copy of our own: a small payload is copied once into the route's buffer, a large
        // one queued by reference when the publisher holds it refcounted.
        let shared = m.shared.filter(|b| b.len() == m.payload.len());
        let mut c = lock(&self.conn);
        if c.is_closed() {
            return false;
        }
        c.send_msg_from(
            account.as_bytes(),
            m.subject,
            m.reply,
            queues,
            m.headers.map(|h| (h, None)),
            (m.payload, shared),
        );
        let closed = c.is_closed();
        let behind = c.pending_bytes() as u64 > READ_AHEAD_BYTES;
        // Every send holds the machine's lock: the counters have one writer at a time, so
        // plain adds do instead of two locked read-modify-writes per routed message.
        add(&self.out_msgs, 1);
        add(
            &self.out_bytes,
            (m.payload.len() + m.headers.map_or(0, <[u8]>::len)) as u64,
        );
        drop(c);
        // Written only when it changes: every publisher feeding this route reads it.
        if self.behind.load(Ordering::Relaxed) != behind {
            self.behind.store(behind, Ordering::Relaxed);
        }
        if closed {
            // Slow consumer: the machine closed itself; its reader must notice.
            self.close.notify_one();
        }
        true
    }

    fn flush_flag(&self) -> &AtomicBool {
        &self.flush
    }

    fn wake(&self) {
        self.write.notify_one();
    }

    fn stall_gate(&self) -> Option<&Arc<StallGate>> {
        Some(&self.gate)
    }

    fn writer_behind(&self) -> bool {
        self.behind.load(Ordering::Relaxed)
    }
}

/// What the server keeps about one live route connection.
#[derive(Debug, Clone)]
pub(crate) struct RouteEntry {
    pub(crate) handle: Arc<RouteHandle>,
    /// The peer's first INFO, once it arrived and the route was registered.
    pub(crate) info: Option<RouteInfo>,
    /// We dialed (possibly taken over from a duplicate we dialed).
    pub(crate) solicited: bool,
    /// The URL to redial when this route closes (a solicited route).
    pub(crate) url: Option<RouteUrl>,
    /// Whether `url` is a configured route (redialed forever) or learned by gossip.
    pub(crate) configured: bool,
    pub(crate) peer: SocketAddr,
    pub(crate) start: SystemTime,
    /// The account we dialed this route for (a pinned route).
    pub(crate) account: Option<String>,
    /// What the route carries, once registered.
    pub(crate) slot: Option<Slot>,
}

/// Which accounts a registered route carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Every account (a peer without pooling).
    Single,
    /// The accounts whose name hashes to this pool index (except pinned ones).
    Pool(usize),
    /// One account.
    Pinned(String),
}

/// The registered connections to one peer.
#[derive(Debug, Default)]
pub(crate) struct PeerRoutes {
    /// Pool slots (empty for a peer without pooling).
    pub(crate) slots: Vec<Option<u64>>,
    pub(crate) pinned: BTreeMap<String, u64>,
}

/// Route-table and interest state, under one lock.
#[derive(Debug, Default)]
pub(crate) struct ClusterState {
    pub(crate) routes: BTreeMap<u64, RouteEntry>,
    /// Peer server id → connection id of one of its registered routes (the only one without
    /// pooling).
    pub(crate) by_peer: BTreeMap<String, u64>,
    /// Peer server id → its pooled and pinned connections.
    pub(crate) peers: BTreeMap<String, PeerRoutes>,
    /// `host:port` of gossiped routes a dialer is working on.
    dialing: BTreeSet<String>,
    /// Peers gossiped to us while we still held a route to them (possibly a stale one of an
    /// earlier incarnation that only PING stale detection will close): dialed once their last
    /// route is gone, so that the gossip is not lost.
    deferred: BTreeMap<String, RouteUrl>,
    pub(crate) interest: BTreeMap<InterestKey, u32>,
    /// Remote interest per route: (route id, account, subject, queue) → its subscription.
    pub(crate) remote: HashMap<(u64, InterestKey), SubRef>,
    /// The cluster name in force (it may change while a generated one gives way).
    pub(crate) name: String,
    pub(crate) dynamic: bool,
}

/// The cluster side of the server.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) enabled: bool,
    pub(crate) cfg: RwLock<Option<Arc<RouteConfig>>>,
    pub(crate) state: Mutex<ClusterState>,
    /// The bound route listener.
    pub(crate) addr: Mutex<Option<SocketAddr>>,
    pub(crate) shutting_down: AtomicBool,
    /// `cluster.permissions` as a checker: import is "publish" (the interest we send), export
    /// is "subscribe" (the interest we accept). Go: route.go setRoutePermissions.
    pub(crate) perms: OnceLock<natsd_core::auth::PermissionChecker>,
    /// Starts a dialer on the server's transport (set when the listener starts).
    pub(crate) dialer: OnceLock<fn(Arc<crate::server::Shared>, conn::Dialed)>,
    /// `cluster.tls`: every route is TLS from its first byte.
    pub(crate) tls: OnceLock<Arc<tls::RouteTls>>,
    /// `cluster.pool_size` in force (0: one route per peer) and the pinned accounts.
    pub(crate) pool: OnceLock<(usize, Vec<String>)>,
    /// Routes closed as slow consumers (also counted in the server's total).
    pub(crate) slow_consumers: AtomicU64,
}

impl Cluster {
    pub(crate) fn new(enabled: bool, name: String, dynamic: bool) -> Self {
        Self {
            enabled,
            cfg: RwLock::new(None),
            state: Mutex::new(ClusterState {
                name,
                dynamic,
                ..ClusterState::default()
            }),
            addr: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
            slow_consumers: AtomicU64::new(0),
            perms: OnceLock::new(),
            dialer: OnceLock::new(),
            tls: OnceLock::new(),
            pool: OnceLock::new(),
        }
    }

    pub(crate) fn config(&self) -> Option<Arc<RouteConfig>> {
        self.cfg.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn name(&self) -> String {
        lock(&self.state).name.clone()
    }

    /// Registered route connections (the peer's INFO arrived); with pooling, several per peer,
    /// as nats-server 2.10 counts them.
    pub(crate) fn num_routes(&self) -> usize {
        lock(&self.state)
            .routes
            .values()
            .filter(|e| e.info.is_some())
            .count()
    }

    /// Pool size in force (0: no pooling) and pinned accounts.
    pub(crate) fn pool(&self) -> (usize, &[String]) {
        self.pool
            .get()
            .map_or((0, &[][..]), |(n, p)| (*n, p.as_slice()))
    }

    /// Whether a registered route in `slot` carries `account`'s traffic.
    pub(crate) fn carries(&self, slot: Option<&Slot>, account: &str) -> bool {
        let (size, pinned) = self.pool();
        match slot {
            None => false,
            Some(Slot::Single) => true,
            Some(Slot::Pinned(a)) => a == account,
            Some(Slot::Pool(i)) => {
                !pinned.iter().any(|p| p == account)
                    && *i == natsd_core::route::pool::pool_index(size, account.as_bytes())
            }
        }
    }

    /// Every registered route, by connection id.
    pub(crate) fn routes_snapshot(&self) -> Vec<RouteEntry> {
        let st = lock(&self.state);
        st.routes
            .values()
            .filter(|e| e.info.is_some())
            .cloned()
            .collect()
    }

    /// Remote interest of one route (account, subject, queue, weight), sorted.
    pub(crate) fn route_subs(&self, id: u64) -> Vec<(String, Bytes, Option<Bytes>)> {
        let st = lock(&self.state);
        let mut v: Vec<_> = st
            .remote
            .keys()
            .filter(|(rid, _)| *rid == id)
            .map(|(_, k)| k.clone())
            .collect();
        v.sort();
        v
    }

    /// Closes every route (server shutdown).
    pub(crate) fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let handles: Vec<_> = lock(&self.state)
            .routes
            .values()
            .map(|e| Arc::clone(&e.handle))
            .collect();
        for h in handles {
            h.close(RouteCloseReason::ServerShutdown);
        }
    }

    /// Client URLs gossiped by the registered peers, sorted and deduplicated.
    pub(crate) fn peer_client_urls(&self) -> Vec<String> {
        let st = lock(&self.state);
        let set: BTreeSet<String> = st
            .routes
            .values()
            .filter_map(|e| e.info.as_ref())
            .flat_map(|i| i.connect_urls.iter().cloned())
            .collect();
        set.into_iter().collect()
    }

    /// Leaf URLs gossiped by the registered peers (route INFO `leafnode_urls`), sorted and
    /// deduplicated.
    pub(crate) fn peer_leaf_urls(&self) -> Vec<String> {
        let st = lock(&self.state);
        let set: BTreeSet<String> = st
            .routes
            .values()
            .filter_map(|e| e.info.as_ref())
            .flat_map(|i| i.leafnode_urls.iter().cloned())
            .collect();
        set.into_iter().collect()
    }
}

/// A generated cluster name: 22 characters like a NUID (Go: server.go uses nuid.Next()).
pub(crate) fn generated_name(seed: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = natsd_core::rng::SplitMix64::new(seed);
    (0..22)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
        .collect()
}
