//! Live reload (SIGHUP and --watch), rejected configs, in-flight requests, graceful shutdown.

use crate::support::{Gateway, Upstream, request};
use std::time::Duration;

fn one_route(up: &Upstream, path: &str) -> String {
    format!(
        "[[services]]\nname = \"s\"\nurl = \"{}\"\n[[services.routes]]\nname = \"r\"\npaths = [\"{path}\"]\n",
        up.url()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_good_config() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&one_route(&up, "/old")).await;
    assert_eq!(request(gw.port, "GET", "/old", &[], b"").await.status, 200);
    gw.write_config(&one_route(&up, "/new"));
    gw.signal(libc::SIGHUP);
    gw.wait_for_log("configuration reloaded", 1).await;
    assert_eq!(request(gw.port, "GET", "/new", &[], b"").await.status, 200);
    assert_eq!(request(gw.port, "GET", "/old", &[], b"").await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_config_is_rejected_and_the_old_one_keeps_serving() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&one_route(&up, "/kept")).await;
    gw.write_config(&format!(
        "{}\n[[routes]]\nname = \"broken\"\nservice = \"nope\"\npaths = [\"~/(\"]\n",
        one_route(&up, "/kept")
    ));
    gw.signal(libc::SIGHUP);
    gw.wait_for_log("configuration rejected", 1).await;
    let log = gw.stderr();
    assert!(log.contains(r#"route "broken": service: no service is named "nope""#), "{log}");
    assert!(log.contains(r#"route "broken": paths[0]: invalid regex"#), "{log}");
    assert_eq!(request(gw.port, "GET", "/kept", &[], b"").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_reloads_on_file_change() {
    let up = Upstream::start("up").await;
    let gw = Gateway::builder(&one_route(&up, "/before")).arg("--watch").start().await;
    gw.write_config(&one_route(&up, "/after"));
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
    let gw = Gateway::start(&one_route(&up, "/")).await;
    let port = gw.port;
    let slow = tokio::spawn(async move { request(port, "GET", "/", &[("x-test-delay-ms", "1500")], b"").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The next version turns the Via header off.
    let server = std::fs::read_to_string(gw.dir.path().join("server.part")).unwrap();
    std::fs::write(gw.dir.path().join("server.part"), format!("{server}headers = [\"off\"]\n")).unwrap();
    gw.write_config(&one_route(&up, "/"));
    gw.signal(libc::SIGHUP);
    gw.wait_for_log("configuration reloaded", 1).await;
    let fresh = request(gw.port, "GET", "/", &[], b"").await;
    assert!(fresh.header("via").is_none(), "new requests use the new version");
    let slow = slow.await.unwrap();
    assert_eq!(slow.status, 200);
    assert!(slow.header("via").is_some(), "the in-flight request kept its version");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_requests_finish() {
    let up = Upstream::start("up").await;
    let mut gw = Gateway::start(&one_route(&up, "/")).await;
    let port = gw.port;
    let slow = tokio::spawn(async move { request(port, "GET", "/", &[("x-test-delay-ms", "1000")], b"").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.signal(libc::SIGTERM);
    let resp = slow.await.unwrap();
    assert_eq!(resp.status, 200, "the request in flight finished");
    let code = gw.wait_exit(Duration::from_secs(8)).await;
    assert_eq!(code, Some(0), "exited soon after the last request:\n{}", gw.stderr());
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err());
}
