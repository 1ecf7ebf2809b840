//! The subscription index against a naive list-of-subscriptions model.

use super::{reference, subject_from, Input};
use crate::sublist::{Sublist, SublistError, SublistResult, CACHE_MAX};

/// Tokens of subscription subjects; `>` not last and the empty token make invalid subjects.
const SUB_TOKENS: &[&str] = &["a", "b", "c", "*", ">", "a", "b", ""];
/// Tokens of published subjects; wildcards are literal tokens there.
const PUB_TOKENS: &[&str] = &["a", "b", "c", "z", "a", "b", "*", ">", ""];
/// Queue groups, including invalid names.
const QUEUES: &[Option<&str>] = &[
    None,
    None,
    None,
    Some("q1"),
    Some("q2"),
    Some(""),
    Some("q 1"),
];

/// One subscription of the model.
#[derive(Debug, Clone)]
struct Sub {
    subject: String,
    queue: Option<&'static str>,
    id: u32,
}

/// Every subscription in insertion order; answers by scanning them all.
#[derive(Debug, Default)]
struct Model {
    subs: Vec<Sub>,
    next_id: u32,
}

/// A result reduced to ids: plain subscriptions, then (group, members) in result order.
type Ids = (Vec<u32>, Vec<(String, Vec<u32>)>);

impl Model {
    fn expected(&self, subj: &str) -> Ids {
        let mut plain = Vec::new();
        let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
        // A published subject with an empty token matches nothing.
        if subj.split('.').any(str::is_empty) {
            return (plain, groups);
        }
        for s in self
            .subs
            .iter()
            .filter(|s| reference::matches(&s.subject, subj))
        {
            match s.queue {
                None => plain.push(s.id),
                Some(q) => match groups.iter_mut().find(|(n, _)| n == q) {
                    Some((_, members)) => members.push(s.id),
                    None => groups.push((q.to_owned(), vec![s.id])),
                },
            }
        }
        (plain, groups)
    }
}

fn ids(r: &SublistResult<u32>) -> Ids {
    let groups = r
        .queues
        .iter()
        .zip(&r.qsubs)
        .map(|(q, m)| (String::from_utf8_lossy(q).into_owned(), m.clone()))
        .collect();
    (r.psubs.clone(), groups)
}

fn sub_subject(b: &mut Input<'_>) -> String {
    let n = 1 + usize::from(b.below(4));
    subject_from(b, n, SUB_TOKENS)
}

/// `sublist_ops`: a sequence of operations on two [`Sublist`]s (with and without the match
/// cache) and on a model that scans a plain list.
///
/// Format: one byte chooses each operation — insert (with a subject and queue from the next
/// bytes), remove an existing subscription, remove a missing one, remove a batch, match a
/// published subject, list overlapping subscriptions; the first `0xFF` floods the cache with more
/// distinct subjects than it holds, forcing a sweep (later ones are plain matches).
///
/// Checks: every result, error, count and listing agrees with the model, in order; removing
/// everything at the end leaves an empty trie.
pub fn sublist_ops(data: &[u8]) {
    let mut b = Input::new(data);
    let lists = [Sublist::<u32>::new(), Sublist::<u32>::without_cache()];
    let mut model = Model::default();
    // A flood costs a thousand matches; more than one per input only slows the fuzzer down.
    let mut flooded = false;
    for _ in 0..2_000 {
        if b.is_empty() {
            break;
        }
        let k = b.byte();
        match k % 16 {
            _ if k == 0xFF && !flooded => {
                flooded = true;
                let cached = &lists[0];
                for i in 0..CACHE_MAX + 8 {
                    let _ = cached.matches(format!("flood.{i}").as_bytes());
                }
                assert!(cached.cache_count() <= CACHE_MAX);
            }
            0..=4 => {
                let subject = sub_subject(&mut b);
                let queue = b.pick(QUEUES);
                let want = if !reference::valid(&subject) {
                    Err(SublistError::InvalidSubject)
                } else if queue.is_some_and(|q| q.is_empty() || q.contains(' ')) {
                    Err(SublistError::InvalidQueue)
                } else {
                    Ok(())
                };
                let id = model.next_id;
                model.next_id += 1;
                for sl in &lists {
                    let got = sl.insert(subject.as_bytes(), queue.map(str::as_bytes), id);
                    assert_eq!(got, want, "insert {subject:?} {queue:?}");
                }
                if want.is_ok() {
                    model.subs.push(Sub { subject, queue, id });
                }
            }
            5 | 6 => {
                if model.subs.is_empty() {
                    continue;
                }
                let s = model.subs.remove(usize::from(b.byte()) % model.subs.len());
                for sl in &lists {
                    let got = sl.remove(s.subject.as_bytes(), s.queue.map(str::as_bytes), &s.id);
                    assert_eq!(got, Ok(()), "remove {s:?}");
                }
            }
            7 => {
                // A missing id, or an existing one under another subject or queue.
                let subject = sub_subject(&mut b);
                let queue = b.pick(QUEUES);
                let id = match model.subs.get(usize::from(b.byte())) {
                    Some(s) if s.subject != subject || s.queue != queue => s.id,
                    _ => u32::MAX,
                };
                let want = if reference::valid(&subject) {
                    Err(SublistError::NotFound)
                } else {
                    Err(SublistError::InvalidSubject)
                };
                for sl in &lists {
                    let got = sl.remove(subject.as_bytes(), queue.map(str::as_bytes), &id);
                    assert_eq!(got, want, "remove missing {subject:?} {queue:?} {id}");
                }
            }
            8 => {
                let mut picked = Vec::new();
                for _ in 0..b.below(6) {
                    let i = usize::from(b.byte());
                    if !model.subs.is_empty() {
                        picked.push(model.subs.remove(i % model.subs.len()));
                    }
                }
                for sl in &lists {
                    let items = picked
                        .iter()
                        .map(|s| (s.subject.as_bytes(), s.queue.map(str::as_bytes), &s.id));
                    assert_eq!(sl.remove_batch(items), Ok(()), "remove batch {picked:?}");
                }
            }
            13 => {
                let pattern = sub_subject(&mut b);
                let want: Vec<u32> = if reference::valid(&pattern) {
                    model
                        .subs
                        .iter()
                        .filter(|s| reference::overlaps(&s.subject, &pattern))
                        .map(|s| s.id)
                        .collect()
                } else {
                    Vec::new()
                };
                for sl in &lists {
                    assert_eq!(
                        sl.matching_patterns(pattern.as_bytes()),
                        want,
                        "{pattern:?}"
                    );
                }
            }
            _ => {
                let n = 1 + usize::from(b.below(5));
                let subj = subject_from(&mut b, n, PUB_TOKENS);
                let want = model.expected(&subj);
                let interest = !want.0.is_empty() || !want.1.is_empty();
                for sl in &lists {
                    // Twice: the second answer may come from the cache.
                    for _ in 0..2 {
                        let got = ids(&sl.matches(subj.as_bytes()));
                        assert_eq!(got, want, "match {subj:?} cache={}", sl.cache_enabled());
                    }
                    assert_eq!(sl.has_interest(subj.as_bytes()), interest, "{subj:?}");
                }
            }
        }
        let all: Vec<u32> = model.subs.iter().map(|s| s.id).collect();
        for sl in &lists {
            assert_eq!(sl.count() as usize, model.subs.len());
            assert_eq!(sl.all(), all);
        }
    }
    for s in model.subs.drain(..) {
        for sl in &lists {
            assert_eq!(
                sl.remove(s.subject.as_bytes(), s.queue.map(str::as_bytes), &s.id),
                Ok(())
            );
        }
    }
    for sl in &lists {
        assert_eq!(sl.node_count(), 0, "removals left trie nodes behind");
        assert_eq!(sl.count(), 0);
    }
}
