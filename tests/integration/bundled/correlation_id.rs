//! correlation-id: generators, echo, the client's own id.

use super::{assert_refused, get, on_route, start};

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test(flavor = "multi_thread")]
async fn default_uuid_counter_upstream_only() {
    let (gw, _up) = start("[[plugins]]\nname = \"correlation-id\"\n").await;
    let mut counters = Vec::new();
    for _ in 0..3 {
        let (_, echo, resp) = get(&gw, "/", &[]).await;
        let id = echo.unwrap().header("x-request-id").unwrap().to_string();
        let (uuid, n) = id.split_once('#').expect("uuid#counter");
        assert!(is_uuid(uuid), "{id}");
        counters.push((uuid.to_string(), n.parse::<u64>().unwrap()));
        assert!(resp.header("x-request-id").is_none(), "not echoed by default");
    }
    assert_ne!(counters[0], counters[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn echo_uuid_custom_header_and_kept_ids() {
    let (gw, _up) = start(&on_route(
        "correlation-id",
        r#"header_name = "Kong-Request-ID", generator = "uuid", echo_downstream = true"#,
    ))
    .await;
    let (_, echo, resp) = get(&gw, "/", &[]).await;
    let upstream_id = echo.unwrap().header("kong-request-id").unwrap().to_string();
    assert!(is_uuid(&upstream_id));
    assert_eq!(resp.header("kong-request-id"), Some(upstream_id.as_str()), "the client sees the same id");
    let (_, echo, resp) = get(&gw, "/", &[("kong-request-id", "from-client-42")]).await;
    assert_eq!(echo.unwrap().header("kong-request-id"), Some("from-client-42"));
    assert_eq!(resp.header("kong-request-id"), Some("from-client-42"));
    gw.wait_for_access_log("the client's request id", |log| log.contains("request_id=\"from-client-42\"")).await;

    let (gw, _up) = start(&on_route("correlation-id", r#"generator = "tracker""#)).await;
    let (_, echo, _) = get(&gw, "/", &[("host", "shop.example")]).await;
    let id = echo.unwrap().header("x-request-id").unwrap().to_string();
    assert!(id.starts_with(&format!("shop.example-{}-127.0.0.1-", gw.port)), "{id}");
}

#[test]
fn bad_configs_are_refused() {
    assert_refused(
        &on_route("correlation-id", r#"generator = "snowflake""#),
        "config.generator: unknown variant `snowflake`",
    );
}
