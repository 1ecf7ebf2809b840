//! `$JS.API.CONSUMER.RESET.<stream>.<consumer>` (nats-server 2.14): start a consumer over at
//! a stream sequence, or at its ack floor, forgetting what it had delivered
//! (Go: consumer.go processResetReq, resetStartingSeqLocked, resetLocalStartingSeq).

use super::super::api::{ApiError, ConsumerConfig};
use super::super::store::StreamStore;
use super::{parse_time, seq_from_time, Consumer};

fn invalid(why: &str) -> ApiError {
    ApiError::new(400, 10204, format!("invalid reset: {why}"))
}

/// Where a reset to `seq` (0: just past the ack floor) starts, if the deliver policy allows
/// it: any sequence for `all`, none below the configured start for the `by_start_*`
/// policies, only the ack floor for the others.
fn start_of(
    c: &ConsumerConfig,
    floor: u64,
    seq: u64,
    store: &dyn StreamStore,
) -> Result<u64, ApiError> {
    if seq == 0 {
        return Ok(floor + 1);
    }
    match c.deliver_policy.as_str() {
        "all" => {}
        "by_start_sequence" if seq < c.opt_start_seq => return Err(invalid("below start seq")),
        "by_start_sequence" => {}
        "by_start_time" => {
            let t = c
                .opt_start_time
                .as_deref()
                .and_then(parse_time)
                .unwrap_or(0);
            if seq < seq_from_time(store, t) {
                return Err(invalid("below start time"));
            }
        }
        _ => return Err(invalid("not allowed")),
    }
    Ok(seq.max(1))
}

impl Consumer {
    /// Starts over at `seq` (0: the ack floor): nothing pending, nothing delivered, the ack
    /// floor just below the start. Returns the start and the old ack floor (what lies
    /// between them and the new floor no longer waits for this consumer's ack).
    pub fn reset(&mut self, seq: u64, store: &dyn StreamStore) -> Result<(u64, u64), ApiError> {
        let start = start_of(&self.config, self.ack_floor_sseq, seq, store)?;
        Ok((start, self.restart_at(start, store)))
    }

    /// Starts over at `start` whatever the deliver policy; returns the old ack floor.
    pub(super) fn restart_at(&mut self, start: u64, store: &dyn StreamStore) -> u64 {
        let old_floor = self.ack_floor_sseq;
        // What was delivered below the start counts as acknowledged (retention).
        let passed: Vec<u64> = self.pending.range(..start).map(|(s, _)| *s).collect();
        self.acked.extend(passed);
        self.pending.clear();
        self.deliveries.clear();
        self.redeliver.clear();
        self.initial.clear();
        self.next_sseq = start;
        self.cseq = 0;
        self.last_sseq = start - 1;
        self.ack_floor_sseq = start - 1;
        self.ack_floor_cseq = 0;
        self.last_delivered_ts = 0;
        self.last_ack_ts = 0;
        self.hold_until = 0;
        self.replay_last = None;
        self.state_dirty = true;
        self.recount(store);
        old_floor
    }
}
