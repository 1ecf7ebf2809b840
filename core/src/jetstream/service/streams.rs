//! Streams: recovered at start, created, updated and deleted through the API, and looked up.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::{Entry, JetStream};
use crate::jetstream::advisory::Action;
use crate::jetstream::api::{err, rfc3339, ApiError, StreamConfig};
use crate::jetstream::consumer::ConsumerMeta;
use crate::jetstream::store::{StreamStore, UnixNanos};
use crate::jetstream::stream::{check_config, store_config, store_error, Stream};
use crate::subject;

#[derive(Serialize)]
struct Meta {
    created: UnixNanos,
    config: StreamConfig,
}

#[derive(serde::Deserialize)]
struct MetaIn {
    created: UnixNanos,
    config: StreamConfig,
    /// A restore was writing this stream when the server stopped (see `snapshot`).
    #[serde(default)]
    restoring: bool,
}

impl JetStream {
    /// Opens the streams (and their durable consumers) `metas` recorded.
    pub(super) fn recover_streams(&mut self, metas: Vec<(String, Vec<u8>)>) {
        for (name, bytes) in metas {
            let Ok(m) = serde_json::from_slice::<MetaIn>(&bytes) else {
                tracing::warn!("JetStream: unreadable config of stream {name:?}, skipped");
                continue;
            };
            if m.restoring {
                tracing::warn!("JetStream: restore of stream {name:?} was interrupted, removed");
                self.factory.remove(&name);
                continue;
            }
            match self.factory.open(&m.config, store_config(&m.config)) {
                Ok(store) => {
                    let mut consumers = BTreeMap::new();
                    for (cname, bytes) in self.factory.load_consumers(&name) {
                        match serde_json::from_slice::<ConsumerMeta>(&bytes) {
                            Ok(cm) => {
                                let st = self.factory.load_consumer_state(&name, &cname);
                                let (c, r) = crate::jetstream::consumer::state::restore_durable(
                                    cm,
                                    st,
                                    name.clone(),
                                    store.as_ref(),
                                );
                                if let Err(e) = r {
                                    tracing::error!("JetStream: damaged state of consumer {name}/{cname} ({e}): resuming at its ack floor");
                                    self.consumer_damage.push((name.clone(), cname.clone(), e));
                                }
                                consumers.insert(cname, c);
                            }
                            Err(e) => {
                                tracing::warn!("JetStream: unreadable consumer {name}/{cname}: {e}")
                            }
                        }
                    }
                    self.streams.insert(
                        name,
                        Entry {
                            stream: Stream::new(m.config, store, m.created),
                            consumers,
                        },
                    );
                }
                Err(e) => tracing::error!("JetStream: cannot open stream {name:?}: {e}"),
            }
        }
    }

    /// Creates (or idempotently re-creates) a stream.
    pub(crate) fn create_stream(
        &mut self,
        cfg: StreamConfig,
        now: UnixNanos,
    ) -> Result<bool, ApiError> {
        let cfg = check_config(cfg)?;
        self.check_sourcing(&cfg)?;
        self.check_stream_bytes(&cfg)?;
        if self.snap.restoring(&cfg.name) {
            return Err(err::stream_name_exist());
        }
        if let Some(e) = self.streams.get(&cfg.name) {
            return if e.stream.config == cfg {
                Ok(false)
            } else {
                Err(err::stream_name_exist())
            };
        }
        self.check_overlap(&cfg.name, &cfg.subjects)?;
        let store = self
            .factory
            .open(&cfg, store_config(&cfg))
            .map_err(|e| store_error(&e))?;
        if cfg.storage != "memory" {
            let meta = serde_json::to_vec(&Meta {
                created: now,
                config: cfg.clone(),
            })
            .unwrap_or_default();
            if let Err(e) = self.factory.save_meta(&cfg.name, &meta) {
                self.factory.remove(&cfg.name);
                return Err(store_error(&e));
            }
        }
        let name = cfg.name.clone();
        self.streams.insert(
            name.clone(),
            Entry {
                stream: Stream::new(cfg, store, now),
                consumers: BTreeMap::new(),
            },
        );
        let adv = self.stream_advisory(&name, Action::Create, now);
        self.advisories.push(adv);
        Ok(true)
    }

    fn check_overlap(&self, name: &str, subjects: &[String]) -> Result<(), ApiError> {
        for (n, e) in &self.streams {
            if n == name {
                continue;
            }
            for a in subjects {
                for b in &e.stream.config.subjects {
                    if subject::overlaps(a.as_bytes(), b.as_bytes()) {
                        return Err(err::subject_overlap());
                    }
                }
            }
        }
        Ok(())
    }

    /// Updates a stream's config.
    pub(crate) fn update_stream(&mut self, cfg: StreamConfig) -> Result<(), ApiError> {
        let cfg = check_config(cfg)?;
        self.check_sourcing(&cfg)?;
        if let Some(e) = self.streams.get(&cfg.name) {
            self.check_stream_update(&e.stream.config, &cfg)?;
        }
        self.check_overlap(&cfg.name, &cfg.subjects)?;
        let e = self
            .streams
            .get_mut(&cfg.name)
            .ok_or_else(err::stream_not_found)?;
        e.stream.update(cfg)?;
        if e.stream.config.storage != "memory" {
            let meta = serde_json::to_vec(&Meta {
                created: e.stream.created,
                config: e.stream.config.clone(),
            })
            .unwrap_or_default();
            let name = e.stream.config.name.clone();
            self.factory
                .save_meta(&name, &meta)
                .map_err(|x| store_error(&x))?;
        }
        Ok(())
    }

    /// Deletes a stream and its data.
    pub(crate) fn delete_stream(&mut self, name: &str) -> Result<(), ApiError> {
        let e = self
            .streams
            .remove(name)
            .ok_or_else(err::stream_not_found)?;
        drop(e);
        self.factory.remove(name);
        self.acks.retain(|a| a.stream != name);
        self.dirty.retain(|d| d != name);
        self.unsynced.retain(|d| d != name);
        self.moved.retain(|(s, _)| s != name);
        Ok(())
    }

    /// Stream info as JSON (without `type`).
    pub(crate) fn stream_info(&self, name: &str, now: UnixNanos) -> Result<Value, ApiError> {
        let e = self.streams.get(name).ok_or_else(err::stream_not_found)?;
        let mut v = json!({
            "config": e.stream.config,
            "created": rfc3339(e.stream.created),
            "state": e.stream.state_json(e.consumers.len()),
            // No `cluster` block: nats-server 2.9 sends none for a stream on a server
            // without a cluster.
            "ts": rfc3339(now),
        });
        e.stream.sourcing_info(&mut v, now);
        Ok(v)
    }

    pub(crate) fn store_of(&mut self, name: &str) -> Result<&mut Entry, ApiError> {
        self.streams.get_mut(name).ok_or_else(err::stream_not_found)
    }

    pub(crate) fn stream_names(&self) -> impl Iterator<Item = &String> {
        self.streams.keys()
    }

    pub(crate) fn stream_store(&self, name: &str) -> Result<&dyn StreamStore, ApiError> {
        self.streams
            .get(name)
            .map(|e| e.stream.store.as_ref() as &dyn StreamStore)
            .ok_or_else(err::stream_not_found)
    }
}
