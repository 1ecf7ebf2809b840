//! Runs one scenario against natsd and the Go nats-server (when `nats-server` is on PATH) and
//! checks that every JSON field Go shows on each monitoring endpoint is there in natsd too.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{get_json, raw_client, start, test_options, wait_until};
use serde_json::Value;

/// Fields nats-server 2.9.10 shows that natsd does not, and why.
const GO_ONLY: &[(&str, &str)] = &[
    // Every account of nats-server imports system services ($SYS.REQ.ACCOUNT.PING.CONNZ …)
    // from the system account; natsd answers those requests directly in the system account
    // and shows no such imports, so the import fields only appear for configured imports.
    ("account_detail.imports", "no implicit $SYS service imports"),
    (
        "account_detail.imports[]",
        "no implicit $SYS service imports",
    ),
    (
        "account_detail.imports[].subject",
        "no implicit $SYS service imports",
    ),
    (
        "account_detail.imports[].account",
        "no implicit $SYS service imports",
    ),
    (
        "account_detail.imports[].to",
        "no implicit $SYS service imports",
    ),
    (
        "account_detail.imports[].type",
        "no implicit $SYS service imports",
    ),
    (
        "account_detail.imports[].invalid",
        "no implicit $SYS service imports",
    ),
    (
        "account_detail.imports[].share",
        "no implicit $SYS service imports",
    ),
    (
        "account_detail.imports[].tracking",
        "no implicit $SYS service imports",
    ),
];

/// Objects whose keys are data, not field names.
const MAPS: &[&str] = &["http_req_stats", "outbound_gateways", "inbound_gateways"];

/// The endpoints compared, with query options.
const ENDPOINTS: &[&str] = &[
    "/varz",
    "/connz",
    "/connz?subs=1",
    "/connz?subs=detail",
    "/connz?auth=1",
    "/connz?state=closed&subs=1",
    "/connz?state=any&sort=cid",
    "/routez",
    "/gatewayz",
    "/leafz",
    "/subsz",
    "/subsz?subs=1",
    "/subsz?subs=1&test=foo",
    "/accountz",
    "/accountz?acc=%24G",
    "/accstatz",
    "/accstatz?unused=1",
    "/jsz",
    "/healthz",
    "/ipqueuesz",
];

fn field_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                if !MAPS.contains(&k.as_str()) {
                    field_paths(child, &p, out);
                }
            }
        }
        Value::Array(items) => {
            let p = format!("{prefix}[]");
            for item in items {
                if item.is_object() {
                    out.insert(p.clone());
                }
                field_paths(item, &p, out);
            }
        }
        _ => {}
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct GoServer(Child);

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nats_server_on_path() -> Option<String> {
    let path = std::env::var("PATH").ok()?;
    path.split(':')
        .map(|d| format!("{d}/nats-server"))
        .find(|p| std::path::Path::new(p).is_file())
}

/// The scenario: a named client with a plain and a queue subscription that publishes and
/// receives one message and stays; a second client that subscribes and goes away.
async fn scenario(url: &str) -> tokio::net::TcpStream {
    let stays = raw_client(
        url,
        r#"{"verbose":false,"name":"stays","lang":"raw","version":"1"}"#,
        "SUB foo 1\r\nSUB bar q 2\r\nPUB foo 2\r\nhi\r\n",
    )
    .await;
    let gone = raw_client(url, r#"{"verbose":false,"name":"gone"}"#, "SUB x 1\r\n").await;
    drop(gone);
    stays
}

async fn collect(mon: SocketAddr) -> Vec<(String, BTreeSet<String>)> {
    let mut all = Vec::new();
    for ep in ENDPOINTS {
        let mut paths = BTreeSet::new();
        field_paths(&get_json(mon, ep).await, "", &mut paths);
        all.push(((*ep).to_owned(), paths));
    }
    all
}

#[tokio::test]
async fn monitoring_fields_match_go_nats_server() {
    let Some(go_bin) = nats_server_on_path() else {
        eprintln!("note: nats-server is not on PATH; skipping the comparison with Go");
        return;
    };
    let (port, mport) = (free_port(), free_port());
    let conf = std::env::temp_dir().join(format!("natsd-go-parity-{}.conf", std::process::id()));
    std::fs::write(
        &conf,
        format!("listen: 127.0.0.1:{port}\nhttp: 127.0.0.1:{mport}\n"),
    )
    .unwrap();
    let _go = GoServer(
        Command::new(&go_bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server"),
    );
    let go_mon: SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(go_mon).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nats-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let go_url = format!("nats://127.0.0.1:{port}");
    let _go_client = scenario(&go_url).await;
    // Go records the closed connection asynchronously too.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get_json(go_mon, "/connz?state=closed").await["total"] != 1 {
        assert!(tokio::time::Instant::now() < deadline, "go closed conn");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let go = collect(go_mon).await;

    let srv = start(test_options()).await;
    let ours_client = scenario(&srv.client_url().unwrap()).await;
    wait_until("closed recorded", || srv.closed_clients().len() == 1).await;
    let ours = collect(srv.monitor_addr().unwrap()).await;
    drop(ours_client);

    let allowed: BTreeSet<&str> = GO_ONLY.iter().map(|(f, _)| *f).collect();
    let mut missing = Vec::new();
    for ((ep, go_fields), (_, our_fields)) in go.iter().zip(&ours) {
        for f in go_fields {
            if !our_fields.contains(f) && !allowed.contains(f.as_str()) {
                missing.push(format!("{ep}: {f}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields nats-server has and natsd lacks:\n{}",
        missing.join("\n")
    );
    srv.shutdown();
}
