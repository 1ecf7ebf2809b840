//! One stream: its config, its store, de-duplication and the publish checks
//! (Go: server/stream.go processJetStreamMsg).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::api::{err, ApiError, StreamConfig, StreamStateJson};
use super::store::{Discard, StoreConfig, StoreError, StreamStore, UnixNanos};
use crate::proto::headers::Headers;
use crate::subject;

/// A stream name is a single token without wildcards or path separators (Go: isValidName
/// plus the path-separator check).
pub fn validate_name(name: &str, path_err: fn() -> ApiError) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(err::stream_invalid_config("stream name is required"));
    }
    if name.contains(['/', '\\']) {
        return Err(path_err());
    }
    if name.len() > 255
        || name
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::new(
            400,
            10003,
            "invalid stream name - stream name cannot contain ' ', '.', '*', '>'",
        ));
    }
    Ok(())
}

/// Checks and normalises a config (Go: checkStreamCfg). Returns the config to store.
pub fn check_config(mut c: StreamConfig) -> Result<StreamConfig, ApiError> {
    validate_name(&c.name, err::stream_name_path_separators)?;
    let bad = |t: &str| Err(err::stream_invalid_config(t));
    if c.num_replicas == 0 {
        c.num_replicas = 1;
    }
    if c.num_replicas > 1 {
        return Err(err::replicas_not_supported());
    }
    if c.num_replicas < 0 {
        return Err(ApiError::new(
            400,
            10133,
            "replicas count cannot be negative",
        ));
    }
    match c.storage.as_str() {
        "file" | "memory" => {}
        _ => return bad("invalid storage type"),
    }
    match c.retention.as_str() {
        "limits" | "interest" | "workqueue" => {}
        _ => return bad("invalid retention policy"),
    }
    match c.discard.as_str() {
        "old" | "new" => {}
        _ => return bad("invalid discard policy"),
    }
    for v in [
        &mut c.max_msgs,
        &mut c.max_bytes,
        &mut c.max_msgs_per_subject,
        &mut c.max_msg_size,
        &mut c.max_consumers,
    ] {
        if *v == 0 {
            *v = -1;
        }
        if *v < -1 {
            return bad("negative limits are not allowed");
        }
    }
    if c.max_age < 0 {
        return bad("max age needs to be >= 0");
    }
    if c.duplicate_window == 0 {
        c.duplicate_window = 120_000_000_000;
    }
    if c.max_age > 0 && c.duplicate_window > c.max_age as u64 {
        c.duplicate_window = c.max_age as u64;
    }
    if c.subjects.is_empty() {
        c.subjects.push(c.name.clone());
    }
    for (i, s) in c.subjects.iter().enumerate() {
        if !subject::is_valid_subject(s.as_bytes()) {
            return bad(&format!("invalid subject {s:?}"));
        }
        if subject::overlaps(s.as_bytes(), b"$JS.API.>") {
            return bad("subjects that overlap with jetstream api require no-ack to be true");
        }
        if c.subjects[..i].iter().any(|o| o == s) {
            return bad("duplicate subjects detected");
        }
    }
    Ok(c)
}

fn limit(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}

/// The store-level part of a stream config.
pub fn store_config(c: &StreamConfig) -> StoreConfig {
    StoreConfig {
        first_seq: c.first_seq,
        max_msgs: limit(c.max_msgs),
        max_bytes: limit(c.max_bytes),
        max_age: (c.max_age > 0).then(|| Duration::from_nanos(c.max_age as u64)),
        max_msgs_per_subject: limit(c.max_msgs_per_subject),
        max_msg_size: limit(c.max_msg_size),
        discard: if c.discard == "new" {
            Discard::New
        } else {
            Discard::Old
        },
        discard_new_per_subject: c.discard_new_per_subject,
    }
}

/// Maps a store failure on the publish path to its API error.
pub fn store_error(e: &StoreError) -> ApiError {
    match e {
        StoreError::InsufficientResources => err::storage_exceeded(),
        StoreError::MsgTooLarge => err::msg_too_large(),
        StoreError::MaxMsgs | StoreError::MaxBytes | StoreError::MaxMsgsPerSubject => {
            ApiError::new(503, 10077, e.to_string())
        }
        _ => err::store_failed(&e.to_string()),
    }
}

/// A stored, not yet acknowledged publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Assigned sequence.
    pub seq: u64,
    /// Was it a duplicate (nothing stored; `seq` is the original's)?
    pub duplicate: bool,
}

/// A stream.
pub struct Stream {
    /// Its config.
    pub config: StreamConfig,
    /// Its store.
    pub store: Box<dyn StreamStore + Send>,
    /// Creation time.
    pub created: UnixNanos,
    /// Nats-Msg-Id → (seq, ts), within the duplicate window.
    dedup: BTreeMap<String, (u64, UnixNanos)>,
    dedup_order: VecDeque<(UnixNanos, String)>,
    last_msg_id: String,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("config", &self.config)
            .finish()
    }
}

impl Stream {
    /// A stream over an opened store.
    pub fn new(
        config: StreamConfig,
        store: Box<dyn StreamStore + Send>,
        created: UnixNanos,
    ) -> Self {
        Self {
            config,
            store,
            created,
            dedup: BTreeMap::new(),
            dedup_order: VecDeque::new(),
            last_msg_id: String::new(),
        }
    }

    /// State as JSON.
    pub fn state_json(&self, consumers: usize) -> StreamStateJson {
        let s = self.store.state();
        StreamStateJson {
            messages: s.msgs,
            bytes: s.bytes,
            first_seq: s.first_seq,
            first_ts: super::api::rfc3339(s.first_ts),
            last_seq: s.last_seq,
            last_ts: super::api::rfc3339(s.last_ts),
            num_deleted: s.num_deleted,
            num_subjects: s.num_subjects,
            consumer_count: consumers as u64,
        }
    }

    /// Does this stream capture `subject`?
    pub fn captures(&self, subj: &str) -> bool {
        self.config
            .subjects
            .iter()
            .any(|f| subject::matches(f.as_bytes(), subj.as_bytes()))
    }

    fn prune_dedup(&mut self, now: UnixNanos) {
        let window = self.config.duplicate_window;
        while let Some((ts, _)) = self.dedup_order.front() {
            if now.saturating_sub(*ts) <= window {
                break;
            }
            if let Some((_, id)) = self.dedup_order.pop_front() {
                self.dedup.remove(&id);
            }
        }
    }

    /// Stores a published message after the expected-* and rollup checks
    /// (Go: processJetStreamMsg). The caller acknowledges once the store synced `seq`.
    pub fn publish(
        &mut self,
        subj: &str,
        hdr: &[u8],
        payload: &[u8],
        now: UnixNanos,
    ) -> Result<Stored, ApiError> {
        if self.config.sealed {
            return Err(err::sealed());
        }
        let headers = if hdr.is_empty() {
            None
        } else {
            Headers::parse(hdr).ok()
        };
        let get = |n: &str| {
            headers
                .as_ref()
                .and_then(|h| h.get(n))
                .map(|v| String::from_utf8_lossy(v).trim().to_owned())
        };
        self.prune_dedup(now);
        let msg_id = get("Nats-Msg-Id").filter(|s| !s.is_empty());
        if let Some(id) = &msg_id {
            if let Some((seq, _)) = self.dedup.get(id) {
                return Ok(Stored {
                    seq: *seq,
                    duplicate: true,
                });
            }
        }
        if let Some(s) = get("Nats-Expected-Stream") {
            if s != self.config.name {
                return Err(err::stream_not_match());
            }
        }
        let state = self.store.state();
        if let Some(v) = get("Nats-Expected-Last-Sequence") {
            let want: u64 = v.parse().map_err(|_| err::bad_request())?;
            if want != state.last_seq {
                return Err(err::wrong_last_sequence(state.last_seq));
            }
        }
        if let Some(v) = get("Nats-Expected-Last-Subject-Sequence") {
            let want: u64 = v.parse().map_err(|_| err::bad_request())?;
            let last = self.store.load_last_msg(subj).map(|m| m.seq).unwrap_or(0);
            if want != last {
                return Err(err::wrong_last_sequence(last));
            }
        }
        if let Some(v) = get("Nats-Expected-Last-Msg-Id") {
            if v != self.last_msg_id {
                return Err(err::wrong_last_msg_id(&self.last_msg_id));
            }
        }
        let rollup = get("Nats-Rollup");
        if let Some(r) = &rollup {
            if !self.config.allow_rollup_hdrs {
                return Err(err::rollup_failed("rollup not permitted"));
            }
            if r != "sub" && r != "all" {
                return Err(err::rollup_failed(&format!("rollup value invalid: {r:?}")));
            }
        }
        let (seq, _) = self
            .store
            .store_msg(subj, hdr, payload, now)
            .map_err(|e| store_error(&e))?;
        match rollup.as_deref() {
            Some("sub") => {
                let _ = self.store.purge_ex(subj, 1, 0);
            }
            Some("all") => {
                let _ = self.store.compact(seq);
            }
            _ => {}
        }
        if let Some(id) = msg_id {
            self.dedup.insert(id.clone(), (seq, now));
            self.dedup_order.push_back((now, id.clone()));
            self.last_msg_id = id;
        }
        Ok(Stored {
            seq,
            duplicate: false,
        })
    }

    /// Applies an updated config (Go: stream.update — name, storage and retention fixed).
    pub fn update(&mut self, c: StreamConfig) -> Result<(), ApiError> {
        if c.storage != self.config.storage {
            return Err(err::stream_invalid_config(
                "stream configuration update can not change storage type",
            ));
        }
        if c.retention != self.config.retention {
            return Err(err::stream_invalid_config(
                "stream configuration update can not change retention policy",
            ));
        }
        if self.config.sealed && !c.sealed {
            return Err(err::stream_invalid_config(
                "stream configuration update can not unseal a sealed stream",
            ));
        }
        self.store
            .update_config(store_config(&c))
            .map_err(|e| store_error(&e))?;
        self.config = c;
        Ok(())
    }
}
