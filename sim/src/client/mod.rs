//! A small NATS client for the sim: one connection over a turmoil `TcpStream`, driven by the
//! task that owns it (no background tasks, so a "stalled" client is one that stops calling).
//!
//! Every wait has a deadline in sim time: turmoil's TCP never retransmits across a partition,
//! so a dead link looks like silence, and only deadlines turn silence into a reconnect.

pub mod js;
pub mod proto;

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use turmoil::net::TcpStream;

use crate::trace::{EventKind, Trace};
pub use proto::{Msg, ServerOp};

/// Why a client call failed. After any of these errors the connection is unusable: drop it
/// and reconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The deadline passed.
    Timeout,
    /// The server closed the connection.
    Closed,
    /// Socket error (refused, reset, broken pipe).
    Io(String),
    /// The server sent something unparsable.
    Proto(String),
    /// The server rejected the connection with `-ERR`.
    Rejected(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("timeout"),
            Self::Closed => f.write_str("closed by server"),
            Self::Io(e) => write!(f, "io: {e}"),
            Self::Proto(e) => write!(f, "protocol: {e}"),
            Self::Rejected(e) => write!(f, "rejected: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.kind().to_string())
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ClientOpts {
    /// Client name: the trace label and the CONNECT `name`.
    pub name: String,
    /// `host:port` of the server.
    pub server: String,
    /// User name, if any.
    pub user: Option<String>,
    /// Password.
    pub pass: Option<String>,
    /// Receive own publishes.
    pub echo: bool,
}

impl ClientOpts {
    /// Anonymous client `name` of the server at `server` (`host:port`).
    pub fn new(name: &str, server: &str) -> Self {
        Self {
            name: name.to_owned(),
            server: server.to_owned(),
            user: None,
            pass: None,
            echo: true,
        }
    }

    /// With user and password.
    pub fn user(mut self, user: &str, pass: &str) -> Self {
        self.user = Some(user.to_owned());
        self.pass = Some(pass.to_owned());
        self
    }
}

/// The outcome of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A response.
    Msg(Msg),
    /// The server said nobody listens (status 503).
    NoResponders,
}

/// One live connection.
#[derive(Debug)]
pub struct Client {
    name: String,
    epoch: u32,
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Messages read while waiting for something else (a PONG, a reply).
    pending: VecDeque<Msg>,
    next_sid: u64,
    inbox_sid: Option<u64>,
    next_req: u64,
    trace: Trace,
    /// Server `-ERR`s seen on this connection, in order.
    pub errors: Vec<String>,
}

/// Bound on messages buffered while waiting for a PONG or a reply; beyond it the oldest are
/// handed out anyway (recorded) so memory stays bounded.
const MAX_PENDING_MSGS: usize = 100_000;

impl Client {
    /// Connects, sends CONNECT and waits for the PONG that proves it was accepted.
    /// `epoch` labels this connection in the trace (count reconnects with it).
    pub async fn connect(
        trace: &Trace,
        opts: &ClientOpts,
        epoch: u32,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let deadline = Instant::now() + timeout;
        let r = Self::connect_inner(trace, opts, epoch, deadline).await;
        match &r {
            Ok(_) => trace.record(&opts.name, EventKind::Connected { epoch }),
            Err(e) => trace.record(
                &opts.name,
                EventKind::ConnectFailed {
                    reason: e.to_string(),
                },
            ),
        }
        r
    }

    async fn connect_inner(
        trace: &Trace,
        opts: &ClientOpts,
        epoch: u32,
        deadline: Instant,
    ) -> Result<Self, ClientError> {
        let stream = tokio::time::timeout_at(deadline, TcpStream::connect(opts.server.as_str()))
            .await
            .map_err(|_| ClientError::Timeout)??;
        let mut c = Self {
            name: opts.name.clone(),
            epoch,
            stream,
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: BytesMut::new(),
            pending: VecDeque::new(),
            next_sid: 1,
            inbox_sid: None,
            next_req: 0,
            trace: trace.clone(),
            errors: Vec::new(),
        };
        match c.read_op(deadline).await? {
            ServerOp::Info(_) => {}
            other => return Err(ClientError::Proto(format!("expected INFO, got {other:?}"))),
        }
        proto::encode_connect(
            &mut c.wbuf,
            &opts.name,
            opts.user.as_deref(),
            opts.pass.as_deref(),
            opts.echo,
        );
        c.wbuf.extend_from_slice(b"PING\r\n");
        c.write_out(deadline).await?;
        loop {
            match c.read_op(deadline).await? {
                ServerOp::Pong => return Ok(c),
                ServerOp::Err(e) => return Err(ClientError::Rejected(e)),
                ServerOp::Msg(m) => c.pending.push_back(m),
                ServerOp::Info(_) | ServerOp::Ok | ServerOp::Ping => {}
            }
        }
    }

    /// The client's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This connection's epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Records in the trace that this connection is being given up, and drops it.
    pub fn close(self, reason: &str) {
        self.trace.record(
            &self.name,
            EventKind::Disconnected {
                epoch: self.epoch,
                reason: reason.to_owned(),
            },
        );
    }

    /// Publishes `payload` to `subject`.
    pub async fn publish(
        &mut self,
        subject: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.publish_with_reply(subject, None, payload, timeout)
            .await
    }

    /// Publishes with a reply subject.
    pub async fn publish_with_reply(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.publish_full(subject, reply, None, payload, timeout)
            .await
    }

    /// Publishes with an optional reply subject and an optional header block (`HPUB`).
    pub async fn publish_full(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(), ClientError> {
        match headers {
            Some(h) => proto::encode_hpub(&mut self.wbuf, subject, reply, h, payload),
            None => proto::encode_pub(&mut self.wbuf, subject, reply, payload),
        }
        self.write_out(Instant::now() + timeout).await?;
        self.trace.record(
            &self.name,
            EventKind::Published {
                epoch: self.epoch,
                subject: subject.to_owned(),
                payload: String::from_utf8_lossy(payload).into_owned(),
            },
        );
        Ok(())
    }

    /// Subscribes; returns the sid.
    pub async fn subscribe(
        &mut self,
        subject: &str,
        queue: Option<&str>,
        timeout: Duration,
    ) -> Result<u64, ClientError> {
        let sid = self.next_sid;
        self.next_sid += 1;
        proto::encode_sub(&mut self.wbuf, subject, queue, sid);
        self.write_out(Instant::now() + timeout).await?;
        Ok(sid)
    }

    /// Unsubscribes, at once or after `max` more messages.
    pub async fn unsubscribe(
        &mut self,
        sid: u64,
        max: Option<u64>,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        proto::encode_unsub(&mut self.wbuf, sid, max);
        self.write_out(Instant::now() + timeout).await
    }

    /// PING, then wait for the PONG: everything sent before has been processed by the server.
    pub async fn flush(&mut self, timeout: Duration) -> Result<(), ClientError> {
        let deadline = Instant::now() + timeout;
        self.wbuf.extend_from_slice(b"PING\r\n");
        self.write_out(deadline).await?;
        loop {
            match self.read_op(deadline).await? {
                ServerOp::Pong => return Ok(()),
                ServerOp::Msg(m) => self.stash(m),
                ServerOp::Info(_) | ServerOp::Ok | ServerOp::Ping | ServerOp::Err(_) => {}
            }
        }
    }

    /// The next message, or `Ok(None)` when `timeout` passes first.
    pub async fn next_msg(&mut self, timeout: Duration) -> Result<Option<Msg>, ClientError> {
        if let Some(m) = self.pending.pop_front() {
            self.record_recv(&m);
            return Ok(Some(m));
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_op(deadline).await {
                Ok(ServerOp::Msg(m)) => {
                    self.record_recv(&m);
                    return Ok(Some(m));
                }
                Ok(_) => {}
                Err(ClientError::Timeout) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a request and waits for its first response (or a no-responders status).
    /// Responses to earlier, timed-out requests are dropped (recorded as received).
    pub async fn request(
        &mut self,
        subject: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Reply, ClientError> {
        self.request_with_headers(subject, None, payload, timeout)
            .await
    }

    /// [`Client::request`] with an optional header block.
    pub async fn request_with_headers(
        &mut self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Reply, ClientError> {
        let deadline = Instant::now() + timeout;
        let prefix = format!("_INBOX.{}.{}", self.name, self.epoch);
        let inbox_sid = match self.inbox_sid {
            Some(s) => s,
            None => {
                let s = self
                    .subscribe(&format!("{prefix}.*"), None, timeout)
                    .await?;
                self.inbox_sid = Some(s);
                s
            }
        };
        self.next_req += 1;
        let reply = format!("{prefix}.{}", self.next_req);
        self.publish_full(subject, Some(&reply), headers, payload, timeout)
            .await?;
        loop {
            let op = match self.pending.iter().position(|m| m.subject == reply) {
                Some(i) => self.pending.remove(i).map(ServerOp::Msg),
                None => None,
            };
            let op = match op {
                Some(op) => op,
                None => self.read_op(deadline).await?,
            };
            let ServerOp::Msg(m) = op else { continue };
            if m.sid == inbox_sid && m.subject == reply {
                self.record_recv(&m);
                if m.status() == Some(503) {
                    return Ok(Reply::NoResponders);
                }
                return Ok(Reply::Msg(m));
            }
            if m.sid == inbox_sid {
                // A late reply to an earlier request: seen, then dropped.
                self.record_recv(&m);
            } else {
                self.stash(m);
            }
        }
    }

    fn stash(&mut self, m: Msg) {
        if self.pending.len() >= MAX_PENDING_MSGS {
            if let Some(old) = self.pending.pop_front() {
                self.record_recv(&old);
            }
        }
        self.pending.push_back(m);
    }

    fn record_recv(&self, m: &Msg) {
        self.trace.record(
            &self.name,
            EventKind::Received {
                epoch: self.epoch,
                sid: m.sid,
                subject: m.subject.clone(),
                payload: String::from_utf8_lossy(&m.payload).into_owned(),
                status: m.status(),
            },
        );
    }

    async fn write_out(&mut self, deadline: Instant) -> Result<(), ClientError> {
        let buf = self.wbuf.split().freeze();
        tokio::time::timeout_at(deadline, self.stream.write_all(&buf))
            .await
            .map_err(|_| ClientError::Timeout)??;
        Ok(())
    }

    /// Reads the next op that is not a PING (PINGs are answered here); `-ERR`s are recorded and
    /// returned.
    async fn read_op(&mut self, deadline: Instant) -> Result<ServerOp, ClientError> {
        loop {
            match proto::parse(&mut self.rbuf) {
                Err(e) => return Err(ClientError::Proto(e.0)),
                Ok(Some(ServerOp::Ping)) => {
                    self.wbuf.extend_from_slice(b"PONG\r\n");
                    self.write_out(deadline).await?;
                    continue;
                }
                Ok(Some(op)) => {
                    if let ServerOp::Err(text) = &op {
                        self.errors.push(text.clone());
                        self.trace.record(
                            &self.name,
                            EventKind::ServerError {
                                epoch: self.epoch,
                                text: text.clone(),
                            },
                        );
                    }
                    return Ok(op);
                }
                Ok(None) => {}
            }
            if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                self.rbuf.reserve(16 * 1024);
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.rbuf))
                .await
                .map_err(|_| ClientError::Timeout)??;
            if n == 0 {
                return Err(ClientError::Closed);
            }
        }
    }
}
