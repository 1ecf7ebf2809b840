//! What the drivers of server-to-server links (routes, leaf nodes, and gateways to come) share:
//! the accept loop of a link listener and the writer task that drains a link machine.
//!
//! A link's handle implements [`LinkIo`]; its reader stays link-specific (what a link does
//! with its events is what makes it a route or a leaf).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, Notify};

use crate::transport::Transport;

/// Chunks per vectored write (Linux's IOV_MAX is 1024).
const MAX_IOVECS: usize = 64;

/// Why the writer gave up on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteFailure {
    /// The socket refused the write (or wrote nothing).
    Error,
    /// No byte went out within the write deadline: a slow consumer.
    Deadline,
}

impl WriteFailure {
    /// The reason the link closes with.
    pub(crate) fn close_reason(self) -> natsd_core::link::CloseReason {
        match self {
            Self::Error => natsd_core::link::CloseReason::WriteError,
            Self::Deadline => natsd_core::link::CloseReason::SlowConsumerWriteDeadline,
        }
    }
}

/// A link handle as its writer task sees it.
pub(crate) trait LinkIo: Send + Sync + 'static {
    /// The connection id (log lines).
    fn link_id(&self) -> u64;
    /// Moves every chunk the machine has queued onto `out`; returns whether it has closed.
    fn take_output(&self, out: &mut VecDeque<Bytes>) -> bool;
    /// Notified when the machine queued output (or closed).
    fn write_wakeup(&self) -> &Notify;
    /// Closes the link after a failed write.
    fn write_failed(&self, why: WriteFailure);
}

/// The output side of a link machine (routes' and leaf nodes' alike).
pub(crate) trait LinkOutput {
    /// The next chunk for the peer.
    fn next_chunk(&mut self) -> Option<Bytes>;
    /// Whether the machine has closed.
    fn closed(&self) -> bool;
    /// Bytes queued for the peer and not yet taken.
    fn queued_bytes(&self) -> usize;
}

impl LinkOutput for natsd_core::route::RouteConn {
    fn next_chunk(&mut self) -> Option<Bytes> {
        self.poll_transmit()
    }

    fn closed(&self) -> bool {
        self.is_closed()
    }

    fn queued_bytes(&self) -> usize {
        self.pending_bytes()
    }
}

impl LinkOutput for natsd_core::leaf::LeafConn {
    fn next_chunk(&mut self) -> Option<Bytes> {
        self.poll_transmit()
    }

    fn closed(&self) -> bool {
        self.is_closed()
    }

    fn queued_bytes(&self) -> usize {
        self.pending_bytes()
    }
}

/// Runs `f` on a link's machine, then wakes its writer (and its reader, if `f` closed it):
/// what each link handle's `with` does.
pub(crate) fn run_on<M: LinkOutput, R>(
    machine: &std::sync::Mutex<M>,
    write: &Notify,
    close: &Notify,
    f: impl FnOnce(&mut M) -> R,
) -> R {
    let (r, closed, output) = {
        let mut m = crate::server::lock(machine);
        let r = f(&mut m);
        (r, m.closed(), m.queued_bytes() > 0)
    };
    // Only when there is something to write (or the writer must finish): a wake-up after
    // every routed message read cost the writer task a needless switch each.
    if output || closed {
        write.notify_one();
    }
    if closed {
        close.notify_one();
    }
    r
}

/// Moves every chunk `machine` has queued onto `out` under one lock; returns whether it has
/// closed (what [`LinkIo::take_output`] does for every link).
pub(crate) fn take_output<M: LinkOutput>(
    machine: &std::sync::Mutex<M>,
    out: &mut VecDeque<Bytes>,
) -> bool {
    let mut m = crate::server::lock(machine);
    while let Some(b) = m.next_chunk() {
        out.push_back(b);
    }
    m.closed()
}

/// Writes what the machine queues, in vectored writes (a control line and a shared payload are
/// separate chunks; a partial write leaves the rest of the front chunk), until it closes.
///
/// Go: client.go flushOutbound → handleWriteTimeout — a link is a slow consumer when a write
/// makes no progress at all within the write deadline (a peer that stopped reading); a write
/// that progresses slowly is given more time.
pub(crate) async fn write_loop<W: AsyncWrite + Unpin, H: LinkIo>(
    mut wr: W,
    h: std::sync::Arc<H>,
    deadline: Duration,
) {
    let mut chunks: VecDeque<Bytes> = VecDeque::new();
    loop {
        let closed = h.take_output(&mut chunks);
        if chunks.is_empty() {
            if closed {
                break;
            }
            h.write_wakeup().notified().await;
            continue;
        }
        while !chunks.is_empty() {
            let slices: Vec<IoSlice<'_>> = chunks
                .iter()
                .take(MAX_IOVECS)
                .map(|b| IoSlice::new(b))
                .collect();
            match tokio::time::timeout(deadline, wr.write_vectored(&slices)).await {
                Ok(Ok(n)) if n > 0 => {
                    drop(slices);
                    advance(&mut chunks, n);
                }
                Ok(_) => {
                    h.write_failed(WriteFailure::Error);
                    return;
                }
                Err(_) => {
                    let bytes: usize = chunks.iter().map(Bytes::len).sum();
                    // Go: client.go handleWriteTimeout (Noticef), word for word.
                    tracing::info!(
                        cid = h.link_id(),
                        "Slow Consumer Detected: WriteDeadline of {deadline:?} exceeded with {} chunks of {bytes} total bytes.",
                        chunks.len()
                    );
                    h.write_failed(WriteFailure::Deadline);
                    return;
                }
            }
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

/// Drops `n` written bytes from the front of `chunks`.
fn advance(chunks: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = chunks.front_mut() else {
            return;
        };
        if n >= front.len() {
            n -= front.len();
            chunks.pop_front();
        } else {
            let _ = front.split_to(n);
            n = 0;
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Accepts connections on a link listener until `stop` changes, handing each to `on_accept`
/// (which spawns its driver). `kind` names the link in the error log ("route", "leafnode").
pub(crate) fn spawn_accept_loop<T, F>(
    listener: T::Listener,
    mut stop: watch::Receiver<bool>,
    kind: &'static str,
    on_accept: F,
) -> tokio::task::JoinHandle<()>
where
    T: Transport,
    F: Fn(T::Stream, SocketAddr) + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = T::accept(&listener) => match r {
                    Ok((stream, peer)) => on_accept(stream, peer),
                    Err(e) => {
                        // Go: server.go acceptConnections — "Error accepting %s connection".
                        tracing::error!("Error accepting {kind} connection: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = stop.changed() => break,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_drops_written_bytes_across_chunks() {
        let mut q: VecDeque<Bytes> = ["RMSG a b 5\r\n", "hello", "\r\n"]
            .into_iter()
            .map(|s| Bytes::from_static(s.as_bytes()))
            .collect();
        advance(&mut q, 3);
        assert_eq!(q[0], "G a b 5\r\n");
        advance(&mut q, 9 + 2);
        assert_eq!(q.len(), 2);
        assert_eq!(q[0], "llo");
        advance(&mut q, 5);
        assert!(q.is_empty());
        advance(&mut q, 1);
        assert!(q.is_empty());
    }
}
