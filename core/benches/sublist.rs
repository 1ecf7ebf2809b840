//! Subscription matching: cache hits, cache misses (trie walks) and wildcard-heavy tries.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use natsd_core::sublist::Sublist;

const SUBJECTS: usize = 10_000;

fn literal_list(cache: bool) -> Sublist<u64> {
    let s = if cache {
        Sublist::new()
    } else {
        Sublist::without_cache()
    };
    for i in 0..SUBJECTS {
        let subject = format!("orders.region{}.item.{i}", i % 16);
        s.insert(subject.as_bytes(), None, i as u64).expect("valid");
    }
    s
}

fn subjects() -> Vec<Vec<u8>> {
    (0..SUBJECTS)
        .map(|i| format!("orders.region{}.item.{i}", i % 16).into_bytes())
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sublist");
    g.throughput(Throughput::Elements(1));

    let hot = literal_list(true);
    let subject = b"orders.region3.item.3";
    hot.matches(subject);
    g.bench_function("match_cache_hit", |b| {
        b.iter(|| black_box(hot.matches(black_box(subject)).fanout()));
    });

    // Without a cache every match walks the trie (also what a cache miss costs, minus the fill).
    let cold = literal_list(false);
    let all = subjects();
    let mut i = 0;
    g.bench_function("match_trie_walk_10k_literals", |b| {
        b.iter(|| {
            i = (i + 7919) % all.len();
            black_box(cold.matches(&all[i]).fanout())
        });
    });

    // With the cache on, but cycling over more subjects than it holds: miss, walk, fill, evict.
    let churn = literal_list(true);
    let mut j = 0;
    g.bench_function("match_cache_miss_10k_cycle", |b| {
        b.iter(|| {
            j = (j + 7919) % all.len();
            black_box(churn.matches(&all[j]).fanout())
        });
    });

    // Wildcard-heavy: many `*` and `>` subscriptions overlap every published subject.
    let wild: Sublist<u64> = Sublist::without_cache();
    let mut v = 0;
    for a in 0..16 {
        for pattern in [
            format!("orders.region{a}.*.*"),
            format!("orders.*.item.{a}"),
            format!("*.region{a}.>"),
            format!("orders.region{a}.>"),
            "orders.>".to_string(),
            "*.*.item.*".to_string(),
        ] {
            wild.insert(pattern.as_bytes(), None, v).expect("valid");
            v += 1;
        }
        wild.insert(
            format!("orders.region{a}.item.*").as_bytes(),
            Some(b"workers"),
            v,
        )
        .expect("valid");
        v += 1;
    }
    g.bench_function("match_wildcard_heavy", |b| {
        let mut k = 0u32;
        b.iter(|| {
            k = k.wrapping_add(1);
            let subject = format!("orders.region{}.item.{}", k % 16, k % 64);
            black_box(wild.matches(subject.as_bytes()).fanout())
        });
    });
    g.finish();

    // Building and tearing down the trie of the `natsd bench subs` scenario: one subscription
    // per distinct subject under a common prefix (the level with 10k children is a hash map,
    // every leaf holds its one subscription inline).
    let mut g = c.benchmark_group("sublist_build");
    g.throughput(Throughput::Elements(SUBJECTS as u64));
    let distinct: Vec<Vec<u8>> = (0..SUBJECTS)
        .map(|i| format!("bench.subs.{i}").into_bytes())
        .collect();
    g.bench_function("insert_remove_10k_distinct", |b| {
        b.iter(|| {
            let s: Sublist<u64> = Sublist::without_cache();
            for (i, subject) in distinct.iter().enumerate() {
                s.insert(subject, None, i as u64).expect("valid");
            }
            for (i, subject) in distinct.iter().enumerate() {
                s.remove(subject, None, &(i as u64)).expect("present");
            }
            black_box(s.node_count())
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
