//! Leadership hand-over: the stream, consumer and meta stepdowns (Go:
//! jsStreamLeaderStepDownRequest, jsConsumerLeaderStepDownRequest, jsLeaderStepDownRequest)
//! and the embedding API's stepdown calls.

use std::sync::Arc;

use bytes::Bytes;
use natsd_core::jetstream::api::{err, ApiError};
use natsd_raft::openraft::Raft;
use natsd_raft::{NodeId, TypeConfig};

use super::replicas::StreamGroup;
use super::{bus, JsCluster, OFFLINE_AFTER};
use crate::server::lock;

/// How long a stream leader's stepdown stays quiet for its successor's election (longer
/// than the election timeout, so the followers elect one of them even if the asked one
/// cannot win).
const STEPDOWN_ELECTION: std::time::Duration = std::time::Duration::from_secs(4);
/// How many times a stream leader's stepdown asks its successor to campaign.
const STEPDOWN_TRIES: usize = 3;
/// Longest a stream leader's stepdown waits for its successor to hold its whole log, and
/// then for the successor's election.
const STEPDOWN_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

impl JsCluster {
    /// The embedding API's stream stepdown: this server must lead the stream (10009 if not;
    /// 10059 for a stream the meta group does not know).
    pub(crate) fn stepdown_stream_now(&self, account: &str, stream: &str) -> Result<(), ApiError> {
        if lock(&self.meta_state).stream(account, stream).is_none() {
            return Err(err::stream_not_found());
        }
        let g = lock(&self.streams)
            .get(&(account.to_owned(), stream.to_owned()))
            .cloned()
            .filter(|g| g.is_leading())
            .ok_or_else(err::cluster_not_leader)?;
        self.stream_stepdown(&g)
    }

    /// The embedding API's meta stepdown: this server must be the meta leader (10009 if not);
    /// another live voter is asked to campaign, as `$JS.API.META.LEADER.STEPDOWN` does.
    pub(crate) fn stepdown_meta_now(&self) -> Result<(), ApiError> {
        let m = self.meta.raft().metrics().borrow().clone();
        if m.current_leader != Some(self.node) {
            return Err(err::cluster_not_leader());
        }
        let t = self.stepdown_target(&m, b"")?;
        hand_over(
            &self.bus,
            self.meta.raft().clone(),
            Bytes::new(),
            t,
            self.node,
        );
        Ok(())
    }

    /// Asks the most caught-up live member other than this one to campaign (Go:
    /// jsStreamLeaderStepDownRequest); its election ends this leader's term.
    pub(super) fn stream_stepdown(&self, g: &StreamGroup) -> Result<(), ApiError> {
        let m = g.group.raft().metrics().borrow().clone();
        let matched = m.replication.clone().unwrap_or_default();
        let target = {
            let peers = lock(&self.peers);
            m.membership_config
                .membership()
                .voter_ids()
                .filter(|id| *id != self.node)
                .filter(|id| {
                    peers
                        .get(id)
                        .is_some_and(|p| p.last.elapsed() < OFFLINE_AFTER)
                })
                .max_by_key(|id| (matched.get(id).copied().flatten().map(|l| l.index), *id))
        };
        let target =
            target.ok_or_else(|| err::cluster_no_peers("no replacement peer connected"))?;
        hand_over(
            &self.bus,
            g.group.raft().clone(),
            Bytes::from(g.group.name().to_owned()),
            target,
            self.node,
        );
        Ok(())
    }
}

/// Hands a group's leadership to `target` (Go: the stepdown requests): waits (a bounded time)
/// until the target holds everything the leader has (a candidate whose log lacks the
/// leader's last entries loses the vote), then asks it to campaign (`payload` names the
/// group, empty: the meta group), asked again a few times while this server still leads.
pub(super) fn hand_over(
    bus: &Arc<bus::Bus>,
    raft: Raft<TypeConfig>,
    payload: Bytes,
    target: NodeId,
    me: NodeId,
) {
    let bus = Arc::clone(bus);
    tokio::spawn(async move {
        let mut rx = raft.metrics();
        for _ in 0..STEPDOWN_TRIES {
            let _ = tokio::time::timeout(STEPDOWN_CATCH_UP, async {
                loop {
                    let caught_up = {
                        let m = rx.borrow_and_update();
                        let last = m.last_log_index.unwrap_or(0);
                        let got = m
                            .replication
                            .as_ref()
                            .and_then(|r| r.get(&target).copied().flatten())
                            .map_or(0, |l| l.index);
                        got >= last
                    };
                    if caught_up || rx.changed().await.is_err() {
                        return;
                    }
                }
            })
            .await;
            // Quiet while the successor campaigns: followers that still hear this
            // leader's heartbeats would refuse it their votes (openraft's leader lease),
            // and this server must not win the next election itself.
            raft.runtime_config().heartbeat(false);
            raft.runtime_config().elect(false);
            bus.publish(
                &format!("{}{target}", bus::ELECT_PREFIX),
                None,
                payload.clone(),
            );
            let moved = tokio::time::timeout(STEPDOWN_ELECTION, async {
                loop {
                    if rx.borrow_and_update().current_leader != Some(me) {
                        return;
                    }
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            })
            .await;
            raft.runtime_config().heartbeat(true);
            raft.runtime_config().elect(true);
            if moved.is_ok() {
                return;
            }
        }
    });
}
