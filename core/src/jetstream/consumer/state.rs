//! A durable consumer's delivery state on disk: what it delivered, what waits for an ack (with
//! the time each delivery went out, so `ack_wait` keeps running across a restart) and how often
//! each message was delivered (so `max_deliver` and `num_delivered` keep counting).
//!
//! The config and ack floor live in the consumer's meta JSON ([`ConsumerMeta`]); this file
//! adds the rest. It is rewritten whole, atomically (temp file, sync, rename), at most once
//! per group commit and only for consumers whose state changed since (see
//! [`JetStream::save_consumer_states`]). Cost per write: O(pending + delivery counts), a few
//! bytes per outstanding message, never a write per ack.
//!
//! Layout (varints are LEB128; "delta" is a zigzag varint of the wrapping difference to the
//! previous value of that column, so any input round-trips):
//!
//! ```text
//! 0    magic "NCS" + version 1
//! 4    next_sseq cseq last_sseq floor_sseq floor_cseq redelivered   (varints)
//!      n_pending, then n × (sseq delta, cseq delta, sent delta)
//!      n_counts,  then n × (sseq delta, deliveries)
//!      n_nak,     then n × sseq delta
//! end  crc32c(all bytes before) u32 LE
//! ```

use super::{Consumer, ConsumerMeta, Pending};
use crate::jetstream::service::JetStream;
use crate::jetstream::store::crc::crc32c;
use crate::jetstream::store::{StreamStore, UnixNanos};

const MAGIC: &[u8; 4] = b"NCS\x01";

/// Everything a consumer tracks about its deliveries (config and pull requests aside).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DeliveryState {
    pub(crate) next_sseq: u64,
    pub(crate) cseq: u64,
    pub(crate) last_sseq: u64,
    pub(crate) floor_sseq: u64,
    pub(crate) floor_cseq: u64,
    /// (stream sequence, consumer sequence, when the ack timer started), by stream sequence.
    pub(crate) pending: Vec<(u64, u64, UnixNanos)>,
    /// (stream sequence, deliveries so far).
    pub(crate) deliveries: Vec<(u64, u64)>,
    /// Waiting for redelivery now (NAKed).
    pub(crate) redeliver: Vec<u64>,
    pub(crate) redelivered: u64,
}

impl Consumer {
    /// Its delivery state.
    pub(crate) fn delivery_state(&self) -> DeliveryState {
        DeliveryState {
            next_sseq: self.next_sseq,
            cseq: self.cseq,
            last_sseq: self.last_sseq,
            floor_sseq: self.ack_floor_sseq,
            floor_cseq: self.ack_floor_cseq,
            pending: self
                .pending
                .iter()
                .map(|(s, p)| (*s, p.cseq, p.sent))
                .collect(),
            deliveries: self.deliveries.iter().map(|(s, n)| (*s, *n)).collect(),
            redeliver: self.redeliver.iter().copied().collect(),
            redelivered: self.redelivered_count,
        }
    }

    /// Takes over `s` on top of the ack floor it already has (the higher floor wins: a state
    /// older than the meta loses what the floor covers). Sequences the store no longer holds
    /// are dropped, as an ack of a removed message would.
    pub(crate) fn apply_state(&mut self, s: DeliveryState, store: &dyn StreamStore) {
        let floor = self.ack_floor_sseq.max(s.floor_sseq);
        self.ack_floor_sseq = floor;
        self.ack_floor_cseq = self.ack_floor_cseq.max(s.floor_cseq);
        self.next_sseq = s.next_sseq.max(floor + 1);
        self.cseq = s.cseq.max(self.ack_floor_cseq);
        self.last_sseq = s.last_sseq.max(floor);
        let keep = |seq: u64| seq > floor && store.load_msg(seq).is_ok();
        self.pending = s
            .pending
            .into_iter()
            .filter(|p| keep(p.0))
            .map(|(seq, cseq, sent)| (seq, Pending { cseq, sent }))
            .collect();
        self.deliveries = s.deliveries.into_iter().filter(|d| keep(d.0)).collect();
        self.redeliver = s.redeliver.into_iter().filter(|s| keep(*s)).collect();
        self.redelivered_count = s.redelivered;
        self.recount(store);
    }

    /// Did its delivery state change since the last call?
    pub(crate) fn take_state_dirty(&mut self) -> bool {
        std::mem::take(&mut self.state_dirty)
    }
}

/// Rebuilds a durable from its meta and, when there is one, its state file. A state file that
/// fails its checksum or does not parse is reported in the error and ignored: the consumer
/// then resumes at the meta's ack floor (what was delivered past it is delivered again).
pub(crate) fn restore_durable(
    meta: ConsumerMeta,
    state: Option<Vec<u8>>,
    stream: String,
    store: &dyn StreamStore,
) -> (Consumer, Result<(), String>) {
    let mut c = Consumer::restore(meta, stream, store);
    let Some(bytes) = state else {
        return (c, Ok(()));
    };
    match decode(&bytes) {
        Ok(s) => {
            c.apply_state(s, store);
            (c, Ok(()))
        }
        Err(e) => (c, Err(e)),
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The zigzag varint of `v - prev` (wrapping), so unsorted columns stay short and lossless.
fn put_delta(out: &mut Vec<u8>, prev: &mut u64, v: u64) {
    let d = v.wrapping_sub(*prev) as i64;
    put_uvarint(out, ((d << 1) ^ (d >> 63)) as u64);
    *prev = v;
}

/// The state file's bytes.
pub(crate) fn encode(s: &DeliveryState) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + s.pending.len() * 6 + s.deliveries.len() * 3);
    out.extend_from_slice(MAGIC);
    for v in [
        s.next_sseq,
        s.cseq,
        s.last_sseq,
        s.floor_sseq,
        s.floor_cseq,
        s.redelivered,
    ] {
        put_uvarint(&mut out, v);
    }
    put_uvarint(&mut out, s.pending.len() as u64);
    let (mut ps, mut pc, mut pt) = (s.floor_sseq, s.floor_cseq, 0);
    for &(seq, cseq, sent) in &s.pending {
        put_delta(&mut out, &mut ps, seq);
        put_delta(&mut out, &mut pc, cseq);
        put_delta(&mut out, &mut pt, sent);
    }
    put_uvarint(&mut out, s.deliveries.len() as u64);
    let mut ps = s.floor_sseq;
    for &(seq, n) in &s.deliveries {
        put_delta(&mut out, &mut ps, seq);
        put_uvarint(&mut out, n);
    }
    put_uvarint(&mut out, s.redeliver.len() as u64);
    let mut ps = s.floor_sseq;
    for &seq in &s.redeliver {
        put_delta(&mut out, &mut ps, seq);
    }
    let crc = crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn uvarint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for (i, &byte) in self.b.iter().enumerate().take(10) {
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.b = &self.b[i + 1..];
                return Ok(v);
            }
        }
        Err("bad varint".to_owned())
    }

    fn delta(&mut self, prev: &mut u64) -> Result<u64, String> {
        let z = self.uvarint()?;
        let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
        *prev = prev.wrapping_add(d as u64);
        Ok(*prev)
    }

    /// A count of entries of at least `min` bytes each: never more than the bytes left, so a
    /// damaged count cannot make us allocate without bound.
    fn count(&mut self, min: usize) -> Result<usize, String> {
        let n = self.uvarint()?;
        usize::try_from(n)
            .ok()
            .filter(|n| n.saturating_mul(min) <= self.b.len())
            .ok_or_else(|| format!("count {n} exceeds the file"))
    }
}

/// Parses a state file, checking its magic and checksum.
pub(crate) fn decode(bytes: &[u8]) -> Result<DeliveryState, String> {
    if bytes.len() < MAGIC.len() + 4 {
        return Err(format!("truncated ({} bytes)", bytes.len()));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 4);
    let mut want = [0u8; 4];
    want.copy_from_slice(sum);
    if crc32c(body) != u32::from_le_bytes(want) {
        return Err("checksum mismatch".to_owned());
    }
    if &body[..4] != MAGIC {
        return Err("unknown format".to_owned());
    }
    let mut r = Reader { b: &body[4..] };
    let mut s = DeliveryState {
        next_sseq: r.uvarint()?,
        cseq: r.uvarint()?,
        last_sseq: r.uvarint()?,
        floor_sseq: r.uvarint()?,
        floor_cseq: r.uvarint()?,
        redelivered: r.uvarint()?,
        ..DeliveryState::default()
    };
    let n = r.count(3)?;
    let (mut ps, mut pc, mut pt) = (s.floor_sseq, s.floor_cseq, 0);
    s.pending.reserve(n);
    for _ in 0..n {
        let seq = r.delta(&mut ps)?;
        let cseq = r.delta(&mut pc)?;
        let sent = r.delta(&mut pt)?;
        s.pending.push((seq, cseq, sent));
    }
    let n = r.count(2)?;
    let mut ps = s.floor_sseq;
    s.deliveries.reserve(n);
    for _ in 0..n {
        let seq = r.delta(&mut ps)?;
        s.deliveries.push((seq, r.uvarint()?));
    }
    let n = r.count(1)?;
    let mut ps = s.floor_sseq;
    for _ in 0..n {
        s.redeliver.push(r.delta(&mut ps)?);
    }
    if !r.b.is_empty() {
        return Err("trailing bytes".to_owned());
    }
    Ok(s)
}

impl JetStream {
    /// Writes the state of every durable (of a file stream) whose deliveries, acks or timers
    /// changed since the last call, and the meta of those in `moved` (their ack floor moved).
    /// Called once per group commit: a busy consumer costs one state write per commit, however
    /// many messages it delivered or had acknowledged in between.
    pub(crate) fn save_consumer_states(&mut self, moved: Vec<(String, String)>) {
        let mut writes = Vec::new();
        for (sname, e) in self.streams.iter_mut() {
            let file = e.stream.config.storage != "memory";
            for (cname, c) in e.consumers.iter_mut() {
                if !c.take_state_dirty() || !file || !c.is_durable() {
                    continue;
                }
                writes.push((sname.clone(), cname.clone(), encode(&c.delivery_state())));
            }
        }
        // The state goes first: should the meta write fail or a crash come between the two,
        // the state holds the newer floor, and the higher floor wins at load.
        for (stream, name, bytes) in writes {
            if let Err(e) = self.factory.save_consumer_state(&stream, &name, &bytes) {
                tracing::warn!("JetStream: cannot save the state of consumer {stream}/{name}: {e}");
            }
        }
        for (stream, name) in moved {
            let Some(c) = self
                .streams
                .get(&stream)
                .and_then(|e| e.consumers.get(&name))
            else {
                continue;
            };
            let meta = serde_json::to_vec(&c.meta()).unwrap_or_default();
            if let Err(e) = self.factory.save_consumer(&stream, &name, &meta) {
                tracing::warn!("JetStream: cannot save consumer {stream}/{name}: {e}");
            }
        }
    }

    /// Durables whose state file was damaged when JetStream started, as
    /// `(stream, consumer, what was wrong)`: they resumed at their ack floor.
    pub fn damaged_consumers(&self) -> &[(String, String, String)] {
        &self.consumer_damage
    }
}
