//! JetStream through the embedding API: enabled and disabled at runtime, recovered from disk
//! when enabled again, and one JetStream per account. natsd-only: these are library calls.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{start, test_options};
use natsd::Options;
use natsd_core::options::{AccountConfig, Authorization, JetStreamConfig, User};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(5);

/// A fresh store directory under the target dir, unique per test.
fn store_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("natsd-js-embed-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn js_cfg(dir: &std::path::Path) -> JetStreamConfig {
    JetStreamConfig {
        store_dir: Some(dir.to_owned()),
        ..JetStreamConfig::default()
    }
}

/// A request; `None` when nobody answered (no responders).
async fn req(c: &async_nats::Client, subject: &str, body: Value) -> Option<Value> {
    let r = tokio::time::timeout(
        T,
        c.request(subject.to_owned(), body.to_string().into_bytes().into()),
    )
    .await
    .expect("answer in time");
    match r {
        Ok(m) => Some(serde_json::from_slice(&m.payload).expect("json reply")),
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => None,
        Err(e) => panic!("request {subject}: {e}"),
    }
}

async fn create_stream(c: &async_nats::Client, name: &str, subject: &str) {
    let r = req(
        c,
        &format!("$JS.API.STREAM.CREATE.{name}"),
        json!({"name": name, "subjects": [subject], "storage": "file"}),
    )
    .await
    .expect("JetStream answers");
    assert!(r.get("error").is_none(), "create {name}: {r}");
}

async fn publish_acked(c: &async_nats::Client, subject: &str, body: &str) -> Value {
    let m = tokio::time::timeout(T, c.request(subject.to_owned(), body.to_owned().into()))
        .await
        .expect("ack in time")
        .expect("ack");
    serde_json::from_slice(&m.payload).expect("json ack")
}

#[tokio::test]
async fn enable_disable_reenable_recovers_streams() {
    let dir = store_dir("toggle");
    let s = start(test_options()).await;
    assert!(!s.jetstream_enabled());
    let c = async_nats::connect(s.client_url().unwrap()).await.unwrap();
    assert_eq!(req(&c, "$JS.API.INFO", json!({})).await, None);

    s.enable_jetstream(js_cfg(&dir)).unwrap();
    assert!(s.jetstream_enabled());
    assert!(s.enable_jetstream(js_cfg(&dir)).is_err(), "enabled twice");
    create_stream(&c, "ORDERS", "orders.>").await;
    for i in 1..=3 {
        let ack = publish_acked(&c, "orders.new", &format!("o{i}")).await;
        assert_eq!(ack["seq"], i, "{ack}");
    }
    assert_eq!(s.jsz().streams, 1);

    s.disable_jetstream().unwrap();
    assert!(!s.jetstream_enabled());
    assert!(s.jsz().disabled);
    assert_eq!(req(&c, "$JS.API.INFO", json!({})).await, None);
    assert_eq!(req(&c, "$JS.API.STREAM.INFO.ORDERS", json!({})).await, None);

    s.enable_jetstream(js_cfg(&dir)).unwrap();
    let info = req(&c, "$JS.API.STREAM.INFO.ORDERS", json!({}))
        .await
        .expect("JetStream answers again");
    assert_eq!(info["state"]["messages"], 3, "{info}");
    assert_eq!(info["state"]["last_seq"], 3, "{info}");
    let m = req(&c, "$JS.API.STREAM.MSG.GET.ORDERS", json!({"seq": 2}))
        .await
        .unwrap();
    assert!(m.get("error").is_none(), "{m}");
    let ack = publish_acked(&c, "orders.new", "o4").await;
    assert_eq!(ack["seq"], 4, "{ack}");
    assert!(s.jetstream_damage().is_empty());
    s.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

fn user(name: &str) -> User {
    User {
        username: Some(name.to_owned()),
        password: Some("pw".to_owned()),
        ..User::default()
    }
}

#[tokio::test]
async fn each_account_has_its_own_jetstream_and_store_dir() {
    let dir = store_dir("accounts");
    // `jetstream: enabled` with no limits of its own (Go: accounts need it for JetStream).
    let acct = |name: &str, u: &str| AccountConfig {
        name: name.to_owned(),
        users: vec![user(u)],
        jetstream: Some(Default::default()),
        ..AccountConfig::default()
    };
    let opts = Options {
        accounts: vec![acct("A", "a"), acct("B", "b")],
        authorization: Authorization::default(),
        jetstream: Some(js_cfg(&dir)),
        ..test_options()
    };
    let s = start(opts).await;
    let url = s.client_url().unwrap();
    let connect = |u: &'static str| {
        let url = url.clone();
        async move {
            async_nats::ConnectOptions::with_user_and_password(u.to_owned(), "pw".to_owned())
                .connect(url)
                .await
                .unwrap()
        }
    };
    let a = connect("a").await;
    let b = connect("b").await;
    create_stream(&a, "S", "s.>").await;
    let ack = publish_acked(&a, "s.1", "from-a").await;
    assert_eq!(ack["seq"], 1, "{ack}");

    // B sees none of A's streams, and can make its own of the same name.
    let names = req(&b, "$JS.API.STREAM.NAMES", json!({})).await.unwrap();
    assert_eq!(names["total"], 0, "{names}");
    create_stream(&b, "S", "s.>").await;
    let bi = req(&b, "$JS.API.STREAM.INFO.S", json!({})).await.unwrap();
    assert_eq!(bi["state"]["messages"], 0, "{bi}");
    let ai = req(&a, "$JS.API.STREAM.INFO.S", json!({})).await.unwrap();
    assert_eq!(ai["state"]["messages"], 1, "{ai}");

    for acc in ["A", "B"] {
        let meta = dir.join("jetstream").join(acc).join("meta");
        assert!(meta.join("S.json").exists(), "no stream meta in {meta:?}");
    }
    assert_eq!(s.jsz().streams, 2);
    s.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
