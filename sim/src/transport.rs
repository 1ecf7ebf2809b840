//! [`natsd::transport::Transport`] on turmoil's simulated sockets and clock.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use natsd::transport::Transport;

/// The wall clock every simulation starts at (2024-01-01T00:00:00Z). Fixed, because turmoil's
/// default epoch is the host's `SystemTime::now()`, which would leak into INFO and monitoring.
pub const FIXED_EPOCH_UNIX_SECS: u64 = 1_704_067_200;

/// [`FIXED_EPOCH_UNIX_SECS`] as a `SystemTime`.
pub fn fixed_epoch() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(FIXED_EPOCH_UNIX_SECS)
}

/// The turmoil transport: the server under test runs on it unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Turmoil;

impl Transport for Turmoil {
    type Listener = turmoil::net::TcpListener;
    type Stream = turmoil::net::TcpStream;

    const INLINE_WORKERS: bool = true;

    async fn bind(addr: SocketAddr) -> io::Result<Self::Listener> {
        turmoil::net::TcpListener::bind(addr).await
    }

    async fn accept(l: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        l.accept().await
    }

    fn local_addr(l: &Self::Listener) -> io::Result<SocketAddr> {
        l.local_addr()
    }

    async fn connect(addr: SocketAddr) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(addr).await
    }

    fn wall_clock() -> SystemTime {
        // The host's own view: epoch plus its elapsed sim time (turmoil keeps it per host).
        UNIX_EPOCH + turmoil::since_epoch().unwrap_or(Duration::from_secs(FIXED_EPOCH_UNIX_SECS))
    }
}
