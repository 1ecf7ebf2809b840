//! Account usage on clustered JetStream, three servers routed together: `$JS.API.INFO`
//! counts the account's API requests and errors whichever server they went to, and its
//! streams' bytes once per replica, as nats-server 2.9.10 does.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use natsd_tests::cluster::TestCluster;
use natsd_tests::jscluster::{self, api_within, app, info_until};
use natsd_tests::{both, ServerKind};
use serde_json::{json, Value};

both!(account_info_counts_requests_errors_and_replicated_bytes);

/// How long the cluster may take to elect or converge.
const CONVERGE: Duration = Duration::from_secs(20);

async fn start(kind: ServerKind) -> (TestCluster, Vec<tempfile::TempDir>) {
    let (cluster, dirs) = jscluster::start(kind, 3).await;
    jscluster::meta_leader(&cluster, 3, CONVERGE).await;
    (cluster, dirs)
}

fn cfg(name: &str, storage: &str, replicas: u64) -> Value {
    let mut c = jscluster::stream_cfg(name, replicas);
    c["storage"] = json!(storage);
    c
}

async fn account_info(c: &async_nats::Client) -> Value {
    let v = api_within(c, "$JS.API.INFO", Value::Null, CONVERGE).await;
    assert!(v.get("error").is_none(), "{v}");
    v
}

/// Asks `$JS.API.INFO` until `ok` holds, within [`CONVERGE`].
async fn account_info_until(c: &async_nats::Client, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + CONVERGE;
    loop {
        let v = account_info(c).await;
        if ok(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "account info never fit: {v}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A file stream and a memory stream of three replicas and a memory stream of one: the
/// account's `memory` and `storage` are each stream's bytes times its replicas; `streams` and
/// `consumers` count each once; `api.total` counts every request (an INFO asked of one server
/// sees the one asked of another just before, but not itself); `api.errors` counts an error
/// another server's request drew.
async fn account_info_counts_requests_errors_and_replicated_bytes(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    let c1 = app(&cluster, 1).await;
    let c2 = app(&cluster, 2).await;
    jscluster::create(&c0, cfg("F", "file", 3), CONVERGE).await;
    jscluster::create(&c0, cfg("M", "memory", 3), CONVERGE).await;
    jscluster::create(&c0, cfg("M1", "memory", 1), CONVERGE).await;
    let js = async_nats::jetstream::new(c0.clone());
    for s in ["f.a", "m.a", "m1.a"] {
        jscluster::publish_all(&js, s, (0..5).map(|i| format!("{i:0100}")), CONVERGE).await;
    }
    let created = api_within(
        &c0,
        "$JS.API.CONSUMER.DURABLE.CREATE.F.d",
        json!({"stream_name": "F", "config": {"durable_name": "d", "ack_policy": "explicit"}}),
        CONVERGE,
    )
    .await;
    assert!(created.get("error").is_none(), "{created}");
    let bytes = |v: &Value| v["state"]["bytes"].as_u64().unwrap();
    let f = bytes(&info_until(&c0, "F", CONVERGE, |v| v["state"]["messages"] == 5).await);
    let m = bytes(&info_until(&c0, "M", CONVERGE, |v| v["state"]["messages"] == 5).await);
    let m1 = bytes(&info_until(&c0, "M1", CONVERGE, |v| v["state"]["messages"] == 5).await);
    assert!(f > 0 && m > 0 && m1 > 0);

    let v = account_info_until(&c1, |v| v["storage"] == 3 * f && v["memory"] == 3 * m + m1).await;
    assert_eq!(v["streams"], 3, "{v}");
    assert_eq!(v["consumers"], 1, "{v}");
    let errors = v["api"]["errors"].as_u64().unwrap();

    // Each INFO sees the one before it, asked of whichever server.
    let t1 = account_info(&c1).await["api"]["total"].as_u64().unwrap();
    let t2 = account_info(&c2).await["api"]["total"].as_u64().unwrap();
    let t3 = account_info(&c0).await["api"]["total"].as_u64().unwrap();
    // Three creates and a consumer create at least (nats-server adds what the stream leaders
    // counted to the meta leader's numbers a little later; natsd counts each at once, three
    // stream infos and an INFO more).
    let least = if kind == ServerKind::Natsd { 8 } else { 4 };
    assert!(t1 >= least, "{t1}");
    assert_eq!((t2, t3), (t1 + 1, t1 + 2));

    // An error answered for a request through n2 shows in an INFO through n1.
    let nope = api_within(&c2, "$JS.API.STREAM.INFO.NOPE", Value::Null, CONVERGE).await;
    assert_eq!(nope["error"]["err_code"], 10059, "{nope}");
    account_info_until(&c1, |v| v["api"]["errors"] == errors + 1).await;
}
