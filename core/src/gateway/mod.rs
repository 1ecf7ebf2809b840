//! The gateway connection machine: one TCP connection between two clusters of a
//! super-cluster.
//!
//! Gateway connections are one-way, as in nats-server 2.9.10: every server opens its own
//! *outbound* connection to each remote cluster and sends its messages there; the remote's
//! server that accepted it (the *inbound* side) tells it, on that same connection, what its
//! whole cluster is interested in (`RS+`/`RS-`) and receives the messages (`RMSG`/`HMSG`).
//!
//! [`GatewayConn`] speaks that protocol ([`crate::proto::route`]'s parser and encoders: the ops
//! are the route ops) in both roles:
//!
//! - *outbound* (we dialed a configured or gossiped gateway URL): the peer's INFO comes first;
//!   we check its gateway name and answer with CONNECT and our own INFO. Later INFOs are gossip
//!   about third clusters ([`GatewayEvent::Gossip`]) and the interest-mode commands; `RS+`/`RS-`
//!   are the remote cluster's interest.
//! - *inbound* (the peer dialed our gateway port): we send INFO at once, expect CONNECT (with
//!   `gateway` set, and our credentials if `authorization` is configured), then the peer's INFO.
//!
//! Interest-only mode: our INFO advertises `gateway_iom`, and the inbound side switches each
//! account with nats-server's commands (INFO `gateway_cmd` 2, every `RS+` of the account, INFO
//! `gateway_cmd` 3: [`GatewayConn::send_all_subs`]). An outbound connection treats a peer with
//! `gateway_iom` as interest-only for every account; toward a peer without it (older servers'
//! optimistic mode) nothing is sent until its interest is known (see README).
//!
//! No I/O and no clock: drive it as the crate docs say (after every `handle_*` or `send_*`
//! call, drain [`GatewayConn::poll_transmit`], then [`GatewayConn::poll_event`], then re-arm
//! the timer from [`GatewayConn::poll_timeout`]).
//!
//! The input loop is the gateway's own rather than shared with the route and leaf machines
//! (the three differ in what each op means before the handshake ends); folding them into one
//! shared loop is left for later.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

pub use crate::link::CloseReason as GatewayCloseReason;
use crate::link::{close_reason, password_matches, Keepalive, Tick};
use crate::linkout::LinkOut;
use crate::outbound::StallGate;
use crate::proto::route::{
    self as proto, MsgHeader, RemoteSub, RemoteUnsub, RouteConnect, RouteInfo, RouteOp,
    RouteParser, RouteProtoError, RoutedMsg,
};

mod reply;
#[cfg(test)]
mod tests;

pub use reply::{
    gw_hash, is_routed_reply, split_routed_reply, ReplyPrefix, GW_HASH_LEN, GW_REPLY_PREFIX,
};

/// Go: server/server.go firstPingInterval.
const FIRST_PING_INTERVAL: Duration = Duration::from_secs(1);

/// Go: gateway.go gatewayCmdGossip — an INFO naming another cluster to connect to.
pub const CMD_GOSSIP: u8 = 1;
/// Go: gatewayCmdAllSubsStart — every subscription of an account follows.
pub const CMD_ALL_SUBS_START: u8 = 2;
/// Go: gatewayCmdAllSubsComplete — the account is now in interest-only mode.
pub const CMD_ALL_SUBS_COMPLETE: u8 = 3;

/// What the server must do about this gateway connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GatewayEvent {
    /// The handshake is done. Outbound: register as our connection to cluster `name` (or
    /// close with [`GatewayCloseReason::WrongGateway`] if one exists). Inbound: register,
    /// send our interest ([`GatewayConn::send_all_subs`] per account), gossip the other
    /// clusters we know ([`GatewayConn::send_gossip`]) and dial `name` back if we have no
    /// outbound connection to it.
    Connected {
        /// The remote cluster's gateway name.
        name: String,
        /// The peer's server id.
        remote_id: String,
        /// The peer's server name.
        remote_name: String,
        /// Gateway URLs of the peer's cluster, as it told them.
        urls: Vec<String>,
    },
    /// Outbound: the peer told of cluster `name` at `urls` (Go: gatewayCmdGossip), or of new
    /// URLs of its own cluster. Dial it unless connected; forward to our routes.
    Gossip {
        /// Gateway name.
        name: String,
        /// Its gateway URLs.
        urls: Vec<String>,
    },
    /// Outbound: `RS+`, interest of the remote cluster.
    RemoteSub(RemoteSub),
    /// Outbound: `RS-`.
    RemoteUnsub(RemoteUnsub),
    /// Outbound: the peer starts (`complete` false) or ends sending every subscription of
    /// `account` (interest-only mode from then on).
    InterestMode {
        /// Account name.
        account: String,
        /// The switch is complete.
        complete: bool,
    },
    /// Inbound: `RMSG`/`HMSG`, a message from the remote cluster.
    Msg(RoutedMsg),
    /// The connection must close; a final `-ERR` (if any) is queued.
    Closed(GatewayCloseReason),
}

/// Per-server settings every gateway connection reads.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Our gateway INFO: `server_id`, `server_name`, `version`, `host`/`port` of the gateway
    /// listener (or `advertise`), `gateway` (our cluster's name), `gateway_url`,
    /// `gateway_urls` (our cluster's), `gateway_nrp`, `gateway_iom`, `headers`, `max_payload`,
    /// `auth_required`, `tls_required`.
    pub info: RouteInfo,
    /// Bound on a control line.
    pub max_control_line: u32,
    /// Bound on a message (headers plus body).
    pub max_payload: u32,
    /// Bound on bytes queued for the peer; passing it closes the connection.
    pub max_pending: usize,
    /// `ping_interval`.
    pub ping_interval: Duration,
    /// `ping_max`.
    pub ping_max: u32,
    /// `gateway.authorization.timeout`.
    pub auth_timeout: Duration,
    /// `gateway.authorization`: user and password every inbound must present (empty user:
    /// none), also sent when dialing a URL without credentials.
    pub user: String,
    /// Its password (plain or bcrypt; plain when dialing).
    pub password: String,
    /// `reject_unknown_cluster`: only these remote names may connect in (`None`: any).
    pub known: Option<Vec<String>>,
}

impl GatewaySettings {
    /// Our cluster's gateway name.
    pub fn name(&self) -> &str {
        &self.info.gateway
    }
}

/// Which side dialed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayRole {
    /// We dialed cluster `name`.
    Outbound {
        /// The remote cluster's gateway name.
        name: String,
        /// URL user (else our `authorization` user).
        user: Option<String>,
        /// URL password.
        pass: Option<String>,
        /// We upgrade to TLS.
        tls: bool,
    },
    /// The peer dialed our gateway port.
    Inbound,
}

/// Which timer is armed.
pub use crate::link::LinkTimer as GatewayTimer;

/// One gateway connection's protocol state.
#[derive(Debug)]
pub struct GatewayConn {
    id: u64,
    cfg: Arc<GatewaySettings>,
    role: GatewayRole,
    parser: RouteParser,
    closed: bool,
    /// Inbound: CONNECT was accepted (the peer's INFO is awaited next).
    connect_ok: bool,
    /// The handshake is done (outbound: the peer's first INFO answered; inbound: its INFO
    /// after CONNECT).
    connected: bool,
    /// The remote cluster's name (outbound: the one dialed; inbound: from CONNECT).
    name: String,
    remote: Option<(String, String)>,
    peer_headers: bool,
    /// Outbound: the peer switches every account to interest-only mode at once.
    peer_iom: bool,
    /// Outbound: the peer's INFO asked for TLS.
    peer_tls: bool,
    out: LinkOut,
    events: VecDeque<GatewayEvent>,
    keepalive: Keepalive,
}

impl GatewayConn {
    /// A new gateway connection; an inbound one queues our INFO at once.
    pub fn new(now: Instant, id: u64, cfg: Arc<GatewaySettings>, role: GatewayRole) -> Self {
        let inbound = role == GatewayRole::Inbound;
        let name = match &role {
            GatewayRole::Outbound { name, .. } => name.clone(),
            GatewayRole::Inbound => String::new(),
        };
        let mut conn = Self {
            id,
            parser: RouteParser::new(cfg.max_control_line, cfg.max_payload),
            role,
            closed: false,
            connect_ok: false,
            connected: false,
            name,
            remote: None,
            peer_headers: false,
            peer_iom: false,
            peer_tls: false,
            out: LinkOut::new(),
            events: VecDeque::new(),
            // Go: createGateway — the accepting side waits auth_timeout for CONNECT. The
            // dialer waits as long for the peer's INFO.
            keepalive: Keepalive::new(
                now + cfg.ping_interval.min(FIRST_PING_INTERVAL),
                Some(now + cfg.auth_timeout),
            ),
            cfg,
        };
        if inbound {
            proto::encode_info(conn.out.buf(), &conn.cfg.info);
        }
        conn
    }

    /// This connection's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Did we dial?
    pub fn is_outbound(&self) -> bool {
        self.role != GatewayRole::Inbound
    }

    /// Has the connection closed?
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Is the handshake done?
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The remote cluster's gateway name (inbound: empty until CONNECT).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The peer's server id and name, once known.
    pub fn remote(&self) -> Option<(&str, &str)> {
        self.remote.as_ref().map(|(i, n)| (i.as_str(), n.as_str()))
    }

    /// Outbound: the peer advertised `gateway_iom` (every account interest-only at once).
    pub fn peer_interest_only(&self) -> bool {
        self.peer_iom
    }

    /// Outbound: whether the peer's INFO asked for TLS.
    pub fn peer_tls_required(&self) -> bool {
        self.peer_tls
    }

    /// Last measured round-trip time.
    pub fn rtt(&self) -> Option<Duration> {
        self.keepalive.rtt()
    }

    /// The gate client producers feeding this connection wait on.
    pub fn stall_gate(&self) -> &Arc<StallGate> {
        self.out.gate()
    }

    /// Bytes queued for the peer.
    pub fn pending_bytes(&self) -> usize {
        self.out.pending_bytes()
    }

    /// Eats complete ops from the front of `buf`; a partial op stays in `buf`. Stops after an
    /// op that emitted an event; returns true when input is left (drain, then call again).
    pub fn handle_input(&mut self, now: Instant, buf: &mut BytesMut) -> bool {
        while !self.closed {
            match self.parser.parse(buf) {
                Ok(Some(op)) => {
                    self.handle_op(now, op);
                    if !self.events.is_empty() {
                        return !buf.is_empty() && !self.closed;
                    }
                }
                Ok(None) => return false,
                Err(e) => {
                    self.proto_error(&e);
                    return false;
                }
            }
        }
        false
    }

    fn proto_error(&mut self, e: &RouteProtoError) {
        tracing::error!(gid = self.id, error = %e, "gateway protocol error");
        if e.sends_err() {
            proto::encode_err(self.out.buf(), &e.err_text());
        }
        self.close(close_reason(e));
    }

    fn handle_op(&mut self, now: Instant, op: RouteOp) {
        if !self.is_outbound() && !self.connect_ok && !matches!(op, RouteOp::Connect(_)) {
            // Go: parser.go OP_START with expectConnect — CONNECT comes first.
            self.err_and_close(
                "Authorization Violation",
                GatewayCloseReason::AuthenticationViolation,
            );
            return;
        }
        match op {
            RouteOp::Connect(c) => self.handle_connect(*c),
            RouteOp::Info(info) => self.handle_info(*info),
            RouteOp::Ping => self.out.buf().extend_from_slice(proto::PONG),
            RouteOp::Pong => self.keepalive.pong(now),
            RouteOp::Ok => {}
            RouteOp::Err(text) => {
                let text = String::from_utf8_lossy(&text);
                tracing::warn!(gid = self.id, error = %text, "gateway error");
                self.close(GatewayCloseReason::ParseError);
            }
            RouteOp::Sub(s) if self.connected => {
                if !self.is_outbound() {
                    // Go: processGatewayRSub — interest flows toward the dialer only.
                    self.violation("Received RS+ from gateway on inbound connection");
                    return;
                }
                self.events.push_back(GatewayEvent::RemoteSub(s));
            }
            RouteOp::Unsub(u) if self.connected => {
                if !self.is_outbound() {
                    self.violation("Received RS- from gateway on inbound connection");
                    return;
                }
                self.events.push_back(GatewayEvent::RemoteUnsub(u));
            }
            RouteOp::Msg(m) if self.connected => {
                if self.is_outbound() {
                    // Messages flow from the dialer to the accepting side only.
                    self.violation("Received message from gateway on outbound connection");
                    return;
                }
                self.events.push_back(GatewayEvent::Msg(m));
            }
            // A+/A-: account (no-)interest of the optimistic mode. In interest-only mode the
            // `RS+`/`RS-` say it all.
            RouteOp::AccountSub(_) | RouteOp::AccountUnsub(_) => {}
            _ => {}
        }
    }

    fn violation(&mut self, text: &str) {
        tracing::error!(gid = self.id, "{text}");
        self.close(GatewayCloseReason::ProtocolViolation);
    }

    fn err_and_close(&mut self, text: &str, reason: GatewayCloseReason) {
        proto::encode_err(self.out.buf(), text);
        self.close(reason);
    }

    /// Inbound. Go: gateway.go processGatewayConnect.
    fn handle_connect(&mut self, c: RouteConnect) {
        if self.is_outbound() || self.connect_ok {
            return;
        }
        if c.gateway.is_empty() {
            // A client or a route dialed the gateway port.
            self.err_and_close(
                "attempted to connect to gateway port",
                GatewayCloseReason::WrongPort,
            );
            return;
        }
        if let Some(known) = &self.cfg.known {
            if !known.contains(&c.gateway) {
                tracing::error!(
                    gid = self.id,
                    "Rejecting connection from gateway {:?}",
                    c.gateway
                );
                let text = format!("Connection to gateway {:?} rejected", self.cfg.name());
                self.err_and_close(&text, GatewayCloseReason::WrongGateway);
                return;
            }
        }
        // Go: auth.go isGatewayAuthorized.
        if !self.cfg.user.is_empty()
            && (c.user != self.cfg.user || !password_matches(&self.cfg.password, &c.pass))
        {
            self.err_and_close(
                "Authorization Violation",
                GatewayCloseReason::AuthenticationViolation,
            );
            return;
        }
        self.keepalive.auth_done();
        self.connect_ok = true;
        self.name = c.gateway;
    }

    /// Go: gateway.go processGatewayInfo.
    fn handle_info(&mut self, info: RouteInfo) {
        if self.is_outbound() {
            self.outbound_info(info);
        } else if !self.connected {
            // The peer's INFO after its CONNECT ends the inbound handshake.
            if info.server_id == self.cfg.info.server_id {
                self.close(GatewayCloseReason::DuplicateRoute);
                return;
            }
            self.peer_headers = self.cfg.info.headers && info.headers;
            self.connected = true;
            self.remote = Some((info.server_id.clone(), info.server_name.clone()));
            self.events.push_back(GatewayEvent::Connected {
                name: self.name.clone(),
                remote_id: info.server_id,
                remote_name: info.server_name,
                urls: info.gateway_urls,
            });
        }
    }

    fn outbound_info(&mut self, info: RouteInfo) {
        let GatewayRole::Outbound {
            name,
            user,
            pass,
            tls,
        } = &self.role
        else {
            return;
        };
        if info.gateway.is_empty() {
            let text = format!("Attempt to connect to gateway {name:?} using wrong port");
            self.err_and_close(&text, GatewayCloseReason::WrongPort);
            return;
        }
        if self.connected {
            match info.gateway_cmd {
                CMD_GOSSIP if info.gateway != *name => {
                    self.events.push_back(GatewayEvent::Gossip {
                        name: info.gateway,
                        urls: info.gateway_urls,
                    });
                }
                CMD_ALL_SUBS_START | CMD_ALL_SUBS_COMPLETE => {
                    let complete = info.gateway_cmd == CMD_ALL_SUBS_COMPLETE;
                    let Some(account) = reply::base64_decode(&info.gateway_cmd_payload)
                        .and_then(|b| String::from_utf8(b).ok())
                        .filter(|a| !a.is_empty())
                    else {
                        let which = if complete { "complete" } else { "start" };
                        self.err_and_close(
                            &format!(
                                "Account absent from receive-all-subscriptions-{which} command"
                            ),
                            GatewayCloseReason::ProtocolViolation,
                        );
                        return;
                    };
                    self.events
                        .push_back(GatewayEvent::InterestMode { account, complete });
                }
                0 if !info.gateway_urls.is_empty() && info.gateway == *name => {
                    // Go: cfg.updateURLs — the peer's cluster grew or shrank.
                    self.events.push_back(GatewayEvent::Gossip {
                        name: info.gateway,
                        urls: info.gateway_urls,
                    });
                }
                _ => {}
            }
            return;
        }
        if info.gateway != *name {
            tracing::error!(
                gid = self.id,
                "Failing connection to gateway {name:?}, remote gateway name is {:?}",
                info.gateway
            );
            let text = format!(
                "Connection from {:?} rejected, wanted to connect to {name:?}, this is {:?}",
                self.cfg.name(),
                info.gateway
            );
            self.err_and_close(&text, GatewayCloseReason::WrongGateway);
            return;
        }
        if info.server_id == self.cfg.info.server_id {
            // A URL that leads back to ourselves.
            self.close(GatewayCloseReason::DuplicateRoute);
            return;
        }
        // Go: sendGatewayConnect — credentials of the URL, else of our own authorization.
        let (user, pass) = match user {
            Some(u) => (u.clone(), pass.clone().unwrap_or_default()),
            None => (self.cfg.user.clone(), self.cfg.password.clone()),
        };
        let connect = RouteConnect {
            echo: false,
            user,
            pass,
            tls_required: *tls,
            name: self.cfg.info.server_id.clone(),
            gateway: self.cfg.name().to_owned(),
            ..RouteConnect::default()
        };
        proto::encode_connect(self.out.buf(), &connect);
        proto::encode_info(self.out.buf(), &self.cfg.info);
        self.keepalive.auth_done();
        self.peer_headers = self.cfg.info.headers && info.headers;
        self.peer_iom = info.gateway_iom;
        self.peer_tls = info.tls_required;
        self.connected = true;
        self.remote = Some((info.server_id.clone(), info.server_name.clone()));
        self.events.push_back(GatewayEvent::Connected {
            name: name.clone(),
            remote_id: info.server_id,
            remote_name: info.server_name,
            urls: info.gateway_urls,
        });
    }

    /// Closes from outside (EOF, write error, shutdown, duplicate…).
    pub fn close(&mut self, reason: GatewayCloseReason) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.out.gate().release();
        if matches!(
            reason,
            GatewayCloseReason::SlowConsumerPendingBytes
                | GatewayCloseReason::SlowConsumerWriteDeadline
                | GatewayCloseReason::ReadError
                | GatewayCloseReason::WriteError
        ) {
            self.out.discard();
        }
        self.events.push_back(GatewayEvent::Closed(reason));
    }

    /// Inbound: `RS+` (a queue group with weight 1, as nats-server sends). Nothing before the
    /// handshake, nothing on an outbound connection.
    pub fn send_sub(&mut self, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
        if self.closed || !self.connected || self.is_outbound() {
            return;
        }
        proto::encode_sub(self.out.buf(), account, subject, queue.map(|q| (q, 1)));
        self.check_pending();
    }

    /// Inbound: `RS-`.
    pub fn send_unsub(&mut self, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
        if self.closed || !self.connected || self.is_outbound() {
            return;
        }
        proto::encode_unsub(self.out.buf(), account, subject, queue);
        self.check_pending();
    }

    /// Inbound: switches `account` to interest-only mode on the peer (Go:
    /// gatewaySwitchAccountToSendAllSubs): INFO with `gateway_cmd` 2, an `RS+` for each of
    /// `subs` (subject, queue), INFO with `gateway_cmd` 3.
    pub fn send_all_subs<'a>(
        &mut self,
        account: &str,
        subs: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) {
        if self.closed || !self.connected || self.is_outbound() {
            return;
        }
        self.send_cmd(CMD_ALL_SUBS_START, account);
        for (subject, queue) in subs {
            proto::encode_sub(
                self.out.buf(),
                account.as_bytes(),
                subject,
                queue.map(|q| (q, 1)),
            );
        }
        self.send_cmd(CMD_ALL_SUBS_COMPLETE, account);
        self.check_pending();
    }

    fn send_cmd(&mut self, cmd: u8, account: &str) {
        let info = RouteInfo {
            gateway: self.cfg.name().to_owned(),
            gateway_cmd: cmd,
            gateway_cmd_payload: reply::base64_encode(account.as_bytes()),
            ..RouteInfo::default()
        };
        proto::encode_forwarded_info(self.out.buf(), &info);
    }

    /// Inbound: tells the dialer of cluster `name` at `urls` so that it connects there too
    /// (Go: gossipGatewaysToInboundGateway).
    pub fn send_gossip(&mut self, name: &str, urls: &[String]) {
        if self.closed || !self.connected || self.is_outbound() || urls.is_empty() {
            return;
        }
        let info = RouteInfo {
            server_id: self.cfg.info.server_id.clone(),
            gateway: name.to_owned(),
            gateway_urls: urls.to_vec(),
            gateway_cmd: CMD_GOSSIP,
            ..RouteInfo::default()
        };
        proto::encode_forwarded_info(self.out.buf(), &info);
        self.check_pending();
    }

    /// Outbound: sends one message (`RMSG`, or `HMSG` with headers the peer supports), naming
    /// the queue groups the remote cluster is to serve. `reply` goes as given (map it with
    /// [`ReplyPrefix`] first). Returns false when nothing was sent.
    pub fn send_msg(
        &mut self,
        account: &[u8],
        subject: &[u8],
        reply: Option<&[u8]>,
        queues: &[&[u8]],
        headers: Option<&[u8]>,
        (payload, shared): (&[u8], Option<&Bytes>),
    ) -> bool {
        if self.closed || !self.connected || !self.is_outbound() {
            return false;
        }
        let headers = headers.filter(|h| !h.is_empty());
        // Go: sendMsgToGateways — a peer without headers gets the body alone.
        let header_len = headers.filter(|_| self.peer_headers).map(<[u8]>::len);
        let h = MsgHeader {
            origin: None,
            reply,
            queues,
            header_len,
            total_len: header_len.unwrap_or(0) + payload.len(),
        };
        proto::encode_msg_header(self.out.buf(), account, subject, &h);
        if let (Some(h), true) = (headers, self.peer_headers) {
            self.out.put_part(h, None);
        }
        self.out.put_part(payload, shared);
        self.out.buf().extend_from_slice(b"\r\n");
        self.check_pending();
        true
    }

    fn check_pending(&mut self) {
        let max = self.cfg.max_pending;
        if self.out.over(max) {
            tracing::info!(
                gid = self.id,
                "Slow Consumer Detected: MaxPending of {max} Exceeded"
            );
            self.close(GatewayCloseReason::SlowConsumerPendingBytes);
        }
    }

    /// Fires due timers; early or spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        let cfg = &self.cfg;
        match self
            .keepalive
            .tick(now, cfg.ping_interval, cfg.ping_max, None)
        {
            Tick::Idle => {}
            Tick::AuthTimeout => self.err_and_close(
                "Authentication Timeout",
                GatewayCloseReason::AuthenticationTimeout,
            ),
            Tick::Stale => {
                self.err_and_close("Stale Connection", GatewayCloseReason::StaleConnection);
            }
            // Before the handshake a PING would come ahead of CONNECT: none then.
            Tick::Ping if self.connected || self.connect_ok => {
                self.out.buf().extend_from_slice(proto::PING);
            }
            Tick::Ping => {}
        }
    }

    /// The next chunk of bytes for the peer, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.out.poll_transmit()
    }

    /// The next event for the server, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<GatewayEvent> {
        self.events.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Instant, GatewayTimer)> {
        if self.closed {
            return None;
        }
        Some(self.keepalive.poll_timeout())
    }
}
