//! basic-auth: Kong's answers and headers, both credential headers, hide_credentials, anonymous.

use super::{get, on_route, start_with};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const ERIN: &str = "[[consumers]]\nusername = \"erin\"\n[[consumers.basicauth_credentials]]\nusername = \"erin-login\"\npassword = \"open sesame\"\n";

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn kong_answers_and_headers() {
    let (gw, up) = start_with(&on_route("basic-auth", ""), "", ERIN).await;
    let (status, _, resp) = get(&gw, "/", &[]).await;
    assert_eq!((status, resp.json()), (401, serde_json::json!({"message": "Unauthorized"})));
    assert_eq!(resp.header("www-authenticate"), Some("Basic realm=\"service\""));
    for value in [basic("erin-login", "wrong"), basic("nobody", "open sesame"), "Basic !!".into(), "Bearer x".into()] {
        let (status, _, resp) = get(&gw, "/", &[("authorization", &value)]).await;
        assert_eq!((status, resp.json()["message"].as_str()), (401, Some("Unauthorized")), "{value}");
    }
    assert_eq!(up.hits(), 0);

    let good = basic("erin-login", "open sesame");
    let (status, echo, _) = get(&gw, "/", &[("authorization", &good)]).await;
    let echo = echo.unwrap();
    assert_eq!(status, 200);
    assert_eq!(echo.header("x-consumer-username"), Some("erin"));
    assert_eq!(echo.header("x-credential-identifier"), Some("erin-login"), "the user name, as Kong sends it");
    assert_eq!(echo.header("authorization"), Some(good.as_str()), "kept without hide_credentials");
    // Proxy-Authorization counts when its user exists, else Authorization does.
    let (status, _, _) =
        get(&gw, "/", &[("proxy-authorization", &basic("nobody", "x")), ("authorization", &good)]).await;
    assert_eq!(status, 200);
    let (status, _, _) =
        get(&gw, "/", &[("proxy-authorization", &basic("erin-login", "bad")), ("authorization", &good)]).await;
    assert_eq!(status, 401, "a known proxy user with a wrong password is refused, as in Kong");
}

#[tokio::test(flavor = "multi_thread")]
async fn hide_credentials_realm_and_anonymous() {
    let config = r#"hide_credentials = true, realm = "admin", anonymous = "guest""#;
    let (gw, _up) = start_with(&on_route("basic-auth", config), "", ERIN).await;
    let (status, echo, _) = get(&gw, "/", &[("authorization", &basic("erin-login", "open sesame"))]).await;
    let echo = echo.unwrap();
    assert_eq!((status, echo.header("authorization")), (200, None));
    let (status, echo, _) = get(&gw, "/", &[("authorization", &basic("erin-login", "nope"))]).await;
    let echo = echo.unwrap();
    assert_eq!(status, 200);
    assert_eq!(echo.header("x-consumer-username"), Some("guest"));
    assert_eq!(echo.header("x-anonymous-consumer"), Some("true"));
}
