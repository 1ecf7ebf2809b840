//! Stream features through [`JetStream`]: mirrors, sources, subject transforms, republish,
//! per-message TTL and the config checks.

use serde_json::{json, Value};

use super::super::consumer::Delivery;
use super::super::factory::DiskFactory;
use super::super::service::{JetStream, JsSettings};
use super::super::store::{MemDisk, SyncPolicy};
use crate::proto::headers::Headers;

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn js_on(disk: &MemDisk) -> JetStream {
    let d = disk.clone();
    let f = DiskFactory::new(move || d.clone(), SyncPolicy::Always).with_block_size(4096);
    JetStream::new(
        JsSettings {
            server_name: "S1".into(),
            ..JsSettings::default()
        },
        Box::new(f),
        1,
    )
}

fn api(js: &mut JetStream, subject: &str, req: &Value) -> Value {
    let payload = if req.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(req).unwrap()
    };
    let out = js.api(subject, Some("_INBOX.r"), &payload, T0);
    serde_json::from_slice(&out[0].payload).unwrap()
}

fn create(js: &mut JetStream, cfg: Value) -> Value {
    let name = cfg["name"].as_str().unwrap().to_owned();
    api(js, &format!("$JS.API.STREAM.CREATE.{name}"), &cfg)
}

fn info(js: &mut JetStream, name: &str) -> Value {
    api(js, &format!("$JS.API.STREAM.INFO.{name}"), &Value::Null)
}

fn err_code(v: &Value) -> u64 {
    v["error"]["err_code"].as_u64().unwrap_or(0)
}

fn hdr(k: &str, v: &str) -> String {
    format!("NATS/1.0\r\n{k}: {v}\r\n\r\n")
}

/// Publishes and commits; returns what went out (acks, republished copies).
fn put(js: &mut JetStream, subject: &str, h: &str, payload: &str) -> Vec<Delivery> {
    let mut out = js.publish(
        subject,
        Some("_INBOX.ack"),
        h.as_bytes(),
        payload.as_bytes(),
        T0,
    );
    out.extend(js.commit(T0));
    out
}

/// (seq, subject, payload) of every message of a stream.
fn msgs(js: &JetStream, name: &str) -> Vec<(u64, String, String)> {
    let store = &js.stream(name).unwrap().store;
    let mut out = Vec::new();
    let mut seq = 0;
    while let Ok(m) = store.load_next_msg("", seq) {
        out.push((
            m.seq,
            m.subject.clone(),
            String::from_utf8_lossy(&m.payload).into_owned(),
        ));
        seq = m.seq + 1;
    }
    out
}

fn header_of(js: &JetStream, name: &str, seq: u64, h: &str) -> Option<String> {
    let m = js.stream(name).unwrap().store.load_msg(seq).ok()?;
    let hs = Headers::parse(&m.headers).ok()?;
    hs.get(h).map(|v| String::from_utf8_lossy(v).into_owned())
}

#[test]
fn mirror_backfills_keeps_sequences_and_follows() {
    let mut js = js_on(&MemDisk::new(1));
    create(
        &mut js,
        json!({"name": "O", "subjects": ["o.>"], "storage": "memory"}),
    );
    for i in 1..=3 {
        put(
            &mut js,
            &format!("o.{i}"),
            &hdr("X-Id", &i.to_string()),
            "p",
        );
    }
    api(&mut js, "$JS.API.STREAM.MSG.DELETE.O", &json!({"seq": 2}));
    let v = create(&mut js, json!({"name": "M", "mirror": {"name": "O"}}));
    assert_eq!(v["config"]["mirror"]["name"], "O");
    assert!(v["config"].get("subjects").is_none(), "{v}");
    js.commit(T0);
    assert_eq!(
        msgs(&js, "M"),
        [(1, "o.1".into(), "p".into()), (3, "o.3".into(), "p".into())]
    );
    // Origin headers and time come along unchanged.
    assert_eq!(header_of(&js, "M", 3, "X-Id").as_deref(), Some("3"));
    assert_eq!(header_of(&js, "M", 3, "Nats-Stream-Source"), None);
    put(&mut js, "o.4", "", "q");
    assert_eq!(
        msgs(&js, "M").last().unwrap(),
        &(4, "o.4".into(), "q".into())
    );
    let i = info(&mut js, "M");
    assert_eq!(i["mirror"]["name"], "O");
    assert_eq!(i["mirror"]["lag"], 0);
    assert_eq!(i["state"]["first_seq"], 1);
    assert_eq!(i["state"]["last_seq"], 4);
    // A mirror captures nothing: a publish on the origin's subjects is the origin's.
    assert_eq!(js.stream("M").unwrap().config.subjects.len(), 0);
}

#[test]
fn mirror_of_purged_origin_starts_at_its_first_sequence() {
    let mut js = js_on(&MemDisk::new(1));
    create(
        &mut js,
        json!({"name": "O", "subjects": ["o"], "storage": "memory"}),
    );
    for _ in 0..5 {
        put(&mut js, "o", "", "x");
    }
    api(&mut js, "$JS.API.STREAM.PURGE.O", &json!({"keep": 2}));
    create(
        &mut js,
        json!({"name": "M", "mirror": {"name": "O"}, "storage": "memory"}),
    );
    js.commit(T0);
    let seqs: Vec<u64> = msgs(&js, "M").iter().map(|m| m.0).collect();
    assert_eq!(seqs, [4, 5]);
}

/// A mirror holding messages meets a gap of millions (the origin compacted past its end):
/// one skip, not a placeholder per sequence; the disk holds one record for it.
#[test]
fn mirror_skips_a_huge_origin_gap_at_once() {
    let disk = MemDisk::new(1);
    let mut js = js_on(&disk);
    create(&mut js, json!({"name": "O", "subjects": ["o"]}));
    put(&mut js, "o", "", "a");
    put(&mut js, "o", "", "b");
    create(&mut js, json!({"name": "M", "mirror": {"name": "O"}}));
    js.commit(T0);
    assert_eq!(info(&mut js, "M")["state"]["messages"], 2);
    let used = disk.used();
    api(
        &mut js,
        "$JS.API.STREAM.PURGE.O",
        &json!({"seq": 10_000_001}),
    );
    put(&mut js, "o", "", "c");
    js.commit(T0);
    let s = &info(&mut js, "M")["state"];
    assert_eq!(
        (
            &s["messages"],
            &s["first_seq"],
            &s["last_seq"],
            &s["num_deleted"]
        ),
        (&json!(3), &json!(1), &json!(10_000_001), &json!(9_999_998)),
        "{s}"
    );
    assert_eq!(msgs(&js, "M").last().unwrap().0, 10_000_001);
    assert!(disk.used() < used + 4096, "{} -> {}", used, disk.used());
}

#[test]
fn mirror_waits_for_an_origin_created_later() {
    let mut js = js_on(&MemDisk::new(1));
    let v = create(&mut js, json!({"name": "M", "mirror": {"name": "LATER"}}));
    assert_eq!(err_code(&v), 0, "{v}");
    js.commit(T0);
    create(&mut js, json!({"name": "LATER", "subjects": ["l"]}));
    put(&mut js, "l", "", "hello");
    assert_eq!(msgs(&js, "M"), [(1, "l".into(), "hello".into())]);
}

#[test]
fn mirror_config_errors() {
    let mut js = js_on(&MemDisk::new(1));
    let m = json!({"name": "O"});
    let cases = [
        (json!({"name": "M", "mirror": m, "subjects": ["a"]}), 10034),
        (
            json!({"name": "M", "mirror": m, "sources": [{"name": "X"}]}),
            10031,
        ),
        (json!({"name": "M", "mirror": m, "first_seq": 5}), 10143),
        (json!({"name": "M", "mirror": {"name": "a.b"}}), 10142),
        (
            json!({"name": "M", "mirror": {"name": "O", "opt_start_seq": 2,
                   "opt_start_time": "2023-01-01T00:00:00Z"}}),
            10032,
        ),
        (
            json!({"name": "M", "mirror": {"name": "O", "filter_subject": "a",
                   "subject_transforms": [{"src": "b", "dest": "c"}]}}),
            10150,
        ),
        (
            json!({"name": "M", "mirror": {"name": "O",
                   "subject_transforms": [{"src": "a.>", "dest": "b"}]}}),
            10154,
        ),
        (
            json!({"name": "M", "mirror": {"name": "O",
                   "subject_transforms": [{"src": "a.*", "dest": ""}, {"src": "a.b", "dest": ""}]}}),
            10152,
        ),
        (json!({"name": "S", "sources": [{"name": "a*"}]}), 10141),
        (
            json!({"name": "S", "sources": [{"name": "O"}, {"name": "O"}]}),
            10140,
        ),
        (
            json!({"name": "S", "sources": [{"name": "O", "filter_subject": "a",
                   "subject_transforms": [{"src": "b", "dest": "c"}]}]}),
            10144,
        ),
        (
            json!({"name": "S", "sources": [{"name": "O",
                   "subject_transforms": [{"src": "a..b", "dest": "c"}]}]}),
            10145,
        ),
    ];
    for (cfg, code) in cases {
        let v = create(&mut js, cfg.clone());
        assert_eq!(err_code(&v), code, "{cfg} -> {v}");
    }
    // A mirror cannot be changed by an update.
    create(&mut js, json!({"name": "O", "subjects": ["o"]}));
    create(&mut js, json!({"name": "M", "mirror": {"name": "O"}}));
    let v = api(
        &mut js,
        "$JS.API.STREAM.UPDATE.M",
        &json!({"name": "M", "mirror": {"name": "O", "opt_start_seq": 3}}),
    );
    assert_eq!(err_code(&v), 10055);
    // Sourcing back into its own origin is a cycle.
    create(
        &mut js,
        json!({"name": "A", "subjects": ["a"], "sources": [{"name": "B"}]}),
    );
    let v = create(
        &mut js,
        json!({"name": "B", "subjects": ["b"], "sources": [{"name": "A"}]}),
    );
    assert_eq!(
        (err_code(&v), v["error"]["description"].as_str().unwrap()),
        (10052, "detected cycle")
    );
    // A mirror must take the origin's largest messages.
    create(
        &mut js,
        json!({"name": "BIG", "subjects": ["big"], "max_msg_size": 1000}),
    );
    let v = create(
        &mut js,
        json!({"name": "SMALL", "mirror": {"name": "BIG"}, "max_msg_size": 10}),
    );
    assert_eq!(err_code(&v), 10030);
}

#[test]
fn sources_copy_with_header_filter_and_transform() {
    let mut js = js_on(&MemDisk::new(1));
    create(
        &mut js,
        json!({"name": "EU", "subjects": ["eu.>"], "storage": "memory"}),
    );
    create(
        &mut js,
        json!({"name": "US", "subjects": ["us.>"], "storage": "memory"}),
    );
    put(&mut js, "eu.1", &hdr("Nats-Expected-Stream", "EU"), "e1");
    put(&mut js, "us.1", "", "u1");
    put(&mut js, "us.2", "", "u2");
    let v = create(
        &mut js,
        json!({"name": "ALL", "subjects": ["all"], "storage": "memory", "sources": [
            {"name": "EU"},
            {"name": "US", "subject_transforms": [{"src": "us.*", "dest": "from.us.$1"}]},
        ]}),
    );
    assert_eq!(err_code(&v), 0, "{v}");
    // Sourcing streams keep no duplicate window unless asked (Go 2.10).
    assert!(v["config"].get("duplicate_window").is_none(), "{v}");
    js.commit(T0);
    let got = msgs(&js, "ALL");
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], (1, "eu.1".into(), "e1".into()));
    assert_eq!(got[1].1, "from.us.1");
    assert_eq!(
        header_of(&js, "ALL", 1, "Nats-Stream-Source").as_deref(),
        Some("EU 1 > > eu.1")
    );
    assert_eq!(header_of(&js, "ALL", 1, "Nats-Expected-Stream"), None);
    assert_eq!(
        header_of(&js, "ALL", 3, "Nats-Stream-Source").as_deref(),
        Some("US 2 us.* from.us.$1 us.2")
    );
    // New origin messages follow; direct publishes to the sourcing stream still work.
    put(&mut js, "eu.2", "", "e2");
    put(&mut js, "all", "", "direct");
    let got = msgs(&js, "ALL");
    assert_eq!(got[3].2, "e2");
    assert_eq!(got[4].2, "direct");
    let i = info(&mut js, "ALL");
    assert_eq!(i["sources"].as_array().unwrap().len(), 2);
    assert_eq!(i["sources"][1]["name"], "US");
    assert_eq!(i["sources"][1]["lag"], 0);
    assert!(i["sources"][1]["active"].as_i64().unwrap() >= 0);
}

#[test]
fn source_starts_over_on_a_recreated_origin() {
    let mut js = js_on(&MemDisk::new(1));
    create(
        &mut js,
        json!({"name": "O", "subjects": ["o"], "storage": "memory"}),
    );
    create(
        &mut js,
        json!({"name": "S", "storage": "memory", "sources": [{"name": "O"}]}),
    );
    put(&mut js, "o", "", "1");
    put(&mut js, "o", "", "2");
    api(&mut js, "$JS.API.STREAM.DELETE.O", &Value::Null);
    create(
        &mut js,
        json!({"name": "O", "subjects": ["o"], "storage": "memory"}),
    );
    put(&mut js, "o", "", "new");
    let payloads: Vec<String> = msgs(&js, "S").into_iter().map(|m| m.2).collect();
    assert_eq!(payloads, ["1", "2", "new"]);
}

#[test]
fn source_filter_and_start_sequence() {
    let mut js = js_on(&MemDisk::new(1));
    create(
        &mut js,
        json!({"name": "O", "subjects": ["o.*"], "storage": "memory"}),
    );
    for s in ["o.a", "o.b", "o.a", "o.b"] {
        put(&mut js, s, "", s);
    }
    create(
        &mut js,
        json!({"name": "S", "storage": "memory",
               "sources": [{"name": "O", "filter_subject": "o.b", "opt_start_seq": 3}]}),
    );
    js.commit(T0);
    assert_eq!(msgs(&js, "S"), [(1, "o.b".into(), "o.b".into())]);
}

#[test]
fn file_source_resumes_after_restart_without_duplicates() {
    let disk = MemDisk::new(5);
    let mut js = js_on(&disk);
    create(&mut js, json!({"name": "O", "subjects": ["o"]}));
    create(&mut js, json!({"name": "S", "sources": [{"name": "O"}]}));
    create(&mut js, json!({"name": "M", "mirror": {"name": "O"}}));
    put(&mut js, "o", "", "1");
    put(&mut js, "o", "", "2");
    drop(js);
    let mut js = js_on(&disk);
    js.commit(T0);
    put(&mut js, "o", "", "3");
    let payloads: Vec<String> = msgs(&js, "S").into_iter().map(|m| m.2).collect();
    assert_eq!(payloads, ["1", "2", "3"]);
    assert_eq!(msgs(&js, "M").len(), 3);
}

#[test]
fn sources_only_see_committed_messages() {
    let disk = MemDisk::new(8);
    let mut js = js_on(&disk);
    create(&mut js, json!({"name": "O", "subjects": ["o"]}));
    create(&mut js, json!({"name": "S", "sources": [{"name": "O"}]}));
    js.publish("o", None, b"", b"x", T0);
    // Stored in the origin, not yet synced: nothing to copy.
    assert!(msgs(&js, "S").is_empty());
    js.commit(T0);
    assert_eq!(msgs(&js, "S").len(), 1);
}

#[test]
fn subject_transform_rewrites_before_storing() {
    let mut js = js_on(&MemDisk::new(1));
    let v = create(
        &mut js,
        json!({"name": "T", "subjects": ["in.>"], "storage": "memory",
               "subject_transform": {"src": "in.*.>", "dest": "out.{{wildcard(1)}}.>"}}),
    );
    assert_eq!(
        v["config"]["subject_transform"]["dest"],
        "out.{{wildcard(1)}}.>"
    );
    put(&mut js, "in.a.b", "", "x");
    assert_eq!(msgs(&js, "T"), [(1, "out.a.b".into(), "x".into())]);
    let v = create(
        &mut js,
        json!({"name": "U", "subjects": ["u"], "subject_transform": {"src": "u.>", "dest": "v"}}),
    );
    assert_eq!(err_code(&v), 10156, "{v}");
    let v = create(
        &mut js,
        json!({"name": "U", "subjects": ["u"], "subject_transform": {"src": "u..x", "dest": "v"}}),
    );
    assert_eq!(err_code(&v), 10155, "{v}");
}

#[test]
fn republish_copies_with_stream_headers() {
    let mut js = js_on(&MemDisk::new(1));
    create(
        &mut js,
        json!({"name": "R", "subjects": ["r.>"], "storage": "memory",
               "republish": {"src": "r.*", "dest": "rp.$1"}}),
    );
    let out = put(&mut js, "r.a", &hdr("X", "1"), "body");
    let rp: Vec<&Delivery> = out.iter().filter(|d| d.subject == "rp.a").collect();
    assert_eq!(rp.len(), 1, "{out:?}");
    let h = Headers::parse(&rp[0].headers).unwrap();
    let get = |k: &str| String::from_utf8_lossy(h.get(k).unwrap()).into_owned();
    assert_eq!(get("X"), "1");
    assert_eq!(get("Nats-Stream"), "R");
    assert_eq!(get("Nats-Subject"), "r.a");
    assert_eq!(get("Nats-Sequence"), "1");
    assert_eq!(get("Nats-Last-Sequence"), "0");
    assert_eq!(rp[0].payload, b"body");
    put(&mut js, "r.b", "", "");
    let out = put(&mut js, "r.a", "", "again");
    let h = Headers::parse(&out.iter().find(|d| d.subject == "rp.a").unwrap().headers).unwrap();
    // The previous message on the same subject.
    assert_eq!(h.get("Nats-Last-Sequence"), Some(&b"1"[..]));
    // Not matching the republish source: no copy.
    assert!(put(&mut js, "r.x.y", "", "")
        .iter()
        .all(|d| !d.subject.starts_with("rp")));

    // Go: an empty source is `>`, which a literal destination cannot take.
    let v = create(
        &mut js,
        json!({"name": "H", "subjects": ["h"], "republish": {"dest": "hp"}}),
    );
    assert_eq!(
        v["error"]["description"],
        "stream configuration for republish with transform from '>' to 'hp' not valid"
    );
    create(
        &mut js,
        json!({"name": "H", "subjects": ["h"], "storage": "memory",
               "republish": {"src": "h", "dest": "hp", "headers_only": true}}),
    );
    let out = put(&mut js, "h", "", "12345");
    let d = out.iter().find(|d| d.subject == "hp").unwrap();
    assert!(d.payload.is_empty());
    let h = Headers::parse(&d.headers).unwrap();
    assert_eq!(h.get("Nats-Msg-Size"), Some(&b"5"[..]));

    let v = create(
        &mut js,
        json!({"name": "C", "subjects": ["c.>"], "republish": {"src": ">", "dest": "c.x"}}),
    );
    assert_eq!(
        v["error"]["description"],
        "stream configuration for republish destination forms a cycle"
    );
}

#[test]
fn message_ttl_expires_and_is_checked() {
    let mut js = js_on(&MemDisk::new(1));
    create(
        &mut js,
        json!({"name": "N", "subjects": ["n"], "storage": "memory"}),
    );
    let out = put(&mut js, "n", &hdr("Nats-TTL", "5s"), "");
    let v: Value = serde_json::from_slice(&out[0].payload).unwrap();
    assert_eq!(
        v["error"],
        json!({"code": 400, "err_code": 10166, "description": "per-message TTL is disabled"})
    );
    let v = create(
        &mut js,
        json!({"name": "T", "subjects": ["t.>"], "storage": "memory", "allow_msg_ttl": true}),
    );
    assert_eq!(v["config"]["allow_msg_ttl"], true);
    let out = put(&mut js, "t.a", &hdr("Nats-TTL", "soon"), "");
    let v: Value = serde_json::from_slice(&out[0].payload).unwrap();
    assert_eq!(err_code(&v), 10165);
    put(&mut js, "t.a", &hdr("Nats-TTL", "2s"), "short");
    put(&mut js, "t.b", &hdr("Nats-TTL", "1h"), "long");
    put(&mut js, "t.c", "", "forever");
    assert_eq!(js.next_deadline(), Some(T0 + 2 * SEC));
    js.tick(T0 + SEC);
    assert_eq!(msgs(&js, "T").len(), 3);
    js.tick(T0 + 2 * SEC);
    let left: Vec<String> = msgs(&js, "T").into_iter().map(|m| m.2).collect();
    assert_eq!(left, ["long", "forever"]);
    // Once on, TTLs cannot be switched off.
    let v = api(
        &mut js,
        "$JS.API.STREAM.UPDATE.T",
        &json!({"name": "T", "subjects": ["t.>"], "storage": "memory"}),
    );
    assert_eq!(
        v["error"]["description"],
        "message TTL status can not be disabled"
    );
}

#[test]
fn message_ttl_survives_restart() {
    let disk = MemDisk::new(2);
    let mut js = js_on(&disk);
    create(
        &mut js,
        json!({"name": "T", "subjects": ["t"], "allow_msg_ttl": true}),
    );
    put(&mut js, "t", &hdr("Nats-TTL", "10"), "x");
    drop(js);
    let mut js = js_on(&disk);
    assert_eq!(js.next_deadline(), Some(T0 + 10 * SEC));
    js.tick(T0 + 10 * SEC);
    assert!(msgs(&js, "T").is_empty());
}

#[test]
fn config_fields_round_trip_and_checks() {
    let mut js = js_on(&MemDisk::new(1));
    let v = create(
        &mut js,
        json!({"name": "F", "subjects": ["f"], "first_seq": 100, "description": "d",
               "metadata": {"team": "a", "tier": "1"}, "compression": "s2",
               "placement": {"cluster": "", "tags": []}, "max_msg_size": 10}),
    );
    assert_eq!(v["config"]["first_seq"], 100);
    assert_eq!(v["config"]["metadata"], json!({"team": "a", "tier": "1"}));
    assert_eq!(v["config"]["compression"], "s2");
    assert_eq!(v["config"]["description"], "d");
    assert!(v["config"].get("placement").is_none());
    assert_eq!(v["state"]["first_seq"], 100);
    let out = put(&mut js, "f", "", "x");
    let ack: Value = serde_json::from_slice(&out[0].payload).unwrap();
    assert_eq!(ack["seq"], 100);
    let out = put(&mut js, "f", "", "this is too long");
    let ack: Value = serde_json::from_slice(&out[0].payload).unwrap();
    assert_eq!(err_code(&ack), 10054);
    for (cfg, text) in [
        (json!({"compression": "zip"}), "invalid compression"),
        (
            json!({"placement": {"preferred": "x"}}),
            "preferred server not permitted in placement",
        ),
        (
            json!({"discard_new_per_subject": true, "max_msgs_per_subject": 1}),
            "discard new per subject requires discard new policy to be set",
        ),
        (
            json!({"discard_new_per_subject": true, "discard": "new"}),
            "discard new per subject requires max msgs per subject > 0",
        ),
        (
            json!({"deny_purge": true, "allow_rollup_hdrs": true}),
            "roll-ups require the purge permission",
        ),
        (
            json!({"subject_delete_marker_ttl": 1000}),
            "subject delete marker TTL must be at least 1 second",
        ),
    ] {
        let mut c = json!({"name": "G", "subjects": ["g"]});
        c.as_object_mut()
            .unwrap()
            .extend(cfg.as_object().unwrap().clone());
        let v = create(&mut js, c);
        assert_eq!(v["error"]["description"], text, "{v}");
    }
    // A delete marker TTL switches TTLs and roll-ups on (Go, not pedantic).
    let v = create(
        &mut js,
        json!({"name": "K", "subjects": ["k"], "subject_delete_marker_ttl": 5_000_000_000u64}),
    );
    assert_eq!(v["config"]["allow_msg_ttl"], true);
    assert_eq!(v["config"]["allow_rollup_hdrs"], true);
}

#[test]
fn sealed_deny_delete_deny_purge() {
    let mut js = js_on(&MemDisk::new(1));
    create(
        &mut js,
        json!({"name": "D", "subjects": ["d"], "deny_delete": true, "deny_purge": true}),
    );
    put(&mut js, "d", "", "x");
    let v = api(&mut js, "$JS.API.STREAM.MSG.DELETE.D", &json!({"seq": 1}));
    assert_eq!(err_code(&v), 10057);
    let v = api(&mut js, "$JS.API.STREAM.PURGE.D", &Value::Null);
    assert_eq!(err_code(&v), 10110);
    let base = json!({"name": "D", "subjects": ["d"], "deny_delete": true, "deny_purge": true});
    let mut c = base.clone();
    c["deny_delete"] = json!(false);
    let v = api(&mut js, "$JS.API.STREAM.UPDATE.D", &c);
    assert_eq!(
        v["error"]["description"],
        "stream configuration update can not cancel deny message deletes"
    );
    let mut c = base.clone();
    c["sealed"] = json!(true);
    let v = api(&mut js, "$JS.API.STREAM.UPDATE.D", &c);
    assert_eq!(v["config"]["sealed"], true, "{v}");
    let out = put(&mut js, "d", "", "y");
    let ack: Value = serde_json::from_slice(&out[0].payload).unwrap();
    assert_eq!(err_code(&ack), 10109);
    let v = api(&mut js, "$JS.API.STREAM.UPDATE.D", &base);
    assert_eq!(
        v["error"]["description"],
        "stream configuration update can not unseal a sealed stream"
    );
}
