//! Choosing the peers of a new stream's Raft group, of a scale up or down, and of a consumer
//! (Go: server/jetstream_cluster.go selectPeerGroup, createGroupForStream,
//! createGroupForConsumer, and the replica checks of stream.go checkStreamCfg).
//!
//! Pure: the meta leader passes what it knows of the servers ([`ServerInfo`]) and a seeded
//! generator; the same inputs and seed give the same peers. Ties are broken by a seeded
//! shuffle (Go shuffles the peers with the process's random source), then by available
//! storage (most first), by streams already placed there (fewest first) and, for replicated
//! streams, by replicated assets (fewest first).

use std::collections::{BTreeMap, BTreeSet};

use super::meta::RaftGroup;
use crate::jetstream::api::{err, ApiError, StreamConfig};
use crate::jetstream::limits;
use crate::rng::SplitMix64;

/// Most replicas a stream may have (Go: `StreamMaxReplicas`).
pub const MAX_REPLICAS: i64 = 5;

/// The tag that keeps a server out of placement (Go: `jsExcludePlacement`).
pub const EXCLUDE_PLACEMENT_TAG: &str = "!jetstream";

/// What the meta leader knows of one JetStream server (Go: `nodeInfo` and its stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    /// Server name.
    pub name: String,
    /// Raft peer id.
    pub id: String,
    /// Cluster name.
    pub cluster: String,
    /// Server tags (`jetstream { tags }` / `server_tags`).
    pub tags: BTreeSet<String>,
    /// Not heard from recently.
    pub offline: bool,
    /// Configured `max_file_store` (bytes).
    pub max_store: u64,
    /// Configured `max_memory_store` (bytes).
    pub max_memory: u64,
    /// File storage in use.
    pub store_used: u64,
    /// File storage reserved by streams' `max_bytes`.
    pub store_reserved: u64,
    /// Memory in use.
    pub memory_used: u64,
    /// Memory reserved by streams' `max_bytes`.
    pub memory_reserved: u64,
    /// Replicated assets (streams and consumers with more than one peer) it hosts.
    pub ha_assets: u64,
}

impl ServerInfo {
    /// Bytes still available for a stream of `storage` (`file` or `memory`): the limit less
    /// the larger of used and reserved (Go: selectPeerGroup's `available`).
    pub fn available(&self, storage: &str) -> u64 {
        let (max, used, reserved) = if storage == "memory" {
            (self.max_memory, self.memory_used, self.memory_reserved)
        } else {
            (self.max_store, self.store_used, self.store_reserved)
        };
        max.saturating_sub(used.max(reserved))
    }
}

/// Why no group could be formed (Go: `selectPeerError`); its `Display` is
/// Go's text, tags listed in sorted order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlacementError {
    /// Some candidates were offline.
    pub offline: bool,
    /// Some candidates carry the `!jetstream` tag.
    pub exclude_tag: bool,
    /// Some candidates lack room for `max_bytes`.
    pub no_storage: bool,
    /// Anything else (no cluster to place in, ...).
    pub misc: bool,
    /// No JetStream server in the cluster at all.
    pub no_js_cluster: bool,
    /// Required tags some candidate lacked.
    pub no_match_tags: BTreeSet<String>,
    /// Excluded (`!tag`) tags some candidate carried.
    pub exclude_tags: BTreeSet<String>,
}

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no suitable peers for placement")?;
        for (on, why) in [
            (self.offline, "peer offline"),
            (self.exclude_tag, "exclude tag set"),
            (self.no_storage, "insufficient storage"),
            (self.misc, "miscellaneous issue"),
            (self.no_js_cluster, "jetstream not enabled in cluster"),
        ] {
            if on {
                write!(f, ", {why}")?;
            }
        }
        let list = |set: &BTreeSet<String>| {
            set.iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.no_match_tags.is_empty() {
            write!(f, ", tags not matched [{}]", list(&self.no_match_tags))?;
        }
        if !self.exclude_tags.is_empty() {
            write!(f, ", tags excluded [{}]", list(&self.exclude_tags))?;
        }
        Ok(())
    }
}

impl PlacementError {
    fn accumulate(&mut self, o: Self) {
        self.offline |= o.offline;
        self.exclude_tag |= o.exclude_tag;
        self.no_storage |= o.no_storage;
        self.misc |= o.misc;
        self.no_js_cluster |= o.no_js_cluster;
        self.no_match_tags.extend(o.no_match_tags);
        self.exclude_tags.extend(o.exclude_tags);
    }

    /// The API error (10005, Go: `JSClusterNoPeersErrF`).
    pub fn api(&self) -> ApiError {
        err::cluster_no_peers(&self.to_string())
    }
}

/// The cluster view placement works from.
#[derive(Debug, Clone, Default)]
pub struct Cluster {
    /// Every JetStream server the meta group knows, removed ones left out.
    pub servers: Vec<ServerInfo>,
    /// Streams already placed on each peer id (tie-breaker).
    pub streams_on: BTreeMap<String, u64>,
    /// Is this server clustered at all? (false: a single server, replicas must be 1)
    pub clustered: bool,
    /// Is there a meta leader to propose to?
    pub has_leader: bool,
}

/// The checks on `num_replicas` every create or update makes before placement
/// (Go: checkStreamCfg and the API's clustered-mode checks).
pub fn check_replicas(cfg: &StreamConfig, c: &Cluster) -> Result<usize, ApiError> {
    let r = cfg.num_replicas;
    if r < 0 {
        return Err(err::replicas_negative());
    }
    if r > MAX_REPLICAS {
        return Err(err::max_replicas());
    }
    if r > 1 && !c.clustered {
        return Err(err::replicas_not_supported());
    }
    if c.clustered && !c.has_leader {
        return Err(err::cluster_not_avail());
    }
    Ok(r.max(1) as usize)
}

/// Selects `r` peers in `cluster` for `cfg`, keeping `existing` peers first (a scale up adds
/// to them; a scale down keeps the first `r`) and never choosing one in `ignore`.
pub fn select_peers(
    c: &Cluster,
    r: usize,
    cluster: &str,
    cfg: &StreamConfig,
    existing: &[String],
    ignore: &[String],
    rng: &mut SplitMix64,
) -> Result<Vec<String>, PlacementError> {
    let mut e = PlacementError::default();
    if cluster.is_empty() {
        e.misc = true;
        return Err(e);
    }
    if existing.len() >= r {
        return Ok(existing[..r].to_vec());
    }
    let max_bytes = u64::try_from(cfg.max_bytes).unwrap_or(0);
    let tags: Vec<(&str, bool)> = cfg
        .placement
        .iter()
        .flat_map(|p| p.tags.iter())
        .map(|t| match t.strip_prefix('!') {
            Some(x) => (x, true),
            None => (t.as_str(), false),
        })
        .collect();
    // Candidates in a seeded random order, so equal peers are not always taken in name order.
    let mut order: Vec<&ServerInfo> = c.servers.iter().collect();
    order.sort_by(|a, b| a.id.cmp(&b.id));
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    struct Node<'a> {
        id: &'a str,
        avail: u64,
        streams: u64,
        ha: u64,
    }
    let mut nodes: Vec<Node<'_>> = Vec::new();
    for s in order {
        if s.cluster != cluster {
            continue;
        }
        if s.offline {
            e.offline = true;
            continue;
        }
        if ignore.contains(&s.id) || existing.contains(&s.id) {
            continue;
        }
        if s.tags.contains(EXCLUDE_PLACEMENT_TAG) {
            e.exclude_tag = true;
            continue;
        }
        let mut matched = true;
        for (t, exclude) in &tags {
            let has = s.tags.contains(*t);
            if *exclude && has {
                e.exclude_tags.insert((*t).to_owned());
                matched = false;
                break;
            }
            if !*exclude && !has {
                e.no_match_tags.insert((*t).to_owned());
                matched = false;
                break;
            }
        }
        if !matched {
            continue;
        }
        let avail = s.available(&cfg.storage);
        if max_bytes > 0 && max_bytes > avail {
            e.no_storage = true;
            continue;
        }
        nodes.push(Node {
            id: &s.id,
            avail,
            streams: c.streams_on.get(&s.id).copied().unwrap_or(0),
            ha: s.ha_assets,
        });
    }
    let need = r - existing.len();
    if nodes.len() < need {
        if c.servers.is_empty() {
            e.no_js_cluster = true;
        }
        return Err(e);
    }
    // Stable sorts keep the shuffled order among equals.
    nodes.sort_by(|a, b| b.avail.cmp(&a.avail).then(a.streams.cmp(&b.streams)));
    if r > 1 {
        nodes.sort_by_key(|n| n.ha);
    }
    let mut out = existing.to_vec();
    out.extend(nodes[..need].iter().map(|n| n.id.to_owned()));
    Ok(out)
}

/// A group name as Go forms them (`S-R3F-` + 8 characters), the suffix drawn from `rng`.
pub fn group_name(prefix: char, replicas: usize, storage: &str, rng: &mut SplitMix64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let kind = if storage == "memory" { 'M' } else { 'F' };
    let suffix: String = (0..8)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
        .collect();
    format!("{prefix}-R{replicas}{kind}-{suffix}")
}

/// The group for a new stream: the replica checks, then placement in the requested cluster
/// (`placement.cluster`), else the requester's, else each of `alternates` in turn; the
/// failures of every cluster tried are reported together (Go: createGroupForStream).
pub fn place_stream(
    c: &Cluster,
    cfg: &StreamConfig,
    client_cluster: &str,
    alternates: &[String],
    rng: &mut SplitMix64,
) -> Result<RaftGroup, ApiError> {
    // The config checks (`stream::check_config`) already refused a `preferred` server.
    let r = check_replicas(cfg, c)?;
    let chosen = cfg
        .placement
        .as_ref()
        .map(|p| p.cluster.as_str())
        .filter(|s| !s.is_empty());
    let mut clusters = vec![chosen.unwrap_or(client_cluster).to_owned()];
    if chosen.is_none() {
        clusters.extend(alternates.iter().cloned());
    }
    let mut errs = PlacementError::default();
    for cluster in clusters {
        match select_peers(c, r, &cluster, cfg, &[], &[], rng) {
            Ok(peers) => {
                return Ok(RaftGroup {
                    name: group_name('S', peers.len(), &cfg.storage, rng),
                    peers,
                    storage: cfg.storage.clone(),
                    cluster,
                    preferred: String::new(),
                })
            }
            Err(e) => errs.accumulate(e),
        }
    }
    Err(errs.api())
}

/// The new peer set when a stream changes `num_replicas` (Go: the update path of
/// jsClusteredStreamUpdateRequest): a scale down keeps the first peers, a scale up keeps all
/// of them and adds new ones in the group's cluster.
pub fn rescale(
    c: &Cluster,
    group: &RaftGroup,
    cfg: &StreamConfig,
    rng: &mut SplitMix64,
) -> Result<Vec<String>, ApiError> {
    let r = check_replicas(cfg, c)?;
    select_peers(c, r, &group.cluster, cfg, &group.peers, &[], rng).map_err(|e| e.api())
}

/// A replacement for `peer` in a stream's group (Go: jsStreamRemovePeerRequest → the meta
/// leader's remap): `Ok(None)` when no other server can take it (the group shrinks),
/// `Err(10040)` when `peer` is not a member.
pub fn replace_peer(
    c: &Cluster,
    group: &RaftGroup,
    cfg: &StreamConfig,
    peer: &str,
    rng: &mut SplitMix64,
) -> Result<Option<String>, ApiError> {
    if !group.has(peer) {
        return Err(err::cluster_peer_not_member());
    }
    let keep: Vec<String> = group.peers.iter().filter(|p| *p != peer).cloned().collect();
    let ignore = [peer.to_owned()];
    Ok(
        select_peers(c, keep.len() + 1, &group.cluster, cfg, &keep, &ignore, rng)
            .ok()
            .and_then(|mut v| v.pop()),
    )
}

/// The group for a new consumer: `replicas` (0: the stream's) of the stream's online peers
/// (Go: createGroupForConsumer). Too few online peers: 10023 insufficient resources.
pub fn place_consumer(
    c: &Cluster,
    stream: &RaftGroup,
    stream_replicas: usize,
    replicas: u64,
    rng: &mut SplitMix64,
) -> Result<RaftGroup, ApiError> {
    let r = if replicas == 0 {
        stream_replicas
    } else {
        usize::try_from(replicas).unwrap_or(usize::MAX)
    };
    if r > stream_replicas {
        return Err(err::consumer_replicas_exceeds_stream());
    }
    let online = |p: &String| c.servers.iter().any(|s| &s.id == p && !s.offline);
    let mut peers: Vec<String> = stream.peers.iter().filter(|p| online(p)).cloned().collect();
    if peers.len() < r {
        return Err(limits::insufficient_resources());
    }
    for i in (1..peers.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        peers.swap(i, j);
    }
    peers.truncate(r);
    Ok(RaftGroup {
        name: group_name('C', r, &stream.storage, rng),
        peers,
        storage: stream.storage.clone(),
        cluster: stream.cluster.clone(),
        preferred: String::new(),
    })
}

/// The peer a meta leader stepping down hands over to when the request names a placement
/// (Go: jsLeaderStepDownRequest): `None` without one (Raft picks); tags are refused (10011);
/// an online server of the named cluster other than `me`, drawn from `rng`, or 10005 "no
/// replacement peer connected".
pub fn stepdown_target(
    c: &Cluster,
    me: &str,
    placement: Option<&crate::jetstream::api::Placement>,
    rng: &mut SplitMix64,
) -> Result<Option<String>, ApiError> {
    let Some(p) = placement else {
        return Ok(None);
    };
    if !p.tags.is_empty() {
        return Err(err::cluster_tags());
    }
    let mut peers: Vec<&ServerInfo> = c
        .servers
        .iter()
        .filter(|s| !s.offline && s.cluster == p.cluster && s.id != me)
        .collect();
    if peers.is_empty() {
        return Err(err::cluster_no_peers("no replacement peer connected"));
    }
    peers.sort_by(|a, b| a.id.cmp(&b.id));
    let i = rng.below(peers.len() as u64) as usize;
    Ok(Some(peers[i].id.clone()))
}
