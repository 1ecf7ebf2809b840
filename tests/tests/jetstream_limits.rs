//! JetStream limits and advisories: server-wide `jetstream { max_mem, max_file }`
//! reservations, stream `max_consumers`, per-account `jetstream { … }` limits in `$JS.API.INFO`
//! and their errors, and the advisories a subscriber on `$JS.EVENT.ADVISORY.>` receives.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use async_nats::{Client, ConnectOptions};
use natsd_tests::cluster::monitor_get;
use natsd_tests::{both, free_port, next_msg, within, ServerKind, TestServer};
use serde_json::{json, Value};

both!(
    server_memory_and_file_reservations,
    stream_max_consumers,
    publish_over_server_memory_limit,
    global_account_info_limits,
    stream_and_consumer_advisories,
    nak_and_term_advisories,
    jsz_account_details,
    account_limits_in_info,
    account_stream_and_consumer_limits,
    accounts_without_jetstream_answer_10039,
    accounts_with_different_max_streams,
    server_limit_across_accounts,
    jsz_reservations_and_accounts,
);

async fn api(c: &Client, subject: &str, body: Value) -> Value {
    let payload = if body.is_null() {
        bytes::Bytes::new()
    } else {
        serde_json::to_vec(&body).unwrap().into()
    };
    let m = within("api request", c.request(subject.to_owned(), payload))
        .await
        .unwrap();
    serde_json::from_slice(&m.payload).unwrap()
}

fn err_of(v: &Value) -> (u64, u64, String) {
    let e = &v["error"];
    (
        e["code"].as_u64().unwrap_or(0),
        e["err_code"].as_u64().unwrap_or(0),
        e["description"].as_str().unwrap_or("").to_owned(),
    )
}

async fn create(c: &Client, name: &str, extra: Value) -> Value {
    let mut cfg = json!({"name": name, "subjects": [format!("{}.>", name.to_lowercase())]});
    if let (Value::Object(m), Value::Object(e)) = (&mut cfg, extra) {
        m.extend(e);
    }
    api(c, &format!("$JS.API.STREAM.CREATE.{name}"), cfg).await
}

async fn durable(c: &Client, stream: &str, name: &str) -> Value {
    api(
        c,
        &format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{name}"),
        json!({"stream_name": stream, "config": {"durable_name": name, "ack_policy": "explicit"}}),
    )
    .await
}

/// A server whose config is `jetstream { store_dir, <js> }` plus `rest`.
async fn server(kind: ServerKind, js: &str, rest: &str) -> (TestServer, tempfile::TempDir) {
    let sd = tempfile::tempdir().unwrap();
    let conf = format!(
        "jetstream {{ store_dir: {:?}\n{js} }}\n{rest}",
        sd.path().to_str().unwrap()
    );
    (TestServer::start(kind, &conf).await, sd)
}

async fn server_memory_and_file_reservations(kind: ServerKind) {
    let (s, _sd) = server(kind, "max_mem: 1000000, max_file: 2000000", "").await;
    let c = s.client().await;
    let mem = |n: i64| json!({"storage": "memory", "max_bytes": n});
    let v = create(&c, "M1", mem(1_000_001)).await;
    assert_eq!(
        err_of(&v),
        (500, 10028, "insufficient memory resources available".into())
    );
    assert!(create(&c, "M1", mem(600_000)).await["error"].is_null());
    // 600000 of the server's memory is reserved: 400001 no longer fits.
    assert_eq!(err_of(&create(&c, "M2", mem(400_001)).await).1, 10028);
    assert!(create(&c, "M2", mem(400_000)).await["error"].is_null());
    let v = create(&c, "F1", json!({"max_bytes": 2_000_001})).await;
    assert_eq!(
        err_of(&v),
        (
            500,
            10047,
            "insufficient storage resources available".into()
        )
    );
    // Deleting a stream gives its reservation back.
    api(&c, "$JS.API.STREAM.DELETE.M1", Value::Null).await;
    assert!(create(&c, "M3", mem(600_000)).await["error"].is_null());
}

async fn stream_max_consumers(kind: ServerKind) {
    let (s, _sd) = server(kind, "", "").await;
    let c = s.client().await;
    create(&c, "S", json!({"max_consumers": 1})).await;
    assert!(durable(&c, "S", "A").await["error"].is_null());
    let v = durable(&c, "S", "B").await;
    assert_eq!(
        err_of(&v),
        (400, 10026, "maximum consumers limit reached".into())
    );
    // Re-creating the same durable is not a new consumer.
    assert!(durable(&c, "S", "A").await["error"].is_null());
}

async fn publish_over_server_memory_limit(kind: ServerKind) {
    let (s, _sd) = server(kind, "max_mem: 100000", "").await;
    let c = s.client().await;
    create(&c, "M", json!({"storage": "memory"})).await;
    let body = bytes::Bytes::from(vec![b'x'; 10_000]);
    let mut stored = 0;
    let err = loop {
        let m = within("publish", c.request("m.x", body.clone()))
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        if !v["error"].is_null() {
            break v;
        }
        stored += 1;
        assert!(stored < 50, "no limit after {stored} messages");
    };
    assert_eq!(err_of(&err), (503, 10023, "insufficient resources".into()));
    // Go refuses once the server already holds more than its limit (payload plus overhead).
    assert!(stored >= 10, "stored {stored}");
}

async fn global_account_info_limits(kind: ServerKind) {
    let (s, _sd) = server(kind, "max_mem: 1000000", "").await;
    let c = s.client().await;
    create(&c, "S", json!({"storage": "memory"})).await;
    durable(&c, "S", "D").await;
    let v = api(&c, "$JS.API.INFO", Value::Null).await;
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.account_info_response");
    // The global account has no account limits: the server's apply separately.
    assert_eq!(
        v["limits"],
        json!({
            "max_memory": -1, "max_storage": -1, "max_streams": -1, "max_consumers": -1,
            "max_ack_pending": -1, "memory_max_stream_bytes": -1,
            "storage_max_stream_bytes": -1, "max_bytes_required": false,
        })
    );
    assert_eq!((&v["streams"], &v["consumers"]), (&json!(1), &json!(1)));
    assert_eq!(v["api"]["errors"], 0);
    assert!(v["api"]["total"].as_u64().unwrap() >= 2, "{v}");
}

/// Collects advisories until every subject in `want` arrived; returns them by subject.
async fn collect(
    sub: &mut async_nats::Subscriber,
    want: &[&str],
) -> std::collections::BTreeMap<String, Value> {
    let mut got = std::collections::BTreeMap::new();
    let want: BTreeSet<&str> = want.iter().copied().collect();
    while !want.iter().all(|w| got.contains_key(*w)) {
        let m = next_msg(sub).await;
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        got.entry(m.subject.to_string()).or_insert(v);
    }
    got
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

async fn stream_and_consumer_advisories(kind: ServerKind) {
    let (s, _sd) = server(kind, "", "").await;
    let c = s.client().await;
    let mut sub = c.subscribe("$JS.EVENT.ADVISORY.>").await.unwrap();
    c.flush().await.unwrap();
    create(&c, "S", json!({})).await;
    durable(&c, "S", "D").await;
    api(&c, "$JS.API.CONSUMER.DELETE.S.D", Value::Null).await;
    durable(&c, "S", "E").await;
    api(&c, "$JS.API.STREAM.DELETE.S", Value::Null).await;
    let got = collect(
        &mut sub,
        &[
            "$JS.EVENT.ADVISORY.STREAM.CREATED.S",
            "$JS.EVENT.ADVISORY.CONSUMER.CREATED.S.D",
            "$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.D",
            // A stream's deletion deletes its consumers, each with an advisory.
            "$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.E",
            "$JS.EVENT.ADVISORY.STREAM.DELETED.S",
            "$JS.EVENT.ADVISORY.API",
        ],
    )
    .await;
    let v = &got["$JS.EVENT.ADVISORY.STREAM.CREATED.S"];
    assert_eq!(keys(v), ["action", "id", "stream", "timestamp", "type"]);
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.stream_action");
    assert_eq!(
        (&v["stream"], &v["action"]),
        (&json!("S"), &json!("create"))
    );
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    let v = &got["$JS.EVENT.ADVISORY.STREAM.DELETED.S"];
    assert_eq!(v["action"], "delete");
    let v = &got["$JS.EVENT.ADVISORY.CONSUMER.CREATED.S.D"];
    assert_eq!(
        keys(v),
        ["action", "consumer", "id", "stream", "timestamp", "type"]
    );
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.consumer_action");
    assert_eq!(
        (&v["consumer"], &v["action"]),
        (&json!("D"), &json!("create"))
    );
    assert_eq!(
        got["$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.D"]["action"],
        "delete"
    );
    let v = &got["$JS.EVENT.ADVISORY.API"];
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.api_audit");
    assert_eq!(v["subject"], "$JS.API.STREAM.CREATE.S");
    for k in [
        "client",
        "id",
        "response",
        "server",
        "subject",
        "timestamp",
        "type",
    ] {
        assert!(v.get(k).is_some(), "audit lacks {k}: {v}");
    }
    let resp: Value = serde_json::from_str(v["response"].as_str().unwrap()).unwrap();
    assert_eq!(
        resp["type"],
        "io.nats.jetstream.api.v1.stream_create_response"
    );
}

async fn nak_and_term_advisories(kind: ServerKind) {
    let (s, _sd) = server(kind, "", "").await;
    let c = s.client().await;
    create(&c, "S", json!({})).await;
    durable(&c, "S", "D").await;
    for i in 0..2 {
        let m = c.request("s.x", format!("m{i}").into()).await.unwrap();
        assert!(serde_json::from_slice::<Value>(&m.payload).unwrap()["error"].is_null());
    }
    let mut adv = c.subscribe("$JS.EVENT.ADVISORY.CONSUMER.>").await.unwrap();
    let inbox = c.new_inbox();
    let mut msgs = c.subscribe(inbox.clone()).await.unwrap();
    c.publish_with_reply("$JS.API.CONSUMER.MSG.NEXT.S.D", inbox, "2".into())
        .await
        .unwrap();
    let first = next_msg(&mut msgs).await.reply.unwrap();
    let second = next_msg(&mut msgs).await.reply.unwrap();
    c.publish(first, "-NAK".into()).await.unwrap();
    c.publish(second, "+TERM".into()).await.unwrap();
    let got = collect(
        &mut adv,
        &[
            "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.S.D",
            "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.D",
        ],
    )
    .await;
    let v = &got["$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.S.D"];
    assert_eq!(
        keys(v),
        [
            "consumer",
            "consumer_seq",
            "deliveries",
            "id",
            "stream",
            "stream_seq",
            "timestamp",
            "type"
        ]
    );
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.nak");
    assert_eq!((&v["stream_seq"], &v["deliveries"]), (&json!(1), &json!(1)));
    let v = &got["$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.D"];
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.terminated");
    assert_eq!(v["stream_seq"], 2);
}

const ACCOUNTS: &str = r#"
accounts {
  A: {
    users: [ { user: a, password: pa } ]
    jetstream: { max_mem: 1000, max_file: 1000000, max_streams: 2, max_consumers: 1,
                 max_ack_pending: 20 }
  }
  B: { users: [ { user: b, password: pb } ] }
}
"#;

async fn login(s: &TestServer, user: &str, pass: &str) -> Client {
    s.client_with(ConnectOptions::with_user_and_password(
        user.into(),
        pass.into(),
    ))
    .await
}

async fn account_limits_in_info(kind: ServerKind) {
    let (s, _sd) = server(kind, "", ACCOUNTS).await;
    let a = login(&s, "a", "pa").await;
    let v = api(&a, "$JS.API.INFO", Value::Null).await;
    assert_eq!(
        v["limits"],
        json!({
            "max_memory": 1000, "max_storage": 1_000_000, "max_streams": 2,
            "max_consumers": 1, "max_ack_pending": 20, "memory_max_stream_bytes": -1,
            "storage_max_stream_bytes": -1, "max_bytes_required": false,
        })
    );
    // Account B has no JetStream: 10039.
    let b = login(&s, "b", "pb").await;
    let v = api(&b, "$JS.API.INFO", Value::Null).await;
    assert_eq!(err_of(&v).1, 10039, "{v}");
}

async fn account_stream_and_consumer_limits(kind: ServerKind) {
    let (s, _sd) = server(kind, "", ACCOUNTS).await;
    let a = login(&s, "a", "pa").await;
    let v = create(&a, "M", json!({"storage": "memory", "max_bytes": 1001})).await;
    assert_eq!(
        err_of(&v),
        (500, 10028, "insufficient memory resources available".into())
    );
    assert!(create(&a, "S1", json!({})).await["error"].is_null());
    assert!(create(&a, "S2", json!({})).await["error"].is_null());
    let v = create(&a, "S3", json!({})).await;
    assert_eq!(
        err_of(&v),
        (400, 10027, "maximum number of streams reached".into())
    );
    assert!(durable(&a, "S1", "D1").await["error"].is_null());
    assert_eq!(err_of(&durable(&a, "S1", "D2").await).1, 10026);
    let v = api(
        &a,
        "$JS.API.CONSUMER.DURABLE.CREATE.S2.E",
        json!({"stream_name": "S2", "config": {"durable_name": "E", "ack_policy": "explicit",
               "max_ack_pending": 21}}),
    )
    .await;
    assert_eq!(
        err_of(&v),
        (
            400,
            10121,
            "consumer max ack pending exceeds system limit of 20".into()
        )
    );
    let v = api(&a, "$JS.API.INFO", Value::Null).await;
    assert_eq!((&v["streams"], &v["consumers"]), (&json!(2), &json!(1)));
}

async fn jsz_account_details(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let http = free_port();
    let conf = format!(
        "jetstream {{ store_dir: {:?}, max_mem: 1000000 }}\nhttp_port: {http}",
        sd.path().to_str().unwrap()
    );
    let s = TestServer::start(kind, &conf).await;
    let c = s.client().await;
    create(&c, "S", json!({"max_bytes": 5000})).await;
    // natsd's worker refreshes its numbers just after it replies: wait for the stream.
    let z = within("jsz shows the stream", async {
        loop {
            if let Some(z) = monitor_get(http, "/jsz").await {
                if z["streams"] == 1 {
                    return z;
                }
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(z["config"]["max_memory"], 1_000_000);
    let dir = z["config"]["store_dir"].as_str().unwrap();
    assert!(dir.ends_with("/jetstream"), "{dir}");
    assert!(z.get("account_details").is_none(), "{z}");
    assert_eq!((&z["streams"], &z["accounts"]), (&json!(1), &json!(1)));
    let z = within("jsz", monitor_get(http, "/jsz?accounts=true"))
        .await
        .unwrap();
    let d = &z["account_details"][0];
    assert_eq!((&d["name"], &d["id"]), (&json!("$G"), &json!("$G")));
    // Go shows the account's (unlimited, -1) limits as unsigned.
    assert_eq!(d["reserved_memory"], u64::MAX);
    assert_eq!(d["api"]["total"], 1);
    let z = within("jsz", monitor_get(http, "/jsz?acc=$G"))
        .await
        .unwrap();
    assert_eq!(z["account_details"].as_array().unwrap().len(), 1);
    let z = within("jsz", monitor_get(http, "/jsz?acc=NOPE"))
        .await
        .unwrap();
    assert!(z.get("account_details").is_none(), "{z}");
}

/// The whole answer Go gives in an account without JetStream.
fn not_enabled(kind: &str) -> Value {
    json!({
        "type": format!("io.nats.jetstream.api.v1.{kind}_response"),
        "error": {"code": 503, "err_code": 10039, "description": "JetStream not enabled for account"},
    })
}

async fn accounts_without_jetstream_answer_10039(kind: ServerKind) {
    let conf = r#"
accounts {
  A: { users: [ { user: a, password: pa } ], jetstream: enabled }
  B: { users: [ { user: b, password: pb } ] }
  SYS: { users: [ { user: s, password: ps } ] }
}
system_account: SYS
"#;
    let (s, _sd) = server(kind, "", conf).await;
    let b = login(&s, "b", "pb").await;
    let v = api(&b, "$JS.API.INFO", Value::Null).await;
    assert_eq!(v, not_enabled("account_info"));
    assert_eq!(
        create(&b, "S", json!({})).await,
        not_enabled("stream_create")
    );
    assert_eq!(durable(&b, "S", "D").await, not_enabled("consumer_create"));
    // Go's paged responses carry their paging and list fields even here.
    let mut want = not_enabled("stream_names");
    let paged = json!({"total": 0, "offset": 0, "limit": 0, "streams": null});
    if let (Value::Object(w), Value::Object(p)) = (&mut want, paged) {
        w.extend(p);
    }
    let v = api(&b, "$JS.API.STREAM.NAMES", Value::Null).await;
    assert_eq!(v, want);
    let v = api(&b, "$JS.API.STREAM.PURGE.S", Value::Null).await;
    assert_eq!(
        (&v["purged"], &v["error"]["err_code"]),
        (&json!(0), &json!(10039))
    );
    // Nothing B did reached A's JetStream.
    let a = login(&s, "a", "pa").await;
    let v = api(&a, "$JS.API.INFO", Value::Null).await;
    assert_eq!(v["streams"], 0, "{v}");
    // The system account answers account info (and nothing else, which this does not wait
    // out: Go leaves such requests to time out, natsd to "no responders").
    let sys = login(&s, "s", "ps").await;
    let v = api(&sys, "$JS.API.INFO", Value::Null).await;
    assert_eq!(v, not_enabled("account_info"));
}

async fn accounts_with_different_max_streams(kind: ServerKind) {
    let conf = r#"
accounts {
  A: { users: [ { user: a, password: pa } ], jetstream: { max_streams: 1 } }
  B: { users: [ { user: b, password: pb } ], jetstream: { max_streams: 3 } }
}
"#;
    let (s, _sd) = server(kind, "", conf).await;
    let a = login(&s, "a", "pa").await;
    let b = login(&s, "b", "pb").await;
    assert!(create(&a, "S1", json!({})).await["error"].is_null());
    let v = create(&a, "S2", json!({})).await;
    assert_eq!(
        err_of(&v),
        (400, 10027, "maximum number of streams reached".into())
    );
    // B's streams are its own: the same names, and more of them.
    for n in ["S1", "S2", "S3"] {
        let v = create(&b, n, json!({})).await;
        assert!(v["error"].is_null(), "{n}: {v}");
    }
    assert_eq!(err_of(&create(&b, "S4", json!({})).await).1, 10027);
    let v = api(&a, "$JS.API.INFO", Value::Null).await;
    assert_eq!(
        (&v["streams"], &v["limits"]["max_streams"]),
        (&json!(1), &json!(1))
    );
    let v = api(&b, "$JS.API.INFO", Value::Null).await;
    assert_eq!(
        (&v["streams"], &v["limits"]["max_streams"]),
        (&json!(3), &json!(3))
    );
    // A stream of A does not capture B's publishes.
    let m = within("publish", b.request("s1.x", "hi".into()))
        .await
        .unwrap();
    let ack: Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!((&ack["stream"], &ack["seq"]), (&json!("S1"), &json!(1)));
    let v = api(&a, "$JS.API.STREAM.INFO.S1", Value::Null).await;
    assert_eq!(v["state"]["messages"], 0);
}

const TWO_ACCOUNTS: &str = r#"
accounts {
  A: { users: [ { user: a, password: pa } ], jetstream: enabled }
  B: { users: [ { user: b, password: pb } ], jetstream: enabled }
}
"#;

async fn server_limit_across_accounts(kind: ServerKind) {
    let (s, _sd) = server(kind, "max_mem: 1000000", TWO_ACCOUNTS).await;
    let a = login(&s, "a", "pa").await;
    let b = login(&s, "b", "pb").await;
    let mem = |n: i64| json!({"storage": "memory", "max_bytes": n});
    assert!(create(&a, "M", mem(600_000)).await["error"].is_null());
    // A reserved 600000 of the server's memory: B's 400001 no longer fits.
    let v = create(&b, "M", mem(400_001)).await;
    assert_eq!(
        err_of(&v),
        (500, 10028, "insufficient memory resources available".into())
    );
    assert!(create(&b, "M", mem(400_000)).await["error"].is_null());
    assert_eq!(err_of(&create(&a, "M2", mem(1)).await).1, 10028);
    // B's deletion gives its reservation back to A.
    api(&b, "$JS.API.STREAM.DELETE.M", Value::Null).await;
    assert!(create(&a, "M2", mem(400_000)).await["error"].is_null());
}

async fn jsz_reservations_and_accounts(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let http = free_port();
    let conf = format!(
        "jetstream {{ store_dir: {:?} }}\nhttp_port: {http}\n{TWO_ACCOUNTS}",
        sd.path().to_str().unwrap()
    );
    let s = TestServer::start(kind, &conf).await;
    let a = login(&s, "a", "pa").await;
    let b = login(&s, "b", "pb").await;
    create(&a, "M", json!({"storage": "memory", "max_bytes": 5000})).await;
    create(&b, "F", json!({"max_bytes": 7000})).await;
    durable(&b, "F", "D").await;
    // natsd's worker refreshes its numbers just after it replies: wait for them.
    let z = within("jsz shows both streams", async {
        loop {
            if let Some(z) = monitor_get(http, "/jsz?consumers=true&config=true").await {
                if z["streams"] == 2 && z["consumers"] == 1 {
                    return z;
                }
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(
        (&z["reserved_memory"], &z["reserved_storage"]),
        (&json!(5000), &json!(7000))
    );
    assert_eq!(z["accounts"], 2);
    // Go lists the accounts in map order unless `offset` is given: look them up by name.
    let d = z["account_details"].as_array().unwrap();
    let by = |n: &str| d.iter().find(|a| a["name"] == n).unwrap();
    assert_eq!(d.len(), 2);
    let f = &by("B")["stream_detail"][0];
    assert_eq!(f["name"], "F");
    assert_eq!(f["config"]["max_bytes"], 7000);
    assert_eq!(f["consumer_detail"][0]["name"], "D");
    assert_eq!(by("A")["stream_detail"][0]["name"], "M");
    // Each account counts its own API calls.
    assert_eq!(
        (&by("A")["api"]["total"], &by("B")["api"]["total"]),
        (&json!(1), &json!(2))
    );
    let z = within("jsz", monitor_get(http, "/jsz?acc=B"))
        .await
        .unwrap();
    let d = z["account_details"].as_array().unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["name"], "B");
    assert!(d[0].get("stream_detail").is_none(), "{z}");
}
