//! Plugins written in stock Go with `plugin-sdk/go`, built by `scripts/build-plugins.sh` as core
//! modules (`-buildmode=c-shared`) and made into components by the gateway when it loads them:
//! host functions, config errors, failures, deadlines and hot loading, through the real gateway.

use crate::support::gateway::run_cli;
use crate::support::scenarios::{
    an_endless_loop_is_stopped_in, check_refuses, failures_follow_the_policy_of, gateway, hot_load_under_load_of,
};
use crate::support::{Echo, Gateway, request};

const PROBE: &str = "[[plugins]]\nname = \"go-probe\"\nroute = \"r\"\nconfig = { limit = 3, prefix = \"p-\" }\n";

#[tokio::test(flavor = "multi_thread")]
async fn headers_path_context_and_counters() {
    let (gw, up, _canary) = gateway(PROBE).await;
    let headers = [("x-in", "hello"), ("x-drop", "secret")];
    let resp = request(gw.port, "GET", "/rewrite/abc?q=42", &headers, b"").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let echo = Echo::from(&resp);
    assert_eq!(echo.header("x-go-seen"), Some("p-hello GET /rewrite/abc 42 127.0.0.1"), "reads reach the plugin");
    assert_eq!(echo.header("x-go-protocol"), Some("http 1.1 - -"), "scheme, HTTP version, no TLS");
    assert_eq!(echo.header("x-drop"), None, "a removed header does not reach the upstream");
    assert_eq!(echo.header("x-go-ids"), Some("ok"), "Context.IDs in one call");
    assert_eq!(echo.header("x-misbehave-ran"), Some("ok"));
    assert_eq!(echo.path, "/rewritten/abc?q=42", "the path the plugin set");
    assert_eq!(resp.header("x-go-context"), Some("/rewrite/abc"), "the context kept from access to header-filter");
    assert_eq!(resp.header("x-go-count"), Some("1"));
    assert_eq!(resp.header("x-stamp"), Some("v1"));
    assert_eq!(resp.header("x-ratelimit-remaining-minute"), Some("2"), "the SDK's rate-limit headers");
    for expected in ["2", "3"] {
        let resp = request(gw.port, "GET", "/", &[], b"").await;
        assert_eq!(resp.header("x-go-count"), Some(expected));
    }
    let limited = request(gw.port, "GET", "/", &[], b"").await;
    assert_eq!(limited.status, 429, "the counter's limit");
    assert_eq!(limited.json()["message"], "API rate limit exceeded");
    assert_eq!((limited.header("ratelimit-limit"), limited.header("ratelimit-remaining")), (Some("3"), Some("0")));
    assert!(limited.header("retry-after").is_some());
    assert_eq!(up.hits(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn log_sinks_from_go() {
    let port = crate::support::free_port();
    let endpoint = format!("http://127.0.0.1:{port}/go");
    let collector = crate::support::collector::Collector::start_on(port).await;
    let plugins = format!(
        "[modules.go-probe]\nallow_log_files = [\"go.log\"]\nallow_log_endpoints = [{endpoint:?}]\n\
         [[plugins]]\nname = \"go-probe\"\nroute = \"r\"\nconfig = {{ log_file = \"go.log\", log_endpoint = {endpoint:?} }}\n"
    );
    let (gw, _up, _canary) = gateway(&plugins).await;
    assert_eq!(request(gw.port, "GET", "/logged?from=go", &[], b"").await.status, 200);
    let path = gw.dir.path().join("go.log");
    let lines = crate::support::wait::json_lines(&path, 2).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        (lines[0]["request"]["uri"].as_str(), lines[0]["response"]["status"].as_u64()),
        (Some("/logged?from=go"), Some(200))
    );
    assert_eq!(lines[1]["go_probe"], "/logged", "the plugin's own entry");
    assert!(lines[1]["record_bytes"].as_u64().unwrap() > 200, "Serialize returns the record");
    let got = collector.wait_until(std::time::Duration::from_secs(10), |r| !r.is_empty()).await;
    assert_eq!((got.len(), got[0].method.as_str()), (1, "PUT"));
    assert_eq!(got[0].headers.get("x-go").unwrap(), "sink");
    let record: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(record["route"]["name"], "r");
    check_refuses(
        &["go-probe"],
        "[[plugins]]\nname = \"go-probe\"\nconfig = { log_file = \"/etc/passwd\" }\n",
        &["config.log_file: \"/etc/passwd\" is not allowed for module go-probe"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_record_and_an_early_answer_without_headers() {
    let (gw, _up, _canary) = gateway(PROBE).await;
    let resp = request(gw.port, "GET", "/", &[("x-consumer", "alice")], b"").await;
    let found = Echo::from(&resp).header("x-go-consumer").unwrap().to_string();
    let parts: Vec<&str> = found.split('|').collect();
    assert_eq!((parts[0].len(), &parts[1..]), (36, &["alice", "alice-7"][..]), "a record with options: {found}");
    // Respond with no headers lowers an empty list.
    let resp = request(gw.port, "GET", "/", &[("x-answer", "bare")], b"").await;
    assert_eq!((resp.status, resp.text().as_str()), (418, "bare"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_sets_the_consumer_and_the_host_counts_by_it() {
    crate::support::wait::away_from_minute_end(std::time::Duration::from_secs(5)).await;
    let (gw, _up, _canary) = gateway(PROBE).await;
    let port = gw.port;
    let with_key = |key: &'static str| async move { request(port, "GET", "/", &[("x-key", key)], b"").await };
    let echo = Echo::from(&with_key("k-alice").await);
    assert_eq!(echo.header("x-go-key"), Some("true|admins"), "SetConsumerByKey, then AuthenticatedGroups");
    assert_eq!(echo.header("x-consumer-username"), Some("alice"), "Kong's headers upstream");
    for _ in 0..2 {
        assert_eq!(with_key("k-alice").await.status, 200);
    }
    assert_eq!(with_key("k-alice").await.status, 429, "three a minute for alice");
    assert_eq!(Echo::from(&with_key("k-bob").await).header("x-go-key"), Some("true|"), "bob has his own counter");
    let echo = Echo::from(&with_key("nope").await);
    assert_eq!(echo.header("x-go-key"), Some("false|"), "an unknown key sets nothing");
    assert_eq!(echo.header("x-consumer-username"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_early_answer_skips_the_upstream() {
    let (gw, up, _canary) = gateway(PROBE).await;
    let resp = request(gw.port, "GET", "/", &[("x-answer", "1")], b"").await;
    assert_eq!(resp.status, 418);
    assert_eq!(resp.json()["message"], "go-probe answered");
    assert_eq!(resp.header("x-go"), Some("early"));
    assert_eq!(resp.header("content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_filesystem_and_environment_are_empty() {
    let (gw, _up, _canary) = gateway(PROBE).await;
    let resp = request(gw.port, "GET", "/", &[("x-escape", "1")], b"").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let echo = Echo::from(&resp);
    assert_eq!(echo.header("x-go-escape"), Some("0 true 0 true home="), "nothing read, listed or inherited");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_go_panic_follows_the_failure_policy() {
    failures_follow_the_policy_of("go-probe", &["panic", "error"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_go_loop_is_stopped_at_its_deadline() {
    an_endless_loop_is_stopped_in("go-probe").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_go_build_is_hot_loaded_under_load() {
    // A Go module takes seconds to compile (docs/BENCHMARKS.md), while the old build serves.
    // Compiled once into the tests' shared code cache, the swap is timed as a Rust plugin's is.
    drop(Gateway::builder("").plugins_with("", &["go-probe-v2"]).start().await);
    hot_load_under_load_of("go-probe").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn header_transform_rewrites_as_its_readme_says() {
    let config = r#"require = ["x-tenant"], rename = { "x-tenant" = "x-org" }, remove = ["cookie"], add = { "x-via" = "wasmgate" }, strip_prefix = "/api", add_prefix = "/v2", response = { "x-served-by" = "gateway" }"#;
    let (gw, up, _canary) =
        gateway(&format!("[[plugins]]\nname = \"header-transform\"\nroute = \"r\"\nconfig = {{ {config} }}\n")).await;
    let resp = request(gw.port, "GET", "/api/items", &[("x-tenant", "acme"), ("cookie", "a=1")], b"").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let echo = Echo::from(&resp);
    assert_eq!(echo.path, "/v2/items");
    assert_eq!((echo.header("x-org"), echo.header("x-tenant")), (Some("acme"), None));
    assert_eq!((echo.header("x-via"), echo.header("cookie")), (Some("wasmgate"), None));
    assert_eq!(resp.header("x-served-by"), Some("gateway"));
    let missing = request(gw.port, "GET", "/api/items", &[], b"").await;
    assert_eq!((missing.status, missing.json()["message"].as_str()), (400, Some("missing header x-tenant")));
    assert_eq!(up.hits(), 1);
}

#[test]
fn config_errors_name_the_field() {
    let plugins = "[[plugins]]\nname = \"go-probe\"\nroute = \"r\"\nconfig = { limit = \"ten\" }\n\
                   [[plugins]]\nname = \"go-probe\"\nconfig = { limitt = 1 }\n\
                   [[plugins]]\nname = \"go-probe\"\nservice = \"s\"\nconfig = { prefix = \"a b\" }\n";
    check_refuses(
        &["go-probe"],
        plugins,
        &[
            r#"plugins[0] (go-probe on route "r"): config.limit: invalid type: string, expected uint64"#,
            "plugins[1] (go-probe on global): config.limitt: unknown field `limitt`, expected one of: limit, log_endpoint, log_file, prefix",
            r#"plugins[2] (go-probe on service "s"): config.prefix: must not contain spaces"#,
        ],
    );
}

#[test]
fn componentize_makes_a_component_the_gateway_loads() {
    let dir = tempfile::tempdir().unwrap();
    let core = crate::support::plugins::wasm("go-probe");
    let (code, out, err) =
        run_cli(&["plugin", "componentize", core.to_str().unwrap(), "-o", "go-probe.wasm"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    let component = std::fs::read(dir.path().join("go-probe.wasm")).unwrap();
    assert!(component.starts_with(b"\0asm\x0d\0\x01\0"), "a component");
    let (code, out, _) = run_cli(&["plugin-doc", "go-probe.wasm"], dir.path());
    assert_eq!(code, 0);
    assert!(out.contains("| `limit` | integer |") && out.contains("Requests per minute"), "{out}");

    let (code, _, err) = run_cli(&["plugin", "componentize", "go-probe.wasm", "-o", "again.wasm"], dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("not a core wasm module"), "{err}");
}
