//! The duplicate window across restarts, through [`JetStream`]: a client that never saw its
//! PubAcks publishes again with the same `Nats-Msg-Id`s after a crash or a clean stop, and
//! every retry inside `duplicate_window` must be answered as a duplicate of the original.

use serde_json::{json, Value};

use super::super::consumer::Delivery;
use super::super::factory::DiskFactory;
use super::super::service::{JetStream, JsSettings};
use super::super::store::{CrashMode, DiskError, DiskOp, MemDisk, SyncPolicy};

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;
const MIN: u64 = 60 * SEC;

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

fn api(js: &mut JetStream, subject: &str, req: &Value, now: u64) -> Value {
    let payload = if req.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(req).unwrap()
    };
    let out = js.api(subject, Some("_INBOX.r"), &payload, now);
    body(&out[0])
}

fn create(js: &mut JetStream, cfg: Value) {
    let name = cfg["name"].as_str().unwrap().to_owned();
    let v = api(js, &format!("$JS.API.STREAM.CREATE.{name}"), &cfg, T0);
    assert!(v.get("error").is_none(), "{v}");
}

fn id_hdr(id: &str) -> String {
    format!("NATS/1.0\r\nNats-Msg-Id: {id}\r\n\r\n")
}

/// Publishes ids `id0..idN` at `now` and commits; returns the PubAcks in order.
fn publish_ids(js: &mut JetStream, subject: &str, n: usize, now: u64) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend(js.publish(
            subject,
            Some("_INBOX.ack"),
            id_hdr(&format!("id{i}")).as_bytes(),
            format!("m{i}").as_bytes(),
            now,
        ));
    }
    out.extend(js.commit(now));
    out.iter()
        .filter(|d| d.subject == "_INBOX.ack")
        .map(body)
        .collect()
}

fn msgs(js: &JetStream, name: &str) -> u64 {
    js.stream(name).unwrap().store.state().msgs
}

/// Restarts over the same disk: a power cut (unsynced bytes lost) or a clean stop.
fn restart(js: JetStream, disk: &MemDisk, crash: bool) -> JetStream {
    drop(js);
    if crash {
        disk.crash(CrashMode::LoseUnsynced);
    }
    js_on(disk)
}

#[test]
fn retries_after_a_restart_are_duplicates() {
    for crash in [true, false] {
        let disk = MemDisk::new(21);
        let mut js = js_on(&disk);
        create(
            &mut js,
            json!({"name": "D", "subjects": ["d"], "duplicate_window": 10 * MIN}),
        );
        let first = publish_ids(&mut js, "d", 50, T0);
        assert_eq!(first.len(), 50);
        // The acks went out, but the client is taken never to have seen them.
        let mut js = restart(js, &disk, crash);
        let again = publish_ids(&mut js, "d", 50, T0 + MIN);
        assert_eq!(again.len(), 50);
        for (i, a) in again.iter().enumerate() {
            assert_eq!(
                *a,
                json!({"stream": "D", "seq": i as u64 + 1, "duplicate": true}),
                "crash {crash}"
            );
        }
        assert_eq!(msgs(&js, "D"), 50, "crash {crash}");
    }
}

#[test]
fn the_rebuilt_window_ends_where_it_would_have() {
    let disk = MemDisk::new(22);
    let mut js = js_on(&disk);
    create(
        &mut js,
        json!({"name": "D", "subjects": ["d"], "duplicate_window": 10 * MIN}),
    );
    // id0..id4 at T0, then id0..id9 (id5..id9 new) five minutes later.
    publish_ids(&mut js, "d", 5, T0);
    publish_ids(&mut js, "d", 10, T0 + 5 * MIN);
    assert_eq!(msgs(&js, "D"), 10);
    let mut js = restart(js, &disk, true);
    // 12 minutes after T0: id0..id4 (stored at T0) left the window, id5..id9 did not.
    let acks = publish_ids(&mut js, "d", 10, T0 + 12 * MIN);
    // Duplicates are answered at once, new messages at the commit.
    let seqs = |dup: bool| -> Vec<u64> {
        acks.iter()
            .filter(|a| (a["duplicate"] == true) == dup)
            .map(|a| a["seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(seqs(true), [6, 7, 8, 9, 10], "{acks:?}");
    assert_eq!(seqs(false), [11, 12, 13, 14, 15], "{acks:?}");
    assert_eq!(msgs(&js, "D"), 15);
}

#[test]
fn expected_last_msg_id_survives_a_restart() {
    let disk = MemDisk::new(23);
    let mut js = js_on(&disk);
    create(&mut js, json!({"name": "D", "subjects": ["d"]}));
    publish_ids(&mut js, "d", 3, T0);
    let mut js = restart(js, &disk, false);
    let h = "NATS/1.0\r\nNats-Expected-Last-Msg-Id: id2\r\n\r\n";
    js.publish("d", Some("_INBOX.ack"), h.as_bytes(), b"x", T0 + SEC);
    let acks = js.commit(T0 + SEC);
    assert_eq!(body(&acks[0]), json!({"stream": "D", "seq": 4}));
}

#[test]
fn an_unsynced_publish_lost_in_a_crash_is_stored_on_retry() {
    let disk = MemDisk::new(24);
    let mut js = js_on(&disk);
    create(&mut js, json!({"name": "D", "subjects": ["d"]}));
    publish_ids(&mut js, "d", 2, T0);
    // id9 is appended but the power goes before its group commit: it is gone, so the
    // retry is a new message, not a duplicate of something that no longer exists.
    js.publish("d", Some("_INBOX.ack"), id_hdr("id9").as_bytes(), b"x", T0);
    let mut js = restart(js, &disk, true);
    assert_eq!(msgs(&js, "D"), 2);
    js.publish("d", Some("_INBOX.ack"), id_hdr("id9").as_bytes(), b"x", T0);
    let acks = js.commit(T0);
    assert_eq!(body(&acks[0]), json!({"stream": "D", "seq": 3}));
}

#[test]
fn sourced_and_mirrored_ids_are_in_the_rebuilt_window() {
    let disk = MemDisk::new(25);
    let mut js = js_on(&disk);
    create(&mut js, json!({"name": "O", "subjects": ["o"]}));
    // A sourcing stream keeps a window only when asked to (Go 2.10).
    create(
        &mut js,
        json!({"name": "S", "subjects": ["s"], "duplicate_window": 10 * MIN,
               "sources": [{"name": "O"}]}),
    );
    create(
        &mut js,
        json!({"name": "M", "mirror": {"name": "O"}, "duplicate_window": 10 * MIN}),
    );
    publish_ids(&mut js, "o", 3, T0);
    js.commit(T0);
    assert_eq!(msgs(&js, "S"), 3);
    assert_eq!(msgs(&js, "M"), 3);
    let mut js = restart(js, &disk, true);
    // The mirror knows its origin's ids as it did before the restart.
    assert_eq!(js.stream("M").unwrap().dedupe.check("id1"), Some(2));
    // A publisher retrying into the sourcing stream an id that came through the source.
    let acks = publish_ids(&mut js, "s", 1, T0 + SEC);
    assert_eq!(acks[0], json!({"stream": "S", "seq": 1, "duplicate": true}));
    js.commit(T0 + SEC);
    assert_eq!(msgs(&js, "S"), 3);
}

#[test]
fn a_restored_stream_rebuilds_its_window() {
    let mut js = js_on(&MemDisk::new(26));
    let cfg = json!({"name": "D", "subjects": ["d"], "duplicate_window": 10 * MIN});
    create(&mut js, cfg.clone());
    publish_ids(&mut js, "d", 4, T0);
    let req = serde_json::to_vec(&json!({"deliver_subject": "_INBOX.snap"})).unwrap();
    let mut queue = js.api("$JS.API.STREAM.SNAPSHOT.D", Some("_INBOX.r"), &req, T0);
    let v = body(&queue[0]);
    assert!(v.get("error").is_none(), "{v}");
    // Drain the snapshot: ack each chunk until the empty end message.
    let mut archive = Vec::new();
    let mut pending = Vec::new();
    for _ in 0..10_000 {
        pending.extend(queue.drain(..).filter(|d| d.subject == "_INBOX.snap"));
        let Some(d) = (!pending.is_empty()).then(|| pending.remove(0)) else {
            break;
        };
        match d.reply {
            Some(ack) => {
                archive.extend_from_slice(&d.payload);
                queue = js.snapshot_msg(&ack, None, b"", T0);
            }
            None => break,
        }
    }
    assert!(!archive.is_empty());
    api(&mut js, "$JS.API.STREAM.DELETE.D", &Value::Null, T0);
    let v = api(
        &mut js,
        "$JS.API.STREAM.RESTORE.D",
        &json!({"config": cfg}),
        T0,
    );
    let subject = v["deliver_subject"].as_str().unwrap().to_owned();
    js.snapshot_msg(&subject, Some("_INBOX.c"), &archive, T0);
    let done = js.snapshot_msg(&subject, Some("_INBOX.c"), b"", T0);
    assert_eq!(
        body(&done[0])["state"]["messages"],
        4,
        "{:?}",
        body(&done[0])
    );
    let acks = publish_ids(&mut js, "d", 4, T0 + MIN);
    assert!(acks.iter().all(|a| a["duplicate"] == true), "{acks:?}");
    assert_eq!(msgs(&js, "D"), 4);
}

#[test]
fn a_duplicate_of_an_unsynced_message_waits_for_its_sync() {
    let disk = MemDisk::new(27);
    let mut js = js_on(&disk);
    create(&mut js, json!({"name": "D", "subjects": ["d"]}));
    let h = id_hdr("a");
    assert!(js
        .publish("d", Some("_INBOX.1"), h.as_bytes(), b"x", T0)
        .is_empty());
    // Not answered before the original is durable.
    assert!(js
        .publish("d", Some("_INBOX.2"), h.as_bytes(), b"x", T0)
        .is_empty());
    let acks: Vec<(String, Value)> = js
        .commit(T0)
        .iter()
        .map(|d| (d.subject.clone(), body(d)))
        .collect();
    assert_eq!(
        acks,
        [
            ("_INBOX.1".to_owned(), json!({"stream": "D", "seq": 1})),
            (
                "_INBOX.2".to_owned(),
                json!({"stream": "D", "seq": 1, "duplicate": true})
            ),
        ]
    );
    // The original's sync fails: its duplicate is an error too, never a "duplicate".
    let h = id_hdr("b");
    js.publish("d", Some("_INBOX.3"), h.as_bytes(), b"y", T0);
    js.publish("d", Some("_INBOX.4"), h.as_bytes(), b"y", T0);
    disk.fail_next(DiskOp::Sync, DiskError::Io("EIO".into()));
    let out = js.commit(T0);
    assert_eq!(out.len(), 2, "{out:?}");
    for d in &out {
        assert!(body(d).get("error").is_some(), "{}", body(d));
    }
}
