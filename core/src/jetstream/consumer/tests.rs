//! Unit tests of the consumer features through [`JetStream`] on memory streams, with a
//! virtual clock (every input carries its `UnixNanos`).

use serde_json::{json, Value};

use super::super::factory::DiskFactory;
use super::super::service::{JetStream, JsSettings};
use super::super::store::{MemDisk, SyncPolicy};
use super::Delivery;

pub(super) const T0: u64 = 1_700_000_000_000_000_000;
pub(super) const SEC: u64 = 1_000_000_000;
pub(super) const MS: u64 = 1_000_000;

pub(super) fn js() -> JetStream {
    let d = MemDisk::new(1);
    let f = DiskFactory::new(move || d.clone(), SyncPolicy::Always);
    JetStream::new(
        JsSettings {
            server_name: "S1".into(),
            ..JsSettings::default()
        },
        Box::new(f),
        7,
    )
}

pub(super) fn api_at(js: &mut JetStream, subject: &str, req: Value, now: u64) -> Value {
    let payload = serde_json::to_vec(&req).unwrap();
    let out = js.api(subject, Some("_INBOX.r"), &payload, now);
    serde_json::from_slice(&out[0].payload).unwrap()
}

/// A memory stream `S` on `s.>` with `extra` config.
pub(super) fn stream(extra: Value) -> JetStream {
    let mut js = js();
    let mut cfg = json!({"name": "S", "subjects": ["s.>"], "storage": "memory"});
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
        c.extend(e);
    }
    let v = api_at(&mut js, "$JS.API.STREAM.CREATE.S", cfg, T0);
    assert!(v.get("error").is_none(), "{v}");
    js
}

pub(super) fn publish(js: &mut JetStream, subject: &str, payload: &str, now: u64) {
    js.publish(subject, None, b"", payload.as_bytes(), now);
    js.commit(now);
}

/// Adds a consumer; pull consumers default to explicit acks here (Go's default is none,
/// clients always send one).
pub(super) fn add(js: &mut JetStream, mut cfg: Value, now: u64) -> Value {
    if cfg.get("ack_policy").is_none() && cfg.get("deliver_subject").is_none() {
        cfg["ack_policy"] = json!("explicit");
    }
    api_at(
        js,
        "$JS.API.CONSUMER.CREATE.S",
        json!({"stream_name": "S", "config": cfg}),
        now,
    )
}

pub(super) fn info(js: &mut JetStream, name: &str, now: u64) -> Value {
    api_at(
        js,
        &format!("$JS.API.CONSUMER.INFO.S.{name}"),
        Value::Null,
        now,
    )
}

pub(super) fn pull(js: &mut JetStream, name: &str, req: Value, now: u64) -> Vec<Delivery> {
    let p = serde_json::to_vec(&req).unwrap();
    js.api(
        &format!("$JS.API.CONSUMER.MSG.NEXT.S.{name}"),
        Some("_INBOX.p"),
        &p,
        now,
    )
}

pub(super) fn msgs(out: &[Delivery]) -> Vec<String> {
    out.iter()
        .filter(|d| d.reply.is_some())
        .map(|d| String::from_utf8_lossy(&d.payload).into_owned())
        .collect()
}

pub(super) fn statuses(out: &[Delivery]) -> Vec<String> {
    out.iter()
        .filter(|d| d.reply.is_none())
        .map(|d| String::from_utf8_lossy(&d.headers).into_owned())
        .collect()
}

pub(super) fn ack(js: &mut JetStream, d: &Delivery, body: &str, now: u64) -> Vec<Delivery> {
    js.ack(d.reply.as_deref().unwrap(), None, body.as_bytes(), now)
}

fn stream_msgs(js: &mut JetStream, now: u64) -> u64 {
    let v = api_at(js, "$JS.API.STREAM.INFO.S", Value::Null, now);
    v["state"]["messages"].as_u64().unwrap()
}

#[test]
fn deliver_policies_pick_their_start() {
    let mut js = stream(json!({}));
    publish(&mut js, "s.a", "1", T0);
    publish(&mut js, "s.b", "2", T0 + SEC);
    publish(&mut js, "s.a", "3", T0 + 2 * SEC);
    let start = |js: &mut JetStream, name: &str, cfg: Value| {
        let mut c = json!({"durable_name": name});
        if let (Value::Object(c), Value::Object(e)) = (&mut c, cfg) {
            c.extend(e);
        }
        let v = add(js, c, T0 + 3 * SEC);
        assert!(v.get("error").is_none(), "{v}");
        msgs(&pull(
            js,
            name,
            json!({"batch": 10, "no_wait": true}),
            T0 + 3 * SEC,
        ))
    };
    let t = super::super::api::rfc3339(T0 + SEC);
    assert_eq!(
        start(
            &mut js,
            "t",
            json!({"deliver_policy": "by_start_time", "opt_start_time": t})
        ),
        ["2", "3"]
    );
    assert_eq!(
        start(&mut js, "l", json!({"deliver_policy": "last"})),
        ["3"]
    );
    assert_eq!(
        start(
            &mut js,
            "lf",
            json!({"deliver_policy": "last", "filter_subject": "s.b"})
        ),
        ["2"]
    );
    assert_eq!(
        start(
            &mut js,
            "q",
            json!({"deliver_policy": "by_start_sequence", "opt_start_seq": 2})
        ),
        ["2", "3"]
    );
    assert!(start(&mut js, "n", json!({"deliver_policy": "new"})).is_empty());
    assert_eq!(
        start(
            &mut js,
            "lps",
            json!({"deliver_policy": "last_per_subject", "filter_subject": "s.*"})
        ),
        ["2", "3"]
    );
    let v = add(
        &mut js,
        json!({"durable_name": "bad", "deliver_policy": "by_start_time"}),
        T0,
    );
    assert_eq!(v["error"]["err_code"], 10094, "{v}");
}

#[test]
fn backoff_spaces_redeliveries_then_max_deliver_stops_them() {
    let mut js = stream(json!({}));
    publish(&mut js, "s.a", "x", T0);
    let v = add(
        &mut js,
        json!({"durable_name": "d", "backoff": [SEC, 3 * SEC], "max_deliver": 3}),
        T0,
    );
    assert_eq!(v["config"]["ack_wait"], SEC, "{v}");
    assert_eq!(
        msgs(&pull(
            &mut js,
            "d",
            json!({"batch": 10, "expires": 60 * SEC}),
            T0
        )),
        ["x"]
    );
    assert!(msgs(&js.tick(T0 + SEC - 1)).is_empty());
    assert_eq!(msgs(&js.tick(T0 + SEC)), ["x"], "first backoff step");
    assert!(msgs(&js.tick(T0 + 3 * SEC)).is_empty(), "second step is 3s");
    assert_eq!(msgs(&js.tick(T0 + 4 * SEC)), ["x"]);
    let last = js.tick(T0 + 7 * SEC);
    assert!(msgs(&last).is_empty(), "max_deliver 3 reached");
    assert_eq!(info(&mut js, "d", T0 + 7 * SEC)["num_ack_pending"], 0);
    // The consumer's event becomes Go's max-deliveries advisory in the same tick.
    let adv: Vec<Value> = advisories(&last, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.d");
    assert_eq!(adv.len(), 1, "{last:?}");
    assert_eq!(
        (&adv[0]["stream_seq"], &adv[0]["deliveries"]),
        (&json!(1), &json!(3))
    );
}

/// The bodies of the advisories in `out` published on `subject`.
fn advisories(out: &[Delivery], subject: &str) -> Vec<Value> {
    out.iter()
        .filter(|d| d.subject == subject)
        .map(|d| serde_json::from_slice(&d.payload).unwrap())
        .collect()
}

#[test]
fn nak_delay_progress_and_term() {
    let mut js = stream(json!({}));
    for p in ["a", "b", "c"] {
        publish(&mut js, "s.a", p, T0);
    }
    add(
        &mut js,
        json!({"durable_name": "d", "ack_wait": 10 * SEC}),
        T0,
    );
    let out = pull(&mut js, "d", json!({"batch": 3}), T0);
    assert_eq!(msgs(&out), ["a", "b", "c"]);
    ack(&mut js, &out[0], r#"-NAK {"delay": 2000000000}"#, T0);
    ack(&mut js, &out[1], "-NAK 5s", T0);
    let term = ack(&mut js, &out[2], "+TERM", T0);
    let adv = advisories(&term, "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.d");
    assert_eq!(adv.len(), 1, "{term:?}");
    assert_eq!(adv[0]["stream_seq"], 3);
    pull(&mut js, "d", json!({"batch": 10, "expires": 60 * SEC}), T0);
    assert!(msgs(&js.tick(T0 + SEC)).is_empty());
    let a = js.tick(T0 + 2 * SEC);
    assert_eq!(msgs(&a), ["a"]);
    // Still working on "a": its timer restarts.
    ack(&mut js, &a[0], "+WPI", T0 + 11 * SEC);
    assert_eq!(msgs(&js.tick(T0 + 5 * SEC)), ["b"]);
    assert!(
        msgs(&js.tick(T0 + 12 * SEC)).is_empty(),
        "+WPI restarted the timer"
    );
    // "a" is due 10s after its +WPI, "b" 10s after its redelivery.
    assert_eq!(msgs(&js.tick(T0 + 21 * SEC)), ["a", "b"]);
}

#[test]
fn replay_original_keeps_the_gaps() {
    let mut js = stream(json!({}));
    publish(&mut js, "s.a", "1", T0);
    publish(&mut js, "s.a", "2", T0 + 2 * SEC);
    publish(&mut js, "s.a", "3", T0 + 5 * SEC);
    let t = T0 + 100 * SEC;
    add(
        &mut js,
        json!({"deliver_subject": "d", "replay_policy": "original"}),
        t,
    );
    let name = js.push_consumers()[0].1.clone();
    assert_eq!(msgs(&js.set_push_active("S", &name, true, t)), ["1"]);
    assert_eq!(js.next_deadline(), Some(t + 2 * SEC));
    assert!(msgs(&js.tick(t + SEC)).is_empty());
    assert_eq!(msgs(&js.tick(t + 2 * SEC)), ["2"]);
    assert!(msgs(&js.tick(t + 4 * SEC)).is_empty());
    assert_eq!(msgs(&js.tick(t + 5 * SEC)), ["3"]);
    // Caught up: new messages go at once.
    js.publish("s.a", None, b"", b"4", t + 5 * SEC + MS);
    assert_eq!(msgs(&js.commit(t + 5 * SEC + MS)), ["4"]);
}

#[test]
fn rate_limit_paces_a_push_consumer() {
    let mut js = stream(json!({}));
    let big = "x".repeat(700_000);
    for _ in 0..3 {
        publish(&mut js, "s.a", &big, T0);
    }
    // 1 MB/s.
    add(
        &mut js,
        json!({"deliver_subject": "d", "rate_limit_bps": 8_000_000}),
        T0,
    );
    let name = js.push_consumers()[0].1.clone();
    assert_eq!(msgs(&js.set_push_active("S", &name, true, T0)).len(), 1);
    let mut got = 1;
    let mut now = T0;
    while got < 3 {
        let d = js.next_deadline().unwrap();
        assert!(d > now, "pacing must move time forward");
        now = d;
        got += msgs(&js.tick(now)).len();
    }
    // 2.1 MB at 1 MB/s with a 1 MiB burst: about 1.05s.
    assert!(now - T0 > 900 * MS && now - T0 < 1200 * MS, "{}", now - T0);
}

#[test]
fn headers_only_sends_the_size() {
    let mut js = stream(json!({}));
    publish(&mut js, "s.a", "hello", T0);
    add(
        &mut js,
        json!({"durable_name": "d", "headers_only": true}),
        T0,
    );
    let out = pull(&mut js, "d", json!({"batch": 1}), T0);
    assert!(out[0].payload.is_empty());
    let h = String::from_utf8_lossy(&out[0].headers);
    assert!(h.contains("Nats-Msg-Size: 5\r\n"), "{h}");
}

#[test]
fn pull_limits_and_statuses() {
    let mut js = stream(json!({}));
    add(&mut js, json!({"durable_name": "d", "max_waiting": 1}), T0);
    assert!(
        statuses(&pull(&mut js, "d", json!({"no_wait": true}), T0))[0].contains("404 No Messages")
    );
    assert!(pull(&mut js, "d", json!({"batch": 2, "expires": SEC}), T0).is_empty());
    let s = statuses(&pull(&mut js, "d", json!({"batch": 1}), T0));
    assert!(s[0].contains("409 Exceeded MaxWaiting"), "{s:?}");
    let s = statuses(&js.tick(T0 + SEC));
    assert!(
        s[0].starts_with("NATS/1.0 408 Request Timeout\r\n"),
        "{s:?}"
    );
    assert!(s[0].contains("Nats-Pending-Messages: 2\r\n"), "{s:?}");
    publish(&mut js, "s.a", &"y".repeat(100), T0 + SEC);
    let out = pull(&mut js, "d", json!({"batch": 5, "max_bytes": 50}), T0 + SEC);
    let s = statuses(&out);
    assert!(s[0].contains("409 Message Size Exceeds MaxBytes"), "{s:?}");
    let out = pull(&mut js, "d", json!({"batch": 5, "no_wait": true}), T0 + SEC);
    assert_eq!(msgs(&out).len(), 1);
    assert!(statuses(&out)[0].contains("408 Request Timeout"));
}

#[test]
fn multiple_filters() {
    let mut js = stream(json!({}));
    for s in ["s.a", "s.b", "s.c", "s.a"] {
        publish(&mut js, s, s, T0);
    }
    let v = add(
        &mut js,
        json!({"durable_name": "d", "filter_subjects": ["s.a", "s.c"]}),
        T0,
    );
    assert_eq!(v["num_pending"], 3, "{v}");
    let out = pull(&mut js, "d", json!({"batch": 10, "no_wait": true}), T0);
    assert_eq!(msgs(&out), ["s.a", "s.c", "s.a"]);
}

#[test]
fn inactive_consumers_go() {
    let mut js = stream(json!({}));
    let v = add(&mut js, json!({}), T0);
    assert_eq!(v["config"]["inactive_threshold"], 5 * SEC, "{v}");
    add(
        &mut js,
        json!({"durable_name": "dur", "inactive_threshold": 2 * SEC}),
        T0,
    );
    add(&mut js, json!({"durable_name": "keep"}), T0);
    let mut out = js.tick(T0 + 2 * SEC + 1);
    assert_eq!(js.num_consumers(), 2);
    out.extend(js.tick(T0 + 5 * SEC + 1));
    assert_eq!(js.num_consumers(), 1);
    assert_eq!(info(&mut js, "keep", T0)["name"], "keep");
    // Each deletion is advised (Go: consumer action "delete").
    let deleted = out
        .iter()
        .filter(|d| {
            d.subject
                .starts_with("$JS.EVENT.ADVISORY.CONSUMER.DELETED.S.")
        })
        .count();
    assert_eq!(deleted, 2, "{out:?}");
    // A push consumer goes once nobody listens for that long.
    add(&mut js, json!({"deliver_subject": "d"}), T0);
    let name = js.push_consumers()[0].1.clone();
    js.set_push_active("S", &name, true, T0);
    js.tick(T0 + 10 * SEC);
    assert_eq!(js.num_consumers(), 2);
    js.set_push_active("S", &name, false, T0 + 10 * SEC);
    js.tick(T0 + 15 * SEC);
    assert_eq!(js.num_consumers(), 1);
}

#[test]
fn pause_holds_deliveries() {
    let mut js = stream(json!({}));
    publish(&mut js, "s.a", "x", T0);
    add(&mut js, json!({"durable_name": "d"}), T0);
    let until = super::super::api::rfc3339(T0 + 10 * SEC);
    let v = api_at(
        &mut js,
        "$JS.API.CONSUMER.PAUSE.S.d",
        json!({"pause_until": until}),
        T0,
    );
    assert_eq!(
        v["type"],
        "io.nats.jetstream.api.v1.consumer_pause_response"
    );
    assert_eq!(v["paused"], true, "{v}");
    assert_eq!(v["pause_remaining"], 10 * SEC);
    let i = info(&mut js, "d", T0 + SEC);
    assert_eq!(i["paused"], true);
    assert_eq!(i["config"]["pause_until"], until);
    assert!(pull(&mut js, "d", json!({"batch": 1, "expires": 60 * SEC}), T0).is_empty());
    assert!(msgs(&js.tick(T0 + 9 * SEC)).is_empty());
    assert_eq!(msgs(&js.tick(T0 + 10 * SEC)), ["x"]);
    let v = api_at(&mut js, "$JS.API.CONSUMER.PAUSE.S.d", json!({}), T0);
    assert_eq!(v["paused"], false, "{v}");
}

#[test]
fn interest_retention() {
    let mut js = stream(json!({"retention": "interest"}));
    publish(&mut js, "s.a", "nobody", T0);
    assert_eq!(stream_msgs(&mut js, T0), 0, "no consumer: not kept");
    add(&mut js, json!({"durable_name": "a"}), T0);
    add(
        &mut js,
        json!({"durable_name": "b", "filter_subject": "s.b"}),
        T0,
    );
    add(&mut js, json!({"durable_name": "c"}), T0);
    publish(&mut js, "s.a", "1", T0);
    publish(&mut js, "s.b", "2", T0);
    assert_eq!(stream_msgs(&mut js, T0), 2);
    let a = pull(&mut js, "a", json!({"batch": 2}), T0);
    for d in &a {
        ack(&mut js, d, "+ACK", T0);
    }
    assert_eq!(stream_msgs(&mut js, T0), 2, "c still wants both");
    let c = pull(&mut js, "c", json!({"batch": 2}), T0);
    ack(&mut js, &c[0], "+ACK", T0);
    assert_eq!(stream_msgs(&mut js, T0), 1, "s.a acked by a and c");
    // Deleting c leaves s.b to b.
    api_at(&mut js, "$JS.API.CONSUMER.DELETE.S.c", Value::Null, T0);
    assert_eq!(stream_msgs(&mut js, T0), 1);
    api_at(&mut js, "$JS.API.CONSUMER.DELETE.S.b", Value::Null, T0);
    assert_eq!(stream_msgs(&mut js, T0), 0);
}

#[test]
fn workqueue_retention() {
    let mut js = stream(json!({"retention": "workqueue"}));
    let code = |v: Value| v["error"]["err_code"].as_u64().unwrap_or(0);
    assert_eq!(
        code(add(
            &mut js,
            json!({"durable_name": "n", "ack_policy": "none"}),
            T0
        )),
        10084
    );
    assert_eq!(
        code(add(
            &mut js,
            json!({"durable_name": "n", "ack_policy": "all"}),
            T0
        )),
        10098
    );
    assert_eq!(
        code(add(
            &mut js,
            json!({"durable_name": "n", "deliver_policy": "last"}),
            T0
        )),
        10101
    );
    add(
        &mut js,
        json!({"durable_name": "a", "filter_subject": "s.a.>"}),
        T0,
    );
    assert_eq!(
        code(add(&mut js, json!({"durable_name": "all"}), T0)),
        10099
    );
    assert_eq!(
        code(add(
            &mut js,
            json!({"durable_name": "x", "filter_subject": "s.a.b"}),
            T0
        )),
        10100
    );
    assert_eq!(
        code(add(
            &mut js,
            json!({"durable_name": "b", "filter_subject": "s.b"}),
            T0
        )),
        0
    );
    publish(&mut js, "s.a.1", "1", T0);
    publish(&mut js, "s.b", "2", T0);
    let out = pull(&mut js, "a", json!({"batch": 1}), T0);
    assert_eq!(stream_msgs(&mut js, T0), 2);
    ack(&mut js, &out[0], "+ACK", T0);
    assert_eq!(stream_msgs(&mut js, T0), 1);
}

#[test]
fn ack_next_asks_for_more() {
    let mut js = stream(json!({}));
    publish(&mut js, "s.a", "1", T0);
    publish(&mut js, "s.a", "2", T0);
    add(&mut js, json!({"durable_name": "d"}), T0);
    let out = pull(&mut js, "d", json!({"batch": 1}), T0);
    let more = js.ack(
        out[0].reply.as_deref().unwrap(),
        Some("_INBOX.more"),
        b"+NXT",
        T0,
    );
    assert_eq!(msgs(&more), ["2"]);
    assert_eq!(more[0].subject, "_INBOX.more");
    assert_eq!(info(&mut js, "d", T0)["ack_floor"]["stream_seq"], 1);
}

#[test]
fn priority_group_checks() {
    let mut js = stream(json!({}));
    let code = |v: Value| v["error"]["err_code"].as_u64().unwrap_or(0);
    assert_eq!(
        code(add(&mut js, json!({"priority_policy": "overflow"}), T0)),
        10159
    );
    assert_eq!(
        code(add(&mut js, json!({"priority_groups": ["A"]}), T0)),
        10196
    );
    assert_eq!(
        code(add(
            &mut js,
            json!({"priority_policy": "overflow", "priority_groups": ["this-name-is-too-long"]}),
            T0
        )),
        10162
    );
    assert_eq!(
        code(add(
            &mut js,
            json!({"deliver_subject": "d", "priority_policy": "overflow", "priority_groups": ["A"]}),
            T0
        )),
        10178
    );
}

#[test]
fn overflow_serves_only_when_backed_up() {
    let mut js = stream(json!({}));
    for i in 0..3 {
        publish(&mut js, "s.a", &i.to_string(), T0);
    }
    add(
        &mut js,
        json!({"durable_name": "o", "priority_policy": "overflow", "priority_groups": ["A"]}),
        T0,
    );
    let s = statuses(&pull(&mut js, "o", json!({"batch": 1}), T0));
    assert!(
        s[0].contains("400 Bad Request - Priority Group missing"),
        "{s:?}"
    );
    let s = statuses(&pull(&mut js, "o", json!({"batch": 1, "group": "B"}), T0));
    assert!(s[0].contains("Invalid Priority Group"), "{s:?}");
    // Three pending: a request wanting five waits, one wanting two is served.
    let out = pull(
        &mut js,
        "o",
        json!({"batch": 1, "group": "A", "min_pending": 5, "expires": SEC}),
        T0,
    );
    assert!(out.is_empty());
    let out = pull(
        &mut js,
        "o",
        json!({"batch": 1, "group": "A", "min_pending": 2}),
        T0,
    );
    assert_eq!(msgs(&out), ["0"]);
}

#[test]
fn pinned_client_gets_everything_until_unpinned() {
    let mut js = stream(json!({}));
    for i in 0..3 {
        publish(&mut js, "s.a", &i.to_string(), T0);
    }
    let v = add(
        &mut js,
        json!({"durable_name": "p", "priority_policy": "pinned_client", "priority_groups": ["A"]}),
        T0,
    );
    assert_eq!(v["config"]["priority_timeout"], 120 * SEC, "{v}");
    let out = pull(&mut js, "p", json!({"batch": 1, "group": "A"}), T0);
    let h = String::from_utf8_lossy(&out[0].headers).into_owned();
    let pin = h
        .lines()
        .find_map(|l| l.strip_prefix("Nats-Pin-Id: "))
        .unwrap()
        .to_owned();
    assert_eq!(pin.len(), 22);
    assert_eq!(
        info(&mut js, "p", T0)["priority_groups"][0]["pinned_client_id"],
        pin
    );
    // Another client (no id) waits; a wrong id is refused.
    assert!(pull(
        &mut js,
        "p",
        json!({"batch": 1, "group": "A", "expires": SEC}),
        T0
    )
    .is_empty());
    let s = statuses(&pull(
        &mut js,
        "p",
        json!({"batch": 1, "group": "A", "id": "nope"}),
        T0,
    ));
    assert!(s[0].contains("423 Nats-Pin-Id mismatch"), "{s:?}");
    let out = pull(
        &mut js,
        "p",
        json!({"batch": 1, "group": "A", "id": pin}),
        T0,
    );
    assert_eq!(msgs(&out), ["1"]);
    let v = api_at(
        &mut js,
        "$JS.API.CONSUMER.UNPIN.S.p",
        json!({"group": "A"}),
        T0,
    );
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(
        v["type"],
        "io.nats.jetstream.api.v1.consumer_unpin_response"
    );
    // The waiting request without an id gets the new pin and the next message.
    let out = js.tick(T0 + 1);
    assert_eq!(msgs(&out), ["2"]);
    assert!(!String::from_utf8_lossy(&out[0].headers).contains(&pin));
}

#[test]
fn pull_request_accepts_null_priority_fields() {
    let r = super::parse_next_request(
        br#"{"batch":1,"expires":0,"min_pending":null,"min_ack_pending":null,"group":null,"id":null}"#,
    )
    .unwrap();
    assert_eq!((r.batch, r.min_pending, r.group.as_str()), (1, 0, ""));
}

#[test]
fn a_double_ack_is_confirmed_only_by_the_consumer_it_names() {
    let mut js = stream(json!({}));
    add(&mut js, json!({"durable_name": "D"}), T0);
    let known = "$JS.ACK.S.D.1.1.1.1.0";
    let out = js.ack(known, Some("_INBOX.a"), b"+ACK", T0);
    assert!(out.iter().any(|d| d.subject == "_INBOX.a"), "confirmed");
    // Another server's consumer (across a leaf link): its own server confirms, not us.
    for other in [
        "$JS.ACK.S.X.1.1.1.1.0",
        "$JS.ACK.T.D.1.1.1.1.0",
        "$JS.ACK.S",
    ] {
        assert!(
            js.ack(other, Some("_INBOX.b"), b"+ACK", T0).is_empty(),
            "{other}"
        );
    }
}
