//! Mirrors and sources of a replicated stream (Go: server/stream.go setupMirrorConsumer,
//! setupSourceConsumer, processInboundMirrorMsg, processInboundSourceMsg, run by the
//! stream's leader only).
//!
//! Only the sourcing stream's leader copies. For each mirror or source it asks a replica of
//! the origin (its own, when this server holds one; else a peer of the origin's group) for
//! the next messages past its cursor that the origin has *committed* ([`read_origin`]: a
//! follower holds nothing else, a leader says how far it committed), then stores them on its
//! own replica exactly as the single-server path does ([`store_read`]) and proposes what it
//! stored as sourced records ([`ReplicatedStream::leader_stored`]). Every replica therefore
//! holds the same sequences, and the cursor lives in the stream itself:
//!
//! * a mirror resumes after its last sequence;
//! * a source resumes after the last message carrying its own `Nats-Stream-Source`.
//!
//! A new leader computes both from its replica, whose store holds exactly what committed
//! (it leads only once it applied its whole log), so a leader change neither loses nor
//! copies anything twice. A read answered for a cursor that moved meanwhile is dropped.

use serde::{Deserialize, Serialize};

use super::{resume_point, store_batch, SourceState};
use crate::jetstream::cluster::entry::{MsgRecord, StreamEntry};
use crate::jetstream::cluster::ReplicatedStream;
use crate::jetstream::consumer::Delivery;
use crate::jetstream::store::{StoredMsg, StreamStore, UnixNanos};

/// The most messages one read brings.
const READ_MSGS: usize = 1024;
/// The most bytes of messages one read brings (at least one message, whatever its size).
pub const READ_BYTES: usize = 256 * 1024;

/// A request for an origin's next committed messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRequest {
    /// The origin's account.
    pub account: String,
    /// The origin stream.
    pub stream: String,
    /// The first origin sequence to look at; 0: the first at or after `start_time`.
    pub next: u64,
    /// The source's start time, when its cursor starts there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<UnixNanos>,
    /// Only this subject (a wildcard filter); empty: every message.
    #[serde(default)]
    pub filter: String,
}

/// What a replica of the origin answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadReply {
    /// The replica holds the origin stream.
    pub found: bool,
    /// Where the next read starts.
    pub cursor: u64,
    /// The origin's last committed sequence (for the lag).
    pub last_seq: u64,
    /// The messages read, in sequence order.
    pub msgs: Vec<StoredMsg>,
}

impl ReadReply {
    /// The byte form: a flag, the cursor and last sequence as big-endian u64s, then the
    /// messages as a stream log batch entry (its codec is versioned and checked).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17);
        out.push(u8::from(self.found));
        out.extend_from_slice(&self.cursor.to_be_bytes());
        out.extend_from_slice(&self.last_seq.to_be_bytes());
        if !self.msgs.is_empty() {
            let records = self
                .msgs
                .iter()
                .map(|m| MsgRecord {
                    seq: m.seq,
                    ts: m.ts,
                    subject: m.subject.clone(),
                    headers: m.headers.clone(),
                    payload: m.payload.clone(),
                    rollup: None,
                    sourced: false,
                })
                .collect();
            out.extend(StreamEntry::Batch(records).encode());
        }
        out
    }

    /// Parses [`Self::encode`]'s form; `None` for anything else.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < 17 || b[0] > 1 {
            return None;
        }
        let u = |r: std::ops::Range<usize>| b.get(r)?.try_into().ok().map(u64::from_be_bytes);
        let mut reply = Self {
            found: b[0] == 1,
            cursor: u(1..9)?,
            last_seq: u(9..17)?,
            msgs: Vec::new(),
        };
        if b.len() > 17 {
            let records = match StreamEntry::decode(&b[17..]).ok()? {
                StreamEntry::Batch(r) => r,
                StreamEntry::Msg(m) => vec![m],
                _ => return None,
            };
            reply.msgs = records
                .into_iter()
                .map(|r| StoredMsg {
                    seq: r.seq,
                    ts: r.ts,
                    subject: r.subject,
                    headers: r.headers,
                    payload: r.payload,
                })
                .collect();
        }
        Some(reply)
    }
}

/// Reads what `req` asks from an origin replica's store, never past `committed`.
pub fn read_origin(store: &dyn StreamStore, committed: u64, req: &ReadRequest) -> ReadReply {
    let mut cursor = match (req.next, req.start_time) {
        (0, Some(t)) => {
            let mut seq = store.state().first_seq;
            loop {
                match store.load_next_msg("", seq) {
                    Ok(m) if m.ts >= t => break m.seq,
                    Ok(m) => seq = m.seq + 1,
                    Err(_) => break seq,
                }
            }
        }
        (n, _) => n.max(1),
    };
    let mut msgs = Vec::new();
    let mut bytes = 0;
    while msgs.len() < READ_MSGS && bytes < READ_BYTES && cursor <= committed {
        match store.load_next_msg(&req.filter, cursor) {
            Ok(m) if m.seq <= committed => {
                cursor = m.seq + 1;
                bytes += m.subject.len() + m.headers.len() + m.payload.len();
                msgs.push(m);
            }
            _ => break,
        }
    }
    ReadReply {
        found: true,
        cursor,
        last_seq: committed.min(store.state().last_seq),
        msgs,
    }
}

/// One mirror or source of a sourcing stream to read next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// `None`: the mirror; else the index of the source.
    pub slot: Option<usize>,
    /// The read to make (its `account` left empty: the sourcing stream's own).
    pub request: ReadRequest,
}

fn slot_mut(rs: &mut ReplicatedStream, slot: Option<usize>) -> Option<&mut SourceState> {
    match slot {
        None => rs.stream.mirror.as_mut(),
        Some(i) => rs.stream.sources.get_mut(i),
    }
}

/// Leader: the reads its mirror and sources make next (external origins, read over the
/// network with [`remote_cursor`], and durable sources are not read here).
pub fn cursors(rs: &mut ReplicatedStream) -> Vec<Cursor> {
    slots(rs)
        .into_iter()
        .filter_map(|slot| cursor_of(rs, slot, false))
        .collect()
}

/// Leader: the mirror or sources whose origin is `external` (not through a durable
/// consumer): read over the network (see [`super::remote`]).
pub fn remote_slots(rs: &ReplicatedStream) -> Vec<Option<usize>> {
    slots(rs)
        .into_iter()
        .filter(|slot| {
            let st = match slot {
                None => rs.stream.mirror.as_ref(),
                Some(i) => rs.stream.sources.get(*i),
            };
            st.is_some_and(|st| st.cfg.external.is_some() && st.cfg.consumer.is_none())
        })
        .collect()
}

/// Leader: where the external mirror or source `slot` goes on from, as [`cursors`] computes
/// it for the others; the source's config with it.
pub fn remote_cursor(
    rs: &mut ReplicatedStream,
    slot: Option<usize>,
) -> Option<(Cursor, super::super::api::StreamSource)> {
    let c = cursor_of(rs, slot, true)?;
    let st = slot_mut(rs, slot)?;
    Some((c, st.cfg.clone()))
}

fn slots(rs: &ReplicatedStream) -> Vec<Option<usize>> {
    let n = rs.stream.sources.len();
    rs.stream
        .mirror
        .is_some()
        .then_some(None)
        .into_iter()
        .chain((0..n).map(Some))
        .collect()
}

fn cursor_of(rs: &mut ReplicatedStream, slot: Option<usize>, external: bool) -> Option<Cursor> {
    let name = rs.stream.config.name.clone();
    let last = rs.stream.store.state().last_seq;
    let resume = match slot {
        None => (last > 0).then_some(last),
        Some(i) => {
            let st = rs.stream.sources.get(i)?;
            if st.next.is_some() {
                None
            } else {
                resume_point(rs.stream.store.as_ref(), &st.iname)
            }
        }
    };
    let st = slot_mut(rs, slot)?;
    if st.cfg.external.is_some() != external
        || st.cfg.consumer.is_some()
        || (!external && st.cfg.name == name)
    {
        return None;
    }
    let mut start_time = None;
    if st.next.is_none() {
        st.next = match resume {
            Some(s) => Some(s + 1),
            None if st.cfg.opt_start_seq > 0 => Some(st.cfg.opt_start_seq),
            None => {
                start_time = st.cfg.opt_start_time.as_deref().and_then(super::parse_time);
                start_time.is_none().then_some(1)
            }
        };
    }
    let filter = match st.transforms.as_slice() {
        [t] => t.source().to_owned(),
        _ => String::new(),
    };
    Some(Cursor {
        slot,
        request: ReadRequest {
            account: String::new(),
            stream: st.cfg.name.clone(),
            next: st.next.unwrap_or(0),
            start_time,
            filter,
        },
    })
}

/// Leader: the next origin sequence the cursor `slot` wants (after [`store_read`]).
pub fn next_of(rs: &ReplicatedStream, slot: Option<usize>) -> Option<u64> {
    match slot {
        None => rs.stream.mirror.as_ref(),
        Some(i) => rs.stream.sources.get(i),
    }?
    .next
}

/// Leader: forgets every cursor, so the next [`cursors`] computes them from the store (a
/// replica that starts leading: what it remembers from an earlier term of its own is stale).
pub fn reset(rs: &mut ReplicatedStream) {
    for st in rs.stream.mirror.iter_mut().chain(&mut rs.stream.sources) {
        st.next = None;
        st.more = false;
    }
}

/// Leader: the origin could not be read (no replica answered): the source shows inactive
/// from then on until a read succeeds.
pub fn unreachable(rs: &mut ReplicatedStream, slot: Option<usize>) {
    if let Some(st) = slot_mut(rs, slot) {
        st.last_seen = None;
    }
}

/// Leader: stores what a read of `cursor` brought and returns the entries that store the
/// same on the followers, the republished copies, and whether more is waiting. A reply for
/// a cursor that moved since (or a source no longer configured) stores nothing.
pub fn store_read(
    rs: &mut ReplicatedStream,
    cursor: &Cursor,
    reply: ReadReply,
    now: UnixNanos,
) -> (Vec<StreamEntry>, Vec<Delivery>, bool) {
    let before = rs.stream.store.state().last_seq;
    let mut out = Vec::new();
    let Some(st) = slot_mut(rs, cursor.slot) else {
        return (Vec::new(), out, false);
    };
    let from = cursor.request.next;
    if st.cfg.name != cursor.request.stream || st.next.is_some_and(|n| n != from) {
        return (Vec::new(), out, false);
    }
    let mut st = st.clone();
    st.last_seen = Some(now);
    if !reply.found {
        st.lag = 0;
        if let Some(slot) = slot_mut(rs, cursor.slot) {
            *slot = st;
        }
        return (Vec::new(), out, false);
    }
    let batch: Vec<(StoredMsg, String)> = reply
        .msgs
        .into_iter()
        .filter_map(|m| st.map_subject(&m.subject).map(|s| (m, s)))
        .collect();
    let (done, _) = store_batch(
        &mut rs.stream,
        &mut rs.consumers,
        &mut st,
        &batch,
        cursor.slot.is_none(),
        reply.cursor,
        now,
        &mut out,
    );
    st.next = Some(done);
    st.lag = reply.last_seq.saturating_sub(done.saturating_sub(1));
    // Stopped short (the stream refused a message) or the origin has more committed.
    let more = done == reply.cursor && done <= reply.last_seq;
    st.more = more;
    if let Some(slot) = slot_mut(rs, cursor.slot) {
        *slot = st;
    }
    (rs.leader_stored(before, true), out, more)
}

#[cfg(test)]
mod tests;
