//! The subscription index: a trie of subject tokens with a bounded match cache.
//!
//! Behaviour follows nats-server's `server/sublist.go`:
//!
//! * `*` matches exactly one token, `>` one or more trailing tokens, anything else is literal.
//! * Queue subscriptions are grouped by queue name. Two subscriptions of the same queue under
//!   different subjects that both match a message land in ONE group of the result, so the router
//!   picks one member per group.
//! * A bounded cache maps published subjects to shared results ([`CACHE_MAX`] entries, swept down
//!   to [`CACHE_SWEEP_TO`] when full). An insert patches every cached result it now belongs to;
//!   a remove drops every cached result it could have been part of.
//!
//! # Result order
//!
//! Results are in subscription order: `psubs` sorted by when each was inserted, queue groups
//! ordered by their oldest member and members by insertion. That order is canonical, so a cached
//! result, a result patched by an insert and a freshly computed one are identical, and nothing
//! depends on hash-map iteration order.
//!
//! # Locking
//!
//! Every method takes `&self`. The trie sits behind a [`RwLock`] and the cache behind a separate
//! one, so publishers that hit the cache only take the cache's read lock. Lock order is always
//! trie, then cache. Mutations bump [`Sublist::generation`] *after* the cache has been patched,
//! so a caller that reads the generation and then matches never pairs a new generation with a
//! stale result.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;

use crate::subject;

mod cache;
mod literals;
mod node;
mod stats;

use cache::Cache;
use node::{
    collect_overlaps, collect_subtree, is_match_subject, sorted_values, walk_matches, Entry, Level,
    Trie,
};
use stats::ratio;
pub use stats::SublistStats;

/// Most results the match cache holds before it is swept.
// Go: server/sublist.go slCacheMax
pub const CACHE_MAX: usize = 1024;

/// Number of cache entries a sweep keeps.
// Go: server/sublist.go slCacheSweep (512 in 2.9.10)
pub const CACHE_SWEEP_TO: usize = 512;

/// Above this many removals in one [`Sublist::remove_batch`] the whole cache is dropped instead
/// of being invalidated subject by subject (each wildcard invalidation scans the whole cache).
const BATCH_CLEAR_THRESHOLD: usize = 16;

/// Misuse of the sublist API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SublistError {
    /// The subject is empty, has an empty token or whitespace, or `>` is not its last token.
    #[error("sublist: invalid subject")]
    InvalidSubject,
    /// The queue group name is empty or contains whitespace.
    #[error("sublist: invalid queue group name")]
    InvalidQueue,
    /// No such subscription under that subject and queue.
    #[error("sublist: no matches found")]
    NotFound,
}

/// The subscriptions interested in one published subject.
#[derive(Debug, Clone, PartialEq)]
pub struct SublistResult<T> {
    /// Plain subscriptions, in subscription order.
    pub psubs: Vec<T>,
    /// Queue subscriptions, one `Vec` per queue group, parallel to `queues`.
    pub qsubs: Vec<Vec<T>>,
    /// The queue group names: `queues[i]` names the members in `qsubs[i]`.
    pub queues: Vec<Bytes>,
}

impl<T> Default for SublistResult<T> {
    fn default() -> Self {
        Self {
            psubs: Vec::new(),
            qsubs: Vec::new(),
            queues: Vec::new(),
        }
    }
}

impl<T> SublistResult<T> {
    /// True when nobody is interested.
    pub fn is_empty(&self) -> bool {
        self.psubs.is_empty() && self.qsubs.is_empty()
    }

    /// Plain subscriptions plus queue groups: how many deliveries one message causes.
    // Go: server/sublist.go Stats — fanout is len(psubs) + len(qsubs).
    pub fn fanout(&self) -> usize {
        self.psubs.len() + self.qsubs.len()
    }

    /// The members of queue group `name`, if it is part of this result.
    pub fn queue_group(&self, name: &[u8]) -> Option<&[T]> {
        let i = self.queues.iter().position(|q| q.as_ref() == name)?;
        self.qsubs.get(i).map(Vec::as_slice)
    }
}

impl<T: Clone> SublistResult<T> {
    /// A copy with one more subscription; `value` is the newest subscription, so appending keeps
    /// the canonical order.
    fn with_added(&self, queue: Option<&[u8]>, value: &T) -> Self {
        let mut r = self.clone();
        match queue {
            None => r.psubs.push(value.clone()),
            Some(q) => match r.queues.iter().position(|n| n.as_ref() == q) {
                Some(i) => r.qsubs[i].push(value.clone()),
                None => {
                    r.queues.push(Bytes::copy_from_slice(q));
                    r.qsubs.push(vec![value.clone()]);
                }
            },
        }
        r
    }
}

fn read<L>(lock: &RwLock<L>) -> RwLockReadGuard<'_, L> {
    // A panic elsewhere while holding the lock cannot leave the trie half-linked (each mutation
    // is a single push/remove/insert), so keep serving rather than cascade the panic.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<L>(lock: &RwLock<L>) -> RwLockWriteGuard<'_, L> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// The subscription index of one account: a subject trie plus an optional match cache.
pub struct Sublist<T> {
    trie: RwLock<Trie<T>>,
    cache: Option<RwLock<Cache<T>>>,
    /// Shared answer for "nobody is interested", so misses on dead subjects do not allocate.
    empty: Arc<SublistResult<T>>,
    generation: AtomicU64,
    count: AtomicU32,
    inserts: AtomicU64,
    removes: AtomicU64,
    matches: AtomicU64,
    cache_hits: AtomicU64,
}

impl<T> std::fmt::Debug for Sublist<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sublist")
            .field("count", &self.count.load(Ordering::Relaxed))
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .field("cache", &self.cache.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Clone + PartialEq> Default for Sublist<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone + PartialEq> Sublist<T> {
    /// An empty sublist with the match cache on.
    pub fn new() -> Self {
        Self::build(true)
    }

    /// An empty sublist without a match cache (every match walks the trie).
    pub fn without_cache() -> Self {
        Self::build(false)
    }

    fn build(cache: bool) -> Self {
        Self {
            trie: RwLock::new(Trie {
                root: Level::default(),
                next_seq: 0,
            }),
            cache: cache.then(|| RwLock::new(Cache::new())),
            empty: Arc::new(SublistResult::default()),
            generation: AtomicU64::new(0),
            count: AtomicU32::new(0),
            inserts: AtomicU64::new(0),
            removes: AtomicU64::new(0),
            matches: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
        }
    }

    /// Is the match cache on?
    pub fn cache_enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// Adds a subscription. Inserting the same value twice stores it twice (callers key
    /// subscriptions by a unique sid, so that does not happen in the server).
    pub fn insert(
        &self,
        subject: &[u8],
        queue: Option<&[u8]>,
        value: T,
    ) -> Result<(), SublistError> {
        if !subject::is_valid_subject(subject) {
            return Err(SublistError::InvalidSubject);
        }
        if let Some(q) = queue {
            if !subject::is_valid_queue(q) {
                return Err(SublistError::InvalidQueue);
            }
        }
        let mut trie = write(&self.trie);
        let seq = trie.next_seq;
        trie.next_seq += 1;
        // Patch the cache before the value moves into the trie. Nobody can observe the gap: a
        // cache miss needs the trie lock we hold.
        if let Some(cache) = &self.cache {
            write(cache).add_sub(subject, queue, &value);
        }
        trie.root
            .node_for_insert(subject)
            .push(queue, Entry { seq, value });
        self.count.fetch_add(1, Ordering::Relaxed);
        self.inserts.fetch_add(1, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Removes one subscription stored under exactly `subject` and `queue`.
    pub fn remove(
        &self,
        subject: &[u8],
        queue: Option<&[u8]>,
        value: &T,
    ) -> Result<(), SublistError> {
        if !subject::is_valid_subject(subject) {
            return Err(SublistError::InvalidSubject);
        }
        let mut trie = write(&self.trie);
        if !trie.root.remove(subject, queue, value) {
            return Err(SublistError::NotFound);
        }
        self.count.fetch_sub(1, Ordering::Relaxed);
        self.removes.fetch_add(1, Ordering::Relaxed);
        if let Some(cache) = &self.cache {
            write(cache).drop_matching(subject);
        }
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Removes many subscriptions under one lock (a closing connection). Every item is tried;
    /// the first error is returned.
    // Go: server/sublist.go RemoveBatch. 2.9.10 stops at the first error; later versions go on
    // and report the first, which is what a closing connection needs.
    pub fn remove_batch<'a, I>(&self, items: I) -> Result<(), SublistError>
    where
        I: IntoIterator<Item = (&'a [u8], Option<&'a [u8]>, &'a T)>,
        T: 'a,
    {
        let mut trie = write(&self.trie);
        let mut first_err = None;
        let mut removed: Vec<&[u8]> = Vec::new();
        for (subject, queue, value) in items {
            let outcome = if !subject::is_valid_subject(subject) {
                Err(SublistError::InvalidSubject)
            } else if trie.root.remove(subject, queue, value) {
                Ok(())
            } else {
                Err(SublistError::NotFound)
            };
            match outcome {
                Ok(()) => removed.push(subject),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if !removed.is_empty() {
            let n = u32::try_from(removed.len()).unwrap_or(u32::MAX);
            self.count.fetch_sub(n, Ordering::Relaxed);
            self.removes.fetch_add(u64::from(n), Ordering::Relaxed);
            if let Some(cache) = &self.cache {
                let mut cache = write(cache);
                if removed.len() > BATCH_CLEAR_THRESHOLD {
                    cache.map.clear();
                } else {
                    for subject in &removed {
                        cache.drop_matching(subject);
                    }
                }
            }
            self.generation.fetch_add(1, Ordering::Release);
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Everyone interested in the published `subject`. A cache hit returns the shared result
    /// without allocating.
    // Go: server/sublist.go Match
    pub fn matches(&self, subject: &[u8]) -> Arc<SublistResult<T>> {
        self.matches.fetch_add(1, Ordering::Relaxed);
        if let Some(cache) = &self.cache {
            if let Some(e) = read(cache).map.get(subject) {
                self.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Arc::clone(&e.result);
            }
        }
        if !is_match_subject(subject) {
            return Arc::clone(&self.empty);
        }
        let trie = read(&self.trie);
        let result = Self::collect_matches(&trie.root, subject);
        let result = if result.is_empty() {
            Arc::clone(&self.empty)
        } else {
            Arc::new(result)
        };
        if let Some(cache) = &self.cache {
            // Still under the trie read lock: no insert/remove can slip in between computing the
            // result and caching it, so the cache never holds a stale result.
            write(cache).fill(subject, Arc::clone(&result));
        }
        drop(trie);
        result
    }

    /// Like [`Sublist::matches`], but a miss does not fill the cache: for subjects published
    /// once (a reply to a unique inbox), where caching would evict useful entries.
    pub fn matches_transient(&self, subject: &[u8]) -> Arc<SublistResult<T>> {
        self.matches.fetch_add(1, Ordering::Relaxed);
        if let Some(cache) = &self.cache {
            if let Some(e) = read(cache).map.get(subject) {
                self.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Arc::clone(&e.result);
            }
        }
        if !is_match_subject(subject) {
            return Arc::clone(&self.empty);
        }
        let result = Self::collect_matches(&read(&self.trie).root, subject);
        if result.is_empty() {
            Arc::clone(&self.empty)
        } else {
            Arc::new(result)
        }
    }

    fn collect_matches(root: &Level<T>, subject: &[u8]) -> SublistResult<T> {
        let mut psubs: Vec<&Entry<T>> = Vec::new();
        let mut groups: Vec<(&Bytes, Vec<&Entry<T>>)> = Vec::new();
        let _ = walk_matches(root, subject, |node| {
            psubs.extend(node.psubs());
            for g in node.qsubs() {
                // Go: server/sublist.go findQSlot — one group per queue name across nodes.
                match groups.iter_mut().find(|(name, _)| **name == g.name) {
                    Some((_, members)) => members.extend(g.members.iter()),
                    None => groups.push((&g.name, g.members.iter().collect())),
                }
            }
            ControlFlow::Continue(())
        });
        // Each node's list is already sorted, so these stable sorts merge a few sorted runs.
        let psubs = sorted_values(psubs);
        for (_, members) in &mut groups {
            members.sort_by_key(|e| e.seq);
        }
        groups.sort_by_key(|(_, members)| members.first().map(|e| e.seq));
        let mut result = SublistResult {
            psubs,
            qsubs: Vec::with_capacity(groups.len()),
            queues: Vec::with_capacity(groups.len()),
        };
        for (name, members) in groups {
            result.queues.push(name.clone());
            result
                .qsubs
                .push(members.into_iter().map(|e| e.value.clone()).collect());
        }
        result
    }

    /// Is anyone interested in the published `subject`? Does not fill the cache.
    pub fn has_interest(&self, subject: &[u8]) -> bool {
        if let Some(cache) = &self.cache {
            if let Some(e) = read(cache).map.get(subject) {
                return !e.result.is_empty();
            }
        }
        if !is_match_subject(subject) {
            return false;
        }
        let trie = read(&self.trie);
        walk_matches(&trie.root, subject, |node| {
            if node.has_subs() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .is_break()
    }

    /// Number of subscriptions.
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Bumped by every insert and remove, after the cache has been patched: a caller's own cache
    /// filled at generation `g` is current while `generation() == g`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Number of cached match results.
    pub fn cache_count(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| read(c).map.len())
    }

    /// Counters for monitoring (`/subsz`).
    // Go: server/sublist.go Stats
    pub fn stats(&self) -> SublistStats {
        let num_matches = self.matches.load(Ordering::Relaxed);
        let cache_hits = self.cache_hits.load(Ordering::Relaxed);
        let mut st = SublistStats {
            num_subs: self.count(),
            num_inserts: self.inserts.load(Ordering::Relaxed),
            num_removes: self.removes.load(Ordering::Relaxed),
            num_matches,
            cache_hits,
            cache_hit_rate: ratio(cache_hits, num_matches),
            ..SublistStats::default()
        };
        if let Some(cache) = &self.cache {
            let cache = read(cache);
            let mut total = 0u64;
            let mut max = 0usize;
            for e in cache.map.values() {
                let f = e.result.fanout();
                total += f as u64;
                max = max.max(f);
            }
            st.num_cache = u32::try_from(cache.map.len()).unwrap_or(u32::MAX);
            st.max_fanout = u32::try_from(max).unwrap_or(u32::MAX);
            st.total_fanout = total;
            st.avg_fanout = ratio(total, cache.map.len() as u64);
        }
        st
    }

    /// Every subscription, in subscription order.
    // Go: server/sublist.go All
    pub fn all(&self) -> Vec<T> {
        let trie = read(&self.trie);
        let mut out = Vec::new();
        for node in trie.root.children() {
            collect_subtree(node, &mut out);
        }
        sorted_values(out)
    }

    /// Every subscription whose subject overlaps `pattern` (literal or wildcard): some literal
    /// subject would match both. In subscription order; empty for an invalid pattern.
    pub fn matching_patterns(&self, pattern: &[u8]) -> Vec<T> {
        if !subject::is_valid_subject(pattern) {
            return Vec::new();
        }
        let trie = read(&self.trie);
        let mut out = Vec::new();
        collect_overlaps(&trie.root, pattern, &mut out);
        sorted_values(out)
    }

    /// Number of trie nodes, to check that removals prune (tests and debugging only).
    #[doc(hidden)]
    pub fn node_count(&self) -> usize {
        read(&self.trie).root.count_nodes()
    }
}

#[cfg(test)]
mod tests;
