//! The JetStream storage layer: a [`StreamStore`] trait and two stores under it.
//!
//! * [`MemStore`] keeps messages in memory (a `storage: memory` stream).
//! * [`FileStore`] writes an append-only, checksummed log of block files through the sans-IO
//!   [`Disk`] seam. Production plugs in an `FsDisk` over `std::fs` (in the `natsd` crate, see
//!   [`disk`] for what it must guarantee); tests and the simulation use [`MemDisk`], which can
//!   lose unsynced bytes, tear writes, flip bits and run out of space on command.
//!
//! # Durability contract
//!
//! `store_msg` only *appends*; nothing is promised until [`StreamStore::sync`] returns
//! `Ok(through)`: every message with `seq <= through` (and every removal made before the call)
//! then survives a crash or power loss. The stream layer acknowledges a publish only once
//! `through >= seq`, so one fsync covers a whole batch of publishes (group commit). This is the
//! promise nats-server does not make by default — it acks before fsync and, in Jepsen's
//! power-loss test, lost 14% of acknowledged writes. [`SyncPolicy::Interval`] is the opt-in
//! nats-server behaviour, with that risk.
//!
//! # Integrity
//!
//! Every record carries a CRC-32C. Opening a [`FileStore`] rebuilds the index from the blocks,
//! cuts off a torn tail (the unsynced end of the last block), and *reports* any other damage
//! (flipped bits, truncated or missing blocks, sequence gaps) in [`Store::corruption`]:
//! a damaged record is skipped and counted, never returned and never silently forgotten; loading
//! a sequence known to be lost answers [`StoreError::Corrupt`].

pub(crate) mod crc;
pub mod disk;
mod engine;
mod filestore;
mod index;
mod memdisk;
pub(crate) mod record;
mod recovery;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

pub use crc::crc32c;
pub use disk::{Disk, DiskError, SyncJob};
pub use engine::{Backend, MemLog, Store};
pub use filestore::{
    Corruption, CorruptionKind, FileLoc, FileLog, FileStoreConfig, RecoveryReport,
    DEFAULT_BLOCK_SIZE,
};
pub use memdisk::{CrashMode, DiskOp, FaultPlan, MemDisk};

/// A stream store kept in memory.
pub type MemStore = Store<MemLog>;

/// A stream store kept in block files on a [`Disk`].
pub type FileStore<D> = Store<FileLog<D>>;

/// Nanoseconds since the Unix epoch: JetStream's wall-clock timestamps, always passed in.
pub type UnixNanos = u64;

/// One stored message, as loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMsg {
    /// Stream sequence.
    pub seq: u64,
    /// Store time, nanoseconds since the Unix epoch.
    pub ts: UnixNanos,
    /// The subject it was published to.
    pub subject: String,
    /// Raw NATS headers (`NATS/1.0\r\n…`), empty when there are none.
    pub headers: Bytes,
    /// The message body.
    pub payload: Bytes,
}

/// Message accounting for one subject or filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimpleState {
    /// Messages matching.
    pub msgs: u64,
    /// First matching sequence (0 when none).
    pub first: u64,
    /// Last matching sequence (0 when none).
    pub last: u64,
}

/// A snapshot of a whole stream's accounting (Go: `StreamState`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamState {
    /// Messages held.
    pub msgs: u64,
    /// Their accounted size (see [`msg_size`]).
    pub bytes: u64,
    /// First sequence held; `last_seq + 1` when empty.
    pub first_seq: u64,
    /// Store time of the first message; 0 when empty.
    pub first_ts: UnixNanos,
    /// Highest sequence ever assigned (it survives removals and purges).
    pub last_seq: u64,
    /// Store time of the message at `last_seq`.
    pub last_ts: UnixNanos,
    /// Distinct subjects held.
    pub num_subjects: u64,
    /// Sequences between `first_seq` and `last_seq` that hold no message.
    pub num_deleted: u64,
    /// Damaged records found and skipped (0 for a healthy or in-memory store).
    pub corrupt_records: u64,
    /// Sequences known to have held a message that damage destroyed.
    pub lost_msgs: u64,
}

/// What to do when a stream reaches `max_msgs` or `max_bytes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Discard {
    /// Remove the oldest messages to make room (the default).
    #[default]
    Old,
    /// Refuse the new message.
    New,
}

/// Limits and first sequence a store enforces (the storage part of a stream's config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreConfig {
    /// Sequence of the first message of a new store (0 means 1).
    pub first_seq: u64,
    /// Most messages held (`None`: unlimited).
    pub max_msgs: Option<u64>,
    /// Most accounted bytes held.
    pub max_bytes: Option<u64>,
    /// Oldest message age, enforced by [`StreamStore::expire`].
    pub max_age: Option<Duration>,
    /// Most messages held per subject; older ones of that subject go first.
    pub max_msgs_per_subject: Option<u64>,
    /// Largest accepted message (subject + headers + payload).
    pub max_msg_size: Option<u64>,
    /// Policy at `max_msgs` / `max_bytes`.
    pub discard: Discard,
    /// With [`Discard::New`], also refuse a message over `max_msgs_per_subject`
    /// instead of dropping that subject's oldest (Go: `discard_new_per_subject`).
    pub discard_new_per_subject: bool,
    /// Compress message records (a stream's `compression: "s2"`). A [`FileStore`] stores them
    /// Snappy-compressed — the format S2 extends — when that saves space; a [`MemStore`]
    /// ignores it, as nats-server's memory store does. Accounting is unaffected.
    pub compress: bool,
}

/// When a [`FileStore`] makes appended data durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SyncPolicy {
    /// The stream layer calls `sync` before acknowledging each publish batch (the default):
    /// an acknowledged message survives power loss.
    #[default]
    Always,
    /// The stream layer acknowledges at once and calls `sync` every interval. Like
    /// nats-server's default (`sync_interval: 2m`), a power loss can lose up to one interval of
    /// acknowledged messages; a process crash alone loses nothing (the OS still has the data).
    Interval(Duration),
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No message at that sequence (Go: `ErrStoreMsgNotFound`).
    #[error("no message found")]
    NotFound,
    /// The sequence is past the end of the stream (Go: `ErrStoreEOF`).
    #[error("stream store EOF")]
    Eof,
    /// Discard-new refused the message at `max_msgs`.
    #[error("maximum messages exceeded")]
    MaxMsgs,
    /// Discard-new refused the message at `max_bytes`.
    #[error("maximum bytes exceeded")]
    MaxBytes,
    /// Discard-new-per-subject refused the message at `max_msgs_per_subject`.
    #[error("maximum messages per subject exceeded")]
    MaxMsgsPerSubject,
    /// The message exceeds `max_msg_size` (Go: `ErrMsgTooLarge`).
    #[error("message too large")]
    MsgTooLarge,
    /// The subject cannot be stored (empty or longer than 65535 bytes).
    #[error("invalid subject")]
    InvalidSubject,
    /// The disk is full (ENOSPC). Nothing was written; the store stays usable and the
    /// operation can be retried once space returns. The JetStream API maps this to
    /// err_code 10047 "insufficient storage resources available".
    #[error("insufficient storage resources available")]
    InsufficientResources,
    /// A record failed its checksum or framing: the data at `block`/`offset` is damaged.
    #[error("corrupt record in block {block} at offset {offset}")]
    Corrupt {
        /// Block file number.
        block: u64,
        /// Byte offset of the damaged record in that block.
        offset: u64,
    },
    /// [`StreamStore::skip_msgs`] was not asked to start right after the last sequence
    /// (Go: `ErrSequenceMismatch`).
    #[error("expected sequence does not match store")]
    SequenceMismatch,
    /// An I/O error (EIO, a failed fsync …). Writes are frozen from here on: after a failed
    /// fsync the kernel may have dropped dirty pages, so retrying could ack lost data.
    #[error("storage I/O error, writes frozen: {0}")]
    Io(String),
}

/// Accounted size of a message in a file store: the Go file store's record size, so `bytes`
/// and `max_bytes` agree with a nats-server file-backed stream (Go: `fileStoreMsgSize`).
pub fn msg_size(subject: &str, headers: &[u8], payload: &[u8]) -> u64 {
    msg_size_of(subject.len(), headers.len(), payload.len())
}

/// [`msg_size`] from the lengths alone (recovery of a compressed record knows only those).
pub(crate) fn msg_size_of(subject_len: usize, headers_len: usize, payload_len: usize) -> u64 {
    let base = 22 + subject_len + payload_len + 8;
    let hdr = if headers_len == 0 { 0 } else { 4 + headers_len };
    (base + hdr) as u64
}

/// Does `subject` pass `filter`? An empty filter and `>` match everything.
pub(crate) fn filter_matches(filter: &str, subject: &str) -> bool {
    filter.is_empty()
        || filter == ">"
        || crate::subject::matches(filter.as_bytes(), subject.as_bytes())
}

/// The storage interface a JetStream stream is built on (Go: `StreamStore`).
///
/// Writes only append; see the module docs for when they become durable.
pub trait StreamStore {
    /// Appends a message, assigning the next sequence; returns `(seq, ts)`. Enforces
    /// `max_msg_size`, discard-new limits, then discard-old limits.
    fn store_msg(
        &mut self,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        ts: UnixNanos,
    ) -> Result<(u64, UnixNanos), StoreError>;
    /// The message at `seq`.
    fn load_msg(&self, seq: u64) -> Result<StoredMsg, StoreError>;
    /// What a message would count toward `bytes` and `max_bytes` here (Go's file-store record
    /// size for a file store, its memory-store size for a memory store).
    fn accounted_size(&self, subject: &str, headers: &[u8], payload: &[u8]) -> u64;
    /// The first message at or after `start_seq` whose subject passes `filter`.
    fn load_next_msg(&self, filter: &str, start_seq: u64) -> Result<StoredMsg, StoreError>;
    /// The newest message whose subject passes `filter`.
    fn load_last_msg(&self, filter: &str) -> Result<StoredMsg, StoreError>;
    /// Removes one message; `Ok(false)` if there was none at `seq`.
    fn remove_msg(&mut self, seq: u64) -> Result<bool, StoreError>;
    /// Removes every message; sequences continue after `last_seq`. Returns the count removed.
    fn purge(&mut self) -> Result<u64, StoreError>;
    /// Removes messages passing `filter` with `seq < up_to_seq` (0: no bound), keeping the
    /// newest `keep` matching messages (0: keep none). Returns the count removed.
    fn purge_ex(&mut self, filter: &str, keep: u64, up_to_seq: u64) -> Result<u64, StoreError>;
    /// Removes every message below `seq`; the stream then starts at `seq` (even past its end).
    fn compact(&mut self, seq: u64) -> Result<u64, StoreError>;
    /// Skips `num` sequences from `seq` (which must be `last_seq + 1`) in one step, whatever
    /// `num`: they count as deleted, and `last_seq` becomes `seq + num - 1` at time `ts`. A
    /// mirror uses it for the holes in its origin (Go: `SkipMsgs`).
    fn skip_msgs(&mut self, seq: u64, num: u64, ts: UnixNanos) -> Result<(), StoreError>;
    /// Removes messages older than `max_age` at wall time `now`; returns the count removed.
    fn expire(&mut self, now: UnixNanos) -> Result<u64, StoreError>;
    /// When the oldest message will pass `max_age`, for the stream layer's timer.
    fn next_expiry(&self) -> Option<UnixNanos>;
    /// Replaces the limits and enforces them at once (`first_seq` is ignored here).
    fn update_config(&mut self, cfg: StoreConfig) -> Result<(), StoreError>;
    /// Whole-stream accounting.
    fn state(&self) -> StreamState;
    /// The sequences of the messages held that were stored at or after `since`, oldest
    /// first. Store times grow with sequences, so only the tail of the index is walked, and
    /// no message is read (Go: `GetSeqFromTime`, used to rebuild the duplicate window).
    fn seqs_since(&self, since: UnixNanos) -> Vec<u64>;
    /// The interior deletes: every sequence between the first and the last message that holds
    /// nothing, ascending (STREAM.INFO's `deleted` with `deleted_details`; Go: `State().Deleted`).
    fn deleted_seqs(&self) -> Vec<u64>;
    /// Accounting of the messages passing `filter`.
    fn filtered_state(&self, filter: &str) -> SimpleState;
    /// Message count per subject passing `filter`.
    fn subjects_totals(&self, filter: &str) -> BTreeMap<String, u64>;
    /// Makes every write so far durable; returns the highest sequence now durable.
    fn sync(&mut self) -> Result<u64, StoreError>;
    /// The highest sequence known durable (what the last successful `sync` returned).
    fn synced_through(&self) -> u64;
    /// Starts a [`StreamStore::sync`] whose fsyncs may run on another thread: returns the
    /// sequence it will make durable and the jobs. No jobs: it is already complete. Call
    /// [`StreamStore::finish_sync`] with the jobs' outcome before the next `begin_sync`.
    fn begin_sync(&mut self) -> Result<(u64, Vec<SyncJob>), StoreError> {
        self.sync().map(|through| (through, Vec::new()))
    }
    /// Completes a [`StreamStore::begin_sync`] that returned jobs, with their outcome (the
    /// first failure, if any); returns the highest sequence now durable. A failure freezes
    /// the store, as a failed `sync` does.
    fn finish_sync(
        &mut self,
        _through: u64,
        _done: Result<(), DiskError>,
    ) -> Result<u64, StoreError> {
        Ok(self.synced_through())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod model_tests;

#[cfg(test)]
mod skip_compress_tests;
