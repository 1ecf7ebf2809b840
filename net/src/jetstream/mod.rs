//! JetStream glue: one core [`JetStream`] per JetStream-enabled account, each fed by internal
//! subscriptions on `$JS.API.>`, `$JS.ACK.>` and its stream subjects in that account's sublist.
//! Everything goes through one bounded queue to one worker, which owns every account's
//! JetStream, answers, stores, and runs group commit across all of them: it drains what is
//! queued, syncs the stores once, and only then sends the PubAcks the sync covered.
//!
//! In production the worker runs on its own thread (fsync blocks, and it is exactly where acks
//! wait); under the simulation it is a task on the host's runtime, so that turmoil owns its
//! schedule and a crash stops it mid-flight (see [`crate::transport::Transport::INLINE_WORKERS`]).

pub(crate) mod cluster;
mod disabled;
mod fsdisk;
mod observe;
mod reload;
mod usage;
mod worker;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::jetstream::factory::{DiskFactory, StoreFactory};
use natsd_core::jetstream::limits::{
    jetstream_accounts, sufficient_resources, AccountLimits, ServerCapacity,
};
use natsd_core::jetstream::service::{JetStream, JsSettings};
use natsd_core::jetstream::store::SyncPolicy;
use natsd_core::options::{JetStreamConfig, Options};
use natsd_core::rng::SplitMix64;
use natsd_core::router::{
    self, InternalSink, Message, PendingFlush, Publisher, SubRef, SubTarget, Subscription,
};
use tokio::sync::mpsc::{self, error::TrySendError, Sender};

use crate::server::{lock, Shared};
use fsdisk::FsDisk;
pub use observe::StreamDamage;
pub(crate) use reload::reconfigure;

/// Messages waiting for the worker; past this, requests are answered 503 (see [`Sink::refuse`]).
const QUEUE: usize = 65_536;

/// Makes the store factory of one account (called with the account name). Injected through
/// the embedding API to put JetStream on another disk (the simulation's `MemDisk`s); the
/// default is a file store under `<store_dir>/jetstream/<account>/`.
pub type StoreFactoryFn = Arc<dyn Fn(&str) -> Box<dyn StoreFactory> + Send + Sync>;

/// Numbers for `/jsz` and `$JS.API.INFO`, refreshed by the worker (sums over the accounts).
#[derive(Debug, Default, Clone)]
pub(crate) struct JsStats {
    pub(crate) streams: usize,
    pub(crate) consumers: usize,
    pub(crate) memory: u64,
    pub(crate) storage: u64,
    /// Bytes reserved by streams' `max_bytes` (Go: `js.memReserved`, `js.storeReserved`).
    pub(crate) reserved_memory: u64,
    pub(crate) reserved_storage: u64,
    pub(crate) messages: u64,
    pub(crate) api_total: u64,
    pub(crate) api_errors: u64,
    /// JetStream accounts.
    pub(crate) accounts: usize,
    /// Each account's `/jsz` entry with every detail (streams, consumers, configs), by
    /// account name; `/jsz` drops what its query did not ask for.
    pub(crate) details: Vec<(String, serde_json::Value)>,
}

/// What the server keeps for JetStream.
#[derive(Default)]
pub(crate) struct JsState {
    pub(crate) enabled: AtomicBool,
    pub(crate) stats: Mutex<JsStats>,
    subs: Mutex<Vec<(Arc<Account>, SubRef)>>,
    tx: Mutex<Option<Sender<Input>>>,
    /// Set by [`stop`]: the worker exits at its next turn even if the queue was too full for
    /// the `Stop` message.
    stopping: Mutex<Option<Arc<AtomicBool>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    factory: Mutex<Option<StoreFactoryFn>>,
    /// Damage the stores reported when they were opened (since JetStream last started).
    damage: Arc<Mutex<Vec<StreamDamage>>>,
    /// The accounts that have JetStream and their limits, as a reload finds them.
    limits: Mutex<BTreeMap<String, AccountLimits>>,
    /// The clustered side (the meta group), once its group is open.
    pub(crate) cluster: Mutex<Option<Arc<cluster::JsCluster>>>,
}

impl std::fmt::Debug for JsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsState")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl JsState {
    /// Puts the stores of the next start on `f`'s factories.
    pub(crate) fn set_factory(&self, f: StoreFactoryFn) {
        *lock(&self.factory) = Some(f);
    }

    /// What recovery found damaged, in account then stream order.
    pub(crate) fn damage(&self) -> Vec<StreamDamage> {
        lock(&self.damage).clone()
    }
}

enum Input {
    Msg {
        account: Arc<str>,
        subject: String,
        reply: Option<String>,
        headers: Vec<u8>,
        payload: Bytes,
    },
    /// A reload changed which accounts have JetStream; applied in queue order.
    Account(AccountChange),
    Stop,
}

/// What a reload changes about one account's JetStream.
enum AccountChange {
    /// The account gets JetStream (its streams already recovered).
    Add(Box<worker::AccountJs>),
    /// The account loses JetStream: its API answers 10039 again; its stores stay on disk.
    Remove(String),
    /// The account's limits changed.
    Limits(String, AccountLimits),
}

/// The internal subscriber of one account: tags what it hears with the account.
#[derive(Debug)]
struct Sink {
    account: Arc<str>,
    /// Weak: the account's sublist holds this sink.
    acc: Weak<Account>,
    tx: Sender<Input>,
    /// `$JS.<domain>.API.` with a JetStream domain: requests on it are the account's
    /// `$JS.API.` requests (Go maps the one onto the other for every JetStream account).
    domain_api: Option<String>,
}

/// The answer to a request the worker has no room for: nats-server's error for a JetStream
/// that is temporarily unavailable (503, 10008), which clients treat as retryable.
pub(super) const OVERLOADED: &[u8] =
    br#"{"error":{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}}"#;

impl InternalSink for Sink {
    fn deliver(&self, m: &Message<'_>) {
        let mut subject = String::from_utf8_lossy(m.subject).into_owned();
        if let Some(rest) = self
            .domain_api
            .as_deref()
            .and_then(|p| subject.strip_prefix(p))
        {
            // Go: jetstream_api.go generateJSMappingTable — under a domain, `$KV.>` and
            // `$OBJ.>` are the KV and object-store subjects themselves (a KV client given a
            // domain puts to `$JS.<domain>.API.$KV.<bucket>.<key>`); the rest is the API.
            subject = if rest.starts_with("$KV.") || rest.starts_with("$OBJ.") {
                rest.to_owned()
            } else {
                format!("$JS.API.{rest}")
            };
        }
        let input = Input::Msg {
            account: Arc::clone(&self.account),
            subject,
            reply: m.reply.map(|r| String::from_utf8_lossy(r).into_owned()),
            headers: m.headers.map(<[u8]>::to_vec).unwrap_or_default(),
            payload: m
                .shared
                .cloned()
                .unwrap_or_else(|| Bytes::copy_from_slice(m.payload)),
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(input) {
            self.refuse(m);
        }
    }
}

impl Sink {
    /// The worker's queue is full. nats-server drops such requests (its requesters wait out
    /// their timeouts); natsd answers every one that has a reply subject at once, so the
    /// client sees an error it can back off on. Without a reply subject there is nobody to
    /// tell, and the message is not stored: logged.
    fn refuse(&self, m: &Message<'_>) {
        let (Some(reply), Some(acc)) = (m.reply, self.acc.upgrade()) else {
            tracing::warn!("JetStream: request queue full, message without reply dropped");
            return;
        };
        answer_from_sink(&acc, reply, OVERLOADED);
    }
}

/// Publishes `body` to `reply` from inside an [`InternalSink`]. The answer carries no reply
/// subject, so no sink that hears it ever answers again (the sink contract in core's router).
pub(super) fn answer_from_sink(acc: &Arc<Account>, reply: &[u8], body: &[u8]) {
    // Only a queue group on the reply subject would draw from it; any fixed seed will do.
    let mut rng = SplitMix64::new(0);
    let mut pending = PendingFlush::default();
    let mut p = Publisher {
        client: None,
        rng: &mut rng,
        now: crate::transport::now(),
        pending: &mut pending,
        cache: None,
        // A reply to a one-off inbox.
        transient: true,
    };
    let answer = Message {
        subject: reply,
        reply: None,
        headers: None,
        payload: body,
        shared: None,
    };
    router::publish(acc, &mut p, &answer);
    pending.flush();
}

/// What each JetStream account subscribes to besides its streams (`$JS.SNAPSHOT.>`: snapshot
/// flow-control acks and restore uploads).
const API_SUBJECTS: [&str; 3] = ["$JS.API.>", "$JS.ACK.>", "$JS.SNAPSHOT.>"];

/// Opens accounts' JetStreams, at start and when a reload gives an account JetStream.
struct Opener {
    cfg: JetStreamConfig,
    injected: Option<StoreFactoryFn>,
    sync: SyncPolicy,
    root: PathBuf,
    tx: Sender<Input>,
}

impl Opener {
    fn new(srv: &Shared, cfg: JetStreamConfig, tx: Sender<Input>) -> Self {
        Self {
            injected: lock(&srv.js.factory).clone(),
            sync: cfg
                .sync_interval
                .map_or(SyncPolicy::Always, SyncPolicy::Interval),
            root: store_root(&cfg),
            cfg,
            tx,
        }
    }

    /// The account's sink (not yet subscribed) and its JetStream, streams recovered.
    fn open(
        &self,
        srv: &Shared,
        name: &str,
        acc: &Arc<Account>,
        limits: AccountLimits,
    ) -> (Arc<dyn InternalSink>, JetStream) {
        let factory: Box<dyn StoreFactory> = match &self.injected {
            Some(f) => f(name),
            None => {
                let dir = self.root.join(name);
                // Appends wait in memory for the sync only where every ack waits for it.
                let buffered = self.sync == SyncPolicy::Always;
                Box::new(DiskFactory::new(
                    move || FsDisk::new(dir.clone(), buffered),
                    self.sync,
                ))
            }
        };
        let factory = observe::Observed::new(factory, name, Arc::clone(&srv.js.damage));
        let settings = JsSettings {
            server_name: srv.server_name.clone(),
            domain: self.cfg.domain.clone(),
            // The server's limits; the account's own are set below.
            max_memory: self.cfg.max_memory_store,
            max_file: self.cfg.max_file_store,
        };
        let sink: Arc<dyn InternalSink> = Arc::new(Sink {
            account: Arc::from(name),
            acc: Arc::downgrade(acc),
            tx: self.tx.clone(),
            domain_api: self.cfg.domain.as_ref().map(|d| format!("$JS.{d}.API.")),
        });
        let mut js = JetStream::new(settings, Box::new(factory), srv.next_seed());
        js.set_account_limits(limits);
        let weak = Arc::downgrade(acc);
        js.set_interest(Box::new(move |subject| {
            weak.upgrade()
                .is_some_and(|a| a.sublist.has_interest(subject.as_bytes()))
        }));
        js.set_strict(self.cfg.strict);
        (sink, js)
    }
}

impl Opener {
    /// What an account's sink subscribes to: [`API_SUBJECTS`], and `$JS.<domain>.API.>`
    /// when the server has a JetStream domain.
    fn api_subjects(&self) -> Vec<String> {
        let mut v: Vec<String> = API_SUBJECTS.iter().map(|s| (*s).to_owned()).collect();
        if let Some(d) = &self.cfg.domain {
            v.push(format!("$JS.{d}.API.>"));
        }
        v
    }
}

/// The store directory nats-server would use: `<store_dir>/jetstream`.
fn store_root(cfg: &JetStreamConfig) -> PathBuf {
    cfg.store_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("nats"))
        .join("jetstream")
}

/// Starts JetStream with the options' config, if they enable it; `inline`: run the worker as
/// a task on the current runtime instead of a thread. The worker stops at [`stop`].
pub(crate) fn start(srv: &Arc<Shared>, inline: bool) -> Result<(), String> {
    let opts = srv.opts();
    let Some(cfg) = opts.jetstream.clone() else {
        return Ok(());
    };
    if srv.js.enabled.load(Ordering::Acquire) {
        return Err("jetstream already enabled".to_owned());
    }
    let clustered = cluster::check(srv)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let opener = Opener::new(srv, cfg.clone(), tx.clone());
    let (injected, sync, root) = (opener.injected.is_some(), opener.sync, opener.root.clone());
    if !injected {
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("could not create storage directory {root:?}: {e}"))?;
    }
    tracing::info!("Starting JetStream");
    if !injected {
        tracing::info!("    Store Directory: \"{}\"", root.display());
    }
    lock(&srv.js.damage).clear();
    let mut accounts = Vec::new();
    let enabled = jetstream_accounts(&opts);
    let mut capacity = ServerCapacity {
        max_memory: cfg.max_memory_store,
        max_file: cfg.max_file_store,
        ..ServerCapacity::default()
    };
    let mut fitted: BTreeMap<String, AccountLimits> = BTreeMap::new();
    for (name, limits) in &enabled {
        let name = name.clone();
        let Some(acc) = srv.lookup_account(&name) else {
            continue;
        };
        // Go: EnableJetStream → sufficientResources, one account after the other, each
        // beside the limits and the recovered streams of those before it; a failure stops
        // the server from starting.
        let others: Vec<AccountLimits> = fitted.values().copied().collect();
        if let Err(e) = sufficient_resources(&capacity, &others, limits) {
            unsubscribe_all(srv);
            return Err(format!(
                "Can't start JetStream: Error enabling jetstream on configured accounts: {} ({})",
                e.description, e.err_code
            ));
        }
        fitted.insert(name.clone(), *limits);
        // Recovery happens here, before the first client can ask about a stream.
        let (sink, js) = opener.open(srv, &name, &acc, *limits);
        for s in opener.api_subjects() {
            // In a cluster the API and acks are the clustered streams' (see `cluster`).
            if clustered && !injected && (s.contains("API.") || s.starts_with("$JS.ACK.")) {
                continue;
            }
            subscribe(srv, &acc, &sink, &s);
        }
        let (mem, file) = js.reserved();
        capacity.reserved_memory += mem;
        capacity.reserved_storage += file;
        accounts.push(worker::AccountJs::new(name, acc, sink, js));
    }
    *lock(&srv.js.limits) = fitted;
    answer_not_enabled(srv, &opts, &enabled);
    *lock(&srv.js.tx) = Some(tx);
    let stopping = Arc::new(AtomicBool::new(false));
    *lock(&srv.js.stopping) = Some(Arc::clone(&stopping));
    srv.js.enabled.store(true, Ordering::Release);
    let w = worker::Worker::new(Arc::clone(srv), accounts, rx, stopping, sync);
    if inline {
        tokio::spawn(w.run());
    } else {
        let handle = std::thread::Builder::new()
            .name("jetstream".to_owned())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                {
                    Ok(rt) => rt.block_on(w.run()),
                    Err(e) => tracing::error!("JetStream: cannot start its runtime: {e}"),
                }
            })
            .map_err(|e| e.to_string())?;
        *lock(&srv.js.thread) = Some(handle);
    }
    // The simulation's injected disks have no room for Raft files yet: it runs each server's
    // JetStream on its own there.
    if clustered && !injected {
        cluster::start(srv, &root)?;
    }
    Ok(())
}

/// Stops the worker: no new input, what was queued is handled and committed, then it exits.
/// Waits for a worker thread (never for an inline task: the caller may be its runtime).
pub(crate) fn stop(srv: &Shared) {
    cluster::stop(srv);
    if let Some(flag) = lock(&srv.js.stopping).take() {
        flag.store(true, Ordering::Release);
    }
    if let Some(tx) = lock(&srv.js.tx).take() {
        // `send` would need a runtime; when the queue is full the flag above ends the worker.
        let _ = tx.try_send(Input::Stop);
    }
    // A thread worker finishes its last commit first; an inline one runs on this thread's
    // runtime and sees the flag before it could subscribe again.
    if let Some(h) = lock(&srv.js.thread).take() {
        let _ = h.join();
    }
    unsubscribe_all(srv);
    lock(&srv.js.limits).clear();
    srv.js.enabled.store(false, Ordering::Release);
    *lock(&srv.js.stats) = JsStats::default();
}

/// Removes every internal subscription JetStream made.
fn unsubscribe_all(srv: &Shared) {
    for (acc, sub) in lock(&srv.js.subs).drain(..) {
        unsubscribe_one(srv, &acc, &sub);
    }
}

/// Every other account answers its `$JS.API` requests with 10039, the system account only
/// `$JS.API.INFO` (see [`disabled`]).
fn answer_not_enabled(srv: &Shared, opts: &Options, enabled: &[(String, AccountLimits)]) {
    for acc in srv.accounts_snapshot() {
        if !enabled.iter().any(|(n, _)| *n == acc.name) {
            answer_not_enabled_in(srv, opts, &acc);
        }
    }
}

/// Makes one account without JetStream answer as [`answer_not_enabled`] says.
fn answer_not_enabled_in(srv: &Shared, opts: &Options, acc: &Arc<Account>) {
    let name = acc.name.as_str();
    if name == srv.system_account_name() {
        subscribe(srv, acc, &disabled::sink(acc), "$JS.API.INFO");
        return;
    }
    let cfg = opts.accounts.iter().find(|a| a.name == name);
    if !disabled::imports_jetstream(cfg) {
        subscribe(srv, acc, &disabled::sink(acc), "$JS.API.>");
    }
}

/// Drops every internal JetStream subscription of `acc` (its API sink or its 10039 answer,
/// and its stream subjects).
fn unsubscribe_account(srv: &Shared, acc: &Arc<Account>) {
    lock(&srv.js.subs).retain(|(a, sub)| {
        if !Arc::ptr_eq(a, acc) {
            return true;
        }
        unsubscribe_one(srv, a, sub);
        false
    });
}

fn subscribe(srv: &Shared, acc: &Arc<Account>, sink: &Arc<dyn InternalSink>, subject: &str) {
    let s = Bytes::from(subject.to_owned());
    let target = SubTarget::Internal(Arc::clone(sink));
    let sub = SubRef(Arc::new(Subscription::new(s.clone(), None, target)));
    if acc.sublist.insert(&s, None, sub.clone()).is_ok() {
        lock(&srv.js.subs).push((Arc::clone(acc), sub));
        tell_leafs(srv, acc, &s, true);
    }
}

/// Drops one internal subscription [`subscribe`] made.
pub(super) fn unsubscribe_one(srv: &Shared, acc: &Account, sub: &SubRef) {
    if acc.sublist.remove(&sub.0.subject, None, sub).is_ok() {
        tell_leafs(srv, acc, &sub.0.subject, false);
    }
}

/// JetStream's subscriptions are the account's interest on its leaf links, as a client's
/// are (Go: the JetStream internal client's subscriptions update the leaf nodes): a client
/// across the link reaches this JetStream through them — its API under our domain
/// (`$JS.<domain>.API.>`), acks, and publishes into our streams. What may not cross (the
/// plain API when both sides run JetStream) each link filters (see
/// `natsd_core::leaf::JsDeny`).
fn tell_leafs(srv: &Shared, acc: &Account, subject: &[u8], added: bool) {
    if srv.leafs.enabled {
        srv.leafs.local_interest(&acc.name, subject, None, added);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what an internal subscription hears.
    #[derive(Debug, Default)]
    struct Collect(Mutex<Vec<(Vec<u8>, Vec<u8>)>>);

    impl InternalSink for Collect {
        fn deliver(&self, m: &Message<'_>) {
            lock(&self.0).push((m.subject.to_vec(), m.payload.to_vec()));
        }
    }

    fn msg<'a>(subject: &'a [u8], reply: Option<&'a [u8]>) -> Message<'a> {
        Message {
            subject,
            reply,
            headers: None,
            payload: b"{}",
            shared: None,
        }
    }

    #[test]
    fn a_full_queue_answers_503_instead_of_dropping_silently() {
        let acc = Account::new("A");
        let heard = Arc::new(Collect::default());
        let target = SubTarget::Internal(Arc::clone(&heard) as Arc<dyn InternalSink>);
        let subject = Bytes::from_static(b"_INBOX.r.*");
        let sub = SubRef(Arc::new(Subscription::new(subject.clone(), None, target)));
        acc.sublist
            .insert(&subject, None, sub)
            .expect("valid subject");
        let (tx, _rx) = mpsc::channel(1);
        let sink = Sink {
            account: Arc::from("A"),
            acc: Arc::downgrade(&acc),
            tx,
            domain_api: None,
        };
        // The first request fits; the second finds the queue full and is answered.
        sink.deliver(&msg(b"$JS.API.INFO", Some(b"_INBOX.r.1")));
        sink.deliver(&msg(b"$JS.API.INFO", Some(b"_INBOX.r.2")));
        // Without a reply subject there is nobody to answer.
        sink.deliver(&msg(b"orders.new", None));
        let got = lock(&heard.0).clone();
        assert_eq!(got.len(), 1, "one answer: {got:?}");
        assert_eq!(got[0].0, b"_INBOX.r.2");
        let body: serde_json::Value = serde_json::from_slice(&got[0].1).expect("JSON");
        assert_eq!(body["error"]["code"], 503);
        assert_eq!(body["error"]["err_code"], 10008);
    }
}
