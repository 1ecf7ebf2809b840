//! [`RaftHub`]: one per server. It opens the server's groups and routes each incoming RPC frame
//! to its group by name.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use natsd_core::jetstream::store::{Disk, DiskError};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::Config;

use crate::flush::Synced;
use crate::health::Health;
use crate::log_store::{LogStore, RecoveryReport, SharedDisk, StoreConfig};
use crate::machine::{GroupMachine, MachineStore};
use crate::network::{
    decode_request, encode_reply, GroupNetwork, RaftTransport, ReplyFrame, Request,
};
use crate::types::{LogId, NodeId, Raft};

/// Why a group could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Reading or recovering its files failed.
    #[error("raft storage: {0}")]
    Disk(#[from] DiskError),
    /// The Raft configuration is invalid.
    #[error("raft config: {0}")]
    Config(String),
    /// openraft refused to start.
    #[error("raft start: {0}")]
    Start(String),
    /// A group of that name is already open on this server.
    #[error("raft group {0} is already open")]
    Exists(String),
}

/// How to open one group.
#[derive(Debug, Clone, Default)]
pub struct GroupConfig {
    /// openraft's timing and snapshot policy. `cluster_name` is set to the group name.
    pub raft: Config,
    /// Log segment size.
    pub store: StoreConfig,
}

/// One open group on this server: its Raft handle and its health.
#[derive(Clone)]
pub struct RaftGroup {
    name: Arc<str>,
    raft: Raft,
    health: Health,
    log_ids: Arc<dyn Fn() -> Vec<LogId> + Send + Sync>,
    report: RecoveryReport,
    synced: Arc<Synced>,
}

impl RaftGroup {
    /// The group's name (`"$meta"`, a stream or consumer group name …).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The openraft handle: `client_write`, `initialize`, `change_membership`, `metrics`, ….
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The replica's health (shared with its stores).
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Whether the replica is damaged and so neither votes nor leads.
    pub fn is_damaged(&self) -> bool {
        self.health.is_damaged()
    }

    /// Why the replica is damaged, for `/jsz`, `/healthz` and logs.
    pub fn damage_reason(&self) -> Option<String> {
        self.health.reason()
    }

    /// What recovery found when the group was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.report
    }

    /// How far this replica's log is durable, and its flush-ahead switch.
    pub fn synced(&self) -> &Arc<Synced> {
        &self.synced
    }

    /// The ids of the log entries this replica holds (checkers compare them across replicas).
    pub fn log_ids(&self) -> Vec<LogId> {
        (self.log_ids)()
    }
}

/// The per-server dispatcher: it hosts every group the server is a member of and hands each
/// incoming RPC frame to the right one.
pub struct RaftHub {
    id: NodeId,
    transport: Arc<dyn RaftTransport>,
    groups: RwLock<BTreeMap<String, RaftGroup>>,
}

impl RaftHub {
    /// The hub of server `id`, sending through `transport`.
    pub fn new(id: NodeId, transport: Arc<dyn RaftTransport>) -> Arc<Self> {
        Arc::new(Self {
            id,
            transport,
            groups: RwLock::new(BTreeMap::new()),
        })
    }

    /// This server's Raft node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Opens group `name` with its files in `dir` on `disk`, recovering them, and starts its
    /// Raft node. A damaged replica starts with elections off and refuses votes until repaired.
    pub async fn open_group<D: Disk + Send + 'static>(
        &self,
        name: &str,
        cfg: GroupConfig,
        disk: SharedDisk<D>,
        dir: &str,
        machine: Box<dyn GroupMachine>,
    ) -> Result<RaftGroup, OpenError> {
        if self.group(name).is_some() {
            return Err(OpenError::Exists(name.to_owned()));
        }
        let (sm, snapshot_damaged) = MachineStore::open(disk.clone(), dir, machine)?;
        let health = Health::new(None);
        let (log, report) = LogStore::open(
            disk,
            dir,
            cfg.store.clone(),
            health.clone(),
            snapshot_damaged,
        )?;
        let synced = log.bind_synced(self.id);
        let mut raft_cfg = cfg.raft.clone();
        raft_cfg.cluster_name = name.to_owned();
        if health.is_damaged() {
            raft_cfg.enable_elect = false;
        }
        let raft_cfg = Arc::new(
            raft_cfg
                .validate()
                .map_err(|e| OpenError::Config(e.to_string()))?,
        );
        let network = GroupNetwork::new(name, Arc::clone(&self.transport));
        let reader = log.clone();
        let raft = Raft::new(self.id, raft_cfg, network, log, sm)
            .await
            .map_err(|e| OpenError::Start(e.to_string()))?;
        if health.is_damaged() {
            // Elections come back once the stores report the repair.
            let mut rx = health.subscribe();
            let r = raft.clone();
            tokio::spawn(async move {
                while rx.borrow_and_update().is_some() {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
                r.runtime_config().elect(true);
            });
        }
        let group = RaftGroup {
            name: Arc::from(name),
            raft,
            health,
            log_ids: Arc::new(move || reader.log_ids()),
            report,
            synced,
        };
        self.groups
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), group.clone());
        Ok(group)
    }

    /// The open group `name`.
    pub fn group(&self, name: &str) -> Option<RaftGroup> {
        self.groups
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The names of the open groups, sorted.
    pub fn group_names(&self) -> Vec<String> {
        self.groups
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// Stops group `name` and forgets it (its files stay).
    pub async fn close_group(&self, name: &str) {
        let group = self
            .groups
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        if let Some(g) = group {
            if let Err(e) = g.raft.shutdown().await {
                tracing::warn!(group = name, error = %e, "raft group did not shut down cleanly");
            }
        }
    }

    /// Stops every group.
    pub async fn shutdown(&self) {
        for name in self.group_names() {
            self.close_group(&name).await;
        }
    }

    /// Handles one incoming RPC frame and returns the reply frame to send back.
    pub async fn handle_frame(&self, frame: &[u8]) -> Vec<u8> {
        encode_reply(&self.dispatch(frame).await)
    }

    async fn dispatch(&self, frame: &[u8]) -> ReplyFrame {
        let req = match decode_request(frame) {
            Ok(r) => r,
            Err(e) => return ReplyFrame::Refused(format!("bad frame: {e}")),
        };
        let Some(group) = self.group(&req.group) else {
            return ReplyFrame::Refused(format!("no group {}", req.group));
        };
        match req.rpc {
            Request::Vote(v) => {
                // DESIGN: a damaged replica never votes; it may have lost what it acknowledged.
                if let Some(why) = group.damage_reason() {
                    return ReplyFrame::Refused(format!("damaged replica does not vote: {why}"));
                }
                match group.raft.vote(v).await {
                    Ok(r) => ReplyFrame::Vote(r),
                    Err(e) => ReplyFrame::Refused(e.to_string()),
                }
            }
            Request::Append(a) => match group.raft.append_entries(a).await {
                Ok(r) => ReplyFrame::Append(r),
                Err(e) => ReplyFrame::Refused(e.to_string()),
            },
            Request::Snapshot(s) => match group.raft.install_snapshot(s).await {
                Ok(r) => ReplyFrame::Snapshot(r),
                Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(m))) => {
                    ReplyFrame::SnapshotMismatch(m)
                }
                Err(e) => ReplyFrame::Refused(e.to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};
    use crate::local::LocalNet;
    use crate::network::RequestFrame;
    use openraft::raft::VoteRequest;
    use openraft::Vote;

    #[tokio::test]
    async fn frames_for_unknown_groups_or_garbage_are_refused() {
        let net = LocalNet::new();
        let hub = RaftHub::new(1, net.endpoint(1));
        let garbage = hub.handle_frame(b"\xff\xff\xff").await;
        assert!(matches!(
            decode::<ReplyFrame>(&garbage),
            Ok(ReplyFrame::Refused(_))
        ));
        let vote = encode(&RequestFrame {
            group: "nope".into(),
            rpc: Request::Vote(VoteRequest::new(Vote::new(1, 2), None)),
        })
        .unwrap();
        let reply = hub.handle_frame(&vote).await;
        match decode::<ReplyFrame>(&reply) {
            Ok(ReplyFrame::Refused(why)) => assert!(why.contains("nope"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
