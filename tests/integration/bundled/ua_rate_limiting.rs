//! ua-rate-limiting: roles by User-Agent, per-UA limits for users, blocking, and the seed
//! scenario: a scraper rotating IPs behind one User-Agent is limited, normal users are not.

use super::{assert_refused, get, on_route, start_with};
use crate::support::metrics::{samples, scrape, value};
use crate::support::wait::away_from_minute_end;
use std::time::Duration;

const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36";

fn roles(extra: &str) -> String {
    on_route(
        "ua-rate-limiting",
        &format!(
            r#"roles = [
                {{ name = "spider", patterns = ["(?i)(bot|crawl|spider)"], limit_by = "role", limits = {{ minute = 3 }} }},
                {{ name = "user", limit_by = "user_agent", limits = {{ minute = 20 }} }},
            ]{extra}"#
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scraper_rotating_ips_is_limited_while_users_are_not() {
    away_from_minute_end(Duration::from_secs(10)).await;
    let (gw, up) = start_with(&roles(""), "trusted_ips = [\"127.0.0.1\"]", "").await;
    // The scraper: one browser-like User-Agent from 60 addresses.
    let mut scraper = Vec::new();
    for i in 0..60 {
        let ip = format!("198.51.100.{i}");
        scraper.push(get(&gw, "/items", &[("user-agent", CHROME), ("x-forwarded-for", &ip)]).await.0);
    }
    assert_eq!(scraper.iter().filter(|s| **s == 200).count(), 20, "{scraper:?}");
    assert!(scraper[20..].iter().all(|s| *s == 429));
    // Normal users: each their own browser build, a few requests each.
    for user in 0..15 {
        let ua = format!("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.{user}");
        let ip = format!("203.0.113.{user}");
        for _ in 0..3 {
            let (status, _, resp) = get(&gw, "/items", &[("user-agent", &ua), ("x-forwarded-for", &ip)]).await;
            assert_eq!(status, 200, "user {user}: {}", resp.text());
            assert_eq!(resp.header("x-ratelimit-limit-minute"), Some("20"));
        }
    }
    assert_eq!(up.hits(), 20 + 45);
    let log = gw.stderr();
    let rejections = log.matches("ua-rate-limiting rejected: role=user route=api").count();
    assert_eq!(rejections, 40, "every refusal is logged");
    assert!(log.contains(&format!("ua={CHROME:?}")), "{log}");

    // The UA watch, from /metrics alone: who is refused where, and which User-Agent surges.
    let m = scrape(gw.admin).await;
    let refused = [("route", "api"), ("role", "user")];
    assert_eq!(value(&m, "wasmgate_plugin_ua_rate_limiting_refused_total", &refused), Some(40.0));
    let top = |name: &str| -> Vec<(String, f64)> {
        samples(&m, name)
            .filter(|s| s.labels.get("route").map(String::as_str) == Some("api"))
            .map(|s| (s.labels["user_agent"].clone(), s.value))
            .collect()
    };
    let requests = top("wasmgate_plugin_ua_rate_limiting_top_user_agents_requests_total");
    assert_eq!(requests.len(), 10, "16 User-Agents, the 10 with most requests: {requests:?}");
    assert!(requests.contains(&(CHROME.to_string(), 60.0)), "the scraper on top: {requests:?}");
    let refusals = top("wasmgate_plugin_ua_rate_limiting_top_user_agents_refused_total");
    assert_eq!(refusals, [(CHROME.to_string(), 40.0)], "only the scraper was refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn spiders_share_one_counter_and_blocked_agents_are_refused() {
    away_from_minute_end(Duration::from_secs(5)).await;
    let (gw, _up) = start_with(&roles(r#", block = ["(?i)evilbot"]"#), "", "").await;
    let spiders = ["Googlebot/2.1", "bingbot/2.0", "AhrefsBot/7.0", "Googlebot/2.1"];
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for ua in spiders {
            v.push(get(&gw, "/", &[("user-agent", ua)]).await.0);
        }
        v
    };
    assert_eq!(statuses, [200, 200, 200, 429], "one counter for the whole role");
    let (status, _, resp) = get(&gw, "/", &[("user-agent", "EvilBot/1.0")]).await;
    assert_eq!((status, resp.json()["message"].as_str()), (403, Some("Forbidden")));
    assert!(gw.stderr().contains("ua-rate-limiting blocked: role=blocked route=api"), "{}", gw.stderr());
    assert_eq!(get(&gw, "/", &[("user-agent", CHROME)]).await.0, 200, "users are not affected by spiders");
}

#[tokio::test(flavor = "multi_thread")]
async fn defaults_need_no_configuration() {
    let (gw, _up) = start_with("[[plugins]]\nname = \"ua-rate-limiting\"\nroute = \"api\"\n", "", "").await;
    let (status, _, resp) = get(&gw, "/", &[("user-agent", CHROME)]).await;
    assert_eq!((status, resp.header("x-ratelimit-limit-minute")), (200, Some("600")));
    let (_, _, resp) = get(&gw, "/", &[("user-agent", "Googlebot/2.1")]).await;
    assert_eq!(resp.header("x-ratelimit-limit-minute"), Some("120"));
}

#[test]
fn bad_configs_are_refused() {
    assert_refused(
        &on_route("ua-rate-limiting", r#"roles = [{ name = "x", patterns = ["(unclosed"], limits = { minute = 1 } }]"#),
        "config.roles[0].patterns[0]: invalid regex \"(unclosed\"",
    );
    assert_refused(
        &on_route("ua-rate-limiting", r#"roles = [{ name = "x", limits = { second = 10, minute = 5 } }]"#),
        "config.roles[0].limits.minute: the limit for minute (5) cannot be lower than the limit for second (10)",
    );
    assert_refused(&on_route("ua-rate-limiting", "roles = []"), "config.roles: give at least one role");
    assert_refused(
        &on_route("ua-rate-limiting", r#"roles = [{ name = "x", limit_by = "asn", limits = { minute = 1 } }]"#),
        "config.roles[0].limit_by: unknown variant `asn`",
    );
}
