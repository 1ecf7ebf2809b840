use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

type Sl = Sublist<u32>;

fn both() -> [Sl; 2] {
    [Sublist::new(), Sublist::without_cache()]
}

fn ids(r: &SublistResult<u32>) -> (Vec<u32>, Vec<(String, Vec<u32>)>) {
    let groups = r
        .queues
        .iter()
        .zip(&r.qsubs)
        .map(|(q, m)| (String::from_utf8_lossy(q).into_owned(), m.clone()))
        .collect();
    (r.psubs.clone(), groups)
}

fn psubs(sl: &Sl, subject: &str) -> Vec<u32> {
    sl.matches(subject.as_bytes()).psubs.clone()
}

#[test]
fn literal_match() {
    for sl in both() {
        sl.insert(b"foo", None, 1).unwrap();
        sl.insert(b"foo.bar", None, 2).unwrap();
        assert_eq!(psubs(&sl, "foo"), [1]);
        assert_eq!(psubs(&sl, "foo.bar"), [2]);
        assert!(psubs(&sl, "foo.baz").is_empty());
        assert!(psubs(&sl, "bar").is_empty());
        assert!(psubs(&sl, "foo.bar.baz").is_empty());
        assert_eq!(sl.count(), 2);
    }
}

#[test]
fn wildcard_match() {
    for sl in both() {
        sl.insert(b"foo.*", None, 1).unwrap();
        sl.insert(b"foo.>", None, 2).unwrap();
        sl.insert(b">", None, 3).unwrap();
        sl.insert(b"*.bar", None, 4).unwrap();
        sl.insert(b"*", None, 5).unwrap();
        sl.insert(b"foo.*.baz", None, 6).unwrap();
        sl.insert(b"*.*.>", None, 7).unwrap();
        assert_eq!(psubs(&sl, "foo"), [3, 5]);
        assert_eq!(psubs(&sl, "foo.bar"), [1, 2, 3, 4]);
        assert_eq!(psubs(&sl, "foo.x.baz"), [2, 3, 6, 7]);
        assert_eq!(psubs(&sl, "foo.x.y"), [2, 3, 7]);
        assert_eq!(psubs(&sl, "a.b"), [3]);
        // A `*` in a published subject is a token only wildcards match.
        assert_eq!(psubs(&sl, "foo.*"), [1, 2, 3]);
    }
}

#[test]
fn results_are_in_subscription_order_across_nodes() {
    for sl in both() {
        sl.insert(b"a.b", None, 10).unwrap();
        sl.insert(b">", None, 11).unwrap();
        sl.insert(b"a.*", None, 12).unwrap();
        sl.insert(b"a.b", None, 13).unwrap();
        sl.insert(b"*.b", None, 14).unwrap();
        assert_eq!(psubs(&sl, "a.b"), [10, 11, 12, 13, 14]);
        // Again, from the cache when there is one.
        assert_eq!(psubs(&sl, "a.b"), [10, 11, 12, 13, 14]);
    }
}

#[test]
fn queue_groups_merge_across_subjects() {
    for sl in both() {
        sl.insert(b"foo.bar", Some(b"q1"), 1).unwrap();
        sl.insert(b"foo.*", Some(b"q1"), 2).unwrap();
        sl.insert(b"foo.>", Some(b"q2"), 3).unwrap();
        sl.insert(b"foo.bar", Some(b"q2"), 4).unwrap();
        sl.insert(b"foo.bar", None, 5).unwrap();
        sl.insert(b"foo.baz", Some(b"q1"), 6).unwrap();
        let r = sl.matches(b"foo.bar");
        let (p, q) = ids(&r);
        assert_eq!(p, [5]);
        assert_eq!(
            q,
            [
                ("q1".to_string(), vec![1, 2]),
                ("q2".to_string(), vec![3, 4])
            ]
        );
        assert_eq!(r.queue_group(b"q2"), Some(&[3, 4][..]));
        assert_eq!(r.queue_group(b"q3"), None);
        assert_eq!(r.fanout(), 3);
        let (_, q) = ids(&sl.matches(b"foo.baz"));
        assert_eq!(
            q,
            [("q1".to_string(), vec![2, 6]), ("q2".to_string(), vec![3])]
        );
    }
}

#[test]
fn errors() {
    let sl = Sl::new();
    for bad in ["", "foo.", ".foo", "foo..bar", "foo.>.bar", "foo bar"] {
        assert_eq!(
            sl.insert(bad.as_bytes(), None, 1),
            Err(SublistError::InvalidSubject),
            "{bad}"
        );
        assert_eq!(
            sl.remove(bad.as_bytes(), None, &1),
            Err(SublistError::InvalidSubject),
            "{bad}"
        );
    }
    assert_eq!(
        sl.insert(b"foo", Some(b""), 1),
        Err(SublistError::InvalidQueue)
    );
    assert_eq!(
        sl.insert(b"foo", Some(b"a b"), 1),
        Err(SublistError::InvalidQueue)
    );
    assert_eq!(sl.count(), 0);
    assert_eq!(sl.generation(), 0);
    sl.insert(b"foo", Some(b"q"), 1).unwrap();
    assert_eq!(sl.remove(b"foo", None, &1), Err(SublistError::NotFound));
    assert_eq!(
        sl.remove(b"foo", Some(b"r"), &1),
        Err(SublistError::NotFound)
    );
    assert_eq!(
        sl.remove(b"foo", Some(b"q"), &2),
        Err(SublistError::NotFound)
    );
    assert_eq!(
        sl.remove(b"foo.bar", Some(b"q"), &1),
        Err(SublistError::NotFound)
    );
    assert_eq!(sl.remove(b"*", Some(b"q"), &1), Err(SublistError::NotFound));
    assert_eq!(sl.remove(b"foo", Some(b"q"), &1), Ok(()));
    assert_eq!(
        sl.remove(b"foo", Some(b"q"), &1),
        Err(SublistError::NotFound)
    );
    assert_eq!(
        SublistError::NotFound.to_string(),
        "sublist: no matches found"
    );
}

#[test]
fn invalid_publish_subjects_match_nothing_and_are_not_cached() {
    let sl = Sl::new();
    sl.insert(b">", None, 1).unwrap();
    for bad in ["", ".", "foo.", ".foo", "a..b"] {
        assert!(sl.matches(bad.as_bytes()).is_empty(), "{bad}");
        assert!(!sl.has_interest(bad.as_bytes()), "{bad}");
    }
    assert_eq!(sl.cache_count(), 0);
}

/// A transient match (a reply to a one-off inbox) finds what `matches` finds, uses a cached
/// result when there is one, and never adds to the cache.
#[test]
fn transient_matches_do_not_fill_the_cache() {
    let sl = Sl::new();
    sl.insert(b"_INBOX.a.*", None, 1).unwrap();
    sl.insert(b"_INBOX.>", Some(b"q"), 2).unwrap();
    let t = sl.matches_transient(b"_INBOX.a.1");
    assert_eq!(ids(&t), ids(&sl.matches(b"_INBOX.a.2")));
    assert_eq!(sl.cache_count(), 1, "only the plain match was cached");
    let cached = sl.matches(b"_INBOX.a.2");
    assert!(Arc::ptr_eq(&cached, &sl.matches_transient(b"_INBOX.a.2")));
    assert!(sl.matches_transient(b"nobody").is_empty());
    assert!(sl.matches_transient(b"bad..subject").is_empty());
    assert_eq!(sl.cache_count(), 1);
    assert_eq!(sl.stats().num_matches, 6);
}

#[test]
fn duplicate_values_are_stored_twice() {
    let sl = Sl::new();
    sl.insert(b"foo", None, 7).unwrap();
    sl.insert(b"foo", None, 7).unwrap();
    assert_eq!(psubs(&sl, "foo"), [7, 7]);
    sl.remove(b"foo", None, &7).unwrap();
    assert_eq!(psubs(&sl, "foo"), [7]);
    assert_eq!(sl.count(), 1);
}

#[test]
fn cache_hit_shares_the_result() {
    let sl = Sl::new();
    sl.insert(b"foo.*", None, 1).unwrap();
    let a = sl.matches(b"foo.bar");
    let b = sl.matches(b"foo.bar");
    assert!(Arc::ptr_eq(&a, &b));
    // Misses on dead subjects share one empty result.
    let e1 = sl.matches(b"x");
    let e2 = sl.matches(b"y");
    assert!(Arc::ptr_eq(&e1, &e2));
    assert_eq!(sl.cache_count(), 3);
    let st = sl.stats();
    assert_eq!(st.num_matches, 4);
    assert_eq!(st.cache_hits, 1);
    assert!((st.cache_hit_rate - 0.25).abs() < 1e-9);

    let nc = Sl::without_cache();
    nc.insert(b"foo.*", None, 1).unwrap();
    let _ = nc.matches(b"foo.bar");
    assert_eq!(nc.cache_count(), 0);
    assert_eq!(nc.stats().cache_hit_rate, 0.0);
}

#[test]
fn insert_after_cached_miss_updates_cache() {
    let sl = Sl::new();
    assert!(sl.matches(b"foo.bar").is_empty());
    assert!(sl.matches(b"foo.baz").is_empty());
    assert!(sl.matches(b"other").is_empty());
    // Literal insert: only its own entry.
    sl.insert(b"foo.bar", None, 1).unwrap();
    assert_eq!(psubs(&sl, "foo.bar"), [1]);
    assert!(psubs(&sl, "foo.baz").is_empty());
    // Wildcard inserts: every matching entry.
    sl.insert(b"foo.*", None, 2).unwrap();
    sl.insert(b"*.baz", None, 3).unwrap();
    sl.insert(b">", None, 4).unwrap();
    assert_eq!(psubs(&sl, "foo.bar"), [1, 2, 4]);
    assert_eq!(psubs(&sl, "foo.baz"), [2, 3, 4]);
    assert_eq!(psubs(&sl, "other"), [4]);
    // Queue inserts join or create groups in cached results.
    sl.insert(b"foo.>", Some(b"q"), 5).unwrap();
    sl.insert(b"foo.bar", Some(b"q"), 6).unwrap();
    sl.insert(b"foo.bar", Some(b"r"), 7).unwrap();
    let (_, q) = ids(&sl.matches(b"foo.bar"));
    assert_eq!(
        q,
        [("q".to_string(), vec![5, 6]), ("r".to_string(), vec![7])]
    );
    let (_, q) = ids(&sl.matches(b"foo.baz"));
    assert_eq!(q, [("q".to_string(), vec![5])]);
    // Patched results equal fresh ones exactly.
    let fresh = Sl::without_cache();
    for (s, q, v) in [
        ("foo.bar", None, 1),
        ("foo.*", None, 2),
        ("*.baz", None, 3),
        (">", None, 4),
        ("foo.>", Some("q"), 5),
        ("foo.bar", Some("q"), 6),
        ("foo.bar", Some("r"), 7),
    ] {
        fresh.insert(s.as_bytes(), q.map(str::as_bytes), v).unwrap();
    }
    for s in ["foo.bar", "foo.baz", "other"] {
        assert_eq!(
            *sl.matches(s.as_bytes()),
            *fresh.matches(s.as_bytes()),
            "{s}"
        );
    }
    assert!(sl.stats().cache_hits > 0);
}

#[test]
fn remove_after_cached_hit_invalidates_cache() {
    let sl = Sl::new();
    sl.insert(b"foo.bar", None, 1).unwrap();
    sl.insert(b"foo.*", None, 2).unwrap();
    sl.insert(b"foo.>", Some(b"q"), 3).unwrap();
    sl.insert(b"foo.bar", Some(b"q"), 4).unwrap();
    let warm = |sl: &Sl| {
        for s in ["foo.bar", "foo.baz", "foo.x.y"] {
            let _ = sl.matches(s.as_bytes());
        }
    };
    warm(&sl);
    assert_eq!(psubs(&sl, "foo.bar"), [1, 2]);
    sl.remove(b"foo.bar", None, &1).unwrap();
    assert_eq!(psubs(&sl, "foo.bar"), [2]);
    warm(&sl);
    sl.remove(b"foo.*", None, &2).unwrap();
    assert!(psubs(&sl, "foo.bar").is_empty());
    assert!(psubs(&sl, "foo.baz").is_empty());
    warm(&sl);
    let (_, q) = ids(&sl.matches(b"foo.bar"));
    assert_eq!(q, [("q".to_string(), vec![3, 4])]);
    sl.remove(b"foo.bar", Some(b"q"), &4).unwrap();
    let (_, q) = ids(&sl.matches(b"foo.bar"));
    assert_eq!(q, [("q".to_string(), vec![3])]);
    warm(&sl);
    sl.remove(b"foo.>", Some(b"q"), &3).unwrap();
    for s in ["foo.bar", "foo.baz", "foo.x.y"] {
        assert!(sl.matches(s.as_bytes()).is_empty(), "{s}");
        assert!(!sl.has_interest(s.as_bytes()), "{s}");
    }
    assert_eq!(sl.node_count(), 0);
}

#[test]
fn cache_is_bounded_and_swept_to_low_mark() {
    let sl = Sl::new();
    sl.insert(b"s.>", None, 1).unwrap();
    for i in 0..CACHE_MAX {
        let _ = sl.matches(format!("s.{i}").as_bytes());
    }
    assert_eq!(sl.cache_count(), CACHE_MAX);
    let _ = sl.matches(b"s.last");
    assert_eq!(sl.cache_count(), CACHE_SWEEP_TO);
    // The newest entries survive the sweep.
    let hits = sl.stats().cache_hits;
    let _ = sl.matches(b"s.last");
    let _ = sl.matches(format!("s.{}", CACHE_MAX - 1).as_bytes());
    assert_eq!(sl.stats().cache_hits, hits + 2);
    let _ = sl.matches(b"s.0");
    assert_eq!(sl.stats().cache_hits, hits + 2);
    for i in 0..5000 {
        let _ = sl.matches(format!("s.x{i}").as_bytes());
        assert!(sl.cache_count() <= CACHE_MAX);
    }
}

#[test]
fn pruning_returns_node_count_to_zero() {
    for sl in both() {
        let subjects: Vec<String> = (0..200)
            .map(|i| match i % 5 {
                0 => format!("a.b{}.c", i % 7),
                1 => format!("a.*.c{}", i % 3),
                2 => format!("a.b{}.>", i % 4),
                3 => "*.*.*".to_string(),
                _ => format!("x{}", i % 11),
            })
            .collect();
        for round in 0..3u32 {
            for (i, s) in subjects.iter().enumerate() {
                let q = (i % 3 == 0).then_some(&b"q"[..]);
                sl.insert(s.as_bytes(), q, round * 1000 + i as u32).unwrap();
            }
            assert!(sl.node_count() > 0);
            let _ = sl.matches(b"a.b1.c");
            // Remove in a different order than inserted.
            for (i, s) in subjects.iter().enumerate().rev() {
                let q = (i % 3 == 0).then_some(&b"q"[..]);
                sl.remove(s.as_bytes(), q, &(round * 1000 + i as u32))
                    .unwrap();
            }
            assert_eq!(sl.node_count(), 0);
            assert_eq!(sl.count(), 0);
        }
    }
}

#[test]
fn pruning_keeps_shared_prefixes() {
    let sl = Sl::new();
    sl.insert(b"a", None, 1).unwrap();
    sl.insert(b"a.b.c", None, 2).unwrap();
    sl.insert(b"a.b.d", None, 3).unwrap();
    assert_eq!(sl.node_count(), 4);
    sl.remove(b"a.b.c", None, &2).unwrap();
    assert_eq!(sl.node_count(), 3);
    assert_eq!(psubs(&sl, "a.b.d"), [3]);
    sl.remove(b"a.b.d", None, &3).unwrap();
    assert_eq!(sl.node_count(), 1);
    assert_eq!(psubs(&sl, "a"), [1]);
    sl.insert(b"a.b", None, 4).unwrap();
    sl.remove(b"a", None, &1).unwrap();
    assert_eq!(sl.node_count(), 2);
    assert_eq!(psubs(&sl, "a.b"), [4]);
}

#[test]
fn generation_bumps_on_every_mutation() {
    let sl = Sl::new();
    let g0 = sl.generation();
    sl.insert(b"a", None, 1).unwrap();
    let g1 = sl.generation();
    assert!(g1 > g0);
    let _ = sl.matches(b"a");
    assert_eq!(sl.generation(), g1);
    assert!(sl.remove(b"a", None, &2).is_err());
    assert_eq!(sl.generation(), g1);
    sl.remove(b"a", None, &1).unwrap();
    assert!(sl.generation() > g1);
}

#[test]
fn stats_match_subsz_fields() {
    let sl = Sl::new();
    sl.insert(b"foo", None, 1).unwrap();
    sl.insert(b"foo", None, 2).unwrap();
    sl.insert(b"foo", Some(b"q"), 3).unwrap();
    sl.insert(b"bar", None, 4).unwrap();
    sl.remove(b"bar", None, &4).unwrap();
    let _ = sl.matches(b"foo");
    let _ = sl.matches(b"foo");
    let _ = sl.matches(b"baz");
    let st = sl.stats();
    assert_eq!(st.num_subs, 3);
    assert_eq!(st.num_inserts, 4);
    assert_eq!(st.num_removes, 1);
    assert_eq!(st.num_matches, 3);
    assert_eq!(st.num_cache, 2);
    assert_eq!(st.max_fanout, 3);
    assert!((st.avg_fanout - 1.5).abs() < 1e-9);
    assert!((st.cache_hit_rate - 1.0 / 3.0).abs() < 1e-9);
    let json = serde_json::to_value(&st).unwrap();
    let keys: BTreeSet<String> = json.as_object().unwrap().keys().cloned().collect();
    let want: BTreeSet<String> = [
        "num_subscriptions",
        "num_cache",
        "num_inserts",
        "num_removes",
        "num_matches",
        "cache_hit_rate",
        "max_fanout",
        "avg_fanout",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(keys, want);
    assert_eq!(json["num_subscriptions"], 3);

    let mut sum = SublistStats::default();
    sum.add(&st);
    sum.add(&Sl::new().stats());
    assert_eq!(sum.num_subs, 3);
    assert_eq!(sum.max_fanout, 3);
    assert!((sum.avg_fanout - 1.5).abs() < 1e-9);
    assert!((sum.cache_hit_rate - 1.0 / 3.0).abs() < 1e-9);
}

#[test]
fn all_in_subscription_order() {
    let sl = Sl::new();
    for (i, s) in ["z", "a.b", ">", "a.*", "a.b"].iter().enumerate() {
        let q = (i == 3).then_some(&b"q"[..]);
        sl.insert(s.as_bytes(), q, i as u32).unwrap();
    }
    assert_eq!(sl.all(), [0, 1, 2, 3, 4]);
    sl.remove(b">", None, &2).unwrap();
    assert_eq!(sl.all(), [0, 1, 3, 4]);
}

#[test]
fn matching_patterns_examples() {
    let sl = Sl::new();
    let subs = [
        "foo",
        "foo.bar",
        "foo.*",
        "foo.>",
        "*.bar",
        ">",
        "bar.baz",
        "foo.bar.baz",
    ];
    for (i, s) in subs.iter().enumerate() {
        sl.insert(s.as_bytes(), None, i as u32).unwrap();
    }
    let names = |pat: &str| -> Vec<&str> {
        sl.matching_patterns(pat.as_bytes())
            .into_iter()
            .map(|i| subs[i as usize])
            .collect()
    };
    assert_eq!(names("foo"), ["foo", ">"]);
    assert_eq!(
        names("foo.bar"),
        ["foo.bar", "foo.*", "foo.>", "*.bar", ">"]
    );
    assert_eq!(
        names("foo.>"),
        ["foo.bar", "foo.*", "foo.>", "*.bar", ">", "foo.bar.baz"]
    );
    assert_eq!(names("*.baz"), ["foo.*", "foo.>", ">", "bar.baz"]);
    assert_eq!(names(">"), subs);
    assert!(names("foo..bar").is_empty());
}

#[test]
fn remove_batch_removes_all_and_reports_first_error() {
    for sl in both() {
        let mut items: Vec<(Vec<u8>, Option<Vec<u8>>, u32)> = Vec::new();
        for i in 0..40u32 {
            let s = format!("c.{}.{}", i % 4, if i % 2 == 0 { "*" } else { "x" });
            let q = (i % 3 == 0).then(|| b"g".to_vec());
            sl.insert(s.as_bytes(), q.as_deref(), i).unwrap();
            items.push((s.into_bytes(), q, i));
        }
        sl.insert(b"keep", None, 99).unwrap();
        let _ = sl.matches(b"c.1.x");
        let _ = sl.matches(b"keep");
        let g = sl.generation();
        // A small batch: invalidated entry by entry.
        let small = &items[..2];
        sl.remove_batch(
            small
                .iter()
                .map(|(s, q, v)| (s.as_slice(), q.as_deref(), v)),
        )
        .unwrap();
        assert_eq!(sl.count(), 39);
        assert!(sl.generation() > g);
        let missing = 1000u32;
        let rest = items[2..]
            .iter()
            .map(|(s, q, v)| (s.as_slice(), q.as_deref(), v))
            .chain([
                (&b"nope"[..], None, &missing),
                (&b"bad..s"[..], None, &missing),
            ]);
        assert_eq!(sl.remove_batch(rest), Err(SublistError::NotFound));
        assert_eq!(sl.count(), 1);
        assert_eq!(sl.stats().num_removes, 40);
        assert!(sl.matches(b"c.1.x").is_empty());
        assert_eq!(psubs(&sl, "keep"), [99]);
        assert_eq!(sl.node_count(), 1);
    }
}

#[test]
fn has_interest_tracks_matches() {
    for sl in both() {
        assert!(!sl.has_interest(b"foo.bar"));
        sl.insert(b"foo.*", Some(b"q"), 1).unwrap();
        assert!(sl.has_interest(b"foo.bar"));
        assert!(!sl.has_interest(b"foo"));
        // Intermediate nodes without subscriptions are not interest.
        sl.insert(b"a.b.c", None, 2).unwrap();
        assert!(!sl.has_interest(b"a.b"));
        assert!(sl.has_interest(b"a.b.c"));
        let _ = sl.matches(b"a.b");
        assert!(!sl.has_interest(b"a.b"));
    }
}

#[test]
fn deep_subjects_do_not_recurse() {
    let sl = Sl::new();
    let deep = vec!["*"; 20_000].join(".");
    let lit = vec!["t"; 20_000].join(".");
    sl.insert(deep.as_bytes(), None, 1).unwrap();
    sl.insert(lit.as_bytes(), None, 2).unwrap();
    assert_eq!(psubs(&sl, &lit), [1, 2]);
    assert_eq!(sl.matching_patterns(deep.as_bytes()), [1, 2]);
    sl.remove(deep.as_bytes(), None, &1).unwrap();
    sl.remove(lit.as_bytes(), None, &2).unwrap();
    assert_eq!(sl.node_count(), 0);
}

#[test]
fn concurrent_matches_during_churn() {
    // Values carry their subject so readers can check every result they see.
    type V = Arc<(String, u32)>;
    let sl: Sublist<V> = Sublist::new();
    let patterns = ["a.b", "a.*", "a.>", ">", "*.b", "b.c", "a.b.c", "*.*.c"];
    let publish = ["a.b", "a.c", "b.c", "a.b.c", "x.y.c", "b.b"];
    let stable: Vec<V> = patterns
        .iter()
        .enumerate()
        .map(|(i, p)| Arc::new(((*p).to_string(), i as u32)))
        .collect();
    for v in &stable {
        sl.insert(v.0.as_bytes(), None, Arc::clone(v)).unwrap();
    }
    std::thread::scope(|s| {
        for t in 0..3usize {
            let sl = &sl;
            s.spawn(move || {
                for i in 0..3000usize {
                    let subj = publish[(i + t) % publish.len()];
                    let r = sl.matches(subj.as_bytes());
                    for v in r.psubs.iter().chain(r.qsubs.iter().flatten()) {
                        assert!(subject::matches(v.0.as_bytes(), subj.as_bytes()));
                    }
                    let seqs: Vec<u32> = r.psubs.iter().map(|v| v.1).collect();
                    let mut sorted = seqs.clone();
                    sorted.sort_unstable();
                    sorted.dedup();
                    assert_eq!(seqs.len(), sorted.len(), "no duplicates");
                }
            });
        }
        let sl = &sl;
        s.spawn(move || {
            for i in 0..2000u32 {
                let p = patterns[i as usize % patterns.len()];
                let q = (i % 3 == 0).then_some(&b"q"[..]);
                let v = Arc::new((p.to_string(), 100 + i));
                sl.insert(p.as_bytes(), q, Arc::clone(&v)).unwrap();
                let _ = sl.matches(b"a.b");
                sl.remove(p.as_bytes(), q, &v).unwrap();
            }
        });
    });
    assert_eq!(sl.count(), patterns.len() as u32);
    let fresh: Sublist<V> = Sublist::without_cache();
    for v in &stable {
        fresh.insert(v.0.as_bytes(), None, Arc::clone(v)).unwrap();
    }
    for subj in publish {
        assert_eq!(
            *sl.matches(subj.as_bytes()),
            *fresh.matches(subj.as_bytes()),
            "{subj}"
        );
    }
}

// ----- property test against a naive reference -----

#[derive(Debug, Clone)]
enum Op {
    Insert(String, Option<&'static str>),
    Remove(usize),
    RemoveMissing(String, Option<&'static str>),
    RemoveBatch(Vec<usize>),
    Match(String),
    Overlaps(String),
}

fn sub_subject() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "*"]), 0..4),
        prop::sample::select(vec!["a", "b", "c", "*", ">"]),
    )
        .prop_map(|(mut toks, last)| {
            toks.push(last);
            toks.join(".")
        })
}

fn pub_subject() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["a", "a", "b", "b", "c", "*"]),
        1..6,
    )
    .prop_map(|t| t.join("."))
}

fn queue() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![None, None, Some("q1"), Some("q2")])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (sub_subject(), queue()).prop_map(|(s, q)| Op::Insert(s, q)),
        2 => any::<usize>().prop_map(Op::Remove),
        1 => (sub_subject(), queue()).prop_map(|(s, q)| Op::RemoveMissing(s, q)),
        1 => prop::collection::vec(any::<usize>(), 0..4).prop_map(Op::RemoveBatch),
        4 => pub_subject().prop_map(Op::Match),
        1 => sub_subject().prop_map(Op::Overlaps),
    ]
}

/// Exact overlap of two valid patterns, by recursion on tokens.
fn overlap_ref(a: &[&str], b: &[&str]) -> bool {
    match (a.first(), b.first()) {
        (None, None) => true,
        (Some(&">"), _) => !b.is_empty(),
        (_, Some(&">")) => !a.is_empty(),
        (Some(x), Some(y)) => (*x == "*" || *y == "*" || x == y) && overlap_ref(&a[1..], &b[1..]),
        _ => false,
    }
}

#[derive(Default)]
struct Model {
    /// (subject, queue, id), oldest first.
    subs: Vec<(String, Option<&'static str>, u32)>,
    next_id: u32,
}

impl Model {
    fn expected(&self, subj: &str) -> (Vec<u32>, Vec<(String, Vec<u32>)>) {
        let mut p = Vec::new();
        let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
        for (s, q, id) in &self.subs {
            if !subject::matches(s.as_bytes(), subj.as_bytes()) {
                continue;
            }
            match q {
                None => p.push(*id),
                Some(q) => match groups.iter_mut().find(|(n, _)| n == q) {
                    Some((_, m)) => m.push(*id),
                    None => groups.push(((*q).to_string(), vec![*id])),
                },
            }
        }
        (p, groups)
    }
}

fn run_ops(ops: &[Op]) -> Result<(), TestCaseError> {
    let lists = both();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Insert(s, q) => {
                let id = model.next_id;
                model.next_id += 1;
                for sl in &lists {
                    prop_assert_eq!(sl.insert(s.as_bytes(), q.map(str::as_bytes), id), Ok(()));
                }
                model.subs.push((s.clone(), *q, id));
            }
            Op::Remove(i) => {
                if model.subs.is_empty() {
                    continue;
                }
                let (s, q, id) = model.subs.remove(i % model.subs.len());
                for sl in &lists {
                    prop_assert_eq!(sl.remove(s.as_bytes(), q.map(str::as_bytes), &id), Ok(()));
                }
            }
            Op::RemoveMissing(s, q) => {
                // An id never inserted, or an existing id under the wrong queue.
                let wrong = model
                    .subs
                    .iter()
                    .find(|(ms, mq, _)| ms == s && mq != q)
                    .map(|m| m.2);
                let id = wrong.unwrap_or(u32::MAX);
                for sl in &lists {
                    prop_assert_eq!(
                        sl.remove(s.as_bytes(), q.map(str::as_bytes), &id),
                        Err(SublistError::NotFound)
                    );
                }
            }
            Op::RemoveBatch(idx) => {
                let mut picked = Vec::new();
                for i in idx {
                    if model.subs.is_empty() {
                        break;
                    }
                    picked.push(model.subs.remove(i % model.subs.len()));
                }
                for sl in &lists {
                    let items = picked
                        .iter()
                        .map(|(s, q, id)| (s.as_bytes(), q.map(str::as_bytes), id));
                    prop_assert_eq!(sl.remove_batch(items), Ok(()));
                }
            }
            Op::Match(subj) => {
                let want = model.expected(subj);
                for sl in &lists {
                    let got = ids(&sl.matches(subj.as_bytes()));
                    prop_assert_eq!(&got, &want, "match {} cache={}", subj, sl.cache_enabled());
                    let interest = !want.0.is_empty() || !want.1.is_empty();
                    prop_assert_eq!(sl.has_interest(subj.as_bytes()), interest);
                }
            }
            Op::Overlaps(pat) => {
                let pt: Vec<&str> = pat.split('.').collect();
                let want: Vec<u32> = model
                    .subs
                    .iter()
                    .filter(|(s, _, _)| overlap_ref(&s.split('.').collect::<Vec<_>>(), &pt))
                    .map(|m| m.2)
                    .collect();
                for sl in &lists {
                    prop_assert_eq!(sl.matching_patterns(pat.as_bytes()), want.clone());
                }
            }
        }
        let all: Vec<u32> = model.subs.iter().map(|m| m.2).collect();
        for sl in &lists {
            prop_assert_eq!(sl.count() as usize, model.subs.len());
            prop_assert_eq!(sl.all(), all.clone());
        }
    }
    // Draining everything leaves no nodes behind.
    for (s, q, id) in model.subs.drain(..) {
        for sl in &lists {
            prop_assert_eq!(sl.remove(s.as_bytes(), q.map(str::as_bytes), &id), Ok(()));
        }
    }
    for sl in &lists {
        prop_assert_eq!(sl.node_count(), 0);
        prop_assert_eq!(sl.count(), 0);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn prop_matches_reference(ops in prop::collection::vec(op(), 1..80)) {
        run_ops(&ops)?;
    }
}

#[test]
fn overlap_ref_agrees_with_brute_force() {
    // Check the test oracle itself: two patterns overlap iff some literal subject over a
    // small alphabet (plus one token neither names) matches both.
    let toks = ["a", "b", "*", ">"];
    let mut patterns = Vec::new();
    for n in 1..=3 {
        let mut idx = vec![0usize; n];
        loop {
            let p: Vec<&str> = idx.iter().map(|&i| toks[i]).collect();
            if subject::is_valid_subject(p.join(".").as_bytes()) {
                patterns.push(p.join("."));
            }
            let mut k = 0;
            while k < n {
                idx[k] += 1;
                if idx[k] < toks.len() {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
            if k == n {
                break;
            }
        }
    }
    let mut literals = Vec::new();
    for n in 1..=4 {
        let mut idx = vec![0usize; n];
        let lt = ["a", "b", "z"];
        loop {
            literals.push(idx.iter().map(|&i| lt[i]).collect::<Vec<_>>().join("."));
            let mut k = 0;
            while k < n {
                idx[k] += 1;
                if idx[k] < lt.len() {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
            if k == n {
                break;
            }
        }
    }
    for a in &patterns {
        for b in &patterns {
            let brute = literals.iter().any(|l| {
                subject::matches(a.as_bytes(), l.as_bytes())
                    && subject::matches(b.as_bytes(), l.as_bytes())
            });
            let av: Vec<&str> = a.split('.').collect();
            let bv: Vec<&str> = b.split('.').collect();
            assert_eq!(overlap_ref(&av, &bv), brute, "{a} vs {b}");
        }
    }
}
