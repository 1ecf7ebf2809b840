//! Server-wide counters: messages in, and what outlives a connection.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::Shared;

/// Counters of one account that outlive its connections.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AccountTotals {
    pub(crate) out_msgs: u64,
    pub(crate) out_bytes: u64,
    pub(crate) slow_consumers: u64,
}

pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Shared {
    pub(crate) fn count_in(&self, msgs: u64, bytes: u64) {
        self.in_msgs.fetch_add(msgs, Ordering::Relaxed);
        self.in_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}
