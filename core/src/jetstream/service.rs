//! The JetStream of one account: streams, consumers, the `$JS.API` dispatcher and group
//! commit. Pure: requests and time come in, [`Delivery`] values go out.

use std::collections::BTreeMap;
use std::io::Write as _;

use serde::Serialize;
use serde_json::{json, Value};

use super::advisory::Action;
use super::api::{err, rfc3339, ApiError, StreamConfig};
use super::consumer::{AckKind, Consumer, ConsumerEvent, ConsumerMeta, Delivery};
use super::factory::StoreFactory;
use super::limits::{
    account_resources_exceeded, insufficient_resources, AccountLimits, ServerUsage,
};
use super::store::{DiskError, StreamStore, SyncJob, UnixNanos};
use super::stream::{check_config, store_config, store_error, Stream};
use crate::rng::SplitMix64;
use crate::subject;

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

#[derive(Serialize)]
struct Meta {
    created: UnixNanos,
    config: StreamConfig,
}

#[derive(serde::Deserialize)]
struct MetaIn {
    created: UnixNanos,
    config: StreamConfig,
    /// A restore was writing this stream when the server stopped (see `snapshot`).
    #[serde(default)]
    restoring: bool,
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

/// Hands what a commit made durable to the stream's consumers.
fn pump(e: &mut Entry, now: UnixNanos, out: &mut Vec<Delivery>) {
    let Entry { stream, consumers } = e;
    for c in consumers.values_mut() {
        out.extend(c.pump(stream.store.as_ref(), now).into_iter().map(|d| d.0));
    }
}

/// The fsyncs of one [`JetStream::commit_begin`], to run off the JetStream thread.
#[derive(Default)]
#[must_use = "a begun commit must be run and finished, or its acks never go out"]
pub struct CommitJobs {
    jobs: Vec<SyncJob>,
    /// Per stream: its name, the sequence the sync makes durable, and how many jobs are its.
    streams: Vec<(String, u64, usize)>,
}

impl std::fmt::Debug for CommitJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitJobs")
            .field("jobs", &self.jobs.len())
            .field("streams", &self.streams)
            .finish()
    }
}

impl CommitJobs {
    /// Runs every fsync, blocking; the outcome goes to [`JetStream::commit_finish`].
    pub fn run(self) -> CommitDone {
        CommitDone {
            results: self.jobs.into_iter().map(|job| job()).collect(),
            streams: self.streams,
        }
    }
}

/// What [`CommitJobs::run`] found.
#[derive(Debug)]
pub struct CommitDone {
    results: Vec<Result<(), DiskError>>,
    streams: Vec<(String, u64, usize)>,
}

/// The PubAck of a stored message, with a counter's total (Go: PubAck.Value, after the
/// domain).
fn stored_ack(a: PendingAck, domain: Option<&str>) -> Delivery {
    let mut ack = pub_ack(a.reply, &a.stream, a.seq, domain);
    if let Some(v) = &a.val {
        ack.payload.pop();
        let _ = write!(ack.payload, ",\"val\":\"{v}\"}}");
    }
    if let Some((id, count)) = &a.batch {
        ack.payload.pop();
        ack.payload.extend_from_slice(b",\"batch\":");
        let _ = serde_json::to_writer(&mut ack.payload, id);
        let _ = write!(ack.payload, ",\"count\":{count}}}");
    }
    ack
}

/// The PubAck of a duplicate: the original's sequence, `"duplicate": true`.
fn dup_ack(reply: &str, stream: &str, seq: u64, domain: Option<&str>) -> Delivery {
    let mut v = json!({"stream": stream, "seq": seq, "duplicate": true});
    if let Some(d) = domain {
        v["domain"] = json!(d);
    }
    json_reply(reply, &v)
}

/// A PubAck, `{"stream":…,"seq":…[,"domain":…]}` in nats-server's field order. Written
/// directly rather than through a JSON tree: every stored message gets one.
fn pub_ack(reply: String, stream: &str, seq: u64, domain: Option<&str>) -> Delivery {
    let mut p = Vec::with_capacity(40 + stream.len());
    p.extend_from_slice(b"{\"stream\":");
    // Writing to a Vec cannot fail, and a str always serializes.
    let _ = serde_json::to_writer(&mut p, stream);
    let _ = write!(p, ",\"seq\":{seq}");
    if let Some(d) = domain {
        p.extend_from_slice(b",\"domain\":");
        let _ = serde_json::to_writer(&mut p, d);
    }
    p.push(b'}');
    Delivery {
        subject: reply,
        reply: None,
        headers: Vec::new(),
        payload: p,
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
        for (name, bytes) in metas {
            let Ok(m) = serde_json::from_slice::<MetaIn>(&bytes) else {
                tracing::warn!("JetStream: unreadable config of stream {name:?}, skipped");
                continue;
            };
            if m.restoring {
                tracing::warn!("JetStream: restore of stream {name:?} was interrupted, removed");
                js.factory.remove(&name);
                continue;
            }
            match js.factory.open(&m.config, store_config(&m.config)) {
                Ok(store) => {
                    let mut consumers = BTreeMap::new();
                    for (cname, bytes) in js.factory.load_consumers(&name) {
                        match serde_json::from_slice::<ConsumerMeta>(&bytes) {
                            Ok(cm) => {
                                let st = js.factory.load_consumer_state(&name, &cname);
                                let (c, r) = super::consumer::state::restore_durable(
                                    cm,
                                    st,
                                    name.clone(),
                                    store.as_ref(),
                                );
                                if let Err(e) = r {
                                    tracing::error!("JetStream: damaged state of consumer {name}/{cname} ({e}): resuming at its ack floor");
                                    js.consumer_damage.push((name.clone(), cname.clone(), e));
                                }
                                consumers.insert(cname, c);
                            }
                            Err(e) => {
                                tracing::warn!("JetStream: unreadable consumer {name}/{cname}: {e}")
                            }
                        }
                    }
                    js.streams.insert(
                        name,
                        Entry {
                            stream: Stream::new(m.config, store, m.created),
                            consumers,
                        },
                    );
                }
                Err(e) => tracing::error!("JetStream: cannot open stream {name:?}: {e}"),
            }
        }
        js
    }

    /// Every subject streams capture (the shell subscribes to these).
    pub fn subjects(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .streams
            .values()
            .flat_map(|e| e.stream.config.subjects.iter().cloned())
            .collect();
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

    /// A message published on some subject: stored if a stream captures it. Errors are
    /// answered at once; successes wait for [`JetStream::commit`].
    pub fn publish(
        &mut self,
        subj: &str,
        reply: Option<&str>,
        hdr: &[u8],
        payload: &[u8],
        now: UnixNanos,
    ) -> Vec<Delivery> {
        let Some(name) = self
            .streams
            .iter()
            .find(|(_, e)| e.stream.captures(subj))
            .map(|(n, _)| n.clone())
        else {
            return Vec::new();
        };
        if let Some(err) = self.publish_limit_error(&name) {
            return reply
                .map(|r| {
                    vec![json_reply(
                        r,
                        &json!({"error": err, "stream": name, "seq": 0}),
                    )]
                })
                .unwrap_or_default();
        }
        if super::stream::is_batched(hdr) {
            return self.publish_batched(&name, subj, reply, hdr, payload, now);
        }
        let Some(e) = self.streams.get_mut(&name) else {
            return Vec::new();
        };
        let memory = e.stream.config.storage == "memory";
        let stored = e.stream.publish(subj, hdr, payload, now);
        // Go: jsa.limitsExceeded after the store — the message is taken back.
        if let Ok(st) = &stored {
            if !st.duplicate && self.account_over(memory) {
                if let Some(e) = self.streams.get_mut(&name) {
                    let _ = e.stream.store.remove_msg(st.seq);
                }
                let err = account_resources_exceeded();
                return reply
                    .map(|r| {
                        vec![json_reply(
                            r,
                            &json!({"error": err, "stream": name, "seq": 0}),
                        )]
                    })
                    .unwrap_or_default();
            }
        }
        let Some(e) = self.streams.get_mut(&name) else {
            return Vec::new();
        };
        match stored {
            // A duplicate of a message not yet synced waits for it: had the sync failed,
            // an immediate "duplicate" would acknowledge a message the crash then loses.
            Ok(st) if st.duplicate && e.stream.store.synced_through() < st.seq => {
                if let Some(r) = reply {
                    self.acks.push(PendingAck {
                        stream: name.clone(),
                        seq: st.seq,
                        reply: r.to_owned(),
                        duplicate: true,
                        val: None,
                        batch: None,
                    });
                    self.mark_dirty(&name);
                }
                Vec::new()
            }
            Ok(st) if st.duplicate => reply
                .map(|r| vec![dup_ack(r, &name, st.seq, self.settings.domain.as_deref())])
                .unwrap_or_default(),
            Ok(st) => {
                if !super::retention::drop_unwanted(e, subj, st.seq) {
                    for c in e.consumers.values_mut() {
                        c.on_stored(subj, st.seq);
                    }
                }
                if !self.dirty.contains(&name) {
                    self.dirty.push(name.clone());
                }
                let mut out: Vec<Delivery> = st.republish.into_iter().collect();
                if let Some(r) = reply {
                    let a = PendingAck {
                        stream: name,
                        seq: st.seq,
                        reply: r.to_owned(),
                        duplicate: false,
                        val: st.val,
                        batch: None,
                    };
                    // `persist_mode: async` (Go 2.12): acknowledged before the sync.
                    if super::stream::persist_async(&e.stream.config) {
                        out.push(stored_ack(a, self.settings.domain.as_deref()));
                    } else {
                        self.acks.push(a);
                    }
                }
                out
            }
            Err(e) => reply
                .map(|r| vec![json_reply(r, &json!({"error": e}))])
                .unwrap_or_default(),
        }
    }

    /// Go: processJetStreamMsg — a server over its limit refuses before storing.
    fn publish_limit_error(&self, stream: &str) -> Option<ApiError> {
        let memory = self.streams.get(stream)?.stream.config.storage == "memory";
        self.server_full(memory).then(insufficient_resources)
    }

    /// Group commit: syncs every stream written since the last call, then acknowledges the
    /// publishes the sync covered and hands new messages to consumers.
    pub fn commit(&mut self, now: UnixNanos) -> Vec<Delivery> {
        self.commit_and_source(now, true)
    }

    /// Releases acks without syncing: nats-server's `sync_interval` mode, where a power loss
    /// can lose acknowledged messages (the shell syncs on a timer with [`JetStream::commit`]).
    pub fn commit_unsynced(&mut self, now: UnixNanos) -> Vec<Delivery> {
        self.commit_and_source(now, false)
    }

    /// A commit, then mirrors and sources copy what it committed; what they stored is
    /// committed in turn (a few rounds, for chains of sources).
    fn commit_and_source(&mut self, now: UnixNanos, sync: bool) -> Vec<Delivery> {
        let mut out = self.commit_inner(now, sync);
        for _ in 0..4 {
            let (copies, stored) = self.pull_sources(now, sync);
            out.extend(copies);
            if !stored {
                break;
            }
            out.extend(self.commit_inner(now, sync));
        }
        out
    }

    /// Streams sourcing wrote to wait for the next commit.
    pub(crate) fn mark_dirty(&mut self, name: &str) {
        if !self.dirty.iter().any(|d| d == name) {
            self.dirty.push(name.to_owned());
        }
    }

    fn commit_inner(&mut self, now: UnixNanos, sync: bool) -> Vec<Delivery> {
        let names = self.names_to_commit(sync);
        if sync {
            self.save_moved_consumers();
        }
        let mut out = Vec::new();
        let mut synced: BTreeMap<String, Result<u64, ApiError>> = BTreeMap::new();
        for name in names {
            if let Some(e) = self.streams.get_mut(&name) {
                let r = if sync {
                    e.stream.store.sync().map_err(|x| store_error(&x))
                } else {
                    Ok(e.stream.store.state().last_seq)
                };
                synced.insert(name.clone(), r);
                pump(e, now, &mut out);
            }
        }
        self.release_acks(&synced, &mut out);
        out
    }

    /// The streams a commit covers: those written since the last one, and with a real sync
    /// also those acknowledged unsynced meanwhile (`sync_interval` mode).
    fn names_to_commit(&mut self, sync: bool) -> Vec<String> {
        let mut names = std::mem::take(&mut self.dirty);
        if sync {
            for n in std::mem::take(&mut self.unsynced) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        } else {
            for n in &names {
                if !self.unsynced.contains(n) {
                    self.unsynced.push(n.clone());
                }
            }
        }
        names
    }

    /// Group commit with the fsyncs on another thread (pipelining: this thread goes on
    /// storing the next batch while the disk works). Streams whose store syncs at once
    /// (memory, or a disk without deferred syncs) are committed here exactly as by
    /// [`JetStream::commit`]; the others' acks and consumer deliveries wait for
    /// [`JetStream::commit_finish`] with the outcome of [`CommitJobs::run`]. At most one
    /// batch may be in flight: begin the next only after finishing this one.
    pub fn commit_begin(&mut self, now: UnixNanos) -> (Vec<Delivery>, Option<CommitJobs>) {
        let names = self.names_to_commit(true);
        self.save_moved_consumers();
        let mut out = Vec::new();
        let mut synced: BTreeMap<String, Result<u64, ApiError>> = BTreeMap::new();
        let mut batch = CommitJobs::default();
        for name in names {
            let Some(e) = self.streams.get_mut(&name) else {
                continue;
            };
            match e.stream.store.begin_sync() {
                Ok((through, jobs)) if !jobs.is_empty() => {
                    batch.streams.push((name, through, jobs.len()));
                    batch.jobs.extend(jobs);
                }
                r => {
                    synced.insert(name, r.map(|(t, _)| t).map_err(|x| store_error(&x)));
                    pump(e, now, &mut out);
                }
            }
        }
        self.release_acks(&synced, &mut out);
        let (copies, _) = self.pull_sources(now, true);
        out.extend(copies);
        (out, (!batch.jobs.is_empty()).then_some(batch))
    }

    /// Completes a [`JetStream::commit_begin`]: the streams it synced acknowledge what the
    /// sync covered and hand it to their consumers; a failed fsync answers their publishes
    /// with the error (and the store stays frozen).
    pub fn commit_finish(&mut self, now: UnixNanos, done: CommitDone) -> Vec<Delivery> {
        let mut out = Vec::new();
        let mut synced: BTreeMap<String, Result<u64, ApiError>> = BTreeMap::new();
        let mut results = done.results.into_iter();
        for (name, through, n) in done.streams {
            let mut outcome = Ok(());
            for r in results.by_ref().take(n) {
                if outcome.is_ok() {
                    outcome = r;
                }
            }
            // A stream deleted meanwhile: its publishes were answered by the deletion.
            let Some(e) = self.streams.get_mut(&name) else {
                continue;
            };
            let r = e
                .stream
                .store
                .finish_sync(through, outcome)
                .map_err(|x| store_error(&x));
            synced.insert(name, r);
            pump(e, now, &mut out);
        }
        self.release_acks(&synced, &mut out);
        let (copies, _) = self.pull_sources(now, true);
        out.extend(copies);
        out
    }

    /// Acknowledges the publishes a sync covered (`synced` by stream; a stream not in it is
    /// judged by what its store says is durable), answers errors, keeps the rest waiting.
    fn release_acks(
        &mut self,
        synced: &BTreeMap<String, Result<u64, ApiError>>,
        out: &mut Vec<Delivery>,
    ) {
        let domain = self.settings.domain.clone();
        let mut keep = Vec::new();
        for a in std::mem::take(&mut self.acks) {
            let through = match synced.get(&a.stream) {
                Some(Ok(t)) => *t,
                Some(Err(e)) => {
                    out.push(json_reply(&a.reply, &json!({"error": e})));
                    continue;
                }
                None => match self.streams.get(&a.stream) {
                    Some(e) => e.stream.store.synced_through(),
                    None => {
                        out.push(json_reply(
                            &a.reply,
                            &json!({"error": err::stream_not_found()}),
                        ));
                        continue;
                    }
                },
            };
            if through >= a.seq && a.duplicate {
                out.push(dup_ack(&a.reply, &a.stream, a.seq, domain.as_deref()));
            } else if through >= a.seq {
                out.push(stored_ack(a, domain.as_deref()));
            } else {
                keep.push(a);
            }
        }
        self.acks = keep;
    }

    /// Records the durable consumers whose state or ack floor changed (once per group
    /// commit; see `consumer::state`).
    fn save_moved_consumers(&mut self) {
        let moved = std::mem::take(&mut self.moved);
        self.save_consumer_states(moved);
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

    /// Was anything stored since the last commit began?
    pub fn has_uncommitted(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// How many publishes wait for a sync to be acknowledged.
    pub fn pending_acks(&self) -> usize {
        self.acks.len()
    }

    /// Are publishes waiting for a sync?
    pub fn has_pending_acks(&self) -> bool {
        !self.acks.is_empty() || !self.dirty.is_empty()
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

    /// Creates (or idempotently re-creates) a stream.
    pub(crate) fn create_stream(
        &mut self,
        cfg: StreamConfig,
        now: UnixNanos,
    ) -> Result<bool, ApiError> {
        let cfg = check_config(cfg)?;
        self.check_sourcing(&cfg)?;
        self.check_stream_bytes(&cfg)?;
        if self.snap.restoring(&cfg.name) {
            return Err(err::stream_name_exist());
        }
        if let Some(e) = self.streams.get(&cfg.name) {
            return if e.stream.config == cfg {
                Ok(false)
            } else {
                Err(err::stream_name_exist())
            };
        }
        self.check_overlap(&cfg.name, &cfg.subjects)?;
        let store = self
            .factory
            .open(&cfg, store_config(&cfg))
            .map_err(|e| store_error(&e))?;
        if cfg.storage != "memory" {
            let meta = serde_json::to_vec(&Meta {
                created: now,
                config: cfg.clone(),
            })
            .unwrap_or_default();
            if let Err(e) = self.factory.save_meta(&cfg.name, &meta) {
                self.factory.remove(&cfg.name);
                return Err(store_error(&e));
            }
        }
        let name = cfg.name.clone();
        self.streams.insert(
            name.clone(),
            Entry {
                stream: Stream::new(cfg, store, now),
                consumers: BTreeMap::new(),
            },
        );
        let adv = self.stream_advisory(&name, Action::Create, now);
        self.advisories.push(adv);
        Ok(true)
    }

    fn check_overlap(&self, name: &str, subjects: &[String]) -> Result<(), ApiError> {
        for (n, e) in &self.streams {
            if n == name {
                continue;
            }
            for a in subjects {
                for b in &e.stream.config.subjects {
                    if subject::overlaps(a.as_bytes(), b.as_bytes()) {
                        return Err(err::subject_overlap());
                    }
                }
            }
        }
        Ok(())
    }

    /// Updates a stream's config.
    pub(crate) fn update_stream(&mut self, cfg: StreamConfig) -> Result<(), ApiError> {
        let cfg = check_config(cfg)?;
        self.check_sourcing(&cfg)?;
        if let Some(e) = self.streams.get(&cfg.name) {
            self.check_stream_update(&e.stream.config, &cfg)?;
        }
        self.check_overlap(&cfg.name, &cfg.subjects)?;
        let e = self
            .streams
            .get_mut(&cfg.name)
            .ok_or_else(err::stream_not_found)?;
        e.stream.update(cfg)?;
        if e.stream.config.storage != "memory" {
            let meta = serde_json::to_vec(&Meta {
                created: e.stream.created,
                config: e.stream.config.clone(),
            })
            .unwrap_or_default();
            let name = e.stream.config.name.clone();
            self.factory
                .save_meta(&name, &meta)
                .map_err(|x| store_error(&x))?;
        }
        Ok(())
    }

    /// Deletes a stream and its data.
    pub(crate) fn delete_stream(&mut self, name: &str) -> Result<(), ApiError> {
        let e = self
            .streams
            .remove(name)
            .ok_or_else(err::stream_not_found)?;
        drop(e);
        self.factory.remove(name);
        self.acks.retain(|a| a.stream != name);
        self.dirty.retain(|d| d != name);
        self.unsynced.retain(|d| d != name);
        self.moved.retain(|(s, _)| s != name);
        Ok(())
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

    /// Stream info as JSON (without `type`).
    pub(crate) fn stream_info(&self, name: &str, now: UnixNanos) -> Result<Value, ApiError> {
        let e = self.streams.get(name).ok_or_else(err::stream_not_found)?;
        let mut v = json!({
            "config": e.stream.config,
            "created": rfc3339(e.stream.created),
            "state": e.stream.state_json(e.consumers.len()),
            // No `cluster` block: nats-server 2.9 sends none for a stream on a server
            // without a cluster.
            "ts": rfc3339(now),
        });
        e.stream.sourcing_info(&mut v, now);
        Ok(v)
    }

    pub(crate) fn store_of(&mut self, name: &str) -> Result<&mut Entry, ApiError> {
        self.streams.get_mut(name).ok_or_else(err::stream_not_found)
    }

    pub(crate) fn stream_names(&self) -> impl Iterator<Item = &String> {
        self.streams.keys()
    }

    pub(crate) fn stream_store(&self, name: &str) -> Result<&dyn StreamStore, ApiError> {
        self.streams
            .get(name)
            .map(|e| e.stream.store.as_ref() as &dyn StreamStore)
            .ok_or_else(err::stream_not_found)
    }
}
