//! The replicated JetStream machines of `natsd-core` as `natsd-raft` groups, for the clustered
//! JetStream simulation (`sim/tests/jetstream_cluster.rs`).
//!
//! * [`StreamMachine`]: one replica of the stream `S` — a [`ReplicatedStream`] over a file store
//!   on the host's `MemDisk` — as a [`GroupMachine`]. Committed entries are applied and the
//!   store synced before the next one, so a Raft snapshot (which holds no messages) never runs
//!   ahead of the store.
//! * [`MetaMachine`]: the meta group's [`MetaState`].
//!
//! # A replica that cannot apply
//!
//! Applying can report that this replica's store went its own way (an old leader's write that
//! never committed: [`Applied::Diverged`]), lost writes (bit flips or truncation of its block
//! files, [`Applied::Behind`]), or the store reports corruption when opened. The replica is then
//! in *trouble*: it keeps the committed entries it is handed, in order, without applying them
//! (they travel in its Raft snapshots too, so a restart or a snapshot install cannot skip them),
//! and refuses to lead publishes. Nothing is deleted because it looks wrong: the damaged store
//! is set aside (renamed under `damaged-<n>/`) only once a peer's copy replaces it.
//!
//! # Catch-up
//!
//! The host's repair loop catches the replica up over the simulated network
//! ([`jscatchup`](crate::jscatchup), the `natsd-core` catch-up protocol): it asks its peers for
//! their snapshots, takes the healthy one that applied the most (at least what this replica
//! trusted), and fills a new store in [`CATCHUP_DIR`] from that peer's store up to the
//! snapshot's last sequence, in bounded chunks. The old store and replica stay as they are
//! meanwhile, so a Raft snapshot taken during the catch-up is the same as before it. When the
//! new store is complete, the old one is set aside, the new one moved into [`STREAM_DIR`], the
//! peer's snapshot restored over it ([`Replica::finish_catchup`]), and the kept entries the peer
//! had not applied are applied. A partition, a pause or a crash interrupts the catch-up for
//! real: lost chunks and silences are asked for again, and an attempt that fails keeps what it
//! wrote in [`CATCHUP_DIR`], which the next attempt (after a restart too) checks against the
//! peer and completes instead of starting over; if it differs from the peer, it is set aside
//! and the next attempt starts from an empty store. [`rebuild_from`] runs the same protocol
//! between two replicas in memory (unit tests).

use std::sync::{Arc, Mutex, MutexGuard};

use natsd_core::jetstream::api::StreamConfig;
use natsd_core::jetstream::cluster::{
    Applied, Catchup, CatchupEvent, CatchupLimits, CatchupServer, MetaEntry, MetaState,
    ReplicatedStream, StreamEntry,
};
use natsd_core::jetstream::store::{
    Disk, FileStore, FileStoreConfig, MemDisk, StreamStore, SyncPolicy,
};
use natsd_core::jetstream::stream::{check_config, store_config};
use natsd_raft::{GroupMachine, RestoreError};

/// The stream's directory on each host's disk.
pub const STREAM_DIR: &str = "streams/S";
/// Where a catch-up fills the replacement store until it is complete.
pub const CATCHUP_DIR: &str = "streams/S.catchup";
/// The stream's creation time (the meta leader's clock when it was assigned).
pub const CREATED: u64 = 1_704_067_200_000_000_000;

/// The replicated stream's config: file storage, everything under `s.>`.
pub fn stream_config() -> StreamConfig {
    let cfg = serde_json::from_value(serde_json::json!({
        "name": "S",
        "subjects": ["s.>"],
        "storage": "file",
    }))
    .expect("stream config parses");
    check_config(cfg).expect("stream config is valid")
}

/// Locks, ignoring poison (a failed scenario should report, not cascade).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Opens the stream's file store on `disk`; also says what damage opening found.
fn open_store(disk: &MemDisk) -> (Box<dyn StreamStore + Send>, Option<String>) {
    open_store_in(disk, STREAM_DIR)
}

/// Opens the stream's file store in `dir` (see [`open_store`]).
fn open_store_in(disk: &MemDisk, dir: &str) -> (Box<dyn StreamStore + Send>, Option<String>) {
    let cfg = stream_config();
    let f = FileStoreConfig {
        block_size: 1024,
        sync: SyncPolicy::Always,
    };
    match FileStore::open(disk.clone(), dir, store_config(&cfg), f) {
        Ok(s) => {
            let why = (!s.corruption().is_empty()).then(|| {
                let c = s.corruption();
                format!(
                    "stream store corrupt in {} places, first {:?}",
                    c.len(),
                    c[0]
                )
            });
            (Box::new(s), why)
        }
        Err(e) => {
            // Unreadable: set the files aside (never delete data) and start empty.
            set_aside(disk, dir);
            let fresh = FileStore::open(disk.clone(), dir, store_config(&cfg), f)
                .expect("an empty store opens");
            (
                Box::new(fresh),
                Some(format!("stream store does not open: {e}")),
            )
        }
    }
}

/// Moves the files of `dir` under `damaged-<n>/`, out of the store's way.
fn set_aside(disk: &MemDisk, dir: &str) {
    let mut d = disk.clone();
    let prefix = format!("{dir}/");
    let n = d
        .paths()
        .iter()
        .filter(|p| p.starts_with("damaged-"))
        .count();
    for p in d.paths() {
        if let Some(rest) = p.strip_prefix(&prefix) {
            let _ = d.rename(&p, &format!("damaged-{n}/{dir}/{rest}"));
        }
    }
}

/// Moves the files of `from` into `to` (an empty directory).
fn move_dir(disk: &MemDisk, from: &str, to: &str) -> Result<(), String> {
    let mut d = disk.clone();
    let prefix = format!("{from}/");
    for p in d.paths() {
        if let Some(rest) = p.strip_prefix(&prefix) {
            d.rename(&p, &format!("{to}/{rest}"))
                .map_err(|e| format!("move {p}: {e}"))?;
        }
    }
    Ok(())
}

/// One host's replica of the stream, shared by its Raft group, its publisher and the checkers.
pub struct Replica {
    disk: MemDisk,
    /// The replica (always `Some` outside a rebuild).
    rs: Option<ReplicatedStream>,
    /// Why the store cannot be trusted until rebuilt from a peer.
    pub trouble: Option<String>,
    /// Committed entries handed over while in trouble, in order.
    pending: Vec<(u64, Vec<u8>)>,
    /// The last index applied correctly before the trouble: a rebuild source must be past it.
    pub trusted: u64,
    /// Rebuilds done, and every reason this replica was ever in trouble.
    pub history: Vec<String>,
    /// Bumped whenever the replica is replaced (a snapshot install, a finished catch-up): a
    /// catch-up begun before is stale.
    pub epoch: u64,
}

/// A shared replica.
pub type SharedReplica = Arc<Mutex<Replica>>;

impl Replica {
    /// Opens the replica over what `disk` holds (a fresh replica before any snapshot).
    pub fn open(disk: MemDisk) -> SharedReplica {
        let (store, trouble) = open_store(&disk);
        let mut r = Self {
            disk,
            rs: Some(ReplicatedStream::new(stream_config(), store, CREATED)),
            trouble: None,
            pending: Vec::new(),
            trusted: 0,
            history: Vec::new(),
            epoch: 0,
        };
        if let Some(why) = trouble {
            r.fail(why);
        }
        Arc::new(Mutex::new(r))
    }

    /// The replicated stream.
    pub fn rs(&self) -> &ReplicatedStream {
        self.rs.as_ref().expect("replica present")
    }

    /// The replicated stream, mutably (the leader's publish path).
    pub fn rs_mut(&mut self) -> &mut ReplicatedStream {
        self.rs.as_mut().expect("replica present")
    }

    /// Puts the replica in trouble as a failed apply would (tests).
    #[cfg(test)]
    pub(crate) fn fail_for_test(&mut self, why: String) {
        self.fail(why);
    }

    fn fail(&mut self, why: String) {
        if self.trouble.is_none() {
            self.trusted = self.rs().applied();
            self.history.push(why.clone());
            self.trouble = Some(why);
        }
    }

    /// Every stored message: (sequence, subject, payload).
    pub fn messages(&self) -> Vec<(u64, String, Vec<u8>)> {
        let store = self.rs().stream.store.as_ref();
        let mut out = Vec::new();
        let mut seq = 0;
        while let Ok(m) = store.load_next_msg("", seq) {
            out.push((m.seq, m.subject, m.payload.to_vec()));
            seq = m.seq + 1;
        }
        out
    }

    /// Applies one committed entry, or keeps it while in trouble.
    fn apply_bytes(&mut self, index: u64, bytes: &[u8]) {
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
        let rs = self.rs_mut();
        let out = rs.apply(index, &entry);
        // The group commit: durable before the next entry, and before any snapshot.
        let synced = rs.stream.store.sync();
        match out {
            Applied::Replay | Applied::Done | Applied::AlreadyHad => {}
            other => {
                self.fail(format!("entry {index}: {other:?}"));
                self.pending.push((index, bytes.to_vec()));
                return;
            }
        }
        if let Err(e) = synced {
            self.fail(format!("store sync failed: {e}"));
        }
    }

    /// Applies kept entries while healthy.
    fn drain(&mut self) {
        let kept = std::mem::take(&mut self.pending);
        for (index, bytes) in kept {
            if index > self.rs().applied() {
                self.apply_bytes(index, &bytes);
            }
        }
    }
}

/// The [`GroupMachine`] of the stream group: see the module docs.
pub struct StreamMachine(pub SharedReplica);

/// Snapshot layout: `u32` length + the replica's snapshot, then kept entries as
/// `u64` index, `u32` length, bytes.
fn encode_snapshot(rs: &[u8], pending: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend((rs.len() as u32).to_le_bytes());
    out.extend(rs);
    for (i, b) in pending {
        out.extend(i.to_le_bytes());
        out.extend((b.len() as u32).to_le_bytes());
        out.extend(b);
    }
    out
}

type Decoded<'a> = (&'a [u8], Vec<(u64, Vec<u8>)>);

fn decode_snapshot(b: &[u8]) -> Option<Decoded<'_>> {
    let take = |b: &[u8], at: usize, n: usize| b.get(at..at + n).map(<[u8]>::to_vec);
    let len = u32::from_le_bytes(take(b, 0, 4)?.try_into().ok()?) as usize;
    let rs = b.get(4..4 + len)?;
    let mut at = 4 + len;
    let mut pending = Vec::new();
    while at < b.len() {
        let i = u64::from_le_bytes(take(b, at, 8)?.try_into().ok()?);
        let n = u32::from_le_bytes(take(b, at + 8, 4)?.try_into().ok()?) as usize;
        pending.push((i, take(b, at + 12, n)?));
        at += 12 + n;
    }
    Some((rs, pending))
}

impl GroupMachine for StreamMachine {
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        let mut r = lock(&self.0);
        r.apply_bytes(index, command);
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        let r = lock(&self.0);
        encode_snapshot(&r.rs().snapshot(), &r.pending)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let (rs_bytes, pending) = decode_snapshot(snapshot)
            .ok_or_else(|| RestoreError::Decode("stream snapshot framing".into()))?;
        let mut r = lock(&self.0);
        // Close the store before reopening it over the same files.
        r.rs = None;
        let (store, damage) = open_store(&r.disk);
        let (rs, behind) = ReplicatedStream::restore(rs_bytes, store)
            .map_err(|e| RestoreError::Decode(e.to_string()))?;
        r.rs = Some(rs);
        r.trouble = None;
        r.pending = pending;
        r.epoch += 1;
        if let Some(why) = damage {
            r.fail(why);
        } else if let Some((have, want)) = behind {
            r.fail(format!("store holds {have}, snapshot saw {want}"));
        } else {
            r.drain();
        }
        Ok(())
    }
}

impl Replica {
    /// What a peer catching up is given: this replica's snapshot, unless it is in trouble.
    pub fn serve_snapshot(&self) -> Option<Vec<u8>> {
        self.trouble.is_none().then(|| self.rs().snapshot())
    }

    /// Starts a catch-up to `snap` (a peer's snapshot): the store in [`CATCHUP_DIR`] (what an
    /// earlier attempt left there is checked against the peer, not trusted) and the machine
    /// that fills it.
    pub fn begin_catchup(
        &mut self,
        now: std::time::Instant,
        snap: &[u8],
        limits: CatchupLimits,
    ) -> Result<(Box<dyn StreamStore + Send>, Catchup), String> {
        let info = ReplicatedStream::snapshot_info(snap).map_err(|e| e.to_string())?;
        if info.applied < self.trusted {
            return Err(format!(
                "peer applied {}, this replica trusted {}",
                info.applied, self.trusted
            ));
        }
        let (mut store, damage) = open_store_in(&self.disk, CATCHUP_DIR);
        if damage.is_some() {
            drop(store);
            set_aside(&self.disk, CATCHUP_DIR);
            store = open_store_in(&self.disk, CATCHUP_DIR).0;
        }
        let kept = store.state().last_seq > 0;
        let c = Catchup::new(now, store.as_ref(), info.last_seq, kept, limits);
        Ok((store, c))
    }

    /// What an attempt wrote differs from the peer: set it aside, start empty next time.
    pub fn discard_catchup(&mut self, store: Box<dyn StreamStore + Send>) {
        drop(store);
        set_aside(&self.disk, CATCHUP_DIR);
    }

    /// A complete catch-up: the old store set aside, the new one in its place, `snap`
    /// restored over it, then the kept entries the peer had not applied.
    pub fn finish_catchup(
        &mut self,
        mut store: Box<dyn StreamStore + Send>,
        snap: &[u8],
    ) -> Result<(), String> {
        store.sync().map_err(|e| e.to_string())?;
        drop(store);
        self.rs = None;
        set_aside(&self.disk, STREAM_DIR);
        let moved = move_dir(&self.disk, CATCHUP_DIR, STREAM_DIR);
        let (store, damage) = open_store(&self.disk);
        let restored = ReplicatedStream::restore(snap, store).map_err(|e| e.to_string());
        let out = match (moved, damage, restored) {
            (Err(e), _, _) | (_, Some(e), _) | (_, _, Err(e)) => Err(e),
            (Ok(()), None, Ok((_, Some((have, want))))) => {
                Err(format!("caught-up store holds {have}, snapshot {want}"))
            }
            (Ok(()), None, Ok((rs, None))) => {
                self.rs = Some(rs);
                self.trouble = None;
                self.epoch += 1;
                self.history
                    .push(format!("rebuilt at {}", self.rs().applied()));
                self.drain();
                Ok(())
            }
        };
        if self.rs.is_none() {
            // Failed part-way: stay in trouble over an empty store until the next attempt.
            let (store, _) = open_store(&self.disk);
            self.rs = Some(ReplicatedStream::new(stream_config(), store, CREATED));
        }
        out
    }
}

/// Rebuilds `target` from the healthy `source` with the catch-up protocol run in memory (no
/// network, nothing lost): see the module docs.
pub fn rebuild_from(target: &mut Replica, source: &Replica) -> Result<(), String> {
    let snap = source
        .serve_snapshot()
        .ok_or_else(|| "source in trouble".to_owned())?;
    #[allow(clippy::disallowed_methods)] // no timer runs out in memory
    let now = std::time::Instant::now();
    let limits = CatchupLimits::default();
    let (mut store, mut c) = target.begin_catchup(now, &snap, limits)?;
    for _ in 0..1_000_000 {
        match c.poll_event() {
            Some(CatchupEvent::Done) => return target.finish_catchup(store, &snap),
            Some(CatchupEvent::Diverged { seq }) => {
                target.discard_catchup(store);
                return Err(format!("catch-up store differs at {seq}"));
            }
            Some(ev) => return Err(format!("{ev:?}")),
            None => {}
        }
        let req = c.poll_transmit().ok_or("catch-up stalled")?;
        let mut srv = CatchupServer::from_request(&req, limits).ok_or("request")?;
        while let Some(chunk) = srv.poll_chunk(source.rs().stream.store.as_ref()) {
            c.handle_chunk(now, store.as_mut(), &chunk.encode());
        }
    }
    Err("catch-up did not end".into())
}

/// The meta group's state, shared with the checkers.
pub type SharedMeta = Arc<Mutex<MetaState>>;

/// The [`GroupMachine`] of the meta group.
pub struct MetaMachine(pub SharedMeta);

impl GroupMachine for MetaMachine {
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        if let Ok(e) = MetaEntry::decode(command) {
            lock(&self.0).apply(index, e);
        }
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        lock(&self.0).snapshot()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        lock(&self.0)
            .restore(snapshot)
            .map(|_| ())
            .map_err(|e| RestoreError::Decode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_framing_round_trips_and_refuses_short_input() {
        let pending = vec![(7, b"abc".to_vec()), (9, Vec::new())];
        let bytes = encode_snapshot(b"state", &pending);
        let (rs, back) = decode_snapshot(&bytes).expect("decodes");
        assert_eq!(rs, b"state");
        assert_eq!(back, pending);
        for cut in 1..bytes.len() {
            if let Some((_, p)) = decode_snapshot(&bytes[..cut]) {
                // Only a cut on an entry boundary decodes, and then to fewer entries.
                assert!(p.len() < pending.len(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_replica_rebuilt_from_a_peer_holds_the_peers_messages() {
        let leader_disk = MemDisk::new(1);
        let leader = Replica::open(leader_disk);
        let follower = Replica::open(MemDisk::new(2));
        let mut index = 0;
        for i in 0..5u64 {
            let entries = {
                let mut l = lock(&leader);
                let (_, e) = l
                    .rs_mut()
                    .leader_publish("s.x", &[], format!("m{i}").as_bytes(), CREATED + i)
                    .expect("publish");
                e
            };
            for e in entries {
                index += 1;
                let bytes = e.encode();
                lock(&leader).apply_bytes(index, &bytes);
                if i != 2 {
                    // The follower misses one entry: it is behind from then on.
                    lock(&follower).apply_bytes(index, &bytes);
                }
            }
        }
        let mut f = lock(&follower);
        assert!(f.trouble.is_some(), "a gap puts the follower in trouble");
        rebuild_from(&mut f, &lock(&leader)).expect("rebuild");
        assert!(f.trouble.is_none());
        assert_eq!(f.messages(), lock(&leader).messages());
        assert_eq!(f.rs().applied(), index);
    }
}
