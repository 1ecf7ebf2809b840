//! What a replicated stream's Raft log carries ([`StreamEntry`]) and its byte form (see
//! `codec` for the envelope; the body is binary: a tag byte, then varints and
//! length-prefixed byte strings; configs travel as JSON). See `replica` for what applying an
//! entry means.

use bytes::Bytes;
use serde::Serialize;

use super::codec::{self, DecodeError, Kind, Reader, Writer};
use crate::jetstream::api::StreamConfig;
use crate::jetstream::consumer::ConsumerMeta;
use crate::jetstream::store::UnixNanos;

/// A stored message as the leader decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgRecord {
    /// Sequence.
    pub seq: u64,
    /// Store time.
    pub ts: UnixNanos,
    /// Final subject (after the subject transform).
    pub subject: String,
    /// Final headers (a counter's, a schedule's rewrite included).
    pub headers: Bytes,
    /// Final payload (a counter's total included).
    pub payload: Bytes,
    /// `Nats-Rollup` the leader carried out: `sub`, `all`, or none.
    pub rollup: Option<String>,
    /// Brought in by a source (no schedule purge).
    pub sourced: bool,
}

/// What a stream group's log carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEntry {
    /// One stored message.
    Msg(MsgRecord),
    /// An atomic batch, committed whole (Go: `batchMsgOp`/`batchCommitMsgOp` as one entry).
    Batch(Vec<MsgRecord>),
    /// Sequences `seq..seq + count` skipped (mirror gaps, Go: `deleteRangeOp`).
    Skip {
        /// Last sequence before the entry.
        last_seq: u64,
        /// First skipped.
        seq: u64,
        /// How many.
        count: u64,
        /// Store time of the skip.
        ts: UnixNanos,
    },
    /// One message removed: MSG.DELETE, or retention (interest, work queue) once it was acked.
    Delete {
        /// Last sequence before the entry.
        last_seq: u64,
        /// The message.
        seq: u64,
    },
    /// A purge as `$JS.API.STREAM.PURGE` asked it (Go: `purgeStreamOp`).
    Purge {
        /// Last sequence before the entry; a purge without `seq` removes up to it only.
        last_seq: u64,
        /// Subject filter (empty: all).
        filter: String,
        /// Remove below this sequence (0: up to `last_seq`).
        seq: u64,
        /// Keep the newest this many.
        keep: u64,
    },
    /// Time-driven removal at the leader's clock: `max_age`, `Nats-TTL`, schedules firing,
    /// delete markers. Every replica runs [`Stream::expire`](crate::jetstream::stream::Stream::expire) with the same `now`.
    Expire {
        /// Last sequence before the entry.
        last_seq: u64,
        /// The leader's wall time.
        now: UnixNanos,
    },
    /// A new config, at this point of the log (so limits change at the same message on every
    /// replica).
    Config {
        /// Last sequence before the entry.
        last_seq: u64,
        /// The config.
        config: StreamConfig,
    },
    /// A consumer created (or its config updated) by the leader.
    ConsumerCreate {
        /// Last sequence before the entry.
        last_seq: u64,
        /// Name, config, creation time and starting ack floor.
        meta: ConsumerMeta,
    },
    /// A consumer removed.
    ConsumerDelete {
        /// Name.
        name: String,
    },
    /// A consumer's delivery state (its state-file bytes).
    ConsumerState {
        /// Name.
        name: String,
        /// `consumer::state` encoding.
        state: Vec<u8>,
    },
}

const T_MSG: u8 = 1;
const T_BATCH: u8 = 2;
const T_SKIP: u8 = 3;
const T_DELETE: u8 = 4;
const T_PURGE: u8 = 5;
const T_EXPIRE: u8 = 6;
const T_CONFIG: u8 = 7;
const T_CONSUMER_CREATE: u8 = 8;
const T_CONSUMER_DELETE: u8 = 9;
const T_CONSUMER_STATE: u8 = 10;

/// Bounds a batch's count before allocating for it (a damaged count must not allocate).
const MAX_BATCH: u64 = 1 << 20;

fn put_msg(w: &mut Writer, m: &MsgRecord) {
    w.uvarint(m.seq);
    w.uvarint(m.ts);
    let rollup = match m.rollup.as_deref() {
        Some("sub") => 1,
        Some("all") => 2,
        _ => 0,
    };
    w.u8(rollup | (u8::from(m.sourced) << 2));
    w.str(&m.subject);
    w.bytes(&m.headers);
    w.bytes(&m.payload);
}

fn get_msg(r: &mut Reader<'_>) -> Result<MsgRecord, DecodeError> {
    let seq = r.uvarint()?;
    let ts = r.uvarint()?;
    let flags = r.u8()?;
    if flags > 0b111 || flags & 0b11 == 0b11 {
        return Err(DecodeError::Malformed(format!("message flags {flags:#x}")));
    }
    let rollup = match flags & 0b11 {
        1 => Some("sub".to_owned()),
        2 => Some("all".to_owned()),
        _ => None,
    };
    Ok(MsgRecord {
        seq,
        ts,
        rollup,
        sourced: flags & 0b100 != 0,
        subject: r.string()?,
        headers: Bytes::copy_from_slice(r.bytes()?),
        payload: Bytes::copy_from_slice(r.bytes()?),
    })
}

fn json_of<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn from_json<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(b).map_err(|e| DecodeError::Malformed(e.to_string()))
}

impl StreamEntry {
    /// The entry's bytes for the log (see `codec` for the envelope).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Self::Msg(m) => {
                w.u8(T_MSG);
                put_msg(&mut w, m);
            }
            Self::Batch(ms) => {
                w.u8(T_BATCH);
                w.uvarint(ms.len() as u64);
                for m in ms {
                    put_msg(&mut w, m);
                }
            }
            Self::Skip {
                last_seq,
                seq,
                count,
                ts,
            } => {
                w.u8(T_SKIP);
                for v in [*last_seq, *seq, *count, *ts] {
                    w.uvarint(v);
                }
            }
            Self::Delete { last_seq, seq } => {
                w.u8(T_DELETE);
                w.uvarint(*last_seq);
                w.uvarint(*seq);
            }
            Self::Purge {
                last_seq,
                filter,
                seq,
                keep,
            } => {
                w.u8(T_PURGE);
                w.uvarint(*last_seq);
                w.str(filter);
                w.uvarint(*seq);
                w.uvarint(*keep);
            }
            Self::Expire { last_seq, now } => {
                w.u8(T_EXPIRE);
                w.uvarint(*last_seq);
                w.uvarint(*now);
            }
            Self::Config { last_seq, config } => {
                w.u8(T_CONFIG);
                w.uvarint(*last_seq);
                w.bytes(&json_of(config));
            }
            Self::ConsumerCreate { last_seq, meta } => {
                w.u8(T_CONSUMER_CREATE);
                w.uvarint(*last_seq);
                w.bytes(&json_of(meta));
            }
            Self::ConsumerDelete { name } => {
                w.u8(T_CONSUMER_DELETE);
                w.str(name);
            }
            Self::ConsumerState { name, state } => {
                w.u8(T_CONSUMER_STATE);
                w.str(name);
                w.bytes(state);
            }
        }
        codec::seal(Kind::StreamEntry, &w.0)
    }

    /// Parses an entry; an unknown version, an unknown tag or a damaged body is an error,
    /// never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(codec::open(Kind::StreamEntry, bytes)?);
        let e = match r.u8()? {
            T_MSG => Self::Msg(get_msg(&mut r)?),
            T_BATCH => {
                let n = r.uvarint()?;
                if n > MAX_BATCH {
                    return Err(DecodeError::Malformed(format!("batch of {n}")));
                }
                let mut ms = Vec::new();
                for _ in 0..n {
                    ms.push(get_msg(&mut r)?);
                }
                Self::Batch(ms)
            }
            T_SKIP => Self::Skip {
                last_seq: r.uvarint()?,
                seq: r.uvarint()?,
                count: r.uvarint()?,
                ts: r.uvarint()?,
            },
            T_DELETE => Self::Delete {
                last_seq: r.uvarint()?,
                seq: r.uvarint()?,
            },
            T_PURGE => Self::Purge {
                last_seq: r.uvarint()?,
                filter: r.string()?,
                seq: r.uvarint()?,
                keep: r.uvarint()?,
            },
            T_EXPIRE => Self::Expire {
                last_seq: r.uvarint()?,
                now: r.uvarint()?,
            },
            T_CONFIG => Self::Config {
                last_seq: r.uvarint()?,
                config: from_json(r.bytes()?)?,
            },
            T_CONSUMER_CREATE => Self::ConsumerCreate {
                last_seq: r.uvarint()?,
                meta: from_json(r.bytes()?)?,
            },
            T_CONSUMER_DELETE => Self::ConsumerDelete { name: r.string()? },
            T_CONSUMER_STATE => Self::ConsumerState {
                name: r.string()?,
                state: r.bytes()?.to_vec(),
            },
            t => return Err(DecodeError::Malformed(format!("unknown stream entry {t}"))),
        };
        r.finish()?;
        Ok(e)
    }

    /// The last sequence the entry was made after, where it carries one.
    pub(super) fn last_seq(&self) -> Option<u64> {
        match self {
            Self::Msg(m) => Some(m.seq.saturating_sub(1)),
            Self::Batch(ms) => ms.first().map(|m| m.seq.saturating_sub(1)),
            Self::Skip { last_seq, .. }
            | Self::Delete { last_seq, .. }
            | Self::Purge { last_seq, .. }
            | Self::Expire { last_seq, .. }
            | Self::Config { last_seq, .. }
            | Self::ConsumerCreate { last_seq, .. } => Some(*last_seq),
            Self::ConsumerDelete { .. } | Self::ConsumerState { .. } => None,
        }
    }
}
