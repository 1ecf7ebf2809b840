//! The system account: `$SYS.REQ.…` services and `$SYS.…` events (Go: server/events.go).
//!
//! The services are internal subscriptions in the system account's sublist
//! ([`SubTarget::Internal`]). A matching publish hands the request to a bounded queue on the
//! publisher's task; one service task answers it, publishing the reply back through the router.

pub(crate) mod events;
mod services;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::rng::SplitMix64;
use natsd_core::router::{self, InternalSink, Message, Publisher, SubRef, SubTarget, Subscription};
use tokio::sync::{mpsc, watch};

use crate::server::{lock, Shared};

/// Requests waiting for the service task; more are dropped (the requester times out), as
/// nats-server drops past its internal send queue limits.
const REQUEST_QUEUE: usize = 4096;

/// What the system-account machinery keeps per server.
#[derive(Debug, Default)]
pub(crate) struct SysState {
    pub(crate) seq: AtomicU64,
    rng: Mutex<Option<SplitMix64>>,
    sink: Mutex<Option<Arc<Sink>>>,
    subs: Mutex<Vec<(Arc<Account>, SubRef)>>,
}

/// A request for the service task.
#[derive(Debug)]
struct Request {
    subject: Bytes,
    reply: Option<Bytes>,
    payload: Bytes,
}

#[derive(Debug)]
struct Sink {
    tx: mpsc::Sender<Request>,
}

impl InternalSink for Sink {
    fn deliver(&self, m: &Message<'_>) {
        let _ = self.tx.try_send(Request {
            subject: Bytes::copy_from_slice(m.subject),
            reply: m.reply.map(Bytes::copy_from_slice),
            payload: m
                .shared
                .cloned()
                .unwrap_or_else(|| Bytes::copy_from_slice(m.payload)),
        });
    }
}

/// The subjects the services listen on.
fn service_subjects(server_id: &str) -> Vec<String> {
    vec![
        "$SYS.REQ.SERVER.PING".to_owned(),
        "$SYS.REQ.SERVER.PING.*".to_owned(),
        format!("$SYS.REQ.SERVER.{server_id}.*"),
        "$SYS.REQ.ACCOUNT.*.*".to_owned(),
    ]
}

fn install(srv: &Shared, sink: &Arc<Sink>) {
    let Some(acc) = srv.lookup_account(&srv.system_account_name()) else {
        return;
    };
    let mut subs = lock(&srv.sys.subs);
    for subject in service_subjects(&srv.server_id) {
        let s = Bytes::from(subject);
        let target = SubTarget::Internal(Arc::clone(sink) as Arc<dyn InternalSink>);
        let sub = SubRef(Arc::new(Subscription::new(s.clone(), None, target)));
        if acc.sublist.insert(&s, None, sub.clone()).is_ok() {
            // Go: internal subscriptions are routed like any other (sysSubscribe), so that
            // a request from any server of the cluster reaches this one.
            srv.cluster.local_interest(&acc.name, &s, None, true);
            // And across gateways, so that every server of the super-cluster answers.
            srv.gateways.local_interest(&acc.name, &s, None, true);
            subs.push((Arc::clone(&acc), sub));
        }
    }
}

fn uninstall(srv: &Shared) {
    for (acc, sub) in lock(&srv.sys.subs).drain(..) {
        if acc.sublist.remove(&sub.0.subject, None, &sub).is_ok() {
            srv.cluster
                .local_interest(&acc.name, &sub.0.subject, None, false);
            srv.gateways
                .local_interest(&acc.name, &sub.0.subject, None, false);
        }
    }
}

/// Starts the services and the periodic STATSZ event; both end at shutdown.
pub(crate) fn start(
    srv: &Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    *lock(&srv.sys.rng) = Some(SplitMix64::new(srv.next_seed()));
    let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
    let sink = Arc::new(Sink { tx });
    install(srv, &sink);
    *lock(&srv.sys.sink) = Some(sink);
    vec![
        tokio::spawn(services::run(Arc::clone(srv), rx, shutdown.clone())),
        tokio::spawn(events::statsz_loop(Arc::clone(srv), shutdown)),
    ]
}

/// Moves the services to the (new) system account.
pub(crate) fn restart(srv: &Shared) {
    uninstall(srv);
    let sink = lock(&srv.sys.sink).clone();
    if let Some(sink) = sink {
        install(srv, &sink);
    }
}

/// Is the machinery running and is anyone in the system account listening on `subject`?
pub(crate) fn wanted(srv: &Shared, subject: &str) -> Option<Arc<Account>> {
    lock(&srv.sys.sink).as_ref()?;
    let acc = srv.lookup_account(&srv.system_account_name())?;
    acc.sublist.has_interest(subject.as_bytes()).then_some(acc)
}

/// Publishes `payload` on `subject` in the system account.
pub(crate) fn publish(srv: &Shared, acc: &Arc<Account>, subject: &[u8], payload: Vec<u8>) {
    let payload = Bytes::from(payload);
    let mut rng = lock(&srv.sys.rng);
    let Some(rng) = rng.as_mut() else { return };
    let mut pending = router::PendingFlush::default();
    let mut p = Publisher {
        client: None,
        rng,
        now: crate::transport::now(),
        pending: &mut pending,
        cache: None,
        transient: false,
    };
    let m = Message {
        subject,
        reply: None,
        headers: None,
        payload: &payload,
        shared: Some(&payload),
    };
    router::publish(acc, &mut p, &m);
    pending.flush();
}

/// A fresh event id (22 base-62 characters, like a NUID).
pub(crate) fn event_id(srv: &Shared) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = lock(&srv.sys.rng);
    let Some(rng) = rng.as_mut() else {
        return String::new();
    };
    (0..22)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
        .collect()
}
