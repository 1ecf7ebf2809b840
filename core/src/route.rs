//! The route connection machine: one TCP connection to another server of the cluster.
//!
//! [`RouteConn`] speaks nats-server 2.9.10's route protocol ([`crate::proto::route`]) in both
//! roles: *solicited* (we dialed a configured or gossiped route URL: we send CONNECT, then INFO)
//! and *accepted* (the peer dialed our cluster port: we send INFO and expect CONNECT). It turns
//! the peer's bytes into [`RouteEvent`]s for the server, and the server's interest and message
//! updates into bytes for the peer. It does no I/O and reads no clock: drive it as the crate docs
//! say (after every `handle_*` or `send_*` call, drain [`RouteConn::poll_transmit`], then
//! [`RouteConn::poll_event`], then re-arm the timer from [`RouteConn::poll_timeout`]).
//!
//! What needs the whole server stays outside: the duplicate-route decision (nats-server keeps
//! whichever connection to a server id registered first and closes the newcomer with
//! [`RouteCloseReason::DuplicateRoute`]), the account sublists, gossip to the other routes and
//! the dialing of implicit routes. The machine reports what it learns ([`RouteEvent::PeerInfo`],
//! [`RouteEvent::ImplicitRoute`]…) and offers the encoders the server calls.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

pub use crate::link::CloseReason as RouteCloseReason;
use crate::link::{close_reason, password_matches, Keepalive, Tick};
use crate::linkout::LinkOut;
use crate::proto::route::{
    self as proto, MsgHeader, RemoteSub, RemoteUnsub, RouteConnect, RouteInfo, RouteOp,
    RouteParser, RouteProtoError, RoutedMsg,
};
use crate::rng::SplitMix64;

pub mod pool;

/// Go: server/server.go firstPingInterval — a route's first PING goes out within a second, so
/// the RTT is known early.
const FIRST_PING_INTERVAL: Duration = Duration::from_secs(1);

/// What the server must do about this route.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RouteEvent {
    /// The peer's first INFO: who it is. The server registers the route under
    /// `info.server_id` — or, if that id already has a route, closes this one with
    /// [`RouteCloseReason::DuplicateRoute`] — then sends its interest ([`RouteConn::send_sub`]),
    /// forwards the INFO to its other routes ([`RouteConn::send_forwarded_info`], after filling
    /// `ip` from the socket address if empty) and merges `connect_urls` into its client INFO.
    PeerInfo(Box<RouteInfo>),
    /// A later INFO from the same peer: lame duck mode (`ldm`), changed permissions, or gateway
    /// news (`gateway` set).
    PeerUpdate(Box<RouteInfo>),
    /// An INFO about a third server (gossip): dial `info.ip` unless a route to
    /// `info.server_id` exists or `host:port` is a configured route.
    ImplicitRoute(Box<RouteInfo>),
    /// Our generated cluster name gave way to the peer's: adopt it, and close every other
    /// route with [`RouteCloseReason::ClusterNameConflict`] (Go: removeAllRoutesExcept).
    ClusterNameChanged {
        /// The new name.
        name: String,
        /// Whether it is still a generated name.
        dynamic: bool,
    },
    /// `RS+`/`LS+`: the peer has interest (or a new queue weight).
    RemoteSub(RemoteSub),
    /// `RS-`/`LS-`: the peer lost interest.
    RemoteUnsub(RemoteUnsub),
    /// `RMSG`/`HMSG`/`LMSG`: deliver to local subscribers (never to other routes).
    RoutedMsg(RoutedMsg),
    /// The route must close; a final `-ERR` (if any) is queued.
    Closed(RouteCloseReason),
}

/// Checks the CONNECT of a route that dialed us (`cluster.authorization`).
pub trait RouteAuthorizer: fmt::Debug + Send + Sync {
    /// Whether a CONNECT with credentials is required before anything else.
    fn auth_required(&self) -> bool;
    /// Whether this CONNECT may open a route.
    fn authorize(&self, connect: &RouteConnect) -> bool;
}

/// `cluster { authorization { user, password } }`: one user for every route.
#[derive(Clone, PartialEq, Eq)]
pub struct RouteCredentials {
    /// Expected user; empty means no authentication.
    pub user: String,
    /// Expected password, plain or a bcrypt hash (`$2a$…`).
    pub password: String,
}

impl fmt::Debug for RouteCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteCredentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl RouteAuthorizer for RouteCredentials {
    fn auth_required(&self) -> bool {
        // Go: server/route.go startRouteAcceptLoop — auth_required iff Cluster.Username is set.
        !self.user.is_empty()
    }

    fn authorize(&self, connect: &RouteConnect) -> bool {
        // Go: server/auth.go isRouterAuthorized.
        if self.user.is_empty() {
            return true;
        }
        connect.user == self.user && password_matches(&self.password, &connect.pass)
    }
}

/// Per-server settings every route connection reads.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Our route INFO: `server_id`, `server_name`, `version`, `proto` (2), `go`, `host`/`port`
    /// of the cluster listener, `headers`, `max_payload`, `cluster`, `dynamic`, `ip` (with
    /// `cluster.advertise`), `connect_urls` (unless `no_advertise`), `lnoc`, permissions.
    /// The nonce and `auth_required` are filled in per connection.
    pub info: RouteInfo,
    /// Bound on a control line ([`proto::DEFAULT_ROUTE_MAX_CONTROL_LINE`]).
    pub max_control_line: u32,
    /// Bound on a routed message (headers plus body). Keep it at least the largest
    /// `max_payload` of any server in the cluster.
    pub max_payload: u32,
    /// Bound on bytes queued for the peer; passing it closes the route.
    pub max_pending: usize,
    /// `ping_interval`.
    pub ping_interval: Duration,
    /// `ping_max`.
    pub ping_max: u32,
    /// `cluster.authorization.timeout`.
    pub auth_timeout: Duration,
    /// Checks CONNECTs on accepted routes; `None`: no authentication.
    pub authorizer: Option<Arc<dyn RouteAuthorizer>>,
}

/// Which side dialed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteRole {
    /// We dialed; credentials come from the route URL (`nats://user:pass@host:port`).
    Solicited {
        /// URL user.
        user: Option<String>,
        /// URL password.
        pass: Option<String>,
    },
    /// The peer dialed our cluster port.
    Accepted,
}

/// Which timer is armed.
pub use crate::link::LinkTimer as RouteTimer;

/// What we know of the peer once its first INFO has passed.
#[derive(Debug, Clone)]
struct Peer {
    id: String,
    name: String,
}

/// One route connection's protocol state.
#[derive(Debug)]
pub struct RouteConn {
    id: u64,
    cfg: Arc<RouteConfig>,
    solicited: bool,
    parser: RouteParser,
    closed: bool,
    cluster: String,
    dynamic: bool,
    connect_received: bool,
    peer: Option<Peer>,
    /// Both sides support headers (Go: c.headers, set from CONNECT or INFO).
    peer_headers: bool,
    /// What waits for the peer (its stall gate holds client producers feeding this route
    /// while its queue is more than half full, see [`crate::outbound`]).
    out: LinkOut,
    events: VecDeque<RouteEvent>,
    keepalive: Keepalive,
    last_activity: Option<Instant>,
    last_ping_in: Option<Instant>,
    /// Our first INFO, when a pooled dialer holds it back until the slot is chosen.
    held_info: Option<RouteInfo>,
    /// The account of a pinned route: left out of interest and message ops.
    pinned: Option<Bytes>,
}

impl RouteConn {
    /// A new route connection; its CONNECT (solicited) and INFO are queued at once.
    pub fn new(now: Instant, id: u64, cfg: Arc<RouteConfig>, role: RouteRole, seed: u64) -> Self {
        Self::with_pool(now, id, cfg, role, seed, None)
    }

    /// Like [`RouteConn::new`], for servers with route pooling (`cfg.info.route_pool_size`
    /// set): a dialed connection holds its INFO back until [`RouteConn::send_pool_info`], unless
    /// it is the pinned route of `account`, which says so in its INFO at once and leaves the
    /// account out of every op. See [`pool`].
    pub fn with_pool(
        now: Instant,
        id: u64,
        cfg: Arc<RouteConfig>,
        role: RouteRole,
        seed: u64,
        account: Option<String>,
    ) -> Self {
        let mut rng = SplitMix64::new(seed);
        let solicited = matches!(role, RouteRole::Solicited { .. });
        let auth_required = cfg.authorizer.as_ref().is_some_and(|a| a.auth_required());
        // Go: server/client.go setFirstPingTimer — routes start within a second, plus up to 20%
        // so that a cluster restart does not PING in lockstep.
        let first = cfg.ping_interval.min(FIRST_PING_INTERVAL);
        let jitter_ms = rng.below(first.as_millis() as u64 / 5 + 1);
        let mut conn = Self {
            id,
            parser: RouteParser::new(cfg.max_control_line, cfg.max_payload),
            solicited,
            closed: false,
            cluster: cfg.info.cluster.clone(),
            dynamic: cfg.info.dynamic,
            connect_received: false,
            peer: None,
            peer_headers: false,
            out: LinkOut::new(),
            events: VecDeque::new(),
            // Go: createRoute arms the auth timer on accepted routes only.
            keepalive: Keepalive::new(
                now + first + Duration::from_millis(jitter_ms),
                (auth_required && !solicited).then(|| now + cfg.auth_timeout),
            ),
            last_activity: None,
            last_ping_in: None,
            held_info: None,
            pinned: None,
            cfg,
        };
        if let RouteRole::Solicited { user, pass } = role {
            // Go: server/route.go sendRouteConnect.
            let connect = RouteConnect {
                echo: true,
                user: user.unwrap_or_default(),
                pass: pass.unwrap_or_default(),
                tls_required: conn.cfg.info.tls_required,
                headers: conn.cfg.info.headers,
                name: conn.cfg.info.server_id.clone(),
                cluster: conn.cluster.clone(),
                dynamic: conn.dynamic,
                lnoc: true,
                ..RouteConnect::default()
            };
            proto::encode_connect(conn.out.buf(), &connect);
        }
        let mut info = conn.cfg.info.clone();
        info.nonce = crate::auth::new_nonce(&mut rng);
        info.auth_required = auth_required;
        info.cluster = conn.cluster.clone();
        let pooled = conn.cfg.info.route_pool_size > 0;
        match account {
            Some(a) if solicited => {
                info.route_account.clone_from(&a);
                conn.set_account(Bytes::from(a));
                proto::encode_info(conn.out.buf(), &info);
            }
            // Go: routeShouldDelayInfo — a pooled dialer waits for the peer's INFO.
            _ if solicited && pooled => conn.held_info = Some(info),
            _ => proto::encode_info(conn.out.buf(), &info),
        }
        conn
    }

    /// Sends the INFO a pooled dialer held back, naming the pool slot it chose for this
    /// connection (0 for a peer without pooling). Does nothing if the INFO already went out.
    pub fn send_pool_info(&mut self, idx: usize) {
        if let Some(mut info) = self.held_info.take() {
            info.route_pool_idx = i32::try_from(idx).unwrap_or(0);
            info.cluster = self.cluster.clone();
            if !self.closed {
                proto::encode_info(self.out.buf(), &info);
                self.check_pending();
            }
        }
    }

    /// Dedicates this route to `account` (a pinned route): interest and message ops leave the
    /// account name out, both ways.
    pub fn set_account(&mut self, account: Bytes) {
        self.parser.set_account(account.clone());
        self.pinned = Some(account);
    }

    /// The account this route is dedicated to, if it is a pinned route.
    pub fn pinned_account(&self) -> Option<&Bytes> {
        self.pinned.as_ref()
    }

    /// Closes with `-ERR text` first (pool negotiation failures).
    pub fn reject(&mut self, text: &str) {
        self.err_and_close(text, RouteCloseReason::ProtocolViolation);
    }

    /// This connection's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Did we dial?
    pub fn is_solicited(&self) -> bool {
        self.solicited
    }

    /// Has the route closed?
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The peer's server id, once its INFO has arrived.
    pub fn peer_id(&self) -> Option<&str> {
        self.peer.as_ref().map(|p| p.id.as_str())
    }

    /// The peer's server name, once its INFO has arrived.
    pub fn peer_name(&self) -> Option<&str> {
        self.peer.as_ref().map(|p| p.name.as_str())
    }

    /// Whether messages to the peer may carry headers.
    pub fn peer_headers(&self) -> bool {
        self.peer_headers
    }

    /// Last measured round-trip time.
    pub fn rtt(&self) -> Option<Duration> {
        self.keepalive.rtt()
    }

    /// Our cluster name as negotiated on this route.
    pub fn cluster_name(&self) -> &str {
        &self.cluster
    }

    /// The gate client producers feeding this route wait on (see [`crate::outbound`]).
    pub fn stall_gate(&self) -> &Arc<crate::outbound::StallGate> {
        self.out.gate()
    }

    /// Bytes queued for the peer.
    pub fn pending_bytes(&self) -> usize {
        self.out.pending_bytes()
    }

    /// Eats complete ops from the front of `buf`; a partial op stays in `buf`.
    ///
    /// Stops after the first op that emits an event, so that replies to later ops (a PONG)
    /// never overtake the handling of earlier ones. Returns true when it stopped early with
    /// input left; the driver drains, then calls again.
    pub fn handle_input(&mut self, now: Instant, buf: &mut BytesMut) -> bool {
        while !self.closed {
            match self.parser.parse(buf) {
                Ok(Some(op)) => {
                    self.handle_op(now, op);
                    if !self.events.is_empty() {
                        return !self.closed && !buf.is_empty();
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

    /// Like [`Self::handle_input`], but routed messages go straight into `msgs` instead of
    /// through [`Self::poll_event`], at most until `msgs` holds `max`. Any other op that emits
    /// an event stops the run after it, so the caller acts on `msgs` first, then on the events.
    ///
    /// Why: a routed message is about 220 bytes, and on its way as an event (into the event
    /// queue, out of it, into the driver's list, out again) it was copied about eight times;
    /// memcpy was 14% of a receiving node's instructions (callgrind, open-loop 1→1 across a
    /// route). Here it is moved once, from the parser into `msgs`.
    pub fn handle_input_msgs(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
        msgs: &mut Vec<RoutedMsg>,
        max: usize,
    ) -> bool {
        // Events another task caused (a close) go first.
        if !self.events.is_empty() {
            return !buf.is_empty();
        }
        while !self.closed {
            if msgs.len() >= max {
                return !buf.is_empty();
            }
            let awaiting_auth = self.keepalive.awaiting_auth() && !self.connect_received;
            match self.parser.parse(buf) {
                Ok(Some(RouteOp::Msg(msg))) if !awaiting_auth => {
                    self.last_activity = Some(now);
                    msgs.push(msg);
                }
                Ok(Some(op)) => {
                    self.handle_op(now, op);
                    if !self.events.is_empty() {
                        return !self.closed && !buf.is_empty();
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

    fn protocol_error(&mut self, e: &RouteProtoError) {
        tracing::debug!(rid = self.id, error = %e, "route protocol error");
        // Go: parser errors say why only for an unknown op; argument errors close silently.
        if e.sends_err() {
            proto::encode_err(self.out.buf(), &e.err_text());
        }
        let reason = close_reason(e);
        self.close(reason);
    }

    fn handle_op(&mut self, now: Instant, op: RouteOp) {
        let awaiting_auth = self.keepalive.awaiting_auth() && !self.connect_received;
        if awaiting_auth && !matches!(op, RouteOp::Connect(_)) {
            // Go: parser.go OP_START — anything but CONNECT while auth is pending.
            self.err_and_close(
                "Authorization Violation",
                RouteCloseReason::AuthenticationViolation,
            );
            return;
        }
        match op {
            RouteOp::Connect(c) => self.handle_connect(*c),
            RouteOp::Info(info) => self.handle_info(*info),
            RouteOp::Ping => {
                self.out.buf().extend_from_slice(proto::PONG);
                self.last_ping_in = Some(now);
            }
            RouteOp::Pong => {
                self.keepalive.pong(now);
            }
            RouteOp::Ok | RouteOp::AccountSub(_) | RouteOp::AccountUnsub(_) => {}
            RouteOp::Err(text) => {
                // Go: processErr — "Route Error 'text'", then close without answering.
                tracing::warn!(rid = self.id, error = %String::from_utf8_lossy(&text), "route error");
                self.close(RouteCloseReason::ParseError);
            }
            RouteOp::Sub(sub) => {
                self.last_activity = Some(now);
                self.events.push_back(RouteEvent::RemoteSub(sub));
            }
            RouteOp::Unsub(unsub) => {
                self.last_activity = Some(now);
                self.events.push_back(RouteEvent::RemoteUnsub(unsub));
            }
            RouteOp::Msg(msg) => {
                self.last_activity = Some(now);
                self.events.push_back(RouteEvent::RoutedMsg(msg));
            }
        }
    }

    fn err_and_close(&mut self, text: &str, reason: RouteCloseReason) {
        proto::encode_err(self.out.buf(), text);
        self.close(reason);
    }

    /// Go: server/client.go processConnect (ROUTER) → checkAuthentication, then
    /// server/route.go processRouteConnect.
    fn handle_connect(&mut self, c: RouteConnect) {
        if let Some(a) = &self.cfg.authorizer {
            if a.auth_required() && !a.authorize(&c) {
                self.err_and_close(
                    "Authorization Violation",
                    RouteCloseReason::AuthenticationViolation,
                );
                return;
            }
        }
        if !c.lang.is_empty() {
            self.err_and_close(
                "attempted to connect to route port",
                RouteCloseReason::WrongPort,
            );
            return;
        }
        if !c.gateway.is_empty() {
            let text = format!(
                "Rejecting connection from gateway {:?} on the Route port",
                c.gateway
            );
            self.err_and_close(&text, RouteCloseReason::WrongGateway);
            return;
        }
        // Go compares even an empty name: a peer without a cluster name is rejected.
        if c.cluster != self.cluster {
            if self.dynamic && (!c.dynamic || self.cluster < c.cluster) {
                self.cluster = c.cluster.clone();
                // A configured name from the peer becomes ours for good.
                self.dynamic = c.dynamic;
                self.events.push_back(RouteEvent::ClusterNameChanged {
                    name: c.cluster.clone(),
                    dynamic: c.dynamic,
                });
            } else {
                let text = format!(
                    "Rejecting connection, cluster name {:?} does not match {:?}",
                    c.cluster, self.cluster
                );
                self.err_and_close(&text, RouteCloseReason::ClusterNameConflict);
                return;
            }
        }
        self.connect_received = true;
        self.keepalive.auth_done();
        self.peer_headers = self.cfg.info.headers && c.headers;
    }

    /// Go: server/route.go processRouteInfo.
    fn handle_info(&mut self, info: RouteInfo) {
        if info.server_id == self.cfg.info.server_id {
            // A route to ourselves (a configured URL that resolves to us).
            self.close(RouteCloseReason::DuplicateRoute);
            return;
        }
        if !info.cluster.is_empty() && info.cluster != self.cluster {
            if self.dynamic && (!info.dynamic || self.cluster < info.cluster) {
                self.cluster = info.cluster.clone();
                self.events.push_back(RouteEvent::ClusterNameChanged {
                    name: info.cluster.clone(),
                    dynamic: self.dynamic,
                });
            } else {
                tracing::warn!(rid = self.id, theirs = %info.cluster, ours = %self.cluster, "cluster name conflict");
                self.close(RouteCloseReason::ClusterNameConflict);
                return;
            }
        }
        if let Some(peer) = &self.peer {
            let event = if info.gateway.is_empty() && info.server_id != peer.id {
                RouteEvent::ImplicitRoute(Box::new(info))
            } else {
                RouteEvent::PeerUpdate(Box::new(info))
            };
            self.events.push_back(event);
            return;
        }
        if !self.solicited && info.server_name == self.cfg.info.server_name {
            tracing::error!(rid = self.id, name = %info.server_name, "remote server has a duplicate name");
            self.close(RouteCloseReason::DuplicateServerName);
            return;
        }
        self.peer_headers = self.cfg.info.headers && info.headers;
        self.peer = Some(Peer {
            id: info.server_id.clone(),
            name: info.server_name.clone(),
        });
        self.events.push_back(RouteEvent::PeerInfo(Box::new(info)));
    }

    /// Closes from outside (duplicate route, shutdown, EOF, write error…).
    pub fn close(&mut self, reason: RouteCloseReason) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.out.gate().release();
        if matches!(
            reason,
            RouteCloseReason::SlowConsumerPendingBytes
                | RouteCloseReason::SlowConsumerWriteDeadline
                | RouteCloseReason::ReadError
                | RouteCloseReason::WriteError
        ) {
            // Go: closeConnection sets skipFlushOnClose for these: nothing more is written.
            self.out.discard();
        }
        self.events.push_back(RouteEvent::Closed(reason));
    }

    /// Sends `RS+` (`queue`: group and its local member count).
    pub fn send_sub(&mut self, account: &[u8], subject: &[u8], queue: Option<(&[u8], u32)>) {
        if !self.closed {
            let account = if self.pinned.is_some() {
                &[][..]
            } else {
                account
            };
            proto::encode_sub(self.out.buf(), account, subject, queue);
            self.check_pending();
        }
    }

    /// Sends `RS-`.
    pub fn send_unsub(&mut self, account: &[u8], subject: &[u8], queue: Option<&[u8]>) {
        if !self.closed {
            let account = if self.pinned.is_some() {
                &[][..]
            } else {
                account
            };
            proto::encode_unsub(self.out.buf(), account, subject, queue);
            self.check_pending();
        }
    }

    /// Sends one message to the peer: `RMSG` (or `HMSG` with headers), naming every queue group
    /// for which a member on the peer was chosen. Headers are dropped if the peer does not
    /// support them (Go: msgHeaderForRouteOrLeaf). The payload is queued without copying unless
    /// it is small.
    pub fn send_msg(
        &mut self,
        account: &[u8],
        subject: &[u8],
        reply: Option<&[u8]>,
        queues: &[&[u8]],
        headers: Option<&Bytes>,
        payload: &Bytes,
    ) {
        self.send_msg_from(
            account,
            subject,
            reply,
            queues,
            headers.map(|h| (&h[..], Some(h))),
            (payload, Some(payload)),
        );
    }

    /// Like [`Self::send_msg`] for borrowed parts, each with its bytes refcounted when the
    /// caller holds them so (the pair's second half): a large part is then queued by
    /// reference. A small one is copied once into the output buffer, with no allocation of
    /// its own (the publish path's common case).
    pub fn send_msg_from(
        &mut self,
        account: &[u8],
        subject: &[u8],
        reply: Option<&[u8]>,
        queues: &[&[u8]],
        headers: Option<(&[u8], Option<&Bytes>)>,
        (payload, shared): (&[u8], Option<&Bytes>),
    ) {
        if self.closed {
            return;
        }
        let headers = headers.filter(|h| !h.0.is_empty() && self.peer_headers);
        let header_len = headers.map(|h| h.0.len());
        let h = MsgHeader {
            origin: None,
            reply,
            queues,
            header_len,
            total_len: header_len.unwrap_or(0) + payload.len(),
        };
        let account = if self.pinned.is_some() {
            &[][..]
        } else {
            account
        };
        proto::encode_msg_header(self.out.buf(), account, subject, &h);
        for (part, shared) in headers
            .into_iter()
            .chain(std::iter::once((payload, shared)))
        {
            self.out.put_part(part, shared);
        }
        self.out.buf().extend_from_slice(b"\r\n");
        self.check_pending();
    }

    /// Sends an INFO update about this server (lame duck mode, new client URLs, permissions).
    pub fn send_info_update(&mut self, info: &RouteInfo) {
        if !self.closed {
            proto::encode_info(self.out.buf(), info);
            self.check_pending();
        }
    }

    /// Forwards another server's INFO so that the peer connects to it (gossip). The nonce is
    /// cleared, as nats-server does.
    pub fn send_forwarded_info(&mut self, info: &RouteInfo) {
        if self.closed {
            return;
        }
        if info.nonce.is_empty() {
            proto::encode_forwarded_info(self.out.buf(), info);
        } else {
            let mut info = info.clone();
            info.nonce.clear();
            proto::encode_forwarded_info(self.out.buf(), &info);
        }
        self.check_pending();
    }

    fn check_pending(&mut self) {
        let max = self.cfg.max_pending;
        if self.out.over(max) {
            tracing::info!(
                rid = self.id,
                "Slow Consumer Detected: MaxPending of {max} Exceeded"
            );
            self.close(RouteCloseReason::SlowConsumerPendingBytes);
        }
    }

    /// Fires due timers; early or spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        let last_heard = self.last_activity.max(self.last_ping_in);
        let cfg = &self.cfg;
        match self
            .keepalive
            .tick(now, cfg.ping_interval, cfg.ping_max, last_heard)
        {
            Tick::Idle => {}
            Tick::AuthTimeout => self.err_and_close(
                "Authentication Timeout",
                RouteCloseReason::AuthenticationTimeout,
            ),
            Tick::Stale => {
                self.err_and_close("Stale Connection", RouteCloseReason::StaleConnection)
            }
            Tick::Ping => self.out.buf().extend_from_slice(proto::PING),
        }
    }

    /// The next chunk of bytes for the peer, if any. Call when the socket is writable.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        // Once the writer took everything, the peer caught up (Go: flushOutbound).
        self.out.poll_transmit()
    }

    /// The next event for the server, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<RouteEvent> {
        self.events.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Instant, RouteTimer)> {
        if self.closed {
            return None;
        }
        Some(self.keepalive.poll_timeout())
    }
}
