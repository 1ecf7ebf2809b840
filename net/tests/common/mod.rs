//! Helpers shared by the integration tests: in-process servers and a raw HTTP GET.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use natsd::{Options, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Options for a test server on loopback with OS-chosen client and monitoring ports.
pub(crate) fn test_options() -> Options {
    Options {
        host: "127.0.0.1".to_owned(),
        port: None,
        http_host: "127.0.0.1".to_owned(),
        http_port: Some(0),
        ..Options::default()
    }
}

/// Builds and starts a server.
pub(crate) async fn start(opts: Options) -> Server {
    let s = Server::new(opts).expect("server builds");
    s.start().await.expect("server starts");
    s
}

/// `GET path` over HTTP/1.0 (no chunked bodies to undo): (status, body).
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, body.to_owned())
}

/// `GET path`, expecting 200 and JSON.
pub(crate) async fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = http_get(addr, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// Polls `f` until it returns true, at most 10 s.
pub(crate) async fn wait_until<F: FnMut() -> bool>(what: &str, mut f: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A raw protocol client: sends `lines` after CONNECT, then PING, and returns once PONG is
/// back (so the server has processed everything sent).
pub(crate) async fn raw_client(url: &str, connect: &str, lines: &str) -> tokio::net::TcpStream {
    let addr = url.trim_start_matches("nats://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let msg = format!("CONNECT {connect}\r\n{lines}PING\r\n");
    s.write_all(msg.as_bytes()).await.expect("write");
    read_until(&mut s, "PONG\r\n").await;
    s
}

/// Reads until `needle` has been seen; returns everything read.
pub(crate) async fn read_until(s: &mut tokio::net::TcpStream, needle: &str) -> String {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&buf);
        if text.contains(needle) {
            return text.into_owned();
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {needle:?}; got {text:?}"))
            .expect("read");
        assert!(n > 0, "closed while waiting for {needle:?}; got {text:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}
