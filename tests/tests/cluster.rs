//! Clusters of natsd and nats-server 2.9.10 routed together: messages, queue groups, wildcard
//! interest and request/reply for every placement of publisher and subscriber.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use natsd_tests::cluster::{await_interest, monitor_get, TestCluster, PROBE};
use natsd_tests::{drain_ready, flush, text, within, within_for, ServerKind};

use ServerKind::{NatsServer, Natsd};

const MSGS: usize = 20;

/// Go variants need the reference binary; without it the mixed tests have nothing to test.
fn go_available() -> bool {
    if NatsServer.available() {
        return true;
    }
    eprintln!("note: nats-server is not installed; mixed cluster test skipped");
    false
}

/// Every (publisher node, subscriber node) pair, same node included: the subscriber gets
/// every message once, in order.
async fn every_placement(c: &TestCluster) {
    let n = c.nodes.len();
    let mut clients = Vec::new();
    for i in 0..n {
        clients.push(c.client(i).await);
    }
    for p in 0..n {
        for s in 0..n {
            let subject = format!("place.{p}.{s}");
            let mut sub = within("subscribe", clients[s].subscribe(subject.clone()))
                .await
                .expect("subscribe");
            flush(&clients[s]).await;
            await_interest(&clients[p], &subject, &mut sub).await;
            for k in 0..MSGS {
                clients[p]
                    .publish(subject.clone(), Bytes::from(k.to_string()))
                    .await
                    .expect("publish");
            }
            flush(&clients[p]).await;
            for k in 0..MSGS {
                let m = within("routed message", sub.next()).await.expect("message");
                assert_eq!(text(&m), k.to_string(), "placement {p}->{s}");
            }
            flush(&clients[s]).await;
            assert!(drain_ready(&mut sub).is_empty(), "duplicates at {p}->{s}");
        }
    }
}

/// Queue members on every node; messages from every node: exactly one delivery each.
async fn queue_exactly_once(c: &TestCluster) {
    let n = c.nodes.len();
    let mut clients = Vec::new();
    let mut members = Vec::new();
    for i in 0..n {
        let cl = c.client(i).await;
        for _ in 0..2 {
            members.push(
                within(
                    "queue subscribe",
                    cl.queue_subscribe("q.work", "workers".into()),
                )
                .await
                .expect("queue subscribe"),
            );
        }
        flush(&cl).await;
        clients.push(cl);
    }
    // A plain subscriber on the last node proves the members' interest has crossed too (it
    // travelled before it, on the same routes).
    let mut watch = clients[n - 1].subscribe("q.work").await.expect("subscribe");
    flush(&clients[n - 1]).await;
    for cl in &clients {
        await_interest(cl, "q.work", &mut watch).await;
    }
    let mut sent = 0;
    for (i, cl) in clients.iter().enumerate() {
        for k in 0..MSGS {
            cl.publish("q.work", Bytes::from(format!("{i}-{k}")))
                .await
                .expect("publish");
            sent += 1;
        }
        flush(cl).await;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_member = vec![0usize; members.len()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.values().sum::<usize>() < sent && tokio::time::Instant::now() < deadline {
        for (mi, m) in members.iter_mut().enumerate() {
            for msg in drain_ready(m) {
                if msg.payload.as_ref() == PROBE || msg.payload.starts_with(b"__probe") {
                    continue;
                }
                *seen.entry(text(&msg)).or_default() += 1;
                per_member[mi] += 1;
            }
        }
        // Poll interval; bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for cl in &clients {
        flush(cl).await;
    }
    for m in members.iter_mut() {
        for msg in drain_ready(m) {
            if !msg.payload.starts_with(b"__probe") {
                *seen.entry(text(&msg)).or_default() += 1;
            }
        }
    }
    assert_eq!(seen.len(), sent, "every message delivered: {per_member:?}");
    assert!(
        seen.values().all(|&v| v == 1),
        "exactly once: {:?}",
        seen.iter().filter(|(_, &v)| v != 1).collect::<Vec<_>>()
    );
    assert!(
        per_member.iter().filter(|&&v| v > 0).count() > 1,
        "spread over members: {per_member:?}"
    );
    drop(watch);
}

/// Wildcard subscriptions on one node, literal publishes from every other.
async fn wildcards(c: &TestCluster) {
    let n = c.nodes.len();
    for s in 0..n {
        let sc = c.client(s).await;
        let mut star = sc.subscribe("wc.*.x").await.expect("subscribe");
        let mut gt = sc.subscribe("wc.>").await.expect("subscribe");
        flush(&sc).await;
        for p in (0..n).filter(|&p| p != s) {
            let pc = c.client(p).await;
            await_interest(&pc, "wc.probe.x", &mut star).await;
            // The `>` subscription saw those probes too; wait for its own interest and drain.
            await_interest(&pc, "wc.probe", &mut gt).await;
            while let Some(m) = drain_ready(&mut gt).pop() {
                assert!(m.payload.starts_with(b"__probe"));
            }
            flush(&sc).await;
            let _ = drain_ready(&mut gt);
            pc.publish(format!("wc.{p}.x"), "a".into())
                .await
                .expect("pub");
            pc.publish(format!("wc.{p}.y.z"), "b".into())
                .await
                .expect("pub");
            flush(&pc).await;
            let m = within("star", star.next()).await.expect("star msg");
            assert_eq!(m.subject.as_str(), format!("wc.{p}.x"));
            let mut got = Vec::new();
            while got.len() < 2 {
                let m = within("gt", gt.next()).await.expect("gt msg");
                if !m.payload.starts_with(b"__probe") {
                    got.push(m.subject.to_string());
                }
            }
            assert_eq!(got, [format!("wc.{p}.x"), format!("wc.{p}.y.z")]);
            flush(&sc).await;
            assert!(drain_ready(&mut star).is_empty(), "star duplicates");
        }
    }
}

/// A responder on one node answers requests from every node.
async fn request_reply(c: &TestCluster) {
    let n = c.nodes.len();
    for r in 0..n {
        let rc = c.client(r).await;
        let subject = format!("svc.{r}");
        let mut reqs = rc.subscribe(subject.clone()).await.expect("subscribe");
        flush(&rc).await;
        let responder = {
            let rc = rc.clone();
            tokio::spawn(async move {
                while let Some(m) = reqs.next().await {
                    let body = format!("re:{}", text(&m));
                    if let Some(reply) = m.reply {
                        let _ = rc.publish(reply, body.into()).await;
                        let _ = rc.flush().await;
                    }
                }
            })
        };
        for p in 0..n {
            let pc = c.client(p).await;
            // Requests retry until the responder's interest has crossed the cluster.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let resp = loop {
                let req = pc.request(subject.clone(), format!("{p}").into());
                match tokio::time::timeout(Duration::from_millis(500), req).await {
                    Ok(Ok(m)) => break m,
                    _ if tokio::time::Instant::now() >= deadline => {
                        panic!("no reply from node {r} to node {p}")
                    }
                    _ => {}
                }
            };
            assert_eq!(text(&resp), format!("re:{p}"));
        }
        responder.abort();
    }
}

async fn suite(kinds: &[ServerKind]) {
    let c = within_for(
        Duration::from_secs(40),
        "cluster start",
        TestCluster::start(kinds),
    )
    .await;
    every_placement(&c).await;
    queue_exactly_once(&c).await;
    wildcards(&c).await;
    request_reply(&c).await;
}

#[tokio::test]
async fn three_natsd_nodes() {
    suite(&[Natsd, Natsd, Natsd]).await;
}

#[tokio::test]
async fn mixed_natsd_seed() {
    if go_available() {
        suite(&[Natsd, NatsServer, Natsd]).await;
    }
}

#[tokio::test]
async fn mixed_go_seed() {
    if go_available() {
        suite(&[NatsServer, Natsd, NatsServer]).await;
    }
}

#[tokio::test]
async fn three_go_nodes_baseline() {
    if go_available() {
        suite(&[NatsServer, NatsServer, NatsServer]).await;
    }
}

/// `/routez` and `/varz` agree with the cluster's shape; client INFO lists the peers.
#[tokio::test]
async fn monitoring_and_connect_urls() {
    let c = TestCluster::start(&[Natsd, Natsd, Natsd]).await;
    let sub = c.client(1).await;
    let _s = sub.subscribe("mon.x").await.expect("subscribe");
    flush(&sub).await;
    // Generous: gossip is slow on a loaded machine, and the checks below poll anyway.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let routez = loop {
        let z = monitor_get(c.nodes[0].http_port, "/routez?subs=1")
            .await
            .expect("routez");
        let has = z["routes"].as_array().is_some_and(|r| {
            r.iter()
                .any(|r| r["subscriptions_list"].to_string().contains("mon.x"))
        });
        if has || tokio::time::Instant::now() >= deadline {
            break z;
        }
        // Poll interval; bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(routez["num_routes"], 2);
    assert!(routez.to_string().contains("$G mon.x"), "{routez}");
    let varz = monitor_get(c.nodes[0].http_port, "/varz")
        .await
        .expect("varz");
    assert_eq!(varz["routes"], 2);
    assert_eq!(varz["cluster"]["name"], "natsd-test");
    // Node 2 learns the others' client URLs by gossip: ask again until they are all in.
    let want: Vec<String> = c
        .nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.server.port()))
        .collect();
    let info = loop {
        let raw = c.nodes[2].server.raw().await;
        let info = raw.info["connect_urls"].to_string();
        if want.iter().all(|u| info.contains(u)) || tokio::time::Instant::now() >= deadline {
            break info;
        }
        // Poll interval; bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for u in &want {
        assert!(info.contains(u), "connect_urls in {info}");
    }
}

/// PEM files for a TLS cluster: a CA and one certificate every node presents both as TLS
/// server and as TLS client (nats-server verifies route certificates both ways).
struct RoutePki {
    dir: tempfile::TempDir,
}

impl RoutePki {
    fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::Builder::new()
            .prefix("natsd-route-tls-")
            .tempdir()
            .expect("tempdir");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "natsd route CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("ca key");
        let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
        let issuer = Issuer::new(ca, ca_key);
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let mut leaf = CertificateParams::new(names).expect("leaf params");
        leaf.distinguished_name.push(DnType::CommonName, "route");
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        leaf.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("leaf key");
        let cert = leaf.signed_by(&key, &issuer).expect("leaf cert");
        for (name, pem) in [
            ("ca.pem", ca_cert.pem()),
            ("route.pem", cert.pem()),
            ("route-key.pem", key.serialize_pem()),
        ] {
            std::fs::write(dir.path().join(name), pem).expect("write pem");
        }
        Self { dir }
    }

    /// The `tls { }` block of a `cluster { }` block.
    fn block(&self) -> String {
        let p = |n: &str| self.dir.path().join(n).display().to_string();
        format!(
            "tls {{\n    cert_file: \"{}\"\n    key_file: \"{}\"\n    ca_file: \"{}\"\n    timeout: 5\n  }}",
            p("route.pem"),
            p("route-key.pem"),
            p("ca.pem")
        )
    }
}

async fn tls_suite(kinds: &[ServerKind]) {
    let pki = RoutePki::new();
    let c = within_for(
        Duration::from_secs(40),
        "TLS cluster start",
        TestCluster::start_conf(kinds, |_| pki.block(), |_| String::new()),
    )
    .await;
    every_placement(&c).await;
    request_reply(&c).await;
}

#[tokio::test]
async fn tls_three_natsd_nodes() {
    tls_suite(&[Natsd, Natsd, Natsd]).await;
}

#[tokio::test]
async fn tls_mixed_cluster() {
    if go_available() {
        tls_suite(&[Natsd, NatsServer, Natsd]).await;
        tls_suite(&[NatsServer, Natsd, NatsServer]).await;
    }
}

/// A node whose route certificate comes from another CA never joins.
#[tokio::test]
async fn tls_untrusted_peer_rejected() {
    let good = RoutePki::new();
    let rogue = RoutePki::new();
    let pki = [&good, &rogue];
    let seed_port = natsd_tests::free_port();
    let http = natsd_tests::free_port();
    let mut servers = Vec::new();
    for (i, p) in pki.iter().enumerate() {
        let port = if i == 0 {
            seed_port
        } else {
            natsd_tests::free_port()
        };
        let routes = if i == 0 {
            String::new()
        } else {
            format!("routes: [\"nats://127.0.0.1:{seed_port}\"]")
        };
        let http_line = if i == 0 {
            format!("http: \"127.0.0.1:{http}\"")
        } else {
            String::new()
        };
        let conf = format!(
            "{http_line}\ncluster {{\n name: x\n listen: \"127.0.0.1:{port}\"\n {routes}\n {}\n}}\n",
            p.block()
        );
        servers.push(natsd_tests::TestServer::start(Natsd, &conf).await);
    }
    // Several dial attempts (one a second) fail their handshake; no route ever registers.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        let z = monitor_get(http, "/routez").await.expect("routez");
        assert_eq!(z["num_routes"], 0, "{z}");
        // Poll interval; bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(servers[1].log().contains("TLS"), "{}", servers[1].log());
}

/// Accounts for the account-aware cluster tests: a system account and two application
/// accounts, `SVC` exporting a service that `APP` imports.
const ACCOUNTS: &str = r#"
accounts {
  SYS { users: [{user: sys, password: pass}] }
  SVC {
    users: [{user: svc, password: pass}]
    exports: [{service: "svc.>"}, {stream: "feed.>"}]
  }
  APP {
    users: [{user: app, password: pass}]
    imports: [
      {service: {account: SVC, subject: "svc.>"}}
      {stream: {account: SVC, subject: "feed.>"}}
    ]
  }
}
system_account: SYS
"#;

async fn user_client(c: &TestCluster, i: usize, user: &str) -> async_nats::Client {
    c.nodes[i]
        .server
        .client_with(async_nats::ConnectOptions::with_user_and_password(
            user.to_owned(),
            "pass".to_owned(),
        ))
        .await
}

/// A cluster with [`ACCOUNTS`].
async fn accounts_cluster(kinds: &[ServerKind]) -> TestCluster {
    within_for(
        Duration::from_secs(40),
        "cluster start",
        TestCluster::start_conf(kinds, |_| String::new(), |_| ACCOUNTS.to_owned()),
    )
    .await
}

async fn sys_ping_all(kinds: &[ServerKind]) {
    sys_ping_answers(&accounts_cluster(kinds).await).await;
}

/// `$SYS.REQ.SERVER.PING` from any node is answered by every node of the cluster.
async fn sys_ping_answers(c: &TestCluster) {
    for i in 0..c.nodes.len() {
        let sys = user_client(c, i, "sys").await;
        let inbox = sys.new_inbox();
        let mut replies = sys.subscribe(inbox.clone()).await.expect("subscribe");
        flush(&sys).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut ids = std::collections::BTreeSet::new();
        // Pings repeat until every node's interest (and our inbox's) has crossed the routes.
        while ids.len() < c.nodes.len() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {i}: answers from {ids:?}"
            );
            ids.clear();
            sys.publish_with_reply("$SYS.REQ.SERVER.PING", inbox.clone(), "".into())
                .await
                .expect("publish");
            flush(&sys).await;
            while let Ok(Some(m)) =
                tokio::time::timeout(Duration::from_millis(300), replies.next()).await
            {
                let v: serde_json::Value =
                    serde_json::from_slice(&m.payload).expect("PING answer is JSON");
                ids.insert(v["server"]["id"].as_str().expect("server.id").to_owned());
            }
        }
        assert_eq!(ids.len(), c.nodes.len());
    }
}

#[tokio::test]
async fn sys_ping_three_natsd() {
    sys_ping_all(&[Natsd, Natsd, Natsd]).await;
}

#[tokio::test]
async fn sys_ping_go_and_mixed() {
    if go_available() {
        sys_ping_all(&[NatsServer, NatsServer, NatsServer]).await;
        sys_ping_all(&[Natsd, NatsServer, Natsd]).await;
    }
}

/// A requester in APP on one node, the SVC responder (behind APP's service import) on
/// another: the request crosses the import and the route, the response comes back through
/// the response mapping made on the requester's node. Every placement; then a stream import
/// fed from every node.
async fn imports_across_routes(kinds: &[ServerKind]) {
    imports_work(&accounts_cluster(kinds).await).await;
}

async fn imports_work(c: &TestCluster) {
    let n = c.nodes.len();
    for r in 0..n {
        let svc = user_client(c, r, "svc").await;
        let subject = format!("svc.echo.{r}");
        let mut reqs = svc.subscribe(subject.clone()).await.expect("subscribe");
        flush(&svc).await;
        let responder = tokio::spawn(async move {
            while let Some(m) = reqs.next().await {
                let body = format!("re:{}", text(&m));
                if let Some(reply) = m.reply {
                    let _ = svc.publish(reply, body.into()).await;
                    let _ = svc.flush().await;
                }
            }
        });
        for p in 0..n {
            let app = user_client(c, p, "app").await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            let resp = loop {
                let req = app.request(subject.clone(), format!("{p}").into());
                match tokio::time::timeout(Duration::from_millis(500), req).await {
                    Ok(Ok(m)) => break m,
                    _ if tokio::time::Instant::now() >= deadline => {
                        panic!("no reply through the import from node {r} to node {p}")
                    }
                    _ => {}
                }
            };
            assert_eq!(
                text(&resp),
                format!("re:{p}"),
                "responder {r}, requester {p}"
            );
        }
        responder.abort();
    }
    for s in 0..n {
        let app = user_client(c, s, "app").await;
        let subject = format!("feed.{s}");
        let mut sub = app.subscribe(subject.clone()).await.expect("subscribe");
        flush(&app).await;
        for p in 0..n {
            let svc = user_client(c, p, "svc").await;
            await_interest(&svc, &subject, &mut sub).await;
            svc.publish(subject.clone(), format!("from {p}").into())
                .await
                .expect("publish");
            flush(&svc).await;
            let m = within("imported stream message", sub.next())
                .await
                .expect("message");
            assert_eq!(text(&m), format!("from {p}"));
        }
    }
}

#[tokio::test]
async fn service_import_three_natsd() {
    imports_across_routes(&[Natsd, Natsd, Natsd]).await;
}

#[tokio::test]
async fn service_import_mixed() {
    if go_available() {
        imports_across_routes(&[Natsd, NatsServer, Natsd]).await;
        imports_across_routes(&[NatsServer, Natsd, NatsServer]).await;
    }
}

/// A route peer that stops reading is dropped once a write makes no progress for the write
/// deadline, instead of having its messages buffered without end. natsd only: the fake peer
/// and the close reason read from natsd's log (nats-server closes such a route too).
#[tokio::test]
async fn stalled_route_dropped_at_write_deadline() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let cport = natsd_tests::free_port();
    let http = natsd_tests::free_port();
    let conf = format!(
        "write_deadline: \"1s\"\nhttp: \"127.0.0.1:{http}\"\ncluster {{\n name: stall\n listen: \"127.0.0.1:{cport}\"\n}}\n"
    );
    let mut srv = natsd_tests::TestServer::start(Natsd, &conf).await;
    let tcp = natsd_tests::connect_when_listening(cport).await;
    let (rd, mut wr) = tcp.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = String::new();
    within("route INFO", rd.read_line(&mut line))
        .await
        .expect("read INFO");
    assert!(line.starts_with("INFO "), "{line}");
    let hello = "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"FAKEPEER\",\"cluster\":\"stall\",\"headers\":true}\r\n\
        INFO {\"server_id\":\"FAKEPEER\",\"server_name\":\"fake\",\"cluster\":\"stall\",\"host\":\"127.0.0.1\",\"port\":1,\"headers\":true,\"proto\":2}\r\n\
        RS+ $G stall.>\r\nPING\r\n";
    wr.write_all(hello.as_bytes()).await.expect("hello");
    // Wait for our interest to be in: the PONG comes after the RS+ was processed.
    loop {
        line.clear();
        within("PONG", rd.read_line(&mut line)).await.expect("read");
        if line.starts_with("PONG") {
            break;
        }
    }
    let client = srv.client().await;
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    // 16 MiB: past the socket buffers of both ends (Linux autotunes up to 6 MiB each), well
    // under the 64 MiB pending bound, so the write deadline is what trips.
    for _ in 0..256 {
        client
            .publish("stall.x", chunk.clone())
            .await
            .expect("publish");
    }
    flush(&client).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let z = monitor_get(http, "/routez").await.expect("routez");
        if z["num_routes"] == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stalled route still up: {z}"
        );
        // Poll interval; bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(srv.log().contains("Write Deadline"), "{}", srv.log());
    // The server keeps serving its clients.
    let mut sub = client.subscribe("after").await.expect("subscribe");
    flush(&client).await;
    client.publish("after", "ok".into()).await.expect("publish");
    let m = within("message after the drop", sub.next())
        .await
        .expect("message");
    assert_eq!(text(&m), "ok");
    assert!(srv.is_running());
    drop(rd);
}

/// Route pooling (nats-server 2.10) between natsd nodes: three pooled connections per peer
/// plus a pinned route for APP. Every account's traffic works (pooled, pinned, system,
/// service and stream imports) and stays in order per account.
async fn pooled_suite(kinds: &[ServerKind]) {
    const POOL: &str = "pool_size: 3\n  accounts: [APP]";
    let pooled = |i: usize| kinds[i] == Natsd;
    let per_peer = |i: usize, j: usize| if pooled(i) && pooled(j) { 4 } else { 1 };
    let n = kinds.len();
    let c = within_for(
        Duration::from_secs(40),
        "pooled cluster start",
        TestCluster::start_conf_routes(
            kinds,
            |i| {
                if pooled(i) {
                    POOL.to_owned()
                } else {
                    String::new()
                }
            },
            |_| ACCOUNTS.to_owned(),
            |i| (0..n).filter(|&j| j != i).map(|j| per_peer(i, j)).sum(),
        ),
    )
    .await;
    sys_ping_answers(&c).await;
    imports_work(&c).await;
    // Order per account across every placement: APP (pinned) and SVC (pooled) interleaved.
    for p in 0..n {
        for s in (0..n).filter(|&s| s != p) {
            let mut subs = Vec::new();
            let mut pubs = Vec::new();
            for user in ["app", "svc"] {
                let sc = user_client(&c, s, user).await;
                let subject = format!("order.{user}.{p}.{s}");
                let mut sub = sc.subscribe(subject.clone()).await.expect("subscribe");
                flush(&sc).await;
                let pc = user_client(&c, p, user).await;
                await_interest(&pc, &subject, &mut sub).await;
                subs.push((sc, sub));
                pubs.push((pc, subject));
            }
            for k in 0..200 {
                for (pc, subject) in &pubs {
                    pc.publish(subject.clone(), k.to_string().into())
                        .await
                        .expect("publish");
                }
            }
            for (pc, _) in &pubs {
                flush(pc).await;
            }
            for (_, sub) in &mut subs {
                for k in 0..200 {
                    let m = within("ordered message", sub.next())
                        .await
                        .expect("message");
                    assert_eq!(text(&m), k.to_string(), "{p}->{s}");
                }
            }
        }
    }
    let z = monitor_get(c.nodes[0].http_port, "/routez")
        .await
        .expect("routez");
    let want: usize = (1..n).map(|j| per_peer(0, j)).sum();
    assert_eq!(z["num_routes"], want, "{z}");
}

#[tokio::test]
async fn pooled_three_natsd() {
    pooled_suite(&[Natsd, Natsd, Natsd]).await;
}

/// A 2.9.10 node among pooled natsd nodes gets one route from each, as before.
#[tokio::test]
async fn pooled_mixed_with_go() {
    if go_available() {
        pooled_suite(&[Natsd, NatsServer, Natsd]).await;
    }
}
