//! A JetStream consumer's messages crossing a route: a client connected to a server other
//! than the one its consumer runs on sees each message under the subject it was stored under
//! (carried after an `@` in the ack reply between servers, as nats-server 2.9.10 does), with
//! the plain ack reply. Key-value keys and history read through such a server, a push
//! consumer's deliveries and their acks, nats-py's `keys()`, and a nats-server without
//! JetStream routed to natsd servers.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::cluster::{await_interest, TestCluster};
use natsd_tests::jscluster::{self, api_within, app, info_until, leader_of};
use natsd_tests::{both, flush, within, within_for, ServerKind};
use serde_json::{json, Value};

both!(
    kv_keys_and_history_through_a_follower,
    push_consumer_shows_stored_subjects_across_a_route,
    py_kv_keys_through_a_follower,
);

/// How long the cluster may take to elect or converge.
const CONVERGE: Duration = Duration::from_secs(30);

/// Keys of the test bucket, one with every punctuation a key may hold.
const KEYS: [&str; 2] = ["a.b-c_d=e/f", "k"];

async fn start(kind: ServerKind) -> (TestCluster, Vec<tempfile::TempDir>) {
    let (cluster, dirs) = jscluster::start(kind, 3).await;
    jscluster::meta_leader(&cluster, 3, CONVERGE).await;
    (cluster, dirs)
}

/// Creates the R3 bucket `bucket` (its stream as the clients create it, in the fields
/// nats-server 2.9.10 knows), puts `k` twice and the other key once: the index of a server
/// that is not the bucket stream's leader.
async fn bucket_with_values(cluster: &TestCluster, bucket: &str) -> usize {
    let c0 = app(cluster, 0).await;
    let stream = format!("KV_{bucket}");
    let cfg = json!({
        "name": stream,
        "subjects": [format!("$KV.{bucket}.>")],
        "storage": "file",
        "num_replicas": 3,
        "max_msgs_per_subject": 5,
        "discard": "new",
        "allow_rollup_hdrs": true,
        "deny_delete": true,
        "allow_direct": true,
        "duplicate_window": 120_000_000_000u64,
    });
    jscluster::create(&c0, cfg, CONVERGE).await;
    let js = async_nats::jetstream::new(c0.clone());
    let subject = |k: &str| format!("$KV.{bucket}.{k}");
    jscluster::publish_all(&js, &subject("k"), ["v1".into(), "v2".into()], CONVERGE).await;
    jscluster::publish_all(&js, &subject(KEYS[0]), ["x".into()], CONVERGE).await;
    let info = info_until(&c0, &stream, CONVERGE, |v| v["state"]["messages"] == 3).await;
    (leader_of(&info) + 1) % 3
}

/// async-nats' `keys()` and `history()` (ordered push consumers) through a server that is
/// not the bucket's leader: the keys, not the inboxes they were delivered to.
async fn kv_keys_and_history_through_a_follower(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let follower = bucket_with_values(&cluster, "rk").await;
    let mut js = async_nats::jetstream::new(app(&cluster, follower).await);
    js.set_timeout(CONVERGE);
    let kv = within_for(CONVERGE, "get bucket", js.get_key_value("rk"))
        .await
        .unwrap();
    let history: Vec<(String, Bytes)> = within_for(CONVERGE, "history", async {
        let mut h = kv.history("k").await.unwrap();
        let mut v = Vec::new();
        while let Some(e) = h.next().await {
            let e = e.unwrap();
            v.push((e.key, e.value));
        }
        v
    })
    .await;
    assert_eq!(
        history,
        [
            ("k".to_owned(), Bytes::from_static(b"v1")),
            ("k".to_owned(), Bytes::from_static(b"v2"))
        ]
    );
    let mut keys: Vec<String> = within_for(CONVERGE, "keys", async {
        let keys = kv.keys().await.unwrap();
        keys.map(Result::unwrap).collect::<Vec<_>>().await
    })
    .await;
    keys.sort();
    assert_eq!(keys, KEYS);
}

/// A durable push consumer (explicit acks, R3) delivering to a subscriber on a server other
/// than the consumer's leader: each message shows its stored subject and the plain ack
/// reply, and acking through that reply moves the consumer's ack floor.
async fn push_consumer_shows_stored_subjects_across_a_route(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    jscluster::create(&c0, jscluster::stream_cfg("ORD", 3), CONVERGE).await;
    let js = async_nats::jetstream::new(c0.clone());
    let subjects = ["ord.a", "ord.b.c-d_e", "ord.$x.=y"];
    for s in subjects {
        jscluster::publish_all(&js, s, [format!("on {s}")], CONVERGE).await;
    }
    let created = api_within(
        &c0,
        "$JS.API.CONSUMER.DURABLE.CREATE.ORD.D",
        json!({"stream_name": "ORD", "config": {
            "durable_name": "D",
            "deliver_subject": "dlv.route",
            "ack_policy": "explicit",
            "ack_wait": 60_000_000_000u64,
        }}),
        CONVERGE,
    )
    .await;
    assert!(created.get("error").is_none(), "{created}");
    let info = consumer_info_until(&c0, |v| {
        v["cluster"]["leader"]
            .as_str()
            .is_some_and(|l| !l.is_empty())
    })
    .await;
    let leader = jscluster::index_of(info["cluster"]["leader"].as_str().unwrap());
    let other = (leader + 1) % 3;

    let sc = app(&cluster, other).await;
    let mut sub = within("subscribe", sc.subscribe("dlv.route"))
        .await
        .unwrap();
    flush(&sc).await;
    let mut got = Vec::new();
    for _ in subjects {
        let m = within_for(CONVERGE, "a delivery", sub.next())
            .await
            .unwrap();
        let reply = m.reply.clone().expect("an ack reply");
        assert!(
            reply.starts_with("$JS.ACK.ORD.D.") && !reply.contains('@'),
            "{reply}"
        );
        assert_eq!(m.payload, format!("on {}", m.subject), "{m:?}");
        got.push(m.subject.to_string());
        within("ack", sc.publish(reply, Bytes::new()))
            .await
            .unwrap();
    }
    assert_eq!(got, subjects);
    flush(&sc).await;
    let done = consumer_info_until(&c0, |v| {
        v["ack_floor"]["stream_seq"] == 3 && v["num_ack_pending"] == 0
    })
    .await;
    assert_eq!(done["num_pending"], 0, "{done}");
}

/// The info of consumer `D` of `ORD`, asked until `ok` holds, within [`CONVERGE`].
async fn consumer_info_until(c: &async_nats::Client, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let v = api_within(c, "$JS.API.CONSUMER.INFO.ORD.D", Value::Null, CONVERGE).await;
        if ok(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumer info never fit: {v}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// nats-py's `keys()` and `history()` through a server that is not the bucket's leader
/// (tests/py/js_kv_route_subject.py).
async fn py_kv_keys_through_a_follower(kind: ServerKind) {
    let probe = tokio::process::Command::new("python3")
        .args(["-c", "import nats.js.kv"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    if !matches!(within("python3 probe", probe).await, Ok(s) if s.success()) {
        eprintln!("note: python3 with nats-py is not available; skipped");
        return;
    }
    let (cluster, _dirs) = start(kind).await;
    let follower = bucket_with_values(&cluster, "pyk").await;
    let url = format!(
        "nats://a:a@127.0.0.1:{}",
        cluster.nodes[follower].server.port()
    );
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join("js_kv_route_subject.py");
    let run = tokio::process::Command::new("python3")
        .arg(&file)
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = within_for(Duration::from_secs(120), "js_kv_route_subject.py", run)
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("js_kv_route_subject ok"),
        "js_kv_route_subject.py failed against {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        kind.name()
    );
}

/// A nats-server 2.9.10 without JetStream routed to two natsd servers running it: a natsd
/// push consumer's message delivered to a subscriber on the nats-server shows the stored
/// subject (nats-server takes the `@` suffix off as natsd does).
#[tokio::test]
async fn a_nats_server_subscriber_sees_a_natsd_consumers_stored_subject() {
    use ServerKind::{NatsServer, Natsd};
    if !NatsServer.available() {
        eprintln!("note: nats-server is not installed; mixed cluster test skipped");
        return;
    }
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let cluster = TestCluster::start_mesh(&[NatsServer, Natsd, Natsd], |i| {
        if i == 0 {
            String::new()
        } else {
            format!(
                "jetstream {{ store_dir: \"{}\" }}\n",
                dirs[i].path().display()
            )
        }
    })
    .await;
    let c1 = cluster.client(1).await;
    // The two natsd servers' meta group: a stream of one replica, on either of them.
    let created = api_within(
        &c1,
        "$JS.API.STREAM.CREATE.MIX",
        json!({"name": "MIX", "subjects": ["mix.>"], "num_replicas": 1}),
        CONVERGE,
    )
    .await;
    assert!(created.get("error").is_none(), "{created}");
    let go = cluster.client(0).await;
    let mut sub = within("subscribe", go.subscribe("dlv.mix")).await.unwrap();
    flush(&go).await;
    // Interest in the deliver subject has reached the natsd servers.
    await_interest(&c1, "dlv.mix", &mut sub).await;
    let js = async_nats::jetstream::new(c1.clone());
    jscluster::publish_all(&js, "mix.a.b", ["hello".into()], CONVERGE).await;
    let consumer = api_within(
        &c1,
        "$JS.API.CONSUMER.CREATE.MIX",
        json!({"stream_name": "MIX", "config": {
            "deliver_subject": "dlv.mix",
            "ack_policy": "explicit",
        }}),
        CONVERGE,
    )
    .await;
    assert!(consumer.get("error").is_none(), "{consumer}");
    let m = loop {
        let m = within_for(CONVERGE, "the delivery", sub.next())
            .await
            .unwrap();
        // Probes of `await_interest` still in flight have no reply.
        if m.reply.is_some() {
            break m;
        }
    };
    assert_eq!(m.subject.as_str(), "mix.a.b", "{m:?}");
    assert_eq!(m.payload.as_ref(), b"hello");
    let reply = m.reply.clone().expect("an ack reply");
    assert!(
        reply.starts_with("$JS.ACK.MIX.") && !reply.contains('@'),
        "{reply}"
    );
}
