//! The sans-IO seam between a [`FileStore`](super::FileStore) and the file system.
//!
//! Synchronous on purpose: the store runs on a thread the shell dedicates to it (or inside the
//! simulation), and a blocking `sync` is exactly the point where an ack waits.
//!
//! # What an implementation must guarantee
//!
//! The store's crash reasoning rests on these rules; [`MemDisk`](super::MemDisk) models them
//! and the production `FsDisk` (in the `natsd` crate, over `std::fs`) must honour them:
//!
//! * **Metadata is durable when the call returns.** `create`, `rename`, `remove` and
//!   `truncate` are durable on return. `FsDisk` creates missing parent directories, and
//!   after `create`/`rename`/`remove` it fsyncs the *parent directory* (`File::open(dir)` +
//!   `sync_all`), after `truncate` it calls `set_len` then `sync_all` on the file. Without the
//!   directory fsync a power loss can make a freshly created block file vanish even though
//!   its contents were synced.
//! * **Appended bytes are durable only after `sync`** (`FsDisk`: `File::sync_data`; on macOS
//!   `sync_data` is not a barrier, so it must use `F_FULLFSYNC`). Until then a crash may keep
//!   none, all, or a prefix of them, possibly with zeroed or garbage bytes at the end.
//! * **A failed `sync` is final.** After fsync reports EIO the kernel may already have dropped
//!   the dirty pages (the 2018 "fsyncgate"); `FsDisk` must report it and never retry it as if it
//!   were transient. The store freezes writes when it sees it.
//! * **ENOSPC is reported as [`DiskError::NoSpace`]**, and a short append leaves the file at some
//!   length between the old and the new one (the store truncates back).
//! * `append` writes at the current end (`O_APPEND` or a tracked length with `write_all_at`);
//!   `read_at` must not move that position (`pread`, `FileExt::read_exact_at`). `FsDisk` may
//!   cache open handles; `read_at` takes `&self`, so such a cache needs interior mutability.
//! * `list` returns the plain file names in a directory, sorted; a missing directory is empty.
//! * **A block file may be laid out ahead with zeros.** `FsDisk` hands out pre-zeroed,
//!   already synced files for new blocks of a busy stream, so that an fsync has only data to
//!   write (no size or extent change, which costs a journal commit). Its `len` is the
//!   logical one while the file is open, but after a restart the zeros are part of the file:
//!   recovery treats an all-zero tail as unused space, cuts it, and reports nothing.

/// Why a disk operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    /// ENOSPC: no space left on the device.
    #[error("no space left on device")]
    NoSpace,
    /// The file does not exist.
    #[error("file not found: {0}")]
    NotFound(String),
    /// A read past the end of the file.
    #[error("short read")]
    ShortRead,
    /// Any other I/O failure (EIO …).
    #[error("I/O error: {0}")]
    Io(String),
}

/// The durable half of a [`Disk::sync_later`]: an fsync that may run on another thread, so
/// the store's thread can go on appending the next batch meanwhile (pipelined group commit).
pub type SyncJob = Box<dyn FnOnce() -> Result<(), DiskError> + Send>;

/// The file operations a log-structured store needs, and no more.
///
/// Paths are `/`-separated and relative to the implementation's root.
pub trait Disk {
    /// Creates an empty file (truncating an existing one). Durable on return.
    fn create(&mut self, path: &str) -> Result<(), DiskError>;
    /// Appends `data` at the end of the file; returns the offset it was written at.
    /// Not durable until [`Disk::sync`].
    fn append(&mut self, path: &str, data: &[u8]) -> Result<u64, DiskError>;
    /// Reads exactly `len` bytes at `offset`.
    fn read_at(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError>;
    /// The file's current length, unsynced appends included.
    fn len(&self, path: &str) -> Result<u64, DiskError>;
    /// Makes every byte appended so far durable (fsync).
    fn sync(&mut self, path: &str) -> Result<(), DiskError>;
    /// Like [`Disk::sync`], but the fsync may come back as a job to run elsewhere: every byte
    /// appended so far is durable once the job returns `Ok`. Appends made meanwhile are not
    /// covered. The default syncs at once and returns no job (the simulation's disk does:
    /// its runs stay on one thread).
    fn sync_later(&mut self, path: &str) -> Result<Option<SyncJob>, DiskError> {
        self.sync(path).map(|()| None)
    }
    /// Cuts the file to `len` bytes. Durable on return.
    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError>;
    /// Renames a file, replacing `to` if it exists. Durable on return.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError>;
    /// Removes a file. Durable on return.
    fn remove(&mut self, path: &str) -> Result<(), DiskError>;
    /// The names of the files directly inside `dir`, sorted.
    fn list(&self, dir: &str) -> Result<Vec<String>, DiskError>;
}
