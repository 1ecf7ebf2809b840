//! What the meta leader checks before it proposes an entry, against what the meta group has
//! agreed on (Go: jsClusteredStreamRequest, jsClusteredStreamUpdateRequest,
//! jsClusteredConsumerRequest, jsStreamRemovePeerRequest, jsLeaderServerRemoveRequest).
//!
//! The config checks of one stream or consumer stay where the single server has them
//! (`stream::check_config`, `stream::check_update`, `consumer::check_config`); these are the
//! checks that need the whole cluster's view. They only read [`MetaState`].

use super::meta::{ConsumerAssignment, MetaState, StreamAssignment};
use super::placement::ServerInfo;
use super::shapes::ServerRemoveRequest;
use crate::jetstream::api::{err, ApiError, ConsumerConfig, StreamConfig};
use crate::jetstream::limits;
use crate::subject;

/// What a stream create request finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamCreate<'a> {
    /// Nothing by that name: place it and propose an assignment.
    New,
    /// The same stream with the same config: answer with its info, propose nothing (Go).
    Exists(&'a StreamAssignment),
}

/// What a consumer create request finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerCreate<'a> {
    /// A new consumer: place it and propose an assignment.
    New,
    /// An existing consumer this request updates (or repeats).
    Update(&'a ConsumerAssignment),
}

impl MetaState {
    /// A stream create: the name, a sealed config, subject overlap within the account and
    /// the account's stream limit (`max_streams`, 0: none), in nats-server's order.
    pub fn check_stream_create(
        &self,
        account: &str,
        cfg: &StreamConfig,
        max_streams: usize,
    ) -> Result<StreamCreate<'_>, ApiError> {
        if let Some(rec) = self.stream(account, &cfg.name) {
            return if rec.assignment.config == *cfg {
                Ok(StreamCreate::Exists(&rec.assignment))
            } else {
                Err(err::stream_name_exist())
            };
        }
        if cfg.sealed {
            return Err(err::stream_invalid_config(
                "stream configuration for create can not be sealed",
            ));
        }
        self.check_overlap(account, cfg)?;
        if max_streams > 0 && self.streams(account).count() >= max_streams {
            return Err(limits::max_streams_reached());
        }
        Ok(StreamCreate::New)
    }

    /// A stream update: it must exist and its subjects must not overlap another stream's.
    pub fn check_stream_update(
        &self,
        account: &str,
        cfg: &StreamConfig,
    ) -> Result<&StreamAssignment, ApiError> {
        let rec = self
            .stream(account, &cfg.name)
            .ok_or_else(err::stream_not_found)?;
        self.check_overlap(account, cfg)?;
        Ok(&rec.assignment)
    }

    fn check_overlap(&self, account: &str, cfg: &StreamConfig) -> Result<(), ApiError> {
        for other in self.streams(account) {
            if other.assignment.config.name == cfg.name {
                continue;
            }
            for a in &cfg.subjects {
                for b in &other.assignment.config.subjects {
                    if subject::overlaps(a.as_bytes(), b.as_bytes()) {
                        return Err(err::subject_overlap());
                    }
                }
            }
        }
        Ok(())
    }

    /// A consumer create or update (`action`: `create`, `update` or empty): the stream must
    /// exist; `create` of an existing consumer must repeat its config (10148); `update` of a
    /// missing one fails (10149); a new one must fit the stream's `max_consumers` (10026).
    pub fn check_consumer_create(
        &self,
        account: &str,
        stream: &str,
        name: &str,
        cfg: &ConsumerConfig,
        action: &str,
    ) -> Result<ConsumerCreate<'_>, ApiError> {
        let rec = self
            .stream(account, stream)
            .ok_or_else(err::stream_not_found)?;
        if let Some(ca) = rec.consumers.get(name) {
            if action == "create" && ca.config != *cfg {
                return Err(err::consumer_already_exists());
            }
            return Ok(ConsumerCreate::Update(ca));
        }
        if action == "update" {
            return Err(err::consumer_does_not_exist());
        }
        let max = rec.assignment.config.max_consumers;
        if max > 0 && rec.consumers.len() as i64 >= max {
            return Err(limits::max_consumers_reached());
        }
        Ok(ConsumerCreate::New)
    }

    /// `$JS.API.STREAM.PEER.REMOVE`: the peer id of the server named `server`, which must be
    /// a member of the stream's group (10059, 10040).
    pub fn check_peer_remove(
        &self,
        account: &str,
        stream: &str,
        server: &str,
        servers: &[ServerInfo],
    ) -> Result<String, ApiError> {
        if server.is_empty() {
            return Err(err::bad_request());
        }
        let rec = self
            .stream(account, stream)
            .ok_or_else(err::stream_not_found)?;
        servers
            .iter()
            .find(|s| s.name == server && rec.assignment.group.has(&s.id))
            .map(|s| s.id.clone())
            .ok_or_else(err::cluster_peer_not_member)
    }

    /// `$JS.API.SERVER.REMOVE`: the peer id to remove — `peer_id` when given, else the server
    /// by name — which must be in the meta group and not removed already (10044).
    pub fn check_server_remove(
        &self,
        req: &ServerRemoveRequest,
        meta_peers: &[ServerInfo],
    ) -> Result<String, ApiError> {
        let found = meta_peers.iter().find(|s| {
            if req.peer_id.is_empty() {
                s.name == req.server
            } else {
                s.id == req.peer_id
            }
        });
        match found {
            Some(s) if !self.is_removed(&s.id) => Ok(s.id.clone()),
            _ => Err(err::cluster_server_not_member()),
        }
    }
}
