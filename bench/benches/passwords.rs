//! Basic-auth verification against the stored argon2id hash (19 MiB, two passes):
//! - `passwords/verify-cold`: a password the credential has not verified before (the full hash);
//! - `passwords/verify-cached`: the credential's last success again (one keyed SHA-256 and a
//!   constant-time compare).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use wasmgate::passwords::{Verifier, hash};

fn bench_passwords(c: &mut Criterion) {
    let stored = hash("correct horse battery staple").unwrap();
    let mut group = c.benchmark_group("passwords");
    group.sample_size(10);
    group.bench_function("verify-cold", |b| {
        b.iter(|| black_box(Verifier::new(stored.clone()).verify("correct horse battery staple")))
    });
    group.finish();
    let warm = Verifier::new(stored);
    assert!(warm.verify("correct horse battery staple"));
    c.bench_function("passwords/verify-cached", |b| b.iter(|| black_box(warm.verify("correct horse battery staple"))));
}

criterion_group!(benches, bench_passwords);
criterion_main!(benches);
