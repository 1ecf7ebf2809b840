//! natsd-raft: the Raft groups under natsd's replicated JetStream, built on `openraft`.
//!
//! This crate knows nothing of JetStream. It gives each replicated thing a **group** — one
//! meta group for the cluster's JetStream metadata, one per replicated stream and one per
//! replicated consumer — whose log orders opaque [`Command`]s and whose [`GroupMachine`] (the
//! sans-IO JetStream machines in `natsd-core`) applies them.
//!
//! # Why openraft 0.9
//!
//! The stable 0.9 line (0.9.25), with `serde` (RPCs and entries cross the wire),
//! `storage-v2` (the split `RaftLogStorage` / `RaftStateMachine` traits, sealed without it) and
//! `loosen-follower-log-revert` (see "Damaged replicas").
//! 0.10 is still alpha. One [`TypeConfig`] serves every group: `u64` node ids, [`NodeInfo`]
//! nodes, opaque commands and replies, snapshots as bytes, and the [`SeededRuntime`].
//!
//! # How it is driven
//!
//! One [`RaftHub`] per server. [`RaftHub::open_group`] recovers a group's files from a
//! `natsd_core` [`Disk`](natsd_core::jetstream::store::Disk) directory and starts its openraft
//! node; the returned [`RaftGroup`] gives the `openraft::Raft` handle (`initialize`,
//! `client_write`, `change_membership`, metrics). Outgoing RPCs go through a [`RaftTransport`]
//! as frames that name their group (production: the cluster's route connections; tests:
//! [`LocalNet`]); the receiving server passes each frame to [`RaftHub::handle_frame`] and sends the
//! reply frame back. Every RPC carries a deadline (openraft's `hard_ttl`); a transport's
//! connect failure becomes openraft's `Unreachable` (it backs off), anything else `Network`.
//! After `initialize`, wait for the membership to commit before changing it.
//!
//! ```
//! use std::collections::BTreeMap;
//! use natsd_core::jetstream::store::MemDisk;
//! use natsd_raft::{Command, GroupConfig, GroupMachine, LocalNet, NodeInfo, RaftHub, RestoreError, SharedDisk};
//!
//! /// A replicated counter: each command adds its first byte.
//! struct Counter(u64);
//!
//! impl GroupMachine for Counter {
//!     fn apply(&mut self, _index: u64, command: &[u8]) -> Vec<u8> {
//!         self.0 += u64::from(command.first().copied().unwrap_or(0));
//!         self.0.to_le_bytes().to_vec()
//!     }
//!     fn snapshot(&self) -> Vec<u8> {
//!         self.0.to_le_bytes().to_vec()
//!     }
//!     fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
//!         let bytes = snapshot.try_into().map_err(|_| RestoreError::Decode("length".into()))?;
//!         self.0 = u64::from_le_bytes(bytes);
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! natsd_raft::seed_thread_rng(42); // the server seed
//! let net = LocalNet::new(); // production: frames over the route connections
//! let hub = RaftHub::new(1, net.endpoint(1));
//! net.register(&hub);
//! let disk = SharedDisk::new(MemDisk::new(1)); // production: the server's file disk
//! let group = hub
//!     .open_group("$meta", GroupConfig::default(), disk, "raft/meta", Box::new(Counter(0)))
//!     .await
//!     .unwrap();
//! assert!(!group.is_damaged());
//! let me = NodeInfo { name: "n1".into(), server_id: "S1".into() };
//! group.raft().initialize(BTreeMap::from([(1, me)])).await.unwrap();
//! let reply = group.raft().client_write(Command(vec![5])).await.unwrap();
//! assert_eq!(reply.data.0, 5u64.to_le_bytes());
//! hub.shutdown().await;
//! # });
//! ```
//!
//! # Durability
//!
//! A log append is reported to openraft (`LogFlushed::log_io_completed`) only after `Disk::sync`
//! returned `Ok`, so an entry a replica acknowledged survives power loss. Votes and purge points
//! are written to a new file, synced and renamed into place. A failed sync freezes the log; a
//! failed append (ENOSPC) is rolled back. Every record carries CRC-32C checksums (see
//! [`LogStore`]). Writes, truncates and renames are synchronous calls on openraft's storage
//! task; an append's fsync runs as the disk's sync job on a blocking thread when the disk offers
//! one (`Disk::sync_later`, as the production disk does).
//!
//! A replica that led before a restart does not resume leading in that term: its vote is read
//! back uncommitted, so the group elects again and new entries get fresh log ids. (openraft 0.9
//! would resume at once; a leader whose log lost an unsynced tail its followers already hold
//! would then write different entries under the ids they hold.)
//!
//! # Damaged replicas
//!
//! On open, a torn or zeroed tail of the newest segment is cut: that is what power loss leaves.
//! Any other checksum failure, a gap in the log, a vote file that fails its checksum, or a lost
//! snapshot whose log was purged marks the replica **damaged** ([`Health`], with a reason string
//! for `/jsz`, `/healthz` and logs). The damaged files are renamed to `damaged-*`, never deleted.
//! A damaged replica starts with elections off and refuses vote requests, so it can neither
//! vote nor lead; it follows the leader, which refills its log or sends a snapshot, and it
//! becomes healthy once the group's commit index reaches the last index the damaged log held.
//! The damage is recorded in the `state` file, so a restart does not forget it.
//!
//! A damaged replica's log is shorter than the leader last saw it, which openraft forbids by
//! default (the leader panics): the workspace enables openraft's `loosen-follower-log-revert`
//! for that. The flag is only safe because of the rule above — the data loss openraft's FAQ
//! describes for it needs the shortened replica's vote.
//!
//! # Determinism
//!
//! openraft's only randomness is its election timeout, drawn from the runtime's `thread_rng`.
//! [`SeededRuntime`] makes that a generator seeded per run ([`seed_thread_rng`]), so under
//! turmoil one seed replays a whole cluster run. Iteration over groups and peers uses ordered
//! maps. Nothing here reads the clock except through tokio's (paused, in the simulation) timers.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// openraft's storage traits return its `StorageError` by value, and the functions behind them
// pass it along unboxed.
#![allow(clippy::result_large_err)]

mod codec;
mod flush;
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod hub;
mod local;
mod log_store;
#[cfg(test)]
mod log_store_tests;
mod machine;
mod network;
mod record;
mod runtime;
mod types;

pub use flush::Synced;
pub use health::{Damage, Health};
pub use hub::{GroupConfig, OpenError, RaftGroup, RaftHub};
pub use local::LocalNet;
pub use log_store::{LogStore, RecoveryReport, SharedDisk, StoreConfig};
pub use machine::{GroupMachine, MachineStore, RestoreError};
pub use network::{BoxFuture, GroupNetwork, PeerClient, RaftTransport, TransportError};
pub use runtime::{seed_thread_rng, set_process_seed, SeededRng, SeededRuntime};
pub use types::{
    Command, Entry, LogId, NodeId, NodeInfo, Raft, Reply, SnapshotMeta, StorageError,
    StoredMembership, TypeConfig, Vote,
};

/// openraft itself, at the version this crate is built on.
pub use openraft;
