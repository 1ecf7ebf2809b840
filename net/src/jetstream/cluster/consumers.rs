//! Pull and push consumers on clustered streams, run by the stream's leader (core's replica carries
//! their state in the stream's log: the consumer leader is always the stream leader).
//!
//! The meta group records which consumers exist (CONSUMER.CREATE/DELETE through the meta
//! leader); the stream leader brings its replica in line on every tick ([`Tick`]): it creates
//! the consumers the meta group lists and the replica lacks (a `ConsumerCreate` entry, then it
//! answers the create with the consumer's info once that entry is committed) and removes those
//! it no longer lists. Pull requests (`CONSUMER.MSG.NEXT`) and acks (`$JS.ACK.<stream>.>`,
//! which the leader subscribes to with route interest) are handled on the leader's live
//! consumers; after a batch that delivered or acked, each consumer's delivery state is proposed
//! as one entry, then the removals acks made on interest and work-queue streams. A push
//! consumer delivers while its deliver subject has interest in the leader's account sublist,
//! which holds the other servers' interest too (checked on every batch, ticks included).
//!
//! An update (CONSUMER.CREATE of an existing consumer with a changed config) is checked and
//! recorded by the meta leader; the stream leader sees the assignment's config differ from its
//! consumer's and writes a `ConsumerCreate` entry with the new config, which every replica
//! takes as an update (the delivery state stays), and answers once it committed.
//!
//! A consumer's leader is its stream's leader, so `CONSUMER.LEADER.STEPDOWN` steps the
//! stream's group down: every consumer of the stream moves with it (nats-server moves one
//! consumer's own group). Consumer `num_replicas` is checked against the stream's (0:
//! inherit) but the state is kept by every replica of the stream.
//!
//! A consumer idle past its `inactive_threshold` (an ephemeral's default is 5 s) is removed
//! the same way a CONSUMER.DELETE removes it: the stream leader asks the meta leader (on
//! `bus::REAP`), whose entry makes the stream leader write the removal to the stream's log.
//!
//! Not yet: pausing/resetting/unpinning.
//!
//! The leader stores a message before its entry commits, so its consumers are capped at the
//! last committed sequence (core's `ReplicatedStream::committed`); an applied entry that
//! raises it queues an `Op::Pump`, and the batch's pump hands out what it now covers.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::jetstream::cluster::{ConsumerAssignment, MetaEntry, ReplicatedStream};
use natsd_core::jetstream::consumer::{parse_next_request, AckKind, Delivery};
use natsd_core::rng::SplitMix64;
use natsd_core::router::{self, Message, PendingFlush, Publisher};
use natsd_raft::Command;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::replicas::{Proposal, Reply, StreamGroup};
use super::{bus, JsCluster};
use crate::server::lock;

/// The meta group's consumers of one stream, handed to its leader on every tick.
#[derive(Debug, Default)]
pub(super) struct Tick {
    pub(super) assigned: Vec<ConsumerAssignment>,
}

/// What one batch of the proposer produced.
#[derive(Default)]
pub(super) struct Batch {
    /// Entries to propose, with the answers that wait for their commit.
    pub(super) proposals: Vec<Proposal>,
    /// Answers that need no commit.
    pub(super) now_answers: Vec<Reply>,
    /// Messages and statuses for consumers' clients.
    pub(super) deliveries: Vec<Delivery>,
    /// A consumer's delivery state changed: propose the states at the end of the batch.
    pub(super) consumers_changed: bool,
}

impl Batch {
    fn deliver(&mut self, ds: Vec<(Delivery, String)>) {
        // Only a message (it carries its ack subject) changes the delivery state; statuses
        // and heartbeats do not, and must not make an idle leader propose.
        if ds.iter().any(|d| d.0.reply.is_some()) {
            self.consumers_changed = true;
        }
        self.deliveries.extend(ds.into_iter().map(|d| d.0));
    }

    /// Lets every consumer hand out what the stream now holds.
    pub(super) fn pump(&mut self, rs: &mut ReplicatedStream, now: u64) {
        let store = rs.stream.store.as_ref();
        for c in rs.consumers.values_mut() {
            let ds = c.pump(store, now);
            self.deliver(ds);
        }
    }

    /// Proposes each consumer's state, then what acks removed (see the module docs).
    pub(super) fn finish(&mut self, rs: &mut ReplicatedStream) {
        if !std::mem::take(&mut self.consumers_changed) {
            return;
        }
        let names: Vec<String> = rs.consumers.keys().cloned().collect();
        for n in names {
            if let Some(e) = rs.consumer_state_entry(&n) {
                self.proposals.push((e, None));
            }
        }
        for e in rs.leader_settle() {
            self.proposals.push((e, None));
        }
    }
}

/// The consumer create answer.
fn create_answer(rs: &ReplicatedStream, name: &str, now: u64) -> Option<Vec<u8>> {
    let c = rs.consumers.get(name)?;
    let mut v = c.info(now);
    v["type"] = json!("io.nats.jetstream.api.v1.consumer_create_response");
    serde_json::to_vec(&v).ok()
}

/// A tick on the leader: consumers brought in line with the meta group, timers run.
pub(super) fn tick(
    rs: &mut ReplicatedStream,
    t: Tick,
    now: u64,
    answered: &mut BTreeSet<String>,
    b: &mut Batch,
) {
    let wanted: BTreeSet<&str> = t.assigned.iter().map(|c| c.name.as_str()).collect();
    let gone: Vec<String> = rs
        .consumers
        .keys()
        .filter(|n| !wanted.contains(n.as_str()))
        .cloned()
        .collect();
    for n in gone {
        if let Some(c) = rs.consumers.get_mut(&n) {
            b.deliveries.extend(c.release_waiting());
        }
        for e in rs.leader_delete_consumer(&n) {
            b.proposals.push((e, None));
        }
    }
    for ca in &t.assigned {
        let fresh = !rs.consumers.contains_key(&ca.name);
        let updated = rs
            .consumers
            .get(&ca.name)
            .is_some_and(|c| c.config != ca.config);
        if fresh || updated {
            let e = rs.leader_create_consumer(&ca.name, ca.config.clone(), ca.created);
            let answer = ca.request.as_ref().and_then(|r| {
                answered
                    .insert(r.reply.clone())
                    .then(|| create_answer(rs, &ca.name, now).map(|a| (r.reply.clone(), a)))
                    .flatten()
            });
            b.proposals.push((e, answer));
        } else if let Some(r) = &ca.request {
            // An update or a repeated create: answered with what the consumer is.
            if answered.insert(r.reply.clone()) {
                if let Some(a) = create_answer(rs, &ca.name, now) {
                    b.now_answers.push((r.reply.clone(), a));
                }
            }
        }
    }
    let store = rs.stream.store.as_ref();
    for c in rs.consumers.values_mut() {
        let ds = c.tick(store, now);
        b.deliver(ds);
    }
}

/// `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`, or the `+NXT` of an ack.
pub(super) fn next(
    rs: &mut ReplicatedStream,
    consumer: &str,
    reply: &str,
    payload: &[u8],
    now: u64,
    b: &mut Batch,
) {
    let req = match parse_next_request(payload) {
        Ok(r) => r,
        Err(status) => {
            b.deliveries.push(Delivery::status(reply, &status, &[]));
            return;
        }
    };
    let store = rs.stream.store.as_ref();
    let Some(c) = rs.consumers.get_mut(consumer) else {
        b.deliveries
            .push(Delivery::status(reply, "404 No Messages", &[]));
        return;
    };
    let ds = c.on_next(reply, &req, store, now);
    b.deliver(ds);
}

/// An ack on `$JS.ACK.<stream>.<consumer>.<n>.<sseq>.<cseq>.<ts>.<pending>`.
pub(super) fn ack(
    rs: &mut ReplicatedStream,
    subject: &str,
    reply: Option<&str>,
    body: &[u8],
    now: u64,
    b: &mut Batch,
) {
    let t: Vec<&str> = subject.split('.').collect();
    let kind = AckKind::parse(body);
    if t.len() >= 9 {
        if let (Ok(sseq), Some(c)) = (t[5].parse::<u64>(), rs.consumers.get_mut(t[3])) {
            c.on_ack(sseq, kind, now);
            b.consumers_changed = true;
        }
    }
    match (kind, reply) {
        (AckKind::Next, Some(r)) => {
            let rest = body.trim_ascii().strip_prefix(b"+NXT").unwrap_or_default();
            if let Some(consumer) = t.get(3) {
                next(rs, consumer, r, rest, now, b);
            }
        }
        (_, Some(r)) => b.deliveries.push(Delivery {
            subject: r.to_owned(),
            reply: None,
            headers: Vec::new(),
            payload: Vec::new(),
            shown_subject: None,
        }),
        (_, None) => {}
    }
}

/// `CONSUMER.INFO` on the leader, with the stream group's `cluster` block.
pub(super) fn info(
    rs: &mut ReplicatedStream,
    consumer: &str,
    cluster: Value,
    now: u64,
    deliveries: &mut Vec<Delivery>,
) -> Option<Value> {
    let c = rs.consumers.get_mut(consumer)?;
    deliveries.extend(c.expire_waiting_now(now));
    let mut v = c.info(now);
    v["cluster"] = cluster;
    Some(v)
}

/// Publishes deliveries into the account.
pub(super) fn emit(acc: &Arc<Account>, ds: Vec<Delivery>) {
    if ds.is_empty() {
        return;
    }
    let mut rng = SplitMix64::new(0);
    let mut pending = PendingFlush::default();
    let mut p = Publisher {
        client: None,
        rng: &mut rng,
        now: crate::transport::now(),
        pending: &mut pending,
        cache: None,
        transient: true,
    };
    for d in ds {
        let payload = Bytes::from(d.payload);
        let m = Message {
            subject: d.shown_subject.as_deref().unwrap_or(&d.subject).as_bytes(),
            reply: d.reply.as_deref().map(str::as_bytes),
            headers: (!d.headers.is_empty()).then_some(d.headers.as_slice()),
            payload: &payload,
            shared: Some(&payload),
        };
        if d.shown_subject.is_some() {
            router::deliver_as(acc, &mut p, d.subject.as_bytes(), &m);
        } else {
            router::publish(acc, &mut p, &m);
        }
    }
    pending.flush();
}

/// A stream leader's request that the meta leader remove an idle consumer.
#[derive(Debug, Serialize, Deserialize)]
struct Reap {
    account: String,
    stream: String,
    consumer: String,
}

/// How often a stream leader repeats its request to remove an idle consumer while the
/// consumer is still assigned (the meta leader may have changed).
const REAP_AGAIN: Duration = Duration::from_secs(1);

impl JsCluster {
    /// On every leader tick: the consumers of the streams this server leads that passed their
    /// `inactive_threshold` (ephemerals: 5 s by default) are asked removed of the meta leader
    /// (Go: deleteNotActive), whose entry then removes them from the stream's log and so
    /// from every replica.
    pub(super) fn reap_inactive(&self) {
        let now = self.now();
        let groups: Vec<Arc<StreamGroup>> = lock(&self.streams)
            .values()
            .filter(|g| g.is_leading())
            .cloned()
            .collect();
        let mut idle = Vec::new();
        for g in groups {
            let r = lock(&g.replica);
            let Some(rs) = r.rs() else { continue };
            for (n, c) in &rs.consumers {
                if c.is_inactive(now) {
                    idle.push((g.account.clone(), g.name.clone(), n.clone()));
                }
            }
        }
        let mut asked = lock(&self.reaping);
        asked.retain(|k, at| idle.contains(k) && at.elapsed() < REAP_AGAIN * 30);
        for k in idle {
            if asked.get(&k).is_some_and(|at| at.elapsed() < REAP_AGAIN) {
                continue;
            }
            asked.insert(k.clone(), Instant::now());
            let (account, stream, consumer) = k;
            let body = Reap {
                account,
                stream,
                consumer,
            };
            if let Ok(b) = serde_json::to_vec(&body) {
                self.bus.publish(bus::REAP, None, Bytes::from(b));
            }
        }
    }

    /// On the meta leader: removes an idle consumer a stream leader reported.
    pub(super) fn reap(&self, payload: &[u8]) {
        if !self.is_meta_leader() {
            return;
        }
        let Ok(r) = serde_json::from_slice::<Reap>(payload) else {
            return;
        };
        let assigned = lock(&self.meta_state)
            .stream(&r.account, &r.stream)
            .is_some_and(|s| s.consumers.contains_key(&r.consumer));
        if !assigned {
            return;
        }
        let entry = MetaEntry::RemoveConsumer {
            account: r.account,
            stream: r.stream,
            consumer: r.consumer,
            request: None,
        };
        let raft = self.meta.raft().clone();
        tokio::spawn(async move {
            if let Err(e) = raft.client_write(Command(entry.encode())).await {
                tracing::warn!("JetStream: removing an idle consumer: {e}");
            }
        });
    }
}
