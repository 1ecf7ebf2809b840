//! The meta group: which streams and consumers exist in the cluster, where each one is placed,
//! and what applying an entry means for this server (Go: server/jetstream_cluster.go,
//! `streamAssignment`, `consumerAssignment`, `raftGroup`, applyMetaEntries).
//!
//! Only the meta leader decides (names free, placement, configs valid); an entry carries the
//! decision whole, and [`MetaState::apply`] never re-decides: it records the entry and says,
//! as [`MetaEffect`]s, what this server must do locally. The same entries applied in the same
//! order give the same state on every server; the effects differ only by which peer a server
//! is (its own peer id, a constant of the machine).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::codec::{self, DecodeError, Kind};
use crate::jetstream::api::{err, ApiError, ConsumerConfig, StreamConfig};
use crate::jetstream::store::UnixNanos;

/// A Raft group housing one stream or consumer (Go: `raftGroup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftGroup {
    /// Group name (`S-R3F-xxxxxxxx` for a stream, `C-…` for a consumer).
    pub name: String,
    /// Peer ids of its members.
    pub peers: Vec<String>,
    /// `file` or `memory`.
    #[serde(rename = "store")]
    pub storage: String,
    /// The cluster it lives in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// The peer that should lead it, when the leader chose one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub preferred: String,
}

impl RaftGroup {
    /// Is `peer` a member?
    pub fn has(&self, peer: &str) -> bool {
        self.peers.iter().any(|p| p == peer)
    }
}

/// The API request an entry answers (Go: the assignment's `Client`, `Subject`, `Reply`): the
/// server that holds the client's request answers it once the entry is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The account that asked.
    pub account: String,
    /// The server the request came in on (its name), which answers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server: String,
    /// The API subject.
    pub subject: String,
    /// Where the answer goes.
    pub reply: String,
}

/// A stream placed in the cluster (Go: `streamAssignment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamAssignment {
    /// The owning account.
    pub account: String,
    /// When the meta leader created it (its clock, carried so every server agrees).
    pub created: UnixNanos,
    /// The config, defaults filled in and checked by the leader.
    #[serde(rename = "stream")]
    pub config: StreamConfig,
    /// Its Raft group.
    pub group: RaftGroup,
    /// The request that asked for it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
}

impl StreamAssignment {
    /// The replicas its config asks for (0 counts as 1).
    pub fn replicas(&self) -> usize {
        usize::try_from(self.config.num_replicas.max(1)).unwrap_or(1)
    }

    /// Is the stream moving? Its group then holds more peers than its replicas: the old
    /// peers, then the new ones (see `propose_stream_update`).
    pub fn is_moving(&self) -> bool {
        self.group.peers.len() > self.replicas()
    }
}

/// A consumer placed in the cluster (Go: `consumerAssignment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerAssignment {
    /// The owning account.
    pub account: String,
    /// Its stream.
    pub stream: String,
    /// Its name (the leader names ephemerals before proposing).
    pub name: String,
    /// When the meta leader created it.
    pub created: UnixNanos,
    /// The config, defaults filled in.
    #[serde(rename = "consumer")]
    pub config: ConsumerConfig,
    /// Its Raft group (the stream's peers, or a subset of them).
    pub group: RaftGroup,
    /// The request that asked for it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
}

/// What the meta leader proposes (Go: `entryOp` assign/update/remove ops, plus the meta
/// group's peer removal). Every variant carries everything a replica needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MetaEntry {
    /// A new stream.
    AssignStream(StreamAssignment),
    /// A changed config or peer set (scale up/down, a replaced peer) of a known stream.
    UpdateStream(StreamAssignment),
    /// A stream removed by request: the only way a stream's data is deleted.
    RemoveStream {
        /// Account.
        account: String,
        /// Stream.
        stream: String,
        /// Who asked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<Request>,
    },
    /// A new or updated consumer.
    AssignConsumer(ConsumerAssignment),
    /// A consumer removed by request (or an ephemeral whose inactivity the leader saw).
    RemoveConsumer {
        /// Account.
        account: String,
        /// Stream.
        stream: String,
        /// Consumer.
        consumer: String,
        /// Who asked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<Request>,
    },
    /// `$JS.API.STREAM.PEER.REMOVE`: `peer` leaves the stream's group (and its consumers'),
    /// `replacement` (chosen by the leader's placement) joins in its place when there is one.
    RemovePeer {
        /// Account.
        account: String,
        /// Stream.
        stream: String,
        /// Peer id leaving.
        peer: String,
        /// Peer id joining instead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replacement: Option<String>,
        /// Who asked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<Request>,
    },
    /// `$JS.API.SERVER.REMOVE`: the server leaves the meta group for good; the leader moves
    /// its assets with later [`MetaEntry::UpdateStream`] entries.
    RemoveServer {
        /// Peer id.
        peer: String,
        /// Who asked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<Request>,
    },
}

impl MetaEntry {
    /// The entry's bytes for the log (envelope + JSON; see `codec`).
    pub fn encode(&self) -> Vec<u8> {
        codec::seal_json(Kind::MetaEntry, self)
    }

    /// Parses an entry; an unknown version or a damaged body is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::open_json(Kind::MetaEntry, bytes)
    }
}

/// The answer to the request an entry carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Done (create, update, delete, peer or server removal).
    Ok,
    /// Refused when applied (the leader's view was stale): the API error to send.
    Err(ApiError),
}

/// What this server must do after an entry (or a snapshot) was applied. Emitted in a fixed
/// order: at most one per asset, streams before their consumers, then the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetaEffect {
    /// Start a replica of a stream this server is now a peer of.
    StartStream(StreamAssignment),
    /// A stream this server hosts changed config or peers: update its replica.
    UpdateStream(StreamAssignment),
    /// Stop this server's replica of a stream. `delete` is true only for a removal entry
    /// (stream removed, or this peer removed from its group); otherwise (a snapshot no longer
    /// lists it) the data stays on disk: nothing is deleted because it looks orphaned.
    StopStream {
        /// Account.
        account: String,
        /// Stream.
        stream: String,
        /// Remove its data too.
        delete: bool,
    },
    /// Start a replica of a consumer.
    StartConsumer(ConsumerAssignment),
    /// A consumer this server hosts changed config or peers.
    UpdateConsumer(ConsumerAssignment),
    /// Stop this server's replica of a consumer (`delete` as for streams).
    StopConsumer {
        /// Account.
        account: String,
        /// Stream.
        stream: String,
        /// Consumer.
        consumer: String,
        /// Remove its state too.
        delete: bool,
    },
    /// This server was removed from the meta group.
    ServerRemoved,
    /// Answer the request an entry carried; only the server named in it sends this. For a
    /// create, nats-server has the new stream's leader answer with the stream's info: the
    /// shell may hold this until that replica reports its leader.
    Respond {
        /// The request.
        request: Request,
        /// The outcome.
        answer: Answer,
    },
}

/// One stream and its consumers, as the meta group knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// The assignment.
    pub assignment: StreamAssignment,
    /// Its consumers by name.
    pub consumers: BTreeMap<String, ConsumerAssignment>,
}

/// Everything the meta group agreed on (what a snapshot holds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaSnapshot {
    /// The last log index applied.
    pub applied: u64,
    /// Streams by account, then name.
    pub streams: BTreeMap<String, BTreeMap<String, StreamRecord>>,
    /// Peers removed from the meta group (never placed on again).
    pub removed: BTreeSet<String>,
}

/// The meta group's state machine on one server.
#[derive(Debug, Clone)]
pub struct MetaState {
    /// This server's peer id.
    me: String,
    s: MetaSnapshot,
}

impl MetaState {
    /// An empty state for the server whose peer id is `me`.
    pub fn new(me: impl Into<String>) -> Self {
        Self {
            me: me.into(),
            s: MetaSnapshot::default(),
        }
    }

    /// The last log index applied.
    pub fn applied(&self) -> u64 {
        self.s.applied
    }

    /// A stream's record.
    pub fn stream(&self, account: &str, stream: &str) -> Option<&StreamRecord> {
        self.s.streams.get(account)?.get(stream)
    }

    /// The streams of an account, by name.
    pub fn streams(&self, account: &str) -> impl Iterator<Item = &StreamRecord> {
        self.s
            .streams
            .get(account)
            .into_iter()
            .flat_map(|m| m.values())
    }

    /// Every stream, by account then name.
    pub fn all_streams(&self) -> impl Iterator<Item = &StreamRecord> {
        self.s.streams.values().flat_map(|m| m.values())
    }

    /// Has `peer` been removed from the meta group?
    pub fn is_removed(&self, peer: &str) -> bool {
        self.s.removed.contains(peer)
    }

    /// Applies the entry at log `index`. An index at or below the last one applied is a
    /// replay (after a restore) and changes nothing. An entry that no longer fits the state
    /// (a stream removed meanwhile, a name taken) changes nothing and answers its error.
    pub fn apply(&mut self, index: u64, entry: MetaEntry) -> Vec<MetaEffect> {
        if index <= self.s.applied {
            return Vec::new();
        }
        self.s.applied = index;
        let mut fx = Vec::new();
        let (request, answer) = match entry {
            MetaEntry::AssignStream(sa) => {
                let request = sa.request.clone();
                (request, self.assign_stream(sa, &mut fx))
            }
            MetaEntry::UpdateStream(sa) => {
                let request = sa.request.clone();
                (request, self.update_stream(sa, &mut fx))
            }
            MetaEntry::RemoveStream {
                account,
                stream,
                request,
            } => (request, self.remove_stream(&account, &stream, &mut fx)),
            MetaEntry::AssignConsumer(ca) => {
                let request = ca.request.clone();
                (request, self.assign_consumer(ca, &mut fx))
            }
            MetaEntry::RemoveConsumer {
                account,
                stream,
                consumer,
                request,
            } => (
                request,
                self.remove_consumer(&account, &stream, &consumer, &mut fx),
            ),
            MetaEntry::RemovePeer {
                account,
                stream,
                peer,
                replacement,
                request,
            } => (
                request,
                self.remove_peer(&account, &stream, &peer, replacement, &mut fx),
            ),
            MetaEntry::RemoveServer { peer, request } => {
                if peer == self.me {
                    fx.push(MetaEffect::ServerRemoved);
                }
                self.s.removed.insert(peer);
                (request, Answer::Ok)
            }
        };
        if let Some(request) = request {
            fx.push(MetaEffect::Respond { request, answer });
        }
        fx
    }

    fn assign_stream(&mut self, sa: StreamAssignment, fx: &mut Vec<MetaEffect>) -> Answer {
        let streams = self.s.streams.entry(sa.account.clone()).or_default();
        if let Some(old) = streams.get(&sa.config.name) {
            // Go: a create for a stream that exists with the same config succeeds.
            return if old.assignment.config == sa.config {
                Answer::Ok
            } else {
                Answer::Err(err::stream_name_exist())
            };
        }
        if sa.group.has(&self.me) {
            fx.push(MetaEffect::StartStream(sa.clone()));
        }
        streams.insert(
            sa.config.name.clone(),
            StreamRecord {
                assignment: sa,
                consumers: BTreeMap::new(),
            },
        );
        Answer::Ok
    }

    fn update_stream(&mut self, sa: StreamAssignment, fx: &mut Vec<MetaEffect>) -> Answer {
        let me = self.me.clone();
        let Some(rec) = self
            .s
            .streams
            .get_mut(&sa.account)
            .and_then(|m| m.get_mut(&sa.config.name))
        else {
            return Answer::Err(err::stream_not_found());
        };
        let was = rec.assignment.group.has(&me);
        let is = sa.group.has(&me);
        match (was, is) {
            (false, true) => fx.push(MetaEffect::StartStream(sa.clone())),
            (true, true) => fx.push(MetaEffect::UpdateStream(sa.clone())),
            (true, false) => fx.push(MetaEffect::StopStream {
                account: sa.account.clone(),
                stream: sa.config.name.clone(),
                delete: true,
            }),
            (false, false) => {}
        }
        // Consumers follow their stream: a peer that left the stream leaves them too. At the
        // end of a move (every old peer left at once) the stream's new peers fill them up to
        // the peers they had, in the stream's order (Go: the consumers' remap of
        // jsClusteredStreamUpdateRequest).
        let move_ends = rec.assignment.is_moving() && !sa.is_moving();
        for ca in rec.consumers.values_mut() {
            let before = ca.group.has(&me);
            let had = ca.group.peers.len();
            ca.group.peers.retain(|p| sa.group.has(p));
            let want = if move_ends {
                had.min(sa.group.peers.len())
            } else {
                0
            };
            for p in &sa.group.peers {
                if ca.group.peers.len() >= want {
                    break;
                }
                if !ca.group.has(p) {
                    ca.group.peers.push(p.clone());
                }
            }
            if !ca.group.has(&ca.group.preferred) {
                ca.group.preferred.clear();
            }
            match (before, ca.group.has(&me)) {
                (true, false) => fx.push(MetaEffect::StopConsumer {
                    account: ca.account.clone(),
                    stream: ca.stream.clone(),
                    consumer: ca.name.clone(),
                    delete: true,
                }),
                (false, true) => fx.push(MetaEffect::StartConsumer(ca.clone())),
                _ => {}
            }
        }
        rec.assignment = sa;
        Answer::Ok
    }

    fn remove_stream(&mut self, account: &str, stream: &str, fx: &mut Vec<MetaEffect>) -> Answer {
        let Some(rec) = self
            .s
            .streams
            .get_mut(account)
            .and_then(|m| m.remove(stream))
        else {
            return Answer::Err(err::stream_not_found());
        };
        if self.s.streams.get(account).is_some_and(BTreeMap::is_empty) {
            self.s.streams.remove(account);
        }
        for ca in rec.consumers.values() {
            if ca.group.has(&self.me) {
                fx.push(MetaEffect::StopConsumer {
                    account: account.to_owned(),
                    stream: stream.to_owned(),
                    consumer: ca.name.clone(),
                    delete: true,
                });
            }
        }
        if rec.assignment.group.has(&self.me) {
            fx.push(MetaEffect::StopStream {
                account: account.to_owned(),
                stream: stream.to_owned(),
                delete: true,
            });
        }
        Answer::Ok
    }

    fn assign_consumer(&mut self, ca: ConsumerAssignment, fx: &mut Vec<MetaEffect>) -> Answer {
        let Some(rec) = self
            .s
            .streams
            .get_mut(&ca.account)
            .and_then(|m| m.get_mut(&ca.stream))
        else {
            return Answer::Err(err::stream_not_found());
        };
        let was = rec
            .consumers
            .get(&ca.name)
            .is_some_and(|o| o.group.has(&self.me));
        match (was, ca.group.has(&self.me)) {
            (false, true) => fx.push(MetaEffect::StartConsumer(ca.clone())),
            (true, true) => fx.push(MetaEffect::UpdateConsumer(ca.clone())),
            (true, false) => fx.push(MetaEffect::StopConsumer {
                account: ca.account.clone(),
                stream: ca.stream.clone(),
                consumer: ca.name.clone(),
                delete: true,
            }),
            (false, false) => {}
        }
        rec.consumers.insert(ca.name.clone(), ca);
        Answer::Ok
    }

    fn remove_consumer(
        &mut self,
        account: &str,
        stream: &str,
        consumer: &str,
        fx: &mut Vec<MetaEffect>,
    ) -> Answer {
        let Some(rec) = self
            .s
            .streams
            .get_mut(account)
            .and_then(|m| m.get_mut(stream))
        else {
            return Answer::Err(err::stream_not_found());
        };
        let Some(ca) = rec.consumers.remove(consumer) else {
            return Answer::Err(err::consumer_not_found());
        };
        if ca.group.has(&self.me) {
            fx.push(MetaEffect::StopConsumer {
                account: account.to_owned(),
                stream: stream.to_owned(),
                consumer: consumer.to_owned(),
                delete: true,
            });
        }
        Answer::Ok
    }

    fn remove_peer(
        &mut self,
        account: &str,
        stream: &str,
        peer: &str,
        replacement: Option<String>,
        fx: &mut Vec<MetaEffect>,
    ) -> Answer {
        let Some(rec) = self.s.streams.get(account).and_then(|m| m.get(stream)) else {
            return Answer::Err(err::stream_not_found());
        };
        if !rec.assignment.group.has(peer) {
            return Answer::Err(err::cluster_peer_not_member());
        }
        let mut sa = rec.assignment.clone();
        sa.request = None;
        for p in &mut sa.group.peers {
            if p == peer {
                match &replacement {
                    Some(r) => p.clone_from(r),
                    None => p.clear(),
                }
            }
        }
        sa.group.peers.retain(|p| !p.is_empty());
        if sa.group.preferred == peer {
            sa.group.preferred.clear();
        }
        // Consumers swap the same peer (they live on the stream's peers).
        let consumers: Vec<ConsumerAssignment> = rec
            .consumers
            .values()
            .filter(|ca| ca.group.has(peer))
            .map(|ca| {
                let mut ca = ca.clone();
                ca.request = None;
                for p in &mut ca.group.peers {
                    if p == peer {
                        match &replacement {
                            Some(r) => p.clone_from(r),
                            None => p.clear(),
                        }
                    }
                }
                ca.group.peers.retain(|p| !p.is_empty());
                ca
            })
            .collect();
        self.update_stream(sa, fx);
        for ca in consumers {
            self.assign_consumer(ca, fx);
        }
        Answer::Ok
    }

    /// The snapshot's bytes (envelope + JSON): the same state always gives the same bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        codec::seal_json(Kind::MetaSnapshot, &self.s)
    }

    /// Replaces the state with a snapshot's. The effects bring this server in line: start
    /// what it now hosts, update what changed, and stop — keeping the data — what the
    /// snapshot no longer lists for it. A snapshot that does not decode changes nothing.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<Vec<MetaEffect>, DecodeError> {
        let new: MetaSnapshot = codec::open_json(Kind::MetaSnapshot, bytes)?;
        let old = std::mem::replace(&mut self.s, new);
        let me = self.me.clone();
        let mut fx = Vec::new();
        let hosted = |s: &MetaSnapshot| -> BTreeMap<(String, String), StreamRecord> {
            s.streams
                .iter()
                .flat_map(|(acc, m)| m.iter().map(move |(n, r)| ((acc.clone(), n.clone()), r)))
                .filter(|(_, r)| r.assignment.group.has(&me))
                .map(|(k, r)| (k, r.clone()))
                .collect()
        };
        let before = hosted(&old);
        let after = hosted(&self.s);
        for ((account, stream), rec) in &before {
            if !after.contains_key(&(account.clone(), stream.clone())) {
                for ca in rec.consumers.values().filter(|c| c.group.has(&me)) {
                    fx.push(MetaEffect::StopConsumer {
                        account: account.clone(),
                        stream: stream.clone(),
                        consumer: ca.name.clone(),
                        delete: false,
                    });
                }
                fx.push(MetaEffect::StopStream {
                    account: account.clone(),
                    stream: stream.clone(),
                    delete: false,
                });
            }
        }
        for (key, rec) in &after {
            let prev = before.get(key);
            match prev {
                None => fx.push(MetaEffect::StartStream(rec.assignment.clone())),
                Some(p) if p.assignment != rec.assignment => {
                    fx.push(MetaEffect::UpdateStream(rec.assignment.clone()));
                }
                Some(_) => {}
            }
            let old_cs = prev.map(|p| &p.consumers);
            for (name, ca) in &rec.consumers {
                let was = old_cs
                    .and_then(|m| m.get(name))
                    .filter(|c| c.group.has(&me));
                match (was, ca.group.has(&me)) {
                    (None, true) => fx.push(MetaEffect::StartConsumer(ca.clone())),
                    (Some(o), true) if o != ca => fx.push(MetaEffect::UpdateConsumer(ca.clone())),
                    (Some(_), false) => fx.push(MetaEffect::StopConsumer {
                        account: key.0.clone(),
                        stream: key.1.clone(),
                        consumer: name.clone(),
                        delete: false,
                    }),
                    _ => {}
                }
            }
            for name in old_cs.into_iter().flat_map(|m| m.keys()) {
                let hosted_before = old_cs
                    .and_then(|m| m.get(name))
                    .is_some_and(|c| c.group.has(&me));
                if hosted_before && !rec.consumers.contains_key(name) {
                    fx.push(MetaEffect::StopConsumer {
                        account: key.0.clone(),
                        stream: key.1.clone(),
                        consumer: name.clone(),
                        delete: false,
                    });
                }
            }
        }
        Ok(fx)
    }
}
