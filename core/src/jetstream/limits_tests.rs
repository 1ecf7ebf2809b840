//! Every limit error and every advisory's JSON shape, through [`JetStream::api`].

use serde_json::{json, Value};

use super::super::advisory::{Action, MsgEvent};
use super::super::consumer::Delivery;
use super::super::factory::DiskFactory;
use super::super::service::{JetStream, JsSettings};
use super::super::store::{MemDisk, SyncPolicy};
use super::{limits_growth, sufficient_resources, AccountLimits, ServerCapacity, ServerUsage};

const T0: u64 = 1_700_000_000_123_000_000;

fn js_with(settings: JsSettings, limits: AccountLimits) -> JetStream {
    let d = MemDisk::new(1);
    let f = DiskFactory::new(move || d.clone(), SyncPolicy::Always).with_block_size(4096);
    let mut js = JetStream::new(settings, Box::new(f), 7);
    js.set_account_limits(limits);
    js
}

fn js(limits: AccountLimits) -> JetStream {
    let s = JsSettings {
        server_name: "S1".into(),
        ..JsSettings::default()
    };
    js_with(s, limits)
}

fn body(d: &Delivery) -> Value {
    serde_json::from_slice(&d.payload).unwrap()
}

fn call(js: &mut JetStream, subject: &str, req: &Value) -> Vec<Delivery> {
    let payload = if req.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(req).unwrap()
    };
    js.api(subject, Some("_INBOX.r"), &payload, T0)
}

fn api(js: &mut JetStream, subject: &str, req: &Value) -> Value {
    body(&call(js, subject, req)[0])
}

fn err_of(v: &Value) -> (u64, u64, &str) {
    let e = &v["error"];
    (
        e["code"].as_u64().unwrap_or(0),
        e["err_code"].as_u64().unwrap_or(0),
        e["description"].as_str().unwrap_or(""),
    )
}

fn stream(js: &mut JetStream, name: &str, extra: &Value) -> Value {
    let mut cfg = json!({"name": name, "subjects": [format!("{}.>", name.to_lowercase())]});
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
        c.extend(e.clone());
    }
    api(js, &format!("$JS.API.STREAM.CREATE.{name}"), &cfg)
}

fn consumer(js: &mut JetStream, stream: &str, cfg: &Value) -> Value {
    api(
        js,
        &format!("$JS.API.CONSUMER.CREATE.{stream}"),
        &json!({"stream_name": stream, "config": cfg}),
    )
}

fn limits(f: impl FnOnce(&mut AccountLimits)) -> AccountLimits {
    let mut l = AccountLimits::default();
    f(&mut l);
    l
}

#[test]
fn max_streams_10027_even_for_an_identical_create() {
    let mut js = js(limits(|l| l.max_streams = 2));
    assert!(stream(&mut js, "A", &json!({}))["error"].is_null());
    assert!(stream(&mut js, "B", &json!({}))["error"].is_null());
    let v = stream(&mut js, "C", &json!({}));
    assert_eq!(
        err_of(&v),
        (400, 10027, "maximum number of streams reached")
    );
    // Go counts before it looks for the existing stream.
    assert_eq!(err_of(&stream(&mut js, "A", &json!({}))).1, 10027);
    api(&mut js, "$JS.API.STREAM.DELETE.B", &Value::Null);
    assert!(stream(&mut js, "C", &json!({}))["error"].is_null());
}

#[test]
fn max_consumers_10026_per_stream() {
    let mut js = js(limits(|l| l.max_consumers = 1));
    stream(&mut js, "A", &json!({}));
    stream(&mut js, "B", &json!({}));
    assert!(consumer(&mut js, "A", &json!({"durable_name": "d1"}))["error"].is_null());
    let v = consumer(&mut js, "A", &json!({"durable_name": "d2"}));
    assert_eq!(err_of(&v), (400, 10026, "maximum consumers limit reached"));
    // Re-creating the existing one is an update, not a new consumer.
    assert!(consumer(&mut js, "A", &json!({"durable_name": "d1"}))["error"].is_null());
    // The limit counts per stream (Go: mset.numPublicConsumers).
    assert!(consumer(&mut js, "B", &json!({"durable_name": "d2"}))["error"].is_null());
    // A stream asking for more consumers than the account allows.
    let v = stream(&mut js, "C", &json!({"max_consumers": 5}));
    assert_eq!(err_of(&v).1, 10026);
}

#[test]
fn stream_max_consumers_without_account_limit() {
    let mut js = js(AccountLimits::default());
    stream(&mut js, "A", &json!({"max_consumers": 1}));
    consumer(&mut js, "A", &json!({"durable_name": "d1"}));
    let v = consumer(&mut js, "A", &json!({"durable_name": "d2"}));
    assert_eq!(err_of(&v).1, 10026);
}

#[test]
fn memory_and_file_reservations_10028_10047() {
    let mut js = js(limits(|l| {
        l.max_memory = 1000;
        l.max_storage = 2000;
    }));
    let v = stream(
        &mut js,
        "M",
        &json!({"storage": "memory", "max_bytes": 1001}),
    );
    assert_eq!(
        err_of(&v),
        (500, 10028, "insufficient memory resources available")
    );
    assert!(stream(
        &mut js,
        "M",
        &json!({"storage": "memory", "max_bytes": 600})
    )["error"]
        .is_null());
    // 600 reserved: 400 left.
    let v = stream(
        &mut js,
        "N",
        &json!({"storage": "memory", "max_bytes": 401}),
    );
    assert_eq!(err_of(&v).1, 10028);
    // Unlimited max_bytes reserves one byte.
    assert!(stream(&mut js, "N", &json!({"storage": "memory"}))["error"].is_null());
    let v = stream(&mut js, "F", &json!({"max_bytes": 2001}));
    assert_eq!(
        err_of(&v),
        (500, 10047, "insufficient storage resources available")
    );
    assert!(stream(&mut js, "F", &json!({"max_bytes": 2000}))["error"].is_null());
    assert_eq!(js.reserved(), (600, 2000));
}

#[test]
fn zero_memory_limit_forbids_memory_streams() {
    let mut js = js(limits(|l| l.max_memory = 0));
    let v = stream(&mut js, "M", &json!({"storage": "memory"}));
    assert_eq!(err_of(&v).1, 10028);
    assert!(stream(&mut js, "F", &json!({}))["error"].is_null());
}

#[test]
fn update_reserves_only_growth() {
    let mut js = js(limits(|l| l.max_memory = 1000));
    stream(
        &mut js,
        "M",
        &json!({"storage": "memory", "max_bytes": 800}),
    );
    let cfg = json!({"name": "M", "subjects": ["m.>"], "storage": "memory", "max_bytes": 1000});
    let v = api(&mut js, "$JS.API.STREAM.UPDATE.M", &cfg);
    assert!(v["error"].is_null(), "{v}");
    let cfg = json!({"name": "M", "subjects": ["m.>"], "storage": "memory", "max_bytes": 1001});
    let v = api(&mut js, "$JS.API.STREAM.UPDATE.M", &cfg);
    assert_eq!(err_of(&v).1, 10028);
}

#[test]
fn server_limits_reserve_across_accounts() {
    let s = JsSettings {
        server_name: "S1".into(),
        max_memory: Some(1000),
        max_file: Some(5000),
        ..JsSettings::default()
    };
    let mut js = js_with(s, AccountLimits::default());
    let v = stream(
        &mut js,
        "M",
        &json!({"storage": "memory", "max_bytes": 1001}),
    );
    assert_eq!(err_of(&v).1, 10028);
    js.set_other_usage(ServerUsage {
        reserved_memory: 500,
        ..ServerUsage::default()
    });
    let v = stream(
        &mut js,
        "M",
        &json!({"storage": "memory", "max_bytes": 501}),
    );
    assert_eq!(err_of(&v).1, 10028);
    assert!(stream(
        &mut js,
        "M",
        &json!({"storage": "memory", "max_bytes": 500})
    )["error"]
        .is_null());
    let v = stream(&mut js, "F", &json!({"max_bytes": 5001}));
    assert_eq!(err_of(&v).1, 10047);
}

#[test]
fn max_bytes_required_10113_and_stream_bytes_10122() {
    let mut js = js(limits(|l| {
        l.max_bytes_required = true;
        l.memory_max_stream_bytes = 100;
        l.storage_max_stream_bytes = 200;
    }));
    let v = stream(&mut js, "A", &json!({}));
    assert_eq!(
        err_of(&v),
        (
            400,
            10113,
            "account requires a stream config to have max bytes set"
        )
    );
    let v = stream(
        &mut js,
        "A",
        &json!({"storage": "memory", "max_bytes": 101}),
    );
    assert_eq!(
        err_of(&v),
        (
            400,
            10122,
            "stream max bytes exceeds account limit max stream bytes"
        )
    );
    assert!(stream(&mut js, "A", &json!({"max_bytes": 200}))["error"].is_null());
    let cfg = json!({"name": "A", "subjects": ["a.>"], "max_bytes": 201});
    let v = api(&mut js, "$JS.API.STREAM.UPDATE.A", &cfg);
    assert_eq!(err_of(&v).1, 10122);
}

#[test]
fn max_ack_pending_default_and_10121() {
    let mut js = js(limits(|l| l.max_ack_pending = 20));
    stream(&mut js, "A", &json!({}));
    let v = consumer(
        &mut js,
        "A",
        &json!({"durable_name": "d", "ack_policy": "explicit"}),
    );
    assert_eq!(v["config"]["max_ack_pending"], 20, "{v}");
    let v = consumer(
        &mut js,
        "A",
        &json!({"durable_name": "e", "ack_policy": "explicit", "max_ack_pending": 21}),
    );
    assert_eq!(
        err_of(&v),
        (
            400,
            10121,
            "consumer max ack pending exceeds system limit of 20"
        )
    );
}

fn publish(js: &mut JetStream, subj: &str, payload: &[u8]) -> Vec<Delivery> {
    let mut out = js.publish(subj, Some("_INBOX.ack"), b"", payload, T0);
    out.extend(js.commit(T0));
    out
}

#[test]
fn publish_over_account_limit_10002_and_the_message_is_taken_back() {
    let mut js = js(limits(|l| l.max_memory = 300));
    stream(&mut js, "M", &json!({"storage": "memory"}));
    let ok = publish(&mut js, "m.x", &[b'a'; 100]);
    assert_eq!(body(&ok[0])["seq"], 1);
    let out = publish(&mut js, "m.x", &[b'b'; 250]);
    let v = body(&out[0]);
    assert_eq!(
        err_of(&v),
        (400, 10002, "resource limits exceeded for account")
    );
    assert_eq!(v["stream"], "M");
    assert_eq!(js.stream("M").unwrap().store.state().msgs, 1);
}

#[test]
fn publish_on_a_full_server_10023() {
    let s = JsSettings {
        server_name: "S1".into(),
        max_file: Some(10_000),
        ..JsSettings::default()
    };
    let mut js = js_with(s, AccountLimits::default());
    stream(&mut js, "F", &json!({}));
    assert_eq!(body(&publish(&mut js, "f.x", b"one")[0])["seq"], 1);
    js.set_other_usage(ServerUsage {
        storage: 10_000,
        ..ServerUsage::default()
    });
    let v = body(&publish(&mut js, "f.x", b"two")[0]);
    assert_eq!(err_of(&v), (503, 10023, "insufficient resources"));
}

#[test]
fn account_info_reports_limits_and_usage() {
    let l = AccountLimits {
        max_memory: 1000,
        max_storage: 2000,
        max_streams: 3,
        max_consumers: 4,
        max_ack_pending: 5,
        memory_max_stream_bytes: 6,
        storage_max_stream_bytes: 7,
        max_bytes_required: true,
    };
    let s = JsSettings {
        server_name: "S1".into(),
        domain: Some("hub".into()),
        ..JsSettings::default()
    };
    let mut js = js_with(s, l);
    let v = api(&mut js, "$JS.API.INFO", &Value::Null);
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.account_info_response");
    assert_eq!(
        v["limits"],
        json!({
            "max_memory": 1000, "max_storage": 2000, "max_streams": 3, "max_consumers": 4,
            "max_ack_pending": 5, "memory_max_stream_bytes": 6, "storage_max_stream_bytes": 7,
            "max_bytes_required": true,
        })
    );
    for k in ["memory", "storage", "streams", "consumers"] {
        assert_eq!(v[k], 0, "{k}");
    }
    assert_eq!(v["domain"], "hub");
    // Go counts a call after answering it: the first INFO reports none.
    assert_eq!(v["api"], json!({"total": 0, "errors": 0}));
    let v = api(&mut js, "$JS.API.INFO", &Value::Null);
    assert_eq!(v["api"], json!({"total": 1, "errors": 0}));
}

fn event_keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn advisories<'a>(out: &'a [Delivery], prefix: &str) -> Vec<&'a Delivery> {
    out.iter()
        .filter(|d| d.subject.starts_with(prefix))
        .collect()
}

#[test]
fn stream_and_consumer_action_advisories() {
    let mut js = js(AccountLimits::default());
    let out = call(
        &mut js,
        "$JS.API.STREAM.CREATE.S",
        &json!({"name": "S", "subjects": ["s.>"]}),
    );
    let a = advisories(&out, "$JS.EVENT.ADVISORY.STREAM.CREATED.S");
    assert_eq!(a.len(), 1);
    let v = body(a[0]);
    assert_eq!(
        event_keys(&v),
        ["action", "id", "stream", "timestamp", "type"]
    );
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.stream_action");
    assert_eq!(v["action"], "create");
    assert_eq!(v["stream"], "S");
    assert_eq!(v["timestamp"], "2023-11-14T22:13:20.123Z");
    assert_eq!(v["id"].as_str().unwrap().len(), 22);
    // An identical create creates nothing: no advisory.
    let out = call(
        &mut js,
        "$JS.API.STREAM.CREATE.S",
        &json!({"name": "S", "subjects": ["s.>"]}),
    );
    assert!(advisories(&out, "$JS.EVENT.ADVISORY.STREAM.").is_empty());
    let out = call(
        &mut js,
        "$JS.API.STREAM.UPDATE.S",
        &json!({"name": "S", "subjects": ["s.>", "t"]}),
    );
    let v = body(advisories(&out, "$JS.EVENT.ADVISORY.STREAM.UPDATED.S")[0]);
    assert_eq!(v["action"], "modify");

    let out = call(
        &mut js,
        "$JS.API.CONSUMER.CREATE.S",
        &json!({"stream_name": "S", "config": {"durable_name": "D"}}),
    );
    let v = body(advisories(&out, "$JS.EVENT.ADVISORY.CONSUMER.CREATED.S.D")[0]);
    assert_eq!(
        event_keys(&v),
        ["action", "consumer", "id", "stream", "timestamp", "type"]
    );
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.consumer_action");
    assert_eq!(
        (&v["action"], &v["consumer"]),
        (&json!("create"), &json!("D"))
    );
    let out = call(&mut js, "$JS.API.CONSUMER.DELETE.S.D", &Value::Null);
    let v = body(advisories(&out, "$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.D")[0]);
    assert_eq!(v["action"], "delete");
    // Deleting a stream deletes its consumers, each with an advisory.
    call(
        &mut js,
        "$JS.API.CONSUMER.CREATE.S",
        &json!({"stream_name": "S", "config": {"durable_name": "E"}}),
    );
    let out = call(&mut js, "$JS.API.STREAM.DELETE.S", &Value::Null);
    assert_eq!(
        advisories(&out, "$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.E").len(),
        1
    );
    let v = body(advisories(&out, "$JS.EVENT.ADVISORY.STREAM.DELETED.S")[0]);
    assert_eq!(v["action"], "delete");
    // Failed calls raise no action advisory.
    let out = call(&mut js, "$JS.API.STREAM.DELETE.S", &Value::Null);
    assert!(advisories(&out, "$JS.EVENT.ADVISORY.STREAM.").is_empty());
}

#[test]
fn api_audit_on_every_call() {
    let s = JsSettings {
        server_name: "S1".into(),
        domain: Some("hub".into()),
        ..JsSettings::default()
    };
    let mut js = js_with(s, AccountLimits::default());
    let out = call(&mut js, "$JS.API.INFO", &Value::Null);
    assert_eq!(out[0].subject, "_INBOX.r", "the reply stays first");
    let a = advisories(&out, "$JS.EVENT.ADVISORY.API");
    assert_eq!(a.len(), 1);
    let v = body(a[0]);
    assert_eq!(
        event_keys(&v),
        [
            "client",
            "domain",
            "id",
            "response",
            "server",
            "subject",
            "timestamp",
            "type"
        ]
    );
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.api_audit");
    assert_eq!(v["server"], "S1");
    assert_eq!(v["subject"], "$JS.API.INFO");
    assert_eq!(v["domain"], "hub");
    let resp: Value = serde_json::from_str(v["response"].as_str().unwrap()).unwrap();
    assert_eq!(
        resp["type"],
        "io.nats.jetstream.api.v1.account_info_response"
    );
    let out = call(&mut js, "$JS.API.STREAM.INFO.X", &json!({"offset": 1}));
    let v = body(advisories(&out, "$JS.EVENT.ADVISORY.API")[0]);
    assert_eq!(v["request"], "{\"offset\":1}");
    assert!(v["response"].as_str().unwrap().contains("10059"));
}

#[test]
fn nak_and_term_advisories_from_acks() {
    let mut js = js(AccountLimits::default());
    stream(&mut js, "S", &json!({}));
    for i in 0..2 {
        publish(&mut js, "s.x", format!("m{i}").as_bytes());
    }
    consumer(
        &mut js,
        "S",
        &json!({"durable_name": "D", "ack_policy": "explicit"}),
    );
    let msgs = js.api(
        "$JS.API.CONSUMER.MSG.NEXT.S.D",
        Some("_INBOX.pull"),
        b"{\"batch\": 2}",
        T0,
    );
    let acks: Vec<String> = msgs.iter().filter_map(|d| d.reply.clone()).collect();
    assert_eq!(acks.len(), 2);
    let out = js.ack(&acks[0], None, b"-NAK", T0);
    let v = body(advisories(&out, "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.S.D")[0]);
    assert_eq!(
        event_keys(&v),
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
    assert_eq!(
        (&v["stream_seq"], &v["consumer_seq"], &v["deliveries"]),
        (&json!(1), &json!(1), &json!(1))
    );
    let out = js.ack(&acks[1], None, b"+TERM", T0);
    let v = body(advisories(&out, "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.D")[0]);
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.terminated");
    assert_eq!(v["stream_seq"], 2);
    // A plain ack raises nothing.
    let out = js.ack(&acks[0], None, b"+ACK", T0);
    assert!(advisories(&out, "$JS.EVENT.").is_empty());
    // A nak of an acknowledged message says nothing (Go: below the ack floor).
    let out = js.ack(&acks[0], None, b"-NAK", T0);
    assert!(advisories(&out, "$JS.EVENT.").is_empty());
}

#[test]
fn max_deliveries_and_ack_metric_shapes() {
    let mut js = js(AccountLimits::default());
    let d = js.max_deliveries_advisory("S", "D", 9, 3, T0);
    assert_eq!(d.subject, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.D");
    let v = body(&d);
    assert_eq!(
        event_keys(&v),
        [
            "consumer",
            "deliveries",
            "id",
            "stream",
            "stream_seq",
            "timestamp",
            "type"
        ]
    );
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.max_deliver");
    assert_eq!((&v["stream_seq"], &v["deliveries"]), (&json!(9), &json!(3)));
    let d = js.ack_metric("S", "D", (9, 4, 2), 1500, T0);
    assert_eq!(d.subject, "$JS.EVENT.METRIC.CONSUMER.ACK.S.D");
    let v = body(&d);
    assert_eq!(v["type"], "io.nats.jetstream.metric.v1.consumer_ack");
    assert_eq!(
        event_keys(&v),
        [
            "ack_time",
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
    let d = js.msg_advisory(MsgEvent::Term, "S", "D", (1, 2, 3), T0);
    assert_eq!(d.subject, "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.D");
    let d = js.consumer_advisory("S", "D", Action::Create, T0);
    assert_eq!(d.subject, "$JS.EVENT.ADVISORY.CONSUMER.CREATED.S.D");
    // Ids are distinct and reproducible from the seed.
    let a = body(&js.stream_advisory("S", Action::Delete, T0))["id"].clone();
    let b = body(&js.stream_advisory("S", Action::Delete, T0))["id"].clone();
    assert_ne!(a, b);
}

#[test]
fn max_deliveries_advisory_when_redelivery_stops() {
    const SEC: u64 = 1_000_000_000;
    let mut js = js(AccountLimits::default());
    stream(&mut js, "S", &json!({}));
    publish(&mut js, "s.x", b"m");
    consumer(
        &mut js,
        "S",
        &json!({"durable_name": "D", "deliver_subject": "dlv", "ack_policy": "explicit",
                "ack_wait": SEC, "max_deliver": 2}),
    );
    let first = js.set_push_active("S", "D", true, T0);
    assert!(first.iter().any(|d| d.subject == "dlv"), "{first:?}");
    // Never acked: redelivered once, then given up on, which is advised once.
    let mut seen = Vec::new();
    for i in 1..=6 {
        seen.extend(js.tick(T0 + i * SEC));
    }
    let deliveries = seen.iter().filter(|d| d.subject == "dlv").count();
    assert_eq!(deliveries, 1, "one redelivery: {seen:?}");
    let adv = advisories(&seen, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.D");
    assert_eq!(adv.len(), 1, "{seen:?}");
    let v = body(adv[0]);
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.max_deliver");
    assert_eq!((&v["stream_seq"], &v["deliveries"]), (&json!(1), &json!(2)));
}

#[test]
fn inactive_consumer_deletion_is_advised() {
    const SEC: u64 = 1_000_000_000;
    let mut js = js(AccountLimits::default());
    stream(&mut js, "S", &json!({}));
    consumer(
        &mut js,
        "S",
        &json!({"name": "E", "ack_policy": "explicit", "inactive_threshold": SEC}),
    );
    let mut seen = Vec::new();
    for i in 1..=4 {
        seen.extend(js.tick(T0 + i * SEC));
    }
    let adv = advisories(&seen, "$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.E");
    assert_eq!(adv.len(), 1, "{seen:?}");
    assert_eq!(body(adv[0])["action"], "delete");
}

fn cap(mem: u64, file: u64) -> ServerCapacity {
    ServerCapacity {
        max_memory: Some(mem),
        max_file: Some(file),
        ..ServerCapacity::default()
    }
}

fn sized(mem: i64, file: i64) -> AccountLimits {
    limits(|l| {
        l.max_memory = mem;
        l.max_storage = file;
    })
}

fn code(r: Result<(), super::ApiError>) -> u64 {
    r.map_or_else(|e| u64::from(e.err_code), |()| 0)
}

#[test]
fn account_limits_must_fit_the_server_10028_10047() {
    let c = cap(1000, 5000);
    // Alone: up to the server's limits; unlimited accounts reserve nothing.
    assert_eq!(code(sufficient_resources(&c, &[], &sized(1000, 5000))), 0);
    assert_eq!(
        code(sufficient_resources(&c, &[], &sized(1001, 5000))),
        10028
    );
    assert_eq!(
        code(sufficient_resources(&c, &[], &sized(1000, 5001))),
        10047
    );
    assert_eq!(code(sufficient_resources(&c, &[], &sized(-1, -1))), 0);
    // Memory is checked first.
    assert_eq!(
        code(sufficient_resources(&c, &[], &sized(2000, 9000))),
        10028
    );
    // Beside other accounts: their limits add up, unlimited ones count nothing.
    let others = [sized(600, -1), sized(-1, 4000)];
    assert_eq!(
        code(sufficient_resources(&c, &others, &sized(400, 1000))),
        0
    );
    assert_eq!(
        code(sufficient_resources(&c, &others, &sized(401, 0))),
        10028
    );
    assert_eq!(
        code(sufficient_resources(&c, &others, &sized(0, 1001))),
        10047
    );
    // Beside what streams reserve.
    let reserved = ServerCapacity {
        reserved_storage: 4500,
        ..c
    };
    assert_eq!(
        code(sufficient_resources(&reserved, &[], &sized(0, 500))),
        0
    );
    assert_eq!(
        code(sufficient_resources(&reserved, &[], &sized(0, 501))),
        10047
    );
    // No server limit: anything goes.
    let open = ServerCapacity::default();
    assert_eq!(
        code(sufficient_resources(&open, &others, &sized(i64::MAX, 1))),
        0
    );
}

#[test]
fn changed_limits_count_only_their_growth() {
    let c = cap(1000, 5000);
    let old = sized(600, 1000);
    // The account's own old limits are among the enabled ones.
    let enabled = [old, sized(300, -1)];
    let grow = limits_growth(&old, &sized(700, 1000));
    assert_eq!(code(sufficient_resources(&c, &enabled, &grow)), 0);
    let grow = limits_growth(&old, &sized(701, 1000));
    assert_eq!(code(sufficient_resources(&c, &enabled, &grow)), 10028);
    // Shrinking never fails.
    let shrink = limits_growth(&old, &sized(1, 1));
    assert_eq!(code(sufficient_resources(&c, &enabled, &shrink)), 0);
}
