//! An in-memory [`Disk`] with fault injection, for tests and the simulation.
//!
//! It follows the durability rules in [`super::disk`] to the letter: metadata operations are
//! durable at once, appended bytes only after `sync`. [`MemDisk::crash`] throws away what a
//! power loss would; the other fault methods reproduce Jepsen's file nemeses (bit flips,
//! truncation) and a full or failing device. Every random choice comes from a seeded
//! [`SplitMix64`], so a seed replays a fault schedule exactly.
//!
//! `MemDisk` is a cheap handle: clones share one disk, so a test keeps a clone to inject faults
//! while a store owns another, and a "rebooted" store opens on the same handle.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::disk::{Disk, DiskError};
use crate::rng::SplitMix64;

/// How much unsynced data a [`MemDisk::crash`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Every file goes back to exactly its synced bytes.
    LoseUnsynced,
    /// Each file keeps its synced bytes plus a random prefix of the unsynced ones, and half of
    /// the time the end of that prefix is zeroed (the size reached the disk, the data did not).
    Torn,
}

/// Which operation an injected failure hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskOp {
    /// [`Disk::create`]
    Create,
    /// [`Disk::append`]
    Append,
    /// [`Disk::sync`]
    Sync,
    /// [`Disk::truncate`]
    Truncate,
    /// [`Disk::remove`]
    Remove,
}

/// Random failures, in failures per million calls of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Appends failing with ENOSPC (nothing written).
    pub append_nospace_ppm: u32,
    /// Appends failing with EIO (nothing written).
    pub append_eio_ppm: u32,
    /// Syncs failing with EIO (nothing made durable).
    pub sync_eio_ppm: u32,
}

#[derive(Debug, Default, Clone)]
struct MemFile {
    data: Vec<u8>,
    /// `data[..synced]` survives a crash.
    synced: usize,
}

#[derive(Debug)]
struct Inner {
    files: BTreeMap<String, MemFile>,
    capacity: Option<u64>,
    plan: FaultPlan,
    injected: VecDeque<(DiskOp, DiskError)>,
    rng: SplitMix64,
    syncs: u64,
}

/// An in-memory disk that can crash, tear writes, flip bits and fill up. See the module docs.
#[derive(Debug, Clone)]
pub struct MemDisk {
    inner: Arc<Mutex<Inner>>,
}

fn not_found(path: &str) -> DiskError {
    DiskError::NotFound(path.to_owned())
}

impl MemDisk {
    /// An empty disk whose random faults and tears are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        let inner = Inner {
            files: BTreeMap::new(),
            capacity: None,
            plan: FaultPlan::default(),
            injected: VecDeque::new(),
            rng: SplitMix64::new(seed),
            syncs: 0,
        };
        Self {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not hide the disk from the assertions that follow.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Simulates power loss: every file loses what was not synced (see [`CrashMode`]).
    /// Files themselves survive: creation and removal are durable on return.
    pub fn crash(&self, mode: CrashMode) {
        let mut g = self.lock();
        let Inner { files, rng, .. } = &mut *g;
        for f in files.values_mut() {
            let unsynced = f.data.len() - f.synced;
            let keep = match mode {
                CrashMode::LoseUnsynced => 0,
                CrashMode::Torn if unsynced == 0 => 0,
                CrashMode::Torn => rng.below(unsynced as u64 + 1) as usize,
            };
            f.data.truncate(f.synced + keep);
            if mode == CrashMode::Torn && keep > 0 && rng.below(2) == 0 {
                let zeros = (rng.below(16) as usize + 1).min(keep);
                let len = f.data.len();
                f.data[len - zeros..].fill(0);
            }
            f.synced = f.data.len();
        }
    }

    /// Flips one bit of a file (bit `bit % 8` of byte `bit / 8`), synced or not.
    pub fn flip_bit(&self, path: &str, bit: u64) -> Result<(), DiskError> {
        let mut g = self.lock();
        let f = g.files.get_mut(path).ok_or_else(|| not_found(path))?;
        let byte = usize::try_from(bit / 8).map_err(|_| DiskError::ShortRead)?;
        let b = f.data.get_mut(byte).ok_or(DiskError::ShortRead)?;
        *b ^= 1 << (bit % 8);
        Ok(())
    }

    /// Cuts a file behind the store's back (Jepsen's `truncate-file` nemesis).
    pub fn truncate_file(&self, path: &str, len: u64) -> Result<(), DiskError> {
        let mut g = self.lock();
        let f = g.files.get_mut(path).ok_or_else(|| not_found(path))?;
        let len = usize::try_from(len).map_or(f.data.len(), |l| l.min(f.data.len()));
        f.data.truncate(len);
        f.synced = f.synced.min(len);
        Ok(())
    }

    /// Limits the total bytes of all files (`None`: unlimited). An append that does not fit
    /// writes the part that does, then fails with ENOSPC, as a real file system may.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// Sets the random failure rates.
    pub fn set_fault_plan(&self, plan: FaultPlan) {
        self.lock().plan = plan;
    }

    /// Makes the next call of kind `op` fail with `err` (queued in order).
    pub fn fail_next(&self, op: DiskOp, err: DiskError) {
        self.lock().injected.push_back((op, err));
    }

    /// The whole content of a file, unsynced bytes included.
    pub fn contents(&self, path: &str) -> Option<Vec<u8>> {
        self.lock().files.get(path).map(|f| f.data.clone())
    }

    /// How many bytes of a file are durable.
    pub fn synced_len(&self, path: &str) -> Option<u64> {
        self.lock().files.get(path).map(|f| f.synced as u64)
    }

    /// Every file's path, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.lock().files.keys().cloned().collect()
    }

    /// Total bytes held by all files.
    pub fn used(&self) -> u64 {
        self.lock()
            .files
            .values()
            .map(|f| f.data.len() as u64)
            .sum()
    }

    /// Successful `sync` calls so far (fsyncs a real disk would have done).
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }
}

impl Inner {
    /// An injected or random failure for this call, if any.
    fn fault(&mut self, op: DiskOp) -> Option<DiskError> {
        if let Some(pos) = self.injected.iter().position(|(o, _)| *o == op) {
            return self.injected.remove(pos).map(|(_, e)| e);
        }
        let roll =
            |rng: &mut SplitMix64, ppm: u32| ppm > 0 && rng.below(1_000_000) < u64::from(ppm);
        match op {
            DiskOp::Append if roll(&mut self.rng, self.plan.append_nospace_ppm) => {
                Some(DiskError::NoSpace)
            }
            DiskOp::Append if roll(&mut self.rng, self.plan.append_eio_ppm) => {
                Some(DiskError::Io("injected EIO on append".into()))
            }
            DiskOp::Sync if roll(&mut self.rng, self.plan.sync_eio_ppm) => {
                Some(DiskError::Io("injected EIO on fsync".into()))
            }
            _ => None,
        }
    }

    fn used(&self) -> u64 {
        self.files.values().map(|f| f.data.len() as u64).sum()
    }
}

impl Disk for MemDisk {
    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        let mut g = self.lock();
        if let Some(e) = g.fault(DiskOp::Create) {
            return Err(e);
        }
        g.files.insert(path.to_owned(), MemFile::default());
        Ok(())
    }

    fn append(&mut self, path: &str, data: &[u8]) -> Result<u64, DiskError> {
        let mut g = self.lock();
        if let Some(e) = g.fault(DiskOp::Append) {
            return Err(e);
        }
        let room = g.capacity.map(|cap| cap.saturating_sub(g.used()));
        let f = g.files.get_mut(path).ok_or_else(|| not_found(path))?;
        let at = f.data.len() as u64;
        match room {
            Some(room) if room < data.len() as u64 => {
                f.data.extend_from_slice(&data[..room as usize]);
                Err(DiskError::NoSpace)
            }
            _ => {
                f.data.extend_from_slice(data);
                Ok(at)
            }
        }
    }

    fn read_at(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let g = self.lock();
        let f = g.files.get(path).ok_or_else(|| not_found(path))?;
        let start = usize::try_from(offset).map_err(|_| DiskError::ShortRead)?;
        let end = start.checked_add(len).ok_or(DiskError::ShortRead)?;
        f.data
            .get(start..end)
            .map(<[u8]>::to_vec)
            .ok_or(DiskError::ShortRead)
    }

    fn len(&self, path: &str) -> Result<u64, DiskError> {
        let g = self.lock();
        g.files
            .get(path)
            .map(|f| f.data.len() as u64)
            .ok_or_else(|| not_found(path))
    }

    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        let mut g = self.lock();
        if let Some(e) = g.fault(DiskOp::Sync) {
            return Err(e);
        }
        let f = g.files.get_mut(path).ok_or_else(|| not_found(path))?;
        f.synced = f.data.len();
        g.syncs += 1;
        Ok(())
    }

    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        let mut g = self.lock();
        if let Some(e) = g.fault(DiskOp::Truncate) {
            return Err(e);
        }
        let f = g.files.get_mut(path).ok_or_else(|| not_found(path))?;
        let len = usize::try_from(len).map_or(f.data.len(), |l| l.min(f.data.len()));
        f.data.truncate(len);
        f.synced = f.synced.min(len);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let mut g = self.lock();
        let f = g.files.remove(from).ok_or_else(|| not_found(from))?;
        g.files.insert(to.to_owned(), f);
        Ok(())
    }

    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        let mut g = self.lock();
        if let Some(e) = g.fault(DiskOp::Remove) {
            return Err(e);
        }
        g.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, DiskError> {
        let g = self.lock();
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        Ok(g.files
            .keys()
            .filter_map(|p| p.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_owned)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_keeps_only_synced_bytes() {
        let mut d = MemDisk::new(1);
        d.create("s/a").unwrap();
        d.append("s/a", b"hello").unwrap();
        d.sync("s/a").unwrap();
        d.append("s/a", b" world").unwrap();
        assert_eq!(d.len("s/a").unwrap(), 11);
        d.crash(CrashMode::LoseUnsynced);
        assert_eq!(d.contents("s/a").unwrap(), b"hello");
    }

    #[test]
    fn torn_crash_keeps_a_prefix_of_unsynced_bytes() {
        let mut saw_partial = false;
        for seed in 0..50 {
            let mut d = MemDisk::new(seed);
            d.create("f").unwrap();
            d.append("f", b"synced").unwrap();
            d.sync("f").unwrap();
            d.append("f", &[7u8; 100]).unwrap();
            d.crash(CrashMode::Torn);
            let c = d.contents("f").unwrap();
            assert!(c.starts_with(b"synced") && c.len() <= 106);
            assert!(c[6..].iter().all(|&b| b == 7 || b == 0));
            saw_partial |= c.len() > 6 && c.len() < 106;
        }
        assert!(saw_partial);
    }

    #[test]
    fn capacity_gives_short_write_and_enospc() {
        let mut d = MemDisk::new(1);
        d.create("f").unwrap();
        d.set_capacity(Some(4));
        assert_eq!(d.append("f", b"abcdef"), Err(DiskError::NoSpace));
        assert_eq!(d.len("f").unwrap(), 4);
        d.set_capacity(None);
        assert_eq!(d.append("f", b"gh").unwrap(), 4);
    }

    #[test]
    fn injected_failures_hit_their_op_once() {
        let mut d = MemDisk::new(1);
        d.create("f").unwrap();
        d.fail_next(DiskOp::Sync, DiskError::Io("boom".into()));
        d.append("f", b"x").unwrap();
        assert!(matches!(d.sync("f"), Err(DiskError::Io(_))));
        d.sync("f").unwrap();
        assert_eq!(d.syncs(), 1);
    }

    #[test]
    fn flip_truncate_list_rename_remove() {
        let mut d = MemDisk::new(1);
        d.create("dir/a").unwrap();
        d.create("dir/sub/b").unwrap();
        d.create("other").unwrap();
        d.append("dir/a", &[0, 0]).unwrap();
        d.flip_bit("dir/a", 9).unwrap();
        assert_eq!(d.read_at("dir/a", 0, 2).unwrap(), vec![0, 2]);
        assert_eq!(d.read_at("dir/a", 1, 2), Err(DiskError::ShortRead));
        assert_eq!(d.list("dir").unwrap(), vec!["a".to_owned()]);
        d.rename("dir/a", "dir/c").unwrap();
        d.truncate_file("dir/c", 1).unwrap();
        assert_eq!(d.len("dir/c").unwrap(), 1);
        d.remove("dir/c").unwrap();
        assert!(d.list("dir").unwrap().is_empty());
        assert_eq!(d.paths(), vec!["dir/sub/b".to_owned(), "other".to_owned()]);
    }
}
