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
