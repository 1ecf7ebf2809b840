use super::reply::{base64_decode, base64_encode};
use super::*;

fn settings(name: &str, id: &str) -> GatewaySettings {
    GatewaySettings {
        info: RouteInfo {
            server_id: id.into(),
            server_name: id.to_lowercase(),
            version: "2.9.10".into(),
            host: "127.0.0.1".into(),
            port: 7222,
            headers: true,
            max_payload: 1 << 20,
            gateway: name.into(),
            gateway_url: "127.0.0.1:7222".into(),
            gateway_urls: vec!["127.0.0.1:7222".into()],
            gateway_nrp: true,
            gateway_iom: true,
            ..RouteInfo::default()
        },
        max_control_line: 4096,
        max_payload: 1 << 20,
        max_pending: 1 << 20,
        ping_interval: Duration::from_secs(120),
        ping_max: 2,
        auth_timeout: Duration::from_secs(2),
        user: String::new(),
        password: String::new(),
        known: None,
    }
}

fn drain_out(c: &mut GatewayConn) -> Vec<u8> {
    let mut v = Vec::new();
    while let Some(b) = c.poll_transmit() {
        v.extend_from_slice(&b);
    }
    v
}

fn events(c: &mut GatewayConn) -> Vec<GatewayEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn feed(c: &mut GatewayConn, now: Instant, bytes: &[u8]) -> Vec<GatewayEvent> {
    let mut buf = BytesMut::from(bytes);
    let mut ev = Vec::new();
    while c.handle_input(now, &mut buf) {
        ev.extend(events(c));
    }
    ev.extend(events(c));
    ev
}

fn outbound(now: Instant, to: &str) -> GatewayConn {
    let role = GatewayRole::Outbound {
        name: to.into(),
        user: None,
        pass: None,
        tls: false,
    };
    GatewayConn::new(now, 1, Arc::new(settings("A", "SRVA")), role)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs both sides against each other until neither has bytes to send.
fn pump(
    a: &mut GatewayConn,
    b: &mut GatewayConn,
    now: Instant,
) -> (Vec<GatewayEvent>, Vec<GatewayEvent>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    for _ in 0..16 {
        let (to_b, to_a) = (drain_out(a), drain_out(b));
        if to_a.is_empty() && to_b.is_empty() {
            break;
        }
        eb.extend(feed(b, now, &to_b));
        ea.extend(feed(a, now, &to_a));
    }
    (ea, eb)
}

#[test]
#[allow(clippy::disallowed_methods)] // any start instant will do
fn handshake_both_ways_then_interest_and_messages() {
    let now = Instant::now();
    let mut out = outbound(now, "B");
    let mut inb = GatewayConn::new(
        now,
        2,
        Arc::new(settings("B", "SRVB")),
        GatewayRole::Inbound,
    );
    // The dialer sends nothing before the peer's INFO.
    assert!(drain_out(&mut out).is_empty());
    let (ea, eb) = pump(&mut out, &mut inb, now);
    assert_eq!(
        ea,
        [GatewayEvent::Connected {
            name: "B".into(),
            remote_id: "SRVB".into(),
            remote_name: "srvb".into(),
            urls: vec!["127.0.0.1:7222".into()],
        }]
    );
    assert!(
        matches!(&eb[..], [GatewayEvent::Connected { name, remote_id, .. }] if name == "A" && remote_id == "SRVA")
    );
    assert!(out.peer_interest_only());
    assert!(out.is_connected() && inb.is_connected());

    // Interest flows from the accepting side to the dialer, account by account.
    inb.send_all_subs(
        "$G",
        [(&b"foo.*"[..], None), (&b"q"[..], Some(&b"workers"[..]))],
    );
    let wire = drain_out(&mut inb);
    let t = text(&wire);
    assert!(t.starts_with("INFO {"), "{t}");
    assert!(
        t.contains("\"gateway_cmd\":2") && t.contains("\"gateway_cmd_payload\":\"JEc=\""),
        "{t}"
    );
    assert!(t.contains("RS+ $G foo.*\r\nRS+ $G q workers 1\r\n"), "{t}");
    let ev = feed(&mut out, now, &wire);
    assert_eq!(ev.len(), 4, "{ev:?}");
    assert_eq!(
        ev[0],
        GatewayEvent::InterestMode {
            account: "$G".into(),
            complete: false
        }
    );
    assert!(
        matches!(&ev[1], GatewayEvent::RemoteSub(s) if &s.subject[..] == b"foo.*" && s.queue.is_none())
    );
    assert!(
        matches!(&ev[2], GatewayEvent::RemoteSub(s) if s.queue.as_deref() == Some(&b"workers"[..]))
    );
    assert_eq!(
        ev[3],
        GatewayEvent::InterestMode {
            account: "$G".into(),
            complete: true
        }
    );
    inb.send_unsub(b"$G", b"foo.*", None);
    let ev = feed(&mut out, now, &drain_out(&mut inb));
    assert!(matches!(&ev[..], [GatewayEvent::RemoteUnsub(u)] if &u.subject[..] == b"foo.*"));

    // Messages flow from the dialer, with headers when both support them.
    let prefix = ReplyPrefix::new("A", "SRVA");
    let reply = prefix.map(b"_INBOX.x");
    assert!(out.send_msg(
        b"$G",
        b"foo.bar",
        Some(&reply),
        &[],
        Some(b"NATS/1.0\r\nk: v\r\n\r\n"),
        (b"hello", None)
    ));
    let wire = drain_out(&mut out);
    assert!(
        text(&wire).starts_with("HMSG $G foo.bar _GR_.NUmM6c."),
        "{}",
        text(&wire)
    );
    let ev = feed(&mut inb, now, &wire);
    let [GatewayEvent::Msg(m)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(&m.payload[..], b"hello");
    assert_eq!(m.headers.as_deref(), Some(&b"NATS/1.0\r\nk: v\r\n\r\n"[..]));
    let (c, _, orig) = split_routed_reply(m.reply.as_deref().unwrap()).unwrap();
    assert_eq!((c, orig), (&b"NUmM6c"[..], &b"_INBOX.x"[..]));

    // Queue groups named for the remote cluster.
    assert!(out.send_msg(b"$G", b"q", None, &[b"workers"], None, (b"x", None)));
    let wire = drain_out(&mut out);
    assert_eq!(text(&wire), "RMSG $G q | workers 1\r\nx\r\n");
    // The wrong direction is refused.
    assert!(!inb.send_msg(b"$G", b"q", None, &[], None, (b"x", None)));
}

#[test]
#[allow(clippy::disallowed_methods)]
fn outbound_checks_the_peer_name_and_port() {
    let now = Instant::now();
    let mut c = outbound(now, "B");
    let ev = feed(
        &mut c,
        now,
        b"INFO {\"server_id\":\"X\",\"gateway\":\"C\"}\r\n",
    );
    assert_eq!(ev, [GatewayEvent::Closed(GatewayCloseReason::WrongGateway)]);
    assert_eq!(
        text(&drain_out(&mut c)),
        "-ERR 'Connection from \"A\" rejected, wanted to connect to \"B\", this is \"C\"'\r\n"
    );
    let mut c = outbound(now, "B");
    let ev = feed(&mut c, now, b"INFO {\"server_id\":\"X\"}\r\n");
    assert_eq!(ev, [GatewayEvent::Closed(GatewayCloseReason::WrongPort)]);
    assert_eq!(
        text(&drain_out(&mut c)),
        "-ERR 'Attempt to connect to gateway \"B\" using wrong port'\r\n"
    );
}

#[test]
#[allow(clippy::disallowed_methods)]
fn outbound_sends_connect_and_info_and_learns_gossip() {
    let now = Instant::now();
    let mut c = outbound(now, "B");
    let ev = feed(
        &mut c,
        now,
        b"INFO {\"server_id\":\"SRVB\",\"gateway\":\"B\",\"headers\":true,\"gateway_nrp\":true}\r\n",
    );
    assert!(matches!(&ev[..], [GatewayEvent::Connected { .. }]));
    assert!(!c.peer_interest_only());
    let t = text(&drain_out(&mut c));
    assert!(t.starts_with("CONNECT {"), "{t}");
    assert!(
        t.contains("\"name\":\"SRVA\"") && t.contains("\"gateway\":\"A\""),
        "{t}"
    );
    assert!(
        t.contains("\r\nINFO {") && t.contains("\"gateway_iom\":true"),
        "{t}"
    );
    let ev = feed(
        &mut c,
        now,
        b"INFO {\"server_id\":\"SRVB\",\"gateway\":\"C\",\"gateway_urls\":[\"h:1\"],\"gateway_cmd\":1}\r\n",
    );
    assert_eq!(
        ev,
        [GatewayEvent::Gossip {
            name: "C".into(),
            urls: vec!["h:1".into()]
        }]
    );
    // A command without its account is a protocol violation.
    let ev = feed(
        &mut c,
        now,
        b"INFO {\"gateway\":\"B\",\"gateway_cmd\":2}\r\n",
    );
    assert_eq!(
        ev,
        [GatewayEvent::Closed(GatewayCloseReason::ProtocolViolation)]
    );
}

#[test]
#[allow(clippy::disallowed_methods)]
fn inbound_checks_connect() {
    let now = Instant::now();
    let inbound = |cfg: GatewaySettings| {
        let mut c = GatewayConn::new(now, 2, Arc::new(cfg), GatewayRole::Inbound);
        assert!(text(&drain_out(&mut c)).starts_with("INFO {"));
        c
    };
    // A client on the gateway port.
    let mut c = inbound(settings("B", "SRVB"));
    let ev = feed(&mut c, now, b"CONNECT {\"verbose\":false}\r\n");
    assert_eq!(ev, [GatewayEvent::Closed(GatewayCloseReason::WrongPort)]);
    assert_eq!(
        text(&drain_out(&mut c)),
        "-ERR 'attempted to connect to gateway port'\r\n"
    );
    // Anything before CONNECT.
    let mut c = inbound(settings("B", "SRVB"));
    let ev = feed(&mut c, now, b"PING\r\n");
    assert_eq!(
        ev,
        [GatewayEvent::Closed(
            GatewayCloseReason::AuthenticationViolation
        )]
    );
    // Credentials.
    let mut cfg = settings("B", "SRVB");
    cfg.user = "gw".into();
    cfg.password = "pw".into();
    let mut c = inbound(cfg.clone());
    let ev = feed(
        &mut c,
        now,
        b"CONNECT {\"gateway\":\"A\",\"user\":\"gw\",\"pass\":\"no\"}\r\n",
    );
    assert_eq!(
        ev,
        [GatewayEvent::Closed(
            GatewayCloseReason::AuthenticationViolation
        )]
    );
    let mut c = inbound(cfg);
    let ev = feed(
        &mut c,
        now,
        b"CONNECT {\"gateway\":\"A\",\"user\":\"gw\",\"pass\":\"pw\"}\r\nINFO {\"server_id\":\"SRVA\",\"gateway\":\"A\"}\r\n",
    );
    assert!(matches!(&ev[..], [GatewayEvent::Connected { name, .. }] if name == "A"));
    // Unknown clusters rejected.
    let mut cfg = settings("B", "SRVB");
    cfg.known = Some(vec!["C".into()]);
    let mut c = inbound(cfg);
    let ev = feed(&mut c, now, b"CONNECT {\"gateway\":\"A\"}\r\n");
    assert_eq!(ev, [GatewayEvent::Closed(GatewayCloseReason::WrongGateway)]);
    assert_eq!(
        text(&drain_out(&mut c)),
        "-ERR 'Connection to gateway \"B\" rejected'\r\n"
    );
    // Interest on the inbound side is a violation.
    let mut c = inbound(settings("B", "SRVB"));
    let ev = feed(
        &mut c,
        now,
        b"CONNECT {\"gateway\":\"A\"}\r\nINFO {\"server_id\":\"SRVA\",\"gateway\":\"A\"}\r\nRS+ $G foo\r\n",
    );
    assert!(matches!(
        ev.last(),
        Some(GatewayEvent::Closed(GatewayCloseReason::ProtocolViolation))
    ));
}

#[test]
#[allow(clippy::disallowed_methods)]
fn auth_timeout_and_keepalive() {
    let now = Instant::now();
    let mut c = GatewayConn::new(
        now,
        2,
        Arc::new(settings("B", "SRVB")),
        GatewayRole::Inbound,
    );
    let _ = drain_out(&mut c);
    let (at, _) = c.poll_timeout().unwrap();
    // The first PING is not sent before CONNECT.
    c.handle_timeout(at);
    assert!(drain_out(&mut c).is_empty() || c.is_closed());
    c.handle_timeout(now + Duration::from_secs(2));
    assert_eq!(
        events(&mut c),
        [GatewayEvent::Closed(
            GatewayCloseReason::AuthenticationTimeout
        )]
    );

    let mut out = outbound(now, "B");
    let mut inb = GatewayConn::new(
        now,
        2,
        Arc::new(settings("B", "SRVB")),
        GatewayRole::Inbound,
    );
    let _ = pump(&mut out, &mut inb, now);
    let later = now + Duration::from_secs(1);
    out.handle_timeout(later);
    assert_eq!(text(&drain_out(&mut out)), "PING\r\n");
    let ev = feed(&mut inb, later, b"PING\r\n");
    assert!(ev.is_empty());
    assert_eq!(text(&drain_out(&mut inb)), "PONG\r\n");
}

#[test]
fn hashes_and_reply_mapping_match_nats_server() {
    // Go: getGWHash("A"), getGWHash("B"), and of a server id.
    assert_eq!(&gw_hash("A"), b"NUmM6c");
    assert_eq!(&gw_hash("B"), b"b2oh2L");
    assert_eq!(
        &gw_hash("NBHUDBF3TVJSWCDPG2HSKI4I2SBSPDTNYEXEMOFAZUZYXVA2IYRUGPZU"),
        b"S4oKXw"
    );
    let p = ReplyPrefix::new(
        "A",
        "NBHUDBF3TVJSWCDPG2HSKI4I2SBSPDTNYEXEMOFAZUZYXVA2IYRUGPZU",
    );
    assert_eq!(p.as_bytes(), b"_GR_.NUmM6c.S4oKXw.");
    assert_eq!(
        (p.cluster_hash(), p.server_hash()),
        (&b"NUmM6c"[..], &b"S4oKXw"[..])
    );
    let m = p.map(b"_INBOX.abc");
    assert_eq!(m, b"_GR_.NUmM6c.S4oKXw._INBOX.abc");
    // Mapped once only.
    assert_eq!(ReplyPrefix::new("B", "X").map(&m), m);
    assert!(!is_routed_reply(b"_GR_.NUmM6c.S4oKXw."));
    assert_eq!(split_routed_reply(b"foo"), None);
}

#[test]
fn base64_round_trips() {
    assert_eq!(base64_encode(b"$G"), "JEc=");
    assert_eq!(base64_encode(b"ACC1"), "QUNDMQ==");
    for s in ["", "a", "ab", "abc", "abcd", "$SYS", "ACC1"] {
        assert_eq!(
            base64_decode(&base64_encode(s.as_bytes())).unwrap(),
            s.as_bytes()
        );
    }
    assert_eq!(base64_decode("!!"), None);
}

#[test]
#[allow(clippy::disallowed_methods)]
fn outbound_over_tls_says_so_in_connect() {
    // Go: sendGatewayConnect — `tls_required` tells whether the dialer secured the link.
    let now = Instant::now();
    for tls in [false, true] {
        let role = GatewayRole::Outbound {
            name: "B".into(),
            user: None,
            pass: None,
            tls,
        };
        let mut c = GatewayConn::new(now, 1, Arc::new(settings("A", "SRVA")), role);
        let ev = feed(
            &mut c,
            now,
            format!("INFO {{\"server_id\":\"SRVB\",\"gateway\":\"B\",\"tls_required\":{tls},\"tls_verify\":{tls}}}\r\n")
                .as_bytes(),
        );
        assert!(matches!(&ev[..], [GatewayEvent::Connected { .. }]));
        assert_eq!(c.peer_tls_required(), tls);
        let t = text(&drain_out(&mut c));
        assert!(t.contains(&format!("\"tls_required\":{tls}")), "{t}");
    }
}
