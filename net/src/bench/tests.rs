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
