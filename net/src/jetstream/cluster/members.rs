//! A stream group's members follow its assignment (Go: jetstream_cluster.go
//! processClusterUpdateStream, the leader's `ProposeAddPeer` / `ProposeRemovePeer`).
//!
//! The meta group decides a stream's peers (a `num_replicas` update, a peer removed); each
//! server then starts or stops its replica ([`effects`](super::effects)). The Raft group's
//! membership is brought along by its **leader**: every [`super::LEADER_TICK`] it compares
//! the group's voters with the assigned peers, adds each new peer as a learner (blocking until
//! it caught up: its replica fills from the log, or from an installed snapshot and then a
//! [`repair`](super::repair)), then makes the voters exactly the assigned peers. A leader that
//! is not assigned any more removes itself; openraft then has it step down. A joint
//! configuration left behind by a leader that stopped half-way is finished by the next one
//! (openraft moves from a joint configuration on to the one asked for).
//!
//! `$JS.API.STREAM.PEER.REMOVE.<stream>` (`{"peer": "<server name>"}`) is answered by the
//! meta leader once its entry applied: the named member is replaced by a server of the
//! group's cluster that holds no replica when one is free (Go: jsStreamRemovePeerRequest).
//!
//! `$JS.API.SERVER.REMOVE` (system account; `{"peer": "<server name>"}` or
//! `{"peer_id": "<peer id>"}`) is answered by the meta leader once applied (Go:
//! jsLeaderServerRemoveRequest); the leader then takes the server out of the meta group and
//! replaces it in every stream it held a replica of, as a peer removal would. It is never
//! added back while it is marked removed.
//!
//! A server removed from a stream that lives on keeps its replica running until the group's
//! membership no longer holds it (the remaining peers need it for their quorum until then),
//! at most [`LEAVE_WAIT`]; then it stops the replica and deletes its files, as that explicit
//! removal asks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use natsd_core::jetstream::api::{err, ApiError};
use natsd_core::jetstream::cluster::placement::replace_peer;
use natsd_core::jetstream::cluster::propose::{Origin, Proposal};
use natsd_core::jetstream::cluster::shapes::{
    ClusterOp, ServerRemoveRequest, StreamRemovePeerRequest,
};
use natsd_core::jetstream::cluster::{MetaEntry, Request};
use natsd_raft::openraft::ChangeMembers;
use natsd_raft::{Command, NodeId, NodeInfo};

use super::api::ApiRequest;
use super::replicas::{self, StreamGroup};
use super::JsCluster;
use crate::server::lock;

/// How long a removed replica waits for its group to let it go.
const LEAVE_WAIT: Duration = Duration::from_secs(60);
/// How long a new member may take to catch up as a learner.
const LEARN_WAIT: Duration = Duration::from_secs(120);

impl JsCluster {
    /// On every leading replica: starts bringing the group's membership to its assignment.
    pub(super) fn reconcile_members(&self) {
        let groups: Vec<Arc<StreamGroup>> = lock(&self.streams)
            .values()
            .filter(|g| g.is_leading())
            .cloned()
            .collect();
        for g in groups {
            let peers = lock(&g.assignment).group.peers.clone();
            let want: BTreeMap<NodeId, NodeInfo> =
                peers.iter().filter_map(|p| self.server_of(p)).collect();
            if want.len() != peers.len() || want.is_empty() {
                // A peer not heard from yet: wait.
                continue;
            }
            let m = g.group.raft().metrics().borrow().clone();
            let membership = m.membership_config.membership().clone();
            let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
            let want_ids: BTreeSet<NodeId> = want.keys().copied().collect();
            let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
            if voters == want_ids && learners.is_empty() {
                continue;
            }
            if g.changing.swap(true, Ordering::AcqRel) {
                continue;
            }
            let raft = g.group.raft().clone();
            let name = format!("{} in account {}", g.name, g.account);
            let g2 = Arc::clone(&g);
            tokio::spawn(async move {
                for (id, info) in &want {
                    if voters.contains(id) || learners.contains(id) {
                        continue;
                    }
                    tracing::info!("JetStream stream {name}: adding {} as a learner", info.name);
                    let added =
                        tokio::time::timeout(LEARN_WAIT, raft.add_learner(*id, info.clone(), true))
                            .await;
                    if !matches!(added, Ok(Ok(_))) {
                        tracing::warn!(
                            "JetStream stream {name}: {} did not join as a learner",
                            info.name
                        );
                        g2.changing.store(false, Ordering::Release);
                        return;
                    }
                }
                tracing::info!(
                    "JetStream stream {name}: voters now {:?}",
                    want.values().map(|n| n.name.as_str()).collect::<Vec<_>>()
                );
                if let Err(e) = raft
                    .change_membership(ChangeMembers::ReplaceAllVoters(want_ids), false)
                    .await
                {
                    tracing::warn!("JetStream stream {name}: changing its members: {e}");
                }
                g2.changing.store(false, Ordering::Release);
            });
        }
    }

    /// This server was removed from the stream `g` replicates, which lives on: leaves once
    /// the group let it go (see the module docs).
    pub(super) fn leave(self: &Arc<Self>, g: Arc<StreamGroup>) {
        let c = Arc::clone(self);
        tokio::spawn(async move {
            let mut rx = g.group.raft().metrics();
            let me = c.node;
            let gone = tokio::time::timeout(LEAVE_WAIT, async {
                loop {
                    let let_go = {
                        let m = rx.borrow_and_update();
                        let stored = &m.membership_config;
                        let mem = stored.membership();
                        let_go(LeaveView {
                            member: mem.voter_ids().any(|id| id == me),
                            joint: mem.get_joint_config().len() > 1,
                            leading: m.current_leader == Some(me),
                            applied: m.last_applied.map(|l| l.index),
                            membership_at: stored.log_id().map(|l| l.index),
                        })
                    };
                    if let_go || rx.changed().await.is_err() {
                        return;
                    }
                }
            })
            .await;
            if gone.is_err() {
                tracing::warn!(
                    "JetStream stream {} in account {}: the group kept this server; leaving anyway",
                    g.name,
                    g.account
                );
            }
            let key = (g.account.clone(), g.name.clone());
            {
                let mut streams = lock(&c.streams);
                if streams.get(&key).is_some_and(|x| Arc::ptr_eq(x, &g)) {
                    streams.remove(&key);
                }
            }
            g.stop(&c.srv);
            c.hub.close_group(g.group.name()).await;
            tracing::info!(
                "JetStream stream {} in account {}: this server's replica removed",
                g.name,
                g.account
            );
            replicas::delete_files(&g.dir);
        });
    }
}

/// What a removed replica sees of its group's membership.
#[derive(Debug, Clone, Copy)]
struct LeaveView {
    /// This server is a voter of the effective configuration.
    member: bool,
    /// The effective configuration is joint (a change half-way).
    joint: bool,
    /// This server leads the group.
    leading: bool,
    /// The last applied log index.
    applied: Option<u64>,
    /// The index of the effective configuration's log entry.
    membership_at: Option<u64>,
}

/// Has the group let this server go? Once the final configuration without it is in place; a
/// leader also waits for that configuration to be applied (so committed): stopping before
/// would leave the remaining members in the joint configuration, with this server's vote
/// still needed for every commit.
fn let_go(v: LeaveView) -> bool {
    if v.member || v.joint {
        return false;
    }
    !v.leading || v.applied >= v.membership_at
}

impl JsCluster {
    /// `$JS.API.STREAM.PEER.REMOVE.<stream>` on the meta leader (see the module docs).
    pub(super) fn peer_remove(self: &Arc<Self>, stream: &str, req: &ApiRequest, reply: &str) {
        let op = ClusterOp::StreamPeerRemove;
        let proposal = (|| -> Result<Proposal, ApiError> {
            if req.payload.iter().all(u8::is_ascii_whitespace) {
                return Err(err::bad_request());
            }
            let body: StreamRemovePeerRequest = serde_json::from_slice(&req.payload)
                .map_err(|e| err::invalid_json(&e.to_string()))?;
            if body.peer.is_empty() {
                return Err(err::bad_request());
            }
            let view = self.placement_view();
            let origin = self.origin(req, reply);
            let meta = lock(&self.meta_state);
            let mut rng = lock(&self.rng);
            meta.propose_peer_remove(stream, &body.peer, &origin, &view, &mut rng)
        })();
        let entry = match proposal {
            Ok(Proposal::Propose(entry)) => entry,
            Ok(Proposal::Unchanged(_)) => {
                self.answer_cluster(&req.account, reply, &op.ok());
                return;
            }
            Err(e) => {
                self.answer_cluster(&req.account, reply, &op.fail(e));
                return;
            }
        };
        let raft = self.meta.raft().clone();
        let c = Arc::clone(self);
        let (account, reply) = (req.account.clone(), reply.to_owned());
        tokio::spawn(async move {
            if let Err(e) = raft.client_write(Command(entry.encode())).await {
                tracing::warn!("JetStream: meta proposal failed: {e}");
                c.answer_cluster(&account, &reply, &op.fail(err::cluster_not_avail()));
            }
        });
    }

    /// Answers a clustered request with its `{"type", "success"|"error"}` body.
    pub(super) fn answer_cluster(
        &self,
        account: &str,
        reply: &str,
        body: &natsd_core::jetstream::cluster::shapes::SuccessResponse,
    ) {
        if let Ok(v) = serde_json::to_value(body) {
            self.answer(account, reply, &v);
        }
    }
}

impl JsCluster {
    /// `$JS.API.SERVER.REMOVE` on the meta leader (see the module docs).
    pub(super) fn server_remove(
        self: &Arc<Self>,
        subject: &str,
        reply: Option<&str>,
        payload: &[u8],
    ) {
        if !self.is_meta_leader() {
            return;
        }
        let Some(reply) = reply else { return };
        let Some(sys) = self.srv.upgrade().map(|s| s.system_account_name()) else {
            return;
        };
        let op = ClusterOp::ServerRemove;
        let proposal = (|| -> Result<Proposal, ApiError> {
            if payload.iter().all(u8::is_ascii_whitespace) {
                return Err(err::bad_request());
            }
            let req: ServerRemoveRequest =
                serde_json::from_slice(payload).map_err(|e| err::invalid_json(&e.to_string()))?;
            let origin = Origin {
                request: Request {
                    account: sys.clone(),
                    server: self.name.clone(),
                    subject: subject.to_owned(),
                    reply: reply.to_owned(),
                },
                cluster: self.cluster_name.clone(),
                alternates: Vec::new(),
            };
            let view = self.placement_view();
            lock(&self.meta_state).propose_server_remove(&req, &origin, &view)
        })();
        let entry = match proposal {
            Ok(Proposal::Propose(entry)) => entry,
            Ok(Proposal::Unchanged(_)) => {
                self.answer_cluster(&sys, reply, &op.ok());
                return;
            }
            Err(e) => {
                self.answer_cluster(&sys, reply, &op.fail(e));
                return;
            }
        };
        let raft = self.meta.raft().clone();
        let c = Arc::clone(self);
        let reply = reply.to_owned();
        tokio::spawn(async move {
            if let Err(e) = raft.client_write(Command(entry.encode())).await {
                tracing::warn!("JetStream: meta proposal failed: {e}");
                c.answer_cluster(&sys, &reply, &op.fail(err::cluster_not_avail()));
            }
        });
    }

    /// On the meta leader, every tick: a server marked removed leaves the meta group's voters,
    /// and every stream it was a member of replaces it. One change at a time.
    pub(super) fn follow_removals(self: &Arc<Self>) {
        if !self.is_meta_leader() || self.removing.swap(true, Ordering::AcqRel) {
            return;
        }
        let m = self.meta.raft().metrics().borrow().clone();
        let membership = m.membership_config.membership().clone();
        let (leave, streams) = {
            let meta = lock(&self.meta_state);
            let leave: BTreeSet<NodeId> = membership
                .voter_ids()
                .filter(|id| {
                    membership
                        .get_node(id)
                        .is_some_and(|n| meta.is_removed(&super::peer_id(&n.name)))
                })
                .collect();
            let streams = meta.all_streams().find_map(|r| {
                let gone = r
                    .assignment
                    .group
                    .peers
                    .iter()
                    .find(|p| meta.is_removed(p))?;
                Some((r.assignment.clone(), gone.clone()))
            });
            (leave, streams)
        };
        if leave.is_empty() && streams.is_none() {
            self.removing.store(false, Ordering::Release);
            return;
        }
        let c = Arc::clone(self);
        tokio::spawn(async move {
            let raft = c.meta.raft().clone();
            if !leave.is_empty() && membership.get_joint_config().len() == 1 {
                tracing::warn!("JetStream cluster: removing {leave:?} from the meta group");
                let out = raft
                    .change_membership(ChangeMembers::RemoveVoters(leave), false)
                    .await;
                if let Err(e) = out {
                    tracing::warn!("JetStream cluster: removing servers from the meta group: {e}");
                }
            } else if let Some((sa, peer)) = streams {
                let replacement = {
                    let view = c.placement_view();
                    let mut rng = lock(&c.rng);
                    replace_peer(&view, &sa.group, &sa.config, &peer, &mut rng)
                        .ok()
                        .flatten()
                };
                tracing::info!(
                    "JetStream cluster: stream {} in account {} replaces removed server {peer} with {replacement:?}",
                    sa.config.name,
                    sa.account
                );
                let e = MetaEntry::RemovePeer {
                    account: sa.account.clone(),
                    stream: sa.config.name.clone(),
                    peer,
                    replacement,
                    request: None,
                };
                if let Err(e) = raft.client_write(Command(e.encode())).await {
                    tracing::warn!("JetStream cluster: re-placing a stream: {e}");
                }
            }
            c.removing.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{let_go, LeaveView};

    fn view(member: bool, joint: bool, leading: bool, applied: u64, at: u64) -> LeaveView {
        LeaveView {
            member,
            joint,
            leading,
            applied: Some(applied),
            membership_at: Some(at),
        }
    }

    #[test]
    fn a_removed_leader_stays_until_the_final_configuration_is_committed() {
        // Still a voter, or the change only half-way: stay.
        assert!(!let_go(view(true, false, false, 30, 25)));
        assert!(!let_go(view(false, true, true, 30, 25)));
        // The leader appended the configuration without itself, not yet committed: stay, or
        // the remaining members are left in the joint configuration needing its vote.
        assert!(!let_go(view(false, false, true, 24, 25)));
        assert!(let_go(view(false, false, true, 25, 25)));
        // A follower that sees the final configuration may go: that entry needs only the
        // new members to commit.
        assert!(let_go(view(false, false, false, 20, 25)));
    }
}
