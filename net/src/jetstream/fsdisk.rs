//! [`Disk`] over `std::fs`, honouring the duties listed in core's `store/disk.rs`: metadata
//! changes are durable on return (parent directory fsync), appends only after `sync`, a failed
//! fsync is reported and never retried as if transient, ENOSPC is `NoSpace`.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use natsd_core::jetstream::store::{Disk, DiskError};

/// A disk rooted at a directory; caches one open handle per file.
#[derive(Debug)]
pub(crate) struct FsDisk {
    root: PathBuf,
    files: Mutex<HashMap<String, File>>,
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
    pub(crate) fn new(root: PathBuf) -> Self {
        Self {
            root,
            files: Mutex::new(HashMap::new()),
        }
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<String, File>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the cached handle of `path`, opening it (read + append) if needed.
    fn with_file<T>(
        &self,
        path: &str,
        f: impl FnOnce(&mut File) -> io::Result<T>,
    ) -> Result<T, DiskError> {
        let mut files = self.handles();
        if !files.contains_key(path) {
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(self.full(path))
                .map_err(|e| map(&e, path))?;
            files.insert(path.to_owned(), file);
        }
        let file = files
            .get_mut(path)
            .ok_or_else(|| DiskError::NotFound(path.to_owned()))?;
        f(file).map_err(|e| map(&e, path))
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
        self.handles().remove(path);
        let f = File::create(&full).map_err(|e| map(&e, path))?;
        f.sync_all().map_err(|e| map(&e, path))?;
        self.parent_sync(path)
    }

    fn append(&mut self, path: &str, data: &[u8]) -> Result<u64, DiskError> {
        self.with_file(path, |f| {
            let at = f.metadata()?.len();
            f.write_all(data)?;
            Ok(at)
        })
    }

    fn read_at(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        self.with_file(path, |f| {
            let mut buf = vec![0; len];
            f.read_exact_at(&mut buf, offset)?;
            Ok(buf)
        })
    }

    fn len(&self, path: &str) -> Result<u64, DiskError> {
        fs::metadata(self.full(path))
            .map(|m| m.len())
            .map_err(|e| map(&e, path))
    }

    fn sync(&mut self, path: &str) -> Result<(), DiskError> {
        // A failed fsync is reported as Io and the store freezes: never retried.
        self.with_file(path, |f| f.sync_data())
    }

    fn truncate(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.with_file(path, |f| {
            f.set_len(len)?;
            f.sync_all()
        })
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        {
            let mut files = self.handles();
            files.remove(from);
            files.remove(to);
        }
        let dest = self.full(to);
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).map_err(|e| map(&e, to))?;
        }
        fs::rename(self.full(from), &dest).map_err(|e| map(&e, from))?;
        self.parent_sync(to)?;
        self.parent_sync(from)
    }

    fn remove(&mut self, path: &str) -> Result<(), DiskError> {
        self.handles().remove(path);
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

    #[test]
    fn append_read_sync_rename_list() {
        let dir = std::env::temp_dir().join(format!("natsd-fsdisk-{}", std::process::id()));
        let mut d = FsDisk::new(dir.clone());
        d.create("a/b.blk").unwrap();
        assert_eq!(d.append("a/b.blk", b"hello").unwrap(), 0);
        assert_eq!(d.append("a/b.blk", b" world").unwrap(), 5);
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
