//! [`FileLog`]: the block-file backend of a [`FileStore`](super::FileStore).
//!
//! The store directory holds `NNNNNNNNNN.blk` files (see [`super::record`] for the format).
//! Only the newest block is appended to; when a message would take it past `block_size` the
//! block is synced and sealed first, so only the newest block can ever end in a torn write
//! and damage anywhere else is reported as corruption. Removals are records too (tombstones
//! and floors); a block is deleted once it is at the front, no longer newest, holds no live
//! message, and the removals that emptied it are synced.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::disk::{Disk, DiskError, SyncJob};
use super::engine::Backend;
use super::record::{self, Kind, HEADER_LEN};
use super::{StoreConfig, StoreError, StoredMsg, SyncPolicy, UnixNanos};

/// Default block size: big enough that rolling (one extra fsync) is rare, small enough that
/// purging old data frees space in useful steps (Go uses 8 MiB for unlimited streams too).
pub const DEFAULT_BLOCK_SIZE: u64 = 8 * 1024 * 1024;

/// How a [`FileStore`](super::FileStore) lays out and syncs its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStoreConfig {
    /// A block is sealed before a message would take it past this size.
    pub block_size: u64,
    /// When the stream layer syncs (the store itself syncs only when asked, and on roll).
    pub sync: SyncPolicy,
}

impl Default for FileStoreConfig {
    fn default() -> Self {
        Self {
            block_size: DEFAULT_BLOCK_SIZE,
            sync: SyncPolicy::Always,
        }
    }
}

/// One piece of damage found while opening a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// Block file number.
    pub block: u64,
    /// Byte offset in that block.
    pub offset: u64,
    /// What is wrong there.
    pub kind: CorruptionKind,
}

/// The kinds of damage recovery tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// Bytes that are not an intact record (bad length, magic or checksum), skipped.
    BadRecord {
        /// How many bytes were skipped.
        bytes: u64,
    },
    /// A block header failed its checksum; the records after it were still read.
    BadHeader,
    /// Sequences with no message record where one must have been (a damaged record, a
    /// truncated or deleted block). Loading them answers [`StoreError::Corrupt`].
    MissingSeqs {
        /// First missing sequence.
        first: u64,
        /// Last missing sequence.
        last: u64,
    },
    /// An intact message record repeating an earlier sequence (stale data), ignored.
    OutOfOrder {
        /// Its sequence.
        seq: u64,
    },
}

/// What opening a [`FileStore`](super::FileStore) found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Block files read.
    pub blocks: u64,
    /// Intact records replayed.
    pub records: u64,
    /// Bytes cut from the end of the newest block: a write torn by the crash. Only unsynced
    /// data ends up there, because every sync ends with a sync-mark record.
    pub torn_bytes: u64,
    /// Damage that is not a torn tail. Never silently dropped: listed here, counted in
    /// [`StreamState`](super::StreamState), and reported by loads of lost sequences.
    pub corruption: Vec<Corruption>,
}

/// Where a message record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLoc {
    block: u64,
    offset: u64,
    len: u32,
}

impl FileLoc {
    pub(crate) fn new(block: u64, offset: u64, len: u32) -> Self {
        Self { block, offset, len }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct BlockMeta {
    pub(crate) len: u64,
    /// Messages in this block still in the index.
    pub(crate) live: u64,
    /// Appended since its last fsync.
    pub(crate) dirty: bool,
    /// Holds any record past the header (an empty newest block is never rolled).
    pub(crate) has_records: bool,
}

/// The block-file backend. Build one with [`FileStore::open`](super::Store::open).
#[derive(Debug)]
pub struct FileLog<D: Disk> {
    pub(crate) disk: D,
    pub(crate) dir: String,
    pub(crate) cfg: FileStoreConfig,
    pub(crate) blocks: BTreeMap<u64, BlockMeta>,
    pub(crate) synced: u64,
    pub(crate) syncs: u64,
    pub(crate) frozen: Option<String>,
    pub(crate) report: RecoveryReport,
    /// Sequences known lost: first → (last, block, offset).
    pub(crate) lost: BTreeMap<u64, (u64, u64, u64)>,
    /// Per sync begun and not finished (oldest first, as they finish): the blocks its fsyncs
    /// cover, with their length when it began.
    in_flight: VecDeque<Vec<(u64, u64)>>,
    /// New message records of the newest block are compressed.
    pub(crate) compress: bool,
    /// What the stream's config asks for; it takes effect with the next block, as a
    /// compression change does in nats-server (records carry their own flag either way).
    pub(crate) want_compress: bool,
    /// The stream's `last_ts` as of the last write. A rolled block's header carries it, not
    /// the new message's time: if that message is then torn off and the older blocks are
    /// gone, the header is all that remembers the time of `base_seq - 1`.
    pub(crate) last_ts: UnixNanos,
    scratch: Vec<u8>,
}

impl<D: Disk> FileLog<D> {
    pub(crate) fn new(disk: D, dir: &str, cfg: FileStoreConfig) -> Self {
        Self {
            disk,
            dir: dir.trim_end_matches('/').to_owned(),
            cfg,
            blocks: BTreeMap::new(),
            synced: 0,
            syncs: 0,
            frozen: None,
            report: RecoveryReport::default(),
            lost: BTreeMap::new(),
            in_flight: VecDeque::new(),
            compress: false,
            want_compress: false,
            last_ts: 0,
            scratch: Vec::new(),
        }
    }

    /// What opening the store found.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.report
    }

    /// The damage found at open (see [`RecoveryReport::corruption`]).
    pub fn corruption(&self) -> &[Corruption] {
        &self.report.corruption
    }

    /// Successful group syncs (each is one fsync per dirty block).
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Why writes are frozen, if an I/O error froze them.
    pub fn frozen(&self) -> Option<&str> {
        self.frozen.as_deref()
    }

    /// The sync policy the stream layer should follow.
    pub fn sync_policy(&self) -> SyncPolicy {
        self.cfg.sync
    }

    /// Block file numbers, oldest first.
    pub fn block_ids(&self) -> Vec<u64> {
        self.blocks.keys().copied().collect()
    }

    /// The path of block `id`.
    pub fn block_path(&self, id: u64) -> String {
        format!("{}/{id:010}.blk", self.dir)
    }

    /// Bytes the block files take on disk (compressed records count as stored). Stream
    /// accounting (`bytes`, account usage) stays in uncompressed message sizes, as in
    /// nats-server.
    pub fn disk_bytes(&self) -> u64 {
        self.blocks.values().map(|b| b.len).sum()
    }

    /// Whether new message records are being compressed.
    pub fn compressing(&self) -> bool {
        self.compress
    }

    /// The disk underneath.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Gives the disk back, to reopen the store on it.
    pub fn into_disk(self) -> D {
        self.disk
    }

    fn active(&self) -> u64 {
        self.blocks.keys().next_back().copied().unwrap_or(0)
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        match &self.frozen {
            Some(why) => Err(StoreError::Io(why.clone())),
            None => Ok(()),
        }
    }

    fn freeze(&mut self, why: String) -> StoreError {
        tracing::error!(dir = %self.dir, "file store frozen: {why}");
        // The first cause is the one worth reporting; later failures are its echoes.
        StoreError::Io(self.frozen.get_or_insert(why).clone())
    }

    /// Appends to the newest block. ENOSPC leaves the block exactly as it was.
    fn write_active(&mut self, data: &[u8]) -> Result<u64, StoreError> {
        self.check_writable()?;
        let id = self.active();
        let path = self.block_path(id);
        let old_len = self.blocks.get(&id).map_or(0, |b| b.len);
        match self.disk.append(&path, data) {
            Ok(at) => {
                debug_assert_eq!(at, old_len, "block {id} length drifted");
                if let Some(b) = self.blocks.get_mut(&id) {
                    b.len += data.len() as u64;
                    b.dirty = true;
                }
                Ok(at)
            }
            Err(DiskError::NoSpace) => match self.disk.truncate(&path, old_len) {
                // A short write may have landed; cut it so the block ends on a record.
                Ok(()) => Err(StoreError::InsufficientResources),
                Err(e) => Err(self.freeze(format!("truncate {path} after ENOSPC: {e}"))),
            },
            Err(e) => Err(self.freeze(format!("append to {path}: {e}"))),
        }
    }

    /// Creates block `id` with its header (not synced: a lost header is a torn newest block).
    pub(crate) fn create_block(
        &mut self,
        id: u64,
        base_seq: u64,
        base_ts: UnixNanos,
    ) -> Result<(), StoreError> {
        let path = self.block_path(id);
        let created = self.disk.create(&path).and_then(|()| {
            self.disk
                .append(&path, &record::encode_header(base_seq, base_ts))
        });
        match created {
            Ok(_) => {
                let meta = BlockMeta {
                    len: HEADER_LEN as u64,
                    live: 0,
                    dirty: true,
                    has_records: false,
                };
                self.blocks.insert(id, meta);
                self.compress = self.want_compress;
                Ok(())
            }
            Err(DiskError::NoSpace) => {
                let _ = self.disk.remove(&path);
                Err(StoreError::InsufficientResources)
            }
            Err(e) => Err(self.freeze(format!("create {path}: {e}"))),
        }
    }

    /// Seals the newest block (syncing everything) and starts the next.
    fn roll(&mut self, base_seq: u64, base_ts: UnixNanos, last_seq: u64) -> Result<(), StoreError> {
        self.sync_through(last_seq)?;
        self.check_writable()?;
        self.create_block(self.active() + 1, base_seq, base_ts)
    }

    fn sync_through(&mut self, last_seq: u64) -> Result<u64, StoreError> {
        let jobs = self.start_sync(last_seq, false)?;
        debug_assert!(jobs.is_empty(), "an inline sync returned jobs");
        Ok(last_seq)
    }

    /// Writes a sync mark and syncs every dirty block: at once, or (`later`) handing the
    /// fsyncs back as jobs that [`FileLog::complete_sync`] completes. Without jobs the sync
    /// is complete on return.
    fn start_sync(&mut self, last_seq: u64, later: bool) -> Result<Vec<SyncJob>, StoreError> {
        self.check_writable()?;
        let mut jobs = Vec::new();
        if self.blocks.values().any(|b| b.dirty) {
            // The mark keeps the last synced message from being the block's last record.
            let mut mark = Vec::with_capacity(record::RECORD_OVERHEAD);
            record::encode(&mut mark, Kind::SyncMark, last_seq, 0, b"", b"", b"");
            match self.write_active(&mark) {
                Ok(_) | Err(StoreError::InsufficientResources) => {}
                Err(e) => return Err(e),
            }
            let dirty: Vec<(u64, u64)> = self
                .blocks
                .iter()
                .filter(|(_, b)| b.dirty)
                .map(|(id, b)| (*id, b.len))
                .collect();
            let mut group = Vec::new();
            for (id, len) in dirty {
                let path = self.block_path(id);
                let r = if later {
                    self.disk.sync_later(&path)
                } else {
                    self.disk.sync(&path).map(|()| None)
                };
                match r {
                    Err(e) => return Err(self.freeze(format!("fsync {path}: {e}"))),
                    Ok(None) => {
                        if let Some(b) = self.blocks.get_mut(&id) {
                            b.dirty = false;
                        }
                    }
                    Ok(Some(job)) => {
                        // Still dirty until the job is done (and after, if written since).
                        group.push((id, len));
                        jobs.push(job);
                    }
                }
            }
            if !jobs.is_empty() {
                self.in_flight.push_back(group);
                return Ok(jobs);
            }
            self.syncs += 1;
        }
        self.synced = last_seq;
        self.drop_dead_blocks();
        Ok(jobs)
    }

    /// Completes the oldest sync whose jobs ran elsewhere (several may be in flight; they
    /// finish in order). Blocks are append-only, so one whose length is what it was at the
    /// start got nothing the fsync missed.
    fn complete_sync(
        &mut self,
        last_seq: u64,
        done: Result<(), DiskError>,
    ) -> Result<u64, StoreError> {
        // Syncs finish in the order they began.
        let flights = self.in_flight.pop_front().unwrap_or_default();
        if let Err(e) = done {
            return Err(self.freeze(format!("fsync: {e}")));
        }
        // An older sync failed: this one's data comes after bytes the disk may have lost,
        // and its own fsync may not say so (an error is reported once), so it proves nothing.
        self.check_writable()?;
        for (id, len) in flights {
            if let Some(b) = self.blocks.get_mut(&id) {
                if b.len == len {
                    b.dirty = false;
                }
            }
        }
        self.syncs += 1;
        self.synced = self.synced.max(last_seq);
        self.drop_dead_blocks();
        Ok(self.synced)
    }

    /// Appends a sync mark for `last_seq` (recovery: the fsync that follows makes it true).
    pub(crate) fn mark_synced(&mut self, last_seq: u64) -> Result<(), StoreError> {
        let mut mark = Vec::with_capacity(record::RECORD_OVERHEAD);
        record::encode(&mut mark, Kind::SyncMark, last_seq, 0, b"", b"", b"");
        self.write_active(&mark)?;
        if let Some(b) = self.blocks.get_mut(&self.active()) {
            b.has_records = true;
        }
        Ok(())
    }

    /// Deletes empty blocks from the front. Only from the front: a block's tombstones may
    /// refer to messages in older blocks, which must not come back.
    pub(crate) fn drop_dead_blocks(&mut self) {
        let active = self.active();
        while let Some((&id, b)) = self.blocks.iter().next() {
            if id == active || b.live > 0 || b.dirty {
                break;
            }
            let path = self.block_path(id);
            if let Err(e) = self.disk.remove(&path) {
                // Harmless to keep: it is dead either way. Try again at the next sync.
                tracing::warn!("cannot remove dead block {path}: {e}");
                break;
            }
            self.blocks.remove(&id);
        }
    }

    fn corrupt(loc: &FileLoc) -> StoreError {
        StoreError::Corrupt {
            block: loc.block,
            offset: loc.offset,
        }
    }
}

impl<D: Disk> Backend for FileLog<D> {
    type Loc = FileLoc;

    fn append(
        &mut self,
        seq: u64,
        ts: UnixNanos,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
    ) -> Result<FileLoc, StoreError> {
        self.check_writable()?;
        let mut rec = std::mem::take(&mut self.scratch);
        rec.clear();
        let compress = self.compress;
        record::encode_msg(
            &mut rec,
            seq,
            ts,
            subject.as_bytes(),
            headers,
            payload,
            compress,
        );
        let active = self
            .blocks
            .get(&self.active())
            .map_or((0, false), |b| (b.len, b.has_records));
        let rolled = if active.1 && active.0 + rec.len() as u64 > self.cfg.block_size {
            self.roll(seq, self.last_ts, seq - 1)
        } else {
            Ok(())
        };
        let written = rolled.and_then(|()| self.write_active(&rec));
        let len = rec.len() as u32;
        self.scratch = rec;
        let offset = written?;
        self.last_ts = ts;
        let block = self.active();
        if let Some(b) = self.blocks.get_mut(&block) {
            b.live += 1;
            b.has_records = true;
        }
        Ok(FileLoc { block, offset, len })
    }

    fn read(
        &self,
        seq: u64,
        _: &str,
        _: UnixNanos,
        loc: &FileLoc,
    ) -> Result<StoredMsg, StoreError> {
        let path = self.block_path(loc.block);
        let buf = match self.disk.read_at(&path, loc.offset, loc.len as usize) {
            Ok(buf) => buf,
            Err(DiskError::ShortRead | DiskError::NotFound(_)) => return Err(Self::corrupt(loc)),
            Err(e) => return Err(StoreError::Io(format!("read {path}: {e}"))),
        };
        let p = record::decode(&buf)
            .filter(|p| p.kind == Kind::Msg && p.seq == seq && p.len == buf.len())
            .ok_or_else(|| Self::corrupt(loc))?;
        let subject = std::str::from_utf8(&buf[p.subject.clone()])
            .map_err(|_| Self::corrupt(loc))?
            .to_owned();
        let (headers, payload) = p
            .message(Bytes::from(buf))
            .ok_or_else(|| Self::corrupt(loc))?;
        Ok(StoredMsg {
            seq,
            ts: p.ts,
            subject,
            headers,
            payload,
        })
    }

    fn write_removals(
        &mut self,
        floor: Option<u64>,
        tombstones: &[u64],
        last_seq: u64,
        last_ts: UnixNanos,
    ) -> Result<(), StoreError> {
        self.check_writable()?;
        if let Some(f) = floor {
            let has_records = self
                .blocks
                .get(&self.active())
                .is_some_and(|b| b.has_records);
            if f > last_seq && has_records {
                // Everything goes (purge, or compact past the end): start a fresh block so
                // every old one becomes dead and is deleted after the next sync. The new
                // header carries `last_seq + 1`, not `f`: only the floor record moves the start,
                // so a crash that keeps the header but loses the floor shows no false gap.
                self.roll(last_seq + 1, last_ts, last_seq)?;
            }
        }
        let mut buf = Vec::with_capacity(record::RECORD_OVERHEAD * (tombstones.len() + 1));
        if let Some(f) = floor {
            record::encode(&mut buf, Kind::Floor, f, last_ts, b"", b"", b"");
        }
        for &s in tombstones {
            record::encode(&mut buf, Kind::Tombstone, s, 0, b"", b"", b"");
        }
        self.write_active(&buf)?;
        self.last_ts = last_ts;
        if let Some(b) = self.blocks.get_mut(&self.active()) {
            b.has_records = true;
        }
        Ok(())
    }

    fn write_skip(&mut self, first: u64, last: u64, ts: UnixNanos) -> Result<(), StoreError> {
        self.check_writable()?;
        let mut buf = Vec::with_capacity(record::RECORD_OVERHEAD + 8);
        record::encode_skip(&mut buf, first, last, ts);
        self.write_active(&buf)?;
        self.last_ts = ts;
        if let Some(b) = self.blocks.get_mut(&self.active()) {
            b.has_records = true;
        }
        Ok(())
    }

    fn configure(&mut self, cfg: &StoreConfig) {
        self.want_compress = cfg.compress;
    }

    fn forget(&mut self, loc: &FileLoc) {
        if let Some(b) = self.blocks.get_mut(&loc.block) {
            debug_assert!(b.live > 0, "block {} live count underflow", loc.block);
            b.live = b.live.saturating_sub(1);
        }
    }

    fn sync(&mut self, last_seq: u64) -> Result<u64, StoreError> {
        self.sync_through(last_seq)
    }

    fn begin_sync(&mut self, last_seq: u64) -> Result<Vec<SyncJob>, StoreError> {
        self.start_sync(last_seq, true)
    }

    fn finish_sync(
        &mut self,
        last_seq: u64,
        done: Result<(), DiskError>,
    ) -> Result<u64, StoreError> {
        self.complete_sync(last_seq, done)
    }

    fn synced_through(&self) -> u64 {
        self.synced
    }

    fn lost(&self, seq: u64) -> Option<StoreError> {
        let (_, &(last, block, offset)) = self.lost.range(..=seq).next_back()?;
        (seq <= last).then_some(StoreError::Corrupt { block, offset })
    }

    fn damage(&self) -> (u64, u64) {
        let mut records = 0;
        let mut lost = 0;
        for c in &self.report.corruption {
            match c.kind {
                CorruptionKind::MissingSeqs { first, last } => lost += last - first + 1,
                CorruptionKind::BadRecord { .. }
                | CorruptionKind::BadHeader
                | CorruptionKind::OutOfOrder { .. } => {
                    records += 1;
                }
            }
        }
        (records, lost)
    }
}
