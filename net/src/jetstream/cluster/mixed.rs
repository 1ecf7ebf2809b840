//! Mixed clusters: natsd and nats-server routed together, both running JetStream.
//!
//! nats-server replicates its JetStream metadata with its own Raft protocol (NRG, on
//! `$NRG.>` subjects); natsd runs openraft over its own `$NATSD.RAFT.<node>` subjects. The two
//! cannot share a meta group, and two meta groups in one cluster would be two JetStreams that
//! disagree about every stream. So a natsd server that is routed to a nats-server with
//! JetStream enabled **refuses**: it does not initialise a meta group, does not admit servers
//! into one it already leads (a group formed before the nats-server arrived is left as it
//! is), says so once at error level naming those servers, and reports it in `/jsz`
//! (`meta_cluster.refused`, `meta_cluster.refused_servers`) and `/healthz` (503) for as long as
//! one is routed. Its heartbeat says it refuses, so a natsd server that has not yet seen the
//! nats-server does not form a group with it either. Core messaging over the routes is not
//! affected, and a nats-server without JetStream in the cluster changes nothing.
//!
//! Telling the two apart: nats-server 2.9.10's route INFO says `"jetstream": true` when
//! JetStream is enabled (and is otherwise the same as natsd's: `version` 2.9.10, `go`
//! `go1.19.8`); natsd's route INFO never claims JetStream, so nats-server never places its
//! replicas on a natsd server. A peer that claims it and was also heard on natsd's JetStream
//! heartbeat is a natsd server all the same (should natsd ever advertise it).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};

use natsd_core::jetstream::cluster::shapes::MetaClusterInfo;

use super::{JsCluster, OFFLINE_AFTER};
use crate::server::{lock, Shared};

/// What a registered route says about its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RoutedPeer {
    /// `server_name` (its id when it has none).
    pub(super) name: String,
    /// `server_id`.
    pub(super) server_id: String,
    /// The route INFO's `jetstream`.
    pub(super) jetstream: bool,
}

/// The nats-server peers running JetStream, by name, sorted and deduplicated: routed peers
/// whose INFO claims JetStream and that never sent natsd's heartbeat (`natsd`: server ids
/// heard on it).
pub(super) fn go_jetstream_servers<'a>(
    routed: impl IntoIterator<Item = &'a RoutedPeer>,
    natsd: &BTreeSet<String>,
) -> Vec<String> {
    let names: BTreeSet<String> = routed
        .into_iter()
        .filter(|p| p.jetstream && !natsd.contains(&p.server_id))
        .map(|p| {
            if p.name.is_empty() {
                p.server_id.clone()
            } else {
                p.name.clone()
            }
        })
        .collect();
    names.into_iter().collect()
}

/// Whether this server may initialise or grow a meta group: not while it sees a nats-server
/// with JetStream itself (`go` non-empty), nor while another natsd server's last heartbeat
/// said it does (`peers_refusing`).
pub(super) fn may_form(go: &[String], peers_refusing: impl IntoIterator<Item = bool>) -> bool {
    go.is_empty() && !peers_refusing.into_iter().any(|r| r)
}

/// Why, for `/healthz` and `/jsz`.
pub(super) fn reason(go: &[String]) -> String {
    format!(
        "JetStream meta group refused: nats-server {} with JetStream in this cluster; natsd \
         does not speak nats-server's Raft protocol ($NRG)",
        go.join(", ")
    )
}

/// The error logged when the refusal starts or its servers change.
fn log_line(go: &[String]) -> String {
    format!(
        "JetStream cluster: refusing to form or join a meta group: nats-server {} runs \
         JetStream in this cluster and natsd does not speak nats-server's Raft protocol \
         ($NRG); messages still flow over the routes. Run clustered JetStream on natsd \
         servers only, or disable JetStream on {}",
        go.join(", "),
        if go.len() == 1 { "it" } else { "them" }
    )
}

/// This server's view of the mixed cluster: the route table it reads and the refusal in
/// force.
#[derive(Debug)]
pub(super) struct Guard {
    srv: Weak<Shared>,
    /// The nats-server JetStream servers last seen (empty: no refusal).
    go: Mutex<Vec<String>>,
}

impl Guard {
    pub(super) fn new(srv: &Arc<Shared>) -> Self {
        Self {
            srv: Arc::downgrade(srv),
            go: Mutex::new(Vec::new()),
        }
    }

    /// Looks at the registered routes again (`natsd`: server ids heard on the heartbeat),
    /// logs a change, and tells whether this server refuses.
    pub(super) fn check(&self, natsd: &BTreeSet<String>) -> bool {
        let routed = self.routed();
        let now = go_jetstream_servers(&routed, natsd);
        let mut last = lock(&self.go);
        if *last != now {
            if now.is_empty() {
                tracing::info!(
                    "JetStream cluster: no nats-server with JetStream is routed any more; the \
                     meta group may form"
                );
            } else {
                tracing::error!("{}", log_line(&now));
            }
            *last = now;
        }
        !last.is_empty()
    }

    /// The nats-server JetStream servers in force (empty: none).
    pub(super) fn refused(&self) -> Vec<String> {
        lock(&self.go).clone()
    }

    /// Why `/healthz` fails, while refusing.
    pub(super) fn unhealthy(&self) -> Option<String> {
        let go = self.refused();
        (!go.is_empty()).then(|| reason(&go))
    }

    /// Adds the refusal to `/jsz` `meta_cluster`.
    pub(super) fn annotate(&self, info: &mut MetaClusterInfo) {
        let go = self.refused();
        if !go.is_empty() {
            info.refused = reason(&go);
            info.refused_servers = go;
        }
    }

    fn routed(&self) -> Vec<RoutedPeer> {
        let Some(srv) = self.srv.upgrade() else {
            return Vec::new();
        };
        let st = lock(&srv.cluster.state);
        st.routes
            .values()
            .filter_map(|e| e.info.as_ref())
            .map(|i| RoutedPeer {
                name: i.server_name.clone(),
                server_id: i.server_id.clone(),
                jetstream: i.jetstream,
            })
            .collect()
    }
}

impl JsCluster {
    /// Called every tick: (this server refuses, a meta group may be initialised or grown
    /// here). Another natsd server's refusal counts while it is heard from.
    pub(super) fn mixed_check(&self) -> (bool, bool) {
        let (natsd, peers_refusing): (BTreeSet<String>, Vec<bool>) = {
            let peers = lock(&self.peers);
            let ids = peers.values().map(|p| p.hb.server_id.clone()).collect();
            let refusing = peers
                .values()
                .filter(|p| p.last.elapsed() < OFFLINE_AFTER)
                .map(|p| p.hb.refusing)
                .collect();
            (ids, refusing)
        };
        let refusing = self.mixed.check(&natsd);
        (refusing, may_form(&self.mixed.refused(), peers_refusing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, id: &str, jetstream: bool) -> RoutedPeer {
        RoutedPeer {
            name: name.to_owned(),
            server_id: id.to_owned(),
            jetstream,
        }
    }

    #[test]
    fn a_jetstream_nats_server_is_named_once() {
        // Two routes to g1 (a duplicate before it closes), one to natsd n1, one to a
        // nats-server without JetStream.
        let routed = [
            peer("g1", "NG1", true),
            peer("g1", "NG1", true),
            peer("n1", "NN1", false),
            peer("plain", "NP", false),
        ];
        let got = go_jetstream_servers(&routed, &BTreeSet::from(["NN1".to_owned()]));
        assert_eq!(got, ["g1"]);
    }

    #[test]
    fn no_refusal_without_jetstream_on_the_nats_servers() {
        let routed = [peer("g1", "NG1", false), peer("g2", "NG2", false)];
        assert!(go_jetstream_servers(&routed, &BTreeSet::new()).is_empty());
        assert!(may_form(&[], [false, false]));
    }

    #[test]
    fn a_peer_heard_on_the_heartbeat_is_natsd_even_if_it_claims_jetstream() {
        let routed = [peer("n1", "NN1", true), peer("", "NG2", true)];
        let got = go_jetstream_servers(&routed, &BTreeSet::from(["NN1".to_owned()]));
        // A nameless nats-server is named by its id.
        assert_eq!(got, ["NG2"]);
    }

    #[test]
    fn a_refusal_here_or_at_a_peer_stops_the_group() {
        let go = vec!["g1".to_owned()];
        assert!(!may_form(&go, [false]));
        assert!(!may_form(&[], [false, true]), "a peer refuses");
        assert!(may_form(&[], []));
    }

    #[test]
    fn the_texts_name_the_servers() {
        let go = vec!["g1".to_owned(), "g2".to_owned()];
        let r = reason(&go);
        assert!(
            r.contains("nats-server g1, g2") && r.contains("$NRG"),
            "{r}"
        );
        let l = log_line(&go);
        assert!(
            l.contains("g1, g2") && l.contains("disable JetStream on them"),
            "{l}"
        );
        assert!(log_line(&go[..1]).contains("disable JetStream on it"));
    }

    #[test]
    fn annotate_fills_jsz_only_while_refusing() {
        let g = Guard {
            srv: Weak::new(),
            go: Mutex::new(Vec::new()),
        };
        let mut info = MetaClusterInfo::default();
        g.annotate(&mut info);
        assert_eq!(info, MetaClusterInfo::default());
        *lock(&g.go) = vec!["g1".to_owned()];
        g.annotate(&mut info);
        assert_eq!(info.refused_servers, ["g1"]);
        assert!(g.unhealthy().is_some_and(|w| w.contains("g1")));
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["refused_servers"], serde_json::json!(["g1"]));
    }
}
