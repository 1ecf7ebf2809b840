//! The messages of clustered JetStream between servers: Raft frames as internal requests in
//! the system account, carried by the cluster's routes like any other routed message.
//!
//! Subjects (natsd's own; nats-server's `$NRG.*` protocol is not spoken):
//!
//! * `$NATSD.RAFT.<node>`: a Raft RPC frame for node `<node>` (any group: the frame names
//!   it), with the reply subject `$NATSD.RAFTR.<sender>.<seq>` its answer goes to;
//! * `$NATSD.JSC.HB`: every clustered JetStream server's heartbeat (see the module docs of
//!   `cluster`), which is also how a server learns the others' node ids;
//! * `$NATSD.JSC.ELECT.<node>`: asks node `<node>` to campaign (the meta leader's stepdown);
//! * `$NATSD.JSC.CU.<node>.<group>`: asks node `<node>` for its replica of stream group
//!   `<group>`: its snapshot, or a window of catch-up chunks (see `repair`), answered on the
//!   asker's reply subject (one message, or one per chunk);
//! * `$NATSD.JSC.INFO`: the meta leader asks a stream's leader for the stream's (or its
//!   consumers') info, for the lists and account usage (see `gather`);
//! * `$NATSD.JSC.REAP`: a stream leader asks the meta leader to remove an idle consumer.
//!
//! A frame is handed to [`RaftHub::handle_frame`] on a task of its own, so a slow append never
//! holds up a vote. A node no heartbeat came from yet, or one nobody routes to, is
//! `Unreachable` at once (openraft backs off) rather than a timeout.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::rng::SplitMix64;
use natsd_core::router::{self, InternalSink, Message, PendingFlush, Publisher};
use natsd_raft::{BoxFuture, NodeId, RaftHub, RaftTransport, TransportError};
use tokio::sync::{mpsc, oneshot};

use crate::server::lock;

/// Prefix of Raft request subjects.
pub(super) const RAFT_PREFIX: &str = "$NATSD.RAFT.";
/// Prefix of Raft reply subjects.
pub(super) const REPLY_PREFIX: &str = "$NATSD.RAFTR.";
/// The heartbeat subject.
pub(super) const HEARTBEAT: &str = "$NATSD.JSC.HB";
/// Prefix of the campaign requests.
pub(super) const ELECT_PREFIX: &str = "$NATSD.JSC.ELECT.";
/// `$JS.API.SERVER.REMOVE` (Go: JSApiRemoveServer), heard in the system account and answered
/// by the meta leader.
pub(super) const SERVER_REMOVE: &str = "$JS.API.SERVER.REMOVE";
/// Prefix of the catch-up requests (see `repair`).
pub(super) const CATCHUP_PREFIX: &str = "$NATSD.JSC.CU.";
/// What the meta leader asks streams' leaders (see `gather`).
pub(super) const INFO: &str = "$NATSD.JSC.INFO";
/// A stream leader asks the meta leader to remove an idle consumer (see `consumers`).
pub(super) const REAP: &str = "$NATSD.JSC.REAP";
/// The meta leader stepdown request (Go: JSApiLeaderStepDown), answered by the meta leader.
pub(super) const META_STEPDOWN: &str = "$JS.API.META.LEADER.STEPDOWN";

/// Inbound messages waiting for the dispatcher; past this they are dropped (Raft retries).
const INBOUND: usize = 8192;

/// One message heard by the cluster's internal subscription.
#[derive(Debug)]
pub(super) struct Inbound {
    pub(super) subject: String,
    pub(super) reply: Option<String>,
    pub(super) payload: Bytes,
}

/// The system account subscription: hands what it hears to the dispatcher.
#[derive(Debug)]
pub(super) struct Sink {
    tx: mpsc::Sender<Inbound>,
}

impl InternalSink for Sink {
    fn deliver(&self, m: &Message<'_>) {
        let _ = self.tx.try_send(Inbound {
            subject: String::from_utf8_lossy(m.subject).into_owned(),
            reply: m.reply.map(|r| String::from_utf8_lossy(r).into_owned()),
            payload: m
                .shared
                .cloned()
                .unwrap_or_else(|| Bytes::copy_from_slice(m.payload)),
        });
    }
}

/// A new sink and the receiver of what it hears.
pub(super) fn sink() -> (Arc<Sink>, mpsc::Receiver<Inbound>) {
    let (tx, rx) = mpsc::channel(INBOUND);
    (Arc::new(Sink { tx }), rx)
}

/// Sends in the system account; answers Raft replies to this server's requests.
pub(super) struct Bus {
    me: NodeId,
    acc: Weak<Account>,
    rng: Mutex<SplitMix64>,
    seq: AtomicU64,
    pending: Mutex<BTreeMap<u64, oneshot::Sender<Bytes>>>,
    /// Reply subjects that take many answers (catch-up chunks), by sequence.
    inboxes: Mutex<BTreeMap<u64, mpsc::Sender<Bytes>>>,
    /// Node ids heard from (a heartbeat arrived), so frames to others fail fast.
    known: Mutex<std::collections::BTreeSet<NodeId>>,
}

impl Bus {
    pub(super) fn new(me: NodeId, acc: &Arc<Account>, seed: u64) -> Arc<Self> {
        Arc::new(Self {
            me,
            acc: Arc::downgrade(acc),
            rng: Mutex::new(SplitMix64::new(seed)),
            seq: AtomicU64::new(0),
            pending: Mutex::new(BTreeMap::new()),
            inboxes: Mutex::new(BTreeMap::new()),
            known: Mutex::new(std::collections::BTreeSet::new()),
        })
    }

    /// Marks `node` as heard from.
    pub(super) fn learn(&self, node: NodeId) {
        lock(&self.known).insert(node);
    }

    /// Publishes `payload` on `subject` (with `reply`) in the system account. False when the
    /// account is gone or nobody listens.
    pub(super) fn publish(&self, subject: &str, reply: Option<&str>, payload: Bytes) -> bool {
        let Some(acc) = self.acc.upgrade() else {
            return false;
        };
        if !acc.sublist.has_interest(subject.as_bytes()) {
            return false;
        }
        let mut rng = lock(&self.rng);
        let mut pending = PendingFlush::default();
        let mut p = Publisher {
            client: None,
            rng: &mut rng,
            now: crate::transport::now(),
            pending: &mut pending,
            cache: None,
            // Replies go to one-off subjects: keep them out of the match cache.
            transient: reply.is_none() && subject != HEARTBEAT,
        };
        let m = Message {
            subject: subject.as_bytes(),
            reply: reply.map(str::as_bytes),
            headers: None,
            payload: &payload,
            shared: Some(&payload),
        };
        router::publish(&acc, &mut p, &m);
        drop(rng);
        pending.flush();
        true
    }

    /// A reply to one of this server's frames arrived.
    pub(super) fn answered(&self, subject: &str, payload: Bytes) {
        let Some(seq) = subject
            .strip_prefix(REPLY_PREFIX)
            .and_then(|r| r.rsplit('.').next())
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return;
        };
        if let Some(tx) = lock(&self.pending).remove(&seq) {
            let _ = tx.send(payload);
        } else if let Some(tx) = lock(&self.inboxes).get(&seq) {
            // Full: dropped, as a lost chunk is (the catch-up asks again).
            let _ = tx.try_send(payload);
        }
    }

    /// A reply subject that takes up to `cap` unread answers, until the inbox is dropped.
    pub(super) fn inbox(self: &Arc<Self>, cap: usize) -> Inbox {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(cap.max(1));
        lock(&self.inboxes).insert(seq, tx);
        Inbox {
            bus: Arc::clone(self),
            seq,
            reply: format!("{REPLY_PREFIX}{}.{seq}", self.me),
            rx,
        }
    }

    /// Publishes a request on `subject` and waits up to `deadline` for its answer (which
    /// comes back on this server's reply subjects). `None`: nobody listens, or no answer in
    /// time.
    pub(super) async fn request(
        self: &Arc<Self>,
        subject: &str,
        payload: Bytes,
        deadline: std::time::Duration,
    ) -> Option<Bytes> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(seq, tx);
        let _guard = PendingGuard {
            bus: Arc::clone(self),
            seq,
        };
        let reply = format!("{REPLY_PREFIX}{}.{seq}", self.me);
        if !self.publish(subject, Some(&reply), payload) {
            return None;
        }
        tokio::time::timeout(deadline, rx).await.ok()?.ok()
    }

    /// The subject this server's replies come back on (subscribe to it with a wildcard).
    pub(super) fn reply_subjects(&self) -> String {
        format!("{REPLY_PREFIX}{}.*", self.me)
    }
}

/// A reply subject of this server and what arrives on it (see [`Bus::inbox`]).
pub(super) struct Inbox {
    bus: Arc<Bus>,
    seq: u64,
    /// The reply subject to hand out.
    pub(super) reply: String,
    /// The answers.
    pub(super) rx: mpsc::Receiver<Bytes>,
}

impl Drop for Inbox {
    fn drop(&mut self) {
        lock(&self.bus.inboxes).remove(&self.seq);
    }
}

/// Removes a pending request when its caller gives up (the deadline dropped the future).
struct PendingGuard {
    bus: Arc<Bus>,
    seq: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        lock(&self.bus.pending).remove(&self.seq);
    }
}

/// [`RaftTransport`] over the routes.
pub(super) struct RouteTransport(pub(super) Arc<Bus>);

impl RaftTransport for RouteTransport {
    fn send(
        &self,
        target: NodeId,
        frame: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let bus = Arc::clone(&self.0);
        Box::pin(async move {
            if !lock(&bus.known).contains(&target) {
                return Err(TransportError::Unreachable(format!(
                    "{target}: not heard from"
                )));
            }
            let seq = bus.seq.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            lock(&bus.pending).insert(seq, tx);
            let _guard = PendingGuard {
                bus: Arc::clone(&bus),
                seq,
            };
            let subject = format!("{RAFT_PREFIX}{target}");
            let reply = format!("{REPLY_PREFIX}{}.{seq}", bus.me);
            if !bus.publish(&subject, Some(&reply), Bytes::from(frame)) {
                return Err(TransportError::Unreachable(format!("{target}: no route")));
            }
            match rx.await {
                Ok(b) => Ok(b.to_vec()),
                Err(_) => Err(TransportError::Network("request dropped".to_owned())),
            }
        })
    }
}

/// Answers one incoming frame on a task of its own.
pub(super) fn serve_frame(bus: &Arc<Bus>, hub: &Arc<RaftHub>, m: Inbound) {
    let Some(reply) = m.reply else { return };
    let (bus, hub) = (Arc::clone(bus), Arc::clone(hub));
    tokio::spawn(async move {
        let answer = hub.handle_frame(&m.payload).await;
        bus.publish(&reply, None, Bytes::from(answer));
    });
}
