//! Whether a replica's local data can be trusted, shared by its stores and its dispatcher.
//!
//! A replica whose log or vote failed a checksum on open is **damaged**: it may have lost entries
//! it once acknowledged, or forgotten whom it voted for, so it must neither vote nor lead until
//! its peers have repaired it (DESIGN "Raft"). It still follows a leader and accepts replicated
//! entries; once the group's commit index reaches the last index the damaged log held (or a
//! snapshot covers it), the replica holds every entry it might have acknowledged and is healthy
//! again.
//!
//! A lost vote file is the weaker case: after the repair the replica knows the current leader's
//! term, but not whom it voted for in a later term that was still being campaigned for when the
//! file was lost, so a vote in that one term could be given twice.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Why a replica is damaged, and what repairs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damage {
    /// A one-line reason for `/jsz`, `/healthz` and logs.
    pub reason: String,
    /// The replica is repaired once the group has committed this index (the highest index the
    /// damaged log may have held) and this replica holds it.
    pub repair_through: u64,
}

/// A shared, watchable damage flag.
#[derive(Debug, Clone)]
pub struct Health {
    tx: Arc<watch::Sender<Option<Damage>>>,
}

impl Health {
    pub(crate) fn new(damage: Option<Damage>) -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(damage)),
        }
    }

    /// Whether the replica is damaged (must not vote or lead).
    pub fn is_damaged(&self) -> bool {
        self.tx.borrow().is_some()
    }

    /// The current damage, if any.
    pub fn damage(&self) -> Option<Damage> {
        self.tx.borrow().clone()
    }

    /// The reason string for monitoring, when damaged.
    pub fn reason(&self) -> Option<String> {
        self.tx.borrow().as_ref().map(|d| d.reason.clone())
    }

    /// A receiver that sees every change (used to re-enable elections after repair).
    pub fn subscribe(&self) -> watch::Receiver<Option<Damage>> {
        self.tx.subscribe()
    }

    pub(crate) fn set(&self, damage: Option<Damage>) {
        self.tx.send_replace(damage);
    }
}
