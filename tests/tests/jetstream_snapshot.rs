//! Stream snapshot and restore (`$JS.API.STREAM.SNAPSHOT` / `RESTORE`) with raw requests, as
//! the nats CLI's `stream backup` / `stream restore` drive them (async-nats has no snapshot
//! API). The archive is opaque to these tests, so every scenario runs against natsd and
//! nats-server 2.9.10 alike: each server restores its own archives (their contents differ,
//! natsd's is its own format), and the protocol, reply shapes and error codes must match.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::js::{api, err_code, js_server};
use natsd_tests::{both, flush, next_msg, within, ServerKind, TestServer};
use serde_json::{json, Value};

both!(
    snapshot_request_errors,
    restore_request_errors,
    backup_delete_restore_keeps_messages_and_durable,
    restored_stream_survives_restart,
    corrupted_archive_is_refused,
    advisories_announce_snapshot_and_restore,
    large_stream_crosses_several_windows,
);

const SNAPSHOT: &str = "$JS.API.STREAM.SNAPSHOT.";
const RESTORE: &str = "$JS.API.STREAM.RESTORE.";

/// A snapshot as the CLI takes it: subscribe, ask, ack every chunk until the empty end.
/// Returns the API answer, the archive and the chunk count.
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
    let v = api(c, &format!("{SNAPSHOT}{stream}"), req).await;
    assert_eq!(
        v["type"], "io.nats.jetstream.api.v1.stream_snapshot_response",
        "{v}"
    );
    assert_eq!(err_code(&v), 0, "{v}");
    let (mut data, mut chunks) = (Vec::new(), 0);
    loop {
        let m = next_msg(&mut sub).await;
        if m.payload.is_empty() {
            assert!(m.reply.is_none(), "the end carries no ack subject");
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

/// Uploads `data` in `chunk`-byte requests; the first non-empty answer (an error on a chunk,
/// or the final `stream_create_response`).
async fn restore(c: &async_nats::Client, cfg: Value, data: &[u8], chunk: usize) -> Value {
    let name = cfg["name"].as_str().unwrap().to_owned();
    let v = api(c, &format!("{RESTORE}{name}"), json!({"config": cfg})).await;
    assert_eq!(
        v["type"], "io.nats.jetstream.api.v1.stream_restore_response",
        "{v}"
    );
    let subject = v["deliver_subject"]
        .as_str()
        .expect("deliver subject")
        .to_owned();
    assert!(
        subject.starts_with(&format!("$JS.SNAPSHOT.RESTORE.{name}.")),
        "{subject}"
    );
    for part in data.chunks(chunk) {
        let r = within(
            "chunk ack",
            c.request(subject.clone(), Bytes::copy_from_slice(part)),
        )
        .await
        .unwrap();
        if !r.payload.is_empty() {
            return serde_json::from_slice(&r.payload).unwrap();
        }
    }
    let r = within("restore end", c.request(subject, Bytes::new()))
        .await
        .unwrap();
    serde_json::from_slice(&r.payload).unwrap()
}

fn file_cfg() -> Value {
    json!({"name": "ORDERS", "subjects": ["orders.>"], "storage": "file"})
}

/// ORDERS with 30 messages (every third with a header, message 5 deleted) and a durable that
/// acknowledged the first four it got and holds two more unacknowledged.
async fn populate(js: &jetstream::Context) {
    js.create_stream(stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["orders.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 1..=30 {
        let mut h = async_nats::HeaderMap::new();
        h.insert("X-N", i.to_string().as_str());
        let body: Bytes = format!("order-{i}-{}", "z".repeat(i * 50)).into();
        let ack = if i % 3 == 0 {
            js.publish_with_headers(format!("orders.{}", i % 4), h, body)
                .await
        } else {
            js.publish(format!("orders.{}", i % 4), body).await
        };
        ack.unwrap().await.unwrap();
    }
    let st = js.get_stream("ORDERS").await.unwrap();
    assert!(st.delete_message(5).await.unwrap());
    let cons: consumer::PullConsumer = st
        .create_consumer(consumer::pull::Config {
            durable_name: Some("worker".into()),
            ack_wait: std::time::Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut b = cons.fetch().max_messages(6).messages().await.unwrap();
    let mut n = 0;
    while let Some(m) = within("fetch", b.next()).await {
        let m = m.unwrap();
        n += 1;
        if n <= 4 {
            m.double_ack().await.unwrap();
        }
    }
    assert_eq!(n, 6);
}

async fn info(c: &async_nats::Client, what: &str) -> Value {
    api(c, &format!("$JS.API.{what}"), Value::Null).await
}

/// Every message of ORDERS as (seq, subject, X-N header, payload).
async fn messages(js: &jetstream::Context) -> Vec<(u64, String, Option<String>, Bytes)> {
    let st = js.get_stream("ORDERS").await.unwrap();
    let mut out = Vec::new();
    for seq in 1..=30 {
        if let Ok(m) = st.get_raw_message(seq).await {
            let h = m.headers.get("X-N").map(|v| v.as_str().to_owned());
            out.push((m.sequence, m.subject.to_string(), h, m.payload));
        }
    }
    out
}

async fn snapshot_request_errors(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = api(
        &c,
        &format!("{SNAPSHOT}NOPE"),
        json!({"deliver_subject": "x"}),
    )
    .await;
    assert_eq!(
        v["type"],
        "io.nats.jetstream.api.v1.stream_snapshot_response"
    );
    assert_eq!(err_code(&v), 10059, "{v}");
    // Go checks the body before looking the stream up.
    let v = api(&c, &format!("{SNAPSHOT}NOPE"), Value::Null).await;
    assert_eq!(err_code(&v), 10003, "{v}");
    let js = jetstream::new(c.clone());
    js.create_stream(stream::Config {
        name: "S".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let v = api(&c, &format!("{SNAPSHOT}S"), json!({"deliver_subject": ""})).await;
    assert_eq!(err_code(&v), 10015, "{v}");
    assert_eq!(v["error"]["description"], "deliver subject not valid");
    let v = api(
        &c,
        &format!("{SNAPSHOT}S"),
        json!({"deliver_subject": "a..b"}),
    )
    .await;
    assert_eq!(err_code(&v), 10015, "{v}");
    let m = c
        .request(format!("{SNAPSHOT}S"), Bytes::from_static(b"{not json"))
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(err_code(&v), 10025, "{v}");
}

async fn restore_request_errors(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = api(&c, &format!("{RESTORE}R"), Value::Null).await;
    assert_eq!(
        v["type"],
        "io.nats.jetstream.api.v1.stream_restore_response"
    );
    assert_eq!(err_code(&v), 10003, "{v}");
    let m = c
        .request(format!("{RESTORE}R"), Bytes::from_static(b"{not json"))
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(err_code(&v), 10025, "{v}");
    let js = jetstream::new(c.clone());
    js.create_stream(stream::Config {
        name: "R".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let v = api(&c, &format!("{RESTORE}R"), json!({"config": {"name": "R"}})).await;
    assert_eq!(err_code(&v), 10130, "{v}");
    assert_eq!(v["error"]["code"], 400);
    assert_eq!(
        v["error"]["description"],
        "stream name already in use, cannot restore"
    );
}

async fn backup_delete_restore_keeps_messages_and_durable(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    populate(&js).await;
    let before = messages(&js).await;
    assert_eq!(before.len(), 29);
    let sinfo = info(&c, "STREAM.INFO.ORDERS").await;
    let cinfo = info(&c, "CONSUMER.INFO.ORDERS.worker").await;
    let (v, archive, chunks) = take_snapshot(&c, "ORDERS", json!({"chunk_size": 1024})).await;
    assert_eq!(v["config"]["name"], "ORDERS");
    assert_eq!(v["state"]["messages"], 29);
    assert_eq!(v["state"]["last_seq"], 30);
    assert!(chunks >= 1);

    let v = info(&c, "STREAM.DELETE.ORDERS").await;
    assert_eq!(v["success"], true, "{v}");
    let done = restore(&c, file_cfg(), &archive, 1000).await;
    assert_eq!(
        done["type"], "io.nats.jetstream.api.v1.stream_create_response",
        "{done}"
    );
    assert_eq!(err_code(&done), 0, "{done}");
    assert_eq!(done["state"]["messages"], 29);
    assert_eq!(done["state"]["first_seq"], sinfo["state"]["first_seq"]);
    assert_eq!(done["state"]["last_seq"], 30);
    assert_eq!(messages(&js).await, before);
    // The restored stream captures its subjects again, after its last sequence.
    let ack = js.publish("orders.9", "new".into()).await.unwrap();
    assert_eq!(ack.await.unwrap().sequence, 31);

    let after = info(&c, "CONSUMER.INFO.ORDERS.worker").await;
    assert_eq!(err_code(&after), 0, "{after}");
    // Sequences only: nats-server adds `last_active` times to these.
    for k in ["delivered", "ack_floor"] {
        for f in ["consumer_seq", "stream_seq"] {
            assert_eq!(after[k][f], cinfo[k][f], "{k}.{f}: {after} vs {cinfo}");
        }
    }
    assert_eq!(after["delivered"]["stream_seq"], 7, "{after}");
    assert_eq!(after["num_ack_pending"], 2, "{after}");
    // One more: the message published after the restore.
    assert_eq!(
        after["num_pending"].as_u64().unwrap(),
        cinfo["num_pending"].as_u64().unwrap() + 1,
        "{after}"
    );
    // The durable resumes after what it was given: the next fetch is the 8th message.
    let st = js.get_stream("ORDERS").await.unwrap();
    let cons: consumer::PullConsumer = st.get_consumer("worker").await.unwrap();
    let mut b = cons.fetch().max_messages(1).messages().await.unwrap();
    let m = within("resume", b.next()).await.unwrap().unwrap();
    assert_eq!(m.info().unwrap().stream_sequence, 8);
}

async fn restored_stream_survives_restart(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let path = sd.path().to_str().unwrap().to_owned();
    let before;
    {
        let s = TestServer::start_with_args(kind, "", &["-js", "-sd", &path]).await;
        let c = s.client().await;
        let js = jetstream::new(c.clone());
        populate(&js).await;
        before = messages(&js).await;
        let (_, archive, _) = take_snapshot(&c, "ORDERS", json!({})).await;
        info(&c, "STREAM.DELETE.ORDERS").await;
        let done = restore(&c, file_cfg(), &archive, 64 * 1024).await;
        assert_eq!(err_code(&done), 0, "{done}");
    }
    let s = TestServer::start_with_args(kind, "", &["-js", "-sd", &path]).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    assert_eq!(messages(&js).await, before);
    let v = info(&c, "CONSUMER.INFO.ORDERS.worker").await;
    assert_eq!(err_code(&v), 0, "{v}");
    // The floor moved over the deleted message 5.
    assert_eq!(v["ack_floor"]["stream_seq"], 5, "{v}");
    assert_eq!(v["ack_floor"]["consumer_seq"], 4, "{v}");
    // And it takes new messages after the restored ones.
    let ack = js
        .publish("orders.new", "after".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 31);
}

async fn corrupted_archive_is_refused(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    populate(&js).await;
    let (_, archive, _) = take_snapshot(&c, "ORDERS", json!({"chunk_size": 1024})).await;
    info(&c, "STREAM.DELETE.ORDERS").await;

    let mut bad = archive.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 8] {
        *b ^= 0x5a;
    }
    let v = restore(&c, file_cfg(), &bad, 1024).await;
    assert_eq!(err_code(&v), 10062, "{v}");
    assert_eq!(v["error"]["code"], 500);
    assert!(
        v["error"]["description"]
            .as_str()
            .unwrap()
            .starts_with("restore failed: "),
        "{v}"
    );
    let v = info(&c, "STREAM.INFO.ORDERS").await;
    assert_eq!(err_code(&v), 10059, "nothing half-restored: {v}");

    // Random bytes are no archive either; the real one still restores.
    let v = restore(&c, file_cfg(), b"definitely not an archive", 1024).await;
    assert_eq!(err_code(&v), 10062, "{v}");
    let v = restore(&c, file_cfg(), &archive, 4096).await;
    assert_eq!(err_code(&v), 0, "{v}");
    assert_eq!(v["state"]["messages"], 29);
}

async fn advisories_announce_snapshot_and_restore(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    populate(&js).await;
    let mut adv = c
        .subscribe("$JS.EVENT.ADVISORY.STREAM.*.ORDERS")
        .await
        .unwrap();
    flush(&c).await;
    let (_, archive, _) = take_snapshot(&c, "ORDERS", json!({})).await;
    info(&c, "STREAM.DELETE.ORDERS").await;
    let done = restore(&c, file_cfg(), &archive, 8192).await;
    assert_eq!(err_code(&done), 0, "{done}");
    let want = [
        ("SNAPSHOT_CREATE", "snapshot_create"),
        ("SNAPSHOT_COMPLETE", "snapshot_complete"),
        ("RESTORE_CREATE", "restore_create"),
        ("RESTORE_COMPLETE", "restore_complete"),
    ];
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < want.len() {
        let m = next_msg(&mut adv).await;
        let kind = m.subject.split('.').nth(4).unwrap().to_owned();
        if want.iter().any(|(k, _)| *k == kind) {
            seen.insert(kind, serde_json::from_slice::<Value>(&m.payload).unwrap());
        }
    }
    for (k, t) in want {
        let v = &seen[k];
        assert_eq!(
            v["type"],
            format!("io.nats.jetstream.advisory.v1.{t}"),
            "{v}"
        );
        assert_eq!(v["stream"], "ORDERS", "{v}");
        assert!(v["id"].is_string() && v["timestamp"].is_string(), "{v}");
    }
    assert_eq!(seen["SNAPSHOT_CREATE"]["state"]["messages"], 29);
    assert!(seen["SNAPSHOT_COMPLETE"]["start"].is_string());
    assert!(seen["SNAPSHOT_COMPLETE"]["end"].is_string());
    let restored = &seen["RESTORE_COMPLETE"];
    assert!(restored["start"].is_string() && restored["end"].is_string());
    assert_eq!(restored["bytes"], archive.len(), "{restored}");
}

/// 16 MiB of messages: more than one 8 MiB window, so the snapshot goes out only as the
/// chunks are acknowledged.
async fn large_stream_crosses_several_windows(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    js.create_stream(stream::Config {
        name: "BIG".into(),
        subjects: vec!["big.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    // Incompressible, so the archive stays large on both servers (each compresses it).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let body: Bytes = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into();
    for batch in 0..16 {
        let mut acks = Vec::new();
        for i in 0..256 {
            let subject = format!("big.{}", (batch * 256 + i) % 16);
            acks.push(js.publish(subject, body.clone()).await.unwrap());
        }
        for a in acks {
            a.await.unwrap();
        }
    }
    let started = std::time::Instant::now();
    let (v, archive, chunks) = take_snapshot(&c, "BIG", json!({})).await;
    let took = started.elapsed();
    assert_eq!(v["state"]["messages"], 4096);
    // Random payloads do not compress: natsd's archive holds all 16 MiB, and so spans more
    // than two windows of 64 chunks.
    if kind == ServerKind::Natsd {
        assert!(archive.len() > 16 << 20, "{} bytes", archive.len());
        assert!(chunks > 128, "{chunks} chunks of at most 128 KiB");
    }
    info(&c, "STREAM.DELETE.BIG").await;
    let started = std::time::Instant::now();
    let cfg = json!({"name": "BIG", "subjects": ["big.>"], "storage": "file"});
    let done = restore(&c, cfg, &archive, 128 * 1024).await;
    eprintln!(
        "{}: snapshot of {} bytes in {took:?}, restore in {:?}",
        kind.name(),
        archive.len(),
        started.elapsed()
    );
    assert_eq!(err_code(&done), 0, "{done}");
    assert_eq!(done["state"]["messages"], 4096);
    assert_eq!(done["state"]["last_seq"], 4096);
}
