//! Moving a stream to other servers by STREAM.UPDATE with other placement tags (an R3 file
//! stream, an R1 memory stream), five servers routed together: the replicas end up exactly
//! on the servers the new tags name, every acknowledged message is still there, publishes
//! go on during and after the move, and a durable consumer keeps its acknowledged floor;
//! and what an update that would move refuses (no server fits, a cluster that does not
//! exist, a move with a scale).

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::cluster::TestCluster;
use natsd_tests::jscluster::{self, api_within, app, b64_decode, info_until, placed_on, PER_TRY};
use natsd_tests::{both, ServerKind};
use serde_json::{json, Value};

both!(
    a_move_by_tags_keeps_messages_and_consumer,
    a_single_replica_memory_stream_moves,
    what_a_move_refuses,
);

/// How long the cluster may take to elect what a step needs (generous: only a failing step
/// waits this long, on a loaded machine).
const ELECTION: Duration = Duration::from_secs(40);
/// How long a move may take to finish: new peers join, catch up, old ones leave.
const MOVE: Duration = Duration::from_secs(60);

/// Five servers: n0 and n1 tagged `a`, n2 both `a` and `b`, n3 and n4 `b`, and each `n<i>`
/// also `s<i>`; waits for their meta group.
async fn start(kind: ServerKind) -> (TestCluster, Vec<tempfile::TempDir>) {
    let tags = ["a,s0", "a,s1", "a,b,s2", "b,s3", "b,s4"];
    let (cluster, dirs) = jscluster::start_tagged(kind, &tags).await;
    jscluster::meta_leader(&cluster, 5, ELECTION).await;
    (cluster, dirs)
}

async fn api(client: &async_nats::Client, subject: &str, body: Value) -> Value {
    api_within(client, subject, body, ELECTION).await
}

fn config(tags: &[&str], replicas: u64) -> Value {
    json!({"name": "MV", "subjects": ["mv.>"], "num_replicas": replicas,
           "storage": "file", "placement": {"tags": tags}})
}

/// Publishes `payload` with message id `id` until acknowledged (a retry whose first try
/// was stored is answered as a duplicate, with the same sequence), within [`MOVE`].
async fn publish_id(client: &async_nats::Client, subject: &str, id: &str, payload: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + MOVE;
    loop {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", id);
        let r = tokio::time::timeout(
            PER_TRY,
            client.request_with_headers(subject.to_owned(), h, Bytes::from(payload.to_owned())),
        )
        .await;
        if let Ok(Ok(m)) = r {
            let ack: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
            if let Some(seq) = ack["seq"].as_u64() {
                return seq;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} not acknowledged"
        );
        // Another try after an election's worth of pause; bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Fetches up to `n` messages of pull consumer C and acknowledges each (double ack): their
/// stream sequences.
async fn fetch_ack(js: &async_nats::jetstream::Context, n: usize) -> Vec<u64> {
    let st = js.get_stream("MV").await.unwrap();
    let cons: async_nats::jetstream::consumer::PullConsumer = st.get_consumer("C").await.unwrap();
    let mut msgs = cons
        .fetch()
        .max_messages(n)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .unwrap();
    let mut seqs = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(10), msgs.next()).await {
        let m = m.unwrap();
        seqs.push(m.info().unwrap().stream_sequence);
        m.double_ack().await.unwrap();
        if seqs.len() == n {
            break;
        }
    }
    seqs
}

/// One move: stream MV (`replicas`, `storage`) created on tags `from`, placed on `was`,
/// with durable C; moved to tags `to`, it must end up on exactly `now`.
struct Move {
    replicas: u64,
    storage: &'static str,
    from: &'static [&'static str],
    was: &'static [&'static str],
    to: &'static [&'static str],
    now: &'static [&'static str],
}

fn config_of(m: &Move, tags: &[&str]) -> Value {
    let mut c = config(tags, m.replicas);
    c["storage"] = json!(m.storage);
    c
}

/// Runs `m`: every message acknowledged before and during the move reads back; the
/// consumer's acknowledged floor stays; publishes go on after, on the new servers only.
async fn moves(kind: ServerKind, m: Move) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    let js = async_nats::jetstream::new(c0.clone());
    let r = m.replicas as usize;
    jscluster::create(&c0, config_of(&m, m.from), ELECTION).await;
    let v = info_until(&c0, "MV", ELECTION, |v| placed_on(v).len() == r).await;
    assert_eq!(placed_on(&v), m.was, "{v}");
    let cc = api(
        &c0,
        "$JS.API.CONSUMER.DURABLE.CREATE.MV.C",
        json!({"stream_name": "MV",
               "config": {"durable_name": "C", "ack_policy": "explicit"}}),
    )
    .await;
    assert!(cc.get("error").is_none(), "{cc}");

    let mut acked: Vec<(u64, String)> = Vec::new();
    for i in 0..20 {
        let p = format!("before-{i}");
        acked.push((publish_id(&c0, "mv.x", &p, &p).await, p));
    }
    assert_eq!(fetch_ack(&js, 10).await, (1..=10).collect::<Vec<u64>>());

    let up = api(&c0, "$JS.API.STREAM.UPDATE.MV", config_of(&m, m.to)).await;
    assert!(up.get("error").is_none(), "{up}");
    assert_eq!(up["config"]["placement"]["tags"], json!(m.to), "{up}");
    // Publishes go on while the group moves.
    for i in 0..20 {
        let p = format!("during-{i}");
        acked.push((publish_id(&c0, "mv.x", &p, &p).await, p));
    }
    let v = info_until(&c0, "MV", MOVE, |v| placed_on(v) == m.now).await;
    assert_eq!(v["config"]["num_replicas"], m.replicas, "{v}");

    // Every acknowledged message is there, once, in order.
    let seqs: Vec<u64> = acked.iter().map(|a| a.0).collect();
    assert_eq!(
        seqs,
        (1..=40).collect::<Vec<u64>>(),
        "sequences as acknowledged"
    );
    let v = info_until(&c0, "MV", ELECTION, |v| v["state"]["messages"] == 40).await;
    assert_eq!(v["state"]["last_seq"], 40, "{v}");
    for (seq, payload) in &acked {
        let got = api(&c0, "$JS.API.STREAM.MSG.GET.MV", json!({"seq": seq})).await;
        let data = got["message"]["data"]
            .as_str()
            .unwrap_or_else(|| panic!("{got}"));
        assert_eq!(b64_decode(data), payload.as_bytes(), "seq {seq}: {got}");
    }

    // The consumer kept its acknowledged floor and goes on from it.
    let ci = api(&c0, "$JS.API.CONSUMER.INFO.MV.C", Value::Null).await;
    assert_eq!(ci["ack_floor"]["stream_seq"], 10, "{ci}");
    assert_eq!(ci["num_pending"], 30, "{ci}");
    assert_eq!(fetch_ack(&js, 1).await, [11]);

    // Publishes after the move continue the sequence, on the new servers only.
    for i in 0..5 {
        let p = format!("after-{i}");
        assert_eq!(publish_id(&c0, "mv.x", &p, &p).await, 41 + i);
    }
    let v = info_until(&c0, "MV", ELECTION, |v| v["state"]["messages"] == 45).await;
    assert_eq!(placed_on(&v), m.now, "{v}");
}

/// An R3 file stream on tags `a` (n0, n1, n2) moves to tags `b`: n2 stays, n3 and n4 take
/// the places of n0 and n1.
async fn a_move_by_tags_keeps_messages_and_consumer(kind: ServerKind) {
    let m = Move {
        replicas: 3,
        storage: "file",
        from: &["a"],
        was: &["n0", "n1", "n2"],
        to: &["b"],
        now: &["n2", "n3", "n4"],
    };
    moves(kind, m).await;
}

/// An R1 memory stream moves from n0 to n4 (each server also carries its own tag `s<i>`).
async fn a_single_replica_memory_stream_moves(kind: ServerKind) {
    let m = Move {
        replicas: 1,
        storage: "memory",
        from: &["s0"],
        was: &["n0"],
        to: &["s4"],
        now: &["n4"],
    };
    moves(kind, m).await;
}

/// Updates that would move the stream but cannot: no server carries the tags, a cluster
/// that does not exist (10005, nats-server's texts), a move together with a scale (10123).
/// The stream stays where it was.
async fn what_a_move_refuses(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    jscluster::create(&c0, config(&["a"], 3), ELECTION).await;
    info_until(&c0, "MV", ELECTION, |v| placed_on(v).len() == 3).await;
    let other_cluster = json!({"name": "MV", "subjects": ["mv.>"], "num_replicas": 3,
                               "storage": "file", "placement": {"cluster": "nope"}});
    for (cfg, code, why) in [
        (
            config(&["zz"], 3),
            10005,
            "no suitable peers for placement, tags not matched ['zz']",
        ),
        (other_cluster, 10005, "no suitable peers for placement"),
        (
            config(&["b"], 1),
            10123,
            "can not move and scale a stream in a single update",
        ),
    ] {
        let v = api(&c0, "$JS.API.STREAM.UPDATE.MV", cfg.clone()).await;
        assert_eq!(v["error"]["code"], 400, "{cfg}: {v}");
        assert_eq!(v["error"]["err_code"], code, "{cfg}: {v}");
        assert_eq!(v["error"]["description"], why, "{cfg}: {v}");
    }
    let v = info_until(&c0, "MV", ELECTION, |_| true).await;
    assert_eq!(placed_on(&v), ["n0", "n1", "n2"], "{v}");
    assert_eq!(v["config"]["placement"]["tags"], json!(["a"]), "{v}");
}
