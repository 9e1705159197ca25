//! jwt: tokens made here for every algorithm, with keys generated here; Kong's answers for every
//! way a token can be wrong; the places a token is read from; and jwt with acl and `anonymous`.

use super::{assert_refused, get, on_route, start_with};
use crate::support::jwt::{SigningKey, now_plus, token, token_with_header};
use crate::support::request;
use serde_json::json;

const ALGORITHMS: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA",
];

/// Consumer `carol` with one jwt credential per key given (`key` is `k-<alg>`).
fn carol(keys: &[(&str, &SigningKey)]) -> String {
    let mut toml = "[[consumers]]\nusername = \"carol\"\n[[consumers.acls]]\ngroup = \"jwt-users\"\n".to_string();
    for (alg, key) in keys {
        toml.push_str(&format!(
            "[[consumers.jwt_secrets]]\nkey = \"k-{alg}\"\nalgorithm = \"{alg}\"\n{}\n",
            key.credential_fields()
        ));
    }
    toml
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_algorithm_verifies_and_tampering_does_not() {
    let keys: Vec<SigningKey> = ALGORITHMS.iter().map(|a| SigningKey::generate(a)).collect();
    let pairs: Vec<(&str, &SigningKey)> = ALGORITHMS.iter().copied().zip(keys.iter()).collect();
    let (gw, up) = start_with(&on_route("jwt", ""), "", &carol(&pairs)).await;
    for (alg, key) in &pairs {
        let t = token(alg, key, json!({"iss": format!("k-{alg}"), "exp": now_plus(60)}));
        let (status, echo, resp) = get(&gw, "/", &[("authorization", &bearer(&t))]).await;
        assert_eq!(status, 200, "{alg}: {}", resp.text());
        let echo = echo.unwrap();
        assert_eq!(echo.header("x-consumer-username"), Some("carol"), "{alg}");
        assert_eq!(echo.header("x-credential-identifier"), Some(format!("k-{alg}").as_str()), "{alg}");
        // A second time: an asymmetric signature is remembered, and still only for this token.
        assert_eq!(get(&gw, "/", &[("authorization", &bearer(&t))]).await.0, 200, "{alg} again");

        let (head, rest) = t.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged_claims = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            json!({"iss": format!("k-{alg}"), "exp": now_plus(6000)}).to_string(),
        );
        let tampered = format!("{head}.{forged_claims}.{signature}");
        let (status, _, resp) = get(&gw, "/", &[("authorization", &bearer(&tampered))]).await;
        assert_eq!((status, resp.json()), (401, json!({"message": "Invalid signature"})), "{alg} tampered");
        let other = SigningKey::generate(alg);
        let foreign = token(alg, &other, json!({"iss": format!("k-{alg}")}));
        let (status, _, resp) = get(&gw, "/", &[("authorization", &bearer(&foreign))]).await;
        assert_eq!((status, resp.json()["message"].as_str()), (401, Some("Invalid signature")), "{alg} other key");
    }
    assert_eq!(up.hits(), 2 * ALGORITHMS.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn kong_answers_for_each_bad_token() {
    let hs = SigningKey::generate("HS256");
    let config = r#"claims_to_verify = ["exp", "nbf"], cookie_names = ["session"], realm = "api""#;
    let (gw, up) = start_with(&on_route("jwt", config), "", &carol(&[("HS256", &hs)])).await;
    let good = token("HS256", &hs, json!({"iss": "k-HS256", "exp": now_plus(60), "nbf": now_plus(-5)}));

    let (status, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!((status, resp.json()), (401, json!({"message": "Unauthorized"})), "{}", gw.stderr());
    assert_eq!(resp.header("www-authenticate"), Some("Bearer realm=\"api\""));
    let invalid = "Bearer realm=\"api\", error=\"invalid_token\"";

    let cases: Vec<(String, serde_json::Value)> = vec![
        ("not-a-token".into(), json!({"message": "Bad token; invalid JSON"})),
        (
            token_with_header("HS256", &hs, json!({"alg": "none"}), json!({"iss": "k-HS256"})),
            json!({"message": "Bad token; invalid alg"}),
        ),
        (token("HS256", &hs, json!({"sub": "x"})), json!({"message": "No mandatory 'iss' in claims"})),
        (token("HS256", &hs, json!({"iss": ""})), json!({"message": "Invalid 'iss' in claims"})),
        (token("HS256", &hs, json!({"iss": "nobody"})), json!({"message": "No credentials found for given 'iss'"})),
        (token("HS512", &hs, json!({"iss": "k-HS256"})), json!({"message": "Invalid algorithm"})),
        (
            token("HS256", &hs, json!({"iss": "k-HS256", "exp": now_plus(-1), "nbf": now_plus(-5)})),
            json!({"exp": "token expired"}),
        ),
        (
            token("HS256", &hs, json!({"iss": "k-HS256", "exp": now_plus(60), "nbf": now_plus(60)})),
            json!({"nbf": "token not valid yet"}),
        ),
        (token("HS256", &hs, json!({"iss": "k-HS256"})), json!({"exp": "must be a number", "nbf": "must be a number"})),
        // Kong checks the signature first: an expired token signed with another key is told so.
        (
            token("HS256", &SigningKey::generate("HS256"), json!({"iss": "k-HS256", "exp": now_plus(-1)})),
            json!({"message": "Invalid signature"}),
        ),
    ];
    for (t, body) in cases {
        let (status, _, resp) = get(&gw, "/", &[("authorization", &bearer(&t))]).await;
        assert_eq!((status, resp.json()), (401, body.clone()), "{t}");
        assert_eq!(resp.header("www-authenticate"), Some(invalid), "{body}");
    }

    // The places a token is read from; one token in two places is one token.
    for (path, headers) in [
        (format!("/?jwt={good}"), vec![]),
        ("/".to_string(), vec![("cookie".to_string(), format!("a=1; session={good}"))]),
        (format!("/?jwt={good}"), vec![("authorization".to_string(), bearer(&good))]),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, _, resp) = get(&gw, &path, &headers).await;
        assert_eq!(status, 200, "{path} {headers:?}: {}", resp.text());
    }
    let other = token("HS256", &hs, json!({"iss": "k-HS256", "exp": now_plus(61), "nbf": now_plus(-5)}));
    let (status, _, resp) = get(&gw, &format!("/?jwt={other}"), &[("authorization", &bearer(&good))]).await;
    assert_eq!((status, resp.json()["message"].as_str()), (401, Some("Multiple tokens provided")));

    // A token that verified is kept decoded, but its claims are checked on every request.
    let brief = token("HS256", &hs, json!({"iss": "k-HS256", "exp": now_plus(1), "nbf": now_plus(-5)}));
    assert_eq!(get(&gw, "/", &[("authorization", &bearer(&brief))]).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _, resp) = get(&gw, "/", &[("authorization", &bearer(&brief))]).await;
    assert_eq!((status, resp.json()), (401, json!({"exp": "token expired"})));
    assert_eq!(up.hits(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn key_claim_base64_secret_and_maximum_expiration() {
    let hs = SigningKey::Secret(b"raw secret bytes".to_vec());
    // A credential whose secret is stored base64; tokens are signed with the decoded bytes.
    let extra = format!(
        "{}[[consumers.jwt_secrets]]\nkey = \"b64\"\nsecret = \"cmF3IHNlY3JldCBieXRlcw==\"\n",
        carol(&[("HS256", &hs)])
    );
    let config = r#"key_claim_name = "kid", secret_is_base64 = true, claims_to_verify = ["exp"], maximum_expiration = 600, header_names = ["x-token"], run_on_preflight = false"#;
    let (gw, _up) = start_with(&on_route("jwt", config), "", &extra).await;
    let in_header = token_with_header("HS256", &hs, json!({"kid": "b64"}), json!({"exp": now_plus(60)}));
    let (status, echo, resp) = get(&gw, "/", &[("x-token", &bearer(&in_header))]).await;
    assert_eq!(status, 200, "the key claim is read from the header too: {}", resp.text());
    assert_eq!(echo.unwrap().header("x-credential-identifier"), Some("b64"));
    let too_long = token_with_header("HS256", &hs, json!({"kid": "b64"}), json!({"exp": now_plus(6000)}));
    let (status, _, resp) = get(&gw, "/", &[("x-token", &bearer(&too_long))]).await;
    assert_eq!((status, resp.json()), (401, json!({"exp": "exceeds maximum allowed expiration"})));
    // `k-HS256`'s secret is not base64: read as base64 it is no key.
    let plain = token_with_header("HS256", &hs, json!({"kid": "k-HS256"}), json!({"exp": now_plus(60)}));
    let (status, _, resp) = get(&gw, "/", &[("x-token", &bearer(&plain))]).await;
    assert_eq!((status, resp.json()["message"].as_str()), (401, Some("Invalid key/secret")));
    assert_eq!(get(&gw, "/", &[("authorization", &bearer(&in_header))]).await.0, 401, "only x-token is read");
    let preflight = request(gw.port, "OPTIONS", "/", &[], b"").await;
    assert_eq!(preflight.status, 200, "run_on_preflight = false lets OPTIONS through");
}

/// What jwt leaves for later plugins: the consumer, and the token as the shared value
/// `authenticated_jwt_token` (read here by request-transformer's template).
#[tokio::test(flavor = "multi_thread")]
async fn later_plugins_see_the_consumer_and_the_token() {
    let hs = SigningKey::generate("HS256");
    let plugins = format!(
        "{}{}",
        on_route("jwt", ""),
        on_route("request-transformer", r#"add = { headers = ["x-jwt:$(shared.authenticated_jwt_token or 'none')"] }"#)
    );
    let (gw, _up) = start_with(&plugins, "", &carol(&[("HS256", &hs)])).await;
    let t = token("HS256", &hs, json!({"iss": "k-HS256"}));
    for round in ["first", "kept decoded"] {
        let spoofed = [("authorization", bearer(&t)), ("x-credential-identifier", "spoofed".into())];
        let headers: Vec<(&str, &str)> = spoofed.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, echo, resp) = get(&gw, "/", &headers).await;
        assert_eq!(status, 200, "{round}: {}", resp.text());
        let echo = echo.unwrap();
        assert_eq!(echo.header("x-jwt"), Some(t.as_str()), "{round}");
        assert_eq!(echo.header("x-consumer-username"), Some("carol"), "{round}");
        assert_eq!(echo.header("x-credential-identifier"), Some("k-HS256"), "{round}: the key, not the client's");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_acl_after_it_and_an_anonymous_fallback() {
    let hs = SigningKey::generate("HS256");
    let plugins =
        format!("{}{}", on_route("jwt", r#"anonymous = "guest""#), on_route("acl", r#"allow = ["jwt-users"]"#));
    let (gw, _up) = start_with(&plugins, "", &carol(&[("HS256", &hs)])).await;
    let t = token("HS256", &hs, json!({"iss": "k-HS256"}));
    let (status, echo, _) = get(&gw, "/", &[("authorization", &bearer(&t))]).await;
    assert_eq!(status, 200);
    assert_eq!(echo.unwrap().header("x-consumer-groups"), Some("jwt-users"));
    // A bad token falls back to guest, whom acl then refuses.
    let (status, _, resp) = get(&gw, "/", &[("authorization", "Bearer x.y.z")]).await;
    assert_eq!((status, resp.json()["message"].as_str()), (403, Some("You cannot consume this service")));
}

#[test]
fn bad_settings_and_credentials_are_refused() {
    assert_refused(&on_route("jwt", "maximum_expiration = 60"), "must contain \"exp\"");
    assert_refused(&on_route("jwt", r#"claims_to_verify = ["iat"]"#), "config.claims_to_verify");
    assert_refused(&on_route("jwt", r#"anonymous = "nobody""#), "config.anonymous");
    let cfg = super::entities_on("http://127.0.0.1:9").raw(
        "[[consumers]]\nusername = \"dave\"\n[[consumers.jwt_secrets]]\nkey = \"d\"\nalgorithm = \"RS256\"\nrsa_public_key = \"not a key\"\n",
    );
    let (code, out) = cfg.check();
    assert_eq!(code, 1);
    assert!(out.contains("jwt_secrets[0].rsa_public_key: not a PEM public key"), "{out}");
}
