//! [`Store`]: the stream semantics (sequences, limits, purges, queries) over a [`Backend`].
//!
//! All policy lives here once, so the memory and file stores cannot drift apart; a backend
//! only persists three kinds of facts — a message, a tombstone, a floor — and reads a message
//! back. Every mutation writes to the backend *first* and touches the index only on success,
//! so a failed write (ENOSPC) leaves the store exactly as it was.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::index::Index;
use super::{
    msg_size, Discard, DiskError, SimpleState, StoreConfig, StoreError, StoredMsg, StreamState,
    StreamStore, SyncJob, UnixNanos,
};
use crate::jetstream::ttl;

/// Where a store keeps its messages. Implemented by [`MemLog`] and
/// [`FileLog`](super::FileLog); the [`Store`] above it owns all stream semantics.
pub trait Backend {
    /// What the index remembers to find a message again.
    type Loc: Clone + std::fmt::Debug;
    /// Persists a message (buffered, not yet durable).
    fn append(
        &mut self,
        seq: u64,
        ts: UnixNanos,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
    ) -> Result<Self::Loc, StoreError>;
    /// Reads a message back, verifying it.
    fn read(
        &self,
        seq: u64,
        subject: &str,
        ts: UnixNanos,
        loc: &Self::Loc,
    ) -> Result<StoredMsg, StoreError>;
    /// Persists removals: every sequence below `floor`, then each tombstone. `last_seq` and
    /// `last_ts` are the stream's, so a floor past every message still remembers them.
    fn write_removals(
        &mut self,
        floor: Option<u64>,
        tombstones: &[u64],
        last_seq: u64,
        last_ts: UnixNanos,
    ) -> Result<(), StoreError>;
    /// The index dropped the message at `loc` (after a successful `write_removals`).
    fn forget(&mut self, loc: &Self::Loc);
    /// Makes everything written so far durable; returns the durable sequence (`last_seq`).
    fn sync(&mut self, last_seq: u64) -> Result<u64, StoreError>;
    /// What the last successful `sync` returned.
    fn synced_through(&self) -> u64;
    /// A `sync` whose fsyncs may run elsewhere (see [`StreamStore::begin_sync`]).
    fn begin_sync(&mut self, last_seq: u64) -> Result<Vec<SyncJob>, StoreError> {
        self.sync(last_seq).map(|_| Vec::new())
    }
    /// Completes a `begin_sync` that returned jobs.
    fn finish_sync(
        &mut self,
        _last_seq: u64,
        _done: Result<(), DiskError>,
    ) -> Result<u64, StoreError> {
        Ok(self.synced_through())
    }
    /// If `seq` is known lost to damage, the error that says where.
    fn lost(&self, seq: u64) -> Option<StoreError>;
    /// `(damaged records, messages known lost)` found so far.
    fn damage(&self) -> (u64, u64);
    /// Persists that sequences `first ..= last` hold nothing (one record however many).
    fn write_skip(&mut self, _first: u64, _last: u64, _ts: UnixNanos) -> Result<(), StoreError> {
        Ok(())
    }
    /// The store's config changed (compression is the backend's business).
    fn configure(&mut self, _cfg: &StoreConfig) {}
    /// A message's accounted size (`bytes`, `max_bytes`): the Go file store's record size
    /// unless the backend says otherwise.
    fn msg_size(subject: &str, headers: &[u8], payload: &[u8]) -> u64 {
        msg_size(subject, headers, payload)
    }
}

/// The in-memory backend of a [`MemStore`](super::MemStore).
#[derive(Debug, Default)]
pub struct MemLog {
    synced: u64,
}

impl Backend for MemLog {
    type Loc = (Bytes, Bytes);

    // Go: server/memstore.go memStoreMsgSize, so a memory stream's `bytes` and `max_bytes`
    // agree with nats-server's (the file store's formula counts 14 bytes more per message).
    fn msg_size(subject: &str, headers: &[u8], payload: &[u8]) -> u64 {
        (subject.len() + headers.len() + payload.len() + 16) as u64
    }

    fn append(
        &mut self,
        _: u64,
        _: UnixNanos,
        _: &str,
        headers: &[u8],
        payload: &[u8],
    ) -> Result<Self::Loc, StoreError> {
        Ok((
            Bytes::copy_from_slice(headers),
            Bytes::copy_from_slice(payload),
        ))
    }

    fn read(
        &self,
        seq: u64,
        subject: &str,
        ts: UnixNanos,
        loc: &Self::Loc,
    ) -> Result<StoredMsg, StoreError> {
        Ok(StoredMsg {
            seq,
            ts,
            subject: subject.to_owned(),
            headers: loc.0.clone(),
            payload: loc.1.clone(),
        })
    }

    fn write_removals(
        &mut self,
        _: Option<u64>,
        _: &[u64],
        _: u64,
        _: UnixNanos,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    fn forget(&mut self, _: &Self::Loc) {}

    fn sync(&mut self, last_seq: u64) -> Result<u64, StoreError> {
        // Memory is as durable as a memory stream gets: stored is synced.
        self.synced = last_seq;
        Ok(last_seq)
    }

    fn synced_through(&self) -> u64 {
        self.synced
    }

    fn lost(&self, _: u64) -> Option<StoreError> {
        None
    }

    fn damage(&self) -> (u64, u64) {
        (0, 0)
    }
}

/// A stream store: the index, the limits and a [`Backend`].
#[derive(Debug)]
pub struct Store<B: Backend> {
    cfg: StoreConfig,
    pub(crate) idx: Index<B::Loc>,
    log: B,
    /// `max_age` exemptions (`Nats-TTL: never`).
    never: NeverAge,
}

/// Which messages `max_age` must leave alone: those whose `Nats-TTL` is `never`
/// (Go: filestore/memstore expireMsgs skip a message with a negative TTL; ADR-43).
/// `max_msgs`/`max_bytes` and the per-subject limit still remove them.
#[derive(Debug, Default)]
struct NeverAge {
    /// Every live message below this sequence has been looked at by `expire` and is exempt,
    /// so neither `expire` nor `next_expiry` walks over the exempt ones again.
    floor: u64,
    /// Exempt messages stored since the store was opened, at or above `floor`: deciding
    /// needs no read. Removed sequences may linger until `floor` passes them; harmless,
    /// since a sequence is never reused.
    stored: BTreeSet<u64>,
    /// Messages up to this sequence were recovered, not stored here: their headers must be
    /// read to know (once each, when they age out).
    recovered_through: u64,
}

impl Store<MemLog> {
    /// An empty in-memory store.
    pub fn new(cfg: StoreConfig) -> Self {
        let last = cfg.first_seq.max(1) - 1;
        Self {
            idx: Index::new(last, 0),
            log: MemLog { synced: last },
            cfg,
            never: NeverAge::default(),
        }
    }
}

impl<B: Backend> Store<B> {
    pub(crate) fn from_parts(cfg: StoreConfig, idx: Index<B::Loc>, log: B) -> Self {
        let never = NeverAge {
            recovered_through: idx.last_seq,
            ..NeverAge::default()
        };
        Self {
            cfg,
            idx,
            log,
            never,
        }
    }

    /// Is message `seq` exempt from `max_age`?
    fn never_ages(&self, seq: u64, e: &super::index::Entry<B::Loc>) -> bool {
        if self.never.stored.contains(&seq) {
            return true;
        }
        if seq > self.never.recovered_through {
            return false;
        }
        // A message that cannot be read has no header to exempt it: it ages like any other.
        self.log
            .read(seq, &e.subject, e.ts, &e.loc)
            .is_ok_and(|m| ttl::is_never(&m.headers))
    }

    /// The limits in force.
    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// The backend, for its own accessors (recovery report, corruption list).
    pub fn backend(&self) -> &B {
        &self.log
    }

    /// Gives the backend back (a test "reboots" a file store by reopening its disk).
    pub fn into_backend(self) -> B {
        self.log
    }

    fn entry_msg(&self, seq: u64) -> Result<StoredMsg, StoreError> {
        match self.idx.msgs.get(&seq) {
            Some(e) => self.log.read(seq, &e.subject, e.ts, &e.loc),
            None if seq > self.idx.last_seq => Err(StoreError::Eof),
            None => Err(self.log.lost(seq).unwrap_or(StoreError::NotFound)),
        }
    }

    /// Removes `seqs` (any order, missing ones ignored) with one backend write: the longest
    /// run from the front becomes a floor (one record however many messages), the rest
    /// tombstones. `min_floor` forces the floor up (compact past the end).
    fn remove_seqs(
        &mut self,
        mut seqs: Vec<u64>,
        min_floor: Option<u64>,
    ) -> Result<u64, StoreError> {
        seqs.sort_unstable();
        seqs.dedup();
        seqs.retain(|s| self.idx.msgs.contains_key(s));
        let mut keys = self.idx.msgs.keys();
        let mut prefix = 0;
        let next_live = loop {
            match keys.next() {
                Some(k) if seqs.get(prefix) == Some(k) => prefix += 1,
                other => break other.copied(),
            }
        };
        let mut floor = (prefix > 0).then(|| next_live.unwrap_or(self.idx.last_seq + 1));
        if let Some(min) = min_floor {
            floor = Some(floor.map_or(min, |f| f.max(min)));
        }
        let tombstones: Vec<u64> = seqs[prefix..]
            .iter()
            .copied()
            .filter(|s| floor.is_none_or(|f| *s >= f))
            .collect();
        if floor.is_none() && tombstones.is_empty() {
            return Ok(0);
        }
        self.log
            .write_removals(floor, &tombstones, self.idx.last_seq, self.idx.last_ts)?;
        let mut removed = 0;
        if let Some(f) = floor {
            for (_, e) in self.idx.remove_below(f) {
                self.log.forget(&e.loc);
                removed += 1;
            }
        }
        for s in tombstones {
            if let Some(e) = self.idx.remove(s) {
                self.log.forget(&e.loc);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Discard-old limits: the subject's oldest over `max_msgs_per_subject`, then the
    /// stream's oldest over `max_msgs`/`max_bytes`.
    fn enforce_limits(&mut self, subject: Option<&str>) -> Result<u64, StoreError> {
        let mut doomed = Vec::new();
        if let Some(max) = self.cfg.max_msgs_per_subject {
            let over = |n: u64| n.saturating_sub(max) as usize;
            match subject {
                Some(s) => doomed.extend(
                    self.idx
                        .subject_seqs(s)
                        .take(over(self.idx.subject_count(s))),
                ),
                None => {
                    for (_, seqs) in self.idx.matching(">") {
                        doomed.extend(seqs.iter().take(over(seqs.len() as u64)));
                    }
                }
            }
        }
        if self.cfg.discard == Discard::Old
            && (self.cfg.max_msgs.is_some() || self.cfg.max_bytes.is_some())
        {
            doomed.sort_unstable();
            let gone_bytes: u64 = doomed
                .iter()
                .filter_map(|s| self.idx.msgs.get(s))
                .map(|e| e.size)
                .sum();
            let mut msgs = self.idx.msgs.len() as u64 - doomed.len() as u64;
            let mut bytes = self.idx.bytes - gone_bytes;
            let already = doomed.clone();
            for (seq, e) in &self.idx.msgs {
                let over_msgs = self.cfg.max_msgs.is_some_and(|m| msgs > m);
                let over_bytes = self.cfg.max_bytes.is_some_and(|m| bytes > m);
                if !over_msgs && !over_bytes {
                    break;
                }
                if already.binary_search(seq).is_err() {
                    doomed.push(*seq);
                    msgs -= 1;
                    bytes -= e.size;
                }
            }
        }
        self.remove_seqs(doomed, None)
    }
}

impl<B: Backend> StreamStore for Store<B> {
    fn accounted_size(&self, subject: &str, headers: &[u8], payload: &[u8]) -> u64 {
        B::msg_size(subject, headers, payload)
    }

    fn store_msg(
        &mut self,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        ts: UnixNanos,
    ) -> Result<(u64, UnixNanos), StoreError> {
        if subject.is_empty() || subject.len() > usize::from(u16::MAX) {
            return Err(StoreError::InvalidSubject);
        }
        if self
            .cfg
            .max_msg_size
            .is_some_and(|m| (headers.len() + payload.len()) as u64 > m)
        {
            return Err(StoreError::MsgTooLarge);
        }
        let size = B::msg_size(subject, headers, payload);
        if self.cfg.discard == Discard::New {
            if self
                .cfg
                .max_msgs
                .is_some_and(|m| self.idx.msgs.len() as u64 >= m)
            {
                return Err(StoreError::MaxMsgs);
            }
            if self
                .cfg
                .max_bytes
                .is_some_and(|m| self.idx.bytes + size > m)
            {
                return Err(StoreError::MaxBytes);
            }
            if self.cfg.discard_new_per_subject
                && self
                    .cfg
                    .max_msgs_per_subject
                    .is_some_and(|m| self.idx.subject_count(subject) >= m)
            {
                return Err(StoreError::MaxMsgsPerSubject);
            }
        }
        let seq = self.idx.last_seq + 1;
        let loc = self.log.append(seq, ts, subject, headers, payload)?;
        self.idx.insert(seq, subject, ts, size, loc);
        if ttl::is_never(headers) {
            self.never.stored.insert(seq);
        }
        // The message is stored whatever happens next. If making room fails (ENOSPC), the
        // stream is briefly over its limits and the next store retries; an I/O error has
        // frozen the backend and surfaces at the next write or sync, before any ack.
        let _ = self.enforce_limits(Some(subject));
        Ok((seq, ts))
    }

    fn load_msg(&self, seq: u64) -> Result<StoredMsg, StoreError> {
        self.entry_msg(seq)
    }

    fn load_next_msg(&self, filter: &str, start_seq: u64) -> Result<StoredMsg, StoreError> {
        let found = if filter.is_empty() || filter == ">" {
            self.idx.msgs.range(start_seq..).next().map(|(s, _)| *s)
        } else {
            self.idx
                .matching(filter)
                .filter_map(|(_, seqs)| seqs.range(start_seq..).next().copied())
                .min()
        };
        found.map_or(Err(StoreError::Eof), |s| self.entry_msg(s))
    }

    fn load_last_msg(&self, filter: &str) -> Result<StoredMsg, StoreError> {
        let found = if filter.is_empty() || filter == ">" {
            self.idx.msgs.keys().next_back().copied()
        } else {
            self.idx
                .matching(filter)
                .filter_map(|(_, seqs)| seqs.last().copied())
                .max()
        };
        found.map_or(Err(StoreError::NotFound), |s| self.entry_msg(s))
    }

    fn remove_msg(&mut self, seq: u64) -> Result<bool, StoreError> {
        Ok(self.remove_seqs(vec![seq], None)? == 1)
    }

    fn purge(&mut self) -> Result<u64, StoreError> {
        let all: Vec<u64> = self.idx.msgs.keys().copied().collect();
        let floor = self.idx.last_seq + 1;
        if all.is_empty() {
            return Ok(0);
        }
        self.remove_seqs(all, Some(floor))
    }

    fn purge_ex(&mut self, filter: &str, keep: u64, up_to_seq: u64) -> Result<u64, StoreError> {
        // Go: memstore PurgeEx — `keep` counts over every match, `up_to_seq` bounds the range.
        if (filter.is_empty() || filter == ">") && keep == 0 && up_to_seq == 0 {
            return self.purge();
        }
        let mut seqs = self.idx.matching_seqs(filter);
        let drop = seqs
            .len()
            .saturating_sub(usize::try_from(keep).unwrap_or(usize::MAX));
        seqs.truncate(drop);
        if up_to_seq > 0 {
            seqs.retain(|s| *s < up_to_seq);
        }
        self.remove_seqs(seqs, None)
    }

    fn compact(&mut self, seq: u64) -> Result<u64, StoreError> {
        if seq == 0 {
            return self.purge();
        }
        if seq <= self.idx.first_seq() {
            return Ok(0);
        }
        let below: Vec<u64> = self.idx.msgs.range(..seq).map(|(s, _)| *s).collect();
        self.remove_seqs(below, Some(seq))
    }

    fn skip_msgs(&mut self, seq: u64, num: u64, ts: UnixNanos) -> Result<(), StoreError> {
        if seq != self.idx.last_seq + 1 {
            return Err(StoreError::SequenceMismatch);
        }
        if num == 0 {
            return Ok(());
        }
        let last = seq
            .checked_add(num - 1)
            .ok_or(StoreError::SequenceMismatch)?;
        self.log.write_skip(seq, last, ts)?;
        // No message moves: the range only widens the gap between the messages held and
        // `last_seq`, which is exactly what `num_deleted` counts.
        self.idx.last_seq = last;
        self.idx.last_ts = ts;
        Ok(())
    }

    fn expire(&mut self, now: UnixNanos) -> Result<u64, StoreError> {
        let Some(max_age) = self.cfg.max_age else {
            return Ok(0);
        };
        let cutoff = now.saturating_sub(u64::try_from(max_age.as_nanos()).unwrap_or(u64::MAX));
        // Go: expireMsgs walks from the oldest and stops at the first one still young,
        // stepping over the ones whose TTL is `never`.
        let mut old = Vec::new();
        let mut floor = self.never.floor;
        for (seq, e) in self.idx.msgs.range(self.never.floor..) {
            if e.ts > cutoff {
                break;
            }
            if !self.never_ages(*seq, e) {
                old.push(*seq);
            }
            floor = seq + 1;
        }
        let removed = self.remove_seqs(old, None)?;
        // Only now: a failed removal must look at the same messages again next time.
        self.never.floor = floor;
        self.never.stored = self.never.stored.split_off(&floor);
        Ok(removed)
    }

    fn next_expiry(&self) -> Option<UnixNanos> {
        let max_age = u64::try_from(self.cfg.max_age?.as_nanos()).unwrap_or(u64::MAX);
        // The exempt messages below the floor never expire; the first one above it may
        // turn out exempt too, and then `expire` just moves the floor past it.
        self.idx
            .msgs
            .range(self.never.floor..)
            .next()
            .map(|(_, e)| e.ts.saturating_add(max_age))
    }

    fn update_config(&mut self, cfg: StoreConfig) -> Result<(), StoreError> {
        self.cfg = StoreConfig {
            first_seq: self.cfg.first_seq,
            ..cfg
        };
        self.log.configure(&self.cfg);
        self.enforce_limits(None).map(|_| ())
    }

    fn state(&self) -> StreamState {
        let first_seq = self.idx.first_seq();
        let msgs = self.idx.msgs.len() as u64;
        let (corrupt_records, lost_msgs) = self.log.damage();
        StreamState {
            msgs,
            bytes: self.idx.bytes,
            first_seq,
            first_ts: self.idx.msgs.values().next().map_or(0, |e| e.ts),
            last_seq: self.idx.last_seq,
            last_ts: self.idx.last_ts,
            num_subjects: self.idx.num_subjects(),
            num_deleted: if msgs == 0 {
                0
            } else {
                self.idx.last_seq + 1 - first_seq - msgs
            },
            corrupt_records,
            lost_msgs,
        }
    }

    fn deleted_seqs(&self) -> Vec<u64> {
        let mut gaps = Vec::new();
        let mut next = self.idx.first_seq();
        for &seq in self.idx.msgs.keys() {
            gaps.extend(next..seq);
            next = seq + 1;
        }
        gaps
    }

    fn seqs_since(&self, since: UnixNanos) -> Vec<u64> {
        let mut seqs: Vec<u64> = self
            .idx
            .msgs
            .iter()
            .rev()
            .take_while(|(_, e)| e.ts >= since)
            .map(|(seq, _)| *seq)
            .collect();
        seqs.reverse();
        seqs
    }

    fn filtered_state(&self, filter: &str) -> SimpleState {
        self.idx.filtered_state(filter)
    }

    fn subjects_totals(&self, filter: &str) -> BTreeMap<String, u64> {
        self.idx
            .matching(filter)
            .map(|(s, seqs)| (s.to_owned(), seqs.len() as u64))
            .collect()
    }

    fn sync(&mut self) -> Result<u64, StoreError> {
        self.log.sync(self.idx.last_seq)
    }

    fn synced_through(&self) -> u64 {
        self.log.synced_through()
    }

    fn begin_sync(&mut self) -> Result<(u64, Vec<SyncJob>), StoreError> {
        let through = self.idx.last_seq;
        self.log.begin_sync(through).map(|jobs| (through, jobs))
    }

    fn finish_sync(
        &mut self,
        through: u64,
        done: Result<(), DiskError>,
    ) -> Result<u64, StoreError> {
        self.log.finish_sync(through, done)
    }
}

#[cfg(test)]
#[path = "engine_never_tests.rs"]
mod never_tests;
