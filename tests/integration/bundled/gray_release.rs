//! gray-release: canary routing by IP, cookie, header and sticky percentage; every case runs
//! against the Rust plugin and its Go port (`plugins/go/gray-release-go`).

use super::{assert_refused, get, on_route};
use crate::support::{Gateway, Upstream};

async fn start(plugin: &str, config: &str, plugins_extra: &str) -> (Gateway, Upstream, Upstream) {
    let stable = Upstream::start("stable").await;
    let canary = Upstream::start("canary").await;
    let plugins = format!("{plugins_extra}{}", on_route(plugin, &format!(r#"canary_upstream = "canary", {config}"#)));
    let gw = super::entities(&stable)
        .upstream("canary")
        .target(&canary.addr(), 100)
        .server("trusted_ips = [\"127.0.0.1\"]")
        .plugins_toml(&plugins)
        .start()
        .await;
    (gw, stable, canary)
}

async fn side(gw: &Gateway, headers: &[(&str, &str)]) -> String {
    let (status, _, resp) = get(gw, "/", headers).await;
    assert_eq!(status, 200, "{}", resp.text());
    let served = resp.header("x-upstream").unwrap().to_string();
    if let Some(h) = resp.header("x-gray-release") {
        assert_eq!(h, served, "the response header names the side that served");
    }
    served
}

async fn ips_cookies_and_headers(plugin: &str) {
    let config = r#"ips = ["10.0.0.0/8", "2001:db8::/32"], cookies = ["canary=always"], headers = ["x-beta"], response_header = "X-Gray-Release""#;
    let (gw, _stable, _canary) = start(plugin, config, "").await;
    assert_eq!(side(&gw, &[("x-forwarded-for", "10.20.30.40")]).await, "canary");
    assert_eq!(side(&gw, &[("x-forwarded-for", "2001:db8::7")]).await, "canary");
    assert_eq!(side(&gw, &[("x-forwarded-for", "192.0.2.1")]).await, "stable");
    assert_eq!(side(&gw, &[("cookie", "a=1; canary=always")]).await, "canary");
    assert_eq!(side(&gw, &[("cookie", "canary=never")]).await, "stable");
    assert_eq!(side(&gw, &[("x-beta", "anything")]).await, "canary");
}

async fn a_sticky_share_of_users(plugin: &str) {
    let (gw, _stable, canary) = start(plugin, r#"percentage = 30, hash_on = "cookie:uid""#, "").await;
    let mut to_canary = 0;
    for user in 0..400 {
        let cookie = format!("uid=user-{user}");
        let first = side(&gw, &[("cookie", &cookie)]).await;
        assert_eq!(side(&gw, &[("cookie", &cookie)]).await, first, "user {user} stays on one side");
        to_canary += usize::from(first == "canary");
    }
    assert!((90..=150).contains(&to_canary), "30% of 400 users, got {to_canary}");
    assert_eq!(canary.hits(), to_canary * 2);
}

async fn ten_percent_of_anonymous_users_from_one_region(plugin: &str) {
    let config = r#"ips = ["10.1.0.0/16"], percentage = 10, combine = "all", anonymous_only = true"#;
    let key_auth = on_route("key-auth", r#"anonymous = "guest""#);
    let (gw, _stable, _canary) = start(plugin, config, &key_auth).await;
    let (mut region, mut outside, mut logged_in) = (0, 0, 0);
    for i in 0..500 {
        let ip = format!("10.1.{}.{}", i / 250, i % 250);
        region += usize::from(side(&gw, &[("x-forwarded-for", &ip)]).await == "canary");
        logged_in += usize::from(side(&gw, &[("x-forwarded-for", &ip), ("apikey", "k-alice")]).await == "canary");
        let other = format!("172.16.{}.{}", i / 250, i % 250);
        outside += usize::from(side(&gw, &[("x-forwarded-for", &other)]).await == "canary");
    }
    assert!((20..=85).contains(&region), "about 10% of 500 anonymous users in the region, got {region}");
    assert_eq!((logged_in, outside), (0, 0));
}

async fn bad_configs_are_refused(plugin: &str) {
    let gr = |c: &str| on_route(plugin, c);
    assert_refused(
        &gr(r#"canary_upstream = "nope", percentage = 5"#),
        "config.canary_upstream: no upstream is named \"nope\"",
    );
    assert_refused(&gr(r#"canary_upstream = "canary""#), "config: give at least one selector");
    assert_refused(
        &gr(r#"canary_upstream = "canary", percentage = 150.0"#),
        "config.percentage: must be between 0 and 100",
    );
    assert_refused(
        &gr(r#"canary_upstream = "canary", ips = ["10.0.0.0/33"]"#),
        "config.ips[0]: \"10.0.0.0/33\" is not an IP address or CIDR range",
    );
    assert_refused(
        &gr(r#"canary_upstream = "canary", percentage = 5, hash_on = "asn""#),
        "config.hash_on: \"asn\" is not one of",
    );
}

/// Each case as a test of the Rust plugin and one of its Go port.
macro_rules! rust_and_go {
    ($($case:ident),* $(,)?) => {
        mod rust {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $case() {
                super::$case("gray-release").await
            })*
        }
        mod go {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $case() {
                super::$case("gray-release-go").await
            })*
        }
    };
}

rust_and_go!(
    ips_cookies_and_headers,
    a_sticky_share_of_users,
    ten_percent_of_anonymous_users_from_one_region,
    bad_configs_are_refused
);
