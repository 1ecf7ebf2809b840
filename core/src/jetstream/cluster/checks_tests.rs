//! The meta leader's checks before it proposes.

use serde_json::json;

use super::checks::{ConsumerCreate, StreamCreate};
use super::placement::ServerInfo;
use super::shapes::ServerRemoveRequest;
use super::*;
use crate::jetstream::api::{ConsumerConfig, StreamConfig};

fn cfg(name: &str, subjects: &[&str]) -> StreamConfig {
    serde_json::from_value(json!({"name": name, "subjects": subjects})).unwrap()
}

fn assign(m: &mut MetaState, index: u64, c: StreamConfig) {
    let sa = StreamAssignment {
        account: "A".into(),
        created: 1,
        config: c,
        group: RaftGroup {
            name: "S-R3F-x".into(),
            peers: vec!["p1".into(), "p2".into(), "p3".into()],
            storage: "file".into(),
            cluster: "C1".into(),
            preferred: String::new(),
        },
        request: None,
    };
    m.apply(index, MetaEntry::AssignStream(sa));
}

fn consumer(m: &mut MetaState, index: u64, stream: &str, name: &str, c: ConsumerConfig) {
    let group = m.stream("A", stream).unwrap().assignment.group.clone();
    m.apply(
        index,
        MetaEntry::AssignConsumer(ConsumerAssignment {
            account: "A".into(),
            stream: stream.into(),
            name: name.into(),
            created: 1,
            config: c,
            group,
            request: None,
        }),
    );
}

fn servers() -> Vec<ServerInfo> {
    (1..=4)
        .map(|i| ServerInfo {
            name: format!("n{i}"),
            id: format!("p{i}"),
            cluster: "C1".into(),
            ..ServerInfo::default()
        })
        .collect()
}

#[test]
fn stream_create_checks_in_go_s_order() {
    let mut m = MetaState::new("p1");
    assign(&mut m, 1, cfg("ORDERS", &["orders.>"]));
    let same = cfg("ORDERS", &["orders.>"]);
    assert!(matches!(
        m.check_stream_create("A", &same, 0),
        Ok(StreamCreate::Exists(_))
    ));
    let e = m
        .check_stream_create("A", &cfg("ORDERS", &["other"]), 0)
        .unwrap_err();
    assert_eq!((e.code, e.err_code), (400, 10058));
    let mut sealed = cfg("NEW", &["new"]);
    sealed.sealed = true;
    let e = m.check_stream_create("A", &sealed, 0).unwrap_err();
    assert_eq!(
        (e.err_code, e.description.as_str()),
        (10052, "stream configuration for create can not be sealed")
    );
    let e = m
        .check_stream_create("A", &cfg("NEW", &["orders.eu"]), 0)
        .unwrap_err();
    assert_eq!(
        (e.code, e.err_code, e.description.as_str()),
        (400, 10065, "subjects overlap with an existing stream")
    );
    // Another account may use the same subjects and name.
    assert_eq!(
        m.check_stream_create("B", &cfg("ORDERS", &["orders.>"]), 0),
        Ok(StreamCreate::New)
    );
    let e = m
        .check_stream_create("A", &cfg("NEW", &["new"]), 1)
        .unwrap_err();
    assert_eq!((e.code, e.err_code), (400, 10027));
    assert_eq!(
        m.check_stream_create("A", &cfg("NEW", &["new"]), 2),
        Ok(StreamCreate::New)
    );
}

#[test]
fn stream_update_needs_the_stream_and_free_subjects() {
    let mut m = MetaState::new("p1");
    assign(&mut m, 1, cfg("A1", &["a.>"]));
    assign(&mut m, 2, cfg("B1", &["b.>"]));
    assert!(m
        .check_stream_update("A", &cfg("A1", &["a.>", "c"]))
        .is_ok());
    let e = m
        .check_stream_update("A", &cfg("A1", &["b.x"]))
        .unwrap_err();
    assert_eq!(e.err_code, 10065);
    let e = m.check_stream_update("A", &cfg("ZZ", &["z"])).unwrap_err();
    assert_eq!(e.err_code, 10059);
}

#[test]
fn consumer_create_and_update_actions() {
    let mut m = MetaState::new("p1");
    let mut c = cfg("S", &["s.>"]);
    c.max_consumers = 1;
    assign(&mut m, 1, c);
    let d = ConsumerConfig {
        durable_name: Some("D".into()),
        ..ConsumerConfig::default()
    };
    assert_eq!(
        m.check_consumer_create("A", "S", "D", &d, "create"),
        Ok(ConsumerCreate::New)
    );
    let e = m
        .check_consumer_create("A", "S", "D", &d, "update")
        .unwrap_err();
    assert_eq!(
        (e.err_code, e.description.as_str()),
        (10149, "consumer does not exist")
    );
    consumer(&mut m, 2, "S", "D", d.clone());
    assert!(matches!(
        m.check_consumer_create("A", "S", "D", &d, "create"),
        Ok(ConsumerCreate::Update(_))
    ));
    let changed = ConsumerConfig {
        description: Some("x".into()),
        ..d.clone()
    };
    let e = m
        .check_consumer_create("A", "S", "D", &changed, "create")
        .unwrap_err();
    assert_eq!(
        (e.err_code, e.description.as_str()),
        (10148, "consumer already exists")
    );
    assert!(m.check_consumer_create("A", "S", "D", &changed, "").is_ok());
    let e = m.check_consumer_create("A", "S", "E", &d, "").unwrap_err();
    assert_eq!(
        (e.err_code, e.description.as_str()),
        (10026, "maximum consumers limit reached")
    );
    let e = m
        .check_consumer_create("A", "NOPE", "E", &d, "")
        .unwrap_err();
    assert_eq!(e.err_code, 10059);
}

#[test]
fn peer_and_server_removal_resolve_names() {
    let mut m = MetaState::new("p1");
    assign(&mut m, 1, cfg("S", &["s"]));
    let all = servers();
    assert_eq!(m.check_peer_remove("A", "S", "n2", &all).unwrap(), "p2");
    let e = m.check_peer_remove("A", "S", "n4", &all).unwrap_err();
    assert_eq!((e.code, e.err_code), (400, 10040));
    let e = m.check_peer_remove("A", "X", "n2", &all).unwrap_err();
    assert_eq!(e.err_code, 10059);
    let e = m.check_peer_remove("A", "S", "", &all).unwrap_err();
    assert_eq!(e.err_code, 10003);

    let by_name = ServerRemoveRequest {
        server: "n3".into(),
        peer_id: String::new(),
    };
    assert_eq!(m.check_server_remove(&by_name, &all).unwrap(), "p3");
    let by_id = ServerRemoveRequest {
        server: "n3".into(),
        peer_id: "p4".into(),
    };
    assert_eq!(m.check_server_remove(&by_id, &all).unwrap(), "p4");
    let unknown = ServerRemoveRequest {
        server: "n9".into(),
        peer_id: String::new(),
    };
    let e = m.check_server_remove(&unknown, &all).unwrap_err();
    assert_eq!(
        (e.code, e.err_code, e.description.as_str()),
        (400, 10044, "server is not a member of the cluster")
    );
    m.apply(
        2,
        MetaEntry::RemoveServer {
            peer: "p3".into(),
            request: None,
        },
    );
    assert_eq!(
        m.check_server_remove(&by_name, &all).unwrap_err().err_code,
        10044
    );
}
