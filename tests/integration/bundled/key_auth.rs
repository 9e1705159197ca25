//! key-auth: Kong's settings, answers and headers.

use super::{ALICE_ID, assert_refused, get, on_route, start};
use crate::support::request;

#[tokio::test(flavor = "multi_thread")]
async fn defaults_header_and_query() {
    let (gw, up) = start(&on_route("key-auth", "")).await;
    let (status, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!(status, 401);
    assert_eq!(resp.json(), serde_json::json!({"message": "No API key found in request"}));
    assert_eq!(resp.header("www-authenticate"), Some("Key realm=\"wasmgate\""));
    let (status, _, resp) = get(&gw, "/", &[("apikey", "wrong")]).await;
    assert_eq!((status, resp.json()["message"].as_str()), (401, Some("Unauthorized")));
    assert_eq!(up.hits(), 0);

    let (status, echo, _) = get(&gw, "/", &[("apikey", "k-alice"), ("x-consumer-username", "spoofed")]).await;
    let echo = echo.unwrap();
    assert_eq!(status, 200);
    assert_eq!(echo.header("x-consumer-id"), Some(ALICE_ID));
    assert_eq!(echo.header("x-consumer-username"), Some("alice"), "a client-sent value is replaced");
    assert_eq!(echo.header("x-consumer-custom-id"), Some("alice-7"));
    assert_eq!(echo.header("x-credential-identifier"), Some("0a9e2c1d-1111-4a2b-8c3d-4e5f6a7b8c9d"));
    assert_eq!(echo.header("x-anonymous-consumer"), None);
    assert_eq!(echo.header("apikey"), Some("k-alice"), "kept without hide_credentials");

    let (status, echo, _) = get(&gw, "/x?apikey=k-bob&a=1", &[]).await;
    let echo = echo.unwrap();
    assert_eq!((status, echo.header("x-consumer-username")), (200, Some("bob")));
    assert_eq!(echo.header("x-consumer-custom-id"), None);
    assert_eq!(echo.path, "/x?apikey=k-bob&a=1");

    let (status, _, resp) = get(&gw, "/", &[("apikey", "k-alice"), ("apikey", "k-bob")]).await;
    assert_eq!((status, resp.json()["message"].as_str()), (401, Some("Duplicate API key found")));
}

#[tokio::test(flavor = "multi_thread")]
async fn hide_credentials_everywhere() {
    let config = "hide_credentials = true, key_in_body = true";
    let (gw, _up) = start(&on_route("key-auth", config)).await;
    let (_, echo, _) = get(&gw, "/", &[("apikey", "k-alice")]).await;
    assert_eq!(echo.unwrap().header("apikey"), None);
    let (_, echo, _) = get(&gw, "/p?a=1&apikey=k-alice&b=2", &[]).await;
    assert_eq!(echo.unwrap().path, "/p?a=1&b=2");
    let form =
        request(gw.port, "POST", "/f", &[("content-type", "application/x-www-form-urlencoded")], b"x=1&apikey=k-alice")
            .await;
    let echo = crate::support::Echo::from(&form);
    assert_eq!((form.status, echo.body.as_str()), (200, "x=1"));
    let json =
        request(gw.port, "POST", "/j", &[("content-type", "application/json")], br#"{"apikey":"k-bob","n":1}"#).await;
    let echo = crate::support::Echo::from(&json);
    assert_eq!((json.status, echo.body.as_str()), (200, r#"{"n":1}"#));
    assert_eq!(echo.header("x-consumer-username"), Some("bob"));
}

#[tokio::test(flavor = "multi_thread")]
async fn key_names_and_places() {
    let config = r#"key_names = ["x-api-key", "token"], key_in_header = false, key_in_query = true"#;
    let (gw, _up) = start(&on_route("key-auth", config)).await;
    assert_eq!(get(&gw, "/", &[("x-api-key", "k-alice")]).await.0, 401, "headers are not looked at");
    let (status, echo, _) = get(&gw, "/?token=k-alice", &[]).await;
    assert_eq!((status, echo.unwrap().header("x-consumer-username").map(str::to_string)), (200, Some("alice".into())));
    let body =
        request(gw.port, "POST", "/", &[("content-type", "application/x-www-form-urlencoded")], b"token=k-alice").await;
    assert_eq!(body.status, 401, "key_in_body is off by default");
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_fallback_and_preflight() {
    let (gw, _up) =
        start(&on_route("key-auth", r#"anonymous = "guest", run_on_preflight = false, realm = "api""#)).await;
    let (status, echo, _) = get(&gw, "/", &[("x-anonymous-consumer", "false")]).await;
    let echo = echo.unwrap();
    assert_eq!(status, 200);
    assert_eq!(echo.header("x-consumer-username"), Some("guest"));
    assert_eq!(echo.header("x-anonymous-consumer"), Some("true"));
    let (status, echo, _) = get(&gw, "/", &[("apikey", "k-alice")]).await;
    assert_eq!((status, echo.unwrap().header("x-anonymous-consumer").map(str::to_string)), (200, None));
    let preflight = request(gw.port, "OPTIONS", "/", &[], b"").await;
    assert_eq!(preflight.status, 200);
    assert_eq!(crate::support::Echo::from(&preflight).header("x-consumer-username"), None, "preflight skipped");
}

#[test]
fn bad_configs_are_refused() {
    assert_refused(&on_route("key-auth", "key_names = []"), "config.key_names: give at least one non-empty name");
    assert_refused(
        &on_route("key-auth", r#"anonymous = "nobody""#),
        r#"config.anonymous: no consumer with id or username "nobody""#,
    );
    assert_refused(
        &on_route("key-auth", "hide_credential = true"),
        "config.hide_credential: unknown field `hide_credential`",
    );
    assert_refused(
        &on_route("key-auth", r#"key_in_body = "yes""#),
        "config.key_in_body: invalid type: string \"yes\", expected a boolean",
    );
}
