//! The in-memory index every store keeps: sequence → message metadata, and subject → sequences.
//!
//! A [`FileStore`](super::FileStore) rebuilds it from its blocks at open; a
//! [`MemStore`](super::MemStore) keeps the message bodies in the `loc` slot itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{filter_matches, SimpleState, UnixNanos};

/// One indexed message.
#[derive(Debug, Clone)]
pub(crate) struct Entry<L> {
    pub(crate) subject: Arc<str>,
    pub(crate) ts: UnixNanos,
    pub(crate) size: u64,
    pub(crate) loc: L,
}

#[derive(Debug)]
pub(crate) struct Index<L> {
    pub(crate) msgs: BTreeMap<u64, Entry<L>>,
    /// Sequences per subject. Subjects are interned: the entry and the key share one `Arc`.
    subjects: BTreeMap<Arc<str>, BTreeSet<u64>>,
    pub(crate) bytes: u64,
    /// Highest sequence ever assigned; removals never lower it.
    pub(crate) last_seq: u64,
    pub(crate) last_ts: UnixNanos,
}

impl<L> Index<L> {
    /// An empty index whose next message gets `last_seq + 1`.
    pub(crate) fn new(last_seq: u64, last_ts: UnixNanos) -> Self {
        Self {
            msgs: BTreeMap::new(),
            subjects: BTreeMap::new(),
            bytes: 0,
            last_seq,
            last_ts,
        }
    }

    pub(crate) fn insert(&mut self, seq: u64, subject: &str, ts: UnixNanos, size: u64, loc: L) {
        let subject: Arc<str> = match self.subjects.get_key_value(subject) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(subject),
        };
        self.subjects
            .entry(Arc::clone(&subject))
            .or_default()
            .insert(seq);
        if let Some(old) = self.msgs.insert(
            seq,
            Entry {
                subject,
                ts,
                size,
                loc,
            },
        ) {
            // Only a damaged log can repeat a sequence; keep the accounting exact anyway.
            self.bytes -= old.size;
            self.unlink(seq, &old.subject);
        }
        self.bytes += size;
        if seq >= self.last_seq {
            self.last_seq = seq;
            self.last_ts = ts;
        }
    }

    fn unlink(&mut self, seq: u64, subject: &str) {
        if let Some(set) = self.subjects.get_mut(subject) {
            set.remove(&seq);
            if set.is_empty() {
                self.subjects.remove(subject);
            }
        }
    }

    pub(crate) fn remove(&mut self, seq: u64) -> Option<Entry<L>> {
        let e = self.msgs.remove(&seq)?;
        self.bytes -= e.size;
        self.unlink(seq, &e.subject);
        Some(e)
    }

    /// Removes every message below `floor`; the stream's last sequence becomes at least
    /// `floor - 1`.
    pub(crate) fn remove_below(&mut self, floor: u64) -> Vec<(u64, Entry<L>)> {
        let keep = self.msgs.split_off(&floor);
        let gone = std::mem::replace(&mut self.msgs, keep);
        for (seq, e) in &gone {
            self.bytes -= e.size;
            self.unlink(*seq, &e.subject);
        }
        self.last_seq = self.last_seq.max(floor.saturating_sub(1));
        gone.into_iter().collect()
    }

    /// First sequence held; `last_seq + 1` when empty.
    pub(crate) fn first_seq(&self) -> u64 {
        self.msgs
            .keys()
            .next()
            .copied()
            .unwrap_or(self.last_seq + 1)
    }

    pub(crate) fn num_subjects(&self) -> u64 {
        self.subjects.len() as u64
    }

    pub(crate) fn subject_count(&self, subject: &str) -> u64 {
        self.subjects.get(subject).map_or(0, |s| s.len() as u64)
    }

    /// Sequences of `subject`, oldest first.
    pub(crate) fn subject_seqs(&self, subject: &str) -> impl Iterator<Item = u64> + '_ {
        self.subjects.get(subject).into_iter().flatten().copied()
    }

    /// Each subject passing `filter` with its sequences. A literal filter is one lookup.
    pub(crate) fn matching<'a>(
        &'a self,
        filter: &'a str,
    ) -> Box<dyn Iterator<Item = (&'a str, &'a BTreeSet<u64>)> + 'a> {
        if !filter.is_empty() && crate::subject::is_literal(filter.as_bytes()) {
            return Box::new(
                self.subjects
                    .get_key_value(filter)
                    .map(|(k, v)| (&**k, v))
                    .into_iter(),
            );
        }
        Box::new(
            self.subjects
                .iter()
                .filter(move |(k, _)| filter_matches(filter, k))
                .map(|(k, v)| (&**k, v)),
        )
    }

    pub(crate) fn filtered_state(&self, filter: &str) -> SimpleState {
        let mut st = SimpleState::default();
        for (_, seqs) in self.matching(filter) {
            let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
                continue;
            };
            st.msgs += seqs.len() as u64;
            st.first = if st.first == 0 {
                first
            } else {
                st.first.min(first)
            };
            st.last = st.last.max(last);
        }
        st
    }

    /// All sequences passing `filter`, ascending.
    pub(crate) fn matching_seqs(&self, filter: &str) -> Vec<u64> {
        if filter.is_empty() || filter == ">" {
            return self.msgs.keys().copied().collect();
        }
        let mut v: Vec<u64> = self
            .matching(filter)
            .flat_map(|(_, s)| s.iter().copied())
            .collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_follows_inserts_and_removals() {
        let mut ix: Index<()> = Index::new(0, 0);
        ix.insert(1, "a.x", 10, 5, ());
        ix.insert(2, "a.y", 11, 7, ());
        ix.insert(3, "a.x", 12, 9, ());
        assert_eq!(
            (ix.bytes, ix.num_subjects(), ix.last_seq, ix.last_ts),
            (21, 2, 3, 12)
        );
        assert_eq!(
            ix.filtered_state("a.x"),
            SimpleState {
                msgs: 2,
                first: 1,
                last: 3
            }
        );
        assert_eq!(
            ix.filtered_state("a.*"),
            SimpleState {
                msgs: 3,
                first: 1,
                last: 3
            }
        );
        assert_eq!(ix.filtered_state("b"), SimpleState::default());
        assert!(ix.remove(2).is_some());
        assert_eq!(ix.num_subjects(), 1);
        let gone = ix.remove_below(10);
        assert_eq!(gone.len(), 2);
        assert_eq!((ix.bytes, ix.last_seq, ix.first_seq()), (0, 9, 10));
        assert_eq!(ix.matching_seqs(">"), Vec::<u64>::new());
    }
}
