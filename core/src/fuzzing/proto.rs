//! The client protocol parser: split invariance, re-encoding round trips, CONNECT JSON.

use bytes::BytesMut;

use super::Input;
use crate::proto::client::{ClientOp, ClientParser, ProtoError, PubMsg};
use crate::proto::info::ConnectInfo;

type Out = Vec<Result<ClientOp, ProtoError>>;

/// Parser settings decoded from the first input byte.
#[derive(Debug, Clone, Copy)]
struct Settings {
    max_control_line: u32,
    max_payload: u32,
    headers: bool,
    awaiting_auth: bool,
}

impl Settings {
    fn parser(self) -> ClientParser {
        let mut p = ClientParser::new(self.max_control_line, self.max_payload);
        p.set_headers(self.headers);
        p.set_awaiting_auth(self.awaiting_auth);
        p
    }

    /// Limits nothing the fuzzer can reach, for re-parsing canonical encodings.
    fn permissive() -> Self {
        Self {
            max_control_line: u32::MAX,
            max_payload: u32::MAX,
            headers: true,
            awaiting_auth: false,
        }
    }
}

/// Parses until more bytes are needed or an error; true on error.
fn drain(p: &mut ClientParser, buf: &mut BytesMut, out: &mut Out) -> bool {
    // Every successful parse consumes at least one byte, so this bound is never reached
    // unless the parser stops making progress.
    for _ in 0..=buf.len() + 1 {
        match p.parse(buf) {
            Ok(Some(op)) => out.push(Ok(op)),
            Ok(None) => return false,
            Err(e) => {
                out.push(Err(e));
                return true;
            }
        }
    }
    panic!("parser returned ops without consuming input");
}

/// Feeds `input` cut at the ascending offsets `cuts`, parsing after each piece; stops at the
/// first error. Returns the ops and what stayed in the buffer.
fn feed(settings: Settings, input: &[u8], cuts: &[usize]) -> (Out, BytesMut) {
    let mut p = settings.parser();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut last = 0;
    for &c in cuts.iter().chain(std::iter::once(&input.len())) {
        buf.extend_from_slice(&input[last..c]);
        last = c;
        if drain(&mut p, &mut buf, &mut out) {
            break;
        }
    }
    (out, buf)
}

/// The canonical client encoding of `op`: single spaces, `\r\n` line ends, upper-case names.
fn encode(op: &ClientOp) -> Vec<u8> {
    let mut out = Vec::new();
    let line = |out: &mut Vec<u8>, fields: &[&[u8]]| {
        out.extend_from_slice(&fields.join(&b' '));
        out.extend_from_slice(b"\r\n");
    };
    match op {
        ClientOp::Connect(info) => {
            let json = serde_json::to_vec(info).expect("ConnectInfo serializes");
            line(&mut out, &[b"CONNECT", &json]);
        }
        ClientOp::Pub(PubMsg {
            subject,
            reply,
            headers,
            payload,
        }) => {
            let hlen = headers.as_ref().map(|h| h.len().to_string());
            let total = (headers.as_ref().map_or(0, |h| h.len()) + payload.len()).to_string();
            let mut fields: Vec<&[u8]> = vec![if hlen.is_some() { b"HPUB" } else { b"PUB" }];
            fields.push(subject);
            fields.extend(reply.as_deref());
            fields.extend(hlen.as_deref().map(str::as_bytes));
            fields.push(total.as_bytes());
            line(&mut out, &fields);
            out.extend_from_slice(headers.as_deref().unwrap_or_default());
            out.extend_from_slice(payload);
            out.extend_from_slice(b"\r\n");
        }
        ClientOp::Sub {
            subject,
            queue,
            sid,
        } => {
            let mut fields: Vec<&[u8]> = vec![b"SUB", subject];
            fields.extend(queue.as_deref());
            fields.push(sid);
            line(&mut out, &fields);
        }
        ClientOp::Unsub { sid, max } => {
            let max = max.map(|m| m.to_string());
            let mut fields: Vec<&[u8]> = vec![b"UNSUB", sid];
            fields.extend(max.as_deref().map(str::as_bytes));
            line(&mut out, &fields);
        }
        ClientOp::Ping => line(&mut out, &[b"PING"]),
        ClientOp::Pong => line(&mut out, &[b"PONG"]),
        ClientOp::Ok => line(&mut out, &[b"+OK"]),
        ClientOp::Info(raw) => line(&mut out, &[b"INFO", raw]),
        ClientOp::Err(text) => line(&mut out, &[b"-ERR", text]),
    }
    out
}

/// Re-encodes every parsed op canonically and checks that it parses back to the same op.
fn check_round_trip(ops: &Out) {
    for op in ops.iter().filter_map(|r| r.as_ref().ok()) {
        let wire = encode(op);
        let (again, rest) = feed(Settings::permissive(), &wire, &[]);
        assert_eq!(
            again,
            vec![Ok(op.clone())],
            "re-encoded as {:?}",
            String::from_utf8_lossy(&wire)
        );
        assert!(rest.is_empty(), "re-encoding left {rest:?}");
    }
}

/// `client_parser`: arbitrary bytes into [`ClientParser`].
///
/// Format: byte 0 holds flags — bits 0–2 the number `n` of cuts, bits 3–4 the limits (default,
/// or small ones so that limit errors are reachable), bit 5 refuses `HPUB`, bit 6 awaits
/// authentication. The next `n` bytes are the gaps between cuts; the rest is the protocol text.
///
/// Checks: no panic; the same ops (and errors) whether the text arrives whole, cut where the
/// fuzzer says, or byte by byte; the same leftover unless parsing failed; every op re-encoded
/// canonically (CONNECT through `serde_json`) parses back to itself.
pub fn client_parser(data: &[u8]) {
    let mut b = Input::new(data);
    let flags = b.byte();
    let (max_control_line, max_payload) = match (flags >> 3) & 3 {
        0 => (4096, 1024 * 1024),
        1 => (32, 64),
        2 => (8, 0),
        _ => (256, 3),
    };
    let settings = Settings {
        max_control_line,
        max_payload,
        headers: flags & 0x20 == 0,
        awaiting_auth: flags & 0x40 != 0,
    };
    let gaps: Vec<usize> = (0..flags & 7).map(|_| usize::from(b.byte())).collect();
    let input = b.rest();
    let mut cuts = Vec::new();
    let mut at = 0;
    for g in gaps {
        at = (at + g).min(input.len());
        cuts.push(at);
    }

    let (whole, rest) = feed(settings, input, &[]);
    let failed = matches!(whole.last(), Some(Err(_)));
    let (split, split_rest) = feed(settings, input, &cuts);
    assert_eq!(split, whole, "cut at {cuts:?}");
    if !failed {
        assert_eq!(split_rest, rest, "leftover, cut at {cuts:?}");
    }
    let every: Vec<usize> = (1..input.len()).collect();
    let (bytewise, bytewise_rest) = feed(settings, input, &every);
    assert_eq!(bytewise, whole, "byte by byte");
    if !failed {
        assert_eq!(bytewise_rest, rest, "leftover, byte by byte");
    }
    check_round_trip(&whole);
}

/// `connect_json`: the input is the body of `CONNECT <input>\r\n`.
///
/// Checks: no panic; ops parse back after re-encoding; and when the body is one line, a
/// CONNECT is accepted only when the body is JSON `null` or an object, with the lower-case
/// boolean and string fields it names taken as written, and refused when it is not JSON.
pub fn connect_json(data: &[u8]) {
    let mut wire = b"CONNECT ".to_vec();
    wire.extend_from_slice(data);
    wire.extend_from_slice(b"\r\n");
    let settings = Settings {
        max_control_line: 1 << 20,
        ..Settings::permissive()
    };
    let (ops, _) = feed(settings, &wire, &[]);
    check_round_trip(&ops);

    // The arguments as the parser sees them: leading blanks skipped, one trailing '\r' dropped.
    let body = data
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .map_or(&data[data.len()..], |i| &data[i..]);
    // A '\n' in the body would end the line early (as the first byte it is taken as an
    // argument byte); only judge one-line bodies.
    if body.is_empty() || body[1..].contains(&b'\n') {
        return;
    }
    let body = match body {
        [.., b'\r'] if body.len() > 1 => &body[..body.len() - 1],
        _ => body,
    };
    let json: Result<serde_json::Value, _> = serde_json::from_slice(body);
    match (ops.first(), json) {
        (Some(Ok(ClientOp::Connect(info))), Ok(v)) => check_fields(info, &v),
        // Valid JSON is still refused when it is not an object or null, or when a field has
        // the wrong type.
        (Some(Err(ProtoError::ConnectJson(_))), _) => {}
        (first, json) => panic!("CONNECT {body:?}: parser {first:?}, serde_json {json:?}"),
    }
}

fn only_key(obj: &serde_json::Map<String, serde_json::Value>, field: &str) -> bool {
    obj.keys()
        .filter(|k| crate::gojson::key_matches(k, field))
        .count()
        == 1
}

/// Fields named in lower case in the JSON must be taken as written, unless another key names
/// the same field without case (then Go's last one wins, and serde_json kept no order).
fn check_fields(info: &ConnectInfo, v: &serde_json::Value) {
    let Some(obj) = v.as_object() else {
        // `null`: every field keeps its default.
        assert!(v.is_null());
        return;
    };
    let bools = [
        ("verbose", info.verbose),
        ("pedantic", info.pedantic),
        ("tls_required", info.tls_required),
        ("echo", info.echo),
        ("headers", info.headers),
        ("no_responders", info.no_responders),
    ];
    for (k, got) in bools {
        if !only_key(obj, k) {
            continue;
        }
        if let Some(want) = obj.get(k).and_then(serde_json::Value::as_bool) {
            assert_eq!(got, want, "field {k}");
        }
    }
    let strings = [
        ("auth_token", &info.auth_token),
        ("user", &info.user),
        ("pass", &info.pass),
        ("name", &info.name),
        ("lang", &info.lang),
        ("version", &info.version),
        ("sig", &info.sig),
        ("jwt", &info.jwt),
        ("nkey", &info.nkey),
    ];
    for (k, got) in strings {
        if !only_key(obj, k) {
            continue;
        }
        if let Some(want) = obj.get(k).and_then(serde_json::Value::as_str) {
            assert_eq!(got.as_deref(), Some(want), "field {k}");
        }
    }
}
