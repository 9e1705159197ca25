//! What attackers and unlucky clients do cannot flood the log: plugin failures and output are
//! rate-limited per plugin, and clients that go away are not errors.

use crate::support::{Config, Gateway, Upstream, eventually, one_route, request};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_panicking_calls_write_a_bounded_number_of_log_lines() {
    let up = Upstream::start("u").await;
    let gw = one_route(&up, "/")
        .plugin("misbehave", "route = \"r\"", "mode = \"panic\"")
        .only_modules(&["misbehave"])
        .start()
        .await;
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
    let gw = one_route(&slow, "/").start().await;
    for _ in 0..20 {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        drop(conn);
    }
    eventually("the requests at the upstream", async || slow.hits() > 0).await;
    // What is checked next is an absence: give the slow answers (300 ms) time to meet the
    // closed client connections, where an error would be logged.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let log = gw.stderr();
    let errors = error_lines(&log);
    assert!(errors.is_empty(), "no ERROR lines:\n{}", errors.join("\n"));
}

/// The log's ERROR lines (Pingora's upstream pool race is logged at debug: see `logging.rs`).
fn error_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("ERROR")).collect()
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
    let gw = Config::new()
        .service("a", &a.url())
        .route("", &[])
        .set("hosts = [\"a.example\"]")
        .service("b", &b.url())
        .route("", &[])
        .set("hosts = [\"b.example\"]")
        .start()
        .await;
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
    let gw = one_route(&up, "/").start().await;
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
    let gw = one_route(&up, "/").server("keepalive_timeout = 1\nclient_body_timeout = 1").start().await;

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

/// Sends `lines` one every 300 ms on `conn`, then returns how long the server took to close it
/// (reading it to the end), counted from the first line.
async fn trickle(mut conn: tokio::net::TcpStream, lines: &[&str]) -> Duration {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let (mut read, mut write) = conn.split();
    let writer = async {
        for line in lines {
            if write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        std::future::pending::<()>().await
    };
    let mut out = Vec::new();
    tokio::select! {
        _ = writer => unreachable!(),
        _ = read.read_to_end(&mut out) => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => panic!("not closed after 10 s"),
    }
    assert!(!String::from_utf8_lossy(&out).contains("HTTP/1.1 4"), "closed without an answer: {out:?}");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_trickles_its_header_is_closed_after_client_header_timeout() {
    use tokio::io::AsyncReadExt;
    let up = Upstream::start("u").await;
    let gw = one_route(&up, "/").server("client_header_timeout = 1\nkeepalive_timeout = 5").start().await;
    let lines: Vec<String> = (0..30).map(|i| format!("x-line-{i}: {i}\r\n")).collect();
    let mut header = vec!["GET / HTTP/1.1\r\n"];
    header.extend(lines.iter().map(String::as_str));

    // A new connection: the clock runs from the accept, whatever the client sends.
    let conn = tokio::net::TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
    let took = trickle(conn, &header).await;
    assert!(took >= Duration::from_millis(800) && took < Duration::from_secs(3), "closed after {took:?}");

    // A kept-alive connection that stays idle longer than the header timeout is still served,
    // then closed when its next header trickles.
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
    let mut buf = vec![0u8; 65536];
    for pause in [0, 1500] {
        tokio::time::sleep(Duration::from_millis(pause)).await;
        conn.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let n = conn.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "served after {pause} ms idle");
    }
    let took = trickle(conn, &header).await;
    assert!(took >= Duration::from_millis(800) && took < Duration::from_secs(3), "closed after {took:?}");

    // Others are served meanwhile, and none of it is an error in the log.
    assert_eq!(request(gw.port, "GET", "/", &[], b"").await.status, 200);
    let log = gw.stderr();
    assert!(error_lines(&log).is_empty(), "{log}");
}

/// Latencies of `/other` under 4 concurrent clients for `duration`, sorted.
async fn other_latencies(port: u16, duration: Duration) -> Vec<Duration> {
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(tokio::spawn(async move {
            let (mut out, end) = (Vec::new(), std::time::Instant::now() + duration);
            while std::time::Instant::now() < end && out.len() < 2000 {
                let started = std::time::Instant::now();
                assert_eq!(request(port, "GET", "/other", &[], b"").await.status, 200);
                out.push(started.elapsed());
            }
            out
        }));
    }
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.unwrap());
    }
    all.sort();
    all
}

/// The client address the looping requests come from (the gateway trusts the test's proxy).
const LOOPER: (&str, &str) = ("x-forwarded-for", "203.0.113.1");

fn p99(sorted: &[Duration]) -> Duration {
    sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)]
}

/// A gateway with misbehave on route `/loop` (200 ms deadline) beside a plain route `/other`;
/// `server` and `defaults` add to `[server]` and to `plugins.toml`'s `[defaults]`.
async fn looping_gateway(up: &Upstream, server: &str, defaults: &str) -> Gateway {
    Config::new()
        .server(&format!("trusted_ips = [\"127.0.0.1\"]\n{server}"))
        .service("s", &up.url())
        .route("loop", &["/loop"])
        .route("other", &["/other"])
        .plugins_toml(&format!("[defaults]\ncpu_ms = 200\n{defaults}"))
        .plugin("misbehave", "route = \"loop\"", "")
        .only_modules(&["misbehave"])
        .start()
        .await
}

/// One client ([`LOOPER`]) sending a looping input every 100 ms until the flag is cleared; the
/// task ends with the statuses it got.
fn start_looper(port: u16) -> (Arc<std::sync::atomic::AtomicBool>, tokio::task::JoinHandle<Vec<u16>>) {
    let looping = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = looping.clone();
    let looper = tokio::spawn(async move {
        let mut loops = Vec::new();
        while flag.load(std::sync::atomic::Ordering::Relaxed) {
            let headers = [("x-misbehave", "loop"), LOOPER];
            loops.push(tokio::spawn(async move { request(port, "GET", "/loop", &headers, b"").await.status }));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut statuses = Vec::new();
        for l in loops {
            statuses.push(l.await.unwrap());
        }
        statuses
    });
    (looping, looper)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_looping_client_is_quarantined_and_stalls_neither_other_clients_nor_other_routes() {
    let up = Upstream::start("u").await;
    let gw = looping_gateway(&up, "", "quarantine = { after = 2, within_s = 10, for_s = 3 }").await;
    let baseline = p99(&other_latencies(gw.port, Duration::from_millis(1500)).await);

    let (looping, looper) = start_looper(gw.port);
    gw.wait_for_log("plugin quarantined", 1).await;
    let benign = request(gw.port, "GET", "/loop", &[("x-misbehave", "ok"), LOOPER], b"").await;
    assert_eq!(benign.status, 500, "while its sender is quarantined the failure policy applies without a call");
    for _ in 0..20 {
        let other_client = [("x-misbehave", "ok"), ("x-forwarded-for", "203.0.113.2")];
        let resp = request(gw.port, "GET", "/loop", &other_client, b"").await;
        assert_eq!(resp.status, 200, "every other client still gets the plugin");
    }
    let quarantined = p99(&other_latencies(gw.port, Duration::from_millis(1500)).await);
    looping.store(false, std::sync::atomic::Ordering::Relaxed);
    looper.await.unwrap();
    assert!(
        quarantined <= baseline * 2 + Duration::from_millis(10),
        "p99 of the other route: {quarantined:?} with the loops quarantined, {baseline:?} without loops"
    );

    let ended = async || request(gw.port, "GET", "/loop", &[("x-misbehave", "ok"), LOOPER], b"").await.status == 200;
    eventually("the end of the quarantine", ended).await;
    gw.wait_for_log("plugin quarantine ended", 1).await;
}

/// With no quarantine at all, a call that loops to its deadline yields its worker thread at every
/// epoch tick: the other clients of the same route and of another route get no error, and their
/// p99 stays near the run without loops (before, each loop held the worker for its 200 ms).
#[tokio::test(flavor = "multi_thread")]
async fn a_looping_call_yields_its_worker_to_other_requests() {
    let up = Upstream::start("u").await;
    let gw = looping_gateway(&up, "worker_threads = 1", "quarantine = { after = 0 }").await;
    let baseline = p99(&other_latencies(gw.port, Duration::from_millis(1500)).await);
    let (looping, looper) = start_looper(gw.port);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..20 {
        let same_route = [("x-misbehave", "ok"), ("x-forwarded-for", "203.0.113.2")];
        assert_eq!(request(gw.port, "GET", "/loop", &same_route, b"").await.status, 200);
    }
    let with_loops = p99(&other_latencies(gw.port, Duration::from_millis(1500)).await);
    looping.store(false, std::sync::atomic::Ordering::Relaxed);
    let statuses = looper.await.unwrap();
    assert!(statuses.len() >= 15 && statuses.iter().all(|s| *s == 500), "every loop hit its deadline: {statuses:?}");
    assert_eq!(gw.log_count("plugin quarantined"), 0, "no quarantine took part");
    assert!(
        with_loops <= baseline * 2 + Duration::from_millis(20),
        "p99 of the other route: {with_loops:?} with a 200 ms loop every 100 ms, {baseline:?} without"
    );
}

/// The epoch ticker sleeps once no plugin has run for 100 ms; the first call after that wakes it,
/// so a loop is stopped at its deadline as any other (unwoken, the ticker would sleep for 5 s).
#[tokio::test(flavor = "multi_thread")]
async fn a_loop_after_an_idle_second_is_stopped_at_its_deadline() {
    let up = Upstream::start("u").await;
    let gw = looping_gateway(&up, "", "quarantine = { after = 0 }").await;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let started = Instant::now();
        let resp = request(gw.port, "GET", "/loop", &[("x-misbehave", "loop")], b"").await;
        let took = started.elapsed();
        assert_eq!(resp.status, 500, "the loop is stopped");
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "stopped at its 200 ms deadline, after {took:?}"
        );
    }
    assert_eq!(request(gw.port, "GET", "/other", &[], b"").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_plugin_cannot_make_the_host_keep_more_than_its_limits() {
    let up = Upstream::start("u").await;
    let gw = one_route(&up, "/")
        .plugins_toml("[modules.misbehave]\ncache_bytes = 4194304\nstderr_bytes = 8192")
        .plugin("misbehave", "route = \"r\"", "")
        .only_modules(&["misbehave"])
        .start()
        .await;
    let hostile = |mode: &'static str| {
        let port = gw.port;
        async move { request(port, "GET", "/", &[("x-misbehave", mode)], b"").await }
    };
    let flood = hostile("headers").await;
    assert_eq!(flood.status, 500, "past header_writes the failure policy applies");
    assert!(flood.header("x-flood-0").is_none() && flood.headers.len() < 20, "none of them reach the client");
    assert_eq!(hostile("bigheader").await.status, 500, "past header_bytes");
    assert_eq!(hostile("context").await.status, 500, "past context_bytes");
    gw.wait_for_log("exceeded its context_bytes limit", 1).await;

    let log_before = gw.stderr().len();
    assert_eq!(hostile("stderr").await.status, 200, "stderr is cut, not fatal");
    // An absence again: the log must not grow by the flood; give the stderr lines time to land.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logged = gw.stderr().len() - log_before;
    assert!(logged < 16 << 10, "1 MiB of stderr wrote {logged} bytes of log");

    for n in 0..5 {
        request(gw.port, "GET", "/", &[("x-misbehave", "cache"), ("x-n", &format!("warm-{n}"))], b"").await;
    }
    let before = gw.rss();
    for n in 0..150 {
        let resp = request(gw.port, "GET", "/", &[("x-misbehave", "cache"), ("x-n", &n.to_string())], b"").await;
        assert_eq!(resp.status, 200);
    }
    let grown = gw.rss().saturating_sub(before);
    assert!(grown < 40 << 20, "112 MiB offered to a 4 MiB cache grew the gateway by {} MiB", grown >> 20);
    assert!(
        !gw.stderr().contains("was not stored"),
        "256 KiB entries fit a 4 MiB cache: they are kept, old ones evicted"
    );
    assert_eq!(hostile("ok").await.status, 200, "a plugin within its limits runs as before");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_one_failure_kind_does_not_hide_the_first_of_another() {
    let up = Upstream::start("u").await;
    let gw = one_route(&up, "/")
        .plugins_toml("[defaults]\ncpu_ms = 20\nmemory_mb = 16\nquarantine = { after = 0 }")
        .plugin("misbehave", "route = \"r\"", "")
        .only_modules(&["misbehave"])
        .start()
        .await;
    for _ in 0..15 {
        assert_eq!(request(gw.port, "GET", "/", &[("x-misbehave", "loop")], b"").await.status, 500);
    }
    for mode in ["trap", "grow", "error"] {
        assert_eq!(request(gw.port, "GET", "/", &[("x-misbehave", mode)], b"").await.status, 500, "{mode}");
    }
    let log = gw.stderr();
    assert_eq!(log.matches("stopped at its CPU deadline").count(), 10, "the deadline hits' budget:\n{log}");
    for first in ["trapped", "exceeded its memory limit", "returned an error"] {
        assert!(log.contains(first), "the first {first:?} is logged after the flood:\n{log}");
    }
}

/// A plugin that loops while validating its configuration stops the load at the load deadline
/// (at least 1 s, or `cpu_ms` when longer), and says so; the phase deadline does not apply.
#[test]
fn a_configuration_that_loops_in_validation_is_refused_at_the_load_deadline() {
    for (cpu_ms, says) in [(50, "stopped at its CPU deadline (1000 ms)"), (1500, "(1500 ms)")] {
        let started = std::time::Instant::now();
        let (code, out) = Config::new()
            .plugins_toml(&format!("[defaults]\ncpu_ms = {cpu_ms}"))
            .plugin("misbehave", "", "configure_loop = true")
            .only_modules(&["misbehave"])
            .check();
        assert!(code != 0 && out.contains(says), "{out}");
        assert!(started.elapsed() >= Duration::from_millis(1000), "{:?}", started.elapsed());
    }
}
