//! Replicated streams on three servers routed together: streams of one and three replicas
//! placed by the meta group and answered from any server, publishes acknowledged once
//! replicated, the stream leader stepping down, message get/delete and purge on a replicated
//! stream, no acknowledged message lost when the stream leader is killed with SIGKILL, a pull
//! consumer handed only committed messages, and a push consumer delivering across servers.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use natsd_tests::cluster::CLUSTER_NAME;
use natsd_tests::jscluster::{
    self, api_within, app, b64, kill, leader_of, meta_leader, publish_within, signal, start,
    stream_cfg,
};
use natsd_tests::{both, ServerKind};
use serde_json::{json, Value};

/// How long the cluster may take to elect what a step needs.
/// Generous: only a failing step waits this long, and a stepdown under load may take
/// its three tries (see the server's stepdown).
const ELECTION: Duration = Duration::from_secs(40);

/// An API request, asked again until some server answers (none does while the meta group
/// or the stream's group has no leader), within [`ELECTION`].
async fn api(client: &async_nats::Client, subject: &str, body: Value) -> Value {
    api_within(client, subject, body, ELECTION).await
}

/// Publishes `payload` on `subject` and waits for its PubAck: the sequence, or `None` when
/// no ack came within two seconds.
async fn publish(
    js: &async_nats::jetstream::Context,
    subject: &str,
    payload: String,
) -> Option<u64> {
    publish_within(js, subject, payload, Duration::from_secs(2)).await
}

async fn create(client: &async_nats::Client, name: &str, replicas: u64) -> Value {
    let v = jscluster::create(client, stream_cfg(name, replicas), ELECTION).await;
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.stream_create_response");
    assert_eq!(v["config"]["num_replicas"], replicas, "{v}");
    assert_eq!(v["cluster"]["name"], CLUSTER_NAME, "{v}");
    v
}

/// Stream info, asked until it shows a leader and `ok` holds.
async fn info_until(client: &async_nats::Client, name: &str, ok: impl Fn(&Value) -> bool) -> Value {
    jscluster::info_until(client, name, ELECTION, ok).await
}

/// Publishes `n` messages, each retried until acknowledged; returns the last sequence.
async fn publish_n(js: &async_nats::jetstream::Context, subject: &str, n: usize) -> u64 {
    jscluster::publish_n(js, subject, n, ELECTION).await
}

/// R1 and R3 streams created from one server, published to from another, listed and read
/// from a third; a delete removes one; an unknown stream is 10059.
async fn replicated_streams_created_published_and_listed(kind: ServerKind) {
    let (cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c1 = app(&cluster, 1).await;
    create(&c1, "R3", 3).await;
    create(&c1, "R1", 1).await;

    let js = async_nats::jetstream::new(app(&cluster, 2).await);
    for i in 1..=20u64 {
        assert_eq!(publish(&js, "r3.x", format!("m{i}")).await, Some(i));
        assert_eq!(publish(&js, "r1.x", format!("m{i}")).await, Some(i));
    }

    let c0 = app(&cluster, 0).await;
    let v = info_until(&c0, "R3", |v| v["state"]["messages"] == 20).await;
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.stream_info_response");
    assert_eq!(v["state"]["last_seq"], 20, "{v}");
    let replicas = v["cluster"]["replicas"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(replicas.len(), 2, "{v}");
    assert!(replicas.iter().all(|r| r["name"].as_str().is_some()), "{v}");
    let v = info_until(&c0, "R1", |v| v["state"]["messages"] == 20).await;
    assert!(v["cluster"].get("replicas").is_none(), "{v}");

    let names = api(&c0, "$JS.API.STREAM.NAMES", Value::Null).await;
    assert_eq!(names["total"], 2, "{names}");
    assert_eq!(names["streams"], json!(["R1", "R3"]), "{names}");
    let list = api(&c0, "$JS.API.STREAM.LIST", Value::Null).await;
    assert_eq!(list["total"], 2, "{list}");
    let info = api(&c0, "$JS.API.INFO", Value::Null).await;
    assert_eq!(info["streams"], 2, "{info}");

    let del = api(&c1, "$JS.API.STREAM.DELETE.R1", Value::Null).await;
    assert_eq!(del["success"], true, "{del}");
    let names = api(&c0, "$JS.API.STREAM.NAMES", Value::Null).await;
    assert_eq!(names["streams"], json!(["R3"]), "{names}");
    // The delete was answered once the meta group applied it; the stream's replicas stop a
    // moment later, on each server's own time, as in nats-server: ask until it is gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let gone = api(&c0, "$JS.API.STREAM.INFO.R1", Value::Null).await;
        if gone["error"]["err_code"] == 10059 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{gone}");
        // Poll interval; bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// On an R3 stream: MSG.GET and MSG.DELETE, a leader stepdown that moves the leadership
/// (publishes continue at the next sequence), and a purge.
async fn replicated_stream_steps_down_and_serves_messages(kind: ServerKind) {
    let (cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "S", 3).await;
    let js = async_nats::jetstream::new(app(&cluster, 1).await);
    for i in 1..=10u64 {
        assert_eq!(publish(&js, "s.x", format!("m{i}")).await, Some(i));
    }
    let got = api(&c0, "$JS.API.STREAM.MSG.GET.S", json!({"seq": 3})).await;
    assert_eq!(got["message"]["seq"], 3, "{got}");
    assert_eq!(got["message"]["data"], "bTM=", "{got}");
    let del = api(&c0, "$JS.API.STREAM.MSG.DELETE.S", json!({"seq": 3})).await;
    assert_eq!(del["success"], true, "{del}");
    let v = info_until(&c0, "S", |v| v["state"]["messages"] == 9).await;
    let first = v["cluster"]["leader"].as_str().unwrap().to_owned();

    let sd = api(&c0, "$JS.API.STREAM.LEADER.STEPDOWN.S", Value::Null).await;
    assert_eq!(sd["success"], true, "{sd}");
    let v = info_until(&c0, "S", |v| v["cluster"]["leader"] != first.as_str()).await;
    assert_eq!(v["state"]["messages"], 9, "{v}");
    assert_eq!(
        v["cluster"]["replicas"].as_array().map(Vec::len),
        Some(2),
        "{v}"
    );
    let deadline = tokio::time::Instant::now() + ELECTION;
    let seq = loop {
        if let Some(s) = publish(&js, "s.x", "after".to_owned()).await {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ack after the stepdown"
        );
    };
    assert_eq!(seq, 11);

    // An update goes through the meta group; the replicas take the new limit from the
    // stream's log.
    let mut cfg = stream_cfg("S", 3);
    cfg["max_msgs"] = json!(1000);
    let up = api(&c0, "$JS.API.STREAM.UPDATE.S", cfg).await;
    assert!(up.get("error").is_none(), "{up}");
    assert_eq!(
        up["type"], "io.nats.jetstream.api.v1.stream_update_response",
        "{up}"
    );
    assert_eq!(up["config"]["max_msgs"], 1000, "{up}");
    info_until(&c0, "S", |v| v["config"]["max_msgs"] == 1000).await;

    let purged = api(&c0, "$JS.API.STREAM.PURGE.S", Value::Null).await;
    assert_eq!(purged["success"], true, "{purged}");
    assert_eq!(purged["purged"], 10, "{purged}");
    info_until(&c0, "S", |v| {
        v["state"]["messages"] == 0 && v["state"]["last_seq"] == 11
    })
    .await;
}

/// SIGKILL of the stream leader while a client publishes: every acknowledged message is in
/// the stream afterwards, and a new leader answers and takes publishes within seconds.
async fn acknowledged_publishes_survive_killing_the_stream_leader(kind: ServerKind) {
    let (cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "K", 3).await;
    let v = info_until(&c0, "K", |_| true).await;
    let leader = leader_of(&v);
    let other = (leader + 1) % 3;
    let asker = app(&cluster, other).await;
    let js = async_nats::jetstream::new(app(&cluster, other).await);

    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut i = 0u64;
    while acked.len() < 50 {
        i += 1;
        if let Some(s) = publish(&js, "k.x", format!("m{i}")).await {
            acked.push((s, format!("m{i}")));
        }
    }
    // Publishes in flight while the leader dies.
    let pubs: Vec<_> = (0..20)
        .map(|_| {
            i += 1;
            let js = js.clone();
            let p = format!("m{i}");
            tokio::spawn(async move { (publish(&js, "k.x", p.clone()).await, p) })
        })
        .collect();
    signal(&cluster, leader, "-9");
    for p in pubs {
        if let (Some(s), payload) = p.await.unwrap() {
            acked.push((s, payload));
        }
    }
    // A new leader takes publishes within seconds.
    let deadline = tokio::time::Instant::now() + ELECTION;
    let mut after = 0;
    while after < 10 {
        i += 1;
        if let Some(s) = publish(&js, "k.x", format!("m{i}")).await {
            acked.push((s, format!("m{i}")));
            after += 1;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new leader took publishes"
        );
    }
    let v = info_until(&asker, "K", |_| true).await;
    assert_ne!(leader_of(&v), leader, "{v}");
    for (seq, payload) in &acked {
        let got = api(&asker, "$JS.API.STREAM.MSG.GET.K", json!({"seq": seq})).await;
        let data = got["message"]["data"].as_str().unwrap_or_default();
        assert_eq!(data, b64(payload.as_bytes()), "seq {seq}: {got}");
    }
}

/// A follower killed and restarted from its files catches up: with the other follower
/// killed next, the leader and the restarted one still form a quorum that takes publishes,
/// and the stream holds every message.
async fn a_restarted_replica_catches_up_and_counts_for_the_quorum(kind: ServerKind) {
    let (mut cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "F", 3).await;
    let v = info_until(&c0, "F", |_| true).await;
    let leader = leader_of(&v);
    let (f, g) = ((leader + 1) % 3, (leader + 2) % 3);
    let js = async_nats::jetstream::new(app(&cluster, leader).await);
    assert_eq!(publish_n(&js, "f.x", 10).await, 10);

    kill(&mut cluster, f).await;
    assert_eq!(publish_n(&js, "f.x", 10).await, 20);
    cluster.restart(f).await;
    cluster.wait_mesh().await;
    // The restarted replica is current once the leader reports it so.
    let asker = app(&cluster, leader).await;
    let fname = format!("n{f}");
    info_until(&asker, "F", |v| {
        v["cluster"]["replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["name"] == fname.as_str() && r["current"] == true)
    })
    .await;

    kill(&mut cluster, g).await;
    let last = publish_n(&js, "f.x", 10).await;
    assert_eq!(last, 30);
    let v = info_until(&asker, "F", |v| v["state"]["messages"] == 30).await;
    assert_eq!(v["state"]["last_seq"], 30, "{v}");
}

/// Fetches up to `n` messages of pull consumer `name` on stream `stream` and double-acks
/// each: their stream sequences.
async fn fetch_and_ack(
    js: &async_nats::jetstream::Context,
    stream: &str,
    name: &str,
    n: usize,
) -> Vec<u64> {
    use futures::StreamExt;
    let st = js.get_stream(stream).await.unwrap();
    let cons: async_nats::jetstream::consumer::PullConsumer = st.get_consumer(name).await.unwrap();
    let mut msgs = cons
        .fetch()
        .max_messages(n)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut seqs = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(5), msgs.next()).await {
        let m = m.unwrap();
        seqs.push(m.info().unwrap().stream_sequence);
        m.double_ack().await.unwrap();
        if seqs.len() == n {
            break;
        }
    }
    seqs
}

/// A durable pull consumer on an R3 stream: created through the meta leader, messages
/// fetched and acknowledged through the stream's leader; after a stepdown the new leader
/// knows the acks (nothing is redelivered) and hands out only the new messages.
async fn pull_consumer_on_a_replicated_stream_keeps_its_acks_across_leaders(kind: ServerKind) {
    let (cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "C", 3).await;
    let js = async_nats::jetstream::new(app(&cluster, 1).await);
    assert_eq!(publish_n(&js, "c.x", 10).await, 10);
    let created = api(
        &c0,
        "$JS.API.CONSUMER.DURABLE.CREATE.C.d",
        json!({"stream_name": "C", "config": {"durable_name": "d", "ack_policy": "explicit"}}),
    )
    .await;
    assert_eq!(
        created["type"], "io.nats.jetstream.api.v1.consumer_create_response",
        "{created}"
    );
    assert_eq!(created["name"], "d", "{created}");
    assert_eq!(created["num_pending"], 10, "{created}");
    let names = api(&c0, "$JS.API.CONSUMER.NAMES.C", Value::Null).await;
    assert_eq!(names["consumers"], json!(["d"]), "{names}");

    assert_eq!(
        fetch_and_ack(&js, "C", "d", 10).await,
        (1..=10).collect::<Vec<u64>>()
    );
    let info = api(&c0, "$JS.API.CONSUMER.INFO.C.d", Value::Null).await;
    assert_eq!(info["ack_floor"]["stream_seq"], 10, "{info}");
    assert_eq!(info["num_ack_pending"], 0, "{info}");

    let v = info_until(&c0, "C", |_| true).await;
    let first = v["cluster"]["leader"].as_str().unwrap().to_owned();
    let sd = api(&c0, "$JS.API.STREAM.LEADER.STEPDOWN.C", Value::Null).await;
    assert_eq!(sd["success"], true, "{sd}");
    info_until(&c0, "C", |v| v["cluster"]["leader"] != first.as_str()).await;
    let info = api(&c0, "$JS.API.CONSUMER.INFO.C.d", Value::Null).await;
    assert_eq!(info["ack_floor"]["stream_seq"], 10, "{info}");

    assert_eq!(publish_n(&js, "c.x", 5).await, 15);
    assert_eq!(
        fetch_and_ack(&js, "C", "d", 5).await,
        (11..=15).collect::<Vec<u64>>()
    );

    let del = api(&c0, "$JS.API.CONSUMER.DELETE.C.d", Value::Null).await;
    assert_eq!(del["success"], true, "{del}");
    let names = api(&c0, "$JS.API.CONSUMER.NAMES.C", Value::Null).await;
    assert_eq!(names["total"], 0, "{names}");
}

/// A message the stream leader stored while both followers were down (no quorum, so no
/// PubAck) is not handed to a pull consumer; once the followers are back and the entry
/// commits, it is. natsd only: nats-server 2.9.10's leader gives up leading without a quorum
/// and may drop the entry, so the message need not come back there.
async fn a_pull_consumer_gets_a_message_only_once_it_committed(kind: ServerKind) {
    let (mut cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "U", 3).await;
    let v = info_until(&c0, "U", |_| true).await;
    let leader = leader_of(&v);
    let js = async_nats::jetstream::new(app(&cluster, leader).await);
    assert_eq!(publish_n(&js, "u.x", 1).await, 1);
    let created = api(
        &c0,
        "$JS.API.CONSUMER.DURABLE.CREATE.U.d",
        json!({"stream_name": "U", "config": {"durable_name": "d", "ack_policy": "explicit"}}),
    )
    .await;
    assert_eq!(created["name"], "d", "{created}");
    assert_eq!(fetch_and_ack(&js, "U", "d", 1).await, vec![1]);

    let (f, g) = ((leader + 1) % 3, (leader + 2) % 3);
    kill(&mut cluster, f).await;
    kill(&mut cluster, g).await;
    assert_eq!(publish(&js, "u.x", "uncommitted".into()).await, None);
    // The leader holds it but no quorum committed it: a pull gets nothing.
    assert_eq!(fetch_and_ack(&js, "U", "d", 1).await, Vec::<u64>::new());

    cluster.restart(f).await;
    cluster.restart(g).await;
    cluster.wait_mesh().await;
    let deadline = tokio::time::Instant::now() + ELECTION;
    loop {
        let got = fetch_and_ack(&js, "U", "d", 1).await;
        if !got.is_empty() {
            assert_eq!(got, vec![2]);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the committed message never came"
        );
    }
}

/// A push consumer on an R3 stream delivers to a subscriber on a server that is not the
/// stream's leader (the leader sees its interest through the routes), and acks reach it.
async fn push_consumer_on_a_replicated_stream_delivers_across_servers(kind: ServerKind) {
    use futures::StreamExt;
    let (cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "P", 3).await;
    let v = info_until(&c0, "P", |_| true).await;
    let leader = leader_of(&v);
    let other = (leader + 1) % 3;
    let sub_client = app(&cluster, other).await;
    let mut sub = sub_client.subscribe("dlv.p").await.unwrap();
    sub_client.flush().await.unwrap();
    let js = async_nats::jetstream::new(app(&cluster, leader).await);
    assert_eq!(publish_n(&js, "p.x", 5).await, 5);
    let created = api(
        &c0,
        "$JS.API.CONSUMER.DURABLE.CREATE.P.d",
        json!({"stream_name": "P", "config": {
            "durable_name": "d", "deliver_subject": "dlv.p", "ack_policy": "explicit"}}),
    )
    .await;
    assert_eq!(created["name"], "d", "{created}");
    let mut seqs = Vec::new();
    while seqs.len() < 5 {
        let m = tokio::time::timeout(ELECTION, sub.next())
            .await
            .expect("push delivery")
            .unwrap();
        let reply = m.reply.clone().expect("ack subject");
        let t: Vec<&str> = reply.split('.').collect();
        seqs.push(t[5].parse::<u64>().unwrap());
        sub_client
            .publish(reply, Bytes::from_static(b"+ACK"))
            .await
            .unwrap();
    }
    assert_eq!(seqs, (1..=5).collect::<Vec<u64>>());
    let deadline = tokio::time::Instant::now() + ELECTION;
    loop {
        let info = api(&c0, "$JS.API.CONSUMER.INFO.P.d", Value::Null).await;
        if info["ack_floor"]["stream_seq"] == 5 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "acks never counted: {info}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A key-value bucket with three replicas through async-nats: puts, gets (direct gets on
/// the stream's leader), an update that checks the revision, a delete. natsd only:
/// async-nats' `create_key_value` needs nats-server 2.10's account-info fields.
async fn key_value_bucket_with_three_replicas(kind: ServerKind) {
    let (cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let js = async_nats::jetstream::new(app(&cluster, 0).await);
    let deadline = tokio::time::Instant::now() + ELECTION;
    let kv = loop {
        let cfg = async_nats::jetstream::kv::Config {
            bucket: "cfg".into(),
            history: 5,
            num_replicas: 3,
            ..Default::default()
        };
        match tokio::time::timeout(Duration::from_secs(5), js.create_key_value(cfg)).await {
            Ok(Ok(kv)) => break kv,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "bucket not created: {other:?}"
            ),
        }
    };
    let r1 = kv.put("a", "1".into()).await.unwrap();
    kv.put("b", "2".into()).await.unwrap();
    // Read through another server.
    let js2 = async_nats::jetstream::new(app(&cluster, 2).await);
    let kv2 = js2.get_key_value("cfg").await.unwrap();
    assert_eq!(kv2.get("a").await.unwrap(), Some(Bytes::from("1")));
    assert_eq!(kv2.get("b").await.unwrap(), Some(Bytes::from("2")));
    assert_eq!(kv2.get("none").await.unwrap(), None);
    let r3 = kv2.update("a", "3".into(), r1).await.unwrap();
    assert!(r3 > r1);
    assert!(
        kv2.update("a", "4".into(), r1).await.is_err(),
        "stale revision"
    );
    assert_eq!(kv.get("a").await.unwrap(), Some(Bytes::from("3")));
    kv.delete("b").await.unwrap();
    assert_eq!(kv2.get("b").await.unwrap(), None);
    let v = info_until(&app(&cluster, 1).await, "KV_cfg", |_| true).await;
    assert_eq!(v["config"]["num_replicas"], 3, "{v}");
    assert_eq!(
        v["cluster"]["replicas"].as_array().map(Vec::len),
        Some(2),
        "{v}"
    );
}

/// Every server killed and restarted from its files: the streams and their messages come
/// back, and the stream takes publishes again at the next sequence.
async fn streams_survive_restarting_every_server(kind: ServerKind) {
    let (mut cluster, _dirs) = start(kind, 3).await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "W", 3).await;
    create(&c0, "V", 1).await;
    let js = async_nats::jetstream::new(app(&cluster, 1).await);
    assert_eq!(publish_n(&js, "w.x", 10).await, 10);
    assert_eq!(publish_n(&js, "v.x", 10).await, 10);
    drop((c0, js));
    for i in 0..3 {
        kill(&mut cluster, i).await;
    }
    for i in 0..3 {
        cluster.restart(i).await;
    }
    cluster.wait_mesh().await;
    meta_leader(&cluster, 3, ELECTION).await;
    let c2 = app(&cluster, 2).await;
    let v = info_until(&c2, "W", |v| v["state"]["messages"] == 10).await;
    assert_eq!(v["state"]["last_seq"], 10, "{v}");
    info_until(&c2, "V", |v| v["state"]["messages"] == 10).await;
    let js = async_nats::jetstream::new(app(&cluster, 0).await);
    assert_eq!(publish_n(&js, "w.x", 1).await, 11);
    assert_eq!(publish_n(&js, "v.x", 1).await, 11);
}

both!(
    replicated_streams_created_published_and_listed,
    replicated_stream_steps_down_and_serves_messages,
    acknowledged_publishes_survive_killing_the_stream_leader,
    a_restarted_replica_catches_up_and_counts_for_the_quorum,
    pull_consumer_on_a_replicated_stream_keeps_its_acks_across_leaders,
    push_consumer_on_a_replicated_stream_delivers_across_servers,
    streams_survive_restarting_every_server
);

#[tokio::test]
async fn a_pull_consumer_gets_a_message_only_once_it_committed_natsd() {
    natsd_tests::run_scenario(
        ServerKind::Natsd,
        a_pull_consumer_gets_a_message_only_once_it_committed,
    )
    .await;
}

#[tokio::test]
async fn key_value_bucket_with_three_replicas_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, key_value_bucket_with_three_replicas).await;
}
