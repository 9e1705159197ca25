//! What attackers and unlucky clients do cannot flood the log: plugin failures and output are
//! rate-limited per plugin, and clients that go away are not errors.

use crate::support::{Gateway, Upstream, request};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_panicking_calls_write_a_bounded_number_of_log_lines() {
    let up = Upstream::start("u").await;
    let config = format!(
        "[[services]]\nname = \"s\"\nurl = \"{}\"\n[[services.routes]]\nname = \"r\"\npaths = [\"/\"]\n",
        up.url()
    );
    let plugins = "[[plugins]]\nname = \"misbehave\"\nroute = \"r\"\nconfig = { mode = \"panic\" }\n";
    let gw = Gateway::builder(&config).plugins_with(plugins, &["misbehave"]).start().await;
    for _ in 0..1000 {
        assert_eq!(request(gw.port, "GET", "/", &[], b"").await.status, 500);
    }
    let log = gw.stderr();
    let lines = log.lines().filter(|l| l.contains("misbehave")).count();
    assert!(lines <= 30, "{lines} lines about the plugin for 1000 failures:\n{log}");
    assert!(log.contains("panicked"), "the first failures are logged in full");
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_that_hang_up_early_are_not_logged_as_errors() {
    let slow = Upstream::start_slow("slow", Duration::from_millis(300)).await;
    let config =
        format!("[[services]]\nname = \"s\"\nurl = \"{}\"\n[[services.routes]]\npaths = [\"/\"]\n", slow.url());
    let gw = Gateway::start(&config).await;
    for _ in 0..20 {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        drop(conn);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(slow.hits() > 0, "the requests were proxied");
    let log = gw.stderr();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "no ERROR lines:\n{}", errors.join("\n"));
}

/// Sends raw bytes on one connection and reads until the server closes it (or 5 s pass).
async fn raw_exchange(port: u16, bytes: &[u8]) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    conn.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut out)).await.is_ok();
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_absolute_form_request_is_routed_by_its_authority() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let config = format!(
        "[[services]]\nname = \"a\"\nurl = \"{}\"\n[[services.routes]]\nhosts = [\"a.example\"]\n\
         [[services]]\nname = \"b\"\nurl = \"{}\"\n[[services.routes]]\nhosts = [\"b.example\"]\n",
        a.url(),
        b.url()
    );
    let gw = Gateway::start(&config).await;
    let (answer, _) = raw_exchange(gw.port, b"GET http://b.example/x HTTP/1.1\r\nconnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("x-upstream: b"), "routed by the target's authority: {answer}");
    let (answer, _) =
        raw_exchange(gw.port, b"GET http://a.example/x HTTP/1.1\r\nhost: a.example\r\nconnection: close\r\n\r\n").await;
    assert!(answer.contains("x-upstream: a"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_requests_are_answered_in_order() {
    let up = Upstream::start("u").await;
    let config = format!("[[services]]\nname = \"s\"\nurl = \"{}\"\n[[services.routes]]\npaths = [\"/\"]\n", up.url());
    let gw = Gateway::start(&config).await;
    let pipelined = b"GET /one HTTP/1.1\r\nhost: x\r\n\r\nGET /two HTTP/1.1\r\nhost: x\r\n\r\n\
                      GET /three HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let (answer, closed) = raw_exchange(gw.port, pipelined).await;
    assert!(closed, "closed after the last one asked for it");
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 3, "{answer}");
    let at = |p: &str| answer.find(&format!("\"path\":\"{p}\"")).unwrap_or_else(|| panic!("{p} answered: {answer}"));
    assert!(at("/one") < at("/two") && at("/two") < at("/three"), "in order: {answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keepalive_clients_and_stalled_bodies_are_timed_out() {
    use tokio::io::AsyncReadExt;
    let up = Upstream::start("u").await;
    let config = format!("[[services]]\nname = \"s\"\nurl = \"{}\"\n[[services.routes]]\npaths = [\"/\"]\n", up.url());
    let gw = Gateway::builder(&config).server("keepalive_timeout = 1\nclient_body_timeout = 1").start().await;

    let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 65536];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = std::time::Instant::now();
    let rest = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut Vec::new())).await;
    assert!(rest.is_ok(), "an idle keep-alive connection is closed");
    assert!(started.elapsed() >= Duration::from_millis(800), "after its timeout, not before");

    let started = std::time::Instant::now();
    let (answer, closed) = raw_exchange(gw.port, b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nab").await;
    assert!(closed && started.elapsed() < Duration::from_secs(4), "a stalled body ends the request");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}
