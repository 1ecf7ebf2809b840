//! The JSON of the clustered JetStream API and monitoring, field for field as nats-server
//! 2.9 sends it (Go: server/stream.go `ClusterInfo`, `PeerInfo`; server/jetstream_api.go the
//! stepdown and removal requests and responses; server/monitor.go `MetaClusterInfo`, used by
//! `/jsz` as `meta_cluster` and by `/varz` as `jetstream.meta`). Omitted fields are omitted as
//! Go's `omitempty` omits them.

use serde::{Deserialize, Serialize};

use crate::jetstream::api::{ApiError, Placement};
use crate::jetstream::store::UnixNanos;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How long a peer may stay silent and still count as current (Go: `lostQuorumInterval`).
pub const LOST_QUORUM_NANOS: u64 = 10_000_000_000;

/// A stream's or consumer's `cluster` in its info (Go: `ClusterInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// Cluster name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The leader's server name (empty while there is none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub leader: String,
    /// The other members, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<PeerInfo>,
}

/// One member of a group as its leader sees it (Go: `PeerInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Server name.
    pub name: String,
    /// Heard from recently and caught up.
    pub current: bool,
    /// Not heard from recently.
    #[serde(default, skip_serializing_if = "is_false")]
    pub offline: bool,
    /// Nanoseconds since it was last heard from (Go: a `time.Duration`).
    pub active: u64,
    /// Entries it is behind.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lag: u64,
    /// Raft peer id.
    pub peer: String,
}

/// What a group's leader knows of one member, to build a [`PeerInfo`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerState {
    /// Peer id.
    pub id: String,
    /// Server name, when the server is known.
    pub name: Option<String>,
    /// Its server is marked offline.
    pub offline: bool,
    /// Raft says it is caught up.
    pub current: bool,
    /// When it was last heard from (0: never).
    pub last_seen: UnixNanos,
    /// Entries behind.
    pub lag: u64,
}

impl ClusterInfo {
    /// The info of a group led by `leader_id` (empty: none) as seen at `now`: every member but
    /// the leader (all of them while leaderless), sorted by name (Go: jetStream.clusterInfo).
    pub fn build(
        cluster: &str,
        leader_name: &str,
        leader_id: &str,
        peers: &[PeerState],
        now: UnixNanos,
    ) -> Self {
        let skip = if leader_name.is_empty() {
            ""
        } else {
            leader_id
        };
        let mut replicas: Vec<PeerInfo> = peers
            .iter()
            .filter(|p| p.id != skip)
            .map(|p| {
                let active = if p.last_seen != 0 && now > p.last_seen {
                    now - p.last_seen
                } else {
                    0
                };
                let current = p.current && active <= LOST_QUORUM_NANOS;
                match &p.name {
                    Some(name) => PeerInfo {
                        name: name.clone(),
                        current,
                        offline: p.offline,
                        active,
                        lag: p.lag,
                        peer: p.id.clone(),
                    },
                    // Go: an unknown server is named so, counted offline, and its lag (which
                    // would mislead) cleared.
                    None => PeerInfo {
                        name: format!("Server name unknown at this time (peerID: {})", p.id),
                        current,
                        offline: true,
                        active,
                        lag: 0,
                        peer: p.id.clone(),
                    },
                }
            })
            .collect();
        replicas.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            name: cluster.to_owned(),
            leader: leader_name.to_owned(),
            replicas,
        }
    }
}

/// The meta group in `/jsz` (`meta_cluster`) and `/varz` (`jetstream.meta`)
/// (Go: `MetaClusterInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaClusterInfo {
    /// Cluster name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The meta leader's server name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub leader: String,
    /// The meta leader's peer id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer: String,
    /// The other members (on the leader only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<PeerInfo>,
    /// Members of the meta group.
    pub cluster_size: usize,
    /// natsd only: why this server forms or joins no meta group (nats-server peers with
    /// JetStream in the cluster; natsd does not speak their Raft protocol). Absent otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refused: String,
    /// natsd only: the names of those nats-server peers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused_servers: Vec<String>,
}

/// `$JS.API.META.LEADER.STEPDOWN` request (Go: `JSApiLeaderStepdownRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderStepdownRequest {
    /// Where the next leader should be (cluster; tags are refused with 10011).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

/// `$JS.API.STREAM.PEER.REMOVE.<stream>` request (Go: `JSApiStreamRemovePeerRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRemovePeerRequest {
    /// Server name of the peer to remove.
    pub peer: String,
}

/// `$JS.API.SERVER.REMOVE` request (Go: `JSApiMetaServerRemoveRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRemoveRequest {
    /// Server name (Go names this JSON field `peer`).
    #[serde(default, rename = "peer")]
    pub server: String,
    /// Peer id; used instead of the name when given.
    #[serde(default, rename = "peer_id", skip_serializing_if = "String::is_empty")]
    pub peer_id: String,
}

/// The response to the stepdown and removal requests (Go: `JSApiStreamLeaderStepDownResponse`,
/// `JSApiConsumerLeaderStepDownResponse`, `JSApiLeaderStepDownResponse`,
/// `JSApiStreamRemovePeerResponse`, `JSApiMetaServerRemoveResponse`: all `ApiResponse` plus
/// `success,omitempty`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccessResponse {
    /// `io.nats.jetstream.api.v1.…_response`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Done.
    #[serde(default, skip_serializing_if = "is_false")]
    pub success: bool,
}

/// Which clustered request a response answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterOp {
    /// `$JS.API.STREAM.LEADER.STEPDOWN.<stream>`.
    StreamLeaderStepdown,
    /// `$JS.API.CONSUMER.LEADER.STEPDOWN.<stream>.<consumer>`.
    ConsumerLeaderStepdown,
    /// `$JS.API.META.LEADER.STEPDOWN`.
    MetaLeaderStepdown,
    /// `$JS.API.STREAM.PEER.REMOVE.<stream>`.
    StreamPeerRemove,
    /// `$JS.API.SERVER.REMOVE`.
    ServerRemove,
}

impl ClusterOp {
    /// The response's `type`.
    pub fn response_type(self) -> &'static str {
        match self {
            Self::StreamLeaderStepdown => {
                "io.nats.jetstream.api.v1.stream_leader_stepdown_response"
            }
            Self::ConsumerLeaderStepdown => {
                "io.nats.jetstream.api.v1.consumer_leader_stepdown_response"
            }
            Self::MetaLeaderStepdown => "io.nats.jetstream.api.v1.meta_leader_stepdown_response",
            Self::StreamPeerRemove => "io.nats.jetstream.api.v1.stream_remove_peer_response",
            Self::ServerRemove => "io.nats.jetstream.api.v1.meta_server_remove_response",
        }
    }

    /// `{"type": …, "success": true}`.
    pub fn ok(self) -> SuccessResponse {
        SuccessResponse {
            kind: self.response_type().to_owned(),
            error: None,
            success: true,
        }
    }

    /// `{"type": …, "error": {…}}`.
    pub fn fail(self, e: ApiError) -> SuccessResponse {
        SuccessResponse {
            kind: self.response_type().to_owned(),
            error: Some(e),
            success: false,
        }
    }
}

/// A clustered API request recognised by its subject (the part after `$JS.API.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterRequest {
    /// Stream leader stepdown.
    StreamLeaderStepdown {
        /// Stream.
        stream: String,
    },
    /// Consumer leader stepdown.
    ConsumerLeaderStepdown {
        /// Stream.
        stream: String,
        /// Consumer.
        consumer: String,
    },
    /// Meta leader stepdown.
    MetaLeaderStepdown,
    /// Remove a peer from a stream's group.
    StreamPeerRemove {
        /// Stream.
        stream: String,
    },
    /// Remove a server from the meta group.
    ServerRemove,
}

impl ClusterRequest {
    /// Recognises `rest`, the subject after `$JS.API.` (or `$JS.<domain>.API.`).
    pub fn parse(rest: &str) -> Option<Self> {
        let t: Vec<&str> = rest.split('.').collect();
        Some(match t.as_slice() {
            ["STREAM", "LEADER", "STEPDOWN", s] => Self::StreamLeaderStepdown {
                stream: (*s).to_owned(),
            },
            ["CONSUMER", "LEADER", "STEPDOWN", s, c] => Self::ConsumerLeaderStepdown {
                stream: (*s).to_owned(),
                consumer: (*c).to_owned(),
            },
            ["META", "LEADER", "STEPDOWN"] => Self::MetaLeaderStepdown,
            ["STREAM", "PEER", "REMOVE", s] => Self::StreamPeerRemove {
                stream: (*s).to_owned(),
            },
            ["SERVER", "REMOVE"] => Self::ServerRemove,
            _ => return None,
        })
    }

    /// Its response kind.
    pub fn op(&self) -> ClusterOp {
        match self {
            Self::StreamLeaderStepdown { .. } => ClusterOp::StreamLeaderStepdown,
            Self::ConsumerLeaderStepdown { .. } => ClusterOp::ConsumerLeaderStepdown,
            Self::MetaLeaderStepdown => ClusterOp::MetaLeaderStepdown,
            Self::StreamPeerRemove { .. } => ClusterOp::StreamPeerRemove,
            Self::ServerRemove => ClusterOp::ServerRemove,
        }
    }
}
