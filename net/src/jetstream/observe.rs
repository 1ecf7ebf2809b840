//! A [`StoreFactory`] wrapper that looks at every store as it is opened and reports the damage
//! recovery found (flipped bits, truncated or missing blocks): logged, and kept for the
//! embedding API, so that lost data is never silent.

use std::sync::{Arc, Mutex};

use natsd_core::jetstream::api::StreamConfig;
use natsd_core::jetstream::factory::StoreFactory;
use natsd_core::jetstream::store::{StoreConfig, StoreError, StreamStore};

use crate::server::lock;

/// Damage recovery found in one stream's store when JetStream opened it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamDamage {
    /// The account.
    pub account: String,
    /// The stream.
    pub stream: String,
    /// Damaged records found and skipped.
    pub corrupt_records: u64,
    /// Sequences known to have held a message the damage destroyed.
    pub lost_msgs: u64,
}

/// Reports damage of the stores `inner` opens into `damage`.
pub(super) struct Observed {
    inner: Box<dyn StoreFactory>,
    account: String,
    damage: Arc<Mutex<Vec<StreamDamage>>>,
}

impl Observed {
    pub(super) fn new(
        inner: Box<dyn StoreFactory>,
        account: &str,
        damage: Arc<Mutex<Vec<StreamDamage>>>,
    ) -> Self {
        Self {
            inner,
            account: account.to_owned(),
            damage,
        }
    }
}

impl StoreFactory for Observed {
    fn open(
        &mut self,
        cfg: &StreamConfig,
        store: StoreConfig,
    ) -> Result<Box<dyn StreamStore + Send>, StoreError> {
        let s = self.inner.open(cfg, store)?;
        let st = s.state();
        if st.corrupt_records > 0 || st.lost_msgs > 0 {
            tracing::error!(
                account = %self.account,
                stream = %cfg.name,
                corrupt_records = st.corrupt_records,
                lost_msgs = st.lost_msgs,
                "JetStream: stream recovered with damaged data"
            );
            let d = StreamDamage {
                account: self.account.clone(),
                stream: cfg.name.clone(),
                corrupt_records: st.corrupt_records,
                lost_msgs: st.lost_msgs,
            };
            let mut all = lock(&self.damage);
            all.retain(|x| x.account != d.account || x.stream != d.stream);
            all.push(d);
        }
        Ok(s)
    }

    fn remove(&mut self, name: &str) {
        self.inner.remove(name);
    }

    fn save_meta(&mut self, name: &str, meta: &[u8]) -> Result<(), StoreError> {
        self.inner.save_meta(name, meta)
    }

    fn load_metas(&mut self) -> Vec<(String, Vec<u8>)> {
        self.inner.load_metas()
    }

    fn save_consumer(&mut self, stream: &str, name: &str, meta: &[u8]) -> Result<(), StoreError> {
        self.inner.save_consumer(stream, name, meta)
    }

    fn remove_consumer(&mut self, stream: &str, name: &str) {
        self.inner.remove_consumer(stream, name);
    }

    fn load_consumers(&mut self, stream: &str) -> Vec<(String, Vec<u8>)> {
        self.inner.load_consumers(stream)
    }

    fn save_consumer_state(
        &mut self,
        stream: &str,
        name: &str,
        state: &[u8],
    ) -> Result<(), StoreError> {
        self.inner.save_consumer_state(stream, name, state)
    }

    fn load_consumer_state(&mut self, stream: &str, name: &str) -> Option<Vec<u8>> {
        self.inner.load_consumer_state(stream, name)
    }
}
