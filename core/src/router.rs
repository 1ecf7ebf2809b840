//! Message routing within and across accounts.
//!
//! The publish path (DESIGN.md): the publisher's own task matches the subject in its account's
//! sublist and appends the refcounted payload to each receiver's bounded [`Outbound`](crate::outbound::Outbound), then
//! wakes that receiver's writer through its [`Notifier`]. No global lock and no channel hop per
//! message: the only locks taken are the sublist's (read, or its cache) and each receiver's
//! outbound queue.
//!
//! Delivery rules, each with its nats-server counterpart:
//! * echo off: a connection does not get its own messages (Go: client.go deliverMsg);
//! * queue groups: one member per group per message, picked by the publisher's seeded
//!   generator, the next member tried when the first cannot take it;
//! * auto-unsubscribe: a subscription with a max is removed once it has delivered that many;
//! * permissions: a subscription that overlaps a subscribe deny is re-checked per message
//!   (the advisories GHSA-wh7g-5m82-pmhr and CVE-2022-29946 are this bug);
//! * slow consumers: a receiver whose pending bytes pass `max_pending` is closed; the publisher
//!   and every other receiver carry on;
//! * no-responders: a request nobody received gets a 503 status back when the requester
//!   asked for it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::account::{Account, Rename};
use crate::options::ResponseType;
pub use crate::outbound::Stall;
use crate::outbound::StallGate;
use crate::proto::client::MsgTemplate;
use crate::proto::headers::no_responders_block;
use crate::rng::SplitMix64;

mod client;
mod deliver_as;
mod match_cache;
mod sids;
pub use client::{ClientShared, ClientStats};
pub use deliver_as::{deliver_as, deliver_from_leaf_as};
pub use match_cache::MatchCache;

/// Forwarding through imports stops at this depth (cycles are rejected at config time; this is
/// the runtime backstop).
const MAX_IMPORT_DEPTH: u8 = 8;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data half-updated in a way that
    // matters more than stopping the whole server would; carry on with the inner value.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wakes a connection's driver. Implemented by the shell (tokio `Notify`, turmoil alike).
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// There are bytes in the outbound queue.
    fn notify_write(&self);
    /// Like [`Notifier::notify_write`] at the end of a publisher's batch, or after a protocol
    /// reply: the shell may write inline instead of waking the connection's writer when little
    /// is pending for it (its own bound, per receiver).
    fn notify_write_small(&self) {
        self.notify_write();
    }
    /// The connection must close (reason recorded in [`ClientShared`]).
    fn notify_close(&self);
}

/// An in-process subscriber: the server's own services (the system account's `$SYS.REQ.…`
/// handlers, JetStream). It runs on the publisher's task, so it must only hand the message over
/// (to a bounded queue, say) and never block. It may publish from inside only messages without
/// a reply subject, which no sink answers, so that nothing can loop.
pub trait InternalSink: Send + Sync + std::fmt::Debug {
    /// A message matched the subscription.
    fn deliver(&self, m: &Message<'_>);
}

/// Learns of local subscriptions coming and going, so that a cluster can tell its routes
/// (Go: server/route.go updateRouteSubscriptionMap). Called with the connection's
/// subscription lock held: record and hand over, never call back into the router.
pub trait InterestHook: Send + Sync + std::fmt::Debug {
    /// A subscription on `subject` (in `queue`) was added (`added`) or removed in `account`.
    fn interest_changed(&self, account: &str, subject: &[u8], queue: Option<&[u8]>, added: bool);
}

/// A route to another server of the cluster, as the publish path sees it.
pub trait RouteSink: Send + Sync + std::fmt::Debug {
    /// The route's connection id.
    fn route_id(&self) -> u64;
    /// Queues one message for the peer, naming the queue groups a member of the peer was
    /// chosen for. Returns false when the route is gone.
    fn send_msg(&self, account: &str, m: &Message<'_>, queues: &[&[u8]]) -> bool;
    /// The "wake-up owed" flag a [`PendingFlush`] flips (one wake per batch).
    fn flush_flag(&self) -> &AtomicBool;
    /// Wakes the route's writer.
    fn wake(&self);
    /// The gate client producers feeding this route wait on when its queue fills (see
    /// [`crate::outbound`]); None when the route never asks producers to wait.
    fn stall_gate(&self) -> Option<&Arc<StallGate>> {
        None
    }
    /// A leaf-node link rather than a route: it gets routed messages too (a leaf's interest
    /// is this server's own, as for a local subscriber).
    fn is_leaf(&self) -> bool {
        false
    }
    /// A leaf link this server dialed (the peer is our hub). Every node of a leaf-side
    /// cluster dials the hub itself, so what comes down such a link is not passed on to
    /// routes, and what comes in from a route is not sent up it: the hub already sent or got
    /// it over the other node's own link. Go: client.go processMsgResults (isSpokeLeafNode).
    fn is_spoke_leaf(&self) -> bool {
        false
    }
    /// A gateway to another cluster: it gets what this server's own clients and leaf links
    /// publish, never what came from a route (the origin server sends it itself) or from
    /// another gateway, and a queue group's member there only when the cluster has none.
    /// Go: client.go processMsgResults and sendMsgToGateways.
    fn is_gateway(&self) -> bool {
        false
    }
    /// Has the route's writer more than [`crate::outbound::READ_AHEAD_BYTES`] not yet taken
    /// (as of the last [`RouteSink::send_msg`])? The producer then yields before its next
    /// read, as for a client receiver ([`Stall::writers_behind`]).
    fn writer_behind(&self) -> bool {
        false
    }
}

/// Where a matched subscription sends the message.
#[derive(Debug)]
pub enum SubTarget {
    /// An in-process subscriber of the server itself.
    Internal(Arc<dyn InternalSink>),
    /// A client's subscription.
    Client {
        /// The subscriber.
        client: Arc<ClientShared>,
        /// Its subscription id.
        sid: Bytes,
        /// Re-check subscribe permissions per message (the pattern overlaps a deny).
        check_deny: bool,
    },
    /// A stream import: republish into the importing account.
    StreamImport {
        /// The importing account.
        into: Weak<Account>,
        /// Subject rename on the way in (boxed, as in `ServiceImport`).
        rename: Box<Rename>,
    },
    /// A service import: republish the request into the exporting account.
    ServiceImport {
        /// The exporting account.
        exporter: Weak<Account>,
        /// From the importer's subject to the exporter's (boxed: a rare variant should not
        /// size every subscription).
        rename: Box<Rename>,
        /// How many responses to carry back.
        response_type: ResponseType,
        /// How long stream/chunked response mappings live.
        threshold: Duration,
    },
    /// Interest of another server, learned from a route (`RS+`). A plain one stands for every
    /// subscriber of the peer on that subject; a queue one for `weight` members of the group.
    Route {
        /// The route to forward on.
        route: Arc<dyn RouteSink>,
        /// Members of the queue group on the peer (updated in place by later `RS+`).
        weight: AtomicU32,
    },
    /// Carries a service response back to the requester's account.
    Response {
        /// The importing (requesting) account.
        importer: Weak<Account>,
        /// The requester's reply subject there.
        reply: Bytes,
        /// Remove after one response.
        singleton: bool,
    },
}

/// An entry of a sublist.
#[derive(Debug)]
pub struct Subscription {
    /// Subject (maybe with wildcards).
    pub subject: Bytes,
    /// Queue group.
    pub queue: Option<Bytes>,
    /// What a match does.
    pub target: SubTarget,
    max: AtomicU64,
    delivered: AtomicU64,
    removed: AtomicBool,
}

impl Subscription {
    /// A new subscription entry.
    pub fn new(subject: Bytes, queue: Option<Bytes>, target: SubTarget) -> Self {
        Self {
            subject,
            queue,
            target,
            max: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            removed: AtomicBool::new(false),
        }
    }

    /// Messages delivered through this subscription.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Has it been taken out of its sublist (or is it about to be)?
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// Returns true if this call marked it removed (so exactly one caller removes it).
    pub fn mark_removed(&self) -> bool {
        !self.removed.swap(true, Ordering::AcqRel)
    }
}

/// A refcounted subscription, equal only to itself (sublist identity).
#[derive(Debug, Clone)]
pub struct SubRef(pub Arc<Subscription>);

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A message on its way through the router.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Literal subject.
    pub subject: &'a [u8],
    /// Reply subject.
    pub reply: Option<&'a [u8]>,
    /// Header block (`NATS/1.0…\r\n\r\n`), for HPUB/HMSG.
    pub headers: Option<&'a [u8]>,
    /// Body.
    pub payload: &'a [u8],
    /// The body as refcounted bytes, when the publisher has them: large bodies are then queued
    /// to every receiver by reference instead of copied.
    pub shared: Option<&'a Bytes>,
}

/// Why a SUB was refused by the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscribeError {
    /// `max_subscriptions` reached.
    #[error("maximum subscriptions exceeded")]
    MaxSubscriptions,
    /// The subject was rejected by the sublist.
    #[error("Invalid Subject")]
    InvalidSubject,
}

/// Receivers with bytes queued by one publisher's current batch whose writers still need a
/// wake-up. Waking once per batch instead of once per message lets writers send big batches.
#[derive(Debug, Default)]
pub struct PendingFlush {
    clients: Vec<Arc<ClientShared>>,
    routes: Vec<Arc<dyn RouteSink>>,
    /// The current message's shared encoding; kept here so its buffer is reused across
    /// the publisher's messages.
    template: MsgTemplate,
    /// Open gates of receivers this batch delivered to: the producer should wait on them
    /// before reading more (see [`crate::outbound`]).
    stall: Stall,
    /// The routes list of the current message, kept so its allocation is reused across the
    /// publisher's messages: a fresh one per message cost an allocation and a free each
    /// (about 120 instructions of a routed message's 1,870 on the publishing node).
    route_targets: Vec<(Arc<dyn RouteSink>, Vec<Bytes>)>,
}

impl PendingFlush {
    fn add(&mut self, client: &Arc<ClientShared>) {
        // Whoever flips the flag owns the wake-up; a receiver is listed once per batch. The
        // plain load first spares a locked read-modify-write per message once it is set.
        if !client.flush_pending.load(Ordering::Acquire)
            && !client.flush_pending.swap(true, Ordering::AcqRel)
        {
            self.clients.push(Arc::clone(client));
        }
    }

    fn add_route(&mut self, route: &Arc<dyn RouteSink>) {
        if !route.flush_flag().swap(true, Ordering::AcqRel) {
            self.routes.push(Arc::clone(route));
        }
    }

    /// Wakes every listed writer. Call before the publisher waits for more input.
    pub fn flush(&mut self) {
        if !self.stall.is_empty() || self.stall.writers_behind() {
            self.stall = Stall::default();
        }
        for c in self.clients.drain(..) {
            c.flush_pending.store(false, Ordering::Release);
            // Whether the batch is small is decided per receiver, by what is pending for it:
            // a batch of 16 replies to 16 requesters is 16 small writes, which the publisher
            // writes itself instead of waking 16 writers (Go: client.go flushClients writes
            // inline too). Bulk stays with the receiver's writer (see net's writer module).
            c.notifier.notify_write_small();
        }
        for r in self.routes.drain(..) {
            r.flush_flag().store(false, Ordering::Release);
            r.wake();
        }
    }

    /// Like [`Self::flush`], and hands over the gates this batch should wait on. A producer
    /// that never waits (a route's reader, an internal publisher) calls plain `flush`.
    pub fn flush_and_take_stall(&mut self) -> Stall {
        let stall = std::mem::take(&mut self.stall);
        self.flush();
        stall
    }

    fn note_stall(&mut self, gate: &Arc<StallGate>) {
        if gate.is_open() {
            self.stall.add(gate);
        }
    }

    /// Is any wake-up owed?
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.routes.is_empty()
    }
}

/// The per-publisher routing context: its generator, caches and the clock reading of this batch.
#[derive(Debug)]
pub struct Publisher<'a> {
    /// The publishing connection, if a client (None for internal publishes).
    pub client: Option<&'a Arc<ClientShared>>,
    /// Queue-member choice and reply tokens.
    pub rng: &'a mut SplitMix64,
    /// Now, for response-mapping expiry.
    pub now: Instant,
    /// Writers to wake at the end of the batch.
    pub pending: &'a mut PendingFlush,
    /// The publisher's match cache for its own account, if it keeps one.
    pub cache: Option<&'a mut MatchCache>,
    /// The subjects are mostly seen once (replies to unique inboxes): match without filling
    /// the account's shared cache.
    pub transient: bool,
}

impl Publisher<'_> {
    /// The same batch seen from inside another account: no publishing client (echo and
    /// no-responders are the requester's business only in its own account) and no cache.
    fn internal(&mut self) -> Publisher<'_> {
        Publisher {
            client: None,
            rng: self.rng,
            now: self.now,
            pending: self.pending,
            cache: None,
            transient: self.transient,
        }
    }
}

/// Adds a client subscription. A duplicate sid is ignored, as nats-server does.
pub fn subscribe(
    account: &Account,
    client: &Arc<ClientShared>,
    sid: Bytes,
    subject: Bytes,
    queue: Option<Bytes>,
    max_subscriptions: u32,
) -> Result<(), SubscribeError> {
    let mut subs = lock(&client.subs);
    if subs.contains_key(&sid) {
        return Ok(());
    }
    if max_subscriptions > 0 && subs.len() >= max_subscriptions as usize {
        return Err(SubscribeError::MaxSubscriptions);
    }
    let check_deny = client
        .perms
        .get()
        .is_some_and(|p| p.needs_delivery_check(&subject, queue.as_deref()));
    // Moved, not cloned: a clone of a freshly parsed `Bytes` allocates a shared header, and
    // every byte per subscription counts at 100k subscriptions.
    let sub = SubRef(Arc::new(Subscription::new(
        subject,
        queue,
        SubTarget::Client {
            client: Arc::clone(client),
            sid,
            check_deny,
        },
    )));
    account
        .sublist
        .insert(&sub.0.subject, sub.0.queue.as_deref(), sub.clone())
        .map_err(|_| SubscribeError::InvalidSubject)?;
    client.interest_changed(account, &sub.0, true);
    subs.insert(sub);
    Ok(())
}

/// UNSUB: removes now, or once `max` messages have been delivered in total.
pub fn unsubscribe(account: &Account, client: &ClientShared, sid: &[u8], max: Option<u64>) {
    let mut subs = lock(&client.subs);
    let Some(sub) = subs.get(sid).cloned() else {
        return;
    };
    if let Some(max) = max {
        // Under the queue lock every delivery to this subscription takes (see
        // `ClientShared::deliver`): no delivery can slip between the check and the store.
        let _deliveries = lock(&client.outbound);
        if max > 0 && sub.0.delivered() < max {
            sub.0.max.store(max, Ordering::Relaxed);
            return;
        }
    }
    subs.remove(sid);
    if sub.0.mark_removed() {
        let _ = account
            .sublist
            .remove(&sub.0.subject, sub.0.queue.as_deref(), &sub);
        client.interest_changed(account, &sub.0, false);
    }
}

/// Removes every subscription of a closing connection.
pub fn remove_all(account: &Account, client: &ClientShared) {
    let mut subs = lock(&client.subs);
    for sub in subs.drain() {
        if sub.0.mark_removed() {
            let _ = account
                .sublist
                .remove(&sub.0.subject, sub.0.queue.as_deref(), &sub);
            client.interest_changed(account, &sub.0, false);
        }
    }
}

/// May this client publish to `subject`? Checks publish permissions and, failing those, a
/// response permission granted by a request it received (`allow_responses`).
pub fn can_publish(client: &ClientShared, now: Instant, subject: &[u8]) -> bool {
    let Some(p) = client.perms.get() else {
        return true;
    };
    if p.can_publish(subject) {
        return true;
    }
    client
        .responses
        .get()
        .is_some_and(|t| lock(t).try_publish(now, subject))
}

/// Routes a published message within `account` (and through its imports), to local
/// subscribers and to the routes with interest. Returns how many subscriptions (a route
/// counting once) received it.
pub fn publish(account: &Arc<Account>, p: &mut Publisher<'_>, m: &Message<'_>) -> usize {
    let delivered = route(account, p, m, 0, Source::Local);
    if delivered == 0 {
        if let (Some(client), Some(reply)) = (p.client, m.reply) {
            if client.no_responders.load(Ordering::Relaxed)
                && client.headers.load(Ordering::Relaxed)
            {
                send_no_responders(account, client, reply);
            }
        }
    }
    delivered
}

/// Delivers a message that came from a route (`RMSG`): to local plain subscribers, and to one
/// local member of each queue group in `queues` (the sender chose us for those). Never to
/// another route (Go: client.go processMsgResults skips ROUTER subs for a ROUTER source).
///
/// A JetStream delivery from another server's consumer (its ack reply carrying `@<stored
/// subject>`, see [`deliver_as`]) is shown to local subscribers under the stored subject with
/// the plain ack reply.
pub fn deliver_routed(
    account: &Arc<Account>,
    p: &mut Publisher<'_>,
    m: &Message<'_>,
    queues: &[Bytes],
) -> usize {
    deliver_as::deliver_linked(account, p, m, Source::Route(queues))
}

/// Delivers a message that came from the leaf-node link `from` (`LMSG`): like a local publish
/// (to local subscribers, routes and other leaf links) except that it never goes back on
/// `from`, never to routes when `from` is a link we dialed (`spoke`, see
/// [`RouteSink::is_spoke_leaf`]), and queue groups get it only when named in `queues` (the
/// leaf chose us for those). Go: leafnode.go processInboundLeafMsg.
pub fn deliver_from_leaf(
    account: &Arc<Account>,
    p: &mut Publisher<'_>,
    m: &Message<'_>,
    from: LeafOrigin,
    queues: &[Bytes],
) -> usize {
    route(account, p, m, 0, Source::Leaf(from, queues))
}

/// Delivers a message that came from another cluster over a gateway (`RMSG`): to local
/// subscribers, routes and leaf links, never to a gateway; queue groups get it only when
/// named in `queues` (the sending cluster had no member). Go: gateway.go
/// processInboundGatewayMsg.
pub fn deliver_from_gateway(
    account: &Arc<Account>,
    p: &mut Publisher<'_>,
    m: &Message<'_>,
    queues: &[Bytes],
) -> usize {
    // A JetStream delivery keeps its stored subject across the gateway as across a route.
    deliver_as::deliver_linked(account, p, m, Source::Gateway(queues))
}

/// The leaf link a message came in on.
#[derive(Debug, Clone, Copy)]
pub struct LeafOrigin {
    /// The link's id ([`RouteSink::route_id`]).
    pub id: u64,
    /// Did we dial it (is its peer our hub)?
    pub spoke: bool,
}

/// Where a message being routed came from: what it may be forwarded to, and which queue
/// groups it is meant for.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    /// A local publish: everything.
    Local,
    /// A route, for these queue groups: local subscribers and the leaf links whose hub we
    /// are.
    Route(&'a [Bytes]),
    /// A leaf link, for these queue groups: everything but that link, and no routes when we
    /// dialed it.
    Leaf(LeafOrigin, &'a [Bytes]),
    /// A gateway, for these queue groups: everything but gateways.
    Gateway(&'a [Bytes]),
}

impl Source<'_> {
    /// The queue groups named by the sender (`None`: a local publish, every group).
    fn queues(&self) -> Option<&[Bytes]> {
        match self {
            Self::Local => None,
            Self::Route(q) | Self::Leaf(_, q) | Self::Gateway(q) => Some(q),
        }
    }

    fn may_forward(&self, sink: &dyn RouteSink) -> bool {
        match self {
            Self::Local => true,
            Self::Route(_) => sink.is_leaf() && !sink.is_spoke_leaf(),
            Self::Leaf(from, _) => sink.route_id() != from.id && (sink.is_leaf() || !from.spoke),
            Self::Gateway(_) => !sink.is_gateway(),
        }
    }

    /// Through an import the names no longer apply (only the first level filters).
    fn nested(self) -> Self {
        match self {
            Self::Local => Self::Local,
            Self::Route(_) => Self::Route(&[]),
            Self::Leaf(from, _) => Self::Leaf(from, &[]),
            Self::Gateway(_) => Self::Gateway(&[]),
        }
    }
}

/// Routes that get one copy of the message at this level, with the queue groups each was
/// chosen for. Small: one entry per route with interest.
#[derive(Default)]
struct RouteTargets {
    list: Vec<(Arc<dyn RouteSink>, Vec<Bytes>)>,
}

impl RouteTargets {
    fn add(&mut self, route: &Arc<dyn RouteSink>, queue: Option<&Bytes>) {
        let id = route.route_id();
        let entry = match self.list.iter().position(|(r, _)| r.route_id() == id) {
            Some(i) => &mut self.list[i],
            None => {
                self.list.push((Arc::clone(route), Vec::new()));
                let last = self.list.len() - 1;
                &mut self.list[last]
            }
        };
        if let Some(q) = queue {
            entry.1.push(q.clone());
        }
    }

    /// Sends to every listed route and empties the list (its allocation stays).
    fn send(&mut self, account: &Account, p: &mut Publisher<'_>, m: &Message<'_>) -> usize {
        let mut sent = 0;
        for (route, queues) in self.list.drain(..) {
            let names: Vec<&[u8]> = queues.iter().map(|q| &q[..]).collect();
            if route.send_msg(&account.name, m, &names) {
                p.pending.add_route(&route);
                if let Some(g) = route.stall_gate() {
                    p.pending.note_stall(g);
                }
                if route.writer_behind() {
                    p.pending.stall.note_writer_behind();
                }
                sent += 1;
            }
        }
        sent
    }
}

/// Whether a route or leaf member of a queue group may get a message from `source`.
fn forwards(source: Source<'_>, sub: &SubRef) -> bool {
    match &sub.0.target {
        SubTarget::Route { route, .. } => source.may_forward(route.as_ref()),
        _ => true,
    }
}

fn is_gateway_sub(sub: &SubRef) -> bool {
    matches!(&sub.0.target, SubTarget::Route { route, .. } if route.is_gateway())
}

fn route_weight(sub: &SubRef) -> Option<u64> {
    match &sub.0.target {
        SubTarget::Route { weight, .. } => Some(u64::from(weight.load(Ordering::Relaxed))),
        _ => None,
    }
}

/// `source`: where the message came from (what it may go to, which queue groups it is for).
fn route(
    account: &Arc<Account>,
    p: &mut Publisher<'_>,
    m: &Message<'_>,
    depth: u8,
    source: Source<'_>,
) -> usize {
    if depth > MAX_IMPORT_DEPTH {
        return 0;
    }
    let result = match (&mut p.cache, depth) {
        (Some(cache), 0) => cache.lookup(account, m.subject),
        _ if p.transient => account.sublist.matches_transient(m.subject),
        _ => account.sublist.matches(m.subject),
    };
    let mut delivered = 0;
    let mut targets = if depth == 0 {
        RouteTargets {
            list: std::mem::take(&mut p.pending.route_targets),
        }
    } else {
        RouteTargets::default()
    };
    // Encoded at most once, by the first local receiver; the outermost level reuses the
    // publisher's buffer (a nested import level encodes a renamed subject into its own).
    let mut tpl = if depth == 0 {
        std::mem::take(&mut p.pending.template)
    } else {
        MsgTemplate::default()
    };
    tpl.reset();
    for sub in &result.psubs {
        if let SubTarget::Route { route, .. } = &sub.0.target {
            if source.may_forward(route.as_ref()) && !sub.0.is_removed() {
                targets.add(route, None);
            }
            continue;
        }
        delivered += deliver_to(account, p, sub, m, depth, source, &mut tpl);
    }
    for group in &result.qsubs {
        let Some(first) = group.first() else { continue };
        if let Some(wanted) = source.queues() {
            // Through an import the names no longer apply; only the first level filters.
            if depth == 0 && !wanted.iter().any(|q| Some(q) == first.0.queue.as_ref()) {
                continue;
            }
        }
        delivered += pick_queue_member(account, p, group, m, depth, source, &mut targets, &mut tpl);
    }
    if depth == 0 {
        p.pending.template = tpl;
    }
    if !targets.list.is_empty() {
        delivered += targets.send(account, p, m);
    }
    if depth == 0 {
        p.pending.route_targets = targets.list;
    }
    delivered
}

/// One member of a queue group gets the message. A route member stands for `weight` members of
/// the peer (Go: sublist.go addRemoteQSubToResult expands it that many times), so the pick is
/// uniform over every member of the cluster; a routed message only picks local members.
#[allow(clippy::too_many_arguments)] // the routing state of one level, passed down as is
fn pick_queue_member(
    account: &Arc<Account>,
    p: &mut Publisher<'_>,
    group: &[SubRef],
    m: &Message<'_>,
    depth: u8,
    source: Source<'_>,
    targets: &mut RouteTargets,
    tpl: &mut MsgTemplate,
) -> usize {
    let len = group.len();
    let base = |s: &SubRef| match route_weight(s) {
        Some(_) if !forwards(source, s) => 0,
        Some(w) => w,
        None => 1,
    };
    // A member in this cluster (here, over a route or a leaf link) is preferred to one in
    // another cluster: gateways get the message only when the cluster has none.
    let local_member = group.iter().any(|s| !is_gateway_sub(s) && base(s) > 0);
    let weight = |s: &SubRef| {
        if local_member && is_gateway_sub(s) {
            0
        } else {
            base(s)
        }
    };
    let has_routes = group.iter().any(|s| route_weight(s).is_some());
    let start = if has_routes {
        let total: u64 = group.iter().map(weight).sum();
        if total == 0 {
            return 0;
        }
        let mut r = p.rng.below(total);
        let mut idx = 0;
        for (i, s) in group.iter().enumerate() {
            let w = weight(s);
            if r < w {
                idx = i;
                break;
            }
            r -= w;
        }
        idx
    } else {
        p.rng.below(len as u64) as usize
    };
    for i in 0..len {
        let sub = &group[(start + i) % len];
        if let SubTarget::Route { route, weight } = &sub.0.target {
            if !source.may_forward(route.as_ref())
                || weight.load(Ordering::Relaxed) == 0
                || sub.0.is_removed()
                || (local_member && route.is_gateway())
            {
                continue;
            }
            targets.add(route, sub.0.queue.as_ref());
            return 0;
        }
        let n = deliver_to(account, p, sub, m, depth, source, tpl);
        if n > 0 {
            return n;
        }
    }
    0
}

fn deliver_to(
    account: &Arc<Account>,
    p: &mut Publisher<'_>,
    sub: &SubRef,
    m: &Message<'_>,
    depth: u8,
    source: Source<'_>,
    tpl: &mut MsgTemplate,
) -> usize {
    let s = &sub.0;
    if s.is_removed() {
        return 0;
    }
    match &s.target {
        // Collected by the caller: one message per route.
        SubTarget::Route { .. } => 0,
        SubTarget::Internal(sink) => {
            s.delivered.fetch_add(1, Ordering::Relaxed);
            sink.deliver(m);
            1
        }
        SubTarget::Client {
            client,
            sid,
            check_deny,
        } => {
            if let Some(from) = p.client {
                if from.id == client.id && !client.echo.load(Ordering::Relaxed) {
                    return 0;
                }
            }
            if *check_deny {
                if let Some(perms) = client.perms.get() {
                    if !perms.deliver_allowed(m.subject, s.queue.as_deref()) {
                        return 0;
                    }
                }
            }
            // Auto-unsubscribe: the delivery slot is claimed under the receiver's queue lock,
            // so concurrent publishers never deliver more than max in total.
            let Some((n, max, behind)) = client.deliver(s, sid, m, tpl) else {
                return 0;
            };
            p.pending.add(client);
            p.pending.note_stall(&client.gate);
            if behind {
                p.pending.stall.note_writer_behind();
            }
            if let (Some(reply), Some(tracker)) = (m.reply, client.responses.get()) {
                lock(tracker).record(p.now, reply);
            }
            if max > 0 && n == max && s.mark_removed() {
                let mut subs = lock(&client.subs);
                subs.remove(sid);
                let _ = account.sublist.remove(&s.subject, s.queue.as_deref(), sub);
                client.interest_changed(account, s, false);
            }
            1
        }
        SubTarget::StreamImport { into, rename } => {
            let Some(into) = into.upgrade() else { return 0 };
            let subject = rename.apply(m.subject);
            let fwd = Message {
                subject: &subject,
                ..*m
            };
            // Local delivery only: other servers get the message in the exporting account
            // (where every server's import announces its interest) and import it themselves,
            // as nats-server's shadow subscriptions do. Routing the imported copy too would
            // deliver it twice.
            route(&into, p, &fwd, depth + 1, Source::Route(&[]))
        }
        SubTarget::ServiceImport {
            exporter,
            rename,
            response_type,
            threshold,
        } => {
            let Some(exporter) = exporter.upgrade() else {
                return 0;
            };
            let subject = rename.apply(m.subject);
            let reply = m.reply.map(|r| {
                let token = p.rng.next_u64();
                exporter.add_response(
                    p.now,
                    Arc::downgrade(account),
                    Bytes::copy_from_slice(r),
                    *response_type,
                    *threshold,
                    token,
                )
            });
            let fwd = Message {
                subject: &subject,
                reply: reply.as_deref(),
                ..*m
            };
            // The requester's own connection is not the publisher inside the exporter.
            let mut inner = p.internal();
            route(&exporter, &mut inner, &fwd, depth + 1, source.nested())
        }
        SubTarget::Response {
            importer,
            reply,
            singleton,
        } => {
            let Some(importer) = importer.upgrade() else {
                return 0;
            };
            if *singleton {
                if !s.mark_removed() {
                    return 0;
                }
                let _ = account.sublist.remove(&s.subject, None, sub);
            }
            let fwd = Message {
                subject: reply,
                reply: None,
                ..*m
            };
            let mut inner = p.internal();
            route(&importer, &mut inner, &fwd, depth + 1, source.nested())
        }
    }
}

/// Go: server/client.go — a request with no subscribers gets an immediate `NATS/1.0 503`
/// message on its reply subject, delivered only to the requester's own subscriptions.
fn send_no_responders(account: &Account, client: &Arc<ClientShared>, reply: &[u8]) {
    let result = account.sublist.matches(reply);
    let hdr = no_responders_block();
    let m = Message {
        subject: reply,
        reply: None,
        headers: Some(&hdr[..]),
        payload: &[],
        shared: None,
    };
    for sub in result.psubs.iter().chain(result.qsubs.iter().flatten()) {
        if let SubTarget::Client { client: c, sid, .. } = &sub.0.target {
            if c.id == client.id {
                let s = &sub.0;
                if let Some((n, max, _)) = client.deliver(s, sid, &m, &mut MsgTemplate::default()) {
                    client.notifier.notify_write();
                    if max > 0 && n == max && s.mark_removed() {
                        lock(&client.subs).remove(sid);
                        let _ = account.sublist.remove(&s.subject, s.queue.as_deref(), sub);
                        client.interest_changed(account, s, false);
                    }
                }
                return;
            }
        }
    }
}

/// Builds an `INFO`-style `-ERR` text for a publish permission violation.
pub fn publish_violation_text(subject: &[u8]) -> String {
    format!(
        "Permissions Violation for Publish to \"{}\"",
        String::from_utf8_lossy(subject)
    )
}

/// Encodes `-ERR 'text'\r\n`.
pub fn err_line(text: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(text.len() + 10);
    crate::proto::client::encode_err(&mut b, text);
    b.freeze()
}

#[cfg(test)]
// Tests start their clock somewhere: the machines only ever take `now` as an input.
#[allow(clippy::disallowed_methods)]
mod tests;
