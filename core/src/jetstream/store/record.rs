//! The on-disk format of a block file.
//!
//! A block is a 32-byte header followed by records, all little-endian:
//!
//! ```text
//! header   0  magic "NJSBLK01"   8  base_seq u64 (last_seq + 1 when the block was started)
//!          16 base_ts u64 (last_ts then)   24 reserved u32   28 crc32c(bytes 0..28)
//!
//! record   0  len u32 (whole record, 36 + subject + headers + payload)
//!          4  magic u16 0x4A53   6  kind u8   7  reserved u8
//!          8  seq u64            16 ts u64 (Unix nanos)
//!          24 subject_len u16    26 reserved u16   28 headers_len u32
//!          32 subject | headers | payload
//!          len-4 crc32c(bytes 0..len-4)
//! ```
//!
//! Kinds: a message; a tombstone (`seq` removed); a floor (every sequence below `seq` removed,
//! and `last_seq` is at least `seq - 1`: purge and compact); a sync mark (written just before
//! each fsync, so the last synced message is never the last record of a block — damage to it
//! then reads as corruption in the middle, not as a torn tail that may be cut silently).
//! The per-record magic lets recovery find the next intact record after a damaged one.

use std::ops::Range;

use super::crc::crc32c;

/// Size of a block header.
pub(crate) const HEADER_LEN: usize = 32;
/// Fixed bytes of a record: the 32-byte head plus the trailing CRC.
pub(crate) const RECORD_OVERHEAD: usize = 36;
const BLOCK_MAGIC: &[u8; 8] = b"NJSBLK01";
const RECORD_MAGIC: u16 = 0x4A53;

/// What a record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Msg = 1,
    Tombstone = 2,
    Floor = 3,
    SyncMark = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Msg),
            2 => Some(Self::Tombstone),
            3 => Some(Self::Floor),
            4 => Some(Self::SyncMark),
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
    pub(crate) headers: Range<usize>,
    pub(crate) payload: Range<usize>,
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
    debug_assert!(subject.len() <= usize::from(u16::MAX));
    let len = RECORD_OVERHEAD + subject.len() + headers.len() + payload.len();
    let start = out.len();
    out.reserve(len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    out.push(kind as u8);
    out.push(0);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&(subject.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    out.extend_from_slice(subject);
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
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
    let subj_len = usize::from(u16_at(buf, 24));
    let hdr_len = u32_at(buf, 28) as usize;
    if subj_len.checked_add(hdr_len)? > len - RECORD_OVERHEAD {
        return None;
    }
    if crc32c(&buf[..len - 4]) != u32_at(buf, len - 4) {
        return None;
    }
    let subject = 32..32 + subj_len;
    let headers = subject.end..subject.end + hdr_len;
    let payload = headers.end..len - 4;
    Some(Parsed {
        kind,
        seq: u64_at(buf, 8),
        ts: u64_at(buf, 16),
        len,
        subject,
        headers,
        payload,
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
        let r = &out[3..];
        assert_eq!(&r[p.subject], b"a.b");
        assert_eq!(&r[p.headers], b"NATS/1.0\r\n\r\n");
        assert_eq!(&r[p.payload], b"hello");
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
}
