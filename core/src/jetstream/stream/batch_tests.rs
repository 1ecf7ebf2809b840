//! Atomic batch publish through [`JetStream`] (Go 2.12, ADR-50).

use serde_json::{json, Value};

use super::super::service::JetStream;
use super::super::store::MemDisk;
use super::features_tests::{body, create, js_on, msgs, T0};

const SEC: u64 = 1_000_000_000;

fn code(v: &Value) -> u64 {
    v["error"]["err_code"].as_u64().unwrap_or(0)
}

/// Publishes one batch message; the replies it got at once.
fn send(
    js: &mut JetStream,
    id: &str,
    seq: u64,
    commit: Option<&str>,
    extra: &str,
    now: u64,
) -> Vec<Value> {
    let mut h = format!("NATS/1.0\r\nNats-Batch-Id: {id}\r\nNats-Batch-Sequence: {seq}\r\n");
    if let Some(c) = commit {
        h.push_str(&format!("Nats-Batch-Commit: {c}\r\n"));
    }
    h.push_str(extra);
    h.push_str("\r\n");
    js.publish(
        "b.x",
        Some("_INBOX.b"),
        h.as_bytes(),
        format!("m{seq}").as_bytes(),
        now,
    )
    .iter()
    .map(|d| {
        if d.payload.is_empty() {
            Value::Null
        } else {
            body(d)
        }
    })
    .collect()
}

fn stream(js: &mut JetStream, atomic: bool) {
    let v = create(
        js,
        json!({"name": "B", "subjects": ["b.>"], "allow_atomic": atomic}),
    );
    assert_eq!(code(&v), 0, "{v}");
}

#[test]
fn a_batch_lands_whole_with_one_ack_after_one_sync() {
    let disk = MemDisk::new(1);
    let mut js = js_on(&disk);
    stream(&mut js, true);
    assert_eq!(send(&mut js, "b1", 1, None, "", T0), [Value::Null]);
    assert_eq!(send(&mut js, "b1", 2, None, "", T0), [Value::Null]);
    // Staged, not stored.
    assert!(msgs(&js, "B").is_empty());
    assert!(send(&mut js, "b1", 3, Some("1"), "", T0).is_empty());
    let before = disk.syncs();
    let acks = js.commit(T0);
    let one_batch = disk.syncs() - before;
    assert_eq!(acks.len(), 1);
    assert_eq!(
        body(&acks[0]),
        json!({"stream": "B", "seq": 3, "batch": "b1", "count": 3})
    );
    let got = msgs(&js, "B");
    assert_eq!(got.len(), 3);
    let commit = |i: usize| {
        got[i]
            .2
            .iter()
            .any(|(k, v)| k == "Nats-Batch-Commit" && v == "1")
    };
    assert!(!commit(0) && !commit(1) && commit(2), "{got:?}");
    // One lone publish costs as many fsyncs as the whole batch did.
    js.publish("b.y", Some("_INBOX.p"), b"", b"p", T0);
    let before = disk.syncs();
    js.commit(T0);
    assert_eq!(disk.syncs() - before, one_batch);
}

#[test]
fn end_of_batch_commits_without_storing_itself() {
    let mut js = js_on(&MemDisk::new(2));
    stream(&mut js, true);
    send(&mut js, "e", 1, None, "", T0);
    send(&mut js, "e", 2, None, "", T0);
    assert!(send(&mut js, "e", 3, Some("eob"), "", T0).is_empty());
    let acks = js.commit(T0);
    assert_eq!(
        body(&acks[0]),
        json!({"stream": "B", "seq": 2, "batch": "e", "count": 2})
    );
    let got = msgs(&js, "B");
    assert_eq!(got.len(), 2);
    assert!(got[1]
        .2
        .iter()
        .any(|(k, v)| k == "Nats-Batch-Commit" && v == "1"));
}

#[test]
fn refusals_carry_nats_server_codes_and_store_nothing() {
    let mut js = js_on(&MemDisk::new(3));
    stream(&mut js, false);
    assert_eq!(code(&send(&mut js, "x", 1, Some("1"), "", T0)[0]), 10174);
    let mut js = js_on(&MemDisk::new(4));
    stream(&mut js, true);
    // No sequence.
    let h = "NATS/1.0\r\nNats-Batch-Id: x\r\n\r\n";
    let out = js.publish("b.x", Some("_INBOX.b"), h.as_bytes(), b"", T0);
    assert_eq!(code(&body(&out[0])), 10175);
    // A batch id over 64 characters.
    assert_eq!(
        code(&send(&mut js, &"i".repeat(65), 1, None, "", T0)[0]),
        10179
    );
    // A gap abandons the batch.
    send(&mut js, "g", 1, None, "", T0);
    assert_eq!(code(&send(&mut js, "g", 3, None, "", T0)[0]), 10176);
    assert_eq!(code(&send(&mut js, "g", 2, Some("1"), "", T0)[0]), 10176);
    // Beyond the size limit.
    assert_eq!(
        code(&send(&mut js, "big", 1_001, Some("1"), "", T0)[0]),
        10199
    );
    // An unknown commit value.
    send(&mut js, "c", 1, None, "", T0);
    assert_eq!(code(&send(&mut js, "c", 2, Some("yes"), "", T0)[0]), 10200);
    // Nats-Expected-Last-Msg-Id is not supported inside a batch.
    let v = send(
        &mut js,
        "u",
        1,
        Some("1"),
        "Nats-Expected-Last-Msg-Id: a\r\n",
        T0,
    );
    assert_eq!(code(&v[0]), 10177, "{v:?}");
    assert_eq!(
        v[0]["error"]["description"],
        "atomic publish unsupported header used: Nats-Expected-Last-Msg-Id"
    );
    // One id twice: the whole batch is refused.
    send(&mut js, "d", 1, None, "Nats-Msg-Id: same\r\n", T0);
    let v = send(&mut js, "d", 2, Some("1"), "Nats-Msg-Id: same\r\n", T0);
    assert_eq!(code(&v[0]), 10201, "{v:?}");
    // A check failing half-way takes back what the batch stored.
    send(&mut js, "h", 1, None, "", T0);
    let v = send(
        &mut js,
        "h",
        2,
        Some("1"),
        "Nats-Expected-Last-Sequence: 99\r\n",
        T0,
    );
    assert_eq!(code(&v[0]), 10071, "{v:?}");
    js.commit(T0);
    assert!(msgs(&js, "B").is_empty(), "{:?}", msgs(&js, "B"));
    // After all that, a good batch still lands (and the taken-back id is free again).
    send(&mut js, "ok", 1, None, "Nats-Msg-Id: same\r\n", T0);
    assert!(send(&mut js, "ok", 2, Some("1"), "", T0).is_empty());
    let acks = js.commit(T0);
    assert_eq!(body(&acks[0])["count"], 2);
}

#[test]
fn in_flight_and_idle_limits() {
    let mut js = js_on(&MemDisk::new(5));
    stream(&mut js, true);
    for i in 0..50 {
        assert_eq!(
            send(&mut js, &format!("f{i}"), 1, None, "", T0),
            [Value::Null]
        );
    }
    let v = send(&mut js, "one-too-many", 1, None, "", T0);
    assert_eq!(code(&v[0]), 10210, "{v:?}");
    assert_eq!(v[0]["error"]["code"], 429);
    // Ten seconds without a message abandon a batch.
    let v = send(&mut js, "f0", 2, Some("1"), "", T0 + 10 * SEC);
    assert_eq!(code(&v[0]), 10176, "{v:?}");
}

#[test]
fn a_batch_cut_short_by_a_crash_is_removed_when_the_stream_opens() {
    let disk = MemDisk::new(6);
    let mut js = js_on(&disk);
    stream(&mut js, true);
    send(&mut js, "whole", 1, None, "", T0);
    send(&mut js, "whole", 2, Some("1"), "", T0);
    js.commit(T0);
    // What a torn write of a second batch leaves: its first two messages, no commit.
    {
        let st = &mut js.streams.get_mut("B").unwrap().stream.store;
        for seq in 1..=2 {
            let h =
                format!("NATS/1.0\r\nNats-Batch-Id: torn\r\nNats-Batch-Sequence: {seq}\r\n\r\n");
            st.store_msg("b.x", h.as_bytes(), b"t", T0).unwrap();
        }
        st.sync().unwrap();
    }
    drop(js);
    let js = js_on(&disk);
    let got = msgs(&js, "B");
    let payloads: Vec<&str> = got.iter().map(|m| m.3.as_str()).collect();
    assert_eq!(payloads, ["m1", "m2"]);
}
