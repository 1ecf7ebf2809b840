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
    /// changed (a scale down keeps the first peers, a scale up adds in the group's cluster)
    /// or when `placement` changed: a move (Go: jsClusteredStreamUpdateRequest).
    ///
    /// A move places a whole new group as a create would (the requested cluster, else the
    /// requester's), and the assignment's peers become the old peers that are not in it
    /// followed by the new ones, `num_replicas` unchanged: more peers than replicas is what
    /// marks a stream as moving. The old peers leave once the new ones caught up (see
    /// [`MetaState::propose_move_done`]). A move that picks the peers the stream has is only
    /// a config change. Refused: moving and scaling at once (10123); a move or a scale while
    /// a move is under way (10124; nats-server 2.9.10 would scale the moving group).
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
        let moving = old.is_moving();
        // Go: a move is a placement given and different from the old one; dropping the
        // placement only changes the config.
        let is_move = cfg.placement.is_some() && cfg.placement != old.config.placement;
        let is_scale = cfg.num_replicas != old.config.num_replicas;
        if moving && (is_move || is_scale) {
            return Err(err::stream_move_in_progress(&format!(
                "total peers: {}",
                old.group.peers.len()
            )));
        }
        if is_move && is_scale {
            return Err(err::stream_move_and_scale());
        }
        let mut group = old.group.clone();
        if is_scale {
            group.peers = placement::rescale(cluster, &old.group, &cfg, rng)?;
            if !group.has(&group.preferred) {
                group.preferred.clear();
            }
        } else if is_move {
            let target =
                placement::place_stream(cluster, &cfg, &origin.cluster, &origin.alternates, rng)?;
            let mut peers: Vec<String> = old
                .group
                .peers
                .iter()
                .filter(|p| !target.has(p))
                .cloned()
                .collect();
            peers.extend(target.peers);
            group.peers = peers;
            group.preferred.clear();
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

    /// The entry that ends a stream's move once its new peers caught up (Go: the new
    /// leader's scale down in monitorStream): the peers become the last `num_replicas` of
    /// the moving group, in `cluster`. `None` when the stream is gone or not moving with
    /// exactly `peers` (a report about an older state).
    pub fn propose_move_done(
        &self,
        account: &str,
        stream: &str,
        peers: &[String],
        cluster: &str,
    ) -> Option<MetaEntry> {
        let sa = &self.stream(account, stream)?.assignment;
        let r = sa.replicas();
        if sa.group.peers.len() <= r || sa.group.peers != peers {
            return None;
        }
        let mut sa = sa.clone();
        sa.request = None;
        sa.group.peers = sa.group.peers.split_off(sa.group.peers.len() - r);
        sa.group.preferred.clear();
        if !cluster.is_empty() {
            sa.group.cluster = cluster.to_owned();
        }
        Some(MetaEntry::UpdateStream(sa))
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
