//! Valid JetStream requests with random fields set to `null` or their keys re-cased must mean
//! what the request means with those fields absent, or as sent.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::fields::null_refused;
use super::{from_slice, Unknown};
use crate::jetstream::api::{
    CreateConsumerRequest, ListRequest, MsgGetRequest, NextRequest, StreamConfig,
};

/// The struct a nested object decodes into (none: a map or a plain value).
fn child_struct(parent: &str, key: &str) -> Option<&'static str> {
    match (parent, key) {
        ("StreamConfig", "placement") => Some("Placement"),
        ("StreamConfig", "mirror" | "sources") => Some("StreamSource"),
        ("StreamConfig", "subject_transform") | ("StreamSource", "subject_transforms") => {
            Some("SubjectTransformConfig")
        }
        ("StreamConfig", "republish") => Some("RePublish"),
        ("StreamSource", "external") => Some("ExternalStream"),
        ("CreateConsumerRequest", "config") => Some("ConsumerConfig"),
        _ => None,
    }
}

/// Random bits for the mutation choices, reused round-robin.
struct Choices<'a> {
    bits: &'a [u8],
    at: usize,
}

impl Choices<'_> {
    fn next(&mut self) -> u8 {
        let b = self.bits.get(self.at % self.bits.len().max(1)).copied();
        self.at += 1;
        b.unwrap_or(0)
    }
}

fn recase(key: &str, ch: &mut Choices<'_>) -> String {
    key.chars()
        .map(|c| {
            if ch.next() % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// Returns (what is sent, what it must mean): keys re-cased in the first, nulled keys absent
/// from the second.
fn mutate(st: &str, v: &Value, ch: &mut Choices<'_>) -> (Value, Value) {
    let Value::Object(m) = v else {
        return (v.clone(), v.clone());
    };
    let (mut sent, mut meant) = (Map::new(), Map::new());
    for (k, val) in m {
        let (s, e) = match (child_struct(st, k), val) {
            (Some(c), Value::Object(_)) => mutate(c, val, ch),
            (Some(c), Value::Array(a)) => {
                let (s, e): (Vec<_>, Vec<_>) = a.iter().map(|x| mutate(c, x, ch)).unzip();
                (Value::Array(s), Value::Array(e))
            }
            _ => (val.clone(), val.clone()),
        };
        match ch.next() % 3 {
            0 if null_refused(st, k).is_none() => {
                sent.insert(k.clone(), Value::Null);
            }
            1 => {
                sent.insert(recase(k, ch), s);
                meant.insert(k.clone(), e);
            }
            _ => {
                sent.insert(k.clone(), s);
                meant.insert(k.clone(), e);
            }
        }
    }
    (Value::Object(sent), Value::Object(meant))
}

fn same_meaning<T>(st: &str, doc: &Value, bits: &[u8]) -> Result<(), TestCaseError>
where
    T: serde::de::DeserializeOwned + std::fmt::Debug,
{
    let (sent, meant) = mutate(st, doc, &mut Choices { bits, at: 0 });
    let got: T = from_slice(&serde_json::to_vec(&sent).unwrap(), Unknown::Refuse)
        .map_err(|e| TestCaseError::fail(format!("{sent}: {e}")))?;
    let want: T = from_slice(&serde_json::to_vec(&meant).unwrap(), Unknown::Refuse)
        .map_err(|e| TestCaseError::fail(format!("{meant}: {e}")))?;
    prop_assert_eq!(format!("{got:?}"), format!("{want:?}"), "sent {}", sent);
    Ok(())
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,12}"
}

fn subject() -> impl Strategy<Value = String> {
    "[a-z]{1,5}(\\.[a-z*]{1,5}){0,2}"
}

fn source() -> impl Strategy<Value = Value> {
    (name(), 0u64..100, proptest::option::of(subject())).prop_map(|(n, seq, f)| {
        json!({
            "name": n,
            "opt_start_seq": seq,
            "filter_subject": f.unwrap_or_default(),
            "subject_transforms": [{"src": "a.>", "dest": "b.>"}],
            "external": {"api": "$JS.x.API", "deliver": "d"},
        })
    })
}

fn stream_config() -> impl Strategy<Value = Value> {
    (
        (
            name(),
            prop::collection::vec(subject(), 0..3),
            -1i64..10_000,
        ),
        (
            0i64..1_000_000_000_000,
            0u64..1_000_000_000_000,
            any::<bool>(),
        ),
        (
            prop::sample::select(vec!["limits", "interest", "workqueue"]),
            prop::sample::select(vec!["file", "memory"]),
            prop::sample::select(vec!["old", "new"]),
        ),
        (
            proptest::option::of(source()),
            prop::collection::vec(source(), 0..2),
            prop::collection::btree_map("[A-Za-z]{1,6}", "[a-z]{0,4}", 0..3),
        ),
    )
        .prop_map(
            |((n, subjects, max_msgs), (age, dup, flag), (ret, sto, dis), (mirror, srcs, md))| {
                json!({
                    "name": n, "subjects": subjects, "max_msgs": max_msgs, "max_age": age,
                    "duplicate_window": dup, "deny_delete": flag, "allow_direct": !flag,
                    "retention": ret, "storage": sto, "discard": dis, "compression": "none",
                    "description": "d", "num_replicas": 1, "mirror": mirror, "sources": srcs,
                    "metadata": md, "placement": {"cluster": "c", "tags": ["t"]},
                    "subject_transform": {"src": "x.>", "dest": "y.>"},
                    "republish": {"src": ">", "dest": "r.>", "headers_only": flag},
                })
            },
        )
}

fn consumer_create() -> impl Strategy<Value = Value> {
    (
        name(),
        proptest::option::of(name()),
        prop::sample::select(vec!["none", "all", "explicit"]),
        (0u64..1_000_000_000_000, -1i64..100, any::<bool>()),
        prop::collection::vec(subject(), 0..3),
        prop::collection::vec(0u64..1_000_000_000, 0..3),
    )
        .prop_map(
            |(stream, durable, ack, (wait, max_deliver, flag), filters, backoff)| {
                json!({
                    "stream_name": stream,
                    "action": "create",
                    "config": {
                        "durable_name": durable, "description": "d", "deliver_policy": "all",
                        "ack_policy": ack, "ack_wait": wait, "max_deliver": max_deliver,
                        "filter_subjects": filters, "backoff": backoff, "replay_policy": "instant",
                        "headers_only": flag, "max_ack_pending": 10, "inactive_threshold": wait,
                        "metadata": {"K": "v"}, "opt_start_time": null,
                    },
                })
            },
        )
}

fn next_request() -> impl Strategy<Value = Value> {
    (
        1i64..1000,
        0u64..1_000_000_000_000,
        any::<bool>(),
        "[a-z]{0,5}",
    )
        .prop_map(|(batch, expires, no_wait, group)| {
            json!({"batch": batch, "expires": expires, "no_wait": no_wait, "max_bytes": 0,
                   "idle_heartbeat": 0, "group": group, "min_pending": 1, "id": "x"})
        })
}

fn msg_get() -> impl Strategy<Value = Value> {
    (0u64..1000, subject(), subject()).prop_map(
        |(seq, last, next)| json!({"seq": seq, "last_by_subj": last, "next_by_subj": next}),
    )
}

fn list() -> impl Strategy<Value = Value> {
    (0usize..1000, proptest::option::of(subject()))
        .prop_map(|(offset, subject)| json!({"offset": offset, "subject": subject}))
}

fn bits() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn stream_config_nulls_and_case(doc in stream_config(), bits in bits()) {
        same_meaning::<StreamConfig>("StreamConfig", &doc, &bits)?;
    }

    #[test]
    fn consumer_create_nulls_and_case(doc in consumer_create(), bits in bits()) {
        same_meaning::<CreateConsumerRequest>("CreateConsumerRequest", &doc, &bits)?;
    }

    #[test]
    fn pull_next_nulls_and_case(doc in next_request(), bits in bits()) {
        same_meaning::<NextRequest>("NextRequest", &doc, &bits)?;
    }

    #[test]
    fn msg_get_nulls_and_case(doc in msg_get(), bits in bits()) {
        same_meaning::<MsgGetRequest>("MsgGetRequest", &doc, &bits)?;
    }

    #[test]
    fn list_nulls_and_case(doc in list(), bits in bits()) {
        same_meaning::<ListRequest>("ListRequest", &doc, &bits)?;
    }
}

/// A JSON value of a kind Go cannot store in a field of Go type `t`.
fn wrong_kind(t: &str) -> Value {
    match t {
        "string" | "time.Duration" | "int" | "int32" | "int64" | "uint64" | "bool" => {
            if t == "string" {
                json!(5)
            } else {
                json!([t])
            }
        }
        t if t.starts_with("map[") => json!("m"),
        _ => json!(true),
    }
}

/// One field of a valid request replaced by a value of the wrong kind: refused, in Go's
/// words, naming that field and its Go type.
fn wrong_type_named<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    st: &'static str,
    doc: &Value,
    pick: usize,
) -> Result<(), TestCaseError> {
    let Value::Object(m) = doc else {
        return Ok(());
    };
    let keys: Vec<&String> = m
        .keys()
        .filter(|k| super::types::go_type(st, k).is_some())
        .collect();
    let Some(key) = keys.get(pick % keys.len().max(1)) else {
        return Ok(());
    };
    let t = super::types::go_type(st, key).unwrap_or_default();
    let mut bad = m.clone();
    bad.insert((*key).clone(), wrong_kind(t));
    let e = from_slice::<T>(&serde_json::to_vec(&bad).unwrap(), Unknown::Refuse)
        .expect_err("a wrong kind must be refused")
        .to_string();
    let shown = t.trim_start_matches("[]").trim_start_matches('*');
    let named = e.contains(&format!("Go struct field {st}.{key} of type "))
        && (e.ends_with(&format!(" of type {}", t.trim_start_matches('*'))) || e.ends_with(shown));
    let own = e.starts_with("can not unmarshal ") || e.starts_with("unknown ");
    prop_assert!(named || own, "{key} ({t}): {e}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stream_config_wrong_types_named(doc in stream_config(), pick in any::<usize>()) {
        wrong_type_named::<StreamConfig>("StreamConfig", &doc, pick)?;
    }

    #[test]
    fn consumer_config_wrong_types_named(doc in consumer_create(), pick in any::<usize>()) {
        if let Some(cfg) = doc.get("config") {
            let wrapped = |c: &Value| json!({"config": c});
            let Value::Object(m) = cfg else { return Ok(()) };
            let keys: Vec<&String> = m.keys().collect();
            if let Some(key) = keys.get(pick % keys.len().max(1)) {
                if let Some(t) = super::types::go_type("ConsumerConfig", key) {
                    let mut bad = m.clone();
                    bad.insert((*key).clone(), wrong_kind(t));
                    let doc = wrapped(&Value::Object(bad));
                    let e = from_slice::<CreateConsumerRequest>(
                        &serde_json::to_vec(&doc).unwrap(),
                        Unknown::Refuse,
                    )
                    .expect_err("a wrong kind must be refused")
                    .to_string();
                    let named = e.contains(&format!("Go struct field ConsumerConfig.config.{key} of type "));
                    let own = e.starts_with("can not unmarshal ")
                        || e.starts_with("unknown ")
                        || e.starts_with("Time.UnmarshalJSON");
                    prop_assert!(named || own, "{key} ({t}): {e}");
                }
            }
        }
    }
}
