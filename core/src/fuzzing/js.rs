//! The JetStream API and its stream/consumer machines, driven by arbitrary request sequences.
//!
//! Input format: a sequence of ops, each starting with one byte that picks the kind:
//! an API request (subject from a fixed list of every `$JS.API` verb, stream and consumer
//! names that include invalid ones, and a body that is a known-good request, a mutation of
//! one, or raw bytes), a publish to a stream subject (raw headers and payload), an ack of a
//! delivered message (every ack body kind), a group commit, a clock tick, or a restart that
//! rebuilds JetStream from its disk.
//!
//! Checks: nothing panics; every API request that is answered with a JSON document gets
//! exactly one, addressed to its reply subject, and it is a JSON object; a restart recovers
//! every stream the API listed before it.

use serde_json::Value;

use super::Input;
use crate::jetstream::factory::DiskFactory;
use crate::jetstream::service::{JetStream, JsSettings};
use crate::jetstream::store::{MemDisk, SyncPolicy};

const T0: u64 = 1_700_000_000_000_000_000;
const REPLY: &str = "_INBOX.fuzz";

const STREAMS: &[&str] = &["S", "KV_b", "bad.name", "*", ">", "a/b", ""];
const CONSUMERS: &[&str] = &["C", "D", "bad.c", "*", ""];
const SUBJECTS: &[&str] = &["orders.a", "orders.b", "$KV.b.k", "x", "orders.a.deep"];

/// Known-good bodies, so the fuzzer reaches deep paths without first discovering JSON.
const BODIES: &[&str] = &[
    "",
    "{}",
    r#"{"name":"S","subjects":["orders.>"]}"#,
    r#"{"name":"S","subjects":["orders.*"],"storage":"memory","max_msgs":3,"discard":"new"}"#,
    r#"{"name":"S","subjects":["orders.>"],"max_msgs_per_subject":1,"allow_rollup_hdrs":true,"allow_direct":true}"#,
    r#"{"name":"S","subjects":["orders.>"],"retention":"workqueue","max_age":1000000000}"#,
    r#"{"name":"KV_b","subjects":["$KV.b.>"],"max_msgs_per_subject":5,"allow_direct":true,"deny_delete":true}"#,
    r#"{"name":"S","subjects":["orders.>"],"duplicate_window":1000000000,"sealed":false,"first_seq":10}"#,
    r#"{"stream_name":"S","config":{"durable_name":"C","ack_policy":"explicit","max_deliver":2,"ack_wait":1000000}}"#,
    r#"{"stream_name":"S","config":{"durable_name":"D","deliver_subject":"push.d","ack_policy":"explicit","idle_heartbeat":1000000000,"flow_control":true}}"#,
    r#"{"stream_name":"S","config":{"name":"C","filter_subject":"orders.a","deliver_policy":"last_per_subject","ack_policy":"all"}}"#,
    r#"{"stream_name":"S","config":{"deliver_policy":"by_start_sequence","opt_start_seq":2,"ack_policy":"none","deliver_subject":"push.e"}}"#,
    r#"{"batch":3,"expires":1000000000}"#,
    r#"{"batch":1,"no_wait":true}"#,
    r#"{"batch":100000000000,"max_bytes":-1}"#,
    r#"{"seq":1}"#,
    r#"{"last_by_subj":"orders.a"}"#,
    r#"{"seq":2,"no_erase":true}"#,
    r#"{"filter":"orders.a","keep":1}"#,
    r#"{"seq":3}"#,
    r#"{"offset":0,"subject":"orders.a"}"#,
    r#"{"batch":2,"seq":1,"next_by_subj":"orders.*"}"#,
    r#"{"pause_until":"2030-01-01T00:00:00Z"}"#,
];

const ACKS: &[&[u8]] = &[
    b"+ACK",
    b"",
    b"-NAK",
    b"-NAK {\"delay\":1000000}",
    b"+WPI",
    b"+TERM",
    b"+NXT {\"batch\":2}",
    b"junk",
];

fn api_subject(b: &mut Input<'_>) -> String {
    let s = b.pick(STREAMS);
    let c = b.pick(CONSUMERS);
    let verbs = [
        "INFO".to_owned(),
        format!("STREAM.CREATE.{s}"),
        format!("STREAM.UPDATE.{s}"),
        format!("STREAM.INFO.{s}"),
        format!("STREAM.DELETE.{s}"),
        format!("STREAM.PURGE.{s}"),
        "STREAM.NAMES".to_owned(),
        "STREAM.LIST".to_owned(),
        format!("STREAM.MSG.GET.{s}"),
        format!("STREAM.MSG.DELETE.{s}"),
        format!("CONSUMER.CREATE.{s}"),
        format!("CONSUMER.CREATE.{s}.{c}"),
        format!("CONSUMER.CREATE.{s}.{c}.orders.a"),
        format!("CONSUMER.DURABLE.CREATE.{s}.{c}"),
        format!("CONSUMER.INFO.{s}.{c}"),
        format!("CONSUMER.DELETE.{s}.{c}"),
        format!("CONSUMER.NAMES.{s}"),
        format!("CONSUMER.LIST.{s}"),
        format!("CONSUMER.PAUSE.{s}.{c}"),
        "NO.SUCH.VERB".to_owned(),
        format!("CONSUMER.MSG.NEXT.{s}.{c}"),
        format!("DIRECT.GET.{s}"),
        format!("DIRECT.GET.{s}.orders.a"),
    ];
    let i = usize::from(b.byte()) % verbs.len();
    format!("$JS.API.{}", verbs[i])
}

/// Requests answered with messages or status headers rather than one JSON document.
/// Built only from names without dots, and a verb the API has: it must be answered.
fn has_handler_shape(subject: &str) -> bool {
    !subject.contains("NO.SUCH.VERB")
        && !subject.contains("bad.")
        && !subject.contains("..")
        && !subject.ends_with('.')
}

fn answers_with_messages(subject: &str) -> bool {
    subject.contains(".MSG.NEXT.") || subject.starts_with("$JS.API.DIRECT.")
}

fn body(b: &mut Input<'_>) -> Vec<u8> {
    match b.below(4) {
        0 | 1 => b.pick(BODIES).as_bytes().to_vec(),
        2 => {
            // A known-good body with one byte changed: near-valid JSON finds the edge cases.
            let mut v = b.pick(BODIES).as_bytes().to_vec();
            if !v.is_empty() {
                let at = usize::from(b.byte()) % v.len();
                v[at] = b.byte();
            }
            v
        }
        _ => {
            let n = usize::from(b.byte());
            b.take(n).to_vec()
        }
    }
}

fn open(disk: &MemDisk) -> JetStream {
    let d = disk.clone();
    let factory = DiskFactory::new(move || d.clone(), SyncPolicy::Always).with_block_size(512);
    let settings = JsSettings {
        server_name: "fuzz".to_owned(),
        ..JsSettings::default()
    };
    JetStream::new(settings, Box::new(factory), 7)
}

/// The file-backed streams the API lists (memory streams do not outlive a restart, as in
/// nats-server).
fn file_streams(js: &mut JetStream, now: u64) -> Vec<String> {
    let out = js.api("$JS.API.STREAM.LIST", Some(REPLY), b"", now);
    let doc: Value = serde_json::from_slice(&out[0].payload).expect("STREAM.LIST is JSON");
    let mut names: Vec<String> = doc["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["config"]["storage"] != "memory")
        .map(|s| s["config"]["name"].to_string())
        .collect();
    names.sort();
    names
}

/// Fuzz entry point: see the module docs for the input format.
pub fn js_api(data: &[u8]) {
    let mut b = Input::new(data);
    let disk = MemDisk::new(u64::from(b.byte()));
    let mut js = open(&disk);
    let mut now = T0;
    let mut ack_subjects: Vec<String> = Vec::new();
    // Bounded: every op consumes at least one input byte.
    while !b.is_empty() {
        let out = match b.below(8) {
            0..=2 => {
                let subject = api_subject(&mut b);
                let payload = body(&mut b);
                let out = js.api(&subject, Some(REPLY), &payload, now);
                let answered = out.iter().any(|d| d.subject == REPLY);
                if !answered {
                    // nats-server answers only subjects it has a handler for: a verb it does
                    // not know, or a name whose dots change the token count.
                    assert!(
                        answers_with_messages(&subject) || !has_handler_shape(&subject),
                        "no answer to {subject}"
                    );
                }
                if answered && !answers_with_messages(&subject) {
                    let first = out.first().expect("an answer");
                    assert_eq!(first.subject, REPLY, "answer to {subject}");
                    let doc: Value =
                        serde_json::from_slice(&first.payload).expect("the answer is JSON");
                    assert!(doc.is_object(), "answer to {subject} is an object: {doc}");
                    let answers = out.iter().filter(|d| d.subject == REPLY).count();
                    assert_eq!(answers, 1, "one answer to {subject}");
                }
                out
            }
            3 => {
                let subject = b.pick(SUBJECTS);
                let hlen = usize::from(b.below(64));
                let headers = b.take(hlen).to_vec();
                let plen = usize::from(b.byte());
                let payload = b.take(plen).to_vec();
                js.publish(subject, Some("_INBOX.ack"), &headers, &payload, now)
            }
            4 if !ack_subjects.is_empty() => {
                let i = usize::from(b.byte()) % ack_subjects.len();
                let subject = ack_subjects[i].clone();
                js.ack(&subject, Some("_INBOX.ackack"), b.pick(ACKS), now)
            }
            5 => js.commit(now),
            6 => {
                now += u64::from(b.byte()) * 50_000_000;
                js.tick(now)
            }
            _ => {
                let before = file_streams(&mut js, now);
                drop(js);
                js = open(&disk);
                let after = file_streams(&mut js, now);
                assert_eq!(before, after, "a restart recovers every stream");
                ack_subjects.clear();
                Vec::new()
            }
        };
        for d in out {
            if let Some(r) = d.reply.filter(|r| r.starts_with("$JS.ACK.")) {
                if ack_subjects.len() < 64 {
                    ack_subjects.push(r);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::js_api;

    #[test]
    fn create_publish_consume_ack_restart() {
        let input = [
            0u8, // MemDisk seed
            0, 0, 0, 1, 0, 2, // STREAM.CREATE.S with subjects orders.>
            3, 0, 0, 2, b'h', b'i', // publish "hi" to orders.a
            3, 1, 0, 1, b'x', // publish "x" to orders.b
            5,    // commit: both acknowledged
            0, 0, 0, 13, 0, 8, // CONSUMER.DURABLE.CREATE.S.C, explicit acks
            0, 0, 0, 20, 0, 12, // CONSUMER.MSG.NEXT.S.C, batch 3
            4, 0, 0, // +ACK the first delivery
            0, 0, 0, 22, 0, 0, // DIRECT.GET.S.orders.a
            6, 30, // 1.5 s later: redelivery of the unacked one
            7,  // restart: S is recovered
            0, 0, 0, 3, 0, 0, // STREAM.INFO.S
        ];
        js_api(&input);
    }

    #[test]
    fn garbage_and_mutations_do_not_panic() {
        for seed in 0u8..64 {
            let input: Vec<u8> = (0..200u32)
                .map(|i| (i.wrapping_mul(31) as u8) ^ seed.wrapping_mul(7))
                .collect();
            js_api(&input);
        }
    }
}
