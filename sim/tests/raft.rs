//! A Raft group of three `natsd-raft` hubs on turmoil, each on its own `MemDisk`, under
//! partitions and power cuts; then a fault-free phase that must converge.
//!
//! Checker: every write the group acknowledged is applied on every replica, in the same order,
//! and after the heal the replicas' logs are identical. The same seed gives the same trace hash.
//! `NATS_SIM_SEEDS=<n>` sweeps more seeds; a failure prints its replay command.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use natsd_core::jetstream::store::{CrashMode, MemDisk};
use natsd_core::rng::SplitMix64;
use natsd_raft::openraft::{Config, ServerState, SnapshotPolicy};
use natsd_raft::{
    seed_thread_rng, Command, GroupConfig, GroupMachine, LogId, NodeId, NodeInfo, RaftGroup,
    RaftHub, RestoreError, SharedDisk, StoreConfig,
};
use natsd_sim::jscluster::host;
use natsd_sim::raftnet::{serve, TurmoilRaft, RAFT_PORT};
use natsd_sim::seeds::{sweep, Seeds};
use natsd_sim::trace::Trace;
use natsd_sim::transport::fixed_epoch;

const NODES: [NodeId; 3] = [1, 2, 3];
const GROUP: &str = "kv";
const DIR: &str = "raft/kv";
/// Faults happen before this sim time; after it everything is healed and must converge.
const HEAL_AT: Duration = Duration::from_secs(20);
const WRITES: usize = 60;

/// Applied commands of one replica, in order.
type Applied = Arc<Mutex<Vec<(u64, String)>>>;

struct Kv(Applied);

impl GroupMachine for Kv {
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        let cmd = String::from_utf8_lossy(command).into_owned();
        lock(&self.0).push((index, cmd));
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&*lock(&self.0)).unwrap_or_default()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        *lock(&self.0) =
            serde_json::from_slice(snapshot).map_err(|e| RestoreError::Decode(e.to_string()))?;
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The running replicas, as the sim driver and the client see them.
#[derive(Clone)]
struct Live {
    group: RaftGroup,
    applied: Applied,
}

type Registry = Arc<Mutex<BTreeMap<NodeId, Live>>>;

fn group_config() -> GroupConfig {
    GroupConfig {
        raft: Config {
            heartbeat_interval: 100,
            election_timeout_min: 400,
            election_timeout_max: 800,
            // Snapshot and purge often, so a replica back from a crash or a partition is
            // sometimes sent a snapshot (chunked, over the simulated network) instead of entries.
            snapshot_policy: SnapshotPolicy::LogsSinceLast(15),
            max_in_snapshot_log_to_keep: 5,
            purge_batch_size: 1,
            snapshot_max_chunk_size: 256,
            ..Config::default()
        },
        store: StoreConfig {
            segment_bytes: 1024,
        },
    }
}

/// One fault, at a sim time.
#[derive(Debug, Clone)]
enum Fault {
    Isolate(NodeId),
    Rejoin(NodeId),
    Crash(NodeId, CrashMode),
    /// While the node is down: flip a bit inside the first record of its first segment.
    Flip(NodeId, u64),
    Restart(NodeId),
    /// Crash whichever replica leads at that moment (if any); `slot` names it for the restart.
    CrashLeader(CrashMode, usize),
    RestartSlot(usize),
}

/// A few faults in the first part of the run, drawn from the seed; with `flip`, one replica
/// also comes back from a power cut with a flipped bit in its log.
fn fault_plan(rng: &mut SplitMix64, flip: bool) -> Vec<(Duration, Fault)> {
    let mut plan = Vec::new();
    if flip {
        let node = NODES[rng.below(3) as usize];
        let at = Duration::from_millis(3_000 + rng.below(10_000));
        plan.push((at, Fault::Crash(node, CrashMode::LoseUnsynced)));
        plan.push((at, Fault::Flip(node, rng.below(64))));
        plan.push((
            at + Duration::from_millis(500 + rng.below(2_000)),
            Fault::Restart(node),
        ));
    }
    let count = 2 + rng.below(4);
    for _ in 0..count {
        let node = NODES[rng.below(3) as usize];
        let at = Duration::from_millis(2_000 + rng.below(15_000));
        let back = at + Duration::from_millis(500 + rng.below(4_000));
        if rng.below(2) == 0 {
            plan.push((at, Fault::Isolate(node)));
            plan.push((back, Fault::Rejoin(node)));
        } else {
            let mode = if rng.below(2) == 0 {
                CrashMode::Torn
            } else {
                CrashMode::LoseUnsynced
            };
            if rng.below(2) == 0 {
                plan.push((at, Fault::Crash(node, mode)));
                plan.push((back, Fault::Restart(node)));
            } else {
                let slot = plan.len();
                plan.push((at, Fault::CrashLeader(mode, slot)));
                plan.push((back, Fault::RestartSlot(slot)));
            }
        }
    }
    plan.sort_by_key(|(t, _)| *t);
    plan
}

/// What one run produced.
struct RunResult {
    hash: u64,
    /// Acknowledged writes and the log index each was acknowledged at.
    acked: Vec<(String, u64)>,
    applied: BTreeMap<NodeId, Vec<(u64, String)>>,
    logs: BTreeMap<NodeId, Vec<LogId>>,
    final_index: u64,
    /// Replicas that came up damaged at some point.
    damaged: Vec<NodeId>,
}

/// Writes `cmd` through the current leader; `Some((index, term))` once committed.
async fn write_once(registry: &Registry, cmd: &str) -> Option<(u64, u64)> {
    let leader = lock(registry)
        .values()
        .find(|l| l.group.raft().metrics().borrow().state == ServerState::Leader)
        .map(|l| l.group.raft().clone())?;
    let res = tokio::time::timeout(
        Duration::from_secs(1),
        leader.client_write(Command(cmd.as_bytes().to_vec())),
    )
    .await;
    match res {
        Ok(Ok(r)) => Some((r.log_id.index, r.log_id.leader_id.term)),
        _ => None,
    }
}

fn run(seed: u64, flip: bool) -> Result<RunResult, String> {
    let mut seeds = Seeds::new(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seeds.next_seed())
        .epoch(fixed_epoch())
        .simulation_duration(Duration::from_secs(120))
        .tick_duration(Duration::from_millis(1))
        .tcp_capacity(4096)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .enable_random_order()
        .build();
    // openraft's election timeouts come from this generator: reset it for every run.
    seed_thread_rng(seeds.next_seed());
    let registry: Registry = Arc::default();
    let damaged: Arc<Mutex<Vec<NodeId>>> = Arc::default();
    let mut disks = BTreeMap::new();
    for id in NODES {
        let disk = MemDisk::new(seeds.next_seed());
        disks.insert(id, disk.clone());
        let registry = Arc::clone(&registry);
        let damaged = Arc::clone(&damaged);
        sim.host(host(id).as_str(), move || {
            let disk = disk.clone();
            let registry = Arc::clone(&registry);
            let damaged = Arc::clone(&damaged);
            async move {
                let hub = RaftHub::new(id, Arc::new(TurmoilRaft));
                let applied = Applied::default();
                let group = hub
                    .open_group(
                        GROUP,
                        group_config(),
                        SharedDisk::new(disk),
                        DIR,
                        Box::new(Kv(Arc::clone(&applied))),
                    )
                    .await?;
                // Recorded at open: a replica whose damage lies wholly under its own snapshot is
                // whole again as soon as openraft purges that part of its log.
                if group.recovery().damage.is_some() {
                    lock(&damaged).push(id);
                }
                lock(&registry).insert(id, Live { group, applied });
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
    let plan = fault_plan(&mut seeds.fork(), flip);
    let trace = Trace::new();
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let final_index = Arc::new(Mutex::new(0u64));
    {
        let registry = Arc::clone(&registry);
        let trace = trace.clone();
        let acked = Arc::clone(&acked);
        let final_index = Arc::clone(&final_index);
        sim.client("ctl", async move {
            while lock(&registry).len() < NODES.len() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let first = lock(&registry)[&1].group.raft().clone();
            let members: BTreeMap<NodeId, NodeInfo> = NODES
                .iter()
                .map(|&id| {
                    (
                        id,
                        NodeInfo {
                            name: host(id),
                            server_id: format!("S{id}"),
                        },
                    )
                })
                .collect();
            first.initialize(members).await?;
            // Safety phase: writes while faults come and go.
            for i in 0..WRITES {
                let cmd = format!("w{i}");
                match write_once(&registry, &cmd).await {
                    Some((index, term)) => {
                        trace.note("ctl", format!("ack {cmd} at {index} term {term}"));
                        lock(&acked).push((cmd, index));
                    }
                    None => trace.note("ctl", format!("no ack {cmd}")),
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            let now = turmoil::sim_elapsed().unwrap_or_default();
            if now < HEAL_AT {
                tokio::time::sleep(HEAL_AT - now).await;
            }
            // Liveness phase: healed, the group must commit and every replica catch up.
            let mut index = None;
            for k in 0..100 {
                let cmd = format!("final{k}");
                if let Some((i, term)) = write_once(&registry, &cmd).await {
                    trace.note("ctl", format!("ack {cmd} at {i} term {term}"));
                    lock(&acked).push((cmd, i));
                    index = Some(i);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let index = index.ok_or("no write committed after the heal")?;
            *lock(&final_index) = index;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let done = {
                    let reg = lock(&registry);
                    reg.len() == NODES.len()
                        && reg.values().all(|l| {
                            l.group
                                .raft()
                                .metrics()
                                .borrow()
                                .last_applied
                                .is_some_and(|a| a.index >= index)
                        })
                };
                if done {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err("replicas did not converge after the heal".into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            trace.note("ctl", format!("converged at {index}"));
            Ok(())
        });
    }

    let mut next = 0;
    let mut healed = false;
    let mut down: BTreeMap<NodeId, ()> = BTreeMap::new();
    // Which replica each `CrashLeader` took down, for its `RestartSlot`.
    let mut slots: BTreeMap<usize, NodeId> = BTreeMap::new();
    loop {
        let now = sim.elapsed();
        while next < plan.len() && plan[next].0 <= now {
            let fault = plan[next].1.clone();
            next += 1;
            // The driver runs outside any host: its notes carry the sim time in their text.
            trace.note("sim", format!("{:?} {fault:?}", sim.elapsed()));
            match fault {
                Fault::Isolate(n) => {
                    for other in NODES.iter().filter(|&&o| o != n) {
                        sim.partition(host(n).as_str(), host(*other).as_str());
                    }
                }
                Fault::Rejoin(n) => {
                    for other in NODES.iter().filter(|&&o| o != n) {
                        sim.repair(host(n).as_str(), host(*other).as_str());
                    }
                }
                Fault::Crash(n, mode) => {
                    if down.insert(n, ()).is_none() {
                        lock(&registry).remove(&n);
                        sim.crash(host(n).as_str());
                        disks[&n].crash(mode);
                    }
                }
                Fault::Flip(n, bit) => {
                    // The newest segment with a few records (else the first one), inside its
                    // first record's payload: good records follow, so this is damage, not a
                    // torn tail.
                    let disk = &disks[&n];
                    let segs: Vec<String> = disk
                        .paths()
                        .into_iter()
                        .filter(|p| p.starts_with(&format!("{DIR}/seg-")))
                        .collect();
                    let path = segs
                        .iter()
                        .rev()
                        .find(|p| disk.contents(p).is_some_and(|c| c.len() >= 100))
                        .or(segs.first())
                        .cloned()
                        .ok_or_else(|| format!("no segment on {n}"))?;
                    disk.flip_bit(&path, 12 * 8 + bit)
                        .map_err(|e| format!("flip on {n}: {e}"))?;
                    trace.note("sim", format!("flipped a bit in {path}"));
                }
                Fault::Restart(n) => {
                    if down.remove(&n).is_some() {
                        sim.bounce(host(n).as_str());
                    }
                }
                Fault::CrashLeader(mode, slot) => {
                    let leader = lock(&registry)
                        .iter()
                        .find(|(_, l)| {
                            l.group.raft().metrics().borrow().state == ServerState::Leader
                        })
                        .map(|(id, _)| *id);
                    if let Some(n) = leader {
                        trace.note("sim", format!("leader is {n}"));
                        if down.insert(n, ()).is_none() {
                            lock(&registry).remove(&n);
                            sim.crash(host(n).as_str());
                            disks[&n].crash(mode);
                            slots.insert(slot, n);
                        }
                    }
                }
                Fault::RestartSlot(slot) => {
                    if let Some(n) = slots.remove(&slot) {
                        if down.remove(&n).is_some() {
                            sim.bounce(host(n).as_str());
                        }
                    }
                }
            }
        }
        if !healed && now >= HEAL_AT {
            healed = true;
            for a in NODES {
                for b in NODES.iter().filter(|&&b| b != a) {
                    sim.repair(host(a).as_str(), host(*b).as_str());
                }
            }
            for (n, ()) in std::mem::take(&mut down) {
                sim.bounce(host(n).as_str());
            }
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return Err(format!("{e} (at {:?}); faults: {plan:?}", sim.elapsed())),
        }
    }
    if std::env::var_os(natsd_sim::harness::VERBOSE_VAR).is_some() {
        eprintln!(
            "raft seed {seed}: hash {:016x}, {} acked, converged at {}, {:?} sim time, faults {plan:?}",
            trace.hash(),
            lock(&acked).len(),
            lock(&final_index),
            sim.elapsed()
        );
    }
    let reg = lock(&registry);
    let result = RunResult {
        hash: trace.hash(),
        acked: lock(&acked).clone(),
        applied: reg
            .iter()
            .map(|(id, l)| (*id, lock(&l.applied).clone()))
            .collect(),
        logs: reg.iter().map(|(id, l)| (*id, l.group.log_ids())).collect(),
        final_index: *lock(&final_index),
        damaged: lock(&damaged).clone(),
    };
    // Power cuts alone never damage a replica, and a damaged one is repaired by the heal.
    for l in reg.values() {
        if let Some(why) = l.group.damage_reason() {
            return Err(format!("replica still damaged after the heal: {why}"));
        }
    }
    if !flip && !result.damaged.is_empty() {
        return Err(format!("power cuts damaged replicas {:?}", result.damaged));
    }
    if flip {
        let set_aside = disks
            .values()
            .any(|d| d.paths().iter().any(|p| p.contains("/damaged-")));
        if result.damaged.is_empty() || !set_aside {
            return Err("the flipped bit did not damage a replica".into());
        }
    }
    Ok(result)
}

fn check(r: &RunResult) -> Result<(), String> {
    let reference = &r.applied[&1];
    for (id, applied) in &r.applied {
        let upto: Vec<&(u64, String)> = applied
            .iter()
            .filter(|(i, _)| *i <= r.final_index)
            .collect();
        let want: Vec<&(u64, String)> = reference
            .iter()
            .filter(|(i, _)| *i <= r.final_index)
            .collect();
        if upto != want {
            return Err(format!("replica {id} applied a different sequence"));
        }
        // Each acknowledged write sits at the index it was acknowledged at, on every replica.
        for (cmd, index) in &r.acked {
            if !applied.iter().any(|(i, c)| c == cmd && i == index) {
                return Err(format!(
                    "replica {id} lost acknowledged write {cmd} (index {index})"
                ));
            }
        }
    }
    // Replicas purge at different points: compare the entries they all still hold.
    let from = r
        .logs
        .values()
        .filter_map(|l| l.first())
        .map(|l| l.index)
        .max()
        .unwrap_or(0);
    let held = |log: &Vec<LogId>| -> Vec<LogId> {
        log.iter()
            .filter(|l| l.index >= from && l.index <= r.final_index)
            .copied()
            .collect()
    };
    let first = held(&r.logs[&1]);
    if first.last().map(|l| l.index) != Some(r.final_index) {
        return Err(format!("replica 1's log ends before {}", r.final_index));
    }
    for (id, log) in &r.logs {
        if held(log) != first {
            return Err(format!("replica {id}'s log differs after the heal"));
        }
    }
    if r.acked.len() < 2 {
        return Err(format!("only {} writes acknowledged", r.acked.len()));
    }
    Ok(())
}

#[test]
fn raft_no_committed_entry_lost_under_partitions_and_crashes() {
    sweep(
        module_path!(),
        "raft_no_committed_entry_lost_under_partitions_and_crashes",
        3,
        |seed| {
            let r = run(seed, false)?;
            check(&r)
        },
    );
}

#[test]
fn raft_damaged_replica_is_repaired_and_nothing_is_lost() {
    sweep(
        module_path!(),
        "raft_damaged_replica_is_repaired_and_nothing_is_lost",
        2,
        |seed| {
            let r = run(seed, true)?;
            check(&r)
        },
    );
}

#[test]
fn raft_same_seed_same_trace() {
    sweep(module_path!(), "raft_same_seed_same_trace", 1, |seed| {
        let a = run(seed, true)?;
        let b = run(seed, true)?;
        if a.hash != b.hash {
            return Err(format!("trace hash {:016x} then {:016x}", a.hash, b.hash));
        }
        Ok(())
    });
}
