//! Route matching cost with 10 and 10,000 routes: the index keeps it flat.

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use std::hint::black_box;
use wasmgate::router::{RequestHost, RequestView, Router};
use wasmgate_bench::{fleet, one_host};

fn bench_router(c: &mut Criterion) {
    let mut group = c.benchmark_group("router");
    for n in [10usize, 10_000] {
        let routes = fleet(n);
        let refs: Vec<_> = routes.iter().collect();
        let router = Router::build(&refs).expect("valid routes");
        // Requests aimed at the last route of each shape, plus a miss.
        let last = |shape: usize| (0..n).rev().find(|i| i % 10 == shape).unwrap();
        let host_path = (format!("api{}.example.com", last(4)), format!("/svc{}/v2/orders/17", last(4)));
        let wildcard = (format!("shop.tenant{}.example.com", last(0)), "/cart".to_string());
        let regex = ("other.example.com".to_string(), format!("/v3/svc{}/items/99", last(1)));
        let headers = HeaderMap::new();
        for (label, (host, path)) in [
            ("host+path", host_path),
            ("wildcard", wildcard),
            ("regex", regex),
            ("miss", ("nope.example.org".into(), "/nothing".into())),
        ] {
            let host = RequestHost::parse(&host, 80);
            let req = RequestView { method: "GET", host: &host, path: &path, headers: &headers };
            assert_eq!(router.find(&req).is_some(), label != "miss", "{label} with {n} routes");
            group.bench_function(format!("{label}/{n}"), |b| b.iter(|| black_box(router.find(black_box(&req)))));
        }

        let routes = one_host(n);
        let refs: Vec<_> = routes.iter().collect();
        let router = Router::build(&refs).expect("valid routes");
        let host = RequestHost::parse("api.example.com", 80);
        let path = format!("/resource-{}/deep/path", n - 1);
        let req = RequestView { method: "GET", host: &host, path: &path, headers: &headers };
        assert!(router.find(&req).is_some());
        group.bench_function(format!("one-host-prefix/{n}"), |b| b.iter(|| black_box(router.find(black_box(&req)))));
    }
    group.finish();
}

criterion_group!(benches, bench_router);
criterion_main!(benches);
