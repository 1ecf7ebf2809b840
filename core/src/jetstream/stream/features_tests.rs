//! nats-server 2.11–2.12 stream features through [`JetStream`]: subject delete markers,
//! counters, atomic batches, message schedules and `persist_mode`.

use serde_json::{json, Value};

use super::super::consumer::Delivery;
use super::super::factory::DiskFactory;
use super::super::service::{JetStream, JsSettings};
use super::super::store::{MemDisk, SyncPolicy};
use crate::proto::headers::Headers;

pub(super) const T0: u64 = 1_700_000_000_000_000_000;
pub(super) const SEC: u64 = 1_000_000_000;

pub(super) fn js_on(disk: &MemDisk) -> JetStream {
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

pub(super) fn body(d: &Delivery) -> Value {
    serde_json::from_slice(&d.payload).unwrap()
}

pub(super) fn create(js: &mut JetStream, cfg: Value) -> Value {
    let name = cfg["name"].as_str().unwrap().to_owned();
    let payload = serde_json::to_vec(&cfg).unwrap();
    let out = js.api(
        &format!("$JS.API.STREAM.CREATE.{name}"),
        Some("_INBOX.r"),
        &payload,
        T0,
    );
    body(&out[0])
}

/// Publishes with headers `hdrs` (name, value) and commits; returns the answer on the reply.
pub(super) fn put(
    js: &mut JetStream,
    subject: &str,
    hdrs: &[(&str, &str)],
    payload: &str,
    now: u64,
) -> Option<Value> {
    let h = header_block(hdrs);
    let mut out = js.publish(
        subject,
        Some("_INBOX.ack"),
        h.as_bytes(),
        payload.as_bytes(),
        now,
    );
    out.extend(js.commit(now));
    out.iter().find(|d| d.subject == "_INBOX.ack").map(body)
}

pub(super) fn header_block(hdrs: &[(&str, &str)]) -> String {
    if hdrs.is_empty() {
        return String::new();
    }
    let mut h = "NATS/1.0\r\n".to_owned();
    for (k, v) in hdrs {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h + "\r\n"
}

/// One stored message: (seq, subject, headers, payload).
pub(super) type Msg = (u64, String, Vec<(String, String)>, String);

/// Every message of a stream.
pub(super) fn msgs(js: &JetStream, name: &str) -> Vec<Msg> {
    let store = &js.stream(name).unwrap().store;
    let mut out = Vec::new();
    let mut seq = 0;
    while let Ok(m) = store.load_next_msg("", seq) {
        let hdrs = Headers::parse(&m.headers)
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push((
            m.seq,
            m.subject.clone(),
            hdrs,
            String::from_utf8_lossy(&m.payload).into_owned(),
        ));
        seq = m.seq + 1;
    }
    out
}

fn marker_hdrs(ttl: &str) -> Vec<(String, String)> {
    [
        ("Nats-Marker-Reason", "MaxAge"),
        ("Nats-TTL", ttl),
        ("Nats-Rollup", "sub"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn max_age_leaves_a_marker_where_a_subject_lost_its_last_message() {
    let mut js = js_on(&MemDisk::new(1));
    let v = create(
        &mut js,
        json!({"name": "KV", "subjects": ["k.>"], "max_age": 2 * SEC,
               "subject_delete_marker_ttl": 60 * SEC}),
    );
    assert_eq!(v["config"]["allow_msg_ttl"], true, "{v}");
    put(&mut js, "k.1", &[], "a", T0);
    put(&mut js, "k.2", &[], "b", T0);
    put(&mut js, "k.2", &[], "c", T0 + 3 * SEC / 2);
    js.tick(T0 + 2 * SEC + 1);
    js.commit(T0 + 2 * SEC + 1);
    // k.1 lost its only message: a marker; k.2 still holds c.
    let got = msgs(&js, "KV");
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].1, "k.2");
    assert_eq!(
        got[1],
        (4, "k.1".to_owned(), marker_hdrs("1m0s"), String::new())
    );
    // c goes too: k.2 gets its marker; k.1's marker is past max_age but replaced by nothing.
    js.tick(T0 + 5 * SEC);
    js.commit(T0 + 5 * SEC);
    let got = msgs(&js, "KV");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0],
        (5, "k.2".to_owned(), marker_hdrs("1m0s"), String::new())
    );
    js.tick(T0 + 8 * SEC);
    assert!(msgs(&js, "KV").is_empty());
}

#[test]
fn an_expired_ttl_leaves_a_marker_that_expires_in_turn() {
    let mut js = js_on(&MemDisk::new(2));
    create(
        &mut js,
        json!({"name": "KV", "subjects": ["k.>"], "allow_msg_ttl": true,
               "subject_delete_marker_ttl": 5 * SEC}),
    );
    let ack = put(&mut js, "k.a", &[("Nats-TTL", "1s")], "v", T0).unwrap();
    assert_eq!(ack["seq"], 1);
    // Another key with two revisions, the older one with a TTL: no marker for it.
    put(&mut js, "k.b", &[("Nats-TTL", "1s")], "old", T0);
    put(&mut js, "k.b", &[], "new", T0);
    assert_eq!(js.next_deadline(), Some(T0 + SEC));
    js.tick(T0 + SEC);
    js.commit(T0 + SEC);
    let got = msgs(&js, "KV");
    let subjects: Vec<&str> = got.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(subjects, ["k.b", "k.a"], "{got:?}");
    assert_eq!(got[1].2, marker_hdrs("5s"));
    // The marker's own TTL removes it; nothing replaces a marker.
    js.tick(T0 + 6 * SEC);
    js.commit(T0 + 6 * SEC);
    let subjects: Vec<String> = msgs(&js, "KV").into_iter().map(|m| m.1).collect();
    assert_eq!(subjects, ["k.b"]);
}

#[test]
fn no_markers_unless_asked() {
    let mut js = js_on(&MemDisk::new(3));
    create(
        &mut js,
        json!({"name": "S", "subjects": ["s"], "max_age": SEC}),
    );
    put(&mut js, "s", &[], "a", T0);
    js.tick(T0 + 2 * SEC);
    assert!(msgs(&js, "S").is_empty());
    let e = create(
        &mut js,
        json!({"name": "T", "subjects": ["t"], "subject_delete_marker_ttl": SEC / 2}),
    );
    assert!(e.get("error").is_some(), "{e}");
}

#[test]
fn kv_key_with_ttl_lives_its_ttl() {
    let mut js = js_on(&MemDisk::new(4));
    create(
        &mut js,
        json!({"name": "KV_b", "subjects": ["$KV.b.>"], "max_msgs_per_subject": 1,
               "discard": "new", "allow_rollup_hdrs": true, "deny_delete": true,
               "allow_direct": true, "allow_msg_ttl": true,
               "subject_delete_marker_ttl": 30 * SEC}),
    );
    put(&mut js, "$KV.b.keep", &[], "forever", T0);
    let ack = put(
        &mut js,
        "$KV.b.k",
        &[
            ("Nats-Expected-Last-Subject-Sequence", "0"),
            ("Nats-TTL", "1"),
        ],
        "short",
        T0,
    );
    assert_eq!(ack.unwrap()["seq"], 2);
    js.tick(T0 + SEC / 2);
    js.commit(T0 + SEC / 2);
    assert_eq!(msgs(&js, "KV_b").len(), 2, "{:?}", msgs(&js, "KV_b"));
    js.tick(T0 + SEC);
    js.commit(T0 + SEC);
    let got = msgs(&js, "KV_b");
    assert_eq!(got[1].1, "$KV.b.k", "{got:?}");
    assert_eq!(got[1].2, marker_hdrs("30s"));
}

fn code(v: &Value) -> u64 {
    v["error"]["err_code"].as_u64().unwrap_or(0)
}

#[test]
fn counters_add_up_and_refuse_what_they_cannot_count() {
    let mut js = js_on(&MemDisk::new(5));
    let v = create(
        &mut js,
        json!({"name": "C", "subjects": ["c.>"], "allow_msg_counter": true}),
    );
    assert_eq!(v["config"]["allow_msg_counter"], true, "{v}");
    let a = put(&mut js, "c.hits", &[("Nats-Incr", "+2")], "", T0).unwrap();
    assert_eq!(a, json!({"stream": "C", "seq": 1, "val": "2"}));
    let a = put(&mut js, "c.hits", &[("Nats-Incr", "-5")], "", T0).unwrap();
    assert_eq!(a["val"], "-3");
    let a = put(&mut js, "c.other", &[("Nats-Incr", "10")], "", T0).unwrap();
    assert_eq!(a["val"], "10");
    let got = msgs(&js, "C");
    assert_eq!(got[1].3, r#"{"val":"-3"}"#);
    assert_eq!(got[1].2, [("Nats-Incr".to_owned(), "-5".to_owned())]);
    // Go's refusals.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, u64);
    let cases: [Case<'_>; 5] = [
        (&[], "", 10169),
        (&[("Nats-Incr", "1")], "body", 10170),
        (&[("Nats-Incr", "1.5")], "", 10171),
        (
            &[("Nats-Incr", "1"), ("Nats-Expected-Last-Sequence", "3")],
            "",
            10171,
        ),
        (&[("Nats-Incr", "1"), ("Nats-Rollup", "sub")], "", 10171),
    ];
    for (h, body, want) in cases {
        let v = put(&mut js, "c.hits", h, body, T0).unwrap();
        assert_eq!(code(&v), want, "{h:?}: {v}");
    }
    // A plain stream refuses an increment.
    create(&mut js, json!({"name": "P", "subjects": ["p"]}));
    let v = put(&mut js, "p", &[("Nats-Incr", "1")], "", T0).unwrap();
    assert_eq!(code(&v), 10168, "{v}");
    // A broken last value is reported, not overwritten.
    create(
        &mut js,
        json!({"name": "B", "subjects": ["b"], "allow_msg_counter": true}),
    );
    js.streams
        .get_mut("B")
        .unwrap()
        .stream
        .store
        .store_msg("b", b"", b"not json", T0)
        .unwrap();
    let v = put(&mut js, "b", &[("Nats-Incr", "1")], "", T0).unwrap();
    assert_eq!(code(&v), 10172, "{v}");
}

#[test]
fn counter_config_rules() {
    let mut js = js_on(&MemDisk::new(6));
    let bad = [
        (json!({"discard": "new"}), 10052),
        (json!({"allow_msg_ttl": true}), 10052),
        (json!({"retention": "workqueue"}), 10052),
    ];
    for (extra, want) in bad {
        let mut cfg = json!({"name": "C", "subjects": ["c"], "allow_msg_counter": true});
        cfg.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let v = create(&mut js, cfg);
        assert_eq!(code(&v), want, "{v}");
    }
    create(&mut js, json!({"name": "O", "subjects": ["o"]}));
    let v = create(
        &mut js,
        json!({"name": "M", "mirror": {"name": "O"}, "allow_msg_counter": true}),
    );
    assert_eq!(code(&v), 10173, "{v}");
    create(&mut js, json!({"name": "C", "subjects": ["c"]}));
    let payload =
        serde_json::to_vec(&json!({"name": "C", "subjects": ["c"], "allow_msg_counter": true}))
            .unwrap();
    let out = js.api("$JS.API.STREAM.UPDATE.C", Some("_INBOX.r"), &payload, T0);
    let v = body(&out[0]);
    assert_eq!(code(&v), 10052, "{v}");
    assert_eq!(
        v["error"]["description"],
        "stream configuration update can not change message counter setting"
    );
}

#[test]
fn an_aggregate_counter_counts_what_changed_at_each_source() {
    let mut js = js_on(&MemDisk::new(7));
    for r in ["EU", "US"] {
        create(
            &mut js,
            json!({"name": r, "subjects": [format!("{}.>", r.to_lowercase())],
                   "allow_msg_counter": true}),
        );
    }
    put(&mut js, "eu.hits", &[("Nats-Incr", "5")], "", T0);
    put(&mut js, "us.hits", &[("Nats-Incr", "7")], "", T0);
    let v = create(
        &mut js,
        json!({"name": "ALL", "allow_msg_counter": true, "sources": [
            {"name": "EU", "subject_transforms": [{"src": "eu.>", "dest": "all.>"}]},
            {"name": "US", "subject_transforms": [{"src": "us.>", "dest": "all.>"}]},
        ]}),
    );
    assert_eq!(code(&v), 0, "{v}");
    js.commit(T0);
    put(&mut js, "eu.hits", &[("Nats-Incr", "1")], "", T0);
    let last = msgs(&js, "ALL").pop().unwrap();
    assert_eq!(last.1, "all.hits");
    assert_eq!(last.3, r#"{"val":"13"}"#);
    let hdr = |n: &str| last.2.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    // The increment is what changed at EU (5 → 6), whatever EU's own header said.
    assert_eq!(hdr("Nats-Incr").as_deref(), Some("1"));
    assert_eq!(
        hdr("Nats-Counter-Sources").as_deref(),
        Some(r#"{"EU":{"eu.hits":"6"},"US":{"us.hits":"7"}}"#)
    );
}

#[test]
fn persist_mode_async_acks_before_the_sync() {
    let disk = MemDisk::new(8);
    let mut js = js_on(&disk);
    let v = create(
        &mut js,
        json!({"name": "A", "subjects": ["a"], "persist_mode": "async"}),
    );
    assert_eq!(v["config"]["persist_mode"], "async", "{v}");
    let out = js.publish("a", Some("_INBOX.ack"), b"", b"x", T0);
    assert_eq!(body(&out[0]), json!({"stream": "A", "seq": 1}));
    let v = create(
        &mut js,
        json!({"name": "D", "subjects": ["d"], "persist_mode": "default"}),
    );
    assert!(v["config"].get("persist_mode").is_none(), "{v}");
    assert!(js
        .publish("d", Some("_INBOX.ack"), b"", b"x", T0)
        .is_empty());
    let v = create(
        &mut js,
        json!({"name": "M", "subjects": ["m"], "storage": "memory", "persist_mode": "async"}),
    );
    assert_eq!(
        v["error"]["description"],
        "async persist mode is only supported on file storage"
    );
}
