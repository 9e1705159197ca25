//! The Admin API as a client calls it: form and JSON bodies, entity ids, an embedded-mode gateway.

use super::{Gateway, Response, request};

/// Sends a form-encoded body, as `curl --data` does.
pub async fn call(gw: &Gateway, method: &str, path: &str, form: &str) -> Response {
    request(gw.admin, method, path, &[("content-type", "application/x-www-form-urlencoded")], form.as_bytes()).await
}

/// Sends a JSON body.
pub async fn call_json(gw: &Gateway, method: &str, path: &str, body: serde_json::Value) -> Response {
    request(gw.admin, method, path, &[("content-type", "application/json")], body.to_string().as_bytes()).await
}

/// The `id` of an entity answer, checking its status first.
pub fn id(resp: &Response, status: u16) -> String {
    assert_eq!(resp.status, status, "{}", resp.text());
    resp.json()["id"].as_str().expect("the entity has an id").to_string()
}

/// A gateway keeping its entities in the embedded database, with an empty configuration.
pub async fn embedded() -> Gateway {
    Gateway::builder("").embedded().start().await
}
