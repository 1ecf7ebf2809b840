//! RouteConn machines wired back to back in memory (quinn's `Pair`): virtual time jumps to the
//! earliest `poll_timeout`, faults are edits of what crosses the link.
// One arbitrary starting instant; every later time is derived from it.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use natsd_core::proto::route::{self as proto, RouteConnect, RouteInfo, RouteOp, RouteParser};
use natsd_core::route::{
    RouteCloseReason, RouteConfig, RouteConn, RouteCredentials, RouteEvent, RouteRole,
};
use proptest::prelude::*;

const GO_SOLICITED: &[u8] = include_bytes!("../src/proto/route/testdata/go_solicited_b_to_a.bin");
const GO_ACCEPTED: &[u8] = include_bytes!("../src/proto/route/testdata/go_accepted_a_to_b.bin");

fn config(id: &str, name: &str, cluster: &str) -> RouteConfig {
    RouteConfig {
        info: RouteInfo {
            server_id: id.into(),
            server_name: name.into(),
            version: "2.9.10".into(),
            proto: 2,
            go: "go1.19.8".into(),
            host: "127.0.0.1".into(),
            port: 6222,
            headers: true,
            max_payload: 1024 * 1024,
            cluster: cluster.into(),
            connect_urls: vec![format!("127.0.0.1:4{name}")],
            lnoc: true,
            ..RouteInfo::default()
        },
        max_control_line: proto::DEFAULT_ROUTE_MAX_CONTROL_LINE,
        max_payload: 1024 * 1024,
        max_pending: 64 * 1024 * 1024,
        ping_interval: Duration::from_secs(10),
        ping_max: 2,
        auth_timeout: Duration::from_secs(2),
        authorizer: None,
    }
}

fn creds(user: &str, password: &str) -> RouteCredentials {
    RouteCredentials {
        user: user.into(),
        password: password.into(),
    }
}

fn solicit(user: Option<&str>, pass: Option<&str>) -> RouteRole {
    RouteRole::Solicited {
        user: user.map(Into::into),
        pass: pass.map(Into::into),
    }
}

struct Node {
    conn: RouteConn,
    inbox: BytesMut,
    events: Vec<RouteEvent>,
    /// Everything this node sent, for assertions on the wire.
    sent: Vec<u8>,
}

struct Pair {
    now: Instant,
    a: Node,
    b: Node,
    /// While false, bytes in flight are lost (a partition that TCP does not notice).
    link_up: bool,
}

impl Pair {
    /// `a` dials `b`.
    fn new(a: RouteConfig, a_role: RouteRole, b: RouteConfig) -> Self {
        let now = Instant::now();
        let node = |conn| Node {
            conn,
            inbox: BytesMut::new(),
            events: Vec::new(),
            sent: Vec::new(),
        };
        Self {
            now,
            a: node(RouteConn::new(now, 1, Arc::new(a), a_role, 11)),
            b: node(RouteConn::new(now, 2, Arc::new(b), RouteRole::Accepted, 22)),
            link_up: true,
        }
    }

    fn connected(a: RouteConfig, b: RouteConfig) -> Self {
        let mut p = Self::new(a, solicit(None, None), b);
        p.drive();
        assert!(p.a.conn.peer_id().is_some() && p.b.conn.peer_id().is_some());
        p.a.events.clear();
        p.b.events.clear();
        p
    }

    /// Moves bytes and feeds input until nothing moves.
    fn drive(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            for from in [0, 1] {
                let (src, dst) = if from == 0 {
                    (&mut self.a, &mut self.b)
                } else {
                    (&mut self.b, &mut self.a)
                };
                while let Some(chunk) = src.conn.poll_transmit() {
                    src.sent.extend_from_slice(&chunk);
                    if self.link_up {
                        dst.inbox.extend_from_slice(&chunk);
                    }
                    moved = true;
                }
                src.events
                    .extend(std::iter::from_fn(|| src.conn.poll_event()));
                if !dst.inbox.is_empty() && !dst.conn.is_closed() {
                    let before = dst.inbox.len();
                    while dst.conn.handle_input(self.now, &mut dst.inbox) {
                        dst.events
                            .extend(std::iter::from_fn(|| dst.conn.poll_event()));
                    }
                    moved |= dst.inbox.len() != before;
                }
                dst.events
                    .extend(std::iter::from_fn(|| dst.conn.poll_event()));
            }
            if !moved {
                return;
            }
        }
        panic!("pair did not settle");
    }

    /// Jumps virtual time to the earliest timer and fires it.
    fn step_time(&mut self) -> bool {
        let next = [self.a.conn.poll_timeout(), self.b.conn.poll_timeout()]
            .into_iter()
            .flatten()
            .map(|(t, _)| t)
            .min();
        let Some(t) = next else { return false };
        assert!(t >= self.now, "timers never go back");
        self.now = t;
        self.a.conn.handle_timeout(t);
        self.b.conn.handle_timeout(t);
        self.drive();
        true
    }
}

fn closed(events: &[RouteEvent]) -> Vec<RouteCloseReason> {
    events
        .iter()
        .filter_map(|e| match e {
            RouteEvent::Closed(r) => Some(*r),
            _ => None,
        })
        .collect()
}

fn peer_info(events: &[RouteEvent]) -> Option<&RouteInfo> {
    events.iter().find_map(|e| match e {
        RouteEvent::PeerInfo(i) => Some(&**i),
        _ => None,
    })
}

fn parse_ops(wire: &[u8]) -> Vec<RouteOp> {
    let mut p = RouteParser::new(proto::DEFAULT_ROUTE_MAX_CONTROL_LINE, u32::MAX);
    let mut buf = BytesMut::from(wire);
    std::iter::from_fn(|| p.parse(&mut buf).expect("valid route bytes")).collect()
}

#[test]
fn handshake_with_credentials() {
    let mut b = config("NB", "B", "c1");
    b.authorizer = Some(Arc::new(creds("ruser", "rpass")));
    let mut p = Pair::new(
        config("NA", "A", "c1"),
        solicit(Some("ruser"), Some("rpass")),
        b,
    );
    p.drive();
    assert_eq!(p.a.conn.peer_id(), Some("NB"));
    assert_eq!(p.b.conn.peer_id(), Some("NA"));
    assert_eq!(peer_info(&p.a.events).unwrap().server_name, "B");
    assert_eq!(
        peer_info(&p.b.events).unwrap().connect_urls,
        ["127.0.0.1:4A"]
    );
    assert!(closed(&p.a.events).is_empty() && closed(&p.b.events).is_empty());
    // The soliciting side speaks first: CONNECT (with the URL's credentials), then INFO.
    let ops = parse_ops(&p.a.sent);
    let RouteOp::Connect(c) = &ops[0] else {
        panic!("CONNECT first")
    };
    assert_eq!(
        **c,
        RouteConnect {
            echo: true,
            user: "ruser".into(),
            pass: "rpass".into(),
            headers: true,
            name: "NA".into(),
            cluster: "c1".into(),
            lnoc: true,
            ..RouteConnect::default()
        }
    );
    assert!(matches!(&ops[1], RouteOp::Info(i) if i.server_id == "NA" && !i.nonce.is_empty()));
    let RouteOp::Info(binfo) = &parse_ops(&p.b.sent)[0] else {
        panic!("INFO")
    };
    assert!(binfo.auth_required);
    assert_eq!(binfo.nonce.len(), 15, "11 random bytes, base64url");
    assert!(p.a.conn.peer_headers() && p.b.conn.peer_headers());
}

#[test]
fn interest_and_messages_flow_both_ways() {
    let mut p = Pair::connected(config("NA", "A", "c1"), config("NB", "B", "c1"));
    p.a.conn.send_sub(b"$G", b"foo.*", None);
    p.b.conn.send_sub(b"$G", b"bar", Some((b"q", 2)));
    p.b.conn.send_unsub(b"$G", b"bar", Some(b"q"));
    let big = Bytes::from(vec![b'x'; 4000]);
    let hdr = Bytes::from_static(b"NATS/1.0\r\nK: v\r\n\r\n");
    p.b.conn
        .send_msg(b"$G", b"foo.1", Some(b"_INBOX.1"), &[], None, &big);
    p.a.conn.send_msg(
        b"acc",
        b"bar",
        None,
        &[b"q", b"q2"],
        Some(&hdr),
        &Bytes::from_static(b"hi"),
    );
    p.drive();
    let subs: Vec<_> = p.b.events.iter().collect();
    assert!(
        matches!(subs[0], RouteEvent::RemoteSub(s) if &s.subject[..] == b"foo.*" && s.queue.is_none())
    );
    assert!(matches!(
        &p.a.events[0],
        RouteEvent::RemoteSub(s) if s.queue.as_deref() == Some(&b"q"[..]) && s.weight == 2
    ));
    assert!(matches!(&p.a.events[1], RouteEvent::RemoteUnsub(u) if &u.subject[..] == b"bar"));
    let RouteEvent::RoutedMsg(m) = &p.a.events[2] else {
        panic!("message to A")
    };
    assert_eq!(
        (&m.subject[..], m.reply.as_deref(), m.payload.len()),
        (&b"foo.1"[..], Some(&b"_INBOX.1"[..]), 4000)
    );
    let RouteEvent::RoutedMsg(m) = &subs[1] else {
        panic!("message to B")
    };
    assert_eq!(&m.account[..], b"acc");
    assert_eq!(
        m.queues,
        [Bytes::from_static(b"q"), Bytes::from_static(b"q2")]
    );
    assert_eq!(m.headers.as_ref(), Some(&hdr));
    assert!(closed(&p.a.events).is_empty() && closed(&p.b.events).is_empty());
}

#[test]
fn large_payload_is_queued_without_copy() {
    let mut p = Pair::connected(config("NA", "A", "c1"), config("NB", "B", "c1"));
    let big = Bytes::from(vec![7u8; 10_000]);
    p.a.conn.send_msg(b"$G", b"s", None, &[], None, &big);
    let chunks: Vec<Bytes> = std::iter::from_fn(|| p.a.conn.poll_transmit()).collect();
    assert!(chunks.iter().any(|c| c.as_ptr() == big.as_ptr()));
    let wire: Vec<u8> = chunks.concat();
    assert!(wire.starts_with(b"RMSG $G s 10000\r\n") && wire.ends_with(b"\r\n"));
    assert_eq!(p.a.conn.pending_bytes(), 0);
}

#[test]
fn headers_are_stripped_for_a_peer_without_headers() {
    let mut b = config("NB", "B", "c1");
    b.info.headers = false;
    let mut p = Pair::connected(config("NA", "A", "c1"), b);
    assert!(!p.a.conn.peer_headers());
    let hdr = Bytes::from_static(b"NATS/1.0\r\n\r\n");
    p.a.conn.send_msg(
        b"$G",
        b"s",
        None,
        &[],
        Some(&hdr),
        &Bytes::from_static(b"body"),
    );
    let wire: Vec<u8> = std::iter::from_fn(|| p.a.conn.poll_transmit())
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(wire, b"RMSG $G s 4\r\nbody\r\n");
}

#[test]
fn bad_credentials_are_refused_like_nats_server() {
    for (user, pass) in [(Some("ruser"), Some("nope")), (None, None)] {
        let mut b = config("NB", "B", "c1");
        b.authorizer = Some(Arc::new(creds("ruser", "rpass")));
        let mut p = Pair::new(config("NA", "A", "c1"), solicit(user, pass), b);
        p.drive();
        assert!(p.b.sent.ends_with(b"-ERR 'Authorization Violation'\r\n"));
        assert_eq!(
            closed(&p.b.events),
            [RouteCloseReason::AuthenticationViolation]
        );
        assert!(peer_info(&p.b.events).is_none());
        // The dialer hears the -ERR and closes too.
        assert_eq!(closed(&p.a.events), [RouteCloseReason::ParseError]);
    }
}

#[test]
fn bcrypt_route_password() {
    let hash = bcrypt::hash("rpass", 4).unwrap();
    let mut b = config("NB", "B", "c1");
    b.authorizer = Some(Arc::new(creds("ruser", &hash)));
    let mut p = Pair::new(
        config("NA", "A", "c1"),
        solicit(Some("ruser"), Some("rpass")),
        b,
    );
    p.drive();
    assert_eq!(p.b.conn.peer_id(), Some("NA"));
}

#[test]
fn cluster_name_mismatch() {
    let mut p = Pair::new(
        config("NA", "A", "zz"),
        solicit(None, None),
        config("NB", "B", "c1"),
    );
    p.drive();
    let text = b"-ERR 'Rejecting connection, cluster name \"zz\" does not match \"c1\"'\r\n";
    assert!(p.b.sent.ends_with(text));
    assert_eq!(closed(&p.b.events), [RouteCloseReason::ClusterNameConflict]);
    // The dialer sees the other name in the INFO and closes without a word.
    assert_eq!(closed(&p.a.events), [RouteCloseReason::ClusterNameConflict]);
    assert!(!p.a.sent.windows(4).any(|w| w == b"-ERR"));
}

#[test]
fn dynamic_cluster_name_gives_way() {
    // The accepting side has a generated name: it takes the dialer's configured one.
    let mut b = config("NB", "B", "zzgenerated");
    b.info.dynamic = true;
    let mut p = Pair::new(config("NA", "A", "c1"), solicit(None, None), b);
    p.drive();
    assert!(p.b.events.contains(&RouteEvent::ClusterNameChanged {
        name: "c1".into(),
        dynamic: false
    }));
    assert_eq!(p.b.conn.cluster_name(), "c1");
    assert_eq!(p.b.conn.peer_id(), Some("NA"));
    // B's INFO went out before the CONNECT, still with the generated name: the configured
    // dialer drops this first connection; its retry meets the adopted name.
    assert_eq!(closed(&p.a.events), [RouteCloseReason::ClusterNameConflict]);

    // The dialer has the generated name: the configured side refuses its CONNECT, but the
    // dialer learns the name from the INFO (and its next dial will use it), as in Go.
    let mut a = config("NA", "A", "zzgenerated");
    a.info.dynamic = true;
    let mut p = Pair::new(a, solicit(None, None), config("NB", "B", "c1"));
    p.drive();
    assert_eq!(closed(&p.b.events), [RouteCloseReason::ClusterNameConflict]);
    assert!(p.a.events.contains(&RouteEvent::ClusterNameChanged {
        name: "c1".into(),
        dynamic: true
    }));
    assert_eq!(closed(&p.a.events), [RouteCloseReason::ParseError]);
}

#[test]
fn route_to_self_and_duplicate_name() {
    let mut p = Pair::new(
        config("NA", "A", "c1"),
        solicit(None, None),
        config("NA", "A", "c1"),
    );
    p.drive();
    assert_eq!(closed(&p.a.events), [RouteCloseReason::DuplicateRoute]);
    assert_eq!(closed(&p.b.events), [RouteCloseReason::DuplicateRoute]);

    let mut p = Pair::new(
        config("NA", "X", "c1"),
        solicit(None, None),
        config("NB", "X", "c1"),
    );
    p.drive();
    // Only the accepting side checks names (Go: processRouteInfo, !didSolicit).
    assert_eq!(closed(&p.b.events), [RouteCloseReason::DuplicateServerName]);
    assert!(peer_info(&p.a.events).is_some());
}

#[test]
fn client_or_gateway_on_the_route_port() {
    let mut b = RouteConn::new(
        Instant::now(),
        2,
        Arc::new(config("NB", "B", "c1")),
        RouteRole::Accepted,
        3,
    );
    let _ = b.poll_transmit();
    let mut input = BytesMut::from(&b"CONNECT {\"lang\":\"go\",\"verbose\":false}\r\n"[..]);
    let _ = b.handle_input(Instant::now(), &mut input);
    assert_eq!(
        &b.poll_transmit().unwrap()[..],
        b"-ERR 'attempted to connect to route port'\r\n"
    );
    assert_eq!(
        b.poll_event(),
        Some(RouteEvent::Closed(RouteCloseReason::WrongPort))
    );

    let mut b = RouteConn::new(
        Instant::now(),
        2,
        Arc::new(config("NB", "B", "c1")),
        RouteRole::Accepted,
        3,
    );
    let _ = b.poll_transmit();
    let mut input = BytesMut::from(&b"CONNECT {\"gateway\":\"g1\"}\r\n"[..]);
    let _ = b.handle_input(Instant::now(), &mut input);
    assert_eq!(
        &b.poll_transmit().unwrap()[..],
        b"-ERR 'Rejecting connection from gateway \"g1\" on the Route port'\r\n"
    );
    assert_eq!(
        b.poll_event(),
        Some(RouteEvent::Closed(RouteCloseReason::WrongGateway))
    );
}

#[test]
fn auth_timeout_and_op_before_connect() {
    let t0 = Instant::now();
    let mut cfg = config("NB", "B", "c1");
    cfg.authorizer = Some(Arc::new(creds("u", "p")));
    let cfg = Arc::new(cfg);
    let mut b = RouteConn::new(t0, 2, cfg.clone(), RouteRole::Accepted, 3);
    let _ = b.poll_transmit();
    // The first PING (about a second in) comes before the 2 s auth deadline, as in Go.
    let (t, _) = b.poll_timeout().unwrap();
    assert!(t < t0 + Duration::from_secs(2));
    b.handle_timeout(t);
    assert_eq!(&b.poll_transmit().unwrap()[..], b"PING\r\n");
    let (t, kind) = b.poll_timeout().unwrap();
    assert_eq!(
        (t, kind),
        (
            t0 + Duration::from_secs(2),
            natsd_core::route::RouteTimer::Auth
        )
    );
    b.handle_timeout(t - Duration::from_millis(1));
    assert!(b.poll_event().is_none(), "early calls do nothing");
    b.handle_timeout(t);
    assert_eq!(
        &b.poll_transmit().unwrap()[..],
        b"-ERR 'Authentication Timeout'\r\n"
    );
    assert_eq!(
        b.poll_event(),
        Some(RouteEvent::Closed(RouteCloseReason::AuthenticationTimeout))
    );
    assert_eq!(b.poll_timeout(), None);

    let mut b = RouteConn::new(t0, 2, cfg, RouteRole::Accepted, 3);
    let _ = b.poll_transmit();
    let mut input = BytesMut::from(&b"PING\r\n"[..]);
    let _ = b.handle_input(t0, &mut input);
    assert_eq!(
        &b.poll_transmit().unwrap()[..],
        b"-ERR 'Authorization Violation'\r\n"
    );
    assert_eq!(
        b.poll_event(),
        Some(RouteEvent::Closed(
            RouteCloseReason::AuthenticationViolation
        ))
    );
}

#[test]
fn pings_measure_rtt_and_keep_a_quiet_route_open() {
    let mut p = Pair::connected(config("NA", "A", "c1"), config("NB", "B", "c1"));
    let start = p.now;
    while p.now < start + Duration::from_secs(120) {
        assert!(p.step_time());
    }
    assert!(closed(&p.a.events).is_empty() && closed(&p.b.events).is_empty());
    assert!(p.a.conn.rtt().is_some() && p.b.conn.rtt().is_some());
    let pings = [&p.a.sent, &p.b.sent]
        .iter()
        .map(|s| s.windows(6).filter(|w| w == b"PING\r\n").count())
        .sum::<usize>();
    // Both send a first PING within ~1.2 s; after that a side skips its PING when the peer's
    // arrived within the interval, so about one PING per interval for the pair.
    assert!((6..=14).contains(&pings), "{pings} PINGs");
}

#[test]
fn stale_route_is_detected_in_virtual_time() {
    let mut p = Pair::connected(config("NA", "A", "c1"), config("NB", "B", "c1"));
    // Let the first PING/PONG exchange happen so the RTT is known, then cut the link.
    assert!(p.step_time());
    p.link_up = false;
    let cut = p.now;
    while closed(&p.a.events).is_empty() {
        assert!(p.step_time(), "a timer must stay armed");
        assert!(p.now < cut + Duration::from_secs(60));
    }
    assert_eq!(closed(&p.a.events), [RouteCloseReason::StaleConnection]);
    assert_eq!(closed(&p.b.events), [RouteCloseReason::StaleConnection]);
    // ping_max PINGs go unanswered, the next timer declares the route stale: 3 intervals.
    let elapsed = p.now - cut;
    assert!(
        elapsed > Duration::from_secs(20) && elapsed <= Duration::from_secs(31),
        "{elapsed:?}"
    );
    assert!(p.a.sent.ends_with(b"-ERR 'Stale Connection'\r\n"));
}

#[test]
fn traffic_suppresses_pings_like_nats_server() {
    let mut p = Pair::connected(config("NA", "A", "c1"), config("NB", "B", "c1"));
    assert!(p.step_time()); // first PINGs: RTT known on both sides
    assert!(p.step_time());
    let before = p.a.sent.windows(6).filter(|w| w == b"PING\r\n").count();
    // B sends a message every second: A never needs to PING.
    for _ in 0..40 {
        p.now += Duration::from_secs(1);
        p.b.conn
            .send_msg(b"$G", b"t", None, &[], None, &Bytes::from_static(b"x"));
        p.a.conn.handle_timeout(p.now);
        p.drive();
    }
    let after = p.a.sent.windows(6).filter(|w| w == b"PING\r\n").count();
    assert_eq!(before, after);
}

#[test]
fn gossip_info_becomes_an_implicit_route() {
    let mut p = Pair::connected(config("NA", "A", "c1"), config("NB", "B", "c1"));
    let c = RouteInfo {
        server_id: "NC".into(),
        server_name: "C".into(),
        cluster: "c1".into(),
        ip: "nats-route://127.0.0.1:7222/".into(),
        nonce: "secret".into(),
        ..RouteInfo::default()
    };
    p.b.conn.send_forwarded_info(&c);
    let update = RouteInfo {
        ldm: true,
        ..config("NB", "B", "c1").info
    };
    p.b.conn.send_info_update(&update);
    p.drive();
    let RouteEvent::ImplicitRoute(i) = &p.a.events[0] else {
        panic!("{:?}", p.a.events)
    };
    assert_eq!(
        (i.server_id.as_str(), i.ip.as_str()),
        ("NC", "nats-route://127.0.0.1:7222/")
    );
    assert!(i.nonce.is_empty(), "nonces are not forwarded");
    assert!(matches!(&p.a.events[1], RouteEvent::PeerUpdate(u) if u.ldm));
}

#[test]
fn slow_peer_closes_the_route() {
    let mut a = config("NA", "A", "c1");
    a.max_pending = 64 * 1024;
    let mut p = Pair::connected(a, config("NB", "B", "c1"));
    let big = Bytes::from(vec![0u8; 40 * 1024]);
    p.a.conn.send_msg(b"$G", b"s", None, &[], None, &big);
    assert!(p.a.conn.poll_event().is_none());
    p.a.conn.send_msg(b"$G", b"s", None, &[], None, &big);
    assert_eq!(
        p.a.conn.poll_event(),
        Some(RouteEvent::Closed(
            RouteCloseReason::SlowConsumerPendingBytes
        ))
    );
    assert_eq!(
        p.a.conn.poll_transmit(),
        None,
        "nothing is flushed after a slow consumer"
    );
}

#[test]
fn input_stops_after_each_event() {
    let mut p = Pair::connected(config("NA", "A", "c1"), config("NB", "B", "c1"));
    let mut input = BytesMut::from(&b"RS+ $G a\r\nPING\r\n"[..]);
    assert!(p.a.conn.handle_input(p.now, &mut input));
    assert!(matches!(
        p.a.conn.poll_event(),
        Some(RouteEvent::RemoteSub(_))
    ));
    assert_eq!(
        p.a.conn.poll_transmit(),
        None,
        "no PONG before the RS+ is handled"
    );
    assert!(!p.a.conn.handle_input(p.now, &mut input));
    assert_eq!(&p.a.conn.poll_transmit().unwrap()[..], b"PONG\r\n");
}

/// Feeds captured nats-server bytes to a machine in the matching role, at every 13th split.
fn replay_go(input: &[u8], cfg: RouteConfig, role: RouteRole) -> Vec<RouteEvent> {
    let cfg = Arc::new(cfg);
    let t0 = Instant::now();
    let mut reference = None;
    for at in (0..=input.len()).step_by(13) {
        let mut conn = RouteConn::new(t0, 1, cfg.clone(), role.clone(), 5);
        let mut events = Vec::new();
        let mut buf = BytesMut::new();
        for part in [&input[..at], &input[at..]] {
            buf.extend_from_slice(part);
            while conn.handle_input(t0, &mut buf) {
                events.extend(std::iter::from_fn(|| conn.poll_event()));
            }
            events.extend(std::iter::from_fn(|| conn.poll_event()));
        }
        assert!(buf.is_empty());
        match &reference {
            None => reference = Some(events),
            Some(r) => assert_eq!(r, &events, "split at {at}"),
        }
    }
    reference.unwrap_or_default()
}

#[test]
fn accepts_a_real_go_route() {
    // B (nats-server) dialed A with ruser:rpass: CONNECT, INFO, then a gossip INFO about C.
    let mut a = config(
        "NAAGBK72QBV3FMTXNXPXCL72ULXJU6GRBVCRTJV2DAXN7IERLHOOCJR7",
        "A",
        "c1",
    );
    a.authorizer = Some(Arc::new(creds("ruser", "rpass")));
    let events = replay_go(GO_SOLICITED, a, RouteRole::Accepted);
    assert!(closed(&events).is_empty(), "{:?}", closed(&events));
    let info = peer_info(&events).unwrap();
    assert_eq!(info.server_name, "B");
    assert!(events
        .iter()
        .any(|e| matches!(e, RouteEvent::ImplicitRoute(i) if i.server_name == "C")));
    let subs = events
        .iter()
        .filter(|e| matches!(e, RouteEvent::RemoteSub(_)))
        .count();
    let msgs = events
        .iter()
        .filter(|e| matches!(e, RouteEvent::RoutedMsg(_)))
        .count();
    assert_eq!((subs, msgs), (39, 5));
}

#[test]
fn solicits_a_real_go_route() {
    // What nats-server A sent back to B on the route B dialed.
    let b = config(
        "NDH5YFNOS2XLCWUMGMHWQNMJGFJVIKARITDGMX4357UTZUUHXED5ISRI",
        "B",
        "c1",
    );
    let events = replay_go(GO_ACCEPTED, b, solicit(Some("ruser"), Some("rpass")));
    assert!(closed(&events).is_empty(), "{:?}", closed(&events));
    assert_eq!(peer_info(&events).unwrap().server_name, "A");
    assert!(events.iter().any(
        |e| matches!(e, RouteEvent::ImplicitRoute(i) if i.ip == "nats-route://127.0.0.1:36191/")
    ));
    let msgs = events
        .iter()
        .filter(|e| matches!(e, RouteEvent::RoutedMsg(_)))
        .count();
    assert_eq!(msgs, 6);
}

#[test]
fn bad_input_gets_err_and_close() {
    for (input, err, reason) in [
        (&b"XYZ\r\n"[..], true, RouteCloseReason::ParseError),
        (
            b"RMSG $G foo x\r\n",
            false,
            RouteCloseReason::ProtocolViolation,
        ),
        (b"RS+ $G\r\n", false, RouteCloseReason::ProtocolViolation),
        (b"INFO {\r\n", false, RouteCloseReason::ProtocolViolation),
        (b"-ERR 'boom'\r\n", false, RouteCloseReason::ParseError),
        (b"RMSG $G foo 1\r\nxx", true, RouteCloseReason::ParseError),
    ] {
        let mut p = Pair::connected(config("NA", "A", "c1"), config("NB", "B", "c1"));
        let mut buf = BytesMut::from(input);
        while p.a.conn.handle_input(p.now, &mut buf) {}
        let events: Vec<_> = std::iter::from_fn(|| p.a.conn.poll_event()).collect();
        assert_eq!(
            closed(&events),
            [reason],
            "{:?}",
            String::from_utf8_lossy(input)
        );
        let out: Vec<u8> = std::iter::from_fn(|| p.a.conn.poll_transmit())
            .collect::<Vec<_>>()
            .concat();
        assert_eq!(out == b"-ERR 'Unknown Protocol Operation'\r\n", err);
        assert_eq!(p.a.conn.poll_timeout(), None);
    }
}

proptest! {
    #[test]
    fn garbage_from_a_peer_never_panics(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut p = Pair::connected(config("NA", "A", "c1"), config("NB", "B", "c1"));
        let mut buf = BytesMut::from(&input[..]);
        let mut events = Vec::new();
        while p.a.conn.handle_input(p.now, &mut buf) {
            events.extend(std::iter::from_fn(|| p.a.conn.poll_event()));
        }
        events.extend(std::iter::from_fn(|| p.a.conn.poll_event()));
        prop_assert!(closed(&events).len() <= 1);
        prop_assert_eq!(closed(&events).len() == 1, p.a.conn.is_closed());
    }
}

/// Feeds `input` in two pieces split at `at` through `handle_input_msgs` (runs of at most
/// `max`), collecting messages and events in wire order, as the shell's route reader does.
fn feed_msgs(
    conn: &mut RouteConn,
    now: Instant,
    input: &[u8],
    at: usize,
    max: usize,
) -> Vec<RouteEvent> {
    let mut seen = Vec::new();
    let mut buf = BytesMut::new();
    for piece in [&input[..at], &input[at..]] {
        buf.extend_from_slice(piece);
        loop {
            let mut msgs = Vec::new();
            let more = conn.handle_input_msgs(now, &mut buf, &mut msgs, max);
            assert!(msgs.len() <= max);
            seen.extend(msgs.into_iter().map(RouteEvent::RoutedMsg));
            seen.extend(std::iter::from_fn(|| conn.poll_event()));
            if !more {
                break;
            }
        }
    }
    seen
}

#[test]
fn messages_taken_in_runs_match_handle_input_at_every_split() {
    let wire: &[u8] = b"RMSG $G a 2\r\nhi\r\nRMSG $G b _R.1 3\r\nabc\r\nRS+ $G x\r\nPING\r\n\
        HMSG $G c + q1 q2 12 14\r\nNATS/1.0\r\n\r\nhi\r\nRS- $G x\r\nRMSG $G d 0\r\n\r\n";
    let mut reference = Pair::connected(config("NA", "A", "c1"), config("NB", "B", "c1"));
    let mut buf = BytesMut::from(wire);
    let mut want = Vec::new();
    loop {
        let more = reference.a.conn.handle_input(reference.now, &mut buf);
        want.extend(std::iter::from_fn(|| reference.a.conn.poll_event()));
        if !more {
            break;
        }
    }
    assert_eq!(want.len(), 6, "{want:?}");
    for max in [1, 2, 64] {
        for at in 0..=wire.len() {
            let mut p = Pair::connected(config("NA", "A", "c1"), config("NB", "B", "c1"));
            let got = feed_msgs(&mut p.a.conn, p.now, wire, at, max);
            assert_eq!(got, want, "split at {at}, runs of {max}");
            assert_eq!(&p.a.conn.poll_transmit().unwrap()[..], b"PONG\r\n");
        }
    }
}

#[test]
fn messages_taken_in_runs_still_need_connect_first() {
    let t0 = Instant::now();
    let mut cfg = config("NB", "B", "c1");
    cfg.authorizer = Some(Arc::new(creds("u", "p")));
    let mut b = RouteConn::new(t0, 2, Arc::new(cfg), RouteRole::Accepted, 3);
    let _ = b.poll_transmit();
    let mut buf = BytesMut::from(&b"RMSG $G a 2\r\nhi\r\n"[..]);
    let mut msgs = Vec::new();
    assert!(!b.handle_input_msgs(t0, &mut buf, &mut msgs, 64));
    assert!(msgs.is_empty(), "no message is delivered before CONNECT");
    assert_eq!(
        b.poll_event(),
        Some(RouteEvent::Closed(
            RouteCloseReason::AuthenticationViolation
        ))
    );
}

#[test]
fn a_consumer_delivery_carries_its_stored_subject_in_the_reply() {
    // The wire form nats-server 2.9.10 uses between servers: `RMSG <acc> <deliver subject>
    // <ack reply>@<stored subject> <size>`, split back apart by the receiving server.
    let mut p = Pair::connected(config("NA", "A", "c1"), config("NB", "B", "c1"));
    let ack = &b"$JS.ACK.KV_b.c.1.7.7.1700000000000000000.0"[..];
    let stored = &b"$KV.b.a-b_c=d/e.f"[..];
    let reply = natsd_core::leaf::encode_js_reply(ack, stored);
    p.a.conn.send_msg(
        b"$G",
        b"_INBOX.x.y",
        Some(&reply),
        &[],
        None,
        &Bytes::from_static(b"v"),
    );
    p.drive();
    let want =
        b"RMSG $G _INBOX.x.y $JS.ACK.KV_b.c.1.7.7.1700000000000000000.0@$KV.b.a-b_c=d/e.f 1\r\nv\r\n";
    assert!(
        p.a.sent.ends_with(want),
        "{:?}",
        String::from_utf8_lossy(&p.a.sent)
    );
    let RouteEvent::RoutedMsg(m) = &p.b.events[0] else {
        panic!("message to B")
    };
    assert_eq!(&m.subject[..], b"_INBOX.x.y");
    assert_eq!(
        m.reply
            .as_deref()
            .and_then(natsd_core::leaf::split_js_reply),
        Some((ack, stored))
    );
}
