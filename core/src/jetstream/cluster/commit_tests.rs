//! A leader's consumers hand out only committed messages: the leader stores a message before
//! its entry commits, and a message a quorum never took must not reach a client.

use serde_json::json;

use super::replica_tests::{replica, T0};
use super::*;
use crate::jetstream::consumer::{self, parse_next_request};
use crate::jetstream::store::MemDisk;

fn pull_consumer(l: &mut ReplicatedStream) -> StreamEntry {
    let cfg = consumer::check_config(
        serde_json::from_value(json!({"durable_name": "P", "ack_policy": "explicit"})).unwrap(),
        &["s.>".to_owned()],
    )
    .unwrap();
    l.leader_create_consumer("P", cfg, T0)
}

/// The stream sequences of the messages among `ds`.
fn delivered(ds: &[(consumer::Delivery, String)]) -> Vec<u64> {
    ds.iter()
        .filter_map(|d| d.0.reply.as_deref())
        .map(|r| r.split('.').nth(5).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_leader_hands_out_a_message_only_once_its_entry_committed() {
    let mut l = replica(&MemDisk::new(1));
    l.set_leading(true);
    let mut log = vec![pull_consumer(&mut l)];
    let (_, e) = l.leader_publish("s.a", b"", b"one", T0).unwrap();
    log.extend(e);
    // The create and the first message commit.
    for (i, e) in log.iter().enumerate() {
        let a = l.apply(i as u64 + 1, e);
        assert!(
            matches!(a, Applied::Done | Applied::AlreadyHad),
            "{e:?}: {a:?}"
        );
    }
    assert_eq!(l.committed(), 1);
    // A second message is stored by the leader but its entry does not commit.
    let (stored, e) = l.leader_publish("s.a", b"", b"two", T0 + 1).unwrap();
    assert_eq!(stored.seq, 2);
    log.extend(e);
    let req = parse_next_request(br#"{"batch": 5, "expires": 60000000000}"#).unwrap();
    let store = l.stream.store.as_ref();
    let c = l.consumers.get_mut("P").unwrap();
    let first = c.on_next("_INBOX.r", &req, store, T0 + 2);
    assert_eq!(delivered(&first), vec![1], "only the committed message");
    assert!(c.pump(store, T0 + 3).is_empty(), "nothing past the commit");
    // The entry commits (a quorum is back): the waiting request gets it.
    assert_eq!(l.apply(3, &log[2]), Applied::AlreadyHad);
    assert_eq!(l.committed(), 2);
    let store = l.stream.store.as_ref();
    let c = l.consumers.get_mut("P").unwrap();
    assert_eq!(delivered(&c.pump(store, T0 + 4)), vec![2]);
}

#[test]
fn a_follower_made_leader_caps_its_consumers_at_what_it_applied() {
    let mut l = replica(&MemDisk::new(1));
    l.set_leading(true);
    let mut log = vec![pull_consumer(&mut l)];
    for body in ["a", "b", "c"] {
        log.extend(l.leader_publish("s.a", b"", body.as_bytes(), T0).unwrap().1);
    }
    let mut f = replica(&MemDisk::new(2));
    for (i, e) in log.iter().enumerate() {
        assert_eq!(f.apply(i as u64 + 1, e), Applied::Done, "{e:?}");
    }
    assert_eq!(f.committed(), 3);
    f.set_leading(true);
    let req = parse_next_request(br#"{"batch": 5, "expires": 60000000000}"#).unwrap();
    let store = f.stream.store.as_ref();
    let c = f.consumers.get_mut("P").unwrap();
    assert_eq!(
        delivered(&c.on_next("_INBOX.r", &req, store, T0)),
        vec![1, 2, 3]
    );
}
