//! The new plugins at each scope at once: cors global, response-transformer on the service,
//! request-transformer on a consumer (after key-auth found it), in one chain.

use super::{get, start};

#[tokio::test(flavor = "multi_thread")]
async fn global_service_and_consumer_scopes() {
    let plugins = r#"
[[plugins]]
name = "cors"
[[plugins]]
name = "response-transformer"
service = "svc"
config = { add = { headers = ["x-service-scoped:1"] } }
[[plugins]]
name = "key-auth"
route = "api"
config = { anonymous = "guest" }
[[plugins]]
name = "request-transformer"
consumer = "alice"
config = { add = { headers = ["x-for-alice:yes"] } }
"#;
    let (gw, _up) = start(plugins).await;
    let (status, echo, resp) = get(&gw, "/", &[("apikey", "k-alice"), ("origin", "https://a.test")]).await;
    assert_eq!(status, 200);
    assert_eq!(echo.unwrap().header("x-for-alice"), Some("yes"), "the consumer's configuration");
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"), "the global one");
    assert_eq!(resp.header("x-service-scoped"), Some("1"), "the service's");
    let (status, echo, resp) = get(&gw, "/", &[]).await;
    let echo = echo.unwrap();
    assert_eq!((status, echo.header("x-consumer-username")), (200, Some("guest")));
    assert_eq!(echo.header("x-for-alice"), None, "not alice: not her configuration");
    assert_eq!(resp.header("x-service-scoped"), Some("1"));
}
