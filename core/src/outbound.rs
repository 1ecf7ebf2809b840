//! A connection's bounded outbound queue, with slow-consumer accounting.
//!
//! Producers (the connection itself and every publisher that delivers to it) append; the
//! connection's writer drains whole batches and writes them vectored. Small payloads are copied
//! into a shared tail buffer (one memcpy is cheaper than an extra iovec and refcount); large ones
//! are queued as the publisher's refcounted `Bytes`, never copied per subscriber.
//!
//! # Back-pressure: the stall gate
//!
//! A queue whose pending bytes pass half of `max_pending` opens its [`StallGate`]. A client
//! connection that delivered to a receiver with an open gate stops reading its own socket once
//! its current read is routed, and waits until the gate is released or [`stall_duration`] has
//! passed, whichever comes first: a fast publisher is slowed to its subscriber's pace instead
//! of the subscriber being cut. The gate is released by the writer's progress, on the write
//! that leaves everything it took written or pending below half of `max_pending`, or when the
//! connection closes.
//!
//! Pending bytes are everything not yet written: what is queued here plus what the writer took
//! and has not written yet ([`Outbound::drain_into`] moves bytes from one to the other,
//! [`Outbound::wrote`] retires them), as nats-server counts `c.out.pb`. So a receiver whose
//! writer is blocked on a full socket still fills up towards `max_pending` and is cut there.
//!
//! The wait is bounded: [`STALL_MIN`] (100 ms) while pending is at half of `max_pending`,
//! growing by [`STALL_MIN`] for every further twentieth of `max_pending`, and [`STALL_MAX`]
//! (1 s) from `max_pending` on. Nothing is dropped while a producer waits. A receiver that
//! really stopped reading is still closed: at `max_pending` ([`PushError::SlowConsumer`]) or
//! when a write makes no progress within `write_deadline` (the shell's business).
//!
//! Go: server/client.go (2.9) queueOutbound opens `c.out.stc` above `mp/2`; deliverMsg makes a
//! CLIENT producer wait in stalledWait for `stallDuration(pb, mp)`; flushOutbound closes the
//! channel once a flush wrote everything it attempted or left `pb` below `mp/2`. A connection
//! whose pending bytes pass `max_pending` is a slow consumer and is closed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::proto::client::MsgTemplate;

/// Payloads up to this size are copied into the tail buffer instead of queued by reference.
pub const COPY_THRESHOLD: usize = 2048;

/// Bytes a receiver's writer may leave untaken before a producer that just delivered to it
/// lets the writer run ahead of its next read ([`Stall::writers_behind`]). Not a stall: the
/// producer only yields its turn once, it never waits on the receiver.
///
/// Why: a producer whose socket always has input (an open-loop publisher) would otherwise
/// read on until its runtime's cooperative budget runs out, and when it shares a core with the
/// receivers' writers their queues grow to the stall threshold (half of `max_pending`, 32 MiB
/// each by default) before they are written: 8 receivers of a 1→8 fan-out then held 256 MiB
/// between them, written from memory long out of cache. nats-server keeps them about one read
/// deep by flushing them from the reader (Go: client.go flushClients). Two reads of 64 KiB
/// fanned out fit this bound.
pub const READ_AHEAD_BYTES: u64 = 128 * 1024;

/// Why a push was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// Pending bytes would pass `max_pending`: the connection is a slow consumer.
    #[error("slow consumer: pending bytes exceed max_pending")]
    SlowConsumer,
    /// The connection is closing; nothing more is queued.
    #[error("connection closed")]
    Closed,
}

/// The shortest a producer waits on an open gate (Go 2.9: stallClientMinDuration).
pub const STALL_MIN: Duration = Duration::from_millis(100);
/// The longest a producer waits on an open gate (Go 2.9: stallClientMaxDuration).
pub const STALL_MAX: Duration = Duration::from_secs(1);

/// How long a producer waits on a gate whose queue holds `pending` of `max` bytes: the
/// minimum up to half full, one more minimum per further twentieth, the maximum once full.
/// Go: client.go stallDuration.
pub fn stall_duration(pending: u64, max: u64) -> Duration {
    if pending >= max {
        return STALL_MAX;
    }
    let half = max / 2;
    if pending <= half {
        return STALL_MIN;
    }
    let step = (half / 10).max(1);
    let steps = u32::try_from((pending - half) / step).unwrap_or(u32::MAX);
    STALL_MIN
        .saturating_mul(steps.saturating_add(1))
        .min(STALL_MAX)
}

/// Whether producers feeding one connection should wait (see the module docs). Shared by the
/// connection's queue, which opens and releases it, and the producers, which check it without
/// a lock and wait on it through [`StallGate::poll_released`] (runtime-neutral: any executor,
/// real or simulated time, drives the wait).
#[derive(Debug, Default)]
pub struct StallGate {
    open: AtomicBool,
    /// How long a producer arriving now should wait at most, in nanoseconds.
    ttl_nanos: AtomicU64,
    waiters: Mutex<GateWaiters>,
}

#[derive(Debug, Default)]
struct GateWaiters {
    /// Bumped on every release, so a waiter never misses a release followed by a reopen.
    epoch: u64,
    wakers: Vec<Waker>,
}

impl StallGate {
    /// Is the gate open (producers should wait)?
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// The wait a producer arriving now is allowed.
    pub fn ttl(&self) -> Duration {
        Duration::from_nanos(self.ttl_nanos.load(Ordering::Relaxed))
    }

    /// The current release count: pass it to [`StallGate::poll_released`].
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateWaiters> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the gate, or updates the wait while it is open (for queues kept outside
    /// [`Outbound`], such as a route's).
    pub fn hold_for(&self, ttl: Duration) {
        self.hold(ttl);
    }

    /// Opens the gate, or updates the wait while it is open.
    fn hold(&self, ttl: Duration) {
        let nanos = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
        self.ttl_nanos.store(nanos, Ordering::Relaxed);
        if !self.open.load(Ordering::Relaxed) {
            self.open.store(true, Ordering::Release);
        }
    }

    /// Releases the gate and wakes every waiting producer. A no-op when closed.
    pub fn release(&self) {
        if !self.open.load(Ordering::Acquire) {
            return;
        }
        let wakers = {
            let mut w = self.lock();
            self.open.store(false, Ordering::Release);
            w.epoch += 1;
            std::mem::take(&mut w.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Ready once the gate was released after `epoch` was read (or is not open).
    pub fn poll_released(&self, epoch: u64, cx: &mut Context<'_>) -> Poll<()> {
        let mut w = self.lock();
        if w.epoch != epoch || !self.open.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        // One entry per waiting task: a re-poll replaces, never adds.
        if !w.wakers.iter().any(|k| k.will_wake(cx.waker())) {
            w.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Gates a producer should wait on, with the longest wait any of them allows.
#[derive(Debug, Default)]
pub struct Stall {
    gates: Vec<(Arc<StallGate>, u64)>,
    ttl: Duration,
    /// A receiver's writer has more than [`READ_AHEAD_BYTES`] queued and not yet taken.
    writers_behind: bool,
}

/// A batch records at most this many distinct gates: waiting on the first few with the
/// longest allowed wait already holds the producer back; the rest are checked next batch.
const MAX_STALL_GATES: usize = 8;

impl Stall {
    /// Records `gate` (open) with the epoch it is at now.
    pub fn add(&mut self, gate: &Arc<StallGate>) {
        if self.gates.iter().any(|(g, _)| Arc::ptr_eq(g, gate)) {
            return;
        }
        if self.gates.len() < MAX_STALL_GATES {
            self.gates.push((Arc::clone(gate), gate.epoch()));
        }
        self.ttl = self.ttl.max(gate.ttl());
    }

    /// Nothing to wait on?
    pub fn is_empty(&self) -> bool {
        self.gates.is_empty()
    }

    /// Notes that a receiver's writer has more than [`READ_AHEAD_BYTES`] not yet taken.
    pub fn note_writer_behind(&mut self) {
        self.writers_behind = true;
    }

    /// Should the producer let the receivers' writers run before its next read? (See
    /// [`READ_AHEAD_BYTES`]; independent of the gates, which make it wait.)
    pub fn writers_behind(&self) -> bool {
        self.writers_behind
    }

    /// Adds what `other` recorded (a batch handled in several steps).
    pub fn absorb(&mut self, other: Self) {
        for (g, epoch) in other.gates {
            if self.gates.len() < MAX_STALL_GATES
                && !self.gates.iter().any(|(h, _)| Arc::ptr_eq(h, &g))
            {
                self.gates.push((g, epoch));
            }
        }
        self.ttl = self.ttl.max(other.ttl);
        self.writers_behind |= other.writers_behind;
    }

    /// The longest wait the recorded gates allow.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The gates with the epoch read when each was recorded, for
    /// [`StallGate::poll_released`].
    pub fn gates(&self) -> &[(Arc<StallGate>, u64)] {
        &self.gates
    }

    /// Ready once every recorded gate was released (the caller bounds the wait by
    /// [`Stall::ttl`]).
    pub fn poll_released(&self, cx: &mut Context<'_>) -> Poll<()> {
        for (g, epoch) in &self.gates {
            if g.poll_released(*epoch, cx).is_pending() {
                return Poll::Pending;
            }
        }
        Poll::Ready(())
    }
}

/// The outbound queue of one connection.
#[derive(Debug)]
pub struct Outbound {
    queue: VecDeque<Bytes>,
    tail: BytesMut,
    /// Bytes queued here, not yet taken by the writer.
    queued_bytes: u64,
    /// Bytes the writer took and has not reported written yet.
    in_flight_bytes: u64,
    max_pending_bytes: u64,
    closed: bool,
    gate: Arc<StallGate>,
}

impl Outbound {
    /// An empty queue bounded by `max_pending_bytes`.
    pub fn new(max_pending_bytes: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            tail: BytesMut::new(),
            queued_bytes: 0,
            in_flight_bytes: 0,
            max_pending_bytes,
            closed: false,
            gate: Arc::default(),
        }
    }

    /// The gate producers check before reading more (see the module docs).
    pub fn gate(&self) -> &Arc<StallGate> {
        &self.gate
    }

    /// The bound this queue was made with.
    pub fn max_pending_bytes(&self) -> u64 {
        self.max_pending_bytes
    }

    /// Opens (or refreshes) the gate once pending passes half of `max_pending`.
    /// Go: client.go queueOutbound — `pb > mp/2` makes the stall channel.
    #[inline]
    fn check_stall(&self) {
        let pending = self.pending_bytes();
        if pending > self.max_pending_bytes / 2 {
            self.gate
                .hold(stall_duration(pending, self.max_pending_bytes));
        }
    }

    /// Bytes not yet written: queued, or taken by the writer and not yet written
    /// (Go: `c.out.pb`).
    #[inline]
    pub fn pending_bytes(&self) -> u64 {
        self.queued_bytes + self.in_flight_bytes
    }

    /// Bytes queued and not yet taken by the writer.
    #[inline]
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes
    }

    /// Is there nothing queued for the writer to take?
    pub fn is_empty(&self) -> bool {
        self.queued_bytes == 0
    }

    /// No more pushes are accepted; what is queued may still be drained.
    pub fn close(&mut self) {
        self.closed = true;
        // Nobody waits for a connection that is going away.
        self.gate.release();
    }

    /// Has [`Outbound::close`] been called?
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    #[inline]
    fn admit(&self, len: usize) -> Result<(), PushError> {
        if self.closed {
            return Err(PushError::Closed);
        }
        if self.pending_bytes() + len as u64 > self.max_pending_bytes {
            return Err(PushError::SlowConsumer);
        }
        Ok(())
    }

    /// Queues protocol bytes the connection itself produced (INFO, PONG, -ERR, ...). These are
    /// never refused for size: they are small and bounded by the connection's own input.
    pub fn push_control(&mut self, bytes: &[u8]) {
        if self.closed {
            return;
        }
        self.tail.extend_from_slice(bytes);
        self.queued_bytes += bytes.len() as u64;
    }

    /// Queues one message: a control line written by `write_header` into the tail, then the
    /// payload (copied when small, by reference when large), then CRLF.
    pub fn push_msg(
        &mut self,
        header_len_hint: usize,
        write_header: impl FnOnce(&mut BytesMut),
        payload: &Bytes,
    ) -> Result<usize, PushError> {
        self.push_msg_from(header_len_hint, write_header, payload, Some(payload))
    }

    /// Like [`Self::push_msg`] for a borrowed payload; `shared`, when given, holds the same bytes
    /// refcounted, and a large payload is then queued by reference instead of copied.
    pub fn push_msg_from(
        &mut self,
        header_len_hint: usize,
        write_header: impl FnOnce(&mut BytesMut),
        payload: &[u8],
        shared: Option<&Bytes>,
    ) -> Result<usize, PushError> {
        self.admit(header_len_hint + payload.len() + 2)?;
        let before = self.tail.len();
        write_header(&mut self.tail);
        let header_len = self.tail.len() - before;
        match shared {
            Some(b) if payload.len() > COPY_THRESHOLD => {
                debug_assert_eq!(&b[..], payload);
                self.seal_tail();
                self.queue.push_back(b.clone());
            }
            _ => self.tail.extend_from_slice(payload),
        }
        self.tail.extend_from_slice(b"\r\n");
        let total = header_len + payload.len() + 2;
        self.queued_bytes += total as u64;
        self.check_stall();
        Ok(total)
    }

    /// Queues one message encoded once by a [`MsgTemplate`] for all its receivers, completed
    /// with this receiver's `sid`. `by_ref` is the payload when the template does not hold it
    /// inline (large payloads are queued by reference, never copied per receiver).
    // Inlined (with the template's `write_to`) into the per-receiver delivery: out of line,
    // the calls' register saves and restores were a tenth of a fan-out's instructions per
    // delivery (callgrind).
    #[inline]
    pub fn push_template(
        &mut self,
        t: &mut MsgTemplate,
        sid: &[u8],
        by_ref: Option<&Bytes>,
    ) -> Result<usize, PushError> {
        debug_assert_eq!(t.payload_inline(), by_ref.is_none());
        let total = t.encoded_len(sid) + by_ref.map_or(0, |b| b.len() + 2);
        self.admit(total)?;
        t.write_to(&mut self.tail, sid);
        if let Some(b) = by_ref {
            self.seal_tail();
            self.queue.push_back(b.clone());
            self.tail.extend_from_slice(b"\r\n");
        }
        self.queued_bytes += total as u64;
        self.check_stall();
        Ok(total)
    }

    #[inline]
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.queue.push_back(self.tail.split().freeze());
        }
    }

    /// Moves everything queued into `out`, in order, and returns the number of bytes moved.
    /// They stay pending until the writer reports them written with [`Outbound::wrote`].
    pub fn drain_into(&mut self, out: &mut Vec<Bytes>) -> u64 {
        self.seal_tail();
        out.extend(self.queue.drain(..));
        let n = self.queued_bytes;
        self.queued_bytes = 0;
        self.in_flight_bytes += n;
        debug_assert!(self.queue.is_empty() && self.tail.is_empty());
        // Keep the tail's allocation from growing without bound after a burst.
        if self.tail.capacity() > 1 << 20 {
            self.tail = BytesMut::new();
        }
        n
    }

    /// The writer wrote `n` of the bytes it took. Releases the gate once everything it took is
    /// written or what is pending fell below half of `max_pending`: the receiver caught up.
    /// Go: client.go flushOutbound closes the stall channel when `n == attempted` or
    /// `pb < mp/2`.
    pub fn wrote(&mut self, n: u64) {
        debug_assert!(
            n <= self.in_flight_bytes,
            "wrote {n} of {}",
            self.in_flight_bytes
        );
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(n);
        if self.in_flight_bytes == 0 || self.pending_bytes() < self.max_pending_bytes / 2 {
            self.gate.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes everything queued and writes it all.
    fn collect(o: &mut Outbound) -> Vec<u8> {
        let mut v = Vec::new();
        let n = o.drain_into(&mut v);
        o.wrote(n);
        v.concat()
    }

    #[test]
    fn small_and_large_payloads_keep_order() {
        let mut o = Outbound::new(1 << 20);
        o.push_control(b"PONG\r\n");
        let small = Bytes::from_static(b"hi");
        o.push_msg(16, |b| b.extend_from_slice(b"MSG a 1 2\r\n"), &small)
            .unwrap();
        let large = Bytes::from(vec![b'x'; 5000]);
        o.push_msg(16, |b| b.extend_from_slice(b"MSG a 1 5000\r\n"), &large)
            .unwrap();
        o.push_control(b"PING\r\n");
        let pending = o.pending_bytes();
        let out = collect(&mut o);
        assert_eq!(out.len() as u64, pending);
        let mut want = b"PONG\r\nMSG a 1 2\r\nhi\r\nMSG a 1 5000\r\n".to_vec();
        want.extend(std::iter::repeat_n(b'x', 5000));
        want.extend_from_slice(b"\r\nPING\r\n");
        assert_eq!(out, want);
        assert!(o.is_empty());
    }

    #[test]
    fn slow_consumer_when_over_max_pending() {
        let mut o = Outbound::new(100);
        let p = Bytes::from(vec![0u8; 60]);
        o.push_msg(10, |b| b.extend_from_slice(b"MSG a 1 60\r\n"), &p)
            .unwrap();
        assert_eq!(
            o.push_msg(10, |b| b.extend_from_slice(b"MSG a 1 60\r\n"), &p),
            Err(PushError::SlowConsumer)
        );
        // Draining frees room again.
        collect(&mut o);
        assert!(o
            .push_msg(10, |b| b.extend_from_slice(b"MSG a 1 60\r\n"), &p)
            .is_ok());
    }

    #[test]
    fn template_pushes_match_push_msg() {
        let small = Bytes::from_static(b"hello");
        let large = Bytes::from(vec![b'y'; COPY_THRESHOLD + 1]);
        for (payload, inline) in [(&small, true), (&large, false)] {
            let mut t = MsgTemplate::default();
            t.fill(b"a.b", Some(b"r.1"), None, payload, inline);
            let mut old = Outbound::new(1 << 20);
            let mut new = Outbound::new(1 << 20);
            for sid in [&b"1"[..], b"22", b"333"] {
                old.push_msg(
                    8,
                    |b| {
                        crate::proto::client::encode_msg_header(
                            b,
                            b"a.b",
                            sid,
                            Some(b"r.1"),
                            payload.len(),
                        )
                    },
                    payload,
                )
                .unwrap();
                new.push_template(&mut t, sid, (!inline).then_some(payload))
                    .unwrap();
            }
            assert_eq!(old.pending_bytes(), new.pending_bytes());
            assert_eq!(collect(&mut old), collect(&mut new));
        }
        let mut t = MsgTemplate::default();
        t.fill(b"a", None, None, &[0; 60], true);
        let mut o = Outbound::new(100);
        o.push_template(&mut t, b"1", None).unwrap();
        assert_eq!(
            o.push_template(&mut t, b"1", None),
            Err(PushError::SlowConsumer)
        );
    }

    fn msg(o: &mut Outbound, len: usize) -> Result<usize, PushError> {
        let p = Bytes::from(vec![0u8; len]);
        o.push_msg(10, |b| b.extend_from_slice(b"MSG a 1 0\r\n"), &p)
    }

    #[test]
    fn gate_opens_past_half_and_releases_on_drain() {
        let mut o = Outbound::new(1000);
        let gate = Arc::clone(o.gate());
        msg(&mut o, 400).unwrap();
        assert!(!gate.is_open(), "at 413 of 1000 no producer waits");
        msg(&mut o, 200).unwrap();
        assert!(gate.is_open());
        assert_eq!(gate.ttl(), stall_duration(o.pending_bytes(), 1000));
        let epoch = gate.epoch();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(gate.poll_released(epoch, &mut cx).is_pending());
        collect(&mut o);
        assert!(!gate.is_open());
        assert!(gate.poll_released(epoch, &mut cx).is_ready());
        // Reopened after a release: an old epoch still counts as released.
        msg(&mut o, 600).unwrap();
        assert!(gate.is_open());
        assert!(gate.poll_released(epoch, &mut cx).is_ready());
        o.close();
        assert!(!gate.is_open(), "closing releases every producer");
    }

    #[test]
    fn stall_waits_for_every_gate_and_keeps_the_longest_wait() {
        let (mut a, mut b) = (Outbound::new(1000), Outbound::new(100_000));
        msg(&mut a, 900).unwrap();
        msg(&mut b, 60_000).unwrap();
        let mut stall = Stall::default();
        stall.add(a.gate());
        stall.add(a.gate());
        let mut other = Stall::default();
        other.add(b.gate());
        stall.absorb(other);
        assert_eq!(stall.gates().len(), 2, "one entry per gate");
        assert_eq!(stall.ttl(), STALL_MIN * 9);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(stall.poll_released(&mut cx).is_pending());
        collect(&mut a);
        assert!(stall.poll_released(&mut cx).is_pending(), "b is still full");
        collect(&mut b);
        assert!(stall.poll_released(&mut cx).is_ready());
    }

    #[test]
    fn stall_duration_grows_from_half_to_full() {
        assert_eq!(stall_duration(0, 1000), STALL_MIN);
        assert_eq!(stall_duration(500, 1000), STALL_MIN);
        assert_eq!(stall_duration(550, 1000), STALL_MIN * 2);
        assert_eq!(stall_duration(600, 1000), STALL_MIN * 3);
        assert_eq!(stall_duration(700, 1000), STALL_MIN * 5);
        assert_eq!(stall_duration(999, 1000), STALL_MAX);
        assert_eq!(stall_duration(1000, 1000), STALL_MAX);
        assert_eq!(stall_duration(5000, 1000), STALL_MAX);
        assert_eq!(stall_duration(1, 1), STALL_MAX);
        assert_eq!(stall_duration(0, 0), STALL_MAX);
    }

    #[test]
    fn bytes_taken_but_not_written_count_towards_max_pending() {
        let mut o = Outbound::new(1000);
        msg(&mut o, 400).unwrap();
        let mut taken = Vec::new();
        let n = o.drain_into(&mut taken);
        // The writer is blocked on a full socket: what it took is still pending.
        assert_eq!(o.pending_bytes(), n);
        assert!(o.is_empty(), "nothing left for the writer to take");
        msg(&mut o, 400).unwrap();
        assert_eq!(
            msg(&mut o, 400),
            Err(PushError::SlowConsumer),
            "a stuck writer's receiver is cut at max_pending"
        );
        o.wrote(n);
        assert_eq!(o.pending_bytes(), o.queued_bytes());
        assert!(msg(&mut o, 400).is_ok());
    }

    #[test]
    fn gate_released_by_write_progress() {
        let mut o = Outbound::new(1000);
        let gate = Arc::clone(o.gate());
        msg(&mut o, 700).unwrap();
        assert!(gate.is_open());
        let mut taken = Vec::new();
        let n = o.drain_into(&mut taken);
        assert!(gate.is_open(), "taking is not writing");
        o.wrote(100);
        assert!(gate.is_open(), "still above half of max_pending");
        o.wrote(150);
        assert!(
            !gate.is_open(),
            "below half: released before the write completes"
        );
        o.wrote(n - 250);
        assert_eq!(o.pending_bytes(), 0);
        // Reopened by more deliveries, released when everything taken is written even while
        // what is queued keeps pending above half.
        msg(&mut o, 90).unwrap();
        let n = o.drain_into(&mut taken);
        msg(&mut o, 600).unwrap();
        assert!(gate.is_open());
        o.wrote(n);
        assert!(o.pending_bytes() > 500);
        assert!(!gate.is_open(), "everything taken was written");
    }

    #[test]
    fn closed_refuses() {
        let mut o = Outbound::new(100);
        o.close();
        let p = Bytes::from_static(b"x");
        assert_eq!(o.push_msg(1, |_| {}, &p), Err(PushError::Closed));
        o.push_control(b"PING\r\n");
        assert!(o.is_empty());
    }
}
