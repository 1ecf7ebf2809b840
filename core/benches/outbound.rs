//! Fan-out encoding: one published payload queued as `MSG` to 8 subscribers' outbound queues.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use natsd_core::outbound::Outbound;
use natsd_core::proto::client::encode_msg_header;

const FANOUT: usize = 8;
const MSGS: usize = 256;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("outbound_fanout_x8");
    g.throughput(Throughput::Elements((MSGS * FANOUT) as u64));
    for size in [16, 128, 4096] {
        let payload = Bytes::from(vec![b'x'; size]);
        let subject = b"bench.fanout.subject";
        let sids: Vec<Vec<u8>> = (1..=FANOUT).map(|i| i.to_string().into_bytes()).collect();
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{size}B")),
            &payload,
            |b, payload| {
                let mut queues: Vec<Outbound> =
                    (0..FANOUT).map(|_| Outbound::new(64 << 20)).collect();
                let mut drained = Vec::with_capacity(1024);
                b.iter(|| {
                    for _ in 0..MSGS {
                        for (q, sid) in queues.iter_mut().zip(&sids) {
                            let hint = subject.len() + sid.len() + 16;
                            let n = q
                                .push_msg(
                                    hint,
                                    |out| encode_msg_header(out, subject, sid, None, payload.len()),
                                    payload,
                                )
                                .expect("below max_pending");
                            black_box(n);
                        }
                    }
                    // The writers' side: take everything queued, as one vectored write would.
                    for q in &mut queues {
                        black_box(q.drain_into(&mut drained));
                        drained.clear();
                    }
                });
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
