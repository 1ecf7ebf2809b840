//! Clustered JetStream under the faults of Jepsen's NATS 2.12.1 analysis: one named scenario
//! per finding (F1–F7), each on the replicated stream group of `natsd_sim::jscluster` (3 or
//! 5 hubs, `natsd-raft` over turmoil, each replica's file store and Raft files on its own
//! `MemDisk`), plus a general chaos scenario, one that cuts catch-ups (a replica rebuilt from
//! a peer over the simulated network) part-way, and a stream move's membership steps.
//!
//! Every run ends with a fault-free phase that must converge, then the checkers
//! (`jscluster::check`): no acknowledged publish lost on any replica, replicas identical (no
//! divergence, no lost middle), the stream and every stream assignment still there, a leader
//! and an acknowledged publish within a bound after the heal, and no damaged replica ever led.
//!
//! `NATS_SIM_SEEDS=<n>` sweeps `n` seeds per scenario, `NATS_SIM_SEED=<u64>` replays one (a
//! failure prints the command), `NATS_SIM_VERBOSE=1` prints each run's faults and trace hash.

use std::time::Duration;

use natsd_core::jetstream::store::CrashMode;
use natsd_core::rng::SplitMix64;
use natsd_raft::NodeId;
use natsd_sim::jscluster::{check, run, Ack, Fault, Files, Outcome, Plan, Spec};
use natsd_sim::seeds::sweep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A time in the fault window, `from..from+span` ms.
fn at(rng: &mut SplitMix64, from: u64, span: u64) -> Duration {
    ms(from + rng.below(span))
}

/// `k` distinct nodes.
fn pick(rng: &mut SplitMix64, ids: &[NodeId], k: usize) -> Vec<NodeId> {
    let mut pool = ids.to_vec();
    let mut out = Vec::new();
    while out.len() < k && !pool.is_empty() {
        out.push(pool.remove(rng.below(pool.len() as u64) as usize));
    }
    out
}

fn crash_mode(rng: &mut SplitMix64) -> CrashMode {
    if rng.below(2) == 0 {
        CrashMode::Torn
    } else {
        CrashMode::LoseUnsynced
    }
}

/// What a scenario's faults must have done for a run to count (a flip that damaged
/// nothing tests nothing).
type Expect = fn(&Outcome) -> Result<(), String>;

fn anything(_: &Outcome) -> Result<(), String> {
    Ok(())
}

fn some_damage(o: &Outcome) -> Result<(), String> {
    if o.raft_damaged.is_empty() && o.troubles.is_empty() {
        return Err("the corruption damaged no replica".into());
    }
    Ok(())
}

fn removed_and_added(o: &Outcome) -> Result<(), String> {
    let removed = o.changes.iter().any(|c| c.starts_with("Remove"));
    let added = o.changes.iter().any(|c| c.starts_with("Add"));
    if !removed || !added {
        return Err(format!(
            "membership changes did not happen: {:?}",
            o.changes
        ));
    }
    Ok(())
}

fn raft_damage(o: &Outcome) -> Result<(), String> {
    if o.raft_damaged.is_empty() {
        return Err("the corruption damaged no Raft replica".into());
    }
    Ok(())
}

fn sweep_spec(test: &str, count: usize, spec: Spec, expect: Expect) {
    sweep(module_path!(), test, count, |seed| {
        let o = run(spec, seed)?;
        check(&o)
            .and_then(|()| expect(&o))
            .map_err(|e| format!("{e}; faults: {:?}", o.plan))
    });
}

/// General chaos: partitions (one node, a majority), kills, power cuts of one node, pauses,
/// clock jumps and packet delay, one after another.
fn chaos(rng: &mut SplitMix64, ids: &[NodeId]) -> Plan {
    let mut plan = Vec::new();
    let mut t = 2_000;
    while t < 20_000 {
        let n = pick(rng, ids, 1)[0];
        let len = 500 + rng.below(3_000);
        let (start, end) = match rng.below(6) {
            0 => {
                let k = if rng.below(2) == 0 {
                    1
                } else {
                    ids.len() / 2 + 1
                };
                (Fault::Partition(pick(rng, ids, k)), Fault::HealNet)
            }
            1 => (Fault::Kill(n), Fault::Restart(n)),
            2 => (Fault::Crash(n, crash_mode(rng)), Fault::Restart(n)),
            3 => (Fault::Pause(n), Fault::Resume(n)),
            4 => {
                let jump = rng.below(7_200) as i64 - 3_600;
                (Fault::Clock(n, jump), Fault::Clock(n, -jump))
            }
            _ => (Fault::Delay(n, ms(150)), Fault::Delay(n, ms(10))),
        };
        plan.push((ms(t), start));
        plan.push((ms(t + len), end));
        t += len + rng.below(1_500);
    }
    plan
}

/// Chaos on three hubs.
#[test]
fn chaos_r3() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 3,
        meta: false,
        publishes: 120,
        plan: chaos,
    };
    sweep_spec("chaos_r3", 12, spec, anything);
}

/// Chaos on five hubs.
#[test]
fn chaos_r5() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 5,
        meta: false,
        publishes: 120,
        plan: chaos,
    };
    sweep_spec("chaos_r5", 6, spec, anything);
}

/// F1 (2.10.20–2.10.22, #6888): a handful of `kill -9`s made the cluster forget the stream
/// for good. Defeated by: Raft state and stream data are never deleted on recovery (only a
/// `RemoveStream` entry deletes a stream), and a restarted replica replays its log over its
/// store. The meta group runs too: no assignment may vanish.
fn f1_plan(rng: &mut SplitMix64, ids: &[NodeId]) -> Vec<(Duration, Fault)> {
    let mut plan = Vec::new();
    for _ in 0..4 + rng.below(4) {
        let n = pick(rng, ids, 1)[0];
        let t = at(rng, 2_000, 18_000);
        plan.push((t, Fault::Kill(n)));
        plan.push((t + at(rng, 200, 2_000), Fault::Restart(n)));
    }
    plan.sort_by_key(|(t, _)| *t);
    plan
}

/// F1: see [`f1_plan`].
#[test]
fn f1_kill9_stream_not_forgotten() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 3,
        meta: true,
        publishes: 100,
        plan: f1_plan,
    };
    sweep_spec("f1_kill9_stream_not_forgotten", 10, spec, anything);
}

/// F2 (2.12.1, `sync_interval` 2m, #7564): a coordinated power failure of every node lost
/// acknowledged writes, once the whole stream (0-byte files). Defeated by: a publish is
/// acknowledged only once a majority's Raft logs synced it, and the stream store is synced
/// at every group commit before a snapshot can purge the log.
fn f2_plan(rng: &mut SplitMix64, _ids: &[NodeId]) -> Vec<(Duration, Fault)> {
    let mut plan = Vec::new();
    let mut t = 3_000;
    for _ in 0..2 + rng.below(2) {
        t += rng.below(4_000);
        plan.push((ms(t), Fault::PowerLossAll(crash_mode(rng))));
        t += 300 + rng.below(1_500);
        plan.push((ms(t), Fault::RestartAll));
        t += 2_000;
    }
    plan
}

/// F2 on three hubs: see [`f2_plan`].
#[test]
fn f2_power_loss_all_nodes() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 3,
        meta: false,
        publishes: 100,
        plan: f2_plan,
    };
    sweep_spec("f2_power_loss_all_nodes", 10, spec, anything);
}

/// F2 on five hubs.
#[test]
fn f2_power_loss_all_nodes_r5() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 5,
        meta: false,
        publishes: 100,
        plan: f2_plan,
    };
    sweep_spec("f2_power_loss_all_nodes_r5", 6, spec, anything);
}

/// Corruption on a minority: each victim is killed, has `damage` done to its stream blocks
/// and stream Raft log, and restarts; other nodes are killed around it.
fn minority_damage(
    rng: &mut SplitMix64,
    ids: &[NodeId],
    damage: fn(NodeId, Files, &mut SplitMix64) -> Fault,
) -> Vec<(Duration, Fault)> {
    let mut plan = Vec::new();
    let victims = pick(rng, ids, (ids.len() - 1) / 2);
    for &v in &victims {
        let t = at(rng, 4_000, 12_000);
        plan.push((t, Fault::Crash(v, crash_mode(rng))));
        plan.push((t + ms(1), damage(v, Files::StreamBlocks, rng)));
        plan.push((t + ms(2), damage(v, Files::StreamLog, rng)));
        plan.push((t + at(rng, 300, 2_000), Fault::Restart(v)));
    }
    for _ in 0..2 {
        let n = pick(rng, ids, 1)[0];
        let t = at(rng, 2_000, 16_000);
        plan.push((t, Fault::Kill(n)));
        plan.push((t + at(rng, 300, 2_000), Fault::Restart(n)));
    }
    plan.sort_by_key(|(t, _)| *t);
    plan
}

/// F3 (2.12.1, R5, `sync: always`, #7549): single-bit errors in the block files of a
/// minority plus kills lost acknowledged writes, some in the middle, and a corrupted node
/// could lead. Defeated by: checksums on every stream and Raft record; a replica whose Raft
/// log fails them neither votes nor leads until repaired (`natsd_raft::Health`), and one whose
/// stream store fails them is rebuilt from a healthy peer (caught up over the simulated
/// network, so the faults can cut the catch-up too) before it applies more.
#[test]
fn f3_bitflip_minority_r5() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 5,
        meta: false,
        publishes: 100,
        plan: |rng, ids| {
            minority_damage(rng, ids, |n, f, rng| Fault::BitFlip(n, f, 1 + rng.below(2)))
        },
    };
    sweep_spec("f3_bitflip_minority_r5", 10, spec, some_damage);
}

/// F4 (2.12.1): truncated block files on a minority plus kills lost acknowledged writes.
/// Defeated by the same rules as F3: a store or log short of what it synced is either cut
/// as a torn tail (and the replica still holds every entry it acknowledged on its peers'
/// majority) or found damaged and repaired from peers.
#[test]
fn f4_truncation_minority_r5() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 5,
        meta: false,
        publishes: 100,
        plan: |rng, ids| {
            minority_damage(rng, ids, |n, f, rng| {
                Fault::Truncate(n, f, 1 + rng.below(600))
            })
        },
    };
    sweep_spec("f4_truncation_minority_r5", 10, spec, some_damage);
}

/// F5 (2.12.1, R5, #7556): bit errors in the meta group's snapshot on 2 of 5 nodes plus
/// crashes made servers see the stream as orphaned and delete it; quorum never came back.
/// Defeated by: a snapshot failing its checksum is set aside (never acted on), the replica
/// is marked damaged and refilled by the leader, and nothing is deleted because it looks
/// orphaned: only a `RemoveStream` entry removes a stream. Checked: every acknowledged
/// stream assignment is still on every node, and the stream's data too.
fn f5_plan(rng: &mut SplitMix64, ids: &[NodeId]) -> Vec<(Duration, Fault)> {
    let mut plan = Vec::new();
    for v in pick(rng, ids, 2) {
        // Late enough that the meta group snapshotted (its log is short, so also hit it).
        let t = at(rng, 8_000, 8_000);
        plan.push((t, Fault::Crash(v, crash_mode(rng))));
        plan.push((t + ms(1), Fault::BitFlip(v, Files::MetaSnapshot, 2)));
        if rng.below(2) == 0 {
            plan.push((t + ms(2), Fault::BitFlip(v, Files::MetaLog, 1)));
        }
        plan.push((t + at(rng, 300, 2_000), Fault::Restart(v)));
    }
    for _ in 0..2 {
        let n = pick(rng, ids, 1)[0];
        let t = at(rng, 2_000, 16_000);
        plan.push((t, Fault::Kill(n)));
        plan.push((t + at(rng, 300, 2_000), Fault::Restart(n)));
    }
    plan.sort_by_key(|(t, _)| *t);
    plan
}

/// F5: see [`f5_plan`].
#[test]
fn f5_snapshot_corruption_two_of_five_no_orphan_cleanup() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 5,
        meta: true,
        publishes: 80,
        plan: f5_plan,
    };
    sweep_spec(
        "f5_snapshot_corruption_two_of_five_no_orphan_cleanup",
        10,
        spec,
        raft_damage,
    );
}

/// F6 (2.12.1, default sync, #7567): one node's OS crash (unsynced data lost) with
/// partitions or pauses around it (`part-kill`, `pause-kill`) left a persistent split brain.
/// Defeated by: nothing is acknowledged before a majority synced it, so the crashed node
/// loses only what it never acknowledged, and a replica whose store went its own way is
/// rebuilt from a peer instead of kept.
fn f6_plan(rng: &mut SplitMix64, ids: &[NodeId]) -> Vec<(Duration, Fault)> {
    let pause = rng.below(2) == 0;
    let minority = pick(rng, ids, (ids.len() - 1) / 2);
    let majority: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|n| !minority.contains(n))
        .collect();
    let victim = majority[rng.below(majority.len() as u64) as usize];
    let mut plan = Vec::new();
    let t0 = 2_000 + rng.below(2_000);
    // Cut (or pause) a minority away, let writes go on, crash one majority node.
    if pause {
        for &m in &minority {
            plan.push((ms(t0), Fault::Pause(m)));
        }
    } else {
        plan.push((ms(t0), Fault::Partition(minority.clone())));
    }
    let t1 = t0 + 3_000 + rng.below(2_000);
    plan.push((ms(t1), Fault::Crash(victim, CrashMode::LoseUnsynced)));
    if pause {
        for &m in &minority {
            plan.push((ms(t1 + 200), Fault::Resume(m)));
        }
    } else {
        plan.push((ms(t1 + 200), Fault::HealNet));
    }
    // A new majority with the crashed node: cut away others of the old majority.
    let others: Vec<NodeId> = majority.iter().copied().filter(|&n| n != victim).collect();
    let cut: Vec<NodeId> = others.into_iter().take(minority.len()).collect();
    let t2 = t1 + 500 + rng.below(1_000);
    plan.push((ms(t2), Fault::Partition(cut)));
    plan.push((ms(t2 + 100), Fault::Restart(victim)));
    plan.push((ms(t2 + 4_000 + rng.below(3_000)), Fault::HealNet));
    plan
}

/// F6: see [`f6_plan`].
#[test]
fn f6_one_node_os_crash_part_kill_no_split_brain() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 5,
        meta: false,
        publishes: 100,
        plan: f6_plan,
    };
    sweep_spec(
        "f6_one_node_os_crash_part_kill_no_split_brain",
        10,
        spec,
        anything,
    );
}

/// F7 (2.12.1, `sync: always`, #7545): removing a node, then partitioning and killing
/// several in quick succession lost acknowledged writes. Defeated by: membership changes go
/// through the Raft log (joint consensus, one at a time, never fewer than three voters), a
/// removed node comes back as a learner that catches up before it votes, and acknowledged
/// writes are on a majority of the configuration they committed in.
fn f7_plan(rng: &mut SplitMix64, ids: &[NodeId]) -> Vec<(Duration, Fault)> {
    let mut plan = Vec::new();
    let [gone, cut, k1, k2] = {
        let p = pick(rng, ids, 4);
        [p[0], p[1], p[2], p[3]]
    };
    let t0 = 2_000 + rng.below(2_000);
    plan.push((ms(t0), Fault::Remove(gone)));
    let t1 = t0 + 1_500 + rng.below(1_500);
    plan.push((ms(t1), Fault::Partition(vec![cut])));
    plan.push((ms(t1 + 100 + rng.below(300)), Fault::Kill(cut)));
    plan.push((
        ms(t1 + 200 + rng.below(300)),
        Fault::Crash(k1, crash_mode(rng)),
    ));
    plan.push((ms(t1 + 300 + rng.below(300)), Fault::Kill(k2)));
    let t2 = t1 + 1_500 + rng.below(2_000);
    plan.push((ms(t2), Fault::HealNet));
    plan.push((ms(t2 + 100), Fault::RestartAll));
    plan.push((ms(t2 + 3_000 + rng.below(3_000)), Fault::Add(gone)));
    plan
}

/// F7: see [`f7_plan`].
#[test]
fn f7_membership_change_partition_kill() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 5,
        meta: false,
        publishes: 100,
        plan: f7_plan,
    };
    sweep_spec(
        "f7_membership_change_partition_kill",
        10,
        spec,
        removed_and_added,
    );
}

/// A stream move (STREAM.UPDATE with other placement tags): an R3 group on three of five
/// nodes moves to two other nodes and one it shares, the new ones joining as learners, the
/// voters old and new together, then only the new; an old-only node is cut off while it
/// moves, and once moved a new node is killed and restarted. Acknowledged writes must
/// survive and every replica converge.
fn move_plan(rng: &mut SplitMix64, ids: &[NodeId]) -> Plan {
    let p = pick(rng, ids, 5);
    let (a, b, keep, cut) = (p[0], p[1], p[2], p[3]);
    let mut plan = Vec::new();
    let t0 = 2_000 + rng.below(1_000);
    plan.push((ms(t0), Fault::Remove(a)));
    plan.push((ms(t0 + 300), Fault::Remove(b)));
    let t1 = t0 + 2_000 + rng.below(1_000);
    plan.push((ms(t1), Fault::Move(vec![a, b, keep])));
    plan.push((ms(t1 + rng.below(300)), Fault::Partition(vec![cut])));
    let t2 = t1 + 3_000 + rng.below(1_000);
    plan.push((ms(t2), Fault::HealNet));
    plan.push((ms(t2 + 500), Fault::Kill(a)));
    plan.push((ms(t2 + 1_500 + rng.below(1_000)), Fault::Restart(a)));
    plan
}

fn moved(o: &Outcome) -> Result<(), String> {
    if !o.changes.iter().any(|c| c.starts_with("Move")) {
        return Err(format!("the move did not happen: {:?}", o.changes));
    }
    Ok(())
}

/// The move of [`move_plan`].
#[test]
fn stream_move_with_a_partition_and_a_kill() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 5,
        meta: false,
        publishes: 100,
        plan: move_plan,
    };
    sweep_spec("stream_move_with_a_partition_and_a_kill", 5, spec, moved);
}

/// Faults aimed at catch-ups: a node is power-cut with bit flips in its stream blocks, so it
/// restarts in trouble and catches up from a peer; a moment after it restarts, while the
/// catch-up is under way, it is cut off by a partition or killed again. The catch-up is
/// interrupted for real and must resume (what it wrote is checked against the peer and
/// completed) once the fault ends.
fn catchup_cut_plan(rng: &mut SplitMix64, ids: &[NodeId]) -> Plan {
    let mut plan = Vec::new();
    let mut t = 3_000;
    for _ in 0..3 {
        let v = pick(rng, ids, 1)[0];
        plan.push((ms(t), Fault::Crash(v, crash_mode(rng))));
        plan.push((ms(t + 1), Fault::BitFlip(v, Files::StreamBlocks, 2)));
        let up = t + 300 + rng.below(500);
        plan.push((ms(up), Fault::Restart(v)));
        let cut = up + 100 + rng.below(300);
        if rng.below(2) == 0 {
            plan.push((ms(cut), Fault::Partition(vec![v])));
            plan.push((ms(cut + 1_000 + rng.below(1_000)), Fault::HealNet));
        } else {
            plan.push((ms(cut), Fault::Kill(v)));
            plan.push((ms(cut + 500 + rng.below(500)), Fault::Restart(v)));
        }
        t = cut + 3_000;
    }
    plan
}

/// Catch-ups cut by partitions and kills: see [`catchup_cut_plan`]. Every run must pass the
/// checkers; across the sweep, some catch-up must have been cut part-way and a later one
/// must have completed what it left.
#[test]
fn catchup_cut_by_partition_or_kill_resumes() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 3,
        meta: false,
        publishes: 100,
        plan: catchup_cut_plan,
    };
    let seeds = natsd_sim::seeds::sweep_seeds("catchup_cut_by_partition_or_kill_resumes", 4);
    let (mut cut, mut resumed) = (0, 0);
    for &seed in &seeds {
        let replay = natsd_sim::seeds::replay_command(
            module_path!(),
            "catchup_cut_by_partition_or_kill_resumes",
            seed,
        );
        let o = run(spec, seed).unwrap_or_else(|e| panic!("{e}\nreplay: {replay}"));
        check(&o).unwrap_or_else(|e| panic!("{e}; faults: {:?}\nreplay: {replay}", o.plan));
        let notes: Vec<&String> = o.repairs.values().flatten().collect();
        cut += notes
            .iter()
            .filter(|n| n.starts_with("catch-up: from"))
            .count();
        resumed += notes
            .iter()
            .filter(|n| n.starts_with("caught up") && !n.contains("(0 kept)"))
            .count();
    }
    // One replayed seed need not cut a catch-up; a sweep must.
    if seeds.len() > 1 {
        assert!(
            cut > 0 && resumed > 0,
            "no catch-up was cut and resumed in seeds {seeds:?} ({cut} cut, {resumed} resumed)"
        );
    }
}

/// The same seed twice gives the same trace hash (faults, acknowledgements, convergence).
#[test]
fn jetstream_cluster_same_seed_same_trace() {
    sweep(
        module_path!(),
        "jetstream_cluster_same_seed_same_trace",
        3,
        |seed| {
            let spec = Spec {
                ack: Ack::Committed,
                nodes: 3,
                meta: true,
                publishes: 60,
                plan: chaos,
            };
            let a = run(spec, seed)?;
            let b = run(spec, seed)?;
            if a.hash != b.hash {
                return Err(format!("trace hash {:016x} then {:016x}", a.hash, b.hash));
            }
            check(&a)
        },
    );
}

/// Negative control for F2: acknowledging a publish once the leader stored it, before a
/// majority synced it (the shape of nats-server 2.12's default `sync_interval`), loses
/// acknowledged writes to a power loss of every node, and the checkers say so. Without this,
/// a checker that never fails would pass every scenario above.
#[test]
fn f2_negative_control_ack_before_commit_is_caught() {
    let spec = Spec {
        ack: Ack::Stored,
        nodes: 3,
        meta: false,
        publishes: 100,
        plan: f2_plan,
    };
    let seeds = natsd_sim::seeds::sweep_seeds("f2_negative_control_ack_before_commit_is_caught", 4);
    let mut caught = Vec::new();
    for &seed in &seeds {
        let o = run(spec, seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        if let Err(e) = check(&o) {
            caught.push(e);
        }
    }
    eprintln!(
        "negative control: {} of {} seeds caught: {caught:?}",
        caught.len(),
        seeds.len()
    );
    assert!(
        !caught.is_empty(),
        "acknowledging before commit lost nothing under power loss in seeds {seeds:?}"
    );
}

/// F4, aimed: the tail of the Raft log is cut on the two replicas that, with one other,
/// hold the newest acknowledged entries, while the two others lagged behind a partition;
/// then the damaged pair and the laggards form the majority. A cut tail looks like the tail
/// a power loss tears, so unless the log can tell the two apart the pair votes with entries
/// missing that it acknowledged.
fn f4_tail_plan(rng: &mut SplitMix64, ids: &[NodeId]) -> Plan {
    let p = pick(rng, ids, 5);
    let (holder, v1, v2, laggards) = (p[0], p[1], p[2], vec![p[3], p[4]]);
    let t0 = 2_000 + rng.below(1_000);
    let t1 = t0 + 3_000 + rng.below(2_000);
    let cut = 100 + rng.below(400);
    vec![
        (ms(t0), Fault::Partition(laggards)),
        (ms(t1), Fault::Crash(v1, CrashMode::LoseUnsynced)),
        (ms(t1), Fault::Crash(v2, CrashMode::LoseUnsynced)),
        (ms(t1 + 1), Fault::Truncate(v1, Files::StreamLog, cut)),
        (ms(t1 + 1), Fault::Truncate(v2, Files::StreamLog, cut)),
        (ms(t1 + 2), Fault::HealNet),
        (ms(t1 + 3), Fault::Partition(vec![holder])),
        (ms(t1 + 300), Fault::Restart(v1)),
        (ms(t1 + 300), Fault::Restart(v2)),
        (ms(t1 + 6_000), Fault::HealNet),
    ]
}

/// F4, aimed: see [`f4_tail_plan`].
#[test]
fn f4_truncated_log_tail_two_of_five_with_laggards() {
    let spec = Spec {
        ack: Ack::Committed,
        nodes: 5,
        meta: false,
        publishes: 100,
        plan: f4_tail_plan,
    };
    sweep_spec(
        "f4_truncated_log_tail_two_of_five_with_laggards",
        3,
        spec,
        anything,
    );
}
