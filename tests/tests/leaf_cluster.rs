//! A clustered hub's JetStream across a leaf link: three servers routed together with
//! JetStream in domain `hub`, a leaf (JetStream in domain `leaf`) attached to one of them as
//! the hub's JetStream account. A client of the leaf creates a replicated stream through
//! `$JS.hub.API`, publishes into it and reads it back, whichever server leads the meta
//! group and the stream. Every pairing of natsd and nats-server 2.9.10 as hub (all three
//! servers) and leaf. Waits poll with deadlines.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::jetstream;
use natsd_tests::jscluster::{
    api_within, app, b64_decode, info_until, meta_leader, publish_all, stream_cfg,
};
use natsd_tests::{free_port, ServerKind, TestServer};
use serde_json::{json, Value};

natsd_tests::leaf_pairs!(
    clustered_hub_api_across_the_link,
    clustered_stream_sources_across_the_link
);

/// Elections and a link on a loaded machine.
const LIMIT: Duration = Duration::from_secs(60);

/// A hub of three servers (domain `hub`, leaf links on the first) and a leaf (domain
/// `leaf`) attached to it as the hub's JetStream account.
async fn start(
    hub: ServerKind,
    leaf: ServerKind,
) -> (
    natsd_tests::cluster::TestCluster,
    Vec<tempfile::TempDir>,
    TestServer,
    tempfile::TempDir,
) {
    let port = free_port();
    let (c, dirs) = natsd_tests::jscluster::start_with(hub, 3, "domain: hub", |i| {
        if i == 0 {
            format!("leafnodes {{ listen: \"127.0.0.1:{port}\" }}\n")
        } else {
            String::new()
        }
    })
    .await;
    meta_leader(&c, 3, LIMIT).await;
    let ld = tempfile::tempdir().unwrap();
    let l = TestServer::start(
        leaf,
        &format!(
            "server_name: leaf\njetstream {{ store_dir: {:?}, domain: leaf }}\nleafnodes {{ remotes: [ {{ url: \"nats://a:a@127.0.0.1:{port}\" }} ], reconnect: 1 }}\n",
            ld.path().to_str().unwrap()
        ),
    )
    .await;
    (c, dirs, l, ld)
}

async fn clustered_hub_api_across_the_link(hub: ServerKind, leaf: ServerKind) {
    let (_c, _dirs, l, _ld) = start(hub, leaf).await;
    let lc = l.client().await;
    // Asked again until the link and the hub's API interest are up.
    let v = api_within(&lc, "$JS.hub.API.INFO", Value::Null, LIMIT).await;
    assert_eq!(v["domain"], "hub", "{v}");
    let v = api_within(
        &lc,
        "$JS.hub.API.STREAM.CREATE.ORD",
        stream_cfg("ORD", 3),
        LIMIT,
    )
    .await;
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["config"]["num_replicas"], 3, "{v}");
    let js = jetstream::with_domain(lc.clone(), "hub");
    let acked = publish_all(&js, "ord.1", (0..3).map(|i| format!("m{i}")), LIMIT).await;
    let seqs: Vec<u64> = acked.iter().map(|a| a.0).collect();
    assert_eq!(seqs, [1, 2, 3]);
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let v = api_within(&lc, "$JS.hub.API.STREAM.INFO.ORD", Value::Null, LIMIT).await;
        if v["state"]["messages"] == 3
            && v["cluster"]["replicas"].as_array().map(Vec::len) == Some(2)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stream info across the link: {v}"
        );
        // Poll interval; the wait is bounded by the deadline.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let v = api_within(
        &lc,
        "$JS.hub.API.STREAM.MSG.GET.ORD",
        serde_json::json!({"seq": 2}),
        LIMIT,
    )
    .await;
    assert_eq!(v["message"]["subject"], "ord.1", "{v}");
}

/// The messages 1..=n of stream `name` of the hub, as payloads.
async fn payloads(c: &async_nats::Client, name: &str, n: u64) -> Vec<String> {
    let mut out = Vec::new();
    for seq in 1..=n {
        let v = api_within(
            c,
            &format!("$JS.API.STREAM.MSG.GET.{name}"),
            json!({ "seq": seq }),
            LIMIT,
        )
        .await;
        let data = v["message"]["data"].as_str().unwrap_or_default();
        out.push(String::from_utf8_lossy(&b64_decode(data)).into_owned());
    }
    out
}

/// A replicated stream of the hub mirrors, another sources, a stream of the leaf's domain
/// (`external: {api: "$JS.leaf.API"}`), whichever server leads them; the copies go on in
/// order after their leader steps down.
async fn clustered_stream_sources_across_the_link(hub: ServerKind, leaf: ServerKind) {
    let (c, _dirs, l, _ld) = start(hub, leaf).await;
    let lc = l.client().await;
    let v = api_within(
        &lc,
        "$JS.API.STREAM.CREATE.O",
        json!({"name": "O", "subjects": ["o.>"]}),
        LIMIT,
    )
    .await;
    assert!(v.get("error").is_none(), "{v}");
    let ljs = jetstream::new(lc.clone());
    let publish = |range: std::ops::Range<u64>| {
        let ljs = ljs.clone();
        async move {
            for i in range {
                let ack = ljs.publish(format!("o.{i}"), format!("m{i}").into()).await;
                let ack = ack.unwrap().await.unwrap();
                assert_eq!(ack.sequence, i + 1);
            }
        }
    };
    publish(0..3).await;
    let hc = app(&c, 1).await;
    let v = api_within(&hc, "$JS.leaf.API.INFO", Value::Null, LIMIT).await;
    assert_eq!(v["domain"], "leaf", "{v}");
    let ext = |deliver: &str| json!({"api": "$JS.leaf.API", "deliver": deliver});
    for cfg in [
        json!({"name": "MR", "num_replicas": 3, "mirror": {"name": "O", "external": ext("")}}),
        json!({"name": "AGG", "num_replicas": 3, "subjects": ["agg"],
               "sources": [{"name": "O", "external": ext("dlv.hub")}]}),
    ] {
        let name = cfg["name"].as_str().unwrap().to_owned();
        let v = api_within(&hc, &format!("$JS.API.STREAM.CREATE.{name}"), cfg, LIMIT).await;
        assert!(v.get("error").is_none(), "{v}");
    }
    let wait = |n: u64| {
        let hc = hc.clone();
        async move {
            for name in ["MR", "AGG"] {
                let v = info_until(&hc, name, LIMIT, |v| {
                    let have = v["state"]["messages"].as_u64().unwrap_or(0);
                    assert!(have <= n, "{name} copied more than {n}: {v}");
                    have == n
                })
                .await;
                assert_eq!(v["state"]["last_seq"], n, "{name}: {v}");
                let want: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
                assert_eq!(payloads(&hc, name, n).await, want, "{name}");
            }
        }
    };
    wait(3).await;
    publish(3..5).await;
    wait(5).await;
    for name in ["MR", "AGG"] {
        let v = api_within(
            &hc,
            &format!("$JS.API.STREAM.LEADER.STEPDOWN.{name}"),
            Value::Null,
            LIMIT,
        )
        .await;
        assert!(v.get("error").is_none(), "{v}");
    }
    publish(5..8).await;
    wait(8).await;
}
