//! Memory-storage streams on clustered JetStream, three servers routed together: a stream and
//! a key-value bucket of three replicas kept in memory (async-nats and nats-py), and what a
//! replica keeps when its server restarts.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use async_nats::jetstream::{kv, stream::StorageType};
use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::cluster::TestCluster;
use natsd_tests::jscluster::{self, api_within, app, info_until, leader_of};
use natsd_tests::{both, within, within_for, ServerKind};
use serde_json::{json, Value};

both!(
    memory_stream_and_bucket_with_three_replicas,
    py_memory_bucket_with_three_replicas,
    memory_replica_catches_up_after_its_server_restarts,
    memory_stream_after_every_server_restarts,
);

/// How long the cluster may take to elect or converge.
const CONVERGE: Duration = Duration::from_secs(30);

async fn start(kind: ServerKind) -> (TestCluster, Vec<tempfile::TempDir>) {
    let (cluster, dirs) = jscluster::start(kind, 3).await;
    jscluster::meta_leader(&cluster, 3, CONVERGE).await;
    (cluster, dirs)
}

fn memory_cfg(name: &str) -> Value {
    let mut cfg = jscluster::stream_cfg(name, 3);
    cfg["storage"] = json!("memory");
    cfg
}

/// An R3 memory stream reports memory storage and holds what was published; a bucket of
/// three replicas in memory (async-nats) takes puts through one server and reads them back
/// through another, history included, and survives losing its leader.
async fn memory_stream_and_bucket_with_three_replicas(kind: ServerKind) {
    let (mut cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    let created = jscluster::create(&c0, memory_cfg("MEM"), CONVERGE).await;
    assert_eq!(created["config"]["storage"], "memory", "{created}");
    let js0 = async_nats::jetstream::new(c0.clone());
    let last = jscluster::publish_n(&js0, "mem.a", 20, CONVERGE).await;
    assert_eq!(last, 20);
    let info = info_until(&c0, "MEM", CONVERGE, |v| v["state"]["messages"] == 20).await;
    assert_eq!(info["config"]["storage"], "memory", "{info}");
    assert_eq!(info["config"]["num_replicas"], 3, "{info}");
    let replicas = info["cluster"]["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 2, "{info}");

    let mut js0 = async_nats::jetstream::new(c0.clone());
    js0.set_timeout(CONVERGE);
    let bucket = if kind == ServerKind::Natsd {
        within_for(
            CONVERGE,
            "create bucket",
            js0.create_key_value(kv::Config {
                bucket: "mkv".into(),
                storage: StorageType::Memory,
                num_replicas: 3,
                history: 5,
                ..Default::default()
            }),
        )
        .await
        .unwrap()
    } else {
        // async-nats' `create_key_value` needs nats-server 2.10's account-info fields: the
        // bucket's stream as it would create it.
        let cfg = json!({
            "name": "KV_mkv",
            "subjects": ["$KV.mkv.>"],
            "storage": "memory",
            "num_replicas": 3,
            "max_msgs_per_subject": 5,
            "discard": "new",
            "allow_rollup_hdrs": true,
            "deny_delete": true,
            "allow_direct": true,
            "duplicate_window": 120_000_000_000u64,
        });
        jscluster::create(&c0, cfg, CONVERGE).await;
        within("get bucket", js0.get_key_value("mkv"))
            .await
            .unwrap()
    };
    within("put 1", bucket.put("k", Bytes::from_static(b"v1")))
        .await
        .unwrap();
    within("put 2", bucket.put("k", Bytes::from_static(b"v2")))
        .await
        .unwrap();
    within("put other", bucket.put("other", Bytes::from_static(b"x")))
        .await
        .unwrap();
    let kv_info = info_until(&c0, "KV_mkv", CONVERGE, |v| v["state"]["messages"] == 3).await;
    assert_eq!(kv_info["config"]["storage"], "memory", "{kv_info}");
    assert_eq!(kv_info["config"]["num_replicas"], 3, "{kv_info}");

    let js2 = async_nats::jetstream::new(app(&cluster, 2).await);
    let other = within("get bucket", js2.get_key_value("mkv"))
        .await
        .unwrap();
    let got = within("get", other.get("k")).await.unwrap();
    assert_eq!(got.as_deref(), Some(&b"v2"[..]));
    // The history through the bucket leader's server: natsd routes a push consumer's
    // messages to a subscriber on another server under the deliver subject, which an ordered
    // consumer cannot take a key from (known limitation of the routed delivery).
    let leader = leader_of(&kv_info);
    let jsl = async_nats::jetstream::new(app(&cluster, leader).await);
    let on_leader = within("get bucket on the leader", jsl.get_key_value("mkv"))
        .await
        .unwrap();
    let history: Vec<Bytes> = within("history", async {
        let mut h = on_leader.history("k").await.unwrap();
        let mut v = Vec::new();
        while let Some(e) = h.next().await {
            v.push(e.unwrap().value);
        }
        v
    })
    .await;
    assert_eq!(history, [&b"v1"[..], &b"v2"[..]]);

    // Losing the bucket's leader loses nothing: a new leader has every value.
    drop((jsl, on_leader));
    jscluster::kill(&mut cluster, leader).await;
    let survivor = (leader + 1) % 3;
    let cs = app(&cluster, survivor).await;
    info_until(&cs, "KV_mkv", CONVERGE, |v| {
        v["state"]["messages"] == 3 && v["cluster"]["leader"] != kv_info["cluster"]["leader"]
    })
    .await;
    let mut jss = async_nats::jetstream::new(cs);
    jss.set_timeout(CONVERGE);
    let kvs = within_for(CONVERGE, "get bucket again", jss.get_key_value("mkv"))
        .await
        .unwrap();
    let got = within_for(CONVERGE, "get after failover", kvs.get("k"))
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some(&b"v2"[..]));
    within_for(
        CONVERGE,
        "put after failover",
        kvs.put("k", Bytes::from_static(b"v3")),
    )
    .await
    .unwrap();
}

/// nats-py's key-value store on a memory bucket of three replicas
/// (tests/py/js_kv_memory_cluster.py): put through one server, read through another.
async fn py_memory_bucket_with_three_replicas(kind: ServerKind) {
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
    let url = |i: usize| format!("nats://a:a@127.0.0.1:{}", cluster.nodes[i].server.port());
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join("js_kv_memory_cluster.py");
    let run = tokio::process::Command::new("python3")
        .arg(&file)
        .arg(url(0))
        .arg(url(2))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = within_for(Duration::from_secs(120), "js_kv_memory_cluster.py", run)
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("js_kv_memory_cluster ok"),
        "js_kv_memory_cluster.py failed against {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        kind.name()
    );
    let c0 = app(&cluster, 0).await;
    let info = info_until(&c0, "KV_pymem", CONVERGE, |_| true).await;
    assert_eq!(info["config"]["storage"], "memory", "{info}");
}

/// A follower of a memory stream whose server restarts comes back with nothing in memory and
/// catches up from its peers: made the leader (the third server stopped, the leader stepped
/// down), it serves every message, old and new.
async fn memory_replica_catches_up_after_its_server_restarts(kind: ServerKind) {
    let (mut cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    jscluster::create(&c0, memory_cfg("RST"), CONVERGE).await;
    let js0 = async_nats::jetstream::new(c0.clone());
    jscluster::publish_n(&js0, "rst.a", 10, CONVERGE).await;
    let info = info_until(&c0, "RST", CONVERGE, |v| v["state"]["messages"] == 10).await;
    let leader = leader_of(&info);
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    jscluster::kill(&mut cluster, follower).await;
    cluster.restart(follower).await;

    let c = app(&cluster, leader).await;
    let js = async_nats::jetstream::new(c.clone());
    jscluster::publish_n(&js, "rst.b", 5, CONVERGE).await;
    let name = format!("n{follower}");
    info_until(&c, "RST", CONVERGE, |v| {
        v["state"]["messages"] == 15
            && v["cluster"]["replicas"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["name"] == name.as_str() && r["current"] == true)
    })
    .await;

    // With the third server stopped, the restarted one is the only other candidate.
    jscluster::signal(&cluster, other, "-STOP");
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        api_within(
            &c,
            "$JS.API.STREAM.LEADER.STEPDOWN.RST",
            Value::Null,
            CONVERGE,
        )
        .await;
        let v = info_until(&c, "RST", CONVERGE, |_| true).await;
        if leader_of(&v) == follower {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted replica never led: {v}"
        );
    }
    for seq in 1..=15u64 {
        let v = api_within(
            &c,
            "$JS.API.STREAM.MSG.GET.RST",
            json!({ "seq": seq }),
            CONVERGE,
        )
        .await;
        assert!(v.get("error").is_none(), "seq {seq}: {v}");
        assert_eq!(v["message"]["seq"], seq, "{v}");
    }
    jscluster::signal(&cluster, other, "-CONT");
}

/// Every server of a memory stream restarts. nats-server 2.9.10 keeps the stream (its
/// assignment is in the meta log) but not its messages: it comes back empty, its sequences
/// from 1 again. natsd keeps a stream group's Raft log on disk and replays it, so the stream
/// comes back with what the log still covers (all of it here: no Raft snapshot was taken yet),
/// and its sequences go on.
async fn memory_stream_after_every_server_restarts(kind: ServerKind) {
    let (mut cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    jscluster::create(&c0, memory_cfg("ALL"), CONVERGE).await;
    let js0 = async_nats::jetstream::new(c0.clone());
    jscluster::publish_n(&js0, "all.a", 10, CONVERGE).await;
    info_until(&c0, "ALL", CONVERGE, |v| v["state"]["messages"] == 10).await;
    drop((js0, c0));
    for i in 0..3 {
        jscluster::kill(&mut cluster, i).await;
    }
    for i in 0..3 {
        cluster.restart(i).await;
    }
    jscluster::meta_leader(&cluster, 3, CONVERGE).await;
    let c = app(&cluster, 1).await;
    let (messages, next) = if kind == ServerKind::Natsd {
        (10, 11)
    } else {
        (0, 1)
    };
    let v = info_until(&c, "ALL", CONVERGE, |v| v["state"]["messages"] == messages).await;
    assert_eq!(v["config"]["storage"], "memory", "{v}");
    let js = async_nats::jetstream::new(c);
    let seq = jscluster::publish_n(&js, "all.b", 1, CONVERGE).await;
    assert_eq!(seq, next);
}
