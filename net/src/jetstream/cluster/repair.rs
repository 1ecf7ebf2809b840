//! Repairing a stream replica in trouble (see [`replicas`](super::replicas)) from its peers
//! (Go: jetstream_cluster.go processSnapshot / runCatchup), with core's catch-up protocol
//! ([`Catchup`] here, [`CatchupServer`] on the peer) over the cluster bus.
//!
//! # Serving
//! Every replica answers `$NATSD.JSC.CU.<node>.<group>` requests (see [`bus`](super::bus)):
//! `P` asks for its snapshot (its current state, not Raft's stored one; empty while it is in
//! trouble or its Raft log is damaged), `C` + a catch-up request for a window of chunks read
//! from its store, each published to the asker's reply subject in order. A replica that gets
//! into trouble part-way ends the window with a failed chunk.
//!
//! # Repairing
//! One task per replica waits for trouble. Then it turns elections off for the group (a
//! replica in trouble must not lead; a leader that got into trouble asks another voter to
//! campaign), logs a warning, and repeats attempts until the replica is healthy again:
//!
//! 1. ask every other member for its snapshot (the leader first), each within a deadline, and
//!    take the one that applied the most, at least what this replica applied before the
//!    trouble;
//! 2. fill a store kept apart in `<group>/catchup` from that peer, in bounded windows, asking
//!    again after silence and giving the attempt up after a few (what it wrote is kept and
//!    checked against the peer by the next attempt, or set aside when it differs);
//! 3. once complete, set the live store aside (`<group>/damaged-<n>-msgs`: renamed, never
//!    deleted), move the new one in, restore the peer's snapshot over it and apply the
//!    committed entries kept meanwhile.
//!
//! A memory stream's replica whose server restarted finds its store empty beneath its Raft
//! snapshot and is repaired the same way. While in that state it answers a snapshot ask with
//! [`LOST`]; when every other member answers so too (the whole group restarted), nobody holds
//! the messages any more, and the replica takes the loss: its store starts empty after the
//! snapshot's last sequence, which keeps the sequences of the group's Raft log in step (Go: a
//! memory stream comes back empty after its servers restart; nats-server also starts its
//! sequences again from 1, natsd continues them).
//!
//! Then elections come back (unless the Raft log itself is damaged), an info line is logged,
//! and the replica leads again when Raft makes it leader. A snapshot installed or a stop
//! meanwhile makes the attempt stale; it is dropped.
//!
//! # Snapshot framing
//! The kept entries travel in the group's Raft snapshots, after the replica's own snapshot:
//! [`KEPT`], a `u32` length and the replica's snapshot, then each entry as a `u64` index, a
//! `u32` length and its bytes. A snapshot without kept entries is the replica's own bytes.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use natsd_core::jetstream::cluster::catchup::ChunkEnd;
use natsd_core::jetstream::cluster::{
    Catchup, CatchupChunk, CatchupEvent, CatchupLimits, CatchupRequest, CatchupServer,
    ReplicatedStream,
};
use natsd_core::jetstream::store::StreamStore;
use natsd_raft::NodeId;
use tokio::time::{timeout_at, Instant};

use super::bus::{self, Bus, Inbound};
use super::replicas::{is_memory, open_store, open_store_in, Replica, StreamGroup, STORE_DIR};
use super::JsCluster;
use crate::server::{lock, unix_nanos, Shared};

/// Where a catch-up fills the replacement store until it is complete.
pub(super) const CATCHUP_DIR: &str = "catchup";
/// First byte of a snapshot ask.
const ASK_SNAPSHOT: u8 = b'P';
/// First byte of a catch-up request (its bytes follow).
const ASK_CHUNKS: u8 = b'C';
/// How long an answer may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// Silences in a row after which an attempt is given up.
const MAX_SILENCES: u32 = 3;
/// Between attempts.
const RETRY: Duration = Duration::from_secs(1);
/// Starts a snapshot that carries kept entries (no replica snapshot starts with `0xff`).
pub(super) const KEPT: &[u8] = b"\xffKEPT1";
/// A memory replica's answer to a snapshot ask while its messages are lost (see the module
/// docs).
const LOST: &[u8] = b"\xffLOST1";

/// Chunks small enough for any route's `max_payload`, windows small enough that a window in
/// flight (256 KiB) never stalls a route.
fn limits() -> CatchupLimits {
    CatchupLimits {
        chunk_bytes: 32 * 1024,
        chunk_msgs: 256,
        window: 8,
        timeout: REPLY_TIMEOUT,
    }
}

/// The group snapshot's bytes (see the module docs).
pub(super) fn encode_snapshot(rs: &[u8], pending: &[(u64, Vec<u8>)]) -> Vec<u8> {
    if pending.is_empty() {
        return rs.to_vec();
    }
    let mut out = KEPT.to_vec();
    out.extend(u32::try_from(rs.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend(rs);
    for (i, b) in pending {
        out.extend(i.to_le_bytes());
        out.extend(u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend(b);
    }
    out
}

/// Committed entries kept while in trouble: (log index, entry bytes), in order.
pub(super) type Kept = Vec<(u64, Vec<u8>)>;

/// The replica's snapshot and the kept entries of a group snapshot; `None` when cut short.
pub(super) fn decode_snapshot(b: &[u8]) -> Option<(&[u8], Kept)> {
    let Some(b) = b.strip_prefix(KEPT) else {
        return Some((b, Vec::new()));
    };
    let u32_at = |at: usize| -> Option<usize> {
        let v = u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?);
        usize::try_from(v).ok()
    };
    let len = u32_at(0)?;
    let rs = b.get(4..4 + len)?;
    let mut at = 4 + len;
    let mut pending = Vec::new();
    while at < b.len() {
        let i = u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?);
        let n = u32_at(at + 8)?;
        pending.push((i, b.get(at + 12..at + 12 + n)?.to_vec()));
        at += 12 + n;
    }
    Some((rs, pending))
}

/// Renames `<dir>/<name>` to the first free `<dir>/damaged-<n>-<name>` (never deletes).
pub(super) fn set_aside(dir: &Path, name: &str) {
    let from = dir.join(name);
    if !from.exists() {
        return;
    }
    for n in 0u32.. {
        let to = dir.join(format!("damaged-{n}-{name}"));
        if to.exists() {
            continue;
        }
        match std::fs::rename(&from, &to) {
            Ok(()) => tracing::warn!("JetStream: set {from:?} aside as {to:?}"),
            Err(e) => tracing::error!("JetStream: could not set {from:?} aside: {e}"),
        }
        return;
    }
}

impl Replica {
    /// The current epoch (see the field).
    fn epoch_now(&self) -> u64 {
        let e = *self.epoch.borrow();
        e
    }

    /// What a peer repairing itself is given: this replica's snapshot, unless it is in
    /// trouble.
    fn serve_snapshot(&self) -> Option<Vec<u8>> {
        if self.trouble.is_some() {
            return self.memory_lost.map(|_| LOST.to_vec());
        }
        self.rs.as_ref().map(ReplicatedStream::snapshot)
    }

    /// Starts a catch-up to `snap` (a peer's snapshot): the store in [`CATCHUP_DIR`] (what an
    /// earlier attempt left there is checked against the peer, not trusted) and the machine
    /// that fills it.
    fn begin_catchup(
        &mut self,
        snap: &[u8],
    ) -> Result<(Box<dyn StreamStore + Send>, Catchup), String> {
        let info = ReplicatedStream::snapshot_info(snap).map_err(|e| e.to_string())?;
        if info.applied < self.trusted {
            return Err(format!(
                "the peer applied {}, this replica {}",
                info.applied, self.trusted
            ));
        }
        let (mut store, damage) = open_store_in(&self.dir, CATCHUP_DIR, &self.config);
        if damage.is_some() {
            drop(store);
            set_aside(&self.dir, CATCHUP_DIR);
            store = open_store_in(&self.dir, CATCHUP_DIR, &self.config).0;
        }
        let kept = store.state().last_seq > 0;
        let c = Catchup::new(
            crate::transport::now(),
            store.as_ref(),
            info.last_seq,
            kept,
            limits(),
        );
        Ok((store, c))
    }

    /// A complete catch-up: the live store set aside, the new one in its place, `snap`
    /// restored over it, then the kept entries the peer had not applied.
    fn finish_catchup(
        &mut self,
        mut store: Box<dyn StreamStore + Send>,
        snap: &[u8],
    ) -> Result<(), String> {
        store
            .sync()
            .map_err(|e| format!("catch-up store sync: {e}"))?;
        let created = self.rs.as_ref().map_or(0, |rs| rs.stream.created);
        self.rs = None;
        let (moved, store, damage) = if is_memory(&self.config) {
            // In memory: the filled store itself goes in.
            (Ok(()), store, None)
        } else {
            drop(store);
            set_aside(&self.dir, STORE_DIR);
            let moved = std::fs::rename(self.dir.join(CATCHUP_DIR), self.dir.join(STORE_DIR))
                .map_err(|e| format!("moving the caught-up store in: {e}"));
            let (store, damage) = open_store(&self.dir, &self.config);
            (moved, store, damage)
        };
        let restored = ReplicatedStream::restore(snap, store).map_err(|e| e.to_string());
        let out = match (moved, damage, restored) {
            (Err(e), _, _) | (_, Some(e), _) | (_, _, Err(e)) => Err(e),
            (Ok(()), None, Ok((_, Some((have, want))))) => Err(format!(
                "the caught-up store holds {have}, the snapshot {want}"
            )),
            (Ok(()), None, Ok((mut rs, None))) => {
                rs.set_leading(false);
                self.config = rs.stream.config.clone();
                self.rs = Some(rs);
                self.trouble = None;
                self.damaged_store = false;
                self.memory_lost = None;
                self.epoch.send_modify(|e| *e += 1);
                self.drain();
                Ok(())
            }
        };
        if self.rs.is_none() {
            // Failed part-way: stay in trouble over what the store directory holds until the
            // next attempt.
            let (store, _) = open_store(&self.dir, &self.config);
            self.rs = Some(ReplicatedStream::new(self.config.clone(), store, created));
            self.damaged_store = true;
        }
        out
    }
}

impl Replica {
    /// Every member of a memory stream's group lost its messages (see the module docs): the
    /// store starts empty after the last sequence the snapshot saw, and the kept entries
    /// apply over it.
    fn accept_memory_loss(
        &mut self,
        now: natsd_core::jetstream::store::UnixNanos,
    ) -> Result<(), String> {
        let Some(want) = self.memory_lost else {
            return Err("not a memory replica that lost its messages".to_owned());
        };
        let Some(rs) = self.rs.as_mut() else {
            return Err("no replica".to_owned());
        };
        let store = &mut rs.stream.store;
        let have = store.state().last_seq;
        if have < want {
            store
                .skip_msgs(have + 1, want - have, now)
                .map_err(|e| format!("skipping the lost sequences: {e}"))?;
        }
        // Rebuilt from its own snapshot over the store, now level with it.
        let snap = rs.snapshot();
        let store = std::mem::replace(
            &mut rs.stream.store,
            Box::new(natsd_core::jetstream::store::MemStore::new(
                natsd_core::jetstream::stream::store_config(&self.config),
            )),
        );
        let (mut rs, behind) =
            ReplicatedStream::restore(&snap, store).map_err(|e| e.to_string())?;
        if let Some((have, want)) = behind {
            return Err(format!("store holds {have}, snapshot saw {want}"));
        }
        rs.set_leading(false);
        self.rs = Some(rs);
        self.trouble = None;
        self.memory_lost = None;
        self.epoch.send_modify(|e| *e += 1);
        self.drain();
        Ok(())
    }
}

/// Follows `g`'s replica: repairs it whenever it is in trouble, until the group stops.
pub(super) async fn run(g: Arc<StreamGroup>, bus: Arc<Bus>, srv: Weak<Shared>) {
    let mut epoch = lock(&g.replica).epoch.subscribe();
    let mut warned: Option<u64> = None;
    loop {
        if g.is_stopped() {
            return;
        }
        let (trouble, at) = {
            let r = lock(&g.replica);
            (r.trouble.clone(), r.epoch_now())
        };
        let Some(why) = trouble else {
            if epoch.changed().await.is_err() {
                return;
            }
            continue;
        };
        let raft = g.group.raft().clone();
        raft.runtime_config().elect(false);
        if warned.is_none() {
            tracing::warn!(
                "JetStream stream {} in account {} is out of step with its peers and is being repaired: {why}",
                g.name,
                g.account
            );
            warned = Some(at);
        }
        hand_over_leadership(&g, &bus);
        match attempt(&g, &bus, &srv).await {
            Ok(Some(how)) => {
                tracing::info!(
                    "JetStream stream {} in account {} repaired: {how}",
                    g.name,
                    g.account
                );
                warned = None;
                if !g.group.is_damaged() {
                    raft.runtime_config().elect(true);
                }
            }
            Ok(None) => tokio::time::sleep(RETRY).await,
            Err(e) => {
                tracing::warn!(
                    "JetStream stream {} in account {}: repair attempt failed, trying again: {e}",
                    g.name,
                    g.account
                );
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// A leader in trouble asks another voter to campaign (it stops proposing at once; see
/// `replicas`).
fn hand_over_leadership(g: &StreamGroup, bus: &Bus) {
    let m = g.group.raft().metrics().borrow().clone();
    if m.current_leader != Some(m.id) {
        return;
    }
    let other = m
        .membership_config
        .membership()
        .voter_ids()
        .find(|id| *id != m.id);
    if let Some(id) = other {
        let subject = format!("{}{id}", bus::ELECT_PREFIX);
        bus.publish(&subject, None, Bytes::from(g.group.name().to_owned()));
    }
}

/// Asks `peer` for its snapshot of `group`; `None` when it has none to give in time.
async fn ask_snapshot(bus: &Arc<Bus>, peer: NodeId, group: &str) -> Option<Vec<u8>> {
    let mut inbox = bus.inbox(1);
    let subject = format!("{}{peer}.{group}", bus::CATCHUP_PREFIX);
    if !bus.publish(
        &subject,
        Some(&inbox.reply),
        Bytes::from_static(&[ASK_SNAPSHOT]),
    ) {
        return None;
    }
    let snap = timeout_at(Instant::now() + REPLY_TIMEOUT, inbox.rx.recv())
        .await
        .ok()??;
    (!snap.is_empty()).then(|| snap.to_vec())
}

/// One repair attempt: `Ok(Some(how))` once rebuilt, `Ok(None)` when no peer could serve or
/// the attempt went stale, `Err` when it failed part-way.
async fn attempt(
    g: &Arc<StreamGroup>,
    bus: &Arc<Bus>,
    srv: &Weak<Shared>,
) -> Result<Option<String>, String> {
    let started = Instant::now();
    let (trusted, epoch) = {
        let r = lock(&g.replica);
        if r.trouble.is_none() {
            return Ok(None);
        }
        (r.trusted, r.epoch_now())
    };
    let m = g.group.raft().metrics().borrow().clone();
    let mut peers: Vec<NodeId> = m
        .membership_config
        .membership()
        .nodes()
        .map(|(id, _)| *id)
        .filter(|id| *id != m.id)
        .collect();
    if let Some(i) = peers.iter().position(|p| Some(*p) == m.current_leader) {
        peers.swap(0, i);
    }
    let group = g.group.name().to_owned();
    let mut best: Option<(u64, NodeId, Vec<u8>)> = None;
    let mut lost = 0;
    let asked = peers.len();
    for peer in peers {
        let Some(snap) = ask_snapshot(bus, peer, &group).await else {
            continue;
        };
        if snap == LOST {
            lost += 1;
            continue;
        }
        let Ok(info) = ReplicatedStream::snapshot_info(&snap) else {
            continue;
        };
        if info.applied >= trusted && best.as_ref().is_none_or(|b| info.applied > b.0) {
            best = Some((info.applied, peer, snap));
        }
    }
    let Some((_, peer, snap)) = best else {
        if lost == asked && asked > 0 {
            let mut r = lock(&g.replica);
            if r.epoch_now() == epoch && r.memory_lost.is_some() {
                let now = srv.upgrade().map_or(0, |s| unix_nanos(s.wall_clock()));
                r.accept_memory_loss(now)?;
                return Ok(Some(
                    "every replica restarted and lost its messages (memory storage); the stream goes on without them".to_owned(),
                ));
            }
        }
        return Ok(None);
    };
    let stale = |r: &Replica| r.epoch_now() != epoch || r.trouble.is_none();
    let (mut store, mut c) = {
        let mut r = lock(&g.replica);
        if stale(&r) {
            return Ok(None);
        }
        r.begin_catchup(&snap)?
    };
    let kept = store.state().last_seq;
    let peer_name = m
        .membership_config
        .membership()
        .get_node(&peer)
        .map_or_else(|| peer.to_string(), |n| n.name.clone());
    let subject = format!("{}{peer}.{group}", bus::CATCHUP_PREFIX);
    let mut inbox = bus.inbox(limits().window as usize * 2);
    let mut silences = 0;
    loop {
        if g.is_stopped() {
            return Ok(None);
        }
        match c.poll_event() {
            Some(CatchupEvent::Done) => {
                let mut r = lock(&g.replica);
                if stale(&r) {
                    return Ok(None);
                }
                r.finish_catchup(store, &snap)?;
                return Ok(Some(format!(
                    "caught up from {peer_name} through sequence {} ({kept} kept) in {} requests, {:?}",
                    c.next_seq().saturating_sub(1),
                    c.requests(),
                    started.elapsed()
                )));
            }
            Some(CatchupEvent::Diverged { seq }) => {
                drop(store);
                set_aside(&lock(&g.replica).dir, CATCHUP_DIR);
                return Err(format!(
                    "from {peer_name}: what an earlier attempt wrote differs at {seq}, set aside"
                ));
            }
            Some(ev) => return Err(format!("from {peer_name}: {ev:?}")),
            None => {}
        }
        if silences >= MAX_SILENCES {
            return Err(format!(
                "no answer from {peer_name}, {} written so far",
                c.next_seq().saturating_sub(1)
            ));
        }
        while let Some(req) = c.poll_transmit() {
            let mut p = Vec::with_capacity(req.len() + 1);
            p.push(ASK_CHUNKS);
            p.extend(req);
            if !bus.publish(&subject, Some(&inbox.reply), Bytes::from(p)) {
                return Err(format!("no route to {peer_name}"));
            }
        }
        let deadline = c
            .poll_timeout()
            .map_or_else(|| Instant::now() + REPLY_TIMEOUT, Instant::from_std);
        match timeout_at(deadline, inbox.rx.recv()).await {
            Ok(Some(frame)) => {
                silences = 0;
                c.handle_chunk(crate::transport::now(), store.as_mut(), &frame);
                // Durable as it goes, so an attempt cut by a crash resumes from here.
                store
                    .sync()
                    .map_err(|e| format!("catch-up store sync: {e}"))?;
            }
            Ok(None) => return Err("inbox closed".to_owned()),
            Err(_) => {
                silences += 1;
                c.handle_timeout(crate::transport::now());
            }
        }
    }
}

impl JsCluster {
    /// Answers a catch-up request for one of this server's replicas (see the module docs).
    pub(super) fn serve_catchup(&self, m: Inbound) {
        let Some(reply) = m.reply else { return };
        let Some(group) = m.subject.rsplit('.').next() else {
            return;
        };
        let g = lock(&self.streams)
            .values()
            .find(|g| g.group.name() == group)
            .cloned();
        let Some(g) = g else { return };
        let bus = Arc::clone(&self.bus);
        match m.payload.first() {
            Some(&ASK_SNAPSHOT) => {
                let snap = if g.group.is_damaged() {
                    None
                } else {
                    lock(&g.replica).serve_snapshot()
                };
                bus.publish(&reply, None, Bytes::from(snap.unwrap_or_default()));
            }
            Some(&ASK_CHUNKS) => {
                let Ok(req) = CatchupRequest::decode(&m.payload[1..]) else {
                    return;
                };
                tokio::spawn(serve_window(g, bus, reply, req));
            }
            _ => {}
        }
    }
}

/// Sends one window of chunks from `g`'s store, in order.
async fn serve_window(g: Arc<StreamGroup>, bus: Arc<Bus>, reply: String, req: CatchupRequest) {
    let id = req.id;
    let mut srv = CatchupServer::new(req, limits());
    loop {
        let chunk = {
            let r = lock(&g.replica);
            match r.rs.as_ref() {
                Some(rs) if r.trouble.is_none() => srv.poll_chunk(rs.stream.store.as_ref()),
                // Its store is not to be trusted any more: end the window there.
                _ => Some(CatchupChunk {
                    id,
                    records: Vec::new(),
                    end: ChunkEnd::Failed("the peer's replica is in trouble".into()),
                }),
            }
        };
        let Some(chunk) = chunk else { return };
        let last = chunk.end != ChunkEnd::More;
        if !bus.publish(&reply, None, Bytes::from(chunk.encode())) || last {
            return;
        }
        // Lets the routes drain between chunks.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_framing_round_trips_and_refuses_short_input() {
        assert_eq!(decode_snapshot(b"plain"), Some((&b"plain"[..], Vec::new())));
        assert_eq!(encode_snapshot(b"plain", &[]), b"plain");
        let pending = vec![(7, b"abc".to_vec()), (9, Vec::new())];
        let bytes = encode_snapshot(b"state", &pending);
        let (rs, back) = decode_snapshot(&bytes).expect("decodes");
        assert_eq!(rs, b"state");
        assert_eq!(back, pending);
        for cut in KEPT.len()..bytes.len() {
            if let Some((_, p)) = decode_snapshot(&bytes[..cut]) {
                // Only a cut on an entry boundary decodes, and then to fewer entries.
                assert!(p.len() < pending.len(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn set_aside_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("natsd-set-aside-{}", std::process::id()));
        for _ in 0..2 {
            std::fs::create_dir_all(dir.join("msgs")).expect("mkdir");
            set_aside(&dir, "msgs");
        }
        let ok = dir.join("damaged-0-msgs").is_dir()
            && dir.join("damaged-1-msgs").is_dir()
            && !dir.join("msgs").exists();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(ok, "both set aside under their own names");
    }
}
