//! What the router keeps per client connection: its bounded outbound queue, flags from
//! CONNECT, permissions, subscriptions by sid, counters, and how to wake its driver.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

use super::sids::SidMap;
use super::{lock, InterestHook, Message, Notifier, Subscription};

/// Adds to a counter that only writers holding one lock change (readers may be anywhere).
fn add(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}
use crate::account::Account;
use crate::auth::{PermissionChecker, ResponseTracker};
use crate::conn::CloseReason;
use crate::outbound::{Outbound, PushError, StallGate, COPY_THRESHOLD, READ_AHEAD_BYTES};
use crate::proto::client::MsgTemplate;

/// Counters of one connection.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Messages received from the client.
    pub in_msgs: AtomicU64,
    /// Payload bytes received from the client.
    pub in_bytes: AtomicU64,
    /// Messages delivered to the client.
    pub out_msgs: AtomicU64,
    /// Payload bytes delivered to the client.
    pub out_bytes: AtomicU64,
    /// The last measured PING round trip in nanoseconds; 0 until one was measured.
    pub rtt_nanos: AtomicU64,
}

/// What the router knows about a connection, shared by every task that delivers to it.
#[derive(Debug)]
pub struct ClientShared {
    /// Connection id.
    pub id: u64,
    pub(super) outbound: Mutex<Outbound>,
    /// The outbound queue's stall gate, readable without its lock.
    pub(super) gate: Arc<StallGate>,
    pub(super) notifier: Arc<dyn Notifier>,
    pub(super) close_reason: OnceLock<CloseReason>,
    pub(super) echo: AtomicBool,
    pub(super) no_responders: AtomicBool,
    pub(super) headers: AtomicBool,
    pub(super) perms: OnceLock<Arc<PermissionChecker>>,
    pub(super) responses: OnceLock<Mutex<ResponseTracker>>,
    pub(super) subs: Mutex<SidMap>,
    /// Message and byte counters.
    pub stats: ClientStats,
    /// Set when this connection's outbound queue hit `max_pending`.
    pub slow_consumer: AtomicBool,
    /// A publisher has queued bytes here and promised to wake the writer at the end of its
    /// batch (Go: client.go pcd, the per-client deferred flush set).
    pub(super) flush_pending: AtomicBool,
    /// Told about every subscription this connection adds or drops (cluster interest).
    pub(super) interest: OnceLock<Arc<dyn InterestHook>>,
}

impl ClientShared {
    /// A connection with an empty outbound queue bounded by `max_pending_bytes`.
    pub fn new(id: u64, max_pending_bytes: u64, notifier: Arc<dyn Notifier>) -> Arc<Self> {
        let outbound = Outbound::new(max_pending_bytes);
        let gate = Arc::clone(outbound.gate());
        Arc::new(Self {
            id,
            outbound: Mutex::new(outbound),
            gate,
            notifier,
            close_reason: OnceLock::new(),
            echo: AtomicBool::new(true),
            no_responders: AtomicBool::new(false),
            headers: AtomicBool::new(false),
            perms: OnceLock::new(),
            responses: OnceLock::new(),
            subs: Mutex::new(SidMap::default()),
            stats: ClientStats::default(),
            slow_consumer: AtomicBool::new(false),
            flush_pending: AtomicBool::new(false),
            interest: OnceLock::new(),
        })
    }

    /// Reports this connection's subscription changes to `hook` from now on (set once, before
    /// the first SUB).
    pub fn set_interest_hook(&self, hook: Arc<dyn InterestHook>) {
        let _ = self.interest.set(hook);
    }

    pub(super) fn interest_changed(&self, account: &Account, sub: &Subscription, added: bool) {
        if let Some(h) = self.interest.get() {
            h.interest_changed(&account.name, &sub.subject, sub.queue.as_deref(), added);
        }
    }

    /// Records what CONNECT said and who the client turned out to be.
    pub fn set_connected(
        &self,
        echo: bool,
        headers: bool,
        no_responders: bool,
        perms: Option<Arc<PermissionChecker>>,
    ) {
        self.echo.store(echo, Ordering::Relaxed);
        self.headers.store(headers, Ordering::Relaxed);
        self.no_responders.store(no_responders, Ordering::Relaxed);
        if let Some(p) = perms {
            if let Some(rp) = p.response_permission() {
                let _ = self.responses.set(Mutex::new(ResponseTracker::new(rp)));
            }
            let _ = self.perms.set(p);
        }
    }

    /// Queues protocol bytes of the connection's own (INFO, PONG, -ERR ...) and wakes the writer.
    pub fn send_control(&self, bytes: &[u8]) {
        lock(&self.outbound).push_control(bytes);
        // A protocol reply (PONG, +OK, -ERR) is small and latency-bound.
        self.notifier.notify_write_small();
    }

    /// Takes everything queued for writing; it stays pending until reported with
    /// [`Self::wrote`].
    pub fn drain_outbound(&self, out: &mut Vec<Bytes>) -> u64 {
        lock(&self.outbound).drain_into(out)
    }

    /// The writer wrote `n` of the bytes it took (may release stalled producers).
    pub fn wrote(&self, n: u64) {
        lock(&self.outbound).wrote(n);
    }

    /// Bytes not yet written: queued, or taken by the writer and not yet written.
    pub fn pending_bytes(&self) -> u64 {
        lock(&self.outbound).pending_bytes()
    }

    /// Bytes queued and not yet taken by the writer.
    pub fn queued_bytes(&self) -> u64 {
        lock(&self.outbound).queued_bytes()
    }

    /// Marks the connection closed for `reason` (the first reason wins) and wakes its driver.
    pub fn close(&self, reason: CloseReason) {
        self.close_first(reason);
    }

    /// Like [`Self::close`]; true when this call closed it.
    fn close_first(&self, reason: CloseReason) -> bool {
        if self.close_reason.set(reason).is_ok() {
            lock(&self.outbound).close();
            self.notifier.notify_close();
            return true;
        }
        false
    }

    /// The gate producers feeding this connection wait on (see [`crate::outbound`]).
    pub fn stall_gate(&self) -> &Arc<StallGate> {
        &self.gate
    }

    /// Why the connection closed, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason.get().copied()
    }

    /// Number of subscriptions.
    pub fn num_subs(&self) -> usize {
        lock(&self.subs).len()
    }

    /// The connection's subscriptions (subject, queue, sid), sorted by sid.
    pub fn subscriptions(&self) -> Vec<(Bytes, Option<Bytes>, Bytes)> {
        let subs = lock(&self.subs);
        subs.sorted()
            .into_iter()
            .map(|(sid, s)| (s.0.subject.clone(), s.0.queue.clone(), sid.clone()))
            .collect()
    }

    /// Queues `m` for this connection's subscription `sub` (`sid`). `t` is the message's
    /// shared encoding (filled here by the first receiver of the publish). Returns the
    /// delivery's number on the subscription, the subscription's max (0: none) and whether
    /// the writer has more than [`crate::outbound::READ_AHEAD_BYTES`] queued and not yet taken,
    /// or `None` when nothing was queued (past the max, a slow consumer, closed).
    pub(super) fn deliver(
        &self,
        sub: &Subscription,
        sid: &[u8],
        m: &Message<'_>,
        t: &mut MsgTemplate,
    ) -> Option<(u64, u64, bool)> {
        let total = m.headers.map_or(0, <[u8]>::len) + m.payload.len();
        let by_ref = m.shared.filter(|_| m.payload.len() > COPY_THRESHOLD);
        if !t.is_filled() {
            t.fill(m.subject, m.reply, m.headers, m.payload, by_ref.is_none());
        }
        let mut out = lock(&self.outbound);
        // Every delivery to this connection, and every UNSUB max set on it, holds this lock:
        // the counters below have one writer at a time, so they take plain adds instead of a
        // locked read-modify-write each per delivery (what a fan-out pays per receiver).
        let n = sub.delivered.load(Ordering::Relaxed) + 1;
        sub.delivered.store(n, Ordering::Relaxed);
        let max = sub.max.load(Ordering::Relaxed);
        if max > 0 && n > max {
            return None;
        }
        let res = out.push_template(t, sid, by_ref);
        match res {
            Ok(_) => {
                add(&self.stats.out_msgs, 1);
                add(&self.stats.out_bytes, total as u64);
                let behind = out.queued_bytes() > READ_AHEAD_BYTES;
                drop(out);
                // No wake-up here: the caller lists the receiver in its `PendingFlush` (or wakes
                // it itself), so the writer is woken once per batch, not once per message.
                Some((n, max, behind))
            }
            Err(PushError::SlowConsumer) => {
                drop(out);
                self.slow_consumer.store(true, Ordering::Relaxed);
                if self.close_first(CloseReason::SlowConsumerPendingBytes) {
                    let max = lock(&self.outbound).max_pending_bytes();
                    // Go: client.go queueOutbound (Noticef), word for word.
                    tracing::info!(
                        cid = self.id,
                        "Slow Consumer Detected: MaxPending of {max} Exceeded"
                    );
                }
                None
            }
            Err(PushError::Closed) => None,
        }
    }
}
