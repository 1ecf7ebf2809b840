//! Gateways: this server's connections to the other clusters of a super-cluster.
//!
//! Each connection runs the sans-IO [`GatewayConn`] machine in a driver ([`conn`]) generic
//! over the [`Transport`](crate::transport::Transport), like routes and leaf links. Every
//! server dials each remote cluster once (*outbound*: our messages go there, its cluster's
//! interest comes back) and accepts the remote servers' own connections (*inbound*: we tell
//! them our cluster's interest and receive their messages).
//!
//! Interest we tell inbound connections: the whole cluster's, per account — local client
//! subscriptions, the interest routes tell us and that of our leaf links — counted per
//! (account, subject, queue) so that `RS+` goes out on the first and `RS-` on the last (Go:
//! gateway.go gatewayUpdateSubInterest). Interest an outbound connection learns enters the
//! account's sublist as a [`SubTarget::Route`] entry of that gateway, so the publish path
//! sends to it as it does to a route ([`RouteSink::is_gateway`] gives nats-server's rules).
//! An outbound connection also carries a `_GR_.<its cluster hash>.>` entry in every account:
//! an answer to a request that came from that cluster goes straight back whatever the
//! interest.
//!
//! TLS ([`Gateways::tls`], a remote's own block in [`RemoteCluster::tls`]) is set up as for
//! routes, by [`crate::tls::peer`]: the handshake comes first, both sides verify.

pub(crate) mod conn;
pub(crate) mod dial;
pub(crate) mod monitor;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::gateway::{gw_hash, GatewayCloseReason, GatewayConn, GatewaySettings, ReplyPrefix};
use natsd_core::outbound::StallGate;
use natsd_core::proto::route::{RemoteSub, RemoteUnsub};
use natsd_core::router::{Message, RouteSink, SubRef, SubTarget, Subscription};
use tokio::sync::Notify;

use crate::server::{lock, Shared};
use crate::tls::peer::PeerTls;

/// (account, subject, queue).
pub(crate) type InterestKey = (String, Bytes, Option<Bytes>);

/// One gateway connection as the rest of the server sees it.
#[derive(Debug)]
pub(crate) struct GatewayHandle {
    pub(crate) id: u64,
    pub(crate) outbound: bool,
    pub(crate) conn: Mutex<GatewayConn>,
    write: Notify,
    close: Notify,
    flush: AtomicBool,
    gate: Arc<StallGate>,
    /// Our reply prefix, for requests leaving on this connection.
    prefix: Arc<ReplyPrefix>,
    pub(crate) in_msgs: AtomicU64,
    pub(crate) in_bytes: AtomicU64,
    pub(crate) out_msgs: AtomicU64,
    pub(crate) out_bytes: AtomicU64,
}

impl GatewayHandle {
    fn new(conn: GatewayConn, prefix: Arc<ReplyPrefix>) -> Arc<Self> {
        Arc::new(Self {
            id: conn.id(),
            outbound: conn.is_outbound(),
            gate: Arc::clone(conn.stall_gate()),
            conn: Mutex::new(conn),
            write: Notify::new(),
            close: Notify::new(),
            flush: AtomicBool::new(false),
            prefix,
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            out_msgs: AtomicU64::new(0),
            out_bytes: AtomicU64::new(0),
        })
    }

    /// Runs `f` on the machine, then wakes the writer (and the reader, if `f` closed it).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut GatewayConn) -> R) -> R {
        crate::link::run_on(&self.conn, &self.write, &self.close, f)
    }

    pub(crate) fn close(&self, reason: GatewayCloseReason) {
        self.with(|c| c.close(reason));
    }
}

impl crate::link::LinkOutput for GatewayConn {
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

impl crate::link::LinkIo for GatewayHandle {
    fn link_id(&self) -> u64 {
        self.id
    }

    fn take_output(&self, out: &mut std::collections::VecDeque<Bytes>) -> bool {
        crate::link::take_output(&self.conn, out)
    }

    fn write_wakeup(&self) -> &Notify {
        &self.write
    }

    fn write_failed(&self, why: crate::link::WriteFailure) {
        self.close(why.close_reason());
    }
}

impl RouteSink for GatewayHandle {
    fn route_id(&self) -> u64 {
        self.id
    }

    fn send_msg(&self, account: &str, m: &Message<'_>, queues: &[&[u8]]) -> bool {
        // Go: sendMsgToGateways — the reply carries our cluster and server hashes, so that
        // the answer finds its way back to this server.
        let reply = m.reply.map(|r| self.prefix.map(r));
        let sent = {
            let mut c = lock(&self.conn);
            let sent = c.send_msg(
                account.as_bytes(),
                m.subject,
                reply.as_deref(),
                queues,
                m.headers,
                (m.payload, m.shared),
            );
            if c.is_closed() {
                self.close.notify_one();
            }
            sent
        };
        if sent {
            self.out_msgs.fetch_add(1, Ordering::Relaxed);
            self.out_bytes.fetch_add(
                (m.payload.len() + m.headers.map_or(0, <[u8]>::len)) as u64,
                Ordering::Relaxed,
            );
        }
        sent
    }

    fn flush_flag(&self) -> &AtomicBool {
        &self.flush
    }

    fn wake(&self) {
        self.write.notify_one();
    }

    fn stall_gate(&self) -> Option<&Arc<StallGate>> {
        Some(&self.gate)
    }

    fn is_gateway(&self) -> bool {
        true
    }
}

/// What the server keeps about one registered gateway connection.
#[derive(Debug, Clone)]
pub(crate) struct GatewayEntry {
    pub(crate) handle: Arc<GatewayHandle>,
    /// The remote cluster's name.
    pub(crate) name: String,
    pub(crate) peer: SocketAddr,
    pub(crate) remote_id: String,
    pub(crate) start: SystemTime,
    /// Inbound: accounts switched to interest-only mode on the peer.
    pub(crate) switched: BTreeSet<String>,
}

/// A remote cluster we know of: configured or learned.
#[derive(Debug, Clone, Default)]
pub(crate) struct RemoteCluster {
    /// Its gateway URLs (`host:port`, with credentials for configured ones).
    pub(crate) urls: Vec<String>,
    /// Learned from gossip rather than configured.
    pub(crate) implicit: bool,
    /// A dialer runs for it.
    pub(crate) dialing: bool,
    /// Its own `tls` block, for dialing it (else the gateway's `tls`, if any).
    pub(crate) tls: Option<Arc<PeerTls>>,
}

/// Connections, remote clusters and interest, under one lock.
#[derive(Debug, Default)]
pub(crate) struct GatewayState {
    /// Registered outbound connections, by remote cluster name.
    pub(crate) outbound: BTreeMap<String, GatewayEntry>,
    /// Registered inbound connections, by connection id.
    pub(crate) inbound: BTreeMap<u64, GatewayEntry>,
    pub(crate) remotes: BTreeMap<String, RemoteCluster>,
    /// The cluster's interest we tell inbound connections, counted.
    interest: BTreeMap<InterestKey, u32>,
    /// Interest learned from routes, (route id, key), counted once each.
    routed: BTreeSet<(u64, InterestKey)>,
    /// Each outbound connection's remote interest: (connection id, key) → its sublist entry.
    remote: BTreeMap<(u64, InterestKey), SubRef>,
    /// Outbound: accounts the peer switched to interest-only mode, (connection id, account)
    /// → whether the switch is complete.
    out_modes: BTreeMap<(u64, String), bool>,
}

/// The gateway side of the server.
#[derive(Debug)]
pub(crate) struct Gateways {
    pub(crate) enabled: bool,
    pub(crate) name: String,
    pub(crate) settings: RwLock<Option<Arc<GatewaySettings>>>,
    pub(crate) state: Mutex<GatewayState>,
    pub(crate) addr: Mutex<Option<SocketAddr>>,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) prefix: Arc<ReplyPrefix>,
    /// Starts a dialer for a remote cluster on the server's transport (set at start).
    pub(crate) dialer: OnceLock<fn(Arc<Shared>, String)>,
    /// `gateway.tls`: every inbound connection is TLS from its first byte, and every remote
    /// without its own `tls` block is dialed with it (Go: newGateway, createGateway).
    pub(crate) tls: OnceLock<Arc<PeerTls>>,
}

impl Gateways {
    pub(crate) fn new(enabled: bool, name: String, server_id: &str) -> Self {
        Self {
            enabled,
            prefix: Arc::new(ReplyPrefix::new(&name, server_id)),
            name,
            settings: RwLock::new(None),
            state: Mutex::new(GatewayState::default()),
            addr: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
            dialer: OnceLock::new(),
            tls: OnceLock::new(),
        }
    }

    pub(crate) fn settings(&self) -> Option<Arc<GatewaySettings>> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Registered connections, outbound first (by name), then inbound (by id).
    pub(crate) fn snapshot(&self) -> (Vec<GatewayEntry>, Vec<GatewayEntry>) {
        let st = lock(&self.state);
        (
            st.outbound.values().cloned().collect(),
            st.inbound.values().cloned().collect(),
        )
    }

    /// Closes every connection (server shutdown).
    pub(crate) fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let handles: Vec<_> = {
            let st = lock(&self.state);
            st.outbound
                .values()
                .chain(st.inbound.values())
                .map(|e| Arc::clone(&e.handle))
                .collect()
        };
        for h in handles {
            h.close(GatewayCloseReason::ServerShutdown);
        }
    }

    /// A local subscription (a client's, or a leaf link's) came or went.
    pub(crate) fn local_interest(
        &self,
        account: &str,
        subject: &[u8],
        queue: Option<&[u8]>,
        added: bool,
    ) {
        if !self.enabled {
            return;
        }
        let key: InterestKey = (
            account.to_owned(),
            Bytes::copy_from_slice(subject),
            queue.map(Bytes::copy_from_slice),
        );
        change(&mut lock(&self.state), &key, added);
    }

    /// `RS+`/`RS-` from route `route`: interest of another server of the cluster.
    pub(crate) fn route_interest(
        &self,
        route: u64,
        account: &[u8],
        subject: &Bytes,
        queue: Option<&Bytes>,
        added: bool,
    ) {
        if !self.enabled {
            return;
        }
        let key: InterestKey = (
            String::from_utf8_lossy(account).into_owned(),
            subject.clone(),
            queue.cloned(),
        );
        let mut st = lock(&self.state);
        let changed = if added {
            st.routed.insert((route, key.clone()))
        } else {
            st.routed.remove(&(route, key.clone()))
        };
        if changed {
            change(&mut st, &key, added);
        }
    }

    /// A route closed: the interest it brought is gone.
    pub(crate) fn route_closed(&self, route: u64) {
        if !self.enabled {
            return;
        }
        let mut st = lock(&self.state);
        let keys: Vec<_> = st
            .routed
            .iter()
            .filter(|(id, _)| *id == route)
            .cloned()
            .collect();
        for k in keys {
            st.routed.remove(&k);
            change(&mut st, &k.1, false);
        }
    }

    /// A new inbound connection learns every account's interest, account by account (Go:
    /// processGatewayInfo → switchAccountToInterestMode for every account).
    fn register_inbound(&self, mut entry: GatewayEntry, accounts: &[String]) {
        let mut st = lock(&self.state);
        let h = Arc::clone(&entry.handle);
        h.with(|c| {
            for acc in accounts {
                c.send_all_subs(acc, subs_of(&st.interest, acc));
                entry.switched.insert(acc.clone());
            }
        });
        st.inbound.insert(h.id, entry);
    }

    /// Registers an outbound connection; false if one to that cluster exists.
    fn register_outbound(&self, entry: GatewayEntry, accounts: &[Arc<Account>]) -> bool {
        let mut st = lock(&self.state);
        if st.outbound.contains_key(&entry.name) {
            return false;
        }
        // Answers to requests from that cluster go back whatever the interest.
        let hash = gw_hash(&entry.name);
        let mut subject = b"_GR_.".to_vec();
        subject.extend_from_slice(&hash);
        subject.extend_from_slice(b".>");
        let subject = Bytes::from(subject);
        for acc in accounts {
            insert_remote(&mut st, &entry.handle, acc, subject.clone(), None);
        }
        st.outbound.insert(entry.name.clone(), entry);
        true
    }

    /// Outbound connection `id`: the peer starts or ends switching `account`.
    fn interest_mode(&self, id: u64, account: String, complete: bool) {
        lock(&self.state).out_modes.insert((id, account), complete);
    }

    /// `RS+` on outbound connection `h`: the remote cluster's interest.
    fn remote_sub(&self, h: &Arc<GatewayHandle>, account: &Arc<Account>, sub: RemoteSub) {
        let mut st = lock(&self.state);
        insert_remote(&mut st, h, account, sub.subject, sub.queue);
    }

    /// `RS-` on outbound connection `id`.
    fn remote_unsub(&self, id: u64, account: &Account, unsub: RemoteUnsub) {
        let key: InterestKey = (account.name.clone(), unsub.subject, unsub.queue);
        let sub = lock(&self.state).remote.remove(&(id, key));
        if let Some(sub) = sub {
            remove_from(account, &sub);
        }
    }

    /// Forgets a closed connection and the interest it brought.
    fn unregister(&self, srv: &Shared, id: u64) {
        let mut st = lock(&self.state);
        st.inbound.remove(&id);
        st.out_modes.retain(|(cid, _), _| *cid != id);
        let name = st
            .outbound
            .iter()
            .find(|(_, e)| e.handle.id == id)
            .map(|(n, _)| n.clone());
        if let Some(n) = name {
            st.outbound.remove(&n);
        }
        let keys: Vec<_> = st
            .remote
            .keys()
            .filter(|(cid, _)| *cid == id)
            .cloned()
            .collect();
        for k in keys {
            if let Some(sub) = st.remote.remove(&k) {
                if let Some(acc) = srv.lookup_account(&k.1 .0) {
                    remove_from(&acc, &sub);
                }
            }
        }
    }

    /// A remote cluster named by gossip (from a gateway or a route): remember its URLs and
    /// dial it unless we have a connection or a dialer for it (Go: processImplicitGateway).
    pub(crate) fn implicit(&self, srv: &Arc<Shared>, name: &str, urls: &[String]) {
        if !self.enabled || name == self.name || urls.is_empty() {
            return;
        }
        let start = {
            let mut st = lock(&self.state);
            let known = st.remotes.contains_key(name);
            let r = st
                .remotes
                .entry(name.to_owned())
                .or_insert_with(|| RemoteCluster {
                    implicit: true,
                    ..RemoteCluster::default()
                });
            for u in urls {
                if !r.urls.contains(u) {
                    r.urls.push(u.clone());
                }
            }
            let start = !r.dialing && !st.outbound.contains_key(name);
            if start {
                if let Some(r) = st.remotes.get_mut(name) {
                    r.dialing = true;
                }
            }
            if !known {
                tracing::info!("Gateway {name:?} learned, URLs {urls:?}");
            }
            start
        };
        if start {
            if let Some(d) = self.dialer.get() {
                d(Arc::clone(srv), name.to_owned());
            }
        }
    }

    /// What every route is told of: the clusters we have an outbound connection to (Go:
    /// sendGatewayConfigsToRoute, forwardNewGatewayToLocalCluster).
    pub(crate) fn gossip_for_routes(&self) -> Vec<(String, Vec<String>)> {
        let st = lock(&self.state);
        st.outbound
            .keys()
            .filter_map(|n| {
                let urls = &st.remotes.get(n)?.urls;
                (!urls.is_empty()).then(|| (n.clone(), strip_credentials(urls)))
            })
            .collect()
    }
}

/// URLs as told to others: `host:port` without user info or scheme.
fn strip_credentials(urls: &[String]) -> Vec<String> {
    urls.iter()
        .map(|u| {
            let rest = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
            let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            rest.trim_end_matches('/').to_owned()
        })
        .collect()
}

fn subs_of<'a>(
    interest: &'a BTreeMap<InterestKey, u32>,
    account: &'a str,
) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
    interest
        .iter()
        .filter(move |((a, _, _), n)| a == account && **n > 0)
        .map(|((_, s, q), _)| (&s[..], q.as_deref()))
}

fn insert_remote(
    st: &mut GatewayState,
    h: &Arc<GatewayHandle>,
    account: &Arc<Account>,
    subject: Bytes,
    queue: Option<Bytes>,
) {
    let key: InterestKey = (account.name.clone(), subject.clone(), queue.clone());
    if st.remote.contains_key(&(h.id, key.clone())) {
        return;
    }
    let route: Arc<dyn RouteSink> = Arc::clone(h) as Arc<dyn RouteSink>;
    let entry = SubRef(Arc::new(Subscription::new(
        subject.clone(),
        queue.clone(),
        SubTarget::Route {
            route,
            weight: AtomicU32::new(1),
        },
    )));
    if account
        .sublist
        .insert(&subject, queue.as_deref(), entry.clone())
        .is_err()
    {
        tracing::debug!(gid = h.id, subject = %String::from_utf8_lossy(&subject), "invalid gateway subscription");
        return;
    }
    st.remote.insert((h.id, key), entry);
}

fn remove_from(account: &Account, sub: &SubRef) {
    sub.0.mark_removed();
    let _ = account
        .sublist
        .remove(&sub.0.subject, sub.0.queue.as_deref(), sub);
}

/// Counts one unit of interest in or out and, on the first or the last, tells every
/// inbound connection (switching the account first where it was not yet).
fn change(st: &mut GatewayState, key: &InterestKey, added: bool) {
    let count = st.interest.entry(key.clone()).or_insert(0);
    let before = *count;
    *count = if added {
        before + 1
    } else {
        before.saturating_sub(1)
    };
    let after = *count;
    if after == 0 {
        st.interest.remove(key);
    }
    if (before == 0) == (after == 0) {
        return;
    }
    let (acc, subject, queue) = key;
    let GatewayState {
        inbound, interest, ..
    } = st;
    for e in inbound.values_mut() {
        if !e.switched.contains(acc) {
            // An account the peer has not been switched for yet: the whole account at once,
            // this subscription included.
            e.handle
                .with(|c| c.send_all_subs(acc, subs_of(interest, acc)));
            e.switched.insert(acc.clone());
            continue;
        }
        e.handle.with(|c| {
            if after > 0 {
                c.send_sub(acc.as_bytes(), subject, queue.as_deref());
            } else {
                c.send_unsub(acc.as_bytes(), subject, queue.as_deref());
            }
        });
    }
}

/// The hook every client connection reports its subscriptions to: routes, leaf links and
/// gateways are told.
#[derive(Debug)]
pub(crate) struct GatewayInterest {
    pub(crate) inner: Option<Arc<dyn natsd_core::router::InterestHook>>,
    pub(crate) gateways: Arc<Gateways>,
}

impl natsd_core::router::InterestHook for GatewayInterest {
    fn interest_changed(&self, account: &str, subject: &[u8], queue: Option<&[u8]>, added: bool) {
        if let Some(i) = &self.inner {
            i.interest_changed(account, subject, queue, added);
        }
        self.gateways.local_interest(account, subject, queue, added);
    }
}
