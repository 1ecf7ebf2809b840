//! Sources and mirrors across accounts, set up as nats-server users do: account A exports its
//! `$JS.API.>` service and a deliver subject, account B imports them (the API under the
//! prefix `JS.A.API`) and its streams name `external: {api, deliver}`. Against natsd and
//! nats-server 2.9.10, which has external sources.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::{Client, ConnectOptions, HeaderMap};
use natsd_tests::js::api;
use natsd_tests::{both, within_for, ServerKind, TestServer};
use serde_json::{json, Value};

both!(
    source_and_mirror_from_another_account,
    source_without_import_stays_inactive,
    source_resumes_after_restart,
    external_prefix_errors,
    missing_origin_stream_shows_error,
);

/// natsd only: nats-server 2.9.10 accepts such a source but leaves it inactive on a single
/// server, because its `$JS.<domain>.API.>` mapping applies to client publishes only and the
/// stream's own consumer-create request is internal. natsd reads the local stream, which is
/// what the source asks for.
#[tokio::test]
async fn own_domain_prefix_is_local() {
    natsd_tests::run_scenario(ServerKind::Natsd, own_domain_local_scenario).await;
}

/// Two JetStream accounts; B imports A's API as `JS.A.API.>` and A's `deliver.b.>`.
fn config(store: &Path) -> String {
    format!(
        r#"
jetstream {{ store_dir: {:?} }}
accounts {{
  A: {{
    jetstream: enabled
    users: [{{user: a, password: a}}]
    exports: [
      {{service: "$JS.API.>"}}
      {{stream: "deliver.b.>"}}
    ]
  }}
  B: {{
    jetstream: enabled
    users: [{{user: b, password: b}}]
    imports: [
      {{service: {{account: A, subject: "$JS.API.>"}}, to: "JS.A.API.>"}}
      {{stream: {{account: A, subject: "deliver.b.>"}}}}
    ]
  }}
}}
"#,
        store.to_str().unwrap()
    )
}

async fn user(s: &TestServer, name: &str) -> Client {
    s.client_with(ConnectOptions::with_user_and_password(
        name.into(),
        name.into(),
    ))
    .await
}

fn external(api: &str) -> Value {
    json!({"api": api, "deliver": "deliver.b"})
}

async fn create(c: &Client, cfg: Value) {
    let name = cfg["name"].as_str().unwrap().to_owned();
    let v = api(c, &format!("$JS.API.STREAM.CREATE.{name}"), cfg).await;
    assert!(v["error"].is_null(), "{v}");
}

async fn info(c: &Client, name: &str) -> Value {
    api(c, &format!("$JS.API.STREAM.INFO.{name}"), Value::Null).await
}

/// Waits until stream `name` holds `n` messages: sources copy asynchronously.
async fn wait_msgs(c: &Client, name: &str, n: u64) -> Value {
    within_for(Duration::from_secs(15), "sourcing to catch up", async {
        loop {
            let v = info(c, name).await;
            if v["state"]["messages"] == n {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// Publishes `orders.<i>` = `m<i>` for `i` in `range` into A, with header `X: <i>`.
async fn publish(a: &Client, range: std::ops::Range<u64>) {
    let js = jetstream::new(a.clone());
    for i in range {
        let mut h = HeaderMap::new();
        h.insert("X", i.to_string().as_str());
        js.publish_with_headers(format!("orders.{i}"), h, format!("m{i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// (subject, payload, `Nats-Stream-Source`, `X`) of messages 1..=n of stream `name`.
async fn contents(b: &Client, name: &str, n: u64) -> Vec<(String, String, String, String)> {
    let st = jetstream::new(b.clone()).get_stream(name).await.unwrap();
    let mut out = Vec::new();
    for seq in 1..=n {
        let m = st.get_raw_message(seq).await.unwrap();
        let h = |k: &str| {
            m.headers
                .get(k)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        out.push((
            m.subject.to_string(),
            String::from_utf8_lossy(&m.payload).into_owned(),
            h("Nats-Stream-Source"),
            h("X"),
        ));
    }
    out
}

/// The first two fields of `Nats-Stream-Source`: 2.9 writes `<iname> <seq>`, 2.10 adds the
/// filter and destination. The iname of an external origin carries a hash of the API prefix.
fn source_of(h: &str) -> Vec<&str> {
    h.split(' ').take(2).collect()
}

async fn source_and_mirror_from_another_account(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let s = TestServer::start(kind, &config(sd.path())).await;
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    create(&a, json!({"name": "ORDERS", "subjects": ["orders.>"]})).await;
    publish(&a, 0..3).await;
    let src = json!([{"name": "ORDERS", "external": external("JS.A.API")}]);
    create(
        &b,
        json!({"name": "S", "subjects": ["local"], "sources": src}),
    )
    .await;
    create(
        &b,
        json!({"name": "M", "mirror": {"name": "ORDERS", "external": external("JS.A.API")}}),
    )
    .await;
    wait_msgs(&b, "S", 3).await;
    publish(&a, 3..5).await;
    let v = wait_msgs(&b, "S", 5).await;
    assert_eq!(v["sources"][0]["name"], "ORDERS", "{v}");
    assert_eq!(v["sources"][0]["external"], external("JS.A.API"), "{v}");
    assert!(v["sources"][0]["error"].is_null(), "{v}");
    for (i, (subj, payload, src, x)) in contents(&b, "S", 5).await.iter().enumerate() {
        assert_eq!(subj, &format!("orders.{i}"));
        assert_eq!(payload, &format!("m{i}"));
        assert_eq!(x, &i.to_string());
        let seq = (i + 1).to_string();
        assert_eq!(source_of(src), ["ORDERS:3V17LQ3b", seq.as_str()], "{src}");
    }
    // A mirror keeps the origin's sequences and headers, without a source header.
    let v = wait_msgs(&b, "M", 5).await;
    assert_eq!(v["state"]["last_seq"], 5, "{v}");
    assert_eq!(v["mirror"]["external"], external("JS.A.API"), "{v}");
    for (i, (subj, _, src, x)) in contents(&b, "M", 5).await.iter().enumerate() {
        assert_eq!((subj, x), (&format!("orders.{i}"), &i.to_string()));
        assert_eq!(src, "");
    }
    // The sourcing stream still takes its own subjects.
    let ack = jetstream::new(b.clone())
        .publish("local", "own".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!((ack.stream.as_str(), ack.sequence), ("S", 6));
}

async fn source_without_import_stays_inactive(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let s = TestServer::start(kind, &config(sd.path())).await;
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    create(&a, json!({"name": "ORDERS", "subjects": ["orders.>"]})).await;
    // `JS.C.API` is imported from nowhere; `OK` is the control that does reach A.
    let none = json!([{"name": "ORDERS", "external": external("JS.C.API")}]);
    create(
        &b,
        json!({"name": "NONE", "subjects": ["none"], "sources": none}),
    )
    .await;
    let ok = json!([{"name": "ORDERS", "external": external("JS.A.API")}]);
    create(&b, json!({"name": "OK", "sources": ok})).await;
    publish(&a, 0..2).await;
    wait_msgs(&b, "OK", 2).await;
    let v = info(&b, "NONE").await;
    assert_eq!(v["state"]["messages"], 0, "{v}");
    assert_eq!(v["sources"][0]["active"], -1, "{v}");
    assert!(v["sources"][0]["error"].is_null(), "{v}");
    // The stream itself works.
    let ack = jetstream::new(b.clone())
        .publish("none", "x".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!((ack.stream.as_str(), ack.sequence), ("NONE", 1));
}

async fn source_resumes_after_restart(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let src = json!([{"name": "ORDERS", "external": external("JS.A.API")}]);
    {
        let s = TestServer::start(kind, &config(sd.path())).await;
        let (a, b) = (user(&s, "a").await, user(&s, "b").await);
        create(&a, json!({"name": "ORDERS", "subjects": ["orders.>"]})).await;
        create(&b, json!({"name": "S", "sources": src})).await;
        create(
            &b,
            json!({"name": "M", "mirror": {"name": "ORDERS", "external": external("JS.A.API")}}),
        )
        .await;
        publish(&a, 0..3).await;
        wait_msgs(&b, "S", 3).await;
        wait_msgs(&b, "M", 3).await;
    }
    let s = TestServer::start(kind, &config(sd.path())).await;
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    publish(&a, 3..5).await;
    wait_msgs(&b, "S", 5).await;
    wait_msgs(&b, "M", 5).await;
    // One more after the catch-up: had the restart copied anything twice, it would show as
    // more than six messages by the time the sixth arrives.
    publish(&a, 5..6).await;
    for name in ["S", "M"] {
        let v = wait_msgs(&b, name, 6).await;
        assert_eq!(v["state"]["last_seq"], 6, "{name}: {v}");
        let payloads: Vec<String> = contents(&b, name, 6)
            .await
            .into_iter()
            .map(|c| c.1)
            .collect();
        assert_eq!(payloads, ["m0", "m1", "m2", "m3", "m4", "m5"], "{name}");
    }
}

// Durable sourcing (nats-server 2.14, ADR-60): a source or mirror reads through a
// `flow_control` consumer of the origin. natsd only: nats-server 2.9.10 has neither the ack
// policy nor the `consumer` field of a source.

#[tokio::test]
async fn durable_source_drains_a_workqueue() {
    natsd_tests::run_scenario(ServerKind::Natsd, durable_source_scenario).await;
}

#[tokio::test]
async fn durable_source_survives_a_restart() {
    natsd_tests::run_scenario(ServerKind::Natsd, durable_restart_scenario).await;
}

#[tokio::test]
async fn durable_source_keeps_what_the_copy_cannot_store() {
    natsd_tests::run_scenario(ServerKind::Natsd, durable_full_scenario).await;
}

#[tokio::test]
async fn durable_source_from_another_account() {
    natsd_tests::run_scenario(ServerKind::Natsd, durable_cross_account_scenario).await;
}

#[tokio::test]
async fn durable_source_errors() {
    natsd_tests::run_scenario(ServerKind::Natsd, durable_errors_scenario).await;
}

fn js_config(store: &Path) -> String {
    format!("jetstream {{ store_dir: {:?} }}", store.to_str().unwrap())
}

/// A `flow_control` consumer `name` on `stream`, delivering to `deliver`.
async fn fc_consumer(c: &Client, stream: &str, name: &str, deliver: &str) -> Value {
    let cfg =
        json!({"durable_name": name, "deliver_subject": deliver, "ack_policy": "flow_control"});
    let req = json!({"stream_name": stream, "config": cfg});
    api(c, &format!("$JS.API.CONSUMER.CREATE.{stream}.{name}"), req).await
}

/// A WorkQueue `Q` on `q.>` with the consumer `SRC`, and `AGG` (plus `extra` config)
/// sourcing through it.
async fn durable_setup(c: &Client, extra: Value) {
    create(
        c,
        json!({"name": "Q", "subjects": ["q.>"], "retention": "workqueue"}),
    )
    .await;
    let v = fc_consumer(c, "Q", "SRC", "deliver.src").await;
    assert!(v["error"].is_null(), "{v}");
    let mut cfg = json!({"name": "AGG", "sources": [
        {"name": "Q", "consumer": {"name": "SRC", "deliver_subject": "deliver.src"}}
    ]});
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
        c.extend(e);
    }
    create(c, cfg).await;
}

async fn publish_q(c: &Client, range: std::ops::Range<u64>) {
    let js = jetstream::new(c.clone());
    for i in range {
        js.publish(format!("q.{i}"), format!("m{i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

async fn durable_source_scenario(kind: ServerKind) {
    let (s, _sd) = natsd_tests::js::js_server(kind).await;
    let c = s.client().await;
    durable_setup(&c, json!({})).await;
    publish_q(&c, 0..5).await;
    wait_msgs(&c, "AGG", 5).await;
    // The origin drops each message once its copy is stored.
    let v = wait_msgs(&c, "Q", 0).await;
    assert_eq!(v["state"]["last_seq"], 5, "{v}");
    let got = contents(&c, "AGG", 5).await;
    for (i, (subj, payload, src, _)) in got.iter().enumerate() {
        assert_eq!((subj, payload), (&format!("q.{i}"), &format!("m{i}")));
        // Go: the source's identity carries a hash of the consumer's name.
        let seq = (i + 1).to_string();
        assert_eq!(source_of(src), ["Q:C=Q7aLp2ab", seq.as_str()], "{src}");
    }
    let ci = api(&c, "$JS.API.CONSUMER.INFO.Q.SRC", Value::Null).await;
    assert_eq!(ci["ack_floor"]["stream_seq"], 5, "{ci}");
    assert_eq!(ci["num_ack_pending"], 0, "{ci}");
    assert_eq!(ci["num_pending"], 0, "{ci}");
    assert_eq!(ci["push_bound"], true, "{ci}");
    // A mirror of an Interest stream through its own consumer.
    create(
        &c,
        json!({"name": "I", "subjects": ["i.>"], "retention": "interest"}),
    )
    .await;
    let v = fc_consumer(&c, "I", "MC", "deliver.mc").await;
    assert!(v["error"].is_null(), "{v}");
    create(
        &c,
        json!({"name": "M", "mirror": {"name": "I", "consumer": {"name": "MC", "deliver_subject": "deliver.mc"}}}),
    )
    .await;
    let js = jetstream::new(c.clone());
    for i in 0..3 {
        js.publish(format!("i.{i}"), "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let v = wait_msgs(&c, "M", 3).await;
    assert_eq!(v["state"]["last_seq"], 3, "{v}");
    wait_msgs(&c, "I", 0).await;
}

async fn durable_restart_scenario(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    {
        let s = TestServer::start(kind, &js_config(sd.path())).await;
        let c = s.client().await;
        durable_setup(&c, json!({})).await;
        publish_q(&c, 0..3).await;
        wait_msgs(&c, "AGG", 3).await;
        // Killed while more messages arrive: some may be copied and not yet acked.
        publish_q(&c, 3..6).await;
    }
    let s = TestServer::start(kind, &js_config(sd.path())).await;
    let c = s.client().await;
    publish_q(&c, 6..8).await;
    wait_msgs(&c, "AGG", 8).await;
    // One more after the catch-up: anything copied twice would show as a ninth message by
    // the time this one arrives.
    publish_q(&c, 8..9).await;
    let v = wait_msgs(&c, "AGG", 9).await;
    assert_eq!(v["state"]["last_seq"], 9, "{v}");
    let payloads: Vec<String> = contents(&c, "AGG", 9)
        .await
        .into_iter()
        .map(|m| m.1)
        .collect();
    let want: Vec<String> = (0..9).map(|i| format!("m{i}")).collect();
    assert_eq!(payloads, want);
    wait_msgs(&c, "Q", 0).await;
    let ci = api(&c, "$JS.API.CONSUMER.INFO.Q.SRC", Value::Null).await;
    assert_eq!(ci["ack_floor"]["stream_seq"], 9, "{ci}");
}

async fn durable_full_scenario(kind: ServerKind) {
    let (s, _sd) = natsd_tests::js::js_server(kind).await;
    let c = s.client().await;
    durable_setup(&c, json!({"max_msgs": 3, "discard": "new"})).await;
    publish_q(&c, 0..5).await;
    wait_msgs(&c, "AGG", 3).await;
    // The two the full stream refused stay at the origin, unacknowledged.
    wait_msgs(&c, "Q", 2).await;
    let ci = api(&c, "$JS.API.CONSUMER.INFO.Q.SRC", Value::Null).await;
    assert_eq!(ci["ack_floor"]["stream_seq"], 3, "{ci}");
    let v = api(&c, "$JS.API.STREAM.PURGE.AGG", Value::Null).await;
    assert_eq!(v["success"], true, "{v}");
    wait_msgs(&c, "AGG", 2).await;
    wait_msgs(&c, "Q", 0).await;
    let st = jetstream::new(c.clone()).get_stream("AGG").await.unwrap();
    for (seq, want) in [(4, "m3"), (5, "m4")] {
        let m = st.get_raw_message(seq).await.unwrap();
        assert_eq!(m.payload, want.as_bytes());
    }
}

/// Account B sources A's WorkQueue through A's consumer, along B's imports of A's API and
/// deliver subjects.
async fn durable_cross_account_scenario(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let s = TestServer::start(kind, &config(sd.path())).await;
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    create(
        &a,
        json!({"name": "WQ", "subjects": ["wq.>"], "retention": "workqueue"}),
    )
    .await;
    let v = fc_consumer(&a, "WQ", "TOB", "deliver.b.wq").await;
    assert!(v["error"].is_null(), "{v}");
    create(
        &b,
        json!({"name": "AGG", "sources": [{"name": "WQ", "external": external("JS.A.API"),
            "consumer": {"name": "TOB", "deliver_subject": "deliver.b.wq"}}]}),
    )
    .await;
    let js = jetstream::new(a.clone());
    for i in 0..4 {
        js.publish(format!("wq.{i}"), format!("m{i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let v = wait_msgs(&b, "AGG", 4).await;
    assert!(v["sources"][0]["error"].is_null(), "{v}");
    wait_msgs(&a, "WQ", 0).await;
    let got = contents(&b, "AGG", 4).await;
    assert_eq!(got[3].1, "m3");
    let ci = api(&a, "$JS.API.CONSUMER.INFO.WQ.TOB", Value::Null).await;
    assert_eq!(ci["ack_floor"]["stream_seq"], 4, "{ci}");
}

async fn durable_errors_scenario(kind: ServerKind) {
    let (s, _sd) = natsd_tests::js::js_server(kind).await;
    let c = s.client().await;
    create(&c, json!({"name": "O", "subjects": ["o.>"]})).await;
    let consumer = |cfg: Value| {
        let c = c.clone();
        async move {
            let req = json!({"stream_name": "O", "config": cfg});
            api(&c, "$JS.API.CONSUMER.CREATE.O", req).await["error"].clone()
        }
    };
    let e = consumer(json!({"durable_name": "P", "ack_policy": "flow_control"})).await;
    assert_eq!(
        e,
        json!({"code": 400, "err_code": 10218,
            "description": "flow control ack policy requires a push based consumer"})
    );
    let push = |extra: Value| {
        let mut cfg =
            json!({"durable_name": "P", "deliver_subject": "d", "ack_policy": "flow_control"});
        if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
            c.extend(e);
        }
        cfg
    };
    let e = consumer(push(json!({"max_ack_pending": -1}))).await;
    assert_eq!(
        e,
        json!({"code": 400, "err_code": 10220,
            "description": "flow control ack policy requires max ack pending"})
    );
    let e = consumer(push(json!({"ack_wait": 1_000_000_000u64}))).await;
    assert_eq!(
        e,
        json!({"code": 400, "err_code": 10221,
            "description": "flow control ack policy requires unset ack wait"})
    );
    let e = consumer(push(json!({"max_deliver": 3}))).await;
    assert_eq!(
        e,
        json!({"code": 400, "err_code": 10222,
            "description": "flow control ack policy requires unset max deliver"})
    );
    let stream = |cfg: Value| {
        let c = c.clone();
        async move { api(&c, "$JS.API.STREAM.CREATE.S", cfg).await["error"].clone() }
    };
    let cons = json!({"name": "P", "deliver_subject": "d"});
    let e = stream(
        json!({"name": "S", "sources": [{"name": "O", "opt_start_seq": 2, "consumer": cons}]}),
    )
    .await;
    assert_eq!(
        e,
        json!({"code": 400, "err_code": 10215, "description": "stream source consumer config is invalid"})
    );
    let e = stream(
        json!({"name": "S", "mirror": {"name": "O", "filter_subject": "o.a", "consumer": cons}}),
    )
    .await;
    assert_eq!(
        e,
        json!({"code": 400, "err_code": 10213, "description": "stream mirror consumer config is invalid"})
    );
    let tr = |s: &str| json!([{"src": s, "dest": s}]);
    let e = stream(json!({"name": "S", "sources": [
        {"name": "O", "subject_transforms": tr("o.a"), "consumer": cons},
        {"name": "O", "subject_transforms": tr("o.b"), "consumer": cons}
    ]}))
    .await;
    assert_eq!(
        e,
        json!({"code": 400, "err_code": 10216, "description": "duplicate stream source consumer detected"})
    );
    // A consumer that does not exist, or not with ack policy `flow_control`: the source
    // reports it, and starts once the consumer is right.
    let v = api(
        &c,
        "$JS.API.CONSUMER.CREATE.O",
        json!({"stream_name": "O", "config": {"durable_name": "EXP", "deliver_subject": "d.exp", "ack_policy": "explicit"}}),
    )
    .await;
    assert!(v["error"].is_null(), "{v}");
    create(
        &c,
        json!({"name": "S", "sources": [
            {"name": "O", "consumer": {"name": "P", "deliver_subject": "d"}},
            {"name": "O", "consumer": {"name": "EXP", "deliver_subject": "d.exp"}}
        ]}),
    )
    .await;
    let v = within_for(Duration::from_secs(15), "source errors", async {
        loop {
            let v = info(&c, "S").await;
            if !v["sources"][1]["error"].is_null() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        v["sources"][0]["error"],
        json!({"code": 404, "err_code": 10014, "description": "consumer not found"}),
        "{v}"
    );
    assert_eq!(
        v["sources"][1]["error"],
        json!({"code": 400, "err_code": 10217,
            "description": "stream source consumer requires flow control ack policy"}),
        "{v}"
    );
    let v = fc_consumer(&c, "O", "P", "d").await;
    assert!(v["error"].is_null(), "{v}");
    jetstream::new(c.clone())
        .publish("o.1", "x".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let v = wait_msgs(&c, "S", 1).await;
    assert!(v["sources"][0]["error"].is_null(), "{v}");
}

async fn own_domain_local_scenario(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let conf = format!(
        "jetstream {{ store_dir: {:?}, domain: hub }}",
        sd.path().to_str().unwrap()
    );
    let s = TestServer::start(kind, &conf).await;
    let c = s.client().await;
    create(&c, json!({"name": "ORDERS", "subjects": ["orders.>"]})).await;
    publish(&c, 0..2).await;
    // What nats clients send for `domain: "hub"`: the domain's API, no deliver prefix.
    let src = json!([{"name": "ORDERS", "external": {"api": "$JS.hub.API", "deliver": ""}}]);
    create(&c, json!({"name": "S", "sources": src})).await;
    wait_msgs(&c, "S", 2).await;
    let got = contents(&c, "S", 2).await;
    assert_eq!(source_of(&got[1].2), ["ORDERS:bTMUkJQk", "2"], "{got:?}");
}

async fn external_prefix_errors(kind: ServerKind) {
    let (s, _sd) = natsd_tests::js::js_server(kind).await;
    let c = s.client().await;
    let try_create = |ext: Value| {
        let c = c.clone();
        async move {
            let cfg = json!({"name": "S", "sources": [{"name": "O", "external": ext}]});
            api(&c, "$JS.API.STREAM.CREATE.S", cfg).await["error"].clone()
        }
    };
    let e = try_create(json!({"api": "$JS.API", "deliver": "d"})).await;
    assert_eq!(
        e,
        json!({"code": 400, "err_code": 10021,
            "description": "stream external api prefix $JS.API must not overlap with $JS.API"})
    );
    let e = try_create(json!({"api": "JS.A.API", "deliver": "d.*"})).await;
    assert_eq!(
        e,
        json!({"code": 400, "err_code": 10024,
            "description": "stream external delivery prefix d.* must not contain wildcards"})
    );
    let e = try_create(json!({"api": "JS.*.API", "deliver": "d"})).await;
    assert_eq!(e["err_code"], 10052, "{e}");
}

async fn missing_origin_stream_shows_error(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let s = TestServer::start(kind, &config(sd.path())).await;
    let (a, b) = (user(&s, "a").await, user(&s, "b").await);
    let src = json!([{"name": "ORDERS", "external": external("JS.A.API")}]);
    create(&b, json!({"name": "S", "sources": src})).await;
    // The import reaches A, whose JetStream has no such stream: the source shows A's answer.
    let v = within_for(Duration::from_secs(15), "source error", async {
        loop {
            let v = info(&b, "S").await;
            if !v["sources"][0]["error"].is_null() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        v["sources"][0]["error"],
        json!({"code": 404, "err_code": 10059, "description": "stream not found"}),
        "{v}"
    );
    // Once the origin exists the source picks it up and the error goes.
    create(&a, json!({"name": "ORDERS", "subjects": ["orders.>"]})).await;
    publish(&a, 0..1).await;
    let v = wait_msgs(&b, "S", 1).await;
    assert!(v["sources"][0]["error"].is_null(), "{v}");
}
