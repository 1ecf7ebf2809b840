//! The clustered API's JSON against the shapes nats-server 2.9 emits.

use serde_json::{json, Value};

use super::shapes::*;
use crate::jetstream::api::err;

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn peer(id: &str, name: Option<&str>, last_seen: u64) -> PeerState {
    PeerState {
        id: id.into(),
        name: name.map(str::to_owned),
        offline: false,
        current: true,
        last_seen,
        lag: 0,
    }
}

#[test]
fn cluster_info_lists_the_followers_by_name_with_go_s_fields() {
    let peers = [
        peer("p1", Some("n1"), T0),
        peer("p3", Some("n3"), T0 - 2 * SEC),
        PeerState {
            lag: 7,
            offline: true,
            current: false,
            ..peer("p2", Some("n2"), T0 - 20 * SEC)
        },
    ];
    let ci = ClusterInfo::build("C1", "n1", "p1", &peers, T0);
    let v = serde_json::to_value(&ci).unwrap();
    assert_eq!(
        v,
        json!({
            "name": "C1",
            "leader": "n1",
            "replicas": [
                {"name": "n2", "current": false, "offline": true, "active": 20 * SEC, "lag": 7, "peer": "p2"},
                {"name": "n3", "current": true, "active": 2 * SEC, "peer": "p3"},
            ]
        })
    );
}

#[test]
fn a_silent_peer_is_not_current_and_an_unknown_one_is_named_so() {
    let peers = [
        peer("p2", Some("n2"), T0 - 11 * SEC),
        PeerState {
            lag: 9,
            ..peer("p9", None, 0)
        },
    ];
    let ci = ClusterInfo::build("C1", "n1", "p1", &peers, T0);
    // Sorted by name, as Go sorts them ("S…" before "n…").
    let (unknown, silent) = (&ci.replicas[0], &ci.replicas[1]);
    assert!(!silent.current, "silent past the lost-quorum interval");
    assert_eq!(silent.active, 11 * SEC);
    assert_eq!(
        unknown.name,
        "Server name unknown at this time (peerID: p9)"
    );
    assert!(unknown.offline);
    assert_eq!((unknown.lag, unknown.active), (0, 0));
}

#[test]
fn a_leaderless_group_lists_every_member_and_omits_leader() {
    let peers = [peer("p1", Some("n1"), T0), peer("p2", Some("n2"), T0)];
    let v = serde_json::to_value(ClusterInfo::build("C1", "", "p1", &peers, T0)).unwrap();
    assert!(v.get("leader").is_none());
    assert_eq!(v["replicas"].as_array().unwrap().len(), 2);
    // A single server: just the names.
    let v = serde_json::to_value(ClusterInfo::build("C1", "n1", "p1", &peers[..1], T0)).unwrap();
    assert_eq!(v, json!({"name": "C1", "leader": "n1"}));
    let v = serde_json::to_value(ClusterInfo::default()).unwrap();
    assert_eq!(v, json!({}));
}

#[test]
fn meta_cluster_shape_for_jsz_and_varz() {
    let m = MetaClusterInfo {
        name: "C1".into(),
        leader: "n1".into(),
        peer: "p1".into(),
        replicas: ClusterInfo::build("C1", "n1", "p1", &[peer("p2", Some("n2"), T0)], T0).replicas,
        cluster_size: 3,
        ..MetaClusterInfo::default()
    };
    assert_eq!(
        serde_json::to_value(&m).unwrap(),
        json!({
            "name": "C1", "leader": "n1", "peer": "p1",
            "replicas": [{"name": "n2", "current": true, "active": 0, "peer": "p2"}],
            "cluster_size": 3
        })
    );
    // Not clustered or leaderless: only the size is always there.
    assert_eq!(
        serde_json::to_value(MetaClusterInfo::default()).unwrap(),
        json!({"cluster_size": 0})
    );
    let back: MetaClusterInfo = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
    assert_eq!(back, m);
}

#[test]
fn requests_parse_as_go_sends_them() {
    let r: ServerRemoveRequest = serde_json::from_value(json!({"peer": "n2"})).unwrap();
    assert_eq!((r.server.as_str(), r.peer_id.as_str()), ("n2", ""));
    let r: ServerRemoveRequest =
        serde_json::from_value(json!({"peer": "", "peer_id": "p2"})).unwrap();
    assert_eq!(r.peer_id, "p2");
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({"peer": "", "peer_id": "p2"})
    );
    let r: StreamRemovePeerRequest = serde_json::from_value(json!({"peer": "n3"})).unwrap();
    assert_eq!(r.peer, "n3");
    let r: LeaderStepdownRequest =
        serde_json::from_value(json!({"placement": {"cluster": "C2"}})).unwrap();
    assert_eq!(r.placement.unwrap().cluster, "C2");
    let r: LeaderStepdownRequest = serde_json::from_value(json!({})).unwrap();
    assert!(r.placement.is_none());
}

#[test]
fn responses_carry_type_and_success_or_error() {
    let ok = serde_json::to_value(ClusterOp::StreamLeaderStepdown.ok()).unwrap();
    assert_eq!(
        ok,
        json!({"type": "io.nats.jetstream.api.v1.stream_leader_stepdown_response", "success": true})
    );
    let bad: Value =
        serde_json::to_value(ClusterOp::ServerRemove.fail(err::cluster_server_not_member()))
            .unwrap();
    assert_eq!(
        bad,
        json!({
            "type": "io.nats.jetstream.api.v1.meta_server_remove_response",
            "error": {"code": 400, "err_code": 10044, "description": "server is not a member of the cluster"}
        })
    );
    for (op, t) in [
        (
            ClusterOp::ConsumerLeaderStepdown,
            "consumer_leader_stepdown_response",
        ),
        (
            ClusterOp::MetaLeaderStepdown,
            "meta_leader_stepdown_response",
        ),
        (ClusterOp::StreamPeerRemove, "stream_remove_peer_response"),
    ] {
        assert_eq!(op.response_type(), format!("io.nats.jetstream.api.v1.{t}"));
    }
}

#[test]
fn cluster_subjects_are_recognised() {
    assert_eq!(
        ClusterRequest::parse("STREAM.LEADER.STEPDOWN.ORDERS"),
        Some(ClusterRequest::StreamLeaderStepdown {
            stream: "ORDERS".into()
        })
    );
    assert_eq!(
        ClusterRequest::parse("CONSUMER.LEADER.STEPDOWN.ORDERS.D"),
        Some(ClusterRequest::ConsumerLeaderStepdown {
            stream: "ORDERS".into(),
            consumer: "D".into()
        })
    );
    assert_eq!(
        ClusterRequest::parse("META.LEADER.STEPDOWN"),
        Some(ClusterRequest::MetaLeaderStepdown)
    );
    assert_eq!(
        ClusterRequest::parse("STREAM.PEER.REMOVE.ORDERS").map(|r| r.op()),
        Some(ClusterOp::StreamPeerRemove)
    );
    assert_eq!(
        ClusterRequest::parse("SERVER.REMOVE"),
        Some(ClusterRequest::ServerRemove)
    );
    assert_eq!(ClusterRequest::parse("STREAM.INFO.ORDERS"), None);
    assert_eq!(ClusterRequest::parse("META.LEADER.STEPDOWN.X"), None);
}

#[test]
fn cluster_error_constants_match_nats_server() {
    let all = [
        (
            err::cluster_not_active(),
            500,
            10006,
            "JetStream not in clustered mode",
        ),
        (
            err::cluster_not_avail(),
            503,
            10008,
            "JetStream system temporarily unavailable",
        ),
        (
            err::cluster_not_leader(),
            500,
            10009,
            "JetStream cluster can not handle request",
        ),
        (
            err::cluster_required(),
            503,
            10010,
            "JetStream clustering support required",
        ),
        (
            err::cluster_tags(),
            400,
            10011,
            "tags placement not supported for operation",
        ),
        (
            err::cluster_peer_not_member(),
            400,
            10040,
            "peer not a member",
        ),
        (
            err::cluster_server_not_member(),
            400,
            10044,
            "server is not a member of the cluster",
        ),
        (
            err::replicas_not_updatable(),
            400,
            10061,
            "Replicas configuration can not be updated",
        ),
        (err::peer_remap(), 503, 10075, "peer remap failed"),
        (
            err::consumer_replicas_exceeds_stream(),
            400,
            10126,
            "consumer config replica count exceeds parent stream",
        ),
        (
            err::replicas_negative(),
            400,
            10133,
            "replicas count cannot be negative",
        ),
        (err::raft_general("boom"), 500, 10041, "boom"),
        (
            err::cluster_no_peers("no suitable peers for placement"),
            400,
            10005,
            "no suitable peers for placement",
        ),
    ];
    for (e, code, err_code, text) in all {
        assert_eq!(
            (e.code, e.err_code, e.description.as_str()),
            (code, err_code, text)
        );
    }
}
