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
//! and refuses to lead publishes. The host's repair loop rebuilds it from a healthy peer it can
//! reach ([`rebuild_from`]: the peer's snapshot and every message it stores, replayed into a
//! fresh store) and then applies the kept entries the peer had not. Nothing is deleted because
//! it looks wrong: the damaged store is replaced only by a peer's copy.
//!
//! The catch-up itself is a direct copy between the two hosts' replicas (gated by the driver's
//! view of which links are cut); Raft traffic goes over turmoil's network.

use std::sync::{Arc, Mutex, MutexGuard};

use natsd_core::jetstream::api::StreamConfig;
use natsd_core::jetstream::cluster::{
    Applied, MetaEntry, MetaState, ReplicatedStream, StreamEntry,
};
use natsd_core::jetstream::store::{
    Disk, FileStore, FileStoreConfig, MemDisk, StreamStore, SyncPolicy,
};
use natsd_core::jetstream::stream::{check_config, store_config};
use natsd_raft::{GroupMachine, RestoreError};

/// The stream's directory on each host's disk.
pub const STREAM_DIR: &str = "streams/S";
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
    let cfg = stream_config();
    let f = FileStoreConfig {
        block_size: 1024,
        sync: SyncPolicy::Always,
    };
    match FileStore::open(disk.clone(), STREAM_DIR, store_config(&cfg), f) {
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
            set_aside(disk);
            let fresh = FileStore::open(disk.clone(), STREAM_DIR, store_config(&cfg), f)
                .expect("an empty store opens");
            (
                Box::new(fresh),
                Some(format!("stream store does not open: {e}")),
            )
        }
    }
}

/// Moves the stream's files under `damaged-<n>/`, out of the store's way.
fn set_aside(disk: &MemDisk) {
    let mut d = disk.clone();
    let prefix = format!("{STREAM_DIR}/");
    let n = d
        .paths()
        .iter()
        .filter(|p| p.starts_with("damaged-"))
        .count();
    for p in d.paths() {
        if let Some(rest) = p.strip_prefix(&prefix) {
            let _ = d.rename(&p, &format!("damaged-{n}/{rest}"));
        }
    }
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

/// Rebuilds `target` from the healthy `source`: a fresh store filled with every message the
/// source stores, the source's snapshot over it, then `target`'s kept entries after that.
pub fn rebuild_from(target: &mut Replica, source: &Replica) -> Result<(), String> {
    let out = rebuild(target, source);
    if target.rs.is_none() {
        // Failed part-way: stay in trouble over an empty store until the next attempt.
        let (store, _) = open_store(&target.disk);
        target.rs = Some(ReplicatedStream::new(stream_config(), store, CREATED));
    }
    out
}

fn rebuild(target: &mut Replica, source: &Replica) -> Result<(), String> {
    if source.trouble.is_some() {
        return Err("source in trouble".into());
    }
    let snap = source.rs().snapshot();
    let entries = source.rs().leader_stored(0, false);
    target.rs = None;
    set_aside(&target.disk);
    let (store, damage) = open_store(&target.disk);
    if let Some(why) = damage {
        return Err(why);
    }
    let mut tmp = ReplicatedStream::new(stream_config(), store, CREATED);
    for (i, e) in entries.iter().enumerate() {
        match tmp.apply(i as u64 + 1, e) {
            Applied::Done | Applied::AlreadyHad => {}
            other => return Err(format!("catch-up record {i}: {other:?}")),
        }
    }
    let mut store = tmp.stream.store;
    store.sync().map_err(|e| e.to_string())?;
    let (rs, behind) = ReplicatedStream::restore(&snap, store).map_err(|e| e.to_string())?;
    if let Some((have, want)) = behind {
        return Err(format!("rebuilt store holds {have}, source {want}"));
    }
    target.rs = Some(rs);
    target.trouble = None;
    target
        .history
        .push(format!("rebuilt at {}", target.rs().applied()));
    target.drain();
    Ok(())
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
