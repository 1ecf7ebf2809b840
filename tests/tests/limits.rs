//! Limits and liveness: payload and control-line size, connection and
//! subscription counts, stale connections.

// Integration-test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use async_nats::client::PublishErrorKind;
use natsd_tests::{both, flush, next_msg, text, RawClient, ServerKind, TestServer};

both!(
    max_payload_async_nats,
    max_payload_raw,
    max_control_line,
    max_connections,
    max_subscriptions,
    stale_connection,
    ponging_client_stays,
    bad_protocol_args,
);

async fn max_payload_async_nats(kind: ServerKind) {
    let s = TestServer::start(kind, "max_payload: 100").await;
    let c = s.client().await;
    assert_eq!(c.server_info().max_payload, 100);
    let mut sub = c.subscribe("big").await.unwrap();
    flush(&c).await;
    // The client checks the limit announced in INFO before sending.
    let err = c
        .publish("big", vec![b'x'; 101].into())
        .await
        .expect_err("over the limit");
    assert_eq!(err.kind(), PublishErrorKind::MaxPayloadExceeded, "{err}");
    c.publish("big", vec![b'y'; 100].into()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.payload.len(), 100);
}

async fn max_payload_raw(kind: ServerKind) {
    let s = TestServer::start(kind, "max_payload: 100").await;
    let mut raw = s.raw().await;
    assert_eq!(
        raw.info["max_payload"],
        serde_json::json!(100),
        "{}",
        raw.info
    );
    raw.handshake(r#"{"verbose":false}"#).await;
    raw.send("SUB p 1\r\n").await.unwrap();
    raw.send(&format!("PUB p 100\r\n{}\r\n", "a".repeat(100)))
        .await
        .unwrap();
    let got = raw.lines_until_pong().await;
    assert_eq!(
        got.first().map(String::as_str),
        Some("MSG p 1 100"),
        "{got:?}"
    );
    // The size in the PUB line is enough: the server refuses before the payload.
    raw.send("PUB p 101\r\n").await.unwrap();
    raw.expect_exact("-ERR 'Maximum Payload Violation'").await;
    raw.expect_closed().await;

    // Headers count towards the payload limit too.
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false,"headers":true}"#).await;
    raw.send("HPUB p 60 120\r\n").await.unwrap();
    raw.expect_exact("-ERR 'Maximum Payload Violation'").await;
    raw.expect_closed().await;
}

async fn max_control_line(kind: ServerKind) {
    let s = TestServer::start(kind, "max_control_line: 64").await;
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false}"#).await;
    // Short enough: fine.
    raw.send(&format!("SUB {} 1\r\n", "s".repeat(40)))
        .await
        .unwrap();
    assert!(raw.lines_until_pong().await.is_empty());
    raw.send(&format!("SUB {} 2\r\n", "t".repeat(200)))
        .await
        .unwrap();
    raw.expect_exact("-ERR 'maximum control line exceeded'")
        .await;
    raw.expect_closed().await;

    // A control line that never ends is cut off as well.
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false}"#).await;
    let _ = raw.send(&format!("PUB {}", "u".repeat(300))).await;
    raw.expect_exact("-ERR 'maximum control line exceeded'")
        .await;
    raw.expect_closed().await;
}

async fn max_connections(kind: ServerKind) {
    const MAX: usize = 3;
    let s = TestServer::start(kind, &format!("max_connections: {MAX}")).await;
    // Fill up to the limit. The readiness probe's connection may still be counted
    // for a moment after it closed, so a refused attempt is retried until MAX
    // connections are established (bounded by the scenario deadline).
    let mut open: Vec<RawClient> = Vec::new();
    while open.len() < MAX {
        let mut c = s.raw().await;
        c.send("CONNECT {\"verbose\":false}\r\nPING\r\n")
            .await
            .unwrap();
        match c.read_line().await.as_deref() {
            Some("PONG") => open.push(c),
            Some("-ERR 'maximum connections exceeded'") => tokio::task::yield_now().await,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let mut extra = s.raw().await;
    extra
        .expect_exact("-ERR 'maximum connections exceeded'")
        .await;
    extra.expect_closed().await;
    // Existing connections are unaffected.
    for c in &mut open {
        assert!(c.lines_until_pong().await.is_empty());
    }
}

async fn max_subscriptions(kind: ServerKind) {
    let s = TestServer::start(kind, "max_subscriptions: 2").await;
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false}"#).await;
    raw.send("SUB a 1\r\nSUB b 2\r\n").await.unwrap();
    assert!(raw.lines_until_pong().await.is_empty());
    raw.send("SUB c 3\r\n").await.unwrap();
    raw.expect_exact("-ERR 'maximum subscriptions exceeded'")
        .await;
    // The connection stays usable and the refused subscription does not exist.
    raw.send("PUB c 1\r\nx\r\nPUB a 1\r\ny\r\n").await.unwrap();
    assert_eq!(raw.lines_until_pong().await, ["MSG a 1 1", "y"]);
    // The limit is per connection.
    let mut other = s.raw().await;
    other.handshake(r#"{"verbose":false}"#).await;
    other.send("SUB a 1\r\nSUB b 2\r\n").await.unwrap();
    assert!(other.lines_until_pong().await.is_empty());
}

async fn stale_connection(kind: ServerKind) {
    let s = TestServer::start(kind, "ping_interval: \"100ms\"\nping_max: 2").await;
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false}"#).await;
    // Never answer: after ping_max unanswered PINGs the server gives up.
    let line = raw.expect_for(Duration::from_secs(5), "-ERR").await;
    assert_eq!(line, "-ERR 'Stale Connection'");
    raw.expect_closed().await;
    let pings = raw.seen.iter().filter(|l| *l == "PING").count();
    assert!(
        pings >= 2,
        "expected at least ping_max PINGs first: {:?}",
        raw.seen
    );
}

async fn ponging_client_stays(kind: ServerKind) {
    let s = TestServer::start(kind, "ping_interval: \"100ms\"\nping_max: 2").await;
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false}"#).await;
    for _ in 0..6 {
        raw.expect_exact("PING").await;
        raw.send("PONG\r\n").await.unwrap();
    }
    assert!(raw.lines_until_pong().await.iter().all(|l| l == "PING"));
    // async-nats answers PINGs by itself and stays connected too.
    let c = s.client().await;
    let mut sub = c.subscribe("alive").await.unwrap();
    for i in 0..3 {
        raw.expect_exact("PING").await;
        raw.send("PONG\r\n").await.unwrap();
        c.publish("alive", i.to_string().into()).await.unwrap();
        assert_eq!(text(&next_msg(&mut sub).await), i.to_string());
    }
}

async fn bad_protocol_args(kind: ServerKind) {
    let s = TestServer::start(kind, "").await;
    // PUB lines with a missing or extra argument are protocol errors: the server
    // closes the connection (Go writes no -ERR text for these).
    for bad in ["PUB foo\r\n", "PUB a b c d\r\n", "PUB foo bar\r\n"] {
        let mut raw = s.raw().await;
        raw.handshake(r#"{"verbose":false}"#).await;
        raw.send(&format!("{bad}PING\r\n")).await.unwrap();
        let after = raw.expect_closed().await;
        assert!(
            after.iter().all(|l| l != "PONG"),
            "{bad:?} was accepted: {after:?}"
        );
    }
    // Invalid subjects in PUB are refused but the connection survives (pedantic off).
    let mut raw = s.raw().await;
    raw.handshake(r#"{"verbose":false,"pedantic":true}"#).await;
    raw.send("PUB foo.* 1\r\nx\r\n").await.unwrap();
    raw.expect_exact("-ERR 'Invalid Publish Subject'").await;
    assert!(raw.lines_until_pong().await.is_empty());
    // An invalid subject in SUB.
    raw.send("SUB foo..bar 1\r\n").await.unwrap();
    raw.expect_exact("-ERR 'Invalid Subject'").await;
    assert!(raw.lines_until_pong().await.is_empty());
}
