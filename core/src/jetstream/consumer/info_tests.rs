//! Consumer info and the ends of pull requests as nats-server reports them: `push_bound`,
//! `last_active`, expired and released requests.

use serde_json::{json, Value};

use super::tests::{ack, add, api_at, info, msgs, pull, statuses, stream, MS, SEC, T0};

#[test]
fn info_carries_go_fields_and_no_cluster() {
    let mut js = stream(json!({}));
    let v = add(
        &mut js,
        json!({"durable_name": "D", "deliver_subject": "dq", "deliver_group": "g",
               "sample_freq": "25", "ack_policy": "explicit", "metadata": {"k": "v"}}),
        T0,
    );
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["config"]["deliver_group"], "g");
    assert_eq!(v["config"]["sample_freq"], "25");
    assert_eq!(v["config"]["metadata"], json!({"k": "v"}));
    assert_eq!(v["config"]["num_replicas"], 0);
    assert!(v.get("cluster").is_none(), "{v}");
    assert!(v.get("push_bound").is_none(), "{v}");
    assert!(v["delivered"].get("last_active").is_none(), "{v}");

    // Bound once its subject has a listener; then it delivers and the ack moves the floor.
    let out = js.set_push_active("S", "D", true, T0 + SEC);
    assert!(out.is_empty());
    assert_eq!(info(&mut js, "D", T0 + SEC)["push_bound"], true);
    js.publish("s.a", None, b"", b"x", T0 + 2 * SEC);
    let out = js.commit(T0 + 2 * SEC);
    assert_eq!(msgs(&out), ["x"]);
    let v = info(&mut js, "D", T0 + 3 * SEC);
    assert_eq!(v["delivered"]["last_active"], "2023-11-14T22:13:22Z", "{v}");
    assert!(v["ack_floor"].get("last_active").is_none(), "{v}");
    ack(&mut js, &out[0], "", T0 + 4 * SEC);
    let v = info(&mut js, "D", T0 + 5 * SEC);
    assert_eq!(v["ack_floor"]["last_active"], "2023-11-14T22:13:24Z", "{v}");
    js.set_push_active("S", "D", false, T0 + 6 * SEC);
    assert!(info(&mut js, "D", T0 + 6 * SEC).get("push_bound").is_none());
}

#[test]
fn new_push_consumer_sees_an_existing_listener() {
    let mut js = stream(json!({}));
    js.set_interest(Box::new(|s| s == "listened"));
    let v = add(&mut js, json!({"deliver_subject": "listened"}), T0);
    assert_eq!(v["push_bound"], true, "{v}");
    let v = add(&mut js, json!({"deliver_subject": "nobody"}), T0);
    assert!(v.get("push_bound").is_none(), "{v}");
}

#[test]
fn info_ends_expired_requests_before_counting() {
    let mut js = stream(json!({}));
    add(&mut js, json!({"durable_name": "P"}), T0);
    assert!(pull(&mut js, "P", json!({"batch": 1, "expires": 500 * MS}), T0).is_empty());
    assert_eq!(info(&mut js, "P", T0 + 499 * MS)["num_waiting"], 1);
    // No tick ran since it expired: info ends it, and its 408 follows the reply.
    let out = js.api(
        "$JS.API.CONSUMER.INFO.S.P",
        Some("_INBOX.r"),
        b"",
        T0 + 500 * MS,
    );
    let v: Value = serde_json::from_slice(&out[0].payload).unwrap();
    assert_eq!(
        (&v["num_waiting"], &v["num_pending"]),
        (&json!(0), &json!(0))
    );
    let ends: Vec<_> = out.iter().filter(|d| d.subject == "_INBOX.p").collect();
    assert_eq!(ends.len(), 1, "{out:?}");
    assert!(
        String::from_utf8_lossy(&ends[0].headers).starts_with("NATS/1.0 408 Request Timeout\r\n")
    );
}

#[test]
fn deleting_ends_waiting_requests_with_409() {
    let mut js = stream(json!({}));
    add(&mut js, json!({"durable_name": "P"}), T0);
    add(&mut js, json!({"durable_name": "Q"}), T0);
    add(
        &mut js,
        json!({"durable_name": "H", "deliver_subject": "h"}),
        T0,
    );
    assert!(pull(&mut js, "P", json!({"batch": 2, "expires": 30 * SEC}), T0).is_empty());
    assert!(pull(&mut js, "Q", json!({"batch": 2}), T0).is_empty());
    let out = js.api("$JS.API.CONSUMER.DELETE.S.P", Some("_INBOX.r"), b"", T0);
    let v: Value = serde_json::from_slice(&out[0].payload).unwrap();
    assert_eq!(v["success"], true);
    let released: Vec<_> = out.iter().filter(|d| d.subject == "_INBOX.p").collect();
    assert_eq!(released.len(), 1);
    assert_eq!(
        released[0].headers,
        b"NATS/1.0 409 Consumer Deleted\r\n\r\n"
    );
    // The stream's deletion deletes Q (one request) and H (push: nothing to release).
    let out = js.api("$JS.API.STREAM.DELETE.S", Some("_INBOX.r"), b"", T0);
    assert_eq!(
        statuses(&out[1..])
            .into_iter()
            .filter(|h| h.contains("409"))
            .collect::<Vec<_>>(),
        ["NATS/1.0 409 Consumer Deleted\r\n\r\n"]
    );
    let v = api_at(&mut js, "$JS.API.STREAM.NAMES", Value::Null, T0);
    assert_eq!(v["streams"], Value::Null);
}

#[test]
fn actions_and_what_an_update_may_not_change() {
    let mut js = stream(json!({}));
    let create = |js: &mut super::super::service::JetStream, cfg: Value, action: &str| {
        api_at(
            js,
            "$JS.API.CONSUMER.CREATE.S.C",
            json!({"stream_name": "S", "config": cfg, "action": action}),
            T0,
        )
    };
    let base = json!({"name": "C", "ack_policy": "explicit", "filter_subject": "s.a"});
    let v = create(&mut js, base.clone(), "update");
    assert_eq!(v["error"]["err_code"], 10149, "{v}");
    let v = create(&mut js, base.clone(), "bogus");
    assert_eq!(v["error"]["err_code"], 10025, "{v}");
    assert_eq!(
        v["error"]["description"],
        "invalid JSON: unknown consumer action: \"bogus\""
    );
    assert!(create(&mut js, base.clone(), "create")
        .get("error")
        .is_none());
    assert!(create(&mut js, base.clone(), "create")
        .get("error")
        .is_none());
    let mut other = base.clone();
    other["filter_subject"] = json!("s.b");
    let v = create(&mut js, other.clone(), "create");
    assert_eq!(v["error"]["err_code"], 10148, "{v}");
    // A filter may change (and the pending count follows it); the deliver policy may not.
    js.publish("s.b", None, b"", b"x", T0);
    js.commit(T0);
    let v = create(&mut js, other.clone(), "");
    assert_eq!(
        (&v["config"]["filter_subject"], &v["num_pending"]),
        (&json!("s.b"), &json!(1))
    );
    other["deliver_policy"] = json!("new");
    let v = create(&mut js, other.clone(), "update");
    assert_eq!(
        (
            &v["error"]["code"],
            &v["error"]["err_code"],
            &v["error"]["description"]
        ),
        (
            &json!(500),
            &json!(10012),
            &json!("deliver policy can not be updated")
        )
    );
    let mut push = base.clone();
    push["deliver_subject"] = json!("d");
    let v = create(&mut js, push, "update");
    assert_eq!(
        v["error"]["description"],
        "can not update pull consumer to push based"
    );
}

#[test]
fn prioritized_serves_the_lowest_priority_first() {
    let mut js = stream(json!({}));
    let v = add(
        &mut js,
        json!({"durable_name": "P", "priority_policy": "prioritized", "priority_groups": ["g"]}),
        T0,
    );
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["config"]["priority_policy"], "prioritized");
    let ask = |js: &mut super::super::service::JetStream, inbox: &str, batch: u64, prio: i64| {
        let body = json!({"batch": batch, "expires": 30 * SEC, "group": "g", "priority": prio});
        js.api(
            "$JS.API.CONSUMER.MSG.NEXT.S.P",
            Some(inbox),
            &serde_json::to_vec(&body).unwrap(),
            T0,
        )
    };
    let bad = ask(&mut js, "_INBOX.x", 1, 10);
    assert_eq!(
        String::from_utf8_lossy(&bad[0].headers),
        "NATS/1.0 400 Bad Request - Priority must be between 0 and 9\r\n\r\n"
    );
    assert!(ask(&mut js, "_INBOX.a", 2, 5).is_empty());
    assert!(ask(&mut js, "_INBOX.b", 2, 1).is_empty());
    assert!(ask(&mut js, "_INBOX.c", 1, 1).is_empty());
    for i in 0..4 {
        js.publish("s.x", None, b"", i.to_string().as_bytes(), T0);
    }
    let out = js.commit(T0);
    let to: Vec<&str> = out
        .iter()
        .filter(|d| d.reply.is_some())
        .map(|d| d.subject.as_str())
        .collect();
    // Equal priorities take turns; 5 waits until 1 is done.
    assert_eq!(to, ["_INBOX.b", "_INBOX.c", "_INBOX.b", "_INBOX.a"]);
}

#[test]
fn reset_starts_over_at_a_sequence_or_the_floor() {
    let mut js = stream(json!({}));
    for i in 1..=5 {
        js.publish("s.x", None, b"", i.to_string().as_bytes(), T0);
    }
    js.commit(T0);
    add(&mut js, json!({"durable_name": "P"}), T0);
    let got = pull(&mut js, "P", json!({"batch": 3}), T0);
    assert_eq!(msgs(&got), ["1", "2", "3"]);
    ack(&mut js, &got[0], "", T0);
    let reset = |js: &mut super::super::service::JetStream, body: Value| {
        api_at(js, "$JS.API.CONSUMER.RESET.S.P", body, T0 + SEC)
    };
    // Back to the floor: 2 and 3 come again as new deliveries.
    let v = reset(&mut js, Value::Null);
    assert_eq!(
        v["type"],
        "io.nats.jetstream.api.v1.consumer_reset_response"
    );
    assert_eq!(v["reset_seq"], 2, "{v}");
    assert_eq!(v["num_ack_pending"], 0, "{v}");
    assert_eq!(v["num_pending"], 4, "{v}");
    assert_eq!(v["delivered"], json!({"consumer_seq": 0, "stream_seq": 1}));
    assert_eq!(v["ack_floor"], json!({"consumer_seq": 0, "stream_seq": 1}));
    let got = pull(&mut js, "P", json!({"batch": 1}), T0 + SEC);
    assert_eq!(msgs(&got), ["2"]);
    assert!(
        got[0].reply.as_deref().unwrap().contains(".1.2.1."),
        "{got:?}"
    );
    // To a sequence.
    let v = reset(&mut js, json!({"seq": 5}));
    assert_eq!((&v["reset_seq"], &v["num_pending"]), (&json!(5), &json!(1)));
    assert_eq!(
        msgs(&pull(&mut js, "P", json!({"batch": 1}), T0 + SEC)),
        ["5"]
    );
    // Not for a deliver policy without a start of its own; nothing for a missing consumer.
    add(
        &mut js,
        json!({"durable_name": "N", "deliver_policy": "new"}),
        T0,
    );
    let v = api_at(&mut js, "$JS.API.CONSUMER.RESET.S.N", json!({"seq": 2}), T0);
    assert_eq!(
        (&v["error"]["err_code"], &v["error"]["description"]),
        (&json!(10204), &json!("invalid reset: not allowed"))
    );
    assert!(js
        .api("$JS.API.CONSUMER.RESET.S.NOPE", Some("_INBOX.r"), b"", T0)
        .is_empty());
}

#[test]
fn reset_past_messages_frees_them_on_an_interest_stream() {
    let mut js = stream(json!({"retention": "interest"}));
    add(&mut js, json!({"durable_name": "P"}), T0);
    for i in 1..=4 {
        js.publish("s.x", None, b"", i.to_string().as_bytes(), T0);
    }
    js.commit(T0);
    let v = api_at(&mut js, "$JS.API.CONSUMER.RESET.S.P", json!({"seq": 3}), T0);
    assert_eq!(v["reset_seq"], 3, "{v}");
    let s = api_at(&mut js, "$JS.API.STREAM.INFO.S", Value::Null, T0);
    assert_eq!(
        (&s["state"]["messages"], &s["state"]["first_seq"]),
        (&json!(2), &json!(3))
    );
}
