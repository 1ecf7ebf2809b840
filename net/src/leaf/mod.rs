//! Leaf nodes: the hub side (the leaf-node listener) and the leaf side (dialing each
//! `leafnodes.remotes` entry), and what the server keeps about its leaf links.
//!
//! Each link runs the sans-IO [`LeafConn`] machine in a driver ([`conn`]) generic over the
//! [`Transport`](crate::transport::Transport), like routes. The machine sits behind a mutex in
//! a [`LeafHandle`], which is also the [`RouteSink`] the publish path forwards messages through
//! (marked as a leaf, so routed messages reach it when we are its hub).
//!
//! Interest, per bound account: local client subscriptions and the interest of every other
//! leaf link are told to each link (`LS+`/`LS-`: a plain subject on 0↔1, a queue group with
//! its member count as weight); a link's own `LS+` enters the account's sublist as a
//! [`SubTarget::Route`] entry and, on the hub side, counts as local interest for the routes.

pub(crate) mod conn;
pub(crate) mod dial;
mod monitor;
mod tls;
mod urls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::leaf::{LeafCloseReason, LeafConn, LeafSettings};
use natsd_core::outbound::StallGate;
use natsd_core::proto::leaf::{RemoteSub, RemoteUnsub};
use natsd_core::router::{InterestHook, Message, RouteSink, SubRef, SubTarget, Subscription};
use tokio::sync::Notify;

use crate::server::lock;

/// (account, subject, queue).
type InterestKey = (String, Bytes, Option<Bytes>);

/// One leaf link as the rest of the server sees it.
#[derive(Debug)]
pub(crate) struct LeafHandle {
    pub(crate) id: u64,
    /// We dialed this link (its peer is our hub); fixed for the link's life.
    pub(crate) spoke: bool,
    pub(crate) conn: Mutex<LeafConn>,
    write: Notify,
    close: Notify,
    flush: AtomicBool,
    pub(crate) in_msgs: AtomicU64,
    pub(crate) in_bytes: AtomicU64,
    pub(crate) out_msgs: AtomicU64,
    pub(crate) out_bytes: AtomicU64,
    gate: Arc<StallGate>,
    /// Leaf side: the hub cluster's leaf URLs from the hub's latest INFO, for the dialer.
    pub(crate) learned_urls: Mutex<Option<Vec<String>>>,
}

impl LeafHandle {
    fn new(conn: LeafConn) -> Arc<Self> {
        Arc::new(Self {
            id: conn.id(),
            spoke: conn.is_solicited(),
            gate: Arc::clone(conn.stall_gate()),
            conn: Mutex::new(conn),
            write: Notify::new(),
            close: Notify::new(),
            flush: AtomicBool::new(false),
            in_msgs: AtomicU64::new(0),
            in_bytes: AtomicU64::new(0),
            out_msgs: AtomicU64::new(0),
            out_bytes: AtomicU64::new(0),
            learned_urls: Mutex::new(None),
        })
    }

    /// Runs `f` on the machine, then wakes the writer (and the reader, if `f` closed it).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut LeafConn) -> R) -> R {
        crate::link::run_on(&self.conn, &self.write, &self.close, f)
    }

    pub(crate) fn close(&self, reason: LeafCloseReason) {
        self.with(|c| c.close(reason));
    }
}

impl crate::link::LinkIo for LeafHandle {
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

impl RouteSink for LeafHandle {
    fn route_id(&self) -> u64 {
        self.id
    }

    fn send_msg(&self, _account: &str, m: &Message<'_>, queues: &[&[u8]]) -> bool {
        let mut c = lock(&self.conn);
        if c.is_closed() {
            return false;
        }
        c.send_msg_from(m.subject, m.reply, queues, m.headers, (m.payload, m.shared));
        let closed = c.is_closed();
        drop(c);
        self.out_msgs.fetch_add(1, Ordering::Relaxed);
        self.out_bytes.fetch_add(
            (m.payload.len() + m.headers.map_or(0, <[u8]>::len)) as u64,
            Ordering::Relaxed,
        );
        if closed {
            self.close.notify_one();
        }
        true
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

    fn is_leaf(&self) -> bool {
        true
    }

    fn is_spoke_leaf(&self) -> bool {
        self.spoke
    }
}

/// What the server keeps about one bound leaf link.
#[derive(Debug, Clone)]
pub(crate) struct LeafEntry {
    pub(crate) handle: Arc<LeafHandle>,
    pub(crate) account: String,
    pub(crate) peer: SocketAddr,
}

/// Links and interest, under one lock.
#[derive(Debug, Default)]
pub(crate) struct LeafState {
    pub(crate) links: BTreeMap<u64, LeafEntry>,
    /// Interest every link may be told about: local subscriptions plus one per link that
    /// has it (a link is never told of its own).
    interest: BTreeMap<InterestKey, u32>,
    /// Each link's own interest: (link id, key) → its sublist entry.
    remote: BTreeMap<(u64, InterestKey), SubRef>,
    /// Interest learned from routes, (route id, key): the links are told of it as of local
    /// interest (Go: a hub's leaf links see the whole cluster's interest).
    routed: std::collections::BTreeSet<(u64, InterestKey)>,
}

/// The leaf-node side of the server.
#[derive(Debug)]
pub(crate) struct Leafs {
    pub(crate) enabled: bool,
    pub(crate) settings: RwLock<Option<Arc<LeafSettings>>>,
    pub(crate) state: Mutex<LeafState>,
    pub(crate) addr: Mutex<Option<SocketAddr>>,
    pub(crate) shutting_down: AtomicBool,
    /// Our `$LDS.` subject per account, made on first use.
    loop_subjects: Mutex<BTreeMap<String, Bytes>>,
    /// This server's leaf URL (`host:port` of `advertise` or the listener), set once the
    /// listener is bound; `None` without one or when it names no address.
    pub(crate) own_url: Mutex<Option<String>>,
    /// `leafnodes.no_advertise`: our URL stays out of the route INFO.
    pub(crate) no_advertise: AtomicBool,
}

impl Leafs {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            settings: RwLock::new(None),
            state: Mutex::new(LeafState::default()),
            addr: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
            loop_subjects: Mutex::new(BTreeMap::new()),
            own_url: Mutex::new(None),
            no_advertise: AtomicBool::new(false),
        }
    }

    pub(crate) fn settings(&self) -> Option<Arc<LeafSettings>> {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// This server's loop-detection subject for `account` (Go: account.go getLDSubject, a
    /// `$LDS.` prefix and a random id); `seed` makes it when the account has none yet.
    pub(crate) fn loop_subject(&self, account: &str, seed: u64) -> Bytes {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        lock(&self.loop_subjects)
            .entry(account.to_owned())
            .or_insert_with(|| {
                let mut rng = natsd_core::rng::SplitMix64::new(seed);
                let mut s = natsd_core::leaf::LOOP_DETECTION_PREFIX.to_owned();
                for _ in 0..22 {
                    s.push(char::from(
                        ALPHABET[rng.below(ALPHABET.len() as u64) as usize],
                    ));
                }
                Bytes::from(s)
            })
            .clone()
    }

    /// Bound links.
    pub(crate) fn num_links(&self) -> usize {
        lock(&self.state).links.len()
    }

    /// Every bound link, by connection id.
    pub(crate) fn snapshot(&self) -> Vec<LeafEntry> {
        lock(&self.state).links.values().cloned().collect()
    }

    /// Closes every link (server shutdown).
    pub(crate) fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let handles: Vec<_> = lock(&self.state)
            .links
            .values()
            .map(|e| Arc::clone(&e.handle))
            .collect();
        for h in handles {
            h.close(LeafCloseReason::ServerShutdown);
        }
    }

    /// A local subscription came or went.
    pub(crate) fn local_interest(
        &self,
        account: &str,
        subject: &[u8],
        queue: Option<&[u8]>,
        added: bool,
    ) {
        let key: InterestKey = (
            account.to_owned(),
            Bytes::copy_from_slice(subject),
            queue.map(Bytes::copy_from_slice),
        );
        let mut st = lock(&self.state);
        change(&mut st, &key, added, None);
    }

    /// `RS+`/`RS-` from route `route`: the links learn of the cluster's interest.
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
            change(&mut st, &key, added, None);
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
            change(&mut st, &k.1, false, None);
        }
    }

    /// A newly bound link learns the whole interest of its account (Go: sendAllLeafSubs).
    fn register(&self, entry: LeafEntry) {
        let mut st = lock(&self.state);
        let h = Arc::clone(&entry.handle);
        h.with(|c| {
            for ((acc, subject, queue), n) in &st.interest {
                if *acc == entry.account && *n > 0 {
                    c.send_sub(subject, queue.as_ref().map(|q| (&q[..], *n)));
                }
            }
        });
        st.links.insert(entry.handle.id, entry);
    }

    /// `LS+` from link `h`: enter (or re-weigh) its interest, and tell the other links.
    /// Returns true when the key is new for this link (the routes are to be told).
    fn remote_sub(&self, h: &Arc<LeafHandle>, account: &Account, sub: RemoteSub) -> bool {
        let key: InterestKey = (account.name.clone(), sub.subject.clone(), sub.queue.clone());
        let mut st = lock(&self.state);
        if let Some(existing) = st.remote.get(&(h.id, key.clone())) {
            if let SubTarget::Route { weight, .. } = &existing.0.target {
                weight.store(sub.weight, Ordering::Relaxed);
            }
            return false;
        }
        let route: Arc<dyn RouteSink> = Arc::clone(h) as Arc<dyn RouteSink>;
        let entry = SubRef(Arc::new(Subscription::new(
            sub.subject.clone(),
            sub.queue.clone(),
            SubTarget::Route {
                route,
                weight: AtomicU32::new(sub.weight.max(u32::from(sub.queue.is_some()))),
            },
        )));
        if account
            .sublist
            .insert(&sub.subject, sub.queue.as_deref(), entry.clone())
            .is_err()
        {
            tracing::debug!(lid = h.id, subject = %String::from_utf8_lossy(&sub.subject), "invalid leafnode subscription");
            return false;
        }
        st.remote.insert((h.id, key.clone()), entry);
        change(&mut st, &key, true, Some(h.id));
        true
    }

    /// `LS-` from link `id`. Returns true when it removed something.
    fn remote_unsub(&self, id: u64, account: &Account, unsub: RemoteUnsub) -> bool {
        let key: InterestKey = (account.name.clone(), unsub.subject, unsub.queue);
        let mut st = lock(&self.state);
        let Some(sub) = st.remote.remove(&(id, key.clone())) else {
            return false;
        };
        remove_from(account, &sub);
        change(&mut st, &key, false, Some(id));
        true
    }

    /// Forgets a closed link and everything it brought. Returns the keys it had (for the
    /// routes).
    fn unregister(&self, id: u64, account: Option<&Arc<Account>>) -> Vec<InterestKey> {
        let mut st = lock(&self.state);
        st.links.remove(&id);
        let keys: Vec<_> = st
            .remote
            .keys()
            .filter(|(lid, _)| *lid == id)
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(sub) = st.remote.remove(&k) {
                if let Some(acc) = account {
                    remove_from(acc, &sub);
                }
                change(&mut st, &k.1, false, Some(id));
                out.push(k.1);
            }
        }
        out
    }
}

/// Counts one unit of interest in or out and tells every bound link of that account, except
/// `from` (whose own interest this is), when what it must know changed.
fn change(st: &mut LeafState, key: &InterestKey, added: bool, from: Option<u64>) {
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
    let (acc, subject, queue) = key;
    for (id, e) in &st.links {
        if Some(*id) == from || e.account != *acc {
            continue;
        }
        // What this link is told excludes its own interest.
        let own = u32::from(st.remote.contains_key(&(*id, key.clone())));
        let (b, a) = (before.saturating_sub(own), after.saturating_sub(own));
        let send = match queue {
            Some(_) => b != a,
            None => (b == 0) != (a == 0),
        };
        if !send {
            continue;
        }
        e.handle.with(|c| {
            if a > 0 {
                c.send_sub(subject, queue.as_ref().map(|q| (&q[..], a)));
            } else {
                c.send_unsub(subject, queue.as_deref());
            }
        });
    }
}

fn remove_from(account: &Account, sub: &SubRef) {
    sub.0.mark_removed();
    let _ = account
        .sublist
        .remove(&sub.0.subject, sub.0.queue.as_deref(), sub);
}

/// The hook every client connection reports its subscriptions to when the server has routes
/// or leaf nodes: both are told.
#[derive(Debug)]
pub(crate) struct ServerInterest {
    pub(crate) cluster: Option<Arc<crate::route::Cluster>>,
    pub(crate) leafs: Arc<Leafs>,
}

impl InterestHook for ServerInterest {
    fn interest_changed(&self, account: &str, subject: &[u8], queue: Option<&[u8]>, added: bool) {
        if let Some(c) = &self.cluster {
            c.local_interest(account, subject, queue, added);
        }
        self.leafs.local_interest(account, subject, queue, added);
    }
}
