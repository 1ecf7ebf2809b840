//! Snapshot and restore of clustered streams (`$JS.API.STREAM.SNAPSHOT` / `RESTORE`, as the
//! nats CLI's `stream backup` / `stream restore` drive them), three servers routed together:
//! the stream's leader serves a snapshot whichever server the client is on, chunks and acks
//! crossing the routes; a restore creates the stream with its replicas and brings back its
//! messages and durable consumers on every replica. Each server restores its own archives
//! (natsd's archive is its own format), so the protocol, reply shapes and error codes are
//! what the two servers must share.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::future::IntoFuture;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::cluster::TestCluster;
use natsd_tests::js::err_code;
use natsd_tests::jscluster::{self, api_within, app, info_until, leader_of};
use natsd_tests::{both, flush, within_for, ServerKind};
use serde_json::{json, Value};

both!(
    snapshot_through_any_server,
    snapshot_request_errors,
    backup_delete_restore_r3_and_r1,
    restore_request_errors,
    corrupted_archive_is_refused,
);

/// How long the cluster may take to elect or converge.
const CONVERGE: Duration = Duration::from_secs(30);
const SNAPSHOT: &str = "$JS.API.STREAM.SNAPSHOT.";
const SNAPSHOT_TYPE: &str = "io.nats.jetstream.api.v1.stream_snapshot_response";
const RESTORE: &str = "$JS.API.STREAM.RESTORE.";
const RESTORE_TYPE: &str = "io.nats.jetstream.api.v1.stream_restore_response";
const CREATE_TYPE: &str = "io.nats.jetstream.api.v1.stream_create_response";

async fn start(kind: ServerKind) -> (TestCluster, Vec<tempfile::TempDir>) {
    let (cluster, dirs) = jscluster::start(kind, 3).await;
    jscluster::meta_leader(&cluster, 3, CONVERGE).await;
    (cluster, dirs)
}

/// Stream `name` of `replicas` on `<name>.>` with 20 messages (every third with a header,
/// the fifth deleted) and a durable pull consumer `D` that acked the first four: its info.
async fn populate(c: &async_nats::Client, name: &str, replicas: u64) -> Value {
    jscluster::create(c, jscluster::stream_cfg(name, replicas), CONVERGE).await;
    let js = async_nats::jetstream::new(c.clone());
    let subject = format!("{}.x", name.to_lowercase());
    for i in 1..=20u64 {
        let body = Bytes::from(format!("m{i}-{}", "z".repeat(i as usize * 40)));
        loop {
            let ack = if i % 3 == 0 {
                let mut h = async_nats::HeaderMap::new();
                h.insert("X-N", i.to_string().as_str());
                js.publish_with_headers(subject.clone(), h, body.clone())
                    .await
            } else {
                js.publish(subject.clone(), body.clone()).await
            };
            let acked = match ack {
                Ok(a) => within_for(CONVERGE, "pub ack", a.into_future()).await.ok(),
                Err(_) => None,
            };
            if let Some(a) = acked {
                assert_eq!(a.sequence, i);
                break;
            }
        }
    }
    let del = api_within(
        c,
        &format!("$JS.API.STREAM.MSG.DELETE.{name}"),
        json!({"seq": 5}),
        CONVERGE,
    )
    .await;
    assert_eq!(del["success"], true, "{del}");
    let d = api_within(
        c,
        &format!("$JS.API.CONSUMER.DURABLE.CREATE.{name}.D"),
        json!({"stream_name": name, "config": {"durable_name": "D", "ack_policy": "explicit"}}),
        CONVERGE,
    )
    .await;
    assert!(d.get("error").is_none(), "{d}");
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    flush(c).await;
    c.publish_with_reply(
        format!("$JS.API.CONSUMER.MSG.NEXT.{name}.D"),
        inbox,
        Bytes::from_static(br#"{"batch": 4}"#),
    )
    .await
    .unwrap();
    for _ in 0..4 {
        let m = within_for(CONVERGE, "fetched", sub.next()).await.unwrap();
        c.publish(m.reply.unwrap(), Bytes::from_static(b"+ACK"))
            .await
            .unwrap();
    }
    flush(c).await;
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let v = api_within(
            c,
            &format!("$JS.API.CONSUMER.INFO.{name}.D"),
            Value::Null,
            CONVERGE,
        )
        .await;
        if v["ack_floor"]["stream_seq"] == 4 {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "acks not seen: {v}");
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A snapshot as the CLI takes it, through `c`: subscribe, ask, ack every chunk until the
/// empty end. The API answer, the archive and the chunk count.
async fn take_snapshot(
    c: &async_nats::Client,
    stream: &str,
    req: Value,
) -> (Value, Vec<u8>, usize) {
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    flush(c).await;
    let mut req = req;
    req["deliver_subject"] = json!(inbox);
    let v = api_within(c, &format!("{SNAPSHOT}{stream}"), req, CONVERGE).await;
    assert_eq!(v["type"], SNAPSHOT_TYPE, "{v}");
    assert_eq!(err_code(&v), 0, "{v}");
    let (mut data, mut chunks) = (Vec::new(), 0);
    loop {
        let m = within_for(CONVERGE, "a chunk", sub.next()).await.unwrap();
        if m.payload.is_empty() {
            assert!(m.reply.is_none(), "the end carries no ack subject");
            assert!(m.headers.is_none(), "a complete archive: {m:?}");
            return (v, data, chunks);
        }
        let reply = m.reply.clone().expect("each chunk has an ack subject");
        assert!(
            reply.starts_with(&format!("$JS.SNAPSHOT.ACK.{stream}.")),
            "{reply}"
        );
        data.extend_from_slice(&m.payload);
        chunks += 1;
        c.publish(reply, Bytes::new()).await.unwrap();
    }
}

/// A snapshot of an R3 and of an R1 stream taken through each server (the leader's and the
/// others): the same config and state every time, an archive crossing several small windows
/// whose chunks and acks travel over the routes.
async fn snapshot_through_any_server(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    for (name, replicas) in [("THREE", 3), ("ONE", 1)] {
        populate(&c0, name, replicas).await;
        let info = info_until(&c0, name, CONVERGE, |v| v["state"]["messages"] == 19).await;
        let mut archives = Vec::new();
        for i in 0..3 {
            let c = app(&cluster, i).await;
            let req = json!({"chunk_size": 1024, "window_size": 2048});
            let (v, archive, chunks) = take_snapshot(&c, name, req).await;
            assert_eq!(v["config"]["name"], name, "{v}");
            assert_eq!(v["config"]["num_replicas"], replicas, "{v}");
            assert_eq!(v["state"]["messages"], 19, "{v}");
            assert_eq!(v["state"]["first_seq"], 1, "{v}");
            assert_eq!(v["state"]["last_seq"], 20, "{v}");
            assert_eq!(v["state"]["consumer_count"], 1, "{v}");
            assert!(chunks > 2, "several windows: {chunks} chunks");
            archives.push(archive);
        }
        // Read through any server, it is the leader's replica that was sent (nats-server's
        // archives carry times, so only natsd's compare).
        let leader = leader_of(&info);
        if kind == ServerKind::Natsd {
            assert!(archives.iter().all(|a| a == &archives[leader]));
        }
    }
}

/// What a snapshot request is refused with in a cluster (Go 2.9.10's checks, in its order).
async fn snapshot_request_errors(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    jscluster::create(&c0, jscluster::stream_cfg("S", 3), CONVERGE).await;
    let c1 = app(&cluster, 1).await;
    let v = api_within(&c1, &format!("{SNAPSHOT}S"), Value::Null, CONVERGE).await;
    assert_eq!(v["type"], SNAPSHOT_TYPE, "{v}");
    assert_eq!(err_code(&v), 10003, "{v}");
    let v = api_within(
        &c1,
        &format!("{SNAPSHOT}S"),
        json!({"no_consumers": true}),
        CONVERGE,
    )
    .await;
    assert_eq!(err_code(&v), 10015, "{v}");
    assert_eq!(
        v["error"]["description"], "deliver subject not valid",
        "{v}"
    );
    if kind == ServerKind::Natsd {
        // nats-server 2.9.10 leaves it unanswered (no server leads a stream it lacks).
        let v = api_within(
            &c1,
            &format!("{SNAPSHOT}NONE"),
            json!({"deliver_subject": "x"}),
            CONVERGE,
        )
        .await;
        assert_eq!(err_code(&v), 10059, "{v}");
        assert_eq!(v["type"], SNAPSHOT_TYPE, "{v}");
    }
}

/// Uploads `data` through `c` in `chunk`-byte requests: the first non-empty answer (an
/// error on a chunk, or the final `stream_create_response`).
async fn restore(c: &async_nats::Client, cfg: Value, data: &[u8], chunk: usize) -> Value {
    let name = cfg["name"].as_str().unwrap().to_owned();
    let v = api_within(
        c,
        &format!("{RESTORE}{name}"),
        json!({"config": cfg}),
        CONVERGE,
    )
    .await;
    assert_eq!(v["type"], RESTORE_TYPE, "{v}");
    let subject = v["deliver_subject"]
        .as_str()
        .unwrap_or_else(|| panic!("deliver subject: {v}"))
        .to_owned();
    assert!(
        subject.starts_with(&format!("$JS.SNAPSHOT.RESTORE.{name}.")),
        "{v}"
    );
    let ask = |payload: Bytes| {
        within_for(
            CONVERGE,
            "restore chunk answer",
            c.request(subject.clone(), payload),
        )
    };
    for part in data.chunks(chunk) {
        let r = ask(Bytes::copy_from_slice(part)).await.unwrap();
        if !r.payload.is_empty() {
            return serde_json::from_slice(&r.payload).unwrap();
        }
    }
    let r = ask(Bytes::new()).await.unwrap();
    serde_json::from_slice(&r.payload).unwrap()
}

/// Every message of stream `name` (sequences 1 to 20) as (seq, subject, data), asked of
/// its leader through `c`.
async fn messages(c: &async_nats::Client, name: &str) -> Vec<(u64, String, String)> {
    let mut out = Vec::new();
    for seq in 1..=20u64 {
        let v = api_within(
            c,
            &format!("$JS.API.STREAM.MSG.GET.{name}"),
            json!({"seq": seq}),
            CONVERGE,
        )
        .await;
        if v.get("error").is_none() {
            let m = &v["message"];
            out.push((
                m["seq"].as_u64().unwrap(),
                m["subject"].as_str().unwrap().to_owned(),
                m["data"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

/// Stream `name` deleted, as every server sees it.
async fn deleted(c: &async_nats::Client, name: &str) {
    let v = api_within(
        c,
        &format!("$JS.API.STREAM.DELETE.{name}"),
        Value::Null,
        CONVERGE,
    )
    .await;
    assert_eq!(v["success"], true, "{v}");
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let v = api_within(
            c,
            &format!("$JS.API.STREAM.INFO.{name}"),
            Value::Null,
            CONVERGE,
        )
        .await;
        if err_code(&v) == 10059 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "still there: {v}");
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Backup, delete and restore of an R3 and an R1 stream through different servers: the
/// restore creates the stream with its replicas and brings back every message (sequences,
/// subjects, headers, the deleted one still missing) and the durable's delivery state; an
/// R3 stream's new leader after a stepdown holds them too; publishing goes on after the
/// last sequence.
async fn backup_delete_restore_r3_and_r1(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    let c1 = app(&cluster, 1).await;
    let c2 = app(&cluster, 2).await;
    for (name, replicas) in [("THREE", 3u64), ("ONE", 1)] {
        let cinfo = populate(&c0, name, replicas).await;
        let sinfo = info_until(&c0, name, CONVERGE, |v| v["state"]["messages"] == 19).await;
        let before = messages(&c0, name).await;
        assert_eq!(before.len(), 19);
        let (snap, archive, _) = take_snapshot(&c1, name, json!({"chunk_size": 4096})).await;
        deleted(&c0, name).await;

        let done = restore(&c2, snap["config"].clone(), &archive, 1000).await;
        assert_eq!(done["type"], CREATE_TYPE, "{done}");
        assert_eq!(err_code(&done), 0, "{done}");
        assert_eq!(done["config"]["num_replicas"], replicas, "{done}");
        assert_eq!(done["state"]["messages"], 19, "{done}");
        assert_eq!(
            done["state"]["first_seq"], sinfo["state"]["first_seq"],
            "{done}"
        );
        assert_eq!(done["state"]["last_seq"], 20, "{done}");
        let info = info_until(&c0, name, CONVERGE, |v| {
            v["state"]["messages"] == 19
                && v["cluster"]["replicas"].as_array().map_or(0, Vec::len) == replicas as usize - 1
        })
        .await;
        assert_eq!(messages(&c0, name).await, before);

        let after = consumer_info_until(&c0, name, |v| v["ack_floor"]["stream_seq"] == 4).await;
        for k in ["delivered", "ack_floor"] {
            for f in ["consumer_seq", "stream_seq"] {
                assert_eq!(after[k][f], cinfo[k][f], "{k}.{f}: {after} vs {cinfo}");
            }
        }
        assert_eq!(after["num_pending"], cinfo["num_pending"], "{after}");

        if replicas == 3 {
            // Every replica holds the restored messages: a new leader serves them.
            let old = info["cluster"]["leader"].clone();
            let v = api_within(
                &c0,
                &format!("$JS.API.STREAM.LEADER.STEPDOWN.{name}"),
                Value::Null,
                CONVERGE,
            )
            .await;
            assert_eq!(v["success"], true, "{v}");
            info_until(&c0, name, CONVERGE, |v| v["cluster"]["leader"] != old).await;
            assert_eq!(messages(&c0, name).await, before);
        }
        let js = async_nats::jetstream::new(c0.clone());
        let subject = format!("{}.x", name.to_lowercase());
        let acked = jscluster::publish_all(&js, &subject, ["after".into()], CONVERGE).await;
        assert_eq!(acked[0].0, 21);
    }
}

/// The consumer `D` of stream `name`, asked until `ok` holds, within [`CONVERGE`].
async fn consumer_info_until(
    c: &async_nats::Client,
    name: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let v = api_within(
            c,
            &format!("$JS.API.CONSUMER.INFO.{name}.D"),
            Value::Null,
            CONVERGE,
        )
        .await;
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

/// What a restore request is refused with in a cluster, as nats-server 2.9.10 words it.
async fn restore_request_errors(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c1 = app(&cluster, 1).await;
    let v = api_within(&c1, &format!("{RESTORE}R"), Value::Null, CONVERGE).await;
    assert_eq!(v["type"], RESTORE_TYPE, "{v}");
    assert_eq!(err_code(&v), 10003, "{v}");
    let m = within_for(
        CONVERGE,
        "restore answer",
        c1.request(format!("{RESTORE}R"), Bytes::from_static(b"{not json")),
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(err_code(&v), 10025, "{v}");
    jscluster::create(&c1, jscluster::stream_cfg("R", 3), CONVERGE).await;
    let v = api_within(
        &c1,
        &format!("{RESTORE}R"),
        json!({"config": jscluster::stream_cfg("R", 3)}),
        CONVERGE,
    )
    .await;
    assert_eq!(v["type"], RESTORE_TYPE, "{v}");
    assert_eq!(err_code(&v), 10130, "{v}");
    assert_eq!(v["error"]["code"], 400, "{v}");
    assert_eq!(
        v["error"]["description"], "stream name already in use, cannot restore",
        "{v}"
    );
}

/// A damaged archive is refused (10062) and the stream it was creating is gone; the
/// undamaged one restores after it.
async fn corrupted_archive_is_refused(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    populate(&c0, "BAD", 3).await;
    let (snap, archive, _) = take_snapshot(&c0, "BAD", json!({"chunk_size": 1024})).await;
    deleted(&c0, "BAD").await;
    let mut bad = archive.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 8] {
        *b ^= 0x5a;
    }
    let c1 = app(&cluster, 1).await;
    let v = restore(&c1, snap["config"].clone(), &bad, 1024).await;
    assert_eq!(err_code(&v), 10062, "{v}");
    assert_eq!(v["error"]["code"], 500, "{v}");
    assert!(
        v["error"]["description"]
            .as_str()
            .unwrap()
            .starts_with("restore failed: "),
        "{v}"
    );
    // Deleted through the meta group: asked until it is gone.
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let v = api_within(&c0, "$JS.API.STREAM.INFO.BAD", Value::Null, CONVERGE).await;
        if err_code(&v) == 10059 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "half-restored stream stays: {v}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same name restored again from the good archive. natsd only: nats-server 2.9.10 once
    // answered this second restore without a deliver subject on a loaded machine (the failed
    // restore's clean-up still under way), so its run stops at the refusal above.
    if kind == ServerKind::Natsd {
        let v = restore(&c1, snap["config"].clone(), &archive, 4096).await;
        assert_eq!(err_code(&v), 0, "{v}");
        assert_eq!(v["state"]["messages"], 19, "{v}");
    }
}
