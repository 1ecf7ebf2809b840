//! The meta leader's side of each request: from a request to the entry it proposes, and the
//! entry applied on every server.

use serde_json::json;

use super::placement::{Cluster, ServerInfo};
use super::propose::{Origin, Proposal};
use super::shapes::ServerRemoveRequest;
use super::*;
use crate::jetstream::api::{ConsumerConfig, StreamConfig};
use crate::rng::SplitMix64;

const T0: u64 = 1_700_000_000_000_000_000;

fn cluster(n: u32) -> Cluster {
    Cluster {
        servers: (1..=n)
            .map(|i| ServerInfo {
                name: format!("n{i}"),
                id: format!("p{i}"),
                cluster: "C1".into(),
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

fn cfg(v: serde_json::Value) -> StreamConfig {
    let mut base = json!({"name": "S", "subjects": ["s.>"]});
    for (k, x) in v.as_object().unwrap() {
        base[k] = x.clone();
    }
    serde_json::from_value(base).unwrap()
}

fn entry(p: Result<Proposal, crate::jetstream::api::ApiError>) -> MetaEntry {
    match p {
        Ok(Proposal::Propose(e)) => e,
        other => panic!("expected an entry, got {other:?}"),
    }
}

/// The leader's state with stream S (R3) and consumer D applied.
fn with_stream(rng: &mut SplitMix64) -> MetaState {
    let mut m = MetaState::new("p1");
    let c = cluster(5);
    let e = entry(m.propose_stream_create(
        cfg(json!({"num_replicas": 3})),
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
fn stream_create_places_and_assigns_or_answers_a_repeat_at_once() {
    let mut rng = SplitMix64::new(1);
    let m = with_stream(&mut rng);
    let rec = m.stream("A", "S").unwrap();
    assert_eq!(rec.assignment.group.peers.len(), 3);
    assert_eq!(rec.assignment.created, T0);
    assert_eq!(rec.consumers["D"].group.peers.len(), 3);
    assert!(rec.consumers["D"]
        .group
        .peers
        .iter()
        .all(|p| rec.assignment.group.has(p)));
    let again = m.propose_stream_create(
        cfg(json!({"num_replicas": 3})),
        &origin("x"),
        &cluster(5),
        0,
        T0 + 1,
        &mut rng,
    );
    assert!(matches!(again, Ok(Proposal::Unchanged(sa)) if sa.created == T0));
    let e = m
        .propose_stream_create(
            cfg(json!({"num_replicas": 7})),
            &origin("x"),
            &cluster(5),
            0,
            T0,
            &mut rng,
        )
        .unwrap_err();
    assert_eq!(e.err_code, 10052);
}

#[test]
fn the_same_seed_proposes_the_same_entry() {
    let run = |seed| {
        let m = MetaState::new("p1");
        entry(m.propose_stream_create(
            cfg(json!({"num_replicas": 2})),
            &origin("x"),
            &cluster(5),
            0,
            T0,
            &mut SplitMix64::new(seed),
        ))
        .encode()
    };
    assert_eq!(run(5), run(5));
}

#[test]
fn stream_update_scales_and_keeps_the_rules() {
    let mut rng = SplitMix64::new(2);
    let mut m = with_stream(&mut rng);
    let c = cluster(5);
    let before = m.stream("A", "S").unwrap().assignment.group.clone();
    let e = entry(m.propose_stream_update(
        cfg(json!({"num_replicas": 5})),
        &origin("$JS.API.STREAM.UPDATE.S"),
        &c,
        &mut rng,
    ));
    let MetaEntry::UpdateStream(sa) = &e else {
        panic!("{e:?}");
    };
    assert_eq!(sa.group.peers[..3], before.peers[..]);
    assert_eq!(sa.group.peers.len(), 5);
    assert_eq!(sa.group.name, before.name, "the group stays the same group");
    m.apply(3, e);
    let e =
        entry(m.propose_stream_update(cfg(json!({"num_replicas": 1})), &origin("x"), &c, &mut rng));
    let MetaEntry::UpdateStream(sa) = &e else {
        panic!("{e:?}");
    };
    assert_eq!(sa.group.peers, before.peers[..1]);
    let e = m
        .propose_stream_update(
            cfg(json!({"num_replicas": 3, "storage": "memory"})),
            &origin("x"),
            &c,
            &mut rng,
        )
        .unwrap_err();
    assert_eq!(
        e.description,
        "stream configuration update can not change storage type"
    );
    let e = m
        .propose_stream_update(
            cfg(json!({"num_replicas": 5, "placement": {"cluster": "C2"}})),
            &origin("x"),
            &c,
            &mut rng,
        )
        .unwrap_err();
    // A move to a cluster that does not exist.
    assert_eq!((e.code, e.err_code), (400, 10005));
    let e = m
        .propose_stream_update(cfg(json!({"name": "NOPE"})), &origin("x"), &c, &mut rng)
        .unwrap_err();
    assert_eq!(e.err_code, 10059);
}

#[test]
fn deletes_need_what_they_delete() {
    let mut rng = SplitMix64::new(3);
    let m = with_stream(&mut rng);
    let o = origin("x");
    assert!(matches!(
        entry(m.propose_consumer_delete("S", "D", &o)),
        MetaEntry::RemoveConsumer { .. }
    ));
    assert_eq!(
        m.propose_consumer_delete("S", "X", &o)
            .unwrap_err()
            .err_code,
        10014
    );
    assert_eq!(
        m.propose_consumer_delete("X", "D", &o)
            .unwrap_err()
            .err_code,
        10059
    );
    assert!(matches!(
        entry(m.propose_stream_delete("S", &o)),
        MetaEntry::RemoveStream { .. }
    ));
    assert_eq!(
        m.propose_stream_delete("X", &o).unwrap_err().err_code,
        10059
    );
}

#[test]
fn a_consumer_update_keeps_its_group_and_creation_time() {
    let mut rng = SplitMix64::new(4);
    let m = with_stream(&mut rng);
    let old = m.stream("A", "S").unwrap().consumers["D"].clone();
    let d = ConsumerConfig {
        description: Some("new".into()),
        ..old.config.clone()
    };
    let e = entry(m.propose_consumer_create(
        "S",
        "D",
        d,
        "",
        &origin("x"),
        &cluster(5),
        T0 + 99,
        false,
        &mut rng,
    ));
    let MetaEntry::AssignConsumer(ca) = e else {
        panic!()
    };
    assert_eq!((ca.group, ca.created), (old.group, T0));
}

#[test]
fn peer_and_server_removal_become_entries() {
    let mut rng = SplitMix64::new(5);
    let mut m = with_stream(&mut rng);
    let c = cluster(5);
    let group = m.stream("A", "S").unwrap().assignment.group.clone();
    let victim = c
        .servers
        .iter()
        .find(|s| s.id == group.peers[1])
        .unwrap()
        .name
        .clone();
    let e = entry(m.propose_peer_remove("S", &victim, &origin("x"), &c, &mut rng));
    let MetaEntry::RemovePeer {
        peer, replacement, ..
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!(peer, &group.peers[1]);
    let r = replacement.clone().unwrap();
    assert!(!group.has(&r));
    m.apply(3, e);
    let now = &m.stream("A", "S").unwrap().assignment.group;
    assert_eq!(now.peers.len(), 3);
    assert!(now.has(&r) && !now.has(&group.peers[1]));
    let outsider = c
        .servers
        .iter()
        .find(|s| !now.has(&s.id))
        .unwrap()
        .name
        .clone();
    let e = m
        .propose_peer_remove("S", &outsider, &origin("x"), &c, &mut rng)
        .unwrap_err();
    assert_eq!(e.err_code, 10040);

    let req = ServerRemoveRequest {
        server: "n5".into(),
        peer_id: String::new(),
    };
    assert!(matches!(
        entry(m.propose_server_remove(&req, &origin("x"), &c)),
        MetaEntry::RemoveServer { peer, .. } if peer == "p5"
    ));
}
