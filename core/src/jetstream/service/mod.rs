//! The JetStream of one account: streams, consumers, the `$JS.API` dispatcher and group
//! commit. Pure: requests and time come in, [`Delivery`] values go out.
//!
//! This file holds the [`JetStream`] value, its timers and consumer plumbing; the publish path
//! is in `publish`, group commit and the release of PubAcks in `commit`, and stream recovery,
//! create, update and delete in `streams`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::api::ApiError;
use super::consumer::{AckKind, Consumer, ConsumerEvent, Delivery};
use super::factory::StoreFactory;
use super::limits::{AccountLimits, ServerUsage};
use super::store::UnixNanos;
use super::stream::{store_error, Stream};
use crate::rng::SplitMix64;

mod commit;
mod publish;
mod streams;

pub use commit::{CommitDone, CommitJobs};

/// Settings of a JetStream instance.
#[derive(Debug, Clone, Default)]
pub struct JsSettings {
    /// Server name (reported as the stream leader).
    pub server_name: String,
    /// JetStream domain.
    pub domain: Option<String>,
    /// Memory limit (`None`: unlimited).
    pub max_memory: Option<u64>,
    /// File limit.
    pub max_file: Option<u64>,
}

/// A stream and its consumers.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) stream: Stream,
    pub(crate) consumers: BTreeMap<String, Consumer>,
}

/// A publish stored but not yet acknowledged (it waits for the store to sync it).
#[derive(Debug)]
pub(crate) struct PendingAck {
    pub(crate) stream: String,
    pub(crate) seq: u64,
    pub(crate) reply: String,
    /// A duplicate of `seq`, waiting for the original to be durable.
    pub(crate) duplicate: bool,
    /// A counter's new total (`val` in the PubAck).
    pub(crate) val: Option<String>,
    /// The commit of an atomic batch: its id and size (`batch`, `count`).
    pub(crate) batch: Option<(String, u64)>,
}

/// A JetStream instance.
pub struct JetStream {
    pub(crate) settings: JsSettings,
    pub(crate) factory: Box<dyn StoreFactory>,
    pub(crate) streams: BTreeMap<String, Entry>,
    pub(crate) acks: Vec<PendingAck>,
    /// Streams written to since the last commit.
    dirty: Vec<String>,
    /// Streams acknowledged without a sync (interval mode), for the next [`JetStream::commit`].
    unsynced: Vec<String>,
    /// Durable consumers whose ack floor moved since they were last saved.
    pub(crate) moved: Vec<(String, String)>,
    rng: SplitMix64,
    /// Consumer happenings for advisories (see [`JetStream::take_consumer_events`]).
    pub(crate) consumer_events: Vec<ConsumerEvent>,
    api_total: u64,
    api_errors: u64,
    /// This account's limits (Go: `jsa.limits`).
    pub(crate) limits: AccountLimits,
    /// What the server's other accounts hold, for the server-wide limits.
    pub(crate) others: ServerUsage,
    /// Advisory ids; apart from `rng` so events leave ephemeral names unchanged.
    pub(crate) events: SplitMix64,
    /// Advisories raised by the current API call, sent after its reply.
    pub(crate) advisories: Vec<Delivery>,
    /// Snapshots being sent and restores being received.
    pub(crate) snap: super::snapshot::Jobs,
    /// Durables whose state file was damaged at start (see `consumer::state`).
    pub(crate) consumer_damage: Vec<(String, String, String)>,
    /// Does anyone listen on a subject? (The shell's view of the account's subscriptions; a
    /// pure lookup, see [`JetStream::set_interest`].)
    pub(crate) interest: Option<InterestFn>,
    /// Unknown request fields are refused (`jetstream { strict }`, see [`JetStream::set_strict`]).
    pub(crate) strict: bool,
}

/// See [`JetStream::set_interest`].
pub type InterestFn = Box<dyn Fn(&str) -> bool + Send>;

impl std::fmt::Debug for JetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStream")
            .field("streams", &self.streams.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Builds a reply to `to` with a JSON body.
pub(crate) fn json_reply(to: &str, v: &Value) -> Delivery {
    Delivery {
        subject: to.to_owned(),
        reply: None,
        headers: Vec::new(),
        payload: serde_json::to_vec(v).unwrap_or_default(),
        shown_subject: None,
    }
}

/// `{"type": t, "error": {...}}`.
pub(crate) fn error_body(t: &str, e: &ApiError) -> Value {
    json!({"type": t, "error": e})
}

impl JetStream {
    /// A JetStream over `factory`, recovering the streams it recorded.
    pub fn new(settings: JsSettings, mut factory: Box<dyn StoreFactory>, seed: u64) -> Self {
        let metas = factory.load_metas();
        let mut js = Self {
            settings,
            factory,
            streams: BTreeMap::new(),
            acks: Vec::new(),
            dirty: Vec::new(),
            unsynced: Vec::new(),
            moved: Vec::new(),
            rng: SplitMix64::new(seed),
            consumer_events: Vec::new(),
            api_total: 0,
            api_errors: 0,
            limits: AccountLimits::default(),
            others: ServerUsage::default(),
            events: SplitMix64::new(seed ^ 0x6a73_6576_656e_7473),
            advisories: Vec::new(),
            snap: super::snapshot::Jobs::default(),
            consumer_damage: Vec::new(),
            interest: None,
            strict: true,
        };
        js.recover_streams(metas);
        js
    }

    /// Every subject streams capture (the shell subscribes to these).
    pub fn subjects(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .streams
            .values()
            .flat_map(|e| e.stream.config.subjects.iter().cloned())
            .collect();
        // The deliver and reply subjects of sources reached over the network.
        v.extend(self.remote_subjects());
        v.sort();
        v.dedup();
        v
    }

    /// Number of streams.
    pub fn num_streams(&self) -> usize {
        self.streams.len()
    }

    /// Number of consumers.
    pub fn num_consumers(&self) -> usize {
        self.streams.values().map(|e| e.consumers.len()).sum()
    }

    /// (memory bytes, file bytes) held.
    pub fn usage(&self) -> (u64, u64) {
        let (mut mem, mut file) = (0, 0);
        for e in self.streams.values() {
            let b = e.stream.store.state().bytes;
            if e.stream.config.storage == "memory" {
                mem += b;
            } else {
                file += b;
            }
        }
        (mem, file)
    }

    /// Messages held by every stream.
    pub fn total_messages(&self) -> u64 {
        self.streams
            .values()
            .map(|e| e.stream.store.state().msgs)
            .sum()
    }

    /// API calls and API errors served.
    pub fn api_stats(&self) -> (u64, u64) {
        (self.api_total, self.api_errors)
    }

    /// A stream by name (tests, monitoring).
    pub fn stream(&self, name: &str) -> Option<&Stream> {
        self.streams.get(name).map(|e| &e.stream)
    }

    /// Saves a durable consumer of a file stream now (create, update).
    pub(crate) fn save_consumer(&mut self, stream: &str, name: &str) -> Result<(), ApiError> {
        let Some(e) = self.streams.get(stream) else {
            return Ok(());
        };
        let Some(c) = e.consumers.get(name) else {
            return Ok(());
        };
        if !c.is_durable() || e.stream.config.storage == "memory" {
            return Ok(());
        }
        let meta = serde_json::to_vec(&c.meta()).unwrap_or_default();
        self.factory
            .save_consumer(stream, name, &meta)
            .map_err(|x| store_error(&x))
    }

    /// Forgets a consumer's saved state.
    pub(crate) fn forget_consumer(&mut self, stream: &str, name: &str) {
        self.moved.retain(|(s, n)| s != stream || n != name);
        self.factory.remove_consumer(stream, name);
    }

    /// Timers: max-age expiry, pull request expiry, ack-wait redelivery.
    pub fn tick(&mut self, now: UnixNanos) -> Vec<Delivery> {
        let mut out = Vec::new();
        let mut reaped = Vec::new();
        let mut marked = Vec::new();
        for (name, e) in self.streams.iter_mut() {
            e.stream.expire_batches(now);
            let exp = e.stream.expire(now);
            let expired = exp.removed;
            // Subject delete markers went through the publish path: consumers and the next
            // commit see them like any stored message.
            for (subj, seq, republish) in exp.markers {
                if !super::retention::drop_unwanted(e, &subj, seq) {
                    for c in e.consumers.values_mut() {
                        c.on_stored(&subj, seq);
                    }
                }
                out.extend(republish);
                marked.push(name.clone());
            }
            let Entry { stream, consumers } = e;
            for c in consumers.values_mut() {
                if expired > 0 {
                    c.recount(stream.store.as_ref());
                }
                out.extend(c.tick(stream.store.as_ref(), now).into_iter().map(|d| d.0));
            }
            super::retention::settle(e);
            for (c, durable) in super::retention::reap_inactive(e, now, &mut self.consumer_events) {
                reaped.push((name.clone(), c, durable));
            }
        }
        for name in marked {
            self.mark_dirty(&name);
        }
        for (stream, c, durable) in reaped {
            if durable {
                self.forget_consumer(&stream, &c);
            }
        }
        out.extend(self.consumer_advisories(now));
        out.extend(self.snapshot_tick(now));
        out
    }

    /// Consumer events since the last call (max deliveries, terminated, deleted when
    /// inactive), for the advisories the shell publishes.
    pub fn take_consumer_events(&mut self) -> Vec<ConsumerEvent> {
        for e in self.streams.values_mut() {
            for c in e.consumers.values_mut() {
                self.consumer_events.extend(c.take_events());
            }
        }
        std::mem::take(&mut self.consumer_events)
    }

    /// The earliest time [`JetStream::tick`] has work.
    pub fn next_deadline(&self) -> Option<UnixNanos> {
        self.streams
            .values()
            .flat_map(|e| {
                std::iter::once(e.stream.store.next_expiry())
                    .chain([e.stream.next_ttl()])
                    .chain(e.consumers.values().map(Consumer::next_deadline))
            })
            .chain([self.sourcing_deadline(), self.snapshot_deadline()])
            .flatten()
            .min()
    }

    /// An ack on `$JS.ACK.<stream>.<consumer>.<n>.<sseq>.<cseq>.<ts>.<pending>`.
    /// With a `reply` (a "double ack"), an empty message confirms it.
    pub fn ack(
        &mut self,
        subj: &str,
        reply: Option<&str>,
        body: &[u8],
        now: UnixNanos,
    ) -> Vec<Delivery> {
        if !self.has_ack_target(subj) {
            // Go: only the consumer's own subscription hears its acks. Ours covers
            // `$JS.ACK.>`, so an ack for a consumer we do not have (one across a leaf link)
            // gets no answer from us: its own server confirms it.
            return Vec::new();
        }
        let kind = AckKind::parse(body);
        let mut out = self.ack_inner(subj, body, now);
        if let (AckKind::Next, Some(r)) = (kind, reply) {
            // Go: `+NXT` acks and is a pull request answered on the reply.
            out.extend(self.ack_next(subj, r, body, now));
        } else if let Some(r) = reply {
            out.push(Delivery {
                subject: r.to_owned(),
                reply: None,
                headers: Vec::new(),
                payload: Vec::new(),
                shown_subject: None,
            });
        }
        out
    }

    /// Does the stream and consumer an ack subject names exist here?
    fn has_ack_target(&self, subj: &str) -> bool {
        let mut t = subj.split('.').skip(2);
        match (t.next(), t.next()) {
            (Some(stream), Some(consumer)) => self
                .streams
                .get(stream)
                .is_some_and(|e| e.consumers.contains_key(consumer)),
            _ => false,
        }
    }

    fn ack_inner(&mut self, subj: &str, body: &[u8], now: UnixNanos) -> Vec<Delivery> {
        let t: Vec<&str> = subj.split('.').collect();
        if t.len() < 9 {
            return Vec::new();
        }
        let (stream, consumer) = (t[2], t[3]);
        let Ok(sseq) = t[5].parse::<u64>() else {
            return Vec::new();
        };
        let Some(e) = self.streams.get_mut(stream) else {
            return Vec::new();
        };
        let Entry { stream, consumers } = e;
        let Some(c) = consumers.get_mut(consumer) else {
            return Vec::new();
        };
        let floor = c.meta().ack_floor_cseq;
        c.on_ack(sseq, AckKind::parse(body), now);
        let key = (stream.config.name.clone(), c.name.clone());
        if c.is_durable() && stream.config.storage != "memory" && !self.moved.contains(&key) {
            self.moved.push(key);
        }
        let mut out: Vec<Delivery> = c
            .pump(stream.store.as_ref(), now)
            .into_iter()
            .map(|d| d.0)
            .collect();
        super::retention::settle(e);
        out.extend(self.ack_advisories(&t, body, floor, now));
        out.extend(self.consumer_advisories(now));
        out
    }

    /// Lets every consumer of `name` hand out what it can.
    pub(crate) fn pump_stream(&mut self, name: &str, now: UnixNanos) -> Vec<Delivery> {
        let Some(Entry { stream, consumers }) = self.streams.get_mut(name) else {
            return Vec::new();
        };
        consumers
            .values_mut()
            .flat_map(|c| c.pump(stream.store.as_ref(), now))
            .map(|d| d.0)
            .collect()
    }

    /// Push consumers as (stream, consumer, deliver subject, active).
    pub fn push_consumers(&self) -> Vec<(String, String, String, bool)> {
        self.streams
            .iter()
            .flat_map(|(sn, e)| {
                e.consumers.values().filter_map(move |c| {
                    let d = c.config.deliver_subject.clone()?;
                    Some((sn.clone(), c.name.clone(), d, c.active))
                })
            })
            .collect()
    }

    /// Interest on a push consumer's deliver subject came or went; delivers when it came.
    pub fn set_push_active(
        &mut self,
        stream: &str,
        consumer: &str,
        active: bool,
        now: UnixNanos,
    ) -> Vec<Delivery> {
        let Some(Entry { stream, consumers }) = self.streams.get_mut(stream) else {
            return Vec::new();
        };
        let Some(c) = consumers.get_mut(consumer) else {
            return Vec::new();
        };
        c.set_active(active, now);
        c.pump(stream.store.as_ref(), now)
            .into_iter()
            .map(|d| d.0)
            .collect()
    }

    /// A fresh ephemeral consumer name.
    pub(crate) fn ephemeral_name(&mut self) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..8)
            .map(|_| A[self.rng.below(A.len() as u64) as usize] as char)
            .collect()
    }

    pub(crate) fn count_api(&mut self, failed: bool) {
        self.api_total += 1;
        if failed {
            self.api_errors += 1;
        }
    }

    /// Gives JetStream a way to ask whether a subject has subscribers, so a new push
    /// consumer knows at once whether it is bound (Go: the consumer checks its deliver
    /// subject's interest when it is created). Without it, it learns that from
    /// [`JetStream::set_push_active`].
    pub fn set_interest(&mut self, f: InterestFn) {
        self.interest = Some(f);
    }

    /// Whether `subject` has subscribers, per [`JetStream::set_interest`] (false without it).
    pub(crate) fn has_interest(&self, subject: &str) -> bool {
        self.interest.as_ref().is_some_and(|f| f(subject))
    }
}
