//! Bad admin requests get Kong's error shapes, name the field, and change nothing.

use super::{call, embedded, id};
use crate::support::{Gateway, Response, request};
use serde_json::json;

fn assert_error(resp: &Response, status: u16, code: u64, field: &str) {
    assert_eq!(resp.status, status, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert!(body["fields"].get(field).is_some(), "field {field:?} named: {body}");
}

async fn snapshot_of_entities(gw: &Gateway) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for path in ["/services", "/routes", "/plugins", "/consumers"] {
        all.push(request(gw.admin, "GET", path, &[], b"").await.json());
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_input_is_refused_with_the_field_named_and_nothing_changes() {
    let gw = embedded().await;
    let service = id(&call(&gw, "POST", "/services", "name=a&host=127.0.0.1&port=1").await, 201);
    assert_eq!(call(&gw, "POST", "/routes", "name=r&paths[]=/a&service.name=a").await.status, 201);
    let before = snapshot_of_entities(&gw).await;

    assert_error(&call(&gw, "POST", "/services", "name=b&host=h&colour=red").await, 400, 2, "colour");
    assert_error(&call(&gw, "POST", "/services", "name=b&host=h&port=eighty").await, 400, 2, "port");
    assert_error(&call(&gw, "POST", "/services", "name=b").await, 400, 2, "host");
    assert_error(&call(&gw, "POST", "/services", "name=b&url=not-a-url").await, 400, 2, "url");
    assert_error(&call(&gw, "POST", "/services", "name=a&host=h").await, 409, 5, "name");
    let missing = "6a1e7d0e-1f7c-4c11-9b1c-0c7d2b9c1a02";
    assert_error(&call(&gw, "POST", "/routes", &format!("paths[]=/x&service.id={missing}")).await, 400, 4, "service");
    assert_error(&call(&gw, "DELETE", &format!("/services/{service}"), "").await, 400, 4, "@referenced_by");
    assert_error(&call(&gw, "POST", "/plugins", "name=no-such-plugin").await, 400, 2, "name");
    let bad_config = call(&gw, "POST", "/plugins", "name=rate-limiting&config.minute=lots").await;
    assert_eq!(bad_config.status, 400, "{}", bad_config.text());
    assert!(
        bad_config.json()["fields"].as_object().unwrap().keys().any(|k| k.starts_with("config")),
        "{}",
        bad_config.text()
    );
    let unknown_option = call(&gw, "POST", "/plugins", "name=key-auth&config.colour=red").await;
    assert_error(&unknown_option, 400, 2, "config.colour");
    // Valid on its own, but the whole configuration would not compile: refused as a whole.
    let bad_regex = call(&gw, "POST", "/routes", "paths[]=~/(unclosed&service.name=a").await;
    assert_error(&bad_regex, 400, 2, "@entity");
    assert!(bad_regex.text().contains("regex"), "{}", bad_regex.text());
    assert_error(&call(&gw, "GET", "/services?size=0", "").await, 400, 2, "size");

    let bad_json = request(gw.admin, "POST", "/services", &[("content-type", "application/json")], b"{\"name\":").await;
    assert_eq!(bad_json.status, 400);
    assert!(bad_json.json()["message"].as_str().unwrap().contains("JSON"));

    assert_eq!(
        request(gw.admin, "GET", "/services/nope", &[], b"").await.json(),
        json!({"code": 6, "name": "not found", "message": "Not found"})
    );
    assert_eq!(call(&gw, "PATCH", "/services/nope", "retries=1").await.status, 404);
    assert_eq!(call(&gw, "POST", "/consumers/nobody/key-auth", "").await.status, 404);
    assert_eq!(request(gw.admin, "GET", "/no-such-thing", &[], b"").await.status, 404);
    assert_eq!(call(&gw, "POST", "/services/a", "").await.status, 405);

    assert_eq!(snapshot_of_entities(&gw).await, before, "no refused write left a trace");
    let routed = request(gw.port, "GET", "/a", &[], b"").await;
    assert_eq!(routed.status, 502, "the route still exists (its upstream does not answer)");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_token_is_required_when_set_and_an_open_bind_needs_one() {
    let gw = Gateway::builder("").embedded().server("admin_token = \"s3cret\"").start().await;
    assert_eq!(request(gw.admin, "GET", "/services", &[], b"").await.status, 401);
    assert_eq!(request(gw.admin, "GET", "/services", &[("authorization", "Bearer wrong")], b"").await.status, 401);
    let bearer = request(gw.admin, "GET", "/services", &[("authorization", "Bearer s3cret")], b"").await;
    assert_eq!(bearer.status, 200);
    let kong = [("kong-admin-token", "s3cret"), ("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(request(gw.admin, "POST", "/consumers", &kong, b"username=x").await.status, 201);
    gw.wait_for_log("path=/consumers status=201", 1).await;
    let log = gw.stderr();
    assert!(log.contains("auth=\"token\"") && log.contains("auth=\"rejected\""), "audited:\n{log}");

    // Not loopback and no token: refused at start, with the reason and the fix.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "[server]\nadmin_listen = \"0.0.0.0:8001\"\n").unwrap();
    let (code, _, stderr) = crate::support::gateway::run_cli(&["run", "-c", config.to_str().unwrap()], dir.path());
    assert_eq!(code, 1);
    assert!(stderr.contains("admin_token") && stderr.contains("admin_allow_open_bind"), "{stderr}");
    std::fs::write(&config, "[server]\nadmin_listen = \"0.0.0.0:8001\"\nadmin_token = \"t\"\n").unwrap();
    let (code, _, stderr) = crate::support::gateway::run_cli(&["check", "-c", config.to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leaked_admin_token_is_rotated_with_a_reload() {
    let gw = Gateway::builder("").embedded().server("admin_token = \"leaked\"").start().await;
    let with = |token: &'static str| [("authorization", format!("Bearer {token}"))];
    let services = async |token| {
        let [(name, value)] = with(token);
        request(gw.admin, "GET", "/services", &[(name, value.as_str())], b"").await.status
    };
    assert_eq!(services("leaked").await, 200);
    gw.edit_server(|server| server.replace("admin_token = \"leaked\"", "admin_token = \"rotated\""));
    assert!(gw.reload(&crate::support::Config::new()).await, "applied");
    assert_eq!(services("leaked").await, 401, "the old token no longer opens the Admin API");
    assert_eq!(services("rotated").await, 200);
    assert!(!gw.stderr().contains("admin_token changed"), "no restart needed:\n{}", gw.stderr());
}
