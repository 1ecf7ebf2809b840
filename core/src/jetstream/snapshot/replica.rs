//! Snapshots of clustered streams: the stream's leader reads its replica (the stream and
//! its live consumers) as [`super::JetStream`] reads one of its own streams, and sends the
//! same archive with the same flow control. The shell drives it: it answers the request
//! with [`ReplicaSnapshot::start`]'s answer, publishes what [`ReplicaSnapshot::pump`] gives
//! (reading the replica under its lock each time), feeds the acks it hears on
//! [`ReplicaSnapshot::ack_subject`]`.>` to [`ReplicaSnapshot::handle_ack`] and ends a
//! snapshot whose receiver went silent ([`ReplicaSnapshot::timed_out`]).

use serde_json::Value;

use super::archive::{self, Frame, Header, Reader};
use super::{end_delivery, pump_job, start_job, SnapshotJob};
use crate::jetstream::api::{err, ApiError, StreamConfig};
use crate::jetstream::cluster::entry::StreamEntry;
use crate::jetstream::cluster::ReplicatedStream;
use crate::jetstream::consumer::{Consumer, ConsumerSnap, Delivery};
use crate::jetstream::store::UnixNanos;
use crate::jetstream::stream::store_error;

/// One snapshot of a clustered stream being sent by its leader.
#[derive(Debug)]
pub struct ReplicaSnapshot {
    job: SnapshotJob,
    done: bool,
}

impl ReplicaSnapshot {
    /// `$JS.API.STREAM.SNAPSHOT.<name>` with `payload`, on the stream's leader: the job
    /// (its ack subjects named with `id`) and the answer's `config` and `state` (Go 2.9.10's
    /// checks, in its order: empty body, JSON, deliver subject).
    pub fn start(
        rs: &ReplicatedStream,
        name: &str,
        payload: &[u8],
        id: &str,
        now: UnixNanos,
    ) -> Result<(Self, Value), ApiError> {
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Err(err::bad_request());
        }
        let (job, answer) = start_job(name, &rs.stream, &rs.consumers, payload, id, now)?;
        Ok((Self { job, done: false }, answer))
    }

    /// `$JS.SNAPSHOT.ACK.<stream>.<id>`: the chunks' acks come on this subject plus two
    /// tokens (length and index).
    pub fn ack_subject(&self) -> &str {
        &self.job.ack
    }

    /// A chunk's ack arrived.
    pub fn handle_ack(&mut self, now: UnixNanos) {
        self.job.acked(now);
    }

    /// The chunks the window allows now, read from `rs` (`None`: the stream is gone), and
    /// the message that ends the archive once it is complete or failed.
    pub fn pump(&mut self, rs: Option<&ReplicatedStream>) -> Vec<Delivery> {
        let mut out = Vec::new();
        if self.done {
            return out;
        }
        if let Some(result) = pump_job(rs.map(|r| &r.stream), &mut self.job, &mut out) {
            out.push(end_delivery(&self.job, result.as_deref()));
            self.done = true;
        }
        out
    }

    /// Is the window full (nothing to send until an ack)?
    pub fn window_full(&self) -> bool {
        self.job.in_flight >= self.job.window
    }

    /// Has the archive been sent (or failed)?
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The receiver stopped acking: the message that ends the snapshot (Go: "408 No Flow
    /// Response"), once.
    pub fn timed_out(&mut self, now: UnixNanos) -> Option<Delivery> {
        if self.done || !self.job.stalled(now) {
            return None;
        }
        self.done = true;
        Some(end_delivery(&self.job, Some("408 No Flow Response")))
    }
}

/// A restore of a clustered stream, on the leader of the stream the meta group created for
/// it: each chunk's whole frames are stored on the leader's replica and become the entries
/// that store them on the other replicas (the leader's own path for sourced messages, so
/// sequences, times and gaps come out as they were). The durable consumers come back at the
/// end with their delivery state; the shell has the meta group assign them first (see
/// [`ReplicaRestore::new_consumers`]), since a leader keeps only the consumers the meta group
/// assigned.
#[derive(Debug, Default)]
pub struct ReplicaRestore {
    reader: Reader,
    header: Option<Header>,
    consumers: Vec<ConsumerSnap>,
    /// How many of `consumers` [`Self::new_consumers`] handed out.
    announced: usize,
    msgs: u64,
    ended: bool,
}

fn restore_failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, 10062, format!("restore failed: {e}"))
}

/// Go: JSApiStreamRestoreRequest (`state` is informative).
#[derive(Debug, serde::Deserialize)]
struct RestoreRequest {
    config: Option<StreamConfig>,
}

impl ReplicaRestore {
    /// The body of `$JS.API.STREAM.RESTORE.<name>` read as nats-server reads it: the stream
    /// config it asks for (named `name` when it names none), as JSON for the cluster's
    /// create checks.
    pub fn request_config(name: &str, payload: &[u8]) -> Result<Vec<u8>, ApiError> {
        if payload.iter().all(u8::is_ascii_whitespace) {
            return Err(err::bad_request());
        }
        let req: RestoreRequest = crate::jetstream::handlers::decode(payload)?;
        let mut cfg = req
            .config
            .ok_or_else(|| err::invalid_json("config required"))?;
        if cfg.name.is_empty() {
            cfg.name = name.to_owned();
        }
        Ok(serde_json::to_vec(&cfg).unwrap_or_default())
    }

    /// Archive bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.reader.total
    }

    /// One chunk: its whole frames stored on the leader's replica `rs`; the entries to
    /// propose. An error fails the restore.
    pub fn apply_chunk(
        &mut self,
        rs: &mut ReplicatedStream,
        payload: &[u8],
    ) -> Result<Vec<StreamEntry>, ApiError> {
        let before = rs.stream.store.state().last_seq;
        self.reader.push(payload);
        while let Some(f) = self.reader.next().map_err(restore_failed)? {
            if self.ended {
                return Err(restore_failed("corrupt snapshot: data after the end"));
            }
            match f {
                Frame::Header(h) if self.header.is_none() => {
                    if h.version != archive::VERSION {
                        return Err(restore_failed(format!(
                            "unknown snapshot version {}",
                            h.version
                        )));
                    }
                    self.header = Some(*h);
                }
                Frame::Header(_) => return Err(restore_failed("corrupt snapshot: two headers")),
                _ if self.header.is_none() => {
                    return Err(restore_failed("corrupt snapshot: no header"));
                }
                Frame::Consumer(c) => {
                    let snap: ConsumerSnap = serde_json::from_slice(&c)
                        .map_err(|e| restore_failed(format!("corrupt consumer: {e}")))?;
                    self.consumers.push(snap);
                }
                Frame::Msg(m) => {
                    if m.seq <= rs.stream.store.state().last_seq {
                        return Err(restore_failed("corrupt snapshot: sequences out of order"));
                    }
                    rs.stream.skip_to(m.seq, m.ts)?;
                    let (seq, _) = rs
                        .stream
                        .store
                        .store_msg(&m.subject, &m.headers, &m.payload, m.ts)
                        .map_err(|e| store_error(&e))?;
                    if seq != m.seq {
                        return Err(restore_failed(format!("message {} stored as {seq}", m.seq)));
                    }
                    self.msgs += 1;
                }
                Frame::End(e) => {
                    let want = self.header.as_ref().map_or(0, |h| h.consumers);
                    if e.msgs != self.msgs || want != self.consumers.len() as u64 {
                        return Err(restore_failed("corrupt snapshot: frames missing"));
                    }
                    self.ended = true;
                }
            }
        }
        Ok(rs.leader_stored(before, false))
    }

    /// The consumers met since the last call: (name, config as JSON) for the meta group to
    /// assign.
    pub fn new_consumers(&mut self) -> Vec<(String, Value)> {
        let fresh = &self.consumers[self.announced..];
        self.announced = self.consumers.len();
        fresh
            .iter()
            .map(|c| {
                let config = serde_json::to_value(&c.meta.config).unwrap_or(Value::Null);
                (c.meta.name.clone(), config)
            })
            .collect()
    }

    /// The empty last chunk: the archive must be whole. The stream's next sequence is put
    /// where it was (deletes past the last message) and each consumer is given its delivery
    /// state; the entries to propose.
    pub fn finish(&mut self, rs: &mut ReplicatedStream) -> Result<Vec<StreamEntry>, ApiError> {
        if !self.ended || self.reader.leftover() > 0 {
            return Err(restore_failed("snapshot truncated"));
        }
        let before = rs.stream.store.state().last_seq;
        if let Some(h) = &self.header {
            rs.stream.skip_to(h.last_seq + 1, h.last_ts)?;
        }
        let mut out = rs.leader_stored(before, false);
        let name = rs.stream.config.name.clone();
        for snap in std::mem::take(&mut self.consumers) {
            let c = Consumer::from_snap(snap, name.clone(), rs.stream.store.as_ref());
            let cname = c.name.clone();
            let meta = c.meta();
            if !rs.consumers.contains_key(&cname) {
                out.push(StreamEntry::ConsumerCreate {
                    last_seq: rs.stream.store.state().last_seq,
                    meta,
                });
            }
            rs.consumers.insert(cname.clone(), c);
            out.extend(rs.consumer_state_entry(&cname));
        }
        Ok(out)
    }
}
