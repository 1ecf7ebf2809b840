//! The leaf-node connection machine: one TCP connection between a leaf server and its hub.
//!
//! [`LeafConn`] speaks nats-server 2.9.10's leaf protocol ([`crate::proto::leaf`]) in both
//! roles: *accepted* (we are the hub: we send INFO at once, expect CONNECT, check its
//! credentials and bind the link to an account) and *solicited* (we are the leaf: we wait for
//! the hub's INFO, answer with CONNECT and bind the link to the account of our `remotes`
//! entry). It turns the peer's bytes into [`LeafEvent`]s and the server's interest and message
//! updates into bytes. No I/O and no clock: drive it as the crate docs say (after every
//! `handle_*` or `send_*` call, drain [`LeafConn::poll_transmit`], then
//! [`LeafConn::poll_event`], then re-arm the timer from [`LeafConn::poll_timeout`]).
//!
//! JetStream: each side tells the other whether it runs JetStream and in which domain, and
//! the link keeps the plain JetStream API from crossing when both do (see [`JsDeny`]).
//!
//! Shared with routes: the parser (the route parser's leaf mode), the INFO/CONNECT JSON, the
//! close reasons, password checking and the outbound queue ([`crate::linkout`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::auth::{Authenticator, PermissionChecker};
pub use crate::link::CloseReason as LeafCloseReason;
use crate::link::{close_reason, password_matches, Keepalive, Tick};
use crate::linkout::LinkOut;
use crate::options::LeafUser;
use crate::options::{Permissions, SubjectPermission};
use crate::outbound::StallGate;
use crate::proto::leaf::{
    self as proto, MsgHeader, RemoteSub, RemoteUnsub, RouteConnect, RouteInfo, RouteOp,
    RouteParser, RouteProtoError, RoutedMsg,
};
use crate::proto::route::RoutePermission;
use crate::rng::SplitMix64;

/// Go: server/server.go firstPingInterval.
const FIRST_PING_INTERVAL: Duration = Duration::from_secs(1);
/// The global account's name.
pub const GLOBAL_ACCOUNT: &str = "$G";
/// Go: leafnode.go leafNodeLoopDetectionSubjectPrefix — each server tells its leaf links of
/// a `$LDS.<random>` subject per account; seeing its own come back means a loop.
pub const LOOP_DETECTION_PREFIX: &str = "$LDS.";
/// Go: leafnode.go leafNodeReconnectDelayAfterLoopDetected.
pub const LOOP_RECONNECT_DELAY: Duration = Duration::from_secs(30);

mod creds;
mod jetstream;
#[cfg(test)]
mod tests;

pub use creds::LeafCredentials;
pub use jetstream::{encode_js_reply, split_js_reply, JsDeny, JsSide, JS_ACK_PREFIX};

/// Go: processLeafSub and sendLeafNodeSubUpdate — loop detection and gateway reply
/// subjects cross a link whatever its permissions.
fn exempt(subject: &[u8]) -> bool {
    [LOOP_DETECTION_PREFIX.as_bytes(), b"$GR.", b"_GR_."]
        .iter()
        .any(|p| subject.starts_with(p))
}

/// A user's permissions as the hub applies them to that user's leaf link: what the leaf may
/// publish is what we take from it (and ask it for), what it may subscribe to is what we
/// send it (Go: processLeafNodeConnect swaps `perms.pub` and `perms.sub`).
fn swapped(p: &Permissions) -> Permissions {
    Permissions {
        publish: p.subscribe.clone(),
        subscribe: p.publish.clone(),
        ..Permissions::default()
    }
}

/// What the server must do about this leaf connection.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LeafEvent {
    /// The link is up and bound to `account`: register it, then send it the account's
    /// interest ([`LeafConn::send_sub`]).
    Connected {
        /// The local account this link carries.
        account: String,
        /// The peer's server id.
        remote_id: String,
        /// The peer's server name.
        remote_name: String,
    },
    /// `LS+`: the peer has interest (or a new queue weight).
    RemoteSub(RemoteSub),
    /// `LS-`: the peer lost interest.
    RemoteUnsub(RemoteUnsub),
    /// `LMSG`/`HMSG`: a message for the bound account.
    Msg(RoutedMsg),
    /// Leaf side: the hub's INFO named the leaf-node URLs of its cluster (`leafnode_urls`,
    /// the newest list, never empty): the remote may dial them when its own URLs fail
    /// (Go: leafnode.go processLeafnodeInfo → updateLeafNodeURLs).
    LeafUrls(Vec<String>),
    /// The link must close; a final `-ERR` (if any) is queued.
    Closed(LeafCloseReason),
}

/// `leafnodes { authorization { … } }`: who may connect, and to which account.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LeafAuth {
    /// The single user (empty: none).
    pub user: String,
    /// Its password (plain or bcrypt).
    pub password: String,
    /// The account of the single user, or of every leaf without authentication.
    pub account: Option<String>,
    /// Users, each bound to its account.
    pub users: Vec<LeafUser>,
}

impl std::fmt::Debug for LeafAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafAuth")
            .field("user", &self.user)
            .field("account", &self.account)
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

impl LeafAuth {
    /// Names no user: the server's own users (if any) decide.
    pub fn is_open(&self) -> bool {
        self.user.is_empty() && self.users.is_empty()
    }

    /// The account a CONNECT with these credentials is bound to, or `None` if refused
    /// (Go: server/auth.go isLeafNodeAuthorized).
    pub fn authorize(&self, user: &str, pass: &str) -> Option<String> {
        let account = |a: &Option<String>| a.clone().unwrap_or_else(|| GLOBAL_ACCOUNT.to_owned());
        if !self.users.is_empty() {
            return self
                .users
                .iter()
                .find(|u| u.user == user && password_matches(&u.password, pass))
                .map(|u| account(&u.account));
        }
        if !self.user.is_empty() && (user != self.user || !password_matches(&self.password, pass)) {
            return None;
        }
        Some(account(&self.account))
    }
}

/// Per-server settings every leaf connection reads.
#[derive(Debug, Clone)]
pub struct LeafSettings {
    /// Our INFO (hub side): `server_id`, `server_name`, `version`, `proto` (1), `go`,
    /// `host`/`port` of the leaf listener, `headers`, `max_payload`, `jetstream`, `domain`,
    /// `leafnode_urls`. The nonce, `client_id` and the answer to CONNECT are filled in per
    /// connection. As a leaf we send our `jetstream` and `domain` in CONNECT.
    pub info: RouteInfo,
    /// Our cluster name, sent in CONNECT (the server name when there is no cluster).
    pub cluster: String,
    /// Bound on a control line.
    pub max_control_line: u32,
    /// Bound on a message (headers plus body).
    pub max_payload: u32,
    /// Bound on bytes queued for the peer; passing it closes the link.
    pub max_pending: usize,
    /// `ping_interval`.
    pub ping_interval: Duration,
    /// `ping_max`.
    pub ping_max: u32,
    /// `leafnodes.authorization.timeout`.
    pub auth_timeout: Duration,
    /// Hub side: who may connect.
    pub auth: LeafAuth,
    /// Hub side: the server's own users, which authenticate leaves when `auth` names nobody
    /// (`None`: every leaf is let in then).
    pub main_auth: Option<Arc<Authenticator>>,
}

/// Which side dialed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafRole {
    /// We are the leaf: we dialed a `remotes` URL.
    Solicited {
        /// URL user.
        user: Option<String>,
        /// URL password.
        pass: Option<String>,
        /// The local account of this remote.
        account: String,
    },
    /// We are the hub: the peer dialed our leaf port.
    Accepted,
}

/// Which timer is armed.
pub use crate::link::LinkTimer as LeafTimer;

/// One leaf connection's protocol state.
#[derive(Debug)]
pub struct LeafConn {
    id: u64,
    cfg: Arc<LeafSettings>,
    role: LeafRole,
    parser: RouteParser,
    closed: bool,
    /// Set once bound to an account (hub: after CONNECT; leaf: after the hub's INFO).
    account: Option<String>,
    remote: Option<(String, String)>,
    peer_headers: bool,
    /// The hub's INFO asked for TLS (`tls_required`).
    peer_tls: bool,
    /// What may cross the link: publish is what we send, subscribe what we take in (a
    /// remote's `deny_exports` and `deny_imports`).
    perms: Option<Arc<PermissionChecker>>,
    /// Leaf side: the remote's `deny_exports` and `deny_imports`, merged into the
    /// permissions the hub sends.
    deny: (Vec<String>, Vec<String>),
    /// Leaf side: CONNECT is sent, the hub's answer (INFO with `connect_info`) is awaited
    /// before the link is bound: the account, the hub's id and name.
    pending_bind: Option<(String, String, String)>,
    /// Hub side: the leaf user's own permissions, told to the leaf in our answer to CONNECT.
    user_perms: Option<Permissions>,
    /// Leaf side: a `.creds` remote's JWT and seed.
    creds: Option<Arc<LeafCredentials>>,
    /// The JetStream API subjects kept from crossing (set when bound; see [`jetstream`]).
    js: JsDeny,
    /// Our `$LDS.` subject for the bound account.
    loop_subject: Option<Bytes>,
    /// A loop was detected (here or by the peer): the dialer waits
    /// [`LOOP_RECONNECT_DELAY`] before the next attempt.
    loop_detected: bool,
    out: LinkOut,
    events: VecDeque<LeafEvent>,
    keepalive: Keepalive,
}

impl LeafConn {
    /// A new leaf connection; the hub's INFO is queued at once.
    pub fn new(now: Instant, id: u64, cfg: Arc<LeafSettings>, role: LeafRole, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let accepted = role == LeafRole::Accepted;
        let mut conn = Self {
            id,
            parser: proto::parser(
                cfg.max_control_line,
                cfg.max_payload,
                Bytes::from_static(GLOBAL_ACCOUNT.as_bytes()),
            ),
            role,
            closed: false,
            account: None,
            remote: None,
            peer_headers: false,
            peer_tls: false,
            perms: None,
            deny: (Vec::new(), Vec::new()),
            pending_bind: None,
            user_perms: None,
            creds: None,
            js: JsDeny::default(),
            loop_subject: None,
            loop_detected: false,
            out: LinkOut::new(),
            events: VecDeque::new(),
            // Go: server/leafnode.go createLeafNode — the hub waits auth_timeout for CONNECT.
            keepalive: Keepalive::new(
                now + cfg.ping_interval.min(FIRST_PING_INTERVAL),
                accepted.then(|| now + cfg.auth_timeout),
            ),
            cfg,
        };
        if accepted {
            // Go: the hub always asks for CONNECT credentials checking (auth_required: true).
            let mut info = conn.cfg.info.clone();
            info.nonce = crate::auth::new_nonce(&mut rng);
            info.auth_required = true;
            info.info_on_connect = true;
            info.client_id = id;
            proto::encode_info(conn.out.buf(), &info);
        }
        conn
    }

    /// Leaf side: restricts what crosses the link (Go: leafnode.go, a remote's deny lists
    /// become the link's permissions: publish deny = `deny_exports`, subscribe deny =
    /// `deny_imports`), merged into the permissions the hub may send in its answer to CONNECT.
    ///
    /// - Our interest in a subject we may not subscribe to is never sent (no `LS+`), and a
    ///   message on it that arrives anyway is dropped.
    /// - The peer's interest in a literal subject we may not publish to is ignored, and no
    ///   message on such a subject is sent (a wildcard interest is taken, its messages checked
    ///   one by one: Go: client.go deliverMsg).
    pub fn set_deny_lists(&mut self, deny_exports: &[String], deny_imports: &[String]) {
        self.deny = (deny_exports.to_vec(), deny_imports.to_vec());
        self.apply_permissions(None, None);
    }

    /// Leaf side: the link's permissions, from what the hub told us (its `export` is what we
    /// may send, its `import` what we may ask for and take in) plus our deny lists (Go:
    /// processLeafnodeInfo).
    fn apply_permissions(
        &mut self,
        export: Option<&RoutePermission>,
        import: Option<&RoutePermission>,
    ) {
        let side = |from: Option<&RoutePermission>, deny: &[String]| {
            if from.is_none() && deny.is_empty() {
                return None;
            }
            let mut p = SubjectPermission::default();
            if let Some(f) = from {
                p.allow.clone_from(&f.allow);
                p.deny.clone_from(&f.deny);
            }
            p.deny.extend_from_slice(deny);
            Some(p)
        };
        let perms = Permissions {
            publish: side(export, &self.deny.0),
            subscribe: side(import, &self.deny.1),
            ..Permissions::default()
        };
        self.perms = (perms.publish.is_some() || perms.subscribe.is_some())
            .then(|| Arc::new(PermissionChecker::new(&perms)));
    }

    /// Leaf side: authenticate with a `.creds` file (its JWT, and the hub's nonce signed with
    /// its seed) instead of URL credentials.
    pub fn set_credentials(&mut self, creds: Arc<LeafCredentials>) {
        self.creds = Some(creds);
    }

    /// Sets our loop-detection subject for the bound account (`$LDS.<random>`, the same on
    /// every link of the account) and sends it as interest (Go: initLeafNodeSmapAndSendSubs).
    /// An `LS+` of it coming back on any link is a loop: the link closes with `-ERR 'Loop
    /// detected …'`.
    pub fn set_loop_subject(&mut self, subject: Bytes) {
        self.send_sub(&subject, None);
        self.loop_subject = Some(subject);
    }

    /// Whether this link closed over a loop, found here or reported by the peer: wait
    /// [`LOOP_RECONNECT_DELAY`] before dialing again.
    pub fn loop_detected(&self) -> bool {
        self.loop_detected
    }

    /// Go: leafnode.go handleLeafNodeLoop.
    fn loop_found(&mut self, send_err: bool) {
        self.loop_detected = true;
        let account = self.account.as_deref().unwrap_or(GLOBAL_ACCOUNT);
        let text = format!(
            "Loop detected for leafnode account={account:?}. Delaying attempt to reconnect for {}s",
            LOOP_RECONNECT_DELAY.as_secs()
        );
        tracing::error!(lid = self.id, "{text}");
        if send_err {
            proto::encode_err(self.out.buf(), &text);
        }
        self.close(LeafCloseReason::ProtocolViolation);
    }

    fn may_deliver(&self, subject: &[u8]) -> bool {
        self.js.may_receive(subject)
            && self
                .perms
                .as_ref()
                .is_none_or(|p| p.deliver_allowed(subject, None))
    }

    fn may_send(&self, subject: &[u8]) -> bool {
        self.js.may_send(subject) && self.perms.as_ref().is_none_or(|p| p.can_publish(subject))
    }

    fn may_take(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        // Go: canSubscribe — a leaf link may ask for a wildcard wider than what it may
        // take (messages are checked one by one, see may_deliver).
        self.js.may_tell(subject)
            && (exempt(subject)
                || self
                    .perms
                    .as_ref()
                    .is_none_or(|p| p.can_subscribe(subject, queue) || p.may_want(subject)))
    }

    /// Our JetStream, from our INFO.
    fn local_js(&self) -> JsSide {
        JsSide {
            enabled: self.cfg.info.jetstream,
            domain: self.cfg.info.domain.clone(),
        }
    }

    /// Sets the JetStream rules for a peer with `peer`'s JetStream (Go: leafnode.go
    /// addLeafNodeConnection, on both sides once the peer is known).
    fn set_peer_js(&mut self, peer: &JsSide) {
        let local = self.local_js();
        self.js = JsDeny::new(&local, peer);
        if local.enabled && peer.enabled {
            // Go: "JetStream using domains: local %q, remote %q".
            tracing::info!(
                lid = self.id,
                "JetStream using domains: local {:?}, remote {:?}",
                local.domain,
                peer.domain
            );
        }
    }

    /// This connection's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Did we dial (are we the leaf side)?
    pub fn is_solicited(&self) -> bool {
        self.role != LeafRole::Accepted
    }

    /// Has the link closed?
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The account the link is bound to, once connected.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// The peer's server id and name, once known.
    pub fn remote(&self) -> Option<(&str, &str)> {
        self.remote.as_ref().map(|(i, n)| (i.as_str(), n.as_str()))
    }

    /// Leaf side: whether the hub's INFO asked for TLS (the driver upgrades before anything
    /// queued after that INFO goes out).
    pub fn peer_tls_required(&self) -> bool {
        self.peer_tls
    }

    /// Last measured round-trip time.
    pub fn rtt(&self) -> Option<Duration> {
        self.keepalive.rtt()
    }

    /// The gate client producers feeding this link wait on (see [`crate::outbound`]).
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

    /// Like [`Self::handle_input`], but messages for the bound account go straight into
    /// `msgs` instead of through [`Self::poll_event`], at most until `msgs` holds `max`. Any
    /// other op that emits an event stops the run after it, so the caller acts on `msgs`
    /// first, then on the events (as the route's machine does, and for the same reason: a
    /// message moved once rather than copied through the event queue, one lock per run).
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
            match self.parser.parse(buf) {
                Ok(Some(RouteOp::Msg(m)))
                    if self.account.is_some() && !self.keepalive.awaiting_auth() =>
                {
                    if self.may_deliver(&m.subject) {
                        msgs.push(m);
                    }
                }
                Ok(Some(op)) => {
                    self.handle_op(now, op);
                    if !self.events.is_empty() {
                        return !self.closed && !buf.is_empty();
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
        tracing::error!(lid = self.id, error = %e, "leafnode protocol error");
        if e.sends_err() {
            proto::encode_err(self.out.buf(), &e.err_text());
        }
        let reason = close_reason(e);
        self.close(reason);
    }

    fn handle_op(&mut self, now: Instant, op: RouteOp) {
        if self.keepalive.awaiting_auth() && !matches!(op, RouteOp::Connect(_)) {
            // Go: parser.go OP_START — a hub expects CONNECT before anything else.
            self.err_and_close(
                "Authorization Violation",
                LeafCloseReason::AuthenticationViolation,
            );
            return;
        }
        match op {
            RouteOp::Connect(c) => self.handle_connect(*c),
            RouteOp::Info(info) => self.handle_info(*info),
            RouteOp::Ping => self.out.buf().extend_from_slice(proto::PONG),
            RouteOp::Pong => self.keepalive.pong(now),
            RouteOp::Err(text) => {
                let text = String::from_utf8_lossy(&text);
                // Go: client.go processErr — the peer found a loop: wait before redialing.
                if text.contains("Loop detected") {
                    self.loop_found(false);
                    return;
                }
                tracing::warn!(lid = self.id, error = %text, "leafnode error");
                self.close(LeafCloseReason::ParseError);
            }
            // Interest and messages mean nothing until the link is bound.
            RouteOp::Sub(s) if self.account.is_some() => {
                if self.loop_subject.as_ref() == Some(&s.subject) {
                    self.loop_found(true);
                    return;
                }
                let literal = crate::subject::is_literal(&s.subject);
                if self.js.ignores_interest(&s.subject)
                    || (literal && !self.js.may_send(&s.subject))
                {
                    // JetStream's rules for the link: quietly not taken.
                    tracing::debug!(lid = self.id, subject = %String::from_utf8_lossy(&s.subject), "leafnode subscription denied");
                    return;
                }
                if !exempt(&s.subject) && literal && !self.may_send(&s.subject) {
                    let subject = String::from_utf8_lossy(&s.subject).into_owned();
                    if self.is_solicited() {
                        // Go: processLeafSub — on the leaf side a no-op: our deny lists.
                        tracing::debug!(lid = self.id, %subject, "leafnode subscription denied");
                        return;
                    }
                    // Go: leafnode.go leafPermViolation — the hub cuts the leaf off.
                    tracing::error!(
                        lid = self.id,
                        "Subscription Violation on {subject:?} - Check other side configuration"
                    );
                    self.err_and_close(
                        &format!("Permissions Violation for Subscription to {subject:?}"),
                        LeafCloseReason::ProtocolViolation,
                    );
                    return;
                }
                self.events.push_back(LeafEvent::RemoteSub(s));
            }
            RouteOp::Unsub(u) if self.account.is_some() => {
                self.events.push_back(LeafEvent::RemoteUnsub(u));
            }
            RouteOp::Msg(m) if self.account.is_some() && self.may_deliver(&m.subject) => {
                self.events.push_back(LeafEvent::Msg(m));
            }
            _ => {}
        }
    }

    fn err_and_close(&mut self, text: &str, reason: LeafCloseReason) {
        proto::encode_err(self.out.buf(), text);
        self.close(reason);
    }

    /// Hub side. Go: server/leafnode.go processLeafNodeConnect.
    fn handle_connect(&mut self, c: RouteConnect) {
        if self.is_solicited() || self.account.is_some() {
            return;
        }
        let Some(account) = self.authorize(&c) else {
            self.err_and_close(
                "Authorization Violation",
                LeafCloseReason::AuthenticationViolation,
            );
            return;
        };
        self.keepalive.auth_done();
        self.peer_headers = self.cfg.info.headers && c.headers;
        self.set_peer_js(&JsSide {
            enabled: c.jetstream,
            domain: c.domain.clone(),
        });
        // Go: sendInfo after CONNECT — tells the leaf which account it landed in.
        let mut info = self.cfg.info.clone();
        info.auth_required = true;
        info.info_on_connect = true;
        info.connect_info = true;
        info.client_id = self.id;
        info.remote_account.clone_from(&account);
        // Go: setPermissions (isHubLeafNode) and sendPermsAndAccountInfo — the leaf is told
        // its user's permissions, unswapped, to enforce them on its side.
        if let Some(p) = &self.user_perms {
            let wire = |s: &Option<SubjectPermission>| {
                s.as_ref().map(|s| RoutePermission {
                    allow: s.allow.clone(),
                    deny: s.deny.clone(),
                })
            };
            info.import = wire(&p.subscribe);
            info.export = wire(&p.publish);
        }
        proto::encode_info(self.out.buf(), &info);
        self.bind(account, c.server_id, c.name);
    }

    /// Hub side: the account a CONNECT binds to, or `None` if refused. A user of the main
    /// `authorization` brings its permissions onto the link.
    fn authorize(&mut self, c: &RouteConnect) -> Option<String> {
        let main = match &self.cfg.main_auth {
            Some(m) if self.cfg.auth.is_open() => m,
            _ => return self.cfg.auth.authorize(&c.user, &c.pass),
        };
        match main.authenticate_leaf(&c.user, &c.pass) {
            Ok(None) => self.cfg.auth.authorize("", ""),
            Ok(Some(outcome)) => {
                if let Some(p) = &outcome.permissions {
                    self.perms = Some(Arc::new(PermissionChecker::new(&swapped(p))));
                    self.user_perms = Some(p.clone());
                }
                Some(outcome.account)
            }
            Err(e) => {
                tracing::warn!(lid = self.id, error = %e, "leafnode authentication failed");
                None
            }
        }
    }

    /// Leaf side: the hub's first INFO is answered with CONNECT. Later INFOs (the answer to
    /// CONNECT, URL updates) only bring the hub cluster's leaf URLs.
    fn handle_info(&mut self, info: RouteInfo) {
        let LeafRole::Solicited {
            user,
            pass,
            account,
        } = &self.role
        else {
            return;
        };
        // Go: processLeafnodeInfo — the first INFO and every later one (the answer to
        // CONNECT, asynchronous updates) carry the hub cluster's current leaf URLs.
        if !info.leafnode_urls.is_empty() && info.server_id != self.cfg.info.server_id {
            self.events
                .push_back(LeafEvent::LeafUrls(info.leafnode_urls.clone()));
        }
        if self.account.is_some() {
            return;
        }
        if let Some((account, id, name)) = self.pending_bind.take() {
            // Go: processLeafnodeInfo — the answer to CONNECT carries our permissions; only
            // then is the connect finished (our interest sent).
            if info.import.is_some() || info.export.is_some() {
                self.apply_permissions(info.export.as_ref(), info.import.as_ref());
            }
            self.bind(account, id, name);
            return;
        }
        self.peer_tls = info.tls_required;
        if info.server_id == self.cfg.info.server_id {
            // A remote URL that resolves to ourselves.
            self.close(LeafCloseReason::DuplicateRoute);
            return;
        }
        // Go: server/leafnode.go sendLeafConnect.
        let connect = RouteConnect {
            version: self.cfg.info.version.clone(),
            server_id: self.cfg.info.server_id.clone(),
            name: self.cfg.info.server_name.clone(),
            cluster: self.cfg.cluster.clone(),
            headers: self.cfg.info.headers,
            user: user.clone().unwrap_or_default(),
            pass: pass.clone().unwrap_or_default(),
            domain: self.cfg.info.domain.clone(),
            jetstream: self.cfg.info.jetstream,
            ..RouteConnect::default()
        };
        let mut connect = connect;
        if let Some(c) = &self.creds {
            // Go: sendLeafConnect — credentials take precedence over the URL's user.
            connect.user.clear();
            connect.pass.clear();
            connect.jwt.clone_from(&c.jwt);
            connect.sig = c.sign(&info.nonce).unwrap_or_default();
        }
        proto::encode_leaf_connect(self.out.buf(), &connect);
        self.peer_headers = self.cfg.info.headers && info.headers;
        let account = account.clone();
        self.set_peer_js(&JsSide {
            enabled: info.jetstream,
            domain: info.domain.clone(),
        });
        if info.info_on_connect {
            // Go: leafNodeFinishConnectProcess waits for the hub's answer.
            self.pending_bind = Some((account, info.server_id, info.server_name));
        } else {
            self.bind(account, info.server_id, info.server_name);
        }
    }

    fn bind(&mut self, account: String, remote_id: String, remote_name: String) {
        self.parser.set_account(Bytes::from(account.clone()));
        self.account = Some(account.clone());
        self.remote = Some((remote_id.clone(), remote_name.clone()));
        self.events.push_back(LeafEvent::Connected {
            account,
            remote_id,
            remote_name,
        });
    }

    /// Hub side: tells a bound leaf the cluster's leaf-node URLs changed, with an
    /// asynchronous INFO (Go: leafnode.go sendAsyncLeafNodeInfo, whose INFO is the hub's
    /// without a nonce). Nothing on a leaf-side link, before CONNECT or once closed.
    pub fn send_leaf_urls(&mut self, urls: &[String]) {
        if self.closed || self.is_solicited() || self.account.is_none() {
            return;
        }
        let mut info = self.cfg.info.clone();
        info.auth_required = true;
        info.leafnode_urls = urls.to_vec();
        proto::encode_info(self.out.buf(), &info);
    }

    /// Closes from outside (EOF, write error, shutdown…).
    pub fn close(&mut self, reason: LeafCloseReason) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.out.gate().release();
        if matches!(
            reason,
            LeafCloseReason::SlowConsumerPendingBytes
                | LeafCloseReason::SlowConsumerWriteDeadline
                | LeafCloseReason::ReadError
                | LeafCloseReason::WriteError
        ) {
            self.out.discard();
        }
        self.events.push_back(LeafEvent::Closed(reason));
    }

    /// Sends `LS+` (`queue`: the group and its local member count). Nothing before binding.
    pub fn send_sub(&mut self, subject: &[u8], queue: Option<(&[u8], u32)>) {
        if !self.closed && self.account.is_some() && self.may_take(subject, None) {
            proto::encode_sub(self.out.buf(), subject, queue);
            self.check_pending();
        }
    }

    /// Sends `LS-`.
    pub fn send_unsub(&mut self, subject: &[u8], queue: Option<&[u8]>) {
        if !self.closed && self.account.is_some() && self.may_take(subject, None) {
            proto::encode_unsub(self.out.buf(), subject, queue);
            self.check_pending();
        }
    }

    /// Sends one message (`LMSG`, or `HMSG` with headers the peer supports), naming the queue
    /// groups a member on the peer was chosen for. A large part is queued by reference when
    /// the caller holds it refcounted (the pair's second half).
    pub fn send_msg_from(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        queues: &[&[u8]],
        headers: Option<&[u8]>,
        (payload, shared): (&[u8], Option<&Bytes>),
    ) {
        if self.closed || self.account.is_none() || !self.may_send(subject) {
            return;
        }
        let headers = headers.filter(|h| !h.is_empty() && self.peer_headers);
        let header_len = headers.map(<[u8]>::len);
        let h = MsgHeader {
            origin: None,
            reply,
            queues,
            header_len,
            total_len: header_len.unwrap_or(0) + payload.len(),
        };
        proto::encode_msg_header(self.out.buf(), subject, &h);
        if let Some(h) = headers {
            self.out.put_part(h, None);
        }
        self.out.put_part(payload, shared);
        self.out.buf().extend_from_slice(b"\r\n");
        self.check_pending();
    }

    fn check_pending(&mut self) {
        let max = self.cfg.max_pending;
        if self.out.over(max) {
            tracing::info!(
                lid = self.id,
                "Slow Consumer Detected: MaxPending of {max} Exceeded"
            );
            self.close(LeafCloseReason::SlowConsumerPendingBytes);
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
                LeafCloseReason::AuthenticationTimeout,
            ),
            Tick::Stale => self.err_and_close("Stale Connection", LeafCloseReason::StaleConnection),
            Tick::Ping => self.out.buf().extend_from_slice(proto::PING),
        }
    }

    /// The next chunk of bytes for the peer, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.out.poll_transmit()
    }

    /// The next event for the server, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LeafEvent> {
        self.events.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<(Instant, LeafTimer)> {
        if self.closed {
            return None;
        }
        Some(self.keepalive.poll_timeout())
    }
}
