//! The JetStream API of a three-server cluster as clients see it: lists and account usage
//! showing each stream's real state whichever server is asked, consumer updates and
//! stepdowns, ephemeral consumers, the meta leader stepdown, and the domain-prefixed API.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use natsd_tests::cluster::{TestCluster, CLUSTER_NAME};
use natsd_tests::jscluster::{self, api_tries, app, ask, index_of, kill, stream_cfg};
use natsd_tests::{both, ServerKind};
use serde_json::{json, Value};

/// How long the cluster may take to elect what a step needs.
/// Generous: only a failing step waits this long, and a stepdown under load may take
/// its three tries (see the server's stepdown).
const ELECTION: Duration = Duration::from_secs(40);

/// Starts three servers (`js_extra` inside their `jetstream` block) and waits for their
/// meta group.
async fn start_with(kind: ServerKind, js_extra: &str) -> (TestCluster, Vec<tempfile::TempDir>) {
    let (cluster, dirs) = jscluster::start_with(kind, 3, js_extra, |_| String::new()).await;
    jscluster::meta_leader(&cluster, 3, ELECTION).await;
    (cluster, dirs)
}

async fn start(kind: ServerKind) -> (TestCluster, Vec<tempfile::TempDir>) {
    start_with(kind, "").await
}

/// An API request, asked again (each try waiting 5 s) until some server answers (none does
/// while the meta group or the stream's group has no leader), within [`ELECTION`].
async fn api(client: &async_nats::Client, subject: &str, body: Value) -> Value {
    api_tries(client, subject, &body, ELECTION, Duration::from_secs(5)).await
}

/// Asks `subject` until the answer satisfies `ok`, within [`ELECTION`].
async fn api_until(
    client: &async_nats::Client,
    subject: &str,
    body: Value,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + ELECTION;
    loop {
        let v = api(client, subject, body.clone()).await;
        if ok(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{subject} never fit: {v}"
        );
        // Poll interval; the wait is bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(client: &async_nats::Client, name: &str, replicas: u64) -> Value {
    let cfg = stream_cfg(name, replicas);
    let v = api(client, &format!("$JS.API.STREAM.CREATE.{name}"), cfg).await;
    assert!(v.get("error").is_none(), "{v}");
    v
}

/// Publishes `n` messages on `subject`, each acknowledged.
async fn publish_n(js: &async_nats::jetstream::Context, subject: &str, n: usize) {
    let payloads = (0..n).map(|i| format!("m{i}"));
    jscluster::publish_all(js, subject, payloads, ELECTION).await;
}

fn names_of(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| {
            v["config"]["name"]
                .as_str()
                .or(v["name"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// STREAM.LIST, CONSUMER.LIST and `$JS.API.INFO` asked of every server show the state the
/// streams' leaders hold (an R1 stream lives on one server only).
async fn lists_show_every_streams_real_state(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "R3", 3).await;
    create(&c0, "R1", 1).await;
    let js = async_nats::jetstream::new(app(&cluster, 1).await);
    publish_n(&js, "r3.x", 5).await;
    publish_n(&js, "r1.x", 7).await;
    let d = api(
        &c0,
        "$JS.API.CONSUMER.DURABLE.CREATE.R3.D",
        json!({"stream_name": "R3", "config": {"durable_name": "D", "ack_policy": "explicit"}}),
    )
    .await;
    assert!(d.get("error").is_none(), "{d}");

    for i in 0..3 {
        let c = app(&cluster, i).await;
        let list = api_until(&c, "$JS.API.STREAM.LIST", Value::Null, |v| {
            let s = v["streams"].as_array().cloned().unwrap_or_default();
            let msgs = |n: &str| {
                s.iter()
                    .find(|x| x["config"]["name"] == n)
                    .map(|x| x["state"]["messages"].clone())
            };
            msgs("R3") == Some(json!(5)) && msgs("R1") == Some(json!(7))
        })
        .await;
        assert_eq!(
            list["type"], "io.nats.jetstream.api.v1.stream_list_response",
            "{list}"
        );
        assert_eq!(list["total"], 2, "{list}");
        assert!(list.get("missing").is_none(), "{list}");
        let mut names = names_of(&list, "streams");
        names.sort();
        assert_eq!(names, ["R1", "R3"], "{list}");
        for s in list["streams"].as_array().unwrap() {
            assert_eq!(s["cluster"]["name"], CLUSTER_NAME, "{s}");
            assert!(s["cluster"]["leader"].as_str().is_some(), "{s}");
        }

        let cl = api_until(&c, "$JS.API.CONSUMER.LIST.R3", Value::Null, |v| {
            v["consumers"][0]["num_pending"] == 5
        })
        .await;
        assert_eq!(
            cl["type"], "io.nats.jetstream.api.v1.consumer_list_response",
            "{cl}"
        );
        assert_eq!(cl["total"], 1, "{cl}");
        assert_eq!(cl["consumers"][0]["name"], "D", "{cl}");
        assert_eq!(cl["consumers"][0]["stream_name"], "R3", "{cl}");
        assert_eq!(cl["consumers"][0]["cluster"]["name"], CLUSTER_NAME, "{cl}");

        let info = api_until(&c, "$JS.API.INFO", Value::Null, |v| {
            v["storage"].as_u64().unwrap_or(0) > 0
        })
        .await;
        assert_eq!(
            info["type"], "io.nats.jetstream.api.v1.account_info_response",
            "{info}"
        );
        assert_eq!(info["streams"], 2, "{info}");
        assert_eq!(info["consumers"], 1, "{info}");
        assert_eq!(info["memory"], 0, "{info}");
    }

    // nats-server 2.9 lists nothing for an unknown stream in a cluster (no 10059).
    let gone = api(&c0, "$JS.API.CONSUMER.LIST.NOPE", Value::Null).await;
    assert!(gone.get("error").is_none(), "{gone}");
    assert_eq!(gone["total"], 0, "{gone}");
    assert_eq!(gone["consumers"], json!([]), "{gone}");
}

both!(lists_show_every_streams_real_state);

/// A durable consumer on an R3 stream: its info carries the group's `cluster` block; an
/// update changes what may change and refuses the rest with nats-server's errors; too many
/// replicas are refused; its leader steps down (its state stays).
async fn consumer_update_and_leader_stepdown(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "S", 3).await;
    let js = async_nats::jetstream::new(app(&cluster, 1).await);
    publish_n(&js, "s.x", 4).await;
    let cfg = json!({"durable_name": "D", "ack_policy": "explicit", "max_ack_pending": 100});
    let subj = "$JS.API.CONSUMER.DURABLE.CREATE.S.D";
    let d = api(&c0, subj, json!({"stream_name": "S", "config": cfg})).await;
    assert!(d.get("error").is_none(), "{d}");

    let info = api_until(&c0, "$JS.API.CONSUMER.INFO.S.D", Value::Null, |v| {
        v["cluster"]["leader"]
            .as_str()
            .is_some_and(|l| !l.is_empty())
    })
    .await;
    assert_eq!(info["cluster"]["name"], CLUSTER_NAME, "{info}");
    assert_eq!(
        info["cluster"]["replicas"].as_array().map(Vec::len),
        Some(2),
        "{info}"
    );
    assert_eq!(info["num_pending"], 4, "{info}");
    let first = info["cluster"]["leader"].as_str().unwrap().to_owned();

    // What may change does, through any server.
    let mut up = cfg.clone();
    up["max_ack_pending"] = json!(50);
    up["description"] = json!("changed");
    let c2 = app(&cluster, 2).await;
    let v = api(&c2, subj, json!({"stream_name": "S", "config": up})).await;
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(
        v["type"], "io.nats.jetstream.api.v1.consumer_create_response",
        "{v}"
    );
    assert_eq!(v["config"]["max_ack_pending"], 50, "{v}");
    assert_eq!(v["config"]["description"], "changed", "{v}");
    api_until(&c0, "$JS.API.CONSUMER.INFO.S.D", Value::Null, |v| {
        v["config"]["max_ack_pending"] == 50
    })
    .await;

    // What may not change is refused as nats-server refuses it.
    let mut bad = up.clone();
    bad["deliver_policy"] = json!("last");
    let v = api(&c0, subj, json!({"stream_name": "S", "config": bad})).await;
    assert_eq!(v["error"]["err_code"], 10012, "{v}");
    assert_eq!(
        v["error"]["description"], "deliver policy can not be updated",
        "{v}"
    );
    let mut bad = up.clone();
    bad["deliver_subject"] = json!("push.here");
    let v = api(&c0, subj, json!({"stream_name": "S", "config": bad})).await;
    assert_eq!(v["error"]["err_code"], 10012, "{v}");
    // nats-server 2.9 checks max_waiting (pull only) first; 2.10 names the change itself.
    let why = v["error"]["description"].as_str().unwrap_or_default();
    assert!(
        why == "can not update pull consumer to push based"
            || why == "max waiting can not be updated",
        "{v}"
    );

    // More replicas than the stream has.
    let many = json!({"durable_name": "M", "ack_policy": "explicit", "num_replicas": 5});
    let v = api(
        &c0,
        "$JS.API.CONSUMER.DURABLE.CREATE.S.M",
        json!({"stream_name": "S", "config": many}),
    )
    .await;
    assert_eq!(v["error"]["err_code"], 10126, "{v}");

    // The leader steps down; the consumer keeps its state under the next one.
    let sd = api(&c0, "$JS.API.CONSUMER.LEADER.STEPDOWN.S.D", Value::Null).await;
    assert_eq!(
        sd,
        json!({"type": "io.nats.jetstream.api.v1.consumer_leader_stepdown_response", "success": true})
    );
    let info = api_until(&c0, "$JS.API.CONSUMER.INFO.S.D", Value::Null, |v| {
        v["cluster"]["leader"]
            .as_str()
            .is_some_and(|l| !l.is_empty() && l != first)
    })
    .await;
    assert_eq!(info["num_pending"], 4, "{info}");
    assert_eq!(info["config"]["max_ack_pending"], 50, "{info}");
    let none = api(&c0, "$JS.API.CONSUMER.LEADER.STEPDOWN.S.NOPE", Value::Null).await;
    assert_eq!(none["error"]["err_code"], 10014, "{none}");
    assert_eq!(
        none["type"], "io.nats.jetstream.api.v1.consumer_leader_stepdown_response",
        "{none}"
    );
}

both!(consumer_update_and_leader_stepdown);

/// Ephemeral consumers on an R3 stream: created through any server (the answer names the
/// generated name), deleted on request, and removed from every replica once idle past
/// `inactive_threshold` (5 s when unset).
async fn ephemeral_consumers_come_and_go(kind: ServerKind) {
    let (cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    create(&c0, "E", 3).await;
    let js = async_nats::jetstream::new(app(&cluster, 1).await);
    publish_n(&js, "e.x", 3).await;

    let c2 = app(&cluster, 2).await;
    let mut names = Vec::new();
    for threshold in [0u64, 1_000_000_000, 60_000_000_000] {
        let mut cfg = json!({"ack_policy": "explicit"});
        if threshold > 0 {
            cfg["inactive_threshold"] = json!(threshold);
        }
        let v = api(
            &c2,
            "$JS.API.CONSUMER.CREATE.E",
            json!({"stream_name": "E", "config": cfg}),
        )
        .await;
        assert!(v.get("error").is_none(), "{v}");
        let name = v["name"].as_str().unwrap().to_owned();
        assert!(v["config"].get("durable_name").is_none(), "{v}");
        assert_eq!(v["num_pending"], 3, "{v}");
        names.push(name);
    }
    let want = if kind == ServerKind::Natsd {
        5_000_000_000u64
    } else {
        // nats-server 2.9 keeps an unset threshold unset in the config it shows.
        0
    };
    let info = api(
        &c0,
        &format!("$JS.API.CONSUMER.INFO.E.{}", names[0]),
        Value::Null,
    )
    .await;
    assert!(info.get("error").is_none(), "{info}");
    let shown = info["config"]["inactive_threshold"].as_u64().unwrap_or(0);
    assert!(shown == want || shown == 5_000_000_000, "{info}");

    // The long-lived one is deleted on request.
    let del = api(
        &c0,
        &format!("$JS.API.CONSUMER.DELETE.E.{}", names[2]),
        Value::Null,
    )
    .await;
    assert_eq!(del["success"], true, "{del}");
    let gone = api(
        &c0,
        &format!("$JS.API.CONSUMER.INFO.E.{}", names[2]),
        Value::Null,
    )
    .await;
    assert_eq!(gone["error"]["err_code"], 10014, "{gone}");

    // The idle ones go by themselves, from every server's view.
    for i in 0..3 {
        let c = app(&cluster, i).await;
        api_until(&c, "$JS.API.CONSUMER.NAMES.E", Value::Null, |v| {
            v["total"] == 0
        })
        .await;
    }
    let info = api(&c0, "$JS.API.STREAM.INFO.E", Value::Null).await;
    assert_eq!(info["state"]["consumer_count"], 0, "{info}");
}

both!(ephemeral_consumers_come_and_go);

/// With `jetstream { domain: HUB }` the cluster answers `$JS.HUB.API.>` as `$JS.API.>`:
/// a stream created, listed and read through the domain prefix from different servers.
async fn domain_prefixed_api_in_a_cluster(kind: ServerKind) {
    let (cluster, _dirs) = start_with(kind, "domain: HUB").await;
    let c0 = app(&cluster, 0).await;
    let cfg = json!({"name": "D", "subjects": ["d.>"], "num_replicas": 3});
    let v = api(&c0, "$JS.HUB.API.STREAM.CREATE.D", cfg).await;
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(
        v["type"], "io.nats.jetstream.api.v1.stream_create_response",
        "{v}"
    );
    let js = async_nats::jetstream::with_domain(app(&cluster, 1).await, "HUB");
    publish_n(&js, "d.x", 2).await;
    let c2 = app(&cluster, 2).await;
    let info = api_until(&c2, "$JS.HUB.API.STREAM.INFO.D", Value::Null, |v| {
        v["state"]["messages"] == 2
    })
    .await;
    assert_eq!(info["cluster"]["name"], CLUSTER_NAME, "{info}");
    let names = api(&c2, "$JS.HUB.API.STREAM.NAMES", Value::Null).await;
    assert_eq!(names["streams"], json!(["D"]), "{names}");
    let acct = api(&c2, "$JS.HUB.API.INFO", Value::Null).await;
    assert_eq!(acct["streams"], 1, "{acct}");
    assert_eq!(acct["domain"], "HUB", "{acct}");
    // The undecorated API still answers.
    let plain = api(&c0, "$JS.API.STREAM.INFO.D", Value::Null).await;
    assert_eq!(plain["config"]["name"], "D", "{plain}");
}

both!(domain_prefixed_api_in_a_cluster);

/// A request about a stream whose group has no leader (its only server was killed) is
/// answered within a bound, as nats-server answers it, never left silent.
async fn a_leaderless_stream_is_answered(kind: ServerKind) {
    let (mut cluster, _dirs) = start(kind).await;
    let c0 = app(&cluster, 0).await;
    let v = create(&c0, "L", 1).await;
    let host = v["cluster"]["leader"].as_str().unwrap().to_owned();
    let host_i = index_of(&host);
    // Were it the meta leader too, the other two elect another one first.
    kill(&mut cluster, host_i).await;
    let other = (0..3).find(|i| *i != host_i).unwrap();
    let c = app(&cluster, other).await;
    let deadline = tokio::time::Instant::now() + ELECTION;
    let v = loop {
        if let Some(v) = ask(
            &c,
            "$JS.API.STREAM.INFO.L",
            &Value::Null,
            Duration::from_secs(10),
        )
        .await
        {
            break v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer about a leaderless stream"
        );
    };
    assert_eq!(v["error"]["err_code"], 10008, "{v}");
    assert_eq!(
        v["error"]["description"], "JetStream system temporarily unavailable",
        "{v}"
    );
    assert_eq!(
        v["type"], "io.nats.jetstream.api.v1.stream_info_response",
        "{v}"
    );
    // The stream is still listed; its state is missing.
    let list = api(&c, "$JS.API.STREAM.LIST", Value::Null).await;
    assert_eq!(list["missing"], json!(["L"]), "{list}");
}

/// natsd-only: nats-server 2.9.10 leaves a request about a leaderless stream unanswered.
#[tokio::test]
async fn a_leaderless_stream_is_answered_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, a_leaderless_stream_is_answered).await;
}
