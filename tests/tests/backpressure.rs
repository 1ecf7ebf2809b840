//! Back-pressure: an unthrottled publisher and its subscribers.
//!
//! A raw-TCP publisher writes `PUB` frames as fast as its socket takes them. A subscriber that
//! keeps reading, however slowly, gets every message: the server holds the publisher back
//! (nats-server's fast-producer stall) instead of cutting the subscriber. A subscriber that
//! stops reading is closed as a slow consumer (log line, `/varz`, `/connz`, the `$SYS`
//! disconnect event) while the other subscribers of the same publisher keep receiving.
//!
//! Nothing here measures speed or sleeps for timing: every wait is for a condition, bounded.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use natsd_tests::cluster::{monitor_get, TestCluster};
use natsd_tests::{both, within_for, ServerKind, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

both!(
    burst_reaches_slow_reader,
    stopped_reader_cut_others_keep_receiving,
    stopped_reader_cut_at_max_pending,
);

/// Payload bytes per message; each payload starts with its sequence number.
const SIZE: usize = 1024;
/// Messages per burst: 16 MiB of payload, sixteen times the `max_pending` the tests set.
const COUNT: u64 = 16 * 1024;
/// How long a whole burst may take to arrive.
const BURST: Duration = Duration::from_secs(40);
/// The outbound bound of every test server.
const MAX_PENDING: &str = "max_pending: 1048576";

fn payload(seq: u64, size: usize) -> Vec<u8> {
    let mut p = format!("{seq:016}").into_bytes();
    p.resize(size, b'.');
    p
}

/// A connection whose socket buffers are small, so a reader's pace shows at once.
async fn connect_small(addr: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    within_for(Duration::from_secs(5), "connect", sock.connect(addr))
        .await
        .unwrap()
}

/// Reads up to and including the line starting with `want`, returning what was left over.
async fn read_until_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, want: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        let n = within_for(Duration::from_secs(5), want, r.read_line(&mut line))
            .await
            .unwrap();
        assert!(n > 0, "closed while waiting for {want}");
        if line.starts_with("-ERR") {
            panic!("server said {line}");
        }
        if line.starts_with(want) {
            return;
        }
    }
}

/// Connects, subscribes to `subject` and waits until the subscription is in.
async fn subscriber(addr: SocketAddr, connect: &str, subject: &str) -> BufReader<TcpStream> {
    subscribe_on(connect_small(addr).await, connect, subject).await
}

/// [`subscriber`] on a connection already made.
async fn subscribe_on(stream: TcpStream, connect: &str, subject: &str) -> BufReader<TcpStream> {
    let mut s = BufReader::new(stream);
    read_until_line(&mut s, "INFO").await;
    let hello = format!("CONNECT {connect}\r\nSUB {subject} 1\r\nPING\r\n");
    s.get_mut().write_all(hello.as_bytes()).await.unwrap();
    read_until_line(&mut s, "PONG").await;
    s
}

/// Reads `MSG` frames in small reads, yielding after each (a reader slower than the
/// server), and checks they arrive in order. Returns how many arrived before `count` or EOF.
fn slow_reader(s: BufReader<TcpStream>, count: u64) -> JoinHandle<u64> {
    reader(s, count, SIZE, 256)
}

/// Reads `MSG` frames of `size` payload bytes in reads of at most `chunk` bytes, yielding
/// after each, and checks they arrive in order. Returns how many arrived before `count` or
/// EOF.
fn reader(mut s: BufReader<TcpStream>, count: u64, size: usize, chunk: usize) -> JoinHandle<u64> {
    tokio::spawn(async move {
        let mut got = 0;
        let mut line = String::new();
        let mut body = vec![0u8; size + 2];
        while got < count {
            line.clear();
            if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            if line.starts_with("PING") {
                let _ = s.get_mut().write_all(b"PONG\r\n").await;
                continue;
            }
            assert!(line.starts_with("MSG "), "unexpected {line:?}");
            let len: usize = line.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
            assert_eq!(len, size, "{line:?}");
            // Small reads make a subscriber slower than any burst.
            let mut off = 0;
            while off < body.len() {
                let end = (off + chunk).min(body.len());
                match s.read(&mut body[off..end]).await {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => off += n,
                }
                tokio::task::yield_now().await;
            }
            let seq: u64 = std::str::from_utf8(&body[..16]).unwrap().parse().unwrap();
            assert_eq!(seq, got, "message out of order or lost");
            got += 1;
        }
        got
    })
}

/// Writes `count` messages on `subject` as fast as the socket takes them, then a PING, and
/// waits for the PONG (every message was read by the server). Returns the connection.
async fn blast(addr: SocketAddr, connect: &str, subject: &str, count: u64) -> TcpStream {
    blast_sized(addr, connect, subject, count, SIZE).await
}

/// [`blast`] with payloads of `size` bytes.
async fn blast_sized(
    addr: SocketAddr,
    connect: &str,
    subject: &str,
    count: u64,
    size: usize,
) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut r = BufReader::new(&mut s);
    read_until_line(&mut r, "INFO").await;
    s.write_all(format!("CONNECT {connect}\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::with_capacity(64 * 1024 + size + 64);
    for seq in 0..count {
        buf.extend_from_slice(format!("PUB {subject} {size}\r\n").as_bytes());
        buf.extend_from_slice(&payload(seq, size));
        buf.extend_from_slice(b"\r\n");
        if buf.len() >= 64 * 1024 {
            within_for(BURST, "publish", s.write_all(&buf))
                .await
                .unwrap();
            buf.clear();
        }
    }
    buf.extend_from_slice(b"PING\r\n");
    within_for(BURST, "publish", s.write_all(&buf))
        .await
        .unwrap();
    let mut r = BufReader::new(&mut s);
    let mut line = String::new();
    loop {
        line.clear();
        let n = within_for(BURST, "publisher PONG", r.read_line(&mut line))
            .await
            .unwrap();
        assert!(n > 0, "publisher was closed");
        if line.starts_with("PONG") {
            break;
        }
    }
    s
}

async fn varz(http: u16) -> serde_json::Value {
    monitor_get(http, "/varz").await.expect("/varz")
}

/// A burst sixteen times `max_pending` reaches a subscriber that reads slowly, whole and in
/// order; nobody is a slow consumer.
async fn burst_reaches_slow_reader(kind: ServerKind) {
    let http = natsd_tests::free_port();
    let s = TestServer::start(kind, &format!("{MAX_PENDING}\nhttp: \"127.0.0.1:{http}\"")).await;
    let sub = subscriber(s.addr(), "{\"verbose\":false}", "burst").await;
    let reader = slow_reader(sub, COUNT);
    let _publisher = blast(s.addr(), "{\"verbose\":false}", "burst", COUNT).await;
    let got = within_for(BURST, "the slow reader's messages", reader)
        .await
        .unwrap();
    assert_eq!(got, COUNT, "messages lost");
    assert_eq!(varz(http).await["slow_consumers"], 0);
}

const ACCOUNTS: &str = r#"
accounts {
  SYS { users [{user: sys, password: sys}] }
  APP { users [{user: a, password: a}] }
}
system_account: SYS
"#;
const APP: &str = r#"{"verbose":false,"user":"a","pass":"a"}"#;

/// A subscriber that stops reading is closed as a slow consumer (log, counters, `/connz`,
/// the `$SYS` disconnect event); the publisher's other subscriber gets every message.
async fn stopped_reader_cut_others_keep_receiving(kind: ServerKind) {
    let http = natsd_tests::free_port();
    let conf =
        format!("{MAX_PENDING}\nwrite_deadline: \"2s\"\nhttp: \"127.0.0.1:{http}\"\n{ACCOUNTS}");
    let s = TestServer::start(kind, &conf).await;
    let sys = s
        .client_with(async_nats::ConnectOptions::with_user_and_password(
            "sys".into(),
            "sys".into(),
        ))
        .await;
    let mut events = sys.subscribe("$SYS.ACCOUNT.APP.DISCONNECT").await.unwrap();
    sys.flush().await.unwrap();

    let stuck = subscriber(s.addr(), APP, "fan").await;
    let healthy = subscriber(s.addr(), APP, "fan").await;
    let reader = slow_reader(healthy, COUNT);
    let _publisher = blast(s.addr(), APP, "fan", COUNT).await;
    let got = within_for(BURST, "the healthy reader's messages", reader)
        .await
        .unwrap();
    assert_eq!(got, COUNT, "the healthy subscriber lost messages");

    // The stuck one was cut: the counters, the closed connection's reason, the event, the log.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if varz(http).await["slow_consumers"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            varz(http).await
        );
        // Poll interval; bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = monitor_get(http, "/connz?state=closed").await.unwrap();
    let reasons: Vec<String> = closed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("Slow Consumer (")),
        "{closed}"
    );
    let event = within_for(Duration::from_secs(10), "disconnect event", async {
        loop {
            let m = events.next().await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            if v["reason"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Slow Consumer (")
            {
                return v;
            }
        }
    })
    .await;
    assert_eq!(
        event["type"],
        "io.nats.server.advisory.v1.client_disconnect"
    );
    assert!(s.log().contains("Slow Consumer Detected: "), "{}", s.log());
    drop(stuck);
}

/// Payload bytes per message of the max-pending scenario: the second or third message a
/// stuck receiver's kernel buffers cannot take passes `max_pending`. Smaller messages would
/// each wait out a stall of up to 1 s while the kernel still drains a little from the queue,
/// so a stuck receiver might never pass `max_pending`.
const BIG: usize = 384 * 1024;
/// Messages in the max-pending scenario: 9 MiB, nine times `max_pending`.
const BIG_COUNT: u64 = 24;
/// Far longer than the max-pending scenario may take, so a deadline cut cannot pass it.
const LONG_WRITE_DEADLINE: &str = "write_deadline: \"60s\"";

/// A subscriber that stops reading is closed the moment a delivery would take it past
/// `max_pending` (Go: client.go queueOutbound), not when its blocked write reaches the
/// write deadline: log line, `/varz` counters and the closed connection's reason come at
/// once, and the publisher's other subscriber gets every message.
async fn stopped_reader_cut_at_max_pending(kind: ServerKind) {
    let http = natsd_tests::free_port();
    let conf = format!("{MAX_PENDING}\n{LONG_WRITE_DEADLINE}\nhttp: \"127.0.0.1:{http}\"");
    let s = TestServer::start(kind, &conf).await;
    let plain = "{\"verbose\":false}";
    let stuck = subscriber(s.addr(), plain, "big").await;
    // Default socket buffers: a reader that keeps up.
    let healthy = subscribe_on(TcpStream::connect(s.addr()).await.unwrap(), plain, "big").await;
    let reader = reader(healthy, BIG_COUNT, BIG, 64 * 1024);
    let addr = s.addr();
    let publisher =
        tokio::spawn(async move { blast_sized(addr, plain, "big", BIG_COUNT, BIG).await });

    // Cut within a third of the write deadline: only the max-pending rule can do that.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let v = loop {
        let v = varz(http).await;
        if v["slow_consumers"] == 1 {
            break v;
        }
        assert!(tokio::time::Instant::now() < deadline, "not cut: {v}");
        // Poll interval; bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if kind == ServerKind::Natsd {
        // nats-server 2.10's field; 2.9.10 has no slow_consumer_stats.
        assert_eq!(v["slow_consumer_stats"]["clients"], 1, "{v}");
    }
    let closed = monitor_get(http, "/connz?state=closed").await.unwrap();
    let reasons: Vec<&str> = closed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["reason"].as_str().unwrap_or_default())
        .filter(|r| r.starts_with("Slow Consumer"))
        .collect();
    assert_eq!(reasons, ["Slow Consumer (Pending Bytes)"], "{closed}");
    assert!(
        s.log()
            .contains("Slow Consumer Detected: MaxPending of 1048576 Exceeded"),
        "{}",
        s.log()
    );

    let got = within_for(BURST, "the healthy reader's messages", reader)
        .await
        .unwrap();
    assert_eq!(got, BIG_COUNT, "the healthy subscriber lost messages");
    within_for(BURST, "the publisher", publisher).await.unwrap();
    assert_eq!(varz(http).await["slow_consumers"], 1);
    drop(stuck);
}

/// Across a route: a burst published on one node reaches a slow reader on the other whole,
/// and a stopped reader there is cut while a healthy one gets everything. natsd only:
/// nats-server 2.9 never holds back a route's reader, so its remote slow reader is cut as a
/// slow consumer instead (the publisher is held back only by a route whose own queue fills).
#[tokio::test]
async fn route_burst_reaches_slow_and_healthy_readers() {
    natsd_tests::run_scenario(ServerKind::Natsd, route_burst).await;
}

async fn route_burst(kind: ServerKind) {
    let c = within_for(
        Duration::from_secs(30),
        "cluster start",
        TestCluster::start_conf(
            &[kind, kind],
            |_| String::new(),
            |_| format!("{MAX_PENDING}\nwrite_deadline: \"2s\""),
        ),
    )
    .await;
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let pub_addr = a.server.addr();
    let sub_addr = b.server.addr();

    // Interest must have crossed the route before a burst. The route carries interest in
    // order, so once a later probe subscription on node 1 is seen from node 0, so is the
    // reader's.
    let probe_pub = c.client(0).await;
    let probe_sub = c.client(1).await;
    let crossed = |subject: &'static str| {
        let (probe_pub, probe_sub) = (probe_pub.clone(), probe_sub.clone());
        async move {
            let mut probe = probe_sub.subscribe(subject).await.unwrap();
            natsd_tests::cluster::await_interest(&probe_pub, subject, &mut probe).await;
        }
    };

    // A slow reader across the route gets the whole burst.
    let slow = subscriber(sub_addr, "{\"verbose\":false}", "route.slow").await;
    crossed("probe.1").await;
    let reader = slow_reader(slow, COUNT);
    let _p = blast(pub_addr, "{\"verbose\":false}", "route.slow", COUNT).await;
    let got = within_for(BURST, "the remote slow reader", reader)
        .await
        .unwrap();
    assert_eq!(got, COUNT, "messages lost across the route");
    assert_eq!(varz(b.http_port).await["slow_consumers"], 0);
    assert_eq!(varz(a.http_port).await["slow_consumers"], 0);

    // A stopped reader across the route is cut; a healthy one beside it gets everything.
    let stuck = subscriber(sub_addr, "{\"verbose\":false}", "route.fan").await;
    let healthy = subscriber(sub_addr, "{\"verbose\":false}", "route.fan").await;
    crossed("probe.2").await;
    let reader = slow_reader(healthy, COUNT);
    let _p = blast(pub_addr, "{\"verbose\":false}", "route.fan", COUNT).await;
    let got = within_for(BURST, "the remote healthy reader", reader)
        .await
        .unwrap();
    assert_eq!(got, COUNT, "the healthy subscriber lost messages");
    // The stuck one is counted once it is closed, which may come just after the healthy
    // reader is done (a writer blocked in a write is closed at its deadline).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let v = loop {
        let v = varz(b.http_port).await;
        if v["slow_consumers"] == 1 || tokio::time::Instant::now() >= deadline {
            break v;
        }
        // Poll interval; bounded by `deadline`.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(v["slow_consumers"], 1, "{v}");
    assert_eq!(v["slow_consumer_stats"]["clients"], 1, "{v}");
    assert_eq!(v["slow_consumer_stats"]["routes"], 0, "{v}");
    assert!(
        b.server.log().contains("Slow Consumer Detected: "),
        "{}",
        b.server.log()
    );
    // The route itself was never cut.
    assert_eq!(
        monitor_get(a.http_port, "/routez").await.unwrap()["num_routes"],
        1
    );
    drop(stuck);
}
