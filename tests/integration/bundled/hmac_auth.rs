//! hmac-auth: requests signed here with the credential's secret, Kong's signing string and
//! answers, clock skew, enforced headers, algorithms and the body digest.

use super::{get, on_route, start_with};
use crate::support::jwt::now_plus;
use crate::support::request;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::hash::{MessageDigest, hash};
use openssl::pkey::PKey;
use openssl::sign::Signer;

const FRANK: &str = "[[consumers]]\nusername = \"frank\"\n[[consumers.hmacauth_credentials]]\nusername = \"frank-hmac\"\nsecret = \"s3cr3t\"\n";

/// An RFC 9110 date (`Sun, 06 Nov 1994 08:49:37 GMT`) for Unix time `secs`.
fn http_date(secs: i64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64))
}

fn mac(algorithm: &str, secret: &str, text: &str) -> String {
    let md = match algorithm {
        "hmac-sha1" => MessageDigest::sha1(),
        "hmac-sha384" => MessageDigest::sha384(),
        "hmac-sha512" => MessageDigest::sha512(),
        _ => MessageDigest::sha256(),
    };
    let mut signer = Signer::new(md, &PKey::hmac(secret.as_bytes()).unwrap()).unwrap();
    STANDARD.encode(signer.sign_oneshot_to_vec(text.as_bytes()).unwrap())
}

fn authorization(user: &str, algorithm: &str, headers: &str, signature: &str) -> String {
    format!(r#"hmac username="{user}", algorithm="{algorithm}", headers="{headers}", signature="{signature}""#)
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_requests_and_kong_answers() {
    let (gw, up) = start_with(&on_route("hmac-auth", ""), "", FRANK).await;
    let date = http_date(now_plus(0));
    let text = format!("x-date: {date}\n@request-target: get /orders?id=7\nrequest-line: GET /orders?id=7 HTTP/1.1");
    // `request-line` as a header name signs the line itself, without a name.
    let text = text.replace("request-line: GET", "GET");
    for algorithm in ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"] {
        let auth = authorization(
            "frank-hmac",
            algorithm,
            "x-date @request-target request-line",
            &mac(algorithm, "s3cr3t", &text),
        );
        let (status, echo, resp) = get(&gw, "/orders?id=7", &[("x-date", &date), ("authorization", &auth)]).await;
        assert_eq!(status, 200, "{algorithm}: {}", resp.text());
        let echo = echo.unwrap();
        assert_eq!(echo.header("x-consumer-username"), Some("frank"));
        assert_eq!(echo.header("x-credential-identifier"), Some("frank-hmac"));
    }

    let signed = |headers: &str, text: &str| {
        authorization("frank-hmac", "hmac-sha256", headers, &mac("hmac-sha256", "s3cr3t", text))
    };
    let good = signed("date", &format!("date: {date}"));
    let cases = [
        (vec![], "Unauthorized"),
        (
            vec![("authorization", good.clone())],
            "HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication",
        ),
        (
            vec![("date", http_date(now_plus(-400))), ("authorization", good.clone())],
            "HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication",
        ),
        (vec![("date", date.clone()), ("authorization", "hmac nonsense".into())], "HMAC signature cannot be verified"),
        (
            vec![("date", date.clone()), ("authorization", good.replace("frank-hmac", "nobody"))],
            "HMAC signature cannot be verified",
        ),
        (
            vec![("date", date.clone()), ("authorization", good.replace("hmac-sha256", "hmac-md5"))],
            "HMAC signature cannot be verified",
        ),
        (
            vec![("date", date.clone()), ("authorization", signed("date", "date: yesterday"))],
            "HMAC signature does not match",
        ),
    ];
    for (headers, message) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, resp) = get(&gw, "/", &h).await;
        assert_eq!((status, resp.json()["message"].as_str()), (401, Some(message)), "{h:?}");
        assert_eq!(resp.header("www-authenticate"), Some("hmac"));
    }
    let (status, _, _) = get(&gw, "/", &[("date", &date), ("proxy-authorization", &good)]).await;
    assert_eq!(status, 200, "Proxy-Authorization works too");
    assert_eq!(up.hits(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn enforced_headers_algorithms_body_digest_and_hiding() {
    let config = r#"enforce_headers = ["date", "@request-target"], algorithms = ["hmac-sha512"], validate_request_body = true, hide_credentials = true, realm = "orders""#;
    let (gw, _up) = start_with(&on_route("hmac-auth", config), "", FRANK).await;
    let date = http_date(now_plus(0));
    let text = format!("date: {date}\n@request-target: post /orders");
    let auth = authorization("frank-hmac", "hmac-sha512", "date @request-target", &mac("hmac-sha512", "s3cr3t", &text));
    let body = br#"{"item":1}"#;
    let digest = format!("SHA-256={}", STANDARD.encode(hash(MessageDigest::sha256(), body).unwrap()));
    let post = |headers: Vec<(&'static str, String)>, body: &'static [u8]| {
        let port = gw.port;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            request(port, "POST", "/orders", &h, body).await
        }
    };
    let base = vec![("date", date.clone()), ("authorization", auth.clone())];
    let ok = post([base.clone(), vec![("digest", digest.clone())]].concat(), body).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(crate::support::Echo::from(&ok).header("authorization"), None, "hidden");
    let bad_digest = post([base.clone(), vec![("digest", digest.clone())]].concat(), br#"{"item":2}"#).await;
    assert_eq!(
        (bad_digest.status, bad_digest.json()["message"].as_str()),
        (401, Some("HMAC signature does not match"))
    );
    assert_eq!(bad_digest.header("www-authenticate"), Some("hmac realm=\"orders\""));
    assert_eq!(post(base.clone(), body).await.status, 401, "a body without a Digest");
    assert_eq!(post(base.clone(), b"").await.status, 200, "no body, no Digest");
    let date_only =
        authorization("frank-hmac", "hmac-sha512", "date", &mac("hmac-sha512", "s3cr3t", &format!("date: {date}")));
    let resp = post(vec![("date", date.clone()), ("authorization", date_only)], b"").await;
    assert_eq!(
        (resp.status, resp.json()["message"].as_str()),
        (401, Some("HMAC signature cannot be verified")),
        "enforced"
    );
    let sha256 =
        authorization("frank-hmac", "hmac-sha256", "date @request-target", &mac("hmac-sha256", "s3cr3t", &text));
    assert_eq!(
        post(vec![("date", date.clone()), ("authorization", sha256)], b"").await.status,
        401,
        "not in algorithms"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn clock_skew_and_anonymous() {
    let (gw, _up) = start_with(&on_route("hmac-auth", r#"clock_skew = 10, anonymous = "guest""#), "", FRANK).await;
    let old = http_date(now_plus(-60));
    let auth =
        authorization("frank-hmac", "hmac-sha256", "date", &mac("hmac-sha256", "s3cr3t", &format!("date: {old}")));
    let (status, echo, _) = get(&gw, "/", &[("date", &old), ("authorization", &auth)]).await;
    let echo = echo.unwrap();
    assert_eq!(status, 200, "a minute is past a 10 s skew: the anonymous consumer");
    assert_eq!(
        (echo.header("x-consumer-username"), echo.header("x-anonymous-consumer")),
        (Some("guest"), Some("true"))
    );
    let now = http_date(now_plus(0));
    let auth =
        authorization("frank-hmac", "hmac-sha256", "date", &mac("hmac-sha256", "s3cr3t", &format!("date: {now}")));
    let (_, echo, _) = get(&gw, "/", &[("date", &now), ("authorization", &auth)]).await;
    assert_eq!(echo.unwrap().header("x-consumer-username"), Some("frank"));
}
