//! request-transformer and response-transformer: each operation on headers, query string and
//! bodies, in Kong's order, with templates, a method change, and JSON paths in responses.

use super::{get, on_route, start};
use crate::support::{Echo, request};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn request_headers_query_and_path() {
    let config = r#"
remove = { headers = ["x-drop"], querystring = ["trace"] }
rename = { headers = ["x-old:x-new"], querystring = ["q:query"] }
replace = { headers = ["x-keep:replaced"], querystring = ["page:2"], uri = "/v2/$(query_params.kind or 'all')" }
add = { headers = ["x-added:$(headers.x_user or 'anonymous')", "x-keep:not-added"], querystring = ["lang:en", "page:9"] }
append = { headers = ["x-multi:b"], querystring = ["tag:new"] }
"#;
    let plugins = format!("[[plugins]]\nname = \"request-transformer\"\nroute = \"api\"\n[plugins.config]\n{config}");
    let (gw, _up) = start(&plugins).await;
    let headers = [("x-drop", "1"), ("x-old", "moved"), ("x-keep", "original"), ("x-multi", "a"), ("x-user", "zoe")];
    let (status, echo, resp) = get(&gw, "/orders?trace=1&q=shoes&page=1&tag=old&kind=open", &headers).await;
    assert_eq!(status, 200, "{}", resp.text());
    let echo = echo.unwrap();
    assert_eq!(echo.header("x-drop"), None);
    assert_eq!((echo.header("x-old"), echo.header("x-new")), (None, Some("moved")));
    assert_eq!(echo.header("x-keep"), Some("replaced"), "replaced, and add does not touch a present header");
    assert_eq!(echo.header("x-added"), Some("zoe"), "a template");
    assert_eq!(echo.header("x-multi"), Some("a, b"));
    assert_eq!(echo.path, "/v2/open?query=shoes&page=2&tag=old&kind=open&lang=en&tag=new");

    let (_, echo, _) = get(&gw, "/", &[]).await;
    let echo = echo.unwrap();
    assert_eq!(echo.header("x-added"), Some("anonymous"), "the template's default");
    assert_eq!(echo.path, "/v2/all?lang=en&page=9&tag=new", "replace only when present");
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_and_method() {
    let config = r#"remove = { body = ["secret"] }, rename = { body = ["n:number"] }, replace = { body = ["mode:fast"] }, add = { body = ["source:gateway"] }, append = { body = ["tags:b"] }"#;
    let (gw, _up) = start(&on_route("request-transformer", config)).await;
    let form = request(
        gw.port,
        "POST",
        "/f",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"secret=x&n=1&mode=slow&tags=a",
    )
    .await;
    let echo = Echo::from(&form);
    assert_eq!(echo.body, "n=1&mode=fast&tags=a&source=gateway&tags=b".replace("n=1", "number=1"));
    assert_eq!(echo.header("content-length"), Some(echo.body.len().to_string().as_str()));
    let body = br#"{"secret":"x","n":1,"mode":"slow","tags":"a","other":{"k":true}}"#;
    let resp = request(gw.port, "POST", "/j", &[("content-type", "application/json")], body).await;
    let sent: serde_json::Value = serde_json::from_str(&Echo::from(&resp).body).unwrap();
    assert_eq!(
        sent,
        json!({"number": 1, "mode": "fast", "tags": ["a", "b"], "other": {"k": true}, "source": "gateway"})
    );
    let empty = request(gw.port, "POST", "/e", &[("content-type", "application/json")], b"").await;
    let sent: serde_json::Value = serde_json::from_str(&Echo::from(&empty).body).unwrap();
    assert_eq!(sent, json!({"source": "gateway", "tags": ["b"]}), "add and append apply to an empty body");

    let (gw, _up) = start(&on_route("request-transformer", r#"http_method = "get""#)).await;
    let resp =
        request(gw.port, "POST", "/m?a=1", &[("content-type", "application/x-www-form-urlencoded")], b"b=2").await;
    let echo = Echo::from(&resp);
    assert_eq!((echo.method.as_str(), echo.path.as_str()), ("GET", "/m?a=1&b=2"), "the form moves to the query");
}

#[tokio::test(flavor = "multi_thread")]
async fn response_headers_and_json_paths() {
    let config = r#"
remove = { headers = ["via"], json = ["body", "headers.host"] }
rename = { headers = ["x-upstream:x-served-by"], json = ["method:verb"] }
replace = { headers = ["content-type:application/json; charset=utf-8"], json = ["path:/hidden"] }
add = { headers = ["x-added:1"], json = ["version:2", "cached:false", "headers.x-note:added"], json_types = ["number", "boolean"] }
append = { headers = ["x-added:2"], json = ["verb:again"] }
"#;
    let plugins = format!("[[plugins]]\nname = \"response-transformer\"\nroute = \"api\"\n[plugins.config]\n{config}");
    let (gw, _up) = start(&plugins).await;
    let resp = request(gw.port, "GET", "/x", &[], b"").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("via"), None, "a header the gateway added is there to remove");
    assert_eq!((resp.header("x-upstream"), resp.header("x-served-by")), (None, Some("up")));
    assert_eq!(resp.header("content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(resp.header_values("x-added"), ["1", "2"]);
    assert_eq!(resp.header("content-length"), None, "the body may change length");
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"), "so it is chunked, and the connection stays usable");
    let doc = resp.json();
    assert_eq!(doc["verb"], json!(["GET", "again"]), "renamed, then appended");
    assert_eq!(doc["path"], "/hidden");
    assert_eq!((doc["version"].clone(), doc["cached"].clone()), (json!(2), json!(false)));
    assert!(doc.get("body").is_none() && doc.get("method").is_none());
    assert!(doc["headers"].get("host").is_none(), "a nested member removed");
    assert_eq!(doc["headers"]["x-note"], "added", "a nested member added");
}

#[tokio::test(flavor = "multi_thread")]
async fn response_header_operations_only_leave_the_body_alone() {
    let (gw, _up) = start(&on_route("response-transformer", r#"add = { headers = ["x-one:1"] }"#)).await;
    let resp = request(gw.port, "GET", "/x", &[], b"").await;
    assert_eq!(resp.header("x-one"), Some("1"));
    assert_eq!(resp.header("content-length"), Some(resp.text().len().to_string().as_str()), "kept");
    assert_eq!(resp.header("transfer-encoding"), None);
}

#[test]
fn bad_settings_are_refused() {
    super::assert_refused(
        &on_route("request-transformer", r#"add = { headers = ["x-no-value"] }"#),
        "config.add.headers[0]",
    );
    super::assert_refused(
        &on_route("request-transformer", r#"add = { headers = ["bad header:1"] }"#),
        "not a valid header",
    );
    super::assert_refused(
        &on_route("request-transformer", r#"add = { querystring = ["a:$(os.getenv('HOME'))"] }"#),
        "not a supported template",
    );
    super::assert_refused(&on_route("response-transformer", r#"rename = { json = ["a"] }"#), "config.rename.json[0]");
}
