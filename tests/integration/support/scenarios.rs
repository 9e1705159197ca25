//! Plugin host scenarios that the Rust and the Go plugins both go through (`plugin_host`,
//! `go_plugins`): one set of entities, failure policies, a looping plugin, a hot load under load,
//! and `wasmgate check` refusing a configuration.

use super::{Config, Echo, Gateway, Upstream, request};
use std::time::{Duration, Instant};

/// One service on `up`, routes `r` (`/`), `r2` (`/two`), consumers alice (key `k-alice`, group
/// `admins`) and bob (key `k-bob`), and an upstream `canary`.
pub fn entities(up: &Upstream, canary: &Upstream) -> Config {
    Config::new()
        .upstream("canary")
        .target(&canary.addr(), 100)
        .service("svc", &up.url())
        .route("r", &["/"])
        .route("r2", &["/two"])
        .consumer("alice")
        .set("custom_id = \"alice-7\"")
        .key("k-alice")
        .acl("admins")
        .consumer("bob")
        .key("k-bob")
}

pub async fn gateway(plugins: &str) -> (Gateway, Upstream, Upstream) {
    let up = Upstream::start("main").await;
    let canary = Upstream::start("canary").await;
    let gw = entities(&up, &canary).plugins_toml(plugins).start().await;
    (gw, up, canary)
}

/// A plugins.toml with `module` on route `r` as built (fail-closed) and again, as
/// `{module}-open`, on route `r2` with `failure_policy = "fail-open"`; `extra` goes first.
/// The module misbehaves as its `x-misbehave` request header says (misbehave, go-probe).
pub fn misbehaving(module: &str, extra: &str) -> String {
    format!(
        "{extra}\n[modules.{module}-open]\npath = \"plugins/{module}.wasm\"\nfailure_policy = \"fail-open\"\n\n\
         [[plugins]]\nname = \"{module}\"\nroute = \"r\"\n\n[[plugins]]\nname = \"{module}-open\"\nroute = \"r2\"\n"
    )
}

/// Each of `modes` answers 500 under fail-closed and skips the plugin under fail-open; the
/// panic message and the error reach the log.
pub async fn failures_follow_the_policy_of(module: &str, modes: &[&str]) {
    let (gw, up, _canary) = gateway(&misbehaving(module, "")).await;
    for &mode in modes {
        let closed = request(gw.port, "GET", "/x", &[("x-misbehave", mode)], b"").await;
        assert_eq!(closed.status, 500, "{mode}, fail-closed");
        assert_eq!(closed.json()["message"], "An unexpected error occurred");
        let open = request(gw.port, "GET", "/two", &[("x-misbehave", mode)], b"").await;
        assert_eq!(open.status, 200, "{mode}, fail-open: the plugin is skipped");
        assert_eq!(Echo::from(&open).header("x-misbehave-ran"), None);
    }
    let after = Echo::from(&request(gw.port, "GET", "/x", &[], b"").await);
    assert_eq!(after.header("x-misbehave-ran"), Some("ok"), "a fresh instance replaced the trapped one");
    assert_eq!(up.hits(), modes.len() + 1);
    let log = gw.stderr();
    assert!(log.contains("plugin trapped") && log.contains("fail-closed: answering 500"), "{log}");
    assert!(log.contains(&format!("{module} was asked to panic")), "the guest's panic message reaches the log");
    let skipped = format!("returned an error: {module} was asked to fail (fail-open: skipped)");
    assert!(log.contains(&skipped), "{log}");
}

/// `module` looping on one request is stopped at its deadline while other requests are served.
pub async fn an_endless_loop_is_stopped_in(module: &str) {
    let plugins = misbehaving(module, &format!("[modules.{module}]\ncpu_ms = 300"));
    let (gw, _up, _canary) = gateway(&plugins).await;
    let port = gw.port;
    let started = Instant::now();
    let looping = tokio::spawn(async move { request(port, "GET", "/x", &[("x-misbehave", "loop")], b"").await });
    // The looping call has nothing to wait on from outside: give it a head start.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..20 {
        let resp = request(port, "GET", "/x", &[], b"").await;
        assert_eq!(resp.status, 200, "other requests are served meanwhile");
    }
    let resp = looping.await.unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status, 500);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "stopped at its deadline, after {took:?}"
    );
    assert!(gw.stderr().contains("stopped at its CPU deadline (300 ms)"));
    assert_eq!(request(port, "GET", "/x", &[], b"").await.status, 200);
}

/// Requests in a loop from `tasks` clients until `until`: (elapsed, status, x-stamp).
async fn load(port: u16, tasks: usize, until: Instant) -> Vec<(Duration, u16, String)> {
    let start = Instant::now();
    let clients: Vec<_> = (0..tasks)
        .map(|_| {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while Instant::now() < until {
                    let resp = request(port, "GET", "/", &[], b"").await;
                    seen.push((start.elapsed(), resp.status, resp.header("x-stamp").unwrap_or("-").to_string()));
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.unwrap());
    }
    all.sort_by_key(|(t, _, _)| *t);
    all
}

/// `module` (which answers `x-stamp: v1`) replaced by `{module}-v2` (`v2`) under load: no request
/// fails, and v2 is served within a second.
pub async fn hot_load_under_load_of(module: &str) {
    let up = Upstream::start("up").await;
    let canary = Upstream::start("canary").await;
    let plugins = format!("[[plugins]]\nname = \"{module}\"\nroute = \"r\"\n");
    let gw = entities(&up, &canary).plugins_toml(&plugins).only_modules(&[module]).start().await;
    let deadline = Instant::now() + Duration::from_millis(3000);
    let traffic = tokio::spawn(load(gw.port, 4, deadline));
    // The timeline: v1 traffic first, then the swap.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let swapped_at = Instant::now();
    let v2 = std::fs::read(crate::support::plugins::wasm(&format!("{module}-v2"))).unwrap();
    crate::support::gateway::write_atomically(&gw.plugins_dir().join(format!("{module}.wasm")), &v2);
    let seen = traffic.await.unwrap();
    let swap = swapped_at.duration_since(deadline - Duration::from_millis(3000));

    assert!(seen.len() > 50, "only {} requests", seen.len());
    let failed: Vec<_> = seen.iter().filter(|(_, status, _)| *status != 200).collect();
    assert!(failed.is_empty(), "every request succeeded: {failed:?}\n{}", gw.stderr());
    let first_v2 = seen.iter().find(|(_, _, v)| v == "v2").map(|(t, _, _)| *t).expect("v2 seen");
    assert!(first_v2 >= swap.saturating_sub(Duration::from_millis(50)), "v2 before the swap?");
    assert!(
        first_v2 - swap.min(first_v2) < Duration::from_secs(1),
        "v2 visible {:?} after the swap",
        first_v2 - swap.min(first_v2)
    );
    assert!(seen.iter().rev().take(10).all(|(_, _, v)| v == "v2"), "the new version stays");
    assert!(seen.iter().take(5).all(|(_, _, v)| v == "v1"));
    let race = "failed to acquire reusable stream";
    assert!(!gw.stderr().contains(race), "Pingora's pool race is not an error (debug):\n{}", gw.stderr());
}

/// `wasmgate check` with `modules` and a plugins.toml of `plugins` (service `s`, route `r`,
/// consumer alice) fails, and its output has every one of `expected`.
pub fn check_refuses(modules: &[&str], plugins: &str, expected: &[&str]) {
    let cfg = Config::new()
        .service("s", "http://127.0.0.1:9")
        .route("r", &["/"])
        .consumer("alice")
        .plugins_toml(plugins)
        .only_modules(modules);
    let (code, out) = cfg.check();
    assert_eq!(code, 1, "{out}");
    for expected in expected {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}
