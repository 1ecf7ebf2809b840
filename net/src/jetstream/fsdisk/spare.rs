//! Pre-zeroed block files for busy streams.
//!
//! Appending to a file changes its size, so every `fdatasync` after an append also commits
//! the inode through the file system's journal: two writes and a cache flush. Overwriting
//! bytes that already exist on disk needs none of that, and on the hosts this project is
//! measured on such an fdatasync takes half the time and a third of the CPU. So once a
//! stream's block has grown past [`SPARE_FROM`], a background thread lays out the next block
//! ahead of time: a file of zeros, written and synced, waiting under [`SPARE_NAME`] in the
//! stream's directory. The next `create` of a block there renames it into place.
//!
//! Nothing depends on the spare being there: without one, `create` makes an empty file as
//! before. After a restart, whatever zeros were not yet overwritten are cut by the store's
//! recovery (an all-zero tail is unused space; see core's `disk` module docs), and a spare
//! left from before is laid out again from scratch.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use natsd_core::jetstream::store::DEFAULT_BLOCK_SIZE;

/// A block this long has a busy stream behind it: lay out the next one.
pub(super) const SPARE_FROM: u64 = 1024 * 1024;
/// The spare's file name inside a stream's directory (the store only reads `*.blk`).
pub(super) const SPARE_NAME: &str = "spare.zeros";
/// How long a spare is: one block.
pub(super) const SPARE_LEN: u64 = DEFAULT_BLOCK_SIZE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Filling,
    Ready,
}

/// The spares of one disk, by directory (as the store names it).
#[derive(Debug, Default, Clone)]
pub(super) struct Spares {
    dirs: Arc<Mutex<HashMap<String, State>>>,
}

impl Spares {
    fn dirs(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts laying out a spare in `dir` (whose full path is `full_dir`) unless one is
    /// there or on its way.
    pub(super) fn prepare(&self, dir: &str, full_dir: &Path) {
        {
            let mut dirs = self.dirs();
            if dirs.contains_key(dir) {
                return;
            }
            dirs.insert(dir.to_owned(), State::Filling);
        }
        let (me, key, path) = (self.clone(), dir.to_owned(), full_dir.join(SPARE_NAME));
        let spawned = std::thread::Builder::new()
            .name("jetstream-prealloc".into())
            .spawn(move || match fill(&path, SPARE_LEN) {
                Ok(()) if orphaned(&path) => {
                    // The stream went while this was written: take the file with it.
                    let _ = std::fs::remove_file(&path);
                    me.dirs().remove(&key);
                }
                Ok(()) => {
                    me.dirs().insert(key, State::Ready);
                }
                Err(e) => {
                    // Only speed is lost; try again with the next block.
                    tracing::debug!("laying out a spare block in {}: {e}", path.display());
                    me.dirs().remove(&key);
                }
            });
        if spawned.is_err() {
            self.dirs().remove(dir);
        }
    }

    /// Takes the ready spare of `dir`, if there is one: the caller renames it into place.
    pub(super) fn take(&self, dir: &str) -> bool {
        let mut dirs = self.dirs();
        if dirs.get(dir) == Some(&State::Ready) {
            dirs.remove(dir);
            true
        } else {
            false
        }
    }
}

/// Writes `len` zeros to `path` and syncs them: the blocks are allocated and initialised,
/// and the size is on disk.
fn fill(path: &Path, len: u64) -> io::Result<()> {
    const CHUNK: usize = 1024 * 1024;
    let zeros = vec![0u8; CHUNK];
    let mut f = File::create(path)?;
    let mut left = len;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}

/// No block is left beside the spare at `path`: its stream was removed.
fn orphaned(path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return true;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    !entries
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".blk"))
}

#[cfg(test)]
impl Spares {
    /// Is a spare ready in `dir`?
    pub(super) fn is_ready(&self, dir: &str) -> bool {
        self.dirs().get(dir) == Some(&State::Ready)
    }
}
