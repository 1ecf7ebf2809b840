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
        let dir = format!("streams/{name}");
        for f in d.list(&dir).unwrap_or_default() {
            let _ = d.remove(&format!("{dir}/{f}"));
        }
        let _ = d.remove(&format!("meta/{name}.json"));
    }

    fn save_meta(&mut self, name: &str, meta: &[u8]) -> Result<(), StoreError> {
        let mut d = (self.make)();
        let tmp = format!("meta/{name}.json.tmp");
        d.create(&tmp).map_err(|e| disk_err(&e))?;
        d.append(&tmp, meta).map_err(|e| disk_err(&e))?;
        d.sync(&tmp).map_err(|e| disk_err(&e))?;
        d.rename(&tmp, &format!("meta/{name}.json"))
            .map_err(|e| disk_err(&e))
    }

    fn load_metas(&mut self) -> Vec<(String, Vec<u8>)> {
        let d = (self.make)();
        let mut out = Vec::new();
        for f in d.list("meta").unwrap_or_default() {
            let Some(name) = f.strip_suffix(".json") else {
                continue;
            };
            let path = format!("meta/{f}");
            let Ok(len) = d.len(&path) else { continue };
            if let Ok(bytes) = d.read_at(&path, 0, usize::try_from(len).unwrap_or(0)) {
                out.push((name.to_owned(), bytes));
            }
        }
        out
    }
}
