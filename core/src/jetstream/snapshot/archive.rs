//! natsd's snapshot archive: a magic, then checksummed frames.
//!
//! ```text
//! archive  "NJSSNAP1" | frame* (header, consumer*, message*, end)
//! frame    0 kind u8   1 len u32 LE   5 body (len bytes)   5+len crc32c(bytes 0..5+len) u32 LE
//! message  0 kind u8 (3)   1 record (its own length, sequence, time, subject, headers,
//!          payload and CRC: one message record of the file store's blocks, `store::record`)
//! ```
//!
//! The header and end frames and each consumer are JSON. A message carries no second CRC:
//! its record's covers all of it, and summing 8 MiB windows twice showed in snapshot times.
//! The end frame counts what came before it, so an archive cut short anywhere, or with a
//! frame missing, is refused as a whole.

use serde::{Deserialize, Serialize};

use crate::jetstream::api::StreamConfig;
use crate::jetstream::store::crc::crc32c;
use crate::jetstream::store::record::{self, Kind};
use crate::jetstream::store::{StoredMsg, UnixNanos};

/// The first bytes of every archive.
pub(crate) const MAGIC: &[u8; 8] = b"NJSSNAP1";
/// Kind byte, length and CRC around each body.
const FRAME_OVERHEAD: usize = 9;
/// The largest body a reader accepts: far above any message natsd stores (`max_payload`
/// tops out at 64 MiB), low enough that a forged length cannot make it buffer gigabytes.
pub(crate) const MAX_BODY: usize = 80 << 20;
/// Archive format version in the header.
pub(crate) const VERSION: u32 = 1;

const HEADER: u8 = 1;
const CONSUMER: u8 = 2;
const MSG: u8 = 3;
const END: u8 = 4;

/// The header frame: what the stream was when the snapshot started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Header {
    pub(crate) version: u32,
    pub(crate) created: UnixNanos,
    pub(crate) config: StreamConfig,
    pub(crate) first_seq: u64,
    pub(crate) last_seq: u64,
    pub(crate) last_ts: UnixNanos,
    /// Consumer frames that follow.
    pub(crate) consumers: u64,
}

/// The end frame: message frames written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct End {
    pub(crate) msgs: u64,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    Header(Box<Header>),
    /// A consumer's JSON (see `consumer::snap`), decoded by the caller.
    Consumer(Vec<u8>),
    Msg(StoredMsg),
    End(End),
}

fn frame(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    let start = out.len();
    out.push(kind);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Appends the header frame (after the magic).
pub(crate) fn write_header(out: &mut Vec<u8>, h: &Header) {
    out.extend_from_slice(MAGIC);
    frame(out, HEADER, &serde_json::to_vec(h).unwrap_or_default());
}

/// Appends a consumer frame.
pub(crate) fn write_consumer(out: &mut Vec<u8>, json: &[u8]) {
    frame(out, CONSUMER, json);
}

/// Appends a message frame.
pub(crate) fn write_msg(out: &mut Vec<u8>, m: &StoredMsg) {
    out.push(MSG);
    // Compressed where that saves space, as nats-server's archives are (S2 there, Snappy
    // records here); the record's CRC covers the stored bytes either way.
    record::encode_msg(
        out,
        m.seq,
        m.ts,
        m.subject.as_bytes(),
        &m.headers,
        &m.payload,
        true,
    );
}

/// Appends the end frame.
pub(crate) fn write_end(out: &mut Vec<u8>, e: End) {
    frame(out, END, &serde_json::to_vec(&e).unwrap_or_default());
}

/// Reads frames from chunks as they arrive, holding at most one partial frame.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    at: usize,
    magic_seen: bool,
    /// Bytes fed in total.
    pub(crate) total: u64,
}

impl Reader {
    /// Feeds the next chunk.
    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        self.buf.extend_from_slice(data);
        self.total += data.len() as u64;
    }

    /// Bytes fed but not yet read as a whole frame.
    pub(crate) fn leftover(&self) -> usize {
        self.buf.len() - self.at
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed, an error for damage.
    pub(crate) fn next(&mut self) -> Result<Option<Frame>, String> {
        let b = &self.buf[self.at..];
        if !self.magic_seen {
            if b.len() < MAGIC.len() {
                return if MAGIC.starts_with(b) {
                    Ok(None)
                } else {
                    Err("not a natsd snapshot".to_owned())
                };
            }
            if &b[..MAGIC.len()] != MAGIC {
                return Err("not a natsd snapshot".to_owned());
            }
            self.magic_seen = true;
            self.at += MAGIC.len();
            return self.next();
        }
        if b.len() < 5 {
            return Ok(None);
        }
        if b[0] == MSG {
            return self.next_msg();
        }
        let mut l = [0u8; 4];
        l.copy_from_slice(&b[1..5]);
        let len = u32::from_le_bytes(l) as usize;
        if len > MAX_BODY {
            return Err(format!("corrupt snapshot: frame of {len} bytes"));
        }
        if b.len() < len + FRAME_OVERHEAD {
            return Ok(None);
        }
        let mut c = [0u8; 4];
        c.copy_from_slice(&b[5 + len..9 + len]);
        if crc32c(&b[..5 + len]) != u32::from_le_bytes(c) {
            return Err("corrupt snapshot: checksum mismatch".to_owned());
        }
        let body = &b[5..5 + len];
        let f = match b[0] {
            HEADER => Frame::Header(Box::new(
                serde_json::from_slice(body)
                    .map_err(|e| format!("corrupt snapshot header: {e}"))?,
            )),
            CONSUMER => Frame::Consumer(body.to_vec()),
            END => Frame::End(
                serde_json::from_slice(body).map_err(|e| format!("corrupt snapshot end: {e}"))?,
            ),
            k => return Err(format!("corrupt snapshot: unknown frame kind {k}")),
        };
        self.at += len + FRAME_OVERHEAD;
        Ok(Some(f))
    }
}

impl Reader {
    /// A message frame: the kind byte, then a record whose own length says where it ends.
    fn next_msg(&mut self) -> Result<Option<Frame>, String> {
        let b = &self.buf[self.at + 1..];
        let mut l = [0u8; 4];
        l.copy_from_slice(&b[..4]);
        let len = u32::from_le_bytes(l) as usize;
        if !(record::RECORD_OVERHEAD..=MAX_BODY).contains(&len) {
            return Err(format!("corrupt snapshot: message record of {len} bytes"));
        }
        if b.len() < len {
            return Ok(None);
        }
        let m = decode_msg(&b[..len])?;
        self.at += 1 + len;
        Ok(Some(Frame::Msg(m)))
    }
}

fn decode_msg(body: &[u8]) -> Result<StoredMsg, String> {
    let bad = || "corrupt snapshot: bad message record".to_owned();
    let p = record::decode(body).ok_or_else(bad)?;
    if p.kind != Kind::Msg || p.len != body.len() {
        return Err(bad());
    }
    let subject = std::str::from_utf8(&body[p.subject.clone()]).map_err(|_| bad())?;
    let (headers, payload) = p
        .message(bytes::Bytes::copy_from_slice(body))
        .ok_or_else(bad)?;
    Ok(StoredMsg {
        seq: p.seq,
        ts: p.ts,
        subject: subject.to_owned(),
        headers,
        payload,
    })
}
