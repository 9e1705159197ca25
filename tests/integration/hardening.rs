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
