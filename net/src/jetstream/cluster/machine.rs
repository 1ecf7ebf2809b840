//! The meta group's [`GroupMachine`]: core's [`MetaState`] applied in log order, its effects
//! handed on to the server.

use std::sync::{Arc, Mutex};

use natsd_core::jetstream::cluster::{MetaEffect, MetaEntry, MetaState};
use natsd_raft::{GroupMachine, RestoreError};
use tokio::sync::mpsc::UnboundedSender;

use crate::server::lock;

/// The meta state, shared by the machine (which applies) and the API (which reads it).
pub(super) type SharedMeta = Arc<Mutex<MetaState>>;

/// [`MetaState`] as a Raft group's machine. The effects of each entry (replicas to start or
/// stop, requests to answer) go to `effects` in apply order.
pub(super) struct MetaMachine {
    state: SharedMeta,
    effects: UnboundedSender<Vec<MetaEffect>>,
}

impl MetaMachine {
    /// An empty machine for the server whose peer id is `me`.
    pub(super) fn new(me: &str, effects: UnboundedSender<Vec<MetaEffect>>) -> Self {
        Self {
            state: Arc::new(Mutex::new(MetaState::new(me))),
            effects,
        }
    }

    /// The state this machine applies to.
    pub(super) fn state(&self) -> SharedMeta {
        Arc::clone(&self.state)
    }

    fn emit(&self, fx: Vec<MetaEffect>) {
        if !fx.is_empty() {
            let _ = self.effects.send(fx);
        }
    }
}

impl GroupMachine for MetaMachine {
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        match MetaEntry::decode(command) {
            Ok(entry) => {
                let fx = lock(&self.state).apply(index, entry);
                self.emit(fx);
            }
            // A newer server's entry: skipping it would let this replica's state drift from
            // the others', so it is logged loudly; the state stays as it was.
            Err(e) => tracing::error!(index, error = %e, "JetStream meta entry does not decode"),
        }
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        lock(&self.state).snapshot()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        let fx = lock(&self.state)
            .restore(snapshot)
            .map_err(|e| RestoreError::Decode(e.to_string()))?;
        self.emit(fx);
        Ok(())
    }
}
