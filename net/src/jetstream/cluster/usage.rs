//! What this server's replicas use, carried in its heartbeat for placement (Go: the
//! `JetStreamStats` of a server's statsz — `memory`, `storage`, `reserved_memory`,
//! `reserved_storage`, `ha_assets` — which selectPeerGroup reads from `nodeInfo.stats`).
//!
//! Placement (core's `select_peers`) ranks the servers that can take a stream by the bytes
//! they still have (their limit less the larger of what they store and what their streams'
//! `max_bytes` reserve; a server without a limit still ranks by what it uses), then by the
//! streams already placed there, and for a replicated stream first by the replicated assets
//! they run; a server without room for `max_bytes` is never chosen (10005 "insufficient
//! storage" when none has).

use std::collections::BTreeMap;

use natsd_core::jetstream::api::StreamConfig;
use natsd_core::jetstream::cluster::placement::ServerInfo;
use natsd_core::jetstream::cluster::MetaState;
use serde::{Deserialize, Serialize};

use super::{peer_id, JsCluster};
use crate::server::lock;

/// One server's usage (all accounts, this server's replicas only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Usage {
    /// Bytes its file streams store.
    #[serde(default)]
    pub(super) store_used: u64,
    /// Bytes its memory streams hold.
    #[serde(default)]
    pub(super) memory_used: u64,
    /// Bytes its file streams' `max_bytes` reserve.
    #[serde(default)]
    pub(super) store_reserved: u64,
    /// Bytes its memory streams' `max_bytes` reserve.
    #[serde(default)]
    pub(super) memory_reserved: u64,
    /// Replicated streams and consumers (more than one peer) it hosts.
    #[serde(default)]
    pub(super) ha_assets: u64,
}

impl Usage {
    /// Counts one stream replica of `cfg` holding `bytes`, in a group of `peers` peers.
    pub(super) fn add_stream(&mut self, cfg: &StreamConfig, bytes: u64, peers: usize) {
        let reserve = u64::try_from(cfg.max_bytes).unwrap_or(0);
        if cfg.storage == "memory" {
            self.memory_used += bytes;
            self.memory_reserved += reserve;
        } else {
            self.store_used += bytes;
            self.store_reserved += reserve;
        }
        if peers > 1 {
            self.ha_assets += 1;
        }
    }

    /// Fills the usage fields of `info`.
    pub(super) fn fill(&self, info: &mut ServerInfo) {
        info.store_used = self.store_used;
        info.memory_used = self.memory_used;
        info.store_reserved = self.store_reserved;
        info.memory_reserved = self.memory_reserved;
        info.ha_assets = self.ha_assets;
    }
}

/// Raises each server's reservations to what the meta group's assignments reserve on it
/// (every peer of a stream with `max_bytes` reserves them): the meta leader knows a stream
/// it just placed before that server's heartbeat can say so, so two creates in a row do
/// not both count on the same free bytes.
pub(super) fn reserve_assigned(meta: &MetaState, servers: &mut [ServerInfo]) {
    let mut by_peer: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in meta.all_streams() {
        let cfg = &r.assignment.config;
        let reserve = u64::try_from(cfg.max_bytes).unwrap_or(0);
        if reserve == 0 {
            continue;
        }
        for p in &r.assignment.group.peers {
            let e = by_peer.entry(p.as_str()).or_default();
            if cfg.storage == "memory" {
                e.1 += reserve;
            } else {
                e.0 += reserve;
            }
        }
    }
    for s in servers {
        if let Some((store, memory)) = by_peer.get(s.id.as_str()) {
            s.store_reserved = s.store_reserved.max(*store);
            s.memory_reserved = s.memory_reserved.max(*memory);
        }
    }
}

impl JsCluster {
    /// This server's usage now: its stream replicas' bytes and reservations, and the
    /// replicated streams and consumers the meta group placed on it.
    pub(super) fn usage(&self) -> Usage {
        let mut u = Usage::default();
        let groups: Vec<_> = lock(&self.streams).values().cloned().collect();
        for g in groups {
            let (cfg, peers) = {
                let sa = lock(&g.assignment);
                (sa.config.clone(), sa.group.peers.len())
            };
            let bytes = lock(&g.replica)
                .rs()
                .map_or(0, |rs| rs.stream.state_json(0).bytes);
            u.add_stream(&cfg, bytes, peers);
        }
        let me = peer_id(&self.name);
        let meta = lock(&self.meta_state);
        u.ha_assets += meta
            .all_streams()
            .flat_map(|r| r.consumers.values())
            .filter(|ca| ca.group.peers.len() > 1 && ca.group.has(&me))
            .count() as u64;
        u
    }
}

#[cfg(test)]
mod tests {
    use natsd_core::jetstream::api::StreamConfig;
    use natsd_core::jetstream::cluster::placement::{select_peers, Cluster, ServerInfo};
    use natsd_core::rng::SplitMix64;

    use super::Usage;

    fn cfg(storage: &str, max_bytes: i64) -> StreamConfig {
        serde_json::from_value(serde_json::json!({
            "name": "S", "subjects": ["s"], "storage": storage, "max_bytes": max_bytes,
        }))
        .unwrap()
    }

    #[test]
    fn usage_counts_bytes_reservations_and_replicated_assets_by_storage() {
        let mut u = Usage::default();
        u.add_stream(&cfg("file", 1_000), 300, 3);
        u.add_stream(&cfg("file", -1), 50, 1);
        u.add_stream(&cfg("memory", 2_000), 70, 1);
        assert_eq!(
            u,
            Usage {
                store_used: 350,
                memory_used: 70,
                store_reserved: 1_000,
                memory_reserved: 2_000,
                ha_assets: 1,
            }
        );
    }

    /// Three servers without limits (as unconfigured): the heartbeats' usage decides.
    fn three(usage: [Usage; 3], max_store: u64) -> Cluster {
        Cluster {
            servers: (0..3)
                .map(|i| {
                    let mut s = ServerInfo {
                        name: format!("n{i}"),
                        id: format!("p{i}"),
                        cluster: "C".into(),
                        max_store,
                        max_memory: u64::MAX,
                        ..ServerInfo::default()
                    };
                    usage[i].fill(&mut s);
                    s
                })
                .collect(),
            clustered: true,
            has_leader: true,
            ..Cluster::default()
        }
    }

    #[test]
    fn placement_prefers_the_server_using_least_and_refuses_when_none_has_room() {
        let used = |b: u64| Usage {
            store_used: b,
            ..Usage::default()
        };
        let c = three([used(5_000), used(10), used(900)], u64::MAX);
        for seed in 0..8 {
            let mut rng = SplitMix64::new(seed);
            let p = select_peers(&c, 1, "C", &cfg("file", -1), &[], &[], &mut rng).unwrap();
            assert_eq!(p, ["p1"], "seed {seed}");
        }
        // With 10 kB each, what is reserved counts as used: only p2 has 6 kB left.
        let reserved = |b: u64| Usage {
            store_reserved: b,
            ..Usage::default()
        };
        let c = three([reserved(8_000), reserved(5_000), reserved(4_000)], 10_000);
        let mut rng = SplitMix64::new(1);
        let p = select_peers(&c, 1, "C", &cfg("file", 6_000), &[], &[], &mut rng).unwrap();
        assert_eq!(p, ["p2"]);
        let e = select_peers(&c, 1, "C", &cfg("file", 6_001), &[], &[], &mut rng).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no suitable peers for placement, insufficient storage"
        );
        // A replicated stream goes to the servers running the fewest replicated assets.
        let ha = |n: u64| Usage {
            ha_assets: n,
            ..Usage::default()
        };
        let c = three([ha(3), ha(0), ha(1)], u64::MAX);
        let mut cfg3 = cfg("file", -1);
        cfg3.num_replicas = 2;
        let mut p = select_peers(&c, 2, "C", &cfg3, &[], &[], &mut rng).unwrap();
        p.sort();
        assert_eq!(p, ["p1", "p2"]);
    }

    #[test]
    fn the_meta_groups_assignments_reserve_on_their_peers_at_once() {
        use natsd_core::jetstream::cluster::{MetaEntry, MetaState, RaftGroup, StreamAssignment};
        let mut meta = MetaState::new("p0");
        for (i, (storage, max_bytes, peers)) in [
            ("file", 4_000, vec!["p0", "p1"]),
            ("file", 1_000, vec!["p1"]),
            ("memory", 500, vec!["p1"]),
            ("file", -1, vec!["p2"]),
        ]
        .into_iter()
        .enumerate()
        {
            let mut c = cfg(storage, max_bytes);
            c.name = format!("S{i}");
            let sa = StreamAssignment {
                account: "A".into(),
                created: 0,
                config: c,
                group: RaftGroup {
                    name: format!("G{i}"),
                    peers: peers.into_iter().map(str::to_owned).collect(),
                    storage: storage.into(),
                    cluster: "C".into(),
                    preferred: String::new(),
                },
                request: None,
            };
            meta.apply(i as u64 + 1, MetaEntry::AssignStream(sa));
        }
        // p0's heartbeat already said more than the assignments do: the larger counts.
        let mut c = three(
            [
                Usage {
                    store_reserved: 9_000,
                    ..Usage::default()
                },
                Usage::default(),
                Usage::default(),
            ],
            u64::MAX,
        );
        super::reserve_assigned(&meta, &mut c.servers);
        let r: Vec<(u64, u64)> = c
            .servers
            .iter()
            .map(|s| (s.store_reserved, s.memory_reserved))
            .collect();
        assert_eq!(r, [(9_000, 0), (5_000, 500), (0, 0)]);
    }
}
