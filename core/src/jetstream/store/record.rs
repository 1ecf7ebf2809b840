//! The on-disk format of a block file.
//!
//! A block is a 32-byte header followed by records, all little-endian:
//!
//! ```text
//! header   0  magic "NJSBLK01"   8  base_seq u64 (last_seq + 1 when the block was started)
//!          16 base_ts u64 (last_ts then)   24 reserved u32   28 crc32c(bytes 0..28)
//!
//! record   0  len u32 (whole record, 36 + subject + stored body)
//!          4  magic u16 0x4A53   6  kind u8   7  flags u8
//!          8  seq u64            16 ts u64 (Unix nanos)
//!          24 subject_len u16    26 reserved u16   28 headers_len u32 (uncompressed)
//!          32 subject | body (headers | payload, Snappy-compressed when flag 1 is set)
//!          len-4 crc32c(bytes 0..len-4)
//! ```
//!
//! Kinds: a message; a tombstone (`seq` removed); a floor (every sequence below `seq` removed,
//! and `last_seq` is at least `seq - 1`: purge and compact); a sync mark (written just before
//! each fsync, so the last synced message is never the last record of a block — damage to it
//! then reads as corruption in the middle, not as a torn tail that may be cut silently); a skip
//! (sequences `seq ..= last` never held a message; `last` is the 8-byte body, so one record
//! covers any gap a mirror inherits from its origin).
//! The per-record magic lets recovery find the next intact record after a damaged one.
//!
//! A message record is compressed only when that makes it smaller, so the flag is per record
//! and a block may mix both. The CRC covers the stored (compressed) bytes: damage is caught
//! before anything is decompressed.

use std::ops::Range;

use bytes::Bytes;

use super::crc::crc32c;

/// Size of a block header.
pub(crate) const HEADER_LEN: usize = 32;
/// Fixed bytes of a record: the 32-byte head plus the trailing CRC.
pub(crate) const RECORD_OVERHEAD: usize = 36;
const BLOCK_MAGIC: &[u8; 8] = b"NJSBLK01";
const RECORD_MAGIC: u16 = 0x4A53;
/// Record flag: the body is a raw Snappy block.
const FLAG_SNAPPY: u8 = 1;
/// Bodies shorter than this are never worth a compression attempt.
const MIN_COMPRESS: usize = 16;

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Msg = 1,
    Tombstone = 2,
    Floor = 3,
    SyncMark = 4,
    Skip = 5,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Msg),
            2 => Some(Self::Tombstone),
            3 => Some(Self::Floor),
            4 => Some(Self::SyncMark),
            5 => Some(Self::Skip),
            _ => None,
        }
    }
}

/// A record that passed its checks; ranges are relative to the record's first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) kind: Kind,
    pub(crate) seq: u64,
    pub(crate) ts: u64,
    pub(crate) len: usize,
    pub(crate) subject: Range<usize>,
    /// Headers then payload as stored (compressed when `compressed`).
    pub(crate) body: Range<usize>,
    /// Length of the uncompressed headers at the start of the body.
    pub(crate) headers_len: usize,
    pub(crate) compressed: bool,
}

impl Parsed {
    /// Uncompressed `(headers, payload)` lengths; `None` if a compressed body says nonsense.
    pub(crate) fn body_lens(&self, rec: &[u8]) -> Option<(usize, usize)> {
        let body = &rec[self.body.clone()];
        let total = if self.compressed {
            snap::raw::decompress_len(body).ok()?
        } else {
            body.len()
        };
        Some((self.headers_len, total.checked_sub(self.headers_len)?))
    }

    /// The uncompressed `(headers, payload)`; `None` if the body does not decompress.
    pub(crate) fn message(&self, rec: Bytes) -> Option<(Bytes, Bytes)> {
        let body = if self.compressed {
            let raw = snap::raw::Decoder::new()
                .decompress_vec(&rec[self.body.clone()])
                .ok()?;
            Bytes::from(raw)
        } else {
            rec.slice(self.body.clone())
        };
        if self.headers_len > body.len() {
            return None;
        }
        Some((
            body.slice(..self.headers_len),
            body.slice(self.headers_len..),
        ))
    }

    /// The last sequence a skip record covers.
    pub(crate) fn skip_last(&self, rec: &[u8]) -> Option<u64> {
        let b = rec.get(self.body.clone())?;
        (self.kind == Kind::Skip && b.len() == 8).then(|| u64_at(b, 0))
    }
}

/// Appends one encoded record to `out`.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    kind: Kind,
    seq: u64,
    ts: u64,
    subject: &[u8],
    headers: &[u8],
    payload: &[u8],
) {
    put(
        out,
        kind,
        0,
        seq,
        ts,
        subject,
        headers.len(),
        &[headers, payload],
    );
}

/// Appends a message record, Snappy-compressing its body when `compress` is set and that
/// saves space.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_msg(
    out: &mut Vec<u8>,
    seq: u64,
    ts: u64,
    subject: &[u8],
    headers: &[u8],
    payload: &[u8],
    compress: bool,
) {
    let raw_len = headers.len() + payload.len();
    if compress && raw_len >= MIN_COMPRESS {
        let mut body = Vec::with_capacity(raw_len);
        body.extend_from_slice(headers);
        body.extend_from_slice(payload);
        if let Ok(packed) = snap::raw::Encoder::new().compress_vec(&body) {
            if packed.len() < raw_len {
                let (k, h) = (Kind::Msg, headers.len());
                put(out, k, FLAG_SNAPPY, seq, ts, subject, h, &[&packed]);
                return;
            }
        }
    }
    encode(out, Kind::Msg, seq, ts, subject, headers, payload);
}

/// Appends a skip record: sequences `first ..= last` hold nothing.
pub(crate) fn encode_skip(out: &mut Vec<u8>, first: u64, last: u64, ts: u64) {
    encode(out, Kind::Skip, first, ts, b"", b"", &last.to_le_bytes());
}

#[allow(clippy::too_many_arguments)]
fn put(
    out: &mut Vec<u8>,
    kind: Kind,
    flags: u8,
    seq: u64,
    ts: u64,
    subject: &[u8],
    headers_len: usize,
    body: &[&[u8]],
) {
    debug_assert!(subject.len() <= usize::from(u16::MAX));
    let body_len: usize = body.iter().map(|b| b.len()).sum();
    let len = RECORD_OVERHEAD + subject.len() + body_len;
    let start = out.len();
    out.reserve(len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    out.push(kind as u8);
    out.push(flags);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&(subject.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(headers_len as u32).to_le_bytes());
    out.extend_from_slice(subject);
    for b in body {
        out.extend_from_slice(b);
    }
    let crc = crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() - start, len);
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Decodes the record at the start of `buf` (which may run on past it); `None` if its framing
/// or checksum is wrong.
pub(crate) fn decode(buf: &[u8]) -> Option<Parsed> {
    if buf.len() < RECORD_OVERHEAD || u16_at(buf, 4) != RECORD_MAGIC {
        return None;
    }
    let len = u32_at(buf, 0) as usize;
    if len < RECORD_OVERHEAD || len > buf.len() {
        return None;
    }
    let kind = Kind::from_u8(buf[6])?;
    let flags = buf[7];
    let compressed = match flags {
        0 => false,
        FLAG_SNAPPY if kind == Kind::Msg => true,
        _ => return None,
    };
    let subj_len = usize::from(u16_at(buf, 24));
    let hdr_len = u32_at(buf, 28) as usize;
    // A compressed body may be shorter than its headers once inflated; only the subject is
    // bounded by the record then.
    let stored_hdr = if compressed { 0 } else { hdr_len };
    if subj_len.checked_add(stored_hdr)? > len - RECORD_OVERHEAD {
        return None;
    }
    if crc32c(&buf[..len - 4]) != u32_at(buf, len - 4) {
        return None;
    }
    let subject = 32..32 + subj_len;
    Some(Parsed {
        kind,
        seq: u64_at(buf, 8),
        ts: u64_at(buf, 16),
        len,
        body: subject.end..len - 4,
        subject,
        headers_len: hdr_len,
        compressed,
    })
}

/// The offset of the next intact record in `buf` strictly after `from`, if any.
pub(crate) fn resync(buf: &[u8], from: usize) -> Option<usize> {
    let magic = RECORD_MAGIC.to_le_bytes();
    (from + 1..buf.len().saturating_sub(RECORD_OVERHEAD - 1))
        .filter(|&at| buf[at + 4] == magic[0] && buf[at + 5] == magic[1])
        .find(|&at| decode(&buf[at..]).is_some())
}

/// Encodes a block header.
pub(crate) fn encode_header(base_seq: u64, base_ts: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(BLOCK_MAGIC);
    h[8..16].copy_from_slice(&base_seq.to_le_bytes());
    h[16..24].copy_from_slice(&base_ts.to_le_bytes());
    let crc = crc32c(&h[..28]);
    h[28..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decodes a block header into `(base_seq, base_ts)`.
pub(crate) fn decode_header(buf: &[u8]) -> Option<(u64, u64)> {
    if buf.len() < HEADER_LEN || &buf[..8] != BLOCK_MAGIC || crc32c(&buf[..28]) != u32_at(buf, 28) {
        return None;
    }
    Some((u64_at(buf, 8), u64_at(buf, 16)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut out = vec![9u8; 3];
        encode(
            &mut out,
            Kind::Msg,
            42,
            7,
            b"a.b",
            b"NATS/1.0\r\n\r\n",
            b"hello",
        );
        let p = decode(&out[3..]).unwrap();
        assert_eq!(
            (p.kind, p.seq, p.ts, p.len),
            (Kind::Msg, 42, 7, out.len() - 3)
        );
        let r = Bytes::copy_from_slice(&out[3..]);
        assert_eq!(&r[p.subject.clone()], b"a.b");
        let (h, m) = p.message(r).unwrap();
        assert_eq!((&h[..], &m[..]), (&b"NATS/1.0\r\n\r\n"[..], &b"hello"[..]));
        assert_eq!(decode_header(&encode_header(5, 6)), Some((5, 6)));
    }

    #[test]
    fn every_bit_flip_and_every_truncation_is_rejected() {
        let mut rec = Vec::new();
        encode(&mut rec, Kind::Tombstone, 1, 2, b"x", b"", b"pay");
        for bit in 0..rec.len() * 8 {
            let mut r = rec.clone();
            r[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&r).is_none(), "bit {bit}");
        }
        for cut in 0..rec.len() {
            assert!(decode(&rec[..cut]).is_none());
        }
        let mut h = encode_header(1, 2);
        h[9] ^= 4;
        assert!(decode_header(&h).is_none());
    }

    #[test]
    fn resync_finds_the_next_record() {
        let mut buf = Vec::new();
        encode(&mut buf, Kind::Msg, 1, 0, b"a", b"", b"one");
        let second = buf.len();
        encode(&mut buf, Kind::Msg, 2, 0, b"a", b"", b"two");
        buf[10] ^= 1;
        assert!(decode(&buf).is_none());
        assert_eq!(resync(&buf, 0), Some(second));
        assert_eq!(resync(&buf, second), None);
    }

    #[test]
    fn compressed_round_trip_and_only_when_smaller() {
        let hdr = b"NATS/1.0\r\nK: v\r\n\r\n";
        let payload = vec![b'z'; 500];
        let mut rec = Vec::new();
        encode_msg(&mut rec, 3, 4, b"s", hdr, &payload, true);
        let p = decode(&rec).unwrap();
        assert!(p.compressed);
        assert!(rec.len() < RECORD_OVERHEAD + 1 + hdr.len() + payload.len());
        assert_eq!(p.body_lens(&rec), Some((hdr.len(), payload.len())));
        let (h, m) = p.message(Bytes::from(rec.clone())).unwrap();
        assert_eq!((&h[..], &m[..]), (&hdr[..], &payload[..]));
        for bit in 0..rec.len() * 8 {
            let mut r = rec.clone();
            r[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&r).is_none(), "bit {bit}");
        }
        // Incompressible (and tiny) bodies are stored as they are.
        let noise: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for body in [&noise[..], b"tiny"] {
            let mut rec = Vec::new();
            encode_msg(&mut rec, 1, 1, b"s", b"", body, true);
            let p = decode(&rec).unwrap();
            assert!(!p.compressed);
            assert_eq!(&p.message(Bytes::from(rec)).unwrap().1[..], body);
        }
    }

    #[test]
    fn skip_record_names_its_range() {
        let mut rec = Vec::new();
        encode_skip(&mut rec, 5, 5_000_004, 9);
        let p = decode(&rec).unwrap();
        assert_eq!((p.kind, p.seq, p.ts), (Kind::Skip, 5, 9));
        assert_eq!(p.skip_last(&rec), Some(5_000_004));
        // The compression flag is for messages only.
        let mut bad = rec.clone();
        bad[7] = FLAG_SNAPPY;
        let crc = crc32c(&bad[..bad.len() - 4]);
        let n = bad.len();
        bad[n - 4..].copy_from_slice(&crc.to_le_bytes());
        assert!(decode(&bad).is_none());
    }
}
