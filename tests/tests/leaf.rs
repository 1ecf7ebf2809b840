//! Leaf nodes: a hub and a leaf server linked by `leafnodes`, each scenario run for every
//! pairing of natsd and nats-server 2.9.10 (natsd–natsd, natsd hub with a nats-server leaf,
//! nats-server hub with a natsd leaf, and nats-server–nats-server to check the expectations).
//! Interest crossing the link is awaited by probing, never by sleeping.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::cluster::{await_interest, monitor_get};
use natsd_tests::{free_port, next_msg, text, ServerKind, TestServer, STEP};

natsd_tests::leaf_pairs!(
    pub_sub_both_ways_with_wildcards_and_headers,
    request_reply_both_ways,
    queue_group_gets_each_message_once,
    unsubscribe_stops_the_flow,
    leaf_reconnects_after_hub_restart_and_resends_interest,
    leafz_and_varz_show_the_link,
    messages_cross_a_hub_cluster,
    remote_deny_lists_filter_both_ways,
    a_loop_is_detected_and_reported,
    a_leaf_cluster_gets_each_message_once
);

fn hub_conf(leaf_port: u16) -> String {
    format!("server_name: hub\nleafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n")
}

fn leaf_conf(leaf_port: u16) -> String {
    format!(
        "server_name: leaf\nleafnodes {{ remotes: [ {{ url: \"nats://127.0.0.1:{leaf_port}\" }} ], reconnect: 1 }}\n"
    )
}

/// A hub on a free leaf port and a leaf dialing it.
async fn start_pair(hub: ServerKind, leaf: ServerKind) -> (TestServer, TestServer, u16) {
    let port = free_port();
    let h = TestServer::start(hub, &hub_conf(port)).await;
    let l = TestServer::start(leaf, &leaf_conf(port)).await;
    (h, l, port)
}

async fn pub_sub_both_ways_with_wildcards_and_headers(hub: ServerKind, leaf: ServerKind) {
    let (h, l, _) = start_pair(hub, leaf).await;
    let (hc, lc) = (h.client().await, l.client().await);

    // Hub to leaf, through a wildcard subscription on the leaf.
    let mut down = lc.subscribe("down.*").await.unwrap();
    await_interest(&hc, "down.probe", &mut down).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Trace", "abc");
    hc.publish_with_headers("down.one", headers, Bytes::from_static(b"hello leaf"))
        .await
        .unwrap();
    hc.flush().await.unwrap();
    let m = next_msg(&mut down).await;
    assert_eq!(
        (m.subject.as_str(), text(&m).as_str()),
        ("down.one", "hello leaf")
    );
    let got = m
        .headers
        .as_ref()
        .and_then(|h| h.get("X-Trace"))
        .map(|v| v.as_str().to_owned());
    assert_eq!(got.as_deref(), Some("abc"));

    // Leaf to hub, through a full wildcard on the hub.
    let mut up = hc.subscribe("up.>").await.unwrap();
    await_interest(&lc, "up.probe", &mut up).await;
    lc.publish("up.a.b", Bytes::from_static(b"hello hub"))
        .await
        .unwrap();
    lc.flush().await.unwrap();
    let m = next_msg(&mut up).await;
    assert_eq!(
        (m.subject.as_str(), text(&m).as_str()),
        ("up.a.b", "hello hub")
    );
}

/// Answers every request on `subject` with `answer`.
async fn responder(client: &async_nats::Client, subject: &str, answer: &'static str) {
    let mut sub = client.subscribe(subject.to_owned()).await.unwrap();
    let c = client.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply {
                let _ = c
                    .publish(reply, Bytes::from_static(answer.as_bytes()))
                    .await;
            }
        }
    });
    client.flush().await.unwrap();
}

/// Requests until answered (the responder's interest may not have crossed yet).
async fn request_until_answered(client: &async_nats::Client, subject: &str) -> String {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let r = tokio::time::timeout(
            Duration::from_millis(500),
            client.request(subject.to_owned(), Bytes::from_static(b"q")),
        )
        .await;
        match r {
            Ok(Ok(m)) => return text(&m),
            _ if tokio::time::Instant::now() >= deadline => {
                panic!("no answer on {subject} within {STEP:?}")
            }
            _ => {}
        }
    }
}

async fn request_reply_both_ways(hub: ServerKind, leaf: ServerKind) {
    let (h, l, _) = start_pair(hub, leaf).await;
    let (hc, lc) = (h.client().await, l.client().await);
    responder(&lc, "svc.leaf", "from leaf").await;
    responder(&hc, "svc.hub", "from hub").await;
    assert_eq!(request_until_answered(&hc, "svc.leaf").await, "from leaf");
    assert_eq!(request_until_answered(&lc, "svc.hub").await, "from hub");
}

async fn queue_group_gets_each_message_once(hub: ServerKind, leaf: ServerKind) {
    const N: usize = 60;
    let (h, l, _) = start_pair(hub, leaf).await;
    let (hc, lc) = (h.client().await, l.client().await);
    let lc2 = l.client().await;
    let mut members = [
        lc.queue_subscribe("work", "workers".into()).await.unwrap(),
        lc2.queue_subscribe("work", "workers".into()).await.unwrap(),
        hc.queue_subscribe("work", "workers".into()).await.unwrap(),
    ];
    lc.flush().await.unwrap();
    lc2.flush().await.unwrap();
    // A plain subscription behind the queue ones on the leaf: once its interest crossed,
    // theirs has too.
    let mut watch = lc2.subscribe("work").await.unwrap();
    await_interest(&hc, "work", &mut watch).await;
    for i in 0..N {
        hc.publish("work", Bytes::from(format!("job {i}")))
            .await
            .unwrap();
    }
    hc.flush().await.unwrap();
    // The plain subscriber sees every job: then every queue delivery has been made too
    // (each server handles the messages in order).
    for _ in 0..N {
        next_msg(&mut watch).await;
    }
    let mut seen = Vec::new();
    for m in members.iter_mut() {
        loop {
            match tokio::time::timeout(Duration::from_millis(300), m.next()).await {
                Ok(Some(msg)) if msg.payload.as_ref() != natsd_tests::cluster::PROBE => {
                    seen.push(text(&msg));
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
    seen.retain(|s| s.starts_with("job "));
    seen.sort();
    let mut want: Vec<String> = (0..N).map(|i| format!("job {i}")).collect();
    want.sort();
    assert_eq!(seen, want, "every job exactly once across the group");
}

async fn unsubscribe_stops_the_flow(hub: ServerKind, leaf: ServerKind) {
    let (h, l, _) = start_pair(hub, leaf).await;
    let (hc, lc) = (h.client().await, l.client().await);
    let mut sub = lc.subscribe("gone").await.unwrap();
    await_interest(&hc, "gone", &mut sub).await;
    sub.unsubscribe().await.unwrap();
    lc.flush().await.unwrap();
    // The hub forgets the leaf's interest: a request finds nobody (no responders) rather
    // than being carried to the leaf. Until the LS- has crossed, a request goes to the leaf
    // and is never answered: each attempt is bounded.
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let r = tokio::time::timeout(
            Duration::from_millis(500),
            hc.request("gone", Bytes::from_static(b"?")),
        )
        .await;
        match r {
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => break,
            _ if tokio::time::Instant::now() >= deadline => {
                panic!("the hub still has interest in \"gone\" after the leaf unsubscribed")
            }
            _ => {}
        }
    }
}

async fn leaf_reconnects_after_hub_restart_and_resends_interest(hub: ServerKind, leaf: ServerKind) {
    let (h, l, port) = start_pair(hub, leaf).await;
    let lc = l.client().await;
    let mut sub = lc.subscribe("again").await.unwrap();
    {
        let hc = h.client().await;
        await_interest(&hc, "again", &mut sub).await;
    }
    drop(h);
    let h = TestServer::start(hub, &hub_conf(port)).await;
    let hc = h.client().await;
    // The leaf dials again and sends the subscription it already had.
    natsd_tests::within_for(
        Duration::from_secs(20),
        "the leaf's interest after the hub restarted",
        await_interest(&hc, "again", &mut sub),
    )
    .await;
    hc.publish("again", Bytes::from_static(b"back"))
        .await
        .unwrap();
    hc.flush().await.unwrap();
    assert_eq!(text(&next_msg(&mut sub).await), "back");
}

async fn leafz_and_varz_show_the_link(hub: ServerKind, leaf: ServerKind) {
    let (port, http) = (free_port(), free_port());
    let h = TestServer::start_with_args(hub, &hub_conf(port), &["-m", &http.to_string()]).await;
    let l = TestServer::start(leaf, &leaf_conf(port)).await;
    let (hc, lc) = (h.client().await, l.client().await);
    let mut sub = lc.subscribe("mon.sub").await.unwrap();
    await_interest(&hc, "mon.sub", &mut sub).await;
    let z = monitor_get(http, "/leafz?subs=1").await.unwrap();
    assert_eq!(z["leafnodes"], 1, "{z}");
    let link = &z["leafs"][0];
    assert_eq!(link["account"], "$G", "{z}");
    assert_eq!(link["ip"], "127.0.0.1", "{z}");
    assert!(
        link["in_msgs"].is_u64() && link["out_msgs"].as_u64() >= Some(1),
        "{z}"
    );
    let list: Vec<&str> = link["subscriptions_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(list.contains(&"mon.sub"), "{z}");
    assert_eq!(
        link["subscriptions"].as_u64(),
        Some(list.len() as u64),
        "{z}"
    );
    let plain = monitor_get(http, "/leafz").await.unwrap();
    assert!(
        plain["leafs"][0].get("subscriptions_list").is_none(),
        "{plain}"
    );
    let v = monitor_get(http, "/varz").await.unwrap();
    assert_eq!(v["leafnodes"], 1, "{v}");
    assert_eq!(v["leaf"]["port"], port, "{v}");
}

/// The hub is one node of a two-node cluster: the leaf's interest reaches the other node
/// through the routes, and the leaf's messages are routed on to it.
async fn messages_cross_a_hub_cluster(hub: ServerKind, leaf: ServerKind) {
    let port = free_port();
    let cluster = natsd_tests::cluster::TestCluster::start_conf(
        &[hub, hub],
        |_| String::new(),
        |i| {
            if i == 0 {
                format!("leafnodes {{ listen: \"127.0.0.1:{port}\" }}")
            } else {
                String::new()
            }
        },
    )
    .await;
    let l = TestServer::start(leaf, &leaf_conf(port)).await;
    let (far, lc) = (cluster.client(1).await, l.client().await);
    let mut down = lc.subscribe("to.leaf").await.unwrap();
    await_interest(&far, "to.leaf", &mut down).await;
    let mut up = far.subscribe("from.leaf").await.unwrap();
    await_interest(&lc, "from.leaf", &mut up).await;
    responder(&lc, "leaf.svc", "leaf answers").await;
    assert_eq!(
        request_until_answered(&far, "leaf.svc").await,
        "leaf answers"
    );
}

/// `deny_exports` keeps the leaf's messages on those subjects from the hub, even under the
/// hub's wildcard interest; `deny_imports` keeps the leaf from asking for them.
async fn remote_deny_lists_filter_both_ways(hub: ServerKind, leaf: ServerKind) {
    let port = free_port();
    let h = TestServer::start(hub, &hub_conf(port)).await;
    let leaf_conf = format!(
        "server_name: leaf\nleafnodes {{ reconnect: 1, remotes: [ {{ url: \"nats://127.0.0.1:{port}\", deny_exports: [\"up.secret.>\"], deny_imports: [\"down.secret.>\"] }} ] }}\n"
    );
    let l = TestServer::start(leaf, &leaf_conf).await;
    let (hc, lc) = (h.client().await, l.client().await);

    // Leaf to hub: the hub's `up.>` crosses, but up.secret.* messages do not.
    let mut up = hc.subscribe("up.>").await.unwrap();
    await_interest(&lc, "up.probe", &mut up).await;
    lc.publish("up.secret.a", Bytes::from_static(b"kept"))
        .await
        .unwrap();
    lc.publish("up.open", Bytes::from_static(b"sent"))
        .await
        .unwrap();
    lc.flush().await.unwrap();
    let m = next_msg(&mut up).await;
    assert_eq!((m.subject.as_str(), text(&m).as_str()), ("up.open", "sent"));

    // Hub to leaf: the leaf's interest in down.secret.a never reaches the hub. It subscribed
    // first, so once down.open's interest has crossed, down.secret.a's would have too.
    let mut secret = lc.subscribe("down.secret.a").await.unwrap();
    let mut open = lc.subscribe("down.open").await.unwrap();
    await_interest(&hc, "down.open", &mut open).await;
    hc.publish("down.secret.a", Bytes::from_static(b"kept"))
        .await
        .unwrap();
    hc.publish("down.open", Bytes::from_static(b"sent"))
        .await
        .unwrap();
    hc.flush().await.unwrap();
    assert_eq!(text(&next_msg(&mut open).await), "sent");
    let leaked = natsd_tests::drain_ready(&mut secret);
    assert!(leaked.is_empty(), "denied import delivered: {leaked:?}");
}

/// Two servers that are each other's hub: the `$LDS.` subject one sends comes back to it,
/// and the loop is reported with nats-server's text.
async fn a_loop_is_detected_and_reported(a: ServerKind, b: ServerKind) {
    let (pa, pb) = (free_port(), free_port());
    let conf = |name: &str, listen: u16, remote: u16| {
        format!(
            "server_name: {name}\nleafnodes {{ listen: \"127.0.0.1:{listen}\", reconnect: 1, remotes: [ {{ url: \"nats://127.0.0.1:{remote}\" }} ] }}\n"
        )
    };
    let sa = TestServer::start(a, &conf("a", pa, pb)).await;
    let sb = TestServer::start(b, &conf("b", pb, pa)).await;
    let want = "Loop detected for leafnode account=\"$G\". Delaying attempt to reconnect for 30s";
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        if sa.log().contains(want) || sb.log().contains(want) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no loop reported within {STEP:?}\n--- a ---\n{}\n--- b ---\n{}",
            sa.log(),
            sb.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// natsd only (the hub here is the test itself, speaking nats-server 2.9.10's side): a
/// remote with `credentials` sends the `.creds` JWT and the hub's nonce signed with its seed,
/// and no URL user, as nats-server's leaf does.
#[tokio::test]
async fn creds_remote_signs_the_hub_nonce() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !ServerKind::Natsd.available() {
        return;
    }
    const JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let kp = nkeys::KeyPair::new_user();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("leaf.creds");
    std::fs::write(
        &creds,
        format!(
            "-----BEGIN NATS USER JWT-----\n{JWT}\n------END NATS USER JWT------\n\n\
             -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
            kp.seed().unwrap()
        ),
    )
    .unwrap();
    let conf = format!(
        "server_name: leaf\nleafnodes {{ remotes: [ {{ url: \"nats://u:p@127.0.0.1:{port}\", credentials: \"{}\" }} ] }}\n",
        creds.display()
    );
    let _leaf = TestServer::start(ServerKind::Natsd, &conf).await;
    let (mut sock, _) = natsd_tests::within("the leaf to dial", listener.accept())
        .await
        .unwrap();
    sock.write_all(
        b"INFO {\"server_id\":\"FAKEHUB\",\"server_name\":\"hub\",\"version\":\"2.9.10\",\"proto\":1,\"headers\":true,\"max_payload\":1048576,\"nonce\":\"xD5QbV8RSLe2a-M\",\"auth_required\":true}\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    while !got.windows(2).any(|w| w == b"\r\n") {
        let mut chunk = [0u8; 4096];
        let n = natsd_tests::within("CONNECT", sock.read(&mut chunk))
            .await
            .unwrap();
        assert!(n > 0, "the leaf hung up: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&got);
    let line = line.split("\r\n").next().unwrap();
    let json = line.strip_prefix("CONNECT ").expect(line);
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["jwt"].as_str(), Some(JWT), "{v}");
    assert!(v.get("user").is_none() && v.get("pass").is_none(), "{v}");
    let sig = base64_url_raw(v["sig"].as_str().unwrap());
    kp.verify(b"xD5QbV8RSLe2a-M", &sig)
        .expect("the nonce signed with the seed");
}

/// Raw URL-safe base64 (no padding), as nkey signatures travel.
fn base64_url_raw(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not URL-safe base64: {c:?}"),
        }
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | val(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The leaf side is itself a cluster of two, each node with its own link to the hub: a
/// subscriber on either leaf node gets each hub message once, and both publish to the hub.
async fn a_leaf_cluster_gets_each_message_once(hub: ServerKind, leaf: ServerKind) {
    let port = free_port();
    let h = TestServer::start(hub, &hub_conf(port)).await;
    let leaves = natsd_tests::cluster::TestCluster::start_conf(
        &[leaf, leaf],
        |_| String::new(),
        |_| {
            format!(
                "leafnodes {{ reconnect: 1, remotes: [ {{ url: \"nats://127.0.0.1:{port}\" }} ] }}"
            )
        },
    )
    .await;
    let hc = h.client().await;
    let (l0, l1) = (leaves.client(0).await, leaves.client(1).await);
    let mut subs = [
        l0.subscribe("to.leaves").await.unwrap(),
        l1.subscribe("to.leaves").await.unwrap(),
    ];
    for s in subs.iter_mut() {
        await_interest(&hc, "to.leaves", s).await;
    }
    // Each leaf subscriber has swallowed the other's probes by now; what is left is drained.
    for s in subs.iter_mut() {
        let _ = natsd_tests::drain_ready(s);
    }
    const N: usize = 20;
    for i in 0..N {
        hc.publish("to.leaves", Bytes::from(format!("m{i}")))
            .await
            .unwrap();
    }
    hc.publish("to.leaves", Bytes::from_static(b"end"))
        .await
        .unwrap();
    hc.flush().await.unwrap();
    for s in subs.iter_mut() {
        let mut got = Vec::new();
        loop {
            let m = next_msg(s).await;
            if m.payload.as_ref() == natsd_tests::cluster::PROBE {
                continue;
            }
            let t = text(&m);
            if t == "end" {
                break;
            }
            if t.starts_with('m') {
                got.push(t);
            }
        }
        let want: Vec<String> = (0..N).map(|i| format!("m{i}")).collect();
        assert_eq!(got, want, "each message once, in order");
    }

    let mut up = hc.subscribe("from.leaves").await.unwrap();
    await_interest(&l1, "from.leaves", &mut up).await;
    await_interest(&l0, "from.leaves", &mut up).await;
    // The two nodes' messages take different links: their order is not kept, each node's is.
    for (c, body) in [(&l1, "one"), (&l0, "zero")] {
        for b in [body, "end"] {
            c.publish("from.leaves", Bytes::from(b)).await.unwrap();
        }
        c.flush().await.unwrap();
    }
    let (mut got, mut ends) = (Vec::new(), 0);
    while ends < 2 {
        let m = next_msg(&mut up).await;
        match text(&m).as_str() {
            "end" => ends += 1,
            t if m.payload.as_ref() != natsd_tests::cluster::PROBE => got.push(t.to_owned()),
            _ => {}
        }
    }
    got.sort();
    assert_eq!(got, ["one", "zero"], "each message once");
}
