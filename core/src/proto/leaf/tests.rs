use super::*;
use proptest::prelude::*;

const MCL: u32 = 4096;
const MPAY: u32 = 1024 * 1024;

/// What a nats-server 2.9.10 hub and leaf sent each other (both directions, concatenated):
/// interest with wildcards and queue weights, messages with replies, queues and headers.
const GO_LEAF: &[u8] = b"LS+ foo.*\r\nLS+ bar q 1\r\nLS+ bar q 2\r\n\
LS+ _INBOX.HYHTj4pHjBuiHhmY0U0Lmc.*\r\n\
LMSG foo.x _INBOX.HYHTj4pHjBuiHhmY0U0Lmc.HYHTj4pHjBuiHhmY0U0Lqtc7b9 5\r\nhello\r\n\
HMSG _INBOX.HYHTj4pHjBuiHhmY0U0Lmc.HYHTj4pHjBuiHhmY0U0Lqtc7b9 18 22\r\nNATS/1.0\r\nX: y\r\n\r\npong\r\n\
HMSG bar | q 18 22\r\nNATS/1.0\r\nA: b\r\n\r\nqmsg\r\nLMSG bar + rr q 5\r\nqmsg2\r\n\
LMSG hubsub | hq 2\r\nup\r\nHMSG hubsub + x.y hq 18 21\r\nNATS/1.0\r\nH: 1\r\n\r\nup2\r\n\
LS- foo.*\r\nLS- hubsub hq\r\nPING\r\nPONG\r\n";

type Out = Vec<Result<RouteOp, RouteProtoError>>;

fn drain(p: &mut RouteParser, buf: &mut BytesMut, out: &mut Out) -> bool {
    loop {
        match p.parse(buf) {
            Ok(Some(op)) => out.push(Ok(op)),
            Ok(None) => return false,
            Err(e) => {
                out.push(Err(e));
                return true;
            }
        }
    }
}

fn new_parser() -> RouteParser {
    parser(MCL, MPAY, Bytes::from_static(b"ACC"))
}

fn parse_split(input: &[u8], at: usize) -> Out {
    let mut p = new_parser();
    let mut buf = BytesMut::from(&input[..at]);
    let mut out = Vec::new();
    if drain(&mut p, &mut buf, &mut out) {
        return out;
    }
    buf.extend_from_slice(&input[at..]);
    drain(&mut p, &mut buf, &mut out);
    assert!(buf.is_empty(), "left over: {buf:?}");
    out
}

fn msg(op: &RouteOp) -> &RoutedMsg {
    match op {
        RouteOp::Msg(m) => m,
        other => panic!("not a message: {other:?}"),
    }
}

#[test]
fn nats_server_capture_parses_at_every_split_point() {
    let whole = parse_split(GO_LEAF, GO_LEAF.len());
    assert_eq!(whole.len(), 14);
    for at in 0..=GO_LEAF.len() {
        assert_eq!(parse_split(GO_LEAF, at), whole, "split at {at}");
    }
    let ops: Vec<RouteOp> = whole.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        ops[0],
        RouteOp::Sub(RemoteSub {
            origin: None,
            account: Bytes::from_static(b"ACC"),
            subject: Bytes::from_static(b"foo.*"),
            queue: None,
            weight: 0,
        })
    );
    let RouteOp::Sub(q) = &ops[2] else { panic!() };
    assert_eq!((q.queue.as_deref(), q.weight), (Some(&b"q"[..]), 2));
    let m = msg(&ops[4]);
    assert_eq!(&m.subject[..], b"foo.x");
    assert_eq!(&m.account[..], b"ACC");
    assert!(m
        .reply
        .as_deref()
        .is_some_and(|r| r.starts_with(b"_INBOX.")));
    assert_eq!((&m.payload[..], m.headers.is_none()), (&b"hello"[..], true));
    let m = msg(&ops[5]);
    assert_eq!(m.headers.as_deref(), Some(&b"NATS/1.0\r\nX: y\r\n\r\n"[..]));
    assert_eq!(&m.payload[..], b"pong");
    let m = msg(&ops[6]);
    assert_eq!((m.reply.is_none(), m.queues.len()), (true, 1));
    let m = msg(&ops[7]);
    assert_eq!(m.reply.as_deref(), Some(&b"rr"[..]));
    assert_eq!(m.queues, [Bytes::from_static(b"q")]);
    let m = msg(&ops[9]);
    assert_eq!(m.reply.as_deref(), Some(&b"x.y"[..]));
    assert_eq!(m.queues, [Bytes::from_static(b"hq")]);
    let RouteOp::Unsub(u) = &ops[11] else {
        panic!()
    };
    assert_eq!(
        (&u.subject[..], u.queue.as_deref()),
        (&b"hubsub"[..], Some(&b"hq"[..]))
    );
    assert_eq!(ops[12..], [RouteOp::Ping, RouteOp::Pong]);
}

#[test]
fn bad_arguments_use_the_leaf_wording() {
    let err = |input: &[u8]| match parse_split(input, input.len()).pop() {
        Some(Err(e)) => e.to_string(),
        other => panic!("expected an error, got {other:?}"),
    };
    assert!(err(b"LMSG foo\r\n").contains("processLeafMsgArgs Parse Error"));
    assert!(err(b"HMSG foo 1\r\n").contains("processLeafHeaderMsgArgs Parse Error"));
    assert!(err(b"LMSG foo x y 1\r\n").contains("Bad or Missing Reply Indicator"));
    assert!(err(b"HMSG foo 5 3\r\n").contains("Header Size larger then TotalSize"));
    assert!(err(b"LS+ a b c d\r\n").contains("Parse Error"));
    assert!(err(b"XYZ\r\n").contains("unknown protocol operation"));
}

#[test]
fn encoders_write_what_nats_server_writes() {
    let mut out = BytesMut::new();
    encode_sub(&mut out, b"foo.*", None);
    encode_sub(&mut out, b"bar", Some((b"q", 2)));
    encode_unsub(&mut out, b"bar", Some(b"q"));
    encode_unsub(&mut out, b"foo.*", None);
    let h = |reply, queues, header_len, total_len| MsgHeader {
        origin: None,
        reply,
        queues,
        header_len,
        total_len,
    };
    let q: &[&[u8]] = &[b"q"];
    encode_msg_header(&mut out, b"foo.x", &h(Some(&b"r"[..]), &[], None, 5));
    encode_msg_header(&mut out, b"bar", &h(None, q, Some(18), 22));
    encode_msg_header(&mut out, b"bar", &h(Some(&b"rr"[..]), q, None, 5));
    assert_eq!(
        &out[..],
        &b"LS+ foo.*\r\nLS+ bar q 2\r\nLS- bar q\r\nLS- foo.*\r\n\
LMSG foo.x r 5\r\nHMSG bar | q 18 22\r\nLMSG bar + rr q 5\r\n"[..]
    );
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_]{1,8}"
}

proptest! {
    /// Whatever the encoders write, the parser reads back, at any split point.
    #[test]
    fn round_trip(
        subject in prop::collection::vec(token(), 1..4).prop_map(|t| t.join(".")),
        reply in prop::option::of(token()),
        queues in prop::collection::vec(token(), 0..3),
        headers in prop::option::of(Just(b"NATS/1.0\r\nK: v\r\n\r\n".to_vec())),
        payload in prop::collection::vec(any::<u8>(), 0..64),
        weight in 1u32..1000,
        at in 0usize..256,
    ) {
        let mut wire = BytesMut::new();
        let q = queues.first().map(|q| (q.as_bytes(), weight));
        encode_sub(&mut wire, subject.as_bytes(), q);
        let names: Vec<&[u8]> = queues.iter().map(|q| q.as_bytes()).collect();
        let hl = headers.as_ref().map(Vec::len);
        encode_msg_header(&mut wire, subject.as_bytes(), &MsgHeader {
            origin: None,
            reply: reply.as_deref().map(str::as_bytes),
            queues: &names,
            header_len: hl,
            total_len: hl.unwrap_or(0) + payload.len(),
        });
        if let Some(h) = &headers {
            wire.extend_from_slice(h);
        }
        wire.extend_from_slice(&payload);
        wire.extend_from_slice(b"\r\n");
        encode_unsub(&mut wire, subject.as_bytes(), q.map(|(q, _)| q));
        let out = parse_split(&wire, at.min(wire.len()));
        prop_assert_eq!(out.len(), 3);
        let ops: Vec<RouteOp> = out.into_iter().map(Result::unwrap).collect();
        let RouteOp::Sub(s) = &ops[0] else { panic!() };
        prop_assert_eq!(&s.subject[..], subject.as_bytes());
        prop_assert_eq!(s.weight, if q.is_some() { weight } else { 0 });
        let m = msg(&ops[1]);
        prop_assert_eq!(&m.subject[..], subject.as_bytes());
        prop_assert_eq!(m.reply.as_deref(), reply.as_deref().map(str::as_bytes));
        let got: Vec<&[u8]> = m.queues.iter().map(|q| &q[..]).collect();
        prop_assert_eq!(got, names);
        prop_assert_eq!(m.headers.as_deref(), headers.as_deref());
        prop_assert_eq!(&m.payload[..], &payload[..]);
        let RouteOp::Unsub(u) = &ops[2] else { panic!() };
        prop_assert_eq!(&u.subject[..], subject.as_bytes());
    }
}
