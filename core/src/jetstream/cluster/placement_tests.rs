//! Placement: clusters, tags, offline servers, resources, each error, and seeded determinism.
//! The texts are those a three-server nats-server 2.9.10 cluster answers with.

use std::collections::BTreeSet;

use serde_json::json;

use super::placement::*;
use super::*;
use crate::jetstream::api::StreamConfig;
use crate::rng::SplitMix64;

const GB: u64 = 1 << 30;

fn server(n: u32, cluster: &str, tags: &[&str]) -> ServerInfo {
    ServerInfo {
        name: format!("n{n}"),
        id: format!("p{n}"),
        cluster: cluster.into(),
        tags: tags
            .iter()
            .map(|t| (*t).to_owned())
            .collect::<BTreeSet<_>>(),
        max_store: 10 * GB,
        max_memory: GB,
        ..ServerInfo::default()
    }
}

fn cluster(servers: Vec<ServerInfo>) -> Cluster {
    Cluster {
        servers,
        clustered: true,
        has_leader: true,
        ..Cluster::default()
    }
}

fn five() -> Cluster {
    cluster(vec![
        server(1, "C1", &["az:1", "ssd"]),
        server(2, "C1", &["az:2", "ssd"]),
        server(3, "C1", &["az:3"]),
        server(4, "C2", &["az:1", "ssd"]),
        server(5, "C2", &["az:2"]),
    ])
}

fn cfg(v: serde_json::Value) -> StreamConfig {
    let mut base = json!({"name": "S", "subjects": ["s.>"]});
    for (k, x) in v.as_object().unwrap() {
        base[k] = x.clone();
    }
    serde_json::from_value(base).unwrap()
}

fn place(
    c: &Cluster,
    v: serde_json::Value,
    seed: u64,
) -> Result<RaftGroup, crate::jetstream::api::ApiError> {
    place_stream(c, &cfg(v), "C1", &[], &mut SplitMix64::new(seed))
}

#[test]
fn places_unique_peers_in_the_requesters_cluster() {
    let g = place(&five(), json!({"num_replicas": 3}), 1).unwrap();
    assert_eq!(g.cluster, "C1");
    let set: BTreeSet<_> = g.peers.iter().cloned().collect();
    assert_eq!(set, ["p1", "p2", "p3"].map(String::from).into());
    assert!(g.name.starts_with("S-R3F-"), "{}", g.name);
    assert_eq!(g.name.len(), "S-R3F-".len() + 8);
    assert_eq!(g.storage, "file");
    let m = place(&five(), json!({"num_replicas": 1, "storage": "memory"}), 1).unwrap();
    assert!(m.name.starts_with("S-R1M-"));
}

#[test]
fn a_seed_reproduces_the_choice_and_seeds_spread_ties() {
    let c = five();
    let one = |seed| place(&c, json!({"num_replicas": 1}), seed).unwrap();
    for seed in 0..20 {
        assert_eq!(one(seed), one(seed));
    }
    let chosen: BTreeSet<String> = (0..64).map(|s| one(s).peers[0].clone()).collect();
    assert_eq!(chosen.len(), 3, "equal servers all get picked: {chosen:?}");
}

#[test]
fn placement_cluster_and_tags_are_honoured() {
    let g = place(
        &five(),
        json!({"num_replicas": 2, "placement": {"cluster": "C2"}}),
        3,
    )
    .unwrap();
    assert_eq!(g.cluster, "C2");
    assert_eq!(
        g.peers.iter().cloned().collect::<BTreeSet<_>>(),
        ["p4", "p5"].map(String::from).into()
    );
    let g = place(
        &five(),
        json!({"num_replicas": 2, "placement": {"tags": ["ssd"]}}),
        3,
    )
    .unwrap();
    assert_eq!(
        g.peers.iter().cloned().collect::<BTreeSet<_>>(),
        ["p1", "p2"].map(String::from).into()
    );
    // `!tag` excludes.
    let g = place(
        &five(),
        json!({"num_replicas": 2, "placement": {"tags": ["!az:3"]}}),
        3,
    )
    .unwrap();
    assert!(!g.peers.contains(&"p3".to_owned()));
}

#[test]
fn unmatched_tags_report_go_s_text() {
    let e = place(
        &five(),
        json!({"num_replicas": 3, "placement": {"tags": ["ssd", "gpu"]}}),
        1,
    )
    .unwrap_err();
    assert_eq!(e.code, 400);
    assert_eq!(e.err_code, 10005);
    assert_eq!(
        e.description,
        "no suitable peers for placement, tags not matched ['gpu', 'ssd']"
    );
    // A server is judged on the first tag it lacks (Go), so only that one is listed.
    let e = place(
        &five(),
        json!({"num_replicas": 1, "placement": {"tags": ["gpu", "ssd"]}}),
        1,
    )
    .unwrap_err();
    assert_eq!(
        e.description,
        "no suitable peers for placement, tags not matched ['gpu']"
    );
    let e = place(
        &five(),
        json!({"num_replicas": 3, "placement": {"tags": ["!ssd"]}}),
        1,
    )
    .unwrap_err();
    assert_eq!(
        e.description,
        "no suitable peers for placement, tags excluded ['ssd']"
    );
}

#[test]
fn offline_servers_are_never_chosen() {
    let mut c = five();
    c.servers[0].offline = true;
    for seed in 0..16 {
        let g = place(&c, json!({"num_replicas": 2}), seed).unwrap();
        assert!(!g.peers.contains(&"p1".to_owned()));
    }
    let e = place(&c, json!({"num_replicas": 3}), 1).unwrap_err();
    assert_eq!(e.err_code, 10005);
    assert_eq!(
        e.description,
        "no suitable peers for placement, peer offline"
    );
}

#[test]
fn the_exclude_placement_tag_keeps_a_server_out() {
    let mut c = five();
    c.servers[1].tags.insert(EXCLUDE_PLACEMENT_TAG.into());
    let e = place(&c, json!({"num_replicas": 3}), 1).unwrap_err();
    assert_eq!(
        e.description,
        "no suitable peers for placement, exclude tag set"
    );
}

#[test]
fn resources_rank_servers_and_max_bytes_needs_room() {
    let mut c = five();
    c.servers[0].store_used = 9 * GB;
    c.servers[1].store_reserved = 5 * GB;
    // Most available first: p3 (10), p2 (5), p1 (1).
    for seed in 0..8 {
        let g = place(&c, json!({"num_replicas": 1}), seed).unwrap();
        assert_eq!(g.peers, ["p3"]);
    }
    let g = place(&c, json!({"num_replicas": 2, "max_bytes": 2 * GB}), 1).unwrap();
    assert_eq!(
        g.peers.iter().cloned().collect::<BTreeSet<_>>(),
        ["p2", "p3"].map(String::from).into()
    );
    let e = place(&c, json!({"num_replicas": 3, "max_bytes": 2 * GB}), 1).unwrap_err();
    assert_eq!(
        e.description,
        "no suitable peers for placement, insufficient storage"
    );
    // Memory streams count memory.
    let e = place(
        &c,
        json!({"num_replicas": 1, "storage": "memory", "max_bytes": 2 * GB}),
        1,
    )
    .unwrap_err();
    assert_eq!(
        e.description,
        "no suitable peers for placement, insufficient storage"
    );
}

#[test]
fn replicated_streams_prefer_servers_with_fewer_replicated_assets() {
    let mut c = five();
    c.servers[0].ha_assets = 4;
    c.servers[1].ha_assets = 1;
    for seed in 0..8 {
        let g = place(&c, json!({"num_replicas": 2}), seed).unwrap();
        assert_eq!(
            g.peers.iter().cloned().collect::<BTreeSet<_>>(),
            ["p2", "p3"].map(String::from).into(),
            "seed {seed}"
        );
    }
}

#[test]
fn replica_count_errors() {
    let c = five();
    let e = place(&c, json!({"num_replicas": 6}), 1).unwrap_err();
    assert_eq!((e.code, e.err_code), (500, 10052));
    assert_eq!(e.description, "maximum replicas is 5");
    let e = place(&c, json!({"num_replicas": -1}), 1).unwrap_err();
    assert_eq!((e.code, e.err_code), (400, 10133));
    assert_eq!(e.description, "replicas count cannot be negative");
    // More replicas than servers in the cluster.
    let e = place(&c, json!({"num_replicas": 4}), 1).unwrap_err();
    assert_eq!(e.err_code, 10005);
    assert_eq!(e.description, "no suitable peers for placement");
    // Not clustered: replicas > 1 is refused, 1 is fine.
    let single = Cluster {
        clustered: false,
        ..five()
    };
    let e = place(&single, json!({"num_replicas": 3}), 1).unwrap_err();
    assert_eq!((e.code, e.err_code), (500, 10074));
    assert_eq!(
        e.description,
        "replicas > 1 not supported in non-clustered mode"
    );
    // No meta leader: temporarily unavailable.
    let leaderless = Cluster {
        has_leader: false,
        ..five()
    };
    let e = place(&leaderless, json!({"num_replicas": 1}), 1).unwrap_err();
    assert_eq!((e.code, e.err_code), (503, 10008));
    assert_eq!(e.description, "JetStream system temporarily unavailable");
}

#[test]
fn an_unknown_cluster_or_no_servers_at_all() {
    let e = place(&five(), json!({"placement": {"cluster": "NOPE"}}), 1).unwrap_err();
    assert_eq!(e.description, "no suitable peers for placement");
    let e = place(&cluster(Vec::new()), json!({}), 1).unwrap_err();
    assert_eq!(
        e.description,
        "no suitable peers for placement, jetstream not enabled in cluster"
    );
    let e = place_stream(&five(), &cfg(json!({})), "", &[], &mut SplitMix64::new(1)).unwrap_err();
    assert_eq!(
        e.description,
        "no suitable peers for placement, miscellaneous issue"
    );
}

#[test]
fn alternates_are_tried_when_no_cluster_was_asked_for() {
    let c = five();
    let v = cfg(json!({"num_replicas": 2, "placement": {"tags": ["az:1"]}}));
    // C1 has one az:1 server, C2 has one too: neither can hold two.
    let e = place_stream(&c, &v, "C1", &["C2".into()], &mut SplitMix64::new(1)).unwrap_err();
    assert_eq!(
        e.description,
        "no suitable peers for placement, tags not matched ['az:1']"
    );
    let v = cfg(json!({"num_replicas": 2, "placement": {"tags": ["az:2"]}}));
    let mut c2 = c.clone();
    c2.servers.push(server(6, "C2", &["az:2"]));
    let g = place_stream(&c2, &v, "C1", &["C2".into()], &mut SplitMix64::new(1)).unwrap();
    assert_eq!(g.cluster, "C2");
}

#[test]
fn scale_up_keeps_the_peers_and_scale_down_keeps_the_first() {
    let c = five();
    let g = place(&c, json!({"num_replicas": 1}), 5).unwrap();
    let up = rescale(
        &c,
        &g,
        &cfg(json!({"num_replicas": 3})),
        &mut SplitMix64::new(9),
    )
    .unwrap();
    assert_eq!(up[0], g.peers[0]);
    assert_eq!(up.iter().collect::<BTreeSet<_>>().len(), 3);
    let g3 = RaftGroup {
        peers: up.clone(),
        ..g
    };
    let down = rescale(
        &c,
        &g3,
        &cfg(json!({"num_replicas": 2})),
        &mut SplitMix64::new(9),
    )
    .unwrap();
    assert_eq!(down, up[..2]);
}

#[test]
fn a_removed_peer_is_replaced_by_another_server_of_the_cluster() {
    let mut c = five();
    c.servers.push(server(6, "C1", &[]));
    let g = RaftGroup {
        name: "S-R3F-x".into(),
        peers: vec!["p1".into(), "p2".into(), "p3".into()],
        storage: "file".into(),
        cluster: "C1".into(),
        preferred: String::new(),
    };
    let v = cfg(json!({"num_replicas": 3}));
    let r = replace_peer(&c, &g, &v, "p2", &mut SplitMix64::new(1)).unwrap();
    assert_eq!(r.as_deref(), Some("p6"));
    c.servers.pop();
    assert_eq!(
        replace_peer(&c, &g, &v, "p2", &mut SplitMix64::new(1)).unwrap(),
        None
    );
    let e = replace_peer(&c, &g, &v, "p5", &mut SplitMix64::new(1)).unwrap_err();
    assert_eq!(
        (e.code, e.err_code, e.description.as_str()),
        (400, 10040, "peer not a member")
    );
}

#[test]
fn consumers_go_on_online_stream_peers() {
    let mut c = five();
    let stream = RaftGroup {
        name: "S-R3F-x".into(),
        peers: vec!["p1".into(), "p2".into(), "p3".into()],
        storage: "file".into(),
        cluster: "C1".into(),
        preferred: String::new(),
    };
    let g = place_consumer(&c, &stream, 3, 0, &mut SplitMix64::new(2)).unwrap();
    assert_eq!(g.peers.len(), 3);
    assert!(g.name.starts_with("C-R3F-"));
    let g = place_consumer(&c, &stream, 3, 1, &mut SplitMix64::new(2)).unwrap();
    assert_eq!(g.peers.len(), 1);
    let e = place_consumer(&c, &stream, 3, 4, &mut SplitMix64::new(2)).unwrap_err();
    assert_eq!((e.code, e.err_code), (400, 10126));
    c.servers[0].offline = true;
    let e = place_consumer(&c, &stream, 3, 0, &mut SplitMix64::new(2)).unwrap_err();
    assert_eq!(
        (e.code, e.err_code, e.description.as_str()),
        (503, 10023, "insufficient resources")
    );
}

#[test]
fn meta_stepdown_hands_over_within_the_named_cluster() {
    use crate::jetstream::api::Placement;
    let mut c = five();
    let mut rng = SplitMix64::new(3);
    assert_eq!(stepdown_target(&c, "p1", None, &mut rng), Ok(None));
    let c2 = Placement {
        cluster: "C2".into(),
        ..Placement::default()
    };
    let picked: BTreeSet<String> = (0..32)
        .map(|_| {
            stepdown_target(&c, "p1", Some(&c2), &mut rng)
                .unwrap()
                .unwrap()
        })
        .collect();
    assert_eq!(picked, ["p4", "p5"].map(String::from).into());
    let c1 = Placement {
        cluster: "C1".into(),
        ..Placement::default()
    };
    for _ in 0..16 {
        let p = stepdown_target(&c, "p1", Some(&c1), &mut rng)
            .unwrap()
            .unwrap();
        assert_ne!(p, "p1", "never itself");
    }
    let tags = Placement {
        cluster: "C1".into(),
        tags: vec!["ssd".into()],
        ..Placement::default()
    };
    let e = stepdown_target(&c, "p1", Some(&tags), &mut rng).unwrap_err();
    assert_eq!((e.code, e.err_code), (400, 10011));
    c.servers[3].offline = true;
    c.servers[4].offline = true;
    let e = stepdown_target(&c, "p1", Some(&c2), &mut rng).unwrap_err();
    assert_eq!(
        (e.code, e.err_code, e.description.as_str()),
        (400, 10005, "no replacement peer connected")
    );
}
