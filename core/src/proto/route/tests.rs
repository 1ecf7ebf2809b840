use super::*;
use proptest::prelude::*;

type Out = Vec<Result<RouteOp, RouteProtoError>>;

const MCL: u32 = DEFAULT_ROUTE_MAX_CONTROL_LINE;
const MPAY: u32 = 1024 * 1024;

/// Bytes captured from nats-server 2.9.10 routes (through a TCP proxy): B's side of a route it
/// solicited to A (CONNECT with credentials, INFO, gossip INFO about C, interest, messages), and
/// A's side of the same connection.
const GO_SOLICITED: &[u8] = include_bytes!("testdata/go_solicited_b_to_a.bin");
const GO_ACCEPTED: &[u8] = include_bytes!("testdata/go_accepted_a_to_b.bin");
/// A Go server's INFO, its RS+/RS- for local client subscriptions (plain and queue) and the
/// RMSG/HMSG it sent for client publishes.
const GO_INTEREST: &[u8] = include_bytes!("testdata/go_interest_and_msgs.bin");

/// Parses until more bytes are needed or an error; returns true on error.
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

fn parse_all(input: &[u8]) -> Out {
    let mut p = RouteParser::new(MCL, MPAY);
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    drain(&mut p, &mut buf, &mut out);
    out
}

/// Feeds `input` in two pieces split at `at`.
fn parse_split(input: &[u8], at: usize) -> Out {
    let mut p = RouteParser::new(MCL, MPAY);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    buf.extend_from_slice(&input[..at]);
    if drain(&mut p, &mut buf, &mut out) {
        return out;
    }
    buf.extend_from_slice(&input[at..]);
    drain(&mut p, &mut buf, &mut out);
    out
}

fn parse_bytewise(input: &[u8]) -> Out {
    let mut p = RouteParser::new(MCL, MPAY);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for &b in input {
        buf.extend_from_slice(&[b]);
        if drain(&mut p, &mut buf, &mut out) {
            break;
        }
    }
    out
}

fn ok(out: Out) -> Vec<RouteOp> {
    out.into_iter().map(|r| r.unwrap()).collect()
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn msg(account: &str, subject: &str, reply: Option<&str>, queues: &[&str]) -> RoutedMsg {
    RoutedMsg {
        origin: None,
        account: b(account),
        subject: b(subject),
        reply: reply.map(b),
        queues: queues.iter().map(|q| b(q)).collect(),
        headers: None,
        payload: Bytes::new(),
    }
}

const EVERY_OP: &[u8] =
    b"INFO {\"server_id\":\"S1\",\"cluster\":\"c1\",\"connect_urls\":[\"h:1\"]} \r\n\
CONNECT {\"echo\":true,\"name\":\"S1\",\"cluster\":\"c1\",\"user\":\"u\",\"pass\":\"p\"}\r\n\
PING\r\nPONG\r\n+OK\r\n-ERR 'boom'\r\n\
RS+ $G foo\r\nRS+ $G bar q1 3\r\nLS+ c2 $G baz\r\nLS+ c2 $G baz q 2\r\n\
RS- $G foo\r\nRS- $G bar q1\r\nLS-  $G baz\r\n\
RMSG $G foo 3\r\nabc\r\nRMSG $G foo r 3\r\nabc\r\nRMSG $G foo | q1 q2 3\r\nabc\r\n\
RMSG $G foo + r q1 3\r\nabc\r\nHMSG $G foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n\
HMSG $G foo + r q1 q2 12 14\r\nNATS/1.0\r\n\r\nhi\r\nHMSG $G foo r 0 2\r\nhi\r\n\
LMSG c2 $G foo | q 0 2\r\nhi\r\nLMSG c2 $G foo 12 12\r\nNATS/1.0\r\n\r\n\r\n\
A+ $G\r\nA- $G\r\nRMSG $G empty 0\r\n\r\n";

fn every_op_expected() -> Vec<RouteOp> {
    let hdr = b("NATS/1.0\r\n\r\n");
    let with = |mut m: RoutedMsg, h: Option<Bytes>, p: &str| {
        m.headers = h;
        m.payload = b(p);
        RouteOp::Msg(m)
    };
    let lmsg = |queues: &[&str], h: Option<Bytes>, p: &str| {
        let mut m = msg("$G", "foo", None, queues);
        m.origin = Some(b("c2"));
        with(m, h, p)
    };
    vec![
        RouteOp::Info(Box::new(RouteInfo {
            server_id: "S1".into(),
            cluster: "c1".into(),
            connect_urls: vec!["h:1".into()],
            ..RouteInfo::default()
        })),
        RouteOp::Connect(Box::new(RouteConnect {
            echo: true,
            name: "S1".into(),
            cluster: "c1".into(),
            user: "u".into(),
            pass: "p".into(),
            ..RouteConnect::default()
        })),
        RouteOp::Ping,
        RouteOp::Pong,
        RouteOp::Ok,
        RouteOp::Err(b("'boom'")),
        RouteOp::Sub(RemoteSub {
            origin: None,
            account: b("$G"),
            subject: b("foo"),
            queue: None,
            weight: 0,
        }),
        RouteOp::Sub(RemoteSub {
            origin: None,
            account: b("$G"),
            subject: b("bar"),
            queue: Some(b("q1")),
            weight: 3,
        }),
        RouteOp::Sub(RemoteSub {
            origin: Some(b("c2")),
            account: b("$G"),
            subject: b("baz"),
            queue: None,
            weight: 0,
        }),
        RouteOp::Sub(RemoteSub {
            origin: Some(b("c2")),
            account: b("$G"),
            subject: b("baz"),
            queue: Some(b("q")),
            weight: 2,
        }),
        RouteOp::Unsub(RemoteUnsub {
            account: b("$G"),
            subject: b("foo"),
            queue: None,
            leaf: false,
        }),
        RouteOp::Unsub(RemoteUnsub {
            account: b("$G"),
            subject: b("bar"),
            queue: Some(b("q1")),
            leaf: false,
        }),
        RouteOp::Unsub(RemoteUnsub {
            account: b("$G"),
            subject: b("baz"),
            queue: None,
            leaf: true,
        }),
        with(msg("$G", "foo", None, &[]), None, "abc"),
        with(msg("$G", "foo", Some("r"), &[]), None, "abc"),
        with(msg("$G", "foo", None, &["q1", "q2"]), None, "abc"),
        with(msg("$G", "foo", Some("r"), &["q1"]), None, "abc"),
        with(msg("$G", "foo", None, &[]), Some(hdr.clone()), "hi"),
        with(
            msg("$G", "foo", Some("r"), &["q1", "q2"]),
            Some(hdr.clone()),
            "hi",
        ),
        // A header size of 0 is a plain message.
        with(msg("$G", "foo", Some("r"), &[]), None, "hi"),
        lmsg(&["q"], None, "hi"),
        lmsg(&[], Some(hdr), ""),
        RouteOp::AccountSub(b("$G")),
        RouteOp::AccountUnsub(b("$G")),
        with(msg("$G", "empty", None, &[]), None, ""),
    ]
}

#[test]
fn every_op_whole_bytewise_and_split_everywhere() {
    let expected = every_op_expected();
    assert_eq!(ok(parse_all(EVERY_OP)), expected);
    assert_eq!(ok(parse_bytewise(EVERY_OP)), expected);
    for at in 0..=EVERY_OP.len() {
        assert_eq!(ok(parse_split(EVERY_OP, at)), expected, "split at {at}");
    }
}

#[test]
fn op_names_are_case_insensitive_and_lines_may_end_in_lf() {
    let out = ok(parse_all(
        b"rs+ $G foo\nrmsg $G foo 1\r\nx\r\nping\ninfo {}\nconnect{}\n",
    ));
    assert_eq!(out.len(), 5);
    assert!(matches!(out[0], RouteOp::Sub(_)));
    assert!(matches!(out[1], RouteOp::Msg(_)));
    assert_eq!(out[2], RouteOp::Ping);
    assert!(matches!(out[3], RouteOp::Info(_)));
    assert!(matches!(out[4], RouteOp::Connect(_)));
}

#[test]
fn payload_shares_the_read_buffer() {
    let mut p = RouteParser::new(MCL, MPAY);
    let mut buf = BytesMut::from(&b"RMSG $G foo 5\r\nhello\r\n"[..]);
    let base = buf.as_ptr() as usize;
    let Some(RouteOp::Msg(m)) = p.parse(&mut buf).unwrap() else {
        panic!("no message")
    };
    assert_eq!(m.payload.as_ptr() as usize, base + 15);
    assert!(buf.is_empty());
}

fn count(out: &[RouteOp], pred: impl Fn(&RouteOp) -> bool) -> usize {
    out.iter().filter(|op| pred(op)).count()
}

#[test]
fn captured_go_streams_parse_at_every_split() {
    for (name, input, info, connect, rs_plus, msgs) in [
        ("solicited", GO_SOLICITED, 2, 1, 39, 5),
        ("accepted", GO_ACCEPTED, 2, 0, 39, 6),
        ("interest", GO_INTEREST, 1, 0, 5, 4),
    ] {
        let whole = ok(parse_all(input));
        assert_eq!(
            count(&whole, |o| matches!(o, RouteOp::Info(_))),
            info,
            "{name}"
        );
        assert_eq!(
            count(&whole, |o| matches!(o, RouteOp::Connect(_))),
            connect,
            "{name}"
        );
        assert_eq!(
            count(&whole, |o| matches!(o, RouteOp::Sub(_))),
            rs_plus,
            "{name}"
        );
        assert_eq!(
            count(&whole, |o| matches!(o, RouteOp::Msg(_))),
            msgs,
            "{name}"
        );
        assert_eq!(ok(parse_bytewise(input)), whole, "{name}");
        for at in (0..=input.len()).step_by(7) {
            assert_eq!(ok(parse_split(input, at)), whole, "{name} split at {at}");
        }
    }
}

#[test]
fn captured_go_handshake_fields() {
    let out = ok(parse_all(GO_SOLICITED));
    let RouteOp::Connect(c) = &out[0] else {
        panic!("CONNECT first")
    };
    assert_eq!((c.user.as_str(), c.pass.as_str()), ("ruser", "rpass"));
    assert!(c.echo && c.headers && c.lnoc && !c.verbose && !c.tls_required);
    assert_eq!(c.cluster, "c1");
    let RouteOp::Info(i) = &out[1] else {
        panic!("INFO second")
    };
    assert_eq!(i.server_id, c.name, "CONNECT name is the server id");
    assert_eq!((i.server_name.as_str(), i.proto), ("B", 2));
    assert!(i.auth_required && i.headers && i.lnoc && !i.nonce.is_empty());
    assert_eq!(i.connect_urls, ["127.0.0.1:36451"]);
    // The gossip INFO about C: another server id, an `ip` to dial, no nonce.
    let gossip = out
        .iter()
        .skip(2)
        .find_map(|o| match o {
            RouteOp::Info(i) => Some(i),
            _ => None,
        })
        .unwrap();
    assert_ne!(gossip.server_id, i.server_id);
    assert_eq!(gossip.ip, "nats-route://127.0.0.1:36191/");
    assert!(gossip.nonce.is_empty());

    let out = ok(parse_all(GO_INTEREST));
    let queue_subs: Vec<(String, u32)> = out
        .iter()
        .filter_map(|o| match o {
            RouteOp::Sub(RemoteSub {
                queue: Some(q),
                weight,
                subject,
                ..
            }) => Some((format!("{} {}", lossy(subject), lossy(q)), *weight)),
            _ => None,
        })
        .collect();
    assert_eq!(
        queue_subs,
        [
            ("bar q1".to_owned(), 1),
            ("bar q1".to_owned(), 2),
            ("baz.> q2".to_owned(), 1),
            ("bar q1".to_owned(), 1)
        ]
    );
    let msgs: Vec<&RoutedMsg> = out
        .iter()
        .filter_map(|o| match o {
            RouteOp::Msg(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(msgs[0].reply.as_deref(), Some(&b"reply.1"[..]));
    assert_eq!(msgs[1].queues, [b("grp")]);
    assert_eq!(msgs[1].reply, None);
    assert_eq!(
        msgs[2].headers.as_deref(),
        Some(&b"NATS/1.0\r\nA: b\r\n\r\n"[..])
    );
    assert_eq!(msgs[3].reply.as_deref(), Some(&b"rr"[..]));
    assert_eq!(msgs[3].queues, [b("grp")]);
}

#[test]
fn captured_go_info_reencodes_byte_for_byte() {
    // nats-server's first INFO, decoded and encoded again, gives the same bytes.
    let end = GO_INTEREST.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let line = &GO_INTEREST[..end];
    let [RouteOp::Info(info)] = &ok(parse_all(line))[..] else {
        panic!("one INFO")
    };
    let mut out = BytesMut::new();
    encode_info(&mut out, info);
    assert_eq!(&out[..], line);
    let connect_end = GO_SOLICITED.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let line = &GO_SOLICITED[..connect_end];
    let [RouteOp::Connect(c)] = &ok(parse_all(line))[..] else {
        panic!("one CONNECT")
    };
    let mut out = BytesMut::new();
    encode_connect(&mut out, c);
    assert_eq!(&out[..], line);
}

/// nats-server 2.9.10's route INFO names its leaf listener's URL (`leafnode_urls`, after
/// `lnoc`); it reads and encodes again byte for byte.
#[test]
fn go_route_info_with_leafnode_urls_round_trips() {
    let line: &[u8] = b"INFO {\"server_id\":\"NCMAL6B366TEABL5NYGL44KGBQMRHORTACQT3WEKBD7KZO2ZHITHJW3N\",\
\"server_name\":\"A\",\"version\":\"2.9.10\",\"proto\":2,\"go\":\"go1.19.8\",\"host\":\"127.0.0.1\",\
\"port\":24112,\"headers\":true,\"max_payload\":1048576,\"nonce\":\"k9zBbxSGXp8r0f0\",\"cluster\":\"c1\",\
\"connect_urls\":[\"127.0.0.1:24111\"],\"lnoc\":true,\"leafnode_urls\":[\"127.0.0.1:24113\"]} \r\n";
    let [RouteOp::Info(info)] = &ok(parse_all(line))[..] else {
        panic!("one INFO")
    };
    assert_eq!(info.leafnode_urls, ["127.0.0.1:24113"]);
    let mut out = BytesMut::new();
    encode_info(&mut out, info);
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(line));
}

fn err_of(input: &[u8]) -> RouteProtoError {
    match parse_all(input).pop() {
        Some(Err(e)) => e,
        other => panic!("no error for {:?}: {other:?}", lossy(input)),
    }
}

#[test]
fn errors_match_nats_server() {
    use RouteProtoError as E;
    assert_eq!(err_of(b"XYZ\r\n"), E::UnknownOp);
    // Unknown at the first wrong byte, before any newline.
    assert_eq!(err_of(b"RX"), E::UnknownOp);
    assert_eq!(err_of(b"RS+foo"), E::UnknownOp);
    assert_eq!(err_of(b"PUB foo 1\r\n"), E::UnknownOp);
    assert_eq!(err_of(b"MSG foo 1 1\r\n"), E::UnknownOp);
    assert_eq!(err_of(b"AU $G\r\n"), E::UnknownOp, "only a lower-case u");
    assert_eq!(err_of(b"\r\n"), E::UnknownOp);
    assert_eq!(err_of(b"RMSG $G foo 1\r\nxy\r\n"), E::UnknownOp);
    assert_eq!(err_of(b"RMSG $G foo 1\r\nx\rX"), E::UnknownOp);
    assert_eq!(
        err_of(b"RMSG $G foo x\r\n"),
        E::MsgArgs("processRoutedMsgArgs Bad or Missing Size: '[$G foo x]'".into())
    );
    assert_eq!(
        err_of(b"RMSG $G\r\n"),
        E::MsgArgs("processRoutedMsgArgs Parse Error: '[$G]'".into())
    );
    assert_eq!(
        err_of(b"RMSG $G foo * q 1\r\n"),
        E::MsgArgs("processRoutedMsgArgs Bad or Missing Reply Indicator: '*'".into())
    );
    assert_eq!(
        err_of(b"HMSG $G foo 5 4\r\n"),
        E::MsgArgs(
            "processRoutedHeaderMsgArgs Header Size larger then TotalSize: '$G foo 5 4'".into()
        )
    );
    assert_eq!(
        err_of(b"HMSG $G foo x 4\r\n"),
        E::MsgArgs("processRoutedHeaderMsgArgs Bad or Missing Header Size: '$G foo x 4'".into())
    );
    assert_eq!(
        err_of(b"LMSG c $G foo 1\r\n"),
        E::MsgArgs("processRoutedOriginClusterMsgArgs Parse Error: '[c $G foo 1]'".into())
    );
    assert_eq!(err_of(b"RS+ $G\r\n"), E::SubArgs("$G".into()));
    assert_eq!(err_of(b"RS+ $G foo q\r\n"), E::SubArgs("$G foo q".into()));
    assert_eq!(err_of(b"RS- $G a b c\r\n"), E::UnsubArgs("$G a b c".into()));
    assert!(matches!(
        err_of(b"CONNECT {\"name\":\r\n"),
        E::ConnectJson(_)
    ));
    assert!(matches!(err_of(b"INFO [1]\r\n"), E::InfoJson(_)));
    assert!(matches!(
        err_of(b"INFO {\"port\":\"x\"}\r\n"),
        E::InfoJson(_)
    ));
    assert!(E::UnknownOp.sends_err());
    assert!(!E::SubArgs(String::new()).sends_err());
}

#[test]
fn limits_are_enforced_on_complete_and_partial_lines() {
    let mut p = RouteParser::new(16, 10);
    let mut buf = BytesMut::from(&b"RS+ $G 0123456789abcdef\r\n"[..]);
    assert_eq!(
        p.parse(&mut buf),
        Err(RouteProtoError::MaxControlLine { max: 16 })
    );
    let mut buf = BytesMut::from(&b"RS+ $G 0123456789abcdef"[..]);
    assert_eq!(
        p.parse(&mut buf),
        Err(RouteProtoError::MaxControlLine { max: 16 })
    );
    let mut buf = BytesMut::from(&b"RMSG $G f 11\r\n"[..]);
    assert_eq!(
        p.parse(&mut buf),
        Err(RouteProtoError::MaxPayload { size: 11, max: 10 })
    );
    // Exactly at the limits is fine.
    let mut buf = BytesMut::from(&b"RMSG $G f 10\r\n0123456789\r\n"[..]);
    assert!(matches!(p.parse(&mut buf), Ok(Some(RouteOp::Msg(_)))));
    // Blanks after an op name cannot pile up either.
    let mut buf = BytesMut::from(&[&b"RS+"[..], &[b' '; 64]].concat()[..]);
    assert!(p.parse(&mut buf).is_err());
}

#[test]
fn ping_tail_is_ignored_and_dropped() {
    let mut p = RouteParser::new(MCL, MPAY);
    let mut buf = BytesMut::from(&b"PINGxxxxxxxx"[..]);
    assert_eq!(p.parse(&mut buf), Ok(None));
    assert!(buf.is_empty());
    buf.extend_from_slice(b"yy\r\nPONG\r\n");
    assert_eq!(p.parse(&mut buf), Ok(Some(RouteOp::Ping)));
    assert_eq!(p.parse(&mut buf), Ok(Some(RouteOp::Pong)));
}

#[test]
fn invalid_weight_reads_as_zero() {
    let [RouteOp::Sub(s)] = &ok(parse_all(b"RS+ $G foo q -1\r\n"))[..] else {
        panic!("one RS+")
    };
    assert_eq!(s.weight, 0);
}

#[test]
fn encoders_write_go_bytes() {
    let mut out = BytesMut::new();
    encode_sub(&mut out, b"$G", b"foo", None);
    encode_sub(&mut out, b"$G", b"bar", Some((b"q1", 12)));
    encode_unsub(&mut out, b"$G", b"foo", None);
    encode_unsub(&mut out, b"$G", b"bar", Some(b"q1"));
    encode_leaf_sub(&mut out, b"c2", b"$G", b"x", Some((b"q", 1)));
    encode_leaf_unsub(&mut out, b"$G", b"x", None);
    let h = |reply, queues, header_len, total_len| MsgHeader {
        origin: None,
        reply,
        queues,
        header_len,
        total_len,
    };
    encode_msg_header(
        &mut out,
        b"$G",
        b"pub.x",
        &h(Some(b"reply.1"), &[], None, 5),
    );
    encode_msg_header(&mut out, b"$G", b"qq", &h(None, &[b"grp"], None, 2));
    encode_msg_header(&mut out, b"$G", b"pub.h", &h(None, &[], Some(18), 20));
    encode_msg_header(
        &mut out,
        b"$G",
        b"qq",
        &h(Some(b"rr"), &[b"grp", b"g2"], Some(12), 14),
    );
    let l = MsgHeader {
        origin: Some(b"c2"),
        ..h(None, &[], None, 3)
    };
    encode_msg_header(&mut out, b"$G", b"x", &l);
    encode_err(&mut out, "Stale Connection");
    assert_eq!(
        lossy(&out),
        "RS+ $G foo\r\nRS+ $G bar q1 12\r\nRS- $G foo\r\nRS- $G bar q1\r\n\
         LS+ c2 $G x q 1\r\nLS- $G x\r\n\
         RMSG $G pub.x reply.1 5\r\nRMSG $G qq | grp 2\r\nHMSG $G pub.h 18 20\r\n\
         HMSG $G qq + rr grp g2 12 14\r\nLMSG c2 $G x 0 3\r\n-ERR 'Stale Connection'\r\n"
    );
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.$>*-]{1,12}"
}

prop_compose! {
    fn arb_msg()(
        origin in proptest::option::of(token()),
        account in token(),
        subject in token(),
        reply in proptest::option::of(token()),
        queues in proptest::collection::vec(token(), 0..4),
        headers in proptest::option::of("[a-z]{0,8}"),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
    ) -> RoutedMsg {
        // An LMSG always carries a header size; a header block of 0 bytes reads as none.
        let headers = headers.map(|h| Bytes::from(format!("NATS/1.0\r\n{h}\r\n\r\n")));
        RoutedMsg {
            origin: origin.map(Bytes::from),
            account: Bytes::from(account),
            subject: Bytes::from(subject),
            reply: reply.map(Bytes::from),
            queues: queues.into_iter().map(Bytes::from).collect(),
            headers,
            payload: Bytes::from(payload),
        }
    }
}

fn encode_routed(out: &mut BytesMut, m: &RoutedMsg) {
    let queues: Vec<&[u8]> = m.queues.iter().map(|q| &q[..]).collect();
    let h = MsgHeader {
        origin: m.origin.as_deref(),
        reply: m.reply.as_deref(),
        queues: &queues,
        header_len: m.headers.as_ref().map(Bytes::len),
        total_len: m.total_len(),
    };
    encode_msg_header(out, &m.account, &m.subject, &h);
    if let Some(hdr) = &m.headers {
        out.extend_from_slice(hdr);
    }
    out.extend_from_slice(&m.payload);
    out.extend_from_slice(b"\r\n");
}

proptest! {
    #[test]
    fn routed_messages_round_trip(msgs in proptest::collection::vec(arb_msg(), 1..6), at in 0usize..400) {
        let mut wire = BytesMut::new();
        for m in &msgs {
            encode_routed(&mut wire, m);
        }
        let expected: Vec<RouteOp> = msgs.into_iter().map(RouteOp::Msg).collect();
        prop_assert_eq!(ok(parse_all(&wire)), expected.clone());
        prop_assert_eq!(ok(parse_split(&wire, at.min(wire.len()))), expected);
    }

    #[test]
    fn interest_round_trips(
        account in token(), subject in token(),
        queue in proptest::option::of((token(), 1u32..100_000)),
        origin in proptest::option::of(token()),
    ) {
        let mut wire = BytesMut::new();
        let q = queue.as_ref().map(|(q, w)| (q.as_bytes(), *w));
        match &origin {
            Some(o) => encode_leaf_sub(&mut wire, o.as_bytes(), account.as_bytes(), subject.as_bytes(), q),
            None => encode_sub(&mut wire, account.as_bytes(), subject.as_bytes(), q),
        }
        encode_unsub(&mut wire, account.as_bytes(), subject.as_bytes(), q.map(|(q, _)| q));
        let out = ok(parse_all(&wire));
        prop_assert_eq!(out, vec![
            RouteOp::Sub(RemoteSub {
                origin: origin.map(Bytes::from),
                account: b(&account),
                subject: b(&subject),
                queue: queue.as_ref().map(|(q, _)| b(q)),
                weight: queue.as_ref().map_or(0, |(_, w)| *w),
            }),
            RouteOp::Unsub(RemoteUnsub {
                account: b(&account),
                subject: b(&subject),
                queue: queue.as_ref().map(|(q, _)| b(q)),
                leaf: false,
            }),
        ]);
    }

    #[test]
    fn info_and_connect_round_trip(
        id in "[A-Z0-9]{1,20}", name in "[a-z]{0,8}", urls in proptest::collection::vec("[a-z0-9.:]{1,15}", 0..3),
        port in any::<u16>(), auth in any::<bool>(), user in "[a-z]{0,5}",
    ) {
        let info = RouteInfo {
            server_id: id.clone(), server_name: name.clone(), port, auth_required: auth,
            connect_urls: urls, proto: 2, headers: true, lnoc: true,
            import: auth.then(|| RoutePermission { allow: vec!["a.>".into()], deny: vec![] }),
            ..RouteInfo::default()
        };
        let connect = RouteConnect { echo: true, name: id, user, cluster: name, ..RouteConnect::default() };
        let mut wire = BytesMut::new();
        encode_info(&mut wire, &info);
        encode_forwarded_info(&mut wire, &info);
        encode_connect(&mut wire, &connect);
        let out = ok(parse_all(&wire));
        prop_assert_eq!(out, vec![
            RouteOp::Info(Box::new(info.clone())),
            RouteOp::Info(Box::new(info)),
            RouteOp::Connect(Box::new(connect)),
        ]);
    }

    #[test]
    fn garbage_never_panics(input in proptest::collection::vec(any::<u8>(), 0..200), at in 0usize..200) {
        let _ = parse_all(&input);
        let _ = parse_split(&input, at.min(input.len()));
    }
}

/// Routed messages through the parser's less common paths: a name in odd case followed by
/// tabs, an LMSG with a reply and queues (its first queue is the sixth field), more queue names
/// than the parser keeps field positions for, with runs of blanks between them.
const MSG_PATHS: &[u8] = b"rMsG\t \t$G foo 1\r\nx\r\n\
LMSG c2 $G foo + r q1 q2 q3 12 14\r\nNATS/1.0\r\n\r\nhi\r\n\
RMSG $G foo | a \t b  c d e f g h 2\r\nhi\r\n\
HMSG $G foo + r a b c d e 0 1\r\nz\r\n\
hmsg $G foo + r q 12 12\r\nNATS/1.0\r\n\r\n\r\n";

fn with_body(mut m: RoutedMsg, headers: Option<&str>, payload: &str) -> RouteOp {
    m.headers = headers.map(b);
    m.payload = b(payload);
    RouteOp::Msg(m)
}

#[test]
fn message_paths_whole_bytewise_and_split_everywhere() {
    let mut lmsg = msg("$G", "foo", Some("r"), &["q1", "q2", "q3"]);
    lmsg.origin = Some(b("c2"));
    let many = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let expected = vec![
        with_body(msg("$G", "foo", None, &[]), None, "x"),
        with_body(lmsg, Some("NATS/1.0\r\n\r\n"), "hi"),
        with_body(msg("$G", "foo", None, &many), None, "hi"),
        with_body(msg("$G", "foo", Some("r"), &many[..5]), None, "z"),
        with_body(
            msg("$G", "foo", Some("r"), &["q"]),
            Some("NATS/1.0\r\n\r\n"),
            "",
        ),
    ];
    assert_eq!(ok(parse_all(MSG_PATHS)), expected);
    assert_eq!(ok(parse_bytewise(MSG_PATHS)), expected);
    for at in 0..=MSG_PATHS.len() {
        assert_eq!(ok(parse_split(MSG_PATHS, at)), expected, "split at {at}");
    }
}

/// A pinned route's ops name no account (nats-server 2.10).
const PINNED: &[u8] = b"RMSG foo 1\r\nx\r\nRMSG foo r 1\r\nx\r\n\
RMSG foo + r q1 q2 1\r\nx\r\nRMSG foo | q 1\r\nx\r\n\
HMSG foo | q 12 12\r\nNATS/1.0\r\n\r\n\r\nRS+ foo\r\n";

#[test]
fn pinned_route_messages_split_everywhere() {
    let expected = vec![
        with_body(msg("ACC", "foo", None, &[]), None, "x"),
        with_body(msg("ACC", "foo", Some("r"), &[]), None, "x"),
        with_body(msg("ACC", "foo", Some("r"), &["q1", "q2"]), None, "x"),
        with_body(msg("ACC", "foo", None, &["q"]), None, "x"),
        with_body(
            msg("ACC", "foo", None, &["q"]),
            Some("NATS/1.0\r\n\r\n"),
            "",
        ),
        RouteOp::Sub(RemoteSub {
            origin: None,
            account: b("ACC"),
            subject: b("foo"),
            queue: None,
            weight: 0,
        }),
    ];
    for at in 0..=PINNED.len() {
        let mut p = RouteParser::new(MCL, MPAY);
        p.set_account(b("ACC"));
        let mut buf = BytesMut::from(&PINNED[..at]);
        let mut out = Vec::new();
        assert!(!drain(&mut p, &mut buf, &mut out));
        buf.extend_from_slice(&PINNED[at..]);
        assert!(!drain(&mut p, &mut buf, &mut out));
        assert_eq!(ok(out), expected, "split at {at}");
    }
}

#[test]
fn message_fields_share_the_read_buffer() {
    let mut p = RouteParser::new(MCL, MPAY);
    let mut buf = BytesMut::from(&b"HMSG $G foo + r q 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n"[..]);
    let base = buf.as_ptr() as usize;
    let Some(RouteOp::Msg(m)) = p.parse(&mut buf).unwrap() else {
        panic!("no message")
    };
    let at = |b: &Bytes| b.as_ptr() as usize - base;
    assert_eq!(at(&m.account), 5);
    assert_eq!(at(&m.subject), 8);
    assert_eq!(at(m.reply.as_ref().unwrap()), 14);
    assert_eq!(at(&m.queues[0]), 16);
    assert_eq!(at(m.headers.as_ref().unwrap()), 25);
    assert_eq!(at(&m.payload), 37);
    assert_eq!(&m.payload[..], b"hi");
    assert_eq!(&buf[..], b"PING\r\n");
}

#[test]
fn a_payload_not_followed_by_crlf_is_refused_as_it_arrives() {
    for (first, rest) in [
        (&b"RMSG $G foo 2\r\nab"[..], &b"X"[..]),
        (b"RMSG $G foo 2\r\nab\r", b"X"),
    ] {
        let mut p = RouteParser::new(MCL, MPAY);
        let mut buf = BytesMut::from(first);
        assert_eq!(p.parse(&mut buf), Ok(None));
        buf.extend_from_slice(rest);
        assert_eq!(p.parse(&mut buf), Err(RouteProtoError::UnknownOp));
    }
}

#[test]
fn a_line_exactly_at_the_limit_passes_whole_and_cut_before_its_newline() {
    let input = b"A- 0123456789abcdef\r\nPING\r\n";
    let expected = vec![RouteOp::AccountUnsub(b("0123456789abcdef")), RouteOp::Ping];
    for at in 0..=input.len() {
        let mut p = RouteParser::new(16, 10);
        let mut buf = BytesMut::from(&input[..at]);
        let mut out = Vec::new();
        assert!(!drain(&mut p, &mut buf, &mut out), "split at {at}");
        buf.extend_from_slice(&input[at..]);
        assert!(!drain(&mut p, &mut buf, &mut out), "split at {at}");
        assert_eq!(ok(out), expected, "split at {at}");
    }
}
