//! A consumer's delivery state as a stream snapshot carries it: more than the ack floor a
//! durable keeps across restarts ([`ConsumerMeta`]), so that a restored durable resumes with
//! the same delivered sequences, outstanding acks and delivery counts.

use serde::{Deserialize, Serialize};

use super::{Consumer, ConsumerMeta, Pending};
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
        ConsumerSnap {
            meta: self.meta(),
            next_sseq: self.next_sseq,
            cseq: self.cseq,
            last_sseq: self.last_sseq,
            pending: self
                .pending
                .iter()
                .map(|(s, p)| PendingSnap(*s, p.cseq, p.sent))
                .collect(),
            deliveries: self.deliveries.iter().map(|(s, n)| (*s, *n)).collect(),
            redeliver: self.redeliver.iter().copied().collect(),
            redelivered: self.redelivered_count,
        }
    }

    /// A consumer rebuilt from a snapshot over the restored `store`. Sequences the store no
    /// longer holds are dropped from the pending set (as an ack of a removed message would).
    pub(crate) fn from_snap(s: ConsumerSnap, stream: String, store: &dyn StreamStore) -> Self {
        let mut c = Self::restore(s.meta, stream, store);
        c.next_sseq = s.next_sseq.max(c.ack_floor_sseq + 1);
        c.cseq = s.cseq.max(c.ack_floor_cseq);
        c.last_sseq = s.last_sseq.max(c.ack_floor_sseq);
        let live = |seq: &u64| store.load_msg(*seq).is_ok();
        c.pending = s
            .pending
            .into_iter()
            .filter(|p| live(&p.0))
            .map(|p| {
                (
                    p.0,
                    Pending {
                        cseq: p.1,
                        sent: p.2,
                    },
                )
            })
            .collect();
        c.deliveries = s.deliveries.into_iter().filter(|d| live(&d.0)).collect();
        c.redeliver = s.redeliver.into_iter().filter(live).collect();
        c.redelivered_count = s.redelivered;
        c.recount(store);
        c
    }
}
