//! Delivery pacing: `replay_policy: original` keeps the gaps between messages as they were
//! stored, and `rate_limit_bps` caps a push consumer's byte rate (Go: loopAndGatherMsgs).
//! Both hold the next delivery until a time [`Consumer::next_deadline`] reports.

use super::super::store::{StoredMsg, UnixNanos};
use super::{Consumer, Source};

/// Go sizes the rate limiter's burst by the largest message allowed (default max payload).
const RATE_BURST: u128 = 1024 * 1024;

impl Consumer {
    /// May `m` go out at `now`? If not, records when it may.
    pub(super) fn pace(&mut self, m: &StoredMsg, src: Source, now: UnixNanos) -> bool {
        let replaying = src != Source::Redelivery && m.seq <= self.replay_until;
        if let (true, Some((last_ts, last_wall))) = (replaying, self.replay_last) {
            let gap = m.ts.saturating_sub(last_ts);
            // Go: gaps under a millisecond are not waited for.
            if gap > 1_000_000 && now < last_wall.saturating_add(gap) {
                self.hold_until = last_wall.saturating_add(gap);
                return false;
            }
        }
        let bps = u128::from(self.config.rate_limit_bps);
        if bps > 0 && self.is_push() {
            // GCRA: each byte costs 8e9/bps nanoseconds; up to RATE_BURST bytes may go at once.
            let size = (m.subject.len() + m.headers.len() + m.payload.len()) as u128;
            let cost = size * 8_000_000_000 / bps;
            let burst = RATE_BURST * 8_000_000_000 / bps;
            let tat = u128::from(self.rl_tat.max(now));
            let allowed_at = (tat + cost).saturating_sub(burst);
            if allowed_at > u128::from(now) {
                self.hold_until = u64::try_from(allowed_at).unwrap_or(u64::MAX);
                return false;
            }
            self.rl_tat = u64::try_from(tat + cost).unwrap_or(u64::MAX);
        }
        if replaying {
            self.replay_last = Some((m.ts, now));
        }
        true
    }
}
