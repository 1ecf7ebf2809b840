//! Gateways: clusters `A` and `B` joined into a super-cluster, each scenario run for every
//! pairing of natsd and nats-server 2.9.10 (natsd–natsd, natsd `A` with a nats-server `B`,
//! nats-server `A` with a natsd `B`, and nats-server–nats-server to check the expectations).
//! Interest crossing the gateways is awaited by probing, never by sleeping.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::cluster::monitor_get;
use natsd_tests::gateway::SuperCluster;
use natsd_tests::{drain_ready, next_msg, text, within, ServerKind};

natsd_tests::gateway_pairs!(
    pub_sub_both_ways_with_wildcards_and_headers,
    request_reply_both_ways,
    queue_group_prefers_its_own_cluster,
    withdrawn_interest_stops_the_flow,
    two_node_clusters_reach_each_other,
    gatewayz_and_varz_show_the_gateways,
    system_account_requests_reach_every_server,
    service_import_answered_from_the_other_cluster,
    credentials_are_checked
);

/// How long interest may take to cross: the gateways are dialed a second after start, and
/// the far side dials back once it learns of us.
const CROSS: Duration = Duration::from_secs(30);

/// Publishes probes on `subject` from `publisher` until one reaches `sub`, then swallows the
/// probes still in flight (a fence message ends them).
async fn await_crossing(
    publisher: &async_nats::Client,
    subject: &str,
    sub: &mut async_nats::Subscriber,
) {
    let deadline = tokio::time::Instant::now() + CROSS;
    loop {
        publisher
            .publish(subject.to_owned(), Bytes::from_static(b"__probe__"))
            .await
            .unwrap();
        let _ = publisher.flush().await;
        match tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            Ok(Some(_)) => break,
            Ok(None) => panic!("subscription ended while probing"),
            Err(_) if tokio::time::Instant::now() >= deadline => {
                panic!("interest in {subject:?} did not cross the gateway")
            }
            Err(_) => {}
        }
    }
    publisher
        .publish(subject.to_owned(), Bytes::from_static(b"__probe_end__"))
        .await
        .unwrap();
    let _ = publisher.flush().await;
    loop {
        let m = within("probe end", sub.next()).await.unwrap();
        if m.payload.as_ref() == b"__probe_end__" {
            break;
        }
    }
}

/// The next message that is not a probe.
async fn next_real(sub: &mut async_nats::Subscriber) -> String {
    loop {
        let t = text(&next_msg(sub).await);
        if !t.starts_with("__probe") {
            return t;
        }
    }
}

/// Sends requests on `subject` until one is answered.
async fn await_answer(client: &async_nats::Client, subject: &str) -> async_nats::Message {
    let deadline = tokio::time::Instant::now() + CROSS;
    loop {
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            client.request(subject.to_owned(), Bytes::from_static(b"ping")),
        )
        .await;
        match r {
            Ok(Ok(m)) => return m,
            _ if tokio::time::Instant::now() >= deadline => {
                panic!("no answer on {subject:?} across the gateway")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Answers every request on `sub` with `answer`.
fn serve(client: async_nats::Client, mut sub: async_nats::Subscriber, answer: &'static str) {
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply {
                let _ = client
                    .publish(reply, Bytes::from_static(answer.as_bytes()))
                    .await;
                let _ = client.flush().await;
            }
        }
    });
}

async fn pub_sub_both_ways_with_wildcards_and_headers(a: ServerKind, b: ServerKind) {
    let sc = SuperCluster::start(a, 1, b, 1).await;
    let (ac, bc) = (sc.a_client(0).await, sc.b_client(0).await);

    // A to B, through a wildcard subscription, with headers.
    let mut east = bc.subscribe("east.*").await.unwrap();
    bc.flush().await.unwrap();
    await_crossing(&ac, "east.probe", &mut east).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Trace", "abc");
    ac.publish_with_headers("east.one", headers, Bytes::from_static(b"hello B"))
        .await
        .unwrap();
    ac.flush().await.unwrap();
    let m = next_msg(&mut east).await;
    assert_eq!(
        (m.subject.as_str(), text(&m).as_str()),
        ("east.one", "hello B")
    );
    let got = m
        .headers
        .as_ref()
        .and_then(|h| h.get("X-Trace"))
        .map(|v| v.as_str().to_owned());
    assert_eq!(got.as_deref(), Some("abc"));

    // B to A (B's gateway to A is learned, not configured), through a full wildcard.
    let mut west = ac.subscribe("west.>").await.unwrap();
    ac.flush().await.unwrap();
    await_crossing(&bc, "west.probe", &mut west).await;
    bc.publish("west.a.b", Bytes::from_static(b"hello A"))
        .await
        .unwrap();
    bc.flush().await.unwrap();
    let m = next_msg(&mut west).await;
    assert_eq!(
        (m.subject.as_str(), text(&m).as_str()),
        ("west.a.b", "hello A")
    );

    // A subject nobody in B wants does not arrive there.
    ac.publish("elsewhere", Bytes::from_static(b"x"))
        .await
        .unwrap();
    ac.publish("east.two", Bytes::from_static(b"2"))
        .await
        .unwrap();
    ac.flush().await.unwrap();
    let m = next_msg(&mut east).await;
    assert_eq!(m.subject.as_str(), "east.two");
}

async fn request_reply_both_ways(a: ServerKind, b: ServerKind) {
    let sc = SuperCluster::start(a, 1, b, 1).await;
    let (ac, bc) = (sc.a_client(0).await, sc.b_client(0).await);
    serve(bc.clone(), bc.subscribe("svc.b").await.unwrap(), "from B");
    serve(ac.clone(), ac.subscribe("svc.a").await.unwrap(), "from A");
    bc.flush().await.unwrap();
    ac.flush().await.unwrap();
    let m = await_answer(&ac, "svc.b").await;
    assert_eq!(text(&m), "from B");
    let m = await_answer(&bc, "svc.a").await;
    assert_eq!(text(&m), "from A");
    // Many in a row: every answer finds its requester.
    for i in 0..20 {
        let m = within("request", ac.request("svc.b", Bytes::from(format!("{i}"))))
            .await
            .unwrap();
        assert_eq!(text(&m), "from B");
    }
}

async fn queue_group_prefers_its_own_cluster(a: ServerKind, b: ServerKind) {
    let sc = SuperCluster::start(a, 1, b, 1).await;
    let (ac, bc) = (sc.a_client(0).await, sc.b_client(0).await);
    // Only B has a member: A's messages go there.
    let mut b_member = bc.queue_subscribe("work", "q".into()).await.unwrap();
    bc.flush().await.unwrap();
    await_crossing(&ac, "work", &mut b_member).await;

    // A fence on B's connection: what A sends before it has reached B once it arrives.
    let mut fence = bc.subscribe("fence").await.unwrap();
    bc.flush().await.unwrap();
    await_crossing(&ac, "fence", &mut fence).await;

    // A member in A takes every message published in A.
    let mut a_member = ac.queue_subscribe("work", "q".into()).await.unwrap();
    ac.flush().await.unwrap();
    for i in 0..20 {
        ac.publish("work", Bytes::from(format!("batch-{i}")))
            .await
            .unwrap();
    }
    ac.flush().await.unwrap();
    for i in 0..20 {
        let m = next_msg(&mut a_member).await;
        assert_eq!(text(&m), format!("batch-{i}"));
    }
    ac.publish("fence", Bytes::from_static(b"f")).await.unwrap();
    ac.flush().await.unwrap();
    next_msg(&mut fence).await;
    let stray = drain_ready(&mut b_member);
    assert!(stray.is_empty(), "B's member got A's batch: {stray:?}");
    // And B's member takes every message published in B.
    for i in 0..20 {
        bc.publish("work", Bytes::from(format!("b-{i}")))
            .await
            .unwrap();
    }
    bc.flush().await.unwrap();
    for i in 0..20 {
        let m = next_msg(&mut b_member).await;
        assert_eq!(text(&m), format!("b-{i}"));
    }

    // Once A's member leaves, A's messages go to B again; B's member never saw A's batch.
    a_member.unsubscribe().await.unwrap();
    ac.flush().await.unwrap();
    await_crossing(&ac, "work", &mut b_member).await;
    ac.publish("work", Bytes::from_static(b"last"))
        .await
        .unwrap();
    ac.flush().await.unwrap();
    assert_eq!(text(&next_msg(&mut b_member).await), "last");
}

async fn withdrawn_interest_stops_the_flow(a: ServerKind, b: ServerKind) {
    let sc = SuperCluster::start(a, 1, b, 1).await;
    let (ac, bc) = (sc.a_client(0).await, sc.b_client(0).await);
    let sub = bc.subscribe("svc.>").await.unwrap();
    let sid_client = bc.clone();
    // A responder that stops when told.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut sub = sub;
        loop {
            tokio::select! {
                _ = &mut stop_rx => {
                    sub.unsubscribe().await.unwrap();
                    sid_client.flush().await.unwrap();
                    return;
                }
                m = sub.next() => {
                    let Some(m) = m else { return };
                    if let Some(reply) = m.reply {
                        sid_client.publish(reply, Bytes::from_static(b"yes")).await.unwrap();
                        sid_client.flush().await.unwrap();
                    }
                }
            }
        }
    });
    bc.flush().await.unwrap();
    let m = await_answer(&ac, "svc.x").await;
    assert_eq!(text(&m), "yes");
    stop_tx.send(()).unwrap();
    task.await.unwrap();
    // With the interest gone, a request from A finds nobody: "no responders".
    let deadline = tokio::time::Instant::now() + CROSS;
    loop {
        let r = tokio::time::timeout(
            Duration::from_secs(2),
            ac.request("svc.x", Bytes::from_static(b"?")),
        )
        .await;
        if let Ok(Err(e)) = &r {
            if e.kind() == async_nats::client::RequestErrorKind::NoResponders {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "requests still crossed after the interest was withdrawn: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn two_node_clusters_reach_each_other(a: ServerKind, b: ServerKind) {
    let sc = SuperCluster::start(a, 2, b, 2).await;
    let (a0, a1) = (sc.a_client(0).await, sc.a_client(1).await);
    let (b0, b1) = (sc.b_client(0).await, sc.b_client(1).await);
    // Every node of each cluster reaches every node of the other.
    for (i, publisher) in [&a0, &a1].into_iter().enumerate() {
        for (j, receiver) in [&b0, &b1].into_iter().enumerate() {
            let subject = format!("ab.{i}.{j}");
            let mut sub = receiver.subscribe(subject.clone()).await.unwrap();
            receiver.flush().await.unwrap();
            await_crossing(publisher, &subject, &mut sub).await;
        }
    }
    for (i, publisher) in [&b0, &b1].into_iter().enumerate() {
        for (j, receiver) in [&a0, &a1].into_iter().enumerate() {
            let subject = format!("ba.{i}.{j}");
            let mut sub = receiver.subscribe(subject.clone()).await.unwrap();
            receiver.flush().await.unwrap();
            await_crossing(publisher, &subject, &mut sub).await;
        }
    }
    // Each message once, even with a subscriber on both nodes of B.
    let mut s0 = b0.subscribe("once").await.unwrap();
    let mut s1 = b1.subscribe("once").await.unwrap();
    b0.flush().await.unwrap();
    b1.flush().await.unwrap();
    await_crossing(&a0, "once", &mut s0).await;
    await_crossing(&a0, "once", &mut s1).await;
    a0.publish("once", Bytes::from_static(b"one"))
        .await
        .unwrap();
    a0.publish("once", Bytes::from_static(b"two"))
        .await
        .unwrap();
    a0.flush().await.unwrap();
    for s in [&mut s0, &mut s1] {
        // Probes of the other subscription's wait may still be ahead.
        let got: Vec<String> = [next_real(s).await, next_real(s).await].into();
        assert_eq!(got, ["one", "two"]);
        assert!(drain_ready(s)
            .iter()
            .all(|m| text(m).starts_with("__probe")));
    }

    // Request/reply across: requester on A's second node, responder on B's second node.
    serve(b1.clone(), b1.subscribe("svc.far").await.unwrap(), "far");
    b1.flush().await.unwrap();
    assert_eq!(text(&await_answer(&a1, "svc.far").await), "far");

    // A queue member reached over a route counts as local: A's messages stay in A.
    let mut remote_member = b0.queue_subscribe("jobs", "q".into()).await.unwrap();
    b0.flush().await.unwrap();
    await_crossing(&a0, "jobs", &mut remote_member).await;
    let mut fence = b0.subscribe("fence").await.unwrap();
    b0.flush().await.unwrap();
    await_crossing(&a0, "fence", &mut fence).await;
    let mut route_member = a1.queue_subscribe("jobs", "q".into()).await.unwrap();
    a1.flush().await.unwrap();
    await_crossing(&a0, "jobs", &mut route_member).await;
    for i in 0..20 {
        a0.publish("jobs", Bytes::from(format!("job-{i}")))
            .await
            .unwrap();
    }
    a0.flush().await.unwrap();
    for i in 0..20 {
        assert_eq!(text(&next_msg(&mut route_member).await), format!("job-{i}"));
    }
    a0.publish("fence", Bytes::from_static(b"f")).await.unwrap();
    a0.flush().await.unwrap();
    next_msg(&mut fence).await;
    let stray: Vec<_> = drain_ready(&mut remote_member)
        .into_iter()
        .filter(|m| text(m).starts_with("job-"))
        .collect();
    assert!(stray.is_empty(), "B's member got A's jobs: {stray:?}");
}

/// Polls `/gatewayz?accs=1` on `http_port` until `ready` holds.
async fn await_gatewayz(
    http_port: u16,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + CROSS;
    loop {
        if let Some(v) = monitor_get(http_port, "/gatewayz?accs=1").await {
            if ready(&v) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/gatewayz never showed the gateways: {v}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn gatewayz_and_varz_show_the_gateways(a: ServerKind, b: ServerKind) {
    let sc = SuperCluster::start(a, 1, b, 1).await;
    let (ac, bc) = (sc.a_client(0).await, sc.b_client(0).await);
    let mut sub = bc.subscribe("seen").await.unwrap();
    bc.flush().await.unwrap();
    await_crossing(&ac, "seen", &mut sub).await;
    let mut sub = ac.subscribe("seen.back").await.unwrap();
    ac.flush().await.unwrap();
    await_crossing(&bc, "seen.back", &mut sub).await;

    let both = |v: &serde_json::Value, peer: &str| {
        !v["outbound_gateways"][peer].is_null() && v["inbound_gateways"][peer][0].is_object()
    };
    let av = await_gatewayz(sc.a[0].http_port, |v| both(v, "B")).await;
    assert_eq!(av["name"], "A");
    assert_eq!(av["port"], sc.a[0].gateway_port);
    assert!(av["server_id"].as_str().is_some_and(|s| !s.is_empty()));
    let out = &av["outbound_gateways"]["B"];
    // A names B in its config; B learned A.
    assert_eq!(out["configured"], true);
    let conn = &out["connection"];
    assert!(conn["cid"].as_u64().is_some(), "{av}");
    assert_eq!(conn["ip"], "127.0.0.1");
    assert_eq!(conn["port"], sc.b[0].gateway_port);
    assert!(conn["out_msgs"].as_u64().is_some_and(|n| n > 0), "{av}");
    // B switched every account to interest-only mode on A's outbound connection.
    let accounts = out["accounts"].as_array().unwrap();
    let g = accounts.iter().find(|x| x["name"] == "$G").unwrap();
    assert_eq!(g["interest_mode"], "Interest-Only");
    assert!(g["num_subs"].as_u64().is_some_and(|n| n >= 1), "{av}");

    let bv = await_gatewayz(sc.b[0].http_port, |v| both(v, "A")).await;
    assert_eq!(bv["name"], "B");
    assert_eq!(bv["outbound_gateways"]["A"]["configured"], false);
    let inbound = &bv["inbound_gateways"]["A"][0];
    assert_eq!(inbound["configured"], false);
    assert!(
        inbound["connection"]["in_msgs"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{bv}"
    );
    let accounts = inbound["accounts"].as_array().unwrap();
    let g = accounts.iter().find(|x| x["name"] == "$G").unwrap();
    assert_eq!(g["interest_mode"], "Interest-Only");

    // Without `accs`, no accounts.
    let plain = monitor_get(sc.a[0].http_port, "/gatewayz").await.unwrap();
    assert!(
        plain["outbound_gateways"]["B"]["accounts"].is_null(),
        "{plain}"
    );

    let varz = monitor_get(sc.a[0].http_port, "/varz").await.unwrap();
    let gw = &varz["gateway"];
    assert_eq!(gw["name"], "A");
    assert_eq!(gw["port"], sc.a[0].gateway_port);
    assert_eq!(gw["gateways"][0]["name"], "B");
    let varz = monitor_get(sc.b[0].http_port, "/varz").await.unwrap();
    assert_eq!(varz["gateway"]["name"], "B");
    assert!(
        varz["gateway"]["gateways"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{varz}"
    );
}

async fn system_account_requests_reach_every_server(a: ServerKind, b: ServerKind) {
    let top = concat!(
        "accounts {\n  SYS: { users: [ { user: sys, password: sys } ] }\n",
        "  APP: { users: [ { user: app, password: app } ] }\n}\n",
        "system_account: SYS\nno_auth_user: app\n"
    );
    let sc = SuperCluster::start_with(a, 1, b, 1, top).await;
    let sys = sc.a[0]
        .server
        .client_with(async_nats::ConnectOptions::with_user_and_password(
            "sys".into(),
            "sys".into(),
        ))
        .await;
    let inbox = sys.new_inbox();
    let mut answers = sys.subscribe(inbox.clone()).await.unwrap();
    sys.flush().await.unwrap();
    // Every server of both clusters answers a ping (Go: $SYS.REQ.SERVER.PING).
    let deadline = tokio::time::Instant::now() + CROSS;
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 2 {
        sys.publish_with_reply("$SYS.REQ.SERVER.PING", inbox.clone(), Bytes::new())
            .await
            .unwrap();
        sys.flush().await.unwrap();
        while let Ok(Some(m)) =
            tokio::time::timeout(Duration::from_millis(200), answers.next()).await
        {
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            if let Some(name) = v["server"]["name"].as_str() {
                seen.insert(name.to_owned());
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {seen:?} answered the ping"
        );
    }
    assert_eq!(seen, ["A0", "B0"].map(str::to_owned).into());
}

async fn service_import_answered_from_the_other_cluster(a: ServerKind, b: ServerKind) {
    let top = concat!(
        "accounts {\n",
        "  SVC: { users: [ { user: svc, password: svc } ], exports: [ { service: \"help.>\" } ] }\n",
        "  APP: { users: [ { user: app, password: app } ],\n",
        "         imports: [ { service: { account: SVC, subject: \"help.>\" } } ] }\n",
        "}\n"
    );
    let sc = SuperCluster::start_with(a, 1, b, 1, top).await;
    let user = |u: &str| async_nats::ConnectOptions::with_user_and_password(u.into(), u.into());
    // The responder in the exporting account, in cluster B; the requester in A.
    let svc = sc.b[0].server.client_with(user("svc")).await;
    serve(
        svc.clone(),
        svc.subscribe("help.>").await.unwrap(),
        "helped",
    );
    svc.flush().await.unwrap();
    let app = sc.a[0].server.client_with(user("app")).await;
    let m = await_answer(&app, "help.me").await;
    assert_eq!(text(&m), "helped");
    for i in 0..10 {
        let m = within("request", app.request(format!("help.{i}"), Bytes::new()))
            .await
            .unwrap();
        assert_eq!(text(&m), "helped");
    }
}

async fn credentials_are_checked(a: ServerKind, b: ServerKind) {
    // B asks for credentials; A's URLs carry them. B dials A back without any (A asks none).
    let sc = SuperCluster::start_auth(a, 1, b, 1, "", Some(("gw", "s3cret"))).await;
    let (ac, bc) = (sc.a_client(0).await, sc.b_client(0).await);
    let mut sub = bc.subscribe("auth.ok").await.unwrap();
    bc.flush().await.unwrap();
    await_crossing(&ac, "auth.ok", &mut sub).await;
    let mut sub = ac.subscribe("auth.back").await.unwrap();
    ac.flush().await.unwrap();
    await_crossing(&bc, "auth.back", &mut sub).await;
}
