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

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use serde::Serialize;

use crate::subject::{self, FWC, PWC, SEP};

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
fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Splits a subject on `.` without allocating; unlike `subject::tokens` it is `Clone`, which
/// the wildcard walks need to fork at a `*`.
#[derive(Clone)]
struct Tokens<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Tokens<'a> {
    fn new(subject: &'a [u8]) -> Self {
        Self {
            rest: Some(subject),
        }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.rest?;
        match s.iter().position(|&b| b == SEP) {
            Some(i) => {
                self.rest = s.get(i + 1..);
                s.get(..i)
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

/// A published subject must have at least one token and no empty token; anything else matches
/// nothing (and is not cached).
// Go: server/sublist.go match — returns emptyResult on an empty token.
fn is_match_subject(subject: &[u8]) -> bool {
    !subject.is_empty()
        && subject.first() != Some(&SEP)
        && subject.last() != Some(&SEP)
        && !subject.windows(2).any(|w| w == [SEP, SEP])
}

/// One stored subscription; `seq` orders results.
#[derive(Debug)]
struct Entry<T> {
    seq: u64,
    value: T,
}

/// The members of one queue group on one node, oldest first.
#[derive(Debug)]
struct QueueGroup<T> {
    name: Bytes,
    members: Vec<Entry<T>>,
}

/// The subscriptions on one exact subject pattern, and the level below it.
#[derive(Debug)]
struct Node<T> {
    /// Oldest first. A `Vec` rather than a set: `T` is only `PartialEq`, and keeping insertion
    /// order is what makes results canonical. Removal is a linear scan of this one node.
    psubs: Vec<Entry<T>>,
    /// Few per node in practice, so a linear search by name beats a map.
    qsubs: Vec<QueueGroup<T>>,
    next: Option<Box<Level<T>>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            psubs: Vec::new(),
            qsubs: Vec::new(),
            next: None,
        }
    }
}

impl<T: PartialEq> Node<T> {
    fn has_subs(&self) -> bool {
        !self.psubs.is_empty() || !self.qsubs.is_empty()
    }

    fn remove_entry(&mut self, queue: Option<&[u8]>, value: &T) -> bool {
        match queue {
            None => match self.psubs.iter().position(|e| e.value == *value) {
                Some(i) => {
                    // `remove`, not `swap_remove`: the order of a node is part of the result order.
                    self.psubs.remove(i);
                    true
                }
                None => false,
            },
            Some(q) => {
                let Some(gi) = self.qsubs.iter().position(|g| g.name.as_ref() == q) else {
                    return false;
                };
                let group = &mut self.qsubs[gi];
                let Some(i) = group.members.iter().position(|e| e.value == *value) else {
                    return false;
                };
                group.members.remove(i);
                if group.members.is_empty() {
                    self.qsubs.remove(gi);
                }
                true
            }
        }
    }

    fn collect_entries<'a>(&'a self, out: &mut Vec<&'a Entry<T>>) {
        out.extend(self.psubs.iter());
        for g in &self.qsubs {
            out.extend(g.members.iter());
        }
    }
}

/// The children of a node: literal tokens in a map, the wildcards in their own slots.
#[derive(Debug)]
struct Level<T> {
    // Order never escapes: every walk sorts what it collects by insertion sequence.
    literals: HashMap<Box<[u8]>, Node<T>>,
    pwc: Option<Box<Node<T>>>,
    fwc: Option<Box<Node<T>>>,
}

impl<T> Default for Level<T> {
    fn default() -> Self {
        Self {
            literals: HashMap::new(),
            pwc: None,
            fwc: None,
        }
    }
}

impl<T: PartialEq> Level<T> {
    fn num_children(&self) -> usize {
        self.literals.len() + usize::from(self.pwc.is_some()) + usize::from(self.fwc.is_some())
    }

    fn child(&self, tok: &[u8]) -> Option<&Node<T>> {
        match tok {
            [PWC] => self.pwc.as_deref(),
            [FWC] => self.fwc.as_deref(),
            _ => self.literals.get(tok),
        }
    }

    fn child_mut(&mut self, tok: &[u8]) -> Option<&mut Node<T>> {
        match tok {
            [PWC] => self.pwc.as_deref_mut(),
            [FWC] => self.fwc.as_deref_mut(),
            _ => self.literals.get_mut(tok),
        }
    }

    fn child_or_insert(&mut self, tok: &[u8]) -> &mut Node<T> {
        match tok {
            [PWC] => self.pwc.get_or_insert_with(Box::default),
            [FWC] => self.fwc.get_or_insert_with(Box::default),
            _ => {
                // Look up before inserting so the common case (node exists) does not allocate
                // an owned key.
                if !self.literals.contains_key(tok) {
                    self.literals.insert(Box::from(tok), Node::default());
                }
                self.literals
                    .get_mut(tok)
                    .expect("literal child exists: it was inserted just above")
            }
        }
    }

    fn remove_child(&mut self, tok: &[u8]) {
        match tok {
            [PWC] => self.pwc = None,
            [FWC] => self.fwc = None,
            _ => {
                self.literals.remove(tok);
            }
        }
    }

    /// The node for a valid subscription subject, created with its ancestors as needed.
    fn node_for_insert(&mut self, subject: &[u8]) -> &mut Node<T> {
        let mut toks = Tokens::new(subject);
        let mut tok = toks.next().unwrap_or_default();
        let mut level = self;
        loop {
            let node = level.child_or_insert(tok);
            match toks.next() {
                None => return node,
                Some(next) => {
                    level = node.next.get_or_insert_with(Box::default);
                    tok = next;
                }
            }
        }
    }

    fn find_mut(&mut self, subject: &[u8]) -> Option<&mut Node<T>> {
        let mut toks = Tokens::new(subject);
        let mut tok = toks.next()?;
        let mut level = self;
        loop {
            let node = level.child_mut(tok)?;
            match toks.next() {
                None => return Some(node),
                Some(next) => {
                    level = node.next.as_deref_mut()?;
                    tok = next;
                }
            }
        }
    }

    /// Removes one subscription, then prunes the nodes left empty on its path.
    fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, value: &T) -> bool {
        let Some(node) = self.find_mut(subject) else {
            return false;
        };
        if !node.remove_entry(queue, value) {
            return false;
        }
        self.prune(subject);
        true
    }

    /// Drops the longest run of now-useless nodes at the end of `subject`'s path.
    ///
    /// A node on the path is useless when it holds no subscription and its level holds nothing
    /// but the next node of the path (or nothing at all, for the last node). Useless nodes form a
    /// suffix of the path, so one read-only walk finds where that suffix starts and a second walk
    /// cuts it off. Both are loops, not recursion: subject depth is client-controlled.
    fn prune(&mut self, subject: &[u8]) {
        let mut cut: Option<usize> = None;
        let mut depth = 0usize;
        {
            let mut toks = Tokens::new(subject).peekable();
            let mut level: &Self = self;
            while let Some(tok) = toks.next() {
                let Some(node) = level.child(tok) else {
                    // Path broken: nothing to prune below here.
                    break;
                };
                let below = node.next.as_deref().map_or(0, Self::num_children);
                let is_last = toks.peek().is_none();
                let useless = !node.has_subs() && below == usize::from(!is_last);
                if !useless {
                    cut = None;
                } else if cut.is_none() {
                    cut = Some(depth);
                }
                match node.next.as_deref() {
                    Some(next) if !is_last => level = next,
                    _ => break,
                }
                depth += 1;
            }
        }
        let Some(cut) = cut else { return };
        let mut toks = Tokens::new(subject);
        let mut level = self;
        for _ in 0..cut {
            let Some(next) = toks
                .next()
                .and_then(|tok| level.child_mut(tok))
                .and_then(|node| node.next.as_deref_mut())
            else {
                return;
            };
            level = next;
        }
        if let Some(tok) = toks.next() {
            level.remove_child(tok);
        }
    }

    fn count_nodes(&self) -> usize {
        let mut n = 0;
        let mut stack = vec![self];
        while let Some(level) = stack.pop() {
            for node in level.children() {
                n += 1;
                if let Some(next) = node.next.as_deref() {
                    stack.push(next);
                }
            }
        }
        n
    }
}

impl<T> Drop for Level<T> {
    /// Unlinks the levels below before they drop, so a deep subject (client-controlled) is freed
    /// by a loop instead of one nested drop call per token.
    fn drop(&mut self) {
        let mut stack: Vec<Self> = Vec::new();
        self.detach_children(&mut stack);
        while let Some(mut level) = stack.pop() {
            level.detach_children(&mut stack);
        }
    }
}

impl<T> Level<T> {
    fn detach_children(&mut self, out: &mut Vec<Self>) {
        let nodes = self
            .pwc
            .as_deref_mut()
            .into_iter()
            .chain(self.fwc.as_deref_mut())
            .chain(self.literals.values_mut());
        out.extend(nodes.filter_map(|n| n.next.take()).map(|level| *level));
    }

    fn children(&self) -> impl Iterator<Item = &Node<T>> {
        self.pwc
            .as_deref()
            .into_iter()
            .chain(self.fwc.as_deref())
            .chain(self.literals.values())
    }
}

/// Collects every entry in `node` and everything below it.
fn collect_subtree<'a, T: PartialEq>(node: &'a Node<T>, out: &mut Vec<&'a Entry<T>>) {
    node.collect_entries(out);
    let mut stack: Vec<&Level<T>> = node.next.as_deref().into_iter().collect();
    while let Some(level) = stack.pop() {
        for child in level.children() {
            child.collect_entries(out);
            if let Some(next) = child.next.as_deref() {
                stack.push(next);
            }
        }
    }
}

/// Visits every node whose subscriptions match the published `subject` (which must pass
/// [`is_match_subject`]). May visit nodes without subscriptions. Stops at the first `Break`.
// Go: server/sublist.go matchLevel — same walk, with an explicit stack for the `*` forks
// instead of recursion so a deep subject cannot exhaust the thread stack.
fn walk_matches<'a, T>(
    root: &'a Level<T>,
    subject: &[u8],
    mut visit: impl FnMut(&'a Node<T>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let mut toks = Tokens::new(subject);
    let Some(first) = toks.next() else {
        return ControlFlow::Continue(());
    };
    // The first branch lives outside the stack so a walk without `*` forks never allocates.
    let mut current = Some((root, first, toks));
    let mut forks = Vec::new();
    while let Some((mut level, mut tok, mut rest)) = current.take().or_else(|| forks.pop()) {
        loop {
            // `>` here takes this token and everything after it: at least one token remains.
            if let Some(fwc) = level.fwc.as_deref() {
                visit(fwc)?;
            }
            let next = rest.next();
            if let Some(pwc) = level.pwc.as_deref() {
                match next {
                    None => visit(pwc)?,
                    Some(next_tok) => {
                        if let Some(l) = pwc.next.as_deref() {
                            forks.push((l, next_tok, rest.clone()));
                        }
                    }
                }
            }
            // A `*` or `>` token in a published subject is only ever matched by wildcards:
            // the literal map never holds those keys.
            let Some(node) = level.literals.get(tok) else {
                break;
            };
            match next {
                None => {
                    visit(node)?;
                    break;
                }
                Some(next_tok) => {
                    let Some(l) = node.next.as_deref() else {
                        break;
                    };
                    level = l;
                    tok = next_tok;
                }
            }
        }
    }
    ControlFlow::Continue(())
}

/// Collects the entries of every subscription whose pattern overlaps `pattern` (a valid
/// subscription subject): some literal subject matches both.
fn collect_overlaps<'a, T: PartialEq>(
    root: &'a Level<T>,
    pattern: &[u8],
    out: &mut Vec<&'a Entry<T>>,
) {
    let mut toks = Tokens::new(pattern);
    let Some(first) = toks.next() else { return };
    let mut stack = vec![(root, first, toks)];
    while let Some((level, tok, mut rest)) = stack.pop() {
        // A stored `>` takes this token and whatever follows.
        if let Some(fwc) = level.fwc.as_deref() {
            fwc.collect_entries(out);
        }
        if tok == [FWC] {
            // The query's `>` covers every stored continuation of one or more tokens.
            if let Some(pwc) = level.pwc.as_deref() {
                collect_subtree(pwc, out);
            }
            for node in level.literals.values() {
                collect_subtree(node, out);
            }
            continue;
        }
        let next = rest.next();
        let mut step = |node: &'a Node<T>| match next {
            None => node.collect_entries(out),
            Some(next_tok) => {
                if let Some(l) = node.next.as_deref() {
                    stack.push((l, next_tok, rest.clone()));
                }
            }
        };
        if let Some(pwc) = level.pwc.as_deref() {
            step(pwc);
        }
        if tok == [PWC] {
            for node in level.literals.values() {
                step(node);
            }
        } else if let Some(node) = level.literals.get(tok) {
            step(node);
        }
    }
}

fn sorted_values<T: Clone>(mut entries: Vec<&Entry<T>>) -> Vec<T> {
    entries.sort_by_key(|e| e.seq);
    entries.into_iter().map(|e| e.value.clone()).collect()
}

struct Trie<T> {
    root: Level<T>,
    /// Next insertion sequence number; orders every result.
    next_seq: u64,
}

struct CacheEntry<T> {
    result: Arc<SublistResult<T>>,
    /// When the entry was filled; sweeps keep the newest.
    stamp: u64,
}

struct Cache<T> {
    map: HashMap<Box<[u8]>, CacheEntry<T>>,
    next_stamp: u64,
}

impl<T: Clone> Cache<T> {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
            next_stamp: 0,
        }
    }

    fn fill(&mut self, subject: &[u8], result: Arc<SublistResult<T>>) {
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
    fn sweep(&mut self) {
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
    fn add_sub(&mut self, pattern: &[u8], queue: Option<&[u8]>, value: &T) {
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
    fn drop_matching(&mut self, pattern: &[u8]) {
        if subject::is_literal(pattern) {
            self.map.remove(pattern);
        } else {
            self.map.retain(|key, _| !subject::matches(pattern, key));
        }
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
        let node = trie.root.node_for_insert(subject);
        let entry = Entry { seq, value };
        match queue {
            None => node.psubs.push(entry),
            Some(q) => match node.qsubs.iter_mut().find(|g| g.name.as_ref() == q) {
                Some(group) => group.members.push(entry),
                None => node.qsubs.push(QueueGroup {
                    name: Bytes::copy_from_slice(q),
                    members: vec![entry],
                }),
            },
        }
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

    fn collect_matches(root: &Level<T>, subject: &[u8]) -> SublistResult<T> {
        let mut psubs: Vec<&Entry<T>> = Vec::new();
        let mut groups: Vec<(&Bytes, Vec<&Entry<T>>)> = Vec::new();
        let _ = walk_matches(root, subject, |node| {
            psubs.extend(node.psubs.iter());
            for g in &node.qsubs {
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
