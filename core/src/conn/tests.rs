//! Unit tests of the client connection machine.

use super::*;
use crate::options::{Options, User};

fn cfg(opts: &Options) -> Arc<ClientConfig> {
    Arc::new(ClientConfig {
        info: ServerInfo {
            server_id: "NTEST".into(),
            version: "2.9.10".into(),
            max_payload: opts.max_payload,
            ..ServerInfo::default()
        },
        max_control_line: opts.max_control_line,
        max_payload: opts.max_payload,
        ping_interval: opts.ping_interval,
        ping_max: opts.ping_max,
        auth_timeout: opts.auth_timeout(),
        authenticator: Arc::new(Authenticator::new(opts)),
    })
}

fn out(c: &mut ClientConn) -> String {
    let mut s = std::mem::take(&mut c.replay);
    while let Some(b) = c.poll_transmit() {
        s.extend_from_slice(&b);
    }
    String::from_utf8(s).unwrap()
}

fn events(c: &mut ClientConn) -> Vec<ConnEvent> {
    let mut v: Vec<ConnEvent> = c.replay_events.drain(..).collect();
    v.extend(std::iter::from_fn(|| c.poll_event()));
    v
}

#[test]
fn fast_lane_keeps_wire_order() {
    let t0 = Instant::now();
    let mut c = ClientConn::new(
        t0,
        1,
        cfg(&Options::default()),
        "127.0.0.1",
        ConnType::Standard,
        1,
    );
    let _ = c.poll_transmit();
    let mut b = BytesMut::from(&b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPUB a 1\r\nx\r\nPING\r\nPUB b 1\r\ny\r\n"[..]);
    // What a driver sees, in order: fast publishes, transmits, events.
    let mut seen: Vec<String> = Vec::new();
    let mut more = true;
    while more {
        more = c.handle_input_with(t0, &mut b, 2048, |p| {
            seen.push(format!("fast {}", String::from_utf8_lossy(p.subject)));
        });
        while let Some(t) = c.poll_transmit() {
            seen.push(format!("tx {}", String::from_utf8_lossy(&t).trim_end()));
        }
        while let Some(e) = c.poll_event() {
            seen.push(match e {
                ConnEvent::Publish(m) => {
                    format!("event {}", String::from_utf8_lossy(&m.subject))
                }
                ConnEvent::Connected { .. } => "connected".to_owned(),
                other => format!("{other:?}"),
            });
        }
    }
    assert_eq!(seen, ["connected", "fast a", "tx PONG", "event b"]);
}

#[test]
fn pong_never_overtakes_earlier_publishes() {
    let t0 = Instant::now();
    let mut c = ClientConn::new(
        t0,
        1,
        cfg(&Options::default()),
        "127.0.0.1",
        ConnType::Standard,
        1,
    );
    let _ = c.poll_transmit();
    let mut b = BytesMut::from(&b"CONNECT {\"verbose\":false}\r\nPUB a 1\r\nx\r\nPING\r\n"[..]);
    assert!(c.handle_input(t0, &mut b));
    assert!(matches!(c.poll_event(), Some(ConnEvent::Connected { .. })));
    assert!(c.poll_transmit().is_none());
    assert!(c.handle_input(t0, &mut b));
    assert!(matches!(c.poll_event(), Some(ConnEvent::Publish(_))));
    assert!(
        c.poll_transmit().is_none(),
        "no PONG before the PUB is routed"
    );
    assert!(!c.handle_input(t0, &mut b));
    assert_eq!(&c.poll_transmit().unwrap()[..], b"PONG\r\n");
}

/// Feeds input, collecting events as a driver would, and keeps them for `events`.
fn feed(c: &mut ClientConn, now: Instant, s: &str) {
    let mut b = BytesMut::from(s.as_bytes());
    while c.handle_input(now, &mut b) {
        let mut t = Vec::new();
        while let Some(x) = c.poll_transmit() {
            t.extend_from_slice(&x);
        }
        c.replay.extend_from_slice(&t);
        while let Some(e) = c.poll_event() {
            c.replay_events.push(e);
        }
    }
}

fn auth_opts() -> Options {
    Options {
        authorization: crate::options::Authorization {
            users: vec![User {
                username: Some("u".into()),
                password: Some("p".into()),
                ..User::default()
            }],
            ..Default::default()
        },
        ..Options::default()
    }
}

#[test]
fn info_first_then_connect_and_pub() {
    let t0 = Instant::now();
    let mut c = ClientConn::new(
        t0,
        7,
        cfg(&Options::default()),
        "127.0.0.1",
        ConnType::Standard,
        1,
    );
    let info = out(&mut c);
    assert!(info.starts_with("INFO {"), "{info}");
    assert!(info.contains("\"client_id\":7"));
    assert!(!info.contains("auth_required"));
    feed(
        &mut c,
        t0,
        "CONNECT {\"verbose\":true}\r\nPUB a 2\r\nhi\r\nPING\r\n",
    );
    assert_eq!(out(&mut c), "+OK\r\n+OK\r\nPONG\r\n");
    let ev = events(&mut c);
    assert!(matches!(ev[0], ConnEvent::Connected { .. }));
    assert!(
        matches!(&ev[1], ConnEvent::Publish(m) if &m.subject[..] == b"a" && &m.payload[..] == b"hi")
    );
}

#[test]
fn auth_required_rejects_ops_before_connect() {
    let t0 = Instant::now();
    let mut c = ClientConn::new(t0, 1, cfg(&auth_opts()), "127.0.0.1", ConnType::Standard, 1);
    assert!(out(&mut c).contains("\"auth_required\":true"));
    feed(&mut c, t0, "PUB a 0\r\n\r\n");
    assert_eq!(out(&mut c), "-ERR 'Authorization Violation'\r\n");
    assert!(matches!(
        events(&mut c)[..],
        [ConnEvent::Closed(CloseReason::AuthenticationViolation)]
    ));
}

#[test]
fn bad_credentials_are_an_authorization_violation() {
    let t0 = Instant::now();
    let mut c = ClientConn::new(t0, 1, cfg(&auth_opts()), "127.0.0.1", ConnType::Standard, 1);
    out(&mut c);
    feed(
        &mut c,
        t0,
        "CONNECT {\"user\":\"u\",\"pass\":\"wrong\"}\r\n",
    );
    assert_eq!(out(&mut c), "-ERR 'Authorization Violation'\r\n");
    assert!(c.is_closed());
    let mut c = ClientConn::new(t0, 2, cfg(&auth_opts()), "127.0.0.1", ConnType::Standard, 1);
    out(&mut c);
    feed(
        &mut c,
        t0,
        "CONNECT {\"verbose\":false,\"user\":\"u\",\"pass\":\"p\"}\r\nPING\r\n",
    );
    assert_eq!(out(&mut c), "PONG\r\n");
    assert!(c.is_open());
}

#[test]
fn auth_timeout_fires_only_when_due() {
    let t0 = Instant::now();
    let mut c = ClientConn::new(t0, 1, cfg(&auth_opts()), "127.0.0.1", ConnType::Standard, 1);
    out(&mut c);
    let (deadline, kind) = c.poll_timeout().unwrap();
    assert_eq!(kind, TimerKind::Auth);
    assert_eq!(deadline, t0 + Duration::from_secs(2));
    c.handle_timeout(t0 + Duration::from_millis(1999));
    assert!(!c.is_closed());
    c.handle_timeout(deadline);
    assert_eq!(out(&mut c), "-ERR 'Authentication Timeout'\r\n");
    assert!(matches!(
        events(&mut c)[..],
        [ConnEvent::Closed(CloseReason::AuthenticationTimeout)]
    ));
    assert!(c.poll_timeout().is_none());
}

#[test]
fn unanswered_pings_make_a_stale_connection() {
    let t0 = Instant::now();
    let opts = Options {
        ping_interval: Duration::from_secs(10),
        ping_max: 2,
        ..Options::default()
    };
    let mut c = ClientConn::new(t0, 1, cfg(&opts), "127.0.0.1", ConnType::Standard, 1);
    feed(
        &mut c,
        t0,
        "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n",
    );
    out(&mut c);
    events(&mut c);
    let mut pings = 0;
    let mut now = t0;
    for _ in 0..10 {
        let Some((t, kind)) = c.poll_timeout() else {
            break;
        };
        assert_eq!(kind, TimerKind::Ping);
        assert!(t >= now, "timer moves forward");
        now = t;
        c.handle_timeout(now);
        let o = out(&mut c);
        pings += o.matches("PING").count();
        if c.is_closed() {
            assert!(o.ends_with("-ERR 'Stale Connection'\r\n"), "{o}");
            break;
        }
    }
    assert!(c.is_closed());
    // The first timer may be skipped because CONNECT counted as activity.
    assert_eq!(pings, 2);
}

#[test]
fn pong_resets_outstanding_pings() {
    let t0 = Instant::now();
    let opts = Options {
        ping_interval: Duration::from_secs(10),
        ping_max: 1,
        ..Options::default()
    };
    let mut c = ClientConn::new(t0, 1, cfg(&opts), "127.0.0.1", ConnType::Standard, 1);
    feed(
        &mut c,
        t0,
        "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n",
    );
    out(&mut c);
    let mut now = t0;
    for _ in 0..20 {
        let (t, _) = c.poll_timeout().unwrap();
        now = t;
        c.handle_timeout(now);
        if out(&mut c).contains("PING") {
            // Answer the PING only (no other input), as an idle client would.
            feed(&mut c, now, "PONG\r\n");
            c.input_since_ping = false;
        }
    }
    assert!(c.is_open());
    assert!(now > t0 + Duration::from_secs(100));
}

#[test]
fn the_pong_to_a_server_ping_measures_the_round_trip() {
    let t0 = Instant::now();
    let opts = Options {
        ping_interval: Duration::from_secs(10),
        ..Options::default()
    };
    let mut c = ClientConn::new(t0, 1, cfg(&opts), "127.0.0.1", ConnType::Standard, 1);
    feed(&mut c, t0, "CONNECT {\"verbose\":false}\r\nPING\r\n");
    out(&mut c);
    // The client's own PING is answered, not timed.
    assert_eq!(c.rtt(), None);
    // A busy client still gets a PING while no round trip is known (Go: needRTT).
    let sent = loop {
        let (now, _) = c.poll_timeout().expect("ping timer armed");
        feed(&mut c, now, "PUB x 0\r\n\r\n");
        c.handle_timeout(now);
        if out(&mut c).contains("PING") {
            break now;
        }
        assert!(now < t0 + Duration::from_secs(60), "no PING sent");
    };
    feed(&mut c, sent + Duration::from_millis(7), "PONG\r\n");
    assert_eq!(c.rtt(), Some(Duration::from_millis(7)));
    // Once measured, activity suppresses the next PING as before.
    let (t, _) = c.poll_timeout().expect("ping timer armed");
    feed(&mut c, t, "PUB x 0\r\n\r\n");
    c.handle_timeout(t);
    assert!(!out(&mut c).contains("PING"));
    assert_eq!(c.rtt(), Some(Duration::from_millis(7)));
}

#[test]
fn invalid_subjects_and_queues_are_refused_but_not_fatal() {
    let t0 = Instant::now();
    let mut c = ClientConn::new(
        t0,
        1,
        cfg(&Options::default()),
        "127.0.0.1",
        ConnType::Standard,
        1,
    );
    out(&mut c);
    feed(
        &mut c,
        t0,
        "CONNECT {\"verbose\":false,\"pedantic\":true}\r\nSUB foo..bar 1\r\nPUB foo.* 0\r\n\r\nSUB ok 2\r\n",
    );
    assert_eq!(
        out(&mut c),
        "-ERR 'Invalid Subject'\r\n-ERR 'Invalid Publish Subject'\r\n"
    );
    let ev = events(&mut c);
    // Go: the pedantic complaint does not stop the publish.
    assert!(matches!(&ev[1], ConnEvent::Publish(m) if &m.subject[..] == b"foo.*"));
    assert!(matches!(&ev[2], ConnEvent::Subscribe { sid, .. } if &sid[..] == b"2"));
    assert!(c.is_open());
}

#[test]
fn verbose_and_pedantic_until_connect() {
    // Go: server/client.go defaultOpts apply from the first byte: without authentication,
    // ops before CONNECT are acknowledged, PING only ever gets PONG.
    let t0 = Instant::now();
    let mut c = ClientConn::new(
        t0,
        1,
        cfg(&Options::default()),
        "127.0.0.1",
        ConnType::Standard,
        1,
    );
    out(&mut c);
    feed(
        &mut c,
        t0,
        "PING\r\nSUB foo 1\r\nPUB foo.* 0\r\n\r\nUNSUB 1\r\nCONNECT {\"verbose\":false}\r\nSUB a 2\r\nPING\r\n",
    );
    assert_eq!(
        out(&mut c),
        "PONG\r\n+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\n+OK\r\nPONG\r\n"
    );
}

#[test]
fn no_responders_needs_headers() {
    let t0 = Instant::now();
    let mut c = ClientConn::new(
        t0,
        1,
        cfg(&Options::default()),
        "127.0.0.1",
        ConnType::Standard,
        1,
    );
    out(&mut c);
    feed(
        &mut c,
        t0,
        "CONNECT {\"verbose\":false,\"no_responders\":true}\r\n",
    );
    assert_eq!(
        out(&mut c),
        "-ERR 'no responders requires headers support'\r\n"
    );
    assert!(c.is_closed());
}

#[test]
fn max_payload_closes_with_reason() {
    let t0 = Instant::now();
    let opts = Options {
        max_payload: 4,
        ..Options::default()
    };
    let mut c = ClientConn::new(t0, 1, cfg(&opts), "127.0.0.1", ConnType::Standard, 1);
    out(&mut c);
    feed(
        &mut c,
        t0,
        "CONNECT {\"verbose\":false}\r\nPUB a 5\r\nhello\r\n",
    );
    assert_eq!(out(&mut c), "-ERR 'Maximum Payload Violation'\r\n");
    let ev = events(&mut c);
    assert!(matches!(
        ev.last(),
        Some(ConnEvent::Closed(CloseReason::MaxPayloadExceeded))
    ));
}
