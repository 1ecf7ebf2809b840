//! What a client reads on its connection, checked byte for byte with a raw protocol client:
//! the INFO fields (plain, JetStream with a domain, authentication, cluster), asynchronous INFO
//! updates as routes come and go, lame duck mode, `+OK` before CONNECT, and the dual-stack
//! client listener.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{Ipv6Addr, SocketAddr};
use std::process::Command;

use natsd_tests::cluster::TestCluster;
use natsd_tests::{both, free_port, within, RawClient, ServerKind, TestServer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

both!(
    info_fields_plain,
    info_fields_jetstream_domain,
    info_fields_auth,
    info_fields_cluster,
    async_info_follows_routes,
    info_after_connect_catches_up_with_the_cluster,
    lame_duck_info_lists_only_peers,
    ok_before_connect,
    connect_without_verbose_is_verbose,
    later_connect_keeps_omitted_flags,
    auth_before_connect_is_a_violation,
    listen_all_accepts_ipv6_loopback,
    connect_urls_of_a_cluster_on_all_interfaces,
);

/// The INFO keys every client connection gets, whatever the configuration.
const BASE_KEYS: &[&str] = &[
    "server_id",
    "server_name",
    "version",
    "proto",
    "go",
    "host",
    "port",
    "headers",
    "max_payload",
    "client_id",
    "client_ip",
];

fn keys(info: &Value) -> BTreeSet<String> {
    info.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn base_plus(extra: &[&str]) -> BTreeSet<String> {
    BASE_KEYS
        .iter()
        .chain(extra)
        .map(|k| (*k).to_owned())
        .collect()
}

async fn info_fields_plain(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let info = s.raw().await.info;
    assert_eq!(keys(&info), base_plus(&[]), "{info}");
    // Some clients index `go` unconditionally; it must be a non-empty string.
    assert!(info["go"].as_str().is_some_and(|g| !g.is_empty()), "{info}");
    assert_eq!(info["client_ip"], "127.0.0.1", "{info}");
    assert_eq!(info["host"], "127.0.0.1", "{info}");
}

async fn info_fields_jetstream_domain(kind: ServerKind) {
    let sd = tempfile::tempdir().unwrap();
    let conf = format!(
        "jetstream {{ store_dir: {:?}, domain: hub }}\n",
        sd.path().to_str().unwrap()
    );
    let s = TestServer::start(kind, &conf).await;
    let info = s.raw().await.info;
    assert_eq!(keys(&info), base_plus(&["jetstream", "domain"]), "{info}");
    assert_eq!(info["jetstream"], true, "{info}");
    assert_eq!(info["domain"], "hub", "{info}");
}

async fn info_fields_auth(kind: ServerKind) {
    let s = TestServer::start(kind, "authorization { user: a, password: b }\n").await;
    let mut raw = s.raw().await;
    let info = raw.info.clone();
    assert_eq!(keys(&info), base_plus(&["auth_required"]), "{info}");
    // After authentication nothing new is announced to a protocol-0 client.
    raw.handshake(r#"{"verbose":false,"user":"a","pass":"b"}"#)
        .await;
    assert_eq!(raw.lines_until_pong().await, Vec::<String>::new());
}

async fn info_fields_cluster(kind: ServerKind) {
    let c = TestCluster::start(&[kind, kind]).await;
    let info = c.nodes[0].server.raw().await.info;
    assert_eq!(
        keys(&info),
        base_plus(&["cluster", "connect_urls"]),
        "{info}"
    );
    assert_eq!(
        info["cluster"],
        natsd_tests::cluster::CLUSTER_NAME,
        "{info}"
    );
    let urls = urls(&info);
    for n in &c.nodes {
        let want = format!("127.0.0.1:{}", n.server.port());
        assert!(urls.contains(&want), "{want} missing from {info}");
    }
    assert_eq!(urls.len(), 2, "{info}");
}

fn urls(info: &Value) -> BTreeSet<String> {
    info["connect_urls"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads lines until an INFO arrives; its JSON.
async fn next_info(raw: &mut RawClient) -> Value {
    let line = raw.expect("INFO ").await;
    let json = line.strip_prefix("INFO ").unwrap();
    serde_json::from_str(json).unwrap()
}

async fn async_info_follows_routes(kind: ServerKind) {
    let mut c = TestCluster::start(&[kind, kind, kind]).await;
    let s0 = &c.nodes[0].server;
    // A protocol-1 client takes asynchronous INFO; a protocol-0 one never does.
    let mut p1 = s0.raw().await;
    p1.handshake(r#"{"verbose":false,"protocol":1}"#).await;
    let mut p0 = s0.raw().await;
    p0.handshake(r#"{"verbose":false,"protocol":0}"#).await;
    let gone = c.nodes.pop().unwrap();
    let gone_url = format!("127.0.0.1:{}", gone.server.port());
    drop(gone);
    let info = next_info(&mut p1).await;
    assert!(!urls(&info).contains(&gone_url), "{info}");
    assert_eq!(urls(&info).len(), 2, "{info}");
    // Every copy names the connection it goes to.
    assert_eq!(info["client_id"], p1.info["client_id"], "{info}");
    assert_eq!(info["client_ip"], "127.0.0.1", "{info}");
    assert!(info.get("ldm").is_none(), "{info}");
    let before_pong = p0.lines_until_pong().await;
    assert!(
        before_pong.iter().all(|l| !l.starts_with("INFO")),
        "{before_pong:?}"
    );
}

/// A client whose INFO went out before a cluster change, but that sent CONNECT only after it,
/// gets the current INFO around its first PONG (Go: processPing and lastCURLsUpdate); one that
/// connected after the change gets none.
async fn info_after_connect_catches_up_with_the_cluster(kind: ServerKind) {
    let mut c = TestCluster::start(&[kind, kind, kind]).await;
    let s0 = &c.nodes[0].server;
    let mut early = s0.raw().await;
    let mut witness = s0.raw().await;
    witness.handshake(r#"{"verbose":false,"protocol":1}"#).await;
    let gone = c.nodes.pop().unwrap();
    let gone_url = format!("127.0.0.1:{}", gone.server.port());
    drop(gone);
    // The witness hears of the change: node 0 has applied it.
    let info = next_info(&mut witness).await;
    assert!(!urls(&info).contains(&gone_url), "{info}");
    early
        .send("CONNECT {\"verbose\":false,\"protocol\":1}\r\n")
        .await
        .unwrap();
    // nats-server queues it right after the first PONG, natsd right before: take both PINGs'
    // worth of lines.
    let mut lines = early.lines_until_pong().await;
    lines.extend(early.lines_until_pong().await);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let info: Value = serde_json::from_str(lines[0].strip_prefix("INFO ").unwrap()).unwrap();
    assert_eq!(urls(&info).len(), 2, "{info}");
    assert!(!urls(&info).contains(&gone_url), "{info}");
    assert_eq!(info["client_id"], early.info["client_id"], "{info}");
    let mut late = c.nodes[0].server.raw().await;
    late.send("CONNECT {\"verbose\":false,\"protocol\":1}\r\n")
        .await
        .unwrap();
    let mut lines = late.lines_until_pong().await;
    lines.extend(late.lines_until_pong().await);
    assert_eq!(lines, Vec::<String>::new());
}

async fn lame_duck_info_lists_only_peers(kind: ServerKind) {
    let c = TestCluster::start(&[kind, kind]).await;
    let s1 = &c.nodes[1].server;
    let mut p1 = s1.raw().await;
    p1.handshake(r#"{"verbose":false,"protocol":1}"#).await;
    let status = Command::new("kill")
        .args(["-USR2", &s1.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let info = next_info(&mut p1).await;
    assert_eq!(info["ldm"], true, "{info}");
    let want: BTreeSet<String> = [format!("127.0.0.1:{}", c.nodes[0].server.port())].into();
    assert_eq!(urls(&info), want, "{info}");
}

async fn ok_before_connect(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    // Go: defaultOpts — verbose and pedantic until CONNECT says otherwise; PING gets no +OK.
    let mut raw = s.raw().await;
    raw.send("SUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\n")
        .await
        .unwrap();
    assert_eq!(
        raw.lines_until_pong().await,
        ["+OK", "+OK", "MSG foo 1 2", "hi", "+OK"]
    );
    assert_eq!(raw.lines_until_pong().await, Vec::<String>::new());
    raw.send("PUB foo.* 0\r\n\r\n").await.unwrap();
    assert_eq!(
        raw.lines_until_pong().await,
        ["-ERR 'Invalid Publish Subject'", "+OK"]
    );
    raw.send("CONNECT {\"verbose\":false}\r\nSUB bar 2\r\n")
        .await
        .unwrap();
    assert_eq!(raw.lines_until_pong().await, Vec::<String>::new());
}

async fn connect_without_verbose_is_verbose(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let mut raw = s.raw().await;
    raw.send("CONNECT {}\r\nSUB foo 1\r\n").await.unwrap();
    assert_eq!(raw.lines_until_pong().await, ["+OK", "+OK"]);
}

/// Go decodes every CONNECT into the connection's same options: a later CONNECT that omits
/// `verbose` or `pedantic` keeps what the earlier one set.
async fn later_connect_keeps_omitted_flags(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    let mut raw = s.raw().await;
    raw.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB foo 1\r\n")
        .await
        .unwrap();
    assert_eq!(raw.lines_until_pong().await, Vec::<String>::new());
    // Still quiet, and still not pedantic (a wildcard publish subject passes).
    raw.send("CONNECT {\"name\":\"again\"}\r\nPUB foo.* 0\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(raw.lines_until_pong().await, Vec::<String>::new());
    // Verbose on; a CONNECT that omits it keeps it on.
    raw.send("CONNECT {\"verbose\":true}\r\n").await.unwrap();
    assert_eq!(raw.lines_until_pong().await, ["+OK"]);
    raw.send("CONNECT {}\r\nSUB bar 2\r\nPUB foo.* 0\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(raw.lines_until_pong().await, ["+OK", "+OK", "+OK"]);
}

async fn auth_before_connect_is_a_violation(kind: ServerKind) {
    let s = TestServer::start(kind, "authorization { user: a, password: b }\n").await;
    let mut raw = s.raw().await;
    raw.send("SUB foo 1\r\n").await.unwrap();
    assert_eq!(
        raw.expect_closed().await,
        ["-ERR 'Authorization Violation'"]
    );
    let mut raw = s.raw().await;
    raw.send("CONNECT {\"user\":\"a\",\"pass\":\"b\"}\r\n")
        .await
        .unwrap();
    // No `verbose` in CONNECT: it stays on.
    assert_eq!(raw.lines_until_pong().await, ["+OK"]);
}

/// Go's listener on 0.0.0.0 is dual-stack: a client reaches it over `::1` as well.
async fn listen_all_accepts_ipv6_loopback(kind: ServerKind) {
    if std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_err() {
        eprintln!("note: this machine has no ::1; dual-stack listener not tested");
        return;
    }
    let http_port = free_port();
    let http = http_port.to_string();
    // The monitoring host defaults to 0.0.0.0 as well.
    let s = TestServer::start_with_args(kind, "", &["-a", "0.0.0.0", "-m", &http]).await;
    let v4 = s.raw().await.info;
    assert_eq!(v4["host"], "0.0.0.0", "{v4}");
    assert_eq!(v4["client_ip"], "127.0.0.1", "{v4}");
    let v6 = RawClient::connect(SocketAddr::from((Ipv6Addr::LOCALHOST, s.port()))).await;
    assert_eq!(v6.info["client_ip"], "::1", "{}", v6.info);
    let body = within("GET /healthz over ::1", async {
        let mut c = TcpStream::connect((Ipv6Addr::LOCALHOST, http_port))
            .await
            .unwrap();
        c.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").await.unwrap();
        let mut buf = String::new();
        c.read_to_string(&mut buf).await.unwrap();
        buf
    })
    .await;
    assert!(
        body.starts_with("HTTP/1.") && body.contains("\"ok\""),
        "{body}"
    );
}

/// A cluster whose nodes listen on 0.0.0.0 offers the machine's addresses in `connect_urls`
/// (Go: getNonLocalIPsIfHostIsIPAny), never 0.0.0.0 or loopback, the same ones for every node.
async fn connect_urls_of_a_cluster_on_all_interfaces(kind: ServerKind) {
    let route_ports = [free_port(), free_port()];
    let http_ports = [free_port(), free_port()];
    let mut nodes = Vec::new();
    for i in 0..2 {
        let conf = format!(
            "server_name: n{i}\nhttp: \"127.0.0.1:{}\"\ncluster {{ name: c, listen: \"127.0.0.1:{}\", routes: [\"nats://127.0.0.1:{}\"] }}\n",
            http_ports[i], route_ports[i], route_ports[0]
        );
        nodes.push(TestServer::start_with_args(kind, &conf, &["-a", "0.0.0.0"]).await);
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    for http in http_ports {
        loop {
            let v = natsd_tests::cluster::monitor_get(http, "/routez").await;
            if v.is_some_and(|v| v["num_routes"] == 1) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no route on {http}");
            // Poll interval; the wait is bounded by `deadline`.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let info = nodes[0].raw().await.info;
    let urls = urls(&info);
    if urls.is_empty() {
        eprintln!("note: this machine has no global unicast address; nothing to offer: {info}");
        return;
    }
    let hosts_of = |port: u16| -> BTreeSet<String> {
        urls.iter()
            .filter_map(|u| u.strip_suffix(&format!(":{port}")).map(str::to_owned))
            .collect()
    };
    let (a, b) = (hosts_of(nodes[0].port()), hosts_of(nodes[1].port()));
    assert!(!a.is_empty() && a == b, "{info}");
    assert_eq!(a.len() * 2, urls.len(), "{info}");
    for h in &a {
        let ip: std::net::IpAddr = h.trim_matches(['[', ']']).parse().unwrap();
        assert!(!ip.is_unspecified() && !ip.is_loopback(), "{info}");
    }
}
