//! The machines together, as three (then four) servers would drive them: placement picks the
//! peers, the meta entry starts the replicas its effects name, a stream leader's entries make
//! every replica identical, a leader change exposes the old leader's unreplicated write, and a
//! peer removal moves the stream onto a new server that catches up from the log.

use std::collections::BTreeMap;

use serde_json::json;

use super::placement::{self, Cluster, ServerInfo};
use super::*;
use crate::jetstream::store::{FileStore, FileStoreConfig, MemDisk, StreamStore, SyncPolicy};
use crate::jetstream::stream::{check_config, store_config};
use crate::rng::SplitMix64;

const T0: u64 = 1_700_000_000_000_000_000;

fn servers(n: u32) -> Vec<ServerInfo> {
    (1..=n)
        .map(|i| ServerInfo {
            name: format!("n{i}"),
            id: format!("p{i}"),
            cluster: "C1".into(),
            max_store: 1 << 30,
            ..ServerInfo::default()
        })
        .collect()
}

/// One server: its meta machine, its disk, and the replicas its effects started.
struct Server {
    meta: MetaState,
    disk: MemDisk,
    replicas: BTreeMap<String, ReplicatedStream>,
}

impl Server {
    fn new(id: &str, seed: u64) -> Self {
        Self {
            meta: MetaState::new(id),
            disk: MemDisk::new(seed),
            replicas: BTreeMap::new(),
        }
    }

    fn start(&mut self, sa: &StreamAssignment) {
        let f = FileStoreConfig {
            block_size: 4096,
            sync: SyncPolicy::Always,
        };
        let dir = format!("streams/{}", sa.config.name);
        let store: Box<dyn StreamStore + Send> = Box::new(
            FileStore::open(self.disk.clone(), &dir, store_config(&sa.config), f).unwrap(),
        );
        let r = ReplicatedStream::new(sa.config.clone(), store, sa.created);
        self.replicas.insert(sa.config.name.clone(), r);
    }

    fn apply_meta(&mut self, index: u64, e: &MetaEntry) -> Vec<MetaEffect> {
        let fx = self
            .meta
            .apply(index, MetaEntry::decode(&e.encode()).unwrap());
        for f in &fx {
            match f {
                MetaEffect::StartStream(sa) => self.start(sa),
                MetaEffect::StopStream { stream, .. } => {
                    self.replicas.remove(stream);
                }
                _ => {}
            }
        }
        fx
    }
}

fn msgs(r: &ReplicatedStream) -> Vec<(u64, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut seq = 0;
    while let Ok(m) = r.stream.store.load_next_msg("", seq) {
        out.push((m.seq, m.subject, m.payload.to_vec()));
        seq = m.seq + 1;
    }
    out
}

#[test]
fn three_servers_place_replicate_fail_over_and_move_a_stream() {
    let mut cluster = Cluster {
        servers: servers(3),
        clustered: true,
        has_leader: true,
        ..Cluster::default()
    };
    let mut s: BTreeMap<String, Server> = (1..=3u64)
        .map(|i| (format!("p{i}"), Server::new(&format!("p{i}"), i)))
        .collect();

    // The meta leader places and proposes the stream; every server applies the entry.
    // The single-server checks fill the defaults (they refuse R>1 on one server, so the
    // replica count is set after them, as the clustered create path will).
    let mut placed_cfg = check_config(
        serde_json::from_value(json!({"name": "ORDERS", "subjects": ["orders.>"]})).unwrap(),
    )
    .unwrap();
    placed_cfg.num_replicas = 3;
    let mut rng = SplitMix64::new(7);
    let group = placement::place_stream(&cluster, &placed_cfg, "C1", &[], &mut rng).unwrap();
    assert_eq!(group.peers.len(), 3);
    let assign = MetaEntry::AssignStream(StreamAssignment {
        account: "A".into(),
        created: T0,
        config: placed_cfg.clone(),
        group,
        request: Some(Request {
            account: "A".into(),
            server: "n1".into(),
            subject: "$JS.API.STREAM.CREATE.ORDERS".into(),
            reply: "_INBOX.1".into(),
        }),
    });
    for srv in s.values_mut() {
        let fx = srv.apply_meta(1, &assign);
        assert!(matches!(
            fx.last(),
            Some(MetaEffect::Respond {
                answer: Answer::Ok,
                ..
            })
        ));
    }
    assert!(s.values().all(|srv| srv.replicas.contains_key("ORDERS")));

    // p1 leads the stream group: its entries go to everyone (itself included).
    let mut log: Vec<StreamEntry> = Vec::new();
    let leader = s.get_mut("p1").unwrap().replicas.get_mut("ORDERS").unwrap();
    for i in 0..5u64 {
        let body = format!("o{i}");
        log.extend(
            leader
                .leader_publish("orders.new", b"", body.as_bytes(), T0 + i)
                .unwrap()
                .1,
        );
    }
    let commit =
        |s: &mut BTreeMap<String, Server>, log: &[StreamEntry], from: usize, who: &[&str]| {
            for id in who {
                let r = s.get_mut(*id).unwrap().replicas.get_mut("ORDERS").unwrap();
                for (i, e) in log.iter().enumerate().skip(from) {
                    let e = StreamEntry::decode(&e.encode()).unwrap();
                    let a = r.apply(i as u64 + 1, &e);
                    assert!(
                        matches!(a, Applied::Done | Applied::AlreadyHad),
                        "{id} #{}: {a:?}",
                        i + 1
                    );
                }
            }
        };
    commit(&mut s, &log, 0, &["p1", "p2", "p3"]);

    // p1 stores a sixth message but loses leadership before it is committed.
    let old = s.get_mut("p1").unwrap().replicas.get_mut("ORDERS").unwrap();
    let lost = old
        .leader_publish("orders.new", b"", b"lost", T0 + 10)
        .unwrap()
        .1;
    assert_eq!(lost.len(), 1);

    // p2 leads now; p3 follows; p1's speculative write is found when p2's entry arrives.
    let from = log.len();
    let l2 = s.get_mut("p2").unwrap().replicas.get_mut("ORDERS").unwrap();
    for i in 0..3u64 {
        let body = format!("n{i}");
        log.extend(
            l2.leader_publish("orders.new", b"", body.as_bytes(), T0 + 20 + i)
                .unwrap()
                .1,
        );
    }
    commit(&mut s, &log, from, &["p2", "p3"]);
    let old = s.get_mut("p1").unwrap().replicas.get_mut("ORDERS").unwrap();
    assert_eq!(
        old.apply(from as u64 + 1, &log[from]),
        Applied::Diverged { seq: 6 }
    );
    // It is rebuilt from the log on an empty store.
    let p1 = s.get_mut("p1").unwrap();
    p1.disk = MemDisk::new(99);
    let sa = p1.meta.stream("A", "ORDERS").unwrap().assignment.clone();
    p1.start(&sa);
    commit(&mut s, &log, 0, &["p1"]);
    let want = msgs(&s["p2"].replicas["ORDERS"]);
    assert_eq!(want.len(), 8);
    for id in ["p1", "p3"] {
        assert_eq!(msgs(&s[id].replicas["ORDERS"]), want, "{id}");
    }

    // p3 is removed from the stream; placement puts p4 in its place; p4 catches up.
    cluster.servers = servers(4);
    s.insert("p4".into(), Server::new("p4", 4));
    let snap = s["p1"].meta.snapshot();
    // A new server learns the meta state from a snapshot; it hosts nothing yet.
    let fx = s.get_mut("p4").unwrap().meta.restore(&snap).unwrap();
    assert!(fx.is_empty(), "{fx:?}");
    let meta = &s["p1"].meta;
    let peer = meta
        .check_peer_remove("A", "ORDERS", "n3", &cluster.servers)
        .unwrap();
    let rec = meta.stream("A", "ORDERS").unwrap();
    let replacement = placement::replace_peer(
        &cluster,
        &rec.assignment.group,
        &rec.assignment.config,
        &peer,
        &mut rng,
    )
    .unwrap();
    assert_eq!(replacement.as_deref(), Some("p4"));
    let remove = MetaEntry::RemovePeer {
        account: "A".into(),
        stream: "ORDERS".into(),
        peer,
        replacement,
        request: None,
    };
    for srv in s.values_mut() {
        srv.apply_meta(2, &remove);
    }
    assert!(
        !s["p3"].replicas.contains_key("ORDERS"),
        "p3 stopped its replica"
    );
    commit(&mut s, &log, 0, &["p4"]);
    assert_eq!(msgs(&s["p4"].replicas["ORDERS"]), want);
    let snaps: Vec<Vec<u8>> = s.values().map(|srv| srv.meta.snapshot()).collect();
    assert!(
        snaps.windows(2).all(|w| w[0] == w[1]),
        "every meta state agrees"
    );
}
