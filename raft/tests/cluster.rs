//! Raft groups over the in-process transport, on `MemDisk`s, in tokio's paused virtual time.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use natsd_raft::openraft::ServerState;
use natsd_raft::seed_thread_rng;
use support::{config, node_info, Cluster, DIR};

async fn write_all(c: &Cluster, acked: &mut Vec<String>, prefix: &str, n: usize) -> u64 {
    let mut last = 0;
    for i in 0..n {
        let cmd = format!("{prefix}-{i}");
        last = c.write(&cmd).await;
        acked.push(cmd);
    }
    last
}

#[tokio::test(start_paused = true)]
async fn three_nodes_elect_replicate_and_survive_a_leader_crash() {
    seed_thread_rng(1);
    let mut c = Cluster::new(&[1, 2, 3], config(None)).await;
    let mut acked = Vec::new();
    let last = write_all(&c, &mut acked, "a", 20).await;
    c.wait_applied(last).await;
    c.check_no_loss(&acked);

    let old = c.leader().await;
    c.crash(old).await;
    let new = c.leader().await;
    assert_ne!(new, old);
    let last = write_all(&c, &mut acked, "b", 20).await;
    c.start(old).await;
    c.wait_applied(last).await;
    c.check_no_loss(&acked);
    assert_eq!(c.applied(old), c.applied(new));
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn five_nodes_keep_committing_with_two_down() {
    seed_thread_rng(2);
    let mut c = Cluster::new(&[1, 2, 3, 4, 5], config(None)).await;
    let mut acked = Vec::new();
    write_all(&c, &mut acked, "a", 10).await;
    let leader = c.leader().await;
    let other = if leader == 1 { 2 } else { 1 };
    c.crash(leader).await;
    c.crash(other).await;
    let last = write_all(&c, &mut acked, "b", 10).await;
    c.wait_applied(last).await;
    c.check_no_loss(&acked);
    c.start(leader).await;
    c.start(other).await;
    c.wait_applied(last).await;
    c.check_no_loss(&acked);
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn whole_cluster_restarts_from_disk() {
    seed_thread_rng(3);
    let mut c = Cluster::new(&[1, 2, 3], config(None)).await;
    let mut acked = Vec::new();
    let last = write_all(&c, &mut acked, "a", 30).await;
    c.wait_applied(last).await;
    for id in [1, 2, 3] {
        c.crash(id).await;
    }
    for id in [1, 2, 3] {
        c.start(id).await;
        assert!(!c.group(id).is_damaged());
    }
    // The new leader's first entry commits everything before it; the machines replay the log.
    let last = c.write("after-restart").await;
    acked.push("after-restart".into());
    c.wait_applied(last).await;
    c.check_no_loss(&acked);
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn lagging_node_catches_up_by_snapshot() {
    seed_thread_rng(4);
    let mut c = Cluster::new(&[1, 2, 3], config(Some(10))).await;
    let mut acked = Vec::new();
    write_all(&c, &mut acked, "a", 5).await;
    let leader = c.leader().await;
    let lagger = if leader == 3 { 2 } else { 3 };
    c.net.set_isolated(lagger, true);
    let last = write_all(&c, &mut acked, "b", 40).await;
    // The leader snapshotted and purged the entries the lagging node misses.
    c.wait_for("a purge on the leader", Duration::from_secs(30), |c| {
        let m = c.group(leader).raft().metrics().borrow().clone();
        m.purged.is_some_and(|p| p.index > 10).then_some(())
    })
    .await;
    c.net.set_isolated(lagger, false);
    c.wait_applied(last).await;
    c.check_no_loss(&acked);
    let m = c.group(lagger).raft().metrics().borrow().clone();
    assert!(
        m.snapshot.is_some(),
        "the lagging node installed a snapshot: {m:?}"
    );
    // The installed snapshot is durable: a restart comes back with it.
    c.crash(lagger).await;
    c.start(lagger).await;
    assert!(c.applied(lagger).len() >= 10);
    c.wait_applied(last).await;
    c.check_no_loss(&acked);
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn membership_add_learner_promote_remove() {
    seed_thread_rng(5);
    let mut c = Cluster::new(&[1, 2, 3], config(None)).await;
    let mut acked = Vec::new();
    write_all(&c, &mut acked, "a", 5).await;
    c.start(4).await;
    let leader = c.leader().await;
    let raft = c.group(leader).raft().clone();
    raft.add_learner(4, node_info(4), true).await.unwrap();
    let voters: BTreeSet<u64> = [1, 2, 3, 4].into();
    raft.change_membership(voters.clone(), false).await.unwrap();
    let m = raft.metrics().borrow().clone();
    let got: BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
    assert_eq!(got, voters);

    // Remove a follower that is not the leader.
    let gone = *voters.iter().find(|&&id| id != leader).unwrap();
    let rest: BTreeSet<u64> = voters.iter().copied().filter(|&id| id != gone).collect();
    raft.change_membership(rest.clone(), false).await.unwrap();
    let last = write_all(&c, &mut acked, "b", 5).await;
    c.crash(gone).await;
    c.wait_applied(last).await;
    c.check_no_loss(&acked);
    let m = c.group(4).raft().metrics().borrow().clone();
    let got: BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
    assert_eq!(got, rest);
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn damaged_replica_neither_votes_nor_leads_until_repaired() {
    seed_thread_rng(6);
    let mut c = Cluster::new(&[1, 2, 3], config(None)).await;
    let mut acked = Vec::new();
    let last = write_all(&c, &mut acked, "a", 40).await;
    c.wait_applied(last).await;
    let leader = c.leader().await;
    let damaged = if leader == 3 { 2 } else { 3 };
    let healthy = [1, 2, 3]
        .into_iter()
        .find(|&id| id != leader && id != damaged)
        .unwrap();

    // Flip a bit in the first record of the damaged node's second segment.
    c.crash(damaged).await;
    let disk = c.disks[&damaged].clone();
    let segs: Vec<String> = disk
        .paths()
        .into_iter()
        .filter(|p| p.starts_with(&format!("{DIR}/seg-")))
        .collect();
    assert!(segs.len() >= 2, "{segs:?}");
    disk.flip_bit(&segs[1], 14 * 8).unwrap();
    // Keep it damaged for now: cut off from the leader, which would refill it.
    c.net.set_isolated(damaged, true);
    c.start(damaged).await;
    assert!(c.group(damaged).is_damaged());
    assert!(c
        .group(damaged)
        .damage_reason()
        .unwrap()
        .contains("checksum"));

    c.crash(leader).await;
    c.net.set_isolated(damaged, false);
    // The healthy node needs the damaged one's vote, which it refuses: no leader, ever.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        assert_eq!(c.current_leader(), None);
        let m = c.group(damaged).raft().metrics().borrow().clone();
        assert_ne!(m.state, ServerState::Candidate);
        assert!(c.group(damaged).is_damaged());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = healthy;

    // With the old leader back the group commits again, refills the damaged log and repairs it.
    c.start(leader).await;
    let last = write_all(&c, &mut acked, "b", 5).await;
    c.wait_applied(last).await;
    c.wait_for("the repair", Duration::from_secs(30), |c| {
        (!c.group(damaged).is_damaged()).then_some(())
    })
    .await;
    c.check_no_loss(&acked);
    // The set-aside segment is still there.
    assert!(disk.paths().iter().any(|p| p.contains("damaged-")));

    // Repaired, it votes again: with the leader down, the other two elect one of themselves.
    let leader = c.leader().await;
    c.crash(leader).await;
    let new = c.leader().await;
    assert_ne!(new, leader);
    let ids: BTreeMap<u64, ()> = c.nodes.keys().map(|&k| (k, ())).collect();
    assert!(ids.contains_key(&new));
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn damaged_follower_is_refilled_by_the_leader_that_saw_its_longer_log() {
    seed_thread_rng(7);
    let mut c = Cluster::new(&[1, 2, 3], config(None)).await;
    let mut acked = Vec::new();
    let last = write_all(&c, &mut acked, "a", 40).await;
    c.wait_applied(last).await;
    let leader = c.leader().await;
    let damaged = if leader == 3 { 2 } else { 3 };
    c.crash(damaged).await;
    let disk = c.disks[&damaged].clone();
    disk.flip_bit(&format!("{DIR}/seg-{:020}", 0), 14 * 8)
        .unwrap();
    // The leader stays up: it last saw a longer log on this follower than the follower now has.
    c.start(damaged).await;
    let last = write_all(&c, &mut acked, "b", 5).await;
    c.wait_applied(last).await;
    c.wait_for("the repair", Duration::from_secs(30), |c| {
        (!c.group(damaged).is_damaged()).then_some(())
    })
    .await;
    assert_eq!(c.current_leader(), Some(leader));
    c.check_no_loss(&acked);
    assert_eq!(c.group(damaged).log_ids(), c.group(leader).log_ids());
    c.shutdown().await;
}
