//! The bounded match cache: published subject -> shared result.

use std::collections::HashMap;
use std::sync::Arc;

use super::{SublistResult, CACHE_MAX, CACHE_SWEEP_TO};
use crate::subject;

pub(super) struct CacheEntry<T> {
    pub(super) result: Arc<SublistResult<T>>,
    /// When the entry was filled; sweeps keep the newest.
    stamp: u64,
}

pub(super) struct Cache<T> {
    pub(super) map: HashMap<Box<[u8]>, CacheEntry<T>>,
    next_stamp: u64,
}

impl<T: Clone> Cache<T> {
    pub(super) fn new() -> Self {
        Self {
            map: HashMap::new(),
            next_stamp: 0,
        }
    }

    pub(super) fn fill(&mut self, subject: &[u8], result: Arc<SublistResult<T>>) {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.map
            .insert(Box::from(subject), CacheEntry { result, stamp });
        if self.map.len() > CACHE_MAX {
            self.sweep();
        }
    }

    /// Shrinks the cache to [`CACHE_SWEEP_TO`] entries, keeping the most recently filled.
    // Go: server/sublist.go reduceCacheCount drops entries in map order (random) on a goroutine;
    // we drop the oldest, inline, so which entries survive never depends on hash order.
    pub(super) fn sweep(&mut self) {
        let mut stamps: Vec<u64> = self.map.values().map(|e| e.stamp).collect();
        let Some(drop_count) = stamps.len().checked_sub(CACHE_SWEEP_TO) else {
            return;
        };
        if drop_count == 0 {
            return;
        }
        // Stamps are unique, so keeping stamps >= the (drop_count)-th smallest keeps exactly
        // CACHE_SWEEP_TO entries.
        let (_, cutoff, _) = stamps.select_nth_unstable(drop_count);
        let cutoff = *cutoff;
        self.map.retain(|_, e| e.stamp >= cutoff);
    }

    /// Patches every cached result that the new subscription on `pattern` belongs to.
    // Go: server/sublist.go addToCache
    pub(super) fn add_sub(&mut self, pattern: &[u8], queue: Option<&[u8]>, value: &T) {
        if subject::is_literal(pattern) {
            if let Some(e) = self.map.get_mut(pattern) {
                e.result = Arc::new(e.result.with_added(queue, value));
            }
            return;
        }
        for (key, e) in &mut self.map {
            if subject::matches(pattern, key) {
                e.result = Arc::new(e.result.with_added(queue, value));
            }
        }
    }

    /// Drops every cached result a subscription on `pattern` could be part of.
    // Go: server/sublist.go removeFromCache
    pub(super) fn drop_matching(&mut self, pattern: &[u8]) {
        if subject::is_literal(pattern) {
            self.map.remove(pattern);
        } else {
            self.map.retain(|key, _| !subject::matches(pattern, key));
        }
    }
}
