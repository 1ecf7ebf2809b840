//! The one seam between the driver and the network: tokio in production, turmoil in the sim.
//!
//! The driver never names a socket type; it is generic over [`Transport`]. The simulation
//! implements the same trait on turmoil's sockets, so the code under test is the production code.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncWrite};

/// A network to listen on and dial out of, plus the wall clock that goes with it.
pub trait Transport: Send + Sync + 'static {
    /// A bound listener.
    type Listener: Send + Sync + 'static;
    /// A connected byte stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Binds a listener.
    fn bind(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    /// Accepts the next connection.
    fn accept(
        l: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
    /// The address a listener is bound to.
    fn local_addr(l: &Self::Listener) -> io::Result<SocketAddr>;
    /// Dials out.
    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// Wall-clock time (the sim's is simulated).
    fn wall_clock() -> SystemTime;

    /// Run the server's blocking workers (JetStream's) as tasks on the caller's runtime
    /// instead of their own threads. The simulation needs this: a thread would run outside
    /// turmoil's schedule and survive a host crash.
    const INLINE_WORKERS: bool = false;
}

/// The production transport: `tokio::net`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokio;

impl Transport for Tokio {
    type Listener = tokio::net::TcpListener;
    type Stream = tokio::net::TcpStream;

    async fn bind(addr: SocketAddr) -> io::Result<Self::Listener> {
        if addr.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
            // Go: net.Listen("tcp", "0.0.0.0:port") opens a dual-stack socket, so clients
            // reach nats-server over IPv6 as well. Do the same, unless the host has no IPv6.
            match bind_dual_stack(addr.port()) {
                Ok(l) => return Ok(l),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Err(e),
                Err(e) => tracing::debug!(error = %e, "no dual-stack listener; IPv4 only"),
            }
        }
        tokio::net::TcpListener::bind(addr).await
    }

    async fn accept(l: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        let (s, a) = l.accept().await?;
        // Small protocol lines must not wait for Nagle.
        s.set_nodelay(true)?;
        // On a dual-stack listener IPv4 peers show up as `::ffff:a.b.c.d`; report them as
        // nats-server does, as plain IPv4.
        Ok((s, SocketAddr::new(a.ip().to_canonical(), a.port())))
    }

    fn local_addr(l: &Self::Listener) -> io::Result<SocketAddr> {
        l.local_addr()
    }

    async fn connect(addr: SocketAddr) -> io::Result<Self::Stream> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    fn wall_clock() -> SystemTime {
        SystemTime::now()
    }
}

/// A listener on `[::]:port` that takes IPv4 connections too (`IPV6_V6ONLY` off), set up like
/// tokio's own `bind`: address reuse, non-blocking, a backlog of 1024.
fn bind_dual_stack(port: u16) -> io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port).into())?;
    socket.listen(1024)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// The monotonic clock the driver feeds to the machines. Under turmoil tokio's clock is
/// simulated, so this is too.
pub fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
