//! rate-limiting: windows, limit_by, headers, answers, and exact counting under concurrency.

use super::{assert_refused, get, on_route, start};
use crate::support::request;
use crate::support::wait::away_from_minute_end;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn headers_and_the_429_answer() {
    away_from_minute_end(Duration::from_secs(5)).await;
    let (gw, up) = start(&on_route("rate-limiting", r#"minute = 3, limit_by = "ip""#)).await;
    for remaining in ["2", "1", "0"] {
        let (status, _, resp) = get(&gw, "/", &[]).await;
        assert_eq!(status, 200);
        assert_eq!(resp.header("x-ratelimit-limit-minute"), Some("3"));
        assert_eq!(resp.header("x-ratelimit-remaining-minute"), Some(remaining));
        assert_eq!((resp.header("ratelimit-limit"), resp.header("ratelimit-remaining")), (Some("3"), Some(remaining)));
        let reset: u64 = resp.header("ratelimit-reset").unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset), "{reset}");
    }
    let (status, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!(status, 429);
    assert_eq!(resp.json(), serde_json::json!({"message": "API rate limit exceeded"}));
    assert_eq!(resp.header("x-ratelimit-remaining-minute"), Some("0"));
    assert!(resp.header("retry-after").unwrap().parse::<u64>().unwrap() <= 60);
    assert_eq!(up.hits(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workers_never_admit_more_than_the_limit() {
    let (gw, up) = start_exact().await;
    let port = gw.port;
    let clients: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(async move {
                let mut ok = 0;
                for _ in 0..15 {
                    if request(port, "GET", "/", &[], b"").await.status == 200 {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut admitted = 0;
    for c in clients {
        admitted += c.await.unwrap();
    }
    assert_eq!(admitted, 100, "300 concurrent requests against a limit of 100");
    assert_eq!(up.hits(), 100);
}

async fn start_exact() -> (crate::support::Gateway, crate::support::Upstream) {
    super::start_with(&on_route("rate-limiting", r#"day = 100, limit_by = "ip""#), "worker_threads = 2", "").await
}

#[tokio::test(flavor = "multi_thread")]
async fn limit_by_consumer_header_and_path() {
    away_from_minute_end(Duration::from_secs(5)).await;
    let plugins = format!("{}{}", on_route("key-auth", ""), on_route("rate-limiting", "minute = 2"));
    let (gw, _up) = start(&plugins).await;
    for _ in 0..2 {
        assert_eq!(get(&gw, "/", &[("apikey", "k-alice")]).await.0, 200);
    }
    assert_eq!(get(&gw, "/", &[("apikey", "k-alice")]).await.0, 429);
    assert_eq!(get(&gw, "/", &[("apikey", "k-bob")]).await.0, 200, "each consumer has its own counter");

    let (gw, _up) =
        start(&on_route("rate-limiting", r#"minute = 1, limit_by = "header", header_name = "x-tenant""#)).await;
    assert_eq!(get(&gw, "/", &[("x-tenant", "a")]).await.0, 200);
    assert_eq!(get(&gw, "/", &[("x-tenant", "a")]).await.0, 429);
    assert_eq!(get(&gw, "/", &[("x-tenant", "b")]).await.0, 200);

    let (gw, _up) = start(&on_route("rate-limiting", r#"minute = 1, limit_by = "path", path = "/hot""#)).await;
    assert_eq!(get(&gw, "/hot", &[]).await.0, 200);
    assert_eq!(get(&gw, "/hot", &[]).await.0, 429);
    assert_eq!(get(&gw, "/cold", &[]).await.0, 200, "other paths count by IP");
    assert_eq!(get(&gw, "/cold", &[]).await.0, 429);
}

/// `[[plugins]]` for `name` on every route.
fn global(name: &str, config: &str) -> String {
    format!("[[plugins]]\nname = \"{name}\"\nconfig = {{ {config} }}\n")
}

/// The host makes Kong's counter key: the configuration's route and service, then the identity,
/// else the client IP.
#[tokio::test(flavor = "multi_thread")]
async fn counters_follow_the_configuration_scope_and_fall_back_to_the_ip() {
    away_from_minute_end(Duration::from_secs(5)).await;
    let other_route = "[[services.routes]]\nname = \"other\"\npaths = [\"/other\"]\n";
    let (gw, _up) = super::start_with(&global("rate-limiting", "minute = 1"), "", other_route).await;
    assert_eq!(get(&gw, "/", &[]).await.0, 200);
    assert_eq!(get(&gw, "/", &[]).await.0, 429, "no consumer: counted by IP");
    assert_eq!(get(&gw, "/other", &[]).await.0, 429, "a global configuration's counter spans routes");

    let per_route = format!(
        "{}[[plugins]]\nname = \"rate-limiting\"\nroute = \"other\"\nconfig = {{ minute = 1 }}\n",
        on_route("rate-limiting", "minute = 1")
    );
    let (gw, _up) = super::start_with(&per_route, "", other_route).await;
    assert_eq!(get(&gw, "/", &[]).await.0, 200);
    assert_eq!(get(&gw, "/other", &[]).await.0, 200, "a configuration on a route counts that route");
    assert_eq!(get(&gw, "/", &[]).await.0, 429);

    let plugins =
        format!("{}{}", global("key-auth", ""), global("rate-limiting", r#"minute = 1, limit_by = "credential""#));
    let (gw, _up) = start(&plugins).await;
    assert_eq!(get(&gw, "/", &[("apikey", "k-alice")]).await.0, 200);
    assert_eq!(get(&gw, "/", &[("apikey", "k-alice")]).await.0, 429);
    assert_eq!(get(&gw, "/", &[("apikey", "k-bob")]).await.0, 200, "each credential has its own counter");

    // Clients are told apart by X-Forwarded-For from the trusted loopback.
    let trusted = "trusted_ips = [\"127.0.0.1\"]";
    let by_ip = super::start_with(&global("rate-limiting", "minute = 1"), trusted, "").await;
    let by_service =
        super::start_with(&global("rate-limiting", r#"minute = 1, limit_by = "service""#), trusted, "").await;
    for (gw, second_client) in [(&by_ip.0, 200), (&by_service.0, 429)] {
        assert_eq!(get(gw, "/", &[("x-forwarded-for", "10.0.0.1")]).await.0, 200);
        assert_eq!(get(gw, "/", &[("x-forwarded-for", "10.0.0.2")]).await.0, second_client);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn several_windows_custom_answer_and_hidden_headers() {
    away_from_minute_end(Duration::from_secs(5)).await;
    let config = r#"minute = 1, hour = 10, error_code = 418, error_message = "slow down", hide_client_headers = true"#;
    let (gw, _up) = start(&on_route("rate-limiting", config)).await;
    let (status, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!(status, 200);
    assert!(resp.headers.keys().all(|k| !k.as_str().contains("ratelimit")), "{:?}", resp.headers);
    let (status, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!((status, resp.json()["message"].as_str()), (418, Some("slow down")));
    assert!(resp.header("retry-after").is_some(), "Retry-After is always sent with the refusal");
    assert!(resp.header("x-ratelimit-limit-minute").is_none());
    let (gw, _up) = start(&on_route("rate-limiting", "second = 5, hour = 10")).await;
    let (_, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!(
        (resp.header("x-ratelimit-limit-second"), resp.header("x-ratelimit-limit-hour")),
        (Some("5"), Some("10"))
    );
    assert_eq!(resp.header("ratelimit-remaining"), Some("4"), "the window closest to its limit");

    // A refused request is not counted: as in Kong, the window that refused it shows 0 and the
    // others what they have left; Retry-After is the refusing window's reset.
    let (gw, _up) = start(&on_route("rate-limiting", "minute = 2, hour = 10")).await;
    away_from_minute_end(std::time::Duration::from_secs(5)).await;
    for _ in 0..2 {
        assert_eq!(get(&gw, "/", &[]).await.0, 200);
    }
    let (status, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!(status, 429);
    assert_eq!(
        (resp.header("x-ratelimit-remaining-minute"), resp.header("x-ratelimit-remaining-hour")),
        (Some("0"), Some("8"))
    );
    let retry: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

#[test]
fn bad_configs_are_refused() {
    assert_refused(
        &on_route("rate-limiting", "second = 100, minute = 60"),
        "config.minute: the limit for minute (60) cannot be lower than the limit for second (100)",
    );
    assert_refused(
        &on_route("rate-limiting", ""),
        "config: set at least one of second, minute, hour, day, month, year",
    );
    assert_refused(
        &on_route("rate-limiting", r#"minute = 5, policy = "redis""#),
        "config.policy: \"redis\" is not available yet",
    );
    assert_refused(
        &on_route("rate-limiting", r#"minute = 5, limit_by = "header""#),
        "config.header_name: required with limit_by = \"header\"",
    );
    assert_refused(
        &on_route("rate-limiting", r#"minute = 5, limit_by = "tenant""#),
        "config.limit_by: unknown variant `tenant`",
    );
    assert_refused(&on_route("rate-limiting", "minutes = 5"), "config.minutes: unknown field `minutes`");
}
