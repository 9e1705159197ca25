//! Every case of `shared/reference/router.md`, through the real gateway: each route forwards to
//! its own echo upstream, so the answering server names the route that matched.

use crate::support::{Echo, Gateway, Upstream, request};

/// A gateway with one service and echo upstream per route. `routes` are (name, TOML fields).
struct Routes {
    gw: Gateway,
    _upstreams: Vec<Upstream>,
}

impl Routes {
    async fn start(routes: &[(&str, &str)]) -> Routes {
        let mut config = String::new();
        let mut upstreams = Vec::new();
        for (name, fields) in routes {
            let up = Upstream::start(name).await;
            config.push_str(&format!(
                "[[services]]\nname = \"svc-{name}\"\nurl = \"{}\"\n[[services.routes]]\nname = \"{name}\"\n{fields}\n\n",
                up.url()
            ));
            upstreams.push(up);
        }
        Routes { gw: Gateway::start(&config).await, _upstreams: upstreams }
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
async fn case_01_default_port_matches_host_without_port() {
    let r = Routes::start(&[("A", r#"hosts = ["domain-1.org", "domain-2.org"]"#)]).await;
    assert_eq!(r.host("domain-1.org:80").await, "A");
    assert_eq!(r.host("domain-2.org").await, "A");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_02_host_with_port_wins() {
    let r = Routes::start(&[
        ("A", r#"hosts = ["domain-1.org"]"#),
        ("B", r#"hosts = ["domain-1.org:321", "domain-2.org"]"#),
    ])
    .await;
    assert_eq!(r.host("domain-1.org:321").await, "B");
    assert_eq!(r.host("domain-1.org").await, "A");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_03_other_port_does_not_match() {
    let r = Routes::start(&[("C", r#"hosts = ["domain-3.org:321"]"#)]).await;
    assert_eq!(r.host("domain-3.org:123").await, "404");
    assert_eq!(r.host("domain-3.org:321").await, "C");
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
async fn case_06_wildcard_route_matches_when_plain_host_route_does_not() {
    let r = Routes::start(&[
        ("A", "hosts = [\"*.route.com\"]\npaths = [\"/path1\"]"),
        ("B", "hosts = [\"plain.route.com\"]\npaths = [\"/path2\"]"),
    ])
    .await;
    assert_eq!(r.which("GET", "/path1", &[("host", "plain.route.com")]).await, "A");
    assert_eq!(r.which("GET", "/path2", &[("host", "plain.route.com")]).await, "B");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_07_wildcard_with_port_wins() {
    let r = Routes::start(&[("A", r#"hosts = ["route.*"]"#), ("B", r#"hosts = ["route.*:80", "route.com.*"]"#)]).await;
    assert_eq!(r.host("route.org:80").await, "B");
    assert_eq!(r.host("route.org:81").await, "A");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_08_prefix_ignores_segment_boundaries() {
    let r = Routes::start(&[("A", r#"paths = ["/my-route"]"#)]).await;
    assert_eq!(r.which("GET", "/my-route-uri", &[]).await, "A");
    assert_eq!(r.which("GET", "/some-other-prefix/my-route", &[]).await, "404");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_10_regex_beats_prefix() {
    let r = Routes::start(&[("A", r#"paths = ["/route/fixture"]"#), ("B", r#"paths = ["~/route/(fixture)"]"#)]).await;
    assert_eq!(r.which("GET", "/route/fixture", &[]).await, "B");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_11_regex_is_anchored_at_the_start() {
    let r = Routes::start(&[("A", r#"paths = ["~/prefix/[0-9]+"]"#)]).await;
    assert_eq!(r.which("GET", "/prefix/123", &[]).await, "A");
    assert_eq!(r.which("GET", "/extra/prefix/123", &[]).await, "404");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_12_regex_priority() {
    let r = Routes::start(&[
        ("R1", "paths = [\"~/status/(?P<foo>re)\"]\nregex_priority = 0"),
        ("R2", "paths = [\"~/status/(re)\"]\nregex_priority = 4"),
    ])
    .await;
    assert_eq!(r.which("GET", "/status/re", &[]).await, "R2");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_14_category_order_host_path_method() {
    let r = Routes::start(&[
        ("H", r#"hosts = ["domain-2.org"]"#),
        ("M", r#"methods = ["TRACE"]"#),
        ("U", r#"paths = ["/my-route"]"#),
    ])
    .await;
    assert_eq!(r.which("TRACE", "/", &[("host", "domain-2.org")]).await, "H");
    assert_eq!(r.which("TRACE", "/my-route", &[("host", "domain.org")]).await, "U");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_15_host_beats_method() {
    let r = Routes::start(&[("M", r#"methods = ["GET"]"#), ("W", r#"hosts = ["domain.*"]"#)]).await;
    assert_eq!(r.host("nothing.com").await, "M");
    assert_eq!(r.host("domain.com").await, "W");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_16_all_fields_must_match() {
    let r = Routes::start(&[
        ("A", "hosts = [\"host1.com\"]\npaths = [\"/v1/path\"]"),
        ("B", "hosts = [\"host2.com\"]\npaths = [\"/\"]"),
    ])
    .await;
    assert_eq!(r.which("GET", "/v1/path", &[("host", "host2.com")]).await, "B");
    assert_eq!(r.which("GET", "/v1/path", &[("host", "host1.com")]).await, "A");
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
async fn case_19_header_regex() {
    let r = Routes::start(&[("A", r#"headers = { user-agent = ['~*windows|linux|os\s+x\s*[\d\._]+|solaris|bsd'] }"#)])
        .await;
    assert_eq!(r.which("GET", "/", &[("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")]).await, "A");
    assert_eq!(r.which("GET", "/", &[("User-Agent", "curl/8.0")]).await, "404");
}

#[tokio::test(flavor = "multi_thread")]
async fn case_21_longest_prefix_wins() {
    let r = Routes::start(&[("C", r#"paths = ["/"]"#), ("U", r#"paths = ["/my-route"]"#)]).await;
    assert_eq!(r.which("GET", "/foobar/baz", &[]).await, "C");
    assert_eq!(r.which("GET", "/my-route/hello/world", &[]).await, "U");
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
    let gw = Gateway::start("[[routes]]\nname = \"lonely\"\nhosts = [\"serviceless.test\"]\n").await;
    let resp = request(gw.port, "GET", "/", &[("host", "serviceless.test")], b"").await;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.json(), serde_json::json!({"message": "no Service found with those values"}));
}

/// (service.path, route path, strip_path, request, upstream path)
async fn upstream_path_case(service_path: &str, route_path: &str, strip: bool, cases: &[(&str, &str)]) {
    let up = Upstream::start("up").await;
    let config = format!(
        "[[services]]\nname = \"s\"\nurl = \"{}{service_path}\"\n[[services.routes]]\npaths = [\"{route_path}\"]\nstrip_path = {strip}\n",
        up.url()
    );
    let gw = Gateway::start(&config).await;
    for (req, want) in cases {
        let resp = request(gw.port, "GET", req, &[], b"").await;
        assert_eq!(resp.status, 200, "{req}: {}", resp.text());
        assert_eq!(
            Echo::from(&resp).path,
            *want,
            "service.path={service_path} route={route_path} strip={strip} request={req}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn case_27_strip_with_root_service_path() {
    upstream_path_case("/", "/route", true, &[("/route", "/"), ("/route/", "/"), ("/routereq", "/req")]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn case_28_no_strip_with_root_service_path() {
    upstream_path_case("/", "/route", false, &[("/routereq", "/routereq")]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn case_29_root_route_under_service_path() {
    let cases = [("/", "/service"), ("/route", "/service/route"), ("/route/", "/service/route/")];
    upstream_path_case("/service", "/", true, &cases).await;
    upstream_path_case("/service", "/", false, &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn case_31_no_strip_appends_the_whole_path() {
    upstream_path_case("/service", "/route", false, &[("/route", "/service/route"), ("/route/", "/service/route/")])
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn case_32_trailing_slash_kept_only_if_requested() {
    upstream_path_case("/service", "/route/", true, &[("/route/", "/service/"), ("/route/req", "/service/req")]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn case_34_service_path_with_trailing_slash() {
    let cases = [("/", "/service/"), ("/route/req", "/service/route/req")];
    upstream_path_case("/service/", "/", true, &cases).await;
    upstream_path_case("/service/", "/", false, &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn case_35_empty_remainder_drops_the_service_slash() {
    upstream_path_case("/srv/", "/rou", true, &[("/rou", "/srv")]).await;
    upstream_path_case("/srv/", "/rou", false, &[("/rou", "/srv/rou")]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn case_37_encoded_dots_are_decoded_but_not_segments() {
    let cases = [("/route%2E/req", "/service/route./req"), ("/route%2e%2E/req", "/service/route../req")];
    upstream_path_case("/service", "/route", false, &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn case_39_root_route_strips_nothing() {
    let up = Upstream::start("up").await;
    let config = format!("[[services]]\nname = \"s\"\nurl = \"{}/\"\n[[services.routes]]\npaths = [\"/\"]\n", up.url());
    let gw = Gateway::start(&config).await;
    let resp = request(gw.port, "POST", "/my-route/hello/world", &[], b"payload").await;
    let echo = Echo::from(&resp);
    assert_eq!(
        (echo.method.as_str(), echo.path.as_str(), echo.body.as_str()),
        ("POST", "/my-route/hello/world", "payload")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn case_40_encoded_slash_matches_literally() {
    upstream_path_case("/", "/endel%2Fst", false, &[("/endel%2Fst", "/endel%2Fst")]).await;
    upstream_path_case("/", "/endel%2Fst", true, &[("/endel%2Fst", "/")]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn case_41_paths_are_normalised_before_matching() {
    let up_foo = Upstream::start("foo").await;
    let up_hello = Upstream::start("hello").await;
    let config = format!(
        "[[services]]\nname = \"foo\"\nurl = \"{}\"\n[[services.routes]]\npaths = [\"/foo/bar\"]\n\
         [[services]]\nname = \"hello\"\nurl = \"{}\"\n[[services.routes]]\npaths = [\"/hello\"]\n",
        up_foo.url(),
        up_hello.url()
    );
    let gw = Gateway::start(&config).await;
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
async fn case_42_normalised_path_goes_upstream() {
    let cases = [
        ("/anything/./a/../wor%6cd/a/../b", "/anything/world/b"),
        ("/anything/world/cat%20and%20dog", "/anything/world/cat%20and%20dog"),
    ];
    upstream_path_case("/", "/anything/world", false, &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn case_43_preserve_host_sends_the_client_host() {
    let up = Upstream::start("up").await;
    let config = format!(
        "[[services]]\nname = \"s\"\nurl = \"{}\"\n[[services.routes]]\nhosts = [\"preserved.com\", \"preserved.com:123\"]\npreserve_host = true\n",
        up.url()
    );
    let gw = Gateway::start(&config).await;
    for host in ["preserved.com", "preserved.com:123"] {
        let resp = request(gw.port, "GET", "/", &[("host", host)], b"").await;
        assert_eq!(Echo::from(&resp).header("host"), Some(host));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn case_45_service_host_by_default() {
    let up = Upstream::start("up").await;
    let config = format!(
        "[[services]]\nname = \"s\"\nurl = \"{}\"\n[[services.routes]]\nhosts = [\"discarded.com\"]\n",
        up.url()
    );
    let gw = Gateway::start(&config).await;
    let resp = request(gw.port, "GET", "/", &[("host", "discarded.com")], b"").await;
    assert_eq!(Echo::from(&resp).header("host"), Some(up.addr().as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn query_string_is_forwarded_as_sent() {
    upstream_path_case("/svc", "/q", true, &[("/q/x?b=2&a=%20&a=1&empty", "/svc/x?b=2&a=%20&a=1&empty")]).await;
}
