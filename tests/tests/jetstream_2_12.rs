//! Stream features of nats-server 2.11–2.12 that current clients use: KV limit markers and
//! per-key TTL, counters, atomic batch publish, message schedules and `persist_mode`.
//! nats-server 2.9.10 has none of them, so these scenarios run against natsd only.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use natsd_tests::js::{api, err_code, js_server};
use natsd_tests::{within, within_for, ServerKind};
use serde_json::{json, Value};

macro_rules! natsd_only {
    ($($name:ident),+ $(,)?) => {
        mod natsd_only {
            $(
                #[tokio::test]
                async fn $name() {
                    natsd_tests::run_scenario(natsd_tests::ServerKind::Natsd, super::$name).await;
                }
            )+
        }
    };
}

natsd_only!(
    kv_per_key_ttl_and_limit_markers,
    counters,
    atomic_batch,
    persist_mode,
    message_schedule
);

const SEC: u64 = 1_000_000_000;

/// Publishes with headers and returns the PubAck (or error) as JSON.
async fn publish(
    c: &async_nats::Client,
    subject: &str,
    hdrs: &[(&str, &str)],
    body: &str,
) -> Value {
    let mut h = async_nats::HeaderMap::new();
    for (k, v) in hdrs {
        h.append(*k, *v);
    }
    let m = within(
        "PubAck",
        c.request_with_headers(subject.to_owned(), h, body.to_owned().into()),
    )
    .await
    .unwrap();
    serde_json::from_slice(&m.payload).unwrap()
}

/// A KV bucket as a 2.11 client creates one with limit markers (`allow_msg_ttl` and
/// `subject_delete_marker_ttl`); a key created with a TTL expires and its watcher sees the
/// server's marker as a purge.
async fn kv_per_key_ttl_and_limit_markers(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let cfg = json!({
        "name": "KV_b", "subjects": ["$KV.b.>"], "max_msgs_per_subject": 1,
        "discard": "new", "allow_rollup_hdrs": true, "deny_delete": true,
        "allow_direct": true, "storage": "file", "num_replicas": 1,
        "allow_msg_ttl": true, "subject_delete_marker_ttl": 30 * SEC,
    });
    let v = api(&c, "$JS.API.STREAM.CREATE.KV_b", cfg).await;
    assert_eq!(err_code(&v), 0, "{v}");
    assert_eq!(v["config"]["subject_delete_marker_ttl"], 30 * SEC, "{v}");
    let js = jetstream::new(c.clone());
    let kv = js.get_key_value("b").await.unwrap();
    kv.put("keep", "forever".into()).await.unwrap();
    // `watch` delivers updates from now on: start it before the key exists.
    let mut watch = kv.watch("k").await.unwrap();
    kv.create_with_ttl("k", "short".into(), Duration::from_secs(1))
        .await
        .unwrap();
    let first = within("watch: the value", watch.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.operation, kv::Operation::Put);
    assert_eq!(&first.value[..], b"short");
    let gone = within_for(Duration::from_secs(10), "watch: the marker", watch.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.operation, kv::Operation::Purge);
    assert!(kv.get("k").await.unwrap().is_none());
    assert_eq!(&kv.get("keep").await.unwrap().unwrap()[..], b"forever");
    // The marker as stored: empty, with the reason, its own TTL and a subject roll-up.
    let v = api(
        &c,
        "$JS.API.STREAM.MSG.GET.KV_b",
        json!({"last_by_subj": "$KV.b.k"}),
    )
    .await;
    let hdrs = v["message"]["hdrs"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"));
    let hdrs = decode_b64(hdrs);
    assert_eq!(
        hdrs,
        "NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: 30s\r\nNats-Rollup: sub\r\n\r\n"
    );
    // A TTL on a stream without allow_msg_ttl is refused (10166).
    let v = api(
        &c,
        "$JS.API.STREAM.CREATE.P",
        json!({"name": "P", "subjects": ["p"], "storage": "memory"}),
    )
    .await;
    assert_eq!(err_code(&v), 0, "{v}");
    let v = publish(&c, "p", &[("Nats-TTL", "5s")], "x").await;
    assert_eq!(err_code(&v), 10166, "{v}");
}

async fn create(c: &async_nats::Client, cfg: Value) -> Value {
    let name = cfg["name"].as_str().unwrap().to_owned();
    api(c, &format!("$JS.API.STREAM.CREATE.{name}"), cfg).await
}

/// A counter stream adds up `Nats-Incr`s, answers the total in the PubAck and refuses a
/// plain publish and a body.
async fn counters(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = create(
        &c,
        json!({"name": "C", "subjects": ["c.>"], "allow_msg_counter": true, "allow_direct": true}),
    )
    .await;
    assert_eq!(v["config"]["allow_msg_counter"], true, "{v}");
    let a = publish(&c, "c.hits", &[("Nats-Incr", "+5")], "").await;
    assert_eq!(a, json!({"stream": "C", "seq": 1, "val": "5"}));
    let a = publish(&c, "c.hits", &[("Nats-Incr", "-2")], "").await;
    assert_eq!(a["val"], "3");
    let v = publish(&c, "c.hits", &[], "plain").await;
    assert_eq!(err_code(&v), 10169, "{v}");
    let v = publish(&c, "c.hits", &[("Nats-Incr", "1")], "body").await;
    assert_eq!(err_code(&v), 10170, "{v}");
    let v = api(
        &c,
        "$JS.API.DIRECT.GET.C",
        json!({"last_by_subj": "c.hits"}),
    )
    .await;
    assert_eq!(v, json!({"val": "3"}));
}

/// A batch is staged (empty replies), then stored whole by its commit with one PubAck.
async fn atomic_batch(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = create(
        &c,
        json!({"name": "B", "subjects": ["b.>"], "allow_atomic": true}),
    )
    .await;
    assert_eq!(err_code(&v), 0, "{v}");
    for seq in 1..=3u32 {
        let seq_s = seq.to_string();
        let mut h = vec![
            ("Nats-Batch-Id", "one"),
            ("Nats-Batch-Sequence", seq_s.as_str()),
        ];
        if seq == 3 {
            h.push(("Nats-Batch-Commit", "1"));
        }
        let mut hm = async_nats::HeaderMap::new();
        for (k, v) in &h {
            hm.insert(*k, *v);
        }
        let m = within(
            "batch reply",
            c.request_with_headers("b.x", hm, format!("m{seq}").into()),
        )
        .await
        .unwrap();
        if seq < 3 {
            assert!(m.payload.is_empty(), "{m:?}");
            let v = api(&c, "$JS.API.STREAM.INFO.B", Value::Null).await;
            assert_eq!(v["state"]["messages"], 0, "staged, not stored: {v}");
        } else {
            let v: Value = serde_json::from_slice(&m.payload).unwrap();
            assert_eq!(
                v,
                json!({"stream": "B", "seq": 3, "batch": "one", "count": 3})
            );
        }
    }
    let v = api(&c, "$JS.API.STREAM.INFO.B", Value::Null).await;
    assert_eq!(v["state"]["messages"], 3, "{v}");
    // A gap abandons a batch; nothing of it is stored.
    let mut hm = async_nats::HeaderMap::new();
    hm.insert("Nats-Batch-Id", "two");
    hm.insert("Nats-Batch-Sequence", "1");
    let m = within("staged", c.request_with_headers("b.x", hm, "x".into()))
        .await
        .unwrap();
    assert!(m.payload.is_empty(), "{m:?}");
    let v = publish(
        &c,
        "b.x",
        &[
            ("Nats-Batch-Id", "two"),
            ("Nats-Batch-Sequence", "3"),
            ("Nats-Batch-Commit", "1"),
        ],
        "y",
    )
    .await;
    assert_eq!(err_code(&v), 10176, "{v}");
    let v = api(&c, "$JS.API.STREAM.INFO.B", Value::Null).await;
    assert_eq!(v["state"]["messages"], 3, "{v}");
}

/// `persist_mode: async` is echoed and refused where nats-server refuses it.
async fn persist_mode(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = create(
        &c,
        json!({"name": "A", "subjects": ["a"], "persist_mode": "async"}),
    )
    .await;
    assert_eq!(v["config"]["persist_mode"], "async", "{v}");
    let a = publish(&c, "a", &[], "x").await;
    assert_eq!(a, json!({"stream": "A", "seq": 1}));
    let v = create(
        &c,
        json!({"name": "M", "subjects": ["m"], "storage": "memory", "persist_mode": "async"}),
    )
    .await;
    assert_eq!(err_code(&v), 10052, "{v}");
    let v = api(
        &c,
        "$JS.API.STREAM.UPDATE.A",
        json!({"name": "A", "subjects": ["a"]}),
    )
    .await;
    assert_eq!(
        v["error"]["description"],
        "stream configuration update can not change persist mode"
    );
}

/// An `@every 1s` schedule publishes to its target (read back with a message get);
/// bad patterns and targets are refused with nats-server's codes.
async fn message_schedule(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = create(
        &c,
        json!({"name": "S", "subjects": ["s.>"], "allow_msg_schedules": true}),
    )
    .await;
    assert_eq!(v["config"]["allow_msg_schedules"], true, "{v}");
    let v = publish(
        &c,
        "s.sched",
        &[
            ("Nats-Schedule", "@every 1s"),
            ("Nats-Schedule-Target", "s.out"),
        ],
        "tick",
    )
    .await;
    assert_eq!(v["seq"], 1, "{v}");
    // Wait (bounded) until the schedule has published at least once.
    let fired = within_for(Duration::from_secs(10), "the schedule fires", async {
        loop {
            let v = api(
                &c,
                "$JS.API.STREAM.MSG.GET.S",
                json!({"last_by_subj": "s.out"}),
            )
            .await;
            if v.get("message").is_some() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let hdrs = decode_b64(fired["message"]["hdrs"].as_str().unwrap());
    assert!(hdrs.contains("Nats-Scheduler: s.sched\r\n"), "{hdrs}");
    assert!(hdrs.contains("Nats-Schedule-Next: "), "{hdrs}");
    let v = publish(
        &c,
        "s.bad",
        &[
            ("Nats-Schedule", "@every 10ms"),
            ("Nats-Schedule-Target", "s.out"),
        ],
        "",
    )
    .await;
    assert_eq!(err_code(&v), 10189, "{v}");
    let v = publish(
        &c,
        "s.bad",
        &[
            ("Nats-Schedule", "@every 1m"),
            ("Nats-Schedule-Target", "nowhere"),
        ],
        "",
    )
    .await;
    assert_eq!(err_code(&v), 10190, "{v}");
}

fn decode_b64(s: &str) -> String {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            _ => 63,
        }
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s.trim_end_matches('=').as_bytes() {
        acc = (acc << 6) | val(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).unwrap()
}
