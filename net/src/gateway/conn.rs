//! The per-connection driver: one reader task feeding the [`GatewayConn`] machine and acting
//! on its events, one writer task draining its output.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use natsd_core::gateway::{
    split_routed_reply, GatewayCloseReason, GatewayConn, GatewayEvent, GatewayRole,
};
use natsd_core::proto::route::{RouteInfo, RoutedMsg};
use natsd_core::rng::SplitMix64;
use natsd_core::router::{self, MatchCache, Message, PendingFlush, Publisher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::{GatewayEntry, GatewayHandle};
use crate::link::{sleep_until, write_loop};
use crate::server::{lock, Shared};
use crate::transport::now;

const READ_BUF: usize = 32 * 1024;
/// Time a closing connection gets to flush its last bytes (a final -ERR).
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

struct Ctx {
    rng: SplitMix64,
    pending: PendingFlush,
    cache: MatchCache,
    peer: SocketAddr,
    registered: bool,
}

/// Runs one gateway connection to completion. Returns whether it got registered (a dialer
/// then starts over from its first attempt).
pub(crate) async fn run<S>(srv: Arc<Shared>, stream: S, peer: SocketAddr, role: GatewayRole) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let gws = Arc::clone(&srv.gateways);
    let Some(cfg) = gws.settings() else {
        return false;
    };
    let outbound = role != GatewayRole::Inbound;
    let conn = GatewayConn::new(now(), srv.next_conn_id(), cfg, role);
    let handle = GatewayHandle::new(conn, Arc::clone(&gws.prefix));
    let id = handle.id;
    if outbound {
        tracing::info!(gid = id, %peer, "Creating outbound gateway connection");
    } else {
        tracing::info!(gid = id, %peer, "Processing inbound gateway connection");
    }
    if gws.shutting_down.load(Ordering::Acquire) {
        handle.close(GatewayCloseReason::ServerShutdown);
    }
    let (mut rd, wr) = tokio::io::split(stream);
    let writer = tokio::spawn(write_loop(
        wr,
        Arc::clone(&handle),
        srv.opts().write_deadline,
    ));
    let mut ctx = Ctx {
        rng: SplitMix64::new(srv.next_seed()),
        pending: PendingFlush::default(),
        cache: MatchCache::default(),
        peer,
        registered: false,
    };
    let mut buf = BytesMut::with_capacity(READ_BUF);
    let reason = loop {
        if let Some(r) = process(&srv, &handle, &mut ctx) {
            break r;
        }
        ctx.pending.flush();
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
                Ok(0) => handle.close(GatewayCloseReason::ClientClosed),
                Ok(_) => {
                    let mut closed = None;
                    loop {
                        let more = handle.with(|c| c.handle_input(now(), &mut buf));
                        if let Some(r) = process(&srv, &handle, &mut ctx) {
                            closed = Some(r);
                            break;
                        }
                        if !more {
                            break;
                        }
                    }
                    if let Some(r) = closed {
                        break r;
                    }
                }
                Err(_) => handle.close(GatewayCloseReason::ReadError),
            },
            () = sleep_until(deadline) => handle.with(|c| c.handle_timeout(now())),
        }
    };
    ctx.pending.flush();
    if matches!(
        reason,
        GatewayCloseReason::SlowConsumerPendingBytes
            | GatewayCloseReason::SlowConsumerWriteDeadline
    ) {
        srv.slow_consumers.fetch_add(1, Ordering::Relaxed);
    }
    gws.unregister(&srv, id);
    let name = lock(&handle.conn).name().to_owned();
    if ctx.registered {
        // Go: "Outbound gateway connection to %q (%s) closed" / "Inbound ...".
        let dir = if outbound { "Outbound" } else { "Inbound" };
        tracing::info!(gid = id, %peer, "{dir} gateway connection {name:?} closed: {reason}");
    } else {
        tracing::debug!(gid = id, %peer, "gateway connection closed: {reason}");
    }
    let _ = tokio::time::timeout(CLOSE_FLUSH, writer).await;
    ctx.registered
}

/// Acts on every event queued in the machine. Returns the close reason once it closed.
fn process(srv: &Arc<Shared>, h: &Arc<GatewayHandle>, ctx: &mut Ctx) -> Option<GatewayCloseReason> {
    let gws = &srv.gateways;
    let mut closed = None;
    loop {
        let Some(ev) = lock(&h.conn).poll_event() else {
            break;
        };
        match ev {
            GatewayEvent::Closed(r) => closed = Some(r),
            GatewayEvent::Connected {
                name,
                remote_id,
                urls,
                ..
            } => connected(srv, h, ctx, name, remote_id, &urls),
            GatewayEvent::Gossip { name, urls } => {
                gws.implicit(srv, &name, &urls);
                tell_routes(srv, &name, &urls);
            }
            GatewayEvent::RemoteSub(sub) => {
                let name = String::from_utf8_lossy(&sub.account);
                if let Some(acc) = srv.lookup_account(&name) {
                    gws.remote_sub(h, &acc, sub);
                }
            }
            GatewayEvent::RemoteUnsub(unsub) => {
                let name = String::from_utf8_lossy(&unsub.account);
                if let Some(acc) = srv.lookup_account(&name) {
                    gws.remote_unsub(h.id, &acc, unsub);
                }
            }
            GatewayEvent::InterestMode { account, complete } => {
                tracing::debug!(gid = h.id, %account, complete, "gateway interest-only mode");
                gws.interest_mode(h.id, account, complete);
            }
            GatewayEvent::Msg(m) => deliver(srv, h, ctx, &m),
            _ => {}
        }
    }
    closed
}

fn connected(
    srv: &Arc<Shared>,
    h: &Arc<GatewayHandle>,
    ctx: &mut Ctx,
    name: String,
    remote_id: String,
    urls: &[String],
) {
    let gws = &srv.gateways;
    let entry = GatewayEntry {
        handle: Arc::clone(h),
        name: name.clone(),
        peer: ctx.peer,
        remote_id: remote_id.clone(),
        start: srv.wall_clock(),
        switched: BTreeSet::new(),
    };
    if h.outbound {
        if !gws.register_outbound(entry, &srv.accounts_snapshot()) {
            // Another connection to that cluster won.
            h.close(GatewayCloseReason::WrongGateway);
            return;
        }
        ctx.registered = true;
        tracing::info!(
            gid = h.id,
            "Outbound gateway connection to {name:?} ({remote_id}) registered"
        );
        gws.implicit(srv, &name, urls);
        // Go: forwardNewGatewayToLocalCluster — every server of our cluster dials it too.
        let all = {
            let st = lock(&gws.state);
            st.remotes
                .get(&name)
                .map(|r| r.urls.clone())
                .unwrap_or_default()
        };
        tell_routes(srv, &name, &super::strip_credentials(&all));
    } else {
        let accounts: Vec<String> = srv
            .accounts_snapshot()
            .iter()
            .map(|a| a.name.clone())
            .collect();
        gws.register_inbound(entry, &accounts);
        ctx.registered = true;
        tracing::info!(
            gid = h.id,
            "Inbound gateway connection from {name:?} ({remote_id}) registered"
        );
        // Go: processImplicitGateway, gossipGatewaysToInboundGateway — dial back, and tell
        // the dialer of the other clusters we know.
        gws.implicit(srv, &name, urls);
        let others: Vec<(String, Vec<String>)> = {
            let st = lock(&gws.state);
            st.remotes
                .iter()
                .filter(|(n, r)| **n != name && !r.urls.is_empty())
                .map(|(n, r)| (n.clone(), super::strip_credentials(&r.urls)))
                .collect()
        };
        h.with(|c| {
            for (n, u) in &others {
                c.send_gossip(n, u);
            }
        });
    }
}

/// Tells every route of cluster `name` at `urls` (Go: forwardNewGatewayToLocalCluster).
pub(crate) fn tell_routes(srv: &Shared, name: &str, urls: &[String]) {
    if !srv.cluster.enabled || urls.is_empty() {
        return;
    }
    let info = gossip_info(srv, name, urls);
    let routes: Vec<_> = lock(&srv.cluster.state)
        .routes
        .values()
        .filter(|e| e.info.is_some())
        .map(|e| Arc::clone(&e.handle))
        .collect();
    for r in routes {
        r.with(|c| c.send_forwarded_info(&info));
    }
}

/// The INFO a route carries about a gateway: an id that is not ours, so that an older peer
/// does not take it for a route to dial (Go: "GW" + our id).
pub(crate) fn gossip_info(srv: &Shared, name: &str, urls: &[String]) -> RouteInfo {
    RouteInfo {
        server_id: format!("GW{}", srv.server_id),
        server_name: srv.server_name.clone(),
        gateway: name.to_owned(),
        gateway_urls: urls.to_vec(),
        gateway_cmd: natsd_core::gateway::CMD_GOSSIP,
        ..RouteInfo::default()
    }
}

/// Delivers a message from another cluster (Go: processInboundGatewayMsg). A mapped reply
/// coming back to our cluster is unwrapped first (Go: handleGatewayReply).
fn deliver(srv: &Arc<Shared>, h: &Arc<GatewayHandle>, ctx: &mut Ctx, msg: &RoutedMsg) {
    h.in_msgs.fetch_add(1, Ordering::Relaxed);
    h.in_bytes
        .fetch_add(msg.total_len() as u64, Ordering::Relaxed);
    let name = String::from_utf8_lossy(&msg.account);
    let Some(acc) = srv.lookup_account(&name) else {
        tracing::debug!(gid = h.id, account = %name, "Unknown account for gateway message");
        return;
    };
    let mut subject: &[u8] = &msg.subject;
    if let Some((cluster, _server, orig)) = split_routed_reply(subject) {
        if cluster != srv.gateways.prefix.cluster_hash() {
            // Meant for another cluster: not ours to pass on.
            return;
        }
        // Our cluster's answer: delivered here and over routes to whichever server holds
        // the requester.
        subject = orig;
    }
    let m = Message {
        subject,
        reply: msg.reply.as_deref(),
        headers: msg.headers.as_deref(),
        payload: &msg.payload,
        shared: Some(&msg.payload),
    };
    let mut p = Publisher {
        client: None,
        rng: &mut ctx.rng,
        now: now(),
        pending: &mut ctx.pending,
        cache: Some(&mut ctx.cache),
        transient: false,
    };
    router::deliver_from_gateway(&acc, &mut p, &m, &msg.queues);
}
