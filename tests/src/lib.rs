//! Black-box test support: start a server binary, talk to it with real clients.
//!
//! Every scenario is an `async fn(ServerKind)` that starts its own server(s) with
//! [`TestServer::start`]; the [`both!`] macro turns it into one `#[tokio::test]` per
//! server kind, so the same expectations run against natsd and the Go reference.
//! Nothing here sleeps for timing: every wait polls or reads towards a condition
//! and gives up at a deadline.
//!
//! Running:
//! - `cargo test -p natsd-tests nats_server`: only the Go reference variants
//!   (validates the expectations themselves);
//! - `cargo test -p natsd-tests natsd`: only natsd (built with cargo on first use,
//!   or `$NATSD_BIN`); a natsd that cannot be built or started fails, never skips;
//! - `$NATS_SERVER_BIN` overrides the `nats-server` found on `PATH`; without one the
//!   Go variants print a note and pass.
//!
//! When a test fails, the server's log is printed after the panic message.

pub mod cluster;
pub mod gateway;
pub mod js;
pub mod jscluster;
pub mod leaf;
pub mod py313;
mod raw;
mod server;

pub use raw::RawClient;
pub use server::{free_port, ServerKind, TestServer};

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

/// Default bound for a single await in a scenario. Only a failing test waits this long, so it
/// is generous: CI runs the test binaries on a loaded two-core machine.
pub const STEP: Duration = Duration::from_secs(10);

/// Bound for a whole scenario, a backstop behind the per-step bounds.
pub const SCENARIO: Duration = Duration::from_secs(120);

/// Expands each named scenario `async fn name(kind: ServerKind)` into a module
/// `name` holding two tests, `natsd` and `nats_server`.
///
/// `cargo test -p natsd-tests nats_server` runs only the Go-server variants.
#[macro_export]
macro_rules! both {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn natsd() {
                    $crate::run_scenario($crate::ServerKind::Natsd, super::$name).await;
                }

                #[tokio::test]
                async fn nats_server() {
                    $crate::run_scenario($crate::ServerKind::NatsServer, super::$name).await;
                }
            }
        )+
    };
}

/// Runs one scenario against `kind`, or prints a note and returns when the
/// server kind is not installed (only ever the case for the Go server: natsd is
/// built on demand and a failed build fails the test).
pub async fn run_scenario<F, Fut>(kind: ServerKind, scenario: F)
where
    F: FnOnce(ServerKind) -> Fut,
    Fut: Future<Output = ()>,
{
    if !kind.available() {
        eprintln!("note: {} is not installed; scenario skipped", kind.name());
        return;
    }
    // Resolve (for natsd: build) the binary before the scenario clock starts.
    let bin = kind.binary();
    if !bin.is_file() {
        panic!("{} binary {} does not exist", kind.name(), bin.display());
    }
    if tokio::time::timeout(SCENARIO, scenario(kind))
        .await
        .is_err()
    {
        panic!(
            "scenario against {} did not finish within {SCENARIO:?}",
            kind.name()
        );
    }
}

/// Awaits `fut` for at most [`STEP`], panicking with `what` when it takes longer.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    within_for(STEP, what, fut).await
}

/// Awaits `fut` for at most `limit`, panicking with `what` when it takes longer.
pub async fn within_for<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?} waiting for: {what}"),
    }
}

/// Connects to a loopback port the server may not be listening on yet (its client port is up
/// before its cluster or leaf listener is): retries a refused connection until [`STEP`] passes.
pub async fn connect_when_listening(port: u16) -> tokio::net::TcpStream {
    let attempt = async {
        loop {
            match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(tcp) => return tcp,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("connect to 127.0.0.1:{port}: {e}"),
            }
        }
    };
    within("the port to listen", attempt).await
}

/// Next message of `sub`, panicking when the stream ends or nothing arrives in time.
pub async fn next_msg(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    match within("next message", sub.next()).await {
        Some(m) => m,
        None => panic!("subscription ended while a message was expected"),
    }
}

/// Waits until the server has processed everything `client` sent so far.
///
/// async-nats' own `flush` only empties the client's write buffer, which says
/// nothing about the server. This publishes to a fresh inbox the client is
/// subscribed to and waits for the message to come back: since the server
/// handles one connection's operations in order, every earlier SUB/PUB/UNSUB has
/// then been applied and earlier messages have been routed to their subscribers.
/// Needs echo on and permission to use `_INBOX.>`; see [`flush_with`] otherwise.
pub async fn flush(client: &async_nats::Client) {
    flush_with(client, client).await;
}

/// Like [`flush`] for `sender`, with the marker observed by `observer`
/// (for clients that cannot receive their own messages, e.g. with echo off).
pub async fn flush_with(sender: &async_nats::Client, observer: &async_nats::Client) {
    let subject = observer.new_inbox();
    let mut marker = match within("flush subscribe", observer.subscribe(subject.clone())).await {
        Ok(s) => s,
        Err(e) => panic!("flush subscribe failed: {e}"),
    };
    if !std::ptr::eq(sender, observer) {
        // The observer's SUB must be in place before the sender's PUB.
        Box::pin(flush(observer)).await;
    }
    if let Err(e) = within("flush publish", sender.publish(subject, Bytes::new())).await {
        panic!("flush publish failed: {e}");
    }
    if let Err(e) = within("flush write", sender.flush()).await {
        panic!("flush failed: {e}");
    }
    within("flush marker to come back", marker.next()).await;
    let _ = marker.unsubscribe().await;
}

/// Messages already delivered to `sub` and buffered in the client, without waiting.
pub fn drain_ready(sub: &mut async_nats::Subscriber) -> Vec<async_nats::Message> {
    use futures::FutureExt;
    let mut out = Vec::new();
    // `unconstrained`: tokio's cooperative budget would otherwise report an
    // empty channel after ~128 receives in one task poll.
    while let Some(Some(m)) = tokio::task::unconstrained(sub.next()).now_or_never() {
        out.push(m);
    }
    out
}

/// Payload of `msg` as UTF-8 text (lossy), for readable assertions.
pub fn text(msg: &async_nats::Message) -> String {
    String::from_utf8_lossy(&msg.payload).into_owned()
}
