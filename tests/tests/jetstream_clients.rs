//! JetStream API replies and consumer behaviour that current clients (nats-py 2.x,
//! async-nats, the nats-jetstream family) rely on, run against natsd and nats-server 2.9.10;
//! the 2.10+ consumer actions run on natsd only.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use natsd_tests::js::{api, err_code, js_server};
use natsd_tests::{both, next_msg, within, within_for, ServerKind, TestServer};
use serde_json::{json, Value};

both!(
    consumer_info_fields,
    stream_replies_on_one_server,
    create_refusals,
    list_streams_by_subject,
    api_under_the_domain,
    expired_pull_is_not_waiting,
    deleted_consumer_ends_pending_pulls,
    ordered_consumer_survives_its_deletion,
    ordered_push_consumer_survives_its_deletion,
    repeated_headers_come_back,
);

/// nats-server 2.9 has no create/update actions (2.10), no prioritized pulls (2.12) and no
/// consumer reset (2.14).
mod natsd_only {
    #[tokio::test]
    async fn consumer_actions() {
        natsd_tests::run_scenario(natsd_tests::ServerKind::Natsd, super::consumer_actions).await;
    }

    #[tokio::test]
    async fn consumer_reset() {
        natsd_tests::run_scenario(natsd_tests::ServerKind::Natsd, super::consumer_reset).await;
    }

    #[tokio::test]
    async fn prioritized_pulls() {
        natsd_tests::run_scenario(natsd_tests::ServerKind::Natsd, super::prioritized_pulls).await;
    }
}

/// How long a condition that a server reaches at once may take to show.
const SETTLE: Duration = Duration::from_secs(5);

/// A stream named `name` on `subjects`, memory storage, plus `extra`.
async fn stream(c: &async_nats::Client, name: &str, subjects: &[&str], extra: Value) -> Value {
    let mut cfg = json!({"name": name, "subjects": subjects, "storage": "memory"});
    if let (Value::Object(a), Value::Object(b)) = (&mut cfg, extra) {
        a.extend(b);
    }
    let v = api(c, &format!("$JS.API.STREAM.CREATE.{name}"), cfg).await;
    assert!(v.get("error").is_none(), "{v}");
    v
}

async fn publish(c: &async_nats::Client, subject: &str, payload: &str) -> u64 {
    let m = within(
        "publish ack",
        c.request(subject.to_owned(), payload.to_owned().into()),
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&m.payload).unwrap();
    v["seq"].as_u64().unwrap_or_else(|| panic!("{v}"))
}

/// A durable on stream `S` through the 2.9 durable create subject.
async fn durable(c: &async_nats::Client, name: &str, cfg: Value) -> Value {
    let mut cfg = cfg;
    cfg["durable_name"] = json!(name);
    api(
        c,
        &format!("$JS.API.CONSUMER.DURABLE.CREATE.S.{name}"),
        json!({"stream_name": "S", "config": cfg}),
    )
    .await
}

async fn consumer_info(c: &async_nats::Client, name: &str) -> Value {
    let v = api(c, &format!("$JS.API.CONSUMER.INFO.S.{name}"), Value::Null).await;
    assert!(v.get("error").is_none(), "{v}");
    v
}

/// Asks for consumer info until `ok` holds, for at most [`SETTLE`].
async fn info_until(c: &async_nats::Client, name: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let v = consumer_info(c, name).await;
        if ok(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumer info never got there: {v}"
        );
        tokio::task::yield_now().await;
    }
}

/// A pull request whose answers go to the returned subscription.
async fn pull(c: &async_nats::Client, name: &str, req: Value) -> async_nats::Subscriber {
    let inbox = c.new_inbox();
    let sub = c.subscribe(inbox.clone()).await.unwrap();
    c.publish_with_reply(
        format!("$JS.API.CONSUMER.MSG.NEXT.S.{name}"),
        inbox,
        serde_json::to_vec(&req).unwrap().into(),
    )
    .await
    .unwrap();
    c.flush().await.unwrap();
    sub
}

/// An RFC 3339 UTC time, as Go writes a `time.Time`.
fn is_rfc3339(v: &Value) -> bool {
    let Some(s) = v.as_str() else {
        return false;
    };
    let b = s.as_bytes();
    s.len() >= 20 && b[4] == b'-' && b[10] == b'T' && s.ends_with('Z')
}

/// `deliver_group` and `sample_freq` come back in the config, `push_bound` follows the
/// deliver subject's listener, `last_active` appears once something was delivered or acked,
/// and a consumer on one server has no `cluster` block.
async fn consumer_info_fields(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, "S", &["s.>"], json!({})).await;
    let v = durable(
        &c,
        "D",
        json!({"deliver_subject": "dq", "deliver_group": "g", "ack_policy": "explicit",
               "sample_freq": "50%"}),
    )
    .await;
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["config"]["deliver_group"], "g", "{v}");
    assert_eq!(v["config"]["sample_freq"], "50%", "{v}");
    assert_eq!(v["config"]["num_replicas"], 0, "{v}");
    assert!(v.get("push_bound").is_none(), "nobody listens yet: {v}");
    assert!(v.get("cluster").is_none(), "{v}");
    assert!(v["delivered"].get("last_active").is_none(), "{v}");
    assert!(v["ack_floor"].get("last_active").is_none(), "{v}");

    let mut sub = c
        .queue_subscribe("dq".to_owned(), "g".to_owned())
        .await
        .unwrap();
    c.flush().await.unwrap();
    let v = info_until(&c, "D", |v| v["push_bound"] == true).await;
    assert!(v.get("cluster").is_none(), "{v}");

    publish(&c, "s.a", "x").await;
    let m = next_msg(&mut sub).await;
    let v = info_until(&c, "D", |v| v["delivered"]["stream_seq"] == 1).await;
    assert!(is_rfc3339(&v["delivered"]["last_active"]), "{v}");
    assert!(v["ack_floor"].get("last_active").is_none(), "{v}");
    let ack = m.reply.clone().unwrap();
    c.request(ack.to_string(), "".into()).await.unwrap();
    let v = info_until(&c, "D", |v| v["ack_floor"]["stream_seq"] == 1).await;
    assert!(is_rfc3339(&v["ack_floor"]["last_active"]), "{v}");

    drop(sub);
    c.flush().await.unwrap();
    let v = info_until(&c, "D", |v| v.get("push_bound").is_none()).await;
    assert_eq!(v["config"]["deliver_group"], "g");

    // async-nats reads all of it.
    let js = jetstream::new(c.clone());
    let cons: consumer::PushConsumer = js
        .get_stream("S")
        .await
        .unwrap()
        .get_consumer("D")
        .await
        .unwrap();
    let info = cons.cached_info();
    assert_eq!(info.config.deliver_group.as_deref(), Some("g"));
    assert_eq!(info.config.sample_frequency, 50);
    assert!(info.delivered.last_active.is_some());
    assert!(info.ack_floor.last_active.is_some());
}

/// On a server without a cluster, no stream reply carries a `cluster` block.
async fn stream_replies_on_one_server(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = stream(&c, "S", &["s.>"], json!({})).await;
    assert!(v.get("cluster").is_none(), "create: {v}");
    let v = api(&c, "$JS.API.STREAM.INFO.S", Value::Null).await;
    assert!(v.get("cluster").is_none(), "info: {v}");
    assert!(v.get("domain").is_none(), "no domain configured: {v}");
    let v = api(&c, "$JS.API.STREAM.LIST", Value::Null).await;
    assert!(v["streams"][0].get("cluster").is_none(), "list: {v}");
    let v = api(
        &c,
        "$JS.API.STREAM.UPDATE.S",
        json!({"name": "S", "subjects": ["s.>"], "storage": "memory", "max_msgs": 5}),
    )
    .await;
    assert!(v.get("cluster").is_none(), "update: {v}");
    assert_eq!(v["config"]["max_msgs"], 5, "{v}");
    let js = jetstream::new(c.clone());
    // async-nats reads the account info (nats-server 2.9 lacks the 2.10 `reserved_*`
    // fields it requires) and the stream info.
    if kind == ServerKind::Natsd {
        assert_eq!(js.query_account().await.unwrap().streams, 1);
    }
    let mut st = js.get_stream("S").await.unwrap();
    assert!(st.info().await.unwrap().cluster.is_none());
}

/// Go refuses a created stream that is sealed, or mirror-direct without a mirror.
async fn create_refusals(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = api(
        &c,
        "$JS.API.STREAM.CREATE.M",
        json!({"name": "M", "subjects": ["m"], "mirror_direct": true}),
    )
    .await;
    assert_eq!(err_code(&v), 10052, "{v}");
    assert_eq!(v["error"]["code"], 500, "{v}");
    assert_eq!(
        v["error"]["description"],
        "stream has no mirror but does have mirror direct"
    );
    let v = api(
        &c,
        "$JS.API.STREAM.CREATE.M",
        json!({"name": "M", "subjects": ["m"], "sealed": true}),
    )
    .await;
    assert_eq!(err_code(&v), 10052, "{v}");
    assert_eq!(
        v["error"]["description"],
        "stream configuration for create can not be sealed"
    );
    let v = api(&c, "$JS.API.STREAM.NAMES", Value::Null).await;
    assert_eq!(v["total"], 0, "{v}");
}

/// `STREAM.NAMES` and `STREAM.LIST` with a subject give the streams whose subjects collide
/// with it, and only those.
async fn list_streams_by_subject(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, "A", &["a.>"], json!({})).await;
    stream(&c, "B", &["b.*"], json!({})).await;
    let cases: [(&str, &[&str]); 6] = [
        ("a.x", &["A"]),
        ("b.x", &["B"]),
        ("b.>", &["B"]),
        ("*.x", &["A", "B"]),
        (">", &["A", "B"]),
        ("c", &[]),
    ];
    for (subject, want) in cases {
        let v = api(&c, "$JS.API.STREAM.NAMES", json!({"subject": subject})).await;
        assert_eq!(v["total"], want.len(), "names {subject}: {v}");
        if want.is_empty() {
            // Go's names are a nil slice until one is added.
            assert!(v["streams"].is_null(), "names {subject}: {v}");
        } else {
            assert_eq!(v["streams"], json!(want), "names {subject}: {v}");
        }
        let v = api(&c, "$JS.API.STREAM.LIST", json!({"subject": subject})).await;
        assert_eq!(v["total"], want.len(), "list {subject}: {v}");
        let got: Vec<&str> = v["streams"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s["config"]["name"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got, want, "list {subject}: {v}");
    }
    // async-nats finds a stream by subject with the same request.
    let js = jetstream::new(c.clone());
    assert_eq!(js.stream_by_subject("b.x").await.unwrap(), "B");
    assert_eq!(js.stream_by_subject("a.y.z").await.unwrap(), "A");
}

/// With `jetstream { domain: hub }` the API also answers on `$JS.hub.API.>`, and stream
/// info, list and update name the domain.
async fn api_under_the_domain(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let conf = format!(
        "jetstream {{ store_dir: {:?}, domain: hub }}\n",
        sd.path().to_str().unwrap()
    );
    let s = TestServer::start(kind, &conf).await;
    // INFO names the domain, and (nats-core, the new Python client, needs it) `go`.
    let info = s.raw().await.info.clone();
    assert_eq!(info["domain"], "hub", "{info}");
    assert!(info["go"].is_string(), "{info}");
    let c = s.client().await;
    let v = api(&c, "$JS.hub.API.INFO", Value::Null).await;
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.account_info_response");
    assert_eq!(v["domain"], "hub", "{v}");
    let v = api(
        &c,
        "$JS.hub.API.STREAM.CREATE.S",
        json!({"name": "S", "subjects": ["s.>"], "storage": "memory"}),
    )
    .await;
    assert!(v.get("error").is_none(), "{v}");
    let v = api(&c, "$JS.API.STREAM.INFO.S", Value::Null).await;
    assert_eq!(v["domain"], "hub", "{v}");
    let v = api(&c, "$JS.hub.API.STREAM.LIST", Value::Null).await;
    assert_eq!(v["streams"][0]["domain"], "hub", "{v}");
    // async-nats with the domain: account info, stream info, a publish and a fetch.
    let js = jetstream::with_domain(c.clone(), "hub");
    if kind == ServerKind::Natsd {
        let acc = js.query_account().await.unwrap();
        assert_eq!(acc.domain.as_deref(), Some("hub"));
    }
    let ack = js.publish("s.a", "x".into()).await.unwrap().await.unwrap();
    assert_eq!(ack.domain, "hub");
    let st = js.get_stream("S").await.unwrap();
    let cons = st
        .create_consumer(consumer::pull::Config {
            durable_name: Some("d".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = cons.fetch().max_messages(1).messages().await.unwrap();
    let m = within("fetched message", batch.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.payload.as_ref(), b"x");
}

/// Once a pull request's expiry has passed, consumer info counts it no more (Go's info
/// ends expired requests first), and the pending count is untouched.
async fn expired_pull_is_not_waiting(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, "S", &["s.>"], json!({})).await;
    let v = durable(&c, "P", json!({"ack_policy": "explicit"})).await;
    assert!(v.get("error").is_none(), "{v}");
    let expires = Duration::from_millis(300);
    let sent = tokio::time::Instant::now();
    let mut sub = pull(
        &c,
        "P",
        json!({"batch": 1, "expires": expires.as_nanos() as u64}),
    )
    .await;
    let v = consumer_info(&c, "P").await;
    assert_eq!(v["num_waiting"], 1, "{v}");
    // The precondition is a point in time: the request's expiry has passed on the server
    // (it started its clock a little after `sent`). The exact edge, an info right at the
    // expiry before any timer ran, is pinned by natsd-core's unit tests.
    tokio::time::sleep_until(sent + expires + Duration::from_millis(50)).await;
    let v = consumer_info(&c, "P").await;
    assert_eq!(v["num_waiting"], 0, "{v}");
    assert_eq!(v["num_pending"], 0, "{v}");
    let m = next_msg(&mut sub).await;
    assert_eq!(m.status.map(|s| s.as_u16()), Some(408), "{m:?}");
    publish(&c, "s.a", "1").await;
    publish(&c, "s.a", "2").await;
    let v = consumer_info(&c, "P").await;
    assert_eq!(
        (&v["num_pending"], &v["num_waiting"]),
        (&json!(2), &json!(0))
    );
    assert_eq!(v["num_ack_pending"], 0, "{v}");
}

/// A pull request waiting on a consumer ends with `409 Consumer Deleted` when the consumer
/// goes, through its own delete or its stream's.
async fn deleted_consumer_ends_pending_pulls(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, "S", &["s.>"], json!({})).await;
    for name in ["P", "Q"] {
        let v = durable(&c, name, json!({"ack_policy": "explicit"})).await;
        assert!(v.get("error").is_none(), "{v}");
    }
    let long = json!({"batch": 5, "expires": 30_000_000_000u64});
    let mut p = pull(&c, "P", long.clone()).await;
    let mut q = pull(&c, "Q", long).await;
    info_until(&c, "P", |v| v["num_waiting"] == 1).await;
    info_until(&c, "Q", |v| v["num_waiting"] == 1).await;

    let v = api(&c, "$JS.API.CONSUMER.DELETE.S.P", Value::Null).await;
    assert_eq!(v["success"], true, "{v}");
    let m = next_msg(&mut p).await;
    assert_eq!(m.status.map(|s| s.as_u16()), Some(409), "{m:?}");
    assert_eq!(m.description.as_deref(), Some("Consumer Deleted"));
    assert!(m.payload.is_empty());

    let v = api(&c, "$JS.API.STREAM.DELETE.S", Value::Null).await;
    assert_eq!(v["success"], true, "{v}");
    let m = next_msg(&mut q).await;
    assert_eq!(m.status.map(|s| s.as_u16()), Some(409), "{m:?}");
    assert_eq!(m.description.as_deref(), Some("Consumer Deleted"));
}

/// async-nats's ordered pull consumer makes a new consumer when its own is deleted under
/// it, and goes on in order.
async fn ordered_consumer_survives_its_deletion(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, "S", &["s.>"], json!({})).await;
    for i in 1..=3 {
        publish(&c, "s.a", &i.to_string()).await;
    }
    let js = jetstream::new(c.clone());
    let st = js.get_stream("S").await.unwrap();
    let cons = st
        .create_consumer(consumer::pull::OrderedConfig::default())
        .await
        .unwrap();
    let mut msgs = cons.messages().await.unwrap();
    for i in 1..=3 {
        assert_eq!(ordered_next(&mut msgs).await, i.to_string());
    }
    let names: Vec<String> = st.consumer_names().map(Result::unwrap).collect().await;
    assert_eq!(names.len(), 1, "{names:?}");
    let v = api(
        &c,
        &format!("$JS.API.CONSUMER.DELETE.S.{}", names[0]),
        Value::Null,
    )
    .await;
    assert_eq!(v["success"], true, "{v}");
    for i in 4..=6 {
        publish(&c, "s.a", &i.to_string()).await;
    }
    for i in 4..=6 {
        assert_eq!(ordered_next(&mut msgs).await, i.to_string());
    }
}

/// async-nats's ordered push consumer notices by its missed heartbeats (10s) that its
/// consumer is gone, makes a new one from where it was, and goes on in order.
async fn ordered_push_consumer_survives_its_deletion(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, "S", &["s.>"], json!({})).await;
    for i in 1..=2 {
        publish(&c, "s.a", &i.to_string()).await;
    }
    let js = jetstream::new(c.clone());
    let st = js.get_stream("S").await.unwrap();
    let cons = st
        .create_consumer(consumer::push::OrderedConfig {
            deliver_subject: c.new_inbox(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut msgs = cons.messages().await.unwrap();
    assert_eq!(push_next(&mut msgs).await, "1");
    assert_eq!(push_next(&mut msgs).await, "2");
    let names: Vec<String> = st.consumer_names().map(Result::unwrap).collect().await;
    assert_eq!(names.len(), 1, "{names:?}");
    let v = api(
        &c,
        &format!("$JS.API.CONSUMER.DELETE.S.{}", names[0]),
        Value::Null,
    )
    .await;
    assert_eq!(v["success"], true, "{v}");
    for i in 3..=4 {
        publish(&c, "s.a", &i.to_string()).await;
    }
    assert_eq!(push_next(&mut msgs).await, "3");
    assert_eq!(push_next(&mut msgs).await, "4");
}

/// The next body from an ordered push consumer; the missed-heartbeat error is how it
/// learns its consumer is gone, and it goes on.
async fn push_next(msgs: &mut consumer::push::Ordered) -> String {
    loop {
        let item = within_for(Duration::from_secs(25), "ordered push message", msgs.next())
            .await
            .unwrap();
        match item {
            Ok(m) => return String::from_utf8(m.payload.to_vec()).unwrap(),
            Err(e) => assert_eq!(
                e.kind(),
                consumer::push::OrderedErrorKind::MissingHeartbeat,
                "{e}"
            ),
        }
    }
}

/// The next body from an ordered consumer. The bound covers a client that only notices the
/// deletion by missed heartbeats; a `409 Consumer Deleted` makes it recreate at once.
async fn ordered_next(msgs: &mut consumer::pull::Ordered) -> String {
    let m = within_for(Duration::from_secs(20), "ordered message", msgs.next())
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(m.payload.to_vec()).unwrap()
}

/// A header given twice keeps both values through the store: in a direct get and in
/// `STREAM.MSG.GET`'s `hdrs`.
async fn repeated_headers_come_back(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let mut cfg = json!({"name": "S", "subjects": ["s.>"], "allow_direct": true});
    let v = api(&c, "$JS.API.STREAM.CREATE.S", cfg.take()).await;
    assert!(v.get("error").is_none(), "{v}");
    let js = jetstream::new(c.clone());
    let mut h = async_nats::HeaderMap::new();
    h.append("K", "a");
    h.append("K", "b");
    h.append("Other", "c");
    js.publish_with_headers("s.a", h, "x".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let st = js.get_stream("S").await.unwrap();
    let m = st.direct_get(1).await.unwrap();
    let got: Vec<&str> = m.headers.get_all("K").map(|v| v.as_str()).collect();
    assert_eq!(got, ["a", "b"], "{:?}", m.headers);
    assert_eq!(m.headers.get("Other").map(|v| v.as_str()), Some("c"));
    assert_eq!(m.payload.as_ref(), b"x");
    // MSG.GET: the header block as stored (async-nats's own parse of `hdrs` keeps only the
    // last value of a key, against either server, so the block is read here).
    let v = api(&c, "$JS.API.STREAM.MSG.GET.S", json!({"seq": 1})).await;
    let hdrs = v["message"]["hdrs"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"));
    let block = String::from_utf8(base64_decode(hdrs)).unwrap();
    assert!(block.starts_with("NATS/1.0\r\n"), "{block:?}");
    let lines: Vec<&str> = block
        .split("\r\n")
        .filter(|l| l.starts_with("K:"))
        .collect();
    assert_eq!(lines, ["K: a", "K: b"], "{block:?}");
}

/// Standard base64, as Go encodes `[]byte` in JSON.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {s}"),
        }
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|c| *c != b'=').collect();
        let n = data
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | (val(*c) << (18 - 6 * i)));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..data.len()]);
    }
    out
}

/// Go 2.10 create/update actions: `create` refuses an existing consumer with another config
/// (10148) and is a no-op with the same one; `update` refuses a missing consumer (10149).
async fn consumer_actions(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, "S", &["s.>"], json!({})).await;
    let create = |cfg: Value, action: &str| {
        let body = json!({"stream_name": "S", "config": cfg, "action": action});
        let c = c.clone();
        async move { api(&c, "$JS.API.CONSUMER.CREATE.S.C", body).await }
    };
    let base = json!({"name": "C", "ack_policy": "explicit"});
    let v = create(base.clone(), "update").await;
    assert_eq!(err_code(&v), 10149, "{v}");
    assert_eq!(v["error"]["description"], "consumer does not exist");
    let v = create(base.clone(), "create").await;
    assert!(v.get("error").is_none(), "{v}");
    let v = create(base.clone(), "create").await;
    assert!(v.get("error").is_none(), "same config again: {v}");
    let mut other = base.clone();
    other["description"] = json!("changed");
    let v = create(other.clone(), "create").await;
    assert_eq!(err_code(&v), 10148, "{v}");
    assert_eq!(v["error"]["description"], "consumer already exists");
    let v = create(other, "update").await;
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["config"]["description"], "changed", "{v}");
}

/// Go 2.12 `prioritized`: the waiting request with the lowest `priority` is served first.
async fn prioritized_pulls(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, "S", &["s.>"], json!({})).await;
    let v = durable(
        &c,
        "P",
        json!({"ack_policy": "explicit", "priority_policy": "prioritized",
               "priority_groups": ["g"]}),
    )
    .await;
    assert!(v.get("error").is_none(), "{v}");
    let req = |prio: i64| json!({"batch": 1, "expires": 30_000_000_000u64, "group": "g", "priority": prio});
    let mut bad = pull(&c, "P", req(10)).await;
    let m = next_msg(&mut bad).await;
    assert_eq!(m.status.map(|s| s.as_u16()), Some(400), "{m:?}");
    assert_eq!(
        m.description.as_deref(),
        Some("Bad Request - Priority must be between 0 and 9")
    );
    let mut low = pull(&c, "P", req(7)).await;
    let mut high = pull(&c, "P", req(2)).await;
    info_until(&c, "P", |v| v["num_waiting"] == 2).await;
    publish(&c, "s.a", "first").await;
    assert_eq!(next_msg(&mut high).await.payload.as_ref(), b"first");
    publish(&c, "s.a", "second").await;
    assert_eq!(next_msg(&mut low).await.payload.as_ref(), b"second");
}

/// Go 2.14 `$JS.API.CONSUMER.RESET`: back to the ack floor, or to a sequence.
async fn consumer_reset(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    stream(&c, "S", &["s.>"], json!({})).await;
    for i in 1..=3 {
        publish(&c, "s.a", &i.to_string()).await;
    }
    let v = durable(&c, "P", json!({"ack_policy": "explicit"})).await;
    assert!(v.get("error").is_none(), "{v}");
    let mut sub = pull(&c, "P", json!({"batch": 2})).await;
    assert_eq!(next_msg(&mut sub).await.payload.as_ref(), b"1");
    assert_eq!(next_msg(&mut sub).await.payload.as_ref(), b"2");
    let v = api(&c, "$JS.API.CONSUMER.RESET.S.P", Value::Null).await;
    assert_eq!(
        v["type"],
        "io.nats.jetstream.api.v1.consumer_reset_response"
    );
    assert_eq!(
        (&v["reset_seq"], &v["num_ack_pending"]),
        (&json!(1), &json!(0))
    );
    let mut sub = pull(&c, "P", json!({"batch": 1})).await;
    assert_eq!(next_msg(&mut sub).await.payload.as_ref(), b"1");
    let v = api(&c, "$JS.API.CONSUMER.RESET.S.P", json!({"seq": 3})).await;
    assert_eq!((&v["reset_seq"], &v["num_pending"]), (&json!(3), &json!(1)));
    let mut sub = pull(&c, "P", json!({"batch": 1})).await;
    assert_eq!(next_msg(&mut sub).await.payload.as_ref(), b"3");
}
