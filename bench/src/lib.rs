//! Shared fixtures for the benchmarks in `benches/`, and the bare Pingora proxy that
//! `make bench-compare` measures wasmgate against.

pub mod bare;

use wasmgate::config::RouteConfig;

/// `n` routes shaped like a real fleet: one service per host, a few paths each, some wildcard
/// hosts, some regex paths, some header and method conditions.
pub fn fleet(n: usize) -> Vec<RouteConfig> {
    (0..n)
        .map(|i| {
            let mut r = route();
            r.name = Some(format!("route-{i}"));
            match i % 10 {
                0 => r.hosts = vec![format!("*.tenant{i}.example.com")],
                1 => r.paths = vec![format!("~/v[0-9]+/svc{i}/items/[0-9]+")],
                2 => {
                    r.hosts = vec![format!("api{i}.example.com")];
                    r.headers.insert("x-version".into(), vec!["2".into()]);
                }
                3 => {
                    r.paths = vec![format!("/shared/svc{i}")];
                    r.methods = vec!["GET".into(), "POST".into()];
                }
                _ => {
                    r.hosts = vec![format!("api{i}.example.com")];
                    r.paths = vec![format!("/svc{i}/v1"), format!("/svc{i}/v2")];
                }
            }
            r
        })
        .collect()
}

/// `n` routes on one host, told apart by path prefix only.
pub fn one_host(n: usize) -> Vec<RouteConfig> {
    (0..n)
        .map(|i| {
            let mut r = route();
            r.hosts = vec!["api.example.com".into()];
            r.paths = vec![format!("/resource-{i}/")];
            r
        })
        .collect()
}

fn route() -> RouteConfig {
    RouteConfig {
        id: None,
        name: None,
        service: None,
        hosts: Vec::new(),
        paths: Vec::new(),
        methods: Vec::new(),
        headers: Default::default(),
        strip_path: true,
        preserve_host: false,
        regex_priority: 0,
        protocols: vec!["http".into()],
        https_redirect_status_code: None,
        tags: Vec::new(),
    }
}
