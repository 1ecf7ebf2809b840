use serde_json::{json, Value};

use crate::jetstream::factory::DiskFactory;
use crate::jetstream::service::{JetStream, JsSettings};
use crate::jetstream::store::{CrashMode, MemDisk, SyncPolicy};

const T0: u64 = 1_700_000_000_000_000_000;

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

fn err_code(v: &Value) -> u64 {
    v["error"]["err_code"].as_u64().unwrap_or(0)
}

fn create(js: &mut JetStream, cfg: &Value) -> Value {
    let name = cfg["name"].as_str().unwrap().to_owned();
    api(js, &format!("$JS.API.STREAM.CREATE.{name}"), cfg)
}

fn add_consumer(js: &mut JetStream, stream: &str, cfg: Value) -> Value {
    api(
        js,
        &format!("$JS.API.CONSUMER.CREATE.{stream}"),
        &json!({"stream_name": stream, "config": cfg}),
    )
}

fn fc_consumer(name: &str, deliver: &str) -> Value {
    json!({"durable_name": name, "deliver_subject": deliver, "ack_policy": "flow_control"})
}

fn msgs(js: &JetStream, stream: &str) -> u64 {
    js.stream(stream).unwrap().store.state().msgs
}

fn payloads(js: &JetStream, stream: &str) -> Vec<String> {
    let store = &js.stream(stream).unwrap().store;
    let mut out = Vec::new();
    let mut seq = 1;
    while let Ok(m) = store.load_next_msg("", seq) {
        seq = m.seq + 1;
        out.push(String::from_utf8_lossy(&m.payload).into_owned());
    }
    out
}

fn publish(js: &mut JetStream, from: usize, n: usize) {
    for i in from..from + n {
        js.publish(&format!("q.{i}"), None, b"", format!("m{i}").as_bytes(), T0);
    }
    js.commit(T0);
}

/// A WorkQueue origin `Q` with the consumer `SRC` (deliver `dq`), and `AGG` sourcing
/// through it.
fn setup(js: &mut JetStream, agg: Value) {
    let q = create(
        js,
        &json!({"name": "Q", "subjects": ["q.>"], "retention": "workqueue"}),
    );
    assert!(q.get("error").is_none(), "{q}");
    let c = add_consumer(js, "Q", fc_consumer("SRC", "dq"));
    assert!(c.get("error").is_none(), "{c}");
    let mut cfg = json!({"name": "AGG", "sources": [
        {"name": "Q", "consumer": {"name": "SRC", "deliver_subject": "dq"}}
    ]});
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, agg) {
        c.extend(e);
    }
    let a = create(js, &cfg);
    assert!(a.get("error").is_none(), "{a}");
}

#[test]
fn flow_control_ack_policy_defaults_and_rules() {
    let mut js = js_on(&MemDisk::new(1));
    create(&mut js, &json!({"name": "O", "subjects": ["o.>"]}));
    let v = add_consumer(&mut js, "O", fc_consumer("C", "dc"));
    let c = &v["config"];
    assert_eq!(c["ack_policy"], "flow_control", "{v}");
    assert_eq!(c["flow_control"], true);
    assert_eq!(c["idle_heartbeat"], 1_000_000_000u64);
    assert_eq!(c["max_ack_pending"], 1000);
    assert_eq!(c["max_deliver"], -1);
    assert!(c.get("ack_wait").is_none_or(|w| w == 0), "{c}");
    let bad = [
        (
            json!({"durable_name": "P", "ack_policy": "flow_control"}),
            10218,
        ),
        (
            json!({"durable_name": "P", "deliver_subject": "x", "ack_policy": "flow_control", "max_ack_pending": -1}),
            10220,
        ),
        (
            json!({"durable_name": "P", "deliver_subject": "x", "ack_policy": "flow_control", "ack_wait": 5_000_000_000u64}),
            10221,
        ),
        (
            json!({"durable_name": "P", "deliver_subject": "x", "ack_policy": "flow_control", "backoff": [1_000_000_000u64]}),
            10221,
        ),
        (
            json!({"durable_name": "P", "deliver_subject": "x", "ack_policy": "flow_control", "max_deliver": 5}),
            10222,
        ),
    ];
    for (cfg, code) in bad {
        let v = add_consumer(&mut js, "O", cfg.clone());
        assert_eq!(err_code(&v), code, "{cfg} -> {v}");
    }
}

#[test]
fn stream_config_rules_for_a_consumer_source() {
    let mut js = js_on(&MemDisk::new(1));
    let src = |extra: Value| {
        let mut s = json!({"name": "Q", "consumer": {"name": "SRC", "deliver_subject": "dq"}});
        if let (Value::Object(s), Value::Object(e)) = (&mut s, extra) {
            s.extend(e);
        }
        s
    };
    let cases = [
        (
            json!({"sources": [src(json!({"opt_start_seq": 5}))]}),
            10215,
        ),
        (
            json!({"sources": [src(json!({"filter_subject": "q.a"}))]}),
            10215,
        ),
        (
            json!({"sources": [src(json!({"opt_start_time": "2023-11-14T22:13:20Z"}))]}),
            10215,
        ),
        (
            json!({"sources": [{"name": "Q", "consumer": {"name": "SRC", "deliver_subject": "d.*"}}]}),
            10215,
        ),
        (
            json!({"sources": [{"name": "Q", "consumer": {"name": "S.C", "deliver_subject": "d"}}]}),
            10215,
        ),
        (
            json!({"mirror": {"name": "Q", "consumer": {"name": "SRC", "deliver_subject": ""}}}),
            10213,
        ),
        (json!({"mirror": src(json!({"opt_start_seq": 2}))}), 10213),
        // The same consumer for two sources of the stream (their transforms differ).
        (
            json!({"sources": [
                src(json!({"subject_transforms": [{"src": "q.a", "dest": "a"}]})),
                src(json!({"subject_transforms": [{"src": "q.b", "dest": "b"}]}))
            ]}),
            10216,
        ),
    ];
    for (extra, code) in cases {
        let mut cfg = json!({"name": "AGG"});
        if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
            c.extend(e);
        }
        let v = create(&mut js, &cfg);
        assert_eq!(err_code(&v), code, "{cfg} -> {v}");
    }
    let v = create(
        &mut js,
        &json!({"name": "AGG", "sources": [src(json!({}))]}),
    );
    assert_eq!(
        v["config"]["sources"][0]["consumer"],
        json!({"name": "SRC", "deliver_subject": "dq"}),
        "{v}"
    );
}

#[test]
fn workqueue_origin_is_emptied_only_as_copies_are_synced() {
    let mut js = js_on(&MemDisk::new(2));
    setup(&mut js, json!({}));
    publish(&mut js, 0, 5);
    assert_eq!(msgs(&js, "AGG"), 5);
    assert_eq!(msgs(&js, "Q"), 0);
    assert_eq!(payloads(&js, "AGG"), ["m0", "m1", "m2", "m3", "m4"]);
    let info = api(&mut js, "$JS.API.CONSUMER.INFO.Q.SRC", &Value::Null);
    assert_eq!(info["ack_floor"]["stream_seq"], 5, "{info}");
    assert_eq!(info["num_ack_pending"], 0);
    assert_eq!(info["push_bound"], true);

    // Copied but not yet synced: the origin keeps them until the sync.
    for i in 5..8 {
        js.publish(&format!("q.{i}"), None, b"", b"x", T0);
    }
    let _ = js.commit_begin(T0);
    assert_eq!(msgs(&js, "AGG"), 8);
    assert_eq!(js.stream("AGG").unwrap().store.synced_through(), 5);
    assert_eq!(msgs(&js, "Q"), 3, "acked before the copies were synced");
    js.commit(T0);
    assert_eq!(msgs(&js, "Q"), 0);
}

#[test]
fn crash_before_the_sync_loses_nothing_and_restart_copies_nothing_twice() {
    let disk = MemDisk::new(3);
    {
        let mut js = js_on(&disk);
        setup(&mut js, json!({}));
        publish(&mut js, 0, 4);
        assert_eq!(msgs(&js, "Q"), 0);
        // Origin synced, copies stored but not synced, then power lost.
        for i in 4..7 {
            js.publish(&format!("q.{i}"), None, b"", format!("m{i}").as_bytes(), T0);
        }
        let _ = js.commit_begin(T0);
        assert_eq!(msgs(&js, "AGG"), 7);
        assert_eq!(js.stream("AGG").unwrap().store.synced_through(), 4);
        assert_eq!(msgs(&js, "Q"), 3);
    }
    disk.crash(CrashMode::LoseUnsynced);
    let mut js = js_on(&disk);
    js.commit(T0);
    assert_eq!(
        payloads(&js, "AGG"),
        ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]
    );
    assert_eq!(msgs(&js, "Q"), 0);
    // A clean restart with copies made but never acked (the consumer's saved floor is
    // behind): the restart acks what the sourcing stream holds instead of copying it again.
    publish(&mut js, 7, 2);
    drop(js);
    let mut js = js_on(&disk);
    publish(&mut js, 9, 1);
    assert_eq!(payloads(&js, "AGG").len(), 10);
    assert_eq!(payloads(&js, "AGG")[9], "m9");
    assert_eq!(msgs(&js, "Q"), 0);
}

#[test]
fn full_sourcing_stream_leaves_the_rest_at_the_origin() {
    let mut js = js_on(&MemDisk::new(4));
    setup(&mut js, json!({"max_msgs": 3, "discard": "new"}));
    publish(&mut js, 0, 5);
    assert_eq!(msgs(&js, "AGG"), 3);
    assert_eq!(msgs(&js, "Q"), 2);
    api(&mut js, "$JS.API.STREAM.PURGE.AGG", &Value::Null);
    js.commit(T0);
    js.commit(T0);
    assert_eq!(payloads(&js, "AGG"), ["m3", "m4"]);
    assert_eq!(msgs(&js, "Q"), 0);
}

#[test]
fn missing_or_wrong_consumer_is_reported_and_sourcing_starts_once_fixed() {
    let mut js = js_on(&MemDisk::new(5));
    create(
        &mut js,
        &json!({"name": "Q", "subjects": ["q.>"], "retention": "interest"}),
    );
    create(
        &mut js,
        &json!({"name": "AGG", "sources": [{"name": "Q", "consumer": {"name": "SRC", "deliver_subject": "dq"}}]}),
    );
    create(
        &mut js,
        &json!({"name": "M", "mirror": {"name": "Q", "consumer": {"name": "EXP", "deliver_subject": "dm"}}}),
    );
    add_consumer(
        &mut js,
        "Q",
        json!({"durable_name": "EXP", "deliver_subject": "dm", "ack_policy": "explicit"}),
    );
    js.commit(T0);
    let agg = api(&mut js, "$JS.API.STREAM.INFO.AGG", &Value::Null);
    assert_eq!(agg["sources"][0]["error"]["err_code"], 10014, "{agg}");
    let m = api(&mut js, "$JS.API.STREAM.INFO.M", &Value::Null);
    assert_eq!(m["mirror"]["error"]["err_code"], 10214, "{m}");
    add_consumer(&mut js, "Q", fc_consumer("SRC", "dq"));
    publish(&mut js, 0, 3);
    assert_eq!(msgs(&js, "AGG"), 3);
    let agg = api(&mut js, "$JS.API.STREAM.INFO.AGG", &Value::Null);
    assert!(agg["sources"][0].get("error").is_none(), "{agg}");
    // Interest origin: EXP (explicit, never acked) still holds them.
    assert_eq!(msgs(&js, "Q"), 3);
    let info = api(&mut js, "$JS.API.CONSUMER.INFO.Q.SRC", &Value::Null);
    assert_eq!(info["ack_floor"]["stream_seq"], 3, "{info}");
}

#[test]
fn paused_consumer_holds_sourcing() {
    let mut js = js_on(&MemDisk::new(6));
    setup(&mut js, json!({}));
    let until = "2099-01-01T00:00:00Z";
    api(
        &mut js,
        "$JS.API.CONSUMER.PAUSE.Q.SRC",
        &json!({"pause_until": until}),
    );
    publish(&mut js, 0, 3);
    assert_eq!(msgs(&js, "AGG"), 0);
    assert_eq!(msgs(&js, "Q"), 3);
    api(&mut js, "$JS.API.CONSUMER.PAUSE.Q.SRC", &json!({}));
    js.commit(T0);
    assert_eq!(msgs(&js, "AGG"), 3);
    assert_eq!(msgs(&js, "Q"), 0);
}

#[test]
fn durable_source_in_another_account() {
    let mut a = js_on(&MemDisk::new(7));
    let mut b = js_on(&MemDisk::new(8));
    create(
        &mut a,
        &json!({"name": "Q", "subjects": ["q.>"], "retention": "workqueue"}),
    );
    add_consumer(&mut a, "Q", fc_consumer("SRC", "deliver.b.src"));
    let v = create(
        &mut b,
        &json!({"name": "AGG", "sources": [{"name": "Q",
            "external": {"api": "JS.A.API", "deliver": "deliver.b"},
            "consumer": {"name": "SRC", "deliver_subject": "deliver.b.src"}}]}),
    );
    assert!(v.get("error").is_none(), "{v}");
    // Not reached through the imports: inactive, no error.
    let cursors = b.durable_external_cursors();
    assert_eq!(cursors.len(), 1);
    assert!(b.external_cursors().is_empty());
    publish(&mut a, 0, 3);
    let (_, stored) = b.pull_durable_external(&cursors[0], None, T0, true);
    assert!(!stored);
    let (_, stored) = b.pull_durable_external(&cursors[0], Some(None), T0, true);
    assert!(!stored);
    let info = api(&mut b, "$JS.API.STREAM.INFO.AGG", &Value::Null);
    assert_eq!(info["sources"][0]["error"]["err_code"], 10039, "{info}");
    // Reached: copied, and acked at the origin once synced here.
    for _ in 0..3 {
        b.pull_durable_external(&cursors[0], Some(Some(&mut a)), T0, true);
        b.commit(T0);
        a.commit(T0);
    }
    assert_eq!(payloads(&b, "AGG"), ["m0", "m1", "m2"]);
    assert_eq!(msgs(&a, "Q"), 0);
    let info = api(&mut b, "$JS.API.STREAM.INFO.AGG", &Value::Null);
    assert!(info["sources"][0].get("error").is_none(), "{info}");
}
