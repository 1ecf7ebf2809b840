//! Clustered JetStream on turmoil: 3 or 5 hubs, each running the stream `S` as a
//! `natsd-raft` group over [`jsgroup`](crate::jsgroup)'s machines (and, when asked, the meta
//! group), on its own `MemDisk`, and a catch-up server for its peers
//! ([`jscatchup`](crate::jscatchup)); a publisher that goes through the group leader
//! (`leader_publish`, acknowledged only once `client_write` committed); faults from the seed;
//! then a fault-free phase that must converge; then the checkers ([`check`]).
//!
//! One run is one [`Spec`] and one seed. The fault plan is drawn from the seed by the spec's
//! plan function and printed with `NATS_SIM_VERBOSE=1`; the same seed gives the same trace hash.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use natsd_core::jetstream::cluster::{
    MetaEntry, MetaState, RaftGroup as MetaGroup, StreamAssignment,
};
use natsd_core::jetstream::store::{CrashMode, MemDisk};
use natsd_core::rng::SplitMix64;
use natsd_raft::openraft::{Config, ServerState, SnapshotPolicy};
use natsd_raft::{
    seed_thread_rng, Command, GroupConfig, NodeId, NodeInfo, Raft, RaftGroup, RaftHub, SharedDisk,
    StoreConfig,
};

use crate::jscatchup::{catch_up, CATCHUP_PORT};
pub use crate::jscheck::check;
use crate::jsgroup::{
    lock, stream_config, MetaMachine, Replica, SharedMeta, SharedReplica, StreamMachine, STREAM_DIR,
};
use crate::raftnet::{serve, TurmoilRaft, RAFT_PORT};
use crate::seeds::Seeds;
use crate::trace::Trace;
use crate::transport::{fixed_epoch, FIXED_EPOCH_UNIX_SECS};

/// The stream group's Raft directory.
pub const STREAM_RAFT_DIR: &str = "raft/S";
/// The meta group's Raft directory.
pub const META_RAFT_DIR: &str = "raft/meta";
/// Faults happen before this sim time; then everything is healed.
pub const HEAL_AT: Duration = Duration::from_secs(25);
/// After the heal, a leader must acknowledge a publish within this.
pub const RECOVERY_BOUND: Duration = Duration::from_secs(20);
/// After that publish, every replica must hold it within this.
pub const CONVERGE_BOUND: Duration = Duration::from_secs(30);
/// Streams the meta group assigns (when the spec has it).
pub const META_STREAMS: [&str; 4] = ["S", "ORDERS", "EVENTS", "AUDIT"];

/// The host name of node `id`.
pub fn host(id: NodeId) -> String {
    format!("n{id}")
}

/// Which of a node's files a corruption fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// The stream's block files.
    StreamBlocks,
    /// The stream group's Raft log segments.
    StreamLog,
    /// The meta group's Raft snapshot.
    MetaSnapshot,
    /// The meta group's Raft log segments.
    MetaLog,
}

/// One fault, applied by the driver at a sim time.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Cut these nodes off from the others (both ways).
    Partition(Vec<NodeId>),
    /// Repair every link.
    HealNet,
    /// Power cut of one node (its unsynced bytes handled per the mode).
    Crash(NodeId, CrashMode),
    /// `kill -9` of one node: the process dies, the OS keeps what was written.
    Kill(NodeId),
    /// Power cut of every node at once.
    PowerLossAll(CrashMode),
    /// Start a crashed node again.
    Restart(NodeId),
    /// Start every crashed node again.
    RestartAll,
    /// Hold every message to and from the node (a SIGSTOP as the network sees it).
    Pause(NodeId),
    /// Deliver what was held.
    Resume(NodeId),
    /// While the node is down: flip about `bits` random bits in each of its `files`.
    BitFlip(NodeId, Files, u64),
    /// While the node is down: cut up to `bytes` from the end of each of its `files`.
    Truncate(NodeId, Files, u64),
    /// Remove the node from the stream group's membership.
    Remove(NodeId),
    /// Add it back (learner, then voter).
    Add(NodeId),
    /// Move the stream group to these voters as a stream move does: the new ones join as
    /// learners and catch up, the voters become old and new together, then only the new.
    Move(Vec<NodeId>),
    /// The node's wall clock jumps by this many seconds (the leader stamps messages with it).
    Clock(NodeId, i64),
    /// Messages on the node's links take up to this long.
    Delay(NodeId, Duration),
}

/// Faults at sim times.
pub type Plan = Vec<(Duration, Fault)>;

/// Draws a fault plan from the seed's generator, for nodes `1..=n`.
pub type PlanFn = fn(&mut SplitMix64, &[NodeId]) -> Plan;

/// When the publisher is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Once every entry the publish made committed (the rule).
    Committed,
    /// As soon as the leader stored it, the entries proposed 300 ms later: a negative
    /// control, which acknowledges what a majority never synced (nats-server 2.12's
    /// `sync_interval` default and `persist_mode: async` have this shape). The checkers must
    /// catch what it loses.
    Stored,
}

/// A scenario: the cluster's size, whether the meta group runs, and its fault plan.
#[derive(Clone, Copy)]
pub struct Spec {
    /// When publishes are acknowledged during the fault phase.
    pub ack: Ack,
    /// Hubs in the cluster (3 or 5).
    pub nodes: u64,
    /// Also run the meta group and check its stream assignments survive.
    pub meta: bool,
    /// Publishes attempted during the fault phase.
    pub publishes: usize,
    /// The fault plan, drawn from the seed (node ids are `1..=nodes`).
    pub plan: PlanFn,
}

/// What a run produced, for the checkers.
#[derive(Debug)]
pub struct Outcome {
    /// The trace hash.
    pub hash: u64,
    /// Acknowledged publishes: (sequence, payload).
    pub acked: Vec<(u64, String)>,
    /// Every replica's messages after the heal: (sequence, subject, payload).
    pub stored: BTreeMap<NodeId, Vec<(u64, String, Vec<u8>)>>,
    /// Every replica's stream assignments after the heal (meta runs).
    pub assigned: BTreeMap<NodeId, Vec<String>>,
    /// Streams the meta group acknowledged assigning.
    pub assigned_acked: Vec<String>,
    /// Safety violations seen while running (a damaged replica leading, ...).
    pub violations: Vec<String>,
    /// Replicas that were in trouble at some point, and why.
    pub troubles: BTreeMap<NodeId, Vec<String>>,
    /// The repair loops' log: each trouble seen, each catch-up done, each one cut or failed.
    pub repairs: BTreeMap<NodeId, Vec<String>>,
    /// Replicas whose Raft log was found damaged at some open.
    pub raft_damaged: BTreeSet<NodeId>,
    /// Membership changes that committed.
    pub changes: Vec<String>,
    /// The fault plan.
    pub plan: Vec<(Duration, Fault)>,
}

#[derive(Clone)]
struct Live {
    stream: RaftGroup,
    meta: Option<RaftGroup>,
    replica: SharedReplica,
    meta_state: SharedMeta,
}

#[derive(Default)]
struct World {
    live: BTreeMap<NodeId, Live>,
    skew: BTreeMap<NodeId, i64>,
    violations: Vec<String>,
    raft_damaged: BTreeSet<NodeId>,
    troubles: BTreeMap<NodeId, Vec<String>>,
    /// Membership changes the driver asked for, run by the client.
    ops: VecDeque<Fault>,
    members: BTreeSet<NodeId>,
    changes: Vec<String>,
}

type Shared = Arc<Mutex<World>>;

fn group_config(snapshot_every: u64) -> GroupConfig {
    GroupConfig {
        raft: Config {
            heartbeat_interval: 100,
            election_timeout_min: 400,
            election_timeout_max: 800,
            // Snapshot and purge often, so a replica back from a fault is sometimes sent a
            // snapshot instead of entries.
            snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
            max_in_snapshot_log_to_keep: 5,
            purge_batch_size: 1,
            snapshot_max_chunk_size: 512,
            ..Config::default()
        },
        store: StoreConfig {
            segment_bytes: 2048,
        },
    }
}

fn node_info(id: NodeId) -> NodeInfo {
    NodeInfo {
        name: host(id),
        server_id: format!("S{id}"),
    }
}

/// The node the Raft group `pick` of `live` names leader, if any.
fn leader_of(w: &World, pick: impl Fn(&Live) -> Option<&RaftGroup>) -> Option<(NodeId, Raft)> {
    w.live.iter().find_map(|(id, l)| {
        let g = pick(l)?;
        (g.raft().metrics().borrow().state == ServerState::Leader).then(|| (*id, g.raft().clone()))
    })
}

/// The repair loop of one host: catches its replica up from a healthy peer over the network
/// when it is in trouble (see [`catch_up`]), and watches that a damaged replica never leads.
async fn host_loop(me: NodeId, ids: Vec<NodeId>, world: Shared) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let replica = {
            let mut w = lock(&world);
            let Some(mine) = w.live.get(&me).cloned() else {
                continue;
            };
            for g in std::iter::once(&mine.stream).chain(mine.meta.as_ref()) {
                if g.is_damaged() && g.raft().metrics().borrow().state == ServerState::Leader {
                    let v = format!("n{me}: damaged replica leads {}", g.name());
                    if !w.violations.contains(&v) {
                        w.violations.push(v);
                    }
                }
            }
            let Some(why) = lock(&mine.replica).trouble.clone() else {
                continue;
            };
            let list = w.troubles.entry(me).or_default();
            if list.last() != Some(&why) {
                list.push(why);
            }
            mine.replica
        };
        let note = match catch_up(me, &ids, &replica).await {
            Ok(None) => continue,
            Ok(Some(how)) => how,
            Err(e) => format!("catch-up: {e}"),
        };
        lock(&world).troubles.entry(me).or_default().push(note);
    }
}

/// Publishes one message through the stream leader: `Some((seq, raft index))` once every
/// entry it made committed.
async fn publish(world: &Shared, payload: &str, ack: Ack) -> Option<(u64, u64)> {
    let (id, raft, replica) = {
        let w = lock(world);
        let (id, raft) = leader_of(&w, |l| Some(&l.stream))?;
        (id, raft, Arc::clone(&w.live[&id].replica))
    };
    // Applied through everything committed, and still leading.
    let lin = tokio::time::timeout(Duration::from_secs(1), raft.ensure_linearizable()).await;
    if !matches!(lin, Ok(Ok(_))) {
        return None;
    }
    let entries = {
        let skew = lock(world).skew.get(&id).copied().unwrap_or(0);
        let elapsed = turmoil::sim_elapsed().unwrap_or_default().as_nanos() as i128;
        let now = i128::from(FIXED_EPOCH_UNIX_SECS) * 1_000_000_000
            + elapsed
            + i128::from(skew) * 1_000_000_000;
        let now = u64::try_from(now.max(0)).unwrap_or(0);
        let mut r = lock(&replica);
        if r.trouble.is_some() {
            return None;
        }
        r.rs_mut().set_leading(true);
        let (stored, entries) = r
            .rs_mut()
            .leader_publish("s.jepsen", &[], payload.as_bytes(), now)
            .ok()?;
        (stored.seq, entries)
    };
    let (seq, entries) = entries;
    if ack == Ack::Stored {
        tokio::spawn(async move {
            // A background flush: the proposal leaves a little later.
            tokio::time::sleep(Duration::from_millis(300)).await;
            for e in entries {
                let w = raft.client_write(Command(e.encode()));
                if !matches!(
                    tokio::time::timeout(Duration::from_secs(1), w).await,
                    Ok(Ok(_))
                ) {
                    return;
                }
            }
        });
        return Some((seq, 0));
    }
    let mut index = 0;
    for e in entries {
        let w = tokio::time::timeout(
            Duration::from_secs(1),
            raft.client_write(Command(e.encode())),
        )
        .await;
        match w {
            Ok(Ok(r)) => index = r.log_id.index,
            _ => return None,
        }
    }
    Some((seq, index))
}

/// Proposes a meta entry through the meta leader.
async fn meta_write(world: &Shared, entry: &MetaEntry) -> bool {
    let Some((_, raft)) = leader_of(&lock(world), |l| l.meta.as_ref()) else {
        return false;
    };
    let w = tokio::time::timeout(
        Duration::from_secs(1),
        raft.client_write(Command(entry.encode())),
    )
    .await;
    matches!(w, Ok(Ok(_)))
}

fn assignment(name: &str, nodes: &[NodeId]) -> MetaEntry {
    let mut config = stream_config();
    config.name = name.to_owned();
    config.subjects = vec![format!("{}.>", name.to_lowercase())];
    MetaEntry::AssignStream(StreamAssignment {
        account: "$G".into(),
        created: crate::jsgroup::CREATED,
        config,
        group: MetaGroup {
            name: format!("S-R{}F-{name}", nodes.len()),
            peers: nodes.iter().map(|n| format!("S{n}")).collect(),
            storage: "file".into(),
            cluster: "sim".into(),
            preferred: String::new(),
        },
        request: None,
    })
}

/// Runs a membership change through the stream leader.
async fn change(world: &Shared, op: &Fault) -> bool {
    let Some((_, raft)) = leader_of(&lock(world), |l| Some(&l.stream)) else {
        return false;
    };
    let mut members = lock(world).members.clone();
    let t = Duration::from_secs(2);
    match op {
        Fault::Remove(n) => {
            members.remove(n);
            if members.len() < 3 {
                return true;
            }
        }
        Fault::Add(n) => {
            let add = raft.add_learner(*n, node_info(*n), true);
            if !matches!(tokio::time::timeout(t, add).await, Ok(Ok(_))) {
                return false;
            }
            members.insert(*n);
        }
        Fault::Move(to) => {
            let to: BTreeSet<NodeId> = to.iter().copied().collect();
            for n in to.difference(&members) {
                let add = raft.add_learner(*n, node_info(*n), true);
                if !matches!(tokio::time::timeout(t, add).await, Ok(Ok(_))) {
                    return false;
                }
            }
            let both: BTreeSet<NodeId> = members.union(&to).copied().collect();
            let ch = raft.change_membership(both.clone(), false);
            if !matches!(tokio::time::timeout(t, ch).await, Ok(Ok(_))) {
                return false;
            }
            lock(world).members = both;
            members = to;
        }
        _ => return true,
    }
    let ch = raft.change_membership(members.clone(), false);
    let ok = matches!(tokio::time::timeout(t, ch).await, Ok(Ok(_)));
    if ok {
        let mut w = lock(world);
        w.changes.push(format!("{op:?}"));
        w.members = members;
    }
    ok
}

fn now_text() -> String {
    format!("{:?}", turmoil::sim_elapsed().unwrap_or_default())
}

/// The client: initializes the groups, publishes through the faults, then after the heal
/// publishes until acknowledged and waits for every replica to hold it.
async fn client(
    world: Shared,
    spec: Spec,
    ids: Vec<NodeId>,
    trace: Trace,
    acked: Arc<Mutex<Vec<(u64, String)>>>,
    assigned: Arc<Mutex<Vec<String>>>,
) -> Result<(), Box<dyn std::error::Error>> {
    while lock(&world).live.len() < ids.len() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let members: BTreeMap<NodeId, NodeInfo> = ids.iter().map(|&i| (i, node_info(i))).collect();
    let (stream, meta) = {
        let w = lock(&world);
        let first = &w.live[&ids[0]];
        (first.stream.raft().clone(), first.meta.clone())
    };
    stream.initialize(members.clone()).await?;
    if let Some(m) = meta {
        m.raft().initialize(members).await?;
        for name in META_STREAMS {
            for _ in 0..50 {
                if meta_write(&world, &assignment(name, &ids)).await {
                    trace.note("client", format!("{} assigned {name}", now_text()));
                    lock(&assigned).push(name.to_owned());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    for i in 0..spec.publishes {
        let op = lock(&world).ops.pop_front();
        if let Some(op) = op {
            let ok = change(&world, &op).await;
            trace.note("client", format!("{} {op:?} done={ok}", now_text()));
            // A stream's leader goes on with a move until it is done (natsd's leader
            // reconciles its group with the assignment every tick): so does the client.
            if !ok && matches!(op, Fault::Move(_)) {
                lock(&world).ops.push_back(op);
            }
        }
        if spec.meta && i % 10 == 5 {
            let name = format!("T{i}");
            if meta_write(&world, &assignment(&name, &ids)).await {
                trace.note("client", format!("{} assigned {name}", now_text()));
                lock(&assigned).push(name);
            }
        }
        let payload = format!("p-{i}");
        match publish(&world, &payload, spec.ack).await {
            Some((seq, index)) => {
                trace.note(
                    "client",
                    format!("{} ack {payload} seq {seq} at {index}", now_text()),
                );
                lock(&acked).push((seq, payload));
            }
            None => trace.note("client", format!("{} no ack {payload}", now_text())),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = turmoil::sim_elapsed().unwrap_or_default();
    if now < HEAL_AT {
        tokio::time::sleep(HEAL_AT - now).await;
    }
    // Healed: every node a voter again, a leader, an acknowledged publish within the bound.
    let deadline = tokio::time::Instant::now() + RECOVERY_BOUND;
    let all: BTreeSet<NodeId> = ids.iter().copied().collect();
    while lock(&world).members != all {
        let missing: Vec<NodeId> = all.difference(&lock(&world).members).copied().collect();
        for n in missing {
            let ok = change(&world, &Fault::Add(n)).await;
            trace.note("client", format!("{} re-add n{n} done={ok}", now_text()));
        }
        if tokio::time::Instant::now() > deadline {
            return Err("membership not restored after the heal".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut last = None;
    for k in 0.. {
        let payload = format!("final-{k}");
        if let Some((seq, index)) = publish(&world, &payload, Ack::Committed).await {
            trace.note(
                "client",
                format!("{} ack {payload} seq {seq} at {index}", now_text()),
            );
            lock(&acked).push((seq, payload));
            last = Some(index);
            break;
        }
        if tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let index = last.ok_or("no leader acknowledged a publish within the bound after the heal")?;
    let deadline = tokio::time::Instant::now() + CONVERGE_BOUND;
    loop {
        let done = {
            let w = lock(&world);
            w.live.len() == ids.len()
                && w.live.values().all(|l| {
                    let r = lock(&l.replica);
                    r.trouble.is_none() && r.rs().applied() >= index && !l.stream.is_damaged()
                })
        };
        if done {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let w = lock(&world);
            let state: Vec<String> = w
                .live
                .iter()
                .map(|(id, l)| {
                    let r = lock(&l.replica);
                    format!(
                        "n{id}: applied {} trouble {:?} damaged {:?}",
                        r.rs().applied(),
                        r.trouble,
                        l.stream.damage_reason()
                    )
                })
                .collect();
            return Err(format!("replicas did not converge on index {index}: {state:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trace.note("client", format!("{} converged at {index}", now_text()));
    Ok(())
}

/// Files of `kind` on `disk`.
fn files_of(disk: &MemDisk, kind: Files) -> Vec<String> {
    let (dir, pick): (String, fn(&str) -> bool) = match kind {
        Files::StreamBlocks => (format!("{STREAM_DIR}/"), |p| p.ends_with(".blk")),
        Files::StreamLog => (format!("{STREAM_RAFT_DIR}/"), |p| p.contains("/seg-")),
        Files::MetaSnapshot => (format!("{META_RAFT_DIR}/"), |p| p.ends_with("/snapshot")),
        Files::MetaLog => (format!("{META_RAFT_DIR}/"), |p| p.contains("/seg-")),
    };
    disk.paths()
        .into_iter()
        .filter(|p| p.starts_with(&dir) && pick(p))
        .collect()
}

/// Runs `spec` with `seed`.
pub fn run(spec: Spec, seed: u64) -> Result<Outcome, String> {
    let mut seeds = Seeds::new(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seeds.next_seed())
        .epoch(fixed_epoch())
        .simulation_duration(Duration::from_secs(150))
        .tick_duration(Duration::from_millis(1))
        .tcp_capacity(4096)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .enable_random_order()
        .build();
    seed_thread_rng(seeds.next_seed());
    let ids: Vec<NodeId> = (1..=spec.nodes).collect();
    let world: Shared = Arc::default();
    lock(&world).members = ids.iter().copied().collect();
    let mut disks = BTreeMap::new();
    for &id in &ids {
        let disk = MemDisk::new(seeds.next_seed());
        disks.insert(id, disk.clone());
        let world = Arc::clone(&world);
        let meta = spec.meta;
        let all = ids.clone();
        sim.host(host(id).as_str(), move || {
            let disk = disk.clone();
            let world = Arc::clone(&world);
            let all = all.clone();
            async move {
                let hub = RaftHub::new(id, Arc::new(TurmoilRaft));
                let replica = Replica::open(disk.clone());
                let stream = hub
                    .open_group(
                        "S",
                        group_config(20),
                        SharedDisk::new(disk.clone()),
                        STREAM_RAFT_DIR,
                        Box::new(StreamMachine(Arc::clone(&replica))),
                    )
                    .await?;
                let meta_state: SharedMeta = Arc::new(Mutex::new(MetaState::new(format!("S{id}"))));
                let meta = if meta {
                    Some(
                        hub.open_group(
                            "$meta",
                            // Its log is short: snapshot often, so snapshot files exist to damage.
                            group_config(3),
                            SharedDisk::new(disk.clone()),
                            META_RAFT_DIR,
                            Box::new(MetaMachine(Arc::clone(&meta_state))),
                        )
                        .await?,
                    )
                } else {
                    None
                };
                let catchup = turmoil::net::TcpListener::bind(("0.0.0.0", CATCHUP_PORT)).await?;
                let group = stream.clone();
                tokio::spawn(crate::jscatchup::serve(
                    catchup,
                    Arc::clone(&replica),
                    move || group.is_damaged(),
                ));
                {
                    let mut w = lock(&world);
                    for g in std::iter::once(&stream).chain(meta.as_ref()) {
                        if g.recovery().damage.is_some() {
                            w.raft_damaged.insert(id);
                        }
                    }
                    let live = Live {
                        stream,
                        meta,
                        replica,
                        meta_state,
                    };
                    w.live.insert(id, live);
                }
                tokio::spawn(host_loop(id, all, Arc::clone(&world)));
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", RAFT_PORT)).await?;
                loop {
                    let (stream, _) = listener.accept().await?;
                    let hub = Arc::clone(&hub);
                    tokio::spawn(async move {
                        let _ = serve(hub, stream).await;
                    });
                }
            }
        });
    }
    let plan = (spec.plan)(&mut seeds.fork(), &ids);
    let mut frng = seeds.fork();
    let trace = Trace::new();
    let acked: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let assigned: Arc<Mutex<Vec<String>>> = Arc::default();
    sim.client(
        "client",
        client(
            Arc::clone(&world),
            spec,
            ids.clone(),
            trace.clone(),
            Arc::clone(&acked),
            Arc::clone(&assigned),
        ),
    );

    let mut next = 0;
    let mut healed = false;
    let mut down: BTreeSet<NodeId> = BTreeSet::new();
    let mut paused: BTreeSet<NodeId> = BTreeSet::new();
    loop {
        let now = sim.elapsed();
        while next < plan.len() && plan[next].0 <= now {
            let fault = plan[next].1.clone();
            next += 1;
            trace.note("sim", format!("{now:?} {fault:?}"));
            let others =
                |n: NodeId| -> Vec<NodeId> { ids.iter().copied().filter(|&o| o != n).collect() };
            match &fault {
                Fault::Partition(side) => {
                    let rest: Vec<NodeId> =
                        ids.iter().copied().filter(|o| !side.contains(o)).collect();
                    for a in side {
                        for b in &rest {
                            sim.partition(host(*a).as_str(), host(*b).as_str());
                        }
                    }
                }
                Fault::HealNet => {
                    heal_links(&mut sim, &ids, &paused);
                }
                Fault::Crash(n, mode) => {
                    crash(&mut sim, &world, &disks, &mut down, *n, Some(*mode));
                }
                Fault::Kill(n) => crash(&mut sim, &world, &disks, &mut down, *n, None),
                Fault::PowerLossAll(mode) => {
                    for &n in &ids {
                        crash(&mut sim, &world, &disks, &mut down, n, Some(*mode));
                    }
                }
                Fault::Restart(n) => {
                    if down.remove(n) {
                        sim.bounce(host(*n).as_str());
                    }
                }
                Fault::RestartAll => {
                    for n in std::mem::take(&mut down) {
                        sim.bounce(host(n).as_str());
                    }
                }
                Fault::Pause(n) => {
                    if paused.insert(*n) {
                        for o in others(*n) {
                            sim.hold(host(*n).as_str(), host(o).as_str());
                        }
                    }
                }
                Fault::Resume(n) => {
                    if paused.remove(n) {
                        for o in others(*n) {
                            sim.release(host(*n).as_str(), host(o).as_str());
                        }
                    }
                }
                Fault::BitFlip(n, kind, bits) => {
                    let disk = &disks[n];
                    for path in files_of(disk, *kind) {
                        let len = disk.contents(&path).map_or(0, |c| c.len() as u64);
                        for _ in 0..*bits {
                            if len > 0 {
                                let bit = frng.below(len * 8);
                                let _ = disk.flip_bit(&path, bit);
                                trace.note("sim", format!("flip n{n} {path} bit {bit}"));
                            }
                        }
                    }
                }
                Fault::Truncate(n, kind, bytes) => {
                    let disk = &disks[n];
                    for path in files_of(disk, *kind) {
                        let len = disk.contents(&path).map_or(0, |c| c.len() as u64);
                        let cut = 1 + frng.below((*bytes).max(1));
                        let _ = disk.truncate_file(&path, len.saturating_sub(cut));
                        trace.note("sim", format!("truncate n{n} {path} by {cut}"));
                    }
                }
                Fault::Remove(_) | Fault::Add(_) | Fault::Move(_) => {
                    lock(&world).ops.push_back(fault.clone());
                }
                Fault::Clock(n, secs) => *lock(&world).skew.entry(*n).or_default() += secs,
                Fault::Delay(n, d) => {
                    for o in others(*n) {
                        sim.set_link_max_message_latency(host(*n).as_str(), host(o).as_str(), *d);
                    }
                }
            }
        }
        if !healed && now >= HEAL_AT {
            healed = true;
            trace.note("sim", format!("{now:?} heal"));
            paused.clear();
            heal_links(&mut sim, &ids, &paused);
            for a in &ids {
                for b in ids.iter().filter(|b| *b != a) {
                    sim.release(host(*a).as_str(), host(*b).as_str());
                    sim.set_link_max_message_latency(
                        host(*a).as_str(),
                        host(*b).as_str(),
                        Duration::from_millis(10),
                    );
                }
            }
            for n in std::mem::take(&mut down) {
                sim.bounce(host(n).as_str());
            }
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return Err(format!("{e} (at {:?}); faults: {plan:?}", sim.elapsed())),
        }
    }
    let w = lock(&world);
    let out = Outcome {
        hash: trace.hash(),
        acked: lock(&acked).clone(),
        stored: w
            .live
            .iter()
            .map(|(id, l)| (*id, lock(&l.replica).messages()))
            .collect(),
        assigned: w
            .live
            .iter()
            .map(|(id, l)| {
                let m = lock(&l.meta_state);
                (
                    *id,
                    m.all_streams()
                        .map(|s| s.assignment.config.name.clone())
                        .collect(),
                )
            })
            .collect(),
        assigned_acked: lock(&assigned).clone(),
        violations: w.violations.clone(),
        troubles: w
            .live
            .iter()
            .map(|(id, l)| (*id, lock(&l.replica).history.clone()))
            .filter(|(_, h)| !h.is_empty())
            .collect(),
        repairs: w.troubles.clone(),
        raft_damaged: w.raft_damaged.clone(),
        changes: w.changes.clone(),
        plan,
    };
    if std::env::var_os(crate::harness::VERBOSE_VAR).is_some() {
        eprintln!(
            "jetstream cluster seed {seed}: hash {:016x}, {} acked, membership {:?}, raft damaged {:?}, troubles {:?}, repairs {:?}, faults {:?}",
            out.hash,
            out.acked.len(),
            out.changes,
            out.raft_damaged,
            out.troubles,
            out.repairs,
            out.plan
        );
    }
    Ok(out)
}

fn heal_links(sim: &mut turmoil::Sim<'_>, ids: &[NodeId], paused: &BTreeSet<NodeId>) {
    for a in ids {
        for b in ids.iter().filter(|b| *b != a) {
            if !paused.contains(a) && !paused.contains(b) {
                sim.repair(host(*a).as_str(), host(*b).as_str());
            }
        }
    }
}

fn crash(
    sim: &mut turmoil::Sim<'_>,
    world: &Shared,
    disks: &BTreeMap<NodeId, MemDisk>,
    down: &mut BTreeSet<NodeId>,
    n: NodeId,
    mode: Option<CrashMode>,
) {
    if down.insert(n) {
        lock(world).live.remove(&n);
        sim.crash(host(n).as_str());
        if let Some(mode) = mode {
            disks[&n].crash(mode);
        }
    }
}
