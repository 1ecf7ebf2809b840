use super::*;
use proptest::prelude::*;

type Out = Vec<Result<ClientOp, ProtoError>>;

/// Parses until more bytes are needed or an error; returns true on error.
fn drain(p: &mut ClientParser, buf: &mut BytesMut, out: &mut Out) -> bool {
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

/// Feeds `input` in pieces cut at `cuts` (ascending), parsing after each piece.
fn feed_cut(input: &[u8], cuts: &[usize], mcl: u32, mp: u32) -> (Out, BytesMut) {
    let mut p = ClientParser::new(mcl, mp);
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

/// Parses `input` whole, then split at every boundary, then byte by byte; all must agree.
fn parse_everywhere(input: &[u8], mcl: u32, mp: u32) -> Out {
    let (whole, rest) = feed_cut(input, &[], mcl, mp);
    let failed = matches!(whole.last(), Some(Err(_)));
    for k in 0..=input.len() {
        let (split, split_rest) = feed_cut(input, &[k], mcl, mp);
        assert_eq!(
            split,
            whole,
            "split at {k} of {:?}",
            String::from_utf8_lossy(input)
        );
        if !failed {
            assert_eq!(split_rest, rest, "leftover, split at {k}");
        }
    }
    let every: Vec<usize> = (1..input.len()).collect();
    let (bytewise, _) = feed_cut(input, &every, mcl, mp);
    assert_eq!(bytewise, whole, "byte by byte");
    whole
}

fn ops(input: &[u8]) -> Out {
    parse_everywhere(input, DEFAULT_MAX_CONTROL_LINE, DEFAULT_MAX_PAYLOAD)
}

fn one(input: &[u8]) -> ClientOp {
    let out = ops(input);
    assert_eq!(out.len(), 1, "{out:?}");
    out.into_iter().next().unwrap().unwrap()
}

fn err(input: &[u8]) -> ProtoError {
    let out = ops(input);
    match out.last() {
        Some(Err(e)) => e.clone(),
        other => panic!(
            "no error for {:?}: {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn publ(subject: &str, reply: Option<&str>, headers: Option<&str>, payload: &str) -> ClientOp {
    ClientOp::Pub(PubMsg {
        subject: b(subject),
        reply: reply.map(b),
        headers: headers.map(b),
        payload: b(payload),
    })
}

fn sub(subject: &str, queue: Option<&str>, sid: &str) -> ClientOp {
    ClientOp::Sub {
        subject: b(subject),
        queue: queue.map(b),
        sid: b(sid),
    }
}

#[test]
fn pub_variants() {
    assert_eq!(
        one(b"PUB foo 5\r\nhello\r\n"),
        publ("foo", None, None, "hello")
    );
    assert_eq!(
        one(b"PUB foo.bar _INBOX.1 5\r\nhello\r\n"),
        publ("foo.bar", Some("_INBOX.1"), None, "hello")
    );
    assert_eq!(one(b"PUB foo 0\r\n\r\n"), publ("foo", None, None, ""));
    assert_eq!(
        one(b"pub foo 2\r\n\r\n\r\n"),
        publ("foo", None, None, "\r\n")
    );
    // Runs of spaces and tabs, a bare '\n' ending the control line, leading zeros.
    assert_eq!(
        one(b"PuB \t foo\t\t r  005 \nhello\r\n"),
        publ("foo", Some("r"), None, "hello")
    );
    // A '\r' inside a PUB line is not a separator (Go splits PUB on spaces and tabs only).
    assert_eq!(one(b"PUB a\rb 1\r\nx\r\n"), publ("a\rb", None, None, "x"));
}

#[test]
fn hpub_variants() {
    let hdr = "NATS/1.0\r\nA: b\r\n\r\n";
    let line = format!("HPUB foo {} {}\r\n{hdr}hello\r\n", hdr.len(), hdr.len() + 5);
    assert_eq!(one(line.as_bytes()), publ("foo", None, Some(hdr), "hello"));
    let line = format!("hpub\tfoo  bar {} {}\n{hdr}\r\n", hdr.len(), hdr.len());
    assert_eq!(
        one(line.as_bytes()),
        publ("foo", Some("bar"), Some(hdr), "")
    );
    // Header size 0: nats-server delivers a plain MSG, so there are no headers.
    assert_eq!(
        one(b"HPUB foo 0 5\r\nhello\r\n"),
        publ("foo", None, None, "hello")
    );
    let op = one(b"HPUB foo 2 2\r\nab\r\n");
    assert_eq!(op, publ("foo", None, Some("ab"), ""));
    let ClientOp::Pub(m) = op else { unreachable!() };
    assert_eq!(m.total_len(), 2);
}

#[test]
fn sub_unsub() {
    assert_eq!(one(b"SUB foo 1\r\n"), sub("foo", None, "1"));
    assert_eq!(one(b"sub foo.* q 22\r\n"), sub("foo.*", Some("q"), "22"));
    assert_eq!(one(b"SUB\t>\t\tq\t3\n"), sub(">", Some("q"), "3"));
    let unsub = |sid: &str, max| ClientOp::Unsub { sid: b(sid), max };
    assert_eq!(one(b"UNSUB 1\r\n"), unsub("1", None));
    assert_eq!(one(b"unsub 1 10\r\n"), unsub("1", Some(10)));
    assert_eq!(one(b"UNSUB 1 0\r\n"), unsub("1", Some(0)));
    // Go: parseSize gives -1, which nats-server treats like no max at all.
    assert_eq!(one(b"UNSUB 1 abc\r\n"), unsub("1", None));
    assert_eq!(one(b"UNSUB 1 1234567890\r\n"), unsub("1", None));
}

#[test]
fn ping_pong_ok_ignore_the_rest_of_the_line() {
    for input in [&b"PING\r\n"[..], b"ping\n", b"PiNg foo\r\n", b"PINGX\n"] {
        assert_eq!(one(input), ClientOp::Ping);
    }
    assert_eq!(one(b"PONG\r\n"), ClientOp::Pong);
    assert_eq!(one(b"pong whatever\r\n"), ClientOp::Pong);
    assert_eq!(one(b"+OK\r\n"), ClientOp::Ok);
    assert_eq!(one(b"+okgarbage\r\n"), ClientOp::Ok);
    // Unbounded junk after PING is dropped as it comes, never buffered nor refused.
    let mut input = b"PING".to_vec();
    input.extend(std::iter::repeat_n(b'x', 10_000));
    let (out, rest) = feed_cut(&input, &[100, 5000], 16, 16);
    assert!(out.is_empty());
    assert!(rest.is_empty());
}

#[test]
fn connect_info_err() {
    // No line end yet: nothing.
    assert!(feed_cut(b"CONNECT {}", &[], 4096, 4096).0.is_empty());
    let ClientOp::Connect(c) =
        one(b"CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"n\",\"headers\":true}\r\n")
    else {
        panic!("not a CONNECT")
    };
    assert!(!c.verbose && !c.pedantic && c.echo && c.headers);
    assert_eq!(c.name.as_deref(), Some("n"));
}

#[test]
fn later_connect_keeps_what_it_omits() {
    // Go decodes every CONNECT into the connection's same options: a field a later CONNECT
    // leaves out keeps the earlier CONNECT's value, not the default.
    let mut p = ClientParser::new(4096, 4096);
    let mut buf = BytesMut::from(
        &b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false,\"headers\":true}\r\nCONNECT {\"name\":\"x\"}\r\nCONNECT {\"verbose\":true}\r\n"[..],
    );
    let mut got = Vec::new();
    while let Ok(Some(op)) = p.parse(&mut buf) {
        if let ClientOp::Connect(c) = op {
            got.push((c.verbose, c.pedantic, c.echo, c.headers));
        }
    }
    assert_eq!(
        got,
        [
            (false, false, false, true),
            (false, false, false, true),
            (true, false, false, true)
        ]
    );
}

#[test]
fn connect_defaults() {
    // Go: defaultOpts — verbose, pedantic and echo default to true.
    let defaults = ConnectInfo {
        verbose: true,
        pedantic: true,
        echo: true,
        ..ConnectInfo::default()
    };
    for input in [
        &b"CONNECT {}\r\n"[..],
        b"connect\t{}\n",
        b"CONNECT{}\r\n",
        b"CONNECT null\r\n",
        b"CONNECT {\"verbose\":null,\"echo\":null}\r\n",
        b"CONNECT {\"unknown\":[1,2]}\r\n",
    ] {
        assert_eq!(one(input), ClientOp::Connect(Box::new(defaults.clone())));
    }
    // Go's encoding/json matches keys case-insensitively.
    let ClientOp::Connect(c) = one(b"CONNECT {\"Verbose\":false,\"USER\":\"u\"}\r\n") else {
        panic!("not a CONNECT")
    };
    assert!(!c.verbose);
    assert_eq!(c.user.as_deref(), Some("u"));
    assert_eq!(one(b"INFO {}\r\n"), ClientOp::Info(b("{}")));
    assert_eq!(one(b"info {\"a\":1}\n"), ClientOp::Info(b("{\"a\":1}")));
    assert_eq!(one(b"-ERR 'oops'\r\n"), ClientOp::Err(b("'oops'")));
    assert_eq!(one(b"-err\t\tx y\n"), ClientOp::Err(b("x y")));
}

#[test]
fn several_ops_in_one_buffer() {
    let input = b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n\
HPUB foo r 12 14\r\nNATS/1.0\r\n\r\nyo\r\nUNSUB 1 5\r\nPONG\r\n+OK\r\n-ERR x\r\nINFO {}\r\nPUB fo";
    let out = ops(input);
    let kinds: Vec<_> = out
        .iter()
        .map(|r| match r.as_ref().unwrap() {
            ClientOp::Connect(_) => "connect",
            ClientOp::Pub(m) if m.headers.is_some() => "hpub",
            ClientOp::Pub(_) => "pub",
            ClientOp::Sub { .. } => "sub",
            ClientOp::Unsub { .. } => "unsub",
            ClientOp::Ping => "ping",
            ClientOp::Pong => "pong",
            ClientOp::Info(_) => "info",
            ClientOp::Ok => "ok",
            ClientOp::Err(_) => "err",
        })
        .collect();
    assert_eq!(
        kinds,
        ["connect", "sub", "pub", "ping", "hpub", "unsub", "pong", "ok", "err", "info"]
    );
    assert_eq!(out[2], Ok(publ("foo", None, None, "hi")));
    assert_eq!(
        out[4],
        Ok(publ("foo", Some("r"), Some("NATS/1.0\r\n\r\n"), "yo"))
    );
    // The partial "PUB fo" waits: its arguments stay in the buffer.
    let (_, rest) = feed_cut(input, &[], 4096, 4096);
    assert_eq!(&rest[..], b"fo");
}

#[test]
fn unknown_op_errors() {
    for input in [
        &b"FOO\r\n"[..],
        b"\r\n",
        b" PING\r\n",
        b"P\r\n",
        b"PUB\r\n",
        b"PUBX foo 1\r\n",
        b"UNSUB\r\n",
        b"SUB\r\n",
        b"-ERR\r\n",
        b"+O\r\n",
        b"MSG foo 1 3\r\n",
        b"HMSG foo 1 2 3\r\n",
        b"RS+ foo\r\n",
        b"LS+ foo\r\n",
        b"A+ foo\r\n",
        b"CONNEC {}\r\n",
        // The payload must be followed by exactly CRLF.
        b"PUB foo 3\r\nabcX\r\n",
        b"PUB foo 3\r\nabc\nPING\r\n",
        b"PUB foo 3\r\nabc\rX",
        b"PUB foo 0\r\nX",
        b"HPUB foo 1 1\r\naXY",
    ] {
        let e = err(input);
        assert_eq!(
            e,
            ProtoError::UnknownOp,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(e.err_text(), "Unknown Protocol Operation");
        assert!(e.sends_err() && e.closes());
    }
    // Ops before the bad one are still delivered.
    let out = ops(b"PING\r\nXX\r\n");
    assert_eq!(out, vec![Ok(ClientOp::Ping), Err(ProtoError::UnknownOp)]);
}

#[test]
fn argument_errors_close_silently() {
    let cases: &[(&[u8], ProtoError)] = &[
        (b"PUB foo\r\n", ProtoError::PubArgs("foo".into())),
        // Go takes the first byte after the separators verbatim, even a '\r'.
        (b"PUB \r\n", ProtoError::PubArgs("\r".into())),
        (b"PUB a b c 1\r\n", ProtoError::PubArgs("a b c 1".into())),
        (b"PUB foo -1\r\n", ProtoError::PubSize("foo -1".into())),
        (b"PUB foo 1x\r\n", ProtoError::PubSize("foo 1x".into())),
        (
            b"PUB foo 1234567890\r\n",
            ProtoError::PubSize("foo 1234567890".into()),
        ),
        (b"HPUB foo 3\r\n", ProtoError::HpubArgs("foo 3".into())),
        (
            b"HPUB a b c d e\r\n",
            ProtoError::HpubArgs("a b c d e".into()),
        ),
        (
            b"HPUB foo x 3\r\n",
            ProtoError::HpubHeaderSize("foo x 3".into()),
        ),
        (
            b"HPUB foo 1 x\r\n",
            ProtoError::HpubTotalSize("foo 1 x".into()),
        ),
        (
            b"HPUB foo 5 3\r\n",
            ProtoError::HpubHeaderTooLarge("foo 5 3".into()),
        ),
        (b"SUB foo\r\n", ProtoError::SubArgs("foo".into())),
        (b"SUB a b c d\r\n", ProtoError::SubArgs("a b c d".into())),
        (b"UNSUB \r\n", ProtoError::UnsubArgs("\r".into())),
        (b"UNSUB 1 2 3\r\n", ProtoError::UnsubArgs("1 2 3".into())),
    ];
    for (input, want) in cases {
        let e = err(input);
        assert_eq!(&e, want, "{:?}", String::from_utf8_lossy(input));
        assert!(!e.sends_err() && e.closes());
    }
    assert_eq!(
        ProtoError::PubArgs("foo".into()).err_text(),
        "processPub Parse Error: \"foo\""
    );
}

#[test]
fn json_errors() {
    for input in [
        &b"CONNECT {bad\r\n"[..],
        b"CONNECT\r\n",
        b"CONNECT []\r\n",
        b"CONNECT {} x\r\n",
        b"CONNECT {\"verbose\":\"x\"}\r\n",
    ] {
        let e = err(input);
        assert!(matches!(e, ProtoError::ConnectJson(_)), "{e:?}");
        assert!(!e.sends_err() && e.closes());
    }
    for input in [&b"INFO x\r\n"[..], b"INFO []\r\n", b"INFO\r\n"] {
        assert!(matches!(err(input), ProtoError::InfoJson(_)));
    }
}

#[test]
fn hpub_needs_headers() {
    let mut p = ClientParser::new(4096, 4096);
    p.set_headers(false);
    let mut buf = BytesMut::from(&b"HPUB foo 2 2\r\nab\r\n"[..]);
    let e = p.parse(&mut buf).unwrap_err();
    assert_eq!(e, ProtoError::HeadersNotSupported);
    assert!(!e.sends_err());
    p.set_headers(true);
    let mut buf = BytesMut::from(&b"HPUB foo 2 2\r\nab\r\n"[..]);
    assert_eq!(
        p.parse(&mut buf),
        Ok(Some(publ("foo", None, Some("ab"), "")))
    );
}

#[test]
fn ops_before_connect_when_awaiting_auth() {
    for input in [&b"PING\r\n"[..], b"SUB foo 1\r\n", b"FOO\r\n", b"\r\n"] {
        let mut p = ClientParser::new(4096, 4096);
        p.set_awaiting_auth(true);
        let mut buf = BytesMut::from(input);
        let e = p.parse(&mut buf).unwrap_err();
        assert_eq!(e, ProtoError::AuthViolation);
        assert_eq!(e.err_text(), "Authorization Violation");
        assert!(e.sends_err() && e.closes());
    }
    let mut p = ClientParser::new(4096, 4096);
    p.set_awaiting_auth(true);
    let mut buf = BytesMut::from(&b"connect {}\r\nPING\r\n"[..]);
    assert!(matches!(p.parse(&mut buf), Ok(Some(ClientOp::Connect(_)))));
    // Still awaiting (the CONNECT failed authentication): the PING is refused.
    assert_eq!(p.parse(&mut buf), Err(ProtoError::AuthViolation));
    let mut p = ClientParser::new(4096, 4096);
    p.set_awaiting_auth(true);
    let mut buf = BytesMut::from(&b"CONNECT {}\r\nPING\r\n"[..]);
    assert!(matches!(p.parse(&mut buf), Ok(Some(ClientOp::Connect(_)))));
    p.set_awaiting_auth(false);
    assert_eq!(p.parse(&mut buf), Ok(Some(ClientOp::Ping)));
}

#[test]
fn max_control_line_edge() {
    let mcl = 16;
    let ok = |line: &[u8]| parse_everywhere(line, mcl, 1024);
    // Arguments of exactly 16 bytes pass, 17 fail; the op name and its separators do not count.
    let arg16 = b"abcdefghijklm 12"; // 16 bytes: SUB subject + sid
    let mut line = b"SUB    \t".to_vec();
    line.extend_from_slice(arg16);
    line.extend_from_slice(b"\r\n");
    assert_eq!(ok(&line), vec![Ok(sub("abcdefghijklm", None, "12"))]);
    let line17 = b"SUB abcdefghijklm 123\r\n";
    let e = ok(line17).pop().unwrap().unwrap_err();
    assert_eq!(e, ProtoError::MaxControlLine { max: 16 });
    assert_eq!(e.err_text(), "maximum control line exceeded");
    assert!(e.sends_err() && e.closes());
    // Without a line end yet: 16 pending argument bytes wait, 17 fail at once.
    let (out, rest) = feed_cut(b"PUB abcdefghijklmnop", &[], mcl, 1024);
    assert!(out.is_empty());
    assert_eq!(rest.len(), 16);
    let (out, _) = feed_cut(b"PUB abcdefghijklmnopq", &[], mcl, 1024);
    assert_eq!(out, vec![Err(ProtoError::MaxControlLine { max: 16 })]);
    // A pending trailing '\r' does not count, as on a complete line.
    let (out, _) = feed_cut(b"PUB abcdefghijklmnop\r", &[], mcl, 1024);
    assert!(out.is_empty());
    // Every op is checked, CONNECT too.
    let e = ok(b"CONNECT {\"name\":\"abcdefgh\"}\r\n").pop().unwrap();
    assert!(matches!(e, Err(ProtoError::MaxControlLine { .. })));
    // Whitespace before the arguments is skipped as it comes, not buffered nor limited.
    let mut spaces = b"SUB".to_vec();
    spaces.extend(std::iter::repeat_n(b' ', 1000));
    let (out, rest) = feed_cut(&spaces, &[10, 500], mcl, 1024);
    assert!(out.is_empty() && rest.is_empty());
    spaces.extend_from_slice(b"a 1\r\n");
    assert_eq!(
        feed_cut(&spaces, &[10, 500], mcl, 1024).0,
        vec![Ok(sub("a", None, "1"))]
    );
}

#[test]
fn max_payload_edge() {
    let mp = 5;
    assert_eq!(
        parse_everywhere(b"PUB foo 5\r\nhello\r\n", 4096, mp),
        vec![Ok(publ("foo", None, None, "hello"))]
    );
    // Refused as soon as the control line is complete, before any payload byte arrives.
    let (out, _) = feed_cut(b"PUB foo 6\r\n", &[], 4096, mp);
    let e = out[0].clone().unwrap_err();
    assert_eq!(e, ProtoError::MaxPayload { size: 6, max: 5 });
    assert_eq!(e.err_text(), "Maximum Payload Violation");
    assert!(e.sends_err() && e.closes());
    // HPUB: the total size counts.
    let (out, _) = feed_cut(b"HPUB foo 2 6\r\n", &[], 4096, mp);
    assert_eq!(out, vec![Err(ProtoError::MaxPayload { size: 6, max: 5 })]);
    assert_eq!(
        parse_everywhere(b"HPUB foo 2 5\r\nabcde\r\n", 4096, mp),
        vec![Ok(publ("foo", None, Some("ab"), "cde"))]
    );
    // The limit can change between ops.
    let mut p = ClientParser::new(4096, mp);
    p.set_max_payload(6);
    let mut buf = BytesMut::from(&b"PUB foo 6\r\nhello!\r\n"[..]);
    assert_eq!(
        p.parse(&mut buf),
        Ok(Some(publ("foo", None, None, "hello!")))
    );
}

#[test]
fn payload_shares_the_read_buffer() {
    let hdr = "NATS/1.0\r\n\r\n";
    let input = format!(
        "PUB foo 5\r\nhello\r\nHPUB bar {0} {1}\r\n{hdr}world\r\n",
        hdr.len(),
        hdr.len() + 5
    );
    let mut buf = BytesMut::from(input.as_bytes());
    let base = buf.as_ptr() as usize;
    let mut p = ClientParser::new(4096, 4096);
    let Ok(Some(ClientOp::Pub(m))) = p.parse(&mut buf) else {
        panic!("no PUB")
    };
    assert_eq!(
        m.payload.as_ptr() as usize,
        base + input.find("hello").unwrap()
    );
    assert_eq!(
        m.subject.as_ptr() as usize,
        base + input.find("foo").unwrap()
    );
    let Ok(Some(ClientOp::Pub(m))) = p.parse(&mut buf) else {
        panic!("no HPUB")
    };
    assert_eq!(
        m.payload.as_ptr() as usize,
        base + input.find("world").unwrap()
    );
    assert_eq!(
        m.headers.unwrap().as_ptr() as usize,
        base + input.find("NATS").unwrap()
    );
    assert!(buf.is_empty());
}

#[test]
fn parser_restarts_after_an_error() {
    let mut p = ClientParser::new(4096, 4096);
    let mut buf = BytesMut::from(&b"PUB foo 1\r\nxY"[..]);
    assert_eq!(p.parse(&mut buf), Err(ProtoError::UnknownOp));
    let mut buf = BytesMut::from(&b"PING\r\n"[..]);
    assert_eq!(p.parse(&mut buf), Ok(Some(ClientOp::Ping)));
}

#[test]
fn encoders() {
    let mut out = BytesMut::new();
    encode_msg_header(&mut out, b"foo.bar", b"7", None, 0);
    encode_msg_header(&mut out, b"foo", b"12", Some(b"_INBOX.x"), 1_048_576);
    assert_eq!(
        &out[..],
        b"MSG foo.bar 7 0\r\nMSG foo 12 _INBOX.x 1048576\r\n"
    );
    let mut out = BytesMut::new();
    encode_hmsg_header(&mut out, b"s", b"1", None, 12, 17);
    encode_hmsg_header(&mut out, b"s", b"1", Some(b"r"), 12, 12);
    assert_eq!(&out[..], b"HMSG s 1 12 17\r\nHMSG s 1 r 12 12\r\n");
    let mut out = BytesMut::new();
    encode_err(&mut out, "Unknown Protocol Operation");
    assert_eq!(&out[..], b"-ERR 'Unknown Protocol Operation'\r\n");
    let mut out = BytesMut::new();
    encode_no_responders(&mut out, b"_INBOX.abc", b"9");
    assert_eq!(
        &out[..],
        b"HMSG _INBOX.abc 9 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    );
    assert_eq!(
        (PING, PONG, OK, CRLF),
        (
            &b"PING\r\n"[..],
            &b"PONG\r\n"[..],
            &b"+OK\r\n"[..],
            &b"\r\n"[..]
        )
    );
}

#[test]
fn encode_info_matches_nats_server_framing() {
    let info = ServerInfo {
        server_id: "ID".into(),
        server_name: "n".into(),
        version: "2.9.10".into(),
        host: "0.0.0.0".into(),
        port: 4222,
        headers: true,
        max_payload: 1024,
        proto: 1,
        ..ServerInfo::default()
    };
    let mut out = BytesMut::new();
    encode_info(&mut out, &info);
    let json = serde_json::to_string(&info).unwrap();
    assert_eq!(out, format!("INFO {json} \r\n").as_bytes());
    assert!(out.starts_with(b"INFO {\"server_id\":\"ID\""));
    // And our parser reads it back (the raw arguments keep the space).
    assert_eq!(one(&out), ClientOp::Info(Bytes::from(format!("{json} "))));
}

#[derive(Debug, Clone)]
enum Gen {
    Pub {
        subject: String,
        reply: Option<String>,
        headers: Option<Vec<(String, String)>>,
        payload: Vec<u8>,
    },
    Sub {
        subject: String,
        queue: Option<String>,
        sid: String,
    },
    Unsub {
        sid: String,
        max: Option<u32>,
    },
    Ping,
    Pong,
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.*>$-]{1,12}"
}

fn gen_op() -> impl Strategy<Value = Gen> {
    prop_oneof![
        (
            token(),
            proptest::option::of(token()),
            proptest::option::of(proptest::collection::vec(
                ("[A-Za-z-]{1,6}", "[ -~]{0,8}"),
                0..3
            )),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(subject, reply, headers, payload)| Gen::Pub {
                subject,
                reply,
                headers,
                payload
            }),
        (token(), proptest::option::of(token()), "[0-9a-z]{1,6}").prop_map(
            |(subject, queue, sid)| Gen::Sub {
                subject,
                queue,
                sid
            }
        ),
        ("[0-9a-z]{1,6}", proptest::option::of(0u32..1_000_000))
            .prop_map(|(sid, max)| Gen::Unsub { sid, max }),
        Just(Gen::Ping),
        Just(Gen::Pong),
    ]
}

/// Encodes `op` as a client would, with the given separator, line end and op-name case.
fn encode_client(op: &Gen, sep: &str, eol: &str, lower: bool, out: &mut Vec<u8>) -> ClientOp {
    let name = |n: &str| {
        if lower {
            n.to_ascii_lowercase()
        } else {
            n.to_owned()
        }
    };
    let mut line = String::new();
    let expected = match op {
        Gen::Pub {
            subject,
            reply,
            headers,
            payload,
        } => {
            let block = headers.as_ref().map(|hs| {
                let mut h = super::super::headers::Headers::new();
                for (k, v) in hs {
                    h.append(k, Bytes::copy_from_slice(v.trim().as_bytes()))
                        .unwrap();
                }
                h.to_bytes()
            });
            let mut fields = vec![subject.clone()];
            fields.extend(reply.clone());
            match &block {
                Some(bl) => {
                    line.push_str(&name("HPUB"));
                    fields.push(bl.len().to_string());
                    fields.push((bl.len() + payload.len()).to_string());
                }
                None => {
                    line.push_str(&name("PUB"));
                    fields.push(payload.len().to_string());
                }
            }
            line.push_str(sep);
            line.push_str(&fields.join(sep));
            line.push_str(eol);
            out.extend_from_slice(line.as_bytes());
            if let Some(bl) = &block {
                out.extend_from_slice(bl);
            }
            out.extend_from_slice(payload);
            out.extend_from_slice(b"\r\n");
            return ClientOp::Pub(PubMsg {
                subject: b(subject),
                reply: reply.as_deref().map(b),
                headers: block,
                payload: Bytes::copy_from_slice(payload),
            });
        }
        Gen::Sub {
            subject,
            queue,
            sid,
        } => {
            let mut fields = vec![subject.clone()];
            fields.extend(queue.clone());
            fields.push(sid.clone());
            line = format!("{}{sep}{}{eol}", name("SUB"), fields.join(sep));
            sub(subject, queue.as_deref(), sid)
        }
        Gen::Unsub { sid, max } => {
            let mut fields = vec![sid.clone()];
            fields.extend(max.map(|m| m.to_string()));
            line = format!("{}{sep}{}{eol}", name("UNSUB"), fields.join(sep));
            ClientOp::Unsub {
                sid: b(sid),
                max: max.map(u64::from),
            }
        }
        Gen::Ping => {
            line = format!("{}{eol}", name("PING"));
            ClientOp::Ping
        }
        Gen::Pong => {
            line = format!("{}{eol}", name("PONG"));
            ClientOp::Pong
        }
    };
    out.extend_from_slice(line.as_bytes());
    expected
}

proptest! {
    #[test]
    fn round_trip(
        ops in proptest::collection::vec(
            (gen_op(), prop_oneof![Just(" "), Just("\t"), Just("  \t ")], prop_oneof![Just("\r\n"), Just("\n")], any::<bool>()),
            1..12,
        ),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut wire = Vec::new();
        let expected: Vec<_> = ops
            .iter()
            .map(|(op, sep, eol, lower)| Ok(encode_client(op, sep, eol, *lower, &mut wire)))
            .collect();
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        let (out, rest) = feed_cut(&wire, &cuts, DEFAULT_MAX_CONTROL_LINE, DEFAULT_MAX_PAYLOAD);
        prop_assert_eq!(out, expected);
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn never_panics_on_garbage(input in proptest::collection::vec(
        prop_oneof![Just(b'P'), Just(b'U'), Just(b'B'), Just(b' '), Just(b'\r'), Just(b'\n'), Just(b'1'), any::<u8>()],
        0..200,
    ), cut in any::<prop::sample::Index>()) {
        let k = cut.index(input.len() + 1);
        let (out, _) = feed_cut(&input, &[k], 32, 64);
        let (whole, _) = feed_cut(&input, &[], 32, 64);
        prop_assert_eq!(out, whole);
    }
}

/// The fast lane must agree with the full parser wherever it answers, and it must answer for
/// the plainly formatted publishes real clients send.
mod fast_lane {
    use super::*;

    fn check(input: &[u8], headers: bool) -> bool {
        let mut p = ClientParser::new(4096, 1024);
        p.set_headers(headers);
        let Some(fp) = p.fast_pub(input, 2048) else {
            return false;
        };
        let mut buf = BytesMut::from(input);
        let op = p
            .parse(&mut buf)
            .expect("fast lane accepted what the parser rejects");
        let Some(ClientOp::Pub(m)) = op else {
            panic!("fast lane accepted a non-PUB: {op:?}")
        };
        assert_eq!(&m.subject[..], &input[fp.subject.clone()]);
        assert_eq!(m.reply.as_deref(), fp.reply.clone().map(|r| &input[r]));
        assert_eq!(m.headers.as_deref(), fp.headers.clone().map(|h| &input[h]));
        assert_eq!(&m.payload[..], &input[fp.payload.clone()]);
        assert_eq!(input.len() - buf.len(), fp.consumed, "consumed");
        true
    }

    #[test]
    fn answers_for_plain_publishes() {
        assert!(check(b"PUB foo 5\r\nhello\r\n", true));
        assert!(check(b"PUB foo.bar _INBOX.1 0\r\n\r\nPING\r\n", true));
        assert!(check(b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", true));
        assert!(check(b"HPUB foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n", true));
        // Bytes below the space other than the separators are subject bytes, as in the parser.
        assert!(check(b"PUB f\x01o\ro 2\r\nhi\r\n", true));
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        let p = ClientParser::new(4096, 1024);
        for input in [
            &b"pub foo 5\r\nhello\r\n"[..],
            b"PUB foo  5\r\nhello\r\n",
            b"PUB\tfoo 5\r\nhello\r\n",
            b"PUB foo\t5\r\nhello\r\n",
            b"PUB foo 5 \r\nhello\r\n",
            b"PUB foo 5\r\r\nhello\r\n",
            b"PUB foo 5\nhello\r\n",
            b"PUB foo 5\r\nhell",
            b"PUB foo 5\r\nhelloXX",
            b"PUB foo 2000\r\n",
            b"PUB foo bar baz 1\r\nx\r\n",
            b"HPUB foo 0 2\r\nhi\r\n",
            b"HPUB foo 5 2\r\nhi\r\n",
            b"SUB foo 1\r\n",
        ] {
            assert!(
                p.fast_pub(input, 2048).is_none(),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let mut h = ClientParser::new(4096, 1024);
        h.set_headers(false);
        assert!(h
            .fast_pub(b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", 2048)
            .is_none());
    }

    fn token() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"foo".to_vec()),
            Just(b"a.b".to_vec()),
            Just(b"_INBOX.x".to_vec()),
            Just(b"12".to_vec()),
            Just(b"0".to_vec()),
            Just(b"5".to_vec()),
            Just(Vec::new()),
            proptest::collection::vec(any::<u8>(), 0..4),
        ]
    }

    proptest! {
        #[test]
        fn agrees_with_the_parser(
            op in prop_oneof![Just(&b"PUB"[..]), Just(&b"HPUB"[..]), Just(&b"pub"[..])],
            args in proptest::collection::vec(token(), 0..5),
            seps in proptest::collection::vec(prop_oneof![Just(&b" "[..]), Just(&b"  "[..]), Just(&b"\t"[..])], 5),
            eol in prop_oneof![Just(&b"\r\n"[..]), Just(&b"\n"[..])],
            body in proptest::collection::vec(any::<u8>(), 0..24),
            tail in prop_oneof![Just(&b"\r\n"[..]), Just(&b"\n"[..]), Just(&b""[..]), Just(&b"\r\nPING\r\n"[..])],
            headers in any::<bool>(),
        ) {
            let mut input = op.to_vec();
            for (i, a) in args.iter().enumerate() {
                input.extend_from_slice(seps[i % seps.len()]);
                input.extend_from_slice(a);
            }
            input.extend_from_slice(eol);
            input.extend_from_slice(&body);
            input.extend_from_slice(tail);
            check(&input, headers);
        }
    }
}
