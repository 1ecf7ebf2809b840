//! Clustered JetStream: the meta group over the cluster's routes (Go:
//! server/jetstream_cluster.go).
//!
//! With both `cluster {}` and `jetstream {}` configured, every server opens a Raft hub
//! ([`natsd_raft::RaftHub`]) whose frames travel as internal requests in the system account
//! (see [`bus`]), and the meta group `_meta_`, whose machine is core's `MetaState`. Its files
//! live under `<store_dir>/jetstream/_raft/_meta_/`. A server's Raft node id is a stable
//! `u64` from its `server_name` (so clustered JetStream requires one, as nats-server does);
//! its peer id (what `/jsz` shows) is nats-server's eight-character hash of that name.
//!
//! # Forming the meta group, exactly once
//!
//! Every clustered JetStream server publishes a heartbeat every [`TICK`] with its node id,
//! the set of servers it has heard from (itself included; the set only grows) and whether it
//! is in a meta group already (it initialised one, or holds a membership). A server
//! **initialises** the group — with every server of its set as a voter — only when all of
//! this holds:
//!
//! 1. it holds no membership and never initialised one;
//! 2. its set has at least two servers and has not grown for [`SETTLE`];
//! 3. it has the lowest node id of its set;
//! 4. every other server of the set last reported exactly the same set, and not being in a
//!    group; and no server it ever heard from reported being in one.
//!
//! Two servers cannot both initialise groups that share a member: sets only grow, so two
//! agreed sets that meet are nested; the smaller one's initialiser is in the larger set and
//! every heartbeat it sent reporting the larger set came after its initialisation, so it said
//! "in a group", and rule 4 stopped the larger set's initialiser. (Two servers partitioned
//! from each other for the whole first start could form two disjoint groups; they never
//! merge. Start a cluster with its routes up.)
//!
//! A server that comes later (or missed the agreement) finds members reporting a group and
//! waits: the meta leader adds every server it hears from that is not a member, as a learner
//! first (it catches up) and then as a voter.
//!
//! A server routed to a nats-server running JetStream forms, joins and grows no meta group
//! and says why (see [`mixed`]).
//!
//! # Streams
//!
//! In clustered mode (and with the store not injected) every stream is a clustered asset,
//! R1 included, as in nats-server: the account's `$JS.API.>` is served by [`api`] (the meta
//! leader or the stream's leader answers, see its docs), a create becomes a meta entry, and
//! the meta group's effects open each stream's own Raft group on its peers ([`replicas`]),
//! whose leader alone takes publishes and acknowledges them once committed; its consumers
//! hand out only messages whose entry committed. A `storage: memory` stream keeps its messages
//! in memory on every replica, its Raft log on disk (see [`repair`] for a restart). A replica
//! that falls out of step with its group (a store that lacks, differs or is damaged) is
//! rebuilt from a peer ([`repair`]).
//! Scaling a stream by STREAM.UPDATE, STREAM.PEER.REMOVE and SERVER.REMOVE change its
//! group's members through the group's leader ([`members`]). The single-server JetStream of each
//! account keeps running beside it for what was stored before clustering
//! (its streams are recovered and still take publishes) and for acks and snapshots, but no
//! longer hears the API or the acks.
//!
//! A STREAM.UPDATE with another `placement` moves the stream: new peers join, catch up,
//! and the old ones leave ([`moves`]).
//!
//! Mirrors and sources of clustered streams are copied by the sourcing stream's leader
//! through its own group, from a replica of the origin ([`sourcing`]); an `external` one
//! (another domain, or another account) through a consumer of the origin over the network,
//! as nats-server does. Placement sees each server's `server_tags`, JetStream limits and
//! usage, which its heartbeat carries ([`usage`]).
//!
//! STREAM.LIST, CONSUMER.LIST and `$JS.API.INFO` show the streams' real state whichever
//! server is asked: the meta leader gathers it from each stream's leader ([`gather`]).
//! Consumers live in their stream's group: their leader is the stream's leader, and
//! CONSUMER.LEADER.STEPDOWN steps the stream's group down (see [`consumers`]).
//!
//! A stream's snapshot is sent by its leader from its replica ([`snapshot`]); a restore
//! creates the stream through the meta group and its leader loads the upload into the
//! stream's group, so every replica gets it ([`restore`]).
//!
//! # Not yet
//!
//! * Pause/reset/unpin of consumers on clustered streams (see [`consumers`]).
//! * A restore's upload counted against the account's storage as it arrives (only the
//!   stream's config is checked, as for a create).
//! * Cancelling a move (`ACCOUNT.STREAM.CANCEL_MOVE`), `ACCOUNT.STREAM.MOVE`, and a move to
//!   another cluster (natsd forms one).
//! * Mirrors and sources of clustered streams through a durable consumer: not copied.

mod api;
mod bootstrap;
mod bus;
mod consumers;
mod counters;
mod effects;
mod gather;
mod group_commit;
mod machine;
mod members;
mod mixed;
mod moves;
mod repair;
mod replicas;
mod restore;
mod snapshot;
mod sourcing;
mod stepdown;
mod usage;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use natsd_core::jetstream::api::{err, ApiError};
use natsd_core::jetstream::cluster::placement::{stepdown_target, Cluster, ServerInfo};
use natsd_core::jetstream::cluster::shapes::{
    ClusterOp, LeaderStepdownRequest, MetaClusterInfo, PeerInfo,
};
use natsd_core::rng::SplitMix64;
use natsd_core::router::{InternalSink, SubRef, SubTarget, Subscription};
use natsd_raft::openraft::{ChangeMembers, Config, RaftMetrics, ServerState, SnapshotPolicy};
use natsd_raft::{GroupConfig, NodeId, NodeInfo, RaftGroup, RaftHub, SharedDisk};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use self::bus::{Bus, Inbound, RouteTransport};
use super::fsdisk::FsDisk;
use crate::server::{lock, Shared};

/// The meta group's name (Go's too).
pub(crate) const META_GROUP: &str = "_meta_";
/// How often heartbeats go out and the meta group's membership is looked after.
const TICK: Duration = Duration::from_millis(250);
/// How often stream leaders run their consumers' timers and look for consumer changes.
const LEADER_TICK: Duration = Duration::from_millis(100);
/// How long a server's set of known servers must stay unchanged before it may initialise.
const SETTLE: Duration = Duration::from_secs(1);
/// A server not heard from for this long counts as offline.
const OFFLINE_AFTER: Duration = Duration::from_secs(3);

/// The error nats-server gives for clustered JetStream without `server_name`.
pub(crate) const NEEDS_SERVER_NAME: &str = "jetstream cluster requires `server_name` to be set";
/// The error nats-server gives for clustered JetStream without `cluster.name`.
pub(crate) const NEEDS_CLUSTER_NAME: &str = "jetstream cluster requires `cluster.name` to be set";

/// A server's Raft node id: the first eight bytes of the SHA-256 of its name, never 0.
pub(crate) fn node_id(server_name: &str) -> NodeId {
    let d = Sha256::digest(server_name.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b).max(1)
}

/// A server's peer id as nats-server shows it: eight base-62 characters from the SHA-256 of
/// its name (Go: getHash).
pub(crate) fn peer_id(server_name: &str) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    Sha256::digest(server_name.as_bytes())
        .iter()
        .take(8)
        .map(|b| DIGITS[usize::from(b % 62)] as char)
        .collect()
}

/// What a heartbeat says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Heartbeat {
    node: NodeId,
    name: String,
    server_id: String,
    seen: BTreeSet<NodeId>,
    in_group: bool,
    /// It refuses a meta group: nats-server with JetStream is routed to it (see [`mixed`]).
    #[serde(default)]
    refusing: bool,
    /// The stream groups whose replica here is being repaired (see [`repair`]): their
    /// leaders report it not current.
    #[serde(default)]
    repairing: Vec<String>,
    /// Its `server_tags` and JetStream limits, for placement (see [`Placed`]).
    #[serde(default, flatten)]
    placed: Placed,
    /// The stream groups it leads (so the meta leader knows which have none, see [`api`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    leading: Vec<String>,
    /// The JetStream API errors it answered, by account (see [`counters`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    api_errors: BTreeMap<String, u64>,
    /// The moving streams it leads whose new peers caught up (see [`moves`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    moves_ready: Vec<moves::MoveReady>,
}

/// What placement needs to know of a server (Go: the `ServerInfo` of its statsz: `tags`,
/// `jetstream.config.max_storage` / `max_memory`, and its `jetstream.stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Placed {
    /// `server_tags`, lowercased.
    #[serde(default)]
    tags: BTreeSet<String>,
    /// `jetstream { max_file_store }`; `None`: unlimited.
    #[serde(default)]
    max_store: Option<u64>,
    /// `jetstream { max_memory_store }`; `None`: unlimited.
    #[serde(default)]
    max_memory: Option<u64>,
    /// What its replicas use (see [`usage`]).
    #[serde(default)]
    usage: usage::Usage,
}

impl Placed {
    /// This server's, from its current options.
    fn of(srv: &Shared) -> Self {
        let opts = srv.opts();
        let js = opts.jetstream.as_ref();
        Self {
            tags: opts.server_tags.iter().cloned().collect(),
            max_store: js.and_then(|j| j.max_file_store),
            max_memory: js.and_then(|j| j.max_memory_store),
            usage: usage::Usage::default(),
        }
    }

    /// Fills the placement fields of `info`.
    fn fill(&self, info: &mut ServerInfo) {
        info.tags.clone_from(&self.tags);
        info.max_store = self.max_store.unwrap_or(u64::MAX);
        info.max_memory = self.max_memory.unwrap_or(u64::MAX);
        self.usage.fill(info);
    }
}

/// The last heartbeat of another server.
#[derive(Debug, Clone)]
struct Peer {
    hb: Heartbeat,
    last: Instant,
}

/// The clustered JetStream of this server.
pub(crate) struct JsCluster {
    node: NodeId,
    name: String,
    server_id: String,
    cluster_name: String,
    hub: Arc<RaftHub>,
    meta: RaftGroup,
    bus: Arc<Bus>,
    peers: Mutex<BTreeMap<NodeId, Peer>>,
    /// When the set of known servers last grew.
    grown: Mutex<Instant>,
    /// This server initialised the meta group (set before the heartbeat that says so).
    initialized: AtomicBool,
    /// A learner is being added.
    joining: Arc<AtomicBool>,
    /// A removed server is being taken out (see `members`).
    removing: AtomicBool,
    /// A stream's move is being ended (see [`moves`]).
    moving: AtomicBool,
    stop: watch::Sender<bool>,
    subs: Mutex<Vec<(Arc<natsd_core::account::Account>, SubRef)>>,
    mixed: mixed::Guard,
    srv: Weak<Shared>,
    /// What the meta group agreed on (its machine applies to it).
    meta_state: machine::SharedMeta,
    /// The stream replicas this server holds.
    streams: replicas::Groups,
    /// `<store_dir>/jetstream/_raft`.
    raft_root: PathBuf,
    /// Placement's seeded generator.
    rng: Mutex<SplitMix64>,
    /// The stream groups whose sourcing task runs (see [`sourcing`]).
    sourcing: Mutex<BTreeSet<String>>,
    /// When a heartbeat (or this server) last said a stream group had a leader, by group.
    led: Mutex<BTreeMap<String, Instant>>,
    /// When the clustered side started.
    started: Instant,
    /// Idle consumers this server asked the meta leader to remove, and when.
    reaping: Mutex<BTreeMap<(String, String, String), Instant>>,
    /// This server's JetStream API counts (see [`counters`]).
    api: counters::ApiCounters,
}

impl std::fmt::Debug for JsCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsCluster")
            .field("node", &self.node)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Checks what clustered JetStream needs from the options (Go: validateOptions).
pub(crate) fn check(srv: &Shared) -> Result<bool, String> {
    let opts = srv.opts();
    let (Some(_), Some(c)) = (&opts.jetstream, &opts.cluster) else {
        return Ok(false);
    };
    if opts.server_name.is_none() {
        return Err(NEEDS_SERVER_NAME.to_owned());
    }
    if c.name.is_none() {
        return Err(NEEDS_CLUSTER_NAME.to_owned());
    }
    Ok(true)
}

/// Starts the clustered side (the caller checked [`check`]): subscriptions now, the meta
/// group on a task. `root` is `<store_dir>/jetstream`.
pub(crate) fn start(srv: &Arc<Shared>, root: &Path) -> Result<(), String> {
    let sys = srv
        .lookup_account(&srv.system_account_name())
        .ok_or("clustered JetStream needs the system account")?;
    let name = srv.server_name.clone();
    let node = node_id(&name);
    let bus = Bus::new(node, &sys, srv.next_seed());
    let hub = RaftHub::new(node, Arc::new(RouteTransport(Arc::clone(&bus))));
    let dir = root.join("_raft");
    std::fs::create_dir_all(dir.join(META_GROUP))
        .map_err(|e| format!("could not create storage directory {dir:?}: {e}"))?;
    let disk = SharedDisk::new(FsDisk::new(dir.clone(), false));
    let (fx_tx, mut fx_rx) = mpsc::unbounded_channel();
    let machine = machine::MetaMachine::new(&peer_id(&name), fx_tx);
    let meta_state = machine.state();
    let (api_tx, mut api_rx) = api::channel();
    let seed = srv.next_seed();
    let (sink, inbound) = bus::sink();
    let srv2 = Arc::clone(srv);
    let cluster_name = srv.cluster.name();
    tokio::spawn(async move {
        let group = match hub
            .open_group(
                META_GROUP,
                group_config(),
                disk,
                META_GROUP,
                Box::new(machine),
            )
            .await
        {
            Ok(g) => g,
            Err(e) => {
                tracing::error!("JetStream cluster: cannot open the meta group: {e}");
                return;
            }
        };
        if let Some(why) = group.damage_reason() {
            tracing::error!("JetStream cluster: meta replica damaged, repairing from peers: {why}");
        }
        let (stop, stopped) = watch::channel(false);
        let c = Arc::new(JsCluster {
            node,
            name: name.clone(),
            server_id: srv2.server_id.clone(),
            cluster_name,
            hub,
            meta: group,
            bus,
            peers: Mutex::new(BTreeMap::new()),
            grown: Mutex::new(Instant::now()),
            initialized: AtomicBool::new(false),
            joining: Arc::new(AtomicBool::new(false)),
            removing: AtomicBool::new(false),
            moving: AtomicBool::new(false),
            stop,
            subs: Mutex::new(Vec::new()),
            mixed: mixed::Guard::new(&srv2),
            srv: Arc::downgrade(&srv2),
            meta_state,
            streams: Mutex::new(BTreeMap::new()),
            raft_root: dir,
            rng: Mutex::new(SplitMix64::new(seed)),
            sourcing: Mutex::new(BTreeSet::new()),
            reaping: Mutex::new(BTreeMap::new()),
            api: counters::ApiCounters::default(),
            led: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
        });
        c.subscribe(&srv2, &sys, &(sink as Arc<dyn InternalSink>));
        let opts = srv2.opts();
        for (account, _) in natsd_core::jetstream::limits::jetstream_accounts(&opts) {
            if let Some(acc) = srv2.lookup_account(&account) {
                c.subscribe_api(&acc, &api_tx);
            }
        }
        *lock(&srv2.js.cluster) = Some(Arc::clone(&c));
        tracing::info!(
            "JetStream cluster: server {name} is Raft node {node} (peer {})",
            peer_id(&name)
        );
        let c2 = Arc::clone(&c);
        tokio::spawn(async move {
            while let Some(fx) = fx_rx.recv().await {
                c2.effects(fx).await;
            }
        });
        let c3 = Arc::clone(&c);
        tokio::spawn(async move {
            while let Some(r) = api_rx.recv().await {
                c3.serve_api(r);
            }
        });
        let c4 = Arc::downgrade(&c);
        tokio::spawn(async move {
            let mut t = tokio::time::interval(LEADER_TICK);
            loop {
                t.tick().await;
                let Some(c) = c4.upgrade() else { return };
                if *c.stop.borrow() {
                    return;
                }
                c.tick_leaders();
                c.reconcile_members();
                c.tick_sourcing();
                c.reap_inactive();
            }
        });
        c.run(inbound, stopped).await;
    });
    Ok(())
}

/// Stops the clustered side: its subscriptions and Raft groups (their files stay).
pub(crate) fn stop(srv: &Shared) {
    let Some(c) = lock(&srv.js.cluster).take() else {
        return;
    };
    let _ = c.stop.send(true);
    c.stop_streams();
    for (acc, sub) in lock(&c.subs).drain(..) {
        if acc.sublist.remove(&sub.0.subject, None, &sub).is_ok() {
            tell_interest(srv, &acc.name, &sub.0.subject, false);
        }
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let hub = Arc::clone(&c.hub);
        rt.spawn(async move { hub.shutdown().await });
    }
}

/// Timing for groups whose RPCs cross routes: heartbeats a few times a second, elections
/// after a second or two of silence, snapshot chunks well under the default `max_payload`.
fn group_config() -> GroupConfig {
    GroupConfig {
        raft: Config {
            heartbeat_interval: 250,
            election_timeout_min: 1_000,
            election_timeout_max: 2_000,
            snapshot_max_chunk_size: 256 * 1024,
            max_payload_entries: 256,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(8_192),
            ..Config::default()
        },
        ..GroupConfig::default()
    }
}

impl JsCluster {
    fn subscribe(
        &self,
        srv: &Shared,
        sys: &Arc<natsd_core::account::Account>,
        sink: &Arc<dyn InternalSink>,
    ) {
        let subjects = [
            format!("{}{}", bus::RAFT_PREFIX, self.node),
            self.bus.reply_subjects(),
            bus::HEARTBEAT.to_owned(),
            format!("{}{}", bus::ELECT_PREFIX, self.node),
            format!("{}{}.*", bus::CATCHUP_PREFIX, self.node),
            bus::META_STEPDOWN.to_owned(),
            bus::SERVER_REMOVE.to_owned(),
            format!("{}{}", sourcing::READ_PREFIX, self.node),
            bus::INFO.to_owned(),
            bus::REAP.to_owned(),
        ];
        let mut subs = lock(&self.subs);
        for subject in subjects {
            let s = Bytes::from(subject);
            let target = SubTarget::Internal(Arc::clone(sink));
            let sub = SubRef(Arc::new(Subscription::new(s.clone(), None, target)));
            if sys.sublist.insert(&s, None, sub.clone()).is_ok() {
                // Routed like the system services' subscriptions, so peers send here.
                srv.cluster.local_interest(&sys.name, &s, None, true);
                subs.push((Arc::clone(sys), sub));
            }
        }
    }

    async fn run(
        self: Arc<Self>,
        mut inbound: mpsc::Receiver<Inbound>,
        mut stopped: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                m = inbound.recv() => match m {
                    Some(m) => self.dispatch(m),
                    None => return,
                },
                _ = tick.tick() => self.tick(),
                _ = stopped.changed() => return,
            }
        }
    }

    fn dispatch(self: &Arc<Self>, m: Inbound) {
        if m.subject.starts_with(bus::RAFT_PREFIX) {
            bus::serve_frame(&self.bus, &self.hub, m);
        } else if m.subject.starts_with(bus::REPLY_PREFIX) {
            self.bus.answered(&m.subject, m.payload);
        } else if m.subject == bus::HEARTBEAT {
            self.heard(&m.payload);
        } else if m.subject.starts_with(bus::ELECT_PREFIX) {
            // The payload names a stream's group; empty: the meta group.
            let group = if m.payload.is_empty() {
                Some(self.meta.clone())
            } else {
                self.hub.group(&String::from_utf8_lossy(&m.payload))
            };
            let Some(group) = group else { return };
            let raft = group.raft().clone();
            tokio::spawn(async move {
                let _ = raft.trigger().elect().await;
            });
        } else if m.subject.starts_with(bus::CATCHUP_PREFIX) {
            self.serve_catchup(m);
        } else if m.subject == bus::SERVER_REMOVE {
            self.server_remove(&m.subject, m.reply.as_deref(), &m.payload);
        } else if m.subject == bus::META_STEPDOWN {
            self.stepdown(m.reply.as_deref(), &m.payload);
        } else if m.subject.starts_with(sourcing::READ_PREFIX) {
            self.serve_source_read(&m);
        } else if m.subject == bus::INFO {
            self.answer_info(m.reply.as_deref(), &m.payload);
        } else if m.subject == bus::REAP {
            self.reap(&m.payload);
        }
    }

    fn heard(&self, payload: &[u8]) {
        let Ok(hb) = serde_json::from_slice::<Heartbeat>(payload) else {
            return;
        };
        if hb.node == self.node {
            return;
        }
        self.bus.learn(hb.node);
        self.saw_leaders(&hb.leading);
        let mut peers = lock(&self.peers);
        if !peers.contains_key(&hb.node) {
            *lock(&self.grown) = Instant::now();
        }
        peers.insert(
            hb.node,
            Peer {
                hb,
                last: Instant::now(),
            },
        );
    }

    /// The servers (this one included) whose replica of `group` is being repaired, as they
    /// last said. Takes the peers' lock: call it without holding that.
    pub(super) fn repairing_peers(&self, group: &str) -> BTreeSet<NodeId> {
        let mut out: BTreeSet<NodeId> = lock(&self.peers)
            .iter()
            .filter(|(_, p)| p.hb.repairing.iter().any(|g| g == group))
            .map(|(id, _)| *id)
            .collect();
        if self.repairing_groups().iter().any(|g| g == group) {
            out.insert(self.node);
        }
        out
    }

    /// Every node id this server has heard from, itself included.
    fn seen(&self) -> BTreeSet<NodeId> {
        let mut s: BTreeSet<NodeId> = lock(&self.peers).keys().copied().collect();
        s.insert(self.node);
        s
    }

    /// This server's placement facts, its usage included (default when it is shutting
    /// down).
    fn placed(&self) -> Placed {
        let Some(srv) = self.srv.upgrade() else {
            return Placed::default();
        };
        Placed {
            usage: self.usage(),
            ..Placed::of(&srv)
        }
    }

    fn in_group(&self) -> bool {
        if self.initialized.load(Ordering::Acquire) {
            return true;
        }
        let m = self
            .meta
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .clone();
        let any = m.membership().nodes().next().is_some();
        any
    }

    fn tick(self: &Arc<Self>) {
        let (refusing, may_form) = self.mixed_check();
        if may_form {
            self.maybe_initialize();
        }
        let hb = Heartbeat {
            node: self.node,
            name: self.name.clone(),
            server_id: self.server_id.clone(),
            seen: self.seen(),
            in_group: self.in_group(),
            refusing,
            repairing: self.repairing_groups(),
            placed: self.placed(),
            leading: self.leading_groups(),
            api_errors: self.api.errors(),
            moves_ready: self.moves_ready(),
        };
        self.saw_leaders(&hb.leading);
        if let Ok(b) = serde_json::to_vec(&hb) {
            self.bus.publish(bus::HEARTBEAT, None, Bytes::from(b));
        }
        if may_form {
            self.admit_newcomers();
            self.follow_removals();
            self.follow_moves();
        }
    }

    /// The bootstrap rule of the module docs.
    fn maybe_initialize(&self) {
        let settled = lock(&self.grown).elapsed() >= SETTLE;
        let in_group = self.in_group();
        let mut voters = BTreeMap::new();
        {
            let peers = lock(&self.peers);
            let reports: Vec<(NodeId, bootstrap::Report)> = peers
                .iter()
                .map(|(id, p)| {
                    let r = bootstrap::Report {
                        seen: p.hb.seen.clone(),
                        in_group: p.hb.in_group,
                    };
                    (*id, r)
                })
                .collect();
            let Some(set) = bootstrap::voters(
                self.node,
                in_group,
                settled,
                reports.iter().map(|(id, r)| (*id, r)),
            ) else {
                return;
            };
            for id in set {
                let info = match peers.get(&id) {
                    Some(p) => self.node_info(&p.hb.name, &p.hb.server_id),
                    None => self.node_info(&self.name, &self.server_id),
                };
                voters.insert(id, info);
            }
        }
        self.initialized.store(true, Ordering::Release);
        tracing::info!(
            "JetStream cluster: forming the meta group with {} servers",
            voters.len()
        );
        let raft = self.meta.raft().clone();
        tokio::spawn(async move {
            if let Err(e) = raft.initialize(voters).await {
                tracing::warn!("JetStream cluster: meta group initialisation: {e}");
            }
        });
    }

    fn node_info(&self, name: &str, server_id: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_owned(),
            server_id: server_id.to_owned(),
        }
    }

    /// On the meta leader: adds one server that is heard from but not a member, as a learner
    /// (waiting for it to catch up) and then as a voter.
    fn admit_newcomers(&self) {
        let m = self.meta.raft().metrics().borrow().clone();
        if m.current_leader != Some(self.node) || m.state != ServerState::Leader {
            return;
        }
        if self.joining.load(Ordering::Acquire) {
            return;
        }
        let membership = m.membership_config.membership().clone();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let candidate = {
            let meta = lock(&self.meta_state);
            let peers = lock(&self.peers);
            peers
                .iter()
                .filter(|(_, p)| !meta.is_removed(&peer_id(&p.hb.name)))
                .find(|(id, p)| !voters.contains(id) && p.last.elapsed() < OFFLINE_AFTER)
                .map(|(id, p)| (*id, self.node_info(&p.hb.name, &p.hb.server_id)))
        };
        let Some((id, info)) = candidate else {
            return;
        };
        self.joining.store(true, Ordering::Release);
        let joining = Arc::clone(&self.joining);
        let raft = self.meta.raft().clone();
        let is_learner = membership.get_node(&id).is_some();
        tokio::spawn(async move {
            tracing::info!("JetStream cluster: adding {} to the meta group", info.name);
            let added = is_learner || raft.add_learner(id, info, true).await.is_ok();
            if added {
                if let Err(e) = raft
                    .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                    .await
                {
                    tracing::warn!("JetStream cluster: making {id} a voter: {e}");
                }
            }
            joining.store(false, Ordering::Release);
        });
    }

    /// `$JS.API.META.LEADER.STEPDOWN`: only the leader answers (Go: jsLeaderStepDownRequest).
    /// It asks another live voter to campaign — one of the request's placement cluster when it
    /// names one (tags are refused), else the most caught-up — and that election ends this
    /// term.
    fn stepdown(&self, reply: Option<&str>, payload: &[u8]) {
        let m = self.meta.raft().metrics().borrow().clone();
        if m.current_leader != Some(self.node) {
            return;
        }
        let op = ClusterOp::MetaLeaderStepdown;
        let answer = match self.stepdown_target(&m, payload) {
            Ok(t) => {
                // Quiet while the target campaigns (see `stepdown::hand_over`).
                stepdown::hand_over(
                    &self.bus,
                    self.meta.raft().clone(),
                    Bytes::new(),
                    t,
                    self.node,
                );
                op.ok()
            }
            Err(e) => op.fail(e),
        };
        if let (Some(reply), Ok(body)) = (reply, serde_json::to_vec(&answer)) {
            self.bus.publish(reply, None, Bytes::from(body));
        }
    }

    fn stepdown_target(
        &self,
        m: &RaftMetrics<NodeId, NodeInfo>,
        payload: &[u8],
    ) -> Result<NodeId, ApiError> {
        let req: LeaderStepdownRequest = if payload.iter().all(u8::is_ascii_whitespace) {
            LeaderStepdownRequest::default()
        } else {
            serde_json::from_slice(payload).map_err(|e| err::invalid_json(&e.to_string()))?
        };
        // The live voters other than this server, with their names.
        let candidates: BTreeMap<NodeId, String> = {
            let peers = lock(&self.peers);
            m.membership_config
                .membership()
                .voter_ids()
                .filter(|id| *id != self.node)
                .filter_map(|id| {
                    let p = peers.get(&id)?;
                    (p.last.elapsed() < OFFLINE_AFTER).then(|| (id, p.hb.name.clone()))
                })
                .collect()
        };
        let view = Cluster {
            servers: candidates
                .values()
                .map(|name| ServerInfo {
                    name: name.clone(),
                    id: peer_id(name),
                    cluster: self.cluster_name.clone(),
                    ..ServerInfo::default()
                })
                .collect(),
            ..Cluster::default()
        };
        let mut rng = SplitMix64::new(m.current_term ^ self.node);
        let chosen = stepdown_target(
            &view,
            &peer_id(&self.name),
            req.placement.as_ref(),
            &mut rng,
        )?;
        let matched = m.replication.clone().unwrap_or_default();
        let target = match chosen {
            Some(pid) => candidates
                .iter()
                .find(|(_, name)| peer_id(name) == pid)
                .map(|(id, _)| *id),
            None => candidates
                .keys()
                .copied()
                .max_by_key(|id| (matched.get(id).copied().flatten().map(|l| l.index), *id)),
        };
        target.ok_or_else(|| err::cluster_no_peers("no replacement peer connected"))
    }

    /// `/jsz` `meta_cluster` and `/varz` `jetstream.meta` (Go: monitor.go Jsz): the leader
    /// lists the other members.
    pub(crate) fn meta_info(&self) -> MetaClusterInfo {
        let m = self.meta.raft().metrics().borrow().clone();
        let membership = m.membership_config.membership().clone();
        let name_of = |id: NodeId| membership.get_node(&id).map(|n| n.name.clone());
        let leader = m.current_leader.and_then(name_of).unwrap_or_default();
        let mut info = MetaClusterInfo {
            name: self.cluster_name.clone(),
            peer: if leader.is_empty() {
                String::new()
            } else {
                peer_id(&leader)
            },
            leader,
            replicas: Vec::new(),
            cluster_size: membership.voter_ids().count(),
            ..MetaClusterInfo::default()
        };
        self.mixed.annotate(&mut info);
        if m.state == ServerState::Leader {
            let last = m.last_log_index.unwrap_or(0);
            let matched = m.replication.clone().unwrap_or_default();
            let peers = lock(&self.peers);
            for id in membership.voter_ids().filter(|id| *id != self.node) {
                let Some(node) = membership.get_node(&id) else {
                    continue;
                };
                let got = matched.get(&id).copied().flatten().map_or(0, |l| l.index);
                let since = peers.get(&id).map(|p| p.last.elapsed());
                let offline = since.is_none_or(|d| d >= OFFLINE_AFTER);
                info.replicas.push(PeerInfo {
                    name: node.name.clone(),
                    current: !offline && got >= last,
                    offline,
                    active: since.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
                    lag: last.saturating_sub(got),
                    peer: peer_id(&node.name),
                });
            }
            info.replicas.sort_by(|a, b| a.name.cmp(&b.name));
        }
        info
    }

    /// `/raftz`: every group this server is in, by account (the system account's
    /// `_meta_`).
    pub(crate) fn raftz(&self) -> BTreeMap<String, serde_json::Value> {
        let mut out = BTreeMap::new();
        for name in self.hub.group_names() {
            let Some(g) = self.hub.group(&name) else {
                continue;
            };
            let m = g.raft().metrics().borrow().clone();
            let membership = m.membership_config.membership().clone();
            let last = m.last_log_index.unwrap_or(0);
            let matched = m.replication.clone().unwrap_or_default();
            // A damaged Raft log, or a stream replica being repaired.
            let damaged = g.damage_reason().or_else(|| {
                lock(&self.streams)
                    .values()
                    .find(|s| s.group.name() == name)
                    .and_then(|s| s.trouble())
            });
            let peers: BTreeMap<String, serde_json::Value> = membership
                .nodes()
                .map(|(id, n)| {
                    let mut v = serde_json::json!({
                        "name": n.name,
                        "voter": membership.voter_ids().any(|x| x == *id),
                    });
                    if let Some(l) = matched.get(id) {
                        let got = l.map_or(0, |l| l.index);
                        v["lag"] = last.saturating_sub(got).into();
                    }
                    (peer_id(&n.name), v)
                })
                .collect();
            out.insert(
                name.clone(),
                serde_json::json!({
                    "id": peer_id(&self.name),
                    "state": format!("{:?}", m.state).to_uppercase(),
                    "term": m.current_term,
                    "leader": m.current_leader.and_then(|id| membership.get_node(&id)).map(|n| peer_id(&n.name)).unwrap_or_default(),
                    "applied": m.last_applied.map_or(0, |l| l.index),
                    // openraft 0.9's metrics carry no commit index; an entry is applied
                    // as soon as it is committed, so the applied index stands for it.
                    "commit": m.last_applied.map_or(0, |l| l.index),
                    "last_index": last,
                    "damaged": damaged,
                    "peers": peers,
                }),
            );
        }
        out
    }

    /// Why `/healthz` should fail (Go: healthz's clustered checks, with its texts): a damaged
    /// replica being repaired, no meta leader, or this server not yet a voting member.
    pub(crate) fn unhealthy(&self) -> Option<String> {
        if let Some(why) = self.mixed.unhealthy() {
            return Some(why);
        }
        if let Some(why) = self.stream_trouble() {
            return Some(why);
        }
        for name in self.hub.group_names() {
            if let Some(why) = self.hub.group(&name).and_then(|g| g.damage_reason()) {
                return Some(format!("JetStream group {name} is being repaired: {why}"));
            }
        }
        let m = self.meta.raft().metrics().borrow().clone();
        if m.current_leader.is_none() {
            return Some("JetStream has not established contact with a meta leader".to_owned());
        }
        if !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == self.node)
        {
            return Some("JetStream is not current with the meta leader".to_owned());
        }
        None
    }
}

/// Tells the routes and the leaf links about an internal subscription of an account, as a
/// client's would be: a leaf's clients reach the clustered API under the hub's domain, its
/// streams' subjects and acks through whichever server the leaf is attached to (Go: the
/// JetStream internal client's subscriptions update routes and leaf nodes alike).
pub(super) fn tell_interest(srv: &Shared, account: &str, subject: &[u8], added: bool) {
    srv.cluster.local_interest(account, subject, None, added);
    if srv.leafs.enabled {
        srv.leafs.local_interest(account, subject, None, added);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_are_nats_servers_node_hashes() {
        // nats-server 2.9.10 logs "Node: 6DVFpukC" for a server named n0.
        assert_eq!(peer_id("n0"), "6DVFpukC");
    }

    #[test]
    fn node_ids_are_stable_and_distinct() {
        assert_eq!(node_id("n0"), node_id("n0"));
        assert_ne!(node_id("n0"), node_id("n1"));
        assert_ne!(node_id(""), 0);
    }
}
