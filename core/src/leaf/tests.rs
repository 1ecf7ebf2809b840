use super::*;

fn settings(auth: LeafAuth) -> Arc<LeafSettings> {
    Arc::new(LeafSettings {
        info: RouteInfo {
            server_id: "HUBID".into(),
            server_name: "hub".into(),
            version: "2.9.10".into(),
            proto: 1,
            go: "go1.19.8".into(),
            host: "127.0.0.1".into(),
            port: 7422,
            headers: true,
            max_payload: 1 << 20,
            ..RouteInfo::default()
        },
        cluster: "hub".into(),
        max_control_line: 4096,
        max_payload: 1 << 20,
        max_pending: 1 << 20,
        ping_interval: Duration::from_secs(120),
        ping_max: 2,
        auth_timeout: Duration::from_secs(2),
        auth,
        main_auth: None,
    })
}

fn drain_out(c: &mut LeafConn) -> Vec<u8> {
    let mut v = Vec::new();
    while let Some(b) = c.poll_transmit() {
        v.extend_from_slice(&b);
    }
    v
}

fn events(c: &mut LeafConn) -> Vec<LeafEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn feed(c: &mut LeafConn, now: Instant, bytes: &[u8]) -> Vec<LeafEvent> {
    let mut buf = BytesMut::from(bytes);
    let mut ev = Vec::new();
    while c.handle_input(now, &mut buf) {
        ev.extend(events(c));
    }
    ev.extend(events(c));
    ev
}

/// A leaf-side machine for the global account, without URL credentials.
fn global_leaf(now: Instant) -> LeafConn {
    let mut leaf_cfg = (*settings(LeafAuth::default())).clone();
    leaf_cfg.info.server_id = "LEAFID".into();
    let role = LeafRole::Solicited {
        user: None,
        pass: None,
        account: "$G".into(),
    };
    LeafConn::new(now, 9, Arc::new(leaf_cfg), role, 2)
}

/// Hub INFO, leaf CONNECT, hub answer: both sides bound, the wire drained.
fn handshake(hub: &mut LeafConn, leaf: &mut LeafConn, now: Instant) {
    feed(leaf, now, &drain_out(hub));
    feed(hub, now, &drain_out(leaf));
    let ev = feed(leaf, now, &drain_out(hub));
    assert!(matches!(&ev[..], [LeafEvent::Connected { .. }]), "{ev:?}");
    let _ = drain_out(leaf);
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A hub and a leaf machine wired back to back, as nats-server's capture shows them talk.
#[test]
#[allow(clippy::disallowed_methods)] // any start instant will do
fn hub_and_leaf_bind_and_exchange_interest_and_messages() {
    let now = Instant::now();
    let users = LeafAuth {
        users: vec![LeafUser {
            user: "l".into(),
            password: "p".into(),
            account: Some("A".into()),
        }],
        ..LeafAuth::default()
    };
    let mut hub = LeafConn::new(now, 4, settings(users), LeafRole::Accepted, 1);
    let mut leaf_cfg = (*settings(LeafAuth::default())).clone();
    leaf_cfg.info.server_id = "LEAFID".into();
    leaf_cfg.info.server_name = "leaf".into();
    let role = LeafRole::Solicited {
        user: Some("l".into()),
        pass: Some("p".into()),
        account: "B".into(),
    };
    let mut leaf = LeafConn::new(now, 9, Arc::new(leaf_cfg), role, 2);
    assert!(drain_out(&mut leaf).is_empty(), "the leaf waits for INFO");
    let info = drain_out(&mut hub);
    let t = text(&info);
    assert!(t.starts_with("INFO {\"server_id\":\"HUBID\""), "{t}");
    assert!(
        t.contains("\"auth_required\":true") && t.contains("\"nonce\""),
        "{t}"
    );
    // The leaf answers with CONNECT and binds once the hub has answered it.
    assert!(feed(&mut leaf, now, &info).is_empty());
    let connect = text(&drain_out(&mut leaf));
    assert!(
        connect.starts_with("CONNECT {\"version\":\"2.9.10\",\"user\":\"l\",\"pass\":\"p\""),
        "{connect}"
    );
    let ev = feed(&mut hub, now, connect.as_bytes());
    assert!(
        matches!(&ev[..], [LeafEvent::Connected { account, remote_id, .. }]
        if account == "A" && remote_id == "LEAFID")
    );
    let answer = drain_out(&mut hub);
    let t = text(&answer);
    assert!(t.contains("\"connect_info\":true") && t.contains("\"remote_account\":\"A\""));
    let ev = feed(&mut leaf, now, &answer);
    assert!(
        matches!(&ev[..], [LeafEvent::Connected { account, remote_name, .. }]
        if account == "B" && remote_name == "hub")
    );
    leaf.send_sub(b"foo.*", None);
    leaf.send_sub(b"bar", Some((b"q", 2)));
    let wire = drain_out(&mut leaf);
    let t = text(&wire);
    assert_eq!(t, "LS+ foo.*\r\nLS+ bar q 2\r\n");
    let ev = feed(&mut hub, now, &wire);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(matches!(&ev[1], LeafEvent::RemoteSub(s) if s.weight == 2 && &s.account[..] == b"A"));
    hub.send_msg_from(
        b"foo.x",
        Some(b"r"),
        &[],
        Some(b"NATS/1.0\r\nA: b\r\n\r\n"),
        (b"hi", None),
    );
    hub.send_msg_from(b"bar", None, &[b"q"], None, (b"q1", None));
    let ev = feed(&mut leaf, now, &drain_out(&mut hub));
    let [LeafEvent::Msg(m1), LeafEvent::Msg(m2)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (&m1.subject[..], m1.reply.as_deref()),
        (&b"foo.x"[..], Some(&b"r"[..]))
    );
    assert!(m1.headers.is_some());
    assert_eq!((&m2.payload[..], m2.queues.len()), (&b"q1"[..], 1));
    leaf.send_unsub(b"foo.*", None);
    let ev = feed(&mut hub, now, &drain_out(&mut leaf));
    assert!(matches!(&ev[..], [LeafEvent::RemoteUnsub(u)] if &u.subject[..] == b"foo.*"));
}

#[test]
#[allow(clippy::disallowed_methods)]
fn hub_refuses_bad_credentials_and_ops_before_connect() {
    let now = Instant::now();
    let auth = LeafAuth {
        user: "u".into(),
        password: "secret".into(),
        ..LeafAuth::default()
    };
    let mut hub = LeafConn::new(now, 1, settings(auth.clone()), LeafRole::Accepted, 1);
    drain_out(&mut hub);
    let ev = feed(
        &mut hub,
        now,
        b"CONNECT {\"user\":\"u\",\"pass\":\"nope\"}\r\n",
    );
    assert_eq!(
        ev,
        [LeafEvent::Closed(LeafCloseReason::AuthenticationViolation)]
    );
    assert_eq!(drain_out(&mut hub), b"-ERR 'Authorization Violation'\r\n");

    let mut hub = LeafConn::new(now, 2, settings(auth.clone()), LeafRole::Accepted, 1);
    drain_out(&mut hub);
    let ev = feed(&mut hub, now, b"LS+ foo\r\n");
    assert_eq!(
        ev,
        [LeafEvent::Closed(LeafCloseReason::AuthenticationViolation)]
    );

    let mut hub = LeafConn::new(now, 3, settings(auth), LeafRole::Accepted, 1);
    drain_out(&mut hub);
    hub.handle_timeout(now + Duration::from_secs(2));
    assert_eq!(
        events(&mut hub),
        [LeafEvent::Closed(LeafCloseReason::AuthenticationTimeout)]
    );
}

#[test]
#[allow(clippy::disallowed_methods)]
fn pings_and_stale_detection() {
    let now = Instant::now();
    let mut hub = LeafConn::new(now, 1, settings(LeafAuth::default()), LeafRole::Accepted, 1);
    feed(&mut hub, now, b"CONNECT {}\r\n");
    drain_out(&mut hub);
    assert_eq!(feed(&mut hub, now, b"PING\r\n"), []);
    assert_eq!(drain_out(&mut hub), b"PONG\r\n");
    let mut t = now;
    for _ in 0..2 {
        t = hub.poll_timeout().expect("armed").0;
        hub.handle_timeout(t);
        assert_eq!(drain_out(&mut hub), b"PING\r\n");
    }
    t += Duration::from_secs(120);
    hub.handle_timeout(t);
    assert_eq!(
        events(&mut hub).pop(),
        Some(LeafEvent::Closed(LeafCloseReason::StaleConnection))
    );
}

#[test]
fn auth_binds_accounts() {
    let none = LeafAuth::default();
    assert_eq!(none.authorize("", "").as_deref(), Some(GLOBAL_ACCOUNT));
    let single = LeafAuth {
        user: "u".into(),
        password: "p".into(),
        account: Some("A".into()),
        users: Vec::new(),
    };
    assert_eq!(single.authorize("u", "p").as_deref(), Some("A"));
    assert_eq!(single.authorize("u", "x"), None);
    assert_eq!(single.authorize("", ""), None);
}

/// A remote's deny lists: no `LS+` for a denied import, a message on one dropped; a literal
/// `LS+` on a denied export ignored, and no message on one sent under a wildcard.
#[test]
#[allow(clippy::disallowed_methods)] // any start instant will do
fn deny_lists_filter_interest_and_messages() {
    let now = Instant::now();
    let mut hub = LeafConn::new(now, 4, settings(LeafAuth::default()), LeafRole::Accepted, 1);
    let mut leaf = global_leaf(now);
    leaf.set_deny_lists(&["out.secret.>".into()], &["in.secret.>".into()]);
    handshake(&mut hub, &mut leaf, now);
    leaf.send_sub(b"in.secret.a", None);
    leaf.send_sub(b"in.>", None);
    let wire = text(&drain_out(&mut leaf));
    assert!(
        !wire.contains("LS+ in.secret.a") && wire.ends_with("LS+ in.>\r\n"),
        "{wire}"
    );

    let ev = feed(
        &mut leaf,
        now,
        b"LS+ out.secret.x\r\nLS+ out.>\r\nLMSG in.secret.a 2\r\nno\r\nLMSG in.b 2\r\nok\r\n",
    );
    assert!(
        matches!(&ev[..], [LeafEvent::RemoteSub(s), LeafEvent::Msg(m)]
            if &s.subject[..] == b"out.>" && &m.subject[..] == b"in.b"),
        "{ev:?}"
    );
    leaf.send_msg_from(b"out.secret.y", None, &[], None, (b"no", None));
    leaf.send_msg_from(b"out.z", None, &[], None, (b"ok", None));
    assert_eq!(text(&drain_out(&mut leaf)), "LMSG out.z 2\r\nok\r\n");
}

/// Our own `$LDS.` subject coming back closes the link with nats-server's text; the peer's
/// report of a loop marks the link too (its dialer waits before redialing).
#[test]
#[allow(clippy::disallowed_methods)] // any start instant will do
fn own_loop_subject_coming_back_is_a_loop() {
    let now = Instant::now();
    let mut hub = LeafConn::new(now, 4, settings(LeafAuth::default()), LeafRole::Accepted, 1);
    feed(
        &mut hub,
        now,
        b"CONNECT {\"server_id\":\"L\",\"name\":\"l\"}\r\n",
    );
    drain_out(&mut hub);
    hub.set_loop_subject(Bytes::from_static(b"$LDS.abc"));
    assert_eq!(text(&drain_out(&mut hub)), "LS+ $LDS.abc\r\n");
    let ev = feed(&mut hub, now, b"LS+ $LDS.other\r\nLS+ $LDS.abc\r\n");
    assert!(
        matches!(
            &ev[..],
            [
                LeafEvent::RemoteSub(_),
                LeafEvent::Closed(LeafCloseReason::ProtocolViolation)
            ]
        ),
        "{ev:?}"
    );
    assert!(hub.loop_detected());
    assert_eq!(
        text(&drain_out(&mut hub)),
        "-ERR 'Loop detected for leafnode account=\"$G\". Delaying attempt to reconnect for 30s'\r\n"
    );

    let mut leaf = global_leaf(now);
    let mut hub2 = LeafConn::new(now, 5, settings(LeafAuth::default()), LeafRole::Accepted, 3);
    feed(&mut leaf, now, &drain_out(&mut hub2));
    feed(&mut leaf, now, b"-ERR 'Loop detected for leafnode account=\"$G\". Delaying attempt to reconnect for 30s'\r\n");
    assert!(leaf.is_closed() && leaf.loop_detected());
}

/// With no `leafnodes.authorization`, the server's users let leaves in, with their
/// permissions swapped onto the link (nats-server 2.9.10).
#[test]
#[allow(clippy::disallowed_methods)] // any start instant will do
fn main_users_authenticate_leaves_with_swapped_permissions() {
    use crate::options::{Options, Permissions, SubjectPermission, User};
    let now = Instant::now();
    let allow = |s: &str| {
        Some(SubjectPermission {
            allow: vec![s.into()],
            ..SubjectPermission::default()
        })
    };
    let mut opts = Options::default();
    opts.authorization.users = vec![User {
        username: Some("l".into()),
        password: Some("p".into()),
        permissions: Some(Permissions {
            publish: allow("up.>"),
            subscribe: allow("down.>"),
            ..Permissions::default()
        }),
        ..User::default()
    }];
    let mut cfg = (*settings(LeafAuth::default())).clone();
    cfg.main_auth = Some(Arc::new(Authenticator::new(&opts)));
    let cfg = Arc::new(cfg);
    let connect = |user: &str, pass: &str| {
        format!("CONNECT {{\"user\":\"{user}\",\"pass\":\"{pass}\",\"name\":\"leaf\",\"server_id\":\"L\"}}\r\n")
    };

    // A wrong password or an unknown user is refused; no user at all is let in.
    for (u, p, ok) in [("l", "x", false), ("who", "p", false), ("", "", true)] {
        let mut hub = LeafConn::new(now, 1, cfg.clone(), LeafRole::Accepted, 1);
        let ev = feed(&mut hub, now, connect(u, p).as_bytes());
        assert_eq!(
            matches!(&ev[..], [LeafEvent::Connected { .. }]),
            ok,
            "{u}/{p}: {ev:?}"
        );
    }

    let mut hub = LeafConn::new(now, 1, cfg, LeafRole::Accepted, 1);
    let _ = drain_out(&mut hub);
    let ev = feed(&mut hub, now, connect("l", "p").as_bytes());
    assert!(matches!(&ev[..], [LeafEvent::Connected { account, .. }] if account == "$G"));
    // The answer tells the leaf its user's permissions, unswapped (Go: import = subscribe).
    let answer = drain_out(&mut hub);
    let t = text(&answer);
    assert!(
        t.contains("\"import\":{\"allow\":[\"down.>\"]},\"export\":{\"allow\":[\"up.>\"]}"),
        "{t}"
    );
    // A leaf enforces them: it asks only for what it may subscribe to, sends only what it
    // may publish, and ignores interest it may not serve.
    let mut leaf = global_leaf(now);
    let mut hub_first = LeafConn::new(now, 2, settings(LeafAuth::default()), LeafRole::Accepted, 1);
    feed(&mut leaf, now, &drain_out(&mut hub_first));
    let _ = drain_out(&mut leaf);
    let ev = feed(&mut leaf, now, &answer);
    assert!(matches!(&ev[..], [LeafEvent::Connected { .. }]), "{ev:?}");
    leaf.send_sub(b"down.a", None);
    leaf.send_sub(b"nope", None);
    leaf.send_msg_from(b"up.a", None, &[], None, (b"1", None));
    leaf.send_msg_from(b"nope", None, &[], None, (b"2", None));
    assert_eq!(
        text(&drain_out(&mut leaf)),
        "LS+ down.a\r\nLMSG up.a 1\r\n1\r\n"
    );
    assert!(feed(&mut leaf, now, b"LS+ secret\r\n").is_empty());
    // We ask the leaf only for what it may publish (a wider wildcard too), and the loop
    // detection subject always.
    for s in [&b"up.a"[..], b"up.*", b">", b"down.a", b"$LDS.x"] {
        hub.send_sub(s, None);
    }
    assert_eq!(
        text(&drain_out(&mut hub)),
        "LS+ up.a\r\nLS+ up.*\r\nLS+ >\r\nLS+ $LDS.x\r\n"
    );
    // We send it only what it may subscribe to.
    hub.send_msg_from(b"up.a", None, &[], None, (b"no", None));
    hub.send_msg_from(b"down.a", None, &[], None, (b"yes", None));
    assert_eq!(text(&drain_out(&mut hub)), "LMSG down.a 3\r\nyes\r\n");
    // Its interest within its subscribe permissions is taken; outside them it is cut off.
    let ev = feed(&mut hub, now, b"LS+ down.*\r\nLS+ $LDS.y\r\nLS+ down.b\r\n");
    assert_eq!(ev.len(), 3, "{ev:?}");
    let ev = feed(&mut hub, now, b"LS+ secret\r\n");
    assert_eq!(ev, [LeafEvent::Closed(LeafCloseReason::ProtocolViolation)]);
    assert_eq!(
        text(&drain_out(&mut hub)),
        "-ERR 'Permissions Violation for Subscription to \"secret\"'\r\n"
    );
}

/// Messages come out in runs, stopped by any other op's event so it is acted on in order.
#[test]
#[allow(clippy::disallowed_methods)] // any start instant will do
fn messages_come_out_in_runs_up_to_an_event() {
    let now = Instant::now();
    let mut hub = LeafConn::new(now, 4, settings(LeafAuth::default()), LeafRole::Accepted, 1);
    let _ = feed(
        &mut hub,
        now,
        b"CONNECT {\"server_id\":\"L\",\"name\":\"l\"}\r\n",
    );
    let mut buf =
        BytesMut::from(&b"LMSG a 1\r\nx\r\nLMSG b 1\r\ny\r\nLS+ s\r\nLMSG c 1\r\nz\r\n"[..]);
    let mut msgs = Vec::new();
    assert!(hub.handle_input_msgs(now, &mut buf, &mut msgs, 64));
    let subjects: Vec<&[u8]> = msgs.iter().map(|m| &m.subject[..]).collect();
    assert_eq!(subjects, [&b"a"[..], b"b"]);
    assert!(matches!(&events(&mut hub)[..], [LeafEvent::RemoteSub(s)] if &s.subject[..] == b"s"));
    msgs.clear();
    assert!(!hub.handle_input_msgs(now, &mut buf, &mut msgs, 1));
    assert_eq!((msgs.len(), &msgs[0].payload[..]), (1, &b"z"[..]));
}

/// Go: leafnode.go — the hub's INFO carries its cluster's `leafnode_urls`; the leaf hears
/// them from the first INFO, the answer to CONNECT and every asynchronous update.
#[test]
#[allow(clippy::disallowed_methods)] // any start instant will do
fn leaf_learns_the_hub_clusters_leafnode_urls() {
    let now = Instant::now();
    let mut cfg = (*settings(LeafAuth::default())).clone();
    cfg.info.leafnode_urls = vec!["127.0.0.1:7422".into()];
    let mut hub = LeafConn::new(now, 4, Arc::new(cfg), LeafRole::Accepted, 1);
    let mut leaf = global_leaf(now);
    let info = drain_out(&mut hub);
    assert!(
        text(&info).contains("\"leafnode_urls\":[\"127.0.0.1:7422\"]"),
        "{}",
        text(&info)
    );
    let ev = feed(&mut leaf, now, &info);
    assert_eq!(ev, [LeafEvent::LeafUrls(vec!["127.0.0.1:7422".into()])]);
    feed(&mut hub, now, &drain_out(&mut leaf));
    let ev = feed(&mut leaf, now, &drain_out(&mut hub));
    assert!(
        matches!(&ev[..], [LeafEvent::LeafUrls(u), LeafEvent::Connected { .. }] if u.len() == 1),
        "{ev:?}"
    );
    let _ = drain_out(&mut leaf);

    // A peer joined the hub's cluster: an asynchronous INFO with both URLs, no nonce.
    let urls = vec!["127.0.0.1:7422".to_owned(), "127.0.0.1:7423".to_owned()];
    hub.send_leaf_urls(&urls);
    let update = text(&drain_out(&mut hub));
    assert!(
        update.starts_with("INFO {\"server_id\":\"HUBID\"")
            && update.contains("\"leafnode_urls\":[\"127.0.0.1:7422\",\"127.0.0.1:7423\"]")
            && !update.contains("nonce")
            && !update.contains("connect_info"),
        "{update}"
    );
    let ev = feed(&mut leaf, now, update.as_bytes());
    assert_eq!(ev, [LeafEvent::LeafUrls(urls.clone())]);
    assert!(drain_out(&mut leaf).is_empty(), "an update is not answered");

    // A leaf-side link never sends its hub an update.
    leaf.send_leaf_urls(&urls);
    assert!(drain_out(&mut leaf).is_empty());
}

/// The hub tells a link nothing before CONNECT (it gets the list with the answer), and an
/// INFO without `leafnode_urls` tells the leaf nothing.
#[test]
#[allow(clippy::disallowed_methods)] // any start instant will do
fn leafnode_urls_wait_for_connect_and_an_empty_list_is_no_event() {
    let now = Instant::now();
    let mut hub = LeafConn::new(now, 4, settings(LeafAuth::default()), LeafRole::Accepted, 1);
    let first = drain_out(&mut hub);
    assert!(!text(&first).contains("leafnode_urls"), "{}", text(&first));
    hub.send_leaf_urls(&["127.0.0.1:7423".to_owned()]);
    assert!(drain_out(&mut hub).is_empty(), "no CONNECT yet");
    let mut leaf = global_leaf(now);
    assert!(feed(&mut leaf, now, &first).is_empty());
}
