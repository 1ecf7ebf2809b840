//! Clustered JetStream: what the Raft logs carry and what applying them means, as pure
//! machines (Go: server/jetstream_cluster.go).
//!
//! * [`meta`]: the meta group's entries ([`MetaEntry`]: stream and consumer assignments,
//!   updates and removals, peer and server removal) and its state machine ([`MetaState`]),
//!   whose [`MetaEffect`]s tell this server which replicas to start, update or stop and which
//!   requests to answer.
//! * [`api`]: who answers each clustered API request, and the JSON of the answers.
//! * [`checks`]: what the meta leader checks against the agreed state before it proposes.
//! * [`propose`]: the meta leader's side of each clustered API request: checks, placement,
//!   the entry to propose.
//! * [`placement`]: choosing a group's peers from the known servers, with nats-server's
//!   errors.
//! * [`entry`]: what a replicated stream's log carries ([`StreamEntry`]) and its byte form.
//! * [`replica`]: one replica of a replicated stream ([`ReplicatedStream`]): applying entries
//!   to the single-server stream and consumer machines, the leader's side, snapshots.
//! * [`catchup`]: filling a replica's store from a peer's ([`Catchup`] asks,
//!   [`CatchupServer`] answers in bounded chunks), since a snapshot holds no messages.
//! * [`shapes`]: the JSON of the clustered API (stream/consumer `cluster` info, the stepdown
//!   and removal requests, `/jsz` `meta_cluster`, `/varz` `jetstream.meta`).
//!
//! # Contract
//! Inputs are log entries (with their Raft index), snapshots, the known servers and a seeded
//! generator for placement; outputs are effects, entries to propose and JSON values. Nothing
//! here does I/O beyond the stream stores it is handed, reads a clock (times are inputs: the
//! leader's clock travels inside the entries it proposes) or draws OS randomness, and every map
//! is ordered, so the same entries applied in the same order give the same state and the same
//! snapshot bytes on every server. Entries and snapshots are versioned (see `codec`): a format
//! this build does not know is refused with an error, never a panic. An entry never re-decides
//! what the leader decided, and nothing is deleted except by an entry that says so.

pub mod api;
pub mod catchup;
pub mod checks;
mod codec;
pub mod entry;
pub mod meta;
pub mod placement;
pub mod propose;
pub mod replica;
pub mod shapes;

pub use catchup::{
    Catchup, CatchupChunk, CatchupEvent, CatchupLimits, CatchupRequest, CatchupServer,
};
pub use codec::{DecodeError, VERSION};
pub use entry::{MsgRecord, StreamEntry};
pub use meta::{
    Answer, ConsumerAssignment, MetaEffect, MetaEntry, MetaState, RaftGroup, Request,
    StreamAssignment,
};
pub use placement::{Cluster, PlacementError, ServerInfo};
pub use replica::{Applied, ReplicatedStream, SnapshotInfo};
pub use shapes::{ClusterInfo, MetaClusterInfo, PeerInfo};

#[cfg(test)]
mod catchup_tests;
#[cfg(test)]
mod checks_tests;
#[cfg(test)]
mod commit_tests;
#[cfg(test)]
mod flow_tests;
#[cfg(test)]
mod meta_tests;
#[cfg(test)]
mod move_tests;
#[cfg(test)]
mod placement_tests;
#[cfg(test)]
mod propose_tests;
#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod shapes_tests;
