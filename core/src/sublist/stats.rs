//! Counters of a sublist, in the shape of nats-server's `/subsz` page.

use serde::Serialize;

/// Counters of one sublist, as in nats-server's `/subsz` monitoring page.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SublistStats {
    /// Number of subscriptions.
    #[serde(rename = "num_subscriptions")]
    pub num_subs: u32,
    /// Number of cached match results.
    pub num_cache: u32,
    /// Inserts since creation.
    pub num_inserts: u64,
    /// Removes since creation.
    pub num_removes: u64,
    /// Matches since creation.
    pub num_matches: u64,
    /// Share of matches answered from the cache.
    pub cache_hit_rate: f64,
    /// Largest fanout among cached results.
    pub max_fanout: u32,
    /// Average fanout among cached results.
    pub avg_fanout: f64,
    /// Sum of the fanouts of cached results (kept so stats of several accounts can be added).
    #[serde(skip)]
    pub total_fanout: u64,
    /// Matches answered from the cache (kept so stats of several accounts can be added).
    #[serde(skip)]
    pub cache_hits: u64,
}

impl SublistStats {
    /// Folds another sublist's stats into these, recomputing the averages from the raw sums.
    // Go: server/sublist.go SublistStats.add
    pub fn add(&mut self, other: &Self) {
        self.num_subs = self.num_subs.saturating_add(other.num_subs);
        self.num_cache = self.num_cache.saturating_add(other.num_cache);
        self.num_inserts = self.num_inserts.saturating_add(other.num_inserts);
        self.num_removes = self.num_removes.saturating_add(other.num_removes);
        self.num_matches = self.num_matches.saturating_add(other.num_matches);
        self.cache_hits = self.cache_hits.saturating_add(other.cache_hits);
        self.total_fanout = self.total_fanout.saturating_add(other.total_fanout);
        self.max_fanout = self.max_fanout.max(other.max_fanout);
        self.avg_fanout = ratio(self.total_fanout, u64::from(self.num_cache));
        self.cache_hit_rate = ratio(self.cache_hits, self.num_matches);
    }
}

#[allow(clippy::cast_precision_loss)] // monitoring ratios; precision past 2^53 is irrelevant
pub(super) fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}
