//! The auth plugins' credentials and the new plugins through the Admin API of an embedded-mode
//! gateway: jwt keys checked per field, hmac-auth secrets generated, basic-auth, and plugin
//! configurations sent as Kong's form fields.

use super::{call, embedded, id};
use crate::support::jwt::{SigningKey, public_pem, token};
use crate::support::{Echo, Upstream, request};
use base64::Engine;

#[tokio::test(flavor = "multi_thread")]
async fn credentials_and_plugins_over_the_admin_api() {
    let up = Upstream::start("up").await;
    let gw = embedded().await;
    id(&call(&gw, "POST", "/services", &format!("name=svc&url={}", up.url())).await, 201);
    id(&call(&gw, "POST", "/services/svc/routes", "name=r&paths[]=/").await, 201);
    id(&call(&gw, "POST", "/consumers", "username=gina").await, 201);

    // jwt: an RS256 credential needs a public key of that type; refusals name the field.
    let missing = call(&gw, "POST", "/consumers/gina/jwt", "key=g&algorithm=RS256").await;
    assert_eq!(
        (missing.status, missing.json()["fields"]["rsa_public_key"].is_string()),
        (400, true),
        "{}",
        missing.text()
    );
    let ec = SigningKey::generate("ES256");
    let SigningKey::Private(ec_key) = &ec else { unreachable!() };
    let wrong_type = serde_json::json!({"key": "g", "algorithm": "RS256", "rsa_public_key": public_pem(ec_key)});
    let refused = super::call_json(&gw, "POST", "/consumers/gina/jwt", wrong_type).await;
    assert_eq!(refused.status, 400, "an EC key for RS256: {}", refused.text());
    let unknown = call(&gw, "POST", "/consumers/gina/jwt", "key=g&algorithm=none").await;
    assert!(unknown.json()["fields"]["algorithm"].is_string(), "{}", unknown.text());
    let good = serde_json::json!({"key": "g-es", "algorithm": "ES256", "rsa_public_key": public_pem(ec_key)});
    let es = id(&super::call_json(&gw, "POST", "/consumers/gina/jwt", good).await, 201);

    // hmac-auth: a secret is generated when none is given; user names are unique.
    let hmac = call(&gw, "POST", "/consumers/gina/hmac-auth", "username=gina-hmac").await;
    assert_eq!(hmac.status, 201, "{}", hmac.text());
    assert_eq!(hmac.json()["secret"].as_str().map(str::len), Some(32));
    assert_eq!(call(&gw, "POST", "/consumers/gina/hmac-auth", "username=gina-hmac").await.status, 409);
    let listed = call(&gw, "GET", "/hmac-auths/gina-hmac", "").await;
    assert_eq!((listed.status, listed.json()["username"].as_str()), (200, Some("gina-hmac")));
    id(&call(&gw, "POST", "/consumers/gina/basic-auth", "username=gina-basic&password=pw").await, 201);

    // Plugins configured with Kong's form fields, nested lists included.
    id(&call(&gw, "POST", "/routes/r/plugins", "name=jwt&config.claims_to_verify=exp").await, 201);
    let rt = "name=request-transformer&config.add.headers=x-added:1&config.add.headers=x-other:2&config.remove.querystring=debug";
    let created = call(&gw, "POST", "/routes/r/plugins", rt).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["config"]["add"]["headers"], serde_json::json!(["x-added:1", "x-other:2"]));
    id(
        &call(&gw, "POST", "/routes/r/plugins", "name=cors&config.origins=https://app.test&config.max_age=60").await,
        201,
    );
    id(
        &call(
            &gw,
            "POST",
            "/routes/r/plugins",
            "name=request-size-limiting&config.allowed_payload_size=1&config.size_unit=kilobytes",
        )
        .await,
        201,
    );

    let t = token("ES256", &ec, serde_json::json!({"iss": "g-es", "exp": crate::support::jwt::now_plus(60)}));
    let auth = format!("Bearer {t}");
    let resp =
        request(gw.port, "GET", "/p?debug=1&a=2", &[("authorization", &auth), ("origin", "https://app.test")], b"")
            .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("access-control-allow-origin"), Some("https://app.test"));
    let echo = Echo::from(&resp);
    assert_eq!((echo.header("x-consumer-username"), echo.header("x-added")), (Some("gina"), Some("1")));
    assert_eq!(echo.path, "/p?a=2");
    let big = request(gw.port, "POST", "/", &[("authorization", &auth)], &[b'x'; 2048]).await;
    assert_eq!(big.status, 413);

    // The plugin keeps tokens that verified decoded, but checks them against the credential every
    // time: another key for the credential refuses the same token at once, and so does its deletion.
    let SigningKey::Private(other) = &SigningKey::generate("ES256") else { unreachable!() };
    let rekeyed = super::call_json(
        &gw,
        "PATCH",
        &format!("/consumers/gina/jwt/{es}"),
        serde_json::json!({"rsa_public_key": public_pem(other)}),
    )
    .await;
    assert_eq!(rekeyed.status, 200, "{}", rekeyed.text());
    let resp = request(gw.port, "GET", "/", &[("authorization", &auth)], b"").await;
    assert_eq!((resp.status, resp.json()["message"].as_str()), (401, Some("Invalid signature")));
    assert_eq!(call(&gw, "DELETE", &format!("/consumers/gina/jwt/{es}"), "").await.status, 204);
    let resp = request(gw.port, "GET", "/", &[("authorization", &auth)], b"").await;
    assert_eq!((resp.status, resp.json()["message"].as_str()), (401, Some("No credentials found for given 'iss'")));

    // Swapping jwt for basic-auth takes effect on the next request.
    let plugins = call(&gw, "GET", "/plugins", "").await.json();
    let jwt_id = plugins["data"].as_array().unwrap().iter().find(|p| p["name"] == "jwt").unwrap()["id"].clone();
    assert_eq!(call(&gw, "DELETE", &format!("/plugins/{}", jwt_id.as_str().unwrap()), "").await.status, 204);
    id(&call(&gw, "POST", "/routes/r/plugins", "name=basic-auth").await, 201);
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("gina-basic:pw"));
    assert_eq!(request(gw.port, "GET", "/", &[("authorization", &basic)], b"").await.status, 200);
    assert_eq!(request(gw.port, "GET", "/", &[("authorization", &auth)], b"").await.status, 401);
}
