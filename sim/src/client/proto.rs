//! Client side of the NATS text protocol, sans-IO: what a server sends, parsed from a buffer,
//! and what a client sends, encoded into one.
//!
//! The server's own parser (`natsd_core::proto::client`) reads the other direction; this one is
//! written separately so that the sim does not test natsd against itself.

use bytes::{Buf, Bytes, BytesMut};
use natsd_core::proto::headers::Headers;

/// Longest control line accepted from the server; a longer one is a protocol error.
const MAX_CONTROL_LINE: usize = 64 * 1024;

/// One operation received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOp {
    /// `INFO {json}`.
    Info(serde_json::Value),
    /// `MSG` or `HMSG`.
    Msg(Msg),
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK`.
    Ok,
    /// `-ERR 'text'`, with the quotes removed.
    Err(String),
}

/// A delivered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// Subject it was published to.
    pub subject: String,
    /// Subscription id it was delivered on.
    pub sid: u64,
    /// Reply subject, if any.
    pub reply: Option<String>,
    /// Parsed header block (HMSG only).
    pub headers: Option<Headers>,
    /// Payload.
    pub payload: Bytes,
}

impl Msg {
    /// The status code of a header-only status message (`NATS/1.0 503`), if any.
    pub fn status(&self) -> Option<u16> {
        self.headers.as_ref().and_then(Headers::status)
    }
}

/// A malformed op from the server: the connection cannot continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoError(pub String);

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtoError {}

/// Parses the first complete op from the front of `buf`, consuming it. `Ok(None)` means more
/// bytes are needed; the partial op stays in `buf`.
pub fn parse(buf: &mut BytesMut) -> Result<Option<ServerOp>, ProtoError> {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() > MAX_CONTROL_LINE {
            return Err(ProtoError("control line too long".into()));
        }
        return Ok(None);
    };
    let line = std::str::from_utf8(&buf[..eol])
        .map_err(|_| ProtoError("control line is not UTF-8".into()))?
        .to_owned();
    let (verb, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
    let verb = verb.to_ascii_uppercase();
    let op = match verb.as_str() {
        "PING" => ServerOp::Ping,
        "PONG" => ServerOp::Pong,
        "+OK" => ServerOp::Ok,
        "-ERR" => ServerOp::Err(rest.trim().trim_matches('\'').to_owned()),
        "INFO" => ServerOp::Info(
            serde_json::from_str(rest.trim())
                .map_err(|e| ProtoError(format!("bad INFO json: {e}")))?,
        ),
        "MSG" | "HMSG" => return parse_msg(buf, eol, rest, verb == "HMSG"),
        _ => return Err(ProtoError(format!("unknown op {line:?}"))),
    };
    buf.advance(eol + 2);
    Ok(Some(op))
}

fn parse_msg(
    buf: &mut BytesMut,
    eol: usize,
    args: &str,
    with_headers: bool,
) -> Result<Option<ServerOp>, ProtoError> {
    let parts: Vec<&str> = args.split_ascii_whitespace().collect();
    let bad = || ProtoError(format!("bad MSG args {args:?}"));
    let num = |s: &str| s.parse::<usize>().map_err(|_| bad());
    // MSG subject sid [reply] size / HMSG subject sid [reply] hdr_size total_size
    let (subject, sid, reply, hdr_len, total) = match (with_headers, parts.as_slice()) {
        (false, [s, id, n]) => (*s, *id, None, 0, num(n)?),
        (false, [s, id, r, n]) => (*s, *id, Some(*r), 0, num(n)?),
        (true, [s, id, h, n]) => (*s, *id, None, num(h)?, num(n)?),
        (true, [s, id, r, h, n]) => (*s, *id, Some(*r), num(h)?, num(n)?),
        _ => return Err(bad()),
    };
    if hdr_len > total {
        return Err(bad());
    }
    let sid = sid.parse::<u64>().map_err(|_| bad())?;
    let need = eol + 2 + total + 2;
    if buf.len() < need {
        return Ok(None);
    }
    if &buf[need - 2..need] != b"\r\n" {
        return Err(ProtoError("payload not followed by CRLF".into()));
    }
    let subject = subject.to_owned();
    let reply = reply.map(str::to_owned);
    buf.advance(eol + 2);
    let mut body = buf.split_to(total).freeze();
    buf.advance(2);
    let headers = if with_headers {
        let block = body.split_to(hdr_len);
        Some(Headers::parse(&block).map_err(|e| ProtoError(format!("bad headers: {e}")))?)
    } else {
        None
    };
    Ok(Some(ServerOp::Msg(Msg {
        subject,
        sid,
        reply,
        headers,
        payload: body,
    })))
}

/// Encodes `PUB subject [reply] size\r\npayload\r\n`.
pub fn encode_pub(out: &mut BytesMut, subject: &str, reply: Option<&str>, payload: &[u8]) {
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject.as_bytes());
    if let Some(r) = reply {
        out.extend_from_slice(b" ");
        out.extend_from_slice(r.as_bytes());
    }
    out.extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// Encodes `HPUB subject [reply] hdr_size total_size\r\nheaders payload\r\n`; `headers` is
/// a whole header block (`NATS/1.0\r\n...\r\n\r\n`).
pub fn encode_hpub(
    out: &mut BytesMut,
    subject: &str,
    reply: Option<&str>,
    headers: &[u8],
    payload: &[u8],
) {
    out.extend_from_slice(b"HPUB ");
    out.extend_from_slice(subject.as_bytes());
    if let Some(r) = reply {
        out.extend_from_slice(b" ");
        out.extend_from_slice(r.as_bytes());
    }
    let total = headers.len() + payload.len();
    out.extend_from_slice(format!(" {} {total}\r\n", headers.len()).as_bytes());
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// Encodes `SUB subject [queue] sid\r\n`.
pub fn encode_sub(out: &mut BytesMut, subject: &str, queue: Option<&str>, sid: u64) {
    let line = match queue {
        Some(q) => format!("SUB {subject} {q} {sid}\r\n"),
        None => format!("SUB {subject} {sid}\r\n"),
    };
    out.extend_from_slice(line.as_bytes());
}

/// Encodes `UNSUB sid [max]\r\n`.
pub fn encode_unsub(out: &mut BytesMut, sid: u64, max: Option<u64>) {
    let line = match max {
        Some(m) => format!("UNSUB {sid} {m}\r\n"),
        None => format!("UNSUB {sid}\r\n"),
    };
    out.extend_from_slice(line.as_bytes());
}

/// Encodes `CONNECT {json}\r\n` for a client that wants headers and no-responders notices.
pub fn encode_connect(
    out: &mut BytesMut,
    name: &str,
    user: Option<&str>,
    pass: Option<&str>,
    echo: bool,
) {
    let mut o = serde_json::json!({
        "verbose": false,
        "pedantic": false,
        "lang": "natsd-sim",
        "version": "0.1.0",
        "protocol": 1,
        "headers": true,
        "no_responders": true,
        "echo": echo,
        "name": name,
    });
    if let (Some(u), Some(map)) = (user, o.as_object_mut()) {
        map.insert("user".into(), u.into());
        map.insert("pass".into(), pass.unwrap_or_default().into());
    }
    out.extend_from_slice(format!("CONNECT {o}\r\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<ServerOp> {
        // Feed at every split point: the result must not depend on how bytes arrive.
        let mut whole = None;
        for split in 0..=input.len() {
            let mut buf = BytesMut::new();
            let mut ops = Vec::new();
            for chunk in [&input[..split], &input[split..]] {
                buf.extend_from_slice(chunk);
                while let Some(op) = parse(&mut buf).expect("valid input") {
                    ops.push(op);
                }
            }
            assert!(buf.is_empty(), "left over at split {split}");
            match &whole {
                None => whole = Some(ops),
                Some(w) => assert_eq!(w, &ops, "split {split}"),
            }
        }
        whole.unwrap_or_default()
    }

    #[test]
    fn parses_every_server_op_at_every_split() {
        let input = b"INFO {\"server_id\":\"x\",\"headers\":true}\r\nPING\r\nPONG\r\n+OK\r\n\
-ERR 'Authorization Violation'\r\nMSG a.b 7 5\r\nhello\r\nMSG a.b 7 r.1 0\r\n\r\n\
HMSG _INBOX.x 2 16 16\r\nNATS/1.0 503\r\n\r\n\r\n";
        let ops = parse_all(input);
        assert_eq!(ops.len(), 8);
        assert_eq!(ops[1], ServerOp::Ping);
        assert_eq!(ops[4], ServerOp::Err("Authorization Violation".into()));
        let ServerOp::Msg(m) = &ops[5] else {
            panic!("not a MSG: {:?}", ops[5]);
        };
        assert_eq!(
            (m.subject.as_str(), m.sid, &m.payload[..]),
            ("a.b", 7, &b"hello"[..])
        );
        let ServerOp::Msg(m) = &ops[6] else {
            panic!("not a MSG");
        };
        assert_eq!(m.reply.as_deref(), Some("r.1"));
        let ServerOp::Msg(m) = &ops[7] else {
            panic!("not an HMSG");
        };
        assert_eq!(m.status(), Some(503));
        assert!(m.payload.is_empty());
    }

    #[test]
    fn rejects_garbage() {
        let mut buf = BytesMut::from(&b"BOGUS\r\n"[..]);
        assert!(parse(&mut buf).is_err());
        let mut buf = BytesMut::from(&b"MSG a 1 3\r\nabcXY"[..]);
        assert!(parse(&mut buf).is_err());
    }

    #[test]
    fn encodes_client_ops() {
        let mut out = BytesMut::new();
        encode_pub(&mut out, "a", Some("r"), b"xy");
        encode_sub(&mut out, "a.*", Some("q"), 3);
        encode_unsub(&mut out, 3, Some(2));
        assert_eq!(&out[..], b"PUB a r 2\r\nxy\r\nSUB a.* q 3\r\nUNSUB 3 2\r\n");
        let mut out = BytesMut::new();
        encode_hpub(&mut out, "a", Some("r"), b"NATS/1.0\r\n\r\n", b"xy");
        assert_eq!(&out[..], b"HPUB a r 12 14\r\nNATS/1.0\r\n\r\nxy\r\n");
    }
}
