//! The matching cases of `shared/reference/router.md` (Kong's router), as a table run against
//! the router itself: each case's routes are compiled, each request is matched, and the route
//! that wins (or `404`) is compared. The cases that need the whole proxy (the 404 and 503 bodies,
//! upstream paths, Host forwarding) run end to end in `tests/integration/router.rs`.

use super::{RequestHost, RequestView, Router, path};
use crate::config::RouteConfig;
use http::{HeaderMap, HeaderName, HeaderValue};

/// A request: method, Host header, path, other headers, and the route expected to win.
type Request = (&'static str, &'static str, &'static str, &'static [(&'static str, &'static str)], &'static str);

/// A case: its number, the routes as (name, TOML fields), and the requests.
type Case = (&'static str, &'static [(&'static str, &'static str)], &'static [Request]);

/// The test client's Host when a case does not name one.
const LOCAL: &str = "localhost";

const CASES: &[Case] = &[
    (
        "01 default port matches a host without port",
        &[("A", r#"hosts = ["domain-1.org", "domain-2.org"]"#)],
        &[("GET", "domain-1.org:80", "/", &[], "A"), ("GET", "domain-2.org", "/", &[], "A")],
    ),
    (
        "02 host with port wins",
        &[("A", r#"hosts = ["domain-1.org"]"#), ("B", r#"hosts = ["domain-1.org:321", "domain-2.org"]"#)],
        &[("GET", "domain-1.org:321", "/", &[], "B"), ("GET", "domain-1.org", "/", &[], "A")],
    ),
    (
        "03 another port does not match",
        &[("C", r#"hosts = ["domain-3.org:321"]"#)],
        &[("GET", "domain-3.org:123", "/", &[], "404"), ("GET", "domain-3.org:321", "/", &[], "C")],
    ),
    (
        "04 leading and trailing wildcards",
        &[("A", r#"hosts = ["*.route.com"]"#), ("B", r#"hosts = ["route.*"]"#)],
        &[
            ("GET", "foo.route.com", "/", &[], "A"),
            ("GET", "a.b.route.com", "/", &[], "A"),
            ("GET", "route.org", "/", &[], "B"),
            ("GET", "route.org:123", "/", &[], "B"),
            ("GET", "ROUTE.org", "/", &[], "B"),
            ("GET", "route.com", "/", &[], "B"),
            ("GET", "other.org", "/", &[], "404"),
        ],
    ),
    (
        "06 a wildcard route matches when the plain host route does not",
        &[
            ("A", "hosts = [\"*.route.com\"]\npaths = [\"/path1\"]"),
            ("B", "hosts = [\"plain.route.com\"]\npaths = [\"/path2\"]"),
        ],
        &[("GET", "plain.route.com", "/path1", &[], "A"), ("GET", "plain.route.com", "/path2", &[], "B")],
    ),
    (
        "07 a wildcard with port wins",
        &[("A", r#"hosts = ["route.*"]"#), ("B", r#"hosts = ["route.*:80", "route.com.*"]"#)],
        &[("GET", "route.org:80", "/", &[], "B"), ("GET", "route.org:81", "/", &[], "A")],
    ),
    (
        "08 a prefix ignores segment boundaries",
        &[("A", r#"paths = ["/my-route"]"#)],
        &[("GET", LOCAL, "/my-route-uri", &[], "A"), ("GET", LOCAL, "/some-other-prefix/my-route", &[], "404")],
    ),
    (
        "10 a regex beats a prefix",
        &[("A", r#"paths = ["/route/fixture"]"#), ("B", r#"paths = ["~/route/(fixture)"]"#)],
        &[("GET", LOCAL, "/route/fixture", &[], "B")],
    ),
    (
        "11 a regex is anchored at the start",
        &[("A", r#"paths = ["~/prefix/[0-9]+"]"#)],
        &[("GET", LOCAL, "/prefix/123", &[], "A"), ("GET", LOCAL, "/extra/prefix/123", &[], "404")],
    ),
    (
        "12 regex priority",
        &[
            ("R1", "paths = [\"~/status/(?P<foo>re)\"]\nregex_priority = 0"),
            ("R2", "paths = [\"~/status/(re)\"]\nregex_priority = 4"),
        ],
        &[("GET", LOCAL, "/status/re", &[], "R2")],
    ),
    (
        "14 category order: host, path, method",
        &[("H", r#"hosts = ["domain-2.org"]"#), ("M", r#"methods = ["TRACE"]"#), ("U", r#"paths = ["/my-route"]"#)],
        &[("TRACE", "domain-2.org", "/", &[], "H"), ("TRACE", "domain.org", "/my-route", &[], "U")],
    ),
    (
        "15 a host beats a method",
        &[("M", r#"methods = ["GET"]"#), ("W", r#"hosts = ["domain.*"]"#)],
        &[("GET", "nothing.com", "/", &[], "M"), ("GET", "domain.com", "/", &[], "W")],
    ),
    (
        "16 all fields must match",
        &[("A", "hosts = [\"host1.com\"]\npaths = [\"/v1/path\"]"), ("B", "hosts = [\"host2.com\"]\npaths = [\"/\"]")],
        &[("GET", "host2.com", "/v1/path", &[], "B"), ("GET", "host1.com", "/v1/path", &[], "A")],
    ),
    (
        "18 header values compare case-insensitively, any repeated value counts",
        &[("A", "headers = { user-agent = [\"foo\", \"bar\"] }"), ("B", "headers = { user-agent = [\"BAZ\"] }")],
        &[
            ("GET", LOCAL, "/", &[("User-Agent", "FOO")], "A"),
            ("GET", LOCAL, "/", &[("user-agent", "baz")], "B"),
            ("GET", LOCAL, "/", &[("user-agent", "qux"), ("user-agent", "bar")], "A"),
            ("GET", LOCAL, "/", &[("user-agent", "qux")], "404"),
        ],
    ),
    (
        "19 a header regex",
        &[("A", r#"headers = { user-agent = ['~*windows|linux|os\s+x\s*[\d\._]+|solaris|bsd'] }"#)],
        &[
            ("GET", LOCAL, "/", &[("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")], "A"),
            ("GET", LOCAL, "/", &[("User-Agent", "curl/8.0")], "404"),
        ],
    ),
    (
        "21 the longest prefix wins",
        &[("C", r#"paths = ["/"]"#), ("U", r#"paths = ["/my-route"]"#)],
        &[("GET", LOCAL, "/foobar/baz", &[], "C"), ("GET", LOCAL, "/my-route/hello/world", &[], "U")],
    ),
    (
        "22 a method mismatch is no match",
        &[("A", "methods = [\"POST\"]\npaths = [\"/post\"]")],
        &[("DELETE", LOCAL, "/post", &[], "404"), ("POST", LOCAL, "/post", &[], "A")],
    ),
    (
        "41 the path is normalised before matching",
        &[("foo", r#"paths = ["/foo/bar"]"#), ("hello", r#"paths = ["/hello"]"#)],
        &[
            ("GET", LOCAL, "/foo/../foo/./bar", &[], "foo"),
            ("GET", LOCAL, "//foo//bar", &[], "foo"),
            ("GET", LOCAL, "/h%65llo/anything/a/../b", &[], "hello"),
        ],
    ),
];

#[test]
fn every_reference_case_picks_the_expected_route() {
    for (case, routes, requests) in CASES {
        let configs: Vec<RouteConfig> = routes
            .iter()
            .map(|(name, fields)| {
                toml::from_str(&format!("name = \"{name}\"\n{fields}"))
                    .unwrap_or_else(|e| panic!("case {case}: route {name}: {e}"))
            })
            .collect();
        let router = Router::build(&configs.iter().collect::<Vec<_>>())
            .unwrap_or_else(|e| panic!("case {case}: the routes do not compile: {e:?}"));
        for (method, host, raw_path, headers, expected) in *requests {
            let mut map = HeaderMap::new();
            for (name, value) in *headers {
                map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static(value));
            }
            let host = RequestHost::parse(host, 80);
            let normalised = path::normalize(raw_path);
            let view = RequestView { method, host: &host, path: &normalised, headers: &map };
            let got = router.find(&view).map_or("404", |m| routes[m.route].0);
            assert_eq!(got, *expected, "case {case}: {method} {raw_path} host {host:?} headers {headers:?}");
        }
    }
}
