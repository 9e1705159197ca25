//! Window counters under a flood of distinct keys (a client making up a header or User-Agent per
//! request), within the default `counter_bytes` of a module (16 MiB):
//! - `counters/one-off-key-empty`: counting a new key in an empty space;
//! - `counters/one-off-key-after-1m`: the same once a million distinct keys went through it (the
//!   space is full: each new key evicts one, in O(1));
//! - `counters/returning-key-after-1m`: a key that keeps coming back, in the full space.
//!
//! Flat figures across the three are the point: no step scans a shard.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use wasmgate::plugins::counters::{CounterRequest, CounterSpace, LocalSpace, Period};

const BUDGET: u64 = 16 << 20;
const NOW: u64 = 1_800_000_000_000;

fn one(key: String) -> [CounterRequest; 1] {
    [CounterRequest { key, period: Period::Minute, delta: 1, limit: Some(u64::MAX) }]
}

fn bench_counters(c: &mut Criterion) {
    let empty = LocalSpace::new(BUDGET);
    let mut n = 0u64;
    c.bench_function("counters/one-off-key-empty", |b| {
        b.iter(|| {
            n += 1;
            black_box(empty.increment(NOW, &one(format!("client-{n}"))).unwrap().admitted)
        })
    });
    let full = LocalSpace::new(BUDGET);
    for i in 0..1_000_000u64 {
        full.increment(NOW, &one(format!("flood-{i}"))).unwrap();
    }
    c.bench_function("counters/one-off-key-after-1m", |b| {
        b.iter(|| {
            n += 1;
            black_box(full.increment(NOW, &one(format!("client-{n}"))).unwrap().admitted)
        })
    });
    full.increment(NOW, &one("steady".into())).unwrap();
    c.bench_function("counters/returning-key-after-1m", |b| {
        b.iter(|| black_box(full.increment(NOW, &one("steady".into())).unwrap().admitted))
    });
}

criterion_group!(benches, bench_counters);
criterion_main!(benches);
