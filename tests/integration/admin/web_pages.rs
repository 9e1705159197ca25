//! A web page cannot drive the Admin API: a cross-origin write, a cross-site fetch and a DNS
//! rebinding read are refused (403, in the audit line) and change nothing, while curl and Kong's
//! clients, which send no `Origin`, go on as before. No form body can abort the process.

use super::{call, embedded};
use crate::support::{Config, Upstream, one_route, request};

#[tokio::test(flavor = "multi_thread")]
async fn a_cross_origin_write_and_a_rebinding_read_are_refused_and_change_nothing() {
    let up = Upstream::start("up").await;
    let gw = one_route(&up, "/kept").start().await;
    let evil = Config::new().service("evil", "http://203.0.113.1:80").route("r", &["/kept"]);
    let page = [("content-type", "text/plain"), ("origin", "http://evil.example")];
    let refused = request(gw.admin, "POST", "/config", &page, evil.entities().as_bytes()).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.json()["message"].as_str().unwrap().contains("admin_allowed_origins"));
    let fetch = [("content-type", "text/plain"), ("sec-fetch-site", "cross-site")];
    assert_eq!(request(gw.admin, "POST", "/config", &fetch, evil.entities().as_bytes()).await.status, 403);
    let rebound = request(gw.admin, "GET", "/config", &[("host", "rebind.evil.example:8001")], b"").await;
    assert_eq!(rebound.status, 403, "{}", rebound.text());
    assert_eq!(request(gw.port, "GET", "/kept", &[], b"").await.header("x-upstream"), Some("up"), "unchanged");
    gw.wait_for_log("status=403", 3).await;
    assert!(gw.stderr().contains("auth=\"refused\""), "audited:\n{}", gw.stderr());

    // What curl sends still works, by IP address or by localhost.
    assert_eq!(request(gw.admin, "GET", "/config", &[("host", "127.0.0.1:8001")], b"").await.status, 200);
    assert_eq!(request(gw.admin, "GET", "/config", &[], b"").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn listed_origins_and_server_names_are_served() {
    let gw = Config::new()
        .server("admin_allowed_origins = [\"http://localhost:8002\"]\nadmin_server_names = [\"admin.internal\"]")
        .start()
        .await;
    let page = [("origin", "http://localhost:8002"), ("host", "admin.internal:8001")];
    assert_eq!(request(gw.admin, "GET", "/services", &page, b"").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deeply_nested_form_key_is_a_400_and_the_gateway_keeps_serving() {
    let mut gw = embedded().await;
    for key in ["a[]".repeat(100_000), "a.".repeat(100_000) + "a"] {
        let resp = call(&gw, "POST", "/services", &format!("{key}=1")).await;
        assert_eq!(resp.status, 400, "{}", resp.text());
        assert!(resp.text().contains("at most 256"), "{}", resp.text());
    }
    assert_eq!(call(&gw, "POST", "/services", "name=s&url=http://127.0.0.1:9").await.status, 201);
    assert!(gw.is_running(), "the process is alive");
}
