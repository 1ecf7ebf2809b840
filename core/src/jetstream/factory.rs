//! Where streams keep their data and configs: a [`StoreFactory`] over any [`Disk`].

use super::api::StreamConfig;
use super::store::{
    Disk, DiskError, FileStore, FileStoreConfig, MemStore, StoreConfig, StoreError, StreamStore,
    SyncPolicy,
};

/// Opens, removes and remembers stream stores.
pub trait StoreFactory: Send {
    /// Opens (or creates) the store of stream `cfg.name`.
    fn open(
        &mut self,
        cfg: &StreamConfig,
        store: StoreConfig,
    ) -> Result<Box<dyn StreamStore + Send>, StoreError>;
    /// Removes everything a stream kept.
    fn remove(&mut self, name: &str);
    /// Durably records a stream's config and creation time.
    fn save_meta(&mut self, name: &str, meta: &[u8]) -> Result<(), StoreError>;
    /// Every recorded stream meta.
    fn load_metas(&mut self) -> Vec<(String, Vec<u8>)>;
    /// Durably records a durable consumer's state.
    fn save_consumer(&mut self, stream: &str, name: &str, meta: &[u8]) -> Result<(), StoreError>;
    /// Forgets a consumer.
    fn remove_consumer(&mut self, stream: &str, name: &str);
    /// Every recorded consumer of `stream`.
    fn load_consumers(&mut self, stream: &str) -> Vec<(String, Vec<u8>)>;
    /// Durably replaces a durable consumer's delivery state (old or new after a crash).
    fn save_consumer_state(
        &mut self,
        stream: &str,
        name: &str,
        state: &[u8],
    ) -> Result<(), StoreError>;
    /// A durable consumer's saved delivery state, if it has one.
    fn load_consumer_state(&mut self, stream: &str, name: &str) -> Option<Vec<u8>>;
}

/// A factory making file stores on disks from `make` (each store owns its disk handle).
#[derive(Debug)]
pub struct DiskFactory<D, F> {
    make: F,
    sync: SyncPolicy,
    block_size: u64,
    _d: std::marker::PhantomData<fn() -> D>,
}

impl<D: Disk + Send + 'static, F: FnMut() -> D + Send> DiskFactory<D, F> {
    /// A factory; `sync` is how file stores make data durable.
    pub fn new(make: F, sync: SyncPolicy) -> Self {
        Self {
            make,
            sync,
            block_size: super::store::DEFAULT_BLOCK_SIZE,
            _d: std::marker::PhantomData,
        }
    }

    /// Smaller blocks (tests).
    pub fn with_block_size(mut self, n: u64) -> Self {
        self.block_size = n;
        self
    }
}

fn disk_err(e: &DiskError) -> StoreError {
    match e {
        DiskError::NoSpace => StoreError::InsufficientResources,
        e => StoreError::Io(e.to_string()),
    }
}

impl<D: Disk + Send + 'static, F: FnMut() -> D + Send> StoreFactory for DiskFactory<D, F> {
    fn open(
        &mut self,
        cfg: &StreamConfig,
        store: StoreConfig,
    ) -> Result<Box<dyn StreamStore + Send>, StoreError> {
        if cfg.storage == "memory" {
            return Ok(Box::new(MemStore::new(store)));
        }
        let fcfg = FileStoreConfig {
            block_size: self.block_size,
            sync: self.sync,
        };
        let dir = format!("streams/{}", cfg.name);
        Ok(Box::new(FileStore::open((self.make)(), &dir, store, fcfg)?))
    }

    fn remove(&mut self, name: &str) {
        let mut d = (self.make)();
        for dir in [format!("streams/{name}"), format!("consumers/{name}")] {
            for f in d.list(&dir).unwrap_or_default() {
                let _ = d.remove(&format!("{dir}/{f}"));
            }
        }
        let _ = d.remove(&format!("meta/{name}.json"));
    }

    fn save_meta(&mut self, name: &str, meta: &[u8]) -> Result<(), StoreError> {
        self.write_atomic(&format!("meta/{name}.json"), meta)
    }

    fn load_metas(&mut self) -> Vec<(String, Vec<u8>)> {
        self.read_dir("meta")
    }

    fn save_consumer(&mut self, stream: &str, name: &str, meta: &[u8]) -> Result<(), StoreError> {
        self.write_atomic(&format!("consumers/{stream}/{name}.json"), meta)
    }

    fn remove_consumer(&mut self, stream: &str, name: &str) {
        let mut d = (self.make)();
        let _ = d.remove(&format!("consumers/{stream}/{name}.json"));
        let _ = d.remove(&format!("consumers/{stream}/{name}.state"));
    }

    fn load_consumers(&mut self, stream: &str) -> Vec<(String, Vec<u8>)> {
        self.read_dir(&format!("consumers/{stream}"))
    }

    fn save_consumer_state(
        &mut self,
        stream: &str,
        name: &str,
        state: &[u8],
    ) -> Result<(), StoreError> {
        self.write_atomic(&format!("consumers/{stream}/{name}.state"), state)
    }

    fn load_consumer_state(&mut self, stream: &str, name: &str) -> Option<Vec<u8>> {
        let d = (self.make)();
        let path = format!("consumers/{stream}/{name}.state");
        let len = d.len(&path).ok()?;
        d.read_at(&path, 0, usize::try_from(len).ok()?).ok()
    }
}

impl<D: Disk + Send + 'static, F: FnMut() -> D + Send> DiskFactory<D, F> {
    /// Writes a small file so that a crash leaves the old or the new version, never a mix.
    fn write_atomic(&mut self, path: &str, data: &[u8]) -> Result<(), StoreError> {
        let mut d = (self.make)();
        let tmp = format!("{path}.tmp");
        d.create(&tmp).map_err(|e| disk_err(&e))?;
        d.append(&tmp, data).map_err(|e| disk_err(&e))?;
        d.sync(&tmp).map_err(|e| disk_err(&e))?;
        d.rename(&tmp, path).map_err(|e| disk_err(&e))
    }

    /// The `*.json` files of `dir` by name (without the suffix).
    fn read_dir(&mut self, dir: &str) -> Vec<(String, Vec<u8>)> {
        let d = (self.make)();
        let mut out = Vec::new();
        for f in d.list(dir).unwrap_or_default() {
            let Some(name) = f.strip_suffix(".json") else {
                continue;
            };
            let path = format!("{dir}/{f}");
            let Ok(len) = d.len(&path) else { continue };
            if let Ok(bytes) = d.read_at(&path, 0, usize::try_from(len).unwrap_or(0)) {
                out.push((name.to_owned(), bytes));
            }
        }
        out
    }
}
