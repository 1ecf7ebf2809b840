//! The per-link driver: one reader task feeding the [`LeafConn`] machine and acting on its
//! events, one writer task draining its output.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use natsd_core::account::Account;
use natsd_core::leaf::{
    split_js_reply, LeafCloseReason, LeafConn, LeafCredentials, LeafEvent, LeafRole,
};
use natsd_core::proto::leaf::RoutedMsg;
use natsd_core::rng::SplitMix64;
use natsd_core::router::{self, MatchCache, Message, PendingFlush, Publisher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::tls::{LeafTlsClient, LeafTlsServer};
use crate::link::LinkIo;
use crate::tls::TlsError;

use super::{LeafEntry, LeafHandle};
use crate::link::{sleep_until, write_loop};
use crate::server::{lock, Shared};
use crate::transport::now;

const READ_BUF: usize = 32 * 1024;
/// Messages taken from the machine per lock (as a route's reader does).
const MSG_RUN: usize = 64;

/// Time a closing link gets to flush its last bytes (a final -ERR).
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// Bound on the wait for a hub's first INFO (nats-server 2.10 calls it `first_info_timeout`).
const FIRST_INFO_TIMEOUT: Duration = Duration::from_secs(5);

/// What a dialed link is set up with from its `remotes` entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkSetup {
    /// The remote's `deny_exports` and `deny_imports` (see [`LeafConn::set_deny_lists`]).
    pub(crate) deny: Option<(Vec<String>, Vec<String>)>,
    /// A `.creds` file.
    pub(crate) creds: Option<Arc<LeafCredentials>>,
}

/// How a link's TLS goes (see [`super::tls`]).
#[derive(Debug)]
pub(crate) enum LinkTls {
    /// We are the hub without TLS.
    Plain,
    /// We are the hub, with `leafnodes { tls }`: our INFO goes out in the clear, then we
    /// upgrade as TLS server.
    Hub(Arc<LeafTlsServer>),
    /// We are the leaf: the hub's INFO is read in the clear, then we upgrade as TLS client
    /// when `wanted` (a `tls` block or a `tls://` URL) or when the INFO asks for it.
    Leaf {
        client: Option<Arc<LeafTlsClient>>,
        host: String,
        wanted: bool,
    },
}

/// How a dialed link ended, for its dialer.
#[derive(Debug, Default)]
pub(crate) struct LinkEnd {
    /// It closed over a loop (the dialer then waits
    /// [`natsd_core::leaf::LOOP_RECONNECT_DELAY`]).
    pub(crate) looped: bool,
    /// The hub cluster's leaf URLs from the hub's latest INFO, if it named any.
    pub(crate) leaf_urls: Option<Vec<String>>,
}

/// Runs one leaf link to completion. `role` says which side we are. Returns how it ended
/// ([`LinkEnd`]).
pub(crate) async fn run<S>(
    srv: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    role: LeafRole,
    tls: LinkTls,
    setup: LinkSetup,
) -> LinkEnd
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let leafs = Arc::clone(&srv.leafs);
    let Some(cfg) = leafs.settings() else {
        return LinkEnd::default();
    };
    let mut rng = SplitMix64::new(srv.next_seed());
    let mut conn = LeafConn::new(now(), srv.next_conn_id(), cfg, role, rng.next_u64());
    if let Some((exports, imports)) = &setup.deny {
        conn.set_deny_lists(exports, imports);
    }
    if let Some(c) = setup.creds {
        conn.set_credentials(c);
    }
    let handle = LeafHandle::new(conn);
    if leafs.shutting_down.load(Ordering::Acquire) {
        handle.close(LeafCloseReason::ServerShutdown);
    }
    connect(srv, Arc::clone(&handle), stream, peer, tls, rng).await;
    let looped = lock(&handle.conn).loop_detected();
    let leaf_urls = lock(&handle.learned_urls).take();
    LinkEnd { looped, leaf_urls }
}

/// The TLS upgrade, if any, then the link.
async fn connect<S>(
    srv: Arc<Shared>,
    handle: Arc<LeafHandle>,
    mut stream: S,
    peer: SocketAddr,
    tls: LinkTls,
    rng: SplitMix64,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = handle.id;
    let mut buf = BytesMut::with_capacity(READ_BUF);
    match tls {
        LinkTls::Plain => drive(srv, handle, stream, buf, peer, rng).await,
        LinkTls::Hub(t) => {
            // Go: createLeafNode — INFO in the clear, then the server handshake.
            let mut info = std::collections::VecDeque::new();
            handle.take_output(&mut info);
            for chunk in info {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            match t.accept(stream).await {
                Ok(s) => drive(srv, handle, s, buf, peer, rng).await,
                Err(e) => tls_failed(id, peer, &e),
            }
        }
        LinkTls::Leaf {
            client,
            host,
            wanted,
        } => {
            match tokio::time::timeout(FIRST_INFO_TIMEOUT, read_line(&mut stream, &mut buf)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(lid = id, %peer, "leafnode connection closed before INFO: {e}");
                    return;
                }
                Err(_) => {
                    tracing::error!(lid = id, %peer, "Leafnode connection closed: did not receive INFO in time");
                    return;
                }
            }
            // The INFO is handled before the upgrade: the CONNECT it queues waits for the
            // writer, which starts on the upgraded stream.
            handle.with(|c| c.handle_input(now(), &mut buf));
            let (closed, asked) = {
                let c = lock(&handle.conn);
                (c.is_closed(), c.peer_tls_required())
            };
            if closed || !(wanted || asked) {
                return drive(srv, handle, stream, buf, peer, rng).await;
            }
            let client = match client {
                Some(c) => c,
                None => match LeafTlsClient::new(None) {
                    Ok(c) => Arc::new(c),
                    Err(e) => return tls_failed(id, peer, &e),
                },
            };
            match client.connect(&host, stream).await {
                Ok(s) => drive(srv, handle, s, buf, peer, rng).await,
                Err(e) => tls_failed(id, peer, &e),
            }
        }
    }
}

fn tls_failed(id: u64, peer: SocketAddr, e: &TlsError) {
    // Go: "TLS leafnode handshake error: %v", then the close with its reason.
    tracing::error!(lid = id, %peer, "TLS leafnode handshake error: {e}");
    tracing::info!(lid = id, %peer, "Leafnode connection closed: {}", LeafCloseReason::TlsHandshakeError);
}

/// Reads until `buf` holds a whole line (the hub's INFO), within the control-line bound.
async fn read_line<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> std::io::Result<()> {
    const MAX_LINE: usize = 64 * 1024;
    while !buf.windows(2).any(|w| w == b"\r\n") {
        if buf.len() > MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "INFO line too long",
            ));
        }
        buf.reserve(4096);
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

/// Runs the link over `stream` (plain or upgraded). `buf` may already hold input.
async fn drive<S>(
    srv: Arc<Shared>,
    handle: Arc<LeafHandle>,
    stream: S,
    mut buf: BytesMut,
    peer: SocketAddr,
    rng: SplitMix64,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let leafs = Arc::clone(&srv.leafs);
    let id = handle.id;
    let solicited = lock(&handle.conn).is_solicited();
    let (mut rd, wr) = tokio::io::split(stream);
    let writer = tokio::spawn(write_loop(
        wr,
        Arc::clone(&handle),
        srv.opts().write_deadline,
    ));
    let mut ctx = Ctx {
        rng,
        msgs: Vec::with_capacity(MSG_RUN),
        pending: PendingFlush::default(),
        cache: MatchCache::default(),
        account: None,
        peer,
        solicited,
    };
    let mut input_waiting = !buf.is_empty();
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
        if std::mem::take(&mut input_waiting) {
            if let Some(r) = eat(&srv, &handle, &mut ctx, &mut buf) {
                break r;
            }
            continue;
        }
        let mut closed_by_input = None;
        tokio::select! {
            biased;
            () = handle.close.notified() => {}
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => handle.close(LeafCloseReason::ClientClosed),
                Ok(_) => closed_by_input = eat(&srv, &handle, &mut ctx, &mut buf),
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

/// Feeds `buf` to the machine, acting on its events between ops. Returns the close reason
/// once it closed.
fn eat(
    srv: &Arc<Shared>,
    handle: &Arc<LeafHandle>,
    ctx: &mut Ctx,
    buf: &mut BytesMut,
) -> Option<LeafCloseReason> {
    let mut msgs = std::mem::take(&mut ctx.msgs);
    let closed = loop {
        let more = handle.with(|c| c.handle_input_msgs(now(), buf, &mut msgs, MSG_RUN));
        // The messages first: on the wire they came before the event that ended their run.
        deliver_run(handle, ctx, &msgs);
        msgs.clear();
        // The close event is queued once: dropping it here would leave the loop reading a
        // dead socket forever (EOF returns at once).
        if let Some(r) = process(srv, handle, ctx) {
            break Some(r);
        }
        if !more {
            break None;
        }
    };
    ctx.msgs = msgs;
    closed
}

/// Delivers a run of messages from the peer to the bound account's local interest.
fn deliver_run(h: &Arc<LeafHandle>, ctx: &mut Ctx, msgs: &[RoutedMsg]) {
    let Some((_, acc)) = &ctx.account else {
        return;
    };
    if msgs.is_empty() {
        return;
    }
    let bytes: usize = msgs.iter().map(RoutedMsg::total_len).sum();
    h.in_msgs.fetch_add(msgs.len() as u64, Ordering::Relaxed);
    h.in_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    let now = now();
    let from = router::LeafOrigin {
        id: h.id,
        spoke: h.spoke,
    };
    for msg in msgs {
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
            now,
            pending: &mut ctx.pending,
            cache: Some(&mut ctx.cache),
            transient: false,
        };
        match msg.reply.as_deref().and_then(split_js_reply) {
            // A JetStream delivery: its subscriber sees the stored subject.
            Some((reply, subject)) => {
                let shown = Message {
                    subject,
                    reply: Some(reply),
                    ..m
                };
                router::deliver_from_leaf_as(acc, &mut p, &m, &shown, from, &msg.queues);
            }
            None => {
                router::deliver_from_leaf(acc, &mut p, &m, from, &msg.queues);
            }
        }
    }
}

struct Ctx {
    rng: SplitMix64,
    /// A run of messages taken from the machine under one lock (kept for its allocation).
    msgs: Vec<RoutedMsg>,
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
                let lds = srv.leafs.loop_subject(&account, srv.next_seed());
                h.with(|c| c.set_loop_subject(lds));
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
            LeafEvent::Msg(msg) => deliver_run(h, ctx, std::slice::from_ref(&msg)),
            LeafEvent::LeafUrls(urls) => {
                tracing::debug!(lid = h.id, urls = ?urls, "leafnode URLs from the hub");
                *lock(&h.learned_urls) = Some(urls);
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
    if !srv.cluster.enabled && !srv.gateways.enabled {
        return;
    }
    for ((acc, subject, queue), added) in changes {
        if srv.cluster.enabled {
            srv.cluster
                .local_interest(acc, subject, queue.as_deref(), added);
        }
        // A hub's leaf links are local interest for the other clusters too.
        srv.gateways
            .local_interest(acc, subject, queue.as_deref(), added);
    }
}
