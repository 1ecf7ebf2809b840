//! The meta group machine: each entry's effects, refusals, replays, the entry and snapshot
//! encodings, and restore.

use serde_json::json;

use super::codec::VERSION;
use super::meta::StreamRecord;
use super::*;
use crate::jetstream::api::{ConsumerConfig, StreamConfig};

const T0: u64 = 1_700_000_000_000_000_000;

fn cfg(name: &str) -> StreamConfig {
    serde_json::from_value(
        json!({"name": name, "subjects": [format!("{name}.>")], "num_replicas": 3}),
    )
    .unwrap()
}

fn group(name: &str, peers: &[&str]) -> RaftGroup {
    RaftGroup {
        name: name.into(),
        peers: peers.iter().map(|p| (*p).to_owned()).collect(),
        storage: "file".into(),
        cluster: "C1".into(),
        preferred: String::new(),
    }
}

fn req(subject: &str) -> Option<Request> {
    Some(Request {
        account: "A".into(),
        server: "n1".into(),
        subject: subject.into(),
        reply: "_INBOX.1".into(),
    })
}

fn sa(name: &str, peers: &[&str]) -> StreamAssignment {
    StreamAssignment {
        account: "A".into(),
        created: T0,
        config: cfg(name),
        group: group(&format!("S-{name}"), peers),
        request: req(&format!("$JS.API.STREAM.CREATE.{name}")),
    }
}

fn ca(stream: &str, name: &str, peers: &[&str]) -> ConsumerAssignment {
    ConsumerAssignment {
        account: "A".into(),
        stream: stream.into(),
        name: name.into(),
        created: T0,
        config: ConsumerConfig {
            durable_name: Some(name.into()),
            ack_policy: "explicit".into(),
            ..ConsumerConfig::default()
        },
        group: group(&format!("C-{name}"), peers),
        request: None,
    }
}

fn answer(fx: &[MetaEffect]) -> Option<&Answer> {
    fx.iter().rev().find_map(|e| match e {
        MetaEffect::Respond { answer, .. } => Some(answer),
        _ => None,
    })
}

fn err_code(fx: &[MetaEffect]) -> u16 {
    match answer(fx) {
        Some(Answer::Err(e)) => e.err_code,
        other => panic!("expected an error answer, got {other:?}"),
    }
}

#[test]
fn assign_stream_starts_a_replica_only_on_its_peers() {
    let mut m1 = MetaState::new("p1");
    let mut m4 = MetaState::new("p4");
    let e = MetaEntry::AssignStream(sa("ORDERS", &["p1", "p2", "p3"]));
    let fx = m1.apply(1, e.clone());
    assert!(matches!(&fx[0], MetaEffect::StartStream(a) if a.config.name == "ORDERS"));
    assert_eq!(answer(&fx), Some(&Answer::Ok));
    let fx = m4.apply(1, e);
    assert_eq!(fx.len(), 1, "{fx:?}");
    assert_eq!(answer(&fx), Some(&Answer::Ok));
    assert!(m4.stream("A", "ORDERS").is_some());
}

#[test]
fn assign_stream_same_config_is_ok_other_config_is_name_in_use() {
    let mut m = MetaState::new("p1");
    m.apply(1, MetaEntry::AssignStream(sa("S", &["p1"])));
    let fx = m.apply(2, MetaEntry::AssignStream(sa("S", &["p1"])));
    assert_eq!(fx.len(), 1, "no second start: {fx:?}");
    assert_eq!(answer(&fx), Some(&Answer::Ok));
    let mut other = sa("S", &["p1"]);
    other.config.max_msgs = 10;
    let fx = m.apply(3, MetaEntry::AssignStream(other));
    assert_eq!(err_code(&fx), 10058);
    assert_eq!(m.stream("A", "S").unwrap().assignment.config.max_msgs, -1);
}

#[test]
fn update_stream_starts_updates_and_stops_by_membership() {
    let mut m = MetaState::new("p3");
    m.apply(1, MetaEntry::AssignStream(sa("S", &["p1", "p2"])));
    m.apply(2, MetaEntry::AssignConsumer(ca("S", "D", &["p1", "p2"])));
    // Scale up onto p3: p3 starts the stream.
    let fx = m.apply(3, MetaEntry::UpdateStream(sa("S", &["p1", "p2", "p3"])));
    assert!(matches!(&fx[0], MetaEffect::StartStream(_)), "{fx:?}");
    let mut up = sa("S", &["p1", "p2", "p3"]);
    up.config.max_msgs = 5;
    let fx = m.apply(4, MetaEntry::UpdateStream(up));
    assert!(matches!(&fx[0], MetaEffect::UpdateStream(a) if a.config.max_msgs == 5));
    // Scale down off p3: p3 stops and deletes its copy (an explicit entry said so).
    let fx = m.apply(5, MetaEntry::UpdateStream(sa("S", &["p1"])));
    assert_eq!(
        fx[0],
        MetaEffect::StopStream {
            account: "A".into(),
            stream: "S".into(),
            delete: true
        }
    );
    // The consumer follows the stream's peers.
    let rec = m.stream("A", "S").unwrap();
    assert_eq!(rec.consumers["D"].group.peers, vec!["p1".to_owned()]);
}

#[test]
fn update_or_remove_of_an_unknown_stream_is_not_found_and_changes_nothing() {
    let mut m = MetaState::new("p1");
    let fx = m.apply(1, MetaEntry::UpdateStream(sa("S", &["p1"])));
    assert_eq!(err_code(&fx), 10059);
    let fx = m.apply(
        2,
        MetaEntry::RemoveStream {
            account: "A".into(),
            stream: "S".into(),
            request: req("$JS.API.STREAM.DELETE.S"),
        },
    );
    assert_eq!(err_code(&fx), 10059);
    let mut c = ca("S", "D", &["p1"]);
    c.request = req("$JS.API.CONSUMER.CREATE.S.D");
    let fx = m.apply(3, MetaEntry::AssignConsumer(c));
    assert_eq!(err_code(&fx), 10059);
    assert_eq!(m.all_streams().count(), 0);
}

#[test]
fn remove_stream_stops_consumers_then_the_stream_and_deletes() {
    let mut m = MetaState::new("p1");
    m.apply(1, MetaEntry::AssignStream(sa("S", &["p1", "p2"])));
    m.apply(2, MetaEntry::AssignConsumer(ca("S", "D", &["p1", "p2"])));
    m.apply(3, MetaEntry::AssignConsumer(ca("S", "E", &["p2"])));
    let fx = m.apply(
        4,
        MetaEntry::RemoveStream {
            account: "A".into(),
            stream: "S".into(),
            request: req("$JS.API.STREAM.DELETE.S"),
        },
    );
    assert_eq!(
        fx[..2],
        [
            MetaEffect::StopConsumer {
                account: "A".into(),
                stream: "S".into(),
                consumer: "D".into(),
                delete: true
            },
            MetaEffect::StopStream {
                account: "A".into(),
                stream: "S".into(),
                delete: true
            }
        ]
    );
    assert_eq!(answer(&fx), Some(&Answer::Ok));
    assert!(m.stream("A", "S").is_none());
}

#[test]
fn consumers_assign_update_and_remove() {
    let mut m = MetaState::new("p2");
    m.apply(1, MetaEntry::AssignStream(sa("S", &["p1", "p2"])));
    let fx = m.apply(2, MetaEntry::AssignConsumer(ca("S", "D", &["p1", "p2"])));
    assert!(matches!(&fx[0], MetaEffect::StartConsumer(c) if c.name == "D"));
    let fx = m.apply(3, MetaEntry::AssignConsumer(ca("S", "D", &["p1", "p2"])));
    assert!(matches!(&fx[0], MetaEffect::UpdateConsumer(_)));
    let fx = m.apply(
        4,
        MetaEntry::RemoveConsumer {
            account: "A".into(),
            stream: "S".into(),
            consumer: "X".into(),
            request: req("$JS.API.CONSUMER.DELETE.S.X"),
        },
    );
    assert_eq!(err_code(&fx), 10014);
    let fx = m.apply(
        5,
        MetaEntry::RemoveConsumer {
            account: "A".into(),
            stream: "S".into(),
            consumer: "D".into(),
            request: req("$JS.API.CONSUMER.DELETE.S.D"),
        },
    );
    assert!(matches!(
        &fx[0],
        MetaEffect::StopConsumer { delete: true, .. }
    ));
    assert_eq!(answer(&fx), Some(&Answer::Ok));
}

#[test]
fn remove_peer_swaps_in_the_replacement_for_stream_and_consumers() {
    let entries = |peer: &str, replacement: Option<&str>| MetaEntry::RemovePeer {
        account: "A".into(),
        stream: "S".into(),
        peer: peer.into(),
        replacement: replacement.map(str::to_owned),
        request: req("$JS.API.STREAM.PEER.REMOVE.S"),
    };
    let mut old = MetaState::new("p2");
    let mut new = MetaState::new("p4");
    for m in [&mut old, &mut new] {
        m.apply(1, MetaEntry::AssignStream(sa("S", &["p1", "p2", "p3"])));
        m.apply(
            2,
            MetaEntry::AssignConsumer(ca("S", "D", &["p1", "p2", "p3"])),
        );
    }
    let fx = old.apply(3, entries("p2", Some("p4")));
    assert!(fx.contains(&MetaEffect::StopStream {
        account: "A".into(),
        stream: "S".into(),
        delete: true
    }));
    assert_eq!(answer(&fx), Some(&Answer::Ok));
    let fx = new.apply(3, entries("p2", Some("p4")));
    assert!(matches!(&fx[0], MetaEffect::StartStream(a) if a.group.peers == ["p1", "p4", "p3"]));
    assert!(matches!(&fx[1], MetaEffect::StartConsumer(c) if c.group.peers == ["p1", "p4", "p3"]));
    assert_eq!(old.snapshot(), new.snapshot());
    // A peer that is not a member: 10040, nothing changes.
    let fx = new.apply(4, entries("p9", None));
    assert_eq!(err_code(&fx), 10040);
    // No replacement: the group shrinks.
    new.apply(5, entries("p1", None));
    let rec = new.stream("A", "S").unwrap();
    assert_eq!(rec.assignment.group.peers, ["p4", "p3"]);
    assert_eq!(rec.consumers["D"].group.peers, ["p4", "p3"]);
}

#[test]
fn remove_server_marks_it_removed_and_tells_that_server() {
    let mut m = MetaState::new("p2");
    let fx = m.apply(
        1,
        MetaEntry::RemoveServer {
            peer: "p2".into(),
            request: req("$JS.API.SERVER.REMOVE"),
        },
    );
    assert_eq!(fx[0], MetaEffect::ServerRemoved);
    assert_eq!(answer(&fx), Some(&Answer::Ok));
    assert!(m.is_removed("p2"));
    assert!(!m.is_removed("p1"));
}

#[test]
fn an_index_applied_already_is_a_replay_and_changes_nothing() {
    let mut m = MetaState::new("p1");
    m.apply(5, MetaEntry::AssignStream(sa("S", &["p1"])));
    let before = m.snapshot();
    let fx = m.apply(
        5,
        MetaEntry::RemoveStream {
            account: "A".into(),
            stream: "S".into(),
            request: None,
        },
    );
    assert!(fx.is_empty());
    assert_eq!(m.snapshot(), before);
    assert_eq!(m.applied(), 5);
}

fn all_entries() -> Vec<MetaEntry> {
    vec![
        MetaEntry::AssignStream(sa("S", &["p1", "p2", "p3"])),
        MetaEntry::UpdateStream(sa("S", &["p1", "p2"])),
        MetaEntry::AssignConsumer(ca("S", "D", &["p1", "p2"])),
        MetaEntry::RemovePeer {
            account: "A".into(),
            stream: "S".into(),
            peer: "p2".into(),
            replacement: Some("p3".into()),
            request: None,
        },
        MetaEntry::RemoveConsumer {
            account: "A".into(),
            stream: "S".into(),
            consumer: "D".into(),
            request: None,
        },
        MetaEntry::RemoveStream {
            account: "A".into(),
            stream: "S".into(),
            request: req("x"),
        },
        MetaEntry::RemoveServer {
            peer: "p3".into(),
            request: None,
        },
    ]
}

#[test]
fn entries_round_trip_and_encode_the_same_every_time() {
    for e in all_entries() {
        let b = e.encode();
        assert_eq!(b[0], b'M');
        assert_eq!(b[1], VERSION);
        assert_eq!(MetaEntry::decode(&b).unwrap(), e);
        assert_eq!(e.clone().encode(), b);
    }
}

#[test]
fn unknown_versions_other_kinds_and_damage_are_errors_never_panics() {
    let mut b = all_entries()[0].encode();
    b[1] = VERSION + 1;
    assert_eq!(
        MetaEntry::decode(&b),
        Err(DecodeError::UnknownVersion(VERSION + 1))
    );
    b[1] = 0;
    assert_eq!(MetaEntry::decode(&b), Err(DecodeError::UnknownVersion(0)));
    assert_eq!(MetaEntry::decode(&[]), Err(DecodeError::Short));
    assert_eq!(MetaEntry::decode(b"M"), Err(DecodeError::Short));
    let s = StreamEntry::Delete {
        last_seq: 1,
        seq: 1,
    }
    .encode();
    assert_eq!(MetaEntry::decode(&s), Err(DecodeError::WrongKind(b'S')));
    let good = all_entries()[2].encode();
    for cut in 0..good.len() {
        assert!(MetaEntry::decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    assert!(matches!(
        MetaEntry::decode(b"M\x01{\"no_such_op\":{}}"),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn the_same_entries_give_the_same_snapshot_bytes() {
    let mut a = MetaState::new("p1");
    let mut b = MetaState::new("p9");
    for (i, e) in all_entries().into_iter().take(4).enumerate() {
        a.apply(i as u64 + 1, e.clone());
        b.apply(i as u64 + 1, MetaEntry::decode(&e.encode()).unwrap());
    }
    assert_eq!(a.snapshot(), b.snapshot());
    assert_eq!(a.applied(), 4);
}

#[test]
fn restore_starts_what_is_hosted_and_stops_without_deleting_what_is_gone() {
    let mut leader = MetaState::new("p1");
    leader.apply(1, MetaEntry::AssignStream(sa("KEEP", &["p1", "p2"])));
    leader.apply(2, MetaEntry::AssignConsumer(ca("KEEP", "D", &["p1", "p2"])));
    leader.apply(3, MetaEntry::AssignStream(sa("OTHER", &["p3"])));
    let snap = leader.snapshot();

    // A server that hosted a stream the snapshot no longer lists.
    let mut p2 = MetaState::new("p2");
    p2.apply(1, MetaEntry::AssignStream(sa("GONE", &["p2"])));
    p2.apply(2, MetaEntry::AssignConsumer(ca("GONE", "G", &["p2"])));
    let fx = p2.restore(&snap).unwrap();
    assert_eq!(
        fx[..2],
        [
            MetaEffect::StopConsumer {
                account: "A".into(),
                stream: "GONE".into(),
                consumer: "G".into(),
                delete: false
            },
            MetaEffect::StopStream {
                account: "A".into(),
                stream: "GONE".into(),
                delete: false
            },
        ]
    );
    assert!(matches!(&fx[2], MetaEffect::StartStream(a) if a.config.name == "KEEP"));
    assert!(matches!(&fx[3], MetaEffect::StartConsumer(c) if c.name == "D"));
    assert_eq!(fx.len(), 4, "{fx:?}");
    assert_eq!(p2.snapshot(), snap);
    assert_eq!(p2.applied(), 3);
    // Entries up to the snapshot's index are replays now.
    assert!(p2
        .apply(3, MetaEntry::AssignStream(sa("X", &["p2"])))
        .is_empty());
    // Restoring the same snapshot again changes nothing.
    assert!(p2.restore(&snap).unwrap().is_empty());
}

#[test]
fn a_bad_snapshot_is_refused_and_the_state_kept() {
    let mut m = MetaState::new("p1");
    m.apply(1, MetaEntry::AssignStream(sa("S", &["p1"])));
    let before = m.snapshot();
    let mut bad = before.clone();
    bad[1] = 7;
    assert_eq!(m.restore(&bad), Err(DecodeError::UnknownVersion(7)));
    assert!(m.restore(b"m\x01[").is_err());
    assert_eq!(m.snapshot(), before);
    let rec: &StreamRecord = m.stream("A", "S").unwrap();
    assert_eq!(rec.assignment.group.peers, ["p1"]);
}
