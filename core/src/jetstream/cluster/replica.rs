//! A replicated stream's replica: what applying a log entry ([`StreamEntry`], see `entry`)
//! does to the single-server [`Stream`] and [`Consumer`] machines
//! ([`ReplicatedStream::apply`]).
//!
//! # Who decides
//! The group leader runs the ordinary publish path on its own replica
//! ([`ReplicatedStream::leader_publish`]): subject transform, `Nats-Expected-*`, de-duplication,
//! counters, schedules, TTL, limits. What it stored is then proposed as a [`StreamEntry::Msg`]:
//! the record itself (sequence, timestamp, final subject, headers and payload) and the rollup
//! it performed. A follower stores that record as it is; it never judges a message again, so a
//! replica cannot disagree with its leader about a sequence, a time, a duplicate verdict or a
//! counter's total. A duplicate is answered by the leader and proposes nothing. The leader
//! proposes every change it makes, in the order it made it; the client is answered only once
//! the entry is committed.
//!
//! # Replays
//! Every entry is stamped with the leader's last stream sequence before it (`last_seq`,
//! Go: `lseq`). A replica whose store already holds more (the leader itself, or a replica that
//! restarted from an older snapshot while its store kept later writes) skips the entry: its
//! effect is already in the store. A message entry skipped so is still compared with what the
//! store holds at its sequence, and a difference is reported ([`Applied::Diverged`]) rather
//! than kept silently. A replica whose store holds less than `last_seq` is missing writes
//! ([`Applied::Behind`]) and must catch up from a peer before it applies more (see `catchup`:
//! the peer's snapshot gives the target, its store the messages). Message
//! records are checked one by one, so a batch the store kept only part of is completed. A
//! config met while replaying waits for the store's end, so it cannot trim messages a later
//! config allowed. A snapshot holds the replica's state but not its messages: take it once
//! the store synced (the shell syncs it before each), or a crash can leave the store short of it.
//!
//! # Consumers
//! Consumer state rides in the stream's own log ([`StreamEntry::ConsumerCreate`],
//! [`StreamEntry::ConsumerState`], [`StreamEntry::ConsumerDelete`]) instead of a Raft group per
//! consumer as nats-server has. One log orders acks against the messages they retire (interest
//! and work-queue retention delete exactly what the log says, when it says), a consumer's leader
//! is always its stream's leader, and a cluster with many consumers runs far fewer Raft groups.
//! The state entry is the consumer's whole delivery state in its state-file encoding, proposed
//! at most once per group commit when it changed, as the single-server file is written. The
//! leader does not apply those entries back to its live consumers, which are ahead of them
//! ([`ReplicatedStream::set_leading`]); removals that acks make on interest and work-queue
//! streams travel as explicit delete entries ([`ReplicatedStream::leader_settle`]).
//!
//! # What an entry may never do
//! Read the clock, draw randomness, or depend on anything but the replica's own state and the
//! entry; delete anything but what the entry names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::codec::{self, DecodeError, Kind};
use super::entry::{MsgRecord, StreamEntry};
use crate::jetstream::api::{err, ApiError, ConsumerConfig, StreamConfig};
use crate::jetstream::consumer::{state, Consumer, ConsumerMeta};
use crate::jetstream::store::{StoredMsg, StreamStore, UnixNanos};
use crate::jetstream::stream::{Stored, Stream};
use crate::proto::headers::Headers;

/// What applying one entry did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applied {
    /// The entry's index was applied already (a replay after a snapshot restore).
    Replay,
    /// Done.
    Done,
    /// The store already reflected the entry (this replica made it, or kept it across a
    /// restart); nothing changed.
    AlreadyHad,
    /// The store holds something else at `seq` than the entry: this replica went its own
    /// way (an old leader's unreplicated write) and must be rebuilt from the leader.
    Diverged {
        /// The first sequence that differs.
        seq: u64,
    },
    /// The store lacks writes the entry follows: catch up from a peer first (`catchup`).
    Behind {
        /// The store's last sequence.
        have: u64,
        /// The entry's.
        want: u64,
    },
    /// The entry names something this replica does not have (a consumer), or its operation
    /// failed in the store; the error says which.
    Failed(ApiError),
}

/// The part of a replicated stream a snapshot holds; the messages stay in the store (a
/// replica that lacks them catches up from a peer with the `catchup` protocol, up to the
/// snapshot's `last_seq`, as in nats-server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Snapshot {
    applied: u64,
    created: UnixNanos,
    config: StreamConfig,
    last_seq: u64,
    /// (meta, state-file bytes) by consumer name.
    consumers: Vec<(ConsumerMeta, Vec<u8>)>,
}

/// What a catch-up needs to know of a snapshot ([`ReplicatedStream::snapshot_info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The last log index it applied.
    pub applied: u64,
    /// The store's last sequence when it was taken: the catch-up's target.
    pub last_seq: u64,
}

/// One replica of a replicated stream: the stream machine, its consumers, and the last
/// log index applied.
#[derive(Debug)]
pub struct ReplicatedStream {
    /// The stream.
    pub stream: Stream,
    /// Its consumers by name.
    pub consumers: BTreeMap<String, Consumer>,
    applied: u64,
    /// The newest config met while replaying entries the store is already past: applied once
    /// the replay reaches the store's end (applying it earlier could trim messages a later
    /// config allowed).
    pending_config: Option<StreamConfig>,
    /// This replica leads the group (set by the shell from Raft): its consumers are live, and
    /// their state entries, older than what they hold, are not applied back to them.
    leading: bool,
    /// The stream's last sequence among the entries applied, i.e. committed: a leader's
    /// consumers hand out nothing past it (the leader stores a message before its entry
    /// commits).
    committed: u64,
}

impl ReplicatedStream {
    /// A new replica over an empty (or recovered) store.
    pub fn new(
        config: StreamConfig,
        store: Box<dyn StreamStore + Send>,
        created: UnixNanos,
    ) -> Self {
        Self {
            stream: Stream::new(config, store, created),
            consumers: BTreeMap::new(),
            applied: 0,
            pending_config: None,
            leading: false,
            committed: 0,
        }
    }

    /// The last log index applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Raft made this replica the group's leader (`true`) or a follower. A leader's consumers
    /// deliver and take acks themselves; the state entries they proposed are older than what
    /// they hold by the time they commit, so a leader does not apply them back.
    pub fn set_leading(&mut self, leading: bool) {
        self.leading = leading;
        let ceiling = if leading { self.committed } else { u64::MAX };
        for c in self.consumers.values_mut() {
            c.set_ceiling(ceiling);
        }
    }

    /// The last stream sequence known committed (see the field).
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Raises the committed sequence after an applied entry; a leader's consumers follow.
    fn commit_upto(&mut self, entry: &StreamEntry) {
        let upto = match entry {
            StreamEntry::Msg(m) => Some(m.seq),
            StreamEntry::Batch(ms) => ms.last().map(|m| m.seq),
            StreamEntry::Skip { seq, count, .. } => Some((seq + count).saturating_sub(1)),
            other => other.last_seq(),
        };
        // Never past what the store holds (a replica that refused an entry).
        let upto = upto.unwrap_or(0).min(self.last_seq());
        if upto > self.committed {
            self.committed = upto;
            if self.leading {
                for c in self.consumers.values_mut() {
                    c.set_ceiling(upto);
                }
            }
        }
    }

    fn last_seq(&self) -> u64 {
        self.stream.store.state().last_seq
    }

    /// Leader: publishes on this replica and returns the entries to propose: none for a
    /// duplicate (answered with the original's sequence), the stored record, and on an
    /// interest stream no consumer matches, its removal too (Go keeps nothing then).
    pub fn leader_publish(
        &mut self,
        subject: &str,
        hdr: &[u8],
        payload: &[u8],
        now: UnixNanos,
    ) -> Result<(Stored, Vec<StreamEntry>), ApiError> {
        let rollup = self
            .stream
            .config
            .allow_rollup_hdrs
            .then(|| rollup_of(hdr))
            .flatten();
        let stored = self.stream.publish(subject, hdr, payload, now)?;
        if stored.duplicate {
            return Ok((stored, Vec::new()));
        }
        let m = self
            .stream
            .store
            .load_msg(stored.seq)
            .map_err(|e| err::store_failed(&e.to_string()))?;
        let store = self.stream.store.as_ref();
        for c in self.consumers.values_mut() {
            c.on_stored(&m.subject, m.seq);
            if rollup.is_some() {
                c.recount(store);
            }
        }
        let unwanted = self.stream.config.retention == "interest"
            && !self.consumers.values().any(|c| c.matches(&m.subject));
        let mut out = vec![StreamEntry::Msg(MsgRecord {
            seq: m.seq,
            ts: m.ts,
            subject: m.subject,
            headers: m.headers,
            payload: m.payload,
            rollup,
            sourced: false,
        })];
        if unwanted {
            out.push(self.leader_delete(m.seq).1);
        }
        Ok((stored, out))
    }

    /// Leader: removes what acknowledgements made unneeded on an interest or work-queue
    /// stream and returns the entries that remove the same on the followers (Go: stream.go
    /// ackMsg; the rule `retention::settle` applies on one server). Propose the consumers'
    /// state entries before these.
    pub fn leader_settle(&mut self) -> Vec<StreamEntry> {
        let acked: Vec<u64> = self
            .consumers
            .values_mut()
            .flat_map(Consumer::take_acked)
            .collect();
        let retention = self.stream.config.retention.clone();
        let mut out = Vec::new();
        if retention == "limits" {
            return out;
        }
        for seq in acked {
            let Ok(m) = self.stream.store.load_msg(seq) else {
                continue;
            };
            if retention == "workqueue"
                || !self
                    .consumers
                    .values()
                    .any(|c| c.needs_ack(seq, &m.subject))
            {
                out.push(self.leader_delete(seq).1);
            }
        }
        out
    }

    /// Leader: applies `make(last_seq)` here first, through the same code a follower runs,
    /// and returns the entry to propose with what it did.
    fn leader_apply(&mut self, make: impl FnOnce(u64) -> StreamEntry) -> (Applied, StreamEntry) {
        let e = make(self.last_seq());
        (self.apply_entry(&e), e)
    }

    /// Leader: removes message `seq` (MSG.DELETE, or retention once it was acked).
    pub fn leader_delete(&mut self, seq: u64) -> (Applied, StreamEntry) {
        self.leader_apply(|last_seq| StreamEntry::Delete { last_seq, seq })
    }

    /// Leader: a purge as `$JS.API.STREAM.PURGE` asked it.
    pub fn leader_purge(&mut self, filter: &str, seq: u64, keep: u64) -> (Applied, StreamEntry) {
        self.leader_apply(|last_seq| StreamEntry::Purge {
            last_seq,
            filter: filter.to_owned(),
            seq,
            keep,
        })
    }

    /// Leader: the time-driven removals due at `now` (its wall clock).
    pub fn leader_expire(&mut self, now: UnixNanos) -> (Applied, StreamEntry) {
        self.leader_apply(|last_seq| StreamEntry::Expire { last_seq, now })
    }

    /// Leader: a new config at this point of the log.
    pub fn leader_config(&mut self, config: StreamConfig) -> (Applied, StreamEntry) {
        self.leader_apply(|last_seq| StreamEntry::Config { last_seq, config })
    }

    /// Leader: creates a consumer (config already checked, name chosen) and returns the entry
    /// that creates it on the followers.
    pub fn leader_create_consumer(
        &mut self,
        name: &str,
        config: ConsumerConfig,
        now: UnixNanos,
    ) -> StreamEntry {
        let meta = ConsumerMeta {
            name: name.to_owned(),
            created: now,
            config,
            ack_floor_sseq: 0,
            ack_floor_cseq: 0,
        };
        self.create_consumer(&meta, false);
        let meta = self.consumers.get(name).map_or(meta, Consumer::meta);
        StreamEntry::ConsumerCreate {
            last_seq: self.last_seq(),
            meta,
        }
    }

    /// Leader: removes a consumer and returns the entries that remove it on the followers,
    /// then, on an interest stream, the messages only it was holding (Go: stopWithFlags; the
    /// rule `retention::consumer_removed` applies on one server).
    pub fn leader_delete_consumer(&mut self, name: &str) -> Vec<StreamEntry> {
        let Some(gone) = self.consumers.remove(name) else {
            return Vec::new();
        };
        let mut out = vec![StreamEntry::ConsumerDelete {
            name: name.to_owned(),
        }];
        if self.stream.config.retention != "interest" {
            return out;
        }
        let mut seq = (gone.ack_floor() + 1).max(self.stream.store.state().first_seq);
        let mut unwanted = Vec::new();
        while let Ok(m) = self.stream.store.load_next_msg("", seq) {
            seq = m.seq + 1;
            if !self
                .consumers
                .values()
                .any(|c| c.needs_ack(m.seq, &m.subject))
            {
                unwanted.push(m.seq);
            }
        }
        for seq in unwanted {
            out.push(self.leader_delete(seq).1);
        }
        out
    }

    /// Leader: the entries for what an operation other than [`Self::leader_publish`] stored
    /// after sequence `after` (an atomic batch's commit, a sourced or mirrored message):
    /// consecutive records become one entry ([`StreamEntry::Batch`] when more than one, so
    /// a batch stays atomic in the log) and sequences no longer there become
    /// [`StreamEntry::Skip`]s.
    pub fn leader_stored(&self, after: u64, sourced: bool) -> Vec<StreamEntry> {
        let store = self.stream.store.as_ref();
        let end = self.last_seq();
        let allow_rollup = self.stream.config.allow_rollup_hdrs;
        let mut out = Vec::new();
        let mut run: Vec<MsgRecord> = Vec::new();
        let flush = |run: &mut Vec<MsgRecord>, out: &mut Vec<StreamEntry>| match run.len() {
            0 => {}
            1 => out.extend(run.pop().map(StreamEntry::Msg)),
            _ => out.push(StreamEntry::Batch(std::mem::take(run))),
        };
        let mut seq = after + 1;
        while seq <= end {
            match store.load_msg(seq) {
                Ok(m) => {
                    run.push(MsgRecord {
                        seq: m.seq,
                        ts: m.ts,
                        rollup: allow_rollup.then(|| rollup_of(&m.headers)).flatten(),
                        subject: m.subject,
                        headers: m.headers,
                        payload: m.payload,
                        sourced,
                    });
                    seq += 1;
                }
                Err(_) => {
                    flush(&mut run, &mut out);
                    // The gap runs to the next stored message (or the end).
                    let next = store.load_next_msg("", seq).ok().filter(|m| m.seq <= end);
                    let (upto, ts) = match &next {
                        Some(m) => (m.seq, m.ts),
                        None => (end + 1, store.state().last_ts),
                    };
                    out.push(StreamEntry::Skip {
                        last_seq: seq - 1,
                        seq,
                        count: upto - seq,
                        ts,
                    });
                    seq = upto;
                }
            }
        }
        flush(&mut run, &mut out);
        out
    }

    /// Leader: the entry that replicates a consumer's current delivery state.
    pub fn consumer_state_entry(&self, name: &str) -> Option<StreamEntry> {
        let c = self.consumers.get(name)?;
        Some(StreamEntry::ConsumerState {
            name: name.to_owned(),
            state: state::encode(&c.delivery_state()),
        })
    }

    /// Applies the entry at log `index` (see the module docs for replays and skips).
    pub fn apply(&mut self, index: u64, entry: &StreamEntry) -> Applied {
        if index <= self.applied {
            return Applied::Replay;
        }
        let out = self.apply_entry(entry);
        // A replica that is behind has not applied the entry: the shell catches it up and
        // hands the same index in again.
        if !matches!(out, Applied::Behind { .. }) {
            self.applied = index;
        }
        if !matches!(out, Applied::Behind { .. } | Applied::Diverged { .. }) {
            self.commit_upto(entry);
        }
        out
    }

    fn apply_entry(&mut self, entry: &StreamEntry) -> Applied {
        let have = self.last_seq();
        let records = matches!(entry, StreamEntry::Msg(_) | StreamEntry::Batch(_));
        if let Some(want) = entry.last_seq() {
            if have < want {
                return Applied::Behind { have, want };
            }
            // Message records sort themselves out one by one (see `store`): a batch the
            // store holds only part of is completed.
            if have > want && !records {
                return self.check_had(entry);
            }
            if have == want {
                self.flush_config();
            }
        }
        match entry {
            StreamEntry::Msg(m) => self.store(m),
            StreamEntry::Batch(ms) => {
                let mut all = Applied::AlreadyHad;
                for m in ms {
                    match self.store(m) {
                        Applied::AlreadyHad => {}
                        Applied::Done => all = Applied::Done,
                        // A store failure part-way leaves this replica to be rebuilt.
                        out => return out,
                    }
                }
                all
            }
            StreamEntry::Skip { seq, count, ts, .. } => {
                done(self.stream.store.skip_msgs(*seq, *count, *ts).map(|_| ()))
            }
            StreamEntry::Delete { seq, .. } => {
                let r = self.stream.store.remove_msg(*seq).map(|_| ());
                self.recount();
                done(r)
            }
            StreamEntry::Purge {
                last_seq,
                filter,
                seq,
                keep,
            } => {
                let store = &mut self.stream.store;
                // Go: a purge without a sequence is bounded by the leader's last sequence,
                // so replaying it can never take a later message.
                let upto = if *seq == 0 && *keep == 0 {
                    last_seq + 1
                } else {
                    *seq
                };
                let r = if filter.is_empty() && *keep == 0 {
                    store.compact(upto)
                } else {
                    store.purge_ex(filter, *keep, upto)
                };
                self.recount();
                done(r.map(|_| ()))
            }
            StreamEntry::Expire { now, .. } => {
                self.stream.expire(*now);
                self.recount();
                Applied::Done
            }
            StreamEntry::Config { config, .. } => {
                if *config == self.stream.config {
                    return Applied::AlreadyHad;
                }
                match self.stream.update(config.clone()) {
                    Ok(()) => Applied::Done,
                    Err(e) => Applied::Failed(e),
                }
            }
            StreamEntry::ConsumerCreate { meta, .. } => {
                self.create_consumer(meta, false);
                Applied::Done
            }
            StreamEntry::ConsumerDelete { name } => {
                self.consumers.remove(name);
                Applied::Done
            }
            StreamEntry::ConsumerState { name, state } => self.consumer_state(name, state),
        }
    }

    fn flush_config(&mut self) {
        if let Some(c) = self.pending_config.take() {
            if c != self.stream.config {
                // Refused only if the log carried an invalid update; the leader checked it.
                let _ = self.stream.update(c);
            }
        }
    }

    /// An entry (other than a message) the store is already past: its effect on the store is
    /// there; what lives outside the store (config, consumers) is still taken in.
    fn check_had(&mut self, entry: &StreamEntry) -> Applied {
        match entry {
            StreamEntry::Config { config, .. } => {
                self.pending_config = Some(config.clone());
            }
            StreamEntry::ConsumerCreate { meta, .. } => self.create_consumer(meta, true),
            _ => {}
        }
        Applied::AlreadyHad
    }

    /// A record at or below the store's last sequence: the same as the store holds, or a
    /// divergence. A message removed since (deleted, purged, expired) cannot be compared:
    /// its removal is in the log after it.
    fn compare(&self, m: &MsgRecord) -> Applied {
        match self.stream.store.load_msg(m.seq) {
            Ok(had)
                if had.ts != m.ts
                    || had.subject != m.subject
                    || had.headers != m.headers
                    || had.payload != m.payload =>
            {
                Applied::Diverged { seq: m.seq }
            }
            _ => Applied::AlreadyHad,
        }
    }

    fn store(&mut self, m: &MsgRecord) -> Applied {
        let have = self.last_seq();
        if m.seq <= have {
            let out = self.compare(m);
            if m.seq == have && out == Applied::AlreadyHad {
                // The replay reached the store's end: from here entries are new.
                self.flush_config();
            }
            return out;
        }
        if m.seq != have + 1 {
            return Applied::Behind {
                have,
                want: m.seq - 1,
            };
        }
        // A config met while replaying applies before the first new message, as it did on
        // the leader.
        self.flush_config();
        let sm = StoredMsg {
            seq: m.seq,
            ts: m.ts,
            subject: m.subject.clone(),
            headers: m.headers.clone(),
            payload: m.payload.clone(),
        };
        if let Err(e) = self
            .stream
            .store_decided(&sm, m.rollup.as_deref(), m.sourced)
        {
            return Applied::Failed(e);
        }
        let store = self.stream.store.as_ref();
        for c in self.consumers.values_mut() {
            c.on_stored(&m.subject, m.seq);
            if m.rollup.is_some() {
                c.recount(store);
            }
        }
        Applied::Done
    }

    /// Creates the consumer `meta` names, or updates its config. On a replay (the store is
    /// past the point it was created at) it starts at the leader's recorded ack floor,
    /// since its deliver policy would now find a later start.
    fn create_consumer(&mut self, meta: &ConsumerMeta, replay: bool) {
        if let Some(c) = self.consumers.get_mut(&meta.name) {
            if c.config != meta.config {
                c.update_config(meta.config.clone());
                // A filter may have changed.
                c.recount(self.stream.store.as_ref());
            }
            return;
        }
        let store = self.stream.store.as_ref();
        let name = self.stream.config.name.clone();
        let c = if replay {
            Consumer::restore(meta.clone(), name, store)
        } else {
            Consumer::new(
                meta.name.clone(),
                name,
                meta.config.clone(),
                store,
                meta.created,
            )
        };
        let mut c = c;
        if self.leading {
            c.set_ceiling(self.committed);
        }
        self.consumers.insert(meta.name.clone(), c);
    }

    fn consumer_state(&mut self, name: &str, bytes: &[u8]) -> Applied {
        let Some(c) = self.consumers.get_mut(name) else {
            return Applied::Failed(err::consumer_not_found());
        };
        if self.leading {
            return Applied::AlreadyHad;
        }
        match state::decode(bytes) {
            Ok(s) => {
                c.apply_state(s, self.stream.store.as_ref());
                Applied::Done
            }
            Err(e) => Applied::Failed(err::consumer_create(&e)),
        }
    }

    fn recount(&mut self) {
        let store = self.stream.store.as_ref();
        for c in self.consumers.values_mut() {
            c.recount(store);
        }
    }

    /// The snapshot's bytes: the applied index, config, consumers and the store's last
    /// sequence (the messages stay in the store). The same state gives the same bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let s = Snapshot {
            applied: self.applied,
            created: self.stream.created,
            config: self.stream.config.clone(),
            last_seq: self.last_seq(),
            consumers: self
                .consumers
                .values()
                .map(|c| (c.meta(), state::encode(&c.delivery_state())))
                .collect(),
        };
        codec::seal_json(Kind::StreamSnapshot, &s)
    }

    /// The applied index and last sequence a snapshot's bytes hold.
    pub fn snapshot_info(bytes: &[u8]) -> Result<SnapshotInfo, DecodeError> {
        let s: Snapshot = codec::open_json(Kind::StreamSnapshot, bytes)?;
        Ok(SnapshotInfo {
            applied: s.applied,
            last_seq: s.last_seq,
        })
    }

    /// A replica rebuilt from a snapshot over its (recovered) store. Also says whether the
    /// store holds fewer messages than the snapshot saw (`Some((have, want))`): then it lost
    /// writes and must catch up from a peer (`catchup`) before applying more.
    pub fn restore(
        bytes: &[u8],
        store: Box<dyn StreamStore + Send>,
    ) -> Result<(Self, Option<(u64, u64)>), DecodeError> {
        let s: Snapshot = codec::open_json(Kind::StreamSnapshot, bytes)?;
        let stream = Stream::new(s.config, store, s.created);
        let have = stream.store.state().last_seq;
        let name = stream.config.name.clone();
        let mut consumers = BTreeMap::new();
        for (meta, st) in s.consumers {
            let (c, _) =
                state::restore_durable(meta, Some(st), name.clone(), stream.store.as_ref());
            consumers.insert(c.name.clone(), c);
        }
        let behind = (have < s.last_seq).then_some((have, s.last_seq));
        Ok((
            Self {
                stream,
                consumers,
                applied: s.applied,
                pending_config: None,
                leading: false,
                // What the snapshot saw was committed (a store that holds less is behind).
                committed: s.last_seq.min(have),
            },
            behind,
        ))
    }
}

fn done(r: Result<(), crate::jetstream::store::StoreError>) -> Applied {
    match r {
        Ok(()) => Applied::Done,
        Err(e) => Applied::Failed(err::store_failed(&e.to_string())),
    }
}

/// The `Nats-Rollup` value of a publish's headers.
fn rollup_of(hdr: &[u8]) -> Option<String> {
    if hdr.is_empty() {
        return None;
    }
    let h = Headers::parse(hdr).ok()?;
    let v = String::from_utf8_lossy(h.get("Nats-Rollup")?)
        .trim()
        .to_owned();
    matches!(v.as_str(), "sub" | "all").then_some(v)
}
