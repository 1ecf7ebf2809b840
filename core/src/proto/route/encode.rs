//! Encoders of the route protocol (what this server sends to a route peer).
//!
//! The bytes match nats-server 2.9.10's for the same values (captured from the real binary).

use bytes::{BufMut, BytesMut};

use super::json::{RouteConnect, RouteInfo};

/// `PING\r\n`.
pub const PING: &[u8] = b"PING\r\n";
/// `PONG\r\n`.
pub const PONG: &[u8] = b"PONG\r\n";
/// `+OK\r\n`.
pub const OK: &[u8] = b"+OK\r\n";

fn put_json<T: serde::Serialize>(out: &mut BytesMut, value: &T) {
    match serde_json::to_vec(value) {
        Ok(json) => out.put_slice(&json),
        Err(e) => {
            // Plain strings, numbers and lists: serialization cannot fail.
            tracing::error!(error = %e, "cannot serialize route JSON");
            out.put_slice(b"{}");
        }
    }
}

/// Writes the first INFO of a connection, or an INFO update: `INFO {json} \r\n`.
///
/// nats-server's pre-rendered route INFO (first INFO, lame-duck update) has a space before the
/// CRLF; forwarded INFOs (gossip) do not, see [`encode_forwarded_info`].
pub fn encode_info(out: &mut BytesMut, info: &RouteInfo) {
    out.put_slice(b"INFO ");
    put_json(out, info);
    out.put_slice(b" \r\n");
}

/// Writes an INFO about another server, forwarded to tell the peer to connect to it:
/// `INFO {json}\r\n` (Go: forwardNewRouteInfoToKnownServers, which clears the nonce).
pub fn encode_forwarded_info(out: &mut BytesMut, info: &RouteInfo) {
    out.put_slice(b"INFO ");
    put_json(out, info);
    out.put_slice(b"\r\n");
}

/// Writes `CONNECT {json}\r\n`.
pub fn encode_connect(out: &mut BytesMut, connect: &RouteConnect) {
    out.put_slice(b"CONNECT ");
    put_json(out, connect);
    out.put_slice(b"\r\n");
}

/// Writes `-ERR '<text>'\r\n`.
pub fn encode_err(out: &mut BytesMut, text: &str) {
    out.put_slice(b"-ERR '");
    out.put_slice(text.as_bytes());
    out.put_slice(b"'\r\n");
}

/// Writes `RS+ <account> <subject>[ <queue> <weight>]\r\n`.
pub fn encode_sub(out: &mut BytesMut, account: &[u8], subject: &[u8], queue: Option<(&[u8], u32)>) {
    out.put_slice(b"RS+ ");
    put_interest(out, account, subject, queue);
}

/// Writes `LS+ <origin> <account> <subject>[ <queue> <weight>]\r\n` (interest of a leaf node
/// from cluster `origin`, for a peer whose INFO said `lnoc`).
pub fn encode_leaf_sub(
    out: &mut BytesMut,
    origin: &[u8],
    account: &[u8],
    subject: &[u8],
    queue: Option<(&[u8], u32)>,
) {
    out.put_slice(b"LS+ ");
    out.put_slice(origin);
    out.put_u8(b' ');
    put_interest(out, account, subject, queue);
}

/// Writes `RS- <account> <subject>[ <queue>]\r\n`.
pub fn encode_unsub(out: &mut BytesMut, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
    out.put_slice(b"RS- ");
    put_interest(out, account, subject, queue.map(|q| (q, 0)));
}

/// Writes `LS- <account> <subject>[ <queue>]\r\n` (nats-server puts two spaces after `LS-`;
/// one is the same to every parser).
pub fn encode_leaf_unsub(out: &mut BytesMut, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
    out.put_slice(b"LS- ");
    put_interest(out, account, subject, queue.map(|q| (q, 0)));
}

/// `weight` 0 means "no weight field" (unsubscribe protocols). An empty `account` is left out
/// (a pinned route, where the connection names the account).
pub(crate) fn put_interest(
    out: &mut BytesMut,
    account: &[u8],
    subject: &[u8],
    queue: Option<(&[u8], u32)>,
) {
    put_account(out, account);
    out.put_slice(subject);
    if let Some((q, weight)) = queue {
        out.put_u8(b' ');
        out.put_slice(q);
        if weight > 0 {
            out.put_u8(b' ');
            put_decimal(out, weight as usize);
        }
    }
    out.put_slice(b"\r\n");
}

/// What a routed message header carries besides account and subject.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgHeader<'a> {
    /// `LMSG` origin cluster; forces the header-size field.
    pub origin: Option<&'a [u8]>,
    /// Reply subject.
    pub reply: Option<&'a [u8]>,
    /// Queue groups the receiver is to deliver to (one member each).
    pub queues: &'a [&'a [u8]],
    /// Header block size: `Some` writes `HMSG` (or the `LMSG` header field).
    pub header_len: Option<usize>,
    /// Headers plus body.
    pub total_len: usize,
}

/// Writes the control line of a routed message:
/// `RMSG|HMSG|LMSG [origin] <account> <subject> [reply | + reply queues | | queues] [hdr] <size>\r\n`.
///
/// Go: server/client.go msgHeaderForRouteOrLeaf.
pub fn encode_msg_header(out: &mut BytesMut, account: &[u8], subject: &[u8], h: &MsgHeader<'_>) {
    match (h.origin, h.header_len) {
        (Some(origin), _) => {
            out.put_slice(b"LMSG ");
            out.put_slice(origin);
            out.put_u8(b' ');
        }
        (None, Some(_)) => out.put_slice(b"HMSG "),
        (None, None) => out.put_slice(b"RMSG "),
    }
    put_msg_args(out, account, subject, h);
}

/// Everything of a message control line after the op name (shared with the leaf protocol).
pub(crate) fn put_msg_args(out: &mut BytesMut, account: &[u8], subject: &[u8], h: &MsgHeader<'_>) {
    put_account(out, account);
    out.put_slice(subject);
    out.put_u8(b' ');
    if !h.queues.is_empty() {
        match h.reply {
            Some(reply) => {
                out.put_slice(b"+ ");
                out.put_slice(reply);
                out.put_u8(b' ');
            }
            None => out.put_slice(b"| "),
        }
        for q in h.queues {
            out.put_slice(q);
            out.put_u8(b' ');
        }
    } else if let Some(reply) = h.reply {
        out.put_slice(reply);
        out.put_u8(b' ');
    }
    if h.origin.is_some() || h.header_len.is_some() {
        put_decimal(out, h.header_len.unwrap_or(0));
        out.put_u8(b' ');
    }
    put_decimal(out, h.total_len);
    out.put_slice(b"\r\n");
}

/// Account names are never empty; an empty one stands for "the route's own" (pinned route).
fn put_account(out: &mut BytesMut, account: &[u8]) {
    if !account.is_empty() {
        out.put_slice(account);
        out.put_u8(b' ');
    }
}

pub(super) fn put_decimal(out: &mut BytesMut, mut n: usize) {
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
