//! Snapshot and restore through [`JetStream`]'s API, on file stores over a [`MemDisk`].

use serde_json::{json, Value};

use crate::jetstream::consumer::Delivery;
use crate::jetstream::factory::DiskFactory;
use crate::jetstream::limits::AccountLimits;
use crate::jetstream::service::{JetStream, JsSettings};
use crate::jetstream::store::{MemDisk, StoredMsg, SyncPolicy};

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;
const INBOX: &str = "_INBOX.snap";

fn js_on(disk: &MemDisk) -> JetStream {
    let d = disk.clone();
    let f = DiskFactory::new(move || d.clone(), SyncPolicy::Always).with_block_size(4096);
    let settings = JsSettings {
        server_name: "S1".into(),
        ..JsSettings::default()
    };
    JetStream::new(settings, Box::new(f), 7)
}

fn body(d: &Delivery) -> Value {
    serde_json::from_slice(&d.payload).unwrap()
}

fn call(js: &mut JetStream, subject: &str, req: &Value, now: u64) -> Vec<Delivery> {
    let payload = if req.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(req).unwrap()
    };
    js.api(subject, Some("_INBOX.r"), &payload, now)
}

fn api(js: &mut JetStream, subject: &str, req: &Value) -> Value {
    let out = call(js, subject, req, T0);
    assert_eq!(out[0].subject, "_INBOX.r");
    body(&out[0])
}

fn code(v: &Value) -> u64 {
    v["error"]["err_code"].as_u64().unwrap_or(0)
}

/// A file stream with 20 messages (some with headers), message 5 deleted, and a durable
/// pull consumer that acked up to 6 and holds 7 and 8 unacknowledged.
fn populate(js: &mut JetStream) {
    let v = api(
        js,
        "$JS.API.STREAM.CREATE.ORDERS",
        &json!({"name": "ORDERS", "subjects": ["orders.>"]}),
    );
    assert_eq!(code(&v), 0, "{v}");
    for i in 1..=20u64 {
        let hdr = if i % 3 == 0 {
            format!("NATS/1.0\r\nX-N: {i}\r\n\r\n")
        } else {
            String::new()
        };
        let payload = format!("payload-{i}-{}", "x".repeat(i as usize * 40));
        js.publish(
            &format!("orders.{}", i % 4),
            None,
            hdr.as_bytes(),
            payload.as_bytes(),
            T0 + i,
        );
    }
    js.commit(T0);
    let v = api(js, "$JS.API.STREAM.MSG.DELETE.ORDERS", &json!({"seq": 5}));
    assert_eq!(v["success"], true, "{v}");
    let v = api(
        js,
        "$JS.API.CONSUMER.DURABLE.CREATE.ORDERS.worker",
        &json!({"stream_name": "ORDERS", "config": {"durable_name": "worker", "ack_policy": "explicit"}}),
    );
    assert_eq!(code(&v), 0, "{v}");
    let got = js.api(
        "$JS.API.CONSUMER.MSG.NEXT.ORDERS.worker",
        Some("_INBOX.pull"),
        br#"{"batch": 7}"#,
        T0,
    );
    let acks: Vec<String> = got.iter().filter_map(|d| d.reply.clone()).collect();
    assert_eq!(acks.len(), 7);
    // Acks 1,2,3,4,6 (sequence 5 is gone); 7 and 8 stay pending.
    for a in &acks[..5] {
        js.ack(a, None, b"+ACK", T0);
    }
}

/// Runs a snapshot to its end, acking each chunk; returns the archive, the chunk count, the
/// largest number of chunks ever unacknowledged, and the end message.
fn snapshot(js: &mut JetStream, req: &Value) -> (Vec<u8>, usize, usize, Delivery) {
    let out = call(js, "$JS.API.STREAM.SNAPSHOT.ORDERS", req, T0);
    let v = body(&out[0]);
    assert_eq!(
        v["type"],
        "io.nats.jetstream.api.v1.stream_snapshot_response"
    );
    assert_eq!(code(&v), 0, "{v}");
    let mut queue: Vec<Delivery> = out.into_iter().filter(|d| d.subject == INBOX).collect();
    let (mut data, mut chunks, mut max_out) = (Vec::new(), 0, 0);
    loop {
        max_out = max_out.max(queue.iter().filter(|d| d.reply.is_some()).count());
        let Some(d) = (!queue.is_empty()).then(|| queue.remove(0)) else {
            panic!("snapshot stalled without an end");
        };
        let Some(ack) = d.reply.clone() else {
            assert!(d.payload.is_empty());
            return (data, chunks, max_out, d);
        };
        data.extend_from_slice(&d.payload);
        chunks += 1;
        let more = js.snapshot_msg(&ack, None, b"", T0);
        queue.extend(more.into_iter().filter(|d| d.subject == INBOX));
    }
}

/// Uploads `chunks` to a restore of ORDERS; returns every chunk's answer and the final one.
fn restore(js: &mut JetStream, chunks: &[&[u8]]) -> (Vec<Vec<Delivery>>, Value) {
    let v = api(
        js,
        "$JS.API.STREAM.RESTORE.ORDERS",
        &json!({"config": {"name": "ORDERS", "subjects": ["orders.>"]}, "state": {}}),
    );
    assert_eq!(
        v["type"],
        "io.nats.jetstream.api.v1.stream_restore_response"
    );
    let subject = v["deliver_subject"].as_str().unwrap().to_owned();
    assert!(subject.starts_with("$JS.SNAPSHOT.RESTORE.ORDERS."), "{v}");
    let mut answers = Vec::new();
    for c in chunks {
        let a = js.snapshot_msg(&subject, Some("_INBOX.c"), c, T0);
        let failed = a.first().is_some_and(|d| !d.payload.is_empty());
        answers.push(a);
        if failed {
            let last = body(&answers.last().unwrap()[0]);
            return (answers, last);
        }
    }
    let end = js.snapshot_msg(&subject, Some("_INBOX.end"), b"", T0);
    assert_eq!(end[0].subject, "_INBOX.end");
    let last = body(&end[0]);
    answers.push(end);
    (answers, last)
}

fn msgs(js: &JetStream) -> Vec<StoredMsg> {
    let s = js.stream("ORDERS").unwrap().store.as_ref();
    let mut seq = 1;
    let mut v = Vec::new();
    while let Ok(m) = s.load_next_msg("", seq) {
        seq = m.seq + 1;
        v.push(m);
    }
    v
}

fn small() -> Value {
    json!({"deliver_subject": INBOX, "chunk_size": 1024, "window_size": 2048})
}

#[test]
fn round_trip_keeps_messages_sequences_and_the_durables_state() {
    let disk = MemDisk::new(3);
    let mut js = js_on(&disk);
    populate(&mut js);
    let before = msgs(&js);
    let info = api(&mut js, "$JS.API.STREAM.INFO.ORDERS", &Value::Null);
    let cinfo = api(&mut js, "$JS.API.CONSUMER.INFO.ORDERS.worker", &Value::Null);
    let (archive, chunks, max_out, end) = snapshot(&mut js, &small());
    assert!(end.headers.is_empty(), "a clean end has no status");
    assert!(chunks > 2, "{chunks} chunks: more than one window");
    assert_eq!(max_out, 2, "window of 2048 bytes / 1024-byte chunks");
    assert!(archive.starts_with(b"NJSSNAP1"));

    let v = api(&mut js, "$JS.API.STREAM.DELETE.ORDERS", &Value::Null);
    assert_eq!(v["success"], true);
    let parts: Vec<&[u8]> = archive.chunks(700).collect();
    let (answers, done) = restore(&mut js, &parts);
    assert!(answers[..parts.len()]
        .iter()
        .all(|a| a.len() == 1 && a[0].payload.is_empty()));
    assert_eq!(
        done["type"],
        "io.nats.jetstream.api.v1.stream_create_response"
    );
    assert_eq!(code(&done), 0, "{done}");
    assert_eq!(done["state"], info["state"]);
    assert_eq!(done["created"], info["created"]);
    assert_eq!(msgs(&js), before);
    let after = api(&mut js, "$JS.API.CONSUMER.INFO.ORDERS.worker", &Value::Null);
    for k in ["num_ack_pending", "num_pending", "config"] {
        assert_eq!(after[k], cinfo[k], "{k}: {after} vs {cinfo}");
    }
    // The sequences are restored; `last_active` is not (Go does not keep it either).
    for k in ["delivered", "ack_floor"] {
        for s in ["consumer_seq", "stream_seq"] {
            assert_eq!(after[k][s], cinfo[k][s], "{k}.{s}: {after} vs {cinfo}");
        }
    }
    // The restored durable resumes after 8 and redelivers 7 and 8 when their ack wait ends.
    let next = js.api(
        "$JS.API.CONSUMER.MSG.NEXT.ORDERS.worker",
        Some("_INBOX.p2"),
        br#"{"batch": 1}"#,
        T0,
    );
    let r = next[0].reply.as_deref().unwrap();
    assert_eq!(r.split('.').nth(5), Some("9"), "{r}");

    // A restart finds the restored stream on disk.
    drop(js);
    let js = js_on(&disk);
    assert_eq!(msgs(&js), before);
    assert_eq!(js.num_consumers(), 1);
}

#[test]
fn no_consumers_and_memory_streams() {
    let mut js = js_on(&MemDisk::new(4));
    populate(&mut js);
    let mut req = small();
    req["no_consumers"] = json!(true);
    let (archive, ..) = snapshot(&mut js, &req);
    api(&mut js, "$JS.API.STREAM.DELETE.ORDERS", &Value::Null);
    let (_, done) = restore(&mut js, &[&archive]);
    assert_eq!(code(&done), 0, "{done}");
    assert_eq!(js.num_consumers(), 0);
    assert_eq!(done["state"]["messages"], 19);
}

#[test]
fn damaged_or_truncated_archives_are_refused_whole() {
    let mut js = js_on(&MemDisk::new(5));
    populate(&mut js);
    let before = msgs(&js);
    let (archive, ..) = snapshot(&mut js, &small());
    api(&mut js, "$JS.API.STREAM.DELETE.ORDERS", &Value::Null);

    // One flipped bit in the middle: the chunk holding it is answered with the error (or
    // the end is, when the bit made a length longer).
    let mut bad = archive.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x10;
    let parts: Vec<&[u8]> = bad.chunks(512).collect();
    let (_, err) = restore(&mut js, &parts);
    assert_eq!(
        err["type"],
        "io.nats.jetstream.api.v1.stream_create_response"
    );
    assert_eq!(code(&err), 10062, "{err}");
    assert!(js.stream("ORDERS").is_none(), "nothing half-restored");

    // Cut short: every chunk is taken, the end is refused.
    let cut = &archive[..archive.len() - 30];
    let (_, err) = restore(&mut js, &[cut]);
    assert_eq!(code(&err), 10062, "{err}");
    assert!(err["error"]["description"]
        .as_str()
        .unwrap()
        .contains("truncated"));
    assert!(js.stream("ORDERS").is_none());

    // Not an archive at all.
    let (_, err) = restore(&mut js, &[b"PK\x03\x04 a zip file"]);
    assert_eq!(code(&err), 10062, "{err}");

    // The name is free again and the real archive restores.
    let (_, done) = restore(&mut js, &[&archive]);
    assert_eq!(code(&done), 0, "{done}");
    assert_eq!(msgs(&js), before);
}

#[test]
fn api_errors() {
    let mut js = js_on(&MemDisk::new(6));
    let v = api(
        &mut js,
        "$JS.API.STREAM.SNAPSHOT.NOPE",
        &json!({"deliver_subject": INBOX}),
    );
    assert_eq!(code(&v), 10059);
    assert_eq!(
        v["type"],
        "io.nats.jetstream.api.v1.stream_snapshot_response"
    );
    populate(&mut js);
    assert_eq!(
        code(&api(
            &mut js,
            "$JS.API.STREAM.SNAPSHOT.ORDERS",
            &Value::Null
        )),
        10003
    );
    let v = api(
        &mut js,
        "$JS.API.STREAM.SNAPSHOT.ORDERS",
        &json!({"deliver_subject": ""}),
    );
    assert_eq!(code(&v), 10015);
    let out = js.api(
        "$JS.API.STREAM.SNAPSHOT.ORDERS",
        Some("_INBOX.r"),
        b"{nope",
        T0,
    );
    assert_eq!(code(&body(&out[0])), 10025);

    let cfg = json!({"config": {"name": "ORDERS", "subjects": ["orders.>"]}});
    let v = api(&mut js, "$JS.API.STREAM.RESTORE.ORDERS", &cfg);
    assert_eq!(code(&v), 10130, "{v}");
    assert_eq!(
        v["error"]["description"],
        "stream name already in use, cannot restore"
    );
    assert_eq!(
        v["type"],
        "io.nats.jetstream.api.v1.stream_restore_response"
    );
    assert_eq!(
        code(&api(&mut js, "$JS.API.STREAM.RESTORE.X", &Value::Null)),
        10003
    );
    let v = api(
        &mut js,
        "$JS.API.STREAM.RESTORE.X",
        &json!({"config": {"name": "Y"}}),
    );
    assert_eq!(code(&v), 10056);
    // Another restore of a name being restored, and a create of it meanwhile, are refused.
    let v = api(
        &mut js,
        "$JS.API.STREAM.RESTORE.NEW",
        &json!({"config": {"name": "NEW"}}),
    );
    assert!(v["deliver_subject"].is_string(), "{v}");
    let v = api(
        &mut js,
        "$JS.API.STREAM.RESTORE.NEW",
        &json!({"config": {"name": "NEW"}}),
    );
    assert_eq!(code(&v), 10130);
    let v = api(
        &mut js,
        "$JS.API.STREAM.CREATE.NEW",
        &json!({"name": "NEW"}),
    );
    assert_eq!(code(&v), 10058);
    // It stalls and goes; the name is free then.
    js.tick(T0 + 6 * SEC);
    let v = api(
        &mut js,
        "$JS.API.STREAM.CREATE.NEW",
        &json!({"name": "NEW"}),
    );
    assert_eq!(code(&v), 0, "{v}");
}

#[test]
fn restore_respects_account_storage() {
    let mut src = js_on(&MemDisk::new(7));
    populate(&mut src);
    let (archive, ..) = snapshot(&mut src, &small());
    let mut js = js_on(&MemDisk::new(8));
    js.set_account_limits(AccountLimits {
        max_storage: 4000,
        ..AccountLimits::default()
    });
    let parts: Vec<&[u8]> = archive.chunks(1024).collect();
    let (_, err) = restore(&mut js, &parts);
    assert_eq!(code(&err), 10047, "{err}");
    assert!(js.stream("ORDERS").is_none());

    // The server's file limit, with what the other accounts hold.
    let d = MemDisk::new(11);
    let f = DiskFactory::new(move || d.clone(), SyncPolicy::Always);
    let settings = JsSettings {
        max_file: Some(1 << 20),
        ..JsSettings::default()
    };
    let mut js = JetStream::new(settings, Box::new(f), 1);
    js.set_other_usage(crate::jetstream::limits::ServerUsage {
        storage: (1 << 20) - 3000,
        ..Default::default()
    });
    let (_, err) = restore(&mut js, &parts);
    assert_eq!(code(&err), 10023, "{err}");
    assert!(js.stream("ORDERS").is_none());
}

#[test]
fn a_silent_receiver_ends_the_snapshot_with_408() {
    let mut js = js_on(&MemDisk::new(9));
    populate(&mut js);
    let out = call(&mut js, "$JS.API.STREAM.SNAPSHOT.ORDERS", &small(), T0);
    let sent = out.iter().filter(|d| d.subject == INBOX).count();
    assert_eq!(sent, 2);
    assert!(js.tick(T0 + 2 * SEC).iter().all(|d| d.subject != INBOX));
    let out = js.tick(T0 + 6 * SEC);
    let end: Vec<&Delivery> = out.iter().filter(|d| d.subject == INBOX).collect();
    assert_eq!(end.len(), 1);
    assert!(end[0].payload.is_empty());
    assert_eq!(end[0].headers, b"NATS/1.0 408 No Flow Response\r\n\r\n");
    let adv: Vec<&Delivery> = out
        .iter()
        .filter(|d| d.subject == "$JS.EVENT.ADVISORY.STREAM.SNAPSHOT_COMPLETE.ORDERS")
        .collect();
    assert_eq!(adv.len(), 1);
    assert_eq!(
        body(adv[0])["type"],
        "io.nats.jetstream.advisory.v1.snapshot_complete"
    );
}

#[test]
fn every_cut_and_every_flipped_byte_is_refused() {
    let mut js = js_on(&MemDisk::new(10));
    let v = api(
        &mut js,
        "$JS.API.STREAM.CREATE.ORDERS",
        &json!({"name": "ORDERS", "subjects": ["orders.>"], "storage": "memory"}),
    );
    assert_eq!(code(&v), 0);
    for i in 0..3 {
        js.publish("orders.a", None, b"NATS/1.0\r\nA: b\r\n\r\n", &[i; 5], T0);
    }
    js.commit(T0);
    let (archive, ..) = snapshot(&mut js, &json!({"deliver_subject": INBOX}));
    api(&mut js, "$JS.API.STREAM.DELETE.ORDERS", &Value::Null);
    for cut in 0..archive.len() {
        let (_, err) = restore(&mut js, &[&archive[..cut]]);
        assert_eq!(code(&err), 10062, "cut at {cut}: {err}");
        assert!(js.stream("ORDERS").is_none());
    }
    for at in 0..archive.len() {
        let mut bad = archive.clone();
        bad[at] ^= 0x01;
        let (_, err) = restore(&mut js, &[&bad]);
        assert_eq!(code(&err), 10062, "bit flipped at {at}: {err}");
        assert!(js.stream("ORDERS").is_none());
    }
    let (_, done) = restore(&mut js, &[&archive]);
    assert_eq!(done["state"]["messages"], 3, "{done}");
}

#[test]
fn a_restart_in_the_middle_of_a_restore_leaves_nothing_behind() {
    let disk = MemDisk::new(12);
    let mut js = js_on(&disk);
    populate(&mut js);
    let (archive, ..) = snapshot(&mut js, &small());
    api(&mut js, "$JS.API.STREAM.DELETE.ORDERS", &Value::Null);
    let v = api(
        &mut js,
        "$JS.API.STREAM.RESTORE.ORDERS",
        &json!({"config": {"name": "ORDERS", "subjects": ["orders.>"]}}),
    );
    let subject = v["deliver_subject"].as_str().unwrap().to_owned();
    let half = &archive[..archive.len() / 2];
    let a = js.snapshot_msg(&subject, Some("_INBOX.c"), half, T0);
    assert!(a[0].payload.is_empty());
    drop(js);
    // After the restart the half-written stream is gone, and a new stream of that name
    // starts empty.
    let mut js = js_on(&disk);
    assert!(js.stream("ORDERS").is_none());
    let v = api(
        &mut js,
        "$JS.API.STREAM.CREATE.ORDERS",
        &json!({"name": "ORDERS", "subjects": ["orders.>"]}),
    );
    assert_eq!(code(&v), 0, "{v}");
    assert_eq!(v["state"]["messages"], 0, "{v}");
    assert_eq!(v["state"]["last_seq"], 0, "{v}");
}

#[test]
fn restored_messages_keep_their_ttl() {
    let mut js = js_on(&MemDisk::new(14));
    let v = api(
        &mut js,
        "$JS.API.STREAM.CREATE.ORDERS",
        &json!({"name": "ORDERS", "subjects": ["orders.>"], "allow_msg_ttl": true}),
    );
    assert_eq!(code(&v), 0, "{v}");
    js.publish(
        "orders.a",
        None,
        b"NATS/1.0\r\nNats-TTL: 2s\r\n\r\n",
        b"short",
        T0,
    );
    js.publish("orders.b", None, b"", b"long", T0);
    js.commit(T0);
    let (archive, ..) = snapshot(&mut js, &json!({"deliver_subject": INBOX}));
    api(&mut js, "$JS.API.STREAM.DELETE.ORDERS", &Value::Null);
    let v = api(
        &mut js,
        "$JS.API.STREAM.RESTORE.ORDERS",
        &json!({"config": {"name": "ORDERS", "subjects": ["orders.>"], "allow_msg_ttl": true}}),
    );
    let subject = v["deliver_subject"].as_str().unwrap().to_owned();
    js.snapshot_msg(&subject, Some("_INBOX.c"), &archive, T0);
    let done = js.snapshot_msg(&subject, Some("_INBOX.c"), b"", T0);
    assert_eq!(body(&done[0])["state"]["messages"], 2);
    js.tick(T0 + 3 * SEC);
    let left: Vec<String> = msgs(&js).into_iter().map(|m| m.subject).collect();
    assert_eq!(left, ["orders.b"]);
}

#[test]
fn deleting_the_stream_ends_its_snapshot_with_500() {
    let mut js = js_on(&MemDisk::new(15));
    populate(&mut js);
    let out = call(&mut js, "$JS.API.STREAM.SNAPSHOT.ORDERS", &small(), T0);
    let first = out.iter().find(|d| d.subject == INBOX).unwrap();
    let ack = first.reply.clone().unwrap();
    api(&mut js, "$JS.API.STREAM.DELETE.ORDERS", &Value::Null);
    let out = js.snapshot_msg(&ack, None, b"", T0);
    let end: Vec<&Delivery> = out.iter().filter(|d| d.subject == INBOX).collect();
    assert_eq!(end.len(), 1, "{end:?}");
    assert!(end[0].payload.is_empty() && end[0].reply.is_none());
    assert_eq!(end[0].headers, b"NATS/1.0 500 stream deleted\r\n\r\n");
    // Nothing is left running: later ticks send nothing.
    assert!(js.tick(T0 + 10 * SEC).iter().all(|d| d.subject != INBOX));
}
