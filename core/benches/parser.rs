//! Client protocol parser throughput: a stream of PUBs parsed whole, and parsed as it arrives
//! in reads that split ops at arbitrary points.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use natsd_core::proto::client::{
    ClientOp, ClientParser, DEFAULT_MAX_CONTROL_LINE, DEFAULT_MAX_PAYLOAD,
};

const OPS: usize = 1000;

fn stream(size: usize) -> Vec<u8> {
    let mut s = Vec::new();
    let payload = vec![b'x'; size];
    for i in 0..OPS {
        s.extend_from_slice(format!("PUB bench.subject.{} {size}\r\n", i % 10).as_bytes());
        s.extend_from_slice(&payload);
        s.extend_from_slice(b"\r\n");
    }
    s
}

/// Feeds `input` in `chunk`-byte reads, parsing after each; returns the ops parsed.
fn parse_all(p: &mut ClientParser, input: &[u8], chunk: usize) -> usize {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut n = 0;
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(op) = p.parse(&mut buf).expect("valid stream") {
            if let ClientOp::Pub(m) = op {
                black_box(m.payload.len());
                n += 1;
            }
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("parser");
    g.throughput(Throughput::Elements(OPS as u64));
    for size in [16, 1024] {
        let input = stream(size);
        // Whole: one read holds everything. 4093/1000: typical and odd read sizes that cut
        // control lines and payloads mid-way.
        for (name, chunk) in [
            ("whole", input.len()),
            ("split_4093", 4093),
            ("split_1000", 1000),
        ] {
            g.bench_with_input(
                BenchmarkId::new(format!("pub_{size}B"), name),
                &chunk,
                |b, &chunk| {
                    let mut p = ClientParser::new(DEFAULT_MAX_CONTROL_LINE, DEFAULT_MAX_PAYLOAD);
                    b.iter(|| assert_eq!(parse_all(&mut p, &input, chunk), OPS));
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
