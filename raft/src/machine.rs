//! [`GroupMachine`], the applied state of a group, and [`MachineStore`], which wraps it in
//! openraft's `RaftStateMachine`.
//!
//! The machine itself lives in memory. What survives a restart is its latest snapshot, written to
//! `snapshot` in the group's directory (one checksummed record, replaced via `snapshot.new` and a
//! rename) together with the last applied log id and membership; openraft re-applies the log after
//! it on restart once the commit index is known again.

use std::io::Cursor;
use std::sync::{Arc, Mutex, MutexGuard};

use natsd_core::jetstream::store::{Disk, DiskError};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, Snapshot, StorageIOError};
use serde::{Deserialize, Serialize};

use crate::codec::{decode, encode};
use crate::log_store::{read_record_file, replace_file, set_aside, SharedDisk};
use crate::types::{Entry, LogId, Reply, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

/// Why a snapshot could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The snapshot bytes do not decode as this machine's state.
    #[error("snapshot does not decode: {0}")]
    Decode(String),
}

/// The replicated state of one group: the JetStream meta, stream and consumer machines in
/// `natsd-core` implement it; this crate only orders and persists their commands.
///
/// Every method is deterministic: the same commands in the same order give the same state on
/// every replica (no clock, no randomness, no hash-order iteration).
pub trait GroupMachine: Send + 'static {
    /// Applies one committed command at log `index`; returns the reply for the proposer.
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8>;
    /// The whole state, encoded.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the whole state with a decoded snapshot.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError>;
}

/// What the `snapshot` file holds.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

struct Inner<D> {
    disk: SharedDisk<D>,
    dir: String,
    machine: Box<dyn GroupMachine>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    current: Option<(SnapshotMeta, Vec<u8>)>,
    snapshots_built: u64,
}

/// The openraft state machine of a group: a [`GroupMachine`] plus its applied log id,
/// membership and snapshot. Cheap to clone (clones are its snapshot builders).
pub struct MachineStore<D> {
    inner: Arc<Mutex<Inner<D>>>,
}

impl<D> Clone for MachineStore<D> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

fn any_err(e: impl std::fmt::Display) -> openraft::AnyError {
    openraft::AnyError::error(e.to_string())
}

impl<D: Disk + Send + 'static> MachineStore<D> {
    /// Opens the state machine of the group in `dir`: restores `machine` from the snapshot file
    /// when there is one. Returns whether a snapshot file existed but failed its checksum (it is
    /// then set aside, and the log store decides whether that damages the replica).
    pub fn open(
        disk: SharedDisk<D>,
        dir: &str,
        mut machine: Box<dyn GroupMachine>,
    ) -> Result<(Self, bool), DiskError> {
        let path = format!("{dir}/snapshot");
        let mut damaged = false;
        let mut current = None;
        let mut last_applied = None;
        let mut membership = StoredMembership::default();
        let loaded = {
            let d = disk.lock();
            read_record_file(&*d, &path)
        };
        match loaded.map(|o| o.map(|b| decode::<StoredSnapshot>(&b))) {
            Ok(None) => {}
            Ok(Some(Ok(snap))) => match machine.restore(&snap.data) {
                Ok(()) => {
                    last_applied = snap.meta.last_log_id;
                    membership = snap.meta.last_membership.clone();
                    current = Some((snap.meta, snap.data));
                }
                Err(e) => {
                    tracing::error!(dir, error = %e, "raft snapshot does not restore");
                    damaged = true;
                }
            },
            Ok(Some(Err(_))) | Err(_) => damaged = true,
        }
        if damaged {
            let moved = set_aside(&mut *disk.lock(), dir, "snapshot")?;
            tracing::error!(dir, moved, "raft snapshot fails its checksum; set aside");
        }
        let inner = Inner {
            disk,
            dir: dir.to_owned(),
            machine,
            last_applied,
            membership,
            current,
            snapshots_built: 0,
        };
        Ok((
            Self {
                inner: Arc::new(Mutex::new(inner)),
            },
            damaged,
        ))
    }

    fn lock(&self) -> MutexGuard<'_, Inner<D>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The last applied log id.
    pub fn last_applied(&self) -> Option<LogId> {
        self.lock().last_applied
    }
}

impl<D: Disk> Inner<D> {
    fn persist(&mut self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        let bytes = encode(&StoredSnapshot {
            meta: meta.clone(),
            data: data.to_vec(),
        })
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), any_err(e)))?;
        let path = format!("{}/snapshot", self.dir);
        replace_file(&mut *self.disk.lock(), &path, &bytes)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), any_err(e)).into())
    }
}

impl<D: Disk + Send + 'static> RaftSnapshotBuilder<TypeConfig> for MachineStore<D> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let mut g = self.lock();
        let data = g.machine.snapshot();
        g.snapshots_built += 1;
        let snapshot_id = match g.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, g.snapshots_built),
            None => format!("0-0-{}", g.snapshots_built),
        };
        let meta = SnapshotMeta {
            last_log_id: g.last_applied,
            last_membership: g.membership.clone(),
            snapshot_id,
        };
        g.persist(&meta, &data)?;
        g.current = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl<D: Disk + Send + 'static> RaftStateMachine<TypeConfig> for MachineStore<D> {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let g = self.lock();
        Ok((g.last_applied, g.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Reply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut g = self.lock();
        let mut replies = Vec::new();
        for entry in entries {
            let reply = match &entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(cmd) => g.machine.apply(entry.log_id.index, &cmd.0),
                EntryPayload::Membership(m) => {
                    g.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    Vec::new()
                }
            };
            g.last_applied = Some(entry.log_id);
            replies.push(Reply(reply));
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut g = self.lock();
        g.machine.restore(&data).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(meta.signature()),
                any_err(e),
            ))
        })?;
        // Durable before openraft purges the log it replaces.
        g.persist(meta, &data)?;
        g.last_applied = meta.last_log_id;
        g.membership = meta.last_membership.clone();
        g.current = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let g = self.lock();
        Ok(g.current.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}
