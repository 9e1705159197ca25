//! The walkthroughs users already type (`shared/reference/walkthroughs.md`), written as config.

use super::{get, on_route};
use crate::support::wait::away_from_minute_end;
use crate::support::{Config, Upstream, request};
use std::time::Duration;

const MOESIF_ID: &str = "c1f0e7a2-52f4-4d39-8a61-2c9d3b1e5f70";

/// Walkthrough 1: two replicas behind upstream "localhost", `/` open, `/profile` behind key-auth.
#[tokio::test(flavor = "multi_thread")]
async fn walkthrough_1_load_balancing_with_key_auth_on_profile() {
    let replica_1 = Upstream::start_replica("replica-1").await;
    let replica_2 = Upstream::start_replica("replica-2").await;
    let config = format!(
        r#"
[[upstreams]]
name = "localhost"
[[upstreams.targets]]
target = "{r1}"
[[upstreams.targets]]
target = "{r2}"

[[services]]
name = "moesif-service"
url = "http://localhost:9001"
[[services.routes]]
name = "root"
paths = ["/"]
[[services.routes]]
name = "profile"
paths = ["/profile"]
strip_path = false

[[consumers]]
id = "{MOESIF_ID}"
username = "moesif"
[[consumers.keyauth_credentials]]
key = "moesif-key"
"#,
        r1 = replica_1.addr(),
        r2 = replica_2.addr()
    );
    let plugins = "[[plugins]]\nname = \"key-auth\"\nroute = \"profile\"\n";
    let gw = Config::new().raw(&config).plugins_toml(plugins).start().await;

    let (status, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!((status, resp.text().as_str()), (200, "Hello from my service"));
    assert!(
        resp.header("via").is_some() && resp.header("x-gateway-upstream-latency").is_some(),
        "gateway headers added"
    );

    let (status, _, resp) = get(&gw, "/profile", &[]).await;
    assert_eq!((status, resp.json()), (401, serde_json::json!({"message": "No API key found in request"})));
    assert!(resp.header("x-upstream").is_none(), "answered by the gateway, not the upstream");

    let mut served = Vec::new();
    for _ in 0..4 {
        let (status, _, resp) = get(&gw, "/profile", &[("apikey", "moesif-key")]).await;
        assert_eq!(status, 200);
        assert_eq!(resp.json(), serde_json::json!({"id": MOESIF_ID, "username": "moesif"}));
        served.push(resp.header("x-upstream").unwrap().to_string());
    }
    assert!(served.windows(2).all(|w| w[0] != w[1]), "balanced over both replicas, alternating: {served:?}");

    drop(replica_2);
    for _ in 0..6 {
        let (status, _, resp) = get(&gw, "/", &[]).await;
        assert_eq!((status, resp.header("x-upstream")), (200, Some("replica-1")), "retried on the live replica");
    }
}

/// Walkthrough 2: 100 requests a minute on `user-route`, then 429; key-auth with a given key.
#[tokio::test(flavor = "multi_thread")]
async fn walkthrough_2_rate_limiting_and_api_keys() {
    away_from_minute_end(Duration::from_secs(10)).await;
    let up = Upstream::start("user-service").await;
    let config = format!(
        r#"
[[services]]
name = "user-service"
url = "{url}"
[[services.routes]]
name = "user-route"
paths = ["/api/users"]
methods = ["GET", "POST"]

[[consumers]]
username = "apiuser"
[[consumers.keyauth_credentials]]
key = "my-api-key-12345"
"#,
        url = up.url()
    );
    let plugins = "[[plugins]]\nname = \"rate-limiting\"\nservice = \"user-service\"\nconfig = { minute = 100, policy = \"local\" }\n";
    let gw = Config::new().raw(&config).plugins_toml(plugins).start().await;
    let mut statuses = Vec::new();
    for _ in 0..110 {
        statuses.push(request(gw.port, "GET", "/api/users", &[], b"").await.status);
    }
    assert!(statuses[..100].iter().all(|s| *s == 200) && statuses[100..].iter().all(|s| *s == 429), "{statuses:?}");
    let refused = request(gw.port, "GET", "/api/users", &[], b"").await;
    assert_eq!(refused.json(), serde_json::json!({"message": "API rate limit exceeded"}));

    let plugins = format!("{}\n{}", plugins, on_route("key-auth", "").replace("\"api\"", "\"user-route\""));
    let gw = Config::new().raw(&config).plugins_toml(&plugins).start().await;
    assert_eq!(request(gw.port, "GET", "/api/users", &[], b"").await.status, 401);
    assert_eq!(request(gw.port, "GET", "/api/users", &[("apikey", "my-api-key-12345")], b"").await.status, 200);
}
