//! Mirrors and sources of clustered streams (see core's `sourcing::replicated` for the
//! rules).
//!
//! The sourcing stream's leader runs one task per stream while it leads (started by the
//! leaders' tick, so a config that gains a source is picked up too). Each round it takes
//! the cursors from its replica, reads each origin and hands what came back to the stream's
//! proposer ([`Op::Sourced`]), which stores it on the leader's replica and proposes it, in
//! order with the stream's other writes; the task waits for that before the next read of the
//! same cursor. A read goes to this server's replica of the origin when it holds one, else
//! to the origin's peers in turn over the system account (`$NATSD.JSC.SRC.<node>`), each
//! answering from its replica what its origin committed.
//!
//! The task ends when the replica stops leading or the group's term changes; the next leader
//! (this server again, or another) starts over from its replica's own store.
//!
//! An `external` mirror or source (another account or domain) is read over the network
//! instead, through a consumer of the origin, by a task of its own (see [`remote`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use natsd_core::jetstream::cluster::ReplicatedStream;
use natsd_core::jetstream::sourcing::replicated::{self as rsrc, Cursor, ReadReply, ReadRequest};
use tokio::sync::oneshot;

use super::bus::Inbound;
use super::consumers::Batch;
use super::replicas::{Op, StreamGroup};
use super::{peer_id, JsCluster};
use crate::server::lock;

mod remote;

/// Where a server answers reads of the origins it holds a replica of; its node id follows.
pub(super) const READ_PREFIX: &str = "$NATSD.JSC.SRC.";
/// How long a round waits when nothing was copied.
const IDLE: Duration = Duration::from_millis(100);
/// How long a read of a peer's replica may take.
const READ_WAIT: Duration = Duration::from_secs(2);

/// A read's reply, for the stream's proposer to store.
#[derive(Debug)]
pub(super) struct Sourced {
    cursor: Cursor,
    reply: ReadReply,
    /// Told whether more is waiting, once stored.
    done: oneshot::Sender<bool>,
}

/// The proposer's side: stores the read and queues the entries that replicate it.
pub(super) fn store(rs: &mut ReplicatedStream, s: Sourced, now: u64, b: &mut Batch) {
    let (entries, republished, more) = rsrc::store_read(rs, &s.cursor, s.reply, now);
    for e in entries {
        b.proposals.push((e, None));
    }
    b.deliveries.extend(republished);
    let _ = s.done.send(more);
}

/// Does this stream copy from origins of its own account?
fn sources_locally(g: &StreamGroup) -> bool {
    let r = lock(&g.replica);
    r.rs().is_some_and(|rs| {
        let c = &rs.stream.config;
        c.mirror
            .iter()
            .chain(&c.sources)
            .any(|s| s.external.is_none() && s.consumer.is_none())
    })
}

impl JsCluster {
    /// On the leaders' tick: starts the sourcing task of each leading stream that has
    /// mirrors or sources and none running.
    pub(super) fn tick_sourcing(self: &Arc<Self>) {
        let groups: Vec<Arc<StreamGroup>> = lock(&self.streams)
            .values()
            .filter(|g| g.is_leading())
            .cloned()
            .collect();
        for g in groups {
            // External mirrors and sources: one task each, over the network.
            let remote = lock(&g.replica)
                .rs()
                .map(rsrc::remote_slots)
                .unwrap_or_default();
            for slot in remote {
                let key = format!("{} {slot:?}", g.group.name());
                if !lock(&self.sourcing).insert(key.clone()) {
                    continue;
                }
                let (c, g) = (Arc::clone(self), Arc::clone(&g));
                tokio::spawn(async move {
                    c.run_remote_source(&g, slot).await;
                    lock(&c.sourcing).remove(&key);
                });
            }
            if !sources_locally(&g) {
                continue;
            }
            if !lock(&self.sourcing).insert(g.group.name().to_owned()) {
                continue;
            }
            let c = Arc::clone(self);
            tokio::spawn(async move {
                let name = g.group.name().to_owned();
                c.run_sourcing(&g).await;
                lock(&c.sourcing).remove(&name);
            });
        }
    }

    async fn run_sourcing(self: &Arc<Self>, g: &Arc<StreamGroup>) {
        let term = g.group.raft().metrics().borrow().current_term;
        let current = || {
            !*self.stop.borrow()
                && g.is_leading()
                && g.group.raft().metrics().borrow().current_term == term
        };
        // Whatever this replica remembers of an earlier term of its own is stale.
        if let Some(rs) = lock(&g.replica).rs_mut() {
            rsrc::reset(rs);
        }
        while current() {
            let cursors = match lock(&g.replica).rs_mut() {
                Some(rs) => rsrc::cursors(rs),
                None => return,
            };
            if cursors.is_empty() {
                return;
            }
            let mut more = false;
            for mut cursor in cursors {
                cursor.request.account.clone_from(&g.account);
                let Some(reply) = self.read_origin(&cursor.request).await else {
                    if let Some(rs) = lock(&g.replica).rs_mut() {
                        rsrc::unreachable(rs, cursor.slot);
                    }
                    continue;
                };
                if !current() {
                    return;
                }
                let (done, stored) = oneshot::channel();
                let op = Op::Sourced(Box::new(Sourced {
                    cursor,
                    reply,
                    done,
                }));
                if !g.submit(op) {
                    return;
                }
                match stored.await {
                    Ok(m) => more |= m,
                    Err(_) => return,
                }
            }
            if !more {
                tokio::time::sleep(IDLE).await;
            }
        }
    }

    /// Reads an origin: from this server's replica, else from its peers'.
    async fn read_origin(&self, req: &ReadRequest) -> Option<ReadReply> {
        if let Some(r) = self.read_local(req) {
            return Some(r);
        }
        let peers: Vec<String> = lock(&self.meta_state)
            .stream(&req.account, &req.stream)
            .map(|r| r.assignment.group.peers.clone())
            .unwrap_or_default();
        if peers.is_empty() {
            // No such stream (yet): the source waits for it.
            return Some(ReadReply::default());
        }
        let body = Bytes::from(serde_json::to_vec(req).ok()?);
        let me = peer_id(&self.name);
        for pid in peers.iter().filter(|p| **p != me) {
            let Some((node, _)) = self.server_of(pid) else {
                continue;
            };
            let subject = format!("{READ_PREFIX}{node}");
            let Some(answer) = self.bus.request(&subject, body.clone(), READ_WAIT).await else {
                continue;
            };
            if let Some(r) = ReadReply::decode(&answer).filter(|r| r.found) {
                return Some(r);
            }
        }
        None
    }

    /// Reads this server's replica of the origin, if it holds a healthy one: a leader only
    /// what committed, a follower everything it applied.
    fn read_local(&self, req: &ReadRequest) -> Option<ReadReply> {
        let g = lock(&self.streams)
            .get(&(req.account.clone(), req.stream.clone()))
            .cloned()?;
        let leading = g.is_leading();
        let r = lock(&g.replica);
        if r.trouble.is_some() {
            return None;
        }
        let rs = r.rs()?;
        let committed = if leading {
            rs.committed()
        } else {
            rs.stream.store.state().last_seq
        };
        Some(rsrc::read_origin(rs.stream.store.as_ref(), committed, req))
    }

    /// A peer's read of an origin this server may hold a replica of.
    pub(super) fn serve_source_read(&self, m: &Inbound) {
        let Some(reply) = m.reply.as_deref() else {
            return;
        };
        let Ok(req) = serde_json::from_slice::<ReadRequest>(&m.payload) else {
            return;
        };
        let answer = self.read_local(&req).unwrap_or_default();
        self.bus.publish(reply, None, Bytes::from(answer.encode()));
    }
}
