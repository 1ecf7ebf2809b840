//! Snapshots of clustered streams: the stream's leader reads its replica (the stream and
//! its live consumers) as [`super::JetStream`] reads one of its own streams, and sends the
//! same archive with the same flow control. The shell drives it: it answers the request
//! with [`ReplicaSnapshot::start`]'s answer, publishes what [`ReplicaSnapshot::pump`] gives
//! (reading the replica under its lock each time), feeds the acks it hears on
//! [`ReplicaSnapshot::ack_subject`]`.>` to [`ReplicaSnapshot::handle_ack`] and ends a
//! snapshot whose receiver went silent ([`ReplicaSnapshot::timed_out`]).

use serde_json::Value;

use super::{end_delivery, pump_job, start_job, SnapshotJob};
use crate::jetstream::api::{err, ApiError};
use crate::jetstream::cluster::ReplicatedStream;
use crate::jetstream::consumer::Delivery;
use crate::jetstream::store::UnixNanos;

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
