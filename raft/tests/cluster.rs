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

#[tokio::test(start_paused = true)]
async fn lost_snapshot_of_a_purged_log_is_replaced_by_the_leaders() {
    seed_thread_rng(8);
    let mut c = Cluster::new(&[1, 2, 3], config(Some(10))).await;
    let mut acked = Vec::new();
    let last = write_all(&c, &mut acked, "a", 40).await;
    c.wait_applied(last).await;
    let leader = c.leader().await;
    let victim = if leader == 3 { 2 } else { 3 };
    c.wait_for("a purge on the victim", Duration::from_secs(30), |c| {
        let m = c.group(victim).raft().metrics().borrow().clone();
        m.purged.is_some_and(|p| p.index > 10).then_some(())
    })
    .await;
    c.crash(victim).await;
    let disk = c.disks[&victim].clone();
    disk.flip_bit(&format!("{DIR}/snapshot"), 200).unwrap();
    c.start(victim).await;
    let why = c.group(victim).damage_reason().expect("damaged");
    assert!(why.contains("snapshot"), "{why}");
    // The entries the snapshot replaced are gone here: the leader's snapshot brings them back.
    let last = write_all(&c, &mut acked, "b", 15).await;
    c.wait_applied(last).await;
    c.wait_for("the repair", Duration::from_secs(30), |c| {
        (!c.group(victim).is_damaged()).then_some(())
    })
    .await;
    c.check_no_loss(&acked);
    assert!(disk.paths().iter().any(|p| p.ends_with("-snapshot")));
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn one_hub_hosts_many_groups() {
    use std::sync::{Arc, Mutex};

    use natsd_core::jetstream::store::MemDisk;
    use natsd_raft::{Command, LocalNet, RaftHub, SharedDisk};
    use support::{Kv, KvState};

    seed_thread_rng(9);
    let net = LocalNet::new();
    let names = ["$meta", "S-orders"];
    let mut hubs = Vec::new();
    let mut states = BTreeMap::new();
    for id in [1u64, 2, 3] {
        let hub = RaftHub::new(id, net.endpoint(id));
        net.register(&hub);
        let disk = SharedDisk::new(MemDisk::new(id));
        for name in names {
            let state = Arc::new(Mutex::new(KvState::default()));
            hub.open_group(
                name,
                config(None),
                disk.clone(),
                &format!("raft/{name}"),
                Box::new(Kv(state.clone())),
            )
            .await
            .unwrap();
            states.insert((id, name), state);
        }
        hubs.push(hub);
    }
    assert_eq!(
        hubs[0].group_names(),
        vec!["$meta".to_owned(), "S-orders".to_owned()]
    );
    for name in names {
        let members: BTreeMap<u64, _> = [1, 2, 3]
            .into_iter()
            .map(|id| (id, node_info(id)))
            .collect();
        hubs[0]
            .group(name)
            .unwrap()
            .raft()
            .initialize(members)
            .await
            .unwrap();
    }
    for name in names {
        // Each group elects on its own and takes writes at its own leader.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let leader = loop {
            let l = hubs[0]
                .group(name)
                .unwrap()
                .raft()
                .metrics()
                .borrow()
                .current_leader;
            if let Some(l) = l {
                break l;
            }
            assert!(tokio::time::Instant::now() < deadline, "{name} elects");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let raft = hubs[leader as usize - 1]
            .group(name)
            .unwrap()
            .raft()
            .clone();
        for i in 0..3 {
            raft.client_write(Command(format!("{name}-{i}").into_bytes()))
                .await
                .unwrap();
        }
    }
    for ((id, name), state) in &states {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while state.lock().unwrap().applied.len() < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} on {id} applies"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let applied = state.lock().unwrap().applied.clone();
        assert!(
            applied.iter().all(|(_, c)| c.starts_with(name)),
            "{name} on {id}: {applied:?}"
        );
    }
    for hub in &hubs {
        hub.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_restarted_leader_does_not_lead_again_in_its_old_term() {
    // openraft 0.9 would resume leading at once in the same term; if its log lost an unsynced
    // tail its followers hold, its next entries would reuse their log ids with other contents.
    seed_thread_rng(10);
    let mut c = Cluster::new(&[1, 2, 3], config(None)).await;
    let mut acked = Vec::new();
    write_all(&c, &mut acked, "a", 5).await;
    let leader = c.leader().await;
    let term = c.group(leader).raft().metrics().borrow().current_term;
    // Back before the followers' election timeout runs out.
    c.crash(leader).await;
    c.start(leader).await;
    assert_ne!(
        c.group(leader).raft().metrics().borrow().state,
        ServerState::Leader
    );
    let last = write_all(&c, &mut acked, "b", 5).await;
    let now = c.leader().await;
    assert!(c.group(now).raft().metrics().borrow().current_term > term);
    c.wait_applied(last).await;
    c.check_no_loss(&acked);
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn replica_with_a_damaged_vote_file_is_rebuilt_from_the_leader() {
    seed_thread_rng(11);
    let mut c = Cluster::new(&[1, 2, 3], config(None)).await;
    let mut acked = Vec::new();
    let last = write_all(&c, &mut acked, "a", 20).await;
    c.wait_applied(last).await;
    let leader = c.leader().await;
    let victim = if leader == 3 { 2 } else { 3 };
    c.crash(victim).await;
    let disk = c.disks[&victim].clone();
    disk.flip_bit(&format!("{DIR}/state"), 100).unwrap();
    c.start(victim).await;
    let why = c.group(victim).damage_reason().expect("damaged");
    assert!(why.contains("vote"), "{why}");
    // Its whole log was set aside (kept); the leader sends everything again.
    assert!(c.group(victim).log_ids().is_empty());
    let last = write_all(&c, &mut acked, "b", 5).await;
    c.wait_applied(last).await;
    c.wait_for("the repair", Duration::from_secs(30), |c| {
        (!c.group(victim).is_damaged()).then_some(())
    })
    .await;
    c.check_no_loss(&acked);
    assert_eq!(c.group(victim).log_ids(), c.group(leader).log_ids());
    assert!(disk.paths().iter().any(|p| p.ends_with("-state")));
    c.shutdown().await;
}
