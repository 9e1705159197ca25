//! The plugin host through the real gateway, with real `.wasm` plugins built from this repo:
//! every host function and phase, ordering and scopes, sandbox limits, failure policies and hot
//! loading.

use crate::support::gateway::run_cli;
use crate::support::{Echo, Gateway, Upstream, free_port, request};
use std::time::{Duration, Instant};

/// One service on `up`, routes `r` (`/`), `r2` (`/two`), consumers alice (key `k-alice`, group
/// `admins`) and bob (key `k-bob`), and an upstream `canary`.
fn entities(up: &Upstream, canary: &Upstream) -> String {
    format!(
        r#"
[[upstreams]]
name = "canary"
[[upstreams.targets]]
target = "{canary}"

[[services]]
name = "svc"
url = "{url}"
[[services.routes]]
name = "r"
paths = ["/"]
[[services.routes]]
name = "r2"
paths = ["/two"]

[[consumers]]
username = "alice"
custom_id = "alice-7"
[[consumers.keyauth_credentials]]
key = "k-alice"
[[consumers.acls]]
group = "admins"

[[consumers]]
username = "bob"
[[consumers.keyauth_credentials]]
key = "k-bob"
"#,
        url = up.url(),
        canary = canary.addr()
    )
}

pub(crate) async fn gateway(plugins: &str) -> (Gateway, Upstream, Upstream) {
    let up = Upstream::start("main").await;
    let canary = Upstream::start("canary").await;
    let gw = Gateway::builder(&entities(&up, &canary)).plugins(plugins).start().await;
    (gw, up, canary)
}

const PROBE: &str = r#"
[[plugins]]
name = "probe"
route = "r"
config = { tag = "t", consumer = "alice", credential_key = "k-bob" }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn every_request_host_function() {
    let (gw, _up, _canary) = gateway(PROBE).await;
    let headers =
        [("host", "Example.COM:8080"), ("x-in", "val"), ("x-multi", "a"), ("x-multi", "b"), ("x-remove-me", "secret")];
    let first = Echo::from(&request(gw.port, "POST", "/any/x?q=hello%20world&z=1", &headers, b"").await);
    let h = |n: &str| {
        first
            .header(&format!("x-probe-{n}"))
            .unwrap_or_else(|| panic!("x-probe-{n} missing: {:?}", first.headers))
            .to_string()
    };
    assert_eq!(h("method"), "POST");
    assert_eq!(h("scheme"), "http");
    assert_eq!((h("host"), h("port")), ("example.com".into(), gw.port.to_string()));
    assert_eq!(h("path"), "/any/x");
    assert_eq!((h("query"), h("arg")), ("q=hello%20world&z=1".into(), "hello world".into()));
    assert_eq!((h("header"), h("values")), ("val".into(), "a|b".into()));
    assert_eq!(h("count"), headers.len().to_string(), "headers() lists each value");
    assert_eq!(h("client"), "127.0.0.1");
    assert_eq!((h("route"), h("service")), ("r".into(), "svc".into()));
    assert_eq!((h("route-id").len(), h("service-id").len()), (36, 36), "UUIDs");
    assert_eq!((h("consumer"), h("groups")), ("alice".into(), "admins".into()));
    assert_eq!(h("credential").len(), 36, "find-credential gives the consumer id");
    assert_eq!(h("authenticated"), "-");
    assert_eq!(h("canary-exists"), "true");
    assert_eq!(h("clock"), "true");
    assert_eq!(h("env"), "0", "plugins see no environment");
    assert_eq!((h("counter"), h("cached")), ("1".into(), "none".into()));
    assert_eq!(h("deleted"), "true", "cache.delete and clearing a context value");
    assert_eq!(first.header("x-remove-me"), None, "remove-header");
    assert_eq!(first.header("x-added"), Some("1, 2"), "add-header twice");
    assert_eq!(first.header("x-order"), Some("t"));

    let second = Echo::from(&request(gw.port, "GET", "/other", &[], b"").await);
    assert_eq!(second.header("x-probe-counter"), Some("2"), "counters persist across requests");
    assert_eq!(second.header("x-probe-cached"), Some("/any/x"), "the shared cache keeps values");
}

#[tokio::test(flavor = "multi_thread")]
async fn response_functions_context_and_log() {
    let (gw, _up, _canary) = gateway(PROBE).await;
    let resp = request(gw.port, "GET", "/", &[], b"").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-probe-status"), Some("200"));
    assert_eq!(resp.header("x-probe-ctx"), Some("access-t"), "plugin context survives across phases");
    assert_eq!(resp.header("x-probe-shared"), Some("t"), "shared context survives across phases");
    assert_eq!(resp.header("x-probe-source"), Some("service"));
    assert_eq!(resp.header("x-probe-ctype"), Some("application/json"));
    assert_eq!(resp.header("x-probe-upstream-values"), Some("main"));
    assert!(resp.header("x-probe-response-count").unwrap().parse::<usize>().unwrap() >= 3);
    let multi: Vec<_> = resp.headers.get_all("x-probe-multi").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(multi, ["a", "b"]);
    gw.wait_for_log("probe log: tag=t status=200 route=r consumer=- ctx=access-t", 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rewrite_runs_before_routing() {
    let up = Upstream::start("plain").await;
    let rewritten = Upstream::start("rewritten").await;
    let config = format!(
        "[[services]]\nname = \"a\"\nurl = \"{}\"\n[[services.routes]]\npaths = [\"/\"]\n\
         [[services]]\nname = \"b\"\nurl = \"{}\"\n[[services.routes]]\nheaders = {{ x-rewritten = [\"yes\"] }}\n",
        up.url(),
        rewritten.url()
    );
    let gw =
        Gateway::builder(&config).plugins("[[plugins]]\nname = \"probe\"\nconfig = { tag = \"g\" }\n").start().await;
    let resp = request(gw.port, "GET", "/", &[("x-probe-rewrite", "1")], b"").await;
    assert_eq!(resp.header("x-upstream"), Some("rewritten"), "routing saw the header set in rewrite");
    let resp = request(gw.port, "GET", "/", &[], b"").await;
    assert_eq!(resp.header("x-upstream"), Some("plain"));
}

#[tokio::test(flavor = "multi_thread")]
async fn path_query_and_body_rewrites_reach_the_upstream() {
    let plugins = "[[plugins]]\nname = \"probe\"\nroute = \"r\"\nconfig = { read_body = true }\n";
    let (gw, _up, _canary) = gateway(plugins).await;
    let echo = Echo::from(
        &request(gw.port, "GET", "/a?x=1", &[("x-probe-path", "/elsewhere"), ("x-probe-query", "b=2")], b"").await,
    );
    assert_eq!(echo.path, "/elsewhere?b=2");
    let echo = Echo::from(&request(gw.port, "GET", "/a?x=1", &[("x-probe-query", "-")], b"").await);
    assert_eq!(echo.path, "/a");
    let echo = Echo::from(&request(gw.port, "POST", "/a", &[("content-type", "text/plain")], b"hello body").await);
    assert_eq!((echo.body.as_str(), echo.header("x-probe-body-len")), ("HELLO BODY", Some("10")));
    assert_eq!(echo.header("content-length"), Some("10"));
    let big = vec![b'x'; 70 * 1024];
    let resp = request(gw.port, "POST", "/a", &[], &big).await;
    assert_eq!(resp.status, 413, "bodies buffered for plugins are capped at 64 KiB");
}

#[tokio::test(flavor = "multi_thread")]
async fn response_status_headers_and_body_reach_the_client() {
    let plugins =
        "[[plugins]]\nname = \"probe\"\nroute = \"r\"\nconfig = { set_status = 202, body_suffix = \"\\nEND\" }\n";
    let (gw, _up, _canary) = gateway(plugins).await;
    let resp = request(gw.port, "GET", "/x", &[], b"").await;
    assert_eq!(resp.status, 202);
    assert!(resp.text().ends_with("}\nEND"), "{}", resp.text());
    assert!(resp.header("content-length").is_none(), "a filtered body is sent chunked");
}

#[tokio::test(flavor = "multi_thread")]
async fn early_answer_skips_the_upstream() {
    let (gw, up, _canary) = gateway(PROBE).await;
    let resp = request(gw.port, "GET", "/", &[("x-probe-respond", "418")], b"").await;
    assert_eq!((resp.status, resp.text().as_str()), (418, "early answer"));
    assert_eq!(resp.header("x-probe-early"), Some("yes"));
    assert_eq!(resp.header("x-probe-source"), Some("exit"), "header-filter runs on early answers");
    assert_eq!(up.hits(), 0);
    gw.wait_for_log("probe log: tag=t status=418", 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn response_headers_written_in_access_reach_every_answer() {
    let (gw, _up, _canary) = gateway(PROBE).await;
    for extra in [None, Some(("x-probe-respond", "418"))] {
        let mut headers = vec![("x-probe-response-header", "first")];
        headers.extend(extra);
        let resp = request(gw.port, "GET", "/", &headers, b"").await;
        assert_eq!(resp.header_values("x-probe-from-access"), ["first", "second"], "set, then add, in order");
        assert_eq!(resp.header("x-probe-dropped"), None, "a later remove wins");
    }
    let resp = request(gw.port, "GET", "/", &[], b"").await;
    assert_eq!(resp.header("x-probe-from-access"), None, "kept per request, not across requests");
}

#[tokio::test(flavor = "multi_thread")]
async fn log_runs_after_errors_and_unrouted_requests() {
    let dead = free_port();
    let config = format!(
        "[[services]]\nname = \"s\"\nurl = \"http://127.0.0.1:{dead}\"\nretries = 0\n[[services.routes]]\nname = \"down\"\npaths = [\"/down\"]\n"
    );
    let gw =
        Gateway::builder(&config).plugins("[[plugins]]\nname = \"probe\"\nconfig = { tag = \"g\" }\n").start().await;
    let resp = request(gw.port, "GET", "/down", &[], b"").await;
    assert_eq!((resp.status, resp.header("x-probe-source")), (502, Some("error")));
    gw.wait_for_log("probe log: tag=g status=502 route=down", 1).await;
    let resp = request(gw.port, "GET", "/nowhere", &[], b"").await;
    assert_eq!((resp.status, resp.header("x-probe-source")), (404, Some("error")), "global plugins see 404s");
    gw.wait_for_log("probe log: tag=g status=404 route=-", 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn higher_priority_runs_first() {
    let plugins = "[[plugins]]\nname = \"stamp\"\nroute = \"r\"\n[[plugins]]\nname = \"probe\"\nroute = \"r\"\nconfig = { tag = \"probe\" }\n";
    let (gw, _up, _canary) = gateway(plugins).await;
    let echo = Echo::from(&request(gw.port, "GET", "/", &[], b"").await);
    assert_eq!(echo.header("x-order"), Some("stamp,probe"), "stamp 1000 before probe 500");

    let flipped = format!("[modules.probe]\npriority = 2000\n{plugins}");
    let (gw, _up, _canary) = gateway(&flipped).await;
    let echo = Echo::from(&request(gw.port, "GET", "/", &[], b"").await);
    assert_eq!(echo.header("x-order"), Some("probe,stamp"), "plugins.toml overrides the priority");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_most_specific_scope_wins() {
    let up = Upstream::start("up").await;
    let config = format!(
        r#"
[[services]]
name = "s1"
url = "{url}"
[[services.routes]]
name = "r1"
paths = ["/r1"]
[[services.routes]]
name = "r3"
paths = ["/r3"]
[[services.routes]]
name = "r4"
paths = ["/r4"]
[[services]]
name = "s2"
url = "{url}"
[[services.routes]]
name = "r2"
paths = ["/r2"]
[[consumers]]
username = "alice"
[[consumers.keyauth_credentials]]
key = "k-alice"
[[consumers]]
username = "bob"
[[consumers.keyauth_credentials]]
key = "k-bob"
[[consumers]]
username = "carol"
[[consumers.keyauth_credentials]]
key = "k-carol"
"#,
        url = up.url()
    );
    let probe =
        |scope: &str, tag: &str| format!("[[plugins]]\nname = \"probe\"\n{scope}\nconfig = {{ tag = \"{tag}\" }}\n");
    let plugins = [
        probe("", "global"),
        probe("service = \"s2\"", "service"),
        probe("route = \"r1\"", "route"),
        probe("route = \"r1\"\nservice = \"s1\"", "route+service"),
        probe("consumer = \"alice\"", "consumer"),
        probe("route = \"r3\"\nconsumer = \"alice\"", "route+consumer"),
        probe("consumer = \"bob\"", "bob"),
        "[[plugins]]\nname = \"key-auth\"\nroute = \"r3\"\n".to_string(),
        "[[plugins]]\nname = \"key-auth\"\nroute = \"r4\"\n".to_string(),
    ]
    .concat();
    let gw = Gateway::builder(&config).plugins(&plugins).start().await;
    let tag = |path: &'static str, key: Option<&'static str>| {
        let port = gw.port;
        async move {
            let headers: Vec<(&str, &str)> = key.map(|k| ("apikey", k)).into_iter().collect();
            let resp = request(port, "GET", path, &headers, b"").await;
            assert_eq!(resp.status, 200, "{path}: {}", resp.text());
            Echo::from(&resp).header("x-probe-tag").unwrap_or("-").to_string()
        }
    };
    assert_eq!(tag("/r1", None).await, "route+service");
    assert_eq!(tag("/r2", None).await, "service");
    assert_eq!(tag("/r3", Some("k-alice")).await, "route+consumer", "resolved after key-auth found alice");
    assert_eq!(tag("/r4", Some("k-alice")).await, "consumer");
    assert_eq!(tag("/r4", Some("k-bob")).await, "bob");
    assert_eq!(tag("/r4", Some("k-carol")).await, "global");
}

/// A plugins.toml with `module` on route `r` as built (fail-closed) and again, as
/// `{module}-open`, on route `r2` with `failure_policy = "fail-open"`; `extra` goes first.
/// The module misbehaves as its `x-misbehave` request header says (misbehave, go-probe).
pub(crate) fn misbehaving(module: &str, extra: &str) -> String {
    format!(
        "{extra}\n[modules.{module}-open]\npath = \"plugins/{module}.wasm\"\nfailure_policy = \"fail-open\"\n\n\
         [[plugins]]\nname = \"{module}\"\nroute = \"r\"\n\n[[plugins]]\nname = \"{module}-open\"\nroute = \"r2\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_follow_the_policy() {
    failures_follow_the_policy_of("misbehave", &["trap", "panic", "error"]).await;
}

/// Each of `modes` answers 500 under fail-closed and skips the plugin under fail-open; the
/// panic message and the error reach the log.
pub(crate) async fn failures_follow_the_policy_of(module: &str, modes: &[&str]) {
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

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_is_stopped_while_others_are_served() {
    an_endless_loop_is_stopped_in("misbehave").await;
}

/// `module` looping on one request is stopped at its deadline while other requests are served.
pub(crate) async fn an_endless_loop_is_stopped_in(module: &str) {
    let plugins = misbehaving(module, &format!("[modules.{module}]\ncpu_ms = 300"));
    let (gw, _up, _canary) = gateway(&plugins).await;
    let port = gw.port;
    let started = Instant::now();
    let looping = tokio::spawn(async move { request(port, "GET", "/x", &[("x-misbehave", "loop")], b"").await });
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

#[tokio::test(flavor = "multi_thread")]
async fn memory_past_the_cap_is_refused() {
    let plugins = misbehaving("misbehave", "[modules.misbehave]\nmemory_mb = 16");
    let (gw, _up, _canary) = gateway(&plugins).await;
    let resp = request(gw.port, "GET", "/x", &[("x-misbehave", "grow")], b"").await;
    assert_eq!(resp.status, 500);
    assert!(gw.stderr().contains("exceeded its memory limit (16 MiB)"), "{}", gw.stderr());
    assert_eq!(request(gw.port, "GET", "/x", &[], b"").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_can_choose_the_upstream() {
    let (gw, _up, _canary) = gateway(PROBE).await;
    let resp = request(gw.port, "GET", "/", &[("x-probe-upstream", "canary")], b"").await;
    assert_eq!(resp.header("x-upstream"), Some("canary"));
    let resp = request(gw.port, "GET", "/", &[("x-probe-upstream", "nope")], b"").await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["message"], "no upstream named \"nope\"");
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

#[tokio::test(flavor = "multi_thread")]
async fn hot_load_under_load_loses_nothing() {
    hot_load_under_load_of("stamp").await;
}

/// `module` (which answers `x-stamp: v1`) replaced by `{module}-v2` (`v2`) under load: no request
/// fails, and v2 is served within a second.
pub(crate) async fn hot_load_under_load_of(module: &str) {
    let up = Upstream::start("up").await;
    let canary = Upstream::start("canary").await;
    let plugins = format!("[[plugins]]\nname = \"{module}\"\nroute = \"r\"\n");
    let gw = Gateway::builder(&entities(&up, &canary)).plugins_with(&plugins, &[module]).start().await;
    let deadline = Instant::now() + Duration::from_millis(3000);
    let traffic = tokio::spawn(load(gw.port, 4, deadline));
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
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_module_is_rejected_and_the_old_one_keeps_working() {
    let up = Upstream::start("up").await;
    let canary = Upstream::start("canary").await;
    let plugins = "[[plugins]]\nname = \"stamp\"\nroute = \"r\"\n";
    let gw = Gateway::builder(&entities(&up, &canary)).plugins_with(plugins, &["stamp"]).start().await;
    crate::support::gateway::write_atomically(&gw.plugins_dir().join("stamp.wasm"), b"\0asm broken");
    gw.wait_for_log("configuration rejected", 1).await;
    // Compiled in a child process (`wasmgate plugin compile`), whose reason is the gateway's.
    assert!(gw.stderr().contains("module \"stamp\""), "{}", gw.stderr());
    assert!(gw.stderr().contains("not a valid wasm component: failed to parse WebAssembly module"), "{}", gw.stderr());
    let resp = request(gw.port, "GET", "/", &[], b"").await;
    assert_eq!((resp.status, resp.header("x-stamp")), (200, Some("v1")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlinked_plugins_directory_is_watched_where_it_points() {
    let up = Upstream::start("up").await;
    let canary = Upstream::start("canary").await;
    let plugins = "[[plugins]]\nname = \"stamp\"\nroute = \"r\"\n";
    let gw =
        Gateway::builder(&entities(&up, &canary)).plugins_with(plugins, &["stamp"]).linked_plugins_dir().start().await;
    assert_eq!(request(gw.port, "GET", "/", &[], b"").await.header("x-stamp"), Some("v1"));
    let v2 = std::fs::read(crate::support::plugins::wasm("stamp-v2")).unwrap();
    crate::support::gateway::write_atomically(&gw.plugins_dir().join("stamp.wasm"), &v2);
    let deadline = Instant::now() + Duration::from_secs(10);
    while request(gw.port, "GET", "/", &[], b"").await.header("x-stamp") != Some("v2") {
        assert!(Instant::now() < deadline, "the new version never loaded:\n{}", gw.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn new_modules_and_plugins_toml_edits_load_without_restart() {
    let up = Upstream::start("up").await;
    let canary = Upstream::start("canary").await;
    let gw = Gateway::builder(&entities(&up, &canary)).plugins_with("", &["probe"]).start().await;
    assert_eq!(request(gw.port, "GET", "/", &[], b"").await.header("x-stamp"), None);

    std::fs::copy(crate::support::plugins::wasm("stamp"), gw.plugins_dir().join("stamp.wasm")).unwrap();
    gw.write_plugins("[[plugins]]\nname = \"stamp\"\nroute = \"r\"\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while request(gw.port, "GET", "/", &[], b"").await.header("x-stamp") != Some("v1") {
        assert!(Instant::now() < deadline, "the new module never loaded:\n{}", gw.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.write_plugins("[[plugins]]\nname = \"probe\"\nroute = \"r\"\nconfig = { tag = \"edited\" }\n");
    while Echo::from(&request(gw.port, "GET", "/", &[], b"").await).header("x-probe-tag") != Some("edited") {
        assert!(Instant::now() < deadline, "the plugins.toml edit never applied:\n{}", gw.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_modules_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let plugins = format!("cache_dir = {:?}\n{PROBE}", cache.path().display().to_string());
    let up = Upstream::start("up").await;
    let canary = Upstream::start("canary").await;
    let first = Gateway::builder(&entities(&up, &canary)).plugins_with(&plugins, &["probe"]).start().await;
    assert!(
        first.stderr().contains("plugin=\"probe\"") && first.stderr().contains("cached=false"),
        "{}",
        first.stderr()
    );
    let cached: Vec<_> = std::fs::read_dir(cache.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].to_string_lossy().ends_with(".cwasm"));
    drop(first);
    let second = Gateway::builder(&entities(&up, &canary)).plugins_with(&plugins, &["probe"]).start().await;
    assert!(second.stderr().contains("cached=true"), "a restart reuses the compiled module:\n{}", second.stderr());
}

#[test]
fn bad_plugin_configs_are_rejected_naming_the_field() {
    let plugins = "[[plugins]]\nname = \"probe\"\nroute = \"r\"\nconfig = { tag = \"a,b\" }\n\
                   [[plugins]]\nname = \"probe\"\nconfig = { tagg = \"x\" }\n\
                   [[plugins]]\nname = \"probe\"\nservice = \"s\"\nconfig = { counter_limit = \"ten\" }\n\
                   [[plugins]]\nname = \"nope\"\n\
                   [[plugins]]\nname = \"probe\"\nroute = \"missing\"\n\
                   [[plugins]]\nname = \"key-auth\"\nconsumer = \"alice\"\n";
    check_refuses(
        &["probe", "key-auth"],
        plugins,
        &[
            r#"plugins[0] (probe on route "r"): config.tag: must not contain ','"#,
            "plugins[1] (probe on global): config.tagg: unknown field `tagg`",
            r#"plugins[2] (probe on service "s"): config.counter_limit: invalid type: string "ten", expected u64"#,
            r#"plugins[3] (nope on global): name: no plugin module "nope" is loaded (loaded: key-auth, probe)"#,
            r#"plugins[4] (probe on route "missing"): route: no route is named "missing""#,
            r#"plugins[5] (key-auth on consumer "alice"): consumer: "key-auth" cannot be scoped to a consumer"#,
        ],
    );
}

/// `wasmgate check` with `modules` and a plugins.toml of `plugins` (service `s`, route `r`,
/// consumer alice) fails, and its output has every one of `expected`.
pub(crate) fn check_refuses(modules: &[&str], plugins: &str, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    for m in modules {
        std::fs::copy(crate::support::plugins::wasm(m), dir.path().join(format!("plugins/{m}.wasm"))).unwrap();
    }
    let gateway = "[server]\nplugins_file = \"plugins.toml\"\n[[services]]\nname = \"s\"\nurl = \"http://127.0.0.1:9\"\n\
                   [[services.routes]]\nname = \"r\"\npaths = [\"/\"]\n[[consumers]]\nusername = \"alice\"\n";
    std::fs::write(dir.path().join("gateway.toml"), gateway).unwrap();
    let cache = crate::support::plugins::cache_dir().display().to_string();
    std::fs::write(
        dir.path().join("plugins.toml"),
        format!("plugins_dir = \"plugins\"\ncache_dir = {cache:?}\n{plugins}"),
    )
    .unwrap();
    let (code, out, err) = run_cli(&["check", "-c", "gateway.toml"], dir.path());
    let out = format!("{out}{err}");
    assert_eq!(code, 1, "{out}");
    for expected in expected {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn modules_that_want_the_filesystem_or_network_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    std::fs::copy(crate::support::plugins::wasm("escape"), dir.path().join("plugins/escape.wasm")).unwrap();
    std::fs::write(dir.path().join("gateway.toml"), "[server]\nplugins_file = \"plugins.toml\"\n").unwrap();
    std::fs::write(dir.path().join("plugins.toml"), "plugins_dir = \"plugins\"\n").unwrap();
    let (code, out, err) = run_cli(&["check", "-c", "gateway.toml"], dir.path());
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(r#"module "escape""#) && err.contains("needs imports wasmgate does not provide"), "{err}");
    assert!(err.contains("wasi:filesystem") || err.contains("wasi:sockets"), "{err}");
}
