//! bot-detection: the built-in list, deny and allow patterns.

use super::{assert_refused, get, on_route, start};

const BROWSER: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15";

#[tokio::test(flavor = "multi_thread")]
async fn well_known_bots_are_refused_by_default() {
    let (gw, up) = start("[[plugins]]\nname = \"bot-detection\"\nroute = \"api\"\n").await;
    for bot in [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Python-urllib/3.11",
        "AhrefsBot/7.0",
        "Scrapy/2.11 (+https://scrapy.org)",
    ] {
        let (status, _, resp) = get(&gw, "/", &[("user-agent", bot)]).await;
        assert_eq!((status, resp.json()), (403, serde_json::json!({"message": "Forbidden"})), "{bot}");
    }
    for human in [BROWSER, "curl/8.5.0"] {
        assert_eq!(get(&gw, "/", &[("user-agent", human)]).await.0, 200, "{human}");
    }
    assert_eq!(get(&gw, "/", &[]).await.0, 200, "no User-Agent is let through");
    assert_eq!(up.hits(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_and_allow_patterns() {
    let (gw, _up) =
        start(&on_route("bot-detection", r#"deny = ["(?i)mycorp-scanner"], allow = ["(?i)googlebot"]"#)).await;
    assert_eq!(get(&gw, "/", &[("user-agent", "MyCorp-Scanner 3.0")]).await.0, 403);
    assert_eq!(get(&gw, "/", &[("user-agent", "Googlebot/2.1")]).await.0, 200, "allow wins over the built-in list");
    assert_eq!(get(&gw, "/", &[("user-agent", "bingbot/2.0")]).await.0, 403);
}

#[test]
fn bad_configs_are_refused() {
    assert_refused(&on_route("bot-detection", r#"deny = ["*bad"]"#), "config.deny[0]: invalid regex \"*bad\"");
    assert_refused(
        &on_route("bot-detection", r#"allow = "googlebot""#),
        "config.allow: invalid type: string \"googlebot\", expected a sequence",
    );
}
