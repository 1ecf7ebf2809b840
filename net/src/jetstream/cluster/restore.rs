//! Restores of clustered streams (Go: jetstream_cluster.go jsClusteredStreamRestoreRequest,
//! and the new stream's leader receiving the archive).
//!
//! The meta leader checks `$JS.API.STREAM.RESTORE.<stream>` as it checks a create (plus
//! 10130 "stream name already in use, cannot restore") and proposes the stream, with its
//! replicas, through the meta group, the request riding in the assignment. The new stream's
//! leader, once it leads, answers the request with the subject to upload to
//! (`$JS.SNAPSHOT.RESTORE.<stream>.<id>`, route-visible) and takes the chunks in order:
//! each one's whole archive frames are stored on its replica and proposed to the others
//! through the stream's group (the leader's path for sourced messages: sequences, times
//! and gaps as they were) before the chunk is acked with an empty message. The durable
//! consumers the archive names are assigned by the meta group as they are met (a leader
//! keeps only assigned consumers), and get their delivery state at the end. The empty last
//! chunk is answered, once everything is committed, with the stream's info as a
//! `stream_create_response`.
//!
//! A restore that fails, stalls or is cancelled has its stream deleted through the meta
//! group, as nats-server does; an archive is natsd's own (see core's `snapshot`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::jetstream::api::{err, ApiError};
use natsd_core::jetstream::cluster::api::{self as capi, ApiOp};
use natsd_core::jetstream::cluster::{ReplicatedStream, Request};
use natsd_core::jetstream::consumer::Delivery;
use natsd_core::jetstream::ReplicaRestore;
use natsd_core::router::{InternalSink, Message};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::api::ApiRequest;
use super::consumers::Batch;
use super::replicas::{Op, StreamGroup};
use super::snapshot::Listening;
use super::JsCluster;
use crate::jetstream::answer_from_sink;
use crate::server::lock;

const RESTORE_TYPE: &str = "io.nats.jetstream.api.v1.stream_restore_response";
const CREATE_TYPE: &str = "io.nats.jetstream.api.v1.stream_create_response";
/// The prefix of the upload subjects (Go: jsRestoreDeliverT).
const UPLOAD_PREFIX: &str = "$JS.SNAPSHOT.RESTORE.";
/// An upload silent this long is given up (Go: the restore is stalled).
const STALL: Duration = Duration::from_secs(10);
/// How long the end waits for the meta group's consumers and the stream's commits.
const SETTLE: Duration = Duration::from_secs(20);
/// Chunks queued for the receiving task (a client waits for each chunk's ack).
const CHUNKS: usize = 256;

/// One upload chunk: its reply subject and bytes.
type Chunk = (Option<String>, Bytes);

#[derive(Debug)]
struct ChunkSink(mpsc::Sender<Chunk>);

impl InternalSink for ChunkSink {
    fn deliver(&self, m: &Message<'_>) {
        let reply = m.reply.map(|r| String::from_utf8_lossy(r).into_owned());
        let payload = m
            .shared
            .cloned()
            .unwrap_or_else(|| Bytes::copy_from_slice(m.payload));
        let _ = self.0.try_send((reply, payload));
    }
}

/// A chunk for the stream's proposer (see [`step`]).
#[derive(Debug)]
pub(super) struct RestoreStep {
    job: Arc<Mutex<ReplicaRestore>>,
    payload: Bytes,
    /// The empty last chunk.
    end: bool,
    /// The stream's last sequence once stored, or why the restore failed.
    done: oneshot::Sender<Result<u64, ApiError>>,
}

/// The proposer's side: stores the chunk on the leader's replica and queues the entries
/// that store it on the others (what was stored before a failure too, so that the replicas
/// stay alike).
pub(super) fn step(rs: &mut ReplicatedStream, s: RestoreStep, b: &mut Batch) {
    let before = rs.stream.store.state().last_seq;
    let r = {
        let mut job = lock(&s.job);
        if s.end {
            job.finish(rs)
        } else {
            job.apply_chunk(rs, &s.payload)
        }
    };
    let r = match r {
        Ok(entries) => {
            b.proposals.extend(entries.into_iter().map(|e| (e, None)));
            Ok(rs.stream.store.state().last_seq)
        }
        Err(e) => {
            let stored = rs.leader_stored(before, false);
            b.proposals.extend(stored.into_iter().map(|e| (e, None)));
            Err(e)
        }
    };
    let _ = s.done.send(r);
}

fn fail_body(kind: &str, e: &ApiError) -> Value {
    json!({"type": kind, "error": e})
}

impl JsCluster {
    /// `$JS.API.STREAM.RESTORE.<name>`: the meta leader checks it and proposes the stream.
    pub(super) fn serve_restore(self: &Arc<Self>, name: &str, req: &ApiRequest, reply: &str) {
        if !self.is_meta_leader() {
            return;
        }
        if let Err(e) = self.propose_restore(name, req, reply) {
            self.answer(&req.account, reply, &fail_body(RESTORE_TYPE, &e));
        }
    }

    fn propose_restore(
        self: &Arc<Self>,
        name: &str,
        req: &ApiRequest,
        reply: &str,
    ) -> Result<(), ApiError> {
        let body = ReplicaRestore::request_config(name, &req.payload)?;
        let cfg = capi::request_config(name, &body, true)?;
        if lock(&self.meta_state).stream(&req.account, name).is_some() {
            return Err(ApiError::new(
                400,
                10130,
                "stream name already in use, cannot restore",
            ));
        }
        let max_streams = self
            .limits(&req.account)
            .max_streams
            .try_into()
            .unwrap_or(0);
        let view = self.placement_view();
        let origin = self.origin(req, reply);
        let p = {
            let meta = lock(&self.meta_state);
            let mut rng = lock(&self.rng);
            meta.propose_stream_create(cfg, &origin, &view, max_streams, self.now(), &mut rng)?
        };
        let op = ApiOp::StreamCreate(name.to_owned());
        let _ = self.submit_meta(p, op, &req.account, reply);
        Ok(())
    }

    /// The meta group refused the stream a restore asked for.
    pub(super) fn answer_restore_error(&self, request: &Request, e: &ApiError) {
        self.answer(
            &request.account,
            &request.reply,
            &fail_body(RESTORE_TYPE, e),
        );
    }

    /// The leader of a stream created by a restore, leading it for the first time: answers
    /// the restore request with the upload subject and takes the upload.
    pub(super) fn start_restore(self: &Arc<Self>, g: &Arc<StreamGroup>, request: &Request) {
        let Some(srv) = self.srv.upgrade() else {
            return;
        };
        let Some(acc) = srv.lookup_account(&request.account) else {
            return;
        };
        let subject = format!("{UPLOAD_PREFIX}{}.{}", g.name, self.transfer_id());
        let (tx, rx) = mpsc::channel(CHUNKS);
        let Some(listening) = Listening::new(
            srv,
            Arc::clone(&acc),
            subject.clone(),
            Arc::new(ChunkSink(tx)),
        ) else {
            return;
        };
        let body = json!({"type": RESTORE_TYPE, "deliver_subject": subject});
        self.answer(&request.account, &request.reply, &body);
        tracing::info!(
            "Starting restore for stream '{} > {}'",
            request.account,
            g.name
        );
        let c = Arc::clone(self);
        let g = Arc::clone(g);
        tokio::spawn(async move {
            c.receive_restore(&g, &acc, rx).await;
            drop(listening);
        });
    }

    async fn receive_restore(
        self: &Arc<Self>,
        g: &Arc<StreamGroup>,
        acc: &Arc<Account>,
        mut rx: mpsc::Receiver<Chunk>,
    ) {
        let job = Arc::new(Mutex::new(ReplicaRestore::default()));
        let mut consumers: Vec<String> = Vec::new();
        loop {
            let Ok(Some((reply, payload))) = tokio::time::timeout(STALL, rx.recv()).await else {
                tracing::warn!("Restore of stream '{} > {}' is stalled", g.account, g.name);
                self.abandon_restore(acc, &g.name);
                return;
            };
            let Some(reply) = reply else {
                // Go: a chunk without a reply subject cancels the restore.
                tracing::warn!("Restore of stream '{} > {}' cancelled", g.account, g.name);
                self.abandon_restore(acc, &g.name);
                return;
            };
            let end = payload.is_empty();
            if end && !self.consumers_assigned(g, &consumers).await {
                let e = ApiError::new(500, 10062, "restore failed: consumers not assigned");
                self.answer(&g.account, &reply, &fail_body(CREATE_TYPE, &e));
                self.abandon_restore(acc, &g.name);
                return;
            }
            let (done, stored) = oneshot::channel();
            let step = RestoreStep {
                job: Arc::clone(&job),
                payload,
                end,
                done,
            };
            let result = if g.submit(Op::Restore(Box::new(step))) {
                stored
                    .await
                    .unwrap_or_else(|_| Err(err::cluster_not_avail()))
            } else {
                Err(err::cluster_not_avail())
            };
            let last_seq = match result {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(
                        "Restore of stream '{} > {}' failed: {}",
                        g.account,
                        g.name,
                        e.description
                    );
                    self.answer(&g.account, &reply, &fail_body(CREATE_TYPE, &e));
                    self.abandon_restore(acc, &g.name);
                    return;
                }
            };
            if !end {
                let fresh = lock(&job).new_consumers();
                for (name, config) in fresh {
                    self.assign_consumer(acc, &g.name, &name, config);
                    consumers.push(name);
                }
                answer_from_sink(acc, reply.as_bytes(), &[]);
                continue;
            }
            let body = if self.committed(g, last_seq).await {
                let sa = lock(&g.assignment).clone();
                let mut info = self.stream_info(&sa, self.now());
                info["type"] = json!(CREATE_TYPE);
                info
            } else {
                fail_body(CREATE_TYPE, &err::cluster_not_avail())
            };
            let bytes = lock(&job).bytes();
            tracing::info!(
                "Completed restore of {bytes} bytes for stream '{} > {}'",
                g.account,
                g.name
            );
            self.answer(&g.account, &reply, &body);
            return;
        }
    }

    /// A restore that failed or stopped: its stream is deleted through the meta group, as
    /// nats-server deletes it, rather than left half loaded.
    fn abandon_restore(&self, acc: &Arc<Account>, stream: &str) {
        self.internal_request(acc, format!("$JS.API.STREAM.DELETE.{stream}"), Vec::new());
    }

    /// Publishes an API request in `acc` as a client would; its answer goes to an inbox
    /// nobody listens on.
    fn internal_request(&self, acc: &Arc<Account>, subject: String, payload: Vec<u8>) {
        super::consumers::emit(
            acc,
            vec![Delivery {
                subject,
                reply: Some(format!("_INBOX.{}", self.transfer_id())),
                headers: Vec::new(),
                payload,
                shown_subject: None,
            }],
        );
    }

    /// Asks the meta group (as a client would) to assign a consumer the archive holds; its
    /// answer goes nowhere: [`Self::consumers_assigned`] waits for the assignment.
    fn assign_consumer(&self, acc: &Arc<Account>, stream: &str, name: &str, config: Value) {
        let body = json!({"stream_name": stream, "config": config});
        let subject = format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{name}");
        self.internal_request(acc, subject, body.to_string().into_bytes());
    }

    /// Waits (within [`SETTLE`]) until the meta group assigned every one of `names`.
    async fn consumers_assigned(&self, g: &StreamGroup, names: &[String]) -> bool {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let all = {
                let meta = lock(&self.meta_state);
                meta.stream(&g.account, &g.name)
                    .is_some_and(|r| names.iter().all(|n| r.consumers.contains_key(n)))
            };
            if all {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            // Poll interval; bounded by `deadline`.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (within [`SETTLE`]) until the stream's entries up to `last_seq` committed.
    async fn committed(&self, g: &StreamGroup, last_seq: u64) -> bool {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let done = lock(&g.replica)
                .rs()
                .is_some_and(|rs| rs.committed() >= last_seq);
            if done {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            // Poll interval; bounded by `deadline`.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
