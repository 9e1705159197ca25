//! Live reload (SIGHUP and --watch), rejected configs, in-flight requests, graceful shutdown.

use crate::support::{Upstream, eventually, one_route, request};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_good_config() {
    let up = Upstream::start("up").await;
    let gw = one_route(&up, "/old").start().await;
    assert_eq!(request(gw.port, "GET", "/old", &[], b"").await.status, 200);
    assert!(gw.reload(&one_route(&up, "/new")).await, "applied");
    assert_eq!(request(gw.port, "GET", "/new", &[], b"").await.status, 200);
    assert_eq!(request(gw.port, "GET", "/old", &[], b"").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_config_is_rejected_and_the_old_one_keeps_serving() {
    let up = Upstream::start("up").await;
    let gw = one_route(&up, "/kept").start().await;
    let broken = one_route(&up, "/kept").top_route("broken", &["~/("]).set("service = \"nope\"");
    assert!(!gw.reload(&broken).await, "rejected");
    let log = gw.stderr();
    assert!(log.contains(r#"route "broken": service: no service is named "nope""#), "{log}");
    assert!(log.contains(r#"route "broken": paths[0]: invalid regex"#), "{log}");
    assert_eq!(request(gw.port, "GET", "/kept", &[], b"").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_reloads_on_file_change() {
    let up = Upstream::start("up").await;
    let gw = one_route(&up, "/before").gateway().arg("--watch").start().await;
    gw.write_config(one_route(&up, "/after").entities());
    gw.wait_for_log("configuration reloaded", 1).await;
    assert_eq!(request(gw.port, "GET", "/after", &[], b"").await.status, 200);
    // A broken edit is rejected; the last good config stays.
    gw.write_config("[[services]]\nname = \n");
    gw.wait_for_log("configuration rejected", 1).await;
    assert!(gw.stderr().contains("gateway.toml: line 8"), "{}", gw.stderr());
    assert_eq!(request(gw.port, "GET", "/after", &[], b"").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_flight_requests_finish_on_the_config_they_started_with() {
    let up = Upstream::start("up").await;
    let gw = one_route(&up, "/").start().await;
    let port = gw.port;
    let slow = tokio::spawn(async move { request(port, "GET", "/", &[("x-test-delay-ms", "1500")], b"").await });
    eventually("the slow request at the upstream", async || up.hits() == 1).await;
    // The next version turns the Via header off.
    gw.edit_server(|server| server + "headers = [\"off\"]\n");
    assert!(gw.reload(&one_route(&up, "/")).await, "applied");
    let fresh = request(gw.port, "GET", "/", &[], b"").await;
    assert!(fresh.header("via").is_none(), "new requests use the new version");
    let slow = slow.await.unwrap();
    assert_eq!(slow.status, 200);
    assert!(slow.header("via").is_some(), "the in-flight request kept its version");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_requests_finish() {
    let up = Upstream::start("up").await;
    let mut gw = one_route(&up, "/").start().await;
    let port = gw.port;
    let slow = tokio::spawn(async move { request(port, "GET", "/", &[("x-test-delay-ms", "1000")], b"").await });
    eventually("the slow request at the upstream", async || up.hits() == 1).await;
    gw.signal(libc::SIGTERM);
    let resp = slow.await.unwrap();
    assert_eq!(resp.status, 200, "the request in flight finished");
    let code = gw.wait_exit(Duration::from_secs(8)).await;
    assert_eq!(code, Some(0), "exited soon after the last request:\n{}", gw.stderr());
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err());
}
