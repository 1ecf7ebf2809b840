//! The subject trie: one node per token of a subscribed subject, and the walks over it.

use std::ops::ControlFlow;

use bytes::Bytes;

use super::literals::Literals;
use crate::subject::{FWC, PWC, SEP};

/// Splits a subject on `.` without allocating; unlike `subject::tokens` it is `Clone`, which
/// the wildcard walks need to fork at a `*`.
#[derive(Clone)]
pub(super) struct Tokens<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Tokens<'a> {
    pub(super) fn new(subject: &'a [u8]) -> Self {
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
pub(super) fn is_match_subject(subject: &[u8]) -> bool {
    !subject.is_empty()
        && subject.first() != Some(&SEP)
        && subject.last() != Some(&SEP)
        && !subject.windows(2).any(|w| w == [SEP, SEP])
}

/// One stored subscription; `seq` orders results.
#[derive(Debug)]
pub(super) struct Entry<T> {
    pub(super) seq: u64,
    pub(super) value: T,
}

/// The members of one queue group on one node, oldest first.
#[derive(Debug)]
pub(super) struct QueueGroup<T> {
    pub(super) name: Bytes,
    pub(super) members: Vec<Entry<T>>,
}

/// The subscriptions of one node.
///
/// Most nodes of a large trie hold exactly one plain subscription, so that case is stored
/// inline: a `Vec` would allocate room for four on its first push.
#[derive(Debug)]
enum Subs<T> {
    Empty,
    One(Entry<T>),
    /// Never empty: it turns back into `Empty` when its last subscription goes.
    Many(Box<ManySubs<T>>),
}

#[derive(Debug)]
struct ManySubs<T> {
    /// Oldest first. A `Vec` rather than a set: `T` is only `PartialEq`, and keeping insertion
    /// order is what makes results canonical. Removal is a linear scan of this one node.
    psubs: Vec<Entry<T>>,
    /// Few per node in practice, so a linear search by name beats a map.
    qsubs: Vec<QueueGroup<T>>,
}

impl<T> ManySubs<T> {
    fn push(&mut self, queue: Option<&[u8]>, entry: Entry<T>) {
        match queue {
            None => self.psubs.push(entry),
            Some(q) => match self.qsubs.iter_mut().find(|g| g.name.as_ref() == q) {
                Some(group) => group.members.push(entry),
                None => self.qsubs.push(QueueGroup {
                    name: Bytes::copy_from_slice(q),
                    members: vec![entry],
                }),
            },
        }
    }

    fn is_empty(&self) -> bool {
        self.psubs.is_empty() && self.qsubs.is_empty()
    }
}

impl<T: PartialEq> ManySubs<T> {
    pub(super) fn remove(&mut self, queue: Option<&[u8]>, value: &T) -> bool {
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
}

/// The subscriptions on one exact subject pattern, and the level below it.
#[derive(Debug)]
pub(super) struct Node<T> {
    subs: Subs<T>,
    pub(super) next: Option<Box<Level<T>>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            subs: Subs::Empty,
            next: None,
        }
    }
}

impl<T> Node<T> {
    /// Plain subscriptions, oldest first.
    pub(super) fn psubs(&self) -> &[Entry<T>] {
        match &self.subs {
            Subs::Empty => &[],
            Subs::One(e) => std::slice::from_ref(e),
            Subs::Many(m) => &m.psubs,
        }
    }

    /// Queue groups, each with its members oldest first.
    pub(super) fn qsubs(&self) -> &[QueueGroup<T>] {
        match &self.subs {
            Subs::Many(m) => &m.qsubs,
            Subs::Empty | Subs::One(_) => &[],
        }
    }

    pub(super) fn has_subs(&self) -> bool {
        !matches!(self.subs, Subs::Empty)
    }

    pub(super) fn push(&mut self, queue: Option<&[u8]>, entry: Entry<T>) {
        self.subs = match (std::mem::replace(&mut self.subs, Subs::Empty), queue) {
            (Subs::Empty, None) => Subs::One(entry),
            (Subs::Empty, Some(_)) => {
                let mut m = ManySubs {
                    psubs: Vec::new(),
                    qsubs: Vec::new(),
                };
                m.push(queue, entry);
                Subs::Many(Box::new(m))
            }
            (Subs::One(first), _) => {
                let mut m = ManySubs {
                    psubs: vec![first],
                    qsubs: Vec::new(),
                };
                m.push(queue, entry);
                Subs::Many(Box::new(m))
            }
            (Subs::Many(mut m), _) => {
                m.push(queue, entry);
                Subs::Many(m)
            }
        };
    }

    pub(super) fn collect_entries<'a>(&'a self, out: &mut Vec<&'a Entry<T>>) {
        out.extend(self.psubs());
        for g in self.qsubs() {
            out.extend(g.members.iter());
        }
    }
}

impl<T: PartialEq> Node<T> {
    fn remove_entry(&mut self, queue: Option<&[u8]>, value: &T) -> bool {
        match &mut self.subs {
            Subs::Empty => false,
            Subs::One(e) => {
                let hit = queue.is_none() && e.value == *value;
                if hit {
                    self.subs = Subs::Empty;
                }
                hit
            }
            Subs::Many(m) => {
                let hit = m.remove(queue, value);
                if m.is_empty() {
                    self.subs = Subs::Empty;
                }
                hit
            }
        }
    }
}

/// The children of a node: literal tokens by token, the wildcards in their own slots.
#[derive(Debug)]
pub(super) struct Level<T> {
    pub(super) literals: Literals<Node<T>>,
    pub(super) pwc: Option<Box<Node<T>>>,
    pub(super) fwc: Option<Box<Node<T>>>,
}

impl<T> Default for Level<T> {
    fn default() -> Self {
        Self {
            literals: Literals::default(),
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
            _ => self.literals.get_or_insert(tok, Node::default),
        }
    }

    fn remove_child(&mut self, tok: &[u8]) {
        match tok {
            [PWC] => self.pwc = None,
            [FWC] => self.fwc = None,
            _ => self.literals.remove(tok),
        }
    }

    /// The node for a valid subscription subject, created with its ancestors as needed.
    pub(super) fn node_for_insert(&mut self, subject: &[u8]) -> &mut Node<T> {
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
    pub(super) fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, value: &T) -> bool {
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

    pub(super) fn count_nodes(&self) -> usize {
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

    pub(super) fn children(&self) -> impl Iterator<Item = &Node<T>> {
        self.pwc
            .as_deref()
            .into_iter()
            .chain(self.fwc.as_deref())
            .chain(self.literals.values())
    }
}

/// Collects every entry in `node` and everything below it.
pub(super) fn collect_subtree<'a, T: PartialEq>(node: &'a Node<T>, out: &mut Vec<&'a Entry<T>>) {
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
pub(super) fn walk_matches<'a, T>(
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
pub(super) fn collect_overlaps<'a, T: PartialEq>(
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

pub(super) fn sorted_values<T: Clone>(mut entries: Vec<&Entry<T>>) -> Vec<T> {
    entries.sort_by_key(|e| e.seq);
    entries.into_iter().map(|e| e.value.clone()).collect()
}

pub(super) struct Trie<T> {
    pub(super) root: Level<T>,
    /// Next insertion sequence number; orders every result.
    pub(super) next_seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sublist::Sublist;

    /// Memory per subscription is a benchmark target: a trie node with one subscription of a
    /// pointer-sized value is stored in 32 bytes (plus its token key of 24) with no allocation.
    #[test]
    fn node_stays_small() {
        assert!(size_of::<Node<usize>>() <= 32);
        let sl: Sublist<usize> = Sublist::without_cache();
        sl.insert(b"a.b", None, 1).unwrap();
        sl.insert(b"a.b", Some(b"q"), 2).unwrap();
        sl.insert(b"a.b", None, 3).unwrap();
        assert_eq!(sl.matches(b"a.b").psubs, [1, 3]);
        sl.remove(b"a.b", None, &1).unwrap();
        sl.remove(b"a.b", Some(b"q"), &2).unwrap();
        assert_eq!(sl.node_count(), 2);
        sl.remove(b"a.b", None, &3).unwrap();
        assert_eq!(sl.node_count(), 0);
    }
}
