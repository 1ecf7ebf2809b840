//! [`LogStore`]: openraft's `RaftLogStorage` over a [`Disk`].
//!
//! # Files (inside the group's directory)
//!
//! * `seg-<first index, 20 digits>`: segment files of checksummed records (see `record`), one
//!   bincode-encoded openraft entry each, consecutive indexes. A new segment starts once the
//!   current one passes [`StoreConfig::segment_bytes`].
//! * `state`: the vote, the last purged log id and any unrepaired damage, one record, replaced
//!   by writing `state.new`, syncing it and renaming it over `state`.
//! * `damaged-<n>-<name>`: files set aside because they failed a checksum. Nothing is ever
//!   deleted because it looks damaged; an operator (or a later repair tool) decides.
//!
//! # Durability
//!
//! `append` writes the records and then syncs every segment it touched, on the log's fsync
//! lane (see `flush`); the `LogFlushed` callback fires only after `sync` returned `Ok`, except
//! for a leader's own entries with flush-ahead on, which are reported once the OS holds them
//! and whose durability [`Synced`] tells. A failed sync is final (the kernel may have
//! dropped the pages): the store refuses every later write; a failed append is rolled back.
//! `truncate`, `purge`, `save_vote` are durable when they return (the `Disk` rules for
//! truncate, remove and rename).
//!
//! # Recovery
//!
//! See [`LogStore::open`]: a torn or zeroed tail of the newest segment is cut (normal after power
//! loss); any other checksum failure, a gap in the indexes, or a `state` file that fails its
//! checksum marks the replica damaged (see [`Health`]).
//!
//! A record is a torn tail when it is the last thing in the newest segment: its header or payload
//! runs past the end, or nothing but zeros follows it. A header that fails its own checksum with
//! good bytes after it, or a bad payload followed by more data, is a flipped bit: damage. The one
//! case recovery cannot tell apart is a bit flipped inside the very last record of the newest
//! segment: it looks exactly like a torn write and is cut as one.
//!
//! A failed append (ENOSPC, EIO) is rolled back: the touched segments are cut back to where
//! they were and the log stays usable. A failed sync is final: the store refuses every later
//! write (openraft then stops the group); reopening it cuts whatever tail the failure left.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

use natsd_core::jetstream::store::{Disk, DiskError, SyncJob};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::codec::{decode, encode};
use crate::flush::{self, Item, Synced};
use crate::health::{Damage, Health};
use crate::record::{self, Parsed};
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig, Vote};

/// A [`Disk`] shared by the stores of one or more groups (the `Disk` trait takes `&mut self`).
#[derive(Debug)]
pub struct SharedDisk<D> {
    inner: Arc<Mutex<D>>,
}

impl<D> Clone for SharedDisk<D> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<D: Disk> SharedDisk<D> {
    /// Shares `disk`.
    pub fn new(disk: D) -> Self {
        Self {
            inner: Arc::new(Mutex::new(disk)),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, D> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Tunables of a group's log store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// A new segment file starts once the current one holds this many bytes.
    pub segment_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 8 << 20,
        }
    }
}

/// What opening a log store found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut off the end of the newest segment (an unsynced, torn tail).
    pub torn_bytes: u64,
    /// Files renamed to `damaged-*` on this open.
    pub set_aside: Vec<String>,
    /// Damage found now or left unrepaired from an earlier run.
    pub damage: Option<Damage>,
}

/// What the `state` file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PersistedState {
    vote: Option<Vote>,
    last_purged: Option<LogId>,
    damage: Option<Damage>,
}

#[derive(Debug, Clone, Copy)]
struct Loc {
    /// The segment (its first index).
    segment: u64,
    offset: u64,
    log_id: LogId,
}

#[derive(Debug)]
struct Inner<D> {
    disk: SharedDisk<D>,
    dir: String,
    cfg: StoreConfig,
    /// Segment first index → its current length.
    segments: BTreeMap<u64, u64>,
    index: BTreeMap<u64, Loc>,
    state: PersistedState,
    committed: Option<LogId>,
    health: Health,
    /// Set after a failed sync: the store no longer writes.
    failed: Option<String>,
    /// How far the log is durable, and whether a leader flushes ahead (see `flush`).
    synced: Arc<Synced>,
    /// The fsync lane, started by the first append that needs it.
    lane: Option<mpsc::UnboundedSender<Item>>,
    /// A leader's newest own entries, which replication reads back at once.
    recent: Recent,
}

/// Most payload bytes [`Recent`] keeps (it always keeps the newest batch).
const RECENT_BYTES: usize = 1 << 20;

/// The newest entries a leader appended, by index: replicating them then needs no read,
/// checksum and decode of what was just written.
#[derive(Debug, Default)]
struct Recent {
    entries: BTreeMap<u64, Entry>,
    bytes: usize,
}

fn payload_len(e: &Entry) -> usize {
    match &e.payload {
        openraft::EntryPayload::Normal(c) => c.0.len(),
        _ => 0,
    }
}

impl Recent {
    fn keep(&mut self, batch: Vec<Entry>) {
        for e in batch {
            self.bytes += payload_len(&e);
            if let Some(old) = self.entries.insert(e.log_id.index, e) {
                self.bytes -= payload_len(&old);
            }
        }
        while self.bytes > RECENT_BYTES && self.entries.len() > 1 {
            if let Some((_, old)) = self.entries.pop_first() {
                self.bytes -= payload_len(&old);
            }
        }
    }

    /// Forgets the entries from `index` on (truncated) or through it (purged).
    fn forget(&mut self, index: u64, from: bool) {
        let dropped = if from {
            self.entries.split_off(&index)
        } else {
            let keep = self.entries.split_off(&(index + 1));
            std::mem::replace(&mut self.entries, keep)
        };
        self.bytes -= dropped.values().map(payload_len).sum::<usize>();
    }

    /// The entry at `loc` when kept (and still the one the log holds there).
    fn get(&self, loc: &Loc) -> Option<Entry> {
        self.entries
            .get(&loc.log_id.index)
            .filter(|e| e.log_id == loc.log_id)
            .cloned()
    }
}

/// A group's Raft log on a [`Disk`]; cheap to clone (clones are openraft's log readers).
#[derive(Debug)]
pub struct LogStore<D> {
    inner: Arc<Mutex<Inner<D>>>,
}

impl<D> Clone for LogStore<D> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn any_err(e: impl std::fmt::Display) -> openraft::AnyError {
    openraft::AnyError::error(e.to_string())
}

fn seg_name(first: u64) -> String {
    format!("seg-{first:020}")
}

fn parse_seg_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?;
    (digits.len() == 20).then(|| digits.parse().ok()).flatten()
}

/// Reads a whole file, or `None` when it does not exist.
fn read_all<D: Disk>(disk: &D, path: &str) -> Result<Option<Vec<u8>>, DiskError> {
    let len = match disk.len(path) {
        Ok(len) => len,
        Err(DiskError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = usize::try_from(len).map_err(|_| DiskError::Io("file too large".into()))?;
    disk.read_at(path, 0, len).map(Some)
}

/// Replaces `path` with a single record holding `payload`: write `path.new`, sync, rename.
pub(crate) fn replace_file<D: Disk>(
    disk: &mut D,
    path: &str,
    payload: &[u8],
) -> Result<(), DiskError> {
    let tmp = format!("{path}.new");
    disk.create(&tmp)?;
    disk.append(&tmp, &record::encode(payload))?;
    disk.sync(&tmp)?;
    disk.rename(&tmp, path)
}

/// Reads the single record of a file written by [`replace_file`]: `Ok(None)` when it does not
/// exist, `Err` when it fails its checksum.
pub(crate) fn read_record_file<D: Disk>(disk: &D, path: &str) -> Result<Option<Vec<u8>>, String> {
    let Some(buf) = read_all(disk, path).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    match record::parse(&buf, 0) {
        Parsed::Record { payload, next } if next == buf.len() => Ok(Some(payload.to_vec())),
        other => Err(format!("{other:?}")),
    }
}

/// Renames `name` inside `dir` to the next free `damaged-<n>-<name>`.
pub(crate) fn set_aside<D: Disk>(disk: &mut D, dir: &str, name: &str) -> Result<String, DiskError> {
    let n = disk
        .list(dir)?
        .iter()
        .filter(|f| f.starts_with("damaged-"))
        .count();
    let to = format!("damaged-{n:04}-{name}");
    disk.rename(&format!("{dir}/{name}"), &format!("{dir}/{to}"))?;
    Ok(to)
}

/// Records found in one segment while recovering.
struct Scan {
    entries: Vec<(u64, Entry)>,
    /// Where the good records end.
    good_end: u64,
    /// Set when the segment is damaged at `good_end` (not a torn tail).
    damage: Option<String>,
    /// Bytes after `good_end` that are a torn tail.
    torn: u64,
    /// The highest index still readable past a damaged record (what the replica may have
    /// acknowledged beyond the damage).
    max_index_after: u64,
}

/// Reads on past a damaged payload (its header, and so its length, checked out) for the highest
/// index that follows it.
fn survey(buf: &[u8], found: Parsed<'_>) -> u64 {
    let Parsed::BadPayload { mut next } = found else {
        return 0;
    };
    let mut max = 0;
    while next < buf.len() {
        match record::parse(buf, next) {
            Parsed::Record { payload, next: n } => {
                if let Ok(e) = decode::<Entry>(payload) {
                    max = max.max(e.log_id.index);
                }
                next = n;
            }
            Parsed::BadPayload { next: n } => next = n,
            _ => break,
        }
    }
    max
}

fn scan_segment(buf: &[u8], is_last: bool) -> Scan {
    let mut scan = Scan {
        entries: Vec::new(),
        good_end: 0,
        damage: None,
        torn: 0,
        max_index_after: 0,
    };
    let mut off = 0usize;
    while off < buf.len() {
        let found = record::parse(buf, off);
        let torn_tail = match found {
            Parsed::Record { payload, next } => match decode::<Entry>(payload) {
                Ok(e) => {
                    scan.entries.push((off as u64, e));
                    off = next;
                    scan.good_end = off as u64;
                    continue;
                }
                // A checksummed record that does not decode was written by something else.
                Err(e) => {
                    scan.damage = Some(format!("undecodable entry at offset {off}: {e}"));
                    return scan;
                }
            },
            Parsed::Zeros | Parsed::Short => true,
            // Only the last bytes can have been zeroed by a torn write: a header that fails
            // with good bytes past it is a flipped bit.
            Parsed::BadHeader => buf[off..]
                .iter()
                .rposition(|b| *b != 0)
                .is_none_or(|last| last < record::HEADER_LEN),
            Parsed::BadPayload { next } => buf[next..].iter().all(|b| *b == 0),
        };
        if torn_tail && is_last {
            scan.torn = (buf.len() - off) as u64;
        } else {
            scan.damage = Some(format!("checksum failure at offset {off} ({found:?})"));
            scan.max_index_after = survey(buf, found);
        }
        return scan;
    }
    scan
}

/// Where `append` stands after its synchronous half.
enum Step {
    /// Finished (the callback was called).
    Done(Result<(), StorageError>),
    /// Written; durable once these fsync jobs return `Ok`, then call the callback (at once
    /// when `ahead`: see `flush`).
    Sync {
        jobs: Vec<SyncJob>,
        callback: LogFlushed<TypeConfig>,
        last: LogId,
        ahead: bool,
    },
}

impl<D: Disk + Send + 'static> LogStore<D> {
    /// Opens (or creates) the log in `dir`, recovering it as described in the module docs.
    /// `snapshot_damaged` says the group's snapshot file failed its checksum: if the log was
    /// purged, the entries it replaced are gone, so the whole log is set aside and the replica is
    /// damaged until a peer sends a snapshot.
    pub fn open(
        disk: SharedDisk<D>,
        dir: &str,
        cfg: StoreConfig,
        health: Health,
        snapshot_damaged: bool,
    ) -> Result<(Self, RecoveryReport), DiskError> {
        let mut report = RecoveryReport::default();
        let mut damage: Vec<String> = Vec::new();
        let mut d = disk.lock();
        let state_path = format!("{dir}/state");
        let (mut state, state_ok) = match read_record_file(&*d, &state_path) {
            Ok(None) => (PersistedState::default(), true),
            Ok(Some(bytes)) => match decode::<PersistedState>(&bytes) {
                Ok(s) => (s, true),
                Err(_) => (PersistedState::default(), false),
            },
            Err(_) => (PersistedState::default(), false),
        };
        if !state_ok {
            report.set_aside.push(set_aside(&mut *d, dir, "state")?);
        }
        let names = d.list(dir)?;
        let seg_firsts: Vec<u64> = names.iter().filter_map(|n| parse_seg_name(n)).collect();
        let mut segments = BTreeMap::new();
        let mut index = BTreeMap::new();
        // Whether everything from some segment on must be set aside, and the highest index
        // seen in any readable record (what a damaged replica may have acknowledged).
        let mut cut_from: Option<(usize, u64)> = None; // (segment position, good bytes)
                                                       // A purged prefix counts too: a lost snapshot covered it.
        let mut max_seen = state.last_purged.map_or(0, |l| l.index);
        let lose_everything = !state_ok || (snapshot_damaged && state.last_purged.is_some());
        if lose_everything {
            cut_from = Some((0, 0));
            let why = if state_ok {
                "the snapshot file fails its checksum and the log before it was purged"
            } else {
                "the vote file fails its checksum"
            };
            damage.push(why.to_owned());
        }
        let mut expected = state.last_purged.map_or(0, |l| l.index + 1);
        for (pos, &first) in seg_firsts.iter().enumerate() {
            let path = format!("{dir}/{}", seg_name(first));
            let buf = read_all(&*d, &path)?.unwrap_or_default();
            let is_last = pos + 1 == seg_firsts.len();
            let scan = scan_segment(&buf, is_last);
            if let Some(last) = scan.entries.last() {
                max_seen = max_seen.max(last.1.log_id.index);
            }
            max_seen = max_seen.max(scan.max_index_after);
            if cut_from.is_some() {
                continue;
            }
            let mut good_end = scan.good_end;
            for (off, e) in &scan.entries {
                let i = e.log_id.index;
                if i < expected {
                    continue; // purged already; the segment's removal was cut short
                }
                if i != expected {
                    damage.push(format!(
                        "index gap in {}: {i} where {expected} was due",
                        seg_name(first)
                    ));
                    good_end = *off;
                    break;
                }
                index.insert(
                    i,
                    Loc {
                        segment: first,
                        offset: *off,
                        log_id: e.log_id,
                    },
                );
                expected += 1;
            }
            if let Some(why) = &scan.damage {
                damage.push(format!("{}: {why}", seg_name(first)));
            }
            if good_end < buf.len() as u64 && (scan.damage.is_some() || good_end < scan.good_end) {
                cut_from = Some((pos, good_end));
                continue;
            }
            if scan.torn > 0 {
                report.torn_bytes += scan.torn;
                d.truncate(&path, scan.good_end)?;
            }
            segments.insert(first, scan.good_end);
        }
        if let Some((pos, good)) = cut_from {
            // Set aside the damaged segment and every later one; keep the good prefix of the
            // damaged one as a fresh copy so the log goes on from there.
            let from_seg = seg_firsts.get(pos).copied().unwrap_or(u64::MAX);
            index.retain(|_, l| l.segment < from_seg || (l.segment == from_seg && l.offset < good));
            for &first in seg_firsts.get(pos..).unwrap_or_default() {
                let name = seg_name(first);
                let moved = set_aside(&mut *d, dir, &name)?;
                if first == seg_firsts[pos] && good > 0 {
                    let from = format!("{dir}/{moved}");
                    let len = usize::try_from(good).map_err(|_| DiskError::ShortRead)?;
                    let bytes = d.read_at(&from, 0, len)?;
                    let path = format!("{dir}/{name}");
                    d.create(&path)?;
                    d.append(&path, &bytes)?;
                    d.sync(&path)?;
                    segments.insert(first, good);
                }
                report.set_aside.push(moved);
            }
            if lose_everything {
                index.clear();
                segments.clear();
                state.last_purged = None;
            }
        }
        if !damage.is_empty() {
            let reason = damage.join("; ");
            let mut repair_through = max_seen;
            if let Some(old) = &state.damage {
                repair_through = repair_through.max(old.repair_through);
            }
            state.damage = Some(Damage {
                reason,
                repair_through,
            });
            tracing::error!(dir, damage = ?state.damage, set_aside = ?report.set_aside, "raft log damaged: this replica will not vote or lead until repaired");
        }
        if report.torn_bytes > 0 {
            tracing::info!(
                dir,
                torn_bytes = report.torn_bytes,
                "raft log: cut a torn tail"
            );
        }
        if !damage.is_empty() || !state_ok {
            let bytes = encode(&state).map_err(DiskError::Io)?;
            replace_file(&mut *d, &state_path, &bytes)?;
        }
        report.damage = state.damage.clone();
        health.set(state.damage.clone());
        drop(d);
        let inner = Inner {
            disk,
            dir: dir.to_owned(),
            cfg,
            segments,
            index,
            state,
            committed: None,
            health,
            failed: None,
            synced: Synced::new(0),
            lane: None,
            recent: Recent::default(),
        };
        Ok((
            Self {
                inner: Arc::new(Mutex::new(inner)),
            },
            report,
        ))
    }

    fn lock(&self) -> MutexGuard<'_, Inner<D>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The synchronous half of `append`: write the batch, start its fsyncs.
    fn write_batch(
        &self,
        entries: impl IntoIterator<Item = Entry>,
        callback: LogFlushed<TypeConfig>,
    ) -> Step {
        let mut g = self.lock();
        if let Err(e) = g.check_writable() {
            callback.log_io_completed(Err(io_err(&e)));
            return Step::Done(Err(e));
        }
        // Encode the whole batch first: an entry that does not encode is refused before a
        // byte is written, and the log stays usable.
        let mut records = Vec::new();
        let mut kept = Vec::new();
        for entry in entries {
            match encode(&entry) {
                Ok(payload) => {
                    records.push((entry.log_id, record::encode(&payload)));
                    kept.push(entry);
                }
                Err(e) => {
                    let e = StorageError::from(StorageIOError::write_log_entry(
                        entry.log_id,
                        any_err(e),
                    ));
                    callback.log_io_completed(Err(io_err(&e)));
                    return Step::Done(Err(e));
                }
            }
        }
        let first_index = records.first().map(|(l, _)| l.index);
        let ids: Vec<LogId> = records.iter().map(|(l, _)| *l).collect();
        let Some(last) = ids.last().copied() else {
            callback.log_io_completed(Ok(()));
            return Step::Done(Ok(()));
        };
        // Where each touched segment ended before this batch (0 for one created by it).
        let mut touched: Vec<(u64, u64)> = Vec::new();
        let written = (|| -> Result<(), DiskError> {
            for (log_id, bytes) in records {
                let index = log_id.index;
                let current = g.segments.last_key_value().map(|(k, v)| (*k, *v));
                let segment = match current {
                    Some((first, len)) if len < g.cfg.segment_bytes => {
                        if touched.last().map(|t| t.0) != Some(first) {
                            touched.push((first, len));
                        }
                        first
                    }
                    _ => {
                        let path = format!("{}/{}", g.dir, seg_name(index));
                        g.disk.lock().create(&path)?;
                        g.segments.insert(index, 0);
                        touched.push((index, 0));
                        index
                    }
                };
                let path = format!("{}/{}", g.dir, seg_name(segment));
                let offset = g.disk.lock().append(&path, &bytes)?;
                g.segments.insert(segment, offset + bytes.len() as u64);
                g.index.insert(
                    index,
                    Loc {
                        segment,
                        offset,
                        log_id,
                    },
                );
            }
            Ok(())
        })();
        if let Err(e) = written {
            // ENOSPC or EIO on append: nothing of the batch was promised, so put the segments
            // back as they were and leave the log usable (openraft reports the error).
            let rolled_back = g.roll_back(&touched, first_index);
            if let Err(r) = &rolled_back {
                g.failed = Some(format!("{e}; then the roll-back failed: {r}"));
            }
            tracing::error!(dir = g.dir, error = %e, rolled_back = rolled_back.is_ok(), "raft log append failed");
            callback.log_io_completed(Err(io_err(&e)));
            return Step::Done(Err(StorageIOError::write_logs(any_err(e)).into()));
        }
        // The fsyncs may come back as jobs (the production disk's `sync_later`): they run on a
        // blocking thread so the runtime's worker is not held for an fsync. The callback fires
        // once every one of them returned `Ok`; openraft awaits it before the next append.
        let mut jobs = Vec::new();
        let started = touched.iter().try_for_each(|(segment, _)| {
            let path = format!("{}/{}", g.dir, seg_name(*segment));
            if let Some(job) = g.disk.lock().sync_later(&path)? {
                jobs.push(job);
            }
            Ok(())
        });
        if let Err(e) = started {
            return Step::Done(Err(g.sync_failed(e, callback)));
        }
        if jobs.is_empty() {
            // Only now is every appended byte durable.
            g.synced.advance(last);
            callback.log_io_completed(Ok(()));
            return Step::Done(Ok(()));
        }
        let ahead = g.synced.may_flush_ahead(g.state.vote.as_ref(), &ids);
        if ahead {
            g.recent.keep(kept);
        }
        Step::Sync {
            jobs,
            callback,
            last,
            ahead,
        }
    }

    /// This log's [`Synced`], now bound to node `me` (a group's Raft node id).
    pub fn bind_synced(&self, me: NodeId) -> Arc<Synced> {
        let s = Synced::new(me);
        self.lock().synced = Arc::clone(&s);
        s
    }

    /// The fsync lane, started on first use.
    fn lane(&self) -> mpsc::UnboundedSender<Item> {
        let mut g = self.lock();
        if let Some(l) = &g.lane {
            return l.clone();
        }
        let weak = Arc::downgrade(&self.inner);
        let failed = Box::new(move |e: &DiskError| {
            if let Some(inner) = weak.upgrade() {
                let mut g = inner
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                tracing::error!(dir = g.dir, error = %e, "raft log sync failed; the log is frozen");
                g.failed.get_or_insert_with(|| e.to_string());
            }
        });
        let l = flush::lane(Arc::clone(&g.synced), failed);
        g.lane = Some(l.clone());
        l
    }

    /// The replica's health, shared with its state machine store and dispatcher.
    pub fn health(&self) -> Health {
        self.lock().health.clone()
    }

    /// The ids of the entries held, oldest first (for tests and checkers).
    pub fn log_ids(&self) -> Vec<LogId> {
        self.lock().index.values().map(|l| l.log_id).collect()
    }
}

impl<D: Disk> Inner<D> {
    fn write_state(&mut self) -> Result<(), StorageError> {
        let path = format!("{}/state", self.dir);
        let bytes = encode(&self.state)
            .map_err(|e| StorageError::from(StorageIOError::write_vote(any_err(e))))?;
        replace_file(&mut *self.disk.lock(), &path, &bytes)
            .map_err(|e| StorageIOError::write_vote(any_err(e)).into())
    }

    fn check_writable(&self) -> Result<(), StorageError> {
        match &self.failed {
            Some(why) => Err(StorageIOError::write_logs(any_err(why)).into()),
            None => Ok(()),
        }
    }

    fn read_entry(&self, loc: &Loc) -> Result<Entry, StorageError> {
        let path = format!("{}/{}", self.dir, seg_name(loc.segment));
        let d = self.disk.lock();
        let fail = |e: String| -> StorageError {
            StorageIOError::read_log_at_index(loc.log_id.index, any_err(e)).into()
        };
        let header = d
            .read_at(&path, loc.offset, record::HEADER_LEN)
            .map_err(|e| fail(e.to_string()))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let buf = d
            .read_at(&path, loc.offset, record::HEADER_LEN + len)
            .map_err(|e| fail(e.to_string()))?;
        match record::parse(&buf, 0) {
            Parsed::Record { payload, .. } => decode(payload).map_err(fail),
            other => Err(fail(format!("entry fails its checksum on read: {other:?}"))),
        }
    }

    /// A failure of a sync whose append was already reported flushed: final as well.
    fn sync_failed_later(&mut self, e: DiskError) -> StorageError {
        self.failed.get_or_insert_with(|| e.to_string());
        tracing::error!(dir = self.dir, error = %e, "raft log sync failed; the log is frozen");
        StorageIOError::write_logs(any_err(e)).into()
    }

    /// A failed fsync is final (fsyncgate): the kernel may have dropped the pages, so a retry
    /// could report success for data that is gone. The store stops writing.
    fn sync_failed(&mut self, e: DiskError, callback: LogFlushed<TypeConfig>) -> StorageError {
        self.failed = Some(e.to_string());
        tracing::error!(dir = self.dir, error = %e, "raft log sync failed; the log is frozen");
        callback.log_io_completed(Err(io_err(&e)));
        StorageIOError::write_logs(any_err(e)).into()
    }

    /// Undoes a failed append: cuts each touched segment back to its old length (removing one
    /// the batch created) and forgets the batch's entries.
    fn roll_back(
        &mut self,
        touched: &[(u64, u64)],
        first_index: Option<u64>,
    ) -> Result<(), DiskError> {
        let mut d = self.disk.lock();
        for &(segment, len) in touched.iter().rev() {
            let path = format!("{}/{}", self.dir, seg_name(segment));
            if len == 0 {
                d.remove(&path)?;
                self.segments.remove(&segment);
            } else {
                d.truncate(&path, len)?;
                self.segments.insert(segment, len);
            }
        }
        if let Some(first) = first_index {
            self.index.split_off(&first);
        }
        Ok(())
    }

    /// A replica is repaired once everything it may have acknowledged is committed and held.
    fn maybe_repaired(&mut self, through: u64) -> Result<(), StorageError> {
        let Some(damage) = &self.state.damage else {
            return Ok(());
        };
        if through < damage.repair_through {
            return Ok(());
        }
        tracing::info!(dir = self.dir, through, "raft log repaired from peers");
        self.state.damage = None;
        self.write_state()?;
        self.health.set(None);
        Ok(())
    }
}

impl<D: Disk + Send + 'static> RaftLogReader<TypeConfig> for LogStore<D> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let g = self.lock();
        g.index
            .range(range)
            .map(|(_, loc)| match g.recent.get(loc) {
                Some(e) => Ok(e),
                None => g.read_entry(loc),
            })
            .collect()
    }
}

impl<D: Disk + Send + 'static> RaftLogStorage<TypeConfig> for LogStore<D> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let g = self.lock();
        let last_purged_log_id = g.state.last_purged;
        let last_log_id = g
            .index
            .values()
            .next_back()
            .map(|l| l.log_id)
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut g = self.lock();
        g.check_writable()?;
        g.state.vote = Some(*vote);
        g.write_state()
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        // The vote comes back *uncommitted*: term and choice are kept (so this replica never
        // votes twice in a term), but a replica that led before a restart does not lead again
        // at once. openraft 0.9 would resume leading in the same term, and if this log lost a
        // tail (an unsynced end its followers already hold, or damage) its next entries would
        // reuse log ids the followers hold with other contents: two logs, one id. An election
        // moves the group to a new term, whose ids are fresh.
        Ok(self.lock().state.vote.map(|v| Vote {
            committed: false,
            ..v
        }))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut g = self.lock();
        // Kept in memory only: after a restart openraft learns it again from the leader, and
        // writing it on every commit would cost a rename per commit.
        g.committed = committed;
        // Committed entries on this replica are held here: the follower's commit index never
        // passes its own matched log.
        match committed {
            Some(c)
                if g.index.contains_key(&c.index)
                    || g.state.last_purged.is_some_and(|p| p.index >= c.index) =>
            {
                g.maybe_repaired(c.index)
            }
            _ => Ok(()),
        }
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let (jobs, callback, last, ahead) = match self.write_batch(entries, callback) {
            Step::Done(r) => return r,
            Step::Sync {
                jobs,
                callback,
                last,
                ahead,
            } => (jobs, callback, last, ahead),
        };
        let lane = self.lane();
        if ahead {
            // The OS holds the bytes; the fsync follows on the lane (see `flush`).
            callback.log_io_completed(Ok(()));
            let item = Item {
                jobs,
                last,
                done: None,
            };
            if lane.send(item).is_err() {
                let e = DiskError::Io("the sync lane stopped".into());
                return Err(self.lock().sync_failed_later(e));
            }
            return Ok(());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let item = Item {
            jobs,
            last,
            done: Some(tx),
        };
        let synced = match lane.send(item) {
            Ok(()) => rx
                .await
                .unwrap_or_else(|_| Err(DiskError::Io("the sync lane stopped".into()))),
            Err(_) => Err(DiskError::Io("the sync lane stopped".into())),
        };
        match synced {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => Err(self.lock().sync_failed(e, callback)),
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut g = self.lock();
        g.check_writable()?;
        let Some(first) = g.index.get(&log_id.index).copied() else {
            return Ok(());
        };
        let later: Vec<u64> = g
            .segments
            .range(first.segment + 1..)
            .map(|(k, _)| *k)
            .collect();
        let dir = g.dir.clone();
        let res = (|| -> Result<(), DiskError> {
            let mut d = g.disk.lock();
            // Newest first, so a crash midway leaves a log that is still a prefix.
            for seg in later.iter().rev() {
                d.remove(&format!("{dir}/{}", seg_name(*seg)))?;
            }
            let path = format!("{dir}/{}", seg_name(first.segment));
            if first.offset == 0 {
                d.remove(&path)
            } else {
                d.truncate(&path, first.offset)
            }
        })();
        res.map_err(|e| StorageError::from(StorageIOError::write_logs(any_err(e))))?;
        for seg in later {
            g.segments.remove(&seg);
        }
        if first.offset == 0 {
            g.segments.remove(&first.segment);
        } else {
            g.segments.insert(first.segment, first.offset);
        }
        g.index.split_off(&log_id.index);
        g.recent.forget(log_id.index, true);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut g = self.lock();
        g.check_writable()?;
        // Record the purge first: a crash before the files go leaves entries that recovery skips.
        g.state.last_purged = Some(log_id);
        g.write_state()?;
        let keep = g.index.split_off(&(log_id.index + 1));
        g.index = keep;
        g.recent.forget(log_id.index, false);
        let firsts: Vec<u64> = g.segments.keys().copied().collect();
        let dir = g.dir.clone();
        for (i, first) in firsts.iter().enumerate() {
            // A segment goes when every entry in it is purged.
            let all_purged = match firsts.get(i + 1) {
                Some(next) => *next <= log_id.index + 1,
                None => g.index.is_empty(),
            };
            if !all_purged {
                break;
            }
            g.disk
                .lock()
                .remove(&format!("{dir}/{}", seg_name(*first)))
                .map_err(|e| StorageError::from(StorageIOError::write_logs(any_err(e))))?;
            g.segments.remove(first);
        }
        g.maybe_repaired(log_id.index)
    }
}
