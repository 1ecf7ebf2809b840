//! Clustered JetStream next to nats-server 2.9.10: natsd does not speak nats-server's Raft
//! protocol, so with a nats-server running JetStream in the cluster natsd forms no meta
//! group and says why (log, `/jsz`, `/healthz`), while messages keep crossing the routes both
//! ways; a nats-server without JetStream changes nothing.
//!
//! Mixed clusters need both binaries, so there is no "against both servers" variant here:
//! each test skips (and says so) when nats-server is not installed.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::cluster::{await_interest, monitor_get, TestCluster};
use natsd_tests::{flush, within, ServerKind};
use serde_json::Value;

use ServerKind::{NatsServer, Natsd};

/// How long the refusal (or a meta leader) may take to show.
const SETTLE: Duration = Duration::from_secs(20);

fn go_available() -> bool {
    if NatsServer.available() {
        return true;
    }
    eprintln!("note: nats-server is not installed; mixed JetStream cluster test skipped");
    false
}

/// JetStream in its own store directory (`js` false: none).
fn top(dirs: &[tempfile::TempDir], i: usize, js: bool) -> String {
    if js {
        format!(
            "jetstream {{ store_dir: \"{}\" }}\n",
            dirs[i].path().display()
        )
    } else {
        String::new()
    }
}

fn dirs() -> Vec<tempfile::TempDir> {
    (0..3).map(|_| tempfile::tempdir().unwrap()).collect()
}

/// Polls `/jsz` `meta_cluster` and `/healthz` of node `i` until `done` holds for them.
async fn wait_monitor(
    c: &TestCluster,
    i: usize,
    what: &str,
    done: impl Fn(&Value, &Value) -> bool,
) -> (Value, Value) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let port = c.nodes[i].http_port;
        let meta = monitor_get(port, "/jsz")
            .await
            .and_then(|j| j.get("meta_cluster").cloned())
            .unwrap_or(Value::Null);
        let health = monitor_get(port, "/healthz").await.unwrap_or(Value::Null);
        if done(&meta, &health) {
            return (meta, health);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {i}: no {what} within {SETTLE:?}: meta_cluster {meta}, healthz {health}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A message published on node `from` reaches a subscriber on node `to`.
async fn crosses(c: &TestCluster, from: usize, to: usize) {
    let (p, s) = (c.client(from).await, c.client(to).await);
    let subject = format!("mixed.{from}.{to}");
    let mut sub = within("subscribe", s.subscribe(subject.clone()))
        .await
        .unwrap();
    flush(&s).await;
    await_interest(&p, &subject, &mut sub).await;
    p.publish(subject.clone(), Bytes::from_static(b"hello"))
        .await
        .unwrap();
    flush(&p).await;
    let m = within("the routed message", sub.next()).await.unwrap();
    assert_eq!(m.payload.as_ref(), b"hello", "{from} -> {to}");
}

/// Two natsd servers and a nats-server (`n0`, started first), all with JetStream: each natsd
/// server logs an error naming `n0`, forms no meta group, shows the refusal in `/jsz` and
/// fails `/healthz` with it; messages cross between nats-server and natsd both ways.
#[tokio::test]
async fn natsd_refuses_a_meta_group_with_a_jetstream_nats_server() {
    if !go_available() {
        return;
    }
    let dirs = dirs();
    let kinds = [NatsServer, Natsd, Natsd];
    let cluster = TestCluster::start_mesh(&kinds, |i| top(&dirs, i, true)).await;
    for i in [1, 2] {
        let (meta, health) = wait_monitor(&cluster, i, "refusal", |m, h| {
            m["refused_servers"] == serde_json::json!(["n0"]) && h["status"] == "unavailable"
        })
        .await;
        // nats-server's leaderless shape (no `leader`), plus why.
        assert!(meta.get("leader").is_none(), "node {i}: {meta}");
        assert_eq!(meta["cluster_size"], 0, "node {i}: {meta}");
        assert_eq!(meta["name"], natsd_tests::cluster::CLUSTER_NAME, "{meta}");
        let why = meta["refused"].as_str().unwrap_or_default();
        assert!(
            why.contains("nats-server n0") && why.contains("$NRG"),
            "{meta}"
        );
        assert_eq!(health["error"].as_str(), Some(why), "node {i}: {health}");
        let log = cluster.nodes[i].server.log();
        let line = log
            .lines()
            .find(|l| l.contains("refusing to form or join a meta group"))
            .unwrap_or_else(|| panic!("node {i} logged no refusal:\n{log}"));
        assert!(
            line.contains("[ERR]") && line.contains("nats-server n0"),
            "{line}"
        );
        assert!(
            !log.contains("forming the meta group"),
            "node {i} formed a meta group:\n{log}"
        );
    }
    // Core messaging is untouched: nats-server to natsd and back, and natsd to natsd.
    crosses(&cluster, 0, 1).await;
    crosses(&cluster, 2, 0).await;
    crosses(&cluster, 1, 2).await;
}

/// A nats-server without JetStream in the cluster is no obstacle: the two natsd servers form
/// their meta group and report healthy.
#[tokio::test]
async fn a_nats_server_without_jetstream_is_no_obstacle() {
    if !go_available() {
        return;
    }
    let dirs = dirs();
    let kinds = [NatsServer, Natsd, Natsd];
    let cluster = TestCluster::start_mesh(&kinds, |i| top(&dirs, i, i > 0)).await;
    for i in [1, 2] {
        let (meta, _) = wait_monitor(&cluster, i, "meta leader", |m, h| {
            m["leader"].as_str().is_some_and(|l| !l.is_empty())
                && m["cluster_size"] == 2
                && h["status"] == "ok"
        })
        .await;
        assert!(meta.get("refused").is_none(), "node {i}: {meta}");
        assert!(meta.get("refused_servers").is_none(), "node {i}: {meta}");
    }
    crosses(&cluster, 0, 2).await;
    crosses(&cluster, 1, 0).await;
}

/// A nats-server with JetStream that joins after the natsd servers formed their meta group:
/// the group is left as it is (its two members) but refused in `/jsz` and `/healthz`; once the
/// nats-server is gone, the refusal goes and `/healthz` is ok again.
#[tokio::test]
async fn a_late_jetstream_nats_server_is_refused_and_then_forgotten() {
    if !go_available() {
        return;
    }
    let dirs = dirs();
    let mut cluster = TestCluster::start_mesh(&[Natsd, Natsd], |i| top(&dirs, i, true)).await;
    for i in [0, 1] {
        wait_monitor(&cluster, i, "meta leader", |m, h| {
            m["leader"].as_str().is_some_and(|l| !l.is_empty()) && h["status"] == "ok"
        })
        .await;
    }
    cluster.add_node(NatsServer, &top(&dirs, 2, true)).await;
    for i in [0, 1] {
        let (meta, health) = wait_monitor(&cluster, i, "refusal", |m, h| {
            m["refused_servers"] == serde_json::json!(["n2"]) && h["status"] == "unavailable"
        })
        .await;
        assert_eq!(meta["cluster_size"], 2, "node {i}: the group stays: {meta}");
        assert!(
            health["error"].as_str().is_some_and(|e| e.contains("n2")),
            "{health}"
        );
    }
    crosses(&cluster, 2, 0).await;
    crosses(&cluster, 1, 2).await;
    // The nats-server leaves (killed on drop): the refusal ends.
    drop(cluster.nodes.pop());
    for i in [0, 1] {
        let (meta, _) = wait_monitor(&cluster, i, "the refusal to end", |m, h| {
            m.get("refused_servers").is_none() && h["status"] == "ok"
        })
        .await;
        assert_eq!(meta["cluster_size"], 2, "{meta}");
        assert!(meta.get("refused").is_none(), "{meta}");
    }
    assert!(cluster.nodes[0]
        .server
        .log()
        .contains("no nats-server with JetStream is routed any more"));
}
