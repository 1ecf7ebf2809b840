//! Opening a [`FileStore`](super::FileStore): rebuild the index by replaying every block, cut a torn tail,
//! report everything else that is damaged.
//!
//! Sequences are dense in the log: every sequence from a block's `base_seq` on has a message
//! record, in order, until a floor moves the start forward (removals are separate records, and
//! a crash only loses an unsynced tail whose sequences are then reassigned). So a gap in the
//! sequences *is* damage — a flipped record, a truncated or deleted block — and is reported
//! with the range lost, even when the damaged bytes themselves are gone.

use super::disk::{Disk, DiskError};
use super::engine::Backend;
use super::filestore::{
    BlockMeta, Corruption, CorruptionKind, FileLoc, FileLog, FileStoreConfig, RecoveryReport,
};
use super::index::Index;
use super::record::{self, Kind, Parsed, HEADER_LEN};
use super::{msg_size_of, Store, StoreConfig, StoreError};

fn io(what: &str, e: DiskError) -> StoreError {
    match e {
        DiskError::NoSpace => StoreError::InsufficientResources,
        e => StoreError::Io(format!("{what}: {e}")),
    }
}

impl<D: Disk> Store<FileLog<D>> {
    /// Opens (or creates) the store in `dir`, recovering from whatever a crash left.
    ///
    /// Every message that was synced comes back. A torn tail of the newest block is cut off
    /// (see [`RecoveryReport::torn_bytes`]); any other damage is skipped and listed in
    /// [`Store::corruption`]. `cfg.first_seq` applies only to a new store. Everything
    /// read is fsynced again before this returns: after a process crash it may have been
    /// only in the OS cache, and the store must not serve what a power loss could take back.
    pub fn open(
        disk: D,
        dir: &str,
        cfg: StoreConfig,
        file_cfg: FileStoreConfig,
    ) -> Result<Self, StoreError> {
        let mut log = FileLog::new(disk, dir, file_cfg);
        log.want_compress = cfg.compress;
        log.compress = cfg.compress;
        let names = log
            .disk
            .list(&log.dir)
            .map_err(|e| io("list store dir", e))?;
        let mut ids: Vec<u64> = names
            .iter()
            .filter_map(|n| n.strip_suffix(".blk")?.parse().ok())
            .collect();
        ids.sort_unstable();
        let mut idx = Index::new(0, 0);
        if ids.is_empty() {
            let first = cfg.first_seq.max(1);
            idx = Index::new(first - 1, 0);
            log.create_block(1, first, 0)?;
        } else {
            let mut replay = Replay {
                log: &mut log,
                idx: &mut idx,
                expected: None,
                first_seq: cfg.first_seq.max(1),
                tail_marked: false,
            };
            for (i, &id) in ids.iter().enumerate() {
                replay.block(id, i + 1 == ids.len())?;
            }
            if !replay.tail_marked {
                // A crash can leave intact unsynced records at the end, which this open makes
                // durable. Mark them synced, or later damage to the last of them would pass
                // for a torn tail and be dropped without a report.
                match log.mark_synced(idx.last_seq) {
                    // Full disk: open anyway; only this safeguard is missing.
                    Ok(()) | Err(StoreError::InsufficientResources) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        for id in log.block_ids() {
            let path = log.block_path(id);
            log.disk
                .sync(&path)
                .map_err(|e| io(&format!("fsync {path}"), e))?;
            if let Some(b) = log.blocks.get_mut(&id) {
                b.dirty = false;
            }
        }
        log.synced = idx.last_seq;
        log.last_ts = idx.last_ts;
        log.drop_dead_blocks();
        if !log.report.corruption.is_empty() || log.report.torn_bytes > 0 {
            tracing::warn!(dir, torn_bytes = log.report.torn_bytes, damage = ?log.report.corruption, "file store recovered with damage");
        }
        Ok(Self::from_parts(cfg, idx, log))
    }

    /// The damage found at open (see [`RecoveryReport::corruption`]).
    pub fn corruption(&self) -> &[Corruption] {
        self.backend().corruption()
    }

    /// What opening the store found.
    pub fn recovery(&self) -> &RecoveryReport {
        self.backend().recovery()
    }

    /// Gives the disk back (drop the store and keep its disk, as a reboot does).
    pub fn into_disk(self) -> D {
        self.into_backend().into_disk()
    }
}

/// Replays blocks in order into the index.
struct Replay<'a, D: Disk> {
    log: &'a mut FileLog<D>,
    idx: &'a mut Index<FileLoc>,
    /// The sequence the next message record must carry.
    expected: Option<u64>,
    /// Where a new store starts (`StoreConfig::first_seq`).
    first_seq: u64,
    /// The last record replayed was a sync mark.
    tail_marked: bool,
}

impl<D: Disk> Replay<'_, D> {
    fn damage(&mut self, block: u64, offset: usize, kind: CorruptionKind) {
        if let CorruptionKind::MissingSeqs { first, last } = kind {
            self.log.lost.insert(first, (last, block, offset as u64));
        }
        self.log.report.corruption.push(Corruption {
            block,
            offset: offset as u64,
            kind,
        });
    }

    fn block(&mut self, id: u64, newest: bool) -> Result<(), StoreError> {
        let path = self.log.block_path(id);
        let len = self.log.disk.len(&path).map_err(|e| io(&path, e))?;
        let data = self
            .log
            .disk
            .read_at(&path, 0, len as usize)
            .map_err(|e| io(&path, e))?;
        self.log.report.blocks += 1;
        self.log.blocks.insert(
            id,
            BlockMeta {
                len,
                live: 0,
                dirty: false,
                has_records: false,
            },
        );
        match record::decode_header(&data) {
            Some((base, base_ts)) => {
                if let Some(exp) = self.expected.filter(|e| base > *e) {
                    self.damage(
                        id,
                        0,
                        CorruptionKind::MissingSeqs {
                            first: exp,
                            last: base - 1,
                        },
                    );
                }
                if base.saturating_sub(1) > self.idx.last_seq {
                    self.idx.last_seq = base - 1;
                    self.idx.last_ts = base_ts;
                }
                self.expected = Some(self.expected.map_or(base, |e| e.max(base)));
            }
            // The newest block's header never reached the disk, and nothing after it did
            // either: the block was being started when the power went. Start it again.
            None if newest && record::resync(&data, HEADER_LEN.saturating_sub(1)).is_none() => {
                // All zeros: laid out ahead (see below), nothing was torn.
                if data.iter().any(|b| *b != 0) {
                    self.log.report.torn_bytes += len;
                }
                if self.expected.is_none() {
                    // No block before it: this was a new store, which starts at `first_seq`.
                    self.idx.last_seq = self.idx.last_seq.max(self.first_seq - 1);
                }
                let header = record::encode_header(self.idx.last_seq + 1, self.idx.last_ts);
                self.log.disk.truncate(&path, 0).map_err(|e| io(&path, e))?;
                self.log
                    .disk
                    .append(&path, &header)
                    .map_err(|e| io(&path, e))?;
                if let Some(b) = self.log.blocks.get_mut(&id) {
                    b.len = HEADER_LEN as u64;
                }
                return Ok(());
            }
            None => self.damage(id, 0, CorruptionKind::BadHeader),
        }
        let mut off = HEADER_LEN;
        while off < data.len() {
            if let Some(p) = record::decode(&data[off..]) {
                self.apply(&p, &data[off..off + p.len], id, off);
                off += p.len;
                continue;
            }
            if data[off..].iter().all(|b| *b == 0) {
                // Space laid out ahead of the appends (see the `disk` module docs), never
                // written: a record cannot be all zeros (its magic is not).
                // Cut it so the next append follows the last record.
                self.log
                    .disk
                    .truncate(&path, off as u64)
                    .map_err(|e| io(&path, e))?;
                if let Some(b) = self.log.blocks.get_mut(&id) {
                    b.len = off as u64;
                }
                break;
            }
            match record::resync(&data, off) {
                Some(next) => {
                    self.damage(
                        id,
                        off,
                        CorruptionKind::BadRecord {
                            bytes: (next - off) as u64,
                        },
                    );
                    off = next;
                }
                None if newest => {
                    // A torn write: only unsynced data can be here (every sync ends with a
                    // sync mark, so damage to synced data always has an intact record after it).
                    self.log.report.torn_bytes += (data.len() - off) as u64;
                    self.log
                        .disk
                        .truncate(&path, off as u64)
                        .map_err(|e| io(&path, e))?;
                    if let Some(b) = self.log.blocks.get_mut(&id) {
                        b.len = off as u64;
                    }
                    break;
                }
                None => {
                    self.damage(
                        id,
                        off,
                        CorruptionKind::BadRecord {
                            bytes: (data.len() - off) as u64,
                        },
                    );
                    break;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, p: &Parsed, rec: &[u8], id: u64, off: usize) {
        self.log.report.records += 1;
        self.tail_marked = p.kind == Kind::SyncMark;
        if let Some(b) = self.log.blocks.get_mut(&id) {
            b.has_records = true;
        }
        match p.kind {
            Kind::Msg => {
                let exp = self.expected.unwrap_or(p.seq);
                if p.seq < exp {
                    self.damage(id, off, CorruptionKind::OutOfOrder { seq: p.seq });
                    return;
                }
                if p.seq > exp {
                    self.damage(
                        id,
                        off,
                        CorruptionKind::MissingSeqs {
                            first: exp,
                            last: p.seq - 1,
                        },
                    );
                }
                let parts = std::str::from_utf8(&rec[p.subject.clone()])
                    .ok()
                    .zip(p.body_lens(rec));
                let Some((subject, (hdr_len, payload_len))) = parts else {
                    // Checksummed yet not UTF-8, or a compressed body that does not say its
                    // size: we never write that, so it is damage.
                    self.damage(
                        id,
                        off,
                        CorruptionKind::BadRecord {
                            bytes: p.len as u64,
                        },
                    );
                    return;
                };
                let size = msg_size_of(subject.len(), hdr_len, payload_len);
                let loc = FileLoc::new(id, off as u64, p.len as u32);
                self.idx.insert(p.seq, subject, p.ts, size, loc);
                if let Some(b) = self.log.blocks.get_mut(&id) {
                    b.live += 1;
                }
                self.expected = Some(p.seq + 1);
            }
            Kind::Tombstone => {
                if let Some(e) = self.idx.remove(p.seq) {
                    self.log.forget(&e.loc);
                }
            }
            Kind::Floor => {
                let at_end = p.seq.saturating_sub(1) >= self.idx.last_seq;
                for (_, e) in self.idx.remove_below(p.seq) {
                    self.log.forget(&e.loc);
                }
                if at_end {
                    self.idx.last_ts = p.ts;
                }
                self.expected = Some(self.expected.map_or(p.seq, |e| e.max(p.seq)));
            }
            Kind::Skip => self.skip(p, rec, id, off),
            Kind::SyncMark => {
                // The mark names the last sequence synced: if the messages up to it are not all
                // here, the newest of them were damaged (nothing else follows them to tell).
                if let Some(exp) = self.expected.filter(|e| p.seq >= *e) {
                    self.damage(
                        id,
                        off,
                        CorruptionKind::MissingSeqs {
                            first: exp,
                            last: p.seq,
                        },
                    );
                    self.expected = Some(p.seq + 1);
                }
                self.idx.last_seq = self.idx.last_seq.max(p.seq);
            }
        }
    }

    /// A skip record: its range is accounted as deleted, not lost.
    fn skip(&mut self, p: &Parsed, rec: &[u8], id: u64, off: usize) {
        let first = p.seq;
        let Some(last) = p.skip_last(rec).filter(|l| *l >= first) else {
            let bytes = p.len as u64;
            self.damage(id, off, CorruptionKind::BadRecord { bytes });
            return;
        };
        let exp = self.expected.unwrap_or(first);
        if last < exp {
            // Entirely behind us: stale, like a repeated message.
            self.damage(id, off, CorruptionKind::OutOfOrder { seq: first });
            return;
        }
        if first > exp {
            let missing = CorruptionKind::MissingSeqs {
                first: exp,
                last: first - 1,
            };
            self.damage(id, off, missing);
        }
        if last >= self.idx.last_seq {
            self.idx.last_seq = last;
            self.idx.last_ts = p.ts;
        }
        self.expected = Some(last + 1);
    }
}
