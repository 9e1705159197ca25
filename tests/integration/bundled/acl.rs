//! acl: allow and deny by group, after key-auth.

use super::{assert_refused, get, on_route, start};

#[tokio::test(flavor = "multi_thread")]
async fn allow_list() {
    let (gw, _up) = start(&format!("{}{}", on_route("key-auth", ""), on_route("acl", r#"allow = ["admins"]"#))).await;
    let (status, echo, _) = get(&gw, "/", &[("apikey", "k-alice")]).await;
    assert_eq!(
        (status, echo.unwrap().header("x-consumer-groups").map(str::to_string)),
        (200, Some("admins, dev".into()))
    );
    let (status, _, resp) = get(&gw, "/", &[("apikey", "k-bob")]).await;
    assert_eq!(status, 403);
    assert_eq!(resp.json(), serde_json::json!({"message": "You cannot consume this service"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_list_and_hidden_groups() {
    let plugins =
        format!("{}{}", on_route("key-auth", ""), on_route("acl", r#"deny = ["guests"], hide_groups_header = true"#));
    let (gw, _up) = start(&plugins).await;
    let (status, echo, _) = get(&gw, "/", &[("apikey", "k-alice"), ("x-consumer-groups", "forged")]).await;
    assert_eq!((status, echo.unwrap().header("x-consumer-groups").map(str::to_string)), (200, None));
    assert_eq!(get(&gw, "/", &[("apikey", "k-bob")]).await.0, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_consumer_is_401() {
    let (gw, up) = start(&on_route("acl", r#"allow = ["admins"]"#)).await;
    let (status, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!((status, resp.json()), (401, serde_json::json!({"message": "Unauthorized"})));
    assert_eq!(up.hits(), 0);
}

#[test]
fn bad_configs_are_refused() {
    assert_refused(&on_route("acl", r#"allow = ["a"], deny = ["b"]"#), "config: set exactly one of `allow` or `deny`");
    assert_refused(&on_route("acl", ""), "config: set exactly one of `allow` or `deny`");
    assert_refused(&on_route("acl", "allow = []"), "config.allow: give at least one group");
}
