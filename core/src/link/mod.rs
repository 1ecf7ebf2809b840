//! What the machines of server-to-server links (routes, leaf nodes, and gateways to come)
//! share: the close reasons with nats-server's wording, the PING/PONG keepalive with its RTT
//! and the CONNECT deadline, the mapping of parser errors to close reasons, and password
//! checking. The outbound queue is [`crate::linkout`].

use std::fmt;
use std::time::{Duration, Instant};

use crate::proto::route::RouteProtoError;

/// Why a link closed, with nats-server's wording (`/routez`, `/leafz`, log lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed the connection.
    ClientClosed,
    /// No CONNECT within `cluster.authorization.timeout`.
    AuthenticationTimeout,
    /// Bad route credentials, or an op before CONNECT while credentials are required.
    AuthenticationViolation,
    /// Outbound bytes passed the pending bound.
    SlowConsumerPendingBytes,
    /// A write did not finish within the write deadline.
    SlowConsumerWriteDeadline,
    /// Too many PINGs went unanswered.
    StaleConnection,
    /// Unknown op, or `-ERR` from the peer.
    ParseError,
    /// Bad arguments or JSON.
    ProtocolViolation,
    /// A message larger than our bound.
    MaxPayloadExceeded,
    /// A control line longer than our bound.
    MaxControlLineExceeded,
    /// A route to ourselves, or a second connection to a server already routed.
    DuplicateRoute,
    /// A route whose URL was removed from the configuration.
    RouteRemoved,
    /// The cluster names differ (and ours may not give way).
    ClusterNameConflict,
    /// The peer (which dialed us) has our server name.
    DuplicateServerName,
    /// A client dialed the cluster port.
    WrongPort,
    /// A gateway dialed the cluster port.
    WrongGateway,
    /// Reading from the socket failed.
    ReadError,
    /// Writing to the socket failed.
    WriteError,
    /// The TLS handshake failed.
    TlsHandshakeError,
    /// The server is shutting down.
    ServerShutdown,
}

impl CloseReason {
    /// nats-server's text for this reason (Go: server/monitor.go ClosedState.String).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "Client Closed",
            Self::AuthenticationTimeout => "Authentication Timeout",
            Self::AuthenticationViolation => "Authentication Failure",
            Self::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            Self::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            Self::StaleConnection => "Stale Connection",
            Self::ParseError => "Parse Error",
            Self::ProtocolViolation => "Protocol Violation",
            Self::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            Self::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            Self::DuplicateRoute => "Duplicate Route",
            Self::RouteRemoved => "Route Removed",
            Self::ClusterNameConflict => "Cluster Name Conflict",
            Self::DuplicateServerName => "Duplicate Server Name",
            Self::WrongPort => "Incorrect Port",
            Self::WrongGateway => "Wrong Gateway",
            Self::ReadError => "Read Error",
            Self::WriteError => "Write Error",
            Self::TlsHandshakeError => "TLS Handshake Failure",
            Self::ServerShutdown => "Server Shutdown",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The close reason for a parser error (Go: the parser's errors close with these states).
pub fn close_reason(e: &RouteProtoError) -> CloseReason {
    match e {
        RouteProtoError::UnknownOp => CloseReason::ParseError,
        RouteProtoError::MaxPayload { .. } => CloseReason::MaxPayloadExceeded,
        RouteProtoError::MaxControlLine { .. } => CloseReason::MaxControlLineExceeded,
        _ => CloseReason::ProtocolViolation,
    }
}

/// Go: server/auth.go comparePasswords — bcrypt when the configured secret is a hash, else a
/// constant-time comparison.
pub(crate) fn password_matches(configured: &str, given: &str) -> bool {
    let is_bcrypt = ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| configured.starts_with(p));
    if is_bcrypt {
        return bcrypt::verify(given, configured).unwrap_or(false);
    }
    let (a, b) = (configured.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Which timer is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkTimer {
    /// CONNECT must arrive before this.
    Auth,
    /// Time to send a PING (or declare the link stale).
    Ping,
}

/// What a due timer asks of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Nothing (early, or the link proved itself alive).
    Idle,
    /// No CONNECT in time: `-ERR 'Authentication Timeout'` and close.
    AuthTimeout,
    /// Too many PINGs unanswered: `-ERR 'Stale Connection'` and close.
    Stale,
    /// Send a PING (its RTT clock is started).
    Ping,
}

/// Go: server/const.go DEFAULT_RTT_MEASUREMENT_INTERVAL — a PING is forced this long after the
/// last RTT sample even when traffic proves the link alive.
const RTT_MEASUREMENT_INTERVAL: Duration = Duration::from_secs(3600);

/// A link's timers: the CONNECT deadline of an accepted link, the PING schedule, the PINGs
/// not yet answered and the measured round-trip time.
#[derive(Debug, Clone)]
pub struct Keepalive {
    auth_deadline: Option<Instant>,
    next_ping: Instant,
    pings_out: u32,
    rtt_start: Option<Instant>,
    rtt: Option<Duration>,
}

impl Keepalive {
    /// The first PING is due at `first_ping`; CONNECT must arrive before `auth_deadline`.
    pub fn new(first_ping: Instant, auth_deadline: Option<Instant>) -> Self {
        Self {
            auth_deadline,
            next_ping: first_ping,
            pings_out: 0,
            rtt_start: None,
            rtt: None,
        }
    }

    /// Whether the CONNECT deadline is armed.
    pub fn awaiting_auth(&self) -> bool {
        self.auth_deadline.is_some()
    }

    /// CONNECT passed: disarms its deadline.
    pub fn auth_done(&mut self) {
        self.auth_deadline = None;
    }

    /// A PONG arrived: nothing is outstanding, and the RTT is measured from the last PING.
    pub fn pong(&mut self, now: Instant) {
        self.pings_out = 0;
        if let Some(start) = self.rtt_start {
            self.rtt = Some(
                now.saturating_duration_since(start)
                    .max(Duration::from_nanos(1)),
            );
        }
    }

    /// Last measured round-trip time.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Fires what is due at `now`. `last_heard` is when the peer last proved itself alive
    /// (traffic or a PING of its own): within `interval` it spares a PING unless an RTT sample
    /// is due (Go: client.go processPingTimer); `None` always PINGs.
    pub fn tick(
        &mut self,
        now: Instant,
        interval: Duration,
        ping_max: u32,
        last_heard: Option<Instant>,
    ) -> Tick {
        if self.auth_deadline.is_some_and(|d| now >= d) {
            return Tick::AuthTimeout;
        }
        if now < self.next_ping {
            return Tick::Idle;
        }
        self.next_ping = now + interval;
        let need_rtt = match (self.rtt, self.rtt_start) {
            (Some(_), Some(start)) => {
                now.saturating_duration_since(start) > RTT_MEASUREMENT_INTERVAL
            }
            _ => true,
        };
        let recent = last_heard.is_some_and(|t| now.saturating_duration_since(t) < interval);
        if !need_rtt && recent {
            return Tick::Idle;
        }
        if self.pings_out + 1 > ping_max {
            return Tick::Stale;
        }
        self.pings_out += 1;
        self.rtt_start = Some(now);
        Tick::Ping
    }

    /// When to call the machine's `handle_timeout` next, and why.
    pub fn poll_timeout(&self) -> (Instant, LinkTimer) {
        match self.auth_deadline {
            Some(a) if a < self.next_ping => (a, LinkTimer::Auth),
            _ => (self.next_ping, LinkTimer::Ping),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // any start instant will do
    fn keepalive_pings_until_stale_and_measures_rtt() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = Keepalive::new(t0 + s, Some(t0 + 2 * s));
        assert_eq!(k.poll_timeout(), (t0 + s, LinkTimer::Ping));
        assert_eq!(k.tick(t0, s, 2, None), Tick::Idle);
        assert_eq!(k.tick(t0 + s, s, 2, None), Tick::Ping);
        k.pong(t0 + s + Duration::from_millis(5));
        assert_eq!(k.rtt(), Some(Duration::from_millis(5)));
        assert_eq!(k.poll_timeout(), (t0 + 2 * s, LinkTimer::Ping));
        assert_eq!(k.tick(t0 + 2 * s, s, 2, None), Tick::AuthTimeout);
        k.auth_done();
        assert_eq!(k.tick(t0 + 2 * s, s, 2, None), Tick::Ping);
        assert_eq!(k.tick(t0 + 3 * s, s, 2, None), Tick::Ping);
        assert_eq!(k.tick(t0 + 4 * s, s, 2, None), Tick::Stale);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // any start instant will do
    fn recent_traffic_spares_a_ping_once_rtt_is_known() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut k = Keepalive::new(t0, None);
        // No RTT yet: a PING goes out even though the peer was just heard.
        assert_eq!(k.tick(t0, s, 2, Some(t0)), Tick::Ping);
        k.pong(t0);
        assert_eq!(k.tick(t0 + s, s, 2, Some(t0 + s)), Tick::Idle);
        assert_eq!(k.tick(t0 + 2 * s, s, 2, Some(t0)), Tick::Ping);
    }
}
