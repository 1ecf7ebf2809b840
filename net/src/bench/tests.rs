//! End-to-end runs of every scenario, with tiny budgets, against an in-process natsd.

use super::*;
use crate::{Options, Server};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

#[test]
fn command_line_is_parsed() {
    let a = parse_args(&args(&[
        "--url",
        "nats://127.0.0.1:5000",
        "--msgs=1000",
        "--duration",
        "0.5",
        "--size",
        "16,1024",
        "--requesters",
        "2",
        "--server-pid",
        "7",
        "pub",
        "reqrep",
    ]))
    .unwrap();
    assert_eq!(a.addr, "127.0.0.1:5000");
    assert_eq!(a.msgs, 1000);
    assert_eq!(a.duration, Duration::from_millis(500));
    assert_eq!(a.sizes, Some(vec![16, 1024]));
    assert_eq!(a.requesters, vec![2]);
    assert_eq!(a.server_pid, Some(7));
    assert_eq!(a.scenarios, vec!["pub", "reqrep"]);
    assert_eq!(a.hard_timeout(), Duration::from_millis(30_500));
    assert_eq!(parse_args(&[]).unwrap().scenarios.len(), SCENARIOS.len());
    assert!(parse_args(&args(&["nope"])).is_err());
    assert!(parse_args(&args(&["--msgs"])).is_err());
    assert!(parse_args(&args(&["--pubs", "0"])).is_err());
    assert_eq!(grouped(1_234_567.4), "1,234,567");
    assert_eq!(grouped(12.0), "12");
}

fn field(r: &Record, key: &str) -> f64 {
    r.fields
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("{key} missing in {r:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_against_natsd() {
    let server = Server::new(Options {
        port: Some(0),
        host: "127.0.0.1".into(),
        ..Default::default()
    })
    .unwrap();
    server.start().await.unwrap();
    let url = server.client_url().unwrap();
    let pid = std::process::id().to_string();
    let a = parse_args(&args(&[
        "--url",
        &url,
        "--msgs",
        "20000",
        "--duration",
        "5",
        "--conns",
        "50",
        "--subjects",
        "500",
        "--requesters",
        "1,3",
        "--pubs",
        "2",
        "--server-pid",
        &pid,
    ]))
    .unwrap();
    let mut records = Vec::new();
    for s in &a.scenarios {
        records.extend(run_one(&a, s).await.unwrap());
    }
    let names: Vec<_> = records.iter().map(|r| r.scenario.as_str()).collect();
    assert_eq!(
        names,
        [
            "pub_16B_2p",
            "pub_128B_2p",
            "pubsub_16B_2p",
            "fanout_16B_x8_2p",
            "queue_16B_g4_2p",
            "reqrep_1",
            "reqrep_3",
            "idle_conns_50",
            "subs_500"
        ]
    );
    // The budget is met exactly and every message reaches its subscribers.
    for r in &records[..2] {
        assert_eq!(field(r, "msgs"), 20_000.0);
    }
    assert_eq!(field(&records[2], "msgs"), 20_000.0);
    assert_eq!(field(&records[3], "msgs"), 8.0 * 20_000.0);
    assert_eq!(field(&records[4], "msgs"), 20_000.0);
    for r in &records[5..7] {
        let p50 = field(r, "p50_us");
        assert!(p50 > 0.0 && p50 <= field(r, "p99_us") && field(r, "p99_us") <= field(r, "max_us"));
    }
    assert!(field(&records[7], "rss_mib") > 0.0);
    assert_eq!(field(&records[8], "msgs"), 20_000.0);
    assert!(field(&records[8], "subs_per_sec") > 0.0);
    let line = records[0].json(&a);
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["scenario"], "pub_16B_2p");
    server.shutdown();
}

#[test]
fn a_dead_server_fails_fast() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let code = main(args(&[
        "--url",
        &addr.to_string(),
        "--duration",
        "0.1",
        "--timeout",
        "5",
        "pubsub",
    ]));
    assert_eq!(code, ExitCode::from(1));
}

#[test]
fn pub_acks_and_header_blocks_are_read() {
    use jetstream::{header_ok, parse_pub_ack, PubAck};
    assert_eq!(
        parse_pub_ack(br#"{"stream":"S","seq":42}"#),
        Ok(PubAck::Stored {
            stream: "S".into(),
            seq: 42
        })
    );
    // A duplicate is still a stored message.
    assert!(matches!(
        parse_pub_ack(br#"{"stream":"S","seq":7,"duplicate":true}"#),
        Ok(PubAck::Stored { seq: 7, .. })
    ));
    assert_eq!(
        parse_pub_ack(
            br#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#
        ),
        Ok(PubAck::Error(10077, "maximum messages exceeded".into()))
    );
    assert!(parse_pub_ack(b"+OK").is_err());
    assert!(parse_pub_ack(br#"{"stream":"S"}"#).is_err());
    assert!(header_ok(b"NATS/1.0\r\nNats-Stream: KV_b\r\n\r\nvalue"));
    assert!(!header_ok(b"NATS/1.0 404 Message Not Found\r\n\r\n"));
    assert!(!header_ok(b"value"));
}

#[test]
fn js_scenarios_are_named_and_configured() {
    let a = parse_args(&args(&["js", "kv-get"])).unwrap();
    assert_eq!(
        a.scenarios,
        [
            "js-pub-sync",
            "js-pub-async",
            "js-consume",
            "kv-put",
            "kv-get",
            "kv-get"
        ]
    );
    // `all` stays the core scenarios: JetStream needs a server started with it.
    assert!(!parse_args(&args(&["all"]))
        .unwrap()
        .scenarios
        .iter()
        .any(|s| s.starts_with("js") || s.starts_with("kv")));
    let v: Value = serde_json::from_str(&jetstream::stream_config(
        "KV_b",
        "$KV.b.>",
        jetstream::Storage::Memory,
        true,
        1,
    ))
    .unwrap();
    assert_eq!(v["storage"], "memory");
    assert_eq!(v["subjects"][0], "$KV.b.>");
    assert_eq!(v["max_msgs_per_subject"], 1);
    assert_eq!(v["allow_direct"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_scenarios_run_against_natsd() {
    let dir = std::env::temp_dir().join(format!("natsd-bench-js-{}", std::process::id()));
    let server = Server::new(Options {
        port: Some(0),
        host: "127.0.0.1".into(),
        jetstream: Some(natsd_core::options::JetStreamConfig {
            store_dir: Some(dir.clone()),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    server.start().await.unwrap();
    let url = server.client_url().unwrap();
    let a = parse_args(&args(&[
        "--url",
        &url,
        "--msgs",
        "300",
        "--duration",
        "20",
        "--size",
        "64",
        "js",
    ]))
    .unwrap();
    let mut records = Vec::new();
    for s in &a.scenarios {
        records.extend(run_one(&a, s).await.unwrap());
    }
    let names: Vec<_> = records.iter().map(|r| r.scenario.as_str()).collect();
    assert_eq!(
        names,
        [
            "js_pub_sync_file_64B",
            "js_pub_sync_mem_64B",
            "js_pub_async_file_64B_w256",
            "js_pub_async_mem_64B_w256",
            "js_consume_file_64B_b256",
            "kv_put_64B",
            "kv_get_64B"
        ]
    );
    // Bounded by the message budget, not the (long) duration: every message acknowledged,
    // every pre-filled message consumed.
    for r in &records {
        assert_eq!(field(r, "msgs"), 300.0, "{r:?}");
    }
    for r in [&records[0], &records[5], &records[6]] {
        assert!(field(r, "p50_us") > 0.0 && field(r, "p50_us") <= field(r, "p99_us"));
    }
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replicas_and_storage_are_parsed() {
    let a = parse_args(&args(&[
        "--replicas",
        "3",
        "--storage",
        "file",
        "js-pub-async",
    ]))
    .unwrap();
    assert_eq!((a.replicas, a.storage), (3, Some(jetstream::Storage::File)));
    assert_eq!(parse_args(&[]).unwrap().replicas, 1);
    assert!(parse_args(&args(&["--replicas", "0"])).is_err());
    assert!(parse_args(&args(&["--storage", "tape"])).is_err());
    let v: Value = serde_json::from_str(&jetstream::stream_config(
        "S",
        "s",
        jetstream::Storage::File,
        false,
        3,
    ))
    .unwrap();
    assert_eq!(v["num_replicas"], 3);
}

/// A single server refuses a replicated stream: the scenarios report n/a with its error
/// (their names marked `_r3`) instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_replicated_stream_is_na() {
    let dir = std::env::temp_dir().join(format!("natsd-bench-r3-{}", std::process::id()));
    let server = Server::new(Options {
        port: Some(0),
        host: "127.0.0.1".into(),
        jetstream: Some(natsd_core::options::JetStreamConfig {
            store_dir: Some(dir.clone()),
            ..Default::default()
        }),
        ..Default::default()
    })
    .unwrap();
    server.start().await.unwrap();
    let url = server.client_url().unwrap();
    let a = parse_args(&args(&[
        "--url",
        &url,
        "--replicas",
        "3",
        "--storage",
        "file",
        "--msgs",
        "10",
        "js-pub-sync",
        "js-pub-async",
    ]))
    .unwrap();
    let mut records = Vec::new();
    for s in &a.scenarios {
        records.extend(run_one(&a, s).await.unwrap());
    }
    let names: Vec<_> = records.iter().map(|r| r.scenario.as_str()).collect();
    assert_eq!(
        names,
        ["js_pub_sync_file_128B_r3", "js_pub_async_file_128B_w256_r3"]
    );
    for r in &records {
        let e = r.error.as_deref().unwrap_or_default();
        assert!(e.contains("replicas"), "{r:?}");
        assert!(r.fields.is_empty(), "{r:?}");
        assert!(r.json(&a).contains("\"error\""), "{r:?}");
    }
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
