//! request-termination: status, message, body, echo and trigger.

use super::{assert_refused, get, on_route, start};

#[tokio::test(flavor = "multi_thread")]
async fn defaults_and_message() {
    let (gw, up) = start("[[plugins]]\nname = \"request-termination\"\nroute = \"api\"\n").await;
    let (status, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!((status, resp.json()), (503, serde_json::json!({"message": "Service unavailable"})));
    assert_eq!(up.hits(), 0);
    let (gw, _up) =
        start(&on_route("request-termination", r#"status_code = 403, message = "closed for maintenance""#)).await;
    let (status, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!((status, resp.json()), (403, serde_json::json!({"message": "closed for maintenance"})));
}

#[tokio::test(flavor = "multi_thread")]
async fn body_and_content_type() {
    let (gw, _up) = start(&on_route(
        "request-termination",
        r#"status_code = 200, body = "<h1>Back soon</h1>", content_type = "text/html""#,
    ))
    .await;
    let (status, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!(
        (status, resp.text().as_str(), resp.header("content-type")),
        (200, "<h1>Back soon</h1>", Some("text/html"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn echo_shows_the_request() {
    let (gw, _up) = start(&on_route("request-termination", "status_code = 404, echo = true")).await;
    let (status, _, resp) = get(&gw, "/some/path?x=1", &[("host", "api.example.com"), ("x-hello", "world")]).await;
    let body = resp.json();
    assert_eq!(status, 404);
    assert_eq!(body["message"], "Not found");
    assert_eq!(
        (body["request"]["method"].as_str(), body["request"]["path"].as_str()),
        (Some("GET"), Some("/some/path"))
    );
    assert_eq!(
        (body["request"]["host"].as_str(), body["request"]["query"].as_str()),
        (Some("api.example.com"), Some("x=1"))
    );
    assert_eq!(body["request"]["headers"]["x-hello"], "world");
    assert_eq!(
        (body["matched_route"]["name"].as_str(), body["matched_service"]["name"].as_str()),
        (Some("api"), Some("svc"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_with_the_trigger() {
    let (gw, up) = start(&on_route("request-termination", r#"trigger = "x-terminate""#)).await;
    assert_eq!(get(&gw, "/", &[]).await.0, 200);
    assert_eq!(get(&gw, "/", &[("x-terminate", "1")]).await.0, 503);
    assert_eq!(get(&gw, "/?x-terminate", &[]).await.0, 503);
    assert_eq!(up.hits(), 1);
}

#[test]
fn bad_configs_are_refused() {
    let rt = |c: &str| on_route("request-termination", c);
    assert_refused(
        &rt(r#"message = "a", body = "b", content_type = "text/plain""#),
        "config: give either `message` or `body`, not both",
    );
    assert_refused(&rt(r#"body = "b""#), "config.content_type: required with `body`");
    assert_refused(&rt("status_code = 700"), "config.status_code: 700 is not an HTTP status");
}
