use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::jetstream::factory::DiskFactory;
use crate::jetstream::service::JsSettings;
use crate::jetstream::store::{MemDisk, SyncPolicy};
use crate::options::ResponseType;
use crate::proto::headers::Headers;

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

fn create(js: &mut JetStream, name: &str, cfg: Value) -> Value {
    let mut c = json!({"name": name});
    if let (Value::Object(c), Value::Object(e)) = (&mut c, cfg) {
        c.extend(e);
    }
    api(js, &format!("$JS.API.STREAM.CREATE.{name}"), &c)
}

fn info(js: &mut JetStream, name: &str) -> Value {
    api(js, &format!("$JS.API.STREAM.INFO.{name}"), &Value::Null)
}

/// Publishes `n` messages on `orders.<i>` into `ORDERS` of `js` and commits them.
fn publish(js: &mut JetStream, from: usize, n: usize) {
    for i in from..from + n {
        js.publish(
            &format!("orders.{i}"),
            None,
            b"",
            format!("m{i}").as_bytes(),
            T0,
        );
    }
    js.commit(T0);
}

/// One round of every external cursor of `js` against `origin`.
fn pull(js: &mut JetStream, origin: Origin<'_>) -> bool {
    let mut stored = false;
    for c in js.external_cursors() {
        stored |= js.pull_external(&c, origin, T0, true).1;
    }
    js.commit(T0);
    stored
}

/// (subject, payload, Nats-Stream-Source) of every message of stream `name`.
fn contents(js: &JetStream, name: &str) -> Vec<(String, String, String)> {
    let store = &js.streams[name].stream.store;
    let mut out = Vec::new();
    let mut seq = 1;
    while let Ok(m) = store.load_next_msg("", seq) {
        seq = m.seq + 1;
        let src = Headers::parse(&m.headers)
            .ok()
            .and_then(|h| {
                h.get("Nats-Stream-Source")
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
            .unwrap_or_default();
        out.push((
            m.subject,
            String::from_utf8_lossy(&m.payload).into_owned(),
            src,
        ));
    }
    out
}

fn ext(api: &str, deliver: &str) -> Value {
    json!({"api": api, "deliver": deliver})
}

#[test]
fn iname_hashes_the_api_prefix_like_go() {
    let mut s = StreamSource {
        name: "ORDERS".into(),
        ..StreamSource::default()
    };
    assert_eq!(iname_base(&s), "ORDERS");
    s.external = Some(ExternalStream {
        api: "JS.A.API".into(),
        deliver: "deliver.b".into(),
    });
    // sha256("JS.A.API"), first eight bytes in Go's base-62 digits.
    assert_eq!(iname_base(&s), "ORDERS:3V17LQ3b");
    assert_eq!(
        crate::jetstream::stream::source_iname(&s),
        "ORDERS:3V17LQ3b > >"
    );
}

#[test]
fn prefixes_are_checked_like_go() {
    let mut js = js_on(&MemDisk::new(1));
    let code = |v: Value| v["error"]["err_code"].as_u64().unwrap_or(0);
    let src = |e: Value| json!({"sources": [{"name": "ORDERS", "external": e}]});
    assert_eq!(code(create(&mut js, "B", src(ext("$JS.API", "d")))), 10021);
    assert_eq!(code(create(&mut js, "B", src(ext("JS.*.API", "d")))), 10052);
    let v = create(&mut js, "B", src(ext("JS.A.API", "d.>")));
    assert_eq!(
        v["error"]["description"],
        "stream external delivery prefix d.> must not contain wildcards"
    );
    let mirror = json!({"mirror": {"name": "O", "external": ext("$JS.API", "")}});
    assert_eq!(code(create(&mut js, "M", mirror)), 10021);
    assert!(create(&mut js, "B", src(ext("JS.A.API", "d.b")))["error"].is_null());
}

fn accounts(service: bool, stream: bool) -> (Arc<Account>, Arc<Account>) {
    let (a, b) = (Account::new("A"), Account::new("B"));
    if service {
        Account::add_service_import(
            &a,
            &b,
            "$JS.API.>",
            Some("JS.A.API.>"),
            ResponseType::Singleton,
            Duration::from_secs(1),
        )
        .unwrap();
    }
    if stream {
        Account::add_stream_import(&a, &b, "deliver.b.>", None, None).unwrap();
    }
    (a, b)
}

#[test]
fn resolve_follows_the_imports() {
    let e = ExternalStream {
        api: "JS.A.API".into(),
        deliver: "deliver.b".into(),
    };
    let (a, b) = accounts(true, true);
    assert!(
        matches!(resolve(&b, None, &e, "ORDERS", false), Route::Account(x) if Arc::ptr_eq(&x, &a))
    );
    assert!(matches!(
        resolve(&b, None, &e, "ORDERS", true),
        Route::Account(_)
    ));
    // A trailing dot is tolerated, as Go folds "..".
    let dotted = ExternalStream {
        api: "JS.A.API.".into(),
        ..e.clone()
    };
    assert!(matches!(
        resolve(&b, None, &dotted, "ORDERS", false),
        Route::Account(_)
    ));
    // Another prefix, or a missing half of the import pair: nothing reaches A.
    let other = ExternalStream {
        api: "JS.C.API".into(),
        ..e.clone()
    };
    assert!(matches!(
        resolve(&b, None, &other, "ORDERS", false),
        Route::Unreachable
    ));
    let (_, b) = accounts(true, false);
    assert!(matches!(
        resolve(&b, None, &e, "ORDERS", false),
        Route::Unreachable
    ));
    let (_, b) = accounts(false, true);
    assert!(matches!(
        resolve(&b, None, &e, "ORDERS", false),
        Route::Unreachable
    ));
    // Imports only go one way: A does not reach B through them.
    let (a, _) = accounts(true, true);
    assert!(matches!(
        resolve(&a, None, &e, "ORDERS", false),
        Route::Unreachable
    ));
    // The server's own domain is the account's own API.
    let d = ExternalStream {
        api: "$JS.hub.API".into(),
        deliver: String::new(),
    };
    assert!(matches!(
        resolve(&a, Some("hub"), &d, "ORDERS", false),
        Route::Local
    ));
    assert!(matches!(
        resolve(&a, Some("leaf"), &d, "ORDERS", false),
        Route::Unreachable
    ));
}

#[test]
fn source_and_mirror_copy_from_another_account() {
    let mut a = js_on(&MemDisk::new(1));
    let mut b = js_on(&MemDisk::new(2));
    assert!(create(&mut a, "ORDERS", json!({"subjects": ["orders.>"]}))["error"].is_null());
    publish(&mut a, 0, 3);
    let e = ext("JS.A.API", "deliver.b");
    let v = create(
        &mut b,
        "S",
        json!({"subjects": ["local"], "sources": [{"name": "ORDERS", "external": e}]}),
    );
    assert!(v["error"].is_null(), "{v}");
    let v = create(
        &mut b,
        "M",
        json!({"mirror": {"name": "ORDERS", "external": e, "filter_subject": "orders.1"}}),
    );
    assert!(v["error"].is_null(), "{v}");
    assert_eq!(b.external_cursors().len(), 2);

    // No import: inactive, no error, nothing copied; the stream takes its own publishes.
    assert!(!pull(&mut b, Origin::Unreachable));
    let i = info(&mut b, "S");
    assert_eq!(i["sources"][0]["active"], -1);
    assert!(i["sources"][0]["error"].is_null());
    b.publish("local", None, b"", b"own", T0);
    b.commit(T0);
    assert_eq!(info(&mut b, "S")["state"]["messages"], 1);

    assert!(pull(&mut b, Origin::Other(&a)));
    let got = contents(&b, "S");
    assert_eq!(got.len(), 4);
    for (i, (subj, payload, src)) in got[1..].iter().enumerate() {
        assert_eq!(subj, &format!("orders.{i}"));
        assert_eq!(payload, &format!("m{i}"));
        assert_eq!(src, &format!("ORDERS:3V17LQ3b {} > > orders.{i}", i + 1));
    }
    // The mirror keeps the origin sequence of what its filter lets through.
    let m = &b.streams["M"].stream.store;
    assert_eq!(m.load_next_msg("", 1).unwrap().seq, 2);
    let i = info(&mut b, "S");
    assert_eq!(i["sources"][0]["lag"], 0);
    assert_eq!(i["sources"][0]["active"], 0);
    assert_eq!(i["sources"][0]["external"], e);

    // Only new messages follow; nothing twice.
    publish(&mut a, 3, 2);
    assert!(pull(&mut b, Origin::Other(&a)));
    assert!(!pull(&mut b, Origin::Other(&a)));
    assert_eq!(contents(&b, "S").len(), 6);
}

#[test]
fn missing_origin_shows_an_error_and_recovers() {
    let mut a = js_on(&MemDisk::new(1));
    let mut b = js_on(&MemDisk::new(2));
    let e = ext("JS.A.API", "deliver.b");
    create(
        &mut b,
        "S",
        json!({"sources": [{"name": "ORDERS", "external": e}]}),
    );
    assert!(!pull(&mut b, Origin::Other(&a)));
    let v = info(&mut b, "S");
    assert_eq!(
        v["sources"][0]["error"],
        json!({"code": 404, "err_code": 10059, "description": "stream not found"})
    );
    assert!(!pull(&mut b, Origin::NoJetStream));
    assert_eq!(info(&mut b, "S")["sources"][0]["error"]["err_code"], 10039);
    create(&mut a, "ORDERS", json!({"subjects": ["orders.>"]}));
    publish(&mut a, 0, 2);
    assert!(pull(&mut b, Origin::Other(&a)));
    assert!(info(&mut b, "S")["sources"][0]["error"].is_null());
    assert_eq!(contents(&b, "S").len(), 2);
}

#[test]
fn own_domain_sources_a_local_stream() {
    let mut b = js_on(&MemDisk::new(2));
    create(&mut b, "ORDERS", json!({"subjects": ["orders.>"]}));
    publish(&mut b, 0, 2);
    let e = ext("$JS.hub.API", "");
    create(
        &mut b,
        "S",
        json!({"sources": [{"name": "ORDERS", "external": e}]}),
    );
    assert!(pull(&mut b, Origin::Local));
    let got = contents(&b, "S");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].2, "ORDERS:bTMUkJQk 2 > > orders.1");
    // A stream cannot read itself through its own domain.
    let v = create(
        &mut b,
        "T",
        json!({"subjects": ["t"], "sources": [{"name": "T", "external": e}]}),
    );
    assert!(v["error"].is_null(), "{v}");
    b.publish("t", None, b"", b"x", T0);
    b.commit(T0);
    pull(&mut b, Origin::Local);
    assert_eq!(contents(&b, "T").len(), 1);
}

#[test]
fn source_resumes_after_restart_without_duplicates() {
    let mut a = js_on(&MemDisk::new(1));
    let disk = MemDisk::new(2);
    create(&mut a, "ORDERS", json!({"subjects": ["orders.>"]}));
    publish(&mut a, 0, 3);
    let e = ext("JS.A.API", "deliver.b");
    {
        let mut b = js_on(&disk);
        create(
            &mut b,
            "S",
            json!({"sources": [{"name": "ORDERS", "external": e}]}),
        );
        create(
            &mut b,
            "M",
            json!({"mirror": {"name": "ORDERS", "external": e}}),
        );
        assert!(pull(&mut b, Origin::Other(&a)));
    }
    publish(&mut a, 3, 2);
    let mut b = js_on(&disk);
    assert!(pull(&mut b, Origin::Other(&a)));
    assert!(!pull(&mut b, Origin::Other(&a)));
    for name in ["S", "M"] {
        let got = contents(&b, name);
        let payloads: Vec<&str> = got.iter().map(|g| g.1.as_str()).collect();
        assert_eq!(payloads, ["m0", "m1", "m2", "m3", "m4"], "{name}");
    }
}
