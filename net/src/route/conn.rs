//! The per-route driver: one reader task feeding the [`RouteConn`] machine and acting on its
//! events, one writer task draining its output.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use natsd_core::account::Account;
use natsd_core::proto::route::RoutedMsg;
use natsd_core::rng::SplitMix64;
use natsd_core::route::{RouteCloseReason, RouteConn, RouteEvent, RouteRole};
use natsd_core::router::{self, MatchCache, Message, PendingFlush, Publisher, Stall};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::{RouteEntry, RouteHandle, RouteUrl};
use crate::link::{sleep_until, write_loop};
use crate::server::{lock, Shared};
use crate::transport::now;

const READ_BUF: usize = 32 * 1024;
/// Routed messages parsed under one lock of the route's machine before they are delivered.
const MSG_RUN: usize = 64;
/// Time a closing route gets to flush its last bytes (a final -ERR).
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// Where a route came from: dialed (with the URL and whether it is a configured one) or
/// accepted.
#[derive(Debug, Clone)]
pub(crate) struct Dialed {
    pub(crate) url: RouteUrl,
    pub(crate) configured: bool,
    /// The account whose pinned route this is.
    pub(crate) account: Option<String>,
}

/// What a routed message needs from the reader between messages.
struct DeliverCtx {
    rng: SplitMix64,
    pending: PendingFlush,
    cache: MatchCache,
    /// Local receivers this read delivered to that are falling behind.
    stall: Stall,
    /// The clock reading for the current read (one clock read per read, not per message).
    now: Instant,
    /// The account the last routed message named. Consecutive messages nearly always name the
    /// same one, and a lookup takes the server's account map lock. Forgotten at every read, so
    /// an account a reload replaced is looked up again at the next one.
    account: Option<(Bytes, Arc<Account>)>,
    /// Messages and bytes received in this read, added to the route's counters once per read.
    in_msgs: u64,
    in_bytes: u64,
    /// Routed messages taken from the machine in one lock, delivered outside it, by reference.
    msgs: Vec<RoutedMsg>,
    /// Events taken from the machine in one lock, acted on outside it (after `msgs`, which
    /// came before them on the wire).
    events: Vec<RouteEvent>,
}

/// Runs one route connection to completion. Returns the URL to dial again, if any (the route
/// was solicited, or took over a duplicate's URL, and the server is not shutting down).
pub(crate) async fn run<S>(
    srv: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    dialed: Option<Dialed>,
) -> Option<Dialed>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cluster = Arc::clone(&srv.cluster);
    let cfg = cluster.config()?;
    let id = srv.next_conn_id();
    let role = match &dialed {
        Some(d) => RouteRole::Solicited {
            user: d.url.user.clone(),
            pass: d.url.pass.clone(),
        },
        None => RouteRole::Accepted,
    };
    let mut rng = SplitMix64::new(srv.next_seed());
    let account = dialed.as_ref().and_then(|d| d.account.clone());
    let conn = RouteConn::with_pool(now(), id, cfg, role, rng.next_u64(), account.clone());
    let handle = RouteHandle::new(conn);
    {
        let mut st = lock(&cluster.state);
        st.routes.insert(
            id,
            RouteEntry {
                handle: Arc::clone(&handle),
                info: None,
                solicited: dialed.is_some(),
                url: dialed.as_ref().map(|d| d.url.clone()),
                configured: dialed.as_ref().is_some_and(|d| d.configured),
                peer,
                start: srv.wall_clock(),
                account,
                slot: None,
            },
        );
    }
    if cluster.shutting_down.load(Ordering::Acquire) {
        handle.close(RouteCloseReason::ServerShutdown);
    }
    tracing::debug!(rid = id, %peer, solicited = dialed.is_some(), "route connection created");

    let (mut rd, wr) = tokio::io::split(stream);
    let deadline = srv
        .opts()
        .cluster
        .as_ref()
        .map_or(srv.opts().write_deadline, |c| {
            c.write_deadline.unwrap_or(srv.opts().write_deadline)
        });
    let writer = tokio::spawn(write_loop(wr, Arc::clone(&handle), deadline));
    let mut ctx = DeliverCtx {
        rng,
        pending: PendingFlush::default(),
        cache: MatchCache::default(),
        stall: Stall::default(),
        now: now(),
        account: None,
        in_msgs: 0,
        in_bytes: 0,
        msgs: Vec::with_capacity(MSG_RUN),
        events: Vec::new(),
    };
    let mut buf = BytesMut::with_capacity(READ_BUF);
    let reason = loop {
        let closed = process(&srv, &handle, peer, &mut ctx);
        // Wake the receivers of everything delivered since the last wait, before waiting.
        end_batch(&mut ctx);
        if let Some(r) = closed {
            break r;
        }
        let deadline = lock(&handle.conn)
            .poll_timeout()
            .map(|(t, _)| tokio::time::Instant::from_std(t));
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_BUF);
        }
        tokio::select! {
            biased;
            () = handle.close.notified() => {}
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => handle.close(RouteCloseReason::ClientClosed),
                Ok(_) => {
                    handle.last_activity.store(
                        crate::server::unix_nanos(srv.wall_clock()),
                        Ordering::Relaxed,
                    );
                    ctx.now = now();
                    ctx.account = None;
                    let mut closed = None;
                    loop {
                        let (t, msgs, events) = (ctx.now, &mut ctx.msgs, &mut ctx.events);
                        let more = handle.with(|c| take_input(c, t, &mut buf, msgs, events));
                        if let Some(r) = process(&srv, &handle, peer, &mut ctx) {
                            closed = Some(r);
                            break;
                        }
                        if !more {
                            break;
                        }
                    }
                    // Receivers are woken once per read, not once per message: a wake-up
                    // per routed message cost a task switch (or an inline write) each.
                    end_batch(&mut ctx);
                    if let Some(r) = closed {
                        break r;
                    }
                    let stall = std::mem::take(&mut ctx.stall);
                    if !stall.is_empty() {
                        // A local receiver is falling behind: leave the rest in the socket,
                        // so the peer's producers are held back in turn. Bounded per read by
                        // the shortest stall: everything else on this route waits too, and the
                        // peer closes a route whose writes make no progress within its write
                        // deadline (full one-second stalls, back to back, tripped a 2 s one).
                        crate::client::wait_stall_at_most(
                            &stall,
                            &handle.close,
                            natsd_core::outbound::STALL_MIN,
                        )
                        .await;
                    } else if stall.writers_behind() {
                        // As a client's reader does: let the local receivers' writers take
                        // what this read queued before reading more.
                        tokio::task::yield_now().await;
                    }
                }
                Err(_) => handle.close(RouteCloseReason::ReadError),
            },
            () = sleep_until(deadline) => handle.with(|c| c.handle_timeout(now())),
        }
    };
    ctx.pending.flush();
    if matches!(
        reason,
        RouteCloseReason::SlowConsumerPendingBytes | RouteCloseReason::SlowConsumerWriteDeadline
    ) {
        cluster.slow_consumers.fetch_add(1, Ordering::Relaxed);
        srv.slow_consumers.fetch_add(1, Ordering::Relaxed);
    }
    let entry = lock(&cluster.state).routes.remove(&id);
    let registered = entry.as_ref().is_some_and(|e| e.info.is_some());
    if let Some(info) = entry.as_ref().and_then(|e| e.info.as_ref()) {
        super::register::unregister(&mut lock(&cluster.state), id, &info.server_id);
        if entry.as_ref().is_some_and(|e| e.url.is_none()) {
            // A route we will not redial ourselves.
            super::dial::deferred(&srv, &info.server_id);
        }
    }
    cluster.drop_route_interest(id, |a| srv.lookup_account(a));
    srv.leafs.route_closed(id);
    srv.gateways.route_closed(id);
    if registered {
        let name = entry
            .as_ref()
            .and_then(|e| e.info.as_ref())
            .map(|i| i.server_name.clone())
            .unwrap_or_default();
        tracing::info!(rid = id, %peer, remote = %name, reason = reason.as_str(), "route connection closed");
        srv.update_client_urls();
        // Go: route.go removeRoute — the peer's leaf URL is withdrawn from our leaves.
        srv.update_leaf_urls();
    } else {
        tracing::debug!(rid = id, %peer, reason = reason.as_str(), "route connection closed");
    }
    let _ = tokio::time::timeout(CLOSE_FLUSH, writer).await;
    if cluster.shutting_down.load(Ordering::Acquire) {
        return None;
    }
    let e = entry?;
    e.url.map(|url| Dialed {
        url,
        configured: e.configured,
        account: e.account,
    })
}

/// Feeds `buf` to the machine: a run of routed messages (up to [`MSG_RUN`]) goes into `msgs`
/// under this one lock, and the event that ended the run, if any, into `events`, so that
/// interest changes and the like are acted on before later ops are read, as
/// [`RouteConn::handle_input`] intends. Returns whether input is left.
fn take_input(
    c: &mut RouteConn,
    now: Instant,
    buf: &mut BytesMut,
    msgs: &mut Vec<RoutedMsg>,
    events: &mut Vec<RouteEvent>,
) -> bool {
    let more = c.handle_input_msgs(now, buf, msgs, MSG_RUN);
    while let Some(ev) = c.poll_event() {
        events.push(ev);
    }
    more
}

/// Acts on every event taken or still queued in the machine. Returns the close reason once
/// it closed.
fn process(
    srv: &Arc<Shared>,
    handle: &Arc<RouteHandle>,
    peer: SocketAddr,
    ctx: &mut DeliverCtx,
) -> Option<RouteCloseReason> {
    let mut closed = None;
    // The messages first: on the wire they came before the event that ended their run.
    let msgs = std::mem::take(&mut ctx.msgs);
    for msg in &msgs {
        deliver(srv, ctx, msg);
    }
    ctx.msgs = msgs;
    ctx.msgs.clear();
    let mut taken = std::mem::take(&mut ctx.events);
    let mut taken_iter = taken.drain(..);
    loop {
        let ev = match taken_iter.next() {
            Some(ev) => ev,
            None => {
                let Some(ev) = lock(&handle.conn).poll_event() else {
                    break;
                };
                ev
            }
        };
        match ev {
            RouteEvent::Closed(r) => closed = Some(r),
            RouteEvent::PeerInfo(info) => {
                super::register::peer_info(srv, handle, peer, *info);
                // Go: sendGatewayConfigsToRoute — a new route learns our gateways.
                for (name, urls) in srv.gateways.gossip_for_routes() {
                    let gw = crate::gateway::conn::gossip_info(srv, &name, &urls);
                    handle.with(|c| c.send_forwarded_info(&gw));
                }
            }
            // Go: processGatewayInfoFromRoute — a gateway another server of the cluster
            // connected to: this server dials it too.
            RouteEvent::PeerUpdate(info)
                if !info.gateway.is_empty()
                    && info.gateway_cmd == natsd_core::gateway::CMD_GOSSIP =>
            {
                srv.gateways
                    .implicit(srv, &info.gateway, &info.gateway_urls);
            }
            RouteEvent::PeerUpdate(_) => {}
            RouteEvent::ImplicitRoute(info) => super::dial::implicit(srv, &info),
            RouteEvent::ClusterNameChanged { name, dynamic } => {
                name_changed(srv, handle.id, name, dynamic);
            }
            RouteEvent::RemoteSub(sub) => {
                let (a, q) = (&sub.account, sub.queue.as_ref());
                srv.leafs
                    .route_interest(handle.id, a, &sub.subject, q, true);
                srv.gateways
                    .route_interest(handle.id, a, &sub.subject, q, true);
                let acc = account_of(srv, &sub.account);
                srv.cluster.remote_sub(handle, acc, sub);
            }
            RouteEvent::RemoteUnsub(unsub) => {
                let (a, q) = (&unsub.account, unsub.queue.as_ref());
                srv.leafs
                    .route_interest(handle.id, a, &unsub.subject, q, false);
                srv.gateways
                    .route_interest(handle.id, a, &unsub.subject, q, false);
                let acc = account_of(srv, &unsub.account);
                srv.cluster.remote_unsub(handle.id, acc, unsub);
            }
            RouteEvent::RoutedMsg(msg) => deliver(srv, ctx, &msg),
            _ => {}
        }
    }
    drop(taken_iter);
    // Hand the buffer back for the next run.
    ctx.events = taken;
    if ctx.in_msgs > 0 {
        handle.in_msgs.fetch_add(ctx.in_msgs, Ordering::Relaxed);
        handle.in_bytes.fetch_add(ctx.in_bytes, Ordering::Relaxed);
        ctx.in_msgs = 0;
        ctx.in_bytes = 0;
    }
    closed
}

/// Wakes the writers of every receiver delivered to since the last call, and keeps the gates
/// the reader should wait on.
fn end_batch(ctx: &mut DeliverCtx) {
    let stall = ctx.pending.flush_and_take_stall();
    ctx.stall.absorb(stall);
}

/// The account a route op names (the system account included: see interest.rs).
fn account_of(srv: &Shared, name: &Bytes) -> Option<Arc<Account>> {
    let name = std::str::from_utf8(name).ok()?;
    srv.lookup_account(name)
}

fn deliver(srv: &Shared, ctx: &mut DeliverCtx, msg: &RoutedMsg) {
    ctx.in_msgs += 1;
    ctx.in_bytes += msg.total_len() as u64;
    if ctx
        .account
        .as_ref()
        .is_none_or(|(name, _)| *name != msg.account)
    {
        let Some(acc) = account_of(srv, &msg.account) else {
            return;
        };
        ctx.account = Some((msg.account.clone(), acc));
    }
    let Some((_, acc)) = &ctx.account else {
        return;
    };
    let m = Message {
        subject: &msg.subject,
        reply: msg.reply.as_deref(),
        headers: msg.headers.as_deref(),
        payload: &msg.payload,
        shared: Some(&msg.payload),
    };
    let mut p = Publisher {
        client: None,
        rng: &mut ctx.rng,
        now: ctx.now,
        pending: &mut ctx.pending,
        cache: Some(&mut ctx.cache),
        transient: false,
    };
    router::deliver_routed(acc, &mut p, &m, &msg.queues);
}

/// Our generated cluster name gave way: adopt the new one and drop every other route.
fn name_changed(srv: &Shared, id: u64, name: String, dynamic: bool) {
    let cluster = &srv.cluster;
    let others: Vec<_> = {
        let mut st = lock(&cluster.state);
        st.name.clone_from(&name);
        st.dynamic = dynamic;
        st.routes
            .iter()
            .filter(|(rid, _)| **rid != id)
            .map(|(_, e)| Arc::clone(&e.handle))
            .collect()
    };
    {
        let mut cfg = cluster.cfg.write().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cfg.as_mut() {
            let mut new = (**c).clone();
            new.info.cluster.clone_from(&name);
            new.info.dynamic = dynamic;
            *c = Arc::new(new);
        }
    }
    tracing::info!(cluster = %name, "cluster name updated");
    for h in others {
        h.close(RouteCloseReason::ClusterNameConflict);
    }
    srv.update_client_urls();
}
