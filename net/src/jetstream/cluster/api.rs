//! The clustered `$JS.API`: who answers what.
//!
//! In clustered mode each JetStream account's `$JS.API.>` subscription (and, with a
//! JetStream domain, `$JS.<domain>.API.>`, taken as the same requests) is route-visible, so
//! every server hears every request once; exactly one answers (core's
//! `cluster::api::ApiOp::answered_by`):
//!
//! * the **meta leader**: `$JS.API.INFO`, STREAM.CREATE/UPDATE/DELETE, STREAM.NAMES/LIST,
//!   CONSUMER.CREATE (and DURABLE.CREATE)/DELETE/NAMES/LIST, and any stream request naming a
//!   stream the meta group does not know (10059);
//! * the **stream's leader**: STREAM.INFO, STREAM.MSG.GET/DELETE, DIRECT.GET, STREAM.PURGE,
//!   STREAM.LEADER.STEPDOWN, CONSUMER.INFO, CONSUMER.LEADER.STEPDOWN (the stream's group steps
//!   down: see `consumers`) and CONSUMER.MSG.NEXT (acks reach it on its own subscription, see
//!   `replicas`).
//!
//! A server that knows no meta leader answers nothing (the client times out and retries, as
//! with nats-server before its meta group formed). A request to a stream whose group has had
//! no leader for [`LEADERLESS`] (every server's heartbeat lists the groups it leads) is
//! answered by the meta leader with 10008 "JetStream system temporarily unavailable", where
//! nats-server 2.9 stays silent. STREAM.SNAPSHOT goes to the stream's leader and
//! STREAM.RESTORE to the meta leader (see `snapshot` and `restore`). Requests not listed
//! (consumer pause/reset/unpin, peer and server removal) are not served in a cluster yet:
//! nobody answers.
//!
//! A create is answered by the new stream's leader once it leads (see `effects`); a consumer
//! create by the stream's leader once the consumer's entry is committed. Updates and deletes
//! are answered by the meta leader once the entry is applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use natsd_core::account::Account;
use natsd_core::jetstream::api::{err, ApiError};
use natsd_core::jetstream::cluster::api::{self as capi, Answerer, ApiOp};
use natsd_core::jetstream::cluster::placement::{Cluster, ServerInfo};
use natsd_core::jetstream::cluster::propose::{Origin, Proposal};
use natsd_core::jetstream::cluster::shapes::{ClusterOp, ClusterRequest, PeerState};
use natsd_core::jetstream::cluster::{ClusterInfo, Request, StreamAssignment};
use natsd_core::router::{InternalSink, Message, SubRef, SubTarget, Subscription};
use natsd_raft::openraft::ServerState;
use natsd_raft::{Command, NodeId, NodeInfo};
use serde_json::Value;
use tokio::sync::mpsc;

use super::consumers;
use super::replicas::{Op, StreamGroup};
use super::{peer_id, JsCluster, OFFLINE_AFTER};
use crate::jetstream::answer_from_sink;
use crate::server::{lock, unix_nanos};

/// How long a stream group may go without a leader before the meta leader answers its
/// requests with 10008 (a few heartbeats; an election takes one or two seconds).
const LEADERLESS: std::time::Duration = std::time::Duration::from_secs(4);
/// API requests waiting for the dispatcher; past this they are dropped (clients retry).
const INBOUND: usize = 8192;

/// One API request heard in an account.
#[derive(Debug)]
pub(super) struct ApiRequest {
    pub(super) account: String,
    pub(super) subject: String,
    reply: Option<String>,
    pub(super) payload: Bytes,
}

/// The `$JS.API.>` (and `$JS.<domain>.API.>`) subscription of one account.
#[derive(Debug)]
struct ApiSink {
    account: String,
    tx: mpsc::Sender<ApiRequest>,
    /// `$JS.<domain>.API.` with a JetStream domain: requests on it are the account's
    /// `$JS.API.` requests, as on one server.
    domain_api: Option<String>,
}

impl InternalSink for ApiSink {
    fn deliver(&self, m: &Message<'_>) {
        let mut subject = String::from_utf8_lossy(m.subject).into_owned();
        if let Some(rest) = self
            .domain_api
            .as_deref()
            .and_then(|p| subject.strip_prefix(p))
        {
            subject = format!("$JS.API.{rest}");
        }
        let _ = self.tx.try_send(ApiRequest {
            account: self.account.clone(),
            subject,
            reply: m.reply.map(|r| String::from_utf8_lossy(r).into_owned()),
            payload: m
                .shared
                .cloned()
                .unwrap_or_else(|| Bytes::copy_from_slice(m.payload)),
        });
    }
}

/// The request channel the API sinks feed.
pub(super) fn channel() -> (mpsc::Sender<ApiRequest>, mpsc::Receiver<ApiRequest>) {
    mpsc::channel(INBOUND)
}

impl JsCluster {
    /// Subscribes `$JS.API.>` in `acc`, route-visible, and `$JS.<domain>.API.>` when the
    /// server has a JetStream domain.
    pub(super) fn subscribe_api(&self, acc: &Arc<Account>, tx: &mpsc::Sender<ApiRequest>) {
        let Some(srv) = self.srv.upgrade() else {
            return;
        };
        let domain = self.domain();
        let domain_api = domain.as_ref().map(|d| format!("$JS.{d}.API."));
        let sink: Arc<dyn InternalSink> = Arc::new(ApiSink {
            account: acc.name.clone(),
            tx: tx.clone(),
            domain_api,
        });
        let mut subjects = vec![Bytes::from_static(b"$JS.API.>")];
        if let Some(d) = domain {
            subjects.push(Bytes::from(format!("$JS.{d}.API.>")));
        }
        for s in subjects {
            let sub = SubRef(Arc::new(Subscription::new(
                s.clone(),
                None,
                SubTarget::Internal(Arc::clone(&sink)),
            )));
            if acc.sublist.insert(&s, None, sub.clone()).is_ok() {
                super::tell_interest(&srv, &acc.name, &s, true);
                lock(&self.subs).push((Arc::clone(acc), sub));
            }
        }
    }

    pub(super) fn is_meta_leader(&self) -> bool {
        let m = self.meta.raft().metrics().borrow().clone();
        m.state == ServerState::Leader && m.current_leader == Some(self.node)
    }

    pub(super) fn answer(&self, account: &str, reply: &str, body: &Value) {
        if super::counters::is_error(body) {
            self.api.error(account);
        }
        let Some(acc) = self.srv.upgrade().and_then(|s| s.lookup_account(account)) else {
            return;
        };
        answer_from_sink(&acc, reply.as_bytes(), body.to_string().as_bytes());
    }

    pub(super) fn now(&self) -> u64 {
        self.srv.upgrade().map_or(0, |s| unix_nanos(s.wall_clock()))
    }

    /// Handles one API request (see the module docs for who answers).
    pub(super) fn serve_api(self: &Arc<Self>, req: ApiRequest) {
        let Some(reply) = req.reply.clone() else {
            return;
        };
        let Some(rest) = req.subject.strip_prefix("$JS.API.") else {
            return;
        };
        // STREAM.PEER.REMOVE: the meta leader answers (see `members`).
        if let Some(ClusterRequest::StreamPeerRemove { stream }) = ClusterRequest::parse(rest) {
            if self.is_meta_leader() {
                self.peer_remove(&stream, &req, &reply);
            }
            return;
        }
        let op = ApiOp::parse(rest);
        let before = self.api.heard(&req.account, &op);
        // Snapshots and restores (see `snapshot`).
        if let Some(name) = rest.strip_prefix("STREAM.SNAPSHOT.") {
            self.serve_snapshot(name, &req, &reply);
            return;
        }
        if let Some(name) = rest.strip_prefix("STREAM.RESTORE.") {
            self.serve_restore(name, &req, &reply);
            return;
        }
        match op.answered_by() {
            Answerer::Nobody => {}
            Answerer::MetaLeader => {
                if self.is_meta_leader() {
                    self.meta_op(&op, &req, &reply, before);
                }
            }
            Answerer::StreamLeader => {
                let stream = op.stream().unwrap_or_default().to_owned();
                let known = lock(&self.meta_state)
                    .stream(&req.account, &stream)
                    .is_some();
                if !known {
                    if self.is_meta_leader() {
                        let body = op.body(Err(err::stream_not_found()));
                        self.answer(&req.account, &reply, &body);
                    }
                    return;
                }
                let g = lock(&self.streams)
                    .get(&(req.account.clone(), stream.clone()))
                    .cloned();
                if let Some(g) = g.filter(|g| g.is_leading()) {
                    self.stream_op(&g, &op, &req, &reply);
                } else if self.is_meta_leader() && self.leaderless(&req.account, &stream) {
                    let body = match op {
                        ApiOp::StreamStepdown(_) => serde_json::to_value(
                            ClusterOp::StreamLeaderStepdown.fail(err::cluster_not_avail()),
                        )
                        .unwrap_or_default(),
                        ApiOp::ConsumerStepdown(..) => serde_json::to_value(
                            ClusterOp::ConsumerLeaderStepdown.fail(err::cluster_not_avail()),
                        )
                        .unwrap_or_default(),
                        // A pull request or direct get is answered by status, never JSON.
                        ApiOp::MsgNext(..) | ApiOp::DirectGet { .. } => return,
                        _ => op.body(Err(err::cluster_not_avail())),
                    };
                    self.answer(&req.account, &reply, &body);
                }
            }
        }
    }

    /// The stream groups this server leads (its heartbeat says so).
    pub(super) fn leading_groups(&self) -> Vec<String> {
        lock(&self.streams)
            .values()
            .filter(|g| g.is_leading())
            .map(|g| g.group.name().to_owned())
            .collect()
    }

    /// Heartbeats (or this server) said these groups have a leader.
    pub(super) fn saw_leaders(&self, groups: &[String]) {
        let now = tokio::time::Instant::now();
        let mut led = lock(&self.led);
        for g in groups {
            led.insert(g.clone(), now);
        }
    }

    /// A stream whose group nobody has reported leading for [`LEADERLESS`] (nor since this
    /// server started or the stream was created): the meta leader answers its requests with
    /// 10008 rather than leave them unanswered. (nats-server 2.9 leaves them unanswered.)
    pub(super) fn leaderless(&self, account: &str, stream: &str) -> bool {
        let Some((group, created)) = lock(&self.meta_state)
            .stream(account, stream)
            .map(|r| (r.assignment.group.name.clone(), r.assignment.created))
        else {
            return false;
        };
        let grace = u64::try_from(LEADERLESS.as_nanos()).unwrap_or(u64::MAX);
        if self.started.elapsed() < LEADERLESS || self.now().saturating_sub(created) < grace {
            return false;
        }
        // This server's own replica knows better than heartbeats: while its Raft follows a
        // leader, the group is not leaderless (heartbeats can lag behind a fresh leader, and
        // a 10008 from here would race that leader's own answer).
        let follows = lock(&self.streams)
            .get(&(account.to_owned(), stream.to_owned()))
            .is_some_and(|g| g.group.raft().metrics().borrow().current_leader.is_some());
        if follows {
            return false;
        }
        lock(&self.led)
            .get(&group)
            .is_none_or(|t| t.elapsed() >= LEADERLESS)
    }

    pub(super) fn origin(&self, req: &ApiRequest, reply: &str) -> Origin {
        Origin {
            request: Request {
                account: req.account.clone(),
                server: self.name.clone(),
                subject: req.subject.clone(),
                reply: reply.to_owned(),
            },
            cluster: self.cluster_name.clone(),
            alternates: Vec::new(),
        }
    }

    /// `before`: the account's API counts before this request.
    fn meta_op(
        self: &Arc<Self>,
        op: &ApiOp,
        req: &ApiRequest,
        reply: &str,
        before: super::counters::Counts,
    ) {
        let account = req.account.as_str();
        let now = self.now();
        let r: Result<Option<Value>, ApiError> = match op {
            ApiOp::AccountInfo => {
                self.account_info_gathered(account, reply, before);
                Ok(None)
            }
            ApiOp::StreamNames => {
                capi::stream_names(&lock(&self.meta_state), account, &req.payload).map(Some)
            }
            ApiOp::StreamList => {
                let page = capi::stream_list_page(&lock(&self.meta_state), account, &req.payload);
                page.map(|page| {
                    self.list_streams(account, page, reply);
                    None
                })
            }
            ApiOp::StreamCreate(name) => self.propose_create(name, req, reply, now),
            ApiOp::StreamUpdate(name) => self.propose_update(name, req, reply),
            ApiOp::StreamDelete(name) => {
                let origin = self.origin(req, reply);
                let p = lock(&self.meta_state).propose_stream_delete(name, &origin);
                p.map(|p| self.submit_meta(p, op.clone(), account, reply))
            }
            ApiOp::ConsumerCreate {
                stream,
                name,
                filter,
            } => self.propose_consumer(stream, name.as_deref(), filter.as_deref(), req, reply, now),
            ApiOp::ConsumerDelete(stream, consumer) => {
                let origin = self.origin(req, reply);
                let p = lock(&self.meta_state).propose_consumer_delete(stream, consumer, &origin);
                p.map(|p| self.submit_meta(p, op.clone(), account, reply))
            }
            ApiOp::ConsumerNames(stream) => {
                capi::consumer_names(&lock(&self.meta_state), account, stream, &req.payload)
                    .map(Some)
            }
            ApiOp::ConsumerList(stream) => {
                let page = capi::consumer_list_page(
                    &lock(&self.meta_state),
                    account,
                    stream,
                    &req.payload,
                );
                page.map(|page| {
                    self.list_consumers(account, stream, page, reply);
                    None
                })
            }
            _ => Ok(None),
        };
        match r {
            Ok(Some(v)) => self.answer(account, reply, &op.body(Ok(v))),
            Ok(None) => {}
            Err(e) => self.answer(account, reply, &op.body(Err(e))),
        }
    }

    fn propose_create(
        self: &Arc<Self>,
        name: &str,
        req: &ApiRequest,
        reply: &str,
        now: u64,
    ) -> Result<Option<Value>, ApiError> {
        let cfg = capi::request_config(name, &req.payload, true)?;
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
            meta.propose_stream_create(cfg, &origin, &view, max_streams, now, &mut rng)?
        };
        Ok(self.submit_meta(p, ApiOp::StreamCreate(name.to_owned()), &req.account, reply))
    }

    fn propose_consumer(
        self: &Arc<Self>,
        stream: &str,
        name: Option<&str>,
        filter: Option<&str>,
        req: &ApiRequest,
        reply: &str,
        now: u64,
    ) -> Result<Option<Value>, ApiError> {
        let scfg = lock(&self.meta_state)
            .stream(&req.account, stream)
            .map(|r| r.assignment.config.clone())
            .ok_or_else(err::stream_not_found)?;
        let ephemeral = || {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            let mut rng = lock(&self.rng);
            (0..8)
                .map(|_| A[rng.below(A.len() as u64) as usize] as char)
                .collect::<String>()
        };
        let (cname, cfg, action) =
            capi::consumer_request(name, filter, &req.payload, &scfg, ephemeral)?;
        // Whether the existing consumer's deliver subject has a listener anywhere (the
        // account's sublist holds the routed interest too).
        let old_deliver = lock(&self.meta_state)
            .stream(&req.account, stream)
            .and_then(|r| r.consumers.get(&cname))
            .and_then(|ca| ca.config.deliver_subject.clone());
        let bound = old_deliver.is_some_and(|d| {
            self.srv
                .upgrade()
                .and_then(|s| s.lookup_account(&req.account))
                .is_some_and(|acc| acc.sublist.has_interest(d.as_bytes()))
        });
        let view = self.placement_view();
        let origin = self.origin(req, reply);
        let p = {
            let meta = lock(&self.meta_state);
            let mut rng = lock(&self.rng);
            meta.propose_consumer_create(
                stream, &cname, cfg, &action, &origin, &view, now, bound, &mut rng,
            )?
        };
        let op = ApiOp::ConsumerCreate {
            stream: stream.to_owned(),
            name: name.map(str::to_owned),
            filter: filter.map(str::to_owned),
        };
        Ok(self.submit_meta(p, op, &req.account, reply))
    }

    fn propose_update(
        self: &Arc<Self>,
        name: &str,
        req: &ApiRequest,
        reply: &str,
    ) -> Result<Option<Value>, ApiError> {
        let cfg = capi::request_config(name, &req.payload, false)?;
        let view = self.placement_view();
        let origin = self.origin(req, reply);
        let p = {
            let meta = lock(&self.meta_state);
            let mut rng = lock(&self.rng);
            meta.propose_stream_update(cfg, &origin, &view, &mut rng)?
        };
        Ok(self.submit_meta(p, ApiOp::StreamUpdate(name.to_owned()), &req.account, reply))
    }

    /// Writes a proposal to the meta group (the answer follows its apply), or answers an
    /// unchanged one at once.
    pub(super) fn submit_meta(
        self: &Arc<Self>,
        p: Proposal,
        op: ApiOp,
        account: &str,
        reply: &str,
    ) -> Option<Value> {
        match p {
            Proposal::Unchanged(sa) => Some(self.stream_info(&sa, self.now())),
            Proposal::Propose(entry) => {
                let raft = self.meta.raft().clone();
                let c = Arc::clone(self);
                let (account, reply) = (account.to_owned(), reply.to_owned());
                tokio::spawn(async move {
                    if let Err(e) = raft.client_write(Command(entry.encode())).await {
                        tracing::warn!("JetStream: meta proposal failed: {e}");
                        let body = op.body(Err(err::cluster_not_avail()));
                        c.answer(&account, &reply, &body);
                    }
                });
                None
            }
        }
    }

    /// The server's JetStream domain, if any.
    pub(super) fn domain(&self) -> Option<String> {
        let srv = self.srv.upgrade()?;
        let d = srv.opts().jetstream.as_ref()?.domain.clone();
        d
    }

    /// The account's limits as configured.
    pub(super) fn limits(&self, account: &str) -> natsd_core::jetstream::limits::AccountLimits {
        self.srv
            .upgrade()
            .and_then(|s| lock(&s.js.limits).get(account).copied())
            .unwrap_or_default()
    }

    /// Every JetStream server heard from, as placement sees it.
    pub(super) fn placement_view(&self) -> Cluster {
        let mut me = ServerInfo {
            name: self.name.clone(),
            id: peer_id(&self.name),
            cluster: self.cluster_name.clone(),
            ..ServerInfo::default()
        };
        self.placed().fill(&mut me);
        let mut servers = vec![me];
        let meta = lock(&self.meta_state);
        for p in lock(&self.peers).values() {
            let id = peer_id(&p.hb.name);
            if meta.is_removed(&id) {
                continue;
            }
            let mut info = ServerInfo {
                name: p.hb.name.clone(),
                id,
                cluster: self.cluster_name.clone(),
                offline: p.last.elapsed() >= OFFLINE_AFTER,
                ..ServerInfo::default()
            };
            p.hb.placed.fill(&mut info);
            servers.push(info);
        }
        super::usage::reserve_assigned(&meta, &mut servers);
        let mut streams_on = BTreeMap::new();
        for r in meta.all_streams() {
            for p in &r.assignment.group.peers {
                *streams_on.entry(p.clone()).or_insert(0) += 1;
            }
        }
        Cluster {
            servers,
            streams_on,
            clustered: true,
            has_leader: true,
        }
    }

    /// The name and node id of the server with peer id `pid`, if heard from.
    pub(super) fn server_of(&self, pid: &str) -> Option<(NodeId, NodeInfo)> {
        if peer_id(&self.name) == pid {
            return Some((self.node, self.node_info(&self.name, &self.server_id)));
        }
        lock(&self.peers)
            .iter()
            .find(|(_, p)| peer_id(&p.hb.name) == pid)
            .map(|(id, p)| (*id, self.node_info(&p.hb.name, &p.hb.server_id)))
    }

    /// A stream's info: from this server's replica when it holds one, else from the
    /// assignment.
    pub(super) fn stream_info(&self, sa: &StreamAssignment, now: u64) -> Value {
        let g = lock(&self.streams)
            .get(&(sa.account.clone(), sa.config.name.clone()))
            .cloned();
        match g {
            Some(g) => {
                let cluster = self.group_cluster_info(&g, now);
                let r = lock(&g.replica);
                match r.rs() {
                    Some(rs) => capi::replica_info(rs, &cluster, now),
                    None => capi::assigned_info(sa, &cluster, now),
                }
            }
            None => {
                let cluster = ClusterInfo {
                    name: self.cluster_name.clone(),
                    ..ClusterInfo::default()
                };
                capi::assigned_info(sa, &cluster, now)
            }
        }
    }

    /// A group's `cluster` block as this server sees it (the leader knows each peer's lag).
    pub(super) fn group_cluster_info(&self, g: &StreamGroup, now: u64) -> ClusterInfo {
        let m = g.group.raft().metrics().borrow().clone();
        let membership = m.membership_config.membership().clone();
        let leader = m
            .current_leader
            .and_then(|id| membership.get_node(&id))
            .map(|n| n.name.clone())
            .unwrap_or_default();
        let last = m.last_log_index.unwrap_or(0);
        let matched = m.replication.clone().unwrap_or_default();
        let repairing = self.repairing_peers(g.group.name());
        let peers_seen = lock(&self.peers);
        let peers: Vec<PeerState> = membership
            .nodes()
            .map(|(id, n)| {
                let seen = peers_seen.get(id).map(|p| p.last.elapsed());
                let lag = matched
                    .get(id)
                    .map(|l| last.saturating_sub(l.map_or(0, |l| l.index)))
                    .unwrap_or(0);
                let ago = seen.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
                PeerState {
                    id: peer_id(&n.name),
                    name: Some(n.name.clone()),
                    offline: *id != self.node && seen.is_none_or(|d| d >= OFFLINE_AFTER),
                    // A replica being repaired is not current, whatever its log holds.
                    current: lag == 0 && !repairing.contains(id),
                    last_seen: if *id == self.node {
                        now
                    } else {
                        now.saturating_sub(ago)
                    },
                    lag,
                }
            })
            .collect();
        let leader_id = if leader.is_empty() {
            String::new()
        } else {
            peer_id(&leader)
        };
        ClusterInfo::build(&self.cluster_name, &leader, &leader_id, &peers, now)
    }

    fn stream_op(
        self: &Arc<Self>,
        g: &Arc<StreamGroup>,
        op: &ApiOp,
        req: &ApiRequest,
        reply: &str,
    ) {
        let now = self.now();
        let kind = op.response_type();
        let r: Result<Option<Value>, ApiError> = match op {
            ApiOp::StreamInfo(_) => Ok(self.leader_stream_info(g, now)),
            ApiOp::MsgGet(_) => {
                let r = lock(&g.replica);
                r.rs().map(|rs| capi::msg_get(rs, &req.payload)).transpose()
            }
            ApiOp::MsgDelete(_) => {
                let seq = {
                    let r = lock(&g.replica);
                    r.rs()
                        .map(|rs| capi::msg_delete_seq(rs, &req.payload))
                        .transpose()
                };
                seq.map(|seq| {
                    if let Some(seq) = seq {
                        let reply = reply.to_owned();
                        g.submit(Op::Delete { seq, reply, kind });
                    }
                    None
                })
            }
            ApiOp::Purge(_) => {
                let pr = {
                    let r = lock(&g.replica);
                    r.rs()
                        .map(|rs| capi::purge_request(rs, &req.payload))
                        .transpose()
                };
                pr.map(|pr| {
                    if let Some(req) = pr {
                        let reply = reply.to_owned();
                        g.submit(Op::Purge {
                            req: Box::new(req),
                            reply,
                            kind,
                        });
                    }
                    None
                })
            }
            ApiOp::ConsumerInfo(stream, consumer) => {
                // A consumer the meta group removed is gone even before this leader's next
                // tick takes it out of the replica.
                let assigned = lock(&self.meta_state)
                    .stream(&req.account, stream)
                    .is_some_and(|r| r.consumers.contains_key(consumer));
                if !assigned {
                    let body = op.body(Err(err::consumer_not_found()));
                    self.answer(&req.account, reply, &body);
                    return;
                }
                let cluster =
                    serde_json::to_value(self.group_cluster_info(g, now)).unwrap_or_default();
                let mut expired = Vec::new();
                let v = {
                    let mut r = lock(&g.replica);
                    r.rs_mut()
                        .and_then(|rs| consumers::info(rs, consumer, cluster, now, &mut expired))
                };
                if let Some(acc) = self
                    .srv
                    .upgrade()
                    .and_then(|s| s.lookup_account(&req.account))
                {
                    consumers::emit(&acc, expired);
                }
                v.map(Some).ok_or_else(err::consumer_not_found)
            }
            ApiOp::DirectGet { last_by_subj, .. } => {
                let d = {
                    let r = lock(&g.replica);
                    r.rs().and_then(|rs| {
                        capi::direct_get(rs, last_by_subj.as_deref(), &req.payload, reply)
                    })
                };
                let acc = self
                    .srv
                    .upgrade()
                    .and_then(|s| s.lookup_account(&req.account));
                if let (Some(d), Some(acc)) = (d, acc) {
                    consumers::emit(&acc, vec![d]);
                }
                return;
            }
            ApiOp::MsgNext(_, consumer) => {
                g.submit(Op::Next {
                    consumer: consumer.clone(),
                    reply: reply.to_owned(),
                    payload: req.payload.clone(),
                });
                return;
            }
            ApiOp::StreamStepdown(_) => {
                let body = match self.stream_stepdown(g) {
                    Ok(()) => ClusterOp::StreamLeaderStepdown.ok(),
                    Err(e) => ClusterOp::StreamLeaderStepdown.fail(e),
                };
                let v = serde_json::to_value(body).unwrap_or_default();
                self.answer(&req.account, reply, &v);
                return;
            }
            ApiOp::ConsumerStepdown(_, consumer) => {
                // The consumer's leader is the stream's: its group steps down (see the
                // `consumers` module docs).
                let known = lock(&g.replica)
                    .rs()
                    .is_some_and(|rs| rs.consumers.contains_key(consumer));
                let op = ClusterOp::ConsumerLeaderStepdown;
                let body = if known {
                    match self.stream_stepdown(g) {
                        Ok(()) => op.ok(),
                        Err(e) => op.fail(e),
                    }
                } else {
                    op.fail(err::consumer_not_found())
                };
                let v = serde_json::to_value(body).unwrap_or_default();
                self.answer(&req.account, reply, &v);
                return;
            }
            _ => Ok(None),
        };
        match r {
            Ok(Some(v)) => self.answer(&req.account, reply, &op.body(Ok(v))),
            Ok(None) => {}
            Err(e) => self.answer(&req.account, reply, &op.body(Err(e))),
        }
    }

    /// A stream's info on its leader. The consumer count is the meta group's: a consumer
    /// created or removed there is counted before this leader's next tick brings the replica
    /// in line.
    pub(super) fn leader_stream_info(&self, g: &StreamGroup, now: u64) -> Option<Value> {
        let cluster = self.group_cluster_info(g, now);
        let mut v = {
            let r = lock(&g.replica);
            capi::replica_info(r.rs()?, &cluster, now)
        };
        if let Some(rec) = lock(&self.meta_state).stream(&g.account, &g.name) {
            v["state"]["consumer_count"] = rec.consumers.len().into();
        }
        Some(v)
    }
}
