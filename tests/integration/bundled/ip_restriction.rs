//! ip-restriction: v4 and v6 allow and deny lists, deny first, trusted-proxy aware.

use super::{assert_refused, get, on_route, start_with};

async fn status(gw: &crate::support::Gateway, ip: &str) -> (u16, serde_json::Value) {
    let (status, _, resp) = get(gw, "/", &[("x-forwarded-for", ip)]).await;
    let body = if status == 200 { serde_json::Value::Null } else { resp.json() };
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_list() {
    let (gw, _up) = start_with(
        &on_route("ip-restriction", r#"deny = ["203.0.113.0/24", "2001:db8:bad::1"]"#),
        "trusted_ips = [\"127.0.0.1\"]",
        "",
    )
    .await;
    assert_eq!(
        status(&gw, "203.0.113.7").await,
        (403, serde_json::json!({"message": "IP address not allowed: 203.0.113.7"}))
    );
    assert_eq!(status(&gw, "2001:db8:bad::1").await.0, 403);
    assert_eq!(status(&gw, "198.51.100.1").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_list_deny_first_and_custom_answer() {
    let config =
        r#"allow = ["10.0.0.0/8", "2001:db8::/32"], deny = ["10.9.0.0/16"], status = 401, message = "go away""#;
    let (gw, _up) = start_with(&on_route("ip-restriction", config), "trusted_ips = [\"127.0.0.1\"]", "").await;
    assert_eq!(status(&gw, "10.1.2.3").await.0, 200);
    assert_eq!(status(&gw, "2001:db8::42").await.0, 200);
    assert_eq!(status(&gw, "192.0.2.1").await, (401, serde_json::json!({"message": "go away"})));
    assert_eq!(status(&gw, "10.9.1.1").await.0, 401, "deny is checked first");
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let (gw, _up) = start_with(&on_route("ip-restriction", r#"allow = ["10.0.0.0/8"]"#), "", "").await;
    assert_eq!(
        status(&gw, "10.1.2.3").await,
        (403, serde_json::json!({"message": "IP address not allowed: 127.0.0.1"}))
    );
}

#[test]
fn bad_configs_are_refused() {
    assert_refused(
        &on_route("ip-restriction", r#"allow = ["10.0.0.300"]"#),
        "config.allow[0]: \"10.0.0.300\" is not an IP address or CIDR range",
    );
    assert_refused(&on_route("ip-restriction", ""), "config: set `allow`, `deny` or both");
    assert_refused(
        &on_route("ip-restriction", r#"deny = ["::1"], status = 99"#),
        "config.status: 99 is not an HTTP status",
    );
}
