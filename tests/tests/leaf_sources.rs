//! Mirrors and sources across a leaf link: a stream in the leaf's JetStream domain copies a
//! stream of the hub's domain through `external: {api: "$JS.hub.API", deliver}`, as
//! nats-server 2.9.10 does it (an ephemeral push consumer on the origin, created through the
//! API prefix, delivering under the deliver prefix with flow control and heartbeats). Every
//! pairing of natsd and nats-server 2.9.10, as hub or leaf: natsd must both source across
//! the link and answer a nats-server stream sourcing from it. The link is cut twice (the hub
//! restarts, then the leaf restarts while the hub takes messages) and the copies must go on
//! from where they were, nothing missing and nothing twice. Waits poll with deadlines.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use natsd_tests::js::api;
use natsd_tests::{free_port, within, ServerKind, TestServer};
use serde_json::{json, Value};

natsd_tests::leaf_pairs!(mirror_and_source_across_the_link);

/// How long a link, its interest and a copy may take on a loaded machine (a nats-server
/// source retries a lost consumer only every few seconds).
const COPY: Duration = Duration::from_secs(40);

fn hub_config(store: &Path, port: u16) -> String {
    format!(
        "server_name: hub\njetstream {{ store_dir: {:?}, domain: hub }}\nleafnodes {{ listen: \"127.0.0.1:{port}\" }}\n",
        store.to_str().unwrap()
    )
}

fn leaf_config(store: &Path, port: u16) -> String {
    format!(
        "server_name: leaf\njetstream {{ store_dir: {:?}, domain: leaf }}\nleafnodes {{ remotes: [ {{ url: \"nats://127.0.0.1:{port}\" }} ], reconnect: 1 }}\n",
        store.to_str().unwrap()
    )
}

/// Polls `$JS.hub.API.INFO` from the leaf's side until the hub answers across the link.
async fn await_hub(c: &async_nats::Client) {
    let deadline = tokio::time::Instant::now() + COPY;
    loop {
        let asked = tokio::time::timeout(
            Duration::from_secs(2),
            c.request("$JS.hub.API.INFO", Bytes::new()),
        )
        .await;
        if let Ok(Ok(m)) = asked {
            let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
            if v["domain"] == "hub" {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub's JetStream not reachable across the link within {COPY:?}"
        );
        // A poll interval: the wait is bounded by the deadline.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes `m<i>` to `orders.<i>` on the hub for each `i`, each acknowledged.
async fn publish(hub: &async_nats::Client, range: std::ops::Range<u64>) {
    let js = jetstream::new(hub.clone());
    for i in range {
        let ack = within(
            "publish",
            js.publish(format!("orders.{i}"), format!("m{i}").into()),
        )
        .await
        .unwrap();
        let ack = within("publish ack", async { ack.await }).await.unwrap();
        assert_eq!(ack.sequence, i + 1, "origin sequence");
    }
}

/// Waits until the leaf's stream `name` holds `n` messages; its info then.
async fn wait_msgs(leaf: &async_nats::Client, name: &str, n: u64) -> Value {
    let deadline = tokio::time::Instant::now() + COPY;
    loop {
        let v = api(leaf, &format!("$JS.API.STREAM.INFO.{name}"), Value::Null).await;
        let have = v["state"]["messages"].as_u64().unwrap_or(0);
        assert!(have <= n, "{name} has more than {n} messages: {v}");
        if have == n {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} did not reach {n} messages within {COPY:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The leaf stream's messages 1..=n as (subject, payload).
async fn contents(leaf: &async_nats::Client, name: &str, n: u64) -> Vec<(String, String)> {
    let st = within("get stream", jetstream::new(leaf.clone()).get_stream(name))
        .await
        .unwrap();
    let mut out = Vec::new();
    for seq in 1..=n {
        let m = within("get message", st.get_raw_message(seq))
            .await
            .unwrap();
        out.push((
            m.subject.to_string(),
            String::from_utf8_lossy(&m.payload).into_owned(),
        ));
    }
    out
}

fn expected(n: u64) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("orders.{i}"), format!("m{i}")))
        .collect()
}

/// Both copies hold `n` messages, in the origin's order, nothing twice.
async fn check_copies(leaf: &async_nats::Client, n: u64) {
    for name in ["M", "S"] {
        let v = wait_msgs(leaf, name, n).await;
        assert_eq!(v["state"]["last_seq"], n, "{name}: {v}");
        assert_eq!(contents(leaf, name, n).await, expected(n), "{name}");
    }
}

/// A mirror (default deliver prefix) and a filtered source (deliver prefix `dlv.leaf`) in
/// the leaf's domain copy the hub's `ORDERS`, and go on after the hub and then the leaf
/// restart.
async fn mirror_and_source_across_the_link(hub: ServerKind, leaf: ServerKind) {
    let (hd, ld) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_port();
    let mut h = TestServer::start(hub, &hub_config(hd.path(), port)).await;
    let mut l = TestServer::start(leaf, &leaf_config(ld.path(), port)).await;
    let (hc, lc) = (h.client().await, l.client().await);
    let v = api(
        &hc,
        "$JS.API.STREAM.CREATE.ORDERS",
        json!({"name": "ORDERS", "subjects": ["orders.>"]}),
    )
    .await;
    assert!(v["error"].is_null(), "{v}");
    publish(&hc, 0..3).await;
    await_hub(&lc).await;
    let ext = |deliver: &str| json!({"api": "$JS.hub.API", "deliver": deliver});
    for cfg in [
        json!({"name": "M", "mirror": {"name": "ORDERS", "external": ext("")}}),
        json!({"name": "S", "sources": [
            {"name": "ORDERS", "filter_subject": "orders.*", "external": ext("dlv.leaf")}
        ]}),
    ] {
        let name = cfg["name"].as_str().unwrap().to_owned();
        let v = api(&lc, &format!("$JS.API.STREAM.CREATE.{name}"), cfg).await;
        assert!(v["error"].is_null(), "{v}");
    }
    check_copies(&lc, 3).await;
    publish(&hc, 3..5).await;
    check_copies(&lc, 5).await;

    // The hub (the origin) restarts: its consumers are gone; the copies ask again.
    drop(hc);
    drop(h);
    h = TestServer::start(hub, &hub_config(hd.path(), port)).await;
    let hc = h.client().await;
    await_hub(&lc).await;
    publish(&hc, 5..8).await;
    check_copies(&lc, 8).await;

    // The leaf restarts while the hub takes more; it resumes after its last copies.
    drop(lc);
    drop(l);
    publish(&hc, 8..10).await;
    l = TestServer::start(leaf, &leaf_config(ld.path(), port)).await;
    let lc = l.client().await;
    check_copies(&lc, 10).await;
    publish(&hc, 10..11).await;
    check_copies(&lc, 11).await;
    assert!(h.is_running() && l.is_running());
}
