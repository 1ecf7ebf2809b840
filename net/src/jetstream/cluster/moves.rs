//! Moving a stream to other servers by STREAM.UPDATE with another `placement` (Go:
//! jetstream_cluster.go jsClusteredStreamUpdateRequest and monitorStream's move handling).
//!
//! The meta leader places a new group as a create would and assigns the stream its old
//! peers followed by the new ones, `num_replicas` unchanged (core's
//! `propose_stream_update`): more peers than replicas marks the stream as moving. The
//! stream's leader then brings its Raft group along as for a scale up ([`members`]): each new
//! peer joins as a learner and catches up, then the voters become old and new together, so
//! nothing acknowledged can be lost and publishes go on. Stream info meanwhile lists every
//! peer, old and new, with its lag.
//!
//! Once the voters are exactly the moving group and a quorum of the new peers is current
//! (Go: the old leader waits for `replicas/2+1` current new peers), the stream's leader says
//! so in its heartbeats ([`MoveReady`]). The meta leader then proposes the assignment with
//! only the new peers (core's `propose_move_done`); the stream's leader makes them the
//! voters (a joint configuration: the new majority must accept it), an old leader steps down
//! once that is committed, and the old peers leave and delete their replicas as after a
//! peer removal ([`members`]). The consumers, which live in their stream's group, move with
//! it; their assignments take the new peers.
//!
//! nats-server instead hands the leadership to a new peer first and has it propose the end;
//! natsd's meta leader ends the move itself, since only it proposes meta entries.
//!
//! [`members`]: super::members

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use natsd_raft::{Command, NodeId};
use serde::{Deserialize, Serialize};

use super::{JsCluster, OFFLINE_AFTER};
use crate::server::lock;

/// How far behind the leader's log a new peer may be and still count as current: a stream
/// taking publishes is never exactly level, and the joint configuration keeps every entry
/// safe whatever the lag (the new majority must hold it).
const CURRENT_LAG: u64 = 64;

/// A moving stream whose new peers caught up, as its leader reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct MoveReady {
    /// Account.
    pub(super) account: String,
    /// Stream.
    pub(super) stream: String,
    /// The moving group's peers the report is about (a report about an older assignment is
    /// ignored).
    pub(super) peers: Vec<String>,
}

/// What a moving stream's leader sees of its group.
#[derive(Debug, Clone, Default)]
struct GroupView {
    /// The assignment's peers, as node ids, in order (`None`: one not heard from yet).
    assigned: Option<Vec<NodeId>>,
    /// The replicas the stream's config asks for.
    replicas: usize,
    /// The voters of the effective configuration.
    voters: BTreeSet<NodeId>,
    /// The configuration is joint, or has learners (a change half-way).
    changing: bool,
    /// Each new peer's lag behind the leader's log (`None`: not replicated to yet).
    lag: Vec<(NodeId, Option<u64>)>,
    /// Peers whose replica is being repaired.
    repairing: BTreeSet<NodeId>,
}

/// Have the new peers caught up? The voters are the whole moving group and a quorum of the
/// new peers (the last `replicas` of the assignment) is current.
fn caught_up(v: &GroupView) -> bool {
    let Some(assigned) = &v.assigned else {
        return false;
    };
    if v.changing || v.replicas == 0 || assigned.len() <= v.replicas {
        return false;
    }
    let all: BTreeSet<NodeId> = assigned.iter().copied().collect();
    if v.voters != all {
        return false;
    }
    let new = &assigned[assigned.len() - v.replicas..];
    let current = new
        .iter()
        .filter(|id| !v.repairing.contains(id))
        .filter(|id| {
            v.lag
                .iter()
                .find(|(n, _)| n == *id)
                .and_then(|(_, l)| *l)
                .is_some_and(|l| l <= CURRENT_LAG)
        })
        .count();
    current > v.replicas / 2
}

impl JsCluster {
    /// The moving streams this server leads whose new peers caught up (for the heartbeat).
    pub(super) fn moves_ready(&self) -> Vec<MoveReady> {
        let groups: Vec<_> = lock(&self.streams)
            .values()
            .filter(|g| g.is_leading())
            .cloned()
            .collect();
        let mut out = Vec::new();
        for g in groups {
            let sa = lock(&g.assignment).clone();
            if !sa.is_moving() {
                continue;
            }
            let m = g.group.raft().metrics().borrow().clone();
            if m.current_leader != Some(self.node) {
                continue;
            }
            let mem = m.membership_config.membership();
            let last = m.last_log_index.unwrap_or(0);
            let matched = m.replication.clone().unwrap_or_default();
            let assigned: Option<Vec<NodeId>> = sa
                .group
                .peers
                .iter()
                .map(|p| self.server_of(p).map(|(id, _)| id))
                .collect();
            let lag = assigned
                .iter()
                .flatten()
                .map(|id| {
                    let l = if *id == self.node {
                        Some(0)
                    } else {
                        matched
                            .get(id)
                            .map(|l| last.saturating_sub(l.map_or(0, |l| l.index)))
                    };
                    (*id, l)
                })
                .collect();
            let view = GroupView {
                assigned,
                replicas: sa.replicas(),
                voters: mem.voter_ids().collect(),
                changing: mem.get_joint_config().len() > 1 || mem.learner_ids().next().is_some(),
                lag,
                repairing: self.repairing_peers(g.group.name()),
            };
            if caught_up(&view) {
                out.push(MoveReady {
                    account: sa.account.clone(),
                    stream: sa.config.name.clone(),
                    peers: sa.group.peers.clone(),
                });
            }
        }
        out
    }

    /// On the meta leader, every tick: ends one move its stream's leader reported ready
    /// (see the module docs).
    pub(super) fn follow_moves(self: &Arc<Self>) {
        if !self.is_meta_leader() || self.moving.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut reports = self.moves_ready();
        reports.extend(
            lock(&self.peers)
                .values()
                .filter(|p| p.last.elapsed() < OFFLINE_AFTER)
                .flat_map(|p| p.hb.moves_ready.iter().cloned()),
        );
        let entry = {
            let meta = lock(&self.meta_state);
            reports.iter().find_map(|r| {
                meta.propose_move_done(&r.account, &r.stream, &r.peers, &self.cluster_name)
            })
        };
        let Some(entry) = entry else {
            self.moving.store(false, Ordering::Release);
            return;
        };
        let c = Arc::clone(self);
        tokio::spawn(async move {
            tracing::info!("JetStream cluster: a stream's new peers caught up; ending its move");
            if let Err(e) = c.meta.raft().client_write(Command(entry.encode())).await {
                tracing::warn!("JetStream cluster: ending a stream's move: {e}");
            }
            c.moving.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{caught_up, GroupView, CURRENT_LAG};

    fn view(voters: &[u64], lag: &[(u64, Option<u64>)]) -> GroupView {
        GroupView {
            assigned: Some(vec![1, 2, 3, 4, 5, 6]),
            replicas: 3,
            voters: voters.iter().copied().collect(),
            changing: false,
            lag: lag.to_vec(),
            repairing: Default::default(),
        }
    }

    #[test]
    fn a_move_is_ready_once_every_peer_votes_and_a_new_quorum_is_current() {
        let all = [1, 2, 3, 4, 5, 6];
        let level = [(4, Some(0)), (5, Some(3)), (6, None)];
        assert!(caught_up(&view(&all, &level)));
        // The new peers are not voters yet (still learning): wait.
        assert!(!caught_up(&view(&[1, 2, 3], &level)));
        // Only one of three new peers current: wait.
        let behind = [(4, Some(0)), (5, Some(CURRENT_LAG + 1)), (6, None)];
        assert!(!caught_up(&view(&all, &behind)));
        // A peer being repaired is not current, whatever its log holds.
        let mut v = view(&all, &level);
        v.repairing.insert(5);
        assert!(!caught_up(&v));
        // A configuration change half-way, a peer not heard from, or no move at all.
        let mut v = view(&all, &level);
        v.changing = true;
        assert!(!caught_up(&v));
        let mut v = view(&all, &level);
        v.assigned = None;
        assert!(!caught_up(&v));
        let mut v = view(&[4, 5, 6], &level);
        v.assigned = Some(vec![4, 5, 6]);
        assert!(!caught_up(&v));
    }
}
