//! Atomic batch publish (Go 2.12, ADR-50; Go: stream.go processJetStreamBatchMsg): with
//! `allow_atomic`, messages carrying `Nats-Batch-Id` and `Nats-Batch-Sequence` (1, 2, …)
//! are staged, each answered by an empty reply, until the one with `Nats-Batch-Commit: 1`
//! (stored too) or `Nats-Batch-Commit: eob` (not stored; the one before becomes the
//! commit). The commit stores the whole batch, or none of it, and one PubAck with `batch`
//! and `count` answers it once the last message is synced — one sync for the whole batch.
//!
//! All-or-nothing, also across a crash: the batch is stored in one go with nothing between
//! its messages, and its last message carries `Nats-Batch-Commit: 1`. A power cut inside
//! that write can leave only a prefix on disk; opening the stream finds such a tail (batch
//! messages after the last commit) and removes it ([`Stream::drop_torn_batch`]). A batch
//! that fails a check half-way is taken back the same way before anything is acknowledged
//! (its sequences stay used, as deleted).
//!
//! Limits (Go defaults): 1,000 messages per batch, 50 batches in flight per stream, 1,000
//! per server (here: per account's JetStream), 10 s without a message abandons a batch.

use std::collections::BTreeMap;

use serde_json::json;

use super::super::api::ApiError;
use super::super::consumer::Delivery;
use super::super::service::{json_reply, JetStream, PendingAck};
use super::{Hdr, Stored, Stream, UnixNanos, MSG_ID};
use crate::proto::headers::Headers;

/// The batch's id (at most 64 characters).
pub const BATCH_ID: &str = "Nats-Batch-Id";
/// The message's place in its batch, from 1.
pub const BATCH_SEQ: &str = "Nats-Batch-Sequence";
/// `1` (commit with this message) or `eob` (commit, this message is not stored).
pub const BATCH_COMMIT: &str = "Nats-Batch-Commit";

/// Most messages in one batch.
pub(super) const MAX_BATCH_SIZE: u64 = 1_000;
/// Most batches in flight on one stream.
pub(super) const MAX_INFLIGHT_PER_STREAM: usize = 50;
/// Most batches in flight in total.
pub(super) const MAX_INFLIGHT_TOTAL: usize = 1_000;
/// A batch without a new message for this long is abandoned.
pub(super) const BATCH_TIMEOUT_NS: u64 = 10_000_000_000;

fn disabled() -> ApiError {
    ApiError::new(400, 10174, "atomic publish is disabled")
}
fn missing_seq() -> ApiError {
    ApiError::new(400, 10175, "atomic publish sequence is missing")
}
fn incomplete() -> ApiError {
    ApiError::new(400, 10176, "atomic publish batch is incomplete")
}
fn unsupported_header(h: &str) -> ApiError {
    ApiError::new(
        400,
        10177,
        format!("atomic publish unsupported header used: {h}"),
    )
}
fn invalid_id() -> ApiError {
    ApiError::new(400, 10179, "atomic publish batch ID is invalid")
}
fn too_large() -> ApiError {
    ApiError::new(
        400,
        10199,
        format!("atomic publish batch is too large: {MAX_BATCH_SIZE}"),
    )
}
fn invalid_commit() -> ApiError {
    ApiError::new(400, 10200, "atomic publish batch commit is invalid")
}
fn duplicate_in_batch() -> ApiError {
    ApiError::new(
        400,
        10201,
        "atomic publish batch contains duplicate message id",
    )
}
fn too_many_inflight() -> ApiError {
    ApiError::new(429, 10210, "atomic publish too many inflight")
}

/// Does this publish belong to an atomic batch?
pub fn is_batched(hdr: &[u8]) -> bool {
    !hdr.is_empty()
        && hdr
            .windows(BATCH_ID.len())
            .any(|w| w.eq_ignore_ascii_case(BATCH_ID.as_bytes()))
        && Hdr::parse(hdr).get(BATCH_ID).is_some_and(|v| !v.is_empty())
}

/// A batch being staged.
#[derive(Debug)]
pub(crate) struct Batch {
    /// (subject, headers, payload), in batch order.
    msgs: Vec<(String, Vec<u8>, Vec<u8>)>,
    /// When the last message came.
    last: UnixNanos,
}

/// The batches a stream is staging, by id.
pub(crate) type Batches = BTreeMap<String, Batch>;

/// What a batched publish came to.
#[derive(Debug)]
pub enum Batched {
    /// Staged; the publisher gets an empty reply.
    Staged,
    /// Refused; the batch (if any) is abandoned.
    Refused(ApiError),
    /// The batch is stored: every message (subject, outcome), in order, the id and count.
    Committed {
        /// What each message stored.
        stored: Vec<(String, Stored)>,
        /// The batch id.
        id: String,
        /// Messages stored.
        count: u64,
    },
}

impl Stream {
    /// Batches in flight on this stream.
    pub fn batches_in_flight(&self) -> usize {
        self.batches.len()
    }

    /// Abandons the batches idle for `BATCH_TIMEOUT_NS` (10 s).
    pub fn expire_batches(&mut self, now: UnixNanos) {
        self.batches
            .retain(|_, b| now.saturating_sub(b.last) < BATCH_TIMEOUT_NS);
    }

    /// A publish with `Nats-Batch-Id` (see the module docs). `in_flight_total`: batches in
    /// flight on every stream, for the total limit.
    pub fn publish_batched(
        &mut self,
        subj: &str,
        hdr: &[u8],
        payload: &[u8],
        now: UnixNanos,
        in_flight_total: usize,
    ) -> Batched {
        match self.stage(subj, hdr, payload, now, in_flight_total) {
            Ok(None) => Batched::Staged,
            Ok(Some(id)) => self.commit_batch(&id),
            Err(e) => Batched::Refused(e),
        }
    }

    /// Stages one message; `Ok(Some(id))` when it commits batch `id`.
    fn stage(
        &mut self,
        subj: &str,
        hdr: &[u8],
        payload: &[u8],
        now: UnixNanos,
        in_flight_total: usize,
    ) -> Result<Option<String>, ApiError> {
        if self.config.sealed {
            return Err(super::err::sealed());
        }
        if !self.config.allow_atomic {
            return Err(disabled());
        }
        let h = Hdr::parse(hdr);
        let id = h.get(BATCH_ID).unwrap_or_default();
        if id.len() > 64 {
            return Err(invalid_id());
        }
        let seq: u64 = h
            .get(BATCH_SEQ)
            .and_then(|v| v.parse().ok())
            .ok_or_else(missing_seq)?;
        let commit = h.get(BATCH_COMMIT);
        let eob = commit.as_deref() == Some("eob");
        self.expire_batches(now);
        if !self.batches.contains_key(&id) {
            if seq != 1 {
                let size = if eob { seq - 1 } else { seq };
                return Err(if size > MAX_BATCH_SIZE {
                    too_large()
                } else {
                    incomplete()
                });
            }
            if self.batches.len() >= MAX_INFLIGHT_PER_STREAM
                || in_flight_total >= MAX_INFLIGHT_TOTAL
            {
                return Err(too_many_inflight());
            }
            self.batches.insert(
                id.clone(),
                Batch {
                    msgs: Vec::new(),
                    last: now,
                },
            );
        }
        if commit.as_deref().is_some_and(|c| c != "1" && c != "eob") {
            self.batches.remove(&id);
            return Err(invalid_commit());
        }
        let Some(b) = self.batches.get_mut(&id) else {
            return Err(incomplete());
        };
        if b.msgs.len() as u64 + 1 != seq || (seq == 1 && eob) {
            self.batches.remove(&id);
            return Err(incomplete());
        }
        let size = if eob { seq - 1 } else { seq };
        if size > MAX_BATCH_SIZE {
            self.batches.remove(&id);
            return Err(too_large());
        }
        b.last = now;
        if !eob {
            // The subject transform applies as for any publish.
            let t = self.transform.as_ref().and_then(|t| t.apply(subj));
            let subj = t.as_deref().unwrap_or(subj).to_owned();
            b.msgs.push((subj, hdr.to_vec(), payload.to_vec()));
        }
        Ok(commit.is_some().then_some(id))
    }

    /// Stores batch `id` whole, or takes back what it stored and refuses it.
    fn commit_batch(&mut self, id: &str) -> Batched {
        let Some(mut b) = self.batches.remove(id) else {
            return Batched::Refused(incomplete());
        };
        // The last message stored is the commit: it says so, whatever ended the batch.
        if let Some(last) = b.msgs.last_mut() {
            if let Ok(mut h) = Headers::parse(&last.1) {
                if h.insert(BATCH_COMMIT, "1").is_ok() {
                    last.1 = h.to_bytes().to_vec();
                }
            }
        }
        for (_, hdr, _) in &b.msgs {
            if Hdr::parse(hdr).get("Nats-Expected-Last-Msg-Id").is_some() {
                return Batched::Refused(unsupported_header("Nats-Expected-Last-Msg-Id"));
            }
        }
        let count = b.msgs.len() as u64;
        let mut stored: Vec<(String, Stored)> = Vec::with_capacity(b.msgs.len());
        let now = b.last;
        for (subj, hdr, payload) in &b.msgs {
            let r = match self.process(subj, hdr, payload, now, false) {
                Ok(st) if st.duplicate => Err(duplicate_in_batch()),
                other => other,
            };
            match r {
                Ok(st) => stored.push((subj.clone(), st)),
                Err(e) => {
                    self.take_back(&stored, &b.msgs);
                    return Batched::Refused(e);
                }
            }
        }
        Batched::Committed {
            stored,
            id: id.to_owned(),
            count,
        }
    }

    /// Removes what a failed commit stored, and forgets its message ids.
    fn take_back(&mut self, stored: &[(String, Stored)], msgs: &[(String, Vec<u8>, Vec<u8>)]) {
        for (_, st) in stored {
            let _ = self.store.remove_msg(st.seq);
        }
        for (_, hdr, _) in msgs.iter().take(stored.len()) {
            if let Some(id) = Hdr::parse(hdr).get(MSG_ID) {
                self.dedupe.forget(&id);
            }
        }
    }

    /// Removes a batch a crash cut short: batch messages after the stream's last commit.
    /// Called when the stream is opened (see the module docs).
    pub(crate) fn drop_torn_batch(&mut self) {
        // Only this stream's own batches: a mirror or a source copies its origin's batch
        // messages one by one, and an interrupted copy simply resumes.
        if !self.config.allow_atomic || self.config.mirror.is_some() {
            return;
        }
        let mut seq = self.store.state().last_seq;
        let mut torn = Vec::new();
        // Bounded by the batch size: a torn batch is shorter than a whole one.
        while torn.len() as u64 <= MAX_BATCH_SIZE {
            let Ok(m) = self.store.load_msg(seq) else {
                break;
            };
            let h = Hdr::parse(&m.headers);
            if h.get(BATCH_ID).is_none()
                || h.get(BATCH_COMMIT).is_some()
                || h.get(super::SOURCE_HEADER).is_some()
            {
                break;
            }
            torn.push(m.seq);
            if h.get(BATCH_SEQ).as_deref() == Some("1") || seq <= 1 {
                break;
            }
            seq -= 1;
        }
        for s in torn {
            tracing::warn!(
                "stream {}: removing message {s} of a batch cut short by a crash",
                self.config.name
            );
            let _ = self.store.remove_msg(s);
        }
    }
}

impl JetStream {
    /// A publish that is part of an atomic batch (see `stream::batch`): staged with an empty
    /// reply, or committed whole with one PubAck after the sync of its last message.
    pub(crate) fn publish_batched(
        &mut self,
        name: &str,
        subj: &str,
        reply: Option<&str>,
        hdr: &[u8],
        payload: &[u8],
        now: UnixNanos,
    ) -> Vec<Delivery> {
        let total = self
            .streams
            .values()
            .map(|e| e.stream.batches_in_flight())
            .sum();
        let Some(e) = self.streams.get_mut(name) else {
            return Vec::new();
        };
        match e.stream.publish_batched(subj, hdr, payload, now, total) {
            Batched::Staged => reply
                .map(|r| {
                    vec![Delivery {
                        subject: r.to_owned(),
                        reply: None,
                        headers: Vec::new(),
                        payload: Vec::new(),
                        shown_subject: None,
                    }]
                })
                .unwrap_or_default(),
            Batched::Refused(err) => reply
                .map(|r| {
                    vec![json_reply(
                        r,
                        &json!({"error": err, "stream": name, "seq": 0}),
                    )]
                })
                .unwrap_or_default(),
            Batched::Committed { stored, id, count } => {
                let mut out = Vec::new();
                let mut last = 0;
                for (subj, st) in stored {
                    if !super::super::retention::drop_unwanted(e, &subj, st.seq) {
                        for c in e.consumers.values_mut() {
                            c.on_stored(&subj, st.seq);
                        }
                    }
                    last = st.seq;
                    out.extend(st.republish);
                }
                self.mark_dirty(name);
                if let Some(r) = reply {
                    self.acks.push(PendingAck {
                        stream: name.to_owned(),
                        seq: last,
                        reply: r.to_owned(),
                        duplicate: false,
                        val: None,
                        batch: Some((id, count)),
                    });
                }
                out
            }
        }
    }
}
