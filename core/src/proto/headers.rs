//! NATS message headers (`NATS/1.0` blocks): parse and encode.
//!
//! A block is `NATS/1.0[ <status>[ <description>]]\r\n`, then `Name: value\r\n` lines, then an
//! empty line. nats-server itself never validates the headers a client publishes (it passes the
//! block through byte for byte); this type is for the places where the server reads or writes
//! headers itself (status messages, JetStream). Do not reject a message because its block does
//! not parse here.

use bytes::{BufMut, Bytes, BytesMut};

/// The version line prefix every block starts with.
pub const VERSION: &[u8] = b"NATS/1.0";

/// The block of nats-server's no-responders status message (Go: processInboundClientMsg).
pub const NO_RESPONDERS: &[u8] = b"NATS/1.0 503\r\n\r\n";

/// The header block nats-server sends for a no-responders 503: `NATS/1.0 503\r\n\r\n`.
pub fn no_responders_block() -> Bytes {
    Bytes::from_static(NO_RESPONDERS)
}

/// A malformed header block, or a header that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The block does not start with `NATS/1.0`.
    #[error("header block does not start with NATS/1.0")]
    NoVersion,
    /// The block does not end with an empty line (`\r\n\r\n`).
    #[error("header block is not terminated by an empty line")]
    Unterminated,
    /// The status is not three ASCII digits, or is followed by junk.
    #[error("bad status in header block")]
    BadStatus,
    /// A header line has no `:`.
    #[error("header line without ':'")]
    NoColon,
    /// A header name is empty or holds a byte outside printable ASCII.
    #[error("bad header name")]
    BadName,
    /// A header value or description holds a CR or LF, or a line ends in a bare LF.
    #[error("bad header value")]
    BadValue,
}

/// A parsed header block: optional status and description, then ordered `(name, value)` pairs.
///
/// Names keep their case; a name may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    status: Option<u16>,
    description: Option<String>,
    entries: Vec<(String, Bytes)>,
}

impl Headers {
    /// An empty block (`NATS/1.0\r\n\r\n` once encoded).
    pub fn new() -> Self {
        Self::default()
    }

    /// A status block such as `NATS/1.0 404 No Messages`. The description must not hold CR/LF.
    pub fn with_status(status: u16, description: Option<&str>) -> Result<Self, HeaderError> {
        if !(100..=999).contains(&status) {
            return Err(HeaderError::BadStatus);
        }
        if let Some(d) = description {
            if d.bytes().any(|b| b == b'\r' || b == b'\n') {
                return Err(HeaderError::BadValue);
            }
        }
        Ok(Self {
            status: Some(status),
            description: description.filter(|d| !d.is_empty()).map(str::to_owned),
            entries: Vec::new(),
        })
    }

    /// Parses a whole block, from `NATS/1.0` to the closing empty line included.
    ///
    /// Linear in the input, never panics; trailing bytes after the empty line are an error.
    pub fn parse(block: &[u8]) -> Result<Self, HeaderError> {
        let rest = block.strip_prefix(VERSION).ok_or(HeaderError::NoVersion)?;
        let (first, mut rest) = split_line(rest)?;
        let (status, description) = parse_status(first)?;
        let mut entries = Vec::new();
        loop {
            let (line, after) = split_line(rest)?;
            rest = after;
            if line.is_empty() {
                break;
            }
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or(HeaderError::NoColon)?;
            let name = &line[..colon];
            if !valid_name(name) {
                return Err(HeaderError::BadName);
            }
            let value = trim(&line[colon + 1..]);
            // valid_name admits printable ASCII only, so this is always UTF-8.
            let name = String::from_utf8_lossy(name).into_owned();
            entries.push((name, Bytes::copy_from_slice(value)));
        }
        if !rest.is_empty() {
            return Err(HeaderError::Unterminated);
        }
        Ok(Self {
            status,
            description,
            entries,
        })
    }

    /// The inline status (e.g. 503), if any.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The description after the status, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// All `(name, value)` pairs in block order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_ref()))
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no header lines (a status may still be set).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first value of `name`, compared ASCII case-insensitively.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// The first value of `name`, compared exactly. nats-server's own lookups (Go: getHeader)
    /// are case-sensitive.
    pub fn get_exact(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// All values of `name`, compared ASCII case-insensitively.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// Appends a header line. The name must be non-empty printable ASCII without `:`, the value
    /// must not hold CR or LF.
    pub fn append(&mut self, name: &str, value: impl Into<Bytes>) -> Result<(), HeaderError> {
        if !valid_name(name.as_bytes()) {
            return Err(HeaderError::BadName);
        }
        let value = value.into();
        if value.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(HeaderError::BadValue);
        }
        self.entries.push((name.to_owned(), value));
        Ok(())
    }

    /// Replaces every `name` line (case-insensitively) by one `name: value` line at the end.
    pub fn insert(&mut self, name: &str, value: impl Into<Bytes>) -> Result<(), HeaderError> {
        let value = value.into();
        let keep = self.entries.clone();
        self.remove(name);
        self.append(name, value)
            .inspect_err(|_| self.entries = keep)
    }

    /// Removes every `name` line (case-insensitively); returns how many went.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        before - self.entries.len()
    }

    /// Appends the encoded block to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_slice(VERSION);
        if let Some(status) = self.status {
            out.put_u8(b' ');
            out.put_slice(status.to_string().as_bytes());
            if let Some(d) = &self.description {
                out.put_u8(b' ');
                out.put_slice(d.as_bytes());
            }
        }
        out.put_slice(b"\r\n");
        for (name, value) in &self.entries {
            out.put_slice(name.as_bytes());
            out.put_slice(b": ");
            out.put_slice(value);
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
    }

    /// The encoded block.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }
}

/// Splits off one `\r\n`-terminated line. A bare `\r` or `\n` inside is an error.
fn split_line(b: &[u8]) -> Result<(&[u8], &[u8]), HeaderError> {
    let nl = b
        .iter()
        .position(|&c| c == b'\n')
        .ok_or(HeaderError::Unterminated)?;
    let line = b[..nl].strip_suffix(b"\r").ok_or(HeaderError::BadValue)?;
    if line.contains(&b'\r') {
        return Err(HeaderError::BadValue);
    }
    Ok((line, &b[nl + 1..]))
}

/// The rest of the version line: empty, or ` <3 digits>[ <description>]`.
fn parse_status(rest: &[u8]) -> Result<(Option<u16>, Option<String>), HeaderError> {
    if rest.is_empty() {
        return Ok((None, None));
    }
    let rest = match rest.first() {
        Some(b' ' | b'\t') => trim(rest),
        _ => return Err(HeaderError::NoVersion),
    };
    if rest.is_empty() {
        return Ok((None, None));
    }
    let (code, desc) = match rest.get(..3) {
        Some(code) if code.iter().all(u8::is_ascii_digit) => (code, &rest[3..]),
        _ => return Err(HeaderError::BadStatus),
    };
    let status = code.iter().fold(0u16, |n, &c| n * 10 + u16::from(c - b'0'));
    let description = match desc.first() {
        None => None,
        Some(b' ' | b'\t') => {
            let d = trim(desc);
            (!d.is_empty()).then(|| String::from_utf8_lossy(d).into_owned())
        }
        Some(_) => return Err(HeaderError::BadStatus),
    };
    Ok((Some(status), description))
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| b.is_ascii_graphic() && b != b':')
}

fn trim(b: &[u8]) -> &[u8] {
    let is_ws = |c: &u8| *c == b' ' || *c == b'\t';
    let start = b.iter().position(|c| !is_ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_ws(c)).map_or(start, |i| i + 1);
    &b[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_responders_is_what_nats_server_sends() {
        // Go: server/client.go — "HMSG %s %s 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
        assert_eq!(&no_responders_block()[..], b"NATS/1.0 503\r\n\r\n");
        assert_eq!(no_responders_block().len(), 16);
        let h = Headers::parse(&no_responders_block()).unwrap();
        assert_eq!(h.status(), Some(503));
        assert_eq!(h.description(), None);
        assert!(h.is_empty());
        assert_eq!(h.to_bytes(), no_responders_block());
    }

    #[test]
    fn parses_status_description_and_entries() {
        let block = b"NATS/1.0 404 No Messages\r\nNats-Msg-Id: abc \r\nX:\r\nx-multi: 1\r\nX-Multi:2\r\n\r\n";
        let h = Headers::parse(block).unwrap();
        assert_eq!(h.status(), Some(404));
        assert_eq!(h.description(), Some("No Messages"));
        assert_eq!(h.len(), 4);
        assert_eq!(h.get("nats-msg-id"), Some(&b"abc"[..]));
        assert_eq!(h.get_exact("nats-msg-id"), None);
        assert_eq!(h.get_exact("Nats-Msg-Id"), Some(&b"abc"[..]));
        assert_eq!(h.get("X"), Some(&b""[..]));
        assert_eq!(
            h.get_all("X-MULTI").collect::<Vec<_>>(),
            vec![&b"1"[..], b"2"]
        );
        let names: Vec<_> = h.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Nats-Msg-Id", "X", "x-multi", "X-Multi"]);
    }

    #[test]
    fn plain_block() {
        let h = Headers::parse(b"NATS/1.0\r\n\r\n").unwrap();
        assert_eq!(h, Headers::new());
        assert_eq!(&Headers::new().to_bytes()[..], b"NATS/1.0\r\n\r\n");
    }

    #[test]
    fn encode_round_trips() {
        let mut h = Headers::with_status(408, Some("Request Timeout")).unwrap();
        h.append("A", "1").unwrap();
        h.append("b-B", Bytes::from_static(b"two words")).unwrap();
        let bytes = h.to_bytes();
        assert_eq!(
            &bytes[..],
            b"NATS/1.0 408 Request Timeout\r\nA: 1\r\nb-B: two words\r\n\r\n"
        );
        assert_eq!(Headers::parse(&bytes).unwrap(), h);
    }

    #[test]
    fn insert_and_remove() {
        let mut h = Headers::new();
        h.append("K", "1").unwrap();
        h.append("k", "2").unwrap();
        h.insert("K", "3").unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h.get("k"), Some(&b"3"[..]));
        assert_eq!(h.insert("K", "x\r\ny"), Err(HeaderError::BadValue));
        assert_eq!(
            h.get("k"),
            Some(&b"3"[..]),
            "failed insert leaves the block alone"
        );
        assert_eq!(h.remove("K"), 1);
        assert!(h.is_empty());
    }

    #[test]
    fn rejects_malformed() {
        let cases: &[(&[u8], HeaderError)] = &[
            (b"", HeaderError::NoVersion),
            (b"NATS/2.0\r\n\r\n", HeaderError::NoVersion),
            (b"NATS/1.0", HeaderError::Unterminated),
            (b"NATS/1.0\r\n", HeaderError::Unterminated),
            (b"NATS/1.0\r\nA: b\r\n", HeaderError::Unterminated),
            (b"NATS/1.0\r\n\r\nextra", HeaderError::Unterminated),
            (b"NATS/1.0x\r\n\r\n", HeaderError::NoVersion),
            (b"NATS/1.0 50\r\n\r\n", HeaderError::BadStatus),
            (b"NATS/1.0 5034\r\n\r\n", HeaderError::BadStatus),
            (b"NATS/1.0 abc\r\n\r\n", HeaderError::BadStatus),
            (b"NATS/1.0\r\nno colon\r\n\r\n", HeaderError::NoColon),
            (b"NATS/1.0\r\n: v\r\n\r\n", HeaderError::BadName),
            (b"NATS/1.0\r\nA B: v\r\n\r\n", HeaderError::BadName),
            (b"NATS/1.0\nA: v\r\n\r\n", HeaderError::BadValue),
            (b"NATS/1.0\r\nA: v\rw\r\n\r\n", HeaderError::BadValue),
        ];
        for (block, want) in cases {
            assert_eq!(
                Headers::parse(block).as_ref().err(),
                Some(want),
                "{:?}",
                String::from_utf8_lossy(block)
            );
        }
        assert_eq!(Headers::with_status(42, None), Err(HeaderError::BadStatus));
        assert_eq!(Headers::new().append("a:b", "v"), Err(HeaderError::BadName));
    }

    #[test]
    fn never_panics_on_prefixes_of_a_good_block() {
        let block = b"NATS/1.0 503 x y\r\nA: 1\r\nB:  2 \r\n\r\n";
        for n in 0..block.len() {
            assert!(Headers::parse(&block[..n]).is_err());
        }
        assert!(Headers::parse(block).is_ok());
    }
}
