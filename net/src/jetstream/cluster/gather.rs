//! The meta leader's view of the streams' real state, asked of each stream's leader.
//!
//! Only a stream's leader knows its current state (the meta group records what exists, not
//! what it holds), so the answering meta leader asks each stream's leader with an internal
//! request on [`bus::INFO`] in the system account (Go: the `$JSC.SI` and `$JSC.CI`
//! requests of jsClusteredStreamListRequest and jsClusteredConsumerListRequest), waits for
//! the answers up to [`GATHER`] and then answers the client: STREAM.LIST and CONSUMER.LIST
//! list what came back and name what did not under `"missing"`, as nats-server does;
//! `$JS.API.INFO` sums the bytes each stream's leader holds times the stream's replicas (as
//! nats-server 2.9.10 adds up what every server holds), a stream whose leader did not answer
//! counting nothing, and shows the API counts of [`counters`](super::counters).
//!
//! Every server subscribes [`bus::INFO`]; the one leading the stream named answers (the meta
//! leader asks itself the same way), the others stay silent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use natsd_core::jetstream::cluster::api::{self as capi, ApiOp, ListPage};
use natsd_core::jetstream::cluster::Request;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{bus, consumers, JsCluster};
use crate::server::lock;

/// How long the meta leader waits for the streams' leaders (Go's list requests wait 4s).
pub(super) const GATHER: Duration = Duration::from_secs(4);

/// What the meta leader asks a stream's leader.
#[derive(Debug, Serialize, Deserialize)]
struct InfoRequest {
    account: String,
    stream: String,
    /// The infos of its consumers (`{"consumers": {name: info}}`) rather than the stream's.
    #[serde(default)]
    consumers: bool,
}

impl JsCluster {
    /// On every server: answers an [`InfoRequest`] for a stream this server leads.
    pub(super) fn answer_info(&self, reply: Option<&str>, payload: &[u8]) {
        let Some(reply) = reply else { return };
        let Ok(req) = serde_json::from_slice::<InfoRequest>(payload) else {
            return;
        };
        let g = lock(&self.streams)
            .get(&(req.account.clone(), req.stream.clone()))
            .cloned();
        let Some(g) = g.filter(|g| g.is_leading()) else {
            return;
        };
        let now = self.now();
        let cluster = self.group_cluster_info(&g, now);
        let mut expired = Vec::new();
        let v = {
            let mut r = lock(&g.replica);
            let Some(rs) = r.rs_mut() else { return };
            if req.consumers {
                let cluster = serde_json::to_value(&cluster).unwrap_or_default();
                let names: Vec<String> = rs.consumers.keys().cloned().collect();
                let mut all = serde_json::Map::new();
                for n in names {
                    if let Some(v) = consumers::info(rs, &n, cluster.clone(), now, &mut expired) {
                        all.insert(n, v);
                    }
                }
                json!({ "consumers": all })
            } else {
                drop(r);
                let Some(v) = self.leader_stream_info(&g, now) else {
                    return;
                };
                v
            }
        };
        if let Some(acc) = self
            .srv
            .upgrade()
            .and_then(|s| s.lookup_account(&req.account))
        {
            consumers::emit(&acc, expired);
        }
        self.bus
            .publish(reply, None, Bytes::from(v.to_string().into_bytes()));
    }

    /// What `stream`'s leader answers, or `None` when it did not within [`GATHER`].
    async fn ask_leader(&self, account: &str, stream: &str, consumers: bool) -> Option<Value> {
        let req = InfoRequest {
            account: account.to_owned(),
            stream: stream.to_owned(),
            consumers,
        };
        let body = Bytes::from(serde_json::to_vec(&req).ok()?);
        let answer = self.bus.request(bus::INFO, body, GATHER).await?;
        serde_json::from_slice(&answer).ok()
    }

    /// The infos of `streams` from their leaders, by name (those that answered).
    async fn stream_infos(
        self: &Arc<Self>,
        account: &str,
        streams: &[String],
    ) -> BTreeMap<String, Value> {
        let mut asks = tokio::task::JoinSet::new();
        for s in streams {
            let (c, account, s) = (Arc::clone(self), account.to_owned(), s.clone());
            asks.spawn(async move {
                let v = c.ask_leader(&account, &s, false).await;
                (s, v)
            });
        }
        let mut found = BTreeMap::new();
        while let Some(r) = asks.join_next().await {
            if let Ok((s, Some(v))) = r {
                found.insert(s, v);
            }
        }
        found
    }

    /// STREAM.LIST: answered once the page's leaders answered or [`GATHER`] passed.
    pub(super) fn list_streams(self: &Arc<Self>, account: &str, page: ListPage, reply: &str) {
        let c = Arc::clone(self);
        let (account, reply) = (account.to_owned(), reply.to_owned());
        tokio::spawn(async move {
            let found = c.stream_infos(&account, &page.names).await;
            let v = capi::list_answer("streams", &page, found);
            c.answer(&account, &reply, &ApiOp::StreamList.body(Ok(v)));
        });
    }

    /// CONSUMER.LIST: the stream's leader gives every consumer's info at once.
    pub(super) fn list_consumers(
        self: &Arc<Self>,
        account: &str,
        stream: &str,
        page: ListPage,
        reply: &str,
    ) {
        let c = Arc::clone(self);
        let (account, stream, reply) = (account.to_owned(), stream.to_owned(), reply.to_owned());
        tokio::spawn(async move {
            let all = c.ask_leader(&account, &stream, true).await;
            let found: BTreeMap<String, Value> = match all {
                Some(Value::Object(mut m)) => match m.remove("consumers") {
                    Some(Value::Object(cs)) => cs.into_iter().collect(),
                    _ => BTreeMap::new(),
                },
                _ => BTreeMap::new(),
            };
            let v = capi::list_answer("consumers", &page, found);
            let op = ApiOp::ConsumerList(stream);
            c.answer(&account, &reply, &op.body(Ok(v)));
        });
    }

    /// `$JS.API.INFO`: the account's usage summed over its streams' leaders.
    pub(super) fn account_info_gathered(
        self: &Arc<Self>,
        account: &str,
        reply: &str,
        before: super::counters::Counts,
    ) {
        let names: Vec<String> = lock(&self.meta_state)
            .streams(account)
            .map(|r| r.assignment.config.name.clone())
            .collect();
        let c = Arc::clone(self);
        let (account, reply) = (account.to_owned(), reply.to_owned());
        tokio::spawn(async move {
            let found = c.stream_infos(&account, &names).await;
            let (mut memory, mut storage) = (0, 0);
            for v in found.values() {
                let replicas = v["config"]["num_replicas"].as_u64().unwrap_or(1).max(1);
                let bytes = v["state"]["bytes"].as_u64().unwrap_or(0) * replicas;
                if v["config"]["storage"] == "memory" {
                    memory += bytes;
                } else {
                    storage += bytes;
                }
            }
            let api = (before.total, c.api_errors(&account));
            let mut v = {
                let meta = lock(&c.meta_state);
                capi::account_info(&meta, &account, c.limits(&account), memory, storage, api)
            };
            if let Some(d) = c.domain() {
                v["domain"] = json!(d);
            }
            c.answer(&account, &reply, &ApiOp::AccountInfo.body(Ok(v)));
        });
    }

    /// The API requests this server heard and the errors it answered, every account (for
    /// `/jsz`, whose `api` is the server's own).
    pub(crate) fn api_counts(&self) -> (u64, u64) {
        let c = self.api.sum();
        (c.total, c.errors)
    }

    /// `/jsz` stream details of the replicas this server holds, by account: each as this
    /// replica sees itself (name, created, state, config) with its group's `cluster` block.
    /// A replica entry there carries `trouble` while that replica is out of step and being
    /// repaired: this server's reason for its own, "being repaired" for a peer whose
    /// heartbeat says so. (natsd's own field: nats-server shows no such state.)
    pub(crate) fn jsz_streams(&self) -> Vec<(String, Value)> {
        let now = self.now();
        let groups: Vec<_> = lock(&self.streams).values().cloned().collect();
        let mut out = Vec::new();
        for g in groups {
            let cluster = self.group_cluster_info(&g, now);
            let (mut d, mine) = {
                let r = lock(&g.replica);
                let Some(rs) = r.rs() else { continue };
                (capi::replica_info(rs, &cluster, now), r.trouble.clone())
            };
            let m = g.group.raft().metrics().borrow().clone();
            let membership = m.membership_config.membership().clone();
            let repairing: Vec<String> = self
                .repairing_peers(g.group.name())
                .iter()
                .filter_map(|id| membership.get_node(id).map(|n| n.name.clone()))
                .collect();
            if let Some(Value::Array(rs)) = d.get_mut("cluster").and_then(|c| c.get_mut("replicas"))
            {
                for r in rs.iter_mut() {
                    let name = r["name"].as_str().unwrap_or_default().to_owned();
                    let trouble = if name == self.name {
                        mine.clone()
                    } else {
                        repairing
                            .contains(&name)
                            .then(|| "being repaired".to_owned())
                    };
                    if let Some(t) = trouble {
                        r["trouble"] = json!(t);
                    }
                }
            }
            if let Value::Object(o) = &mut d {
                o.remove("ts");
                o.insert("name".into(), json!(g.name));
            }
            out.push((g.account.clone(), d));
        }
        out.sort_by(|a, b| (&a.0, a.1["name"].as_str()).cmp(&(&b.0, b.1["name"].as_str())));
        out
    }

    /// The API errors of `account` every server answered: this one's and what each peer's
    /// last heartbeat said.
    fn api_errors(&self, account: &str) -> u64 {
        let mine = self.api.errors().get(account).copied().unwrap_or(0);
        let theirs: u64 = lock(&self.peers)
            .values()
            .filter_map(|p| p.hb.api_errors.get(account))
            .sum();
        mine + theirs
    }

    /// A consumer delete the meta group applied: answered once the stream's leader no longer
    /// lists the consumer (it drops it on its next tick), or after [`GATHER`], so that a
    /// CONSUMER.INFO right after the answer finds it gone (Go: the consumer's leader answers
    /// once it stopped it).
    pub(super) fn answer_consumer_delete(
        self: &Arc<Self>,
        request: &Request,
        stream: &str,
        consumer: &str,
    ) {
        let c = Arc::clone(self);
        let (request, stream, consumer) = (request.clone(), stream.to_owned(), consumer.to_owned());
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + GATHER;
            while tokio::time::Instant::now() < deadline {
                let all = c.ask_leader(&request.account, &stream, true).await;
                let still = all.is_some_and(|v| v["consumers"].get(&consumer).is_some());
                if !still {
                    break;
                }
                // The leader drops it on its next tick.
                tokio::time::sleep(super::LEADER_TICK).await;
            }
            let op = ApiOp::ConsumerDelete(stream, consumer);
            let body = op.body(Ok(json!({"success": true})));
            c.answer(&request.account, &request.reply, &body);
        });
    }
}
