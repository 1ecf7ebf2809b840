//! The leaf-node protocol (a leaf server ↔ its hub): parser and encoders.
//!
//! A leaf link carries one account on each side (the hub binds it when it authenticates the
//! leaf's CONNECT; the leaf names its local account in its `remotes` entry), so no op names an
//! account. Checked against bytes nats-server 2.9.10 exchanged with itself over a leaf link:
//!
//! ```text
//! INFO {json}        hub → leaf, at once (nonce, auth_required, info_on_connect), and again
//!                    after CONNECT (connect_info, remote_account)
//! CONNECT {json}     leaf → hub, after the first INFO: version, tls_required, server_id,
//!                    name, cluster, headers[, user, pass]
//! LS+ <subject>[ <queue> <weight>]          interest (weight: members of the group)
//! LS- <subject>[ <queue>]                   no more interest
//! LMSG <subject> [<reply> | + <reply> <queue>... | | <queue>...] <size>
//! HMSG <subject> [the same] <hdr size> <total size>
//! PING  PONG  +OK  -ERR <text>
//! ```
//!
//! The parser is the route parser in its leaf mode ([`RouteParser::new_leaf`]): the lexical
//! rules are the same, and every op comes back as a [`RouteOp`] naming the bound account.

use bytes::{BufMut, Bytes, BytesMut};

pub use super::route::{
    encode_err, encode_info, MsgHeader, RemoteSub, RemoteUnsub, RouteConnect, RouteInfo, RouteOp,
    RouteParser, RouteProtoError, RoutedMsg, PING, PONG,
};
use super::route::{put_interest, put_msg_args};

/// A parser of what the peer of a leaf link sends, every op read as naming `account`.
pub fn parser(max_control_line: u32, max_payload: u32, account: Bytes) -> RouteParser {
    RouteParser::new_leaf(max_control_line, max_payload, account)
}

/// The leaf's CONNECT body, in nats-server's field order (Go: server/leafnode.go
/// leafConnectInfo).
#[derive(serde::Serialize)]
struct LeafConnectJson<'a> {
    version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    jwt: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    sig: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    user: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pass: &'a str,
    tls_required: bool,
    server_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    domain: &'a str,
    name: &'a str,
    cluster: &'a str,
    headers: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    jetstream: bool,
}

/// Writes the leaf's `CONNECT {json}\r\n` from `c`'s `version`, `jwt`, `sig`, `user`, `pass`,
/// `tls_required`, `server_id`, `domain`, `name` (the server name), `cluster`, `headers` and
/// `jetstream`.
pub fn encode_leaf_connect(out: &mut BytesMut, c: &RouteConnect) {
    let body = LeafConnectJson {
        version: &c.version,
        jwt: &c.jwt,
        sig: &c.sig,
        user: &c.user,
        pass: &c.pass,
        tls_required: c.tls_required,
        server_id: &c.server_id,
        domain: &c.domain,
        name: &c.name,
        cluster: &c.cluster,
        headers: c.headers,
        jetstream: c.jetstream,
    };
    out.put_slice(b"CONNECT ");
    // Strings and booleans only: serialization cannot fail.
    out.put_slice(&serde_json::to_vec(&body).unwrap_or_default());
    out.put_slice(b"\r\n");
}

/// Writes `LS+ <subject>[ <queue> <weight>]\r\n`.
pub fn encode_sub(out: &mut BytesMut, subject: &[u8], queue: Option<(&[u8], u32)>) {
    out.put_slice(b"LS+ ");
    put_interest(out, b"", subject, queue);
}

/// Writes `LS- <subject>[ <queue>]\r\n`.
pub fn encode_unsub(out: &mut BytesMut, subject: &[u8], queue: Option<&[u8]>) {
    out.put_slice(b"LS- ");
    put_interest(out, b"", subject, queue.map(|q| (q, 0)));
}

/// Writes a message control line: `LMSG` without headers, `HMSG` with them (Go:
/// client.go msgHeaderForRouteOrLeaf for a LEAF connection). `h.origin` must be `None`.
pub fn encode_msg_header(out: &mut BytesMut, subject: &[u8], h: &MsgHeader<'_>) {
    debug_assert!(h.origin.is_none(), "leaf links carry no origin cluster");
    let h = MsgHeader { origin: None, ..*h };
    out.put_slice(if h.header_len.is_some() {
        b"HMSG "
    } else {
        b"LMSG "
    });
    put_msg_args(out, b"", subject, &h);
}

#[cfg(test)]
mod tests;
