//! The meta group's effects on this server: stream replicas started, updated and stopped,
//! and the answers to the requests the meta entries carried (Go: jetstream_cluster.go
//! processStreamAssignment, processClusterCreateStream and their responses).
//!
//! A new stream's group is initialised by its first peer once every member was heard from;
//! its create is answered by the new stream's leader once it leads (subscribed to the stream's
//! subjects), with the stream's info, as in nats-server. Updates and deletes are answered by
//! the meta leader that proposed them, once their entry is applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use natsd_core::jetstream::cluster::api::ApiOp;
use natsd_core::jetstream::cluster::shapes::ClusterRequest;
use natsd_core::jetstream::cluster::{Answer, MetaEffect, Request, StreamAssignment};
use serde_json::json;

use super::replicas::{self, Op, StreamGroup};
use super::{consumers, peer_id, repair, JsCluster};
use crate::server::lock;

impl JsCluster {
    /// Applies the meta group's effects on this server, in order.
    pub(super) async fn effects(self: &Arc<Self>, fx: Vec<MetaEffect>) {
        for e in fx {
            match e {
                MetaEffect::StartStream(sa) => self.start_stream(sa).await,
                MetaEffect::UpdateStream(sa) => {
                    let g = lock(&self.streams)
                        .get(&(sa.account.clone(), sa.config.name.clone()))
                        .cloned();
                    if let Some(g) = g {
                        let changed = lock(&g.assignment).config != sa.config;
                        *lock(&g.assignment) = sa.clone();
                        if changed {
                            g.submit(Op::Config(Box::new(sa.config.clone())));
                        }
                    }
                }
                MetaEffect::StopStream {
                    account,
                    stream,
                    delete,
                } => {
                    let key = (account, stream);
                    // This server removed from a stream that lives on: it leaves once its
                    // group let it go (see `members`).
                    let lives_on = lock(&self.meta_state)
                        .stream(&key.0, &key.1)
                        .map(|r| r.assignment.clone())
                        .filter(|sa| !sa.group.has(&peer_id(&self.name)));
                    if let (true, Some(sa)) = (delete, lives_on) {
                        let g = lock(&self.streams).get(&key).cloned();
                        if let Some(g) = g {
                            *lock(&g.assignment) = sa;
                            self.leave(g);
                        }
                        continue;
                    }
                    let g = lock(&self.streams).remove(&key);
                    if let Some(g) = g {
                        g.stop(&self.srv);
                        self.hub.close_group(g.group.name()).await;
                        if delete {
                            replicas::delete_files(&g.dir);
                        }
                    }
                }
                MetaEffect::Respond { request, answer } => self.respond(&request, answer),
                MetaEffect::ServerRemoved => tracing::warn!(
                    "JetStream cluster: this server was removed from the meta group (SERVER.REMOVE); its replicas move to other servers"
                ),
                other => tracing::debug!(?other, "JetStream meta effect not acted on yet"),
            }
        }
    }

    fn respond(self: &Arc<Self>, request: &Request, answer: Answer) {
        if request.server != self.name {
            return;
        }
        let Some(rest) = request.subject.strip_prefix("$JS.API.") else {
            return;
        };
        if let Some(cr) = ClusterRequest::parse(rest) {
            let op = cr.op();
            let body = match answer {
                Answer::Ok => op.ok(),
                Answer::Err(e) => op.fail(e),
            };
            self.answer_cluster(&request.account, &request.reply, &body);
            return;
        }
        if rest.starts_with("STREAM.RESTORE.") {
            // The restored stream's leader answers once it leads (see `restore`).
            if let Answer::Err(e) = answer {
                self.answer_restore_error(request, &e);
            }
            return;
        }
        let op = ApiOp::parse(rest);
        let now = self.now();
        let body = match answer {
            Answer::Err(e) => op.body(Err(e)),
            Answer::Ok => match &op {
                ApiOp::ConsumerCreate { stream, .. } => {
                    // The stream's leader answers once it created the consumer.
                    let _ = stream;
                    return;
                }
                ApiOp::StreamCreate(name) | ApiOp::StreamUpdate(name) => {
                    let sa = lock(&self.meta_state)
                        .stream(&request.account, name)
                        .map(|r| r.assignment.clone());
                    let Some(sa) = sa else { return };
                    // A new stream is answered by its first peer once it has a leader.
                    let is_new = matches!(op, ApiOp::StreamCreate(_))
                        && sa.request.as_ref() == Some(request);
                    if is_new {
                        return;
                    }
                    // The replicas take the new config a moment later, from their log.
                    let mut info = self.stream_info(&sa, now);
                    info["config"] = serde_json::to_value(&sa.config).unwrap_or_default();
                    op.body(Ok(info))
                }
                ApiOp::ConsumerDelete(stream, consumer) => {
                    // Answered once the stream's leader dropped it (see `gather`).
                    self.answer_consumer_delete(request, stream, consumer);
                    return;
                }
                _ => op.body(Ok(json!({"success": true}))),
            },
        };
        self.answer(&request.account, &request.reply, &body);
    }

    async fn start_stream(self: &Arc<Self>, sa: StreamAssignment) {
        let key = (sa.account.clone(), sa.config.name.clone());
        if let Some(g) = lock(&self.streams).get(&key) {
            *lock(&g.assignment) = sa;
            return;
        }
        let g = match StreamGroup::open(&self.hub, &self.raft_root, &sa).await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(
                    "JetStream: cannot open the replica of {} > {}: {e}",
                    sa.account,
                    sa.config.name
                );
                return;
            }
        };
        lock(&self.streams).insert(key, Arc::clone(&g));
        let c = Arc::downgrade(self);
        let on_lead = Box::new(move |g: &Arc<StreamGroup>| {
            if let Some(c) = c.upgrade() {
                c.answer_create(g);
            }
        });
        tokio::spawn(Arc::clone(&g).watch(self.srv.clone(), on_lead));
        tokio::spawn(repair::run(
            Arc::clone(&g),
            Arc::clone(&self.bus),
            self.srv.clone(),
        ));
        // Only the creation's first peer initialises; a peer added later (a scale up, a
        // replacement) joins through the group's leader (see `members`).
        let created = sa.request.as_ref().is_some_and(|r| {
            r.subject.starts_with("$JS.API.STREAM.CREATE.")
                || r.subject.starts_with("$JS.API.STREAM.RESTORE.")
        });
        if created && sa.group.peers.first() == Some(&peer_id(&self.name)) {
            let c = Arc::clone(self);
            tokio::spawn(async move { c.initialize_stream(g, sa).await });
        }
    }

    /// The first peer initialises a new group once every member was heard from.
    async fn initialize_stream(self: Arc<Self>, g: Arc<StreamGroup>, sa: StreamAssignment) {
        let mut members = BTreeMap::new();
        for _ in 0..replicas::INIT_TRIES {
            members = sa
                .group
                .peers
                .iter()
                .filter_map(|p| self.server_of(p))
                .collect();
            if members.len() == sa.group.peers.len() {
                break;
            }
            tokio::time::sleep(replicas::RETRY).await;
        }
        if members.len() != sa.group.peers.len() {
            tracing::error!("JetStream: members of {} never heard from", g.group.name());
            return;
        }
        if let Err(e) = g.group.raft().initialize(members).await {
            // A restart replays the assignment: the group exists already.
            tracing::debug!("JetStream: {} initialised before: {e}", g.group.name());
        }
    }

    /// A new leader of a stream nothing was stored in yet answers the create that asked for
    /// it (Go: the new stream's leader answers), now that it takes publishes. A repeat (a
    /// later leader of a still empty stream) goes to an inbox nobody listens on any more.
    fn answer_create(self: &Arc<Self>, g: &Arc<StreamGroup>) {
        let sa = lock(&g.assignment).clone();
        let Some(request) = sa.request.clone() else {
            return;
        };
        let fresh = lock(&g.replica)
            .rs()
            .is_some_and(|rs| rs.stream.store.state().last_seq == 0 && rs.consumers.is_empty());
        if !fresh || !g.first_lead() {
            return;
        }
        if request.subject.starts_with("$JS.API.STREAM.RESTORE.") {
            // A restore's stream: its leader takes the upload (see `restore`).
            self.start_restore(g, &request);
            return;
        }
        let now = self.now();
        let mut info = self.stream_info(&sa, now);
        info["did_create"] = json!(true);
        let op = ApiOp::StreamCreate(sa.config.name.clone());
        self.answer(&request.account, &request.reply, &op.body(Ok(info)));
    }

    /// Every leading replica gets the meta group's consumers of its stream and runs its
    /// consumers' timers (see `consumers`).
    pub(super) fn tick_leaders(&self) {
        let groups: Vec<Arc<StreamGroup>> = lock(&self.streams)
            .values()
            .filter(|g| g.is_leading())
            .cloned()
            .collect();
        for g in groups {
            let assigned = lock(&self.meta_state)
                .stream(&g.account, &g.name)
                .map(|r| r.consumers.values().cloned().collect())
                .unwrap_or_default();
            g.submit(Op::Tick(Box::new(consumers::Tick { assigned })));
        }
    }

    /// Removes every stream group's leadership subscriptions (at stop).
    pub(super) fn stop_streams(&self) {
        for g in lock(&self.streams).values() {
            g.stop(&self.srv);
        }
    }

    /// The groups whose replica here is in trouble (being repaired).
    pub(super) fn repairing_groups(&self) -> Vec<String> {
        lock(&self.streams)
            .values()
            .filter(|g| g.trouble().is_some())
            .map(|g| g.group.name().to_owned())
            .collect()
    }

    /// Why a stream replica makes this server unhealthy, if one does.
    pub(super) fn stream_trouble(&self) -> Option<String> {
        lock(&self.streams).values().find_map(|g| {
            g.trouble().map(|why| {
                format!(
                    "JetStream stream {} in account {} is being repaired: {why}",
                    g.name, g.account
                )
            })
        })
    }
}
