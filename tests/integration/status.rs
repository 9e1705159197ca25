//! The status listener and `/metrics`: read from the live gateway, in the Prometheus text format.

use crate::support::metrics::{Sample, samples, scrape, value};
use crate::support::{Config, Upstream, eventually, free_port, pool, request};

#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_configuration_plugins_and_target_health() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let status = free_port();
    let gw = pool(&[(&a.addr(), 100), (&b.addr(), 100)], "")
        .plugins_toml("")
        .server(&format!("status_listen = \"127.0.0.1:{status}\""))
        .start()
        .await;
    let marked = request(gw.admin, "PUT", &format!("/upstreams/pool/targets/{}/unhealthy", b.addr()), &[], b"").await;
    assert_eq!(marked.status, 204);
    assert!(!gw.reload(&Config::new().raw("[[services]]\nname = \"broken\"")).await, "rejected");

    let scraped = request(status, "GET", "/metrics", &[], b"").await;
    assert_eq!((scraped.status, scraped.header("content-type")), (200, Some("text/plain; version=0.0.4")));
    let text = scraped.text();
    for line in [
        "wasmgate_config_version 1".to_string(),
        "wasmgate_config_reloads_total{result=\"failure\"} 1".to_string(),
        "wasmgate_config_reloads_total{result=\"success\"} 0".to_string(),
        format!("wasmgate_upstream_target_health{{upstream=\"pool\",target=\"{}\",state=\"unhealthy\"}} 1", b.addr()),
        format!(
            "wasmgate_upstream_target_health{{upstream=\"pool\",target=\"{}\",state=\"healthchecks_off\"}} 1",
            a.addr()
        ),
        "# TYPE wasmgate_plugin_modules_loaded gauge".to_string(),
        "wasmgate_plugin_module_info{plugin=\"key-auth\",version=".to_string(),
    ] {
        assert!(text.contains(&line), "{line:?} in:\n{text}");
    }
    let modules = text.lines().find_map(|l| l.strip_prefix("wasmgate_plugin_modules_loaded ")).unwrap();
    assert!(modules.parse::<u32>().unwrap() >= 9, "{modules}");
    assert_eq!(request(gw.admin, "GET", "/metrics", &[], b"").await.text().lines().next(), text.lines().next());
    assert_eq!(request(status, "GET", "/status", &[], b"").await.json()["configuration_version"], 1);
    assert_eq!(request(status, "GET", "/nope", &[], b"").await.status, 404);
}

/// The observation count of the histogram `name` for route `route`.
fn observations(scrape: &[Sample], name: &str, route: &str) -> u64 {
    value(scrape, &format!("{name}_count"), &[("route", route)]).unwrap_or(0.0) as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_latencies_and_plugin_failures_are_counted() {
    let up = Upstream::start("up").await;
    let status = free_port();
    let gw = Config::new()
        .service("svc", &up.url())
        .route("r", &["/r"])
        .route("m", &["/m"])
        .consumer("alice")
        .key("k-alice")
        .plugins_toml("[modules.misbehave]\ncpu_ms = 100\nmemory_mb = 16")
        .plugin("key-auth", "route = \"r\"", "")
        .plugin("misbehave", "route = \"m\"", "")
        .only_modules(&["key-auth", "misbehave"])
        .server(&format!("status_listen = \"127.0.0.1:{status}\""))
        .start()
        .await;
    for _ in 0..3 {
        assert_eq!(request(gw.port, "GET", "/r", &[("apikey", "k-alice")], b"").await.status, 200);
    }
    for _ in 0..2 {
        assert_eq!(request(gw.port, "GET", "/r", &[], b"").await.status, 401);
    }
    assert_eq!(request(gw.port, "GET", "/nowhere", &[], b"").await.status, 404);
    for mode in ["trap", "loop", "grow", "error"] {
        assert_eq!(request(gw.port, "GET", "/m", &[("x-misbehave", mode)], b"").await.status, 500, "{mode}");
    }

    // Requests are counted when they end, just after the answer is sent.
    let counted = async || {
        value(&scrape(status).await, "wasmgate_plugin_failures_total", &[("plugin", "misbehave"), ("kind", "error")])
            == Some(1.0)
    };
    eventually("the last failure counted", counted).await;
    let m = scrape(status).await;
    let requests = |route: &str, code: &str, source: &str| {
        let labels = [
            ("service", if route.is_empty() { "" } else { "svc" }),
            ("route", route),
            ("code", code),
            ("source", source),
        ];
        value(&m, "wasmgate_http_requests_total", &labels)
    };
    assert_eq!(requests("r", "200", "upstream"), Some(3.0));
    assert_eq!(requests("r", "401", "plugin"), Some(2.0), "key-auth's answers");
    assert_eq!(requests("", "404", "gateway"), Some(1.0), "no route");
    assert_eq!(requests("m", "500", "gateway"), Some(4.0), "fail-closed failures");
    assert_eq!(observations(&m, "wasmgate_request_latency_ms", "r"), 5);
    assert_eq!(observations(&m, "wasmgate_upstream_latency_ms", "r"), 3, "only requests that reached it");
    assert_eq!(observations(&m, "wasmgate_gateway_latency_ms", "r"), 5);
    let egress = value(&m, "wasmgate_bandwidth_bytes_total", &[("route", "r"), ("direction", "egress")]).unwrap();
    assert!(egress > 0.0);
    assert_eq!(value(&m, "wasmgate_plugin_calls_total", &[("plugin", "key-auth"), ("phase", "access")]), Some(5.0));
    for kind in ["trap", "timeout", "memory", "error"] {
        let labels = [("plugin", "misbehave"), ("phase", "access"), ("kind", kind)];
        assert_eq!(value(&m, "wasmgate_plugin_failures_total", &labels), Some(1.0), "{kind}");
    }
    let calls = value(&m, "wasmgate_plugin_call_duration_us_count", &[("plugin", "key-auth"), ("phase", "access")]);
    assert_eq!(calls, Some(5.0), "key-auth's call durations");
    let accepted = value(&m, "wasmgate_connections", &[("state", "accepted")]).unwrap();
    assert!(accepted >= 10.0, "{accepted}");
    assert!(samples(&m, "wasmgate_http_requests_total").all(|s| !s.labels.contains_key("path")), "no path label");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_export_their_own_metrics() {
    let up = Upstream::start("up").await;
    let gw = Config::new()
        .service("svc", &up.url())
        .route("r", &["/r"])
        .route("g", &["/g"])
        .plugin("probe", "route = \"r\"", "tag = \"t\"")
        .plugin("go-probe", "route = \"g\"", "")
        .only_modules(&["probe", "go-probe"])
        .start()
        .await;
    for (method, path) in [("GET", "/r/a"), ("GET", "/r/abcdefgh"), ("POST", "/r"), ("GET", "/g"), ("DELETE", "/g")] {
        assert_eq!(request(gw.port, method, path, &[], b"").await.status, 200);
    }
    let m = scrape(gw.admin).await;
    let probe = |method: &str| {
        value(&m, "wasmgate_plugin_probe_requests_total", &[("plugin", "probe"), ("tag", "t"), ("method", method)])
    };
    assert_eq!((probe("GET"), probe("POST")), (Some(2.0), Some(1.0)), "a Rust plugin's counter");
    let lengths: Vec<(String, f64)> =
        samples(&m, "wasmgate_plugin_probe_path_length_bucket").map(|s| (s.labels["le"].clone(), s.value)).collect();
    let expected = [("1", 0.0), ("4", 2.0), ("16", 3.0), ("+Inf", 3.0)].map(|(le, n)| (le.to_string(), n));
    assert_eq!(lengths, expected, "path lengths 4, 11 and 2, cumulative in buckets 1, 4, 16, +Inf");
    let go = |method: &str| {
        value(&m, "wasmgate_plugin_go_probe_requests_total", &[("plugin", "go-probe"), ("method", method)])
    };
    assert_eq!((go("GET"), go("DELETE")), (Some(1.0), Some(1.0)), "a Go plugin's counter");
}
