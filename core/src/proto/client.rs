//! The client protocol: parser of client → server ops, encoders of server → client ops.
//!
//! Behaviour follows nats-server 2.9.10 (`server/parser.go`, `server/client.go`), checked
//! against the real binary:
//!
//! * op names are case-insensitive; `PUB`, `HPUB`, `SUB`, `UNSUB` and `-ERR` need at least one
//!   space or tab after the name, `CONNECT` and `INFO` do not (`CONNECT{}` is accepted);
//! * arguments are separated by runs of spaces and tabs; a control line may end in `\n` alone;
//! * `PING`, `PONG` and `+OK` ignore anything up to the end of the line (`PINGX\n` is a ping);
//! * a payload must be followed by exactly `\r\n`, else `Unknown Protocol Operation`;
//! * sizes are 1–9 ASCII digits, nothing else (no sign, no more than 9 digits).
//!
//! Every [`ProtoError`] closes the connection in nats-server; only some of them send an `-ERR`
//! first (see [`ProtoError::sends_err`]).

use std::ops::Range;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::info::{ConnectInfo, ServerInfo};
use crate::gojson;

mod template;
pub use template::MsgTemplate;

/// `PING\r\n`.
pub const PING: &[u8] = b"PING\r\n";
/// `PONG\r\n`.
pub const PONG: &[u8] = b"PONG\r\n";
/// `+OK\r\n`, the verbose-mode acknowledgement.
pub const OK: &[u8] = b"+OK\r\n";
/// The line terminator of the protocol.
pub const CRLF: &[u8] = b"\r\n";

/// nats-server's default `max_control_line` (Go: `MAX_CONTROL_LINE_SIZE`).
pub const DEFAULT_MAX_CONTROL_LINE: u32 = 4096;
/// nats-server's default `max_payload` (Go: `MAX_PAYLOAD_SIZE`).
pub const DEFAULT_MAX_PAYLOAD: u32 = 1024 * 1024;

/// One op sent by a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientOp {
    /// `CONNECT {json}`, already decoded with nats-server's defaults for absent fields.
    Connect(Box<ConnectInfo>),
    /// `PUB` or `HPUB` with its payload.
    Pub(PubMsg),
    /// `SUB <subject> [queue] <sid>`.
    Sub {
        /// Subject (not validated here).
        subject: Bytes,
        /// Queue group name.
        queue: Option<Bytes>,
        /// Subscription id chosen by the client.
        sid: Bytes,
    },
    /// `UNSUB <sid> [max]`.
    ///
    /// `max` is `None` when absent *or not a valid size* (nats-server treats both alike);
    /// nats-server unsubscribes at once when `max` is `None`, `Some(0)`, or not above the count
    /// already delivered.
    Unsub {
        /// Subscription id.
        sid: Bytes,
        /// Auto-unsubscribe after this many messages.
        max: Option<u64>,
    },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `INFO {json}`: the raw JSON, checked to be `null` or an object. The server ignores it.
    Info(Bytes),
    /// `+OK` (ignored by the server).
    Ok,
    /// `-ERR <text>`: the raw text. nats-server logs it and closes the connection.
    Err(Bytes),
}

/// A published message (`PUB` or `HPUB`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubMsg {
    /// Subject (not validated here).
    pub subject: Bytes,
    /// Reply subject.
    pub reply: Option<Bytes>,
    /// `HPUB` only: the whole header block (`NATS/1.0…\r\n\r\n`). `None` for `PUB`, and for an
    /// `HPUB` declaring a header size of 0, which nats-server delivers as a plain `MSG`.
    pub headers: Option<Bytes>,
    /// The body, without headers and without the trailing CRLF. Shares the read buffer.
    pub payload: Bytes,
}

impl PubMsg {
    /// Size of headers plus body, as declared on the wire (the `MSG`/`HMSG` total size).
    pub fn total_len(&self) -> usize {
        self.headers.as_ref().map_or(0, Bytes::len) + self.payload.len()
    }
}

/// A protocol violation by the client. nats-server closes the connection after every one of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// Unknown op name, missing separator after an op name, or a payload not followed by CRLF.
    #[error("unknown protocol operation")]
    UnknownOp,
    /// The arguments of a control line are longer than `max_control_line`.
    ///
    /// Detected on a complete line, or as soon as the pending arguments pass the limit (how many
    /// bytes had arrived by then depends on how the input was split, so it is not recorded).
    #[error("maximum control line exceeded (max_control_line {max})")]
    MaxControlLine {
        /// The limit.
        max: u32,
    },
    /// A `PUB`/`HPUB` declares more than `max_payload` bytes.
    #[error("maximum payload exceeded: {size} vs {max}")]
    MaxPayload {
        /// The declared total size.
        size: usize,
        /// The limit.
        max: u32,
    },
    /// `PUB` with other than 2 or 3 arguments.
    #[error("processPub Parse Error: {0:?}")]
    PubArgs(String),
    /// `PUB` size that is not 1–9 digits.
    #[error("processPub Bad or Missing Size: {0:?}")]
    PubSize(String),
    /// `HPUB` with other than 3 or 4 arguments.
    #[error("processHeaderPub Parse Error: {0:?}")]
    HpubArgs(String),
    /// `HPUB` header size that is not 1–9 digits.
    #[error("processHeaderPub Bad or Missing Header Size: {0:?}")]
    HpubHeaderSize(String),
    /// `HPUB` total size that is not 1–9 digits.
    #[error("processHeaderPub Bad or Missing Total Size: {0:?}")]
    HpubTotalSize(String),
    /// `HPUB` header size above its total size.
    #[error("processHeaderPub Header Size larger then TotalSize: {0:?}")]
    HpubHeaderTooLarge(String),
    /// An op other than `CONNECT` while the server awaits authentication
    /// (see [`ClientParser::set_awaiting_auth`]).
    #[error("authentication error: op before CONNECT")]
    AuthViolation,
    /// `HPUB` on a connection that has not negotiated headers.
    #[error("message headers not supported")]
    HeadersNotSupported,
    /// `SUB` with other than 2 or 3 arguments.
    #[error("processSub Parse Error: {0:?}")]
    SubArgs(String),
    /// `UNSUB` with other than 1 or 2 arguments.
    #[error("processUnsub Parse Error: {0:?}")]
    UnsubArgs(String),
    /// `CONNECT` whose JSON does not decode.
    #[error("CONNECT: {0}")]
    ConnectJson(String),
    /// `INFO` whose JSON does not decode.
    #[error("INFO: {0}")]
    InfoJson(String),
}

impl ProtoError {
    /// The text nats-server puts inside `-ERR '…'` for this error.
    ///
    /// Only meaningful when [`sends_err`](Self::sends_err) is true: for the other errors
    /// nats-server sends nothing and just closes; this then returns the log message.
    pub fn err_text(&self) -> String {
        match self {
            // Go: server/parser.go parseErr
            Self::UnknownOp => "Unknown Protocol Operation".to_owned(),
            // Go: server/parser.go overMaxControlLineLimit — ErrMaxControlLine's text, the
            // context is only logged.
            Self::MaxControlLine { .. } => "maximum control line exceeded".to_owned(),
            // Go: server/client.go maxPayloadViolation
            Self::MaxPayload { .. } => "Maximum Payload Violation".to_owned(),
            // Go: server/client.go authViolation
            Self::AuthViolation => "Authorization Violation".to_owned(),
            other => other.to_string(),
        }
    }

    /// Whether nats-server sends `-ERR '<err_text>'` before closing.
    ///
    /// Argument-count, size-syntax and JSON errors are returned from nats-server's parser as
    /// plain errors: readLoop logs them and closes without a word to the client.
    pub fn sends_err(&self) -> bool {
        matches!(
            self,
            Self::UnknownOp
                | Self::MaxControlLine { .. }
                | Self::MaxPayload { .. }
                | Self::AuthViolation
        )
    }

    /// Whether nats-server closes the connection after this error (always, today).
    pub fn closes(&self) -> bool {
        true
    }
}

/// The ops the parser knows, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Pub,
    Hpub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Connect,
    Info,
    Ok,
    Err,
}

impl Op {
    /// The op name, upper case.
    fn name(self) -> &'static [u8] {
        match self {
            Self::Pub => b"PUB",
            Self::Hpub => b"HPUB",
            Self::Sub => b"SUB",
            Self::Unsub => b"UNSUB",
            Self::Ping => b"PING",
            Self::Pong => b"PONG",
            Self::Connect => b"CONNECT",
            Self::Info => b"INFO",
            Self::Ok => b"+OK",
            Self::Err => b"-ERR",
        }
    }

    /// The state once the whole name has been matched.
    fn after_name(self) -> State {
        match self {
            // Go: OP_PUB etc. demand one space or tab after the name.
            Self::Pub | Self::Hpub | Self::Sub | Self::Unsub | Self::Err => State::NeedSpace(self),
            // Go: OP_CONNECT / OP_INFO skip whitespace but do not require it.
            Self::Connect | Self::Info => State::Space(self),
            // Go: OP_PING / OP_PONG / OP_PLUS_OK ignore everything up to '\n'.
            Self::Ping | Self::Pong | Self::Ok => State::Tail(self),
        }
    }
}

/// Where the parser is inside the current op.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Before the first byte of an op.
    Start,
    /// After `P`: `PUB`, `PING` or `PONG`.
    P,
    /// Inside an op name; `matched` bytes of it are consumed.
    Name { op: Op, matched: usize },
    /// After the name of an op that needs a separator.
    NeedSpace(Op),
    /// Skipping whitespace before the arguments.
    Space(Op),
    /// The arguments are at the front of the buffer; `scanned` bytes hold no `\n`.
    Arg { op: Op, scanned: usize },
    /// Skipping the rest of a `PING`/`PONG`/`+OK` line.
    Tail(Op),
    /// A `PUB`/`HPUB` control line is consumed; its payload is awaited.
    Payload(PendingPub),
}

/// Where the parts of a complete `PUB`/`HPUB` lie in the buffer ([`ClientParser::fast_pub`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastPub {
    /// The subject.
    pub subject: Range<usize>,
    /// The reply subject.
    pub reply: Option<Range<usize>>,
    /// The header block (HPUB).
    pub headers: Option<Range<usize>>,
    /// The body.
    pub payload: Range<usize>,
    /// Bytes the op takes, trailing CRLF included.
    pub consumed: usize,
}

/// The control line of a `PUB`/`HPUB` whose payload has not fully arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingPub {
    subject: Bytes,
    reply: Option<Bytes>,
    header_len: usize,
    total_len: usize,
}

/// Incremental parser of the client → server protocol.
///
/// Feed it the connection's read buffer: [`parse`](Self::parse) takes complete ops from the
/// front. It may consume the already-understood start of a partial op (its name, separators,
/// a control line whose payload is still missing) and remember it, so keep feeding the same
/// parser the same buffer. After an `Err` the connection is to be closed; the parser restarts
/// from a clean state if used again.
#[derive(Debug, Clone)]
pub struct ClientParser {
    max_control_line: u32,
    max_payload: u32,
    headers: bool,
    awaiting_auth: bool,
    state: State,
    /// What a CONNECT that omits them keeps (see [`decode_connect`]).
    connect_base: ConnectBase,
}

/// The flags a CONNECT decodes onto: Go's `defaultOpts` before the first CONNECT, then what
/// the last one left (Go decodes every CONNECT into the connection's same `opts`, so a field
/// a later CONNECT omits keeps its earlier value). Only the flags a later CONNECT changes on
/// an open connection are kept, to keep idle connections small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnectBase {
    verbose: bool,
    pedantic: bool,
    echo: bool,
    headers: bool,
}

impl Default for ConnectBase {
    /// Go: server/client.go defaultOpts.
    fn default() -> Self {
        Self {
            verbose: true,
            pedantic: true,
            echo: true,
            headers: false,
        }
    }
}

impl ClientParser {
    /// A parser with the given limits. `HPUB` is accepted until [`set_headers`](Self::set_headers)
    /// says otherwise.
    pub fn new(max_control_line: u32, max_payload: u32) -> Self {
        Self {
            max_control_line,
            max_payload,
            headers: true,
            awaiting_auth: false,
            state: State::Start,
            connect_base: ConnectBase::default(),
        }
    }

    /// Changes the payload limit (nats-server lowers it per account or user).
    pub fn set_max_payload(&mut self, n: u32) {
        self.max_payload = n;
    }

    /// Changes the control line limit.
    pub fn set_max_control_line(&mut self, n: u32) {
        self.max_control_line = n;
    }

    /// Whether `HPUB` is allowed. nats-server allows it only once the client's CONNECT said
    /// `"headers":true` and the server supports headers; an `HPUB` otherwise closes the
    /// connection silently ([`ProtoError::HeadersNotSupported`]).
    pub fn set_headers(&mut self, allowed: bool) {
        self.headers = allowed;
    }

    /// Whether the server still awaits the client's CONNECT to authenticate it. While true, any
    /// op not starting with `C` fails at its first byte with [`ProtoError::AuthViolation`]
    /// (Go: parser.go OP_START `authSet`). Set it while authentication is required and no
    /// CONNECT has passed it (and no `no_auth_user` applies); clear it once a CONNECT succeeds.
    pub fn set_awaiting_auth(&mut self, awaiting: bool) {
        self.awaiting_auth = awaiting;
    }

    /// The fast lane for the common case: when the parser is between ops and `buf` starts with
    /// a complete, plainly formatted `PUB`/`HPUB` (upper case, single spaces, CRLF, sizes within
    /// the limits, payload and trailing CRLF present, at most `max_total` bytes of payload),
    /// returns where its parts are without consuming anything.
    ///
    /// Anything else returns `None`, and [`Self::parse`] handles it — with exactly the result it
    /// would have had anyway, errors included. So the fast lane never changes behaviour; it only
    /// skips the byte-at-a-time state machine, the refcounted slices and the op enum.
    pub fn fast_pub(&self, buf: &[u8], max_total: usize) -> Option<FastPub> {
        if self.state != State::Start || self.awaiting_auth {
            return None;
        }
        let (hpub, args_at) = match buf {
            [b'P', b'U', b'B', b' ', ..] => (false, 4),
            [b'H', b'P', b'U', b'B', b' ', ..] if self.headers => (true, 5),
            _ => return None,
        };
        // One pass over the control line finds both the fields and its end: this runs once per
        // published message.
        let limit = (args_at + self.max_control_line as usize + 2).min(buf.len());
        // The line end first (memchr), then the fields: most bytes of a control line are
        // subject characters, which one comparison rules out as separators.
        let nl = args_at + memchr::memchr(b'\n', &buf[args_at..limit])?;
        if nl < args_at + 2 || buf[nl - 1] != b'\r' {
            return None;
        }
        let line_end = nl - 1;
        if line_end - args_at > self.max_control_line as usize {
            return None;
        }
        let mut fields = [0..0, 0..0, 0..0, 0..0];
        let mut n = 0;
        let mut start = args_at;
        for (i, &b) in buf[args_at..line_end].iter().enumerate() {
            if b > b' ' {
                continue;
            }
            let i = args_at + i;
            match b {
                b' ' => {
                    if i == start || n == fields.len() {
                        return None;
                    }
                    fields[n] = start..i;
                    n += 1;
                    start = i + 1;
                }
                b'\t' => return None,
                _ => {}
            }
        }
        if start >= line_end || n == fields.len() {
            return None;
        }
        fields[n] = start..line_end;
        n += 1;
        let size = |r: &Range<usize>| -> Option<usize> {
            let d = &buf[r.clone()];
            if d.is_empty() || d.len() > 9 {
                return None;
            }
            let mut v = 0usize;
            for &c in d {
                let digit = c.wrapping_sub(b'0');
                if digit > 9 {
                    return None;
                }
                v = v * 10 + usize::from(digit);
            }
            Some(v)
        };
        let (subject, reply, header_len, total) = match (hpub, n) {
            (false, 2) => (fields[0].clone(), None, 0, size(&fields[1])?),
            (false, 3) => (
                fields[0].clone(),
                Some(fields[1].clone()),
                0,
                size(&fields[2])?,
            ),
            (true, 3) => (
                fields[0].clone(),
                None,
                size(&fields[1])?,
                size(&fields[2])?,
            ),
            (true, 4) => (
                fields[0].clone(),
                Some(fields[1].clone()),
                size(&fields[2])?,
                size(&fields[3])?,
            ),
            _ => return None,
        };
        if total > self.max_payload as usize
            || total > max_total
            || (hpub && (header_len == 0 || header_len > total))
        {
            return None;
        }
        let body = nl + 1;
        let end = body + total;
        if buf.len() < end + 2 || buf[end] != b'\r' || buf[end + 1] != b'\n' {
            return None;
        }
        Some(FastPub {
            subject,
            reply,
            headers: hpub.then(|| body..body + header_len),
            payload: body + header_len..end,
            consumed: end + 2,
        })
    }

    /// Consumes at most one complete op from the front of `buf`.
    ///
    /// `Ok(None)`: more bytes are needed; the unconsumed part of the partial op stays in `buf`.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<ClientOp>, ProtoError> {
        let res = self.step(buf);
        if res.is_err() {
            self.state = State::Start;
        }
        res
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<ClientOp>, ProtoError> {
        loop {
            // Each arm puts back the state it leaves the parser in.
            match std::mem::replace(&mut self.state, State::Start) {
                State::Payload(p) => {
                    let total = p.total_len;
                    // Check the terminator as soon as its bytes arrive, like Go's MSG_END_R/N.
                    if buf.len() > total && buf[total] != b'\r' {
                        return Err(ProtoError::UnknownOp);
                    }
                    if buf.len() > total + 1 && buf[total + 1] != b'\n' {
                        return Err(ProtoError::UnknownOp);
                    }
                    if buf.len() < total + 2 {
                        self.state = State::Payload(p);
                        return Ok(None);
                    }
                    let mut payload = buf.split_to(total).freeze();
                    buf.advance(2);
                    let headers = (p.header_len > 0).then(|| payload.split_to(p.header_len));
                    return Ok(Some(ClientOp::Pub(PubMsg {
                        subject: p.subject,
                        reply: p.reply,
                        headers,
                        payload,
                    })));
                }
                State::Arg { op, scanned } => {
                    let Some(off) = buf[scanned..].iter().position(|&b| b == b'\n') else {
                        // Go: the split-buffer check at the end of parse(); a trailing '\r' is
                        // not counted, as on a complete line.
                        let len = arg_len(buf);
                        if len > self.max_control_line as usize {
                            return Err(self.control_line_error());
                        }
                        self.state = State::Arg {
                            op,
                            scanned: buf.len(),
                        };
                        return Ok(None);
                    };
                    if let Some(op) = self.control_line(op, buf, scanned + off)? {
                        return Ok(Some(op));
                    }
                    // PUB/HPUB: the state is now Payload; go round for the body.
                }
                State::Tail(op) => match buf.iter().position(|&b| b == b'\n') {
                    Some(nl) => {
                        buf.advance(nl + 1);
                        return Ok(Some(match op {
                            Op::Pong => ClientOp::Pong,
                            Op::Ok => ClientOp::Ok,
                            _ => ClientOp::Ping,
                        }));
                    }
                    None => {
                        // Nothing before the '\n' matters; drop it so it cannot pile up.
                        buf.clear();
                        self.state = State::Tail(op);
                        return Ok(None);
                    }
                },
                State::Space(op) => match buf.first() {
                    None => {
                        self.state = State::Space(op);
                        return Ok(None);
                    }
                    Some(b' ' | b'\t') => {
                        buf.advance(1);
                        self.state = State::Space(op);
                    }
                    // Go: the first argument byte is taken as is, even a '\r' or '\n'.
                    Some(_) => self.state = State::Arg { op, scanned: 1 },
                },
                state @ (State::Start | State::P | State::Name { .. } | State::NeedSpace(_)) => {
                    let Some(&b) = buf.first() else {
                        self.state = state;
                        return Ok(None);
                    };
                    if self.awaiting_auth && state == State::Start && !b.eq_ignore_ascii_case(&b'C')
                    {
                        return Err(ProtoError::AuthViolation);
                    }
                    self.state = name_step(&state, b)?;
                    buf.advance(1);
                }
            }
        }
    }

    fn control_line_error(&self) -> ProtoError {
        ProtoError::MaxControlLine {
            max: self.max_control_line,
        }
    }

    /// A complete control line: arguments in `buf[..nl]`, `\n` at `nl`.
    fn control_line(
        &mut self,
        op: Op,
        buf: &mut BytesMut,
        nl: usize,
    ) -> Result<Option<ClientOp>, ProtoError> {
        let end = arg_len(&buf[..nl]);
        if end > self.max_control_line as usize {
            return Err(self.control_line_error());
        }
        let arg = &buf[..end];
        let out = match op {
            Op::Pub | Op::Hpub => {
                let line = buf.split_to(nl + 1).freeze();
                self.state = State::Payload(self.pub_args(op, &line, end)?);
                return Ok(None);
            }
            Op::Sub => {
                let (n, f) = split_fields(arg, true);
                let field = |i: usize| Bytes::copy_from_slice(&arg[f[i].0..f[i].1]);
                // Go: parseSub copies the arguments so that a long-lived subscription does not
                // pin the read buffer; so do we.
                match n {
                    2 => ClientOp::Sub {
                        subject: field(0),
                        queue: None,
                        sid: field(1),
                    },
                    3 => ClientOp::Sub {
                        subject: field(0),
                        queue: Some(field(1)),
                        sid: field(2),
                    },
                    _ => return Err(ProtoError::SubArgs(lossy(arg))),
                }
            }
            Op::Unsub => {
                let (n, f) = split_fields(arg, true);
                let sid = Bytes::copy_from_slice(&arg[f[0].0..f[0].1]);
                match n {
                    1 => ClientOp::Unsub { sid, max: None },
                    2 => ClientOp::Unsub {
                        sid,
                        max: parse_size(&arg[f[1].0..f[1].1]).map(|n| n as u64),
                    },
                    _ => return Err(ProtoError::UnsubArgs(lossy(arg))),
                }
            }
            Op::Connect => {
                let info = decode_connect(arg, self.connect_base)?;
                self.connect_base = ConnectBase {
                    verbose: info.verbose,
                    pedantic: info.pedantic,
                    echo: info.echo,
                    headers: info.headers,
                };
                ClientOp::Connect(Box::new(info))
            }
            Op::Info => {
                check_info(arg)?;
                ClientOp::Info(Bytes::copy_from_slice(arg))
            }
            Op::Err => ClientOp::Err(Bytes::copy_from_slice(arg)),
            // PING, PONG and +OK lines end in State::Tail and never get here.
            Op::Ping => ClientOp::Ping,
            Op::Pong => ClientOp::Pong,
            Op::Ok => ClientOp::Ok,
        };
        buf.advance(nl + 1);
        self.state = State::Start;
        Ok(Some(out))
    }

    /// Go: processPub / processHeaderPub, in their order of checks.
    fn pub_args(&self, op: Op, line: &Bytes, end: usize) -> Result<PendingPub, ProtoError> {
        let arg = &line[..end];
        let (n, f) = split_fields(arg, false);
        let field = |i: usize| line.slice(f[i].0..f[i].1);
        let size_of = |i: usize| parse_size(&arg[f[i].0..f[i].1]);
        let (subject, reply, header_len, total_len) = if op == Op::Pub {
            let (reply, size) = match n {
                2 => (None, size_of(1)),
                3 => (Some(field(1)), size_of(2)),
                _ => return Err(ProtoError::PubArgs(lossy(arg))),
            };
            let size = size.ok_or_else(|| ProtoError::PubSize(lossy(arg)))?;
            (field(0), reply, 0, size)
        } else {
            if !self.headers {
                return Err(ProtoError::HeadersNotSupported);
            }
            let (reply, hdr, total) = match n {
                3 => (None, size_of(1), size_of(2)),
                4 => (Some(field(1)), size_of(2), size_of(3)),
                _ => return Err(ProtoError::HpubArgs(lossy(arg))),
            };
            let hdr = hdr.ok_or_else(|| ProtoError::HpubHeaderSize(lossy(arg)))?;
            let total = total.ok_or_else(|| ProtoError::HpubTotalSize(lossy(arg)))?;
            if hdr > total {
                return Err(ProtoError::HpubHeaderTooLarge(lossy(arg)));
            }
            (field(0), reply, hdr, total)
        };
        if total_len > self.max_payload as usize {
            return Err(ProtoError::MaxPayload {
                size: total_len,
                max: self.max_payload,
            });
        }
        Ok(PendingPub {
            subject,
            reply,
            header_len,
            total_len,
        })
    }
}

/// One byte of an op name (or of the separator after it).
fn name_step(state: &State, b: u8) -> Result<State, ProtoError> {
    let up = b.to_ascii_uppercase();
    let next = match (state, up) {
        (State::Start, b'P') => State::P,
        (State::Start, b'H') => name_state(Op::Hpub, 1),
        (State::Start, b'S') => name_state(Op::Sub, 1),
        (State::Start, b'U') => name_state(Op::Unsub, 1),
        (State::Start, b'C') => name_state(Op::Connect, 1),
        (State::Start, b'I') => name_state(Op::Info, 1),
        (State::Start, b'+') => name_state(Op::Ok, 1),
        (State::Start, b'-') => name_state(Op::Err, 1),
        (State::P, b'U') => name_state(Op::Pub, 2),
        (State::P, b'I') => name_state(Op::Ping, 2),
        (State::P, b'O') => name_state(Op::Pong, 2),
        (State::Name { op, matched }, _) if op.name().get(*matched) == Some(&up) => {
            name_state(*op, matched + 1)
        }
        (State::NeedSpace(op), b' ' | b'\t') => State::Space(*op),
        // Go: anything else is parseErr. MSG/HMSG/RS+/LS+/A+ are not client ops.
        _ => return Err(ProtoError::UnknownOp),
    };
    Ok(next)
}

fn name_state(op: Op, matched: usize) -> State {
    if matched == op.name().len() {
        op.after_name()
    } else {
        State::Name { op, matched }
    }
}

/// Length of the arguments in `line` (everything before the `\n`): one trailing `\r` does not
/// count, unless it is the very first argument byte (Go takes that byte verbatim).
fn arg_len(line: &[u8]) -> usize {
    match line {
        [_, .., b'\r'] => line.len() - 1,
        _ => line.len(),
    }
}

/// The most fields any op accepts, plus one to tell "too many".
const MAX_FIELDS: usize = 5;

/// Splits `arg` on runs of spaces and tabs (and of `\r`/`\n` too when `crlf`, like Go's
/// splitArg used by SUB/UNSUB; PUB/HPUB split on spaces and tabs only). Returns the number of
/// fields, saturating at [`MAX_FIELDS`], and the first fields' ranges.
fn split_fields(arg: &[u8], crlf: bool) -> (usize, [(usize, usize); MAX_FIELDS]) {
    let mut out = [(0, 0); MAX_FIELDS];
    let mut n = 0;
    let mut start = None;
    let is_sep = |b: u8| b == b' ' || b == b'\t' || (crlf && (b == b'\r' || b == b'\n'));
    for (i, &b) in arg.iter().enumerate() {
        match (is_sep(b), start) {
            (true, Some(s)) => {
                if n < MAX_FIELDS {
                    out[n] = (s, i);
                }
                n += 1;
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        if n < MAX_FIELDS {
            out[n] = (s, arg.len());
        }
        n += 1;
    }
    (n.min(MAX_FIELDS), out)
}

/// Go: server/util.go parseSize — 1 to 9 ASCII digits, nothing else.
fn parse_size(d: &[u8]) -> Option<usize> {
    if d.is_empty() || d.len() > 9 {
        return None;
    }
    d.iter().try_fold(0usize, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + usize::from(c - b'0'))
    })
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Decodes a CONNECT body the way Go's `json.Unmarshal` into nats-server's `ClientOpts` does.
///
/// Go starts from `defaultOpts` (verbose, pedantic and echo all true) for the first CONNECT,
/// and from what the earlier ones set for a later one (`base`), and overwrites only the fields
/// present; `null` leaves a field alone and a top-level `null` is accepted as "nothing"; keys
/// match case-insensitively.
fn decode_connect(arg: &[u8], base: ConnectBase) -> Result<ConnectInfo, ProtoError> {
    let defaults = [
        ("verbose", base.verbose.into()),
        ("pedantic", base.pedantic.into()),
        ("echo", base.echo.into()),
        ("headers", base.headers.into()),
    ];
    gojson::from_slice_onto(arg, &defaults, gojson::Unknown::Ignore)
        .map_err(|e| ProtoError::ConnectJson(e.to_string()))
}

/// Go decodes a client's INFO into its `Info` struct and drops it: only a JSON object or `null`
/// gets through. (Field type mismatches, which Go also rejects, are not checked.)
fn check_info(arg: &[u8]) -> Result<(), ProtoError> {
    let value: serde_json::Value =
        serde_json::from_slice(arg).map_err(|e| ProtoError::InfoJson(e.to_string()))?;
    match value {
        serde_json::Value::Object(_) | serde_json::Value::Null => Ok(()),
        other => Err(ProtoError::InfoJson(format!(
            "cannot decode {} into INFO",
            json_kind(&other)
        ))),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn put_decimal(out: &mut BytesMut, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

fn put_msg_prefix(out: &mut BytesMut, op: &[u8], subject: &[u8], sid: &[u8], reply: Option<&[u8]>) {
    out.put_slice(op);
    out.put_slice(subject);
    out.put_u8(b' ');
    out.put_slice(sid);
    out.put_u8(b' ');
    if let Some(reply) = reply {
        out.put_slice(reply);
        out.put_u8(b' ');
    }
}

/// Writes `MSG <subject> <sid> [reply] <len>\r\n`.
///
/// nats-server echoes the size digits exactly as the publisher wrote them (`PUB foo 005` gives
/// `MSG foo 1 005`); this writes the plain decimal.
pub fn encode_msg_header(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    payload_len: usize,
) {
    put_msg_prefix(out, b"MSG ", subject, sid, reply);
    put_decimal(out, payload_len);
    out.put_slice(CRLF);
}

/// Writes `HMSG <subject> <sid> [reply] <header_len> <total_len>\r\n`.
pub fn encode_hmsg_header(
    out: &mut BytesMut,
    subject: &[u8],
    sid: &[u8],
    reply: Option<&[u8]>,
    header_len: usize,
    total_len: usize,
) {
    put_msg_prefix(out, b"HMSG ", subject, sid, reply);
    put_decimal(out, header_len);
    out.put_u8(b' ');
    put_decimal(out, total_len);
    out.put_slice(CRLF);
}

/// Writes the whole no-responders status message nats-server sends to a requester:
/// `HMSG <reply> <sid> 16 16\r\nNATS/1.0 503\r\n\r\n\r\n` (Go: processInboundClientMsg).
pub fn encode_no_responders(out: &mut BytesMut, reply: &[u8], sid: &[u8]) {
    let block = super::headers::NO_RESPONDERS;
    encode_hmsg_header(out, reply, sid, None, block.len(), block.len());
    out.put_slice(block);
    out.put_slice(CRLF);
}

/// Writes `INFO {json} \r\n`. nats-server puts a space before the CRLF (Go joins the
/// three parts `INFO`, json, CRLF with spaces), and so do we.
pub fn encode_info(out: &mut BytesMut, info: &ServerInfo) {
    out.put_slice(b"INFO ");
    match serde_json::to_vec(info) {
        Ok(json) => out.put_slice(&json),
        Err(e) => {
            // Strings and numbers only: serialization cannot fail.
            tracing::error!(error = %e, "cannot serialize INFO");
            out.put_slice(b"{}");
        }
    }
    out.put_slice(b" \r\n");
}

/// Writes `-ERR '<text>'\r\n`.
pub fn encode_err(out: &mut BytesMut, text: &str) {
    out.put_slice(b"-ERR '");
    out.put_slice(text.as_bytes());
    out.put_slice(b"'\r\n");
}

#[cfg(test)]
mod tests;
