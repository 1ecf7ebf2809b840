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
use natsd_tests::jscluster::{api_within, meta_leader, publish_all, stream_cfg};
use natsd_tests::{free_port, ServerKind, TestServer};
use serde_json::Value;

natsd_tests::leaf_pairs!(clustered_hub_api_across_the_link);

/// Elections and a link on a loaded machine.
const LIMIT: Duration = Duration::from_secs(60);

async fn clustered_hub_api_across_the_link(hub: ServerKind, leaf: ServerKind) {
    let port = free_port();
    let (c, _dirs) = natsd_tests::jscluster::start_with(hub, 3, "domain: hub", |i| {
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
