//! Every endpoint family in Kong's shapes: collections, entities by id and by name, nested forms,
//! pagination, tags, upserts, patches, deletes and their cascades, JSON bodies, and node info.

use super::{call, call_json, embedded, id};
use crate::support::{Upstream, request};
use serde_json::{Value, json};

fn names(resp: &crate::support::Response) -> Vec<String> {
    resp.json()["data"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn services_list_by_pages_and_tags_and_are_found_by_id_or_name() {
    let gw = embedded().await;
    for (i, tags) in ["a", "a,b", "b", "c", ""].iter().enumerate() {
        let tags: String = tags.split(',').filter(|t| !t.is_empty()).map(|t| format!("&tags[]={t}")).collect();
        let created = call(&gw, "POST", "/services", &format!("name=s{i}&host=10.0.0.{i}{tags}")).await;
        assert_eq!(created.status, 201, "{}", created.text());
        assert_eq!(created.json()["port"], 80, "defaults are filled in");
        assert!(created.json()["created_at"].as_i64().unwrap() > 1_700_000_000);
    }
    let mut seen = Vec::new();
    let mut page = request(gw.admin, "GET", "/services?size=2", &[], b"").await;
    loop {
        assert_eq!(page.status, 200);
        assert!(page.json()["data"].as_array().unwrap().len() <= 2);
        seen.extend(names(&page));
        match page.json()["next"].as_str() {
            Some(next) => page = request(gw.admin, "GET", next, &[], b"").await,
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["s0", "s1", "s2", "s3", "s4"], "every service once over the pages");
    let all = request(gw.admin, "GET", "/services/?tags=a,b", &[], b"").await;
    assert_eq!(names(&all), ["s1"], "a,b: both tags");
    let mut any = names(&request(gw.admin, "GET", "/services?tags=a/b", &[], b"").await);
    any.sort();
    assert_eq!(any, ["s0", "s1", "s2"], "a/b: either tag");

    let by_name = request(gw.admin, "GET", "/services/s3", &[], b"").await.json();
    let by_id = request(gw.admin, "GET", &format!("/services/{}", by_name["id"].as_str().unwrap()), &[], b"").await;
    assert_eq!(by_id.json(), by_name);
}

#[tokio::test(flavor = "multi_thread")]
async fn put_upserts_by_name_or_id_and_patch_keeps_other_fields() {
    let gw = embedded().await;
    let created = call(&gw, "PUT", "/services/billing", "host=10.0.0.1&port=8080").await;
    assert_eq!((created.status, created.json()["name"].as_str()), (200, Some("billing")), "{}", created.text());
    let first = created.json();
    let replaced = call(&gw, "PUT", "/services/billing", "host=10.0.0.2").await.json();
    assert_eq!(replaced["id"], first["id"], "same entity");
    assert_eq!(replaced["created_at"], first["created_at"]);
    assert_eq!((replaced["host"].as_str(), replaced["port"].as_u64()), (Some("10.0.0.2"), Some(80)), "replaced whole");

    let uuid = "6a1e7d0e-1f7c-4c11-9b1c-0c7d2b9c1a01";
    let by_id = call(&gw, "PUT", &format!("/services/{uuid}"), "name=orders&host=10.0.0.3").await;
    assert_eq!((by_id.status, by_id.json()["id"].as_str()), (200, Some(uuid)));

    let patched = call(&gw, "PATCH", "/services/orders", "retries=2&tags[]=t").await.json();
    assert_eq!(patched["retries"], 2);
    assert_eq!(patched["host"], "10.0.0.3", "untouched fields stay");
    assert_eq!(patched["tags"], json!(["t"]));
    let unset = call(&gw, "PATCH", "/services/orders", "path=").await.json();
    assert_eq!(unset["path"], Value::Null, "an empty form value unsets");
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_routes_and_the_route_service_follow_their_parent() {
    let up = Upstream::start("nested").await;
    let gw = embedded().await;
    let service = id(&call(&gw, "POST", "/services", &format!("name=api&url={}", up.url())).await, 201);
    let route = id(&call(&gw, "POST", "/services/api/routes", "name=r&paths[]=/n&hosts=example.com").await, 201);
    let listed = request(gw.admin, "GET", "/services/api/routes", &[], b"").await.json();
    assert_eq!(listed["data"][0]["id"], route.as_str());
    assert_eq!(listed["data"][0]["hosts"], json!(["example.com"]), "a single form value for a list field");
    let of_route = request(gw.admin, "GET", &format!("/routes/{route}/service"), &[], b"").await.json();
    assert_eq!(of_route["id"], service.as_str());
    let patched = call(&gw, "PATCH", "/routes/r/service", "retries=1").await;
    assert_eq!((patched.status, patched.json()["retries"].as_u64()), (200, Some(1)));
    let proxied = request(gw.port, "GET", "/n/x", &[("host", "example.com")], b"").await;
    assert_eq!(proxied.status, 200);
    assert_eq!(request(gw.admin, "GET", &format!("/services/api/routes/{route}"), &[], b"").await.status, 200);

    assert_eq!(call(&gw, "DELETE", "/routes/r", "").await.status, 204);
    assert_eq!(request(gw.admin, "GET", "/routes/r", &[], b"").await.status, 404);
    assert_eq!(request(gw.port, "GET", "/n/x", &[("host", "example.com")], b"").await.status, 404, "applied live");
    assert_eq!(call(&gw, "DELETE", "/services/api", "").await.status, 204);
    assert_eq!(request(gw.admin, "GET", "/services", &[], b"").await.json()["data"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_credentials_are_nested_and_deleted_with_their_consumer() {
    let gw = embedded().await;
    let consumer = id(&call(&gw, "POST", "/consumers", "username=c1&custom_id=ext-1").await, 201);
    assert_eq!(request(gw.admin, "GET", "/consumers/c1", &[], b"").await.json()["id"], consumer.as_str());
    assert_eq!(request(gw.admin, "GET", "/consumers/ext-1", &[], b"").await.json()["id"], consumer.as_str());

    let acl = call(&gw, "POST", "/consumers/c1/acls", "group=admins").await;
    assert_eq!((acl.status, acl.json()["consumer"]["id"].as_str()), (201, Some(consumer.as_str())));
    let jwt = call(&gw, "POST", "/consumers/c1/jwt", "").await.json();
    assert_eq!((jwt["key"].as_str().unwrap().len(), jwt["secret"].as_str().unwrap().len()), (32, 32), "generated");
    let basic = call(&gw, "POST", "/consumers/c1/basic-auth", "username=u1&password=p1").await;
    assert_eq!(basic.status, 201, "{}", basic.text());
    assert!(basic.json()["password"].as_str().unwrap().starts_with("$argon2id$"), "only the hash is kept");
    let key = call(&gw, "POST", "/consumers/c1/key-auth", "key=k1").await;
    assert_eq!(key.status, 201);

    let found = request(gw.admin, "GET", "/consumers/c1/key-auth/k1", &[], b"").await;
    assert_eq!(found.json()["key"], "k1");
    for path in ["/consumers/c1/acls", "/consumers/c1/jwt", "/consumers/c1/basic-auth", "/key-auths", "/acls"] {
        let listed = request(gw.admin, "GET", path, &[], b"").await;
        assert_eq!(listed.json()["data"].as_array().map(Vec::len), Some(1), "{path}: {}", listed.text());
    }
    assert_eq!(call(&gw, "DELETE", "/consumers/c1", "").await.status, 204);
    for path in ["/key-auths", "/acls", "/jwts", "/basic-auths"] {
        assert_eq!(request(gw.admin, "GET", path, &[], b"").await.json()["data"], json!([]), "{path} cascaded");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn targets_update_when_posted_again_and_plugins_are_scoped_by_their_path() {
    let gw = embedded().await;
    assert_eq!(call(&gw, "POST", "/upstreams", "name=pool").await.status, 201);
    let first = id(&call(&gw, "POST", "/upstreams/pool/targets", "target=127.0.0.1:9&weight=900").await, 201);
    let again = call(&gw, "POST", "/upstreams/pool/targets", "target=127.0.0.1:9&weight=100").await;
    assert_eq!((again.json()["id"].as_str(), again.json()["weight"].as_u64()), (Some(first.as_str()), Some(100)));
    let listed = request(gw.admin, "GET", "/upstreams/pool/targets", &[], b"").await.json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let by_address = request(gw.admin, "GET", "/upstreams/pool/targets/127.0.0.1:9", &[], b"").await;
    assert_eq!(by_address.json()["id"], first.as_str());
    assert_eq!(call(&gw, "DELETE", "/upstreams/pool/targets/127.0.0.1:9", "").await.status, 204);

    let global = id(&call(&gw, "POST", "/plugins", "name=correlation-id").await, 201);
    let consumer = id(&call(&gw, "POST", "/consumers", "username=c2").await, 201);
    let scoped = call(&gw, "POST", "/consumers/c2/plugins", "name=rate-limiting&config.second=5").await;
    assert_eq!(scoped.status, 201, "{}", scoped.text());
    assert_eq!(scoped.json()["consumer"]["id"], consumer.as_str());
    assert_eq!(scoped.json()["config"]["second"], 5, "typed from the plugin's schema");
    let of_consumer = request(gw.admin, "GET", "/consumers/c2/plugins", &[], b"").await.json();
    assert_eq!(of_consumer["data"].as_array().unwrap().len(), 1);
    let all = request(gw.admin, "GET", "/plugins", &[], b"").await.json();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    assert_eq!(call(&gw, "DELETE", &format!("/plugins/{global}"), "").await.status, 204);
    assert_eq!(request(gw.admin, "GET", &format!("/plugins/{global}"), &[], b"").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_bodies_work_like_forms() {
    let up = Upstream::start("json").await;
    let gw = embedded().await;
    let service = call_json(&gw, "POST", "/services", json!({"name": "j", "url": up.url(), "retries": 1})).await;
    assert_eq!((service.status, service.json()["retries"].as_u64()), (201, Some(1)), "{}", service.text());
    let route =
        call_json(&gw, "POST", "/routes", json!({"paths": ["/j"], "service": {"name": "j"}, "strip_path": false}))
            .await;
    assert_eq!(route.status, 201, "{}", route.text());
    assert_eq!(route.json()["service"]["id"], service.json()["id"]);
    let plugin = call_json(&gw, "POST", "/plugins", json!({"name": "rate-limiting", "config": {"minute": 3}})).await;
    assert_eq!((plugin.status, plugin.json()["config"]["minute"].as_u64()), (201, Some(3)));
    let resp = request(gw.port, "GET", "/j/x", &[], b"").await;
    assert_eq!((resp.status, resp.header("ratelimit-limit")), (200, Some("3")));
}

#[tokio::test(flavor = "multi_thread")]
async fn node_info_status_and_schemas() {
    let gw = embedded().await;
    let root = request(gw.admin, "GET", "/", &[], b"").await.json();
    assert_eq!(root["configuration"]["database"], "embedded");
    assert!(root["plugins"]["available_on_server"]["key-auth"]["priority"].is_number(), "{root}");
    assert_eq!(request(gw.admin, "GET", "/status", &[], b"").await.json()["database"]["reachable"], true);
    let enabled = request(gw.admin, "GET", "/plugins/enabled", &[], b"").await.json();
    assert!(enabled["enabled_plugins"].as_array().unwrap().iter().any(|p| p == "rate-limiting"), "{enabled}");
    let schema = request(gw.admin, "GET", "/schemas/plugins/rate-limiting", &[], b"").await.json();
    assert!(schema["properties"]["minute"].is_object(), "{schema}");
    let services = request(gw.admin, "GET", "/schemas/services", &[], b"").await.json();
    assert!(services["properties"]["host"].is_object(), "{services}");
    assert_eq!(request(gw.admin, "GET", "/schemas/nope", &[], b"").await.status, 404);
    assert_eq!(request(gw.admin, "GET", "/schemas/plugins/nope", &[], b"").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn module_settings_are_read_and_changed_through_the_api() {
    let up = Upstream::start("modules").await;
    let mut gw = embedded().await;
    assert_eq!(call(&gw, "POST", "/services", &format!("name=m&url={}", up.url())).await.status, 201);
    assert_eq!(call(&gw, "POST", "/services/m/routes", "name=m&paths[]=/m").await.status, 201);
    assert_eq!(call(&gw, "POST", "/routes/m/plugins", "name=key-auth").await.status, 201);
    assert_eq!(call(&gw, "POST", "/routes/m/plugins", "name=rate-limiting&config.minute=100").await.status, 201);

    let listed = request(gw.admin, "GET", "/modules", &[], b"").await.json();
    assert!(listed["data"].as_array().unwrap().iter().any(|m| m["name"] == "key-auth"), "{listed}");
    let own = request(gw.admin, "GET", "/modules/rate-limiting", &[], b"").await.json();
    assert_eq!((own["priority"].as_i64(), own["failure_policy"].as_str()), (Some(910), Some("fail-open")), "{own}");
    let unauthenticated = request(gw.port, "GET", "/m", &[], b"").await;
    assert_eq!((unauthenticated.status, unauthenticated.header("ratelimit-limit")), (401, None), "key-auth runs first");

    let changed = call(&gw, "PATCH", "/modules/rate-limiting", "priority=5000&cpu_ms=20").await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!((changed.json()["priority"].as_i64(), changed.json()["cpu_ms"].as_u64()), (Some(5000), Some(20)));
    let reordered = request(gw.port, "GET", "/m", &[], b"").await;
    assert_eq!((reordered.status, reordered.header("ratelimit-limit")), (401, Some("100")), "rate-limiting now first");

    let bad = call(&gw, "PATCH", "/modules/rate-limiting", "failure_policy=sometimes").await;
    assert_eq!((bad.status, bad.json()["fields"]["failure_policy"].is_string()), (400, true), "{}", bad.text());
    let out_of_range = call(&gw, "PATCH", "/modules/rate-limiting", "memory_mb=0").await;
    assert_eq!(out_of_range.status, 400, "{}", out_of_range.text());
    assert!(out_of_range.text().contains("memory_mb"), "{}", out_of_range.text());
    assert_eq!(call(&gw, "PATCH", "/modules/no-such-module", "priority=1").await.status, 404);

    gw.restart().await;
    let kept = request(gw.admin, "GET", "/modules/rate-limiting", &[], b"").await.json();
    assert_eq!(kept["priority"], 5000, "saved");
    let reset = call(&gw, "PUT", "/modules/rate-limiting", "").await.json();
    assert_eq!(reset["priority"], 910, "PUT replaces every override");
}
