//! [`Disk`] over `std::fs`, honouring the duties listed in core's `store/disk.rs`: metadata
//! changes are durable on return (parent directory fsync), appends only after `sync`, a failed
//! fsync is reported and never retried as if transient, ENOSPC is `NoSpace`.
//!
//! # Write buffering (the default, synced-before-ack mode)
//!
//! A publish batch appends hundreds of small records before one `sync`. Writing each one
//! with its own `write` system call cost more CPU than everything else the store does, so a
//! file that has grown past [`BUFFER_FROM`] collects its appends in memory and writes them
//! out with one call at `sync` (or when [`FLUSH_AT`] bytes are waiting). That changes no
//! durability promise: appended bytes were never durable before `sync`, and an ack waits for
//! `sync`.
//!
//! What it must not change is ENOSPC: an append that does not fit has to fail *at the
//! append*, leaving the earlier records alone, so that publish gets error 10047 and nothing
//! else is lost. So bytes are only buffered inside space already claimed by writing zeros
//! there, which a later overwrite cannot run out of. If claiming fails, appends go straight
//! to the file as before. Should writing claimed bytes fail anyway (EIO, or a copy-on-write
//! file system that needs new space for an overwrite), the error is reported as I/O, never
//! as ENOSPC, and the store freezes: earlier appends were already promised a place.
//!
//! Zeros rather than `fallocate`: a reserved but unwritten range still changes the file's
//! size and extents when written, so every fdatasync commits metadata through the journal.
//! Over zeros already on disk it writes data only, which on the hosts this project is
//! measured on takes half the time and a third of the CPU. The zeros cost one larger sync
//! per claimed range, at most [`RESERVE_MAX`] and a quarter of the file at a time.
//!
//! With `sync_interval` (acks before the sync) nothing is buffered: there a process crash
//! must lose nothing the OS had been handed, as with nats-server.
//!
//! # Pre-zeroed blocks
//!
//! In the same mode, a busy stream's next block is laid out ahead of time as a synced file of
//! zeros (see [`spare`]), so that even its first fsyncs write data only. A file with zeros
//! ahead is longer than what was appended to it; writes are positional (`write_all_at` at
//! the tracked length, never `O_APPEND`) and `len` is the appended length. After a restart
//! the store's recovery cuts the unused zeros.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use natsd_core::jetstream::store::{Disk, DiskError, SyncJob};

mod spare;

/// Files shorter than this are written through: small files (consumer state, metadata) are
/// rewritten whole, and a reservation would waste more space than the buffer saves.
const BUFFER_FROM: u64 = 64 * 1024;
/// Buffered bytes are written out once this many wait, to bound memory per file.
const FLUSH_AT: usize = 1024 * 1024;
/// The most space reserved ahead of a file's end at a time.
const RESERVE_MAX: u64 = 1024 * 1024;

/// One open file: its handle, and the appends not yet handed to the OS.
#[derive(Debug)]
struct Handle {
    file: File,
    /// Logical length: what was appended, whether the OS has it or `buf` does. A pre-zeroed
    /// file is longer on disk.
    len: u64,
    /// Appended bytes waiting to be written; they belong right after the OS's end.
    buf: Vec<u8>,
    /// Space up to here cannot run out (zeros written ahead, or a pre-zeroed block);
    /// `len` never passes it while `buf` holds data.
    reserved: u64,
}

impl Handle {
    fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(Self {
            file,
            len,
            buf: Vec::new(),
            reserved: len,
        })
    }

    /// Where the OS's copy ends.
    fn written(&self) -> u64 {
        self.len - self.buf.len() as u64
    }

    /// Hands the buffer to the OS. Any failure is I/O (see the module docs).
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let at = self.written();
        let r = self.file.write_all_at(&self.buf, at);
        self.buf.clear();
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                // Unknown how much landed: the store freezes on this error, and a truncate
                // or reopen measures the file again.
                self.len = at;
                Err(io::Error::other(format!("writing reserved bytes: {e}")))
            }
        }
    }

    /// Tries to make room for `more` bytes past `len` without a later ENOSPC, by writing
    /// zeros ahead of the appends (see the module docs).
    fn reserve(&mut self, more: u64) -> bool {
        if self.len + more <= self.reserved {
            return true;
        }
        // Ahead by a quarter of the file, within bounds: small files waste little.
        let ahead = (self.len / 4).clamp(BUFFER_FROM, RESERVE_MAX).max(more);
        // Nothing real lies past the OS's copy, the buffer or what is already zeroed.
        let from = self.reserved.max(self.len);
        let to = self.len + ahead;
        match write_zeros(&self.file, from, to) {
            Ok(()) => {
                self.reserved = to;
                true
            }
            Err(_) => {
                // ENOSPC and the rest: this append goes through the plain path, which
                // reports them as it always did. Whatever zeros landed are past `len`.
                self.reserved = self.reserved.max(self.len);
                false
            }
        }
    }

    fn append(&mut self, data: &[u8], buffered: bool) -> io::Result<u64> {
        let at = self.len;
        let more = data.len() as u64;
        let room =
            self.len + more <= self.reserved || (self.len >= BUFFER_FROM && self.reserve(more));
        if buffered && room {
            self.buf.extend_from_slice(data);
            self.len += data.len() as u64;
            if self.buf.len() >= FLUSH_AT {
                self.flush()?;
            }
            return Ok(at);
        }
        self.flush()?;
        if let Err(e) = self.file.write_all_at(data, at) {
            // A short write may have landed: the store truncates back to `at`. Past the
            // zeros laid out ahead the file says how far it got; inside them, nothing moved.
            self.len = match self.file.metadata() {
                Ok(m) if m.len() > self.reserved => m.len(),
                _ => at,
            };
            return Err(e);
        }
        self.len += data.len() as u64;
        Ok(at)
    }

    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        if offset.saturating_add(len as u64) > self.len {
            // Past what was appended (a pre-zeroed file has more bytes on disk).
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let written = self.written();
        if offset >= written {
            // Entirely in the buffer (or past the end).
            let start = (offset - written) as usize;
            return match self.buf.get(start..start + len) {
                Some(b) => Ok(b.to_vec()),
                None => Err(io::ErrorKind::UnexpectedEof.into()),
            };
        }
        if offset + len as u64 > written {
            self.flush()?;
        }
        let mut out = vec![0; len];
        self.file.read_exact_at(&mut out, offset)?;
        Ok(out)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Closing a file hands its appends to the OS, buffered or not.
        if let Err(e) = self.flush() {
            tracing::warn!("dropping buffered appends: {e}");
        }
    }
}

/// Writes zeros over `from..to` of `file`.
fn write_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// A disk rooted at a directory; caches one open handle per file.
#[derive(Debug)]
pub(crate) struct FsDisk {
    root: PathBuf,
    files: Mutex<HashMap<String, Handle>>,
    /// Buffer appends until `sync` (see the module docs).
    buffered: bool,
    /// Pre-zeroed next blocks (buffered mode only).
    spares: spare::Spares,
}

fn map(e: &io::Error, path: &str) -> DiskError {
    if e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
        DiskError::NoSpace
    } else if e.kind() == io::ErrorKind::NotFound {
        DiskError::NotFound(path.to_owned())
    } else if e.kind() == io::ErrorKind::UnexpectedEof {
        DiskError::ShortRead
    } else {
        DiskError::Io(format!("{path}: {e}"))
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl FsDisk {
    /// A disk under `root`; `buffered` when every ack waits for a `sync`.
    pub(crate) fn new(root: PathBuf, buffered: bool) -> Self {
        Self {
            root,
            files: Mutex::new(HashMap::new()),
            buffered,
            spares: spare::Spares::default(),
        }
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<String, Handle>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the cached handle of `path`, opening it (read + append) if needed.
    fn with_file<T>(
        &self,
        path: &str,
        f: impl FnOnce(&mut Handle) -> io::Result<T>,
    ) -> Result<T, DiskError> {
        let mut files = self.handles();
        if !files.contains_key(path) {
            let h = Handle::open(&self.full(path)).map_err(|e| map(&e, path))?;
            files.insert(path.to_owned(), h);
        }
        let h = files
            .get_mut(path)
            .ok_or_else(|| DiskError::NotFound(path.to_owned()))?;
        f(h).map_err(|e| map(&e, path))
    }

    /// Closes the handle of `path`, handing its buffered appends to the OS first and
    /// cutting the zeros laid out ahead (a closed file's length is what the file says).
    fn close(&self, path: &str) -> Result<(), DiskError> {
        let Some(mut h) = self.handles().remove(path) else {
            return Ok(());
        };
        h.flush().map_err(|e| map(&e, path))?;
        if h.reserved > h.len {
            h.file.set_len(h.len).map_err(|e| map(&e, path))?;
        }
        Ok(())
    }

    /// Renames the ready spare of `path`'s directory to `path`; false if there is none (or
    /// it is gone: a stream removal deletes it with the rest of the directory).
    fn use_spare(&self, path: &str) -> bool {
        let Some((dir, _)) = path.rsplit_once('/') else {
            return false;
        };
        if !path.ends_with(".blk") || !self.spares.take(dir) {
            return false;
        }
        let full = self.full(path);
        let Ok(()) = fs::rename(self.full(dir).join(spare::SPARE_NAME), &full) else {
            return false;
        };
        match OpenOptions::new().read(true).write(true).open(&full) {
            Ok(file) => {
                let reserved = file.metadata().map_or(0, |m| m.len());
                let h = Handle {
                    file,
                    len: 0,
                    buf: Vec::new(),
                    reserved,
                };
                self.handles().insert(path.to_owned(), h);
                true
            }
            Err(e) => {
                tracing::debug!("opening a spare block as {path}: {e}");
                false
            }
        }
    }

    /// Lays out the next block of `path`'s directory once `path` is a busy block.
    fn maybe_prepare_spare(&self, path: &str, len: u64) {
        if !self.buffered || len < spare::SPARE_FROM || !path.ends_with(".blk") {
            return;
        }
        if let Some((dir, _)) = path.rsplit_once('/') {
            self.spares.prepare(dir, &self.full(dir));
        }
    }

    fn parent_sync(&self, path: &str) -> Result<(), DiskError> {
        let full = self.full(path);
        let dir = full.parent().unwrap_or(&self.root);
        sync_dir(dir).map_err(|e| map(&e, path))
    }
}

impl Disk for FsDisk {
    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        let full = self.full(path);
        if let Some(dir) = full.parent() {
            fs::create_dir_all(dir).map_err(|e| map(&e, path))?;
        }
        // The old contents go, buffered ones too.
        if let Some(mut h) = self.handles().remove(path) {
            h.buf.clear();
        }
        if self.buffered && self.use_spare(path) {
            return self.parent_sync(path);
        }
        let f = File::create(&full).map_err(|e| map(&e, path))?;
        f.sync_all().map_err(|e| map(&e, path))?;
        self.parent_sync(path)
    }

    fn append(&mut self, path: &str, data: &[u8]) -> Result<u64, DiskError> {
        let buffered = self.buffered;
        let at = self.with_file(path, |h| h.append(data, buffered))?;
        let end = at + data.len() as u64;
        // Once per block, as it crosses the mark.
        if at < spare::SPARE_FROM && end >= spare::SPARE_FROM {
            self.maybe_prepare_spare(path, end);
        }
        Ok(at)
    }

    fn read_at(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        self.with_file(path, |h| h.read_at(offset, len))
    }

    fn len(&self, path: &str) -> Result<u64, DiskError> {
        if let Some(h) = self.handles().get(path) {
            return Ok(h.len);
        }
        fs::metadata(self.full(path))
            .map(|m| m.len())
            .map_err(|e| map(&e, path))
    }

    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        // A failed fsync is reported as Io and the store freezes: never retried.
        self.with_file(path, |h| {
            h.flush()?;
            h.file.sync_data()
        })
    }

    fn sync_later(&mut self, path: &str) -> Result<Option<SyncJob>, DiskError> {
        // The OS gets every byte now; the fsync runs on a second handle to the same file,
        // on whichever thread runs the job.
        let file = self.with_file(path, |h| {
            h.flush()?;
            h.file.try_clone()
        })?;
        let path = path.to_owned();
        Ok(Some(Box::new(move || {
            file.sync_data().map_err(|e| map(&e, &path))
        })))
    }

    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.with_file(path, |h| {
            h.flush()?;
            h.file.set_len(len)?;
            h.file.sync_all()?;
            h.len = len;
            // Truncation may free the reserved blocks past the end: reserve again.
            h.reserved = len;
            Ok(())
        })
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.close(from)?;
        self.close(to)?;
        let dest = self.full(to);
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).map_err(|e| map(&e, to))?;
        }
        fs::rename(self.full(from), &dest).map_err(|e| map(&e, from))?;
        self.parent_sync(to)?;
        self.parent_sync(from)
    }

    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        if let Some(mut h) = self.handles().remove(path) {
            h.buf.clear();
        }
        fs::remove_file(self.full(path)).map_err(|e| map(&e, path))?;
        self.parent_sync(path)
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, DiskError> {
        let rd = match fs::read_dir(self.full(dir)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(map(&e, dir)),
        };
        let mut names: Vec<String> = rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file's bytes up to `len`, checking that everything after is zeros laid out ahead.
    fn appended(path: &Path, len: usize) -> Vec<u8> {
        let mut bytes = fs::read(path).unwrap();
        assert!(bytes.len() >= len, "{} is short", path.display());
        assert!(bytes[len..].iter().all(|b| *b == 0), "not zeros past {len}");
        bytes.truncate(len);
        bytes
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("natsd-fsdisk-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn append_read_sync_rename_list() {
        for buffered in [false, true] {
            let dir = scratch(&format!("basic-{buffered}"));
            let mut d = FsDisk::new(dir.clone(), buffered);
            d.create("a/b.blk").unwrap();
            assert_eq!(d.append("a/b.blk", b"hello").unwrap(), 0);
            let job = d.sync_later("a/b.blk").unwrap().expect("a deferred fsync");
            assert_eq!(d.append("a/b.blk", b" world").unwrap(), 5);
            std::thread::spawn(job).join().unwrap().unwrap();
            d.sync("a/b.blk").unwrap();
            assert_eq!(d.read_at("a/b.blk", 6, 5).unwrap(), b"world");
            assert_eq!(d.len("a/b.blk").unwrap(), 11);
            d.truncate("a/b.blk", 5).unwrap();
            assert_eq!(d.len("a/b.blk").unwrap(), 5);
            d.rename("a/b.blk", "a/c.blk").unwrap();
            assert_eq!(d.list("a").unwrap(), vec!["c.blk".to_owned()]);
            assert_eq!(d.list("missing").unwrap(), Vec::<String>::new());
            assert_eq!(d.read_at("a/c.blk", 0, 9), Err(DiskError::ShortRead));
            d.remove("a/c.blk").unwrap();
            assert!(d.list("a").unwrap().is_empty());
            let _ = fs::remove_dir_all(dir);
        }
    }

    /// Past `BUFFER_FROM`, appends wait in memory until `sync`, yet every read, length and
    /// reopen sees them in order.
    #[test]
    fn buffered_appends_are_visible_and_reach_the_file() {
        let dir = scratch("buffered");
        let mut d = FsDisk::new(dir.clone(), true);
        d.create("s/1.blk").unwrap();
        let big = vec![7u8; BUFFER_FROM as usize];
        assert_eq!(d.append("s/1.blk", &big).unwrap(), 0);
        let mut expect = big.clone();
        for i in 0..100u8 {
            let rec = vec![i; 100];
            let at = d.append("s/1.blk", &rec).unwrap();
            assert_eq!(at, expect.len() as u64);
            expect.extend_from_slice(&rec);
        }
        // The OS has only the unbuffered part until the sync, then zeros laid out ahead.
        let on_disk = fs::read(dir.join("s/1.blk")).unwrap();
        assert_eq!(on_disk[..BUFFER_FROM as usize], big[..]);
        assert!(on_disk[BUFFER_FROM as usize..].iter().all(|b| *b == 0));
        assert_eq!(d.len("s/1.blk").unwrap(), expect.len() as u64);
        // From the buffer, and across the buffer's start.
        let end = expect.len() as u64;
        assert_eq!(
            d.read_at("s/1.blk", end - 100, 100).unwrap(),
            vec![99u8; 100]
        );
        assert_eq!(d.read_at("s/1.blk", end, 1), Err(DiskError::ShortRead));
        let spanning = d.read_at("s/1.blk", BUFFER_FROM - 10, 20).unwrap();
        assert_eq!(spanning, expect[BUFFER_FROM as usize - 10..][..20]);
        d.append("s/1.blk", b"tail").unwrap();
        expect.extend_from_slice(b"tail");
        d.sync("s/1.blk").unwrap();
        assert_eq!(appended(&dir.join("s/1.blk"), expect.len()), expect);
        // A truncate cuts buffered and written bytes alike.
        d.append("s/1.blk", b"more").unwrap();
        d.truncate("s/1.blk", BUFFER_FROM + 50).unwrap();
        assert_eq!(d.len("s/1.blk").unwrap(), BUFFER_FROM + 50);
        assert_eq!(
            fs::read(dir.join("s/1.blk")).unwrap(),
            expect[..BUFFER_FROM as usize + 50]
        );
        let _ = fs::remove_dir_all(dir);
    }

    /// Dropping the disk (or renaming a file) hands buffered appends to the OS; `create`
    /// and `remove` discard them with the file.
    #[test]
    fn close_flushes_and_create_discards() {
        let dir = scratch("close");
        let big = vec![1u8; BUFFER_FROM as usize];
        {
            let mut d = FsDisk::new(dir.clone(), true);
            d.create("x.blk").unwrap();
            d.append("x.blk", &big).unwrap();
            d.append("x.blk", b"buffered").unwrap();
            d.rename("x.blk", "y.blk").unwrap();
            assert_eq!(d.len("y.blk").unwrap(), BUFFER_FROM + 8);
            d.append("y.blk", b"again").unwrap();
            d.create("z.blk").unwrap();
            d.append("z.blk", &big).unwrap();
            d.append("z.blk", b"gone").unwrap();
            d.create("z.blk").unwrap();
            assert_eq!(d.len("z.blk").unwrap(), 0);
        }
        let y = appended(&dir.join("y.blk"), BUFFER_FROM as usize + 13);
        assert_eq!(&y[BUFFER_FROM as usize..], b"bufferedagain");
        assert!(fs::read(dir.join("z.blk")).unwrap().is_empty());
        let _ = fs::remove_dir_all(dir);
    }

    /// A busy block gets its successor laid out ahead: the next `create` there takes a
    /// synced file of zeros, appends overwrite it in place, and only appended bytes can be
    /// read. Reopened, the file shows its full length (the store's recovery cuts the zeros).
    #[test]
    fn busy_blocks_get_a_pre_zeroed_successor() {
        let dir = scratch("spare");
        let mut d = FsDisk::new(dir.clone(), true);
        d.create("s/1.blk").unwrap();
        d.append("s/1.blk", &vec![3u8; spare::SPARE_FROM as usize])
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !d.spares.is_ready("s") {
            assert!(std::time::Instant::now() < deadline, "no spare laid out");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        d.create("s/2.blk").unwrap();
        assert_eq!(
            fs::metadata(dir.join("s/2.blk")).unwrap().len(),
            spare::SPARE_LEN
        );
        assert!(!dir.join("s").join(spare::SPARE_NAME).exists());
        assert_eq!(d.len("s/2.blk").unwrap(), 0);
        assert_eq!(d.append("s/2.blk", b"header").unwrap(), 0);
        assert_eq!(d.append("s/2.blk", b"record").unwrap(), 6);
        assert_eq!(d.read_at("s/2.blk", 0, 12).unwrap(), b"headerrecord");
        assert_eq!(d.read_at("s/2.blk", 6, 7), Err(DiskError::ShortRead));
        d.sync("s/2.blk").unwrap();
        drop(d);
        let bytes = fs::read(dir.join("s/2.blk")).unwrap();
        assert_eq!(bytes.len() as u64, spare::SPARE_LEN);
        assert_eq!(&bytes[..12], b"headerrecord");
        assert!(bytes[12..].iter().all(|b| *b == 0));
        let mut d = FsDisk::new(dir.clone(), true);
        assert_eq!(d.len("s/2.blk").unwrap(), spare::SPARE_LEN);
        d.truncate("s/2.blk", 12).unwrap();
        assert_eq!(d.append("s/2.blk", b"!").unwrap(), 12);
        d.sync("s/2.blk").unwrap();
        assert_eq!(fs::read(dir.join("s/2.blk")).unwrap(), b"headerrecord!");
        let _ = fs::remove_dir_all(dir);
    }

    /// Without buffering (`sync_interval`), nothing is laid out ahead.
    #[test]
    fn unbuffered_disks_lay_out_nothing() {
        let dir = scratch("nospare");
        let mut d = FsDisk::new(dir.clone(), false);
        d.create("s/1.blk").unwrap();
        d.append("s/1.blk", &vec![3u8; spare::SPARE_FROM as usize])
            .unwrap();
        d.create("s/2.blk").unwrap();
        assert_eq!(fs::metadata(dir.join("s/2.blk")).unwrap().len(), 0);
        assert!(!dir.join("s").join(spare::SPARE_NAME).exists());
        let _ = fs::remove_dir_all(dir);
    }
}
