//! The per-connection driver: one reader task running the [`ClientConn`] machine and the
//! router, one writer task draining the connection's outbound queue with vectored writes.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use natsd_core::account::Account;
use natsd_core::auth::ConnType;
use natsd_core::conn::{ClientConn, CloseReason, ConnEvent};
use natsd_core::outbound::COPY_THRESHOLD;
use natsd_core::rng::SplitMix64;
use natsd_core::router::{
    self, ClientShared, MatchCache, Message, Notifier, PendingFlush, Publisher, Stall,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::Notify;

use crate::server::{unix_nanos, Shared};
use crate::transport::now;
use crate::writer::ConnWriter;

/// Read sizes adapt like nats-server's (Go: client.go startBufSize/maxBufSize): an idle
/// connection holds a small buffer, a busy one grows it so each read carries many ops.
const MIN_READ: usize = 512;
const MAX_READ: usize = 64 * 1024;
/// Time a closing connection gets to flush its last bytes (a final -ERR).
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// Wakes the reader and writer tasks of one connection, or writes inline when its writer is
/// idle (see [`crate::writer`]).
#[derive(Debug, Default)]
pub(crate) struct ConnNotify {
    write: Notify,
    close: Notify,
    /// The writer's own close signal: it must stop a write blocked on a stuck receiver.
    writer_close: Notify,
    inline: OnceLock<(Weak<ClientShared>, Arc<ConnWriter>)>,
}

impl Notifier for ConnNotify {
    fn notify_write(&self) {
        self.write.notify_one();
    }

    fn notify_write_small(&self) {
        if let Some((client, writer)) = self.inline.get() {
            if let Some(client) = client.upgrade() {
                if writer.try_inline(&client) {
                    return;
                }
            }
        }
        self.write.notify_one();
    }

    fn notify_close(&self) {
        self.close.notify_one();
        self.writer_close.notify_one();
        self.write.notify_one();
    }
}

/// Runs one client connection to completion.
pub(crate) fn new_conn(
    srv: &Shared,
    peer: SocketAddr,
    id: u64,
    rng: &mut SplitMix64,
) -> ClientConn {
    ClientConn::new(
        now(),
        id,
        srv.client_config(),
        &peer.ip().to_string(),
        ConnType::Standard,
        rng.next_u64(),
    )
}

/// Runs one client connection to completion. `conn` may already have sent its INFO (TLS after
/// INFO); `rejected` closes it at once with that reason (after INFO and the -ERR).
pub(crate) async fn run<S>(
    srv: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    mut conn: ClientConn,
    rng: SplitMix64,
    rejected: Option<CloseReason>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = conn.id();
    let notify = Arc::new(ConnNotify::default());
    let shared = ClientShared::new(id, srv.opts().max_pending, notify.clone());
    let last_activity = srv.register_client(id, &shared, peer);

    let (mut rd, wr) = tokio::io::split(stream);
    let conn_writer = Arc::new(ConnWriter::new(Box::new(wr)));
    let _ = notify
        .inline
        .set((Arc::downgrade(&shared), Arc::clone(&conn_writer)));
    let writer = tokio::spawn(write_loop(
        conn_writer,
        Arc::clone(&shared),
        Arc::clone(&notify),
        srv.opts().write_deadline,
    ));

    let mut account: Option<Arc<Account>> = None;
    let mut route_ctx = RouteCtx {
        rng,
        pending: PendingFlush::default(),
        cache: MatchCache::default(),
        now: now(),
        in_msgs: 0,
        in_bytes: 0,
    };
    let mut read_size = MIN_READ;
    let mut rbuf = BytesMut::with_capacity(read_size);
    // One timer for the connection's life, moved only when the machine's deadline moves (the
    // next PING, rarely): a fresh `sleep_until` per read registered and dropped a timer-wheel
    // entry every time, about 470 instructions per read in callgrind (a request/reply costs
    // two reads).
    let timer = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(timer);
    let mut armed: Option<tokio::time::Instant> = None;
    if let Some(reason) = rejected {
        if reason == CloseReason::MaxConnectionsExceeded {
            conn.send_err("maximum connections exceeded");
        }
        conn.handle_close(reason);
    }
    let reason = loop {
        let mut more = true;
        let mut closed = None;
        while more {
            if let Some(reason) = drain(&srv, &mut conn, &shared, &mut account, &mut route_ctx) {
                closed = Some(reason);
                break;
            }
            more = feed(
                &srv,
                &mut conn,
                &mut rbuf,
                &shared,
                account.as_ref(),
                &mut route_ctx,
            );
        }
        let closed =
            closed.or_else(|| drain(&srv, &mut conn, &shared, &mut account, &mut route_ctx));
        // Wake the receivers of everything routed from this read, and publish the counters,
        // before waiting for more.
        let stall = route_ctx.end_batch(&srv, &shared, account.as_deref());
        if let Some(reason) = closed {
            break reason;
        }
        if !stall.is_empty() {
            // A receiver of this read is falling behind: read nothing more for a while.
            wait_stall(&stall, &notify.close).await;
        } else if stall.writers_behind() {
            // A receiver's writer has not yet taken what earlier reads queued: let it run
            // before reading more, or an open-loop publisher sharing its core queues up to
            // the stall threshold first (see `natsd_core::outbound::READ_AHEAD_BYTES`).
            tokio::task::yield_now().await;
        }
        let deadline = conn
            .poll_timeout()
            .map(|(t, _)| tokio::time::Instant::from_std(t));
        if deadline != armed {
            if let Some(d) = deadline {
                timer.as_mut().reset(d);
            }
            armed = deadline;
        }
        if rbuf.is_empty() && rbuf.capacity() > 4 * read_size {
            // Quiet again after a burst: give the big buffer back.
            rbuf = BytesMut::with_capacity(read_size);
        }
        rbuf.reserve(read_size);
        tokio::select! {
            biased;
            () = notify.close.notified() => {
                if let Some(r) = shared.close_reason() {
                    conn.handle_close(r);
                }
            }
            r = rd.read_buf(&mut rbuf) => match r {
                Ok(0) => conn.handle_close(CloseReason::ClientClosed),
                Ok(n) => {
                    if n >= read_size {
                        read_size = (read_size * 2).min(MAX_READ);
                    } else if n < read_size / 2 {
                        read_size = (read_size / 2).max(MIN_READ);
                    }
                    last_activity.store(unix_nanos(srv.wall_clock()), Ordering::Relaxed);
                    route_ctx.now = now();
                    // Whatever is left after the first event is handled at the top of the loop.
                    feed(&srv, &mut conn, &mut rbuf, &shared, account.as_ref(), &mut route_ctx);
                    publish_rtt(&conn, &shared);
                }
                Err(_) => conn.handle_close(CloseReason::ReadError),
            },
            () = &mut timer, if armed.is_some() => {
                // Re-armed from the machine's next deadline at the top of the loop.
                armed = None;
                route_ctx.now = now();
                conn.handle_timeout(route_ctx.now);
            }
        }
    };
    shared.close(reason);
    // Snapshot for the closed-connections ring before the router forgets the subscriptions.
    let subs = if srv.opts().max_closed_clients > 0 {
        shared.subscriptions()
    } else {
        Vec::new()
    };
    if let Some(acc) = &account {
        router::remove_all(acc, &shared);
        acc.num_connections.fetch_sub(1, Ordering::Relaxed);
    }
    let _ = writer.await;
    srv.unregister_client(id, reason, subs);
    tracing::debug!(cid = id, %peer, reason = reason.as_str(), "client connection closed");
}

/// Makes the machine's last PING round trip visible to monitoring.
fn publish_rtt(conn: &ClientConn, shared: &ClientShared) {
    if let Some(rtt) = conn.rtt() {
        let nanos = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX).max(1);
        shared.stats.rtt_nanos.store(nanos, Ordering::Relaxed);
    }
}

/// Feeds input to the machine; plainly formatted publishes take the fast lane straight into
/// the router. A CONNECT checked against bcrypt hashes takes tens of milliseconds of CPU: on the
/// multi-threaded runtime it runs in `block_in_place`, so a connect storm cannot stall the other
/// connections on this worker.
fn feed(
    srv: &Shared,
    conn: &mut ClientConn,
    rbuf: &mut BytesMut,
    shared: &Arc<ClientShared>,
    account: Option<&Arc<Account>>,
    ctx: &mut RouteCtx,
) -> bool {
    let t = ctx.now;
    if conn.may_block_on_auth() {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            return tokio::task::block_in_place(|| conn.handle_input(t, rbuf));
        }
    }
    let Some(acc) = account else {
        return conn.handle_input(t, rbuf);
    };
    conn.handle_input_with(t, rbuf, COPY_THRESHOLD, |p| {
        let m = Message {
            subject: p.subject,
            reply: p.reply,
            headers: p.headers,
            payload: p.payload,
            shared: None,
        };
        publish_one(srv, shared, acc, ctx, &m);
    })
}

/// Checks publish permission and routes one message from this connection.
fn publish_one(
    srv: &Shared,
    shared: &Arc<ClientShared>,
    acc: &Arc<Account>,
    ctx: &mut RouteCtx,
    m: &Message<'_>,
) {
    let _ = srv;
    ctx.in_msgs += 1;
    ctx.in_bytes += (m.payload.len() + m.headers.map_or(0, <[u8]>::len)) as u64;
    if !router::can_publish(shared, ctx.now, m.subject) {
        // Nothing of this connection's own is pending here (the drain order guarantees it), so
        // the error goes straight into the outbound queue without overtaking anything.
        shared.send_control(&router::err_line(&router::publish_violation_text(
            m.subject,
        )));
        return;
    }
    let mut p = Publisher {
        client: Some(shared),
        rng: &mut ctx.rng,
        now: ctx.now,
        pending: &mut ctx.pending,
        cache: Some(&mut ctx.cache),
        transient: false,
    };
    router::publish(acc, &mut p, m);
}

/// What a publishing connection keeps between messages.
#[derive(Debug)]
struct RouteCtx {
    rng: SplitMix64,
    pending: PendingFlush,
    cache: MatchCache,
    /// The clock reading for the current read batch (one read of the clock per batch).
    now: Instant,
    /// Counters of this batch, published once at its end: per-message atomic adds on
    /// server-wide counters would bounce one cache line between every publishing core.
    in_msgs: u64,
    in_bytes: u64,
}

impl RouteCtx {
    /// Ends a read batch: wakes the receivers, publishes the counters, and returns the gates
    /// this producer should wait on before reading more.
    fn end_batch(
        &mut self,
        srv: &Shared,
        shared: &ClientShared,
        account: Option<&Account>,
    ) -> Stall {
        let stall = self.pending.flush_and_take_stall();
        if self.in_msgs > 0 {
            shared
                .stats
                .in_msgs
                .fetch_add(self.in_msgs, Ordering::Relaxed);
            shared
                .stats
                .in_bytes
                .fetch_add(self.in_bytes, Ordering::Relaxed);
            srv.count_in(self.in_msgs, self.in_bytes);
            if let Some(acc) = account {
                acc.in_msgs.fetch_add(self.in_msgs, Ordering::Relaxed);
                acc.in_bytes.fetch_add(self.in_bytes, Ordering::Relaxed);
            }
            self.in_msgs = 0;
            self.in_bytes = 0;
        }
        stall
    }
}

/// The producer's side of the stall (see [`natsd_core::outbound`]): waits until every
/// recorded receiver caught up, at most the longest wait they allow, or until this
/// connection is told to close. Tokio time, so the simulation's clock drives it too.
/// Go: client.go stalledWait.
pub(crate) async fn wait_stall(stall: &Stall, close: &Notify) {
    wait_stall_at_most(stall, close, stall.ttl()).await;
}

/// [`wait_stall`], but never longer than `cap` (a route's reader, whose peer must keep
/// seeing progress well inside its write deadline).
pub(crate) async fn wait_stall_at_most(stall: &Stall, close: &Notify, cap: Duration) {
    let released = std::future::poll_fn(|cx| stall.poll_released(cx));
    let ttl = stall.ttl().min(cap);
    tokio::select! {
        biased;
        () = close.notified() => {
            // Leave the wake-up for the driver's own loop.
            close.notify_one();
        }
        r = tokio::time::timeout(ttl, released) => {
            if r.is_err() {
                tracing::debug!(?ttl, "Timed out of fast producer stall");
            }
        }
    }
}

/// Applies the driving rule: transmits, then events. Returns the close reason once closed.
fn drain(
    srv: &Shared,
    conn: &mut ClientConn,
    shared: &Arc<ClientShared>,
    account: &mut Option<Arc<Account>>,
    ctx: &mut RouteCtx,
) -> Option<CloseReason> {
    loop {
        while let Some(bytes) = conn.poll_transmit() {
            shared.send_control(&bytes);
        }
        let ev = conn.poll_event()?;
        match ev {
            ConnEvent::Connected { outcome, connect } => {
                let Some(acc) = srv.lookup_account(&outcome.account) else {
                    conn.send_err("Authorization Violation");
                    conn.handle_close(CloseReason::AuthenticationViolation);
                    continue;
                };
                acc.num_connections.fetch_add(1, Ordering::Relaxed);
                shared.set_connected(
                    connect.echo,
                    connect.headers,
                    connect.no_responders,
                    conn.permissions().cloned(),
                );
                srv.set_client_identity(shared.id, &outcome, &connect, conn.nonce());
                *account = Some(acc);
            }
            ConnEvent::Subscribe {
                sid,
                subject,
                queue,
            } => {
                let acc = bind_default(srv, account);
                if let Err(e) = router::subscribe(
                    &acc,
                    shared,
                    sid,
                    subject,
                    queue,
                    srv.opts().max_subscriptions,
                ) {
                    conn.send_err(&e.to_string());
                }
            }
            ConnEvent::Unsubscribe { sid, max } => {
                let acc = bind_default(srv, account);
                router::unsubscribe(&acc, shared, &sid, max);
            }
            ConnEvent::Publish(msg) => {
                let acc = bind_default(srv, account);
                let m = Message {
                    subject: &msg.subject,
                    reply: msg.reply.as_deref(),
                    headers: msg.headers.as_deref(),
                    payload: &msg.payload,
                    shared: Some(&msg.payload),
                };
                publish_one(srv, shared, &acc, ctx, &m);
            }
            ConnEvent::Closed(reason) => {
                // Queue whatever the machine wrote last (a final -ERR) before closing.
                while let Some(bytes) = conn.poll_transmit() {
                    shared.send_control(&bytes);
                }
                return Some(reason);
            }
            _ => {}
        }
    }
}

/// Ops before CONNECT on a server without auth act in the default account, as in nats-server.
fn bind_default(srv: &Shared, account: &mut Option<Arc<Account>>) -> Arc<Account> {
    if let Some(a) = account {
        return Arc::clone(a);
    }
    let acc = srv.default_account();
    acc.num_connections.fetch_add(1, Ordering::Relaxed);
    *account = Some(Arc::clone(&acc));
    acc
}

async fn write_loop(
    writer: Arc<ConnWriter>,
    shared: Arc<ClientShared>,
    notify: Arc<ConnNotify>,
    deadline: Duration,
) {
    loop {
        let Ok(busy) = writer.take(&shared) else {
            shared.close(CloseReason::WriteError);
            break;
        };
        let closing = shared.close_reason();
        if !busy {
            if closing.is_some() {
                break;
            }
            notify.write.notified().await;
            continue;
        }
        if matches!(
            closing,
            Some(CloseReason::SlowConsumerPendingBytes | CloseReason::SlowConsumerWriteDeadline)
        ) {
            // A slow consumer is cut off at once; its backlog is dropped.
            writer.discard();
            break;
        }
        let limit = if closing.is_some() {
            CLOSE_FLUSH.min(deadline)
        } else {
            deadline
        };
        let write = tokio::time::timeout(limit, writer.write_backlog(&shared));
        let done = tokio::select! {
            biased;
            r = write => r,
            () = notify.writer_close.notified(), if closing.is_none() => {
                // Closed while a write waits on the receiver: a slow consumer is cut at once
                // (Go: client.go markConnAsClosed skips the flush for it); anything else gets
                // the short closing flush from the top of the loop.
                writer.stop_waiting();
                if matches!(
                    shared.close_reason(),
                    Some(CloseReason::SlowConsumerPendingBytes)
                ) {
                    writer.discard();
                    break;
                }
                continue;
            }
        };
        match done {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                shared.close(CloseReason::WriteError);
                break;
            }
            Err(_) => {
                writer.stop_waiting();
                let (chunks, bytes) = writer.backlog_stats();
                if closing.is_none() {
                    // Go: client.go handleWriteTimeout (Noticef), word for word.
                    tracing::info!(
                        cid = shared.id,
                        "Slow Consumer Detected: WriteDeadline of {deadline:?} exceeded with {chunks} chunks of {bytes} total bytes."
                    );
                }
                shared.close(CloseReason::SlowConsumerWriteDeadline);
                writer.discard();
                break;
            }
        }
    }
    let _ = tokio::time::timeout(CLOSE_FLUSH, writer.shutdown()).await;
}
