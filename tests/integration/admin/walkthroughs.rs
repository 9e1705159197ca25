//! Walkthroughs 1 and 2 of `walkthroughs.md`, typed as users type them: curl-shaped
//! form bodies against the Admin API of an embedded-mode gateway.

use super::{call, id};
use crate::support::jwt::{self, SigningKey};
use crate::support::wait::away_from_minute_end;
use crate::support::{Gateway, Upstream, request};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn walkthrough_1_load_balancing_with_key_auth_over_the_admin_api() {
    let replica_1 = Upstream::start_replica("replica-1").await;
    let replica_2 = Upstream::start_replica("replica-2").await;
    // Only a [server] table: the bundled plugins are there by name.
    crate::support::plugins::built();
    let gw = Gateway::builder("").server("database = \"embedded\"").start().await;

    let url = format!("http://localhost:{}", replica_1.port);
    let service = id(&call(&gw, "POST", "/services/", &format!("name=moesif-service&url={url}")).await, 201);
    let root = call(&gw, "POST", "/routes", &format!("paths[]=/&service.id={service}")).await;
    assert_eq!(root.json()["service"]["id"], service.as_str());
    let resp = request(gw.port, "GET", "/", &[], b"").await;
    assert_eq!((resp.status, resp.text().as_str()), (200, "Hello from my service"));
    assert!(resp.header("via").is_some(), "gateway headers added");

    let profile = id(&call(&gw, "POST", "/routes", &format!("paths[]=/profile&service.id={service}")).await, 201);
    let patched = call(&gw, "PATCH", &format!("/routes/{profile}"), "strip_path=false").await;
    assert_eq!((patched.status, patched.json()["strip_path"].as_bool()), (200, Some(false)));
    let resp = request(gw.port, "GET", "/profile", &[], b"").await;
    assert_eq!((resp.status, resp.header("x-upstream")), (401, Some("replica-1")), "the upstream's own 401");

    assert_eq!(call(&gw, "POST", &format!("/routes/{profile}/plugins"), "name=key-auth").await.status, 201);
    let resp = request(gw.port, "GET", "/profile", &[], b"").await;
    assert_eq!((resp.status, resp.json()), (401, serde_json::json!({"message": "No API key found in request"})));

    let consumer = id(&call(&gw, "POST", "/consumers", "username=moesif").await, 201);
    let credential = call(&gw, "POST", "/consumers/moesif/key-auth", "").await;
    assert_eq!(credential.status, 201, "{}", credential.text());
    let key = credential.json()["key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 32, "a generated key");
    let resp = request(gw.port, "GET", "/profile", &[("apikey", &key)], b"").await;
    assert_eq!((resp.status, resp.json()["id"].as_str()), (200, Some(consumer.as_str())));

    let upstream = id(&call(&gw, "POST", "/upstreams", "name=localhost").await, 201);
    for r in [&replica_1, &replica_2] {
        let (path, body) = (format!("/upstreams/{upstream}/targets"), format!("target=localhost:{}", r.port));
        assert_eq!(call(&gw, "POST", &path, &body).await.status, 201);
    }
    let mut served = Vec::new();
    for _ in 0..4 {
        let resp = request(gw.port, "GET", "/profile", &[("apikey", &key)], b"").await;
        assert_eq!(resp.status, 200);
        served.push(resp.header("x-upstream").unwrap().to_string());
    }
    assert!(served.windows(2).all(|w| w[0] != w[1]), "balanced over both replicas: {served:?}");

    drop(replica_2);
    for _ in 0..6 {
        let resp = request(gw.port, "GET", "/", &[], b"").await;
        assert_eq!((resp.status, resp.header("x-upstream")), (200, Some("replica-1")), "retried on the live replica");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn walkthrough_2_rate_limiting_api_keys_and_weighted_upstreams_over_the_admin_api() {
    away_from_minute_end(Duration::from_secs(15)).await;
    let up = Upstream::start("user-service").await;
    let gw = super::embedded().await;

    let service = id(&call(&gw, "POST", "/services", &format!("name=user-service&url={}", up.url())).await, 201);
    let route = call(
        &gw,
        "POST",
        "/services/user-service/routes",
        "name=user-route&paths[]=/api/users&methods[]=GET&methods[]=POST",
    )
    .await;
    assert_eq!(route.status, 201, "{}", route.text());
    assert_eq!(route.json()["methods"], serde_json::json!(["GET", "POST"]));
    assert_eq!(route.json()["service"]["id"], service.as_str());
    let limit =
        call(&gw, "POST", "/services/user-service/plugins", "name=rate-limiting&config.minute=100&config.policy=local")
            .await;
    assert_eq!((limit.status, limit.json()["config"]["minute"].as_u64()), (201, Some(100)), "{}", limit.text());
    let limit = limit.json()["id"].as_str().unwrap().to_string();

    let mut statuses = Vec::new();
    for _ in 0..110 {
        statuses.push(request(gw.port, "GET", "/api/users", &[], b"").await.status);
    }
    assert!(statuses[..100].iter().all(|s| *s == 200) && statuses[100..].iter().all(|s| *s == 429), "{statuses:?}");
    let refused = request(gw.port, "GET", "/api/users", &[], b"").await;
    assert_eq!(refused.json(), serde_json::json!({"message": "API rate limit exceeded"}));

    assert_eq!(call(&gw, "POST", "/consumers", "username=apiuser").await.status, 201);
    let key = call(&gw, "POST", "/consumers/apiuser/key-auth", "key=my-api-key-12345").await;
    assert_eq!((key.status, key.json()["key"].as_str()), (201, Some("my-api-key-12345")));
    assert_eq!(call(&gw, "POST", "/routes/user-route/plugins", "name=key-auth").await.status, 201);
    assert_eq!(request(gw.port, "GET", "/api/users", &[], b"").await.status, 401);
    let with_key = [("apikey", "my-api-key-12345")];
    assert_eq!(request(gw.port, "GET", "/api/users", &with_key, b"").await.status, 200, "counted per consumer");

    assert_eq!(call(&gw, "POST", "/consumers", "username=testuser").await.status, 201);
    let jwt = call(&gw, "POST", "/consumers/testuser/jwt", "key=myapikey&secret=mysecret").await;
    assert_eq!((jwt.status, jwt.json()["algorithm"].as_str()), (201, Some("HS256")), "{}", jwt.text());
    assert_eq!(call(&gw, "POST", "/services/user-service/plugins", "name=jwt").await.status, 201);
    // HS256 with {"iss":"myapikey","exp":...} signed with "mysecret", as the walkthrough makes it.
    let secret = SigningKey::Secret(b"mysecret".to_vec());
    let token = jwt::token("HS256", &secret, serde_json::json!({"iss": "myapikey", "exp": jwt::now_plus(300)}));
    let bearer = format!("Bearer {token}");
    // key-auth is still on the route, and Kong's auth plugins combine as AND: both are needed.
    let both = [("authorization", bearer.as_str()), with_key[0]];
    let resp = request(gw.port, "GET", "/api/users", &both, b"").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let no_token = request(gw.port, "GET", "/api/users", &with_key, b"").await;
    assert_eq!((no_token.status, no_token.json()["message"].as_str()), (401, Some("Unauthorized")), "jwt's 401");
    let wrong = jwt::token("HS256", &SigningKey::Secret(b"guess".to_vec()), serde_json::json!({"iss": "myapikey"}));
    let forged =
        request(gw.port, "GET", "/api/users", &[("authorization", &format!("Bearer {wrong}")), with_key[0]], b"").await;
    assert_eq!((forged.status, forged.json()["message"].as_str()), (401, Some("Invalid signature")));
    // Without key-auth on the route, the token alone is enough: the walkthrough's own curl.
    let key_auth = call(&gw, "GET", "/routes/user-route/plugins", "").await.json()["data"][0]["id"].clone();
    let key_auth = key_auth.as_str().unwrap().to_string();
    assert_eq!(call(&gw, "DELETE", &format!("/plugins/{key_auth}"), "").await.status, 204);
    let resp = request(gw.port, "GET", "/api/users", &[("authorization", bearer.as_str())], b"").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(request(gw.port, "GET", "/api/users", &[], b"").await.status, 401);
    let with_key = [("authorization", bearer.as_str())];

    let replicas = [
        Upstream::start("user-service-1").await,
        Upstream::start("user-service-2").await,
        Upstream::start("user-service-3").await,
    ];
    assert_eq!(call(&gw, "POST", "/upstreams", "name=user-service-upstream").await.status, 201);
    for (r, weight) in replicas.iter().zip([100, 100, 50]) {
        let body = format!("target={}&weight={weight}", r.addr());
        let target = call(&gw, "POST", "/upstreams/user-service-upstream/targets", &body).await;
        assert_eq!((target.status, target.json()["weight"].as_u64()), (201, Some(weight)));
    }
    let patched = call(&gw, "PATCH", "/services/user-service", "host=user-service-upstream").await;
    assert_eq!((patched.status, patched.json()["host"].as_str()), (200, Some("user-service-upstream")));
    // Room for the split: raise the limit (a PATCH merges config field by field).
    let raised = call(&gw, "PATCH", &format!("/plugins/{limit}"), "config.minute=1000").await;
    assert_eq!(raised.json()["config"]["minute"].as_u64(), Some(1000));
    assert_eq!(raised.json()["config"]["policy"].as_str(), Some("local"), "the other fields are kept");

    for _ in 0..250 {
        assert_eq!(request(gw.port, "GET", "/api/users", &with_key, b"").await.status, 200);
    }
    let hits: Vec<usize> = replicas.iter().map(Upstream::hits).collect();
    assert_eq!(hits, [100, 100, 50], "40% / 40% / 20%");
}
