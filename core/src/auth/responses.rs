//! `allow_responses`: a connection that receives a request may publish to its reply subject,
//! a limited number of times, for a limited time, even where its publish permissions say no.
//!
//! Go: server/client.go deliverMsg records `c.replies[reply]`, responseAllowed consumes it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::options::ResponsePermission;

#[derive(Debug, Clone)]
struct Grant {
    at: Instant,
    /// Responses already published.
    used: u32,
    /// Key into `order`, so the oldest grant can be found without a scan.
    seq: u64,
}

/// The reply subjects one connection may currently answer. Bounded.
#[derive(Debug, Clone)]
pub struct ResponseTracker {
    max: u32,
    expires: Duration,
    bound: usize,
    grants: BTreeMap<Vec<u8>, Grant>,
    /// Insertion sequence → reply subject, oldest first.
    order: BTreeMap<u64, Vec<u8>>,
    next_seq: u64,
}

impl ResponseTracker {
    /// Default bound on outstanding grants per connection.
    pub const DEFAULT_BOUND: usize = 65_536;

    /// A tracker for `p` with the default bound. `max == 0` is taken as 1 and a zero `expires`
    /// as "never expires".
    pub fn new(p: &ResponsePermission) -> Self {
        Self::with_bound(p, Self::DEFAULT_BOUND)
    }

    /// A tracker holding at most `bound` grants (at least 1).
    pub fn with_bound(p: &ResponsePermission, bound: usize) -> Self {
        Self {
            // Go: validateResponsePermissions turns a zero max into the default of 1.
            max: p.max.max(1),
            expires: p.expires,
            bound: bound.max(1),
            grants: BTreeMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// A message with reply subject `reply` was delivered to this connection. Call it only when
    /// the connection may not already publish to `reply` (as nats-server does), so static
    /// permissions do not fill the table. A repeated reply subject starts a fresh grant.
    pub fn record(&mut self, now: Instant, reply: &[u8]) {
        if let Some(old) = self.grants.remove(reply) {
            self.order.remove(&old.seq);
        } else if self.grants.len() >= self.bound {
            self.prune(now);
            if self.grants.len() >= self.bound {
                self.evict_oldest();
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, reply.to_vec());
        self.grants.insert(
            reply.to_vec(),
            Grant {
                at: now,
                used: 0,
                seq,
            },
        );
    }

    /// May the connection publish to `subject` as a response now? Consumes one use when so.
    pub fn try_publish(&mut self, now: Instant, subject: &[u8]) -> bool {
        let (max, expires) = (self.max, self.expires);
        let Some(g) = self.grants.get_mut(subject) else {
            return false;
        };
        if expired(expires, now, g.at) {
            let seq = g.seq;
            self.remove(subject, seq);
            return false;
        }
        g.used += 1;
        if g.used >= max {
            // The last allowed use: drop it now rather than keep a spent grant around.
            let seq = g.seq;
            self.remove(subject, seq);
        }
        true
    }

    /// Drops expired grants. Cheap to call from a periodic timer.
    pub fn prune(&mut self, now: Instant) {
        if self.expires.is_zero() {
            return;
        }
        let dead: Vec<(Vec<u8>, u64)> = self
            .grants
            .iter()
            .filter(|(_, g)| expired(self.expires, now, g.at))
            .map(|(k, g)| (k.clone(), g.seq))
            .collect();
        for (k, seq) in dead {
            self.remove(&k, seq);
        }
    }

    /// Outstanding grants.
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// No outstanding grant.
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    fn remove(&mut self, subject: &[u8], seq: u64) {
        self.grants.remove(subject);
        self.order.remove(&seq);
    }

    fn evict_oldest(&mut self) {
        if let Some((_, subject)) = self.order.pop_first() {
            self.grants.remove(&subject);
        }
    }
}

/// A zero `expires` never expires.
fn expired(expires: Duration, now: Instant, at: Instant) -> bool {
    !expires.is_zero() && now.saturating_duration_since(at) > expires
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests need one real instant to offset from; time itself stays an input.
    #[allow(clippy::disallowed_methods)]
    fn start() -> Instant {
        Instant::now()
    }

    fn perm(max: u32, secs: u64) -> ResponsePermission {
        ResponsePermission {
            max,
            expires: Duration::from_secs(secs),
        }
    }

    #[test]
    fn one_response_by_default() {
        let now = start();
        let mut t = ResponseTracker::new(&ResponsePermission::default());
        assert!(!t.try_publish(now, b"_INBOX.1"), "nothing recorded yet");
        t.record(now, b"_INBOX.1");
        assert!(t.try_publish(now, b"_INBOX.1"));
        assert!(!t.try_publish(now, b"_INBOX.1"), "used up");
        assert!(t.is_empty());
    }

    #[test]
    fn max_responses_then_refused() {
        let now = start();
        let mut t = ResponseTracker::new(&perm(3, 60));
        t.record(now, b"r");
        for _ in 0..3 {
            assert!(t.try_publish(now, b"r"));
        }
        assert!(!t.try_publish(now, b"r"));
        assert!(!t.try_publish(now, b"other"));
    }

    #[test]
    fn zero_max_means_one() {
        let now = start();
        let mut t = ResponseTracker::new(&perm(0, 60));
        t.record(now, b"r");
        assert!(t.try_publish(now, b"r"));
        assert!(!t.try_publish(now, b"r"));
    }

    #[test]
    fn expiry() {
        let t0 = start();
        let mut t = ResponseTracker::new(&perm(5, 10));
        t.record(t0, b"r");
        assert!(
            t.try_publish(t0 + Duration::from_secs(10), b"r"),
            "exactly at expiry still ok"
        );
        assert!(!t.try_publish(t0 + Duration::from_secs(11), b"r"));
        assert!(t.is_empty(), "expired grant removed on use");
        // Zero expiry never expires.
        let mut t = ResponseTracker::new(&perm(1, 0));
        t.record(t0, b"r");
        t.prune(t0 + Duration::from_secs(1_000_000));
        assert!(t.try_publish(t0 + Duration::from_secs(1_000_000), b"r"));
    }

    #[test]
    fn record_again_renews() {
        let t0 = start();
        let mut t = ResponseTracker::new(&perm(1, 10));
        t.record(t0, b"r");
        assert!(t.try_publish(t0, b"r"));
        t.record(t0 + Duration::from_secs(5), b"r");
        assert!(t.try_publish(t0 + Duration::from_secs(14), b"r"));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn prune_drops_expired_only() {
        let t0 = start();
        let mut t = ResponseTracker::new(&perm(1, 10));
        t.record(t0, b"old");
        t.record(t0 + Duration::from_secs(8), b"new");
        t.prune(t0 + Duration::from_secs(12));
        assert_eq!(t.len(), 1);
        assert!(t.try_publish(t0 + Duration::from_secs(12), b"new"));
    }

    #[test]
    fn bounded_evicts_oldest_after_pruning() {
        let t0 = start();
        let mut t = ResponseTracker::with_bound(&perm(1, 10), 3);
        t.record(t0, b"a");
        t.record(t0 + Duration::from_secs(5), b"b");
        t.record(t0 + Duration::from_secs(6), b"c");
        // Full, and `a` expired: pruning makes room, nothing live is evicted.
        t.record(t0 + Duration::from_secs(11), b"d");
        assert_eq!(t.len(), 3);
        assert!(!t.try_publish(t0 + Duration::from_secs(11), b"a"));
        // Full, none expired: the oldest live grant (`b`) goes.
        t.record(t0 + Duration::from_secs(12), b"e");
        assert_eq!(t.len(), 3);
        let now = t0 + Duration::from_secs(12);
        assert!(!t.try_publish(now, b"b"));
        assert!(t.try_publish(now, b"c"));
        assert!(t.try_publish(now, b"d"));
        assert!(t.try_publish(now, b"e"));
    }

    #[test]
    fn many_records_stay_bounded() {
        let t0 = start();
        let mut t = ResponseTracker::with_bound(&perm(1, 0), 100);
        for i in 0..10_000u32 {
            t.record(t0, format!("r.{i}").as_bytes());
            assert!(t.len() <= 100);
        }
        assert!(t.try_publish(t0, b"r.9999"));
        assert!(!t.try_publish(t0, b"r.0"));
    }
}
