//! The worker that owns every account's [`JetStream`]: handles queued input, runs group
//! commit across all accounts, emits the results into each account.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::jetstream::consumer::Delivery;
use natsd_core::jetstream::jsz::JszDetail;
use natsd_core::jetstream::service::JetStream;
use natsd_core::jetstream::store::SyncPolicy;
use natsd_core::rng::SplitMix64;
use natsd_core::router::{self, InternalSink, Message, Publisher};
use tokio::sync::mpsc::Receiver;

use super::{subscribe, usage, Input, JsStats};
use crate::server::{lock, unix_nanos, Shared};

mod accounts;
mod pipeline;
mod xacct;

/// Most messages handled before one group commit.
const BATCH: usize = 4096;
/// Commits whose fsyncs may run at once, each on a thread of the sync pool (see
/// `pipeline`'s docs for why overlapping them pays, and why not more).
const MAX_IN_FLIGHT: usize = 2;
/// Within a round, a commit begins after this many inputs if a sync slot is free: the
/// first part of a burst goes to the disk while the rest is stored, so its acks (and the
/// client's next publishes) come back while the disk works on the rest.
const COMMIT_EVERY: usize = 128;
/// A commit this small (publishes waiting for it), with no other input queued and no sync
/// in flight, syncs on the worker itself.
const INLINE_UP_TO: usize = 8;
/// Longest the worker sleeps without looking at its timers.
const MAX_WAIT: Duration = Duration::from_millis(250);
/// Stream and consumer detail for `/jsz` is rebuilt at most this often while only messages
/// flow (at once after an API call): it is a JSON document per stream and consumer.
const DETAIL_EVERY: Duration = Duration::from_millis(100);

/// One account's JetStream and what the worker tracks for it.
pub(super) struct AccountJs {
    name: String,
    acc: Arc<Account>,
    sink: Arc<dyn InternalSink>,
    js: JetStream,
    /// Stream subjects subscribed to in the account.
    subjects: Vec<String>,
    /// A push consumer waits for its subscriber.
    waiting_push: bool,
    /// An API call may have changed the streams: resubscribe.
    changed: bool,
}

impl AccountJs {
    pub(super) fn new(
        name: String,
        acc: Arc<Account>,
        sink: Arc<dyn InternalSink>,
        js: JetStream,
    ) -> Self {
        Self {
            name,
            acc,
            sink,
            js,
            subjects: Vec::new(),
            waiting_push: false,
            changed: true,
        }
    }
}

pub(super) struct Worker {
    srv: Arc<Shared>,
    /// By account name: a deterministic order for commits and emission.
    accounts: BTreeMap<String, AccountJs>,
    rx: Receiver<Input>,
    stopping: Arc<AtomicBool>,
    rng: SplitMix64,
    sync: SyncPolicy,
    next_sync: SystemTime,
    /// Something changed since the `/jsz` detail was last built, and when that was.
    detail_dirty: bool,
    detail_at: SystemTime,
    /// The deliveries of one round, kept for its capacity.
    out: Vec<Tagged>,
    /// Runs pipelined fsyncs; started by the first commit that has any.
    syncer: Option<pipeline::SyncPool>,
}

impl Worker {
    pub(super) fn new(
        srv: Arc<Shared>,
        accounts: Vec<AccountJs>,
        rx: Receiver<Input>,
        stopping: Arc<AtomicBool>,
        sync: SyncPolicy,
    ) -> Self {
        // The recovered streams take their subjects here, before the server takes clients:
        // a publish right after a restart must not find them missing (no responders).
        let mut accounts = accounts;
        for a in &mut accounts {
            reconcile(&srv, a);
        }
        let now = srv.wall_clock();
        let seed = srv.next_seed();
        Self {
            srv,
            accounts: accounts.into_iter().map(|a| (a.name.clone(), a)).collect(),
            rx,
            stopping,
            rng: SplitMix64::new(seed),
            sync,
            next_sync: now,
            detail_dirty: true,
            detail_at: now,
            out: Vec::new(),
            syncer: None,
        }
    }

    /// Commits whose fsyncs are queued or running (at most [`MAX_IN_FLIGHT`]).
    fn in_flight(&self) -> usize {
        self.syncer
            .as_ref()
            .map_or(0, pipeline::SyncPool::in_flight)
    }

    fn now(&self) -> u64 {
        unix_nanos(self.srv.wall_clock())
    }

    /// How long to wait for input before the timers need a look.
    fn wait(&self) -> Duration {
        let now = self.now();
        let mut wait = MAX_WAIT;
        for a in self.accounts.values() {
            if let Some(d) = a.js.next_deadline() {
                wait = wait.min(Duration::from_nanos(d.saturating_sub(now)));
            }
            // A push consumer waiting for its subscriber: look again soon.
            if a.waiting_push {
                wait = wait.min(Duration::from_millis(2));
            }
            // Written to (by sourcing) after the last commit began: commit it now.
            if self.in_flight() < MAX_IN_FLIGHT && a.js.has_uncommitted() {
                return Duration::ZERO;
            }
        }
        wait.max(Duration::from_millis(1))
    }

    /// The next input, or the outcome of the fsyncs in flight, or neither by `wait`.
    async fn next_event(&mut self, wait: Duration) -> Event {
        let syncing = self.in_flight() > 0;
        let done = self.syncer.as_mut().map(|s| &mut s.done);
        tokio::select! {
            biased;
            d = async {
                match done {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            }, if syncing => Event::Synced(d),
            r = tokio::time::timeout(wait, self.rx.recv()) => match r {
                Ok(Some(i)) => Event::Input(i),
                Ok(None) => Event::Closed,
                Err(_) => Event::Timeout,
            },
        }
    }

    /// Commits every account: pipelined (begin now, finish when the fsyncs are done) with
    /// the default policy, inline at a stop or with `sync_interval`.
    fn commit_all(&mut self, now: u64, stop: bool, out: &mut Vec<Tagged>) -> bool {
        let pipelined = self.sync == SyncPolicy::Always && !stop;
        let full_sync = !pipelined && self.sync_due(stop);
        let mut batch = pipeline::Batch::new();
        let in_flight = self.in_flight();
        for a in self.accounts.values_mut() {
            let d = if pipelined {
                if in_flight >= MAX_IN_FLIGHT {
                    Vec::new()
                } else {
                    let (d, jobs) = a.js.commit_begin(now);
                    if let Some(jobs) = jobs {
                        batch.push((a.name.clone(), jobs));
                    }
                    d
                }
            } else if full_sync {
                a.js.commit(now)
            } else {
                a.js.commit_unsynced(now)
            };
            tag(out, &a.name, d);
        }
        if !batch.is_empty() {
            self.start_syncs(batch, now, out);
        }
        full_sync || pipelined
    }

    /// Hands a batch of fsyncs to the sync thread (starting it if needed), or runs them
    /// here if it cannot be had.
    fn start_syncs(&mut self, batch: pipeline::Batch, now: u64, out: &mut Vec<Tagged>) {
        // A lone publisher waiting on its ack, nothing else queued: the worker has nothing
        // to overlap with the fsync, and two thread hand-offs would only add latency.
        let waiting: usize = self.accounts.values().map(|a| a.js.pending_acks()).sum();
        if self.in_flight() == 0 && self.rx.is_empty() && waiting <= INLINE_UP_TO {
            self.finish_syncs(pipeline::run_inline(batch), now, out);
            return;
        }
        if self.syncer.is_none() {
            match pipeline::SyncPool::spawn(MAX_IN_FLIGHT) {
                Ok(t) => self.syncer = Some(t),
                Err(e) => tracing::warn!("JetStream: no sync thread ({e}), syncing inline"),
            }
        }
        let batch = match self.syncer.as_mut() {
            Some(pool) => match pool.send(batch) {
                Ok(()) => return,
                Err(batch) => {
                    self.syncer = None;
                    batch
                }
            },
            None => batch,
        };
        self.finish_syncs(pipeline::run_inline(batch), now, out);
    }

    /// A batch's fsyncs are done: finish every batch whose turn has come (in the order
    /// they began), acknowledging what they covered.
    fn synced(&mut self, id: u64, done: pipeline::Done, now: u64, out: &mut Vec<Tagged>) {
        let Some(pool) = self.syncer.as_mut() else {
            return;
        };
        pool.record(id, done);
        // Others may be in already: take them in the same round.
        while let Ok((id, done)) = pool.done.try_recv() {
            pool.record(id, done);
        }
        while let Some(done) = self
            .syncer
            .as_mut()
            .and_then(pipeline::SyncPool::take_finished)
        {
            self.finish_syncs(done, now, out);
        }
    }

    /// Acknowledges what one batch's fsyncs covered.
    fn finish_syncs(&mut self, done: pipeline::Done, now: u64, out: &mut Vec<Tagged>) {
        for (name, d) in done {
            if let Some(a) = self.accounts.get_mut(&name) {
                tag(out, &name, a.js.commit_finish(now, d));
            }
        }
    }

    pub(super) async fn run(mut self) {
        for a in self.accounts.values_mut() {
            reconcile(&self.srv, a);
        }
        self.refresh_stats(true);
        loop {
            let wait = self.wait();
            let (first, closed, synced) = match self.next_event(wait).await {
                Event::Input(i) => (Some(i), false, None),
                Event::Closed => (None, true, None),
                Event::Timeout => (None, false, None),
                Event::Synced(d) => (None, false, Some(d)),
            };
            // Reused from the last round: a batch of acks is hundreds of entries.
            let mut out = std::mem::take(&mut self.out);
            let mut stop = closed || self.stopping.load(Ordering::Acquire);
            let mut api_called = false;
            match synced {
                Some(Some((id, done))) => {
                    // Acks first: the publishers' next messages are what keeps the disk busy.
                    self.synced(id, done, self.now(), &mut out);
                    self.emit(&mut out);
                }
                Some(None) => {
                    // The sync threads died: forget them; the stores still count those
                    // blocks as dirty, so the next commit syncs them again.
                    tracing::error!("JetStream sync threads stopped; syncing inline from now");
                    self.syncer = None;
                }
                None => {}
            }
            // Group commit: take whatever is queued before one sync, beginning one early
            // every `COMMIT_EVERY` inputs while a sync slot is free.
            let mut next = first;
            let mut handled = false;
            for n in 1..=BATCH + 1 {
                if stop {
                    break;
                }
                if n % COMMIT_EVERY == 0 && self.in_flight() < MAX_IN_FLIGHT {
                    self.commit_all(self.now(), false, &mut out);
                }
                let Some(i) = next.take().or_else(|| self.rx.try_recv().ok()) else {
                    break;
                };
                if !handled {
                    // What the other accounts hold, for the server-wide limits; an API call
                    // (which may reserve `max_bytes`) shares it again at once.
                    usage::share(self.accounts.values_mut().map(|a| &mut a.js));
                    // A subscriber that came just before a request is seen by it (consumer
                    // info's `push_bound`, a push consumer's first delivery).
                    let now = self.now();
                    for a in self.accounts.values_mut() {
                        let pushes = watch_push_interest(a, now);
                        tag(&mut out, &a.name, pushes);
                    }
                    handled = true;
                }
                stop |= !self.handle(i, &mut out, &mut api_called);
            }
            // Input (even a publish nobody acks) or output: the `/jsz` detail is stale.
            self.detail_dirty |= handled;
            let now = self.now();
            let full_sync = self.commit_all(now, stop, &mut out);
            for a in self.accounts.values_mut() {
                tag(&mut out, &a.name, a.js.tick(now));
                let pushes = watch_push_interest(a, now);
                tag(&mut out, &a.name, pushes);
                // Subscribe to new stream subjects before the create reply goes out, so a
                // publish right after it is captured.
                if std::mem::take(&mut a.changed) && !stop {
                    reconcile(&self.srv, a);
                }
            }
            xacct::pull(&mut self.accounts, now, full_sync, &mut out);
            // A source asking over the network listens before its request goes out.
            for a in self.accounts.values_mut() {
                if std::mem::take(&mut a.changed) && !stop {
                    reconcile(&self.srv, a);
                }
            }
            self.detail_dirty |= !out.is_empty();
            self.emit(&mut out);
            self.out = out;
            if stop {
                return;
            }
            self.refresh_stats(api_called);
        }
    }

    /// Is a real sync due? Always with the default policy; every interval (and at stop)
    /// with nats-server's `sync_interval` mode, where acks go out before the sync.
    fn sync_due(&mut self, stop: bool) -> bool {
        let SyncPolicy::Interval(d) = self.sync else {
            return true;
        };
        let wall = self.srv.wall_clock();
        if !stop && wall < self.next_sync {
            return false;
        }
        self.next_sync = wall + d;
        true
    }

    /// Handles one input; false to stop. Sets `api_called` for a `$JS.API` request that may
    /// change streams or consumers.
    fn handle(&mut self, i: Input, out: &mut Vec<Tagged>, api_called: &mut bool) -> bool {
        let i = match i {
            Input::Account(c) => {
                self.change_account(c);
                return true;
            }
            i => i,
        };
        let Input::Msg {
            account,
            subject,
            reply,
            headers,
            payload,
        } = i
        else {
            return false;
        };
        let now = self.now();
        let Some(a) = self.accounts.get_mut(&*account) else {
            return true;
        };
        let r =
            a.js.publish_or_api(&subject, reply.as_deref(), &headers, &payload, now);
        a.changed |= r.1;
        tag(out, &a.name, r.0);
        // Pull requests and direct gets are traffic, not changes to streams or consumers.
        let admin = r.1
            && !subject.starts_with("$JS.API.CONSUMER.MSG.NEXT.")
            && !subject.starts_with("$JS.API.DIRECT.GET.");
        if admin {
            *api_called = true;
            if self.accounts.len() > 1 {
                usage::share(self.accounts.values_mut().map(|a| &mut a.js));
            }
        }
        true
    }

    /// Publishes (and drains) `out` into the accounts.
    fn emit(&mut self, out: &mut Vec<Tagged>) {
        if out.is_empty() {
            return;
        }
        let mut pending = router::PendingFlush::default();
        let mut p = Publisher {
            client: None,
            rng: &mut self.rng,
            now: crate::transport::now(),
            pending: &mut pending,
            cache: None,
            // PubAcks and pull replies go to one-off inboxes: caching them would only evict
            // the clients' useful entries (and take the cache's write lock per message).
            transient: true,
        };
        for (account, ds) in out.drain(..) {
            let Some(a) = self.accounts.get(&account) else {
                continue;
            };
            for mut d in ds {
                let payload = Bytes::from(std::mem::take(&mut d.payload));
                let m = Message {
                    subject: d.shown_subject.as_deref().unwrap_or(&d.subject).as_bytes(),
                    reply: d.reply.as_deref().map(str::as_bytes),
                    headers: (!d.headers.is_empty()).then_some(d.headers.as_slice()),
                    payload: &payload,
                    shared: Some(&payload),
                };
                if d.shown_subject.is_some() {
                    router::deliver_as(&a.acc, &mut p, d.subject.as_bytes(), &m);
                } else {
                    router::publish(&a.acc, &mut p, &m);
                }
            }
        }
        pending.flush();
    }

    /// Publishes the numbers for `/jsz` and `$JS.API.INFO`; the per-account detail only
    /// when `now` or when it is due (see [`DETAIL_EVERY`]).
    fn refresh_stats(&mut self, now: bool) {
        let mut st = JsStats {
            accounts: self.accounts.len(),
            ..JsStats::default()
        };
        for a in self.accounts.values() {
            let (memory, storage) = a.js.usage();
            let (reserved_memory, reserved_storage) = a.js.reserved();
            let (api_total, api_errors) = a.js.api_stats();
            st.streams += a.js.num_streams();
            st.consumers += a.js.num_consumers();
            st.memory += memory;
            st.storage += storage;
            st.reserved_memory += reserved_memory;
            st.reserved_storage += reserved_storage;
            st.messages += a.js.total_messages();
            st.api_total += api_total;
            st.api_errors += api_errors;
        }
        let wall = self.srv.wall_clock();
        let due = self.detail_dirty
            && wall
                .duration_since(self.detail_at)
                .map_or(true, |d| d >= DETAIL_EVERY);
        let mut stats = lock(&self.srv.js.stats);
        if now || due {
            let t = unix_nanos(wall);
            let all = JszDetail {
                streams: true,
                consumers: true,
                config: true,
            };
            st.details = self
                .accounts
                .values()
                .map(|a| (a.name.clone(), a.js.jsz_account(&a.name, all, t)))
                .collect();
            self.detail_dirty = false;
            self.detail_at = wall;
        } else {
            st.details = std::mem::take(&mut stats.details);
        }
        *stats = st;
    }
}

/// What woke the worker.
enum Event {
    Input(Input),
    Closed,
    Timeout,
    /// A batch's fsyncs are done (`None`: the sync threads are gone).
    Synced(Option<(u64, pipeline::Done)>),
}

/// Deliveries for one account, in order.
type Tagged = (String, Vec<Delivery>);

/// Queues `ds` for `account`: one entry per call, not per delivery.
fn tag(out: &mut Vec<Tagged>, account: &str, ds: Vec<Delivery>) {
    if !ds.is_empty() {
        out.push((account.to_owned(), ds));
    }
}

/// Routes one message to the API, the ack handler or the streams.
trait Dispatch {
    /// The deliveries, and whether the streams may have changed.
    fn publish_or_api(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: &[u8],
        payload: &[u8],
        now: u64,
    ) -> (Vec<Delivery>, bool);
}

impl Dispatch for JetStream {
    fn publish_or_api(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: &[u8],
        payload: &[u8],
        now: u64,
    ) -> (Vec<Delivery>, bool) {
        if let Some(ds) = self.remote_inbound(subject, reply, headers, payload, now) {
            (ds, false)
        } else if subject.starts_with("$JS.API.") {
            (self.api(subject, reply, payload, now), true)
        } else if subject.starts_with("$JS.ACK.") {
            (self.ack(subject, reply, payload, now), false)
        } else if subject.starts_with("$JS.SNAPSHOT.") {
            // A restore's empty last chunk adds a stream: reconcile its subjects.
            let restore = subject.starts_with("$JS.SNAPSHOT.RESTORE.") && payload.is_empty();
            (self.snapshot_msg(subject, reply, payload, now), restore)
        } else {
            (self.publish(subject, reply, headers, payload, now), false)
        }
    }
}

/// Push consumers deliver while their deliver subject has a subscriber (Go: the consumer
/// tracks interest on `dsubj`).
fn watch_push_interest(a: &mut AccountJs, now: u64) -> Vec<Delivery> {
    let mut out = Vec::new();
    let mut waiting = false;
    for (stream, consumer, subject, active) in a.js.push_consumers() {
        let interest = a.acc.sublist.has_interest(subject.as_bytes());
        if interest != active {
            out.extend(a.js.set_push_active(&stream, &consumer, interest, now));
        }
        waiting |= !interest;
    }
    a.waiting_push = waiting;
    out
}

/// Subscribes to new stream subjects of the account and drops the ones no stream captures.
fn reconcile(srv: &Shared, a: &mut AccountJs) {
    let want = a.js.subjects();
    if want == a.subjects {
        return;
    }
    let mut subs = lock(&srv.js.subs);
    subs.retain(|(acc, sub)| {
        if !Arc::ptr_eq(acc, &a.acc) {
            return true;
        }
        let s = String::from_utf8_lossy(&sub.0.subject);
        // The API's own (`$JS.API.>` …) stay; a remote source's literal ones go with it.
        let keep = (s.starts_with("$JS.") && s.ends_with('>')) || want.iter().any(|w| *w == s);
        if !keep {
            super::unsubscribe_one(srv, acc, sub);
        }
        keep
    });
    drop(subs);
    for s in &want {
        if !a.subjects.contains(s) {
            subscribe(srv, &a.acc, &a.sink, s);
        }
    }
    a.subjects = want;
}
