use super::*;
use crate::jetstream::api::StreamConfig;
use crate::jetstream::store::{FileStore, FileStoreConfig, MemDisk};
use crate::jetstream::stream::{check_config, store_config};
use serde_json::json;

fn replica(cfg: StreamConfig) -> ReplicatedStream {
    let store = FileStore::open(
        MemDisk::new(0),
        "msgs",
        store_config(&cfg),
        FileStoreConfig::default(),
    )
    .unwrap();
    ReplicatedStream::new(cfg, Box::new(store), 1)
}

fn cfg(v: serde_json::Value) -> StreamConfig {
    check_config(serde_json::from_value(v).unwrap()).unwrap()
}

fn origin_with(n: u64) -> ReplicatedStream {
    let mut o = replica(cfg(json!({"name": "O", "subjects": ["o.>"]})));
    for i in 0..n {
        let subj = if i % 2 == 0 { "o.even" } else { "o.odd" };
        let (_, entries) = o
            .leader_publish(subj, b"", format!("m{i}").as_bytes(), 10 + i)
            .unwrap();
        assert!(!entries.is_empty());
    }
    o
}

/// Applies what a leader proposed to a follower replica.
fn follow(f: &mut ReplicatedStream, entries: &[StreamEntry], index: &mut u64) {
    for e in entries {
        *index += 1;
        let bytes = e.encode();
        let got = f.apply(*index, &StreamEntry::decode(&bytes).unwrap());
        assert!(matches!(got, Applied::Done), "{got:?}");
    }
}

use crate::jetstream::cluster::Applied;

#[test]
fn reads_stop_at_the_committed_sequence_and_round_trip() {
    let o = origin_with(10);
    let req = ReadRequest {
        account: "A".into(),
        stream: "O".into(),
        next: 3,
        start_time: None,
        filter: String::new(),
    };
    let r = read_origin(o.stream.store.as_ref(), 6, &req);
    assert_eq!(
        r.msgs.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [3, 4, 5, 6]
    );
    assert_eq!((r.cursor, r.last_seq), (7, 6));
    assert_eq!(ReadReply::decode(&r.encode()), Some(r));
    let empty = ReadReply {
        found: false,
        ..ReadReply::default()
    };
    assert_eq!(ReadReply::decode(&empty.encode()), Some(empty));
    assert_eq!(ReadReply::decode(b"x"), None);
    // A start time picks the first message stored at or after it.
    let by_time = ReadRequest {
        next: 0,
        start_time: Some(15),
        ..req
    };
    let r = read_origin(o.stream.store.as_ref(), 10, &by_time);
    assert_eq!(r.msgs.first().map(|m| m.seq), Some(6));
}

#[test]
fn a_mirror_keeps_origin_sequences_on_every_replica() {
    let o = origin_with(5);
    let mcfg = cfg(json!({"name": "M", "mirror": {"name": "O"}}));
    let mut leader = replica(mcfg.clone());
    let mut follower = replica(mcfg.clone());
    let mut index = 0;
    let cur = cursors(&mut leader);
    assert_eq!(cur.len(), 1);
    assert_eq!(cur[0].request.next, 1);
    let read = read_origin(o.stream.store.as_ref(), 5, &cur[0].request);
    let (entries, _, more) = store_read(&mut leader, &cur[0], read.clone(), 100);
    assert!(!more);
    follow(&mut follower, &entries, &mut index);
    assert_eq!(follower.stream.store.state().last_seq, 5);
    // The same read again is stale: nothing stored twice.
    let (again, _, _) = store_read(&mut leader, &cur[0], read, 100);
    assert!(again.is_empty());
    // A new leader (the follower) resumes after its last sequence.
    let cur = cursors(&mut follower);
    assert_eq!(cur[0].request.next, 6);
}

#[test]
fn a_source_resumes_after_its_own_last_copy_on_a_new_leader() {
    let o = origin_with(6);
    let scfg = cfg(json!({"name": "S", "subjects": ["s.>"],
        "sources": [{"name": "O", "filter_subject": "o.even"}]}));
    let mut leader = replica(scfg.clone());
    let mut follower = replica(scfg.clone());
    let mut index = 0;
    // A local publish first, so sequences differ from the origin's.
    let (_, e) = leader.leader_publish("s.x", b"", b"own", 1).unwrap();
    follow(&mut follower, &e, &mut index);
    let cur = cursors(&mut leader);
    assert_eq!(cur[0].request.filter, "o.even");
    let read = read_origin(o.stream.store.as_ref(), 3, &cur[0].request);
    let (entries, _, _) = store_read(&mut leader, &cur[0], read, 100);
    follow(&mut follower, &entries, &mut index);
    // Origin 1 and 3 are the even ones so far.
    assert_eq!(follower.stream.store.state().msgs, 3);
    let cur = cursors(&mut follower);
    assert_eq!(cur[0].request.next, 4, "after origin 3, the last copied");
    let read = read_origin(o.stream.store.as_ref(), 6, &cur[0].request);
    let (entries, _, _) = store_read(&mut follower, &cur[0], read, 200);
    assert_eq!(entries.len(), 1);
    assert_eq!(follower.stream.store.state().msgs, 4);
}
