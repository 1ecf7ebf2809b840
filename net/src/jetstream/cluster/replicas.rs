//! The replicas of clustered streams on this server: one Raft group per stream, opened when
//! the meta group assigns the stream here (`MetaEffect::StartStream`), whose machine is core's
//! [`ReplicatedStream`] over a file store.
//!
//! # Files
//! A stream's group lives in `<store_dir>/jetstream/_raft/<group>/` (its Raft log and
//! snapshot) and its messages in `<group>/msgs/`; the single-server recovery never opens that
//! tree. Only `StopStream { delete: true }` (the stream removed, or this peer removed from
//! it) deletes the directory.
//!
//! # Leading and the publish path
//! Only the group's leader takes publishes: once Raft makes it leader and it has applied
//! every entry of earlier terms, it subscribes to the stream's subjects with route interest
//! (the other servers route publishes to it) and starts the stream's one proposer task. The
//! proposer runs `leader_publish` on the leader's replica and proposes the entries it returns
//! in that same order (openraft's `client_write_ff` keeps the submission order), a batch of
//! whatever is queued at a time, its messages as one entry (the group commit, see
//! `group_commit`); a PubAck goes out only once its entry is committed, i.e. a
//! quorum's logs hold it on disk. Message deletes and purges go through the same proposer.
//! When Raft takes the leadership away, the subscriptions go and the proposer stops; a new
//! leader subscribes instead.
//!
//! # Durability
//! A PubAck waits for a quorum's Raft logs to hold the entry synced; the store it is applied
//! to is not synced per entry. A crash can lose the store's unsynced tail, and the restart
//! replays the log after the last snapshot into it ([`ReplicatedStream::apply`] completes a
//! store that holds less). So the store is synced only where the log stops covering it:
//! before a snapshot is taken or installed (openraft purges the log behind it), and when the
//! group stops.
//!
//! # Trouble
//! A replica whose apply reports `Behind` or `Diverged`, whose store reports corruption, or
//! whose restored snapshot saw more than its store holds, is in *trouble*: it keeps the
//! committed entries it is handed, in order, without applying them (they travel in its Raft
//! snapshots too, so a restart cannot skip them), does not lead or campaign, and `/healthz`
//! fails until [`repair`](super::repair) has rebuilt its store from a peer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::jetstream::api::{ApiError, PurgeRequest, StreamConfig};
use natsd_core::jetstream::cluster::{Applied, ReplicatedStream, StreamAssignment, StreamEntry};
use natsd_core::jetstream::store::{FileStore, FileStoreConfig, MemStore, StreamStore};
use natsd_core::jetstream::stream::store_config;
use natsd_core::router::{InternalSink, Message, SubRef, SubTarget, Subscription};
use natsd_raft::openraft::ServerState;
use natsd_raft::{Command, GroupMachine, RaftGroup, RestoreError};
use serde_json::json;
use tokio::sync::mpsc;

use super::super::answer_from_sink;
use super::super::fsdisk::FsDisk;
use super::consumers::{self, Batch, Tick};
use super::group_commit::{coalesce, InFlight, DEPTH};
use crate::server::{lock, unix_nanos, Shared};

/// Operations queued for a stream's proposer; past this a publish is answered 503.
const QUEUE: usize = 65_536;
/// Most operations the proposer takes in one batch.
const BATCH: usize = 512;

/// What the proposer of a leading replica does, in arrival order.
#[derive(Debug)]
pub(super) enum Op {
    /// A message published on one of the stream's subjects.
    Publish {
        subject: String,
        reply: Option<String>,
        headers: Vec<u8>,
        payload: Bytes,
    },
    /// `STREAM.MSG.DELETE`, checked; answered with `body` once committed.
    Delete {
        seq: u64,
        reply: String,
        kind: String,
    },
    /// `STREAM.PURGE`, checked.
    Purge {
        req: Box<PurgeRequest>,
        reply: String,
        kind: String,
    },
    /// A config the meta group agreed on (`STREAM.UPDATE`).
    Config(Box<StreamConfig>),
    /// An ack on `$JS.ACK.<stream>.>`.
    Ack {
        subject: String,
        reply: Option<String>,
        body: Bytes,
    },
    /// A pull request.
    Next {
        consumer: String,
        reply: String,
        payload: Bytes,
    },
    /// The meta group's consumers and the timers (see `consumers`).
    Tick(Box<Tick>),
    /// Entries committed: consumers may hand out what they now cover.
    Pump,
    /// What a mirror or source read from its origin (see `sourcing`).
    Sourced(Box<super::sourcing::Sourced>),
    /// A chunk of a restore's upload (see `restore`).
    Restore(Box<super::restore::RestoreStep>),
}

/// An answer: (reply subject, body).
pub(super) type Reply = (String, Vec<u8>);
/// An entry to propose and the answer that waits for its commit.
pub(super) type Proposal = (StreamEntry, Option<Reply>);
/// Called when a replica starts leading.
pub(super) type OnLead = Box<dyn Fn(&Arc<StreamGroup>) + Send + Sync>;

/// One replica's state: the replicated stream and whether it can be trusted.
pub(super) struct Replica {
    /// `<group dir>/msgs` is the store's directory.
    pub(super) dir: PathBuf,
    /// Always `Some` outside a restore.
    pub(super) rs: Option<ReplicatedStream>,
    /// Why this replica stopped applying (see the module docs).
    pub(super) trouble: Option<String>,
    /// The store itself was found damaged: only a rebuilt store ends the trouble (a snapshot
    /// restored over it does not).
    pub(super) damaged_store: bool,
    /// A memory store found short of the Raft snapshot beneath it (its server restarted): the
    /// last sequence the snapshot saw. See `repair` for what happens when every replica is so.
    pub(super) memory_lost: Option<u64>,
    /// Committed entries handed over while in trouble, in order.
    pub(super) pending: Vec<(u64, Vec<u8>)>,
    /// The last index applied before the trouble: a repair source must have applied it.
    pub(super) trusted: u64,
    /// Bumped whenever the replica is replaced or gets into trouble: a repair begun before
    /// is stale. Watched by the repair task and the leadership watcher.
    pub(super) epoch: tokio::sync::watch::Sender<u64>,
    /// The stream's config, for stores opened anew.
    pub(super) config: StreamConfig,
    leading: bool,
    /// The leader's proposer, woken when a commit lets consumers hand out more; `pump_queued`
    /// keeps one wake-up queued at most.
    wake: Option<mpsc::Sender<Op>>,
    pump_queued: bool,
}

impl Replica {
    /// Opens the replica of `sa` over what `dir` holds.
    fn open(dir: PathBuf, sa: &StreamAssignment) -> Arc<Mutex<Self>> {
        let (store, why) = open_store(&dir, &sa.config);
        let mut r = Self {
            dir,
            rs: Some(ReplicatedStream::new(sa.config.clone(), store, sa.created)),
            trouble: None,
            damaged_store: false,
            memory_lost: None,
            pending: Vec::new(),
            trusted: 0,
            epoch: tokio::sync::watch::Sender::new(0),
            config: sa.config.clone(),
            leading: false,
            wake: None,
            pump_queued: false,
        };
        if let Some(why) = why {
            r.damaged_store = true;
            r.fail(why);
        }
        Arc::new(Mutex::new(r))
    }

    /// The replicated stream.
    pub(super) fn rs(&self) -> Option<&ReplicatedStream> {
        self.rs.as_ref()
    }

    /// The replicated stream, mutably (the leader's consumers).
    pub(super) fn rs_mut(&mut self) -> Option<&mut ReplicatedStream> {
        self.rs.as_mut()
    }

    pub(super) fn fail(&mut self, why: String) {
        if self.trouble.is_none() {
            self.trusted = self.rs.as_ref().map_or(0, ReplicatedStream::applied);
            self.trouble = Some(why);
            self.epoch.send_modify(|e| *e += 1);
        }
    }

    pub(super) fn apply_bytes(&mut self, index: u64, bytes: &[u8]) {
        if self.trouble.is_some() {
            self.pending.push((index, bytes.to_vec()));
            return;
        }
        let entry = match StreamEntry::decode(bytes) {
            Ok(e) => e,
            Err(e) => {
                self.fail(format!("entry {index} does not decode: {e}"));
                self.pending.push((index, bytes.to_vec()));
                return;
            }
        };
        let Some(rs) = self.rs.as_mut() else { return };
        let committed = rs.committed();
        let out = rs.apply(index, &entry);
        if rs.committed() > committed && !rs.consumers.is_empty() && !self.pump_queued {
            if let Some(w) = &self.wake {
                self.pump_queued = w.try_send(Op::Pump).is_ok();
            }
        }
        // No store sync here: the entry is already durable in a quorum's Raft logs, and a
        // restart replays the log after the last snapshot into the store, so an unsynced tail
        // lost in a crash comes back. The store is synced before a snapshot covers it (see
        // `sync_store`), the one point past which the log no longer holds the entries.
        match out {
            Applied::Replay | Applied::Done | Applied::AlreadyHad => {}
            Applied::Failed(e) => {
                tracing::warn!(
                    index,
                    "JetStream replicated entry refused: {}",
                    e.description
                );
            }
            other => {
                self.fail(format!("entry {index}: {other:?}"));
                self.pending.push((index, bytes.to_vec()));
            }
        }
    }

    /// Makes everything applied so far durable in the store: before a snapshot says the
    /// store holds it (openraft then purges the log that could replay it), and on a clean
    /// stop. A failure freezes the store, so the replica is rebuilt from a peer.
    pub(super) fn sync_store(&mut self) {
        let Some(rs) = self.rs.as_mut() else { return };
        if let Err(e) = rs.stream.store.sync() {
            self.damaged_store = true;
            self.fail(format!("store sync failed: {e}"));
        }
    }

    /// Applies the kept entries while healthy (after a repair or a restore).
    pub(super) fn drain(&mut self) {
        let kept = std::mem::take(&mut self.pending);
        for (index, bytes) in kept {
            let applied = self.rs.as_ref().map_or(0, ReplicatedStream::applied);
            if index > applied {
                self.apply_bytes(index, &bytes);
            }
        }
    }
}

/// Opens the stream's store: its files in `<dir>/msgs`, or for a `storage: memory` stream an
/// empty store in memory (as nats-server keeps it; the group's Raft log stays on disk, see
/// `StreamMachine::restore`). Also says what damage opening found.
pub(super) fn open_store(
    dir: &Path,
    cfg: &StreamConfig,
) -> (Box<dyn StreamStore + Send>, Option<String>) {
    open_store_in(dir, STORE_DIR, cfg)
}

/// The store's directory in the group's.
pub(super) const STORE_DIR: &str = "msgs";

/// Opens a stream store in `<dir>/<name>` (in memory for a memory stream); also says what
/// damage opening found.
pub(super) fn open_store_in(
    dir: &Path,
    name: &str,
    cfg: &StreamConfig,
) -> (Box<dyn StreamStore + Send>, Option<String>) {
    if is_memory(cfg) {
        return (Box::new(MemStore::new(store_config(cfg))), None);
    }
    let disk = FsDisk::new(dir.to_path_buf(), false);
    let f = FileStoreConfig::default();
    match FileStore::open(disk, name, store_config(cfg), f) {
        Ok(s) => {
            let why = (!s.corruption().is_empty())
                .then(|| format!("stream store corrupt in {} places", s.corruption().len()));
            (Box::new(s), why)
        }
        Err(e) => {
            // Unreadable: set the files aside (never delete data) and start empty.
            super::repair::set_aside(dir, name);
            let disk = FsDisk::new(dir.to_path_buf(), false);
            let why = Some(format!("stream store does not open: {e}"));
            match FileStore::open(disk, name, store_config(cfg), f) {
                Ok(s) => (Box::new(s), why),
                Err(e) => {
                    tracing::error!("JetStream: cannot open an empty stream store: {e}");
                    let mem = natsd_core::jetstream::store::MemDisk::new(0);
                    let s = FileStore::open(mem, name, store_config(cfg), f)
                        .expect("an empty in-memory store opens");
                    (Box::new(s), why)
                }
            }
        }
    }
}

/// A stream kept in memory.
pub(super) fn is_memory(cfg: &StreamConfig) -> bool {
    cfg.storage == "memory"
}

/// The stream group's [`GroupMachine`].
struct StreamMachine {
    replica: Arc<Mutex<Replica>>,
    config: StreamConfig,
}

impl GroupMachine for StreamMachine {
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        lock(&self.replica).apply_bytes(index, command);
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut r = lock(&self.replica);
        // The snapshot holds no messages: the store must hold them durably first.
        r.sync_store();
        let rs =
            r.rs.as_ref()
                .map(ReplicatedStream::snapshot)
                .unwrap_or_default();
        super::repair::encode_snapshot(&rs, &r.pending)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let (rs_bytes, pending) = super::repair::decode_snapshot(snapshot)
            .ok_or_else(|| RestoreError::Decode("stream snapshot framing".into()))?;
        let mut r = lock(&self.replica);
        let config =
            r.rs.as_ref()
                .map_or_else(|| self.config.clone(), |rs| rs.stream.config.clone());
        // Close the store before reopening it over the same files; a memory store is kept
        // (reopening it would empty it).
        let kept = r.rs.take().filter(|_| is_memory(&config));
        let (store, damage) = match kept {
            Some(rs) => (rs.stream.store, None),
            None => open_store(&r.dir, &config),
        };
        let restored = ReplicatedStream::restore(rs_bytes, store);
        let (mut rs, behind) = match restored {
            Ok(x) => x,
            Err(e) => {
                // Keep a replica over the store so the group can still be served and repaired.
                let (store, _) = open_store(&r.dir, &config);
                r.rs = Some(ReplicatedStream::new(config, store, 0));
                return Err(RestoreError::Decode(e.to_string()));
            }
        };
        rs.set_leading(r.leading);
        r.config = rs.stream.config.clone();
        r.rs = Some(rs);
        r.pending = pending;
        // The snapshot replaces the replica: what the trouble was about is now judged anew,
        // except a damaged store, which only a rebuilt one mends.
        let sticky = r.damaged_store.then(|| r.trouble.clone()).flatten();
        r.trouble = None;
        r.memory_lost = None;
        r.epoch.send_modify(|e| *e += 1);
        if let Some(why) = damage {
            r.damaged_store = true;
            r.fail(why);
        } else if let Some(why) = sticky {
            r.fail(why);
        } else if let Some((have, want)) = behind {
            // A memory store under a snapshot taken before its server restarted: what it held
            // is gone here and comes back from a peer (Go: a memory stream's replica restarts
            // empty and catches up from the leader).
            if is_memory(&config) {
                r.memory_lost = Some(want);
            }
            r.fail(format!("store holds {have}, snapshot saw {want}"));
        } else {
            r.drain();
        }
        // openraft persists this snapshot and purges the log it covers once this returns.
        r.sync_store();
        Ok(())
    }
}

/// A leading replica's subscriptions and proposer.
struct Leading {
    tx: mpsc::Sender<Op>,
    subs: Vec<SubRef>,
}

/// One stream's replica on this server and its Raft group.
pub(super) struct StreamGroup {
    pub(super) account: String,
    pub(super) name: String,
    pub(super) group: RaftGroup,
    pub(super) replica: Arc<Mutex<Replica>>,
    pub(super) assignment: Mutex<StreamAssignment>,
    /// The group's directory.
    pub(super) dir: PathBuf,
    leading: Mutex<Option<Leading>>,
    stopped: AtomicBool,
    /// Has led since this server opened it.
    led: AtomicBool,
    /// A membership change is under way (see `members`).
    pub(super) changing: AtomicBool,
}

impl StreamGroup {
    /// Opens (or recovers) the replica of `sa` in `dir` as group `sa.group.name` on `hub`.
    pub(super) async fn open(
        hub: &natsd_raft::RaftHub,
        raft_root: &Path,
        sa: &StreamAssignment,
    ) -> Result<Arc<Self>, String> {
        let dir = raft_root.join(&sa.group.name);
        std::fs::create_dir_all(dir.join("msgs"))
            .map_err(|e| format!("could not create storage directory {dir:?}: {e}"))?;
        let replica = Replica::open(dir.clone(), sa);
        let machine = StreamMachine {
            replica: Arc::clone(&replica),
            config: sa.config.clone(),
        };
        let disk = natsd_raft::SharedDisk::new(FsDisk::new(raft_root.to_path_buf(), false));
        let group = hub
            .open_group(
                &sa.group.name,
                super::group_config(),
                disk,
                &sa.group.name,
                Box::new(machine),
            )
            .await
            .map_err(|e| e.to_string())?;
        // The leader's log fsync runs alongside its followers'; the proposer's answers wait
        // for both (see `group_commit::InFlight`).
        group.synced().set_ahead(true);
        Ok(Arc::new(Self {
            account: sa.account.clone(),
            name: sa.config.name.clone(),
            group,
            replica,
            assignment: Mutex::new(sa.clone()),
            dir,
            leading: Mutex::new(None),
            stopped: AtomicBool::new(false),
            led: AtomicBool::new(false),
            changing: AtomicBool::new(false),
        }))
    }

    /// True the first time it is called after this replica started leading.
    pub(super) fn first_lead(&self) -> bool {
        !self.led.swap(true, Ordering::AcqRel)
    }

    /// Is this replica leading (subscribed and proposing)?
    pub(super) fn is_leading(&self) -> bool {
        lock(&self.leading).is_some()
    }

    /// Why this replica cannot be trusted, if so.
    pub(super) fn trouble(&self) -> Option<String> {
        lock(&self.replica).trouble.clone()
    }

    /// Queues `op` for the proposer; false when not leading or the queue is full.
    pub(super) fn submit(&self, op: Op) -> bool {
        lock(&self.leading)
            .as_ref()
            .is_some_and(|l| l.tx.try_send(op).is_ok())
    }

    /// Follows the group's Raft state until it shuts down: leads when Raft says so, and
    /// calls `on_lead` each time it starts leading.
    pub(super) async fn watch(self: Arc<Self>, srv: Weak<Shared>, on_lead: OnLead) {
        let mut rx = self.group.raft().metrics();
        let mut epoch = lock(&self.replica).epoch.subscribe();
        let me = self.group.raft().metrics().borrow().id;
        loop {
            let m = rx.borrow_and_update().clone();
            let leader = m.state == ServerState::Leader && m.current_leader == Some(me);
            let caught_up = m.last_applied.map(|l| l.index) >= m.last_log_index;
            let healthy = self.trouble().is_none();
            if self.stopped.load(Ordering::Acquire) {
                self.unlead(&srv);
                return;
            }
            if !leader || !healthy {
                self.unlead(&srv);
            } else if caught_up && !self.is_leading() {
                self.lead(&srv);
                if self.is_leading() {
                    on_lead(&self);
                }
            }
            // A repair finished (or trouble began) changes the epoch, not Raft's metrics.
            let gone = tokio::select! {
                r = rx.changed() => r.is_err(),
                r = epoch.changed() => r.is_err(),
            };
            if gone {
                self.unlead(&srv);
                return;
            }
        }
    }

    fn lead(self: &Arc<Self>, srv: &Weak<Shared>) {
        let Some(srv) = srv.upgrade() else { return };
        let Some(acc) = srv.lookup_account(&self.account) else {
            return;
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let subjects = {
            let mut r = lock(&self.replica);
            r.leading = true;
            r.wake = Some(tx.clone());
            r.pump_queued = false;
            let Some(rs) = r.rs.as_mut() else { return };
            rs.set_leading(true);
            let mut s = rs.stream.config.subjects.clone();
            // Acks of its consumers come to the leader from anywhere in the cluster.
            s.push(format!("$JS.ACK.{}.>", rs.stream.config.name));
            s
        };
        let sink: Arc<dyn InternalSink> = Arc::new(PubSink {
            tx: tx.clone(),
            acc: Arc::downgrade(&acc),
        });
        let mut subs = Vec::new();
        for s in subjects {
            let s = Bytes::from(s);
            let target = SubTarget::Internal(Arc::clone(&sink));
            let sub = SubRef(Arc::new(Subscription::new(s.clone(), None, target)));
            if acc.sublist.insert(&s, None, sub.clone()).is_ok() {
                super::tell_interest(&srv, &acc.name, &s, true);
                subs.push(sub);
            }
        }
        tracing::info!(
            "JetStream: leading stream {} > {} ({})",
            self.account,
            self.name,
            self.group.name()
        );
        *lock(&self.leading) = Some(Leading { tx, subs });
        tokio::spawn(Arc::clone(self).propose(rx, Arc::downgrade(&srv), acc));
    }

    fn unlead(&self, srv: &Weak<Shared>) {
        let Some(l) = lock(&self.leading).take() else {
            return;
        };
        {
            let mut r = lock(&self.replica);
            r.leading = false;
            r.wake = None;
            if let Some(rs) = r.rs.as_mut() {
                rs.set_leading(false);
            }
        }
        let Some(srv) = srv.upgrade() else { return };
        if let Some(acc) = srv.lookup_account(&self.account) {
            for sub in l.subs {
                if acc.sublist.remove(&sub.0.subject, None, &sub).is_ok() {
                    super::tell_interest(&srv, &acc.name, &sub.0.subject, false);
                }
            }
        }
        tracing::info!(
            "JetStream: no longer leading stream {} > {}",
            self.account,
            self.name
        );
    }

    /// Stops leading and following (the group is closed by the caller).
    pub(super) fn stop(&self, srv: &Weak<Shared>) {
        self.stopped.store(true, Ordering::Release);
        self.unlead(srv);
        let mut r = lock(&self.replica);
        // A clean stop leaves nothing for the next start to replay.
        r.sync_store();
        // Wakes the repair task, which then ends.
        r.epoch.send_modify(|e| *e += 1);
    }

    /// Has [`Self::stop`] been called?
    pub(super) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The stream's one proposer (see the module docs).
    async fn propose(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Op>,
        srv: Weak<Shared>,
        acc: Arc<Account>,
    ) {
        let raft = self.group.raft().clone();
        // Create requests answered (by reply subject), so a tick answers each once.
        let mut answered = std::collections::BTreeSet::new();
        let mut inflight = InFlight::new(Arc::clone(&acc), Arc::clone(self.group.synced()));
        loop {
            let Some(first) = inflight.next_op(&mut rx).await else {
                return;
            };
            let mut ops = vec![first];
            while ops.len() < BATCH {
                match rx.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
            let Some(now) = srv.upgrade().map(|s| unix_nanos(s.wall_clock())) else {
                return;
            };
            let mut b = Batch::default();
            {
                let mut r = lock(&self.replica);
                if r.trouble.is_some() {
                    return;
                }
                r.pump_queued = false;
                let Some(rs) = r.rs.as_mut() else { return };
                for op in ops {
                    leader_op(rs, op, now, &mut b, &mut answered);
                }
                // Push consumers deliver while their deliver subject has a subscriber here
                // or on another server (route interest is in the account's sublist).
                for c in rs.consumers.values_mut() {
                    if let Some(d) = c.config.deliver_subject.as_deref() {
                        let interest = acc.sublist.has_interest(d.as_bytes());
                        if interest != c.active {
                            c.set_active(interest, now);
                        }
                    }
                }
                // New messages, pull requests and acks all let consumers hand out more.
                if !rs.consumers.is_empty() {
                    b.pump(rs, now);
                }
                b.finish(rs);
            }
            for (reply, body) in std::mem::take(&mut b.now_answers) {
                answer_from_sink(&acc, reply.as_bytes(), &body);
            }
            consumers::emit(&acc, std::mem::take(&mut b.deliveries));
            for (bytes, answers) in coalesce(b.proposals) {
                match raft.client_write_ff(Command(bytes)).await {
                    Ok(rx) => inflight.push(rx, answers),
                    Err(e) => {
                        tracing::warn!("JetStream: stream {} proposer stopped: {e}", self.name);
                        return;
                    }
                }
            }
            // The group commit: with this many entries on their way, what arrives meanwhile
            // waits in the queue and goes out as the next batch's one entry.
            inflight.settle(DEPTH).await;
        }
    }
}

/// Runs one operation on the leader's replica: the entries to propose (with the answer that
/// waits for their commit) or an answer at once.
fn leader_op(
    rs: &mut ReplicatedStream,
    op: Op,
    now: u64,
    b: &mut Batch,
    answered: &mut std::collections::BTreeSet<String>,
) {
    let Batch {
        proposals,
        now_answers,
        ..
    } = b;
    match op {
        Op::Publish {
            subject,
            reply,
            headers,
            payload,
        } => {
            let name = rs.stream.config.name.clone();
            match rs.leader_publish(&subject, &headers, &payload, now) {
                Ok((stored, entries)) => {
                    let ack = reply.map(|r| {
                        let mut v = json!({"stream": name, "seq": stored.seq});
                        if stored.duplicate {
                            v["duplicate"] = json!(true);
                        }
                        if let Some(val) = &stored.val {
                            v["val"] = json!(val);
                        }
                        (r, serde_json::to_vec(&v).unwrap_or_default())
                    });
                    if entries.is_empty() {
                        // A duplicate: nothing to replicate.
                        if let Some(a) = ack {
                            now_answers.push(a);
                        }
                        return;
                    }
                    let n = entries.len();
                    for (i, e) in entries.into_iter().enumerate() {
                        let a = if i + 1 == n { ack.clone() } else { None };
                        proposals.push((e, a));
                    }
                }
                Err(e) => {
                    if let Some(r) = reply {
                        now_answers.push((r, error_bytes(None, &e)));
                    }
                }
            }
        }
        Op::Delete { seq, reply, kind } => {
            let (applied, e) = rs.leader_delete(seq);
            let body = match applied {
                Applied::Failed(err) => {
                    now_answers.push((reply, error_bytes(Some(&kind), &err)));
                    return;
                }
                _ => json!({"type": kind, "success": true}),
            };
            proposals.push((e, Some((reply, body.to_string().into_bytes()))));
        }
        Op::Purge { req, reply, kind } => {
            let before = rs.stream.store.state().msgs;
            let (applied, e) = rs.leader_purge(&req.filter, req.seq, req.keep);
            if let Applied::Failed(err) = applied {
                now_answers.push((reply, error_bytes(Some(&kind), &err)));
                return;
            }
            let purged = before.saturating_sub(rs.stream.store.state().msgs);
            let body = json!({"type": kind, "success": true, "purged": purged});
            proposals.push((e, Some((reply, body.to_string().into_bytes()))));
        }
        Op::Config(cfg) => {
            let (_, e) = rs.leader_config(*cfg);
            proposals.push((e, None));
        }
        Op::Ack {
            subject,
            reply,
            body,
        } => consumers::ack(rs, &subject, reply.as_deref(), &body, now, b),
        Op::Next {
            consumer,
            reply,
            payload,
        } => consumers::next(rs, &consumer, &reply, &payload, now, b),
        Op::Tick(t) => consumers::tick(rs, *t, now, answered, b),
        // The pump after every batch does the work.
        Op::Pump => {}
        Op::Sourced(s) => super::sourcing::store(rs, *s, now, b),
        Op::Restore(s) => super::restore::step(rs, *s, b),
    }
}

/// `{"type": kind, "error": …}` (a PubAck error has no type).
fn error_bytes(kind: Option<&str>, e: &ApiError) -> Vec<u8> {
    let v = match kind {
        Some(k) => json!({"type": k, "error": e}),
        None => json!({"error": e}),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The leader's subscription on the stream's subjects: queues each publish for the proposer.
#[derive(Debug)]
struct PubSink {
    tx: mpsc::Sender<Op>,
    acc: Weak<Account>,
}

impl InternalSink for PubSink {
    fn deliver(&self, m: &Message<'_>) {
        if m.subject.starts_with(b"$JS.ACK.") {
            let _ = self.tx.try_send(Op::Ack {
                subject: String::from_utf8_lossy(m.subject).into_owned(),
                reply: m.reply.map(|r| String::from_utf8_lossy(r).into_owned()),
                body: Bytes::copy_from_slice(m.payload),
            });
            return;
        }
        let op = Op::Publish {
            subject: String::from_utf8_lossy(m.subject).into_owned(),
            reply: m.reply.map(|r| String::from_utf8_lossy(r).into_owned()),
            headers: m.headers.map(<[u8]>::to_vec).unwrap_or_default(),
            payload: m
                .shared
                .cloned()
                .unwrap_or_else(|| Bytes::copy_from_slice(m.payload)),
        };
        if self.tx.try_send(op).is_err() {
            if let (Some(reply), Some(acc)) = (m.reply, self.acc.upgrade()) {
                answer_from_sink(&acc, reply, super::super::OVERLOADED);
            }
        }
    }
}

/// The stream groups this server holds, by (account, stream).
pub(super) type Groups = Mutex<BTreeMap<(String, String), Arc<StreamGroup>>>;

/// Removes a stopped group's files (the stream was deleted, or this peer removed from it).
pub(super) fn delete_files(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!("JetStream: could not remove {dir:?}: {e}");
    }
}

/// How long the first peer waits for the other members to be heard from before it
/// initialises a new group anyway is bounded by this many tries of [`RETRY`].
pub(super) const INIT_TRIES: u32 = 120;
/// Between tries.
pub(super) const RETRY: Duration = Duration::from_millis(250);
