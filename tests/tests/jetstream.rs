//! JetStream on one server: enablement, the stream API, publish acks, consumers and KV,
//! each scenario run against natsd and nats-server with async-nats.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::HeaderMap;
use futures::StreamExt;
use natsd_tests::js::{api, err_code, js_server};
use natsd_tests::{both, within, ServerKind, TestServer};
use serde_json::{json, Value};

both!(
    enabled_in_info,
    account_info,
    config_block_enables,
    stream_create_info_delete,
    stream_errors,
    publish_acks_and_dedup,
    expected_headers,
    limits_enforced,
    msg_get_delete_purge,
    direct_get,
    rollup,
    names_and_list,
    pull_consumer_fetch_ack,
    pull_no_wait_and_expiry,
    nak_and_redelivery,
    deliver_policies,
    consumer_errors,
    file_stream_survives_restart,
    stream_update,
    max_age_expires,
    ack_all_and_max_ack_pending,
    cluster_calls_on_a_single_server,
    null_body_on_names_and_list,
    unknown_api_subject_is_not_answered,
);

async fn enabled_in_info(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    assert!(c.server_info().jetstream);
    let plain = TestServer::start(kind, "").await;
    assert!(!plain.client().await.server_info().jetstream);
}

async fn account_info(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = api(&c, "$JS.API.INFO", Value::Null).await;
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.account_info_response");
    assert_eq!(v["streams"], 0);
    assert_eq!(v["consumers"], 0);
    assert_eq!(v["limits"]["max_streams"], -1);
    if kind == ServerKind::Natsd {
        // async-nats wants 2.10's reserved_* fields, which nats-server 2.9 does not send.
        let js = jetstream::new(c);
        let info = within("query_account", js.query_account()).await.unwrap();
        assert_eq!(info.streams, 0);
    }
}

async fn config_block_enables(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let conf = format!(
        "jetstream {{ store_dir: {:?}, max_file_store: 1GB }}",
        sd.path().to_str().unwrap()
    );
    let s = TestServer::start(kind, &conf).await;
    assert!(s.client().await.server_info().jetstream);
    let s2 = TestServer::start(kind, "jetstream: enabled").await;
    assert!(s2.client().await.server_info().jetstream);
}

async fn stream_create_info_delete(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = api(
        &c,
        "$JS.API.STREAM.CREATE.ORDERS",
        json!({"name": "ORDERS", "subjects": ["orders.>"], "storage": "memory"}),
    )
    .await;
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.stream_create_response");
    assert_eq!(v["config"]["name"], "ORDERS");
    assert_eq!(v["config"]["max_msgs"], -1);
    assert_eq!(v["config"]["duplicate_window"], 120_000_000_000u64);
    assert_eq!(v["state"]["messages"], 0);
    // Same config again: idempotent.
    let again = api(
        &c,
        "$JS.API.STREAM.CREATE.ORDERS",
        json!({"name": "ORDERS", "subjects": ["orders.>"], "storage": "memory"}),
    )
    .await;
    assert!(again.get("error").is_none(), "{again}");
    let js = jetstream::new(c.clone());
    let mut st = js.get_stream("ORDERS").await.unwrap();
    assert_eq!(st.info().await.unwrap().config.subjects, vec!["orders.>"]);
    let v = api(&c, "$JS.API.STREAM.DELETE.ORDERS", Value::Null).await;
    assert_eq!(v["success"], true);
    let v = api(&c, "$JS.API.STREAM.INFO.ORDERS", Value::Null).await;
    assert_eq!(err_code(&v), 10059);
    assert_eq!(v["error"]["code"], 404);
    assert_eq!(v["error"]["description"], "stream not found");
}

async fn stream_errors(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let mk = |n: &str, subj: &str| json!({"name": n, "subjects": [subj], "storage": "memory"});
    let v = api(&c, "$JS.API.STREAM.CREATE.A", mk("B", "b")).await;
    assert_eq!(err_code(&v), 10056, "{v}");
    let v = api(&c, "$JS.API.STREAM.CREATE.A", mk("A", "a.>")).await;
    assert!(v.get("error").is_none(), "{v}");
    let v = api(&c, "$JS.API.STREAM.CREATE.C", mk("C", "a.b")).await;
    assert_eq!(err_code(&v), 10065, "{v}");
    let v = api(&c, "$JS.API.STREAM.CREATE.A", mk("A", "x")).await;
    assert_eq!(err_code(&v), 10058, "{v}");
    let m = within(
        "bad json",
        c.request("$JS.API.STREAM.CREATE.D", "{\"name\": ".into()),
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(err_code(&v), 10025, "{v}");
    for (subject, code) in [
        ("$JS.API.STREAM.INFO.NOPE", 10059),
        ("$JS.API.STREAM.DELETE.NOPE", 10059),
        ("$JS.API.STREAM.PURGE.NOPE", 10059),
    ] {
        let v = api(&c, subject, Value::Null).await;
        assert_eq!(err_code(&v), code, "{subject}: {v}");
    }
    let v = api(
        &c,
        "$JS.API.STREAM.CREATE.E",
        json!({"name": "E", "subjects": ["e"], "num_replicas": 3}),
    )
    .await;
    assert_eq!(err_code(&v), 10074, "{v}");
}

async fn publish_acks_and_dedup(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    js.create_stream(stream::Config {
        name: "EV".into(),
        subjects: vec!["ev.*".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 1..=3u64 {
        let ack = js.publish("ev.a", "x".into()).await.unwrap().await.unwrap();
        assert_eq!(ack.stream, "EV");
        assert_eq!(ack.sequence, i);
        assert!(!ack.duplicate);
    }
    let mut h = HeaderMap::new();
    h.insert("Nats-Msg-Id", "m1");
    let a = js
        .publish_with_headers("ev.b", h.clone(), "1".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let b = js
        .publish_with_headers("ev.b", h, "1".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(a.sequence, 4);
    assert_eq!(b.sequence, 4);
    assert!(b.duplicate);
    let mut st = js.get_stream("EV").await.unwrap();
    assert_eq!(st.info().await.unwrap().state.messages, 4);
}

async fn expected_headers(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    js.create_stream(stream::Config {
        name: "X".into(),
        subjects: vec!["x.>".into()],
        storage: stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish("x.a", "1".into()).await.unwrap().await.unwrap();
    let raw = |hdrs: &[(&str, &str)]| {
        let mut h = HeaderMap::new();
        for (k, v) in hdrs {
            h.insert(*k, *v);
        }
        h
    };
    let req = |subject: &'static str, h: HeaderMap| {
        let c = c.clone();
        async move {
            let m = within("pub", c.request_with_headers(subject, h, "v".into()))
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&m.payload).unwrap()
        }
    };
    let v = req("x.a", raw(&[("Nats-Expected-Stream", "Y")])).await;
    assert_eq!(err_code(&v), 10060, "{v}");
    let v = req("x.a", raw(&[("Nats-Expected-Last-Sequence", "7")])).await;
    assert_eq!(err_code(&v), 10071, "{v}");
    assert_eq!(v["error"]["description"], "wrong last sequence: 1");
    let v = req("x.a", raw(&[("Nats-Expected-Last-Sequence", "1")])).await;
    assert_eq!(v["seq"], 2, "{v}");
    let v = req("x.b", raw(&[("Nats-Expected-Last-Subject-Sequence", "1")])).await;
    assert_eq!(err_code(&v), 10071, "{v}");
    let v = req("x.b", raw(&[("Nats-Expected-Last-Subject-Sequence", "0")])).await;
    assert_eq!(v["seq"], 3, "{v}");
    let v = req("x.c", raw(&[("Nats-Msg-Id", "a")])).await;
    assert_eq!(v["seq"], 4, "{v}");
    let v = req("x.c", raw(&[("Nats-Expected-Last-Msg-Id", "zzz")])).await;
    assert_eq!(err_code(&v), 10070, "{v}");
    let v = req("x.c", raw(&[("Nats-Expected-Last-Msg-Id", "a")])).await;
    assert_eq!(v["seq"], 5, "{v}");
}

async fn limits_enforced(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    let mut st = js
        .create_stream(stream::Config {
            name: "L".into(),
            subjects: vec!["l.*".into()],
            max_messages: 3,
            max_messages_per_subject: 2,
            max_message_size: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    for _ in 0..3 {
        js.publish("l.a", "x".into()).await.unwrap().await.unwrap();
    }
    js.publish("l.b", "x".into()).await.unwrap().await.unwrap();
    let info = st.info().await.unwrap();
    assert_eq!(info.state.messages, 3);
    assert_eq!(info.state.first_sequence, 2);
    let m = within("big", c.request("l.c", vec![b'z'; 200].into()))
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(err_code(&v), 10054, "{v}");
    // Discard new refuses at the limit.
    let v = api(
        &c,
        "$JS.API.STREAM.CREATE.N",
        json!({"name": "N", "subjects": ["n"], "max_msgs": 1, "discard": "new", "storage": "memory"}),
    )
    .await;
    assert!(v.get("error").is_none(), "{v}");
    js.publish("n", "1".into()).await.unwrap().await.unwrap();
    let m = within("full", c.request("n", "2".into())).await.unwrap();
    let v: Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(err_code(&v), 10077, "{v}");
}

async fn msg_get_delete_purge(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    let st = js
        .create_stream(stream::Config {
            name: "M".into(),
            subjects: vec!["m.*".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    for subj in ["m.a", "m.b", "m.a"] {
        js.publish(subj, subj.into()).await.unwrap().await.unwrap();
    }
    let raw = st.get_raw_message(2).await.unwrap();
    assert_eq!(raw.subject.as_str(), "m.b");
    assert_eq!(&raw.payload[..], b"m.b");
    let last = st.get_last_raw_message_by_subject("m.a").await.unwrap();
    assert_eq!(last.sequence, 3);
    let v = api(&c, "$JS.API.STREAM.MSG.GET.M", json!({"seq": 9})).await;
    assert_eq!(err_code(&v), 10037, "{v}");
    assert!(st.delete_message(2).await.unwrap());
    let v = api(&c, "$JS.API.STREAM.MSG.GET.M", json!({"seq": 2})).await;
    assert_eq!(err_code(&v), 10037, "{v}");
    let p = st.purge().filter("m.a").await.unwrap();
    assert_eq!(p.purged, 2);
    let v = api(&c, "$JS.API.STREAM.INFO.M", Value::Null).await;
    assert_eq!(v["state"]["messages"], 0);
    assert_eq!(v["state"]["last_seq"], 3);
}

async fn direct_get(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    js.create_stream(stream::Config {
        name: "D".into(),
        subjects: vec!["d.>".into()],
        allow_direct: true,
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish("d.x", "one".into())
        .await
        .unwrap()
        .await
        .unwrap();
    js.publish("d.y", "two".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let m = within(
        "direct",
        c.request("$JS.API.DIRECT.GET.D", r#"{"seq":1}"#.into()),
    )
    .await
    .unwrap();
    let h = m.headers.unwrap();
    assert_eq!(h.get("Nats-Stream").unwrap().as_str(), "D");
    assert_eq!(h.get("Nats-Sequence").unwrap().as_str(), "1");
    assert_eq!(h.get("Nats-Subject").unwrap().as_str(), "d.x");
    assert!(h.get("Nats-Time-Stamp").is_some());
    assert_eq!(&m.payload[..], b"one");
    let m = within(
        "direct subj",
        c.request("$JS.API.DIRECT.GET.D.d.y", bytes::Bytes::new()),
    )
    .await
    .unwrap();
    assert_eq!(&m.payload[..], b"two");
    let m = within(
        "direct missing",
        c.request("$JS.API.DIRECT.GET.D", r#"{"seq":7}"#.into()),
    )
    .await
    .unwrap();
    assert_eq!(m.status.unwrap().as_u16(), 404);
}

async fn rollup(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    let mut st = js
        .create_stream(stream::Config {
            name: "R".into(),
            subjects: vec!["r.*".into()],
            allow_rollup: true,
            ..Default::default()
        })
        .await
        .unwrap();
    for subj in ["r.a", "r.a", "r.b"] {
        js.publish(subj, "v".into()).await.unwrap().await.unwrap();
    }
    let mut h = HeaderMap::new();
    h.insert("Nats-Rollup", "sub");
    js.publish_with_headers("r.a", h, "sum".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(st.info().await.unwrap().state.messages, 2);
    let mut h = HeaderMap::new();
    h.insert("Nats-Rollup", "all");
    js.publish_with_headers("r.c", h, "all".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let info = st.info().await.unwrap();
    assert_eq!(info.state.messages, 1);
    assert_eq!(info.state.first_sequence, 5);
}

async fn names_and_list(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    for n in ["A", "B", "C"] {
        js.create_stream(stream::Config {
            name: n.into(),
            subjects: vec![format!("{}.>", n.to_lowercase())],
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let names: Vec<String> = js.stream_names().map(|r| r.unwrap()).collect().await;
    assert_eq!(names.len(), 3);
    let v = api(&c, "$JS.API.STREAM.NAMES", json!({"subject": "b.x"})).await;
    assert_eq!(v["streams"], json!(["B"]), "{v}");
    let v = api(&c, "$JS.API.STREAM.LIST", Value::Null).await;
    assert_eq!(v["total"], 3);
    assert_eq!(v["streams"].as_array().unwrap().len(), 3);
}

async fn make_stream(js: &jetstream::Context, n: usize) -> stream::Stream {
    let st = js
        .create_stream(stream::Config {
            name: "W".into(),
            subjects: vec!["w.*".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    for i in 0..n {
        let subj = if i % 2 == 0 { "w.even" } else { "w.odd" };
        js.publish(subj, format!("{i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    st
}

async fn pull_consumer_fetch_ack(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    let st = make_stream(&js, 5).await;
    let cons: consumer::PullConsumer = st
        .create_consumer(consumer::pull::Config {
            durable_name: Some("d".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut msgs = cons.fetch().max_messages(3).messages().await.unwrap();
    let mut got = Vec::new();
    while let Some(m) = within("fetch", msgs.next()).await {
        let m = m.unwrap();
        got.push(String::from_utf8(m.payload.to_vec()).unwrap());
        m.ack().await.unwrap();
    }
    assert_eq!(got, ["0", "1", "2"]);
    let mut cons = cons;
    let info = cons.info().await.unwrap().clone();
    assert_eq!(info.num_pending, 2);
    assert_eq!(info.delivered.stream_sequence, 3);
    let mut batch = cons
        .batch()
        .max_messages(10)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .unwrap();
    let mut rest = Vec::new();
    while let Some(m) = within("batch", batch.next()).await {
        let m = m.unwrap();
        rest.push(String::from_utf8(m.payload.to_vec()).unwrap());
        m.double_ack().await.unwrap();
    }
    assert_eq!(rest, ["3", "4"]);
    let info = cons.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.ack_floor.stream_sequence, 5);
}

async fn pull_no_wait_and_expiry(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    let st = make_stream(&js, 1).await;
    st.create_consumer(consumer::pull::Config {
        durable_name: Some("p".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    c.publish_with_reply(
        "$JS.API.CONSUMER.MSG.NEXT.W.p",
        inbox.clone(),
        r#"{"batch":5,"no_wait":true}"#.into(),
    )
    .await
    .unwrap();
    let m = within("msg", sub.next()).await.unwrap();
    assert_eq!(&m.payload[..], b"0");
    let m = within("status", sub.next()).await.unwrap();
    let st408 = m.status.unwrap().as_u16();
    assert!(st408 == 408 || st408 == 404, "{st408}");
    c.publish_with_reply(
        "$JS.API.CONSUMER.MSG.NEXT.W.p",
        inbox.clone(),
        r#"{"batch":1,"no_wait":true}"#.into(),
    )
    .await
    .unwrap();
    let m = within("404", sub.next()).await.unwrap();
    assert_eq!(m.status.unwrap().as_u16(), 404);
    c.publish_with_reply(
        "$JS.API.CONSUMER.MSG.NEXT.W.p",
        inbox.clone(),
        r#"{"batch":1,"expires":200000000}"#.into(),
    )
    .await
    .unwrap();
    let m = within("408", sub.next()).await.unwrap();
    assert_eq!(m.status.unwrap().as_u16(), 408);
}

async fn nak_and_redelivery(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    let st = make_stream(&js, 1).await;
    let cons: consumer::PullConsumer = st
        .create_consumer(consumer::pull::Config {
            durable_name: Some("r".into()),
            ack_wait: Duration::from_millis(300),
            max_deliver: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let fetch_one = || async {
        let mut b = cons
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(3))
            .messages()
            .await
            .unwrap();
        within("one", b.next()).await.unwrap().unwrap()
    };
    let m = fetch_one().await;
    assert_eq!(m.info().unwrap().delivered, 1);
    m.ack_with(jetstream::AckKind::Nak(None)).await.unwrap();
    let m = fetch_one().await;
    assert_eq!(m.info().unwrap().delivered, 2);
    // No ack: redelivered after ack_wait.
    let m = fetch_one().await;
    assert_eq!(m.info().unwrap().delivered, 3);
    m.ack_with(jetstream::AckKind::Term).await.unwrap();
    let mut cons = cons;
    within("acked", async {
        loop {
            if cons.info().await.unwrap().num_ack_pending == 0 {
                break;
            }
        }
    })
    .await;
}

async fn deliver_policies(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    let st = make_stream(&js, 6).await;
    let first = |c: consumer::PullConsumer| async move {
        let mut b = c.fetch().max_messages(10).messages().await.unwrap();
        let mut v = Vec::new();
        while let Some(m) = within("fetch", b.next()).await {
            let m = m.unwrap();
            v.push(m.info().unwrap().stream_sequence);
        }
        v
    };
    let mk = |name: &str, policy: consumer::DeliverPolicy, filter: &str| consumer::pull::Config {
        durable_name: Some(name.into()),
        deliver_policy: policy,
        filter_subject: filter.into(),
        ack_policy: consumer::AckPolicy::None,
        ..Default::default()
    };
    let c = st
        .create_consumer(mk("all", consumer::DeliverPolicy::All, "w.odd"))
        .await
        .unwrap();
    assert_eq!(first(c).await, [2, 4, 6]);
    let c = st
        .create_consumer(mk("last", consumer::DeliverPolicy::Last, ""))
        .await
        .unwrap();
    assert_eq!(first(c).await, [6]);
    let c = st
        .create_consumer(mk("new", consumer::DeliverPolicy::New, ""))
        .await
        .unwrap();
    assert!(first(c).await.is_empty());
    let c = st
        .create_consumer(mk(
            "seq",
            consumer::DeliverPolicy::ByStartSequence { start_sequence: 4 },
            "",
        ))
        .await
        .unwrap();
    assert_eq!(first(c).await, [4, 5, 6]);
    let c = st
        .create_consumer(mk("lps", consumer::DeliverPolicy::LastPerSubject, "w.*"))
        .await
        .unwrap();
    assert_eq!(first(c).await, [5, 6]);
    // nats-server 2.9 wants a filter with last_per_subject.
    let e = st
        .create_consumer(mk("lps2", consumer::DeliverPolicy::LastPerSubject, ""))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("10094"), "{e}");
}

async fn consumer_errors(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    make_stream(&js, 0).await;
    let v = api(&c, "$JS.API.CONSUMER.INFO.W.nope", Value::Null).await;
    assert_eq!(err_code(&v), 10014, "{v}");
    let v = api(&c, "$JS.API.CONSUMER.INFO.NOPE.x", Value::Null).await;
    assert_eq!(err_code(&v), 10059, "{v}");
    let v = api(
        &c,
        "$JS.API.CONSUMER.CREATE.W.a",
        json!({"stream_name": "W", "config": {"durable_name": "b", "ack_policy": "explicit"}}),
    )
    .await;
    assert!(err_code(&v) != 0, "{v}");
    let v = api(
        &c,
        "$JS.API.CONSUMER.CREATE.W",
        json!({"stream_name": "W", "config": {"filter_subject": "zzz", "ack_policy": "explicit"}}),
    )
    .await;
    assert_eq!(err_code(&v), 10093, "{v}");
    let v = api(
        &c,
        "$JS.API.CONSUMER.CREATE.W.a.w.odd",
        json!({"stream_name": "W", "config": {"name": "a", "filter_subject": "w.even", "ack_policy": "explicit"}}),
    )
    .await;
    assert_eq!(err_code(&v), 10131, "{v}");
    let v = api(
        &c,
        "$JS.API.CONSUMER.CREATE.W.ok",
        json!({"stream_name": "W", "config": {"name": "ok", "ack_policy": "explicit"}}),
    )
    .await;
    assert_eq!(
        v["type"], "io.nats.jetstream.api.v1.consumer_create_response",
        "{v}"
    );
    assert_eq!(v["config"]["ack_wait"], 30_000_000_000u64);
    let v = api(&c, "$JS.API.CONSUMER.NAMES.W", Value::Null).await;
    assert_eq!(v["consumers"], json!(["ok"]), "{v}");
    let v = api(&c, "$JS.API.CONSUMER.DELETE.W.ok", Value::Null).await;
    assert_eq!(v["success"], true, "{v}");
    let v = api(&c, "$JS.API.CONSUMER.DELETE.W.ok", Value::Null).await;
    assert_eq!(err_code(&v), 10014, "{v}");
}

async fn file_stream_survives_restart(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let path = sd.path().to_str().unwrap().to_owned();
    {
        let s = TestServer::start_with_args(kind, "", &["-js", "-sd", &path]).await;
        let js = jetstream::new(s.client().await);
        js.create_stream(stream::Config {
            name: "P".into(),
            subjects: vec!["p".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        for i in 0..10 {
            js.publish("p", format!("{i}").into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        let st = js.get_stream("P").await.unwrap();
        let cons: consumer::PullConsumer = st
            .create_consumer(consumer::pull::Config {
                durable_name: Some("keep".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut b = cons.fetch().max_messages(3).messages().await.unwrap();
        while let Some(m) = within("fetch", b.next()).await {
            m.unwrap().double_ack().await.unwrap();
        }
    }
    let s = TestServer::start_with_args(kind, "", &["-js", "-sd", &path]).await;
    let js = jetstream::new(s.client().await);
    let mut st = within("get", js.get_stream("P")).await.unwrap();
    let info = st.info().await.unwrap();
    assert_eq!(info.state.messages, 10);
    assert_eq!(info.state.last_sequence, 10);
    let m = st.get_raw_message(10).await.unwrap();
    assert_eq!(&m.payload[..], b"9");
    // The durable consumer resumes after what it acknowledged.
    let cons: consumer::PullConsumer = st.get_consumer("keep").await.unwrap();
    let mut b = cons.fetch().max_messages(1).messages().await.unwrap();
    let m = within("resume", b.next()).await.unwrap().unwrap();
    assert_eq!(&m.payload[..], b"3");
}

async fn stream_update(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    let mut cfg = stream::Config {
        name: "U".into(),
        subjects: vec!["u.*".into()],
        ..Default::default()
    };
    js.create_stream(cfg.clone()).await.unwrap();
    for _ in 0..5 {
        js.publish("u.a", "x".into()).await.unwrap().await.unwrap();
    }
    cfg.max_messages = 2;
    cfg.subjects.push("v".into());
    let info = js.update_stream(cfg.clone()).await.unwrap();
    assert_eq!(info.config.max_messages, 2);
    assert_eq!(info.state.messages, 2);
    js.publish("v", "y".into()).await.unwrap().await.unwrap();
    let v = api(
        &c,
        "$JS.API.STREAM.UPDATE.U",
        json!({"name": "U", "subjects": ["u.*"], "storage": "memory"}),
    )
    .await;
    assert!(err_code(&v) != 0, "{v}");
    let v = api(&c, "$JS.API.STREAM.UPDATE.NOPE", json!({"name": "NOPE"})).await;
    assert_eq!(err_code(&v), 10059, "{v}");
}

async fn max_age_expires(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    let mut st = js
        .create_stream(stream::Config {
            name: "AGE".into(),
            subjects: vec!["age".into()],
            max_age: Duration::from_millis(300),
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .unwrap();
    js.publish("age", "x".into()).await.unwrap().await.unwrap();
    within("expiry", async {
        while st.info().await.unwrap().state.messages != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(st.info().await.unwrap().state.last_sequence, 1);
}

async fn ack_all_and_max_ack_pending(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    let st = make_stream(&js, 4).await;
    let mut cons: consumer::PullConsumer = st
        .create_consumer(consumer::pull::Config {
            durable_name: Some("all".into()),
            ack_policy: consumer::AckPolicy::All,
            max_ack_pending: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut b = cons
        .batch()
        .max_messages(10)
        .expires(Duration::from_millis(800))
        .messages()
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(m) = within("fetch", b.next()).await {
        got.push(m.unwrap());
    }
    // max_ack_pending caps what is handed out.
    assert_eq!(got.len(), 3);
    got[2].double_ack().await.unwrap();
    let info = cons.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.ack_floor.stream_sequence, 3);
}

/// Throughput of acknowledged publishes (file storage), both servers; prints msgs/s.
/// `cargo test -p natsd-tests --test jetstream -- --ignored --nocapture ack_throughput`
#[tokio::test]
#[ignore = "measurement, not a check"]
async fn ack_throughput() {
    for kind in [ServerKind::Natsd, ServerKind::NatsServer] {
        if !kind.available() {
            continue;
        }
        let (s, _sd) = js_server(kind).await;
        let js = jetstream::new(s.client().await);
        js.create_stream(stream::Config {
            name: "T".into(),
            subjects: vec!["t".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        const N: usize = 20_000;
        let start = std::time::Instant::now();
        // async-nats caps acks in flight; await them in windows of 1000.
        let mut acks = Vec::with_capacity(1000);
        for i in 0..N {
            acks.push(
                js.publish("t", bytes::Bytes::from_static(&[b'x'; 128]))
                    .await
                    .unwrap(),
            );
            if acks.len() == 1000 || i + 1 == N {
                for a in acks.drain(..) {
                    a.await.unwrap();
                }
            }
        }
        let el = start.elapsed();
        println!(
            "{}: {N} acked 128-byte publishes in {el:?} = {:.0} msgs/s",
            kind.name(),
            N as f64 / el.as_secs_f64()
        );
    }
}

/// Leader stepdowns and peer removal need a cluster: on one server they answer 10010 whether
/// or not the stream or consumer exists and whatever the body; the meta stepdown and server
/// removal go unanswered (nats-server's meta handlers only listen in a cluster).
async fn cluster_calls_on_a_single_server(kind: ServerKind) {
    use futures::FutureExt;

    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = api(
        &c,
        "$JS.API.STREAM.CREATE.S",
        json!({"name": "S", "subjects": ["s"]}),
    )
    .await;
    assert_eq!(err_code(&v), 0, "{v}");
    let v = api(
        &c,
        "$JS.API.CONSUMER.DURABLE.CREATE.S.C",
        json!({"stream_name": "S", "config": {"durable_name": "C", "ack_policy": "explicit"}}),
    )
    .await;
    assert_eq!(err_code(&v), 0, "{v}");
    let cases = [
        ("STREAM.LEADER.STEPDOWN.S", "stream_leader_stepdown"),
        ("STREAM.LEADER.STEPDOWN.NOPE", "stream_leader_stepdown"),
        ("CONSUMER.LEADER.STEPDOWN.S.C", "consumer_leader_stepdown"),
        (
            "CONSUMER.LEADER.STEPDOWN.S.NOPE",
            "consumer_leader_stepdown",
        ),
        (
            "CONSUMER.LEADER.STEPDOWN.NOPE.C",
            "consumer_leader_stepdown",
        ),
        ("STREAM.PEER.REMOVE.S", "stream_remove_peer"),
        ("STREAM.PEER.REMOVE.NOPE", "stream_remove_peer"),
    ];
    for (subject, kind) in cases {
        for body in [Value::Null, json!({"peer": "x"}), json!("garbage")] {
            let v = api(&c, &format!("$JS.API.{subject}"), body).await;
            assert_eq!(
                v,
                json!({
                    "type": format!("io.nats.jetstream.api.v1.{kind}_response"),
                    "error": {"code": 503, "err_code": 10010,
                              "description": "JetStream clustering support required"},
                }),
                "{subject}"
            );
        }
    }
    // Unanswered: an answer would arrive before the one to the request sent after them.
    let inbox = c.new_inbox();
    let mut silent = c.subscribe(inbox.clone()).await.unwrap();
    for subject in ["$JS.API.META.LEADER.STEPDOWN", "$JS.API.SERVER.REMOVE"] {
        c.publish_with_reply(subject, inbox.clone(), "{}".into())
            .await
            .unwrap();
    }
    let v = api(&c, "$JS.API.INFO", Value::Null).await;
    assert_eq!(err_code(&v), 0, "{v}");
    let heard = silent.next().now_or_never();
    assert!(heard.is_none(), "answered: {heard:?}");
}

/// A raw request with `body` as is; the answer as JSON.
async fn api_raw(c: &async_nats::Client, subject: &str, body: &'static [u8]) -> Value {
    let m = within("api request", c.request(subject.to_owned(), body.into()))
        .await
        .unwrap();
    serde_json::from_slice(&m.payload).unwrap()
}

/// Go: a `null` body unmarshals into the zero request, so list and names calls take it as
/// "no options" (clients that serialise an absent options object send it).
async fn null_body_on_names_and_list(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = api(
        &c,
        "$JS.API.STREAM.CREATE.N",
        json!({"name": "N", "subjects": ["n.>"], "storage": "memory"}),
    )
    .await;
    assert_eq!(err_code(&v), 0, "{v}");
    let v = api(
        &c,
        "$JS.API.CONSUMER.DURABLE.CREATE.N.d",
        json!({"stream_name": "N", "config": {"durable_name": "d", "ack_policy": "explicit"}}),
    )
    .await;
    assert_eq!(err_code(&v), 0, "{v}");
    let v = api_raw(&c, "$JS.API.STREAM.NAMES", b"null").await;
    assert_eq!(v["streams"], json!(["N"]), "{v}");
    let v = api_raw(&c, "$JS.API.STREAM.LIST", b"null").await;
    assert_eq!(v["total"], 1, "{v}");
    let v = api_raw(&c, "$JS.API.CONSUMER.NAMES.N", b"null").await;
    assert_eq!(v["consumers"], json!(["d"]), "{v}");
    let v = api_raw(&c, "$JS.API.CONSUMER.LIST.N", b"null").await;
    assert_eq!(v["total"], 1, "{v}");
}

/// Go: apiDispatch answers only the subjects it has a handler for; any other `$JS.API.`
/// request gets nothing (the requester times out).
async fn unknown_api_subject_is_not_answered(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    for subject in [
        "$JS.API.STREAM.FROB.X",
        "$JS.API.NOPE",
        "$JS.API.CONSUMER.INFO.X",
    ] {
        c.publish_with_reply(subject, inbox.clone(), "{}".into())
            .await
            .unwrap();
    }
    // A known request sent after them is answered; by then the unknown ones were handled.
    let v = api(&c, "$JS.API.INFO", Value::Null).await;
    assert!(v["limits"].is_object(), "{v}");
    natsd_tests::flush(&c).await;
    let got = natsd_tests::drain_ready(&mut sub);
    assert!(
        got.is_empty(),
        "{:?}",
        got.iter().map(natsd_tests::text).collect::<Vec<_>>()
    );
}
