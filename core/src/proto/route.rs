//! The route protocol (server ↔ server inside a cluster): parser and encoders.
//!
//! Behaviour follows nats-server 2.9.10 (`server/parser.go` with a `ROUTER` client,
//! `server/route.go` processRoutedMsgArgs / processRoutedHeaderMsgArgs /
//! processRoutedOriginClusterMsgArgs / processRemoteSub / processRemoteUnsub), checked against
//! bytes captured from the real binary:
//!
//! ```text
//! RS+ <account> <subject>[ <queue> <weight>]            interest (weight: members of the group)
//! RS- <account> <subject>[ <queue>]                     no more interest
//! LS+ <origin> <account> <subject>[ <queue> <weight>]   interest from a leaf node of cluster <origin>
//! LS- <account> <subject>[ <queue>]                     (nats-server writes "LS-  acc subj", two spaces)
//! RMSG <account> <subject> [<reply>] <size>
//! RMSG <account> <subject> + <reply> <queue>... <size>   queue groups chosen on the receiver
//! RMSG <account> <subject> | <queue>... <size>           the same without a reply
//! HMSG <account> <subject> [<reply> | + <reply> <queue>... | | <queue>...] <hdr size> <total size>
//! LMSG <origin> <account> <subject> [as HMSG] <hdr size> <total size>
//! A+ <account> / A- <account>                            gateway-only, ignored on routes
//! INFO {json}  CONNECT {json}  PING  PONG  +OK  -ERR <text>
//! ```
//!
//! Lexical rules are the client parser's: op names are case-insensitive; ops with arguments need
//! a space or tab after the name (`INFO` and `CONNECT` do not); arguments split on runs of
//! spaces, tabs, `\r` and `\n`; `PING`/`PONG`/`+OK` ignore the rest of their line; a payload must
//! be followed by exactly `\r\n`.
//!
//! Differences on purpose: nats-server enforces neither `max_control_line` nor `max_payload` on
//! routes (a 70 000-byte `RS+` line goes through); we bound both, with a route default of
//! [`DEFAULT_ROUTE_MAX_CONTROL_LINE`]. `PUB`/`SUB`/`UNSUB` on a route (which nats-server
//! tolerates but no server sends) are unknown ops here.

mod encode;
mod json;

use bytes::{Buf, Bytes, BytesMut};

pub use encode::*;
pub use json::{RouteConnect, RouteInfo, RoutePermission};

/// Our bound on a route control line: 16 times the client default, so that any sane subject,
/// queue list or INFO fits (nats-server 2.9.10 has no bound at all on routes).
pub const DEFAULT_ROUTE_MAX_CONTROL_LINE: u32 = 64 * 1024;

/// One op received from a route peer.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteOp {
    /// `INFO {json}`, decoded.
    Info(Box<RouteInfo>),
    /// `CONNECT {json}`, decoded.
    Connect(Box<RouteConnect>),
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK`.
    Ok,
    /// `-ERR <text>`: the raw text, quotes included.
    Err(Bytes),
    /// `RS+` or `LS+`.
    Sub(RemoteSub),
    /// `RS-` or `LS-`.
    Unsub(RemoteUnsub),
    /// `RMSG`, `HMSG` or `LMSG` with its payload.
    Msg(RoutedMsg),
    /// `A+ <account>`: gateway interest-mode op, a no-op on routes.
    AccountSub(Bytes),
    /// `A- <account>`: likewise.
    AccountUnsub(Bytes),
}

/// Interest of the peer's local subscribers (`RS+`/`LS+`).
///
/// nats-server aggregates: one `RS+` per account/subject for plain subscriptions (sent on the
/// first local subscriber, `RS-` on the last), and for a queue group one `RS+` per change of its
/// member count, carrying the new count as `weight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSub {
    /// `LS+` only: the cluster the interest originates from (a leaf node's cluster).
    pub origin: Option<Bytes>,
    /// Account name.
    pub account: Bytes,
    /// Subject, possibly with wildcards (not validated).
    pub subject: Bytes,
    /// Queue group name.
    pub queue: Option<Bytes>,
    /// Members of the queue group on the peer; 0 without a queue. A weight that is not 1–9
    /// digits reads as 0 (nats-server stores -1, which its sublist expands to no member either).
    pub weight: u32,
}

/// End of interest (`RS-`/`LS-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUnsub {
    /// Account name.
    pub account: Bytes,
    /// Subject.
    pub subject: Bytes,
    /// Queue group name.
    pub queue: Option<Bytes>,
    /// Received as `LS-` rather than `RS-` (same meaning).
    pub leaf: bool,
}

/// A message forwarded by the peer (`RMSG`/`HMSG`/`LMSG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedMsg {
    /// `LMSG` only: the leaf-node cluster the message comes from.
    pub origin: Option<Bytes>,
    /// Account name.
    pub account: Bytes,
    /// Subject.
    pub subject: Bytes,
    /// Reply subject.
    pub reply: Option<Bytes>,
    /// Queue groups the sender chose a member of ours for. Empty: deliver to plain
    /// subscriptions only (nats-server skips queue groups for a routed message without a list).
    pub queues: Vec<Bytes>,
    /// The header block (`NATS/1.0…\r\n\r\n`); `None` for `RMSG` and a header size of 0.
    pub headers: Option<Bytes>,
    /// The body, without headers and without the trailing CRLF. Shares the read buffer.
    pub payload: Bytes,
}

impl RoutedMsg {
    /// Size of headers plus body.
    pub fn total_len(&self) -> usize {
        self.headers.as_ref().map_or(0, Bytes::len) + self.payload.len()
    }
}

/// A protocol violation by a route peer. nats-server closes the route after every one of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteProtoError {
    /// Unknown op name, missing separator after an op name, or a payload not followed by CRLF.
    #[error("unknown protocol operation")]
    UnknownOp,
    /// A control line longer than the limit (our bound; nats-server has none on routes).
    #[error("maximum control line exceeded (max_control_line {max})")]
    MaxControlLine {
        /// The limit.
        max: u32,
    },
    /// A message larger than the limit (our bound; nats-server has none on routes).
    #[error("maximum payload exceeded: {size} vs {max}")]
    MaxPayload {
        /// The declared total size.
        size: usize,
        /// The limit.
        max: u32,
    },
    /// Bad `RMSG`/`HMSG`/`LMSG` arguments; the text is nats-server's log line.
    #[error("{0}")]
    MsgArgs(String),
    /// Bad `RS+`/`LS+` arguments.
    #[error("processRemoteSub Parse Error: '{0}'")]
    SubArgs(String),
    /// Bad `RS-`/`LS-` arguments.
    #[error("processRemoteUnsub parse error: '{0}'")]
    UnsubArgs(String),
    /// `CONNECT` whose JSON does not decode.
    #[error("CONNECT: {0}")]
    ConnectJson(String),
    /// `INFO` whose JSON does not decode.
    #[error("INFO: {0}")]
    InfoJson(String),
}

impl RouteProtoError {
    /// Whether nats-server says `-ERR '<err_text>'` before closing. Argument and JSON errors
    /// close silently (readLoop logs them).
    pub fn sends_err(&self) -> bool {
        matches!(
            self,
            Self::UnknownOp | Self::MaxControlLine { .. } | Self::MaxPayload { .. }
        )
    }

    /// The text inside `-ERR '…'` (or the log line, for silent errors).
    pub fn err_text(&self) -> String {
        match self {
            // Go: server/parser.go parseErr
            Self::UnknownOp => "Unknown Protocol Operation".to_owned(),
            Self::MaxControlLine { .. } => "Maximum Control Line Exceeded".to_owned(),
            // Go: server/client.go maxPayloadViolation
            Self::MaxPayload { .. } => "Maximum Payload Violation".to_owned(),
            other => other.to_string(),
        }
    }
}

/// The ops, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Info,
    Connect,
    Ping,
    Pong,
    Ok,
    Err,
    RsSub,
    RsUnsub,
    LsSub,
    LsUnsub,
    Rmsg,
    Hmsg,
    Lmsg,
    ASub,
    AUnsub,
    /// `Au`: nats-server takes a lower-case `u` after `A` as `A-`.
    AUnsubU,
}

/// Every op name with how its arguments start. Upper case; matched case-insensitively, except
/// the `A`-ops, whose second byte Go compares exactly.
const OPS: [(&[u8], Op); 16] = [
    (b"INFO", Op::Info),
    (b"CONNECT", Op::Connect),
    (b"PING", Op::Ping),
    (b"PONG", Op::Pong),
    (b"+OK", Op::Ok),
    (b"-ERR", Op::Err),
    (b"RS+", Op::RsSub),
    (b"RS-", Op::RsUnsub),
    (b"LS+", Op::LsSub),
    (b"LS-", Op::LsUnsub),
    (b"RMSG", Op::Rmsg),
    (b"HMSG", Op::Hmsg),
    (b"LMSG", Op::Lmsg),
    (b"A+", Op::ASub),
    (b"A-", Op::AUnsub),
    (b"Au", Op::AUnsubU),
];

/// How an op continues after its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// At least one space or tab, then arguments.
    NeedSpace,
    /// Optional spaces and tabs, then arguments (INFO, CONNECT).
    Space,
    /// Ignore everything up to `\n` (PING, PONG, +OK).
    Tail,
}

impl Op {
    fn after(self) -> After {
        match self {
            Self::Info | Self::Connect => After::Space,
            Self::Ping | Self::Pong | Self::Ok => After::Tail,
            _ => After::NeedSpace,
        }
    }
}

/// Parser state between calls.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// At the start of an op (nothing of it consumed). `scanned` bytes from `args` hold no `\n`.
    Line { scanned: usize },
    /// Skipping the rest of a PING/PONG/+OK line.
    Tail(Op),
    /// A message control line is consumed; its payload is awaited.
    Payload(PendingMsg),
}

/// A field of a message control line: its byte range from the start of the line.
type Span = (usize, usize);

/// A message whose control line is complete. The line stays at the front of the read buffer
/// until the payload is there too, so that the whole message is cut out of the buffer once and
/// every field is a slice of that one `Bytes` (no copy, one reference count per field).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingMsg {
    /// Length of the control line with its `\n`: where the payload starts.
    line_len: usize,
    origin: Option<Span>,
    /// `Err`: the pinned account of this route (the line names none).
    account: Result<Span, Bytes>,
    subject: Span,
    reply: Option<Span>,
    /// The queue names, blank-separated, and how many there are.
    queues: Option<(Span, usize)>,
    header_len: usize,
    total_len: usize,
}

impl PendingMsg {
    /// Bytes of the whole message: control line, payload and its CRLF.
    fn frame_len(&self) -> usize {
        self.line_len + self.total_len + 2
    }

    /// Cuts the message out of `frame` (exactly [`frame_len`](Self::frame_len) bytes).
    fn into_msg(self, mut frame: Bytes) -> RoutedMsg {
        let field = |(s, e): Span| frame.slice(s..e);
        let origin = self.origin.map(field);
        let account = match self.account {
            Ok(span) => field(span),
            Err(pinned) => pinned,
        };
        let subject = field(self.subject);
        let reply = self.reply.map(field);
        let queues = match self.queues {
            None => Vec::new(),
            Some(((s, e), n)) => {
                let mut queues = Vec::with_capacity(n);
                queues.extend(fields(&frame[s..e]).map(|(a, b)| frame.slice(s + a..s + b)));
                queues
            }
        };
        // The payload keeps the frame's own reference: no count taken for it.
        frame.truncate(self.line_len + self.total_len);
        frame.advance(self.line_len);
        let headers = (self.header_len > 0).then(|| frame.split_to(self.header_len));
        RoutedMsg {
            origin,
            account,
            subject,
            reply,
            queues,
            headers,
            payload: frame,
        }
    }
}

/// Incremental parser of what a route peer sends.
///
/// Same contract as the client parser: [`parse`](Self::parse) takes at most one complete op from
/// the front of the read buffer and leaves a partial one there (it may consume a message's
/// control line while the payload is missing, and remember it). Keep feeding the same parser the
/// same buffer. After an `Err` the route is to be closed; the parser restarts clean if reused.
#[derive(Debug, Clone)]
pub struct RouteParser {
    max_control_line: u32,
    max_payload: u32,
    state: State,
    /// The account of a pinned route (nats-server 2.10): its ops leave the account out.
    account: Option<Bytes>,
    /// A leaf-node link ([`crate::proto::leaf`]): `LS+`/`LS-` carry no origin and `LMSG`
    /// is `RMSG`'s shape (no origin, no header size); the bound account is `account`.
    leaf: bool,
}

impl RouteParser {
    /// A parser with the given limits.
    pub fn new(max_control_line: u32, max_payload: u32) -> Self {
        Self {
            max_control_line,
            max_payload,
            state: State::Line { scanned: 0 },
            account: None,
            leaf: false,
        }
    }

    /// A parser for a leaf-node link bound to `account` (see [`crate::proto::leaf`]).
    pub fn new_leaf(max_control_line: u32, max_payload: u32, account: Bytes) -> Self {
        Self {
            leaf: true,
            account: Some(account),
            ..Self::new(max_control_line, max_payload)
        }
    }

    /// From now on the route is dedicated to `account`: `RS+`, `RS-`, `RMSG` and `HMSG` carry
    /// no account name and are read as if they named this one.
    pub fn set_account(&mut self, account: Bytes) {
        self.account = Some(account);
    }

    /// Consumes at most one complete op from the front of `buf`.
    ///
    /// `Ok(None)`: more bytes are needed.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<RouteOp>, RouteProtoError> {
        let res = self.step(buf);
        if res.is_err() {
            self.state = State::Line { scanned: 0 };
        }
        res
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<RouteOp>, RouteProtoError> {
        // The state is matched in place: moving it out on every call would copy the whole
        // enum, pending message and all, for each op.
        loop {
            match self.state {
                State::Payload(_) => {
                    let State::Payload(p) =
                        std::mem::replace(&mut self.state, State::Line { scanned: 0 })
                    else {
                        unreachable!("matched above")
                    };
                    return self.payload(p, buf);
                }
                State::Tail(op) => {
                    self.state = State::Line { scanned: 0 };
                    if let Some(nl) = memchr::memchr(b'\n', buf) {
                        buf.advance(nl + 1);
                        return Ok(Some(match op {
                            Op::Pong => RouteOp::Pong,
                            Op::Ok => RouteOp::Ok,
                            _ => RouteOp::Ping,
                        }));
                    }
                    // Nothing before the '\n' matters; drop it so it cannot pile up.
                    buf.clear();
                    self.state = State::Tail(op);
                    return Ok(None);
                }
                State::Line { scanned } => {
                    self.state = State::Line { scanned: 0 };
                    // Routed messages are nearly all a route carries: try their names first.
                    let named = match msg_op_name(buf) {
                        Some(found) => Some(found),
                        None => op_name(buf)?,
                    };
                    let Some((op, args)) = named else {
                        // A name (or the blanks after it) is incomplete: bound the blanks.
                        if buf.len() > self.max_control_line as usize + 16 {
                            return Err(self.control_line_error());
                        }
                        return Ok(None);
                    };
                    if op.after() == After::Tail {
                        buf.advance(args);
                        self.state = State::Tail(op);
                        continue;
                    }
                    // Go takes the first argument byte verbatim, even a '\n': search after it.
                    let from = (args + 1).max(scanned);
                    let Some(off) = buf.get(from..).and_then(|rest| memchr::memchr(b'\n', rest))
                    else {
                        // A trailing '\r' does not count, as on a complete line: else a line
                        // exactly at the limit would pass whole and fail when cut before its '\n'.
                        if arg_len(&buf[args..]) > self.max_control_line as usize {
                            return Err(self.control_line_error());
                        }
                        self.state = State::Line {
                            scanned: buf.len().max(args + 1),
                        };
                        return Ok(None);
                    };
                    return self.control_line(op, buf, args, from + off);
                }
            }
        }
    }

    /// The payload of a message whose control line is complete: the message, if all of it is
    /// in `buf`, else the parser waits in `State::Payload`.
    fn payload(
        &mut self,
        p: PendingMsg,
        buf: &mut BytesMut,
    ) -> Result<Option<RouteOp>, RouteProtoError> {
        let end = p.line_len + p.total_len;
        // Check the terminator as soon as it arrives, like Go's MSG_END_R/N.
        if buf.len() > end && buf[end] != b'\r' {
            return Err(RouteProtoError::UnknownOp);
        }
        if buf.len() > end + 1 && buf[end + 1] != b'\n' {
            return Err(RouteProtoError::UnknownOp);
        }
        if buf.len() < end + 2 {
            self.state = State::Payload(p);
            return Ok(None);
        }
        let frame = buf.split_to(p.frame_len()).freeze();
        Ok(Some(RouteOp::Msg(p.into_msg(frame))))
    }

    fn control_line_error(&self) -> RouteProtoError {
        RouteProtoError::MaxControlLine {
            max: self.max_control_line,
        }
    }

    /// A complete control line: arguments in `buf[args..nl]`, `\n` at `nl`.
    fn control_line(
        &mut self,
        op: Op,
        buf: &mut BytesMut,
        args: usize,
        nl: usize,
    ) -> Result<Option<RouteOp>, RouteProtoError> {
        let end = args + arg_len(&buf[args..nl]);
        if end - args > self.max_control_line as usize {
            return Err(self.control_line_error());
        }
        let out = match op {
            Op::Rmsg | Op::Hmsg | Op::Lmsg => {
                // The line stays in `buf` until the payload is complete (see PendingMsg).
                let pending = self.msg_args(op, &buf[..end], args, nl + 1)?;
                return self.payload(pending, buf);
            }
            Op::RsSub | Op::LsSub => RouteOp::Sub(sub_args(
                &buf[args..end],
                op == Op::LsSub && !self.leaf,
                self.account.as_ref(),
            )?),
            Op::RsUnsub | Op::LsUnsub => RouteOp::Unsub(unsub_args(
                &buf[args..end],
                op == Op::LsUnsub,
                self.account.as_ref(),
            )?),
            Op::Connect => RouteOp::Connect(Box::new(
                json::decode_go_json(&buf[args..end]).map_err(RouteProtoError::ConnectJson)?,
            )),
            Op::Info => RouteOp::Info(Box::new(
                json::decode_go_json(&buf[args..end]).map_err(RouteProtoError::InfoJson)?,
            )),
            Op::Err => RouteOp::Err(Bytes::copy_from_slice(&buf[args..end])),
            Op::ASub => RouteOp::AccountSub(Bytes::copy_from_slice(&buf[args..end])),
            Op::AUnsub | Op::AUnsubU => {
                RouteOp::AccountUnsub(Bytes::copy_from_slice(&buf[args..end]))
            }
            // PING/PONG/+OK go through State::Tail.
            Op::Ping => RouteOp::Ping,
            Op::Pong => RouteOp::Pong,
            Op::Ok => RouteOp::Ok,
        };
        buf.advance(nl + 1);
        Ok(Some(out))
    }

    /// Go: processRoutedMsgArgs / processRoutedHeaderMsgArgs / processRoutedOriginClusterMsgArgs,
    /// with their order of checks and messages. The arguments are `line[args..]`; spans in the
    /// result count from the start of `line`.
    ///
    /// One pass over the arguments: the first six fields (origin, account, subject, reply
    /// indicator, reply, first queue) and the last three (the last queue name and the sizes) are kept, the
    /// queue names in between are found again only when the message is cut out.
    fn msg_args(
        &self,
        op: Op,
        line: &[u8],
        args: usize,
        line_len: usize,
    ) -> Result<PendingMsg, RouteProtoError> {
        let (name, lead, sizes) = match op {
            // Go: server/leafnode.go processLeafMsgArgs / processLeafHeaderMsgArgs.
            Op::Lmsg if self.leaf => ("processLeafMsgArgs", 0, 1),
            Op::Hmsg if self.leaf => ("processLeafHeaderMsgArgs", 0, 2),
            Op::Rmsg => ("processRoutedMsgArgs", 0, 1),
            Op::Hmsg => ("processRoutedHeaderMsgArgs", 0, 2),
            _ => ("processRoutedOriginClusterMsgArgs", 1, 2),
        };
        let arg = &line[args..];
        let err = |what: &str, shown: String| {
            RouteProtoError::MsgArgs(format!("{name} {what}: '{shown}'"))
        };
        let mut head = [(0, 0); 6];
        let mut tail = [(0, 0); 3];
        let mut n = 0;
        for (s, e) in fields(arg) {
            let span = (args + s, args + e);
            if let Some(slot) = head.get_mut(n) {
                *slot = span;
            }
            tail[n % 3] = span;
            n += 1;
        }
        // The i-th field from the end, 1-based (i <= 3).
        let last = |i: usize| tail[(n - i) % 3];
        let text = |(s, e): Span| &line[s..e];
        // Account and subject (plus origin for LMSG), then the size fields.
        let named = usize::from(self.account.is_none());
        let fixed = lead + 1 + named + sizes;
        if n < fixed {
            return Err(err("Parse Error", go_fields(arg)));
        }
        let origin = (lead == 1).then_some(head[0]);
        let account = match &self.account {
            Some(a) => Err(a.clone()),
            None => Ok(head[lead]),
        };
        let subject = head[lead + named];
        let after = lead + named + 1;
        let mut reply = None;
        let mut queues = None;
        match n - fixed {
            0 => {}
            1 => reply = Some(head[after]),
            extra => {
                let indicator = head[after];
                let (first, count) = match text(indicator) {
                    b"+" => {
                        reply = Some(head[after + 1]);
                        (after + 2, extra - 2)
                    }
                    b"|" => (after + 1, extra - 1),
                    other => {
                        return Err(err(
                            "Bad or Missing Reply Indicator",
                            String::from_utf8_lossy(other).into_owned(),
                        ))
                    }
                };
                if count > 0 {
                    // The first queue name is a head field (index <= 5); the last one comes
                    // right before the sizes.
                    let start = head[first].0;
                    let end = last(sizes + 1).1;
                    queues = Some(((start, end), count));
                }
            }
        }
        let (header_len, total_len) = if sizes == 2 {
            let hdr = parse_size(text(last(2)));
            let total = parse_size(text(last(1)));
            let hdr = hdr.ok_or_else(|| err("Bad or Missing Header Size", lossy(arg)))?;
            let total = total.ok_or_else(|| err("Bad or Missing Size", go_fields(arg)))?;
            if hdr > total {
                return Err(err("Header Size larger then TotalSize", lossy(arg)));
            }
            (hdr, total)
        } else {
            let total = parse_size(text(last(1)));
            (
                0,
                total.ok_or_else(|| err("Bad or Missing Size", go_fields(arg)))?,
            )
        };
        if total_len > self.max_payload as usize {
            return Err(RouteProtoError::MaxPayload {
                size: total_len,
                max: self.max_payload,
            });
        }
        Ok(PendingMsg {
            line_len,
            origin,
            account,
            subject,
            reply,
            queues,
            header_len,
            total_len,
        })
    }
}

/// `RMSG`, `HMSG` or `LMSG` and the blanks after it, without going through the table of every
/// op name. `None`: not one of them, or not complete yet ([`op_name`] decides which).
fn msg_op_name(buf: &[u8]) -> Option<(Op, usize)> {
    let [first, b'M' | b'm', b'S' | b's', b'G' | b'g', b' ' | b'\t', rest @ ..] = buf else {
        return None;
    };
    let op = match first {
        b'R' | b'r' => Op::Rmsg,
        b'H' | b'h' => Op::Hmsg,
        b'L' | b'l' => Op::Lmsg,
        _ => return None,
    };
    let blanks = rest.iter().position(|&b| b != b' ' && b != b'\t')?;
    Some((op, 5 + blanks))
}

/// Matches the op name at the front of `buf` and the blanks after it. `Ok(None)`: incomplete;
/// `Ok(Some((op, args)))`: the arguments (or the ignored tail) start at `args`.
fn op_name(buf: &[u8]) -> Result<Option<(Op, usize)>, RouteProtoError> {
    let mut candidate = None;
    let mut partial = false;
    for (name, op) in OPS {
        let n = name.len().min(buf.len());
        let exact_second = matches!(op, Op::ASub | Op::AUnsub | Op::AUnsubU);
        let same = buf[..n].iter().zip(name).enumerate().all(|(i, (&b, &c))| {
            if exact_second && i == 1 {
                b == c
            } else {
                b.eq_ignore_ascii_case(&c)
            }
        });
        if !same {
            continue;
        }
        if n == name.len() {
            candidate = Some((op, n));
            break;
        }
        partial = true;
    }
    let Some((op, mut i)) = candidate else {
        return if partial {
            Ok(None)
        } else {
            Err(RouteProtoError::UnknownOp)
        };
    };
    match op.after() {
        After::Tail => return Ok(Some((op, i))),
        After::NeedSpace => match buf.get(i) {
            None => return Ok(None),
            Some(b' ' | b'\t') => i += 1,
            Some(_) => return Err(RouteProtoError::UnknownOp),
        },
        After::Space => {}
    }
    while let Some(&b) = buf.get(i) {
        if b != b' ' && b != b'\t' {
            return Ok(Some((op, i)));
        }
        i += 1;
    }
    Ok(None)
}

/// Go: processRemoteSub — `[origin] account subject [queue weight]`. The arguments are copied so
/// that a long-lived interest entry does not pin the read buffer.
fn sub_args(arg: &[u8], leaf: bool, pinned: Option<&Bytes>) -> Result<RemoteSub, RouteProtoError> {
    // Origin (leaf), account (unless pinned), subject.
    let base = usize::from(leaf) + usize::from(pinned.is_none()) + 1;
    let n = fields(arg).count();
    if n != base && n != base + 2 {
        return Err(RouteProtoError::SubArgs(lossy(arg)));
    }
    let mut it = fields(arg).map(|(s, e)| Bytes::copy_from_slice(&arg[s..e]));
    let mut next = || it.next().unwrap_or_default();
    let origin = leaf.then(&mut next);
    let account = match pinned {
        Some(a) => a.clone(),
        None => next(),
    };
    let subject = next();
    let (queue, weight) = if n == base + 2 {
        let queue = next();
        let weight = parse_size(&next()).map_or(0, |w| w as u32);
        (Some(queue), weight)
    } else {
        (None, 0)
    };
    Ok(RemoteSub {
        origin,
        account,
        subject,
        queue,
        weight,
    })
}

/// Go: parseUnsubProto — `account subject [queue]`, for `RS-` and `LS-` alike.
fn unsub_args(
    arg: &[u8],
    leaf: bool,
    pinned: Option<&Bytes>,
) -> Result<RemoteUnsub, RouteProtoError> {
    let base = usize::from(pinned.is_none()) + 1;
    let n = fields(arg).count();
    if n != base && n != base + 1 {
        return Err(RouteProtoError::UnsubArgs(lossy(arg)));
    }
    let mut it = fields(arg).map(|(s, e)| Bytes::copy_from_slice(&arg[s..e]));
    let mut next = || it.next().unwrap_or_default();
    let account = match pinned {
        Some(a) => a.clone(),
        None => next(),
    };
    let subject = next();
    let queue = (n == base + 1).then(next);
    Ok(RemoteUnsub {
        account,
        subject,
        queue,
        leaf,
    })
}

/// Ranges of the fields of `arg`, split on runs of spaces, tabs, `\r` and `\n` (Go's splitArg
/// and the unrolled loops of the routed-message parsers).
fn fields(arg: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let is_sep = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < arg.len() && is_sep(arg[i]) {
            i += 1;
        }
        if i == arg.len() {
            return None;
        }
        let start = i;
        while i < arg.len() && !is_sep(arg[i]) {
            i += 1;
        }
        Some((start, i))
    })
}

/// Length of the arguments in `line` (everything before the `\n`): one trailing `\r` does not
/// count, unless it is the very first argument byte (Go takes that byte verbatim).
fn arg_len(line: &[u8]) -> usize {
    match line {
        [_, .., b'\r'] => line.len() - 1,
        _ => line.len(),
    }
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

/// Go prints the split arguments with `%s` of a `[][]byte`: `[a b c]`.
fn go_fields(arg: &[u8]) -> String {
    let parts: Vec<String> = fields(arg).map(|(s, e)| lossy(&arg[s..e])).collect();
    format!("[{}]", parts.join(" "))
}

#[cfg(test)]
mod tests;
