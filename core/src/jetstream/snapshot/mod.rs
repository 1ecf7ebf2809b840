//! Stream snapshot and restore (Go: server/jetstream_api.go jsStreamSnapshotRequest,
//! streamSnapshot, jsStreamRestoreRequest, processStreamRestore).
//!
//! The wire protocol is nats-server's, so the nats CLI (`stream backup` / `stream restore`)
//! and nats.go's snapshot API drive it unchanged:
//!
//! * `$JS.API.STREAM.SNAPSHOT.<stream>` with `{"deliver_subject", "no_consumers",
//!   "chunk_size", "window_size", "jsck"}` answers a `stream_snapshot_response` with the
//!   stream's config and state, then publishes the archive to `deliver_subject` in chunks,
//!   each with the reply subject `$JS.SNAPSHOT.ACK.<stream>.<id>.<len>.<index>`. At most
//!   `window_size / chunk_size` chunks are unacknowledged at once: an ack lets the next chunk
//!   out, so a big stream is read a window at a time, never in one go. An empty message ends
//!   the archive (with a `408` status header when the receiver stopped acking).
//! * `$JS.API.STREAM.RESTORE.<stream>` with `{"config", "state"}` answers a
//!   `stream_restore_response` whose `deliver_subject` (`$JS.SNAPSHOT.RESTORE.<stream>.<id>`)
//!   takes the chunks; each needs a reply subject and is answered with an empty message, and
//!   an empty chunk ends the upload, answered with a `stream_create_response`.
//!
//! The archive's contents are natsd's own ([`archive`]): natsd's file store is not Go's, so
//! an archive made by nats-server cannot be restored here, nor the other way round. It holds
//! the stream's config and creation time, every live message with its sequence, time,
//! subject, headers and payload (each a checksummed store record), and, unless
//! `no_consumers`, each durable consumer's config and delivery state (delivered sequences,
//! ack floor, pending acks with delivery counts). Ephemeral consumers belong to a live client
//! and are left out, as nats-server's file store does.
//!
//! A restore writes into a store that is not yet a stream: only when the end frame arrived,
//! every count matched and the stream's meta is saved does the stream appear; a damaged or
//! truncated upload, or one past the account's or server's limits, is refused and its store
//! removed. A file stream being restored has a meta marked `restoring`, so a restart in the
//! middle removes the partial files rather than leaving them to a later stream of that name.

pub(crate) mod archive;
pub(crate) mod replica;
#[cfg(test)]
mod replica_tests;
mod restore;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Value};

use super::api::{err, rfc3339, ApiError};
use super::consumer::{Consumer, Delivery};
use super::service::JetStream;
use super::store::UnixNanos;
use super::stream::Stream;
use archive::{End, Header};
pub(crate) use restore::RestoreJob;

/// Go: defaultSnapshotChunkSize.
const DEFAULT_CHUNK: usize = 128 * 1024;
/// Go: defaultSnapshotWindowSize.
const DEFAULT_WINDOW: usize = 8 * 1024 * 1024;
/// Go: defaultSnapshotAckTimeout — a receiver silent this long has gone.
const ACK_TIMEOUT: UnixNanos = 5_000_000_000;
/// Archive bytes one snapshot produces per worker turn: a window (8 MiB by default) is
/// read and encoded over several turns, so publishes and API calls of the same account
/// are not held up behind a whole window.
const TURN_BUDGET: usize = 1 << 20;
/// Prefix of the flow-control acks (Go: jsSnapshotAckT).
pub(crate) const ACK_PREFIX: &str = "$JS.SNAPSHOT.ACK.";
/// Prefix of the restore upload subjects (Go: jsRestoreDeliverT).
pub(crate) const RESTORE_PREFIX: &str = "$JS.SNAPSHOT.RESTORE.";

const SNAPSHOT_CREATE: &str = "$JS.EVENT.ADVISORY.STREAM.SNAPSHOT_CREATE";
const SNAPSHOT_COMPLETE: &str = "$JS.EVENT.ADVISORY.STREAM.SNAPSHOT_COMPLETE";
const ADVISORY_TYPE: &str = "io.nats.jetstream.advisory.v1.";

/// Go: JSApiStreamSnapshotRequest.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct SnapshotRequest {
    deliver_subject: String,
    no_consumers: bool,
    chunk_size: i64,
    window_size: i64,
    /// Go verifies every message first; natsd's reads verify each record's CRC anyway.
    #[allow(dead_code)]
    jsck: bool,
}

/// A snapshot being sent.
#[derive(Debug)]
pub(crate) struct SnapshotJob {
    stream: String,
    deliver: String,
    /// `$JS.SNAPSHOT.ACK.<stream>.<id>`.
    ack: String,
    chunk: usize,
    /// Chunks allowed unacknowledged.
    window: usize,
    in_flight: usize,
    index: u64,
    /// Next stream sequence to read, and the last one the snapshot covers.
    next_seq: u64,
    end_seq: u64,
    msgs: u64,
    /// Archive bytes not yet sent.
    buf: Vec<u8>,
    consumers: VecDeque<Vec<u8>>,
    body_done: bool,
    start: UnixNanos,
    last_ack: UnixNanos,
}

/// The snapshots and restores under way in one account.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    snapshots: Vec<SnapshotJob>,
    restores: Vec<RestoreJob>,
}

impl Jobs {
    /// Is a restore writing stream `name`?
    pub(crate) fn restoring(&self, name: &str) -> bool {
        self.restores.iter().any(|r| r.name() == name)
    }

    fn is_empty(&self) -> bool {
        self.snapshots.is_empty() && self.restores.is_empty()
    }
}

/// Go: IsValidSubject (2.9.10 accepts wildcards in a deliver subject).
fn valid_subject(s: &str) -> bool {
    !s.is_empty() && !s.contains([' ', '\t', '\r', '\n']) && s.split('.').all(|t| !t.is_empty())
}

/// Validates a snapshot request of stream `name` and starts its job (ack subjects named with
/// `id`): the job and the API answer (`config` and `state`).
pub(crate) fn start_job(
    name: &str,
    stream: &Stream,
    consumers: &BTreeMap<String, Consumer>,
    payload: &[u8],
    id: &str,
    now: UnixNanos,
) -> Result<(SnapshotJob, Value), ApiError> {
    let req: SnapshotRequest = super::handlers::decode(payload)?;
    if !valid_subject(&req.deliver_subject) {
        return Err(ApiError::new(400, 10015, "deliver subject not valid"));
    }
    // Go (2.11): chunks of 1 KiB to 1 MiB, a window of 1 KiB to 32 MiB holding one
    // chunk at least.
    let pick = |v: i64, d: usize| usize::try_from(v).ok().filter(|v| *v > 0).unwrap_or(d);
    let chunk = pick(req.chunk_size, DEFAULT_CHUNK).clamp(1024, 1 << 20);
    let window = pick(req.window_size, DEFAULT_WINDOW)
        .clamp(1024, 32 << 20)
        .max(chunk);
    let st = stream.store.state();
    let snaps: VecDeque<Vec<u8>> = if req.no_consumers {
        VecDeque::new()
    } else {
        consumers
            .values()
            .filter(|c| c.is_durable())
            .map(|c| serde_json::to_vec(&c.snap()).unwrap_or_default())
            .collect()
    };
    let header = Header {
        version: archive::VERSION,
        created: stream.created,
        config: stream.config.clone(),
        first_seq: st.first_seq,
        last_seq: st.last_seq,
        last_ts: st.last_ts,
        consumers: snaps.len() as u64,
    };
    let state = stream.state_json(consumers.len());
    let mut buf = Vec::new();
    archive::write_header(&mut buf, &header);
    let job = SnapshotJob {
        stream: name.to_owned(),
        deliver: req.deliver_subject,
        ack: format!("{ACK_PREFIX}{name}.{id}"),
        chunk,
        window: window / chunk,
        in_flight: 0,
        index: 0,
        next_seq: st.first_seq.max(1),
        end_seq: st.last_seq,
        msgs: 0,
        buf,
        consumers: snaps,
        body_done: false,
        start: now,
        last_ack: now,
    };
    let state = serde_json::to_value(&state).unwrap_or(Value::Null);
    let answer = json!({"config": stream.config, "state": state});
    Ok((job, answer))
}

/// Sends chunks up to the window. `Some(None)`: the archive is complete, `Some(Some(e))`:
/// it failed with status line `e`.
fn pump_job(
    stream: Option<&Stream>,
    j: &mut SnapshotJob,
    out: &mut Vec<Delivery>,
) -> Option<Option<String>> {
    let mut budget = TURN_BUDGET;
    while j.in_flight < j.window && budget > 0 {
        if let Err(e) = fill(stream, j) {
            return Some(Some(e));
        }
        if j.buf.is_empty() {
            return j.body_done.then_some(None);
        }
        let n = j.chunk.min(j.buf.len());
        budget = budget.saturating_sub(n);
        let rest = j.buf.split_off(n);
        let chunk = std::mem::replace(&mut j.buf, rest);
        j.index += 1;
        j.in_flight += 1;
        out.push(Delivery {
            subject: j.deliver.clone(),
            reply: Some(format!("{}.{}.{}", j.ack, chunk.len(), j.index)),
            headers: Vec::new(),
            payload: chunk,
            shown_subject: None,
        });
    }
    None
}

/// Reads the stream until a chunk's worth of archive is buffered or the archive ends.
fn fill(stream: Option<&Stream>, j: &mut SnapshotJob) -> Result<(), String> {
    while j.buf.len() < j.chunk && !j.body_done {
        if let Some(c) = j.consumers.pop_front() {
            archive::write_consumer(&mut j.buf, &c);
            continue;
        }
        let Some(stream) = stream else {
            return Err("500 stream deleted".to_owned());
        };
        let next = if j.next_seq > j.end_seq {
            None
        } else {
            match stream.store.load_next_msg("", j.next_seq) {
                Ok(m) if m.seq <= j.end_seq => Some(m),
                Ok(_) | Err(super::store::StoreError::Eof | super::store::StoreError::NotFound) => {
                    None
                }
                Err(x) => return Err(format!("500 {x}")),
            }
        };
        match next {
            Some(m) => {
                j.next_seq = m.seq + 1;
                j.msgs += 1;
                archive::write_msg(&mut j.buf, &m);
            }
            None => {
                archive::write_end(&mut j.buf, End { msgs: j.msgs });
                j.body_done = true;
            }
        }
    }
    Ok(())
}

/// The empty message that ends a snapshot, with a status header when it failed.
fn end_delivery(j: &SnapshotJob, error: Option<&str>) -> Delivery {
    // Go 2.9.10 ends with a bare empty message; 2.11 adds the status on failure.
    let headers = error
        .map(|e| format!("NATS/1.0 {e}\r\n\r\n").into_bytes())
        .unwrap_or_default();
    Delivery {
        subject: j.deliver.clone(),
        reply: None,
        headers,
        payload: Vec::new(),
        shown_subject: None,
    }
}

impl SnapshotJob {
    /// A chunk was acknowledged.
    fn acked(&mut self, now: UnixNanos) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.last_ack = now;
    }

    /// Has the receiver stopped acking (Go: "408 No Flow Response")?
    fn stalled(&self, now: UnixNanos) -> bool {
        self.in_flight > 0 && now.saturating_sub(self.last_ack) > ACK_TIMEOUT
    }

    /// When the job needs a turn: at once while its window has room, else when its oldest
    /// unacknowledged chunk times out.
    fn deadline(&self) -> UnixNanos {
        if self.in_flight < self.window {
            0
        } else {
            self.last_ack + ACK_TIMEOUT + 1
        }
    }
}

impl JetStream {
    /// A NUID-like id (22 base-62 characters) from the seeded event generator.
    pub(crate) fn snap_id(&mut self) -> String {
        const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        (0..22)
            .map(|_| A[self.events.below(A.len() as u64) as usize] as char)
            .collect()
    }

    fn snap_advisory(&mut self, pre: &str, kind: &str, stream: &str, now: UnixNanos, f: Value) {
        let mut fields = json!({"stream": stream, "client": Value::Null});
        if let (Value::Object(m), Value::Object(extra)) = (&mut fields, f) {
            m.extend(extra);
        }
        let d = self.event(
            format!("{pre}.{stream}"),
            &format!("{ADVISORY_TYPE}{kind}"),
            now,
            fields,
        );
        self.advisories.push(d);
    }

    /// `$JS.API.STREAM.SNAPSHOT.<stream>`: validates, starts a job, answers with the
    /// config and state (the chunks follow, see [`JetStream::pump_snapshots`]).
    pub(crate) fn api_snapshot(
        &mut self,
        name: &str,
        payload: &[u8],
        now: UnixNanos,
    ) -> Result<Value, ApiError> {
        // Go 2.9.10's order: empty body, stream, JSON, deliver subject.
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Err(err::bad_request());
        }
        if !self.streams.contains_key(name) {
            return Err(err::stream_not_found());
        }
        let id = self.snap_id();
        let e = self.streams.get(name).ok_or_else(err::stream_not_found)?;
        let (job, answer) = start_job(name, &e.stream, &e.consumers, payload, &id, now)?;
        self.snap.snapshots.push(job);
        self.snap_advisory(
            SNAPSHOT_CREATE,
            "snapshot_create",
            name,
            now,
            json!({"state": answer["state"].clone()}),
        );
        Ok(answer)
    }

    /// Sends what each snapshot's window allows; finished snapshots send their end.
    pub(crate) fn pump_snapshots(&mut self, now: UnixNanos) -> Vec<Delivery> {
        let mut out = Vec::new();
        let mut jobs = std::mem::take(&mut self.snap.snapshots);
        jobs.retain_mut(|j| {
            let r = pump_job(self.streams.get(&j.stream).map(|e| &e.stream), j, &mut out);
            if let Some(error) = &r {
                self.end_snapshot(j, error.as_deref(), now, &mut out);
            }
            r.is_none()
        });
        // A request handled while pumping cannot add jobs, but keep any that appeared.
        jobs.append(&mut self.snap.snapshots);
        self.snap.snapshots = jobs;
        out
    }

    /// The empty message that ends a snapshot (a status header when it failed) and the
    /// SNAPSHOT_COMPLETE advisory.
    fn end_snapshot(
        &mut self,
        j: &SnapshotJob,
        error: Option<&str>,
        now: UnixNanos,
        out: &mut Vec<Delivery>,
    ) {
        out.push(end_delivery(j, error));
        let mut f = json!({"start": rfc3339(j.start), "end": rfc3339(now)});
        if let Some(e) = error {
            f["error"] = json!(e);
        }
        self.snap_advisory(SNAPSHOT_COMPLETE, "snapshot_complete", &j.stream, now, f);
        out.append(&mut self.advisories);
    }

    /// A message on `$JS.SNAPSHOT.>`: a snapshot chunk's ack or a restore chunk.
    pub fn snapshot_msg(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        payload: &[u8],
        now: UnixNanos,
    ) -> Vec<Delivery> {
        if subject.starts_with(ACK_PREFIX) {
            // `<ack>.<len>.<index>`: the job is the subject minus its last two tokens.
            let mut it = subject.rsplitn(3, '.');
            let (_, _, Some(base)) = (it.next(), it.next(), it.next()) else {
                return Vec::new();
            };
            if let Some(j) = self.snap.snapshots.iter_mut().find(|j| j.ack == base) {
                j.acked(now);
            }
            return self.pump_snapshots(now);
        }
        if subject.starts_with(RESTORE_PREFIX) {
            return self.restore_chunk(subject, reply, payload, now);
        }
        Vec::new()
    }

    /// Timers: a snapshot whose receiver stopped acking ends (Go: "408 No Flow Response"), a
    /// restore that stopped receiving is dropped (Go: "is stalled").
    pub(crate) fn snapshot_tick(&mut self, now: UnixNanos) -> Vec<Delivery> {
        if self.snap.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let jobs = std::mem::take(&mut self.snap.snapshots);
        for j in jobs {
            if j.stalled(now) {
                self.end_snapshot(&j, Some("408 No Flow Response"), now, &mut out);
            } else {
                self.snap.snapshots.push(j);
            }
        }
        self.expire_restores(now);
        // Windows left half sent by the turn budget go on.
        out.extend(self.pump_snapshots(now));
        out
    }

    /// When the snapshots need [`JetStream::tick`]: at once while a window has room, else
    /// when the oldest unacknowledged chunk times out.
    pub(crate) fn snapshot_deadline(&self) -> Option<UnixNanos> {
        self.snap.snapshots.iter().map(SnapshotJob::deadline).min()
    }
}
