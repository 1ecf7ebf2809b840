//! Stream features with async-nats' JetStream API: mirrors, sources and republish against
//! natsd and nats-server; first sequence, metadata, subject transforms and per-message TTL
//! against natsd only (nats-server 2.9.10 predates them: they are 2.10 and 2.11 features).

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use natsd_tests::js::{api, err_code, js_server};
use natsd_tests::{both, next_msg, within, within_for, ServerKind};
use serde_json::{json, Value};

both!(
    mirror_backfills_and_follows,
    sources_merge_with_source_header,
    republish_to_another_subject,
    sourcing_config_errors,
    mirror_skips_a_purged_gap_at_once,
);

/// Waits until stream `name` reports `state` (messages, last sequence): mirrors and sources
/// copy asynchronously.
async fn wait_state(js: &jetstream::Context, name: &str, want: (u64, u64)) -> stream::Info {
    within_for(Duration::from_secs(10), "sourcing to catch up", async {
        loop {
            let mut st = js.get_stream(name).await.unwrap();
            let info = st.info().await.unwrap().clone();
            if (info.state.messages, info.state.last_sequence) == want {
                return info;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

async fn memory_stream(js: &jetstream::Context, name: &str, subjects: &[&str]) {
    js.create_stream(stream::Config {
        name: name.into(),
        subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
        storage: stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .unwrap();
}

async fn publish(js: &jetstream::Context, subject: &str, payload: &str) -> u64 {
    js.publish(subject.to_owned(), payload.to_owned().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

async fn mirror_backfills_and_follows(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    memory_stream(&js, "ORIGIN", &["o.>"]).await;
    for i in 1..=3 {
        publish(&js, &format!("o.{i}"), "x").await;
    }
    let origin = js.get_stream("ORIGIN").await.unwrap();
    assert!(origin.delete_message(2).await.unwrap());
    js.create_stream(stream::Config {
        name: "M".into(),
        storage: stream::StorageType::Memory,
        mirror: Some(stream::Source {
            name: "ORIGIN".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let info = wait_state(&js, "M", (2, 3)).await;
    assert_eq!(info.mirror.as_ref().unwrap().name, "ORIGIN");
    assert!(info.config.subjects.is_empty());
    // Origin sequences are kept.
    let m = js.get_stream("M").await.unwrap();
    assert_eq!(m.get_raw_message(3).await.unwrap().subject.as_str(), "o.3");
    assert!(m.get_raw_message(2).await.is_err());
    publish(&js, "o.4", "y").await;
    wait_state(&js, "M", (3, 4)).await;
    let got = m.get_raw_message(4).await.unwrap();
    assert_eq!(&got.payload[..], b"y");
}

async fn sources_merge_with_source_header(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let js = jetstream::new(s.client().await);
    memory_stream(&js, "EU", &["eu.>"]).await;
    memory_stream(&js, "US", &["us.>"]).await;
    publish(&js, "eu.1", "e1").await;
    publish(&js, "us.1", "u1").await;
    js.create_stream(stream::Config {
        name: "ALL".into(),
        subjects: vec!["all".into()],
        storage: stream::StorageType::Memory,
        sources: Some(vec![
            stream::Source {
                name: "EU".into(),
                ..Default::default()
            },
            stream::Source {
                name: "US".into(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    })
    .await
    .unwrap();
    wait_state(&js, "ALL", (2, 2)).await;
    publish(&js, "us.2", "u2").await;
    publish(&js, "all", "direct").await;
    let info = wait_state(&js, "ALL", (4, 4)).await;
    let mut names: Vec<&str> = info.sources.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["EU", "US"]);
    let all = js.get_stream("ALL").await.unwrap();
    let mut sourced = 0;
    for seq in 1..=4 {
        let m = all.get_raw_message(seq).await.unwrap();
        match m.headers.get("Nats-Stream-Source") {
            Some(h) => {
                // `<origin> <seq> …` (2.9 names the origin alone, 2.10 adds filters).
                let origin = if m.subject.starts_with("eu.") {
                    "EU"
                } else {
                    "US"
                };
                assert!(h.as_str().starts_with(origin), "{h:?}");
                sourced += 1;
            }
            None => assert_eq!(m.subject.as_str(), "all"),
        }
    }
    assert_eq!(sourced, 3);
}

async fn republish_to_another_subject(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    let mut sub = c.subscribe("rp.>").await.unwrap();
    natsd_tests::flush(&c).await;
    js.create_stream(stream::Config {
        name: "R".into(),
        subjects: vec!["r.>".into()],
        storage: stream::StorageType::Memory,
        republish: Some(stream::Republish {
            source: "r.>".into(),
            destination: "rp.>".into(),
            headers_only: false,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut h = HeaderMap::new();
    h.insert("X-Mine", "1");
    js.publish_with_headers("r.a", h, "body".into())
        .await
        .unwrap()
        .await
        .unwrap();
    publish(&js, "r.a", "again").await;
    let m = next_msg(&mut sub).await;
    assert_eq!(m.subject.as_str(), "rp.a");
    assert_eq!(&m.payload[..], b"body");
    let h = m.headers.unwrap();
    assert_eq!(h.get("Nats-Stream").unwrap().as_str(), "R");
    assert_eq!(h.get("Nats-Subject").unwrap().as_str(), "r.a");
    assert_eq!(h.get("Nats-Sequence").unwrap().as_str(), "1");
    assert_eq!(h.get("Nats-Last-Sequence").unwrap().as_str(), "0");
    assert_eq!(h.get("X-Mine").unwrap().as_str(), "1");
    let m = next_msg(&mut sub).await;
    let h = m.headers.unwrap();
    assert_eq!(h.get("Nats-Sequence").unwrap().as_str(), "2");
    assert_eq!(h.get("Nats-Last-Sequence").unwrap().as_str(), "1");

    js.create_stream(stream::Config {
        name: "H".into(),
        subjects: vec!["h".into()],
        storage: stream::StorageType::Memory,
        republish: Some(stream::Republish {
            source: "h".into(),
            destination: "rp.h".into(),
            headers_only: true,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    publish(&js, "h", "12345").await;
    let m = next_msg(&mut sub).await;
    assert_eq!(m.subject.as_str(), "rp.h");
    assert!(m.payload.is_empty());
    assert_eq!(
        m.headers.unwrap().get("Nats-Msg-Size").unwrap().as_str(),
        "5"
    );
}

async fn sourcing_config_errors(kind: ServerKind) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let v = api(
        &c,
        "$JS.API.STREAM.CREATE.M",
        json!({"name": "M", "subjects": ["m"], "mirror": {"name": "O"}}),
    )
    .await;
    assert_eq!(err_code(&v), 10034, "{v}");
    let v = api(
        &c,
        "$JS.API.STREAM.CREATE.M",
        json!({"name": "M", "mirror": {"name": "O"}, "sources": [{"name": "P"}]}),
    )
    .await;
    assert_eq!(err_code(&v), 10031, "{v}");
    let v = api(
        &c,
        "$JS.API.STREAM.CREATE.C",
        json!({"name": "C", "subjects": ["c.>"], "republish": {"src": ">", "dest": "c.x"}}),
    )
    .await;
    assert_eq!(err_code(&v), 10052, "{v}");
    assert_eq!(
        v["error"]["description"],
        "stream configuration for republish destination forms a cycle"
    );
}

// The natsd-only scenarios use the raw API: the workspace builds async-nats without its
// `server_2_10`/`server_2_11` features, which carry these config fields.

/// natsd only: `first_seq` and `metadata` came with nats-server 2.10.
#[tokio::test]
async fn first_seq_and_metadata_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, |kind| async move {
        let (s, _sd) = js_server(kind).await;
        let c = s.client().await;
        let js = jetstream::new(c.clone());
        let v = api(
            &c,
            "$JS.API.STREAM.CREATE.F",
            json!({"name": "F", "subjects": ["f"], "first_seq": 100,
                   "metadata": {"team": "core"}, "description": "numbers"}),
        )
        .await;
        assert_eq!(v["config"]["first_seq"], 100, "{v}");
        assert_eq!(publish(&js, "f", "a").await, 100);
        let v = api(&c, "$JS.API.STREAM.INFO.F", Value::Null).await;
        assert_eq!(v["config"]["metadata"], json!({"team": "core"}));
        assert_eq!(v["config"]["description"], "numbers");
        assert_eq!(v["state"]["first_seq"], 100);
    })
    .await;
}

/// natsd only: stream subject transforms came with nats-server 2.10.
#[tokio::test]
async fn subject_transform_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, |kind| async move {
        let (s, _sd) = js_server(kind).await;
        let c = s.client().await;
        let js = jetstream::new(c.clone());
        let v = api(
            &c,
            "$JS.API.STREAM.CREATE.T",
            json!({"name": "T", "subjects": ["in.>"],
                   "subject_transform": {"src": "in.*.>", "dest": "out.{{wildcard(1)}}.>"}}),
        )
        .await;
        assert_eq!(err_code(&v), 0, "{v}");
        publish(&js, "in.eu.orders", "x").await;
        let st = js.get_stream("T").await.unwrap();
        let m = st.get_raw_message(1).await.unwrap();
        assert_eq!(m.subject.as_str(), "out.eu.orders");
    })
    .await;
}

/// natsd only: per-message TTL came with nats-server 2.11.
#[tokio::test]
async fn message_ttl_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, |kind| async move {
        let (s, _sd) = js_server(kind).await;
        let c = s.client().await;
        let js = jetstream::new(c.clone());
        memory_stream(&js, "NOTTL", &["n"]).await;
        let mut h = HeaderMap::new();
        h.insert("Nats-TTL", "1s");
        let m = within("pub", c.request_with_headers("n", h.clone(), "x".into()))
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(err_code(&v), 10166, "{v}");
        let v = api(
            &c,
            "$JS.API.STREAM.CREATE.TTL",
            json!({"name": "TTL", "subjects": ["t"], "allow_msg_ttl": true}),
        )
        .await;
        assert_eq!(v["config"]["allow_msg_ttl"], true, "{v}");
        js.publish_with_headers("t", h, "short".into())
            .await
            .unwrap()
            .await
            .unwrap();
        publish(&js, "t", "kept").await;
        // The TTL'd message goes after a second; the other stays.
        let info = wait_state(&js, "TTL", (1, 2)).await;
        assert_eq!(info.state.first_sequence, 2);
        let mut bad = HeaderMap::new();
        bad.insert("Nats-TTL", "soon");
        let m = within("pub", c.request_with_headers("t", bad, "x".into()))
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(err_code(&v), 10165, "{v}");
    })
    .await;
}

/// natsd only (per-message TTL came with nats-server 2.11): `Nats-TTL: never` outlives the
/// stream's `max_age`, while `max_msgs` still removes it.
#[tokio::test]
async fn ttl_never_outlives_max_age_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, |kind| async move {
        let (s, _sd) = js_server(kind).await;
        let c = s.client().await;
        let js = jetstream::new(c.clone());
        let v = api(
            &c,
            "$JS.API.STREAM.CREATE.KEEP",
            json!({"name": "KEEP", "subjects": ["k.>"], "allow_msg_ttl": true,
                   "max_age": 1_000_000_000u64, "max_msgs": 2}),
        )
        .await;
        assert_eq!(err_code(&v), 0, "{v}");
        let never = || {
            let mut h = HeaderMap::new();
            h.insert("Nats-TTL", "never");
            h
        };
        let ack = js.publish_with_headers("k.a", never(), "kept".into());
        assert_eq!(ack.await.unwrap().await.unwrap().sequence, 1);
        publish(&js, "k.b", "aged").await;
        // The plain message ages out; once a second one has too, the exempt message has
        // been past max_age twice over and is still the first.
        wait_state(&js, "KEEP", (1, 2)).await;
        publish(&js, "k.b", "aged").await;
        let info = wait_state(&js, "KEEP", (1, 3)).await;
        assert_eq!(info.state.first_sequence, 1);
        // max_msgs is no age limit: it drops the oldest, exempt or not.
        for _ in 0..2 {
            let ack = js.publish_with_headers("k.c", never(), "new".into());
            ack.await.unwrap().await.unwrap();
        }
        let info = wait_state(&js, "KEEP", (2, 5)).await;
        assert_eq!(info.state.first_sequence, 4);
    })
    .await;
}

/// An origin purged (compacted) far past its end while its mirror already held messages: the
/// mirror keeps the origin's sequences across the gap. 100,000 is a gap nats-server 2.9.10
/// also crosses in time: it writes one placeholder per skipped sequence.
async fn mirror_skips_a_purged_gap_at_once(kind: ServerKind) {
    mirror_gap(kind, 100_000).await;
}

/// natsd only: five million skipped sequences. nats-server 2.9.10 stalls on this (one
/// placeholder per sequence, the stream unresponsive meanwhile); 2.10 added SkipMsgs, and
/// natsd writes one skip record whatever the gap.
#[tokio::test]
async fn mirror_skips_five_million_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, |kind| mirror_gap(kind, 5_000_000)).await;
}

async fn mirror_gap(kind: ServerKind, gap: u64) {
    let (s, _sd) = js_server(kind).await;
    let c = s.client().await;
    let js = jetstream::new(c.clone());
    js.create_stream(stream::Config {
        name: "GAPO".into(),
        subjects: vec!["g".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    publish(&js, "g", "a").await;
    js.create_stream(stream::Config {
        name: "GAPM".into(),
        mirror: Some(stream::Source {
            name: "GAPO".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    wait_state(&js, "GAPM", (1, 1)).await;
    let v = api(&c, "$JS.API.STREAM.PURGE.GAPO", json!({"seq": gap + 1})).await;
    assert_eq!(v["purged"], 1, "{v}");
    assert_eq!(publish(&js, "g", "b").await, gap + 1);
    wait_state(&js, "GAPM", (2, gap + 1)).await;
    let v = api(&c, "$JS.API.STREAM.INFO.GAPM", Value::Null).await;
    assert_eq!(v["state"]["first_seq"], 1, "{v}");
    assert_eq!(v["state"]["num_deleted"], gap - 1, "{v}");
    let m = js
        .get_stream("GAPM")
        .await
        .unwrap()
        .get_raw_message(gap + 1)
        .await
        .unwrap();
    assert_eq!(&m.payload[..], b"b");
}

/// The block files of stream `name` under a natsd store dir, and their total size.
fn block_bytes(dir: &std::path::Path, name: &str) -> u64 {
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "blk")
                && p.parent().unwrap().ends_with(format!("streams/{name}"))
            {
                total += std::fs::metadata(&p).unwrap().len();
            }
        }
    }
    total
}

/// natsd only: `compression` came with nats-server 2.10. natsd stores Snappy-compressed
/// records for `s2`; stream `bytes` stays the uncompressed accounting (Go's
/// fileStoreMsgSize), the disk holds less, and switching compression off keeps every message,
/// across a restart too.
#[tokio::test]
async fn compression_s2_natsd() {
    natsd_tests::run_scenario(ServerKind::Natsd, |kind| async move {
        let (s, sd) = js_server(kind).await;
        let c = s.client().await;
        let js = jetstream::new(c.clone());
        let v = api(
            &c,
            "$JS.API.STREAM.CREATE.Z",
            json!({"name": "Z", "subjects": ["z"], "compression": "s2"}),
        )
        .await;
        assert_eq!(v["config"]["compression"], "s2", "{v}");
        let body = "order shipped to the warehouse; ".repeat(64);
        for _ in 0..100 {
            publish(&js, "z", &body).await;
        }
        let v = api(&c, "$JS.API.STREAM.INFO.Z", Value::Null).await;
        let accounted = 100 * (22 + 1 + body.len() as u64 + 8);
        assert_eq!(v["state"]["bytes"], accounted, "{v}");
        let on_disk = block_bytes(sd.path(), "Z");
        assert!(
            on_disk > 0 && on_disk * 4 < accounted,
            "{on_disk} on disk for {accounted}"
        );
        let mut cfg = v["config"].clone();
        cfg["compression"] = json!("none");
        let v = api(&c, "$JS.API.STREAM.UPDATE.Z", cfg).await;
        assert_eq!(v["config"]["compression"], "none", "{v}");
        publish(&js, "z", "plain").await;
        // Restart: the mixed blocks are replayed and every message reads back.
        drop((js, c, s));
        let path = sd.path().to_str().unwrap();
        let s = natsd_tests::TestServer::start_with_args(kind, "", &["-js", "-sd", path]).await;
        let c = s.client().await;
        let js = jetstream::new(c.clone());
        let v = api(&c, "$JS.API.STREAM.INFO.Z", Value::Null).await;
        assert_eq!(v["state"]["messages"], 101, "{v}");
        assert_eq!(v["state"]["bytes"], accounted + 22 + 1 + 5 + 8, "{v}");
        let st = js.get_stream("Z").await.unwrap();
        assert_eq!(st.get_raw_message(1).await.unwrap().payload, body);
        assert_eq!(st.get_raw_message(100).await.unwrap().payload, body);
        assert_eq!(
            &st.get_raw_message(101).await.unwrap().payload[..],
            b"plain"
        );
    })
    .await;
}
