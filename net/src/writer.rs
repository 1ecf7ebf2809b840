//! A connection's write side, shared by its writer task and by publishers that flush inline.
//!
//! nats-server's publishers write straight into a receiver's socket when it is idle (Go:
//! client.go flushClients → flushOutbound) instead of waking the receiver's writer. We do the
//! same for small deliveries: after routing a batch, a publisher that finds the receiver's writer
//! idle and its queue short writes what the socket takes without waiting, and only hands the rest
//! to the writer task. One task hop less per delivery is what request/reply latency is made of;
//! bulk deliveries stay with the writer task, which sends them in parallel on another core.
//!
//! The one rule that keeps this safe: a publisher never polls the stream while the writer task
//! is parked on it (`writer_waiting`), because its no-op waker would replace the task's waker and
//! the task would never wake.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use natsd_core::router::ClientShared;
use tokio::io::AsyncWrite;

/// At most this many buffers go into one vectored write.
const MAX_IOVECS: usize = 64;
/// Publishers write inline only this much. Small deliveries (a request, a reply, a trickle)
/// are latency-bound and gain a task hop; bulk ones are throughput-bound and go faster when the
/// receiver's own writer task sends them from another core while the publisher keeps parsing.
const INLINE_MAX_BYTES: u64 = 8 * 1024;

/// The boxed write half of a connection.
pub(crate) type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

#[derive(Default)]
struct State {
    io: Option<BoxWrite>,
    /// Taken from the outbound queue, not yet accepted by the stream.
    backlog: VecDeque<Bytes>,
    /// The writer task is parked on the stream's readiness with its own waker.
    writer_waiting: bool,
    /// Bytes were accepted but a flush is still owed (TLS buffers internally).
    needs_flush: bool,
    /// A write failed; the writer task closes the connection.
    failed: bool,
    /// Reused for every drain of the outbound queue.
    scratch: Vec<Bytes>,
}

impl State {
    /// Writes the backlog, reporting each write's progress to `client` (what is written is
    /// no longer pending, and may release producers stalled on it).
    fn poll_write_backlog(
        &mut self,
        cx: &mut Context<'_>,
        client: &ClientShared,
    ) -> Poll<io::Result<()>> {
        let Some(io) = self.io.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        while !self.backlog.is_empty() {
            // On the stack: this runs once per write, often per message.
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (slot, b) in slices.iter_mut().zip(&self.backlog) {
                *slot = IoSlice::new(b);
                count += 1;
            }
            let mut n = match Pin::new(&mut **io).poll_write_vectored(cx, &slices[..count]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.needs_flush = true;
            client.wrote(n as u64);
            while n > 0 {
                let Some(front) = self.backlog.front_mut() else {
                    break;
                };
                if n >= front.len() {
                    n -= front.len();
                    self.backlog.pop_front();
                } else {
                    front.advance(n);
                    n = 0;
                }
            }
        }
        if self.needs_flush {
            match Pin::new(&mut **io).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// The write side of one connection.
pub(crate) struct ConnWriter {
    state: Mutex<State>,
}

impl std::fmt::Debug for ConnWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnWriter").finish_non_exhaustive()
    }
}

impl ConnWriter {
    pub(crate) fn new(io: BoxWrite) -> Self {
        Self {
            state: Mutex::new(State {
                io: Some(io),
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publisher side: writes what the stream takes right now. Returns true when nothing is
    /// left for the writer task (so it need not be woken).
    pub(crate) fn try_inline(&self, client: &ClientShared) -> bool {
        let Ok(mut st) = self.state.try_lock() else {
            return false;
        };
        if st.writer_waiting
            || st.failed
            || st.needs_flush
            || !st.backlog.is_empty()
            || st.io.is_none()
        {
            return false;
        }
        if client.close_reason().is_some() || client.pending_bytes() > INLINE_MAX_BYTES {
            return false;
        }
        let mut batch = std::mem::take(&mut st.scratch);
        client.drain_outbound(&mut batch);
        st.backlog.extend(batch.drain(..));
        st.scratch = batch;
        let mut cx = Context::from_waker(Waker::noop());
        match st.poll_write_backlog(&mut cx, client) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(_)) => {
                st.failed = true;
                false
            }
            Poll::Pending => false,
        }
    }

    /// Writer task side: moves the outbound queue into the backlog. Returns whether there is
    /// anything to do, or `Err` when an inline write already failed.
    pub(crate) fn take(&self, client: &ClientShared) -> Result<bool, ()> {
        let mut st = self.lock();
        if st.failed {
            return Err(());
        }
        let mut batch = std::mem::take(&mut st.scratch);
        client.drain_outbound(&mut batch);
        st.backlog.extend(batch.drain(..));
        st.scratch = batch;
        Ok(!st.backlog.is_empty() || st.needs_flush)
    }

    /// Writer task side: writes the whole backlog, waiting for the stream as needed.
    pub(crate) async fn write_backlog(&self, client: &ClientShared) -> io::Result<()> {
        poll_fn(|cx| {
            let mut st = self.lock();
            let r = st.poll_write_backlog(cx, client);
            st.writer_waiting = r.is_pending();
            r
        })
        .await
    }

    /// The writer task stopped waiting (a deadline passed): publishers may poll again.
    pub(crate) fn stop_waiting(&self) {
        self.lock().writer_waiting = false;
    }

    /// Chunks and bytes taken from the queue and not yet written.
    pub(crate) fn backlog_stats(&self) -> (usize, usize) {
        let st = self.lock();
        (st.backlog.len(), st.backlog.iter().map(Bytes::len).sum())
    }

    /// Drops what is queued (slow consumers are cut off without their backlog).
    pub(crate) fn discard(&self) {
        self.lock().backlog.clear();
    }

    /// Shuts the stream down; publishers cannot write to it afterwards.
    pub(crate) async fn shutdown(&self) {
        let _ = poll_fn(|cx| {
            let mut st = self.lock();
            match st.io.as_mut() {
                Some(io) => Pin::new(&mut **io).poll_shutdown(cx),
                None => Poll::Ready(Ok(())),
            }
        })
        .await;
        self.lock().io = None;
    }
}
