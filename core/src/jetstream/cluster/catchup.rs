//! Catching a replica's store up from a healthy peer's (Go: jetstream_cluster.go
//! `processSnapshot` / `runCatchup` / `processCatchupMsg`).
//!
//! A replicated stream's snapshot holds its state, not its messages (see `replica`). A replica
//! whose store lacks messages ([`Applied::Behind`](super::Applied::Behind)), went its own way
//! ([`Applied::Diverged`](super::Applied::Diverged)) or was found damaged gets them from a
//! peer: it takes the peer's snapshot as the target (its `last_seq`, see
//! [`SnapshotInfo`](super::replica::SnapshotInfo)), fills its store up to there with this
//! protocol, restores the snapshot over the store, then applies the committed entries it kept
//! meanwhile, as it would have.
//!
//! # The two sides
//! * [`Catchup`] (the replica): asks for `from_seq..=up_to_seq` ([`CatchupRequest`]), writes
//!   what comes back into its store, and asks again from the first sequence it still lacks when
//!   a window ends, a chunk is missing, or nothing came for a while. A request is idempotent:
//!   chunks it already wrote are recognised and skipped, so a lost, late or duplicated chunk
//!   costs a retransmission, never a wrong store.
//! * [`CatchupServer`] (the peer): answers one request with at most `window` chunks
//!   ([`CatchupChunk`]), each bounded by a byte and a message cap, read from its store as it is
//!   when the chunk is made. The last chunk says whether the range is complete (`Done`, with
//!   the peer's first and last sequence) or the requester should ask again (`Window`). The
//!   requester's window bounds what is in flight (Go bounds it by bytes and messages too).
//!
//! # What a chunk carries
//! Messages as stored (sequence, time, subject, headers, payload) and, between them, the
//! sequences that hold nothing (`Gap`: deleted, purged, expired or skipped), so interior deletes
//! and purges come out identical: a gap is written as a skip ([`StreamStore::skip_msgs`]). A
//! replica that keeps its store (one that is only behind) first has what it holds checked: the
//! server sends a digest (`Check`) instead of each message at or below `verify_through`, and a
//! difference is reported ([`CatchupEvent::Diverged`]) for the caller to set the store aside
//! and start over in a fresh one. A gap over a message the replica holds is a removal the peer
//! made (the log said so there), and is made here too. Nothing else is removed.
//!
//! # Driving it
//! Requester: build [`Catchup::new`] over the store to fill (a fresh one for a diverged or
//! damaged replica; best kept apart from the live store until complete, so a crash or a Raft
//! snapshot taken meanwhile never sees a half-filled store); after it and after every
//! [`Catchup::handle_chunk`] / [`Catchup::handle_timeout`], send what
//! [`Catchup::poll_transmit`] gives, check [`Catchup::poll_event`], re-arm
//! [`Catchup::poll_timeout`]. On [`CatchupEvent::Done`], restore the peer's snapshot over the
//! store ([`ReplicatedStream::restore`](super::ReplicatedStream::restore)) and apply the kept
//! entries after its applied index. Server: one [`CatchupServer`] per request, its chunks
//! sent in order as [`CatchupServer::poll_chunk`] makes them.
//!
//! # Contract
//! No I/O but the stores handed in, no clock (times are `now` arguments), no randomness.
//! Bytes that do not decode are an output ([`CatchupEvent::Failed`] on the requester, `None`
//! from [`CatchupServer::from_request`]), never a panic.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::codec::{self, DecodeError, Kind, Reader, Writer};
use crate::jetstream::store::crc::crc32c;
use crate::jetstream::store::{StoreError, StoredMsg, StreamStore, UnixNanos};

/// Bytes of message data in one chunk (a chunk holds at least one record).
pub const DEFAULT_CHUNK_BYTES: usize = 128 * 1024;
/// Messages in one chunk.
pub const DEFAULT_CHUNK_MSGS: usize = 256;
/// Chunks answered per request. With the caps above at most 8 MiB and 16K messages are in
/// flight (Go 2.9 runCatchup: 8 MiB / 32K messages outstanding per catch-up).
pub const DEFAULT_WINDOW: u32 = 64;
/// With nothing received for this long, the requester asks again from where it is.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Bounds a chunk's record count before allocating for it.
const MAX_RECORDS: u64 = 1 << 20;

/// Limits of a catch-up (both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchupLimits {
    /// Message bytes per chunk (subject, headers, payload).
    pub chunk_bytes: usize,
    /// Records per chunk.
    pub chunk_msgs: usize,
    /// Chunks per request: the requester's bound on what is in flight.
    pub window: u32,
    /// Silence after which the requester asks again.
    pub timeout: Duration,
}

impl Default for CatchupLimits {
    fn default() -> Self {
        Self {
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            chunk_msgs: DEFAULT_CHUNK_MSGS,
            window: DEFAULT_WINDOW,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// What the replica asks of its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchupRequest {
    /// Names the request; its chunks carry it.
    pub id: u64,
    /// First sequence wanted.
    pub from_seq: u64,
    /// Last sequence wanted (the snapshot's `last_seq`).
    pub up_to_seq: u64,
    /// Sequences up to here the replica holds already: send a digest, not the message.
    pub verify_through: u64,
    /// Most chunks to answer with.
    pub window: u32,
}

/// One record of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A message as the peer stores it.
    Msg(StoredMsg),
    /// A message the replica says it holds: its digest.
    Check {
        /// Sequence.
        seq: u64,
        /// Digest of time, subject, headers and payload ([`digest`]).
        digest: u64,
    },
    /// Sequences `seq..seq + count` hold nothing on the peer.
    Gap {
        /// First.
        seq: u64,
        /// How many (at least one).
        count: u64,
        /// The store time a skip to here records (the peer's next message's, or its
        /// `last_ts` when the gap reaches its end).
        ts: UnixNanos,
    },
}

impl Record {
    /// The sequences the record covers, inclusive.
    fn range(&self) -> (u64, u64) {
        match self {
            Self::Msg(m) => (m.seq, m.seq),
            Self::Check { seq, .. } => (*seq, *seq),
            Self::Gap { seq, count, .. } => (*seq, seq + count.saturating_sub(1)),
        }
    }
}

/// How a chunk ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkEnd {
    /// More chunks of this request follow.
    More,
    /// The request's window is used up: ask again from the first sequence still missing.
    Window,
    /// The range is complete as far as the peer holds it.
    Done {
        /// The peer's first sequence.
        first_seq: u64,
        /// The peer's last sequence (below `up_to_seq`: the peer has less than asked).
        last_seq: u64,
    },
    /// The peer cannot serve (its store failed a read).
    Failed(String),
}

/// What the peer sends: records in sequence order, with no holes between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchupChunk {
    /// The request answered.
    pub id: u64,
    /// The records.
    pub records: Vec<Record>,
    /// How it ends.
    pub end: ChunkEnd,
}

/// The digest a `Check` carries: store time, then CRC-32C of subject, headers and payload,
/// each length-prefixed so field boundaries count. A replica's own unreplicated write differs
/// from the leader's in time or content; this tells them apart without moving the message.
pub fn digest(m: &StoredMsg) -> u64 {
    let mut w = Writer::default();
    w.uvarint(m.ts);
    w.str(&m.subject);
    w.bytes(&m.headers);
    w.bytes(&m.payload);
    (u64::from(crc32c(&w.0)) << 32) ^ m.ts.rotate_left(17) ^ w.0.len() as u64
}

const R_MSG: u8 = 1;
const R_CHECK: u8 = 2;
const R_GAP: u8 = 3;
const E_MORE: u8 = 0;
const E_WINDOW: u8 = 1;
const E_DONE: u8 = 2;
const E_FAILED: u8 = 3;

impl CatchupRequest {
    /// The request's bytes (see `codec` for the envelope).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        for v in [self.id, self.from_seq, self.up_to_seq, self.verify_through] {
            w.uvarint(v);
        }
        w.uvarint(u64::from(self.window));
        codec::seal(Kind::CatchupRequest, &w.0)
    }

    /// Parses a request.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(codec::open(Kind::CatchupRequest, bytes)?);
        let req = Self {
            id: r.uvarint()?,
            from_seq: r.uvarint()?,
            up_to_seq: r.uvarint()?,
            verify_through: r.uvarint()?,
            window: u32::try_from(r.uvarint()?)
                .map_err(|_| DecodeError::Malformed("window".into()))?,
        };
        r.finish()?;
        Ok(req)
    }
}

impl CatchupChunk {
    /// The chunk's bytes (see `codec` for the envelope).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.uvarint(self.id);
        w.uvarint(self.records.len() as u64);
        for rec in &self.records {
            match rec {
                Record::Msg(m) => {
                    w.u8(R_MSG);
                    w.uvarint(m.seq);
                    w.uvarint(m.ts);
                    w.str(&m.subject);
                    w.bytes(&m.headers);
                    w.bytes(&m.payload);
                }
                Record::Check { seq, digest } => {
                    w.u8(R_CHECK);
                    w.uvarint(*seq);
                    w.uvarint(*digest);
                }
                Record::Gap { seq, count, ts } => {
                    w.u8(R_GAP);
                    for v in [*seq, *count, *ts] {
                        w.uvarint(v);
                    }
                }
            }
        }
        match &self.end {
            ChunkEnd::More => w.u8(E_MORE),
            ChunkEnd::Window => w.u8(E_WINDOW),
            ChunkEnd::Done {
                first_seq,
                last_seq,
            } => {
                w.u8(E_DONE);
                w.uvarint(*first_seq);
                w.uvarint(*last_seq);
            }
            ChunkEnd::Failed(why) => {
                w.u8(E_FAILED);
                w.str(why);
            }
        }
        codec::seal(Kind::CatchupChunk, &w.0)
    }

    /// Parses a chunk; damaged bytes are an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(codec::open(Kind::CatchupChunk, bytes)?);
        let id = r.uvarint()?;
        let n = r.uvarint()?;
        if n > MAX_RECORDS {
            return Err(DecodeError::Malformed(format!("chunk of {n} records")));
        }
        let mut records = Vec::new();
        for _ in 0..n {
            let rec = match r.u8()? {
                R_MSG => Record::Msg(StoredMsg {
                    seq: r.uvarint()?,
                    ts: r.uvarint()?,
                    subject: r.string()?,
                    headers: Bytes::copy_from_slice(r.bytes()?),
                    payload: Bytes::copy_from_slice(r.bytes()?),
                }),
                R_CHECK => Record::Check {
                    seq: r.uvarint()?,
                    digest: r.uvarint()?,
                },
                R_GAP => {
                    let (seq, count, ts) = (r.uvarint()?, r.uvarint()?, r.uvarint()?);
                    if count == 0 || seq.checked_add(count).is_none() {
                        return Err(DecodeError::Malformed(format!("gap {seq}+{count}")));
                    }
                    Record::Gap { seq, count, ts }
                }
                t => return Err(DecodeError::Malformed(format!("unknown record {t}"))),
            };
            records.push(rec);
        }
        let end = match r.u8()? {
            E_MORE => ChunkEnd::More,
            E_WINDOW => ChunkEnd::Window,
            E_DONE => ChunkEnd::Done {
                first_seq: r.uvarint()?,
                last_seq: r.uvarint()?,
            },
            E_FAILED => ChunkEnd::Failed(r.string()?),
            t => return Err(DecodeError::Malformed(format!("unknown chunk end {t}"))),
        };
        r.finish()?;
        Ok(Self { id, records, end })
    }
}

/// The peer's side of one request: chunks read from its store on demand.
#[derive(Debug)]
pub struct CatchupServer {
    req: CatchupRequest,
    limits: CatchupLimits,
    next: u64,
    sent: u32,
    finished: bool,
}

impl CatchupServer {
    /// Serves `req` within `limits` (the request's window, capped by the server's).
    pub fn new(req: CatchupRequest, limits: CatchupLimits) -> Self {
        let next = req.from_seq.max(1);
        Self {
            req,
            limits,
            next,
            sent: 0,
            finished: false,
        }
    }

    /// Parses a request's bytes and serves it; `None` for bytes that do not decode.
    pub fn from_request(bytes: &[u8], limits: CatchupLimits) -> Option<Self> {
        CatchupRequest::decode(bytes)
            .ok()
            .map(|r| Self::new(r, limits))
    }

    /// The next chunk, read from `store` as it is now; `None` once the last was made. A
    /// store that moved on since the request is served as it is: removals become gaps, and
    /// messages past `up_to_seq` are not sent (the replica gets them from the log).
    pub fn poll_chunk(&mut self, store: &dyn StreamStore) -> Option<CatchupChunk> {
        if self.finished {
            return None;
        }
        let id = self.req.id;
        let state = store.state();
        if state.corrupt_records > 0 || state.lost_msgs > 0 {
            // A damaged store would hand its losses on as deletes.
            return Some(self.fail(id, "source store damaged".into()));
        }
        let end = self.req.up_to_seq.min(state.last_seq);
        let mut records = Vec::new();
        let mut bytes = 0usize;
        let cap_msgs = self.limits.chunk_msgs.max(1);
        while self.next <= end && records.len() < cap_msgs && bytes < self.limits.chunk_bytes {
            let seq = self.next;
            match store.load_msg(seq) {
                Ok(m) => {
                    if seq <= self.req.verify_through {
                        records.push(Record::Check {
                            seq,
                            digest: digest(&m),
                        });
                        bytes += 16;
                    } else {
                        bytes += m.subject.len() + m.headers.len() + m.payload.len() + 16;
                        records.push(Record::Msg(m));
                    }
                    self.next = seq + 1;
                }
                Err(StoreError::NotFound | StoreError::Eof) => {
                    // The gap runs to the next message held (or the range's end); a skip to
                    // the peer's end records its last time, as the peer's store has it.
                    let (upto, ts) = match store.load_next_msg("", seq) {
                        Ok(m) if m.seq <= end => (m.seq, m.ts),
                        Ok(m) => (end + 1, m.ts),
                        Err(_) => (end + 1, state.last_ts),
                    };
                    records.push(Record::Gap {
                        seq,
                        count: upto - seq,
                        ts,
                    });
                    bytes += 16;
                    self.next = upto;
                }
                Err(e) => return Some(self.fail(id, e.to_string())),
            }
        }
        self.sent += 1;
        let end = if self.next > end {
            self.finished = true;
            ChunkEnd::Done {
                first_seq: state.first_seq,
                last_seq: state.last_seq,
            }
        } else if self.sent >= self.req.window.min(self.limits.window).max(1) {
            self.finished = true;
            ChunkEnd::Window
        } else {
            ChunkEnd::More
        };
        Some(CatchupChunk { id, records, end })
    }

    fn fail(&mut self, id: u64, why: String) -> CatchupChunk {
        self.finished = true;
        CatchupChunk {
            id,
            records: Vec::new(),
            end: ChunkEnd::Failed(why),
        }
    }
}

/// How a catch-up ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatchupEvent {
    /// The store holds what the peer held through the target: restore the snapshot over it.
    Done,
    /// The store holds something else than the peer at `seq`: set it aside and start over in
    /// a fresh one.
    Diverged {
        /// The first sequence that differs.
        seq: u64,
    },
    /// The peer could not serve, sent what does not decode, or the store refused a write: try
    /// again (the store keeps what was written; it is checked on the next attempt).
    Failed(String),
}

/// The replica's side: asks, writes what comes back, asks again. See the module docs.
#[derive(Debug)]
pub struct Catchup {
    limits: CatchupLimits,
    target: u64,
    verify_through: u64,
    /// The first sequence not yet written (or checked).
    next: u64,
    /// The newest request's id.
    id: u64,
    /// A request waiting for `poll_transmit`.
    transmit: Option<CatchupRequest>,
    deadline: Option<Instant>,
    events: VecDeque<CatchupEvent>,
    finished: bool,
    requests: u64,
}

impl Catchup {
    /// A catch-up of `store` to `target` (the peer's snapshot's `last_seq`). With `verify`,
    /// what the store holds is checked against the peer first (a store kept after it fell
    /// behind); without, it is taken as it is (a fresh store) and the catch-up starts after
    /// its last sequence.
    pub fn new(
        now: Instant,
        store: &dyn StreamStore,
        target: u64,
        verify: bool,
        limits: CatchupLimits,
    ) -> Self {
        let st = store.state();
        let mut c = Self {
            limits,
            target,
            verify_through: 0,
            next: st.last_seq + 1,
            id: 0,
            transmit: None,
            deadline: None,
            events: VecDeque::new(),
            finished: false,
            requests: 0,
        };
        if verify && st.last_seq > 0 {
            if st.last_seq > target {
                // Writes the peer's snapshot does not know of: this replica's own.
                c.finish(CatchupEvent::Diverged { seq: target + 1 });
                return c;
            }
            c.next = 1;
            c.verify_through = st.last_seq;
        }
        if c.next > target && !verify {
            c.finish(CatchupEvent::Done);
            return c;
        }
        c.request(now);
        c
    }

    /// The first sequence this catch-up has not written yet.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Requests made so far (the first and every retry).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    fn request(&mut self, now: Instant) {
        self.id += 1;
        self.requests += 1;
        self.transmit = Some(CatchupRequest {
            id: self.id,
            from_seq: self.next,
            up_to_seq: self.target,
            verify_through: self.verify_through,
            window: self.limits.window,
        });
        self.deadline = Some(now + self.limits.timeout);
    }

    fn finish(&mut self, ev: CatchupEvent) {
        if !self.finished {
            self.finished = true;
            self.transmit = None;
            self.deadline = None;
            self.events.push_back(ev);
        }
    }

    /// A chunk's bytes from the peer: writes what is new into `store`.
    pub fn handle_chunk(&mut self, now: Instant, store: &mut dyn StreamStore, bytes: &[u8]) {
        if self.finished {
            return;
        }
        let chunk = match CatchupChunk::decode(bytes) {
            Ok(c) => c,
            Err(e) => return self.finish(CatchupEvent::Failed(format!("chunk: {e}"))),
        };
        let current = chunk.id == self.id;
        for rec in &chunk.records {
            let (first, last) = rec.range();
            if last < self.next {
                continue; // written already (a duplicate, or an older request's answer)
            }
            if first > self.next {
                // A chunk went missing: ask again from here (once per request).
                if current {
                    self.request(now);
                }
                return;
            }
            if let Err(ev) = self.write(store, rec) {
                return self.finish(ev);
            }
            self.next = last + 1;
        }
        if !current {
            return;
        }
        self.deadline = Some(now + self.limits.timeout);
        match chunk.end {
            ChunkEnd::More => {}
            ChunkEnd::Window => self.request(now),
            ChunkEnd::Done { last_seq, .. } => {
                if self.next > self.target {
                    self.finish(CatchupEvent::Done);
                } else if last_seq < self.target {
                    self.finish(CatchupEvent::Failed(format!(
                        "peer holds {last_seq}, snapshot wants {}",
                        self.target
                    )));
                } else {
                    self.request(now);
                }
            }
            ChunkEnd::Failed(why) => self.finish(CatchupEvent::Failed(format!("peer: {why}"))),
        }
    }

    /// Writes the part of `rec` from `self.next` on.
    fn write(&self, store: &mut dyn StreamStore, rec: &Record) -> Result<(), CatchupEvent> {
        let have = store.state().last_seq;
        let failed = |e: StoreError| CatchupEvent::Failed(format!("store: {e}"));
        match rec {
            Record::Msg(m) if m.seq <= have => match store.load_msg(m.seq) {
                Ok(had) if had == *m => Ok(()),
                _ => Err(CatchupEvent::Diverged { seq: m.seq }),
            },
            Record::Msg(m) if m.seq == have + 1 => {
                let (seq, _) = store
                    .store_msg(&m.subject, &m.headers, &m.payload, m.ts)
                    .map_err(failed)?;
                if seq == m.seq {
                    Ok(())
                } else {
                    Err(CatchupEvent::Failed(format!(
                        "store put {} at {seq}",
                        m.seq
                    )))
                }
            }
            Record::Msg(m) => Err(CatchupEvent::Failed(format!(
                "message {} after store end {have}",
                m.seq
            ))),
            Record::Check { seq, digest: d } => match store.load_msg(*seq) {
                Ok(had) if digest(&had) == *d => Ok(()),
                _ => Err(CatchupEvent::Diverged { seq: *seq }),
            },
            Record::Gap { seq, count, ts } => {
                let from = (*seq).max(self.next);
                let to = seq + (count - 1);
                // What the replica holds inside the gap the peer removed (the log said so
                // there): remove it here too. Go: processSnapshotDeletes.
                let mut at = from;
                while let Ok(m) = store.load_next_msg("", at) {
                    if m.seq > to.min(have) {
                        break;
                    }
                    store.remove_msg(m.seq).map_err(failed)?;
                    at = m.seq + 1;
                }
                let skip_from = from.max(have + 1);
                if skip_from <= to {
                    store
                        .skip_msgs(skip_from, to - skip_from + 1, *ts)
                        .map_err(failed)?;
                }
                Ok(())
            }
        }
    }

    /// Nothing came for a while: ask again from where the store is.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) && !self.finished {
            self.request(now);
        }
    }

    /// The next request to send.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.take().map(|r| r.encode())
    }

    /// How the catch-up ended, once it did.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<CatchupEvent> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }
}
