//! A consumer read by a durable mirror or source of another stream (nats-server 2.14,
//! ADR-60; see `sourcing::durable`). nats-server delivers to the consumer's deliver subject,
//! where the sourcing stream listens, and the sourcing stream's flow-control replies
//! (`Nats-Last-Stream`) ack everything up to what it has stored. Both streams live in this
//! process here, so the sourcing stream takes the messages directly and acks through
//! [`Consumer::ack_through`]; the consumer's state (delivered, pending, ack floor, paused)
//! moves as it would in nats-server.

use super::super::store::{StoredMsg, StreamStore, UnixNanos};
use super::Consumer;

impl Consumer {
    /// Hands the sourcing stream the next messages (at most `max`, none past `through`, the
    /// last sequence the origin has committed), tracked as delivered and pending; nothing
    /// while paused or with `max_ack_pending` messages unacknowledged.
    pub(crate) fn take_for_source(
        &mut self,
        store: &dyn StreamStore,
        through: u64,
        max: usize,
        now: UnixNanos,
    ) -> Vec<StoredMsg> {
        let mut out = Vec::new();
        if self.is_paused(now) {
            return out;
        }
        while out.len() < max {
            let Some((m, src)) = self.next_msg(store) else {
                break;
            };
            if m.seq > through {
                self.unread(&m, src);
                break;
            }
            self.note_delivered(&m, now);
            out.push(m);
        }
        out
    }

    /// The sourcing stream has stored (durably) everything up to origin sequence `sseq`:
    /// acks it and all below, as a flow-control reply does (Go: processFlowControl with
    /// `Nats-Last-Stream`). True if the ack floor moved.
    pub(crate) fn ack_through(&mut self, sseq: u64, now: UnixNanos) -> bool {
        let moved = self.ack(sseq);
        if moved {
            self.last_ack_ts = now;
            self.last_activity = now;
        }
        moved
    }

    /// The sourcing stream (re)starts reading (Go: its setup sends a consumer reset with no
    /// sequence): what was delivered and not acknowledged is delivered again from the ack
    /// floor, except what the sourcing stream already holds (`stored`, the last origin
    /// sequence it has): that counts as acknowledged, so nothing is copied twice. Returns
    /// the old and the new ack floor.
    pub(crate) fn resume_for_source(
        &mut self,
        stored: Option<u64>,
        store: &dyn StreamStore,
    ) -> (u64, u64) {
        let floor = self.ack_floor_sseq;
        let start = match stored {
            Some(s) if s >= floor => s + 1,
            _ => floor + 1,
        };
        let old = self.restart_at(start, store);
        (old, start - 1)
    }
}
