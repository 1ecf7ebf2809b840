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
    /// A new connection; its INFO is queued for transmission at once.
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
mod tests;
