//! The client connection machine: handshake, authentication, protocol ops, PING/PONG.
//!
//! [`ClientConn`] turns the bytes a client sends into [`ConnEvent`]s for the router and into
//! protocol replies (INFO, PONG, `+OK`, `-ERR`, PING) for the client. It does no I/O and reads no
//! clock: the driver follows the crate's driving rule — after every `handle_*` call, drain
//! [`ClientConn::poll_transmit`], then [`ClientConn::poll_event`], then re-arm the timer from
//! [`ClientConn::poll_timeout`].
//!
//! Message routing, subscription bookkeeping and publish permissions live in
//! [`crate::router`], which sees every connection; this machine checks what one connection can
//! decide alone (syntax, handshake state, subscribe permissions).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use crate::auth::{AuthOutcome, Authenticator, ConnType, PermissionChecker};
use crate::proto::client::{self, ClientOp, ClientParser, ProtoError, PubMsg};
use crate::proto::info::{ConnectInfo, ServerInfo};
use crate::rng::SplitMix64;
use crate::subject;

/// Go: server/client.go firstClientPingInterval — the first PING goes out early so the RTT
/// is known soon after connect.
const FIRST_CLIENT_PING_INTERVAL: Duration = Duration::from_secs(2);

/// Why a connection was closed, with nats-server's wording (shown in `/connz` as `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed the connection.
    ClientClosed,
    /// No valid CONNECT within the auth timeout.
    AuthenticationTimeout,
    /// Bad credentials or an op before CONNECT.
    AuthenticationViolation,
    /// Outbound bytes passed `max_pending`.
    SlowConsumerPendingBytes,
    /// A write did not finish within `write_deadline`.
    SlowConsumerWriteDeadline,
    /// Too many PINGs went unanswered.
    StaleConnection,
    /// A payload larger than `max_payload`.
    MaxPayloadExceeded,
    /// A control line longer than `max_control_line`.
    MaxControlLineExceeded,
    /// Unparseable input.
    ParseError,
    /// A protocol rule was broken.
    ProtocolViolation,
    /// Reading from the socket failed.
    ReadError,
    /// Writing to the socket failed.
    WriteError,
    /// The server is shutting down.
    ServerShutdown,
    /// `max_connections` reached.
    MaxConnectionsExceeded,
    /// Closed by an operator (monitoring/system request or embedding API).
    Kicked,
    /// The TLS handshake failed.
    TlsHandshakeError,
    /// Lame duck mode closed it.
    LameDuckMode,
}

impl CloseReason {
    /// nats-server's text for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "Client Closed",
            Self::AuthenticationTimeout => "Authentication Timeout",
            Self::AuthenticationViolation => "Authentication Failure",
            Self::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            Self::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            Self::StaleConnection => "Stale Connection",
            Self::MaxPayloadExceeded => "Maximum Payload Exceeded",
            Self::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            Self::ParseError => "Parse Error",
            Self::ProtocolViolation => "Protocol Violation",
            Self::ReadError => "Read Error",
            Self::WriteError => "Write Error",
            Self::ServerShutdown => "Server Shutdown",
            Self::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            Self::Kicked => "Kicked",
            Self::TlsHandshakeError => "TLS Handshake Failure",
            Self::LameDuckMode => "Lame Duck Mode",
        }
    }
}

/// What the rest of the server must do for this connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnEvent {
    /// CONNECT was accepted: bind the connection to `outcome.account`.
    Connected {
        /// Who the client is.
        outcome: Box<AuthOutcome>,
        /// The CONNECT fields as sent.
        connect: Box<ConnectInfo>,
    },
    /// SUB passed syntax and permission checks.
    Subscribe {
        /// Subscription id, unique per connection.
        sid: Bytes,
        /// Subject, possibly with wildcards.
        subject: Bytes,
        /// Queue group.
        queue: Option<Bytes>,
    },
    /// UNSUB, now or after `max` more messages.
    Unsubscribe {
        /// Subscription id.
        sid: Bytes,
        /// Deliver this many in total before removing.
        max: Option<u64>,
    },
    /// PUB or HPUB, syntax-checked; publish permissions are the router's to check.
    Publish(PubMsg),
    /// The connection must close; a final `-ERR` (if any) is already queued.
    Closed(CloseReason),
}

/// A publish borrowed from the read buffer (see [`ClientConn::handle_input_with`]).
#[derive(Debug, Clone, Copy)]
pub struct PubRef<'a> {
    /// Subject.
    pub subject: &'a [u8],
    /// Reply subject.
    pub reply: Option<&'a [u8]>,
    /// Header block (HPUB).
    pub headers: Option<&'a [u8]>,
    /// Body.
    pub payload: &'a [u8],
}

/// Per-server settings every client connection reads.
#[derive(Debug)]
pub struct ClientConfig {
    /// INFO template: connection-specific fields are filled in per connection.
    pub info: ServerInfo,
    /// `max_control_line`.
    pub max_control_line: u32,
    /// `max_payload`.
    pub max_payload: u32,
    /// `ping_interval`.
    pub ping_interval: Duration,
    /// `ping_max`.
    pub ping_max: u32,
    /// Authentication timeout in force.
    pub auth_timeout: Duration,
    /// Who may connect.
    pub authenticator: Arc<Authenticator>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingConnect,
    Open,
    Closed,
}

/// Which timer is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    /// CONNECT must arrive before this.
    Auth,
    /// Time to send a PING (or declare the connection stale).
    Ping,
}

/// One client connection's protocol state.
#[derive(Debug)]
pub struct ClientConn {
    id: u64,
    cfg: Arc<ClientConfig>,
    parser: ClientParser,
    state: State,
    conn_type: ConnType,
    nonce: String,
    verbose: bool,
    pedantic: bool,
    tls_identities: Vec<String>,
    perms: Option<Arc<PermissionChecker>>,
    transmit: BytesMut,
    events: VecDeque<ConnEvent>,
    auth_deadline: Option<Instant>,
    next_ping: Instant,
    pings_out: u32,
    /// Input arrived since the last PING timer fired: no PING is needed to prove liveness.
    input_since_ping: bool,
    /// When the server's outstanding PING was sent, to time the PONG that answers it.
    rtt_ping_at: Option<Instant>,
    /// The last round trip measured by a server PING.
    rtt: Option<Duration>,
    #[cfg(test)]
    replay: Vec<u8>,
    #[cfg(test)]
    replay_events: Vec<ConnEvent>,
}

impl ClientConn {
    /// A new connection; its INFO is queued for transmission at once (unless `defer_info`, for
    /// TLS-first handshakes where the shell sends it after the handshake via [`Self::send_info`]).
    pub fn new(
        now: Instant,
        id: u64,
        cfg: Arc<ClientConfig>,
        client_ip: &str,
        conn_type: ConnType,
        seed: u64,
    ) -> Self {
        let mut rng = SplitMix64::new(seed);
        let nonce = if cfg.authenticator.needs_nonce() {
            crate::auth::new_nonce(&mut rng)
        } else {
            String::new()
        };
        let auth_deadline = cfg
            .authenticator
            .auth_required()
            .then(|| now + cfg.auth_timeout);
        let first = cfg.ping_interval.min(FIRST_CLIENT_PING_INTERVAL);
        // Spread first PINGs so a connect storm does not turn into a PING storm.
        let jitter_ms = rng.below(first.as_millis() as u64 / 5 + 1);
        let mut parser = ClientParser::new(cfg.max_control_line, cfg.max_payload);
        parser.set_awaiting_auth(auth_deadline.is_some());
        // Go: HPUB is refused until CONNECT asks for headers.
        parser.set_headers(false);
        let mut conn = Self {
            id,
            parser,
            cfg,
            state: State::AwaitingConnect,
            conn_type,
            nonce,
            // Go: server/client.go defaultOpts — a connection is verbose and pedantic until its
            // CONNECT says otherwise, so ops sent before CONNECT are acknowledged with +OK.
            verbose: true,
            pedantic: true,
            tls_identities: Vec::new(),
            perms: None,
            transmit: BytesMut::with_capacity(512),
            events: VecDeque::new(),
            auth_deadline,
            next_ping: now + first + Duration::from_millis(jitter_ms),
            pings_out: 0,
            input_since_ping: false,
            rtt_ping_at: None,
            rtt: None,
            #[cfg(test)]
            replay: Vec::new(),
            #[cfg(test)]
            replay_events: Vec::new(),
        };
        conn.send_info(client_ip);
        conn
    }

    /// This connection's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Will the next input possibly run a slow credential check (bcrypt)? The shell moves such
    /// input off its async worker threads.
    pub fn may_block_on_auth(&self) -> bool {
        self.state == State::AwaitingConnect && self.cfg.authenticator.uses_bcrypt()
    }

    /// Is the connection past CONNECT and not closed?
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Has the connection closed?
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Identities from the client's verified TLS certificate (for `verify_and_map`).
    pub fn set_tls_identities(&mut self, identities: Vec<String>) {
        self.tls_identities = identities;
    }

    /// The nonce sent in INFO, if any.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// Queues this connection's INFO.
    fn send_info(&mut self, client_ip: &str) {
        let mut info = self.cfg.info.clone();
        info.client_id = self.id;
        info.client_ip = client_ip.to_owned();
        info.nonce = self.nonce.clone();
        info.auth_required = self.cfg.authenticator.info_auth_required();
        client::encode_info(&mut self.transmit, &info);
    }

    /// Queues an asynchronous INFO update (e.g. `ldm: true`, new `connect_urls`).
    pub fn send_info_update(&mut self, info: &ServerInfo) {
        if self.state == State::Open {
            client::encode_info(&mut self.transmit, info);
        }
    }

    /// Eats complete ops from the front of `buf`; a partial op stays in `buf`.
    ///
    /// Stops after the first op that emits an event, so that replies to later ops (a PONG, say)
    /// never overtake the routing of earlier ones: PING/PONG is the clients' flush barrier.
    /// Returns true when it stopped early; the driver drains, then calls again.
    pub fn handle_input(&mut self, now: Instant, buf: &mut BytesMut) -> bool {
        while self.state != State::Closed {
            match self.parser.parse(buf) {
                Ok(Some(op)) => {
                    self.input_since_ping = true;
                    self.handle_op(now, op);
                    if !self.events.is_empty() {
                        return self.state != State::Closed && !buf.is_empty();
                    }
                }
                Ok(None) => return false,
                Err(e) => {
                    self.protocol_error(&e);
                    return false;
                }
            }
        }
        false
    }

    /// Like [`Self::handle_input`], but plainly formatted publishes of at most `max_fast` payload
    /// bytes are handed straight to `on_pub`, borrowed from `buf`, instead of becoming
    /// [`ConnEvent::Publish`] events: no copies, no refcounts, no event queue on the hot path.
    ///
    /// The lane is only taken while nothing else is pending (no transmit, no event), so every
    /// reply keeps its place in wire order; verbose and pedantic connections never take it.
    pub fn handle_input_with<F>(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
        max_fast: usize,
        mut on_pub: F,
    ) -> bool
    where
        F: FnMut(&PubRef<'_>),
    {
        loop {
            if self.state != State::Open
                || self.verbose
                || self.pedantic
                || !self.transmit.is_empty()
                || !self.events.is_empty()
            {
                break;
            }
            let Some(fp) = self.parser.fast_pub(buf, max_fast) else {
                break;
            };
            self.input_since_ping = true;
            on_pub(&PubRef {
                subject: &buf[fp.subject],
                reply: fp.reply.map(|r| &buf[r]),
                headers: fp.headers.map(|h| &buf[h]),
                payload: &buf[fp.payload],
            });
            buf.advance(fp.consumed);
        }
        self.handle_input(now, buf)
    }

    fn protocol_error(&mut self, e: &ProtoError) {
        // Go: most parser errors close silently; only a few say why on the wire.
        if e.sends_err() {
            client::encode_err(&mut self.transmit, &e.err_text());
        } else {
            tracing::debug!(cid = self.id, error = %e, "client protocol error");
        }
        if e.closes() {
            let reason = match e {
                ProtoError::MaxPayload { .. } => CloseReason::MaxPayloadExceeded,
                ProtoError::MaxControlLine { .. } => CloseReason::MaxControlLineExceeded,
                ProtoError::AuthViolation => CloseReason::AuthenticationViolation,
                ProtoError::UnknownOp => CloseReason::ParseError,
                _ => CloseReason::ProtocolViolation,
            };
            self.close(reason);
        }
    }

    fn ok(&mut self) {
        if self.verbose {
            self.transmit.extend_from_slice(client::OK);
        }
    }

    fn err(&mut self, text: &str) {
        client::encode_err(&mut self.transmit, text);
    }

    /// Sends `-ERR 'text'` (used by the router for publish permission violations and limits).
    pub fn send_err(&mut self, text: &str) {
        self.err(text);
    }

    fn close(&mut self, reason: CloseReason) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.events.push_back(ConnEvent::Closed(reason));
        }
    }

    /// Closes from outside (shutdown, kick, slow consumer detected by a writer, EOF...).
    pub fn handle_close(&mut self, reason: CloseReason) {
        self.close(reason);
    }

    fn handle_op(&mut self, now: Instant, op: ClientOp) {
        match op {
            ClientOp::Connect(info) => self.handle_connect(now, *info),
            ClientOp::Pub(msg) => self.handle_pub(msg),
            ClientOp::Sub {
                subject,
                queue,
                sid,
            } => self.handle_sub(subject, queue, sid),
            ClientOp::Unsub { sid, max } => {
                self.events.push_back(ConnEvent::Unsubscribe { sid, max });
                self.ok();
            }
            ClientOp::Ping => {
                self.transmit.extend_from_slice(client::PONG);
            }
            ClientOp::Pong => {
                self.pings_out = 0;
                // Go: server/client.go processPong — the answer to our PING times the round trip.
                if let Some(sent) = self.rtt_ping_at.take() {
                    self.rtt = Some(now.saturating_duration_since(sent));
                }
            }
            // Clients have no business sending these; nats-server ignores them from clients.
            ClientOp::Info(_) | ClientOp::Ok | ClientOp::Err(_) => {}
        }
    }

    fn handle_connect(&mut self, _now: Instant, info: ConnectInfo) {
        if self.state == State::Open {
            // A second CONNECT only updates the protocol flags, as in nats-server.
            self.verbose = info.verbose;
            self.pedantic = info.pedantic;
            self.parser.set_headers(info.headers);
            self.ok();
            return;
        }
        if info.no_responders && !info.headers {
            self.err("no responders requires headers support");
            self.close(CloseReason::ProtocolViolation);
            return;
        }
        let outcome = match self.cfg.authenticator.authenticate(
            &info,
            self.nonce.as_bytes(),
            &self.tls_identities,
            self.conn_type,
        ) {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(cid = self.id, reason = %e, "authentication failed");
                self.err("Authorization Violation");
                self.close(CloseReason::AuthenticationViolation);
                return;
            }
        };
        self.verbose = info.verbose;
        self.pedantic = info.pedantic;
        self.perms = outcome
            .permissions
            .as_ref()
            .map(|p| Arc::new(PermissionChecker::new(p)));
        self.state = State::Open;
        self.auth_deadline = None;
        self.parser.set_awaiting_auth(false);
        self.parser.set_headers(info.headers);
        self.events.push_back(ConnEvent::Connected {
            outcome: Box::new(outcome),
            connect: Box::new(info),
        });
        self.ok();
    }

    /// The permission checker bound at CONNECT, if the user has permissions.
    pub fn permissions(&self) -> Option<&Arc<PermissionChecker>> {
        self.perms.as_ref()
    }

    fn handle_pub(&mut self, msg: PubMsg) {
        if self.pedantic && !subject::is_valid_literal_subject(&msg.subject) {
            // Go: server/client.go processPub — pedantic mode reports the subject but still
            // processes the message (and acknowledges it when verbose).
            self.err("Invalid Publish Subject");
        }
        self.events.push_back(ConnEvent::Publish(msg));
        self.ok();
    }

    fn handle_sub(&mut self, subj: Bytes, queue: Option<Bytes>, sid: Bytes) {
        if !subject::is_valid_subject(&subj) {
            self.err("Invalid Subject");
            return;
        }
        if let Some(q) = &queue {
            if !subject::is_valid_queue(q) {
                self.err("Invalid Queue Name");
                return;
            }
        }
        if let Some(p) = &self.perms {
            if !p.can_subscribe(&subj, queue.as_deref()) {
                let text = match &queue {
                    Some(q) => format!(
                        "Permissions Violation for Subscription to \"{}\" using queue \"{}\"",
                        String::from_utf8_lossy(&subj),
                        String::from_utf8_lossy(q)
                    ),
                    None => format!(
                        "Permissions Violation for Subscription to \"{}\"",
                        String::from_utf8_lossy(&subj)
                    ),
                };
                self.err(&text);
                return;
            }
        }
        self.events.push_back(ConnEvent::Subscribe {
            sid,
            subject: subj,
            queue,
        });
        self.ok();
    }

    /// Fires due timers; early or spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if let Some(deadline) = self.auth_deadline {
            if now >= deadline {
                self.err("Authentication Timeout");
                self.close(CloseReason::AuthenticationTimeout);
                return;
            }
        }
        if now >= self.next_ping {
            self.next_ping = now + self.cfg.ping_interval;
            if self.input_since_ping && self.state == State::Open && self.rtt.is_some() {
                // Go: server/client.go processPingTimer — recent client activity proves the
                // connection alive; skip this PING, unless no round trip was measured yet.
                self.input_since_ping = false;
                self.pings_out = 0;
                return;
            }
            self.input_since_ping = false;
            if self.pings_out + 1 > self.cfg.ping_max {
                self.err("Stale Connection");
                self.close(CloseReason::StaleConnection);
                return;
            }
            self.pings_out += 1;
            self.rtt_ping_at = Some(now);
            self.transmit.extend_from_slice(client::PING);
        }
    }

    /// The round-trip time the last answered server PING measured (`/connz` `rtt`).
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Bytes to send to the client, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.transmit.is_empty()).then(|| self.transmit.split().freeze())
    }

    /// The next event for the router, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ConnEvent> {
        self.events.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Instant, TimerKind)> {
        if self.state == State::Closed {
            return None;
        }
        let ping = (self.next_ping, TimerKind::Ping);
        match self.auth_deadline {
            Some(a) if a < ping.0 => Some((a, TimerKind::Auth)),
            _ => Some(ping),
        }
    }
}

// The tests take one arbitrary starting instant; every later time is derived from it.
#[allow(clippy::disallowed_methods)]
#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{Options, User};

    fn cfg(opts: &Options) -> Arc<ClientConfig> {
        Arc::new(ClientConfig {
            info: ServerInfo {
                server_id: "NTEST".into(),
                version: "2.9.10".into(),
                max_payload: opts.max_payload,
                ..ServerInfo::default()
            },
            max_control_line: opts.max_control_line,
            max_payload: opts.max_payload,
            ping_interval: opts.ping_interval,
            ping_max: opts.ping_max,
            auth_timeout: opts.auth_timeout(),
            authenticator: Arc::new(Authenticator::new(opts)),
        })
    }

    fn out(c: &mut ClientConn) -> String {
        let mut s = std::mem::take(&mut c.replay);
        while let Some(b) = c.poll_transmit() {
            s.extend_from_slice(&b);
        }
        String::from_utf8(s).unwrap()
    }

    fn events(c: &mut ClientConn) -> Vec<ConnEvent> {
        let mut v: Vec<ConnEvent> = c.replay_events.drain(..).collect();
        v.extend(std::iter::from_fn(|| c.poll_event()));
        v
    }

    #[test]
    fn fast_lane_keeps_wire_order() {
        let t0 = Instant::now();
        let mut c = ClientConn::new(
            t0,
            1,
            cfg(&Options::default()),
            "127.0.0.1",
            ConnType::Standard,
            1,
        );
        let _ = c.poll_transmit();
        let mut b = BytesMut::from(&b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPUB a 1\r\nx\r\nPING\r\nPUB b 1\r\ny\r\n"[..]);
        // What a driver sees, in order: fast publishes, transmits, events.
        let mut seen: Vec<String> = Vec::new();
        let mut more = true;
        while more {
            more = c.handle_input_with(t0, &mut b, 2048, |p| {
                seen.push(format!("fast {}", String::from_utf8_lossy(p.subject)));
            });
            while let Some(t) = c.poll_transmit() {
                seen.push(format!("tx {}", String::from_utf8_lossy(&t).trim_end()));
            }
            while let Some(e) = c.poll_event() {
                seen.push(match e {
                    ConnEvent::Publish(m) => {
                        format!("event {}", String::from_utf8_lossy(&m.subject))
                    }
                    ConnEvent::Connected { .. } => "connected".to_owned(),
                    other => format!("{other:?}"),
                });
            }
        }
        assert_eq!(seen, ["connected", "fast a", "tx PONG", "event b"]);
    }

    #[test]
    fn pong_never_overtakes_earlier_publishes() {
        let t0 = Instant::now();
        let mut c = ClientConn::new(
            t0,
            1,
            cfg(&Options::default()),
            "127.0.0.1",
            ConnType::Standard,
            1,
        );
        let _ = c.poll_transmit();
        let mut b = BytesMut::from(&b"CONNECT {\"verbose\":false}\r\nPUB a 1\r\nx\r\nPING\r\n"[..]);
        assert!(c.handle_input(t0, &mut b));
        assert!(matches!(c.poll_event(), Some(ConnEvent::Connected { .. })));
        assert!(c.poll_transmit().is_none());
        assert!(c.handle_input(t0, &mut b));
        assert!(matches!(c.poll_event(), Some(ConnEvent::Publish(_))));
        assert!(
            c.poll_transmit().is_none(),
            "no PONG before the PUB is routed"
        );
        assert!(!c.handle_input(t0, &mut b));
        assert_eq!(&c.poll_transmit().unwrap()[..], b"PONG\r\n");
    }

    /// Feeds input, collecting events as a driver would, and keeps them for `events`.
    fn feed(c: &mut ClientConn, now: Instant, s: &str) {
        let mut b = BytesMut::from(s.as_bytes());
        while c.handle_input(now, &mut b) {
            let mut t = Vec::new();
            while let Some(x) = c.poll_transmit() {
                t.extend_from_slice(&x);
            }
            c.replay.extend_from_slice(&t);
            while let Some(e) = c.poll_event() {
                c.replay_events.push(e);
            }
        }
    }

    fn auth_opts() -> Options {
        Options {
            authorization: crate::options::Authorization {
                users: vec![User {
                    username: Some("u".into()),
                    password: Some("p".into()),
                    ..User::default()
                }],
                ..Default::default()
            },
            ..Options::default()
        }
    }

    #[test]
    fn info_first_then_connect_and_pub() {
        let t0 = Instant::now();
        let mut c = ClientConn::new(
            t0,
            7,
            cfg(&Options::default()),
            "127.0.0.1",
            ConnType::Standard,
            1,
        );
        let info = out(&mut c);
        assert!(info.starts_with("INFO {"), "{info}");
        assert!(info.contains("\"client_id\":7"));
        assert!(!info.contains("auth_required"));
        feed(
            &mut c,
            t0,
            "CONNECT {\"verbose\":true}\r\nPUB a 2\r\nhi\r\nPING\r\n",
        );
        assert_eq!(out(&mut c), "+OK\r\n+OK\r\nPONG\r\n");
        let ev = events(&mut c);
        assert!(matches!(ev[0], ConnEvent::Connected { .. }));
        assert!(
            matches!(&ev[1], ConnEvent::Publish(m) if &m.subject[..] == b"a" && &m.payload[..] == b"hi")
        );
    }

    #[test]
    fn auth_required_rejects_ops_before_connect() {
        let t0 = Instant::now();
        let mut c = ClientConn::new(t0, 1, cfg(&auth_opts()), "127.0.0.1", ConnType::Standard, 1);
        assert!(out(&mut c).contains("\"auth_required\":true"));
        feed(&mut c, t0, "PUB a 0\r\n\r\n");
        assert_eq!(out(&mut c), "-ERR 'Authorization Violation'\r\n");
        assert!(matches!(
            events(&mut c)[..],
            [ConnEvent::Closed(CloseReason::AuthenticationViolation)]
        ));
    }

    #[test]
    fn bad_credentials_are_an_authorization_violation() {
        let t0 = Instant::now();
        let mut c = ClientConn::new(t0, 1, cfg(&auth_opts()), "127.0.0.1", ConnType::Standard, 1);
        out(&mut c);
        feed(
            &mut c,
            t0,
            "CONNECT {\"user\":\"u\",\"pass\":\"wrong\"}\r\n",
        );
        assert_eq!(out(&mut c), "-ERR 'Authorization Violation'\r\n");
        assert!(c.is_closed());
        let mut c = ClientConn::new(t0, 2, cfg(&auth_opts()), "127.0.0.1", ConnType::Standard, 1);
        out(&mut c);
        feed(
            &mut c,
            t0,
            "CONNECT {\"verbose\":false,\"user\":\"u\",\"pass\":\"p\"}\r\nPING\r\n",
        );
        assert_eq!(out(&mut c), "PONG\r\n");
        assert!(c.is_open());
    }

    #[test]
    fn auth_timeout_fires_only_when_due() {
        let t0 = Instant::now();
        let mut c = ClientConn::new(t0, 1, cfg(&auth_opts()), "127.0.0.1", ConnType::Standard, 1);
        out(&mut c);
        let (deadline, kind) = c.poll_timeout().unwrap();
        assert_eq!(kind, TimerKind::Auth);
        assert_eq!(deadline, t0 + Duration::from_secs(2));
        c.handle_timeout(t0 + Duration::from_millis(1999));
        assert!(!c.is_closed());
        c.handle_timeout(deadline);
        assert_eq!(out(&mut c), "-ERR 'Authentication Timeout'\r\n");
        assert!(matches!(
            events(&mut c)[..],
            [ConnEvent::Closed(CloseReason::AuthenticationTimeout)]
        ));
        assert!(c.poll_timeout().is_none());
    }

    #[test]
    fn unanswered_pings_make_a_stale_connection() {
        let t0 = Instant::now();
        let opts = Options {
            ping_interval: Duration::from_secs(10),
            ping_max: 2,
            ..Options::default()
        };
        let mut c = ClientConn::new(t0, 1, cfg(&opts), "127.0.0.1", ConnType::Standard, 1);
        feed(
            &mut c,
            t0,
            "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n",
        );
        out(&mut c);
        events(&mut c);
        let mut pings = 0;
        let mut now = t0;
        for _ in 0..10 {
            let Some((t, kind)) = c.poll_timeout() else {
                break;
            };
            assert_eq!(kind, TimerKind::Ping);
            assert!(t >= now, "timer moves forward");
            now = t;
            c.handle_timeout(now);
            let o = out(&mut c);
            pings += o.matches("PING").count();
            if c.is_closed() {
                assert!(o.ends_with("-ERR 'Stale Connection'\r\n"), "{o}");
                break;
            }
        }
        assert!(c.is_closed());
        // The first timer may be skipped because CONNECT counted as activity.
        assert_eq!(pings, 2);
    }

    #[test]
    fn pong_resets_outstanding_pings() {
        let t0 = Instant::now();
        let opts = Options {
            ping_interval: Duration::from_secs(10),
            ping_max: 1,
            ..Options::default()
        };
        let mut c = ClientConn::new(t0, 1, cfg(&opts), "127.0.0.1", ConnType::Standard, 1);
        feed(
            &mut c,
            t0,
            "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n",
        );
        out(&mut c);
        let mut now = t0;
        for _ in 0..20 {
            let (t, _) = c.poll_timeout().unwrap();
            now = t;
            c.handle_timeout(now);
            if out(&mut c).contains("PING") {
                // Answer the PING only (no other input), as an idle client would.
                feed(&mut c, now, "PONG\r\n");
                c.input_since_ping = false;
            }
        }
        assert!(c.is_open());
        assert!(now > t0 + Duration::from_secs(100));
    }

    #[test]
    fn the_pong_to_a_server_ping_measures_the_round_trip() {
        let t0 = Instant::now();
        let opts = Options {
            ping_interval: Duration::from_secs(10),
            ..Options::default()
        };
        let mut c = ClientConn::new(t0, 1, cfg(&opts), "127.0.0.1", ConnType::Standard, 1);
        feed(&mut c, t0, "CONNECT {\"verbose\":false}\r\nPING\r\n");
        out(&mut c);
        // The client's own PING is answered, not timed.
        assert_eq!(c.rtt(), None);
        // A busy client still gets a PING while no round trip is known (Go: needRTT).
        let sent = loop {
            let (now, _) = c.poll_timeout().expect("ping timer armed");
            feed(&mut c, now, "PUB x 0\r\n\r\n");
            c.handle_timeout(now);
            if out(&mut c).contains("PING") {
                break now;
            }
            assert!(now < t0 + Duration::from_secs(60), "no PING sent");
        };
        feed(&mut c, sent + Duration::from_millis(7), "PONG\r\n");
        assert_eq!(c.rtt(), Some(Duration::from_millis(7)));
        // Once measured, activity suppresses the next PING as before.
        let (t, _) = c.poll_timeout().expect("ping timer armed");
        feed(&mut c, t, "PUB x 0\r\n\r\n");
        c.handle_timeout(t);
        assert!(!out(&mut c).contains("PING"));
        assert_eq!(c.rtt(), Some(Duration::from_millis(7)));
    }

    #[test]
    fn invalid_subjects_and_queues_are_refused_but_not_fatal() {
        let t0 = Instant::now();
        let mut c = ClientConn::new(
            t0,
            1,
            cfg(&Options::default()),
            "127.0.0.1",
            ConnType::Standard,
            1,
        );
        out(&mut c);
        feed(
            &mut c,
            t0,
            "CONNECT {\"verbose\":false,\"pedantic\":true}\r\nSUB foo..bar 1\r\nPUB foo.* 0\r\n\r\nSUB ok 2\r\n",
        );
        assert_eq!(
            out(&mut c),
            "-ERR 'Invalid Subject'\r\n-ERR 'Invalid Publish Subject'\r\n"
        );
        let ev = events(&mut c);
        // Go: the pedantic complaint does not stop the publish.
        assert!(matches!(&ev[1], ConnEvent::Publish(m) if &m.subject[..] == b"foo.*"));
        assert!(matches!(&ev[2], ConnEvent::Subscribe { sid, .. } if &sid[..] == b"2"));
        assert!(c.is_open());
    }

    #[test]
    fn verbose_and_pedantic_until_connect() {
        // Go: server/client.go defaultOpts apply from the first byte: without authentication,
        // ops before CONNECT are acknowledged, PING only ever gets PONG.
        let t0 = Instant::now();
        let mut c = ClientConn::new(
            t0,
            1,
            cfg(&Options::default()),
            "127.0.0.1",
            ConnType::Standard,
            1,
        );
        out(&mut c);
        feed(
            &mut c,
            t0,
            "PING\r\nSUB foo 1\r\nPUB foo.* 0\r\n\r\nUNSUB 1\r\nCONNECT {\"verbose\":false}\r\nSUB a 2\r\nPING\r\n",
        );
        assert_eq!(
            out(&mut c),
            "PONG\r\n+OK\r\n-ERR 'Invalid Publish Subject'\r\n+OK\r\n+OK\r\nPONG\r\n"
        );
    }

    #[test]
    fn no_responders_needs_headers() {
        let t0 = Instant::now();
        let mut c = ClientConn::new(
            t0,
            1,
            cfg(&Options::default()),
            "127.0.0.1",
            ConnType::Standard,
            1,
        );
        out(&mut c);
        feed(
            &mut c,
            t0,
            "CONNECT {\"verbose\":false,\"no_responders\":true}\r\n",
        );
        assert_eq!(
            out(&mut c),
            "-ERR 'no responders requires headers support'\r\n"
        );
        assert!(c.is_closed());
    }

    #[test]
    fn max_payload_closes_with_reason() {
        let t0 = Instant::now();
        let opts = Options {
            max_payload: 4,
            ..Options::default()
        };
        let mut c = ClientConn::new(t0, 1, cfg(&opts), "127.0.0.1", ConnType::Standard, 1);
        out(&mut c);
        feed(
            &mut c,
            t0,
            "CONNECT {\"verbose\":false}\r\nPUB a 5\r\nhello\r\n",
        );
        assert_eq!(out(&mut c), "-ERR 'Maximum Payload Violation'\r\n");
        let ev = events(&mut c);
        assert!(matches!(
            ev.last(),
            Some(ConnEvent::Closed(CloseReason::MaxPayloadExceeded))
        ));
    }
}
