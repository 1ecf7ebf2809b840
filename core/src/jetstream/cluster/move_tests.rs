//! Moving a stream by STREAM.UPDATE with another placement: the moving group (old peers,
//! then new), what is refused meanwhile, and the entry that ends the move.

use std::collections::BTreeSet;

use serde_json::json;

use super::placement::{Cluster, ServerInfo};
use super::propose::{Origin, Proposal};
use super::*;
use crate::jetstream::api::{ApiError, ConsumerConfig, StreamConfig};
use crate::rng::SplitMix64;

const T0: u64 = 1_700_000_000_000_000_000;

/// Six servers: p1..p3 tagged `a`, p4..p6 tagged `b`.
fn tagged() -> Cluster {
    Cluster {
        servers: (1..=6)
            .map(|i| ServerInfo {
                name: format!("n{i}"),
                id: format!("p{i}"),
                cluster: "C1".into(),
                tags: BTreeSet::from([if i <= 3 { "a" } else { "b" }.to_owned()]),
                max_store: 1 << 30,
                ..ServerInfo::default()
            })
            .collect(),
        clustered: true,
        has_leader: true,
        ..Cluster::default()
    }
}

fn origin(subject: &str) -> Origin {
    Origin {
        request: Request {
            account: "A".into(),
            server: "n1".into(),
            subject: subject.into(),
            reply: "_INBOX.r".into(),
        },
        cluster: "C1".into(),
        alternates: Vec::new(),
    }
}

fn cfg(replicas: i64, placement: serde_json::Value) -> StreamConfig {
    let mut v = json!({"name": "S", "subjects": ["s.>"], "num_replicas": replicas});
    if !placement.is_null() {
        v["placement"] = placement;
    }
    serde_json::from_value(v).unwrap()
}

fn entry(p: Result<Proposal, ApiError>) -> MetaEntry {
    match p {
        Ok(Proposal::Propose(e)) => e,
        other => panic!("expected an entry, got {other:?}"),
    }
}

fn peers(m: &MetaState) -> Vec<String> {
    m.stream("A", "S").unwrap().assignment.group.peers.clone()
}

/// S (R3, tags `a`) with consumer D applied at indexes 1 and 2.
fn on_a(rng: &mut SplitMix64) -> MetaState {
    let mut m = MetaState::new("p1");
    let c = tagged();
    let e = entry(m.propose_stream_create(
        cfg(3, json!({"tags": ["a"]})),
        &origin("$JS.API.STREAM.CREATE.S"),
        &c,
        0,
        T0,
        rng,
    ));
    m.apply(1, e);
    let d = ConsumerConfig {
        durable_name: Some("D".into()),
        ..ConsumerConfig::default()
    };
    let e = entry(m.propose_consumer_create(
        "S",
        "D",
        d,
        "create",
        &origin("$JS.API.CONSUMER.CREATE.S.D"),
        &c,
        T0,
        false,
        rng,
    ));
    m.apply(2, e);
    m
}

#[test]
fn a_new_placement_adds_the_new_peers_after_the_old_ones() {
    let mut rng = SplitMix64::new(7);
    let mut m = on_a(&mut rng);
    let old = peers(&m);
    let mut sorted = old.clone();
    sorted.sort();
    assert_eq!(sorted, ["p1", "p2", "p3"]);
    let group = m.stream("A", "S").unwrap().assignment.group.name.clone();
    let e = entry(m.propose_stream_update(
        cfg(3, json!({"tags": ["b"]})),
        &origin("$JS.API.STREAM.UPDATE.S"),
        &tagged(),
        &mut rng,
    ));
    let fx = m.apply(3, e);
    let now = peers(&m);
    assert_eq!(now.len(), 6, "{now:?}");
    assert_eq!(now[..3], old[..], "the old peers first");
    let mut new = now[3..].to_vec();
    new.sort();
    assert_eq!(new, ["p4", "p5", "p6"]);
    let sa = &m.stream("A", "S").unwrap().assignment;
    assert!(sa.is_moving());
    assert_eq!(sa.config.num_replicas, 3, "the replicas stay");
    assert_eq!(sa.group.name, group, "the same Raft group grows");
    // p1 keeps its replica (an update), and the request is answered once applied.
    assert!(matches!(fx[0], MetaEffect::UpdateStream(_)), "{fx:?}");
    assert!(
        matches!(fx.last(), Some(MetaEffect::Respond { .. })),
        "{fx:?}"
    );
    // The consumer stays on the old peers while they are there.
    let d = &m.stream("A", "S").unwrap().consumers["D"];
    assert!(d.group.peers.iter().all(|p| old.contains(p)), "{d:?}");
}

#[test]
fn what_a_move_refuses() {
    let mut rng = SplitMix64::new(8);
    let mut m = on_a(&mut rng);
    let c = tagged();
    let o = origin("$JS.API.STREAM.UPDATE.S");
    let e = m
        .propose_stream_update(cfg(1, json!({"tags": ["b"]})), &o, &c, &mut rng)
        .unwrap_err();
    assert_eq!((e.code, e.err_code), (400, 10123));
    assert_eq!(
        e.description,
        "can not move and scale a stream in a single update"
    );
    // No server carries both tags; another cluster does not exist.
    for (p, why) in [
        (
            json!({"tags": ["a", "b"]}),
            "no suitable peers for placement, tags not matched ['a', 'b']",
        ),
        (json!({"cluster": "C9"}), "no suitable peers for placement"),
        (
            json!({"tags": ["c"]}),
            "no suitable peers for placement, tags not matched ['c']",
        ),
    ] {
        let e = m
            .propose_stream_update(cfg(3, p.clone()), &o, &c, &mut rng)
            .unwrap_err();
        assert_eq!((e.code, e.err_code), (400, 10005), "{p}");
        assert_eq!(e.description, why, "{p}");
    }
    // Once moving: no other move, no scale; other changes go through.
    let e = entry(m.propose_stream_update(cfg(3, json!({"tags": ["b"]})), &o, &c, &mut rng));
    m.apply(3, e);
    for bad in [
        cfg(3, json!({"tags": ["a"]})),
        cfg(5, json!({"tags": ["b"]})),
    ] {
        let e = m.propose_stream_update(bad, &o, &c, &mut rng).unwrap_err();
        assert_eq!((e.code, e.err_code), (400, 10124));
        assert_eq!(
            e.description,
            "stream move already in progress: total peers: 6"
        );
    }
    let mut described = cfg(3, json!({"tags": ["b"]}));
    described.description = Some("moving".into());
    let e = entry(m.propose_stream_update(described, &o, &c, &mut rng));
    let MetaEntry::UpdateStream(sa) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        sa.group.peers.len(),
        6,
        "a config change keeps the moving group"
    );
}

#[test]
fn a_placement_the_peers_already_fit_changes_only_the_config() {
    let mut rng = SplitMix64::new(9);
    let mut m = on_a(&mut rng);
    let old = peers(&m);
    let e = entry(m.propose_stream_update(
        cfg(3, json!({"tags": ["a"], "cluster": "C1"})),
        &origin("x"),
        &tagged(),
        &mut rng,
    ));
    m.apply(3, e);
    let mut now = peers(&m);
    now.sort();
    assert_eq!(now, ["p1", "p2", "p3"], "was {old:?}");
    assert!(!m.stream("A", "S").unwrap().assignment.is_moving());
}

#[test]
fn the_move_ends_with_the_new_peers_and_the_consumer_follows() {
    let mut rng = SplitMix64::new(10);
    let mut m = on_a(&mut rng);
    let e = entry(m.propose_stream_update(
        cfg(3, json!({"tags": ["b"]})),
        &origin("x"),
        &tagged(),
        &mut rng,
    ));
    m.apply(3, e);
    let moving = peers(&m);
    // A report about another peer set, or another stream: nothing to do.
    assert!(m.propose_move_done("A", "S", &moving[..3], "C1").is_none());
    assert!(m.propose_move_done("A", "T", &moving, "C1").is_none());
    let done = m.propose_move_done("A", "S", &moving, "C1").unwrap();
    let fx = m.apply(4, done);
    assert_eq!(peers(&m), moving[3..]);
    assert!(!m.stream("A", "S").unwrap().assignment.is_moving());
    // This server (p1) was an old peer: its replica stops (and leaves, see the shell).
    assert!(
        fx.iter()
            .any(|f| matches!(f, MetaEffect::StopStream { delete: true, .. })),
        "{fx:?}"
    );
    assert!(
        !fx.iter().any(|f| matches!(f, MetaEffect::Respond { .. })),
        "nobody asked: {fx:?}"
    );
    let d = &m.stream("A", "S").unwrap().consumers["D"];
    assert_eq!(d.group.peers, moving[3..], "{d:?}");
    // Once done, a report of the finished move changes nothing.
    assert!(m.propose_move_done("A", "S", &moving, "C1").is_none());
}

#[test]
fn a_single_replica_stream_moves_too() {
    let mut rng = SplitMix64::new(11);
    let mut m = MetaState::new("p4");
    let c = tagged();
    let e = entry(m.propose_stream_create(
        cfg(1, json!({"tags": ["a"]})),
        &origin("$JS.API.STREAM.CREATE.S"),
        &c,
        0,
        T0,
        &mut rng,
    ));
    m.apply(1, e);
    let e =
        entry(m.propose_stream_update(cfg(1, json!({"tags": ["b"]})), &origin("x"), &c, &mut rng));
    let fx = m.apply(2, e);
    let moving = peers(&m);
    assert_eq!(moving.len(), 2, "{moving:?}");
    if moving[1] == "p4" {
        assert!(matches!(fx[0], MetaEffect::StartStream(_)), "{fx:?}");
    }
    let done = m.propose_move_done("A", "S", &moving, "").unwrap();
    m.apply(3, done);
    assert_eq!(peers(&m), moving[1..]);
    assert_eq!(m.stream("A", "S").unwrap().assignment.group.cluster, "C1");
}
