//! Clustered JetStream through the embedding API: three servers in one process, a stream's
//! leader and the meta leader stepped down by library calls. natsd-only: these are library
//! calls.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{start, test_options};
use natsd::{Options, Server};
use natsd_core::options::{ClusterConfig, JetStreamConfig};
use serde_json::{json, Value};

/// How long the cluster may take to elect what a step needs.
const ELECTION: Duration = Duration::from_secs(20);

fn store_dir(i: usize) -> PathBuf {
    let d = std::env::temp_dir().join(format!("natsd-jsc-embed-{i}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts(i: usize, seed: Option<String>) -> Options {
    Options {
        server_name: Some(format!("e{i}")),
        jetstream: Some(JetStreamConfig {
            store_dir: Some(store_dir(i)),
            ..JetStreamConfig::default()
        }),
        cluster: Some(ClusterConfig {
            name: Some("embed".to_owned()),
            host: "127.0.0.1".to_owned(),
            port: Some(0),
            routes: seed.into_iter().collect(),
            ..ClusterConfig::default()
        }),
        ..test_options()
    }
}

/// Waits until `f` gives a value, within [`ELECTION`].
async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + ELECTION;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The meta leader's name as server 0 sees it, once the group has three members.
fn meta_leader(s: &Server) -> Option<String> {
    let m = s.jsz().meta_cluster?;
    (!m.leader.is_empty() && m.cluster_size == 3).then_some(m.leader)
}

/// A request answered within five seconds, or `None`.
async fn ask(c: &async_nats::Client, subject: &str, body: &Value) -> Option<Value> {
    let payload = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        c.request(subject.to_owned(), payload.into()),
    )
    .await;
    match r {
        Ok(Ok(m)) => serde_json::from_slice(&m.payload).ok(),
        _ => None,
    }
}

/// The stream's leader once it has one.
async fn stream_leader(c: &async_nats::Client, other_than: &str) -> String {
    let deadline = tokio::time::Instant::now() + ELECTION;
    loop {
        if let Some(v) = ask(c, "$JS.API.STREAM.INFO.S", &Value::Null).await {
            let l = v["cluster"]["leader"].as_str().unwrap_or_default();
            if !l.is_empty() && l != other_than {
                return l.to_owned();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new stream leader"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn index(name: &str) -> usize {
    name.trim_start_matches('e').parse().expect("e<i>")
}

#[tokio::test]
async fn stream_and_meta_leaders_step_down_through_the_library() {
    let first = start(opts(0, None)).await;
    let seed = format!("nats://{}", first.cluster_addr().expect("cluster listener"));
    let mut servers = vec![first];
    for i in 1..3 {
        servers.push(start(opts(i, Some(seed.clone()))).await);
    }
    // Every server agrees on the leader (the group is settled) before it is asked to go.
    let leader = eventually("an agreed meta leader", || {
        let l = meta_leader(&servers[0])?;
        servers
            .iter()
            .all(|s| meta_leader(s).as_deref() == Some(l.as_str()))
            .then_some(l)
    })
    .await;

    // Only clustered servers step down; only the leader does.
    let follower = (index(&leader) + 1) % 3;
    let e = servers[follower].stepdown_meta().unwrap_err();
    assert_eq!(e.err_code, 10009, "{e:?}");
    servers[index(&leader)]
        .stepdown_meta()
        .expect("meta stepdown");
    let next = eventually("another meta leader", || {
        meta_leader(&servers[0]).filter(|l| *l != leader)
    })
    .await;
    assert_ne!(next, leader);

    let c = async_nats::connect(servers[0].client_url().expect("client url"))
        .await
        .expect("connect");
    let cfg = json!({"name": "S", "subjects": ["s"], "num_replicas": 3});
    let deadline = tokio::time::Instant::now() + ELECTION;
    while ask(&c, "$JS.API.STREAM.CREATE.S", &cfg).await.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no create answer");
    }
    let sl = stream_leader(&c, "").await;
    let e = servers[index(&sl)]
        .stepdown_stream("$G", "NOPE")
        .unwrap_err();
    assert_eq!(e.err_code, 10059, "{e:?}");
    let e = servers[(index(&sl) + 1) % 3]
        .stepdown_stream("$G", "S")
        .unwrap_err();
    assert_eq!(e.err_code, 10009, "{e:?}");
    servers[index(&sl)]
        .stepdown_stream("$G", "S")
        .expect("stream stepdown");
    let moved = stream_leader(&c, &sl).await;
    assert_ne!(moved, sl);
    assert!(!servers[index(&moved)].raftz().is_empty());

    for s in &servers {
        s.shutdown();
    }
    for s in &servers {
        s.wait_for_shutdown().await;
    }
    for i in 0..3 {
        let _ = std::fs::remove_dir_all(store_dir(i));
    }
}
