//! Embeds natsd in a program: start a server on a free port with monitoring, look at it
//! through the typed API, kick a client, and shut down.
//!
//! Run with `cargo run -p natsd --example embed`.

use std::time::Duration;

use natsd::monitor::ConnzOptions;
use natsd::{Options, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::new(Options {
        host: "127.0.0.1".to_owned(),
        port: None,
        http_host: "127.0.0.1".to_owned(),
        http_port: Some(0),
        ..Options::default()
    })?;
    server.start().await?;
    let url = server.client_url().unwrap_or_default();
    eprintln!("clients: {url}");
    if let Some(m) = server.monitor_addr() {
        eprintln!("monitoring: http://{m}/varz");
    }

    // A minimal client: CONNECT, SUB, PUB, PING; the PONG proves it was all processed.
    let mut c = tokio::net::TcpStream::connect(url.trim_start_matches("nats://")).await?;
    c.write_all(b"CONNECT {\"name\":\"example\",\"verbose\":false}\r\nSUB greet 1\r\nPUB greet 5\r\nhello\r\nPING\r\n")
        .await?;
    let mut buf = vec![0u8; 4096];
    let mut seen = String::new();
    while !seen.contains("PONG") {
        let n = c.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }

    let varz = server.varz();
    eprintln!(
        "in_msgs={} out_msgs={} connections={}",
        varz.in_msgs, varz.out_msgs, varz.connections
    );
    let connz = server.connz(&ConnzOptions {
        subscriptions: true,
        ..ConnzOptions::default()
    })?;
    for conn in &connz.connections {
        eprintln!(
            "cid {} name {:?} subs {:?}",
            conn.cid, conn.name, conn.subscriptions_list
        );
        server.disconnect_client(conn.cid);
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf)).await;

    server.shutdown();
    server.wait_for_shutdown().await;
    Ok(())
}
