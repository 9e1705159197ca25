//! The plugin host through the real gateway, with real `.wasm` plugins built from this repo:
//! every host function and phase, ordering and scopes, sandbox limits, failure policies and hot
//! loading.

use crate::support::admin::call;
use crate::support::gateway::run_cli;
use crate::support::scenarios::{
    an_endless_loop_is_stopped_in, check_refuses, entities, failures_follow_the_policy_of, gateway,
    hot_load_under_load_of, misbehaving,
};
use crate::support::{Config, Echo, Gateway, Upstream, eventually, free_port, request};

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
    assert_eq!((h("scheme"), h("http-version"), h("sni")), ("http".into(), "1.1".into(), "-".into()));
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
    let gw = Config::new()
        .service("a", &up.url())
        .route("", &["/"])
        .service("b", &rewritten.url())
        .route("", &[])
        .set("headers = { x-rewritten = [\"yes\"] }")
        .plugin("probe", "", "tag = \"g\"")
        .start()
        .await;
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
    let gw = Config::new()
        .service("s", &format!("http://127.0.0.1:{dead}"))
        .set("retries = 0")
        .route("down", &["/down"])
        .plugin("probe", "", "tag = \"g\"")
        .start()
        .await;
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
    let mut cfg = Config::new()
        .service("s1", &up.url())
        .route("r1", &["/r1"])
        .route("r3", &["/r3"])
        .route("r4", &["/r4"])
        .service("s2", &up.url())
        .route("r2", &["/r2"]);
    for name in ["alice", "bob", "carol"] {
        cfg = cfg.consumer(name).key(&format!("k-{name}"));
    }
    let scoped = [
        ("", "global"),
        ("service = \"s2\"", "service"),
        ("route = \"r1\"", "route"),
        ("route = \"r1\"\nservice = \"s1\"", "route+service"),
        ("consumer = \"alice\"", "consumer"),
        ("route = \"r3\"\nconsumer = \"alice\"", "route+consumer"),
        ("consumer = \"bob\"", "bob"),
    ];
    for (scope, tag) in scoped {
        cfg = cfg.plugin("probe", scope, &format!("tag = {tag:?}"));
    }
    let gw = cfg.plugin("key-auth", "route = \"r3\"", "").plugin("key-auth", "route = \"r4\"", "").start().await;
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

#[tokio::test(flavor = "multi_thread")]
async fn failures_follow_the_policy() {
    failures_follow_the_policy_of("misbehave", &["trap", "panic", "error"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_is_stopped_while_others_are_served() {
    an_endless_loop_is_stopped_in("misbehave").await;
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

#[tokio::test(flavor = "multi_thread")]
async fn hot_load_under_load_loses_nothing() {
    hot_load_under_load_of("stamp").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_module_is_rejected_and_the_old_one_keeps_working() {
    let up = Upstream::start("up").await;
    let canary = Upstream::start("canary").await;
    let plugins = "[[plugins]]\nname = \"stamp\"\nroute = \"r\"\n";
    let gw = entities(&up, &canary).plugins_toml(plugins).only_modules(&["stamp"]).gateway().start().await;
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
    let gw = entities(&up, &canary)
        .plugins_toml(plugins)
        .only_modules(&["stamp"])
        .gateway()
        .linked_plugins_dir()
        .start()
        .await;
    assert_eq!(request(gw.port, "GET", "/", &[], b"").await.header("x-stamp"), Some("v1"));
    let v2 = std::fs::read(crate::support::plugins::wasm("stamp-v2")).unwrap();
    crate::support::gateway::write_atomically(&gw.plugins_dir().join("stamp.wasm"), &v2);
    let stamp = async || request(gw.port, "GET", "/", &[], b"").await.header("x-stamp").map(str::to_string);
    eventually("the new version", async || stamp().await.as_deref() == Some("v2")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn new_modules_and_plugins_toml_edits_load_without_restart() {
    let up = Upstream::start("up").await;
    let canary = Upstream::start("canary").await;
    let gw = entities(&up, &canary).plugins_toml("").only_modules(&["probe"]).gateway().start().await;
    assert_eq!(request(gw.port, "GET", "/", &[], b"").await.header("x-stamp"), None);

    std::fs::copy(crate::support::plugins::wasm("stamp"), gw.plugins_dir().join("stamp.wasm")).unwrap();
    gw.write_plugins("[[plugins]]\nname = \"stamp\"\nroute = \"r\"\n");
    let stamp = async || request(gw.port, "GET", "/", &[], b"").await.header("x-stamp").map(str::to_string);
    eventually("the new module", async || stamp().await.as_deref() == Some("v1")).await;
    gw.write_plugins("[[plugins]]\nname = \"probe\"\nroute = \"r\"\nconfig = { tag = \"edited\" }\n");
    let tag =
        async || Echo::from(&request(gw.port, "GET", "/", &[], b"").await).header("x-probe-tag").map(str::to_string);
    eventually("the plugins.toml edit", async || tag().await.as_deref() == Some("edited")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_modules_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let plugins = format!("cache_dir = {:?}\n{PROBE}", cache.path().display().to_string());
    let up = Upstream::start("up").await;
    let canary = Upstream::start("canary").await;
    let first = entities(&up, &canary).plugins_toml(&plugins).only_modules(&["probe"]).gateway().start().await;
    first.wait_for_log("plugin modules compiled after start-up", 1).await;
    assert!(
        first.stderr().contains("plugin=\"probe\"") && first.stderr().contains("cached=false"),
        "{}",
        first.stderr()
    );
    let cached: Vec<_> = std::fs::read_dir(cache.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].to_string_lossy().ends_with(".cwasm"));
    drop(first);
    let second = entities(&up, &canary).plugins_toml(&plugins).only_modules(&["probe"]).gateway().start().await;
    assert!(second.stderr().contains("cached=true"), "a restart reuses the compiled module:\n{}", second.stderr());
}

/// Cached code is native code the gateway runs: a cache directory that another user owns, or
/// that others may write to, is not used at all; modules are compiled in memory instead.
#[tokio::test(flavor = "multi_thread")]
async fn a_cache_directory_others_may_write_or_own_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let up = Upstream::start("up").await;
    let canary = Upstream::start("canary").await;
    for planted in ["world-writable", "owned by another user"] {
        let cache = tempfile::tempdir().unwrap();
        match planted {
            "world-writable" => std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o777)).unwrap(),
            _ => std::os::unix::fs::chown(cache.path(), Some(65534), Some(65534)).unwrap(),
        }
        let plugins = format!("cache_dir = {:?}\n{PROBE}", cache.path().display().to_string());
        let gw = entities(&up, &canary).plugins_toml(&plugins).only_modules(&["probe"]).start().await;
        assert!(gw.stderr().contains("not using the compiled-code cache"), "{planted}:\n{}", gw.stderr());
        gw.wait_for_log("plugin modules compiled after start-up", 1).await;
        let tag = Echo::from(&request(gw.port, "GET", "/", &[], b"").await).header("x-probe-tag").map(str::to_string);
        assert_eq!(tag.as_deref(), Some("t"), "{planted}: the plugin runs, compiled in memory");
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "{planted}: nothing written there");
    }
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

#[test]
fn sandbox_limits_have_upper_bounds() {
    check_refuses(
        &["probe"],
        "[modules.probe]\ncpu_ms = 100000000\n[[plugins]]\nname = \"probe\"\n",
        &["cpu_ms: 100000000 is out of range 1-60000"],
    );
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

/// With an empty code cache, only the modules a configuration uses are compiled before the
/// listener opens; the others compile after it, and an Admin API write naming one of those
/// meanwhile is told to retry rather than refused for good.
#[tokio::test(flavor = "multi_thread")]
async fn unused_modules_compile_after_the_listener_opens() {
    let up = Upstream::start("up").await;
    let dir = tempfile::tempdir().unwrap();
    let (plugins, cache) = (dir.path().join("plugins"), dir.path().join("cache"));
    std::fs::create_dir(&plugins).unwrap();
    for m in ["key-auth", "cors", "jwt", "request-transformer"] {
        std::fs::copy(crate::support::plugins::wasm(m), plugins.join(format!("{m}.wasm"))).unwrap();
    }
    let file =
        format!("plugins_dir = {:?}\ncache_dir = {:?}\n", plugins.display().to_string(), cache.display().to_string());
    let gw = Gateway::builder("").embedded().plugins_file(&file).start().await;
    let service = format!("name=s&url={}", up.url());
    assert_eq!(call(&gw, "POST", "/services", &service).await.status, 201, "served before any module compiled");
    assert_eq!(call(&gw, "POST", "/services/s/routes", "name=r&paths[]=/").await.status, 201);
    assert_eq!(request(gw.port, "GET", "/", &[], b"").await.status, 200);

    // A write naming a module: 201 once it is compiled; until then 503, saying why.
    let compile = std::time::Duration::from_secs(90);
    crate::support::wait::eventually_within(compile, "key-auth to be usable", async || {
        let resp = call(&gw, "POST", "/routes/r/plugins", "name=key-auth").await;
        let retry = resp.status == 503 && resp.text().contains("is still compiling");
        assert!(resp.status == 201 || retry, "201, or 503 while compiling: {} {}", resp.status, resp.text());
        resp.status == 201
    })
    .await;
    assert_eq!(request(gw.port, "GET", "/", &[], b"").await.status, 401);
    gw.wait_for_log("plugin modules compiled after start-up", 1).await;
    assert!(gw.stderr().contains("count=4"), "{}", gw.stderr());
    let enabled = call(&gw, "GET", "/plugins/enabled", "").await.json();
    assert_eq!(enabled["enabled_plugins"].as_array().map(Vec::len), Some(4), "{enabled}");
    // Restarted, everything comes from the cache: nothing is left for later.
    let mut gw = gw;
    gw.restart().await;
    assert_eq!(request(gw.port, "GET", "/", &[], b"").await.status, 401);
    let logged = gw.stderr().matches("compiled after start-up").count();
    assert_eq!(logged, 1, "only the first start had modules to compile: {}", gw.stderr());
}

/// A gateway on an empty code cache with the modules in `modules`, `plugins` (`[[plugins]]`)
/// in its plugins.toml, and the routes `open` (no plugins) and `locked` on `up`.
async fn uncompiled(up: &Upstream, modules: &[&str], plugins: &str) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (plugins_dir, cache) = (dir.path().join("plugins"), dir.path().join("cache"));
    std::fs::create_dir(&plugins_dir).unwrap();
    for m in modules {
        std::fs::copy(crate::support::plugins::wasm(m), plugins_dir.join(format!("{m}.wasm"))).unwrap();
    }
    let (plugins_dir, cache) = (plugins_dir.display().to_string(), cache.display().to_string());
    let file = format!("plugins_dir = {plugins_dir:?}\ncache_dir = {cache:?}\n{plugins}");
    let config = format!(
        "[[services]]\nname = \"s\"\nurl = \"{}\"\n\
         [[services.routes]]\nname = \"open\"\npaths = [\"/open\"]\n\
         [[services.routes]]\nname = \"locked\"\npaths = [\"/locked\"]\n\
         [[upstreams]]\nname = \"canary\"\n[[upstreams.targets]]\ntarget = \"{}\"\n\
         [[consumers]]\nusername = \"alice\"\n[[consumers.keyauth_credentials]]\nkey = \"k-alice\"\n",
        up.url(),
        up.addr()
    );
    let gw = Gateway::builder(&config).server("plugins_file = \"plugins.toml\"").plugins_file(&file).start().await;
    (gw, dir)
}

/// With an empty code cache, the listener opens before the modules the configuration uses are
/// compiled: a route without plugins serves at once, and a route whose plugins are still
/// compiling answers 503 with `Retry-After` (never its upstream with part of its chain) until
/// they are loaded, then runs them.
#[tokio::test(flavor = "multi_thread")]
async fn routes_wait_for_their_plugins_to_compile_while_the_others_serve() {
    let up = Upstream::start("up").await;
    let plugins = "[[plugins]]\nname = \"key-auth\"\nroute = \"locked\"\n\
                   [[plugins]]\nname = \"gray-release-go\"\nroute = \"locked\"\n\
                   config = { canary_upstream = \"canary\", percentage = 0 }\n";
    let (gw, _dir) = uncompiled(&up, &["key-auth", "gray-release-go", "cors"], plugins).await;
    assert_eq!(request(gw.port, "GET", "/open", &[], b"").await.status, 200, "served before anything compiled");
    let mut answers = Vec::new();
    crate::support::wait::eventually_within(std::time::Duration::from_secs(90), "the route's plugins", async || {
        let resp = request(gw.port, "GET", "/locked", &[], b"").await;
        if resp.status == 503 {
            assert_eq!(resp.header("retry-after"), Some("2"), "{}", resp.text());
            assert!(resp.text().contains("is still compiling; retry in a few seconds"), "{}", resp.text());
        } else {
            assert_eq!(resp.status, 401, "only the whole chain runs: {}", resp.text());
        }
        answers.push(resp.status);
        resp.status == 401
    })
    .await;
    assert_eq!(answers[0], 503, "the first answer came while the Go module compiled: {answers:?}");
    let keyed = request(gw.port, "GET", "/locked", &[("apikey", "k-alice")], b"").await;
    assert_eq!(keyed.status, 200, "{}", keyed.text());
    gw.wait_for_log("plugin modules compiled after start-up", 1).await;
    assert!(gw.stderr().contains("count=3"), "the unused one too: {}", gw.stderr());
}

/// A configuration that its module refuses once compiled leaves its route answering 503, now
/// without `Retry-After`, and never forwarding; the log names the field.
#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_refused_after_compiling_leaves_its_route_unavailable() {
    let up = Upstream::start("up").await;
    let plugins = "[[plugins]]\nname = \"request-termination\"\nroute = \"locked\"\nconfig = { status_code = 99 }\n";
    let (gw, _dir) = uncompiled(&up, &["request-termination"], plugins).await;
    assert_eq!(request(gw.port, "GET", "/open", &[], b"").await.status, 200);
    crate::support::wait::eventually("the module to fail", async || {
        let resp = request(gw.port, "GET", "/locked", &[], b"").await;
        assert_eq!(resp.status, 503, "{}", resp.text());
        resp.text().contains("plugin 'request-termination' could not be loaded; the gateway's log says why")
            && resp.header("retry-after").is_none()
    })
    .await;
    assert!(gw.stderr().contains("configuration rejected") && gw.stderr().contains("status_code"), "{}", gw.stderr());
    assert_eq!(request(gw.port, "GET", "/open", &[], b"").await.status, 200, "the rest still serves");
}

#[tokio::test(flavor = "multi_thread")]
async fn perfmap_names_plugin_code_for_profilers() {
    let up = Upstream::start("u").await;
    let config = format!(
        "[[services]]\nname = \"s\"\nurl = \"{}\"\n[[services.routes]]\nname = \"r\"\npaths = [\"/\"]\n",
        up.url()
    );
    let gw = Gateway::builder(&config)
        .plugins_with("[[plugins]]\nname = \"noop\"\nroute = \"r\"\n", &["noop"])
        .env("WASMGATE_PERFMAP", "1")
        .start()
        .await;
    assert_eq!(request(gw.port, "GET", "/", &[], b"").await.status, 200);
    let path = format!("/tmp/perf-{}.map", gw.pid());
    let map = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    // `ADDRESS SIZE NAME` lines, in perf's format; the bundled builds keep no function names.
    let functions = map.lines().filter(|l| l.split(' ').nth(2).is_some_and(|n| n.starts_with("wasm["))).count();
    assert!(functions > 10, "{functions} plugin functions in {path}:\n{}", &map[..map.len().min(500)]);
}
