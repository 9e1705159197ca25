//! The status listener and `/metrics`: read from the live gateway, in the Prometheus text format.

use crate::support::{Gateway, Upstream, free_port, request};

#[tokio::test(flavor = "multi_thread")]
async fn metrics_show_configuration_plugins_and_target_health() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let status = free_port();
    let config = format!(
        "[[upstreams]]\nname = \"pool\"\n[[upstreams.targets]]\ntarget = \"{}\"\n[[upstreams.targets]]\ntarget = \"{}\"\n\
         [[services]]\nname = \"s\"\nhost = \"pool\"\n[[services.routes]]\npaths = [\"/\"]\n",
        a.addr(),
        b.addr()
    );
    let gw =
        Gateway::builder(&config).server(&format!("status_listen = \"127.0.0.1:{status}\"")).plugins("").start().await;
    let marked = request(gw.admin, "PUT", &format!("/upstreams/pool/targets/{}/unhealthy", b.addr()), &[], b"").await;
    assert_eq!(marked.status, 204);
    gw.write_config("[[services]]\nname = \"broken\"\n");
    gw.signal(libc::SIGHUP);
    gw.wait_for_log("configuration rejected", 1).await;

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

/// Samples of `name` in a scrape, parsed by a Prometheus text-format parser.
fn samples<'a>(
    scrape: &'a prometheus_parse::Scrape,
    name: &'a str,
) -> impl Iterator<Item = &'a prometheus_parse::Sample> {
    scrape.samples.iter().filter(move |s| s.metric == name)
}

/// The value of the counter or gauge `name` with exactly `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(scrape, name).find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))).and_then(|s| {
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        }
    })
}

/// The observation count of the histogram `name` for route `route`.
fn observations(scrape: &prometheus_parse::Scrape, name: &str, route: &str) -> u64 {
    samples(scrape, name)
        .filter(|s| s.labels.get("route") == Some(route))
        .find_map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map(|b| b.count as u64),
            _ => None,
        })
        .unwrap_or(0)
}

async fn scrape(port: u16) -> prometheus_parse::Scrape {
    let text = request(port, "GET", "/metrics", &[], b"").await.text();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("valid Prometheus text")
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_latencies_and_plugin_failures_are_counted() {
    let up = Upstream::start("up").await;
    let status = free_port();
    let config = format!(
        "[[services]]\nname = \"svc\"\nurl = \"{}\"\n[[services.routes]]\nname = \"r\"\npaths = [\"/r\"]\n\
         [[services.routes]]\nname = \"m\"\npaths = [\"/m\"]\n\
         [[consumers]]\nusername = \"alice\"\n[[consumers.keyauth_credentials]]\nkey = \"k-alice\"\n",
        up.url()
    );
    let plugins = "[modules.misbehave]\ncpu_ms = 100\nmemory_mb = 16\n\
                   [[plugins]]\nname = \"key-auth\"\nroute = \"r\"\n[[plugins]]\nname = \"misbehave\"\nroute = \"m\"\n";
    let gw = Gateway::builder(&config)
        .server(&format!("status_listen = \"127.0.0.1:{status}\""))
        .plugins_with(plugins, &["key-auth", "misbehave"])
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
    let mut m = scrape(status).await;
    for _ in 0..50 {
        if value(&m, "wasmgate_plugin_failures_total", &[("kind", "error")]) == Some(1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        m = scrape(status).await;
    }
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
    let egress = value(&m, "wasmgate_bandwidth_bytes", &[("route", "r"), ("direction", "egress")]).unwrap();
    assert!(egress > 0.0);
    assert_eq!(value(&m, "wasmgate_plugin_calls_total", &[("plugin", "key-auth"), ("phase", "access")]), Some(5.0));
    for kind in ["trap", "timeout", "memory", "error"] {
        let labels = [("plugin", "misbehave"), ("phase", "access"), ("kind", kind)];
        assert_eq!(value(&m, "wasmgate_plugin_failures_total", &labels), Some(1.0), "{kind}");
    }
    assert_eq!(observations(&m, "wasmgate_plugin_call_duration_us", ""), 0, "plugin histograms have no route");
    let accepted = value(&m, "wasmgate_connections", &[("state", "accepted")]).unwrap();
    assert!(accepted >= 10.0, "{accepted}");
    assert!(samples(&m, "wasmgate_http_requests_total").all(|s| s.labels.get("path").is_none()), "no path label");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_export_their_own_metrics() {
    let up = Upstream::start("up").await;
    let config = format!(
        "[[services]]\nname = \"svc\"\nurl = \"{}\"\n[[services.routes]]\nname = \"r\"\npaths = [\"/r\"]\n\
         [[services.routes]]\nname = \"g\"\npaths = [\"/g\"]\n",
        up.url()
    );
    let plugins = "[[plugins]]\nname = \"probe\"\nroute = \"r\"\nconfig = { tag = \"t\" }\n\
                   [[plugins]]\nname = \"go-probe\"\nroute = \"g\"\n";
    let gw = Gateway::builder(&config).plugins_with(plugins, &["probe", "go-probe"]).start().await;
    for (method, path) in [("GET", "/r/a"), ("GET", "/r/abcdefgh"), ("POST", "/r"), ("GET", "/g"), ("DELETE", "/g")] {
        assert_eq!(request(gw.port, method, path, &[], b"").await.status, 200);
    }
    let m = scrape(gw.admin).await;
    let probe = |method: &str| {
        value(&m, "wasmgate_plugin_probe_requests_total", &[("plugin", "probe"), ("tag", "t"), ("method", method)])
    };
    assert_eq!((probe("GET"), probe("POST")), (Some(2.0), Some(1.0)), "a Rust plugin's counter");
    let lengths = samples(&m, "wasmgate_plugin_probe_path_length")
        .find_map(|s| match &s.value {
            prometheus_parse::Value::Histogram(b) => Some(b.iter().map(|c| c.count as u64).collect::<Vec<_>>()),
            _ => None,
        })
        .expect("the histogram");
    assert_eq!(lengths, [0, 2, 3, 3], "path lengths 4, 11 and 2, cumulative in buckets 1, 4, 16, +Inf");
    let go = |method: &str| {
        value(&m, "wasmgate_plugin_go_probe_requests_total", &[("plugin", "go-probe"), ("method", method)])
    };
    assert_eq!((go("GET"), go("DELETE")), (Some(1.0), Some(1.0)), "a Go plugin's counter");
}
