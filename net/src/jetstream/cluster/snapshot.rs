//! Snapshots of clustered streams (Go: jetstream_api.go jsStreamSnapshotRequest — in a
//! cluster only the stream's leader proceeds).
//!
//! Every server hears `$JS.API.STREAM.SNAPSHOT.<stream>` (see `api`); the server leading
//! the stream's group answers it with the stream's config and state and sends the archive
//! from its replica, as one server sends one of its own streams (core's
//! `ReplicaSnapshot`): chunks to the request's deliver subject, each with a reply subject
//! `$JS.SNAPSHOT.ACK.<stream>.<id>.<len>.<index>` the receiver acks, at most a window of
//! them unacknowledged. The acks come back over the routes to a subscription of the leader's
//! (route-visible, for as long as the snapshot runs). The meta leader answers 10059 for a
//! stream it does not know and 10008 for one whose group has no leader, as for the other
//! stream requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::jetstream::api::err;
use natsd_core::jetstream::ReplicaSnapshot;
use natsd_core::router::{InternalSink, Message, SubRef, SubTarget, Subscription};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::api::ApiRequest;
use super::replicas::StreamGroup;
use super::JsCluster;
use crate::server::{lock, Shared};

const SNAPSHOT_TYPE: &str = "io.nats.jetstream.api.v1.stream_snapshot_response";
/// How often a snapshot waiting for acks checks whether its receiver went silent.
const ACK_POLL: Duration = Duration::from_millis(500);
/// Acks queued for the sending task; more than a window's worth is never outstanding.
const ACKS: usize = 4096;

/// The acks of one snapshot (`$JS.SNAPSHOT.ACK.<stream>.<id>.>`).
#[derive(Debug)]
struct AckSink(mpsc::Sender<()>);

impl InternalSink for AckSink {
    fn deliver(&self, _m: &Message<'_>) {
        let _ = self.0.try_send(());
    }
}

/// A route-visible internal subscription, removed on drop.
pub(super) struct Listening {
    srv: Arc<Shared>,
    acc: Arc<Account>,
    sub: SubRef,
}

impl Listening {
    pub(super) fn new(
        srv: Arc<Shared>,
        acc: Arc<Account>,
        subject: String,
        sink: Arc<dyn InternalSink>,
    ) -> Option<Self> {
        let subject = Bytes::from(subject);
        let sub = SubRef(Arc::new(Subscription::new(
            subject.clone(),
            None,
            SubTarget::Internal(sink),
        )));
        acc.sublist.insert(&subject, None, sub.clone()).ok()?;
        srv.cluster.local_interest(&acc.name, &subject, None, true);
        Some(Self { srv, acc, sub })
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let subject = &self.sub.0.subject;
        if self.acc.sublist.remove(subject, None, &self.sub).is_ok() {
            self.srv
                .cluster
                .local_interest(&self.acc.name, subject, None, false);
        }
    }
}

impl JsCluster {
    /// A 22-character id for a snapshot's or restore's subjects.
    pub(super) fn transfer_id(&self) -> String {
        const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut rng = lock(&self.rng);
        (0..22)
            .map(|_| A[rng.below(A.len() as u64) as usize] as char)
            .collect()
    }

    /// `$JS.API.STREAM.SNAPSHOT.<name>` (see the module docs).
    pub(super) fn serve_snapshot(self: &Arc<Self>, name: &str, req: &ApiRequest, reply: &str) {
        let body = |r: Result<Value, natsd_core::jetstream::api::ApiError>| match r {
            Ok(mut v) => {
                v["type"] = json!(SNAPSHOT_TYPE);
                v
            }
            Err(e) => json!({"type": SNAPSHOT_TYPE, "error": e}),
        };
        let Some(g) = self.leading_group(&req.account, name, reply, &|e| body(Err(e))) else {
            return;
        };
        let (Some(srv), now) = (self.srv.upgrade(), self.now()) else {
            return;
        };
        let Some(acc) = srv.lookup_account(&req.account) else {
            return;
        };
        let id = self.transfer_id();
        let started = {
            let r = lock(&g.replica);
            let Some(rs) = r.rs() else { return };
            ReplicaSnapshot::start(rs, name, &req.payload, &id, now)
        };
        let (snap, answer) = match started {
            Ok(s) => s,
            Err(e) => {
                self.answer(&req.account, reply, &body(Err(e)));
                return;
            }
        };
        let (tx, rx) = mpsc::channel(ACKS);
        let acks = Listening::new(
            Arc::clone(&srv),
            Arc::clone(&acc),
            format!("{}.>", snap.ack_subject()),
            Arc::new(AckSink(tx)),
        );
        self.answer(&req.account, reply, &body(Ok(answer)));
        tracing::info!("Starting snapshot for stream '{} > {name}'", req.account);
        let c = Arc::clone(self);
        tokio::spawn(async move {
            c.send_snapshot(g, acc, snap, rx).await;
            drop(acks);
        });
    }

    /// The group of stream `name` when this server leads it. Otherwise `None`, after the
    /// meta leader answered (with `fail`'s body) a request about a stream it does not know
    /// or whose group has no leader.
    pub(super) fn leading_group(
        &self,
        account: &str,
        name: &str,
        reply: &str,
        fail: &dyn Fn(natsd_core::jetstream::api::ApiError) -> Value,
    ) -> Option<Arc<StreamGroup>> {
        let known = lock(&self.meta_state).stream(account, name).is_some();
        if !known {
            if self.is_meta_leader() {
                self.answer(account, reply, &fail(err::stream_not_found()));
            }
            return None;
        }
        let g = lock(&self.streams)
            .get(&(account.to_owned(), name.to_owned()))
            .cloned();
        match g.filter(|g| g.is_leading()) {
            Some(g) => Some(g),
            None => {
                if self.is_meta_leader() && self.leaderless(account, name) {
                    self.answer(account, reply, &fail(err::cluster_not_avail()));
                }
                None
            }
        }
    }

    /// Sends the archive a window at a time, reading the replica under its lock for each
    /// turn, until it is complete, failed, or its receiver went silent.
    async fn send_snapshot(
        self: Arc<Self>,
        g: Arc<StreamGroup>,
        acc: Arc<Account>,
        mut snap: ReplicaSnapshot,
        mut acks: mpsc::Receiver<()>,
    ) {
        loop {
            let out = {
                let r = lock(&g.replica);
                snap.pump(r.rs())
            };
            super::consumers::emit(&acc, out);
            if snap.is_done() {
                break;
            }
            if !snap.window_full() {
                // The turn's budget ran out: let the replica's other work in first.
                tokio::task::yield_now().await;
                continue;
            }
            match tokio::time::timeout(ACK_POLL, acks.recv()).await {
                Ok(Some(())) => {
                    let now = self.now();
                    snap.handle_ack(now);
                    while acks.try_recv().is_ok() {
                        snap.handle_ack(now);
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    if let Some(end) = snap.timed_out(self.now()) {
                        tracing::warn!(
                            "Snapshot of stream '{} > {}' ended: no flow response",
                            g.account,
                            g.name
                        );
                        super::consumers::emit(&acc, vec![end]);
                        break;
                    }
                }
            }
        }
    }
}
