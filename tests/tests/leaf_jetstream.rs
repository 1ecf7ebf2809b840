//! JetStream across a leaf link: a hub and a leaf, each with its own JetStream domain (or one
//! of them without JetStream), for every pairing of natsd and nats-server 2.9.10 where both
//! behave the same, natsd–natsd only where nats-server 2.9.10 differs (each says why).
//! Interest crossing the link is awaited by polling with a deadline, never by sleeping.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::js::api;
use natsd_tests::{drain_ready, free_port, within, within_for, ServerKind, TestServer};
use serde_json::Value;

natsd_tests::leaf_pairs!(
    each_side_reaches_the_others_domain,
    a_leaf_without_jetstream_uses_the_hub_domain,
    nats_py_reaches_the_hub_domain
);

/// How long a link and the interest it carries may take to come up on a loaded machine.
const LINK_UP: Duration = Duration::from_secs(20);

/// A server's JetStream in a test: off, or on with an optional domain.
#[derive(Clone, Copy)]
enum Js<'a> {
    Off,
    On(Option<&'a str>),
}

fn js_block(js: Js<'_>, dir: &tempfile::TempDir) -> String {
    match js {
        Js::Off => String::new(),
        Js::On(domain) => format!(
            "jetstream {{ store_dir: {:?}{} }}\n",
            dir.path().to_str().unwrap(),
            domain.map(|d| format!(", domain: {d}")).unwrap_or_default()
        ),
    }
}

/// Servers and their store directories (dropped with them).
struct Pair {
    hub: TestServer,
    leaf: TestServer,
    _dirs: [tempfile::TempDir; 2],
}

/// A hub and a leaf dialing it, with the JetStream each is given.
async fn start_pair(hub: ServerKind, hub_js: Js<'_>, leaf: ServerKind, leaf_js: Js<'_>) -> Pair {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let port = free_port();
    let h = TestServer::start(
        hub,
        &format!(
            "server_name: hub\n{}leafnodes {{ listen: \"127.0.0.1:{port}\" }}\n",
            js_block(hub_js, &dirs[0])
        ),
    )
    .await;
    let l = TestServer::start(
        leaf,
        &format!(
            "server_name: leaf\n{}leafnodes {{ remotes: [ {{ url: \"nats://127.0.0.1:{port}\" }} ], reconnect: 1 }}\n",
            js_block(leaf_js, &dirs[1])
        ),
    )
    .await;
    Pair {
        hub: h,
        leaf: l,
        _dirs: dirs,
    }
}

/// Polls `subject` (a JetStream API request with an empty body) until a JetStream answers
/// it from `domain` (`None`: an answer without a domain); returns that answer.
async fn await_api(c: &async_nats::Client, subject: &str, domain: Option<&str>) -> Value {
    let deadline = tokio::time::Instant::now() + LINK_UP;
    loop {
        let asked = tokio::time::timeout(
            Duration::from_secs(2),
            c.request(subject.to_owned(), Bytes::new()),
        )
        .await;
        let last = match asked {
            Ok(Ok(m)) => {
                let v: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
                if v["type"].is_string() && v["domain"].as_str() == domain {
                    return v;
                }
                v.to_string()
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timeout".to_owned(),
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer from domain {domain:?} on {subject} within {LINK_UP:?}; last: {last}"
        );
        // A poll interval: the wait itself is bounded by the deadline above.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes through `js` until the stream's subject has crossed the link (the first tries
/// may find no responder); returns the ack's domain.
async fn publish_when_ready(js: &jetstream::Context, subject: &str, payload: &str) -> String {
    let deadline = tokio::time::Instant::now() + LINK_UP;
    loop {
        let sent = js
            .publish(
                subject.to_owned(),
                Bytes::copy_from_slice(payload.as_bytes()),
            )
            .await;
        let err = match sent {
            Ok(ack) => match within("publish ack", async { ack.await }).await {
                Ok(a) => return a.domain,
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "publish on {subject} not stored within {LINK_UP:?}: {err}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `$JS.API.INFO` and then `$JS.<other>.API.INFO` on one inbox: the local JetStream
/// answers the first, the other side the second, and nothing else arrives (the plain API did
/// not cross: the other side answers in order, so its answer to the first request would come
/// before its answer to the second).
async fn plain_api_stays_local(c: &async_nats::Client, local: &str, other: &str) {
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    c.publish_with_reply("$JS.API.INFO", inbox.clone(), Bytes::new())
        .await
        .unwrap();
    c.publish_with_reply(format!("$JS.{other}.API.INFO"), inbox, Bytes::new())
        .await
        .unwrap();
    c.flush().await.unwrap();
    let mut domains = Vec::new();
    // The two answers come in either order (the local one may take longer).
    while !(domains.iter().any(|d| d == local) && domains.iter().any(|d| d == other)) {
        let m = within("API.INFO answer", sub.next()).await.unwrap();
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        domains.push(v["domain"].as_str().unwrap_or("").to_owned());
    }
    // A ping through the server flushes anything still on its way.
    c.flush().await.unwrap();
    domains.extend(
        drain_ready(&mut sub)
            .iter()
            .map(|m| String::from_utf8_lossy(&m.payload).into_owned()),
    );
    domains.sort_by_key(|d| d != local);
    assert_eq!(domains, [local, other], "answers on one inbox");
}

/// Creates stream `name` on `subjects` through `js`.
async fn create_stream(js: &jetstream::Context, name: &str, subject: &str) -> stream::Stream {
    within(
        "stream create",
        js.create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![subject.to_owned()],
            storage: stream::StorageType::Memory,
            ..Default::default()
        }),
    )
    .await
    .unwrap()
}

/// Through the stream's context (the other side's domain): a durable pull consumer on `st`
/// fetches the `n` messages (as `subject=payload`) and acks each; the consumer then has
/// nothing pending (the acks crossed).
async fn fetch_and_ack(st: &stream::Stream, n: usize) -> Vec<String> {
    let cons = within(
        "consumer create",
        st.create_consumer(consumer::pull::Config {
            durable_name: Some("D".to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    let mut batch = within("fetch", cons.fetch().max_messages(n).messages())
        .await
        .unwrap();
    while got.len() < n {
        let m = within("fetched message", batch.next())
            .await
            .unwrap()
            .unwrap();
        // The subject the message was stored under, though it crossed under the pull
        // request's inbox.
        got.push(format!(
            "{}={}",
            m.subject,
            String::from_utf8_lossy(&m.payload)
        ));
        within("ack", m.double_ack()).await.unwrap();
    }
    let mut cons = cons;
    let info = within("consumer info", cons.info()).await.unwrap();
    assert_eq!(
        (
            info.num_ack_pending,
            info.num_pending,
            info.delivered.stream_sequence
        ),
        (0, 0, n as u64),
        "consumer state after the acks"
    );
    got
}

/// A push consumer on `st` (across the link) delivers its first message to this side's
/// deliver subject, showing the subject it was stored under; the ack crosses back.
async fn push_first(st: &stream::Stream, client: &async_nats::Client) -> String {
    let cons = within(
        "push consumer create",
        st.create_consumer(consumer::push::Config {
            durable_name: Some("P".to_owned()),
            deliver_subject: client.new_inbox(),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let mut msgs = within("push messages", cons.messages()).await.unwrap();
    let m = within("pushed message", msgs.next())
        .await
        .unwrap()
        .unwrap();
    within("ack", m.double_ack()).await.unwrap();
    format!("{}={}", m.subject, String::from_utf8_lossy(&m.payload))
}

/// `jetstream { domain: hub }` and `{ domain: leaf }`: a client on either side creates a
/// stream in the other's JetStream, publishes into it and consumes it with an acked pull
/// consumer, all through the other's domain; `$JS.API` stays each side's own.
async fn each_side_reaches_the_others_domain(hub: ServerKind, leaf: ServerKind) {
    let p = start_pair(hub, Js::On(Some("hub")), leaf, Js::On(Some("leaf"))).await;
    let (hc, lc) = (p.hub.client().await, p.leaf.client().await);
    await_api(&lc, "$JS.hub.API.INFO", Some("hub")).await;
    await_api(&hc, "$JS.leaf.API.INFO", Some("leaf")).await;
    plain_api_stays_local(&lc, "leaf", "hub").await;
    plain_api_stays_local(&hc, "hub", "leaf").await;

    // From the leaf, into the hub.
    let to_hub = jetstream::with_domain(lc.clone(), "hub");
    let st = create_stream(&to_hub, "ORDERS", "orders.>").await;
    assert_eq!(publish_when_ready(&to_hub, "orders.1", "o1").await, "hub");
    assert_eq!(publish_when_ready(&to_hub, "orders.2", "o2").await, "hub");
    assert_eq!(fetch_and_ack(&st, 2).await, ["orders.1=o1", "orders.2=o2"]);
    assert_eq!(push_first(&st, &lc).await, "orders.1=o1");
    // A KV bucket in the hub's domain: the client puts to `$JS.hub.API.$KV.B.<key>`. Only on
    // a natsd hub: against a nats-server 2.9.10 hub, async-nats's `create_key_value` fails
    // with an answer it cannot parse (a plain request on that subject is stored there).
    if hub == ServerKind::Natsd {
        let kv = within(
            "kv create",
            to_hub.create_key_value(jetstream::kv::Config {
                bucket: "B".to_owned(),
                storage: stream::StorageType::Memory,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
        within("kv put", kv.put("k", "v".into())).await.unwrap();
        let got = within("kv get", kv.get("k")).await.unwrap();
        assert_eq!(got.as_deref(), Some(&b"v"[..]));
    }

    // From the hub, into the leaf.
    let to_leaf = jetstream::with_domain(hc.clone(), "leaf");
    let st = create_stream(&to_leaf, "SENSORS", "sensors.>").await;
    assert_eq!(
        publish_when_ready(&to_leaf, "sensors.a", "s1").await,
        "leaf"
    );
    assert_eq!(fetch_and_ack(&st, 1).await, ["sensors.a=s1"]);
    assert_eq!(push_first(&st, &hc).await, "sensors.a=s1");

    // Each side's own API lists only its own stream.
    let names = |v: Value| -> Vec<String> {
        v["streams"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s["config"]["name"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let v = api(&hc, "$JS.API.STREAM.LIST", Value::Null).await;
    let hub_streams = names(v);
    assert!(
        hub_streams.contains(&"ORDERS".to_owned()),
        "{hub_streams:?}"
    );
    assert!(
        !hub_streams.contains(&"SENSORS".to_owned()),
        "{hub_streams:?}"
    );
    let v = api(&lc, "$JS.API.STREAM.LIST", Value::Null).await;
    assert_eq!(names(v), ["SENSORS"]);
}

/// A leaf without JetStream under a hub with `domain: hub`: the leaf's clients use the hub's
/// JetStream through its domain (nats-server 2.9.10 adds the domain's subjects as interest
/// on the link; natsd's hub tells the link of its JetStream's subscriptions).
async fn a_leaf_without_jetstream_uses_the_hub_domain(hub: ServerKind, leaf: ServerKind) {
    let p = start_pair(hub, Js::On(Some("hub")), leaf, Js::Off).await;
    let lc = p.leaf.client().await;
    await_api(&lc, "$JS.hub.API.INFO", Some("hub")).await;
    let js = jetstream::with_domain(lc.clone(), "hub");
    let st = create_stream(&js, "EVENTS", "events.>").await;
    assert_eq!(publish_when_ready(&js, "events.1", "e1").await, "hub");
    assert_eq!(fetch_and_ack(&st, 1).await, ["events.1=e1"]);
}

/// nats-py (`nc.jetstream(domain="hub")`) on the leaf: tests/py/leaf_domain.py creates a
/// stream in the hub's domain, publishes, fetches and acks (skipped without nats-py).
async fn nats_py_reaches_the_hub_domain(hub: ServerKind, leaf: ServerKind) {
    let probe = tokio::process::Command::new("python3")
        .args(["-c", "import nats"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    if !matches!(within_for(Duration::from_secs(20), "python3 probe", probe).await, Ok(s) if s.success())
    {
        eprintln!("note: python3 with nats-py is not available; test skipped");
        return;
    }
    let p = start_pair(hub, Js::On(Some("hub")), leaf, Js::On(Some("leaf"))).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("py")
        .join("leaf_domain.py");
    let run = tokio::process::Command::new("python3")
        .arg(script)
        .arg(p.leaf.url())
        .arg("hub")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = within_for(Duration::from_secs(45), "leaf_domain.py", run)
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("leaf domain ok"),
        "leaf_domain.py failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
}

/// natsd–natsd only: a leaf without JetStream reaches a hub's JetStream that has no domain
/// with plain `$JS.API` (and KV). nats-server 2.9.10 denies `$JS.API.>` on every link of a
/// non-system account, so there the leaf's clients need the hub's domain (previous test) or
/// a shared system account.
#[tokio::test]
async fn a_leaf_without_jetstream_uses_the_hubs_plain_api() {
    use ServerKind::Natsd;
    natsd_tests::leaf::run(Natsd, Natsd, |hub, leaf| async move {
        let p = start_pair(hub, Js::On(None), leaf, Js::Off).await;
        let lc = p.leaf.client().await;
        await_api(&lc, "$JS.API.INFO", None).await;
        let js = jetstream::new(lc.clone());
        let st = create_stream(&js, "EVENTS", "events.>").await;
        assert_eq!(publish_when_ready(&js, "events.1", "e1").await, "");
        assert_eq!(fetch_and_ack(&st, 1).await, ["events.1=e1"]);
        // The KV API too: a bucket made from the leaf lives on the hub.
        let kv = within(
            "kv create",
            js.create_key_value(jetstream::kv::Config {
                bucket: "B".to_owned(),
                storage: stream::StorageType::Memory,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
        within("kv put", kv.put("k", "v".into())).await.unwrap();
        let got = within("kv get", kv.get("k")).await.unwrap();
        assert_eq!(got.as_deref(), Some(&b"v"[..]));
        let hc = p.hub.client().await;
        let v = api(&hc, "$JS.API.STREAM.INFO.KV_B", Value::Null).await;
        assert_eq!(v["state"]["messages"], 1, "{v}");
    })
    .await;
}
