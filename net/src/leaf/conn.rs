//! The per-link driver: one reader task feeding the [`LeafConn`] machine and acting on its
//! events, one writer task draining its output.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use natsd_core::account::Account;
use natsd_core::leaf::{LeafCloseReason, LeafConn, LeafEvent, LeafRole};
use natsd_core::rng::SplitMix64;
use natsd_core::router::{self, MatchCache, Message, PendingFlush, Publisher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::{LeafEntry, LeafHandle};
use crate::link::{sleep_until, write_loop};
use crate::server::{lock, Shared};
use crate::transport::now;

const READ_BUF: usize = 32 * 1024;
/// Time a closing link gets to flush its last bytes (a final -ERR).
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// Runs one leaf link to completion. `role` says which side we are.
pub(crate) async fn run<S>(srv: Arc<Shared>, stream: S, peer: SocketAddr, role: LeafRole)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let leafs = Arc::clone(&srv.leafs);
    let Some(cfg) = leafs.settings() else { return };
    let id = srv.next_conn_id();
    let solicited = role != LeafRole::Accepted;
    let mut rng = SplitMix64::new(srv.next_seed());
    let handle = LeafHandle::new(LeafConn::new(now(), id, cfg, role, rng.next_u64()));
    if leafs.shutting_down.load(Ordering::Acquire) {
        handle.close(LeafCloseReason::ServerShutdown);
    }
    let (mut rd, wr) = tokio::io::split(stream);
    let writer = tokio::spawn(write_loop(
        wr,
        Arc::clone(&handle),
        srv.opts().write_deadline,
    ));
    let mut ctx = Ctx {
        rng,
        pending: PendingFlush::default(),
        cache: MatchCache::default(),
        account: None,
        peer,
        solicited,
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
        let mut closed_by_input = None;
        tokio::select! {
            biased;
            () = handle.close.notified() => {}
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => handle.close(LeafCloseReason::ClientClosed),
                Ok(_) => loop {
                    let more = handle.with(|c| c.handle_input(now(), &mut buf));
                    // The close event is queued once: dropping it here would leave the
                    // loop reading a dead socket forever (EOF returns at once).
                    if let Some(r) = process(&srv, &handle, &mut ctx) {
                        closed_by_input = Some(r);
                        break;
                    }
                    if !more {
                        break;
                    }
                },
                Err(_) => handle.close(LeafCloseReason::ReadError),
            },
            () = sleep_until(deadline) => handle.with(|c| c.handle_timeout(now())),
        }
        if let Some(r) = closed_by_input {
            break r;
        }
    };
    ctx.pending.flush();
    if matches!(
        reason,
        LeafCloseReason::SlowConsumerPendingBytes | LeafCloseReason::SlowConsumerWriteDeadline
    ) {
        srv.slow_consumers.fetch_add(1, Ordering::Relaxed);
    }
    let account = ctx.account.as_ref().map(|(_, a)| a);
    let keys = leafs.unregister(id, account);
    if !solicited {
        tell_routes(&srv, keys.iter().map(|k| (k, false)));
    }
    match &ctx.account {
        // Go: leafnode.go — "Leafnode connection closed: <reason>".
        Some(_) => {
            tracing::info!(lid = id, %peer, "Leafnode connection closed: {reason} - Account: {}", account.map_or("", |a| a.name.as_str()))
        }
        None => tracing::debug!(lid = id, %peer, "Leafnode connection closed: {reason}"),
    }
    let _ = tokio::time::timeout(CLOSE_FLUSH, writer).await;
}

struct Ctx {
    rng: SplitMix64,
    pending: PendingFlush,
    cache: MatchCache,
    /// The bound account, once connected.
    account: Option<(Bytes, Arc<Account>)>,
    peer: SocketAddr,
    solicited: bool,
}

/// Acts on every event queued in the machine. Returns the close reason once it closed.
fn process(srv: &Arc<Shared>, h: &Arc<LeafHandle>, ctx: &mut Ctx) -> Option<LeafCloseReason> {
    let mut closed = None;
    loop {
        let Some(ev) = lock(&h.conn).poll_event() else {
            break;
        };
        match ev {
            LeafEvent::Closed(r) => closed = Some(r),
            LeafEvent::Connected {
                account,
                remote_name,
                ..
            } => {
                let Some(acc) = srv.lookup_account(&account) else {
                    tracing::error!(lid = h.id, account = %account, "leafnode bound to an unknown account");
                    h.close(LeafCloseReason::AuthenticationViolation);
                    continue;
                };
                ctx.account = Some((Bytes::from(account.clone()), acc));
                // Go: leafnode.go — "Leafnode connection created[ for account: X]".
                if ctx.solicited {
                    tracing::info!(lid = h.id, peer = %ctx.peer, "Leafnode connection created for account: {account}");
                } else {
                    tracing::info!(lid = h.id, peer = %ctx.peer, remote = %remote_name, "Leafnode connection created");
                }
                srv.leafs.register(LeafEntry {
                    handle: Arc::clone(h),
                    account,
                    peer: ctx.peer,
                });
            }
            LeafEvent::RemoteSub(sub) => {
                let Some((_, acc)) = &ctx.account else {
                    continue;
                };
                let key = (acc.name.clone(), sub.subject.clone(), sub.queue.clone());
                if srv.leafs.remote_sub(h, acc, sub) && !ctx.solicited {
                    tell_routes(srv, std::iter::once((&key, true)));
                }
            }
            LeafEvent::RemoteUnsub(unsub) => {
                let Some((_, acc)) = &ctx.account else {
                    continue;
                };
                let key = (acc.name.clone(), unsub.subject.clone(), unsub.queue.clone());
                if srv.leafs.remote_unsub(h.id, acc, unsub) && !ctx.solicited {
                    tell_routes(srv, std::iter::once((&key, false)));
                }
            }
            LeafEvent::Msg(msg) => {
                let Some((_, acc)) = &ctx.account else {
                    continue;
                };
                h.in_msgs.fetch_add(1, Ordering::Relaxed);
                h.in_bytes
                    .fetch_add(msg.total_len() as u64, Ordering::Relaxed);
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
                    now: now(),
                    pending: &mut ctx.pending,
                    cache: Some(&mut ctx.cache),
                    transient: false,
                };
                router::deliver_from_leaf(acc, &mut p, &m, h.id, &msg.queues);
            }
            _ => {}
        }
    }
    closed
}

/// A hub's leaf links count as local interest for the cluster (Go: processLeafSub →
/// updateRouteSubscriptionMap, not for a spoke).
fn tell_routes<'a>(
    srv: &Shared,
    changes: impl Iterator<Item = (&'a (String, Bytes, Option<Bytes>), bool)>,
) {
    if !srv.cluster.enabled {
        return;
    }
    for ((acc, subject, queue), added) in changes {
        srv.cluster
            .local_interest(acc, subject, queue.as_deref(), added);
    }
}
