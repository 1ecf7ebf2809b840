//! A clustered stream's snapshot and restore: the leader's replica sent as an archive under
//! flow control, then loaded into a fresh leader whose entries, applied to a follower, give
//! the same messages (sequences, times, gaps, headers) and the same durable's state.

use serde_json::json;

use super::replica::{ReplicaRestore, ReplicaSnapshot};
use crate::jetstream::cluster::entry::StreamEntry;
use crate::jetstream::cluster::{Applied, ReplicatedStream};
use crate::jetstream::consumer::{self, AckKind};
use crate::jetstream::store::MemStore;
use crate::jetstream::stream::{check_config, store_config};

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn replica() -> ReplicatedStream {
    let cfg = check_config(
        serde_json::from_value(json!({"name": "S", "subjects": ["s.>"], "storage": "memory"}))
            .unwrap(),
    )
    .unwrap();
    let store = Box::new(MemStore::new(store_config(&cfg)));
    ReplicatedStream::new(cfg, store, T0)
}

/// Twelve messages (some with headers, the third and the last deleted) and a durable that
/// got five and acked the first two.
fn populated() -> ReplicatedStream {
    // Not leading: a leader's consumers hand out only what committed, and nothing commits
    // here.
    let mut l = replica();
    let ccfg = consumer::check_config(
        serde_json::from_value(json!({"durable_name": "D", "deliver_subject": "dlv.D",
            "ack_policy": "explicit", "max_ack_pending": 5}))
        .unwrap(),
        &["s.>".to_owned()],
    )
    .unwrap();
    l.leader_create_consumer("D", ccfg, T0);
    for i in 1..=12u64 {
        let h = if i % 4 == 0 {
            b"NATS/1.0\r\nX-N: 1\r\n\r\n".to_vec()
        } else {
            Vec::new()
        };
        let body = "x".repeat(i as usize * 100);
        l.leader_publish(&format!("s.{i}"), &h, body.as_bytes(), T0 + i * SEC)
            .unwrap();
    }
    l.leader_delete(3);
    l.leader_delete(12);
    let c = l.consumers.get_mut("D").unwrap();
    c.set_active(true, T0 + 20 * SEC);
    let got = c.pump(l.stream.store.as_ref(), T0 + 20 * SEC);
    assert_eq!(got.len(), 5);
    c.on_ack(1, AckKind::Ack, T0 + 21 * SEC);
    c.on_ack(2, AckKind::Ack, T0 + 21 * SEC);
    l
}

/// The archive of `l` as a receiver acking every chunk gets it.
fn archive(l: &ReplicatedStream) -> Vec<u8> {
    let req = json!({"deliver_subject": "inbox", "chunk_size": 1024, "window_size": 2048});
    let (mut snap, answer) =
        ReplicaSnapshot::start(l, "S", req.to_string().as_bytes(), "ID", T0).unwrap();
    assert_eq!(answer["state"]["messages"], 10, "{answer}");
    assert_eq!(answer["state"]["last_seq"], 12, "{answer}");
    assert!(snap.ack_subject().starts_with("$JS.SNAPSHOT.ACK.S.ID"));
    let mut data = Vec::new();
    for _ in 0..1000 {
        let out = snap.pump(Some(l));
        for d in &out {
            assert_eq!(d.subject, "inbox");
            if d.payload.is_empty() {
                assert!(d.headers.is_empty() && d.reply.is_none(), "a clean end");
                assert!(snap.is_done());
                return data;
            }
            data.extend_from_slice(&d.payload);
        }
        assert!(snap.window_full(), "a pump fills the window");
        for _ in &out {
            snap.handle_ack(T0);
        }
    }
    panic!("the archive never ended");
}

/// A stored message: sequence, time, subject, headers, payload.
type Msg = (u64, u64, String, Vec<u8>, Vec<u8>);

fn messages(r: &ReplicatedStream) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut seq = 0;
    while let Ok(m) = r.stream.store.load_next_msg("", seq) {
        out.push((
            m.seq,
            m.ts,
            m.subject,
            m.headers.to_vec(),
            m.payload.to_vec(),
        ));
        seq = m.seq + 1;
    }
    out
}

#[test]
fn a_restored_leader_and_its_followers_hold_what_was_snapshotted() {
    let src = populated();
    let data = archive(&src);
    let mut leader = replica();
    leader.set_leading(true);
    let mut job = ReplicaRestore::default();
    let mut entries = Vec::new();
    let mut announced = Vec::new();
    for part in data.chunks(700) {
        entries.extend(job.apply_chunk(&mut leader, part).unwrap());
        announced.extend(job.new_consumers().into_iter().map(|(n, _)| n));
    }
    assert_eq!(announced, ["D"]);
    entries.extend(job.finish(&mut leader).unwrap());
    assert_eq!(job.bytes(), data.len() as u64);

    assert_eq!(messages(&leader), messages(&src));
    let (a, b) = (leader.stream.store.state(), src.stream.store.state());
    assert_eq!(
        (a.msgs, a.first_seq, a.last_seq),
        (b.msgs, b.first_seq, b.last_seq)
    );
    let state = |r: &ReplicatedStream| r.consumers["D"].delivery_state();
    assert_eq!(state(&leader), state(&src));

    // A follower applying the entries ends the same.
    let mut follower = replica();
    for (i, e) in entries.iter().enumerate() {
        let e = StreamEntry::decode(&e.encode()).unwrap();
        let applied = follower.apply(i as u64 + 1, &e);
        assert!(matches!(applied, Applied::Done), "entry {e:?}: {applied:?}");
    }
    assert_eq!(messages(&follower), messages(&src));
    assert_eq!(follower.stream.store.state().last_seq, 12);
    assert_eq!(state(&follower), state(&src));
}

#[test]
fn a_damaged_or_truncated_archive_fails_the_restore() {
    let data = archive(&populated());
    let mut bad = data.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 8] {
        *b ^= 0x5a;
    }
    let mut job = ReplicaRestore::default();
    let e = job.apply_chunk(&mut replica(), &bad).unwrap_err();
    assert_eq!(e.err_code, 10062);
    assert!(e.description.starts_with("restore failed: "), "{e:?}");

    let mut r = replica();
    let mut job = ReplicaRestore::default();
    job.apply_chunk(&mut r, &data[..data.len() - 10]).unwrap();
    let e = job.finish(&mut r).unwrap_err();
    assert_eq!(e.description, "restore failed: snapshot truncated");

    // An empty body is a bad request, and the config comes from the request.
    let e = ReplicaRestore::request_config("S", b"  ").unwrap_err();
    assert_eq!(e.err_code, 10003);
    let cfg = ReplicaRestore::request_config("S", br#"{"config": {"subjects": ["s.>"]}}"#).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&cfg).unwrap();
    assert_eq!(v["name"], "S");
}
