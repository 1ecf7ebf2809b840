//! What $JS.API.STREAM.UPDATE refuses on a replicated stream, three servers routed
//! together: each refusal's error code and text as nats-server 2.9.10 gives them, and the
//! stream unchanged after (but for `max_consumers`, which natsd lets change as nats-server
//! 2.10 does).

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use natsd_tests::cluster::TestCluster;
use natsd_tests::jscluster::{self, api_within, app, info_until};
use natsd_tests::{both, ServerKind};
use serde_json::{json, Value};

both!(refused_updates_of_a_replicated_stream);

/// How long the cluster may take to elect what a step needs (generous: only a failing step
/// waits this long, on a loaded machine).
const ELECTION: Duration = Duration::from_secs(40);

async fn start(kind: ServerKind) -> (TestCluster, Vec<tempfile::TempDir>) {
    let (cluster, dirs) = jscluster::start(kind, 3).await;
    jscluster::meta_leader(&cluster, 3, ELECTION).await;
    (cluster, dirs)
}

/// `UP` with `patch` applied over its base config (R3 file stream on `up.>`, deletes and
/// purges denied).
fn up(patch: Value) -> Value {
    let mut base = json!({"name": "UP", "subjects": ["up.>"], "num_replicas": 3,
                          "storage": "file", "deny_delete": true, "deny_purge": true});
    for (k, v) in patch.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

/// Every update below is refused with nats-server 2.9.10's answer; the stream keeps its
/// config and its three replicas.
async fn refused_updates_of_a_replicated_stream(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    jscluster::create(&c0, up(json!({})), ELECTION).await;
    jscluster::create(&c0, jscluster::stream_cfg("OTHER", 3), ELECTION).await;
    info_until(&c0, "UP", ELECTION, |v| {
        v["cluster"]["replicas"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    let invalid = |t: &str| (10052, format!("stream configuration update can not {t}"));
    let cases: Vec<(&str, Value, (u64, String))> = vec![
        (
            "UP",
            up(json!({"storage": "memory"})),
            invalid("change storage type"),
        ),
        (
            "UP",
            up(json!({"retention": "workqueue"})),
            invalid("change retention policy"),
        ),
        (
            "UP",
            up(json!({"deny_delete": false})),
            invalid("cancel deny message deletes"),
        ),
        (
            "UP",
            up(json!({"deny_purge": false})),
            invalid("cancel deny purge"),
        ),
        (
            "UP",
            up(json!({"subjects": ["other.x"]})),
            (10065, "subjects overlap with an existing stream".into()),
        ),
        (
            "UP",
            up(json!({"mirror": {"name": "OTHER"}, "subjects": []})),
            (
                10055,
                "stream mirror configuration can not be updated".into(),
            ),
        ),
        (
            "UP",
            up(json!({"num_replicas": 6})),
            (10052, "maximum replicas is 5".into()),
        ),
        (
            "UP",
            up(json!({"num_replicas": 5})),
            (10005, "no suitable peers for placement".into()),
        ),
        (
            "UP",
            up(json!({"name": "NOPE"})),
            (
                10056,
                "stream name in subject does not match request".into(),
            ),
        ),
        (
            "NOPE",
            up(json!({"name": "NOPE", "subjects": ["nope.>"]})),
            (10059, "stream not found".into()),
        ),
    ];
    for (name, cfg, (code, text)) in cases {
        let v = api_within(
            &c0,
            &format!("$JS.API.STREAM.UPDATE.{name}"),
            cfg.clone(),
            ELECTION,
        )
        .await;
        assert_eq!(
            v["type"], "io.nats.jetstream.api.v1.stream_update_response",
            "{v}"
        );
        assert_eq!(v["error"]["err_code"], code, "{cfg}: {v}");
        assert_eq!(v["error"]["description"], text, "{cfg}: {v}");
    }
    // nats-server 2.9.10 keeps `max_consumers` as created; natsd lets an update change it,
    // as nats-server does from 2.10 on.
    let v = api_within(
        &c0,
        "$JS.API.STREAM.UPDATE.UP",
        up(json!({"max_consumers": 5})),
        ELECTION,
    )
    .await;
    if kind == ServerKind::NatsServer {
        assert_eq!(v["error"]["err_code"], 10052, "{v}");
        assert_eq!(
            v["error"]["description"], "stream configuration update can not change MaxConsumers",
            "{v}"
        );
    } else {
        assert_eq!(v["config"]["max_consumers"], 5, "{v}");
    }
    let v = info_until(&c0, "UP", ELECTION, |_| true).await;
    assert_eq!(v["config"]["storage"], "file", "{v}");
    assert_eq!(v["config"]["num_replicas"], 3, "{v}");
    assert_eq!(v["config"]["subjects"], json!(["up.>"]), "{v}");
    assert_eq!(v["cluster"]["replicas"].as_array().unwrap().len(), 2, "{v}");
}
