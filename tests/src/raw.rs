//! A hand-driven protocol client for checking exact wire texts.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::{within, within_for, STEP};

/// A plain TCP connection that speaks the client protocol line by line.
///
/// All reads are bounded by [`STEP`] (or an explicit limit) and panic on timeout,
/// so a server that never answers fails the test quickly.
#[derive(Debug)]
pub struct RawClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// The INFO object the server sent on connect.
    pub info: serde_json::Value,
    /// Every line read so far (without CRLF), for failure messages.
    pub seen: Vec<String>,
}

impl RawClient {
    /// Connects to `addr` and reads the first line, which must be INFO.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = match within("raw TCP connect", TcpStream::connect(addr)).await {
            Ok(s) => s,
            Err(e) => panic!("raw connect to {addr} failed: {e}"),
        };
        let (r, w) = stream.into_split();
        let mut client = Self {
            reader: BufReader::new(r),
            writer: w,
            info: serde_json::Value::Null,
            seen: Vec::new(),
        };
        let Some(line) = client.read_line().await else {
            panic!("server closed before sending INFO");
        };
        let Some(json) = line.strip_prefix("INFO ") else {
            panic!("first line is not INFO: {line:?}");
        };
        client.info = match serde_json::from_str(json) {
            Ok(v) => v,
            Err(e) => panic!("INFO is not JSON ({e}): {json}"),
        };
        client
    }

    /// Writes `data` verbatim. Errors (the server may have closed) are returned.
    pub async fn send(&mut self, data: &str) -> std::io::Result<()> {
        self.send_bytes(data.as_bytes()).await
    }

    /// Writes raw bytes verbatim.
    pub async fn send_bytes(&mut self, data: &[u8]) -> std::io::Result<()> {
        within("raw write", async {
            self.writer.write_all(data).await?;
            self.writer.flush().await
        })
        .await
    }

    /// Sends `CONNECT <json>` and a PING, and waits for the PONG.
    ///
    /// With `verbose` off this proves the CONNECT was accepted.
    pub async fn handshake(&mut self, connect_json: &str) {
        if let Err(e) = self
            .send(&format!("CONNECT {connect_json}\r\nPING\r\n"))
            .await
        {
            panic!("cannot send CONNECT: {e}");
        }
        self.expect("PONG").await;
    }

    /// Next line without its CRLF, `None` at EOF or on a reset. Panics after [`STEP`].
    pub async fn read_line(&mut self) -> Option<String> {
        self.read_line_for(STEP).await
    }

    /// Next line, waiting at most `limit`.
    pub async fn read_line_for(&mut self, limit: Duration) -> Option<String> {
        let mut buf = Vec::new();
        let n = within_for(limit, "a line from the server", async {
            self.reader.read_until(b'\n', &mut buf).await
        })
        .await;
        match n {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                self.seen.push(line.clone());
                Some(line)
            }
        }
    }

    /// Reads lines until one contains `needle` and returns it. Panics on EOF or timeout.
    pub async fn expect(&mut self, needle: &str) -> String {
        self.expect_for(STEP, needle).await
    }

    /// Like [`expect`](Self::expect) with an explicit bound for the whole search.
    pub async fn expect_for(&mut self, limit: Duration, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let line = match tokio::time::timeout(left, self.read_line_for(limit)).await {
                Ok(Some(l)) => l,
                Ok(None) => panic!(
                    "connection closed while waiting for {needle:?}; lines seen: {:?}",
                    self.seen
                ),
                Err(_) => panic!(
                    "no line containing {needle:?} within {limit:?}; lines seen: {:?}",
                    self.seen
                ),
            };
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Reads the next line, which must equal `want` exactly.
    pub async fn expect_exact(&mut self, want: &str) {
        match self.read_line().await {
            Some(l) if l == want => {}
            other => panic!(
                "expected {want:?}, got {other:?}; lines seen: {:?}",
                self.seen
            ),
        }
    }

    /// Reads until the server closes the connection; returns the lines read meanwhile.
    pub async fn expect_closed(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut rest = Vec::new();
        let r = within("server to close the connection", async {
            while let Some(l) = self.read_line().await {
                lines.push(l);
            }
            // Drain anything unterminated so the caller sees it in a panic.
            let _ = self.reader.read_to_end(&mut rest).await;
        })
        .await;
        let () = r;
        lines
    }

    /// Sends PING and collects every line before the matching PONG.
    ///
    /// Since the server answers in order, the result is exactly what it queued
    /// for this connection before it read the PING.
    pub async fn lines_until_pong(&mut self) -> Vec<String> {
        if let Err(e) = self.send("PING\r\n").await {
            panic!("cannot send PING: {e}");
        }
        let mut out = Vec::new();
        loop {
            match self.read_line().await {
                Some(l) if l == "PONG" => return out,
                Some(l) => out.push(l),
                None => panic!("connection closed before PONG; lines seen: {:?}", self.seen),
            }
        }
    }
}
