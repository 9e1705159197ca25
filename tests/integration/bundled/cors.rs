//! cors: preflights answered by the gateway, headers on proxied answers, origins exact and by
//! regex, credentials, and preflight_continue.

use super::{get, on_route, start};
use crate::support::request;

fn preflight_headers<'a>(origin: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("origin", origin), ("access-control-request-method", "POST")];
    h.extend_from_slice(extra);
    h
}

#[tokio::test(flavor = "multi_thread")]
async fn defaults_allow_every_origin() {
    let (gw, up) = start(&on_route("cors", "")).await;
    let pre = request(
        gw.port,
        "OPTIONS",
        "/",
        &preflight_headers("https://a.test", &[("access-control-request-headers", "x-a,x-b")]),
        b"",
    )
    .await;
    assert_eq!(pre.status, 200);
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        pre.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT")
    );
    assert_eq!(pre.header("access-control-allow-headers"), Some("x-a,x-b"), "echoed without `headers`");
    assert_eq!(pre.header("access-control-allow-credentials"), None);
    assert_eq!(pre.header("vary"), None);
    assert_eq!(up.hits(), 0, "answered by the gateway");
    let (status, _, resp) = get(&gw, "/", &[("origin", "https://a.test")]).await;
    assert_eq!((status, resp.header("access-control-allow-origin")), (200, Some("*")));
    let (_, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"), "allow_origin_absent");
}

#[tokio::test(flavor = "multi_thread")]
async fn origins_credentials_and_preflight_settings() {
    let config = r#"origins = ["http://app.test", "https://(.*)\\.example\\.org"], credentials = true, max_age = 600, headers = ["x-one", "x-two"], methods = ["GET", "POST"], exposed_headers = ["x-upstream"], private_network = true, allow_origin_absent = false"#;
    let (gw, up) = start(&on_route("cors", config)).await;
    let pre = request(
        gw.port,
        "OPTIONS",
        "/",
        &preflight_headers("http://app.test:80", &[("access-control-request-private-network", "true")]),
        b"",
    )
    .await;
    assert_eq!(pre.status, 200);
    assert_eq!(pre.header("access-control-allow-origin"), Some("http://app.test"), "the default port is ignored");
    assert_eq!(pre.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(pre.header("access-control-allow-headers"), Some("x-one,x-two"));
    assert_eq!(pre.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(pre.header("access-control-max-age"), Some("600"));
    assert_eq!(pre.header("access-control-allow-private-network"), Some("true"));
    assert_eq!(pre.header("vary"), Some("Origin"));

    let (_, _, resp) = get(&gw, "/", &[("origin", "https://shop.example.org")]).await;
    assert_eq!(resp.header("access-control-allow-origin"), Some("https://shop.example.org"));
    assert_eq!(resp.header("access-control-expose-headers"), Some("x-upstream"));
    assert_eq!(resp.header("access-control-allow-credentials"), Some("true"));
    let (_, _, resp) = get(&gw, "/", &[("origin", "https://shop.example.org.evil.test")]).await;
    assert_eq!(resp.header("access-control-allow-origin"), None, "regexes are anchored");
    let (_, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!(resp.header("access-control-expose-headers"), None, "no Origin, and allow_origin_absent is off");
    assert_eq!(up.hits(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_continue_and_credentials_with_any_origin() {
    let (gw, up) = start(&on_route("cors", "preflight_continue = true, credentials = true")).await;
    let pre = request(gw.port, "OPTIONS", "/", &preflight_headers("https://b.test", &[]), b"").await;
    assert_eq!((pre.status, pre.header("x-upstream").is_some()), (200, true), "the upstream answered");
    assert_eq!(pre.header("access-control-allow-methods"), None);
    assert_eq!(up.hits(), 1);
    let (_, _, resp) = get(&gw, "/", &[("origin", "https://b.test")]).await;
    assert_eq!(resp.header("access-control-allow-origin"), Some("https://b.test"), "not * with credentials");
    assert_eq!(resp.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(resp.header("vary"), Some("Origin"));
}

#[test]
fn bad_origins_and_methods_are_refused() {
    super::assert_refused(&on_route("cors", r#"origins = ["(unclosed"]"#), "config.origins[0]");
    super::assert_refused(&on_route("cors", r#"methods = ["FETCH"]"#), "config.methods");
}
