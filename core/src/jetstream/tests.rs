//! Unit tests of the stream and consumer machines through [`JetStream`], on a memory store
//! and on a file store over a [`MemDisk`] that can crash.

use serde_json::{json, Value};

use super::consumer::Delivery;
use super::factory::DiskFactory;
use super::service::{JetStream, JsSettings};
use super::store::{CrashMode, MemDisk, SyncPolicy};

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn js_on(disk: &MemDisk) -> JetStream {
    let d = disk.clone();
    let f = DiskFactory::new(move || d.clone(), SyncPolicy::Always).with_block_size(4096);
    JetStream::new(
        JsSettings {
            server_name: "S1".into(),
            ..JsSettings::default()
        },
        Box::new(f),
        1,
    )
}

fn body(d: &Delivery) -> Value {
    serde_json::from_slice(&d.payload).unwrap()
}

fn api(js: &mut JetStream, subject: &str, req: Value) -> Value {
    let payload = if req.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&req).unwrap()
    };
    let out = js.api(subject, Some("_INBOX.r"), &payload, T0);
    assert_eq!(out[0].subject, "_INBOX.r");
    body(&out[0])
}

fn err_code(v: &Value) -> u64 {
    v["error"]["err_code"].as_u64().unwrap_or(0)
}

fn create(js: &mut JetStream, name: &str, extra: Value) -> Value {
    let mut cfg = json!({"name": name, "subjects": [format!("{}.>", name.to_lowercase())]});
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
        c.extend(e);
    }
    api(js, &format!("$JS.API.STREAM.CREATE.{name}"), cfg)
}

fn publish(js: &mut JetStream, subject: &str, hdr: &str, payload: &str) -> Vec<Delivery> {
    js.publish(
        subject,
        Some("_INBOX.ack"),
        hdr.as_bytes(),
        payload.as_bytes(),
        T0,
    )
}

#[test]
fn memory_stream_acks_on_commit() {
    let mut js = js_on(&MemDisk::new(1));
    let v = create(&mut js, "ORDERS", json!({"storage": "memory"}));
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.stream_create_response");
    assert_eq!(v["did_create"], true);
    assert!(publish(&mut js, "orders.new", "", "a").is_empty());
    let acks = js.commit(T0);
    assert_eq!(acks.len(), 1);
    assert_eq!(body(&acks[0]), json!({"stream": "ORDERS", "seq": 1}));
    assert!(publish(&mut js, "elsewhere", "", "x").is_empty());
    assert!(js.commit(T0).is_empty());
}

#[test]
fn file_stream_acks_only_synced_and_crash_loses_nothing_acked() {
    let disk = MemDisk::new(9);
    let mut js = js_on(&disk);
    create(&mut js, "EV", json!({}));
    for i in 0..5 {
        assert!(publish(&mut js, "ev.a", "", &format!("u{i}")).is_empty());
    }
    // Power loss before the group commit: nothing was acknowledged, so nothing acked is lost.
    drop(js);
    disk.crash(CrashMode::LoseUnsynced);
    let mut js = js_on(&disk);
    assert_eq!(js.stream("EV").unwrap().store.state().msgs, 0);
    for i in 0..5 {
        publish(&mut js, "ev.a", "", &format!("a{i}"));
    }
    let acked: Vec<u64> = js
        .commit(T0)
        .iter()
        .map(|d| body(d)["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(acked, [1, 2, 3, 4, 5]);
    for i in 0..3 {
        publish(&mut js, "ev.a", "", &format!("late{i}"));
    }
    drop(js);
    disk.crash(CrashMode::Torn);
    let js = js_on(&disk);
    let store = &js.stream("EV").unwrap().store;
    for seq in acked {
        let m = store.load_msg(seq).unwrap();
        assert_eq!(m.payload, format!("a{}", seq - 1).as_bytes());
    }
}

#[test]
fn disk_full_answers_10047() {
    let disk = MemDisk::new(3);
    let mut js = js_on(&disk);
    create(&mut js, "F", json!({}));
    disk.set_capacity(Some(disk.used()));
    let out = publish(&mut js, "f.x", "", &"z".repeat(200));
    assert_eq!(out.len(), 1);
    assert_eq!(err_code(&body(&out[0])), 10047);
    assert!(js.commit(T0).is_empty());
    disk.set_capacity(None);
    publish(&mut js, "f.x", "", "ok");
    assert_eq!(body(&js.commit(T0)[0])["seq"], 1);
}

#[test]
fn stream_validation_and_errors() {
    let mut js = js_on(&MemDisk::new(1));
    // A name with a dot makes a subject no handler takes: Go answers nothing.
    assert!(js
        .api("$JS.API.STREAM.CREATE.a.b", Some("_INBOX.r"), b"{}", T0)
        .is_empty());
    for bad in ["a*", "a>", "a b"] {
        let v = api(
            &mut js,
            &format!("$JS.API.STREAM.CREATE.{bad}"),
            json!({"name": bad}),
        );
        assert!(err_code(&v) != 0, "{bad}: {v}");
    }
    let v = create(&mut js, "A/B", json!({}));
    assert_eq!(err_code(&v), 10128);
    let v = api(&mut js, "$JS.API.STREAM.CREATE.A", json!({"name": "B"}));
    assert_eq!(err_code(&v), 10056);
    let v = api(&mut js, "$JS.API.STREAM.CREATE.A", Value::Null);
    assert_eq!(err_code(&v), 10003);
    create(&mut js, "A", json!({"subjects": ["x.>"]}));
    let v = create(&mut js, "B", json!({"subjects": ["x.y"]}));
    assert_eq!(err_code(&v), 10065);
    let v = create(&mut js, "A", json!({"subjects": ["other"]}));
    assert_eq!(err_code(&v), 10058);
    let v = create(&mut js, "C", json!({"subjects": [">"]}));
    assert_eq!(err_code(&v), 10052);
    let v = create(&mut js, "D", json!({"num_replicas": 3}));
    assert_eq!(err_code(&v), 10074);
    let v = api(&mut js, "$JS.API.STREAM.INFO.NOPE", Value::Null);
    assert_eq!(
        v["error"],
        json!({"code": 404, "err_code": 10059, "description": "stream not found"})
    );
    // Unknown API subjects are not answered (Go: apiDispatch has no handler for them).
    assert!(js.api("$JS.API.NOPE", Some("_INBOX.r"), b"", T0).is_empty());
    let v = api(&mut js, "$JS.API.INFO", Value::Null);
    assert_eq!(v["streams"], 1);
    assert!(v["api"]["errors"].as_u64().unwrap() >= 8);
}

#[test]
fn dedup_and_expected_headers() {
    let mut js = js_on(&MemDisk::new(1));
    create(&mut js, "X", json!({"storage": "memory"}));
    let h = |k: &str, v: &str| format!("NATS/1.0\r\n{k}: {v}\r\n\r\n");
    publish(&mut js, "x.a", &h("Nats-Msg-Id", "m1"), "1");
    js.commit(T0);
    let dup = publish(&mut js, "x.a", &h("Nats-Msg-Id", "m1"), "1");
    assert_eq!(
        body(&dup[0]),
        json!({"stream": "X", "seq": 1, "duplicate": true})
    );
    let e = publish(&mut js, "x.a", &h("Nats-Expected-Stream", "Y"), "");
    assert_eq!(err_code(&body(&e[0])), 10060);
    let e = publish(&mut js, "x.a", &h("Nats-Expected-Last-Sequence", "5"), "");
    assert_eq!(
        body(&e[0])["error"]["description"],
        "wrong last sequence: 1"
    );
    let e = publish(&mut js, "x.a", &h("Nats-Expected-Last-Msg-Id", "zz"), "");
    assert_eq!(err_code(&body(&e[0])), 10070);
    let e = publish(
        &mut js,
        "x.b",
        &h("Nats-Expected-Last-Subject-Sequence", "1"),
        "",
    );
    assert_eq!(err_code(&body(&e[0])), 10071);
    let e = publish(&mut js, "x.b", &h("Nats-Rollup", "all"), "");
    assert_eq!(err_code(&body(&e[0])), 10111);
    assert!(publish(
        &mut js,
        "x.b",
        &h("Nats-Expected-Last-Subject-Sequence", "0"),
        ""
    )
    .is_empty());
    assert_eq!(body(&js.commit(T0)[0])["seq"], 2);
}

fn consumer(js: &mut JetStream, stream: &str, cfg: Value) -> Value {
    let name = cfg["durable_name"].as_str().unwrap_or_default().to_owned();
    api(
        js,
        &format!("$JS.API.CONSUMER.CREATE.{stream}.{name}"),
        json!({"stream_name": stream, "config": cfg}),
    )
}

fn next(js: &mut JetStream, req: Value, now: u64) -> Vec<Delivery> {
    js.api(
        "$JS.API.CONSUMER.MSG.NEXT.W.d",
        Some("_INBOX.pull"),
        &serde_json::to_vec(&req).unwrap(),
        now,
    )
}

fn filled(n: usize) -> JetStream {
    let mut js = js_on(&MemDisk::new(1));
    create(&mut js, "W", json!({"storage": "memory"}));
    for i in 0..n {
        publish(&mut js, "w.x", "", &i.to_string());
    }
    js.commit(T0);
    js
}

#[test]
fn pull_batch_ack_and_redelivery() {
    let mut js = filled(3);
    let v = consumer(
        &mut js,
        "W",
        json!({"durable_name": "d", "ack_policy": "explicit", "ack_wait": SEC, "max_deliver": 2}),
    );
    assert_eq!(v["num_pending"], 3, "{v}");
    let out = next(&mut js, json!({"batch": 2}), T0);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].shown_subject.as_deref(), Some("w.x"));
    let ack0 = out[0].reply.clone().unwrap();
    assert!(ack0.starts_with("$JS.ACK.W.d.1.1.1."), "{ack0}");
    assert!(ack0.ends_with(".2"), "{ack0}");
    js.ack(&ack0, None, b"+ACK", T0);
    // Nak: back at once on the next pull.
    js.ack(out[1].reply.as_deref().unwrap(), None, b"-NAK", T0);
    let out = next(&mut js, json!({"batch": 5, "no_wait": true}), T0);
    let seqs: Vec<&str> = out
        .iter()
        .filter_map(|d| d.reply.as_deref())
        .map(|r| r.split('.').nth(5).unwrap())
        .collect();
    assert_eq!(seqs, ["2", "3"]);
    assert!(String::from_utf8_lossy(&out.last().unwrap().headers).contains("408"));
    // Ack wait passes: seq 3 (1 delivery) comes again; seq 2 reached max_deliver.
    let parked = next(&mut js, json!({"batch": 5, "expires": 10 * SEC}), T0);
    assert!(parked.is_empty());
    let out = js.tick(T0 + 2 * SEC);
    let seqs: Vec<&str> = out
        .iter()
        .filter_map(|d| d.reply.as_deref())
        .map(|r| r.split('.').nth(5).unwrap())
        .collect();
    assert_eq!(seqs, ["3"]);
    // The parked request ends with 408 at its expiry.
    let out = js.tick(T0 + 11 * SEC);
    assert!(out
        .iter()
        .any(|d| String::from_utf8_lossy(&d.headers).contains("408 Request Timeout")));
    let v = api(&mut js, "$JS.API.CONSUMER.INFO.W.d", Value::Null);
    // Go 2.9 (getNextMsg): a message past max_deliver leaves the pending list.
    assert_eq!(v["num_ack_pending"], 1, "{v}");
    assert_eq!(v["ack_floor"]["stream_seq"], 1, "{v}");
}

#[test]
fn no_wait_on_empty_answers_404() {
    let mut js = filled(0);
    consumer(&mut js, "W", json!({"durable_name": "d"}));
    let out = next(&mut js, json!({"batch": 1, "no_wait": true}), T0);
    assert_eq!(out.len(), 1);
    assert!(String::from_utf8_lossy(&out[0].headers).starts_with("NATS/1.0 404 No Messages"));
}

#[test]
fn push_consumer_waits_for_interest() {
    let mut js = filled(2);
    let v = api(
        &mut js,
        "$JS.API.CONSUMER.CREATE.W",
        json!({"stream_name": "W", "config": {"deliver_subject": "dlv", "ack_policy": "none"}}),
    );
    let name = v["name"].as_str().unwrap().to_owned();
    assert_eq!(
        js.push_consumers(),
        [("W".into(), name.clone(), "dlv".into(), false)]
    );
    let out = js.set_push_active("W", &name, true, T0);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].subject, "dlv");
    assert_eq!(out[0].shown_subject.as_deref(), Some("w.x"));
    // New messages flow at commit.
    publish(&mut js, "w.y", "", "new");
    let out = js.commit(T0);
    assert!(out.iter().any(|d| d.subject == "dlv"));
}

#[test]
fn consumer_errors() {
    let mut js = filled(0);
    let v = api(&mut js, "$JS.API.CONSUMER.INFO.W.x", Value::Null);
    assert_eq!(err_code(&v), 10014);
    let v = api(
        &mut js,
        "$JS.API.CONSUMER.CREATE.W.a",
        json!({"stream_name": "W", "config": {"durable_name": "b"}}),
    );
    assert_eq!(err_code(&v), 10017);
    let v = api(
        &mut js,
        "$JS.API.CONSUMER.CREATE.W",
        json!({"stream_name": "W", "config": {"filter_subject": "q"}}),
    );
    assert_eq!(err_code(&v), 10093);
    let v = api(
        &mut js,
        "$JS.API.CONSUMER.CREATE.W",
        json!({"stream_name": "W"}),
    );
    assert_eq!(err_code(&v), 10078);
    let v = api(
        &mut js,
        "$JS.API.CONSUMER.CREATE.W",
        json!({"stream_name": "W", "config": {"deliver_policy": "last_per_subject"}}),
    );
    assert_eq!(err_code(&v), 10094);
}

#[test]
fn streams_recover_with_their_config() {
    let disk = MemDisk::new(5);
    let mut js = js_on(&disk);
    create(&mut js, "K", json!({"max_msgs_per_subject": 2}));
    create(&mut js, "M", json!({"storage": "memory"}));
    for _ in 0..3 {
        publish(&mut js, "k.a", "", "v");
    }
    js.commit(T0);
    drop(js);
    disk.crash(CrashMode::LoseUnsynced);
    let js = js_on(&disk);
    // Memory streams do not survive a restart; file streams do, limits included.
    assert!(js.stream("M").is_none());
    let k = js.stream("K").unwrap();
    assert_eq!(k.config.max_msgs_per_subject, 2);
    assert_eq!(k.store.state().msgs, 2);
    assert_eq!(js.subjects(), ["k.>"]);
}

#[test]
fn push_idle_heartbeat() {
    let mut js = filled(1);
    let v = api(
        &mut js,
        "$JS.API.CONSUMER.CREATE.W",
        json!({"stream_name": "W", "config": {"deliver_subject": "hb", "ack_policy": "none", "idle_heartbeat": SEC}}),
    );
    let name = v["name"].as_str().unwrap().to_owned();
    assert_eq!(js.set_push_active("W", &name, true, T0).len(), 1);
    assert!(js.tick(T0 + SEC / 2).is_empty());
    assert_eq!(js.next_deadline(), Some(T0 + SEC));
    let out = js.tick(T0 + SEC);
    let h = String::from_utf8_lossy(&out[0].headers).into_owned();
    assert!(h.starts_with("NATS/1.0 100 Idle Heartbeat\r\n"), "{h}");
    assert!(
        h.contains("Nats-Last-Consumer: 1\r\nNats-Last-Stream: 1\r\n"),
        "{h}"
    );
}

#[test]
fn interval_mode_acks_at_once_and_syncs_later() {
    let disk = MemDisk::new(2);
    let mut js = js_on(&disk);
    create(&mut js, "I", json!({}));
    publish(&mut js, "i.a", "", "x");
    assert_eq!(body(&js.commit_unsynced(T0)[0])["seq"], 1);
    assert_eq!(js.stream("I").unwrap().store.synced_through(), 0);
    assert!(js.commit(T0).is_empty());
    assert_eq!(js.stream("I").unwrap().store.synced_through(), 1);
}

#[test]
fn durable_consumer_survives_restart_at_its_ack_floor() {
    let disk = MemDisk::new(4);
    let mut js = js_on(&disk);
    create(&mut js, "W", json!({}));
    for i in 0..4 {
        publish(&mut js, "w.x", "", &i.to_string());
    }
    js.commit(T0);
    consumer(
        &mut js,
        "W",
        json!({"durable_name": "d", "ack_policy": "explicit"}),
    );
    let out = next(&mut js, json!({"batch": 2}), T0);
    js.ack(out[0].reply.as_deref().unwrap(), None, b"", T0);
    js.ack(out[1].reply.as_deref().unwrap(), None, b"", T0);
    js.commit(T0);
    drop(js);
    disk.crash(CrashMode::LoseUnsynced);
    let mut js = js_on(&disk);
    let out = next(&mut js, json!({"batch": 5, "no_wait": true}), T0);
    let seqs: Vec<&str> = out
        .iter()
        .filter_map(|d| d.reply.as_deref())
        .map(|r| r.split('.').nth(5).unwrap())
        .collect();
    assert_eq!(seqs, ["3", "4"]);
    // Deleting forgets it for good.
    let v = api(&mut js, "$JS.API.CONSUMER.DELETE.W.d", Value::Null);
    assert_eq!(v["success"], true);
    drop(js);
    let mut js = js_on(&disk);
    let v = api(&mut js, "$JS.API.CONSUMER.INFO.W.d", Value::Null);
    assert_eq!(err_code(&v), 10014);
}
