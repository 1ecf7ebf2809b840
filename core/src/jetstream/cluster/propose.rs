//! The meta leader's side of each clustered API request: checks against the agreed state,
//! placement, and the [`MetaEntry`] to propose (Go: jsClusteredStreamRequest,
//! jsClusteredStreamUpdateRequest, jsClusteredStreamDeleteRequest, jsClusteredConsumerRequest,
//! jsStreamRemovePeerRequest, jsLeaderServerRemoveRequest).
//!
//! Pure: the leader's clock (`now`, which becomes the assignment's `created`), its view of the
//! servers ([`Cluster`]) and a seeded generator come in; an entry or an API error goes out.
//! The per-asset config checks (`stream::check_config`, `consumer::check_config`) run before
//! these, as on one server.

use super::checks::{ConsumerCreate, StreamCreate};
use super::meta::{ConsumerAssignment, MetaEntry, MetaState, Request, StreamAssignment};
use super::placement::{self, Cluster};
use super::shapes::ServerRemoveRequest;
use crate::jetstream::api::{err, ApiError, ConsumerConfig, StreamConfig};
use crate::jetstream::consumer::check_update as check_consumer_update;
use crate::jetstream::store::UnixNanos;
use crate::jetstream::stream::check_update;
use crate::rng::SplitMix64;

/// What the leader does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposal {
    /// Propose this entry; the request is answered once it is applied.
    Propose(MetaEntry),
    /// Nothing to change: answer at once (a create repeating an existing stream's config,
    /// with its assignment to report).
    Unchanged(StreamAssignment),
}

/// Where a request came from, for placement and the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The request to answer.
    pub request: Request,
    /// The requesting client's cluster (placement's default).
    pub cluster: String,
    /// Clusters to try after it when the config names none (Go: `ClientInfo.Alternates`).
    pub alternates: Vec<String>,
}

impl MetaState {
    /// `$JS.API.STREAM.CREATE`: checks, placement, then an assignment.
    pub fn propose_stream_create(
        &self,
        cfg: StreamConfig,
        origin: &Origin,
        cluster: &Cluster,
        max_streams: usize,
        now: UnixNanos,
        rng: &mut SplitMix64,
    ) -> Result<Proposal, ApiError> {
        let account = origin.request.account.clone();
        placement::check_replicas(&cfg, cluster)?;
        if let StreamCreate::Exists(sa) = self.check_stream_create(&account, &cfg, max_streams)? {
            return Ok(Proposal::Unchanged(sa.clone()));
        }
        let group =
            placement::place_stream(cluster, &cfg, &origin.cluster, &origin.alternates, rng)?;
        Ok(Proposal::Propose(MetaEntry::AssignStream(
            StreamAssignment {
                account,
                created: now,
                config: cfg,
                group,
                request: Some(origin.request.clone()),
            },
        )))
    }

    /// `$JS.API.STREAM.UPDATE`: the update rules, then the new peer set when `num_replicas`
    /// changed (a scale down keeps the first peers, a scale up adds in the group's cluster).
    pub fn propose_stream_update(
        &self,
        cfg: StreamConfig,
        origin: &Origin,
        cluster: &Cluster,
        rng: &mut SplitMix64,
    ) -> Result<Proposal, ApiError> {
        let account = origin.request.account.clone();
        let old = self.check_stream_update(&account, &cfg)?;
        check_update(&old.config, &cfg)?;
        // Moving a stream to another cluster or other tags (Go 2.9's stream move) is not
        // implemented: refused with nats-server's error for an unsupported clustered feature.
        if cfg.placement != old.config.placement {
            return Err(err::cluster_unsupported());
        }
        let mut group = old.group.clone();
        if cfg.num_replicas != old.config.num_replicas {
            group.peers = placement::rescale(cluster, &old.group, &cfg, rng)?;
            if !group.has(&group.preferred) {
                group.preferred.clear();
            }
        }
        Ok(Proposal::Propose(MetaEntry::UpdateStream(
            StreamAssignment {
                account,
                created: old.created,
                config: cfg,
                group,
                request: Some(origin.request.clone()),
            },
        )))
    }

    /// `$JS.API.STREAM.DELETE`.
    pub fn propose_stream_delete(
        &self,
        stream: &str,
        origin: &Origin,
    ) -> Result<Proposal, ApiError> {
        let account = origin.request.account.clone();
        self.stream(&account, stream)
            .ok_or_else(err::stream_not_found)?;
        Ok(Proposal::Propose(MetaEntry::RemoveStream {
            account,
            stream: stream.to_owned(),
            request: Some(origin.request.clone()),
        }))
    }

    /// `$JS.API.CONSUMER.CREATE` (and durable create): the action rules, then a group on the
    /// stream's online peers (an update keeps the consumer's group, and may change only what
    /// one server lets it change: `consumer::check_update`; `bound`: the existing consumer's
    /// deliver subject has a listener).
    #[allow(clippy::too_many_arguments)]
    pub fn propose_consumer_create(
        &self,
        stream: &str,
        name: &str,
        cfg: ConsumerConfig,
        action: &str,
        origin: &Origin,
        cluster: &Cluster,
        now: UnixNanos,
        bound: bool,
        rng: &mut SplitMix64,
    ) -> Result<Proposal, ApiError> {
        let account = origin.request.account.clone();
        let (group, created) = match self
            .check_consumer_create(&account, stream, name, &cfg, action)?
        {
            ConsumerCreate::Update(ca) => {
                check_consumer_update(&ca.config, &cfg, bound)?;
                (ca.group.clone(), ca.created)
            }
            ConsumerCreate::New => {
                let sa = &self
                    .stream(&account, stream)
                    .ok_or_else(err::stream_not_found)?
                    .assignment;
                let replicas = sa.group.peers.len();
                let group =
                    placement::place_consumer(cluster, &sa.group, replicas, cfg.num_replicas, rng)?;
                (group, now)
            }
        };
        Ok(Proposal::Propose(MetaEntry::AssignConsumer(
            ConsumerAssignment {
                account,
                stream: stream.to_owned(),
                name: name.to_owned(),
                created,
                config: cfg,
                group,
                request: Some(origin.request.clone()),
            },
        )))
    }

    /// `$JS.API.CONSUMER.DELETE`.
    pub fn propose_consumer_delete(
        &self,
        stream: &str,
        consumer: &str,
        origin: &Origin,
    ) -> Result<Proposal, ApiError> {
        let account = origin.request.account.clone();
        let rec = self
            .stream(&account, stream)
            .ok_or_else(err::stream_not_found)?;
        if !rec.consumers.contains_key(consumer) {
            return Err(err::consumer_not_found());
        }
        Ok(Proposal::Propose(MetaEntry::RemoveConsumer {
            account,
            stream: stream.to_owned(),
            consumer: consumer.to_owned(),
            request: Some(origin.request.clone()),
        }))
    }

    /// `$JS.API.STREAM.PEER.REMOVE`: the member named `server` leaves; another server of the
    /// group's cluster takes its place when one can.
    pub fn propose_peer_remove(
        &self,
        stream: &str,
        server: &str,
        origin: &Origin,
        cluster: &Cluster,
        rng: &mut SplitMix64,
    ) -> Result<Proposal, ApiError> {
        let account = origin.request.account.clone();
        let peer = self.check_peer_remove(&account, stream, server, &cluster.servers)?;
        let sa = &self
            .stream(&account, stream)
            .ok_or_else(err::stream_not_found)?
            .assignment;
        let replacement = placement::replace_peer(cluster, &sa.group, &sa.config, &peer, rng)?;
        Ok(Proposal::Propose(MetaEntry::RemovePeer {
            account,
            stream: stream.to_owned(),
            peer,
            replacement,
            request: Some(origin.request.clone()),
        }))
    }

    /// `$JS.API.SERVER.REMOVE`.
    pub fn propose_server_remove(
        &self,
        req: &ServerRemoveRequest,
        origin: &Origin,
        cluster: &Cluster,
    ) -> Result<Proposal, ApiError> {
        let peer = self.check_server_remove(req, &cluster.servers)?;
        Ok(Proposal::Propose(MetaEntry::RemoveServer {
            peer,
            request: Some(origin.request.clone()),
        }))
    }
}
