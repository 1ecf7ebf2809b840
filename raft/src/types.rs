//! The one openraft type configuration every group uses, and its payload types.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::runtime::SeededRuntime;

/// A server's identity inside every Raft group: its Raft node id is a `u64` derived by the
/// caller (e.g. from the server id), and this names the server for logs and monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The server's configured name (`server_name`).
    pub name: String,
    /// The server's public id (the `server_id` in INFO).
    pub server_id: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name, self.server_id)
    }
}

/// An opaque command proposed to a group; the group's [`GroupMachine`](crate::GroupMachine)
/// decodes it (the JetStream machines in `natsd-core` encode their own entries).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command(pub Vec<u8>);

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({} bytes)", self.0.len())
    }
}

/// The opaque reply a [`GroupMachine`](crate::GroupMachine) returned for a command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply(pub Vec<u8>);

/// A Raft node id: unique per server across the cluster, the same in every group.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The openraft type configuration shared by every natsd Raft group.
    pub TypeConfig:
        D = Command,
        R = Reply,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = SeededRuntime,
);

/// A log entry of a natsd group.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id (term, leader, index) of a natsd group.
pub type LogId = openraft::LogId<NodeId>;
/// A vote of a natsd group.
pub type Vote = openraft::Vote<NodeId>;
/// openraft's storage error for natsd groups.
pub type StorageError = openraft::StorageError<NodeId>;
/// The running Raft handle of one group.
pub type Raft = openraft::Raft<TypeConfig>;
/// Snapshot metadata of a natsd group.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeInfo>;
/// The membership as of some log id.
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
