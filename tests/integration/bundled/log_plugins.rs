//! file-log and http-log: Kong's log record written by the host to the places the operator
//! allowed, off the request path, with bounded queues.

use super::{ALICE_ID, assert_refused, get, start_with};
use crate::support::collector::{Collector, Received};
use crate::support::eventually;
use crate::support::metrics::{scrape, value};
use crate::support::wait::json_lines as lines;
use crate::support::{Gateway, free_port, request};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `wasmgate_log_entries_total` of `sink` and `outcome`.
async fn entries(status: u16, sink: &str, outcome: &str) -> u64 {
    let scraped = scrape(status).await;
    value(&scraped, "wasmgate_log_entries_total", &[("sink", sink), ("outcome", outcome)]).unwrap_or(0.0) as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn file_log_writes_kongs_record_and_follows_logrotate() {
    let status = free_port();
    let plugins = "[modules.file-log]\nallow_log_files = [\"logs/\"]\n\
         [[plugins]]\nname = \"key-auth\"\nroute = \"api\"\nconfig = {}\n\
         [[plugins]]\nname = \"file-log\"\nconfig = { path = \"logs/ops.log\" }\n";
    let server = format!("status_listen = \"127.0.0.1:{status}\"\naccess_log = \"json\"");
    let (gw, up) = start_with(plugins, &server, "").await;
    std::fs::create_dir(gw.dir.path().join("logs")).unwrap();
    let log = gw.dir.path().join("logs/ops.log");
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    assert_eq!(
        get(&gw, "/orders?id=7&flag", &[("apikey", "k-alice"), ("authorization", "Bearer s3cret")]).await.0,
        200
    );
    assert_eq!(get(&gw, "/", &[]).await.0, 401, "no key");
    assert_eq!(get(&gw, "/orders?apikey=k-alice&id=8", &[]).await.0, 200, "the key in the query");

    let got = lines(&log, 3).await;
    assert_eq!(got.len(), 3, "{got:?}");
    // key-auth declared where it reads keys: neither the file nor the JSON access log has one.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("k-alice"), "{text}");
    let in_query = got.iter().find(|l| l["request"]["querystring"]["id"] == "8").expect("the query request");
    assert_eq!(in_query["request"]["uri"], "/orders?apikey=REDACTED&id=8");
    assert_eq!(in_query["upstream_uri"], "/orders?apikey=REDACTED&id=8");
    assert_eq!(in_query["request"]["querystring"]["apikey"], "REDACTED");
    gw.wait_for_access_log("the three requests", |out| out.matches("\"uri\":").count() >= 3).await;
    assert!(!gw.stdout().contains("k-alice"), "{}", gw.stdout());
    let alice = got.iter().find(|l| l["request"]["uri"] == "/orders?id=7&flag").expect("alice's request");
    assert_eq!(alice["request"]["method"], "GET");
    assert_eq!(alice["request"]["querystring"], serde_json::json!({"id": "7", "flag": true}));
    assert_eq!(alice["request"]["headers"]["authorization"], "REDACTED");
    assert_eq!(alice["request"]["headers"]["apikey"], "REDACTED");
    assert_eq!(alice["request"]["url"], format!("http://localhost:{}/orders?id=7&flag", gw.port));
    assert_eq!((alice["response"]["status"].as_u64(), alice["upstream_status"].as_u64()), (Some(200), Some(200)));
    assert!(alice["response"]["size"].as_u64().unwrap() > 0);
    assert_eq!(alice["response"]["headers"]["content-type"], "application/json");
    assert_eq!((alice["route"]["name"].as_str(), alice["service"]["name"].as_str()), (Some("api"), Some("svc")));
    assert_eq!(alice["service"]["port"].as_u64(), Some(up.port as u64));
    assert_eq!(
        (alice["consumer"]["id"].as_str(), alice["consumer"]["username"].as_str()),
        (Some(ALICE_ID), Some("alice"))
    );
    assert_eq!(alice["authenticated_entity"]["consumer_id"]["id"], ALICE_ID);
    assert_eq!(alice["tries"], serde_json::json!([{"ip": "127.0.0.1", "port": up.port}]));
    assert_eq!((alice["client_ip"].as_str(), alice["source"].as_str()), (Some("127.0.0.1"), Some("service")));
    assert_eq!(alice["upstream_uri"], "/orders?id=7&flag");
    let l = &alice["latencies"];
    assert!(l["request"].as_u64().unwrap() >= l["proxy"].as_u64().unwrap(), "{l}");
    let started = alice["started_at"].as_u64().unwrap();
    assert!(started + 1000 >= before && started <= before + 10_000, "{started} vs {before}");
    assert_eq!(alice["request"]["id"].as_str().map(str::len), Some(32));
    let refused = got.iter().find(|l| l["request"]["uri"] == "/").unwrap();
    assert_eq!((refused["response"]["status"].as_u64(), refused["source"].as_str()), (Some(401), Some("exit")));
    assert!(refused.get("consumer").is_none() && refused.get("authenticated_entity").is_none());
    assert!(refused.get("upstream_status").is_none() && refused["tries"] == serde_json::json!([]));
    assert_eq!(refused["latencies"]["proxy"], -1);

    // logrotate moves the file away: the next lines go to a new file at the path.
    std::fs::rename(&log, gw.dir.path().join("logs/ops.log.1")).unwrap();
    for _ in 0..2 {
        assert_eq!(get(&gw, "/after", &[("apikey", "k-alice")]).await.0, 200);
    }
    let fresh = lines(&log, 2).await;
    assert_eq!(fresh.len(), 2, "{fresh:?}");
    assert!(fresh.iter().all(|l| l["request"]["uri"] == "/after"));
    assert_eq!(lines(&gw.dir.path().join("logs/ops.log.1"), 3).await.len(), 3, "the rotated file is left alone");
    let sink = format!("file:{}", log.display());
    assert_eq!(entries(status, &sink, "written").await, 5);
    assert_eq!(entries(status, &sink, "dropped").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_path_moves_the_log_and_releases_the_old_file() {
    let plugins = |path: &str| {
        format!(
            "[modules.file-log]\nallow_log_files = [\"a.log\", \"b.log\"]\n\
             [[plugins]]\nname = \"file-log\"\nconfig = {{ path = \"{path}\" }}\n"
        )
    };
    let (gw, _up) = start_with(&plugins("a.log"), "", "").await;
    let (a, b) = (gw.dir.path().join("a.log"), gw.dir.path().join("b.log"));
    assert_eq!(get(&gw, "/one", &[]).await.0, 200);
    assert_eq!(lines(&a, 1).await.len(), 1);
    assert!(gw.open_files().contains(&a), "a.log is open while it is the log");
    gw.write_plugins(&plugins("b.log"));
    gw.wait_for_log("configuration reloaded", 1).await;
    assert_eq!(get(&gw, "/two", &[]).await.0, 200);
    let moved = lines(&b, 1).await;
    assert_eq!((moved.len(), moved[0]["request"]["uri"].as_str()), (1, Some("/two")));
    assert_eq!(lines(&a, 1).await.len(), 1, "nothing more in the old file");
    // The instances that held the old configuration were retired, and its sink with them.
    eventually("the old sink to close a.log", async || !gw.open_files().contains(&a)).await;
}

#[test]
fn log_destinations_must_be_allowed_in_plugins_toml() {
    assert_refused(
        "[[plugins]]\nname = \"file-log\"\nconfig = { path = \"/etc/passwd\" }\n",
        "\"/etc/passwd\" is not allowed for module file-log; the operator allows it with allow_log_files = [\"/etc/passwd\"] in [modules.file-log] of plugins.toml",
    );
    assert_refused(
        "[modules.file-log]\nallow_log_files = [\"logs/\"]\n\
         [[plugins]]\nname = \"file-log\"\nconfig = { path = \"logs/../../escape.log\" }\n",
        "is not allowed for module file-log",
    );
    assert_refused(
        "[modules.http-log]\nallow_log_endpoints = [\"http://127.0.0.1:9/logs\"]\n\
         [[plugins]]\nname = \"http-log\"\nconfig = { http_endpoint = \"http://127.0.0.1:9/other\" }\n",
        "plugins[0] (http-log on global): http_endpoint: \"http://127.0.0.1:9/other\" is not allowed for module http-log; the operator allows it with allow_log_endpoints",
    );
    assert_refused(
        "[modules.http-log]\nallow_log_endpoints = [\"http://127.0.0.1:9/logs\"]\n\
         [[plugins]]\nname = \"http-log\"\nconfig = { http_endpoint = \"http://127.0.0.1:9/logs\", headers = { \"bad name\" = \"x\" } }\n",
        "headers: \"bad name\" is not a header name",
    );
    assert_refused(
        "[modules.file-log]\nallow_log_files = [\"ops.log\"]\n\
         [[plugins]]\nname = \"file-log\"\nconfig = { path = \"ops.log\", custom_fields_by_lua = { team = \"return 'ops'\" } }\n",
        "custom_fields_by_lua: there is no Lua in wasmgate",
    );
    assert_refused(
        "[modules.http-log]\nallow_log_endpoints = [\"ftp://x/\"]\n",
        "allow_log_endpoints: \"ftp://x/\": the scheme must be http or https",
    );
}

/// A gateway with http-log sending to `endpoint` with more `settings` (inline table fields),
/// then 20 + `extra` requests `/n/0`, `/n/1`, ... served while nothing listens there; the
/// gateway and its status port.
async fn requests_logged_to(endpoint: &str, settings: &str, extra: usize) -> (Gateway, u16) {
    let status = free_port();
    let plugins = format!(
        "[modules.http-log]\nallow_log_endpoints = [{endpoint:?}]\n\
         [[plugins]]\nname = \"http-log\"\n\
         config = {{ http_endpoint = {endpoint:?}, headers = {{ \"X-Team\" = \"ops\" }}, {settings} }}\n"
    );
    let (gw, _up) = start_with(&plugins, &format!("status_listen = \"127.0.0.1:{status}\""), "").await;
    let started = std::time::Instant::now();
    for n in 0..20 + extra {
        assert_eq!(request(gw.port, "GET", &format!("/n/{n}"), &[], b"").await.status, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(5), "a dead log endpoint must not slow requests");
    (gw, status)
}

/// The log records in what a collector received (a batch is a JSON array).
fn records(received: &[Received]) -> Vec<Value> {
    received
        .iter()
        .flat_map(|r| match serde_json::from_slice(&r.body).expect("a JSON body") {
            Value::Array(items) => items,
            one => vec![one],
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn http_log_keeps_entries_while_the_endpoint_is_down_and_delivers_them_in_batches() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}/logs?src=gw");
    // Kong's deprecated `queue_size` is taken as `queue.max_batch_size`.
    let settings =
        "queue_size = 5, queue = { max_coalescing_delay = 0.2, initial_retry_delay = 0.05, max_retry_delay = 0.2 }";
    let (_gw, status) = requests_logged_to(&endpoint, settings, 3).await;
    // An absence: nothing may be written while the endpoint is down, through several retries.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(entries(status, &format!("http://127.0.0.1:{port}/logs"), "written").await, 0);

    let collector = Collector::start_on(port).await;
    let got = collector.wait_until(Duration::from_secs(10), |r| records(r).len() >= 23).await;
    let mut uris: Vec<String> =
        records(&got).iter().map(|r| r["request"]["uri"].as_str().unwrap().to_string()).collect();
    uris.sort_by_key(|u| u[3..].parse::<u32>().unwrap());
    let expected: Vec<String> = (0..23).map(|n| format!("/n/{n}")).collect();
    assert_eq!(uris, expected, "every entry arrives once");
    assert!(got.len() < 23, "entries were batched: {} requests", got.len());
    for r in &got {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/logs?src=gw"));
        assert_eq!(r.headers.get("content-type").unwrap(), "application/json");
        assert_eq!(r.headers.get("x-team").unwrap(), "ops");
        assert!(serde_json::from_slice::<Value>(&r.body).unwrap().is_array(), "max_batch_size > 1 sends arrays");
    }
    // The sink's label leaves the query out (it may carry a token).
    let sink = format!("http://127.0.0.1:{port}/logs");
    assert_eq!((entries(status, &sink, "written").await, entries(status, &sink, "dropped").await), (23, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn http_log_drops_past_the_queue_bound_and_counts_it() {
    let port = free_port();
    let endpoint = format!("http://user:pa%20ss@127.0.0.1:{port}/logs");
    let settings = "queue = { max_entries = 5, initial_retry_delay = 0.05, max_retry_delay = 0.1 }";
    let (_gw, status) = requests_logged_to(&endpoint, settings, 0).await;
    let sink = format!("http://127.0.0.1:{port}/logs");
    // Entries are queued after their answers: wait until all but the six the queue can hold
    // (one being retried, five behind it) were dropped, before the endpoint comes up.
    crate::support::wait::eventually("the entries past the bound to be dropped", async || {
        entries(status, &sink, "dropped").await >= 14
    })
    .await;
    let collector = Collector::start_on(port).await;
    let mut dropped = 0;
    crate::support::wait::eventually("each entry to be delivered or dropped", async || {
        dropped = entries(status, &sink, "dropped").await;
        collector.received().len() as u64 + dropped >= 20
    })
    .await;
    let got = collector.received();
    // One entry is being retried; five wait behind it; the rest had no room.
    assert!((5..=6).contains(&got.len()), "delivered {} of 20", got.len());
    assert_eq!(got.len() as u64 + dropped, 20, "each entry is delivered or counted as dropped");
    let first = &records(&got)[0];
    assert!(first.is_object(), "max_batch_size 1 sends one object");
    let basic = got[0].headers.get("authorization").unwrap().to_str().unwrap();
    assert_eq!(basic, "Basic dXNlcjpwYSBzcw==", "user:pa ss from the endpoint's userinfo");
    assert_eq!(entries(status, &sink, "written").await, got.len() as u64);
}
