//! Placement weighing what servers have left, three servers routed together with
//! `max_file_store: 10MB` each: streams whose `max_bytes` one server cannot hold twice go to
//! different servers, and one that no server has room for is refused with 10005
//! "insufficient storage".

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use natsd_tests::cluster::TestCluster;
use natsd_tests::jscluster::{self, api_within, app, info_until, placed_on};
use natsd_tests::{both, ServerKind};
use serde_json::{json, Value};

both!(reserved_storage_spreads_streams_and_refuses_when_full);

/// How long the cluster may take to elect what a step needs (generous: only a failing step
/// waits this long, on a loaded machine).
const ELECTION: Duration = Duration::from_secs(40);

const MB: u64 = 1024 * 1024;

async fn start(kind: ServerKind) -> (TestCluster, Vec<tempfile::TempDir>) {
    let (cluster, dirs) =
        jscluster::start_with(kind, 3, "max_file_store: 10MB", |_| String::new()).await;
    jscluster::meta_leader(&cluster, 3, ELECTION).await;
    (cluster, dirs)
}

fn config(name: &str, replicas: u64, max_bytes: u64) -> Value {
    json!({"name": name, "subjects": [format!("{}.>", name.to_lowercase())],
           "num_replicas": replicas, "storage": "file", "max_bytes": max_bytes})
}

/// Each server holds 10 MB: three R1 streams reserving 6 MB each take one server each; a
/// fourth finds no room (10005); an R3 stream of 4 MB still fits on all three.
async fn reserved_storage_spreads_streams_and_refuses_when_full(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    let mut on = BTreeSet::new();
    for name in ["R0", "R1", "R2"] {
        create_reserving(kind, &c0, config(name, 1, 6 * MB)).await;
        let v = info_until(&c0, name, ELECTION, |_| true).await;
        let servers = placed_on(&v);
        assert_eq!(servers.len(), 1, "{v}");
        assert!(on.insert(servers[0].clone()), "{name} shares a server: {v}");
    }
    let v = api_within(
        &c0,
        "$JS.API.STREAM.CREATE.R3",
        config("R3", 1, 6 * MB),
        ELECTION,
    )
    .await;
    assert_eq!(v["error"]["code"], 400, "{v}");
    assert_eq!(v["error"]["err_code"], 10005, "{v}");
    assert_eq!(
        v["error"]["description"], "no suitable peers for placement, insufficient storage",
        "{v}"
    );
    jscluster::create(&c0, config("ALL", 3, 4 * MB), ELECTION).await;
    let v = info_until(&c0, "ALL", ELECTION, |v| placed_on(v).len() == 3).await;
    assert_eq!(placed_on(&v), ["n0", "n1", "n2"], "{v}");
}

/// Creates a stream that reserves storage. nats-server 2.9.10 places by the usage its servers
/// last reported, so on a loaded machine it may put a second reservation on a server that
/// cannot hold it, whose stream leader then refuses the create (10047 "insufficient storage
/// resources available") and the assignment is dropped: asking again places it anew. natsd's
/// meta leader counts its own assignments at once, so its run gets no such retry.
async fn create_reserving(kind: ServerKind, c: &async_nats::Client, cfg: Value) {
    let name = cfg["name"].as_str().unwrap().to_owned();
    let subject = format!("$JS.API.STREAM.CREATE.{name}");
    for _ in 0..5 {
        let v = api_within(c, &subject, cfg.clone(), ELECTION).await;
        if kind == ServerKind::NatsServer && v["error"]["err_code"] == 10047 {
            continue;
        }
        assert!(v.get("error").is_none(), "{v}");
        return;
    }
    panic!("{name}: nats-server refused it five times for storage");
}
