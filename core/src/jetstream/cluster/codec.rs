//! The byte form of what the Raft logs carry: a two-byte envelope (kind, version) in front of
//! every entry and snapshot, so a later format can be told apart from this one and an unknown
//! one is refused with an error instead of being misread.
//!
//! ```text
//! byte 0   kind: b'M' meta entry, b'm' meta snapshot, b'S' stream entry, b's' stream snapshot,
//!          b'C' catch-up request, b'c' catch-up chunk
//! byte 1   format version (1)
//! rest     meta: JSON (serde, struct fields in declaration order, maps ordered: the same
//!          value always gives the same bytes); stream entries: the binary layout of
//!          `replica::StreamEntry` (varints are LEB128, byte strings are length-prefixed);
//!          catch-up: the binary layout in `catchup`
//! ```

/// What a buffer claims to be (byte 0 of the envelope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A meta group entry.
    MetaEntry,
    /// A meta group snapshot.
    MetaSnapshot,
    /// A stream group entry.
    StreamEntry,
    /// A stream group snapshot.
    StreamSnapshot,
    /// A catch-up request (see `catchup`).
    CatchupRequest,
    /// A catch-up chunk (see `catchup`).
    CatchupChunk,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Self::MetaEntry => b'M',
            Self::MetaSnapshot => b'm',
            Self::StreamEntry => b'S',
            Self::StreamSnapshot => b's',
            Self::CatchupRequest => b'C',
            Self::CatchupChunk => b'c',
        }
    }
}

/// The format version this build writes and reads.
pub const VERSION: u8 = 1;

/// Why bytes could not be decoded. Decoding never panics, whatever the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer than the two envelope bytes.
    #[error("entry too short")]
    Short,
    /// Byte 0 names another kind of buffer (a stream entry given to the meta machine, ...).
    #[error("wrong entry kind {0:#04x}")]
    WrongKind(u8),
    /// Written by a format this build does not know (newer, or damaged).
    #[error("unknown entry version {0}")]
    UnknownVersion(u8),
    /// The body does not parse.
    #[error("malformed entry: {0}")]
    Malformed(String),
}

/// Prefixes `body` with the envelope of `kind`.
pub(crate) fn seal(kind: Kind, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    out.push(kind.byte());
    out.push(VERSION);
    out.extend_from_slice(body);
    out
}

/// Checks the envelope and returns the body.
pub(crate) fn open(kind: Kind, bytes: &[u8]) -> Result<&[u8], DecodeError> {
    let [k, v, body @ ..] = bytes else {
        return Err(DecodeError::Short);
    };
    if *k != kind.byte() {
        return Err(DecodeError::WrongKind(*k));
    }
    if *v != VERSION {
        return Err(DecodeError::UnknownVersion(*v));
    }
    Ok(body)
}

/// Serialises a JSON body behind the envelope.
pub(crate) fn seal_json<T: serde::Serialize>(kind: Kind, v: &T) -> Vec<u8> {
    // Serialising our own types (strings, numbers, ordered maps) cannot fail.
    let body = serde_json::to_vec(v).unwrap_or_default();
    seal(kind, &body)
}

/// Parses a JSON body after checking the envelope.
pub(crate) fn open_json<T: serde::de::DeserializeOwned>(
    kind: Kind,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    serde_json::from_slice(open(kind, bytes)?).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Appends binary fields.
#[derive(Debug, Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(crate) fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.uvarint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
}

/// Reads binary fields; every read is bounds-checked.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

fn short() -> DecodeError {
    DecodeError::Malformed("truncated".into())
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.buf.split_first().ok_or_else(short)?;
        self.buf = rest;
        Ok(b)
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        // At most ten bytes carry 64 bits; an eleventh continuation is malformed.
        for i in 0..10 {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError::Malformed("varint too long".into()))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(self.uvarint()?).map_err(|_| short())?;
        if n > self.buf.len() {
            return Err(short());
        }
        let (b, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(b)
    }

    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| DecodeError::Malformed("subject is not UTF-8".into()))
    }

    /// Fails unless everything was read: trailing bytes mean a format we do not know.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed("trailing bytes".into()))
        }
    }
}
