//! JetStream glue: internal subscriptions on `$JS.API.>`, `$JS.ACK.>` and every stream
//! subject feed a bounded queue; one worker thread owns the core [`JetStream`], answers,
//! stores, and runs group commit: it drains what is queued, syncs the stores once, and only
//! then sends the PubAcks the sync covered.
//!
//! A dedicated thread, not a tokio task: fsync blocks, and it is exactly where acks wait.

mod fsdisk;

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::jetstream::consumer::Delivery;
use natsd_core::jetstream::factory::DiskFactory;
use natsd_core::jetstream::service::{JetStream, JsSettings};
use natsd_core::jetstream::store::SyncPolicy;
use natsd_core::options::JetStreamConfig;
use natsd_core::rng::SplitMix64;
use natsd_core::router::{self, InternalSink, Message, Publisher, SubRef, SubTarget, Subscription};

use crate::server::{lock, Shared};
use fsdisk::FsDisk;

/// Messages waiting for the worker; more are dropped (the requester times out and retries).
const QUEUE: usize = 65_536;
/// Most messages handled before one group commit.
const BATCH: usize = 4096;

/// Numbers for `/jsz` and `$JS.API.INFO`, refreshed by the worker.
#[derive(Debug, Default, Clone)]
pub(crate) struct JsStats {
    pub(crate) streams: usize,
    pub(crate) consumers: usize,
    pub(crate) memory: u64,
    pub(crate) storage: u64,
    pub(crate) messages: u64,
    pub(crate) api_total: u64,
    pub(crate) api_errors: u64,
}

/// What the server keeps for JetStream.
#[derive(Debug, Default)]
pub(crate) struct JsState {
    pub(crate) enabled: std::sync::atomic::AtomicBool,
    pub(crate) stats: Mutex<JsStats>,
    subs: Mutex<Vec<(Arc<Account>, SubRef)>>,
    tx: Mutex<Option<SyncSender<Input>>>,
    store_dir: Mutex<Option<PathBuf>>,
}

enum Input {
    Msg {
        subject: String,
        reply: Option<String>,
        headers: Vec<u8>,
        payload: Bytes,
    },
    Stop,
}

#[derive(Debug)]
struct Sink {
    tx: SyncSender<Input>,
}

impl InternalSink for Sink {
    fn deliver(&self, m: &Message<'_>) {
        let input = Input::Msg {
            subject: String::from_utf8_lossy(m.subject).into_owned(),
            reply: m.reply.map(|r| String::from_utf8_lossy(r).into_owned()),
            headers: m.headers.map(<[u8]>::to_vec).unwrap_or_default(),
            payload: m
                .shared
                .cloned()
                .unwrap_or_else(|| Bytes::copy_from_slice(m.payload)),
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(input) {
            tracing::warn!("JetStream: request queue full, message dropped");
        }
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The store directory nats-server would use: `<store_dir>/jetstream`.
fn store_root(cfg: &JetStreamConfig) -> PathBuf {
    cfg.store_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("nats"))
        .join("jetstream")
}

/// Starts JetStream if the options enable it. The worker stops at [`stop`].
pub(crate) fn start(srv: &Arc<Shared>) -> Result<(), String> {
    let opts = srv.opts();
    let Some(cfg) = opts.jetstream.clone() else {
        return Ok(());
    };
    let root = store_root(&cfg);
    std::fs::create_dir_all(&root)
        .map_err(|e| format!("could not create storage directory {root:?}: {e}"))?;
    tracing::info!("Starting JetStream");
    tracing::info!("    Store Directory: \"{}\"", root.display());
    let sync = cfg
        .sync_interval
        .map_or(SyncPolicy::Always, SyncPolicy::Interval);
    let acc_root = root.join("$G");
    let factory = DiskFactory::new(move || FsDisk::new(acc_root.clone()), sync);
    let settings = JsSettings {
        server_name: srv.server_name.clone(),
        domain: cfg.domain.clone(),
        max_memory: cfg.max_memory_store,
        max_file: cfg.max_file_store,
    };
    let js = JetStream::new(settings, Box::new(factory), srv.next_seed());
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let sink: Arc<dyn InternalSink> = Arc::new(Sink { tx: tx.clone() });
    let acc = srv.default_account();
    for s in ["$JS.API.>", "$JS.ACK.>"] {
        subscribe(srv, &acc, &sink, s);
    }
    *lock(&srv.js.tx) = Some(tx);
    *lock(&srv.js.store_dir) = Some(root);
    srv.js
        .enabled
        .store(true, std::sync::atomic::Ordering::Release);
    let srv2 = Arc::clone(srv);
    let seed = srv.next_seed();
    std::thread::Builder::new()
        .name("jetstream".to_owned())
        .spawn(move || Worker::new(srv2, js, rx, sink, acc, seed, sync).run())
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Stops the worker (at shutdown).
pub(crate) fn stop(srv: &Shared) {
    if let Some(tx) = lock(&srv.js.tx).take() {
        let _ = tx.send(Input::Stop);
    }
    for (acc, sub) in lock(&srv.js.subs).drain(..) {
        let _ = acc.sublist.remove(&sub.0.subject, None, &sub);
    }
}

fn subscribe(srv: &Shared, acc: &Arc<Account>, sink: &Arc<dyn InternalSink>, subject: &str) {
    let s = Bytes::from(subject.to_owned());
    let target = SubTarget::Internal(Arc::clone(sink));
    let sub = SubRef(Arc::new(Subscription::new(s.clone(), None, target)));
    if acc.sublist.insert(&s, None, sub.clone()).is_ok() {
        lock(&srv.js.subs).push((Arc::clone(acc), sub));
    }
}

struct Worker {
    srv: Arc<Shared>,
    js: JetStream,
    rx: Receiver<Input>,
    sink: Arc<dyn InternalSink>,
    acc: Arc<Account>,
    rng: SplitMix64,
    subjects: Vec<String>,
    sync: SyncPolicy,
    next_sync: SystemTime,
    waiting_push: bool,
}

impl Worker {
    fn new(
        srv: Arc<Shared>,
        js: JetStream,
        rx: Receiver<Input>,
        sink: Arc<dyn InternalSink>,
        acc: Arc<Account>,
        seed: u64,
        sync: SyncPolicy,
    ) -> Self {
        let now = srv.wall_clock();
        Self {
            srv,
            js,
            rx,
            sink,
            acc,
            rng: SplitMix64::new(seed),
            subjects: Vec::new(),
            sync,
            next_sync: now,
            waiting_push: false,
        }
    }

    fn run(mut self) {
        self.reconcile();
        self.refresh_stats();
        loop {
            let now = unix_nanos(self.srv.wall_clock());
            let wait = self
                .js
                .next_deadline()
                .map_or(Duration::from_millis(250), |d| {
                    Duration::from_nanos(d.saturating_sub(now)).min(Duration::from_millis(250))
                })
                .max(Duration::from_millis(1));
            // A push consumer waiting for its subscriber: look again soon.
            let wait = if self.waiting_push {
                wait.min(Duration::from_millis(2))
            } else {
                wait
            };
            let first = match self.rx.recv_timeout(wait) {
                Ok(i) => Some(i),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut out = Vec::new();
            let mut changed = false;
            if let Some(first) = first {
                if !self.handle(first, &mut out, &mut changed) {
                    return;
                }
                // Group commit: take whatever else is already queued before one sync.
                for _ in 0..BATCH {
                    match self.rx.try_recv() {
                        Ok(i) => {
                            if !self.handle(i, &mut out, &mut changed) {
                                return;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
            let now = unix_nanos(self.srv.wall_clock());
            out.extend(self.commit(now));
            out.extend(self.js.tick(now));
            out.extend(self.watch_push_interest(now));
            // Subscribe to new stream subjects before the create reply goes out, so a
            // publish right after it is captured.
            if changed {
                self.reconcile();
            }
            self.emit(&out);
            self.refresh_stats();
        }
    }

    /// Push consumers deliver while their deliver subject has a subscriber (Go: the consumer
    /// tracks interest on `dsubj`).
    fn watch_push_interest(&mut self, now: u64) -> Vec<Delivery> {
        let mut out = Vec::new();
        let mut waiting = false;
        for (stream, consumer, subject, active) in self.js.push_consumers() {
            let interest = self.acc.sublist.has_interest(subject.as_bytes());
            if interest != active {
                out.extend(self.js.set_push_active(&stream, &consumer, interest, now));
            }
            waiting |= !interest;
        }
        self.waiting_push = waiting;
        out
    }

    fn commit(&mut self, now: u64) -> Vec<Delivery> {
        if let SyncPolicy::Interval(d) = self.sync {
            // nats-server's mode: the store syncs on a timer; acks go out at once.
            let wall = self.srv.wall_clock();
            if wall < self.next_sync {
                return self.js.commit_unsynced(now);
            }
            self.next_sync = wall + d;
        }
        self.js.commit(now)
    }

    /// Handles one input; false to stop.
    fn handle(&mut self, i: Input, out: &mut Vec<Delivery>, changed: &mut bool) -> bool {
        let Input::Msg {
            subject,
            reply,
            headers,
            payload,
        } = i
        else {
            return false;
        };
        let now = unix_nanos(self.srv.wall_clock());
        if subject.starts_with("$JS.API.") {
            *changed = true;
            out.extend(self.js.api(&subject, reply.as_deref(), &payload, now));
        } else if subject.starts_with("$JS.ACK.") {
            out.extend(self.js.ack(&subject, reply.as_deref(), &payload, now));
        } else {
            out.extend(
                self.js
                    .publish(&subject, reply.as_deref(), &headers, &payload, now),
            );
        }
        true
    }

    fn emit(&mut self, out: &[Delivery]) {
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
        };
        for d in out {
            let payload = Bytes::copy_from_slice(&d.payload);
            let m = Message {
                subject: d.shown_subject.as_deref().unwrap_or(&d.subject).as_bytes(),
                reply: d.reply.as_deref().map(str::as_bytes),
                headers: (!d.headers.is_empty()).then_some(d.headers.as_slice()),
                payload: &payload,
                shared: Some(&payload),
            };
            if d.shown_subject.is_some() {
                router::deliver_as(&self.acc, &mut p, d.subject.as_bytes(), &m);
            } else {
                router::publish(&self.acc, &mut p, &m);
            }
        }
        pending.flush();
    }

    /// Subscribes to new stream subjects and drops the ones no stream captures any more.
    fn reconcile(&mut self) {
        let want = self.js.subjects();
        if want == self.subjects {
            return;
        }
        let mut subs = lock(&self.srv.js.subs);
        subs.retain(|(acc, sub)| {
            let s = String::from_utf8_lossy(&sub.0.subject);
            let keep = s.starts_with("$JS.") || want.iter().any(|w| *w == s);
            if !keep {
                let _ = acc.sublist.remove(&sub.0.subject, None, sub);
            }
            keep
        });
        drop(subs);
        for s in &want {
            if !self.subjects.contains(s) {
                subscribe(&self.srv, &self.acc, &self.sink, s);
            }
        }
        self.subjects = want;
    }

    fn refresh_stats(&self) {
        let (memory, storage) = self.js.usage();
        let (api_total, api_errors) = self.js.api_stats();
        *lock(&self.srv.js.stats) = JsStats {
            streams: self.js.num_streams(),
            consumers: self.js.num_consumers(),
            memory,
            storage,
            messages: self.js.total_messages(),
            api_total,
            api_errors,
        };
    }
}
