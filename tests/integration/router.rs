//! The cases of `shared/reference/router.md` that need the whole gateway: Host headers and
//! repeated headers as a client sends them, the 404 and 503 answers, upstream paths, Host
//! forwarding. Each route forwards to its own echo upstream, so the answering server names the
//! route that matched. The matching cases themselves run as a table against the router
//! (`gateway/src/router/reference_cases.rs`).

use crate::support::{Config, Echo, Gateway, Upstream, request};

/// A gateway with one service and echo upstream per route. `routes` are (name, TOML fields).
struct Routes {
    gw: Gateway,
    _upstreams: Vec<Upstream>,
}

impl Routes {
    async fn start(routes: &[(&str, &str)]) -> Routes {
        let mut config = Config::new();
        let mut upstreams = Vec::new();
        for (name, fields) in routes {
            let up = Upstream::start(name).await;
            config = config.service(&format!("svc-{name}"), &up.url()).route(name, &[]).set(fields);
            upstreams.push(up);
        }
        Routes { gw: config.start().await, _upstreams: upstreams }
    }

    /// Which route answered (the upstream's name), or the status code when the gateway answered.
    async fn which(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> String {
        let resp = request(self.gw.port, method, target, headers, b"").await;
        match resp.header("x-upstream") {
            Some(name) => name.to_string(),
            None => resp.status.to_string(),
        }
    }

    async fn host(&self, host: &str) -> String {
        self.which("GET", "/", &[("host", host)]).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn case_04_leading_and_trailing_wildcards() {
    let r = Routes::start(&[("A", r#"hosts = ["*.route.com"]"#), ("B", r#"hosts = ["route.*"]"#)]).await;
    assert_eq!(r.host("foo.route.com").await, "A");
    assert_eq!(r.host("a.b.route.com").await, "A", "a wildcard covers several labels");
    assert_eq!(r.host("route.org").await, "B");
    assert_eq!(r.host("route.org:123").await, "B");
    assert_eq!(r.host("ROUTE.org").await, "B", "hosts compare case-insensitively");
    assert_eq!(r.host("route.com").await, "B");
    assert_eq!(r.host("other.org").await, "404");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_18_header_values_are_case_insensitive() {
    let r = Routes::start(&[
        ("A", "headers = { user-agent = [\"foo\", \"bar\"] }"),
        ("B", "headers = { user-agent = [\"BAZ\"] }"),
    ])
    .await;
    assert_eq!(r.which("GET", "/", &[("User-Agent", "FOO")]).await, "A");
    assert_eq!(r.which("GET", "/", &[("user-agent", "baz")]).await, "B");
    assert_eq!(r.which("GET", "/", &[("user-agent", "qux"), ("user-agent", "bar")]).await, "A", "any repeated value");
    assert_eq!(r.which("GET", "/", &[("user-agent", "qux")]).await, "404");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_22_method_mismatch_is_404_json() {
    let r = Routes::start(&[("A", "methods = [\"POST\"]\npaths = [\"/post\"]")]).await;
    let resp = request(r.gw.port, "DELETE", "/post", &[], b"").await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.json(), serde_json::json!({"message": "no Route matched with those values"}));
    assert!(resp.header("content-type").unwrap().starts_with("application/json"));
    assert_eq!(r.which("POST", "/post", &[]).await, "A");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_23_route_without_service_is_503_json() {
    let gw = Config::new().top_route("lonely", &[]).set("hosts = [\"serviceless.test\"]").start().await;
    let resp = request(gw.port, "GET", "/", &[("host", "serviceless.test")], b"").await;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.json(), serde_json::json!({"message": "no Service found with those values"}));
}

/// An upstream path case: case, service.path, route path, strip_path, [(request, upstream path)].
type PathCase = (&'static str, &'static str, &'static str, bool, &'static [(&'static str, &'static str)]);

/// The upstream path cases of the reference.
const UPSTREAM_PATHS: &[PathCase] = &[
    ("27", "/", "/route", true, &[("/route", "/"), ("/route/", "/"), ("/routereq", "/req")]),
    ("28", "/", "/route", false, &[("/routereq", "/routereq")]),
    ("29", "/service", "/", true, &[("/", "/service"), ("/route", "/service/route"), ("/route/", "/service/route/")]),
    ("29", "/service", "/", false, &[("/", "/service"), ("/route", "/service/route"), ("/route/", "/service/route/")]),
    ("31", "/service", "/route", false, &[("/route", "/service/route"), ("/route/", "/service/route/")]),
    ("32", "/service", "/route/", true, &[("/route/", "/service/"), ("/route/req", "/service/req")]),
    ("34", "/service/", "/", true, &[("/", "/service/"), ("/route/req", "/service/route/req")]),
    ("34", "/service/", "/", false, &[("/", "/service/"), ("/route/req", "/service/route/req")]),
    ("35", "/srv/", "/rou", true, &[("/rou", "/srv")]),
    ("35", "/srv/", "/rou", false, &[("/rou", "/srv/rou")]),
    (
        "37",
        "/service",
        "/route",
        false,
        &[("/route%2E/req", "/service/route./req"), ("/route%2e%2E/req", "/service/route../req")],
    ),
    ("40", "/", "/endel%2Fst", false, &[("/endel%2Fst", "/endel%2Fst")]),
    ("40", "/", "/endel%2Fst", true, &[("/endel%2Fst", "/")]),
    (
        "42",
        "/",
        "/anything/world",
        false,
        &[
            ("/anything/./a/../wor%6cd/a/../b", "/anything/world/b"),
            ("/anything/world/cat%20and%20dog", "/anything/world/cat%20and%20dog"),
        ],
    ),
    ("query", "/svc", "/q", true, &[("/q/x?b=2&a=%20&a=1&empty", "/svc/x?b=2&a=%20&a=1&empty")]),
];

/// Every upstream path case through one gateway: each case's route has a host of its own.
#[tokio::test(flavor = "multi_thread")]
async fn upstream_paths_follow_strip_path_and_the_service_path() {
    let up = Upstream::start("up").await;
    let host = |i: usize| format!("case{i}.test");
    let mut config = Config::new();
    for (i, (_, service_path, route_path, strip, _)) in UPSTREAM_PATHS.iter().enumerate() {
        config = config
            .service(&format!("s{i}"), &format!("{}{service_path}", up.url()))
            .route("", &[route_path])
            .set(&format!("hosts = [{:?}]\nstrip_path = {strip}", host(i)));
    }
    // Case 40 is Kong's: `%2F` kept as it is (wasmgate refuses it by default).
    let gw = config.server("path_escaped_slashes = \"keep\"").start().await;
    for (i, (case, service_path, route_path, strip, requests)) in UPSTREAM_PATHS.iter().enumerate() {
        for (req, want) in *requests {
            let resp = request(gw.port, "GET", req, &[("host", &host(i))], b"").await;
            assert_eq!(resp.status, 200, "case {case}, {req}: {}", resp.text());
            let path = Echo::from(&resp).path;
            assert_eq!(
                path, *want,
                "case {case}: service.path={service_path} route={route_path} strip={strip} request={req}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn case_39_root_route_strips_nothing() {
    let up = Upstream::start("up").await;
    let gw = Config::new().service("s", &format!("{}/", up.url())).route("", &["/"]).start().await;
    let resp = request(gw.port, "POST", "/my-route/hello/world", &[], b"payload").await;
    let echo = Echo::from(&resp);
    assert_eq!(
        (echo.method.as_str(), echo.path.as_str(), echo.body.as_str()),
        ("POST", "/my-route/hello/world", "payload")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn case_41_paths_are_normalised_before_matching() {
    let up_foo = Upstream::start("foo").await;
    let up_hello = Upstream::start("hello").await;
    let gw = Config::new()
        .service("foo", &up_foo.url())
        .route("", &["/foo/bar"])
        .service("hello", &up_hello.url())
        .route("", &["/hello"])
        .start()
        .await;
    for req in ["/foo/a/../bar", "/foo//bar", "/foo/./bar"] {
        let resp = request(gw.port, "GET", req, &[], b"").await;
        assert_eq!(resp.header("x-upstream"), Some("foo"), "{req}");
        assert_eq!(Echo::from(&resp).path, "/", "{req}");
    }
    let resp = request(gw.port, "GET", "/h%65llo/anything/a/../b", &[], b"").await;
    assert_eq!(resp.header("x-upstream"), Some("hello"));
    assert_eq!(Echo::from(&resp).path, "/anything/b");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_43_preserve_host_sends_the_client_host() {
    let up = Upstream::start("up").await;
    let gw = Config::new()
        .service("s", &up.url())
        .route("", &[])
        .set("hosts = [\"preserved.com\", \"preserved.com:123\"]\npreserve_host = true")
        .start()
        .await;
    for host in ["preserved.com", "preserved.com:123"] {
        let resp = request(gw.port, "GET", "/", &[("host", host)], b"").await;
        assert_eq!(Echo::from(&resp).header("host"), Some(host));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn case_45_service_host_by_default() {
    let up = Upstream::start("up").await;
    let gw = Config::new().service("s", &up.url()).route("", &[]).set("hosts = [\"discarded.com\"]").start().await;
    let resp = request(gw.port, "GET", "/", &[("host", "discarded.com")], b"").await;
    assert_eq!(Echo::from(&resp).header("host"), Some(up.addr().as_str()));
}
