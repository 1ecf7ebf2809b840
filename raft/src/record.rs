//! Checksummed records, the unit of every file this crate writes.
//!
//! ```text
//! | len: u32 LE | payload crc32c: u32 LE | header crc32c (of the 8 bytes before): u32 LE | payload |
//! ```
//!
//! The header carries its own checksum so recovery can tell a torn write (a header that is cut
//! or zeroed at the end of the file, or a payload that runs past the end) from a flipped bit in
//! the middle of the log (a header or payload that fails its checksum while good data follows).

/// Bytes before the payload.
pub(crate) const HEADER_LEN: usize = 12;

/// What one parse step found at an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    /// A whole, valid record; `next` is the offset after it.
    Record { payload: &'a [u8], next: usize },
    /// Nothing but zeros from here to the end (pre-allocated or zeroed by a torn write).
    Zeros,
    /// The header or payload runs past the end of the file.
    Short,
    /// A header that fails its checksum.
    BadHeader,
    /// A valid header whose payload fails its checksum; `next` is where it claims to end.
    BadPayload { next: usize },
}

/// Encodes one record.
pub(crate) fn encode(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c(payload).to_le_bytes());
    let hcrc = crc32c(&out[..8]);
    out.extend_from_slice(&hcrc.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Parses the record at `off` (which must be `<= buf.len()`).
pub(crate) fn parse(buf: &[u8], off: usize) -> Parsed<'_> {
    let rest = &buf[off..];
    if rest.iter().all(|b| *b == 0) {
        return Parsed::Zeros;
    }
    if rest.len() < HEADER_LEN {
        return Parsed::Short;
    }
    if crc32c(&rest[..8]) != u32_at(rest, 8) {
        return Parsed::BadHeader;
    }
    let len = u32_at(rest, 0) as usize;
    let Some(end) = HEADER_LEN.checked_add(len) else {
        return Parsed::Short;
    };
    if end > rest.len() {
        return Parsed::Short;
    }
    let payload = &rest[HEADER_LEN..end];
    if crc32c(payload) != u32_at(rest, 4) {
        return Parsed::BadPayload { next: off + end };
    }
    Parsed::Record {
        payload,
        next: off + end,
    }
}

/// CRC-32C (Castagnoli), bitwise over a nibble table: small, and fast enough for Raft entries,
/// which are summed once on write and once on recovery.
/// CRC-32C: the store's table-driven one (slicing by eight), which the leader's hot path
/// needs (every entry is summed when appended and again when read back to replicate).
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    natsd_core::jetstream::store::crc32c(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn round_trip_and_faults() {
        let mut buf = encode(b"hello");
        let n = buf.len();
        buf.extend(encode(b"world"));
        assert_eq!(
            parse(&buf, 0),
            Parsed::Record {
                payload: b"hello",
                next: n
            }
        );
        assert!(matches!(parse(&buf, n), Parsed::Record { .. }));
        assert_eq!(parse(&buf, buf.len()), Parsed::Zeros);
        assert_eq!(parse(&buf[..n + 5], n), Parsed::Short);
        let mut flipped = buf.clone();
        flipped[HEADER_LEN] ^= 1;
        assert_eq!(parse(&flipped, 0), Parsed::BadPayload { next: n });
        let mut flipped = buf.clone();
        flipped[0] ^= 1;
        assert_eq!(parse(&flipped, 0), Parsed::BadHeader);
        let mut zeroed = buf;
        zeroed[n..].fill(0);
        assert_eq!(parse(&zeroed, n), Parsed::Zeros);
    }
}
