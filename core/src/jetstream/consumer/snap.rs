//! A consumer's config and delivery state as a stream snapshot carries it (JSON), so that a
//! restored durable resumes with the same delivered sequences, outstanding acks and delivery
//! counts. The same [`DeliveryState`] is what a durable keeps on disk across restarts (see
//! `state`, which encodes it compactly).

use serde::{Deserialize, Serialize};

use super::state::DeliveryState;
use super::{Consumer, ConsumerMeta};
use crate::jetstream::store::{StreamStore, UnixNanos};

/// One unacknowledged delivery: stream sequence, consumer sequence, when it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingSnap(u64, u64, UnixNanos);

/// A consumer's config and delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConsumerSnap {
    pub(crate) meta: ConsumerMeta,
    next_sseq: u64,
    cseq: u64,
    last_sseq: u64,
    pending: Vec<PendingSnap>,
    /// (stream sequence, deliveries so far).
    deliveries: Vec<(u64, u64)>,
    redeliver: Vec<u64>,
    redelivered: u64,
}

impl Consumer {
    /// Its state for a snapshot.
    pub(crate) fn snap(&self) -> ConsumerSnap {
        let s = self.delivery_state();
        ConsumerSnap {
            meta: self.meta(),
            next_sseq: s.next_sseq,
            cseq: s.cseq,
            last_sseq: s.last_sseq,
            pending: s
                .pending
                .into_iter()
                .map(|(seq, cseq, sent)| PendingSnap(seq, cseq, sent))
                .collect(),
            deliveries: s.deliveries,
            redeliver: s.redeliver,
            redelivered: s.redelivered,
        }
    }

    /// A consumer rebuilt from a snapshot over the restored `store`. Sequences the store no
    /// longer holds are dropped from the pending set (as an ack of a removed message would).
    /// Its state is marked changed, so the next group commit saves it (durables).
    pub(crate) fn from_snap(s: ConsumerSnap, stream: String, store: &dyn StreamStore) -> Self {
        let state = DeliveryState {
            next_sseq: s.next_sseq,
            cseq: s.cseq,
            last_sseq: s.last_sseq,
            floor_sseq: s.meta.ack_floor_sseq,
            floor_cseq: s.meta.ack_floor_cseq,
            pending: s.pending.into_iter().map(|p| (p.0, p.1, p.2)).collect(),
            deliveries: s.deliveries,
            redeliver: s.redeliver,
            redelivered: s.redelivered,
        };
        let mut c = Self::restore(s.meta, stream, store);
        c.apply_state(state, store);
        c.state_dirty = true;
        c
    }
}
