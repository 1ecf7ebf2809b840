//! An in-process cluster of Raft hubs on `MemDisk`s, and a small key/value machine.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // test support: a failed step is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use natsd_core::jetstream::store::{CrashMode, MemDisk};
use natsd_raft::openraft::error::{ClientWriteError, RaftError};
use natsd_raft::openraft::{Config, ServerState, SnapshotPolicy};
use natsd_raft::{
    Command, GroupConfig, GroupMachine, LocalNet, NodeId, NodeInfo, RaftGroup, RaftHub,
    RestoreError, SharedDisk, StoreConfig,
};

pub const GROUP: &str = "kv";
pub const DIR: &str = "raft/kv";

/// What one replica applied, in order: `(index, command)`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KvState {
    pub applied: Vec<(u64, String)>,
}

/// A machine that remembers every command it applied (its snapshot is the whole list).
pub struct Kv(pub Arc<Mutex<KvState>>);

impl GroupMachine for Kv {
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        let cmd = String::from_utf8_lossy(command).into_owned();
        let mut s = self.0.lock().unwrap();
        s.applied.push((index, cmd.clone()));
        format!("ok {cmd}").into_bytes()
    }

    fn snapshot(&self) -> Vec<u8> {
        let s = self.0.lock().unwrap();
        serde_json::to_vec(&s.applied).unwrap()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let applied =
            serde_json::from_slice(snapshot).map_err(|e| RestoreError::Decode(e.to_string()))?;
        self.0.lock().unwrap().applied = applied;
        Ok(())
    }
}

pub fn node_info(id: NodeId) -> NodeInfo {
    NodeInfo {
        name: format!("n{id}"),
        server_id: format!("S{id}"),
    }
}

pub fn config(snapshot_every: Option<u64>) -> GroupConfig {
    let mut raft = Config {
        heartbeat_interval: 50,
        election_timeout_min: 200,
        election_timeout_max: 400,
        ..Config::default()
    };
    if let Some(n) = snapshot_every {
        raft.snapshot_policy = SnapshotPolicy::LogsSinceLast(n);
        raft.max_in_snapshot_log_to_keep = 0;
        raft.purge_batch_size = 1;
    }
    GroupConfig {
        raft,
        store: StoreConfig { segment_bytes: 256 },
    }
}

pub struct Node {
    pub hub: Arc<RaftHub>,
    pub group: RaftGroup,
    pub state: Arc<Mutex<KvState>>,
}

pub struct Cluster {
    pub net: LocalNet,
    pub cfg: GroupConfig,
    pub disks: BTreeMap<NodeId, MemDisk>,
    pub nodes: BTreeMap<NodeId, Node>,
}

impl Cluster {
    /// Nodes `ids` started on fresh disks; the first one initializes the group with all of them.
    pub async fn new(ids: &[NodeId], cfg: GroupConfig) -> Self {
        let mut c = Self {
            net: LocalNet::new(),
            cfg,
            disks: BTreeMap::new(),
            nodes: BTreeMap::new(),
        };
        for &id in ids {
            c.start(id).await;
        }
        let members: BTreeMap<NodeId, NodeInfo> =
            ids.iter().map(|&id| (id, node_info(id))).collect();
        c.nodes[&ids[0]]
            .group
            .raft()
            .initialize(members)
            .await
            .unwrap();
        c
    }

    /// Starts node `id` on its disk (a new one the first time).
    pub async fn start(&mut self, id: NodeId) {
        let disk = self
            .disks
            .entry(id)
            .or_insert_with(|| MemDisk::new(id))
            .clone();
        let hub = RaftHub::new(id, self.net.endpoint(id));
        self.net.register(&hub);
        let state = Arc::new(Mutex::new(KvState::default()));
        let group = hub
            .open_group(
                GROUP,
                self.cfg.clone(),
                SharedDisk::new(disk),
                DIR,
                Box::new(Kv(Arc::clone(&state))),
            )
            .await
            .unwrap();
        self.nodes.insert(id, Node { hub, group, state });
    }

    /// Stops node `id` and takes its disk through a power loss.
    pub async fn crash(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).expect("running");
        node.hub.shutdown().await;
        self.disks[&id].crash(CrashMode::LoseUnsynced);
    }

    pub fn group(&self, id: NodeId) -> &RaftGroup {
        &self.nodes[&id].group
    }

    pub fn applied(&self, id: NodeId) -> Vec<(u64, String)> {
        self.nodes[&id].state.lock().unwrap().applied.clone()
    }

    /// The leader among running nodes, once one is up (virtual-time deadline).
    pub async fn leader(&self) -> NodeId {
        self.wait_for("a leader", Duration::from_secs(30), |c| c.current_leader())
            .await
    }

    pub fn current_leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .find(|(_, n)| n.group.raft().metrics().borrow().state == ServerState::Leader)
            .map(|(id, _)| *id)
    }

    /// Polls `f` until it returns `Some`, or panics after `within` (virtual time).
    pub async fn wait_for<T>(
        &self,
        what: &str,
        within: Duration,
        f: impl Fn(&Self) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Writes `cmd` through whichever node leads; returns the log index it committed at.
    pub async fn write(&self, cmd: &str) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "write {cmd} never committed"
            );
            let Some(leader) = self.current_leader() else {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            };
            let raft = self.group(leader).raft().clone();
            let res = tokio::time::timeout(
                Duration::from_secs(2),
                raft.client_write(Command(cmd.as_bytes().to_vec())),
            )
            .await;
            match res {
                Ok(Ok(r)) => {
                    assert_eq!(r.data.0, format!("ok {cmd}").into_bytes());
                    return r.log_id.index;
                }
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) | Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Err(e)) => panic!("write {cmd}: {e}"),
            }
        }
    }

    /// Waits until every running node applied through `index`.
    pub async fn wait_applied(&self, index: u64) {
        self.wait_for("every node to apply", Duration::from_secs(30), |c| {
            c.nodes
                .values()
                .all(|n| {
                    n.group
                        .raft()
                        .metrics()
                        .borrow()
                        .last_applied
                        .is_some_and(|l| l.index >= index)
                })
                .then_some(())
        })
        .await;
    }

    /// Checks that every running node applied every command in `acked`, and the same commands
    /// in the same order.
    pub fn check_no_loss(&self, acked: &[String]) {
        let mut reference: Option<Vec<String>> = None;
        for (id, node) in &self.nodes {
            let cmds: Vec<String> = node
                .state
                .lock()
                .unwrap()
                .applied
                .iter()
                .map(|(_, c)| c.clone())
                .collect();
            let have: BTreeSet<&String> = cmds.iter().collect();
            for a in acked {
                assert!(have.contains(a), "node {id} lost acknowledged {a}");
            }
            match &reference {
                None => reference = Some(cmds),
                Some(r) => {
                    let n = r.len().min(cmds.len());
                    assert_eq!(r[..n], cmds[..n], "node {id} applied a different order");
                }
            }
        }
    }

    pub async fn shutdown(self) {
        for n in self.nodes.values() {
            n.hub.shutdown().await;
        }
    }
}
