//! Restoring a stream from an uploaded archive (Go: jsStreamRestoreRequest,
//! processStreamRestore).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::archive::{Frame, Header, Reader};
use super::RESTORE_PREFIX;
use crate::jetstream::api::{err, rfc3339, ApiError, StreamConfig};
use crate::jetstream::consumer::{Consumer, Delivery};
use crate::jetstream::limits::{insufficient_resources, memory_exceeded, storage_exceeded};
use crate::jetstream::service::{error_body, json_reply, Entry, JetStream};
use crate::jetstream::store::{MemStore, StoreConfig, UnixNanos};
use crate::jetstream::stream::{check_config, store_config, store_error, validate_name, Stream};

/// Go: processStreamRestore's activity interval — an upload silent this long is dropped.
const STALL: UnixNanos = 5_000_000_000;
const RESTORE_CREATE: &str = "$JS.EVENT.ADVISORY.STREAM.RESTORE_CREATE";
const RESTORE_COMPLETE: &str = "$JS.EVENT.ADVISORY.STREAM.RESTORE_COMPLETE";
const CREATE_TYPE: &str = "io.nats.jetstream.api.v1.stream_create_response";

/// Go: JSApiStreamRestoreRequest (`state` is informative; the archive's end frame is what
/// is checked).
#[derive(Debug, serde::Deserialize)]
struct RestoreRequest {
    config: Option<StreamConfig>,
}

/// A restore receiving chunks.
#[derive(Debug)]
pub(crate) struct RestoreJob {
    subject: String,
    /// The stream being filled; not in the account's streams until it is complete.
    stream: Stream,
    reader: Reader,
    header: Option<Header>,
    consumers: Vec<Vec<u8>>,
    msgs: u64,
    ended: bool,
    start: UnixNanos,
    last_activity: UnixNanos,
}

impl RestoreJob {
    pub(crate) fn name(&self) -> &str {
        &self.stream.config.name
    }
}

impl JetStream {
    /// `$JS.API.STREAM.RESTORE.<stream>`: checks the config and the limits like a create,
    /// opens an empty store and answers where to send the archive.
    pub(crate) fn api_restore(
        &mut self,
        name: &str,
        payload: &[u8],
        now: UnixNanos,
    ) -> Result<Value, ApiError> {
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Err(err::bad_request());
        }
        let req: RestoreRequest = super::super::handlers::decode(payload)?;
        let mut cfg = req
            .config
            .ok_or_else(|| err::invalid_json("config required"))?;
        if cfg.name.is_empty() {
            cfg.name = name.to_owned();
        }
        // Go 2.11 refuses a mismatch; 2.9.10 restored under the config's name.
        if cfg.name != name {
            return Err(err::stream_mismatch());
        }
        validate_name(name, err::stream_name_path_separators)?;
        let cfg = check_config(cfg)?;
        self.check_sourcing(&cfg)?;
        self.check_stream_bytes(&cfg)?;
        self.check_stream_create(&cfg)?;
        if self.streams.contains_key(name) || self.snap.restoring(name) {
            return Err(ApiError::new(
                400,
                10130,
                "stream name already in use, cannot restore",
            ));
        }
        self.check_subjects_free(&cfg)?;
        // Whatever an earlier, interrupted restore left under this name goes first.
        self.factory.remove(name);
        let store = self
            .factory
            .open(&cfg, store_config(&cfg))
            .map_err(|e| store_error(&e))?;
        if cfg.storage != "memory" {
            // Marked as a restore under way: a restart in the middle removes it instead of
            // leaving its files for a later stream of the same name to pick up.
            let meta = json!({"created": now, "config": cfg, "restoring": true});
            let saved = self
                .factory
                .save_meta(name, &serde_json::to_vec(&meta).unwrap_or_default());
            if let Err(e) = saved {
                self.factory.remove(name);
                return Err(store_error(&e));
            }
        }
        let id = self.snap_id();
        let subject = format!("{RESTORE_PREFIX}{name}.{id}");
        self.snap.restores.push(RestoreJob {
            subject: subject.clone(),
            stream: Stream::new(cfg, store, now),
            reader: Reader::default(),
            header: None,
            consumers: Vec::new(),
            msgs: 0,
            ended: false,
            start: now,
            last_activity: now,
        });
        self.snap_advisory(RESTORE_CREATE, "restore_create", name, now, json!({}));
        Ok(json!({"deliver_subject": subject}))
    }

    fn check_subjects_free(&self, cfg: &StreamConfig) -> Result<(), ApiError> {
        for e in self.streams.values() {
            for a in &cfg.subjects {
                for b in &e.stream.config.subjects {
                    if crate::subject::overlaps(a.as_bytes(), b.as_bytes()) {
                        return Err(err::subject_overlap());
                    }
                }
            }
        }
        Ok(())
    }

    /// One chunk on a restore subject.
    pub(crate) fn restore_chunk(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        payload: &[u8],
        now: UnixNanos,
    ) -> Vec<Delivery> {
        let Some(i) = self.snap.restores.iter().position(|r| r.subject == subject) else {
            return Vec::new();
        };
        let Some(reply) = reply else {
            // Go: a chunk without a reply subject cancels the restore, answering nobody.
            let job = self.snap.restores.remove(i);
            tracing::warn!(
                "restore of stream {:?} got a chunk without reply subject",
                job.name()
            );
            return self.fail_restore(job, None, &err::bad_request(), now);
        };
        let mut job = self.snap.restores.remove(i);
        job.last_activity = now;
        if payload.is_empty() {
            return self.finish_restore(job, reply, now);
        }
        job.reader.push(payload);
        if let Err(e) = self.apply_frames(&mut job) {
            return self.fail_restore(job, Some(reply), &e, now);
        }
        if let Err(e) = self.restore_limits(&job) {
            return self.fail_restore(job, Some(reply), &e, now);
        }
        self.snap.restores.push(job);
        vec![json_reply_empty(reply)]
    }

    /// Applies every whole frame buffered so far.
    fn apply_frames(&mut self, job: &mut RestoreJob) -> Result<(), ApiError> {
        let bad = |e: String| ApiError::new(500, 10062, format!("restore failed: {e}"));
        while let Some(f) = job.reader.next().map_err(bad)? {
            if job.ended {
                return Err(bad("corrupt snapshot: data after the end".to_owned()));
            }
            match f {
                Frame::Header(h) if job.header.is_none() => {
                    if h.version != super::archive::VERSION {
                        return Err(bad(format!("unknown snapshot version {}", h.version)));
                    }
                    job.stream.created = h.created;
                    job.header = Some(*h);
                }
                Frame::Header(_) => return Err(bad("corrupt snapshot: two headers".to_owned())),
                _ if job.header.is_none() => {
                    return Err(bad("corrupt snapshot: no header".to_owned()));
                }
                Frame::Consumer(c) => job.consumers.push(c),
                Frame::Msg(m) => {
                    if m.seq <= job.stream.store.state().last_seq {
                        return Err(bad("corrupt snapshot: sequences out of order".to_owned()));
                    }
                    job.stream.skip_to(m.seq, m.ts)?;
                    let (seq, _) = job
                        .stream
                        .store
                        .store_msg(&m.subject, &m.headers, &m.payload, m.ts)
                        .map_err(|e| store_error(&e))?;
                    if seq != m.seq {
                        return Err(bad(format!("message {} stored as {seq}", m.seq)));
                    }
                    job.msgs += 1;
                }
                Frame::End(e) => {
                    let want = job.header.as_ref().map_or(0, |h| h.consumers);
                    if e.msgs != job.msgs || want != job.consumers.len() as u64 {
                        return Err(bad("corrupt snapshot: frames missing".to_owned()));
                    }
                    job.ended = true;
                }
            }
        }
        Ok(())
    }

    /// Go: the restore's limits — the account's and the server's storage, counting what the
    /// restore holds so far.
    fn restore_limits(&self, job: &RestoreJob) -> Result<(), ApiError> {
        let memory = job.stream.config.storage == "memory";
        let held = job.stream.store.state().bytes + job.reader.leftover() as u64;
        let (mem, file) = self.usage();
        let mine = held + if memory { mem } else { file };
        let acc_max = if memory {
            self.limits.max_memory
        } else {
            self.limits.max_storage
        };
        if acc_max >= 0 && i64::try_from(mine).unwrap_or(i64::MAX) > acc_max {
            return Err(if memory {
                memory_exceeded()
            } else {
                storage_exceeded()
            });
        }
        let (srv_max, others) = if memory {
            (self.settings.max_memory, self.others.memory)
        } else {
            (self.settings.max_file, self.others.storage)
        };
        if srv_max.is_some_and(|max| others + mine > max) {
            return Err(insufficient_resources());
        }
        Ok(())
    }

    /// The empty chunk: the archive must be whole; then the stream and its consumers appear.
    fn finish_restore(
        &mut self,
        mut job: RestoreJob,
        reply: &str,
        now: UnixNanos,
    ) -> Vec<Delivery> {
        let bad = |e: &str| ApiError::new(500, 10062, format!("restore failed: {e}"));
        if !job.ended || job.reader.leftover() > 0 {
            let e = bad("snapshot truncated");
            return self.fail_restore(job, Some(reply), &e, now);
        }
        let name = job.name().to_owned();
        // A stream of that name or subjects may have appeared meanwhile.
        if self.streams.contains_key(&name) {
            let e = ApiError::new(400, 10130, "stream name already in use, cannot restore");
            return self.fail_restore(job, Some(reply), &e, now);
        }
        if let Err(e) = self.check_subjects_free(&job.stream.config) {
            return self.fail_restore(job, Some(reply), &e, now);
        }
        if let Some(h) = &job.header {
            // Deletes after the last live message: the next sequence stays where it was.
            if let Err(e) = job.stream.skip_to(h.last_seq + 1, h.last_ts) {
                return self.fail_restore(job, Some(reply), &e, now);
            }
        }
        let mut consumers = BTreeMap::new();
        for c in &job.consumers {
            let snap: crate::jetstream::consumer::ConsumerSnap = match serde_json::from_slice(c) {
                Ok(s) => s,
                Err(e) => {
                    let e = bad(&format!("corrupt consumer: {e}"));
                    return self.fail_restore(job, Some(reply), &e, now);
                }
            };
            let c = Consumer::from_snap(snap, name.clone(), job.stream.store.as_ref());
            consumers.insert(c.name.clone(), c);
        }
        if let Err(e) = job.stream.store.sync() {
            let e = store_error(&e);
            return self.fail_restore(job, Some(reply), &e, now);
        }
        let memory = job.stream.config.storage == "memory";
        if !memory {
            let meta = serde_json::to_vec(&json!({
                "created": job.stream.created,
                "config": job.stream.config,
            }))
            .unwrap_or_default();
            if let Err(e) = self.factory.save_meta(&name, &meta) {
                let e = store_error(&e);
                return self.fail_restore(job, Some(reply), &e, now);
            }
        }
        let bytes = job.reader.total;
        let start = job.start;
        // A fresh stream over the filled store: what it derives from its messages (the TTL
        // index) was built when the store was still empty.
        let empty = Box::new(MemStore::new(StoreConfig::default()));
        let store = std::mem::replace(&mut job.stream.store, empty);
        let stream = Stream::new(job.stream.config.clone(), store, job.stream.created);
        self.streams
            .insert(name.clone(), Entry { stream, consumers });
        let durables: Vec<String> = self.streams[&name].consumers.keys().cloned().collect();
        for c in durables {
            if let Err(e) = self.save_consumer(&name, &c) {
                tracing::warn!("restore of {name}: cannot save consumer {c}: {e:?}");
            }
        }
        self.mark_dirty(&name);
        self.complete_advisory(&name, start, now, bytes);
        let body = match self.stream_info(&name, now) {
            Ok(mut v) => {
                v["type"] = json!(CREATE_TYPE);
                v
            }
            Err(e) => error_body(CREATE_TYPE, &e),
        };
        let mut out = vec![json_reply(reply, &body)];
        out.append(&mut self.advisories);
        out.extend(self.pump_stream(&name, now));
        out
    }

    fn complete_advisory(&mut self, name: &str, start: UnixNanos, now: UnixNanos, bytes: u64) {
        self.snap_advisory(
            RESTORE_COMPLETE,
            "restore_complete",
            name,
            now,
            json!({"start": rfc3339(start), "end": rfc3339(now), "bytes": bytes}),
        );
    }

    /// Drops a restore and what it stored; answers `reply` (if any) with the error.
    fn fail_restore(
        &mut self,
        job: RestoreJob,
        reply: Option<&str>,
        e: &ApiError,
        now: UnixNanos,
    ) -> Vec<Delivery> {
        let name = job.name().to_owned();
        let (start, bytes) = (job.start, job.reader.total);
        drop(job);
        self.factory.remove(&name);
        tracing::warn!("restore of stream {name:?} failed: {}", e.description);
        self.complete_advisory(&name, start, now, bytes);
        let mut out: Vec<Delivery> = reply
            .map(|r| json_reply(r, &error_body(CREATE_TYPE, e)))
            .into_iter()
            .collect();
        out.append(&mut self.advisories);
        out
    }

    /// Drops restores that stopped receiving (Go: "restore … is stalled"; nobody is told).
    pub(crate) fn expire_restores(&mut self, now: UnixNanos) {
        let (stale, live): (Vec<_>, Vec<_>) = std::mem::take(&mut self.snap.restores)
            .into_iter()
            .partition(|r| now.saturating_sub(r.last_activity) > STALL);
        self.snap.restores = live;
        for job in stale {
            let name = job.name().to_owned();
            tracing::warn!("restore of stream {name:?} is stalled, dropped");
            drop(job);
            self.factory.remove(&name);
        }
    }
}

fn json_reply_empty(to: &str) -> Delivery {
    Delivery {
        subject: to.to_owned(),
        reply: None,
        headers: Vec::new(),
        payload: Vec::new(),
        shown_subject: None,
    }
}
