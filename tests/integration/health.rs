//! Balancing algorithms and upstream health against real upstream servers that the tests stop and
//! start: weights, consistent hashing, least-connections, retries around a dead target, active and
//! passive checks with half-open recovery, the threshold, and walkthroughs 3 and 4.

use crate::support::admin::{call, embedded};
use crate::support::{Config, Gateway, TlsServer, Upstream, eventually, free_port, pool, request};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// A gateway balancing `/` over `targets` with the extra upstream settings `settings`.
async fn balanced(targets: &[&Upstream], settings: &str) -> Gateway {
    let addresses: Vec<String> = targets.iter().map(|t| t.addr()).collect();
    balanced_over(&addresses, settings).start().await
}

/// An upstream `pool` (with `settings`) of `addresses`, behind service `s` (2 retries) and route
/// `r` on `/`.
fn balanced_over(addresses: &[String], settings: &str) -> Config {
    let mut cfg = Config::new().upstream("pool").set(settings);
    for address in addresses {
        cfg = cfg.target(address, 100);
    }
    cfg.service_on("s", "pool").set("retries = 2").route("r", &["/"])
}

async fn served_by(gw: &Gateway, headers: &[(&str, &str)]) -> String {
    let resp = request(gw.port, "GET", "/", headers, b"").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.header("x-upstream").unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn weights_hold_over_three_thousand_requests() {
    let ups = [Upstream::start("a").await, Upstream::start("b").await, Upstream::start("c").await];
    let gw = pool(&[(&ups[0].addr(), 100), (&ups[1].addr(), 100), (&ups[2].addr(), 50)], "").start().await;
    for _ in 0..3000 {
        served_by(&gw, &[]).await;
    }
    let shares: Vec<f64> = ups.iter().map(|u| u.hits() as f64 / 30.0).collect();
    for (share, want) in shares.iter().zip([40.0, 40.0, 20.0]) {
        assert!((share - want).abs() <= 3.0, "{shares:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn consistent_hashing_sticks_per_key_and_moves_about_a_quarter_when_a_fourth_target_comes() {
    let ups = [Upstream::start("h1").await, Upstream::start("h2").await, Upstream::start("h3").await];
    let fourth = Upstream::start("h4").await;
    let mut gw = embedded().await;
    assert_eq!(
        call(&gw, "POST", "/upstreams", "name=pool&algorithm=consistent-hashing&hash_on=header&hash_on_header=x-user")
            .await
            .status,
        201
    );
    for u in &ups {
        assert_eq!(call(&gw, "POST", "/upstreams/pool/targets", &format!("target={}", u.addr())).await.status, 201);
    }
    assert_eq!(call(&gw, "POST", "/services", "name=s&host=pool").await.status, 201);
    assert_eq!(call(&gw, "POST", "/services/s/routes", "paths[]=/").await.status, 201);

    let mut before = HashMap::new();
    for k in 0..400 {
        let key = format!("user-{k}");
        let first = served_by(&gw, &[("x-user", &key)]).await;
        assert_eq!(served_by(&gw, &[("x-user", &key)]).await, first, "sticky for {key}");
        before.insert(key, first);
    }
    let used: std::collections::HashSet<&String> = before.values().collect();
    assert_eq!(used.len(), 3, "every target gets keys");

    assert_eq!(call(&gw, "POST", "/upstreams/pool/targets", &format!("target={}", fourth.addr())).await.status, 201);
    let mut moved = 0;
    for (key, was) in &before {
        let now = served_by(&gw, &[("x-user", key)]).await;
        if now != *was {
            assert_eq!(now, "h4", "a key only moves to the new target");
            moved += 1;
        }
    }
    assert!((60..=140).contains(&moved), "about 1/4 of 400 keys moved (100 ± 4.6σ): {moved}");

    // Sticky across a restart too: the ring depends only on the targets.
    let key = "user-7";
    let sticky = served_by(&gw, &[("x-user", key)]).await;
    gw.restart().await;
    assert_eq!(served_by(&gw, &[("x-user", key)]).await, sticky);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hash_cookie_is_set_when_absent_and_then_sticks() {
    let ups = [Upstream::start("c1").await, Upstream::start("c2").await, Upstream::start("c3").await];
    let settings = "algorithm = \"consistent-hashing\"\nhash_on = \"cookie\"\nhash_on_cookie = \"lb\"\nhash_on_cookie_path = \"/app\"";
    let gw = balanced(&[&ups[0], &ups[1], &ups[2]], settings).await;
    let first = request(gw.port, "GET", "/", &[], b"").await;
    let cookie = first.header("set-cookie").expect("a cookie is set").to_string();
    assert!(cookie.starts_with("lb=") && cookie.ends_with("; Path=/app"), "{cookie}");
    let value = cookie.split(';').next().unwrap().to_string();
    let served = first.header("x-upstream").unwrap().to_string();
    for _ in 0..10 {
        let resp = request(gw.port, "GET", "/", &[("cookie", &value)], b"").await;
        assert_eq!(resp.header("x-upstream"), Some(served.as_str()));
        assert!(resp.header("set-cookie").is_none(), "not set again");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn least_connections_favours_the_fast_target() {
    let fast = Upstream::start("fast").await;
    let slow = Upstream::start_slow("slow", Duration::from_millis(150)).await;
    let gw = balanced(&[&fast, &slow], "algorithm = \"least-connections\"").await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        let port = gw.port;
        clients.push(tokio::spawn(async move {
            for _ in 0..15 {
                assert_eq!(request(port, "GET", "/", &[], b"").await.status, 200);
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    assert!(fast.hits() > 3 * slow.hits(), "fast {} vs slow {}", fast.hits(), slow.hits());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_killed_under_load_costs_no_client_a_failure() {
    let stays = Upstream::start("stays").await;
    let dies = Upstream::start("dies").await;
    let gw = balanced(&[&stays, &dies], "").await;
    let load = {
        let port = gw.port;
        tokio::spawn(async move {
            let mut failures = 0;
            for _ in 0..400 {
                if request(port, "GET", "/", &[], b"").await.status != 200 {
                    failures += 1;
                }
            }
            failures
        })
    };
    eventually("the load reaches both targets", async || dies.hits() > 0 && stays.hits() > 0).await;
    drop(dies);
    assert_eq!(load.await.unwrap(), 0, "retries hide the dead target");
}

/// A target that reads each request and hangs up without answering; counts the requests taken.
async fn hang_up_target() -> (std::net::SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let taken = Arc::new(AtomicUsize::new(0));
    let server = {
        let taken = taken.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                taken.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    (addr, taken, server)
}

/// A request may have reached a target that hung up, so only an idempotent one is sent to the
/// next target, as nginx and Kong do.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_hang_up_only_idempotent_requests_are_sent_again() {
    let good = Upstream::start("good").await;
    let (hang_up, taken, server) = hang_up_target().await;
    let gw = balanced_over(&[hang_up.to_string(), good.addr()], "").start().await;
    for _ in 0..4 {
        assert_eq!(request(gw.port, "GET", "/", &[], b"").await.status, 200, "a GET goes to the next target");
    }
    let gets_taken = taken.load(Ordering::SeqCst);
    assert!(gets_taken > 0, "round-robin sent some GETs to the target that hangs up");
    let mut posts = Vec::new();
    for _ in 0..4 {
        posts.push(request(gw.port, "POST", "/", &[("content-type", "text/plain")], b"order").await.status);
    }
    let posts_taken = taken.load(Ordering::SeqCst) - gets_taken;
    assert!(posts_taken > 0, "round-robin sent some POSTs to the target that hangs up");
    assert_eq!(posts.iter().filter(|s| **s == 502).count(), posts_taken, "{posts:?}: a POST is never sent twice");
    server.abort();
}

/// A body a plugin replaced (key-auth taking the key out of a form) goes whole to the next target.
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_request_carries_the_body_a_plugin_replaced() {
    let good = Upstream::start("good").await;
    let (hang_up, taken, server) = hang_up_target().await;
    let gw = balanced_over(&[hang_up.to_string(), good.addr()], "")
        .consumer("alice")
        .key("k-alice")
        .plugin("key-auth", "route = \"r\"", "key_in_body = true, hide_credentials = true")
        .start()
        .await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    for _ in 0..4 {
        let resp = request(gw.port, "PUT", "/", &form, b"apikey=k-alice&item=7").await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        let echo = crate::support::Echo::from(&resp);
        assert_eq!(echo.body, "item=7", "the replaced body, whole, on whichever try");
    }
    assert!(taken.load(Ordering::SeqCst) > 0, "round-robin sent some to the target that hangs up");
    server.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn active_checks_mark_a_target_down_and_up_again() {
    let steady = Upstream::start("steady").await;
    let flaky = Upstream::start("flaky").await;
    let port = flaky.port;
    let settings = "[upstreams.healthchecks.active]\ntimeout = 0.5\nhttp_path = \"/status\"\n\
                    healthy = { interval = 0.1, successes = 2 }\n\
                    unhealthy = { interval = 0.1, tcp_failures = 2, http_failures = 2 }\n";
    let gw = balanced(&[&steady, &flaky], settings).await;
    eventually("flaky is probed", async || flaky.hits() >= 2).await;
    drop(flaky);
    gw.wait_for_log("state=\"unhealthy\" by=\"active\"", 1).await;
    for _ in 0..10 {
        assert_eq!(served_by(&gw, &[]).await, "steady", "the down target gets no traffic");
    }
    let back = Upstream::start_on("flaky", port).await;
    gw.wait_for_log("state=\"healthy\" by=\"active\"", 1).await;
    eventually("flaky serves again", async || served_by(&gw, &[]).await == "flaky").await;
    assert!(back.hits() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_passive_trip_recovers_through_one_half_open_trial() {
    let steady = Upstream::start("steady").await;
    let port = free_port();
    let settings = "[upstreams.healthchecks.passive]\nhalf_open_after = 0.5\nunhealthy = { tcp_failures = 1 }";
    let gw = balanced_over(&[steady.addr(), format!("127.0.0.1:{port}")], settings).start().await;
    for _ in 0..4 {
        assert_eq!(served_by(&gw, &[]).await, "steady", "the dead target's failure is retried");
    }
    gw.wait_for_log("state=\"unhealthy\" by=\"passive\"", 1).await;
    let health = request(gw.admin, "GET", "/upstreams/pool/health", &[], b"").await.json();
    let states: Vec<&str> = health["data"].as_array().unwrap().iter().map(|t| t["health"].as_str().unwrap()).collect();
    assert!(states.contains(&"UNHEALTHY"), "{health}");

    let back = Upstream::start_on("back", port).await;
    eventually("the trial brings it back", async || served_by(&gw, &[]).await == "back").await;
    gw.wait_for_log("state=\"healthy\" by=\"passive\"", 1).await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(served_by(&gw, &[]).await);
    }
    assert!(seen.iter().any(|s| s == "back") && seen.iter().any(|s| s == "steady"), "both serve: {seen:?}");
    assert!(back.hits() >= 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn below_the_threshold_the_upstream_answers_503_at_once_also_after_a_reload() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let gw = balanced(&[&a, &b], "[upstreams.healthchecks]\nthreshold = 60").await;
    assert_eq!(request(gw.port, "GET", "/", &[], b"").await.status, 200);
    let marked = request(gw.admin, "PUT", &format!("/upstreams/pool/targets/{}/unhealthy", b.addr()), &[], b"").await;
    assert_eq!(marked.status, 204);
    let refused = request(gw.port, "GET", "/", &[], b"").await;
    assert_eq!(
        (refused.status, refused.json()["message"].as_str()),
        (503, Some("failure to get a peer from the ring-balancer"))
    );
    let balancer = request(gw.admin, "GET", "/upstreams/pool/health?balancer_health=1", &[], b"").await.json();
    assert_eq!(balancer["data"]["health"], "UNHEALTHY");
    gw.signal(libc::SIGHUP);
    gw.wait_for_log("configuration reloaded", 1).await;
    assert_eq!(request(gw.port, "GET", "/", &[], b"").await.status, 503, "a reload keeps known health");
    assert_eq!(
        request(gw.admin, "POST", &format!("/upstreams/pool/targets/{}/healthy", b.addr()), &[], b"").await.status,
        204
    );
    assert_eq!(request(gw.port, "GET", "/", &[], b"").await.status, 200);
}

/// Walkthrough 3 (blue-green, then canary, live) and walkthrough 4 (manual health).
#[tokio::test(flavor = "multi_thread")]
async fn walkthroughs_3_and_4_blue_green_canary_and_manual_health() {
    let blue = [Upstream::start("blue-1").await, Upstream::start("blue-2").await];
    let green = [Upstream::start("green-1").await, Upstream::start("green-2").await];
    let gw = embedded().await;
    let host = [("host", "address.mydomain.com")];
    assert_eq!(call(&gw, "POST", "/upstreams", "name=address.v1.service").await.status, 201);
    for (u, w) in blue.iter().zip([100, 50]) {
        let body = format!("target={}&weight={w}", u.addr());
        assert_eq!(call(&gw, "POST", "/upstreams/address.v1.service/targets", &body).await.status, 201);
    }
    let service = call(&gw, "POST", "/services/", "name=address-service&host=address.v1.service&path=/address").await;
    assert_eq!(service.status, 201, "{}", service.text());
    assert_eq!(
        call(&gw, "POST", "/services/address-service/routes/", "hosts[]=address.mydomain.com").await.status,
        201
    );
    let mut first = HashMap::new();
    for _ in 0..30 {
        let resp = request(gw.port, "GET", "/", &host, b"").await;
        assert_eq!(resp.json()["path"], "/address");
        *first.entry(resp.header("x-upstream").unwrap().to_string()).or_insert(0) += 1;
    }
    assert_eq!((first["blue-1"], first["blue-2"]), (20, 10), "2/3 and 1/3");

    assert_eq!(call(&gw, "POST", "/upstreams", "name=address.v2.service").await.status, 201);
    for u in &green {
        let body = format!("target={}&weight=100", u.addr());
        assert_eq!(call(&gw, "POST", "/upstreams/address.v2.service/targets", &body).await.status, 201);
    }
    // Switch under load: no request fails, and the next one goes green.
    let load = {
        let port = gw.port;
        tokio::spawn(async move {
            let mut failed = 0;
            for _ in 0..200 {
                failed += usize::from(
                    request(port, "GET", "/", &[("host", "address.mydomain.com")], b"").await.status != 200,
                );
            }
            failed
        })
    };
    assert_eq!(call(&gw, "PATCH", "/services/address-service", "host=address.v2.service").await.status, 200);
    assert!(request(gw.port, "GET", "/", &host, b"").await.header("x-upstream").unwrap().starts_with("green"));
    assert_eq!(load.await.unwrap(), 0);

    // Canary: posting an existing target again with a new weight updates it (900/100).
    for (u, w) in green.iter().zip([900, 100]) {
        let body = format!("target={}&weight={w}", u.addr());
        assert_eq!(call(&gw, "POST", "/upstreams/address.v2.service/targets", &body).await.status, 201);
    }
    let before = green[1].hits();
    for _ in 0..100 {
        request(gw.port, "GET", "/", &host, b"").await;
    }
    assert_eq!(green[1].hits() - before, 10, "10% to the canary");

    // Walkthrough 4: manual health, both verbs, and the health view.
    let t = green[1].addr();
    let path = |verdict: &str| format!("/upstreams/address.v2.service/targets/{t}/{verdict}");
    assert_eq!(request(gw.admin, "PUT", &path("unhealthy"), &[], b"").await.status, 204);
    let health = request(gw.admin, "GET", "/upstreams/address.v2.service/health", &[], b"").await.json();
    let of = |target: &str| {
        health["data"].as_array().unwrap().iter().find(|e| e["target"] == target).unwrap()["health"].clone()
    };
    assert_eq!((of(&t), of(&green[0].addr())), ("UNHEALTHY".into(), "HEALTHCHECKS_OFF".into()), "{health}");
    let before = green[1].hits();
    for _ in 0..20 {
        request(gw.port, "GET", "/", &host, b"").await;
    }
    assert_eq!(green[1].hits(), before, "an unhealthy target gets nothing");
    assert_eq!(request(gw.admin, "POST", &path("healthy"), &[], b"").await.status, 204);
    let one = request(gw.admin, "GET", &format!("/upstreams/address.v2.service/targets/{t}/health"), &[], b"").await;
    assert_eq!(one.json()["health"], "HEALTHCHECKS_OFF", "{}", one.text());
    assert_eq!(
        request(gw.admin, "PUT", "/upstreams/address.v2.service/targets/10.9.9.9:1/healthy", &[], b"").await.status,
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn uri_capture_hashing_with_a_header_fallback() {
    let ups = [Upstream::start("u1").await, Upstream::start("u2").await, Upstream::start("u3").await];
    let mut cfg = Config::new().upstream("pool").set(
        "algorithm = \"consistent-hashing\"\nhash_on = \"uri_capture\"\nhash_on_uri_capture = \"uid\"\n\
         hash_fallback = \"header\"\nhash_fallback_header = \"x-user\"",
    );
    for u in &ups {
        cfg = cfg.target(&u.addr(), 100);
    }
    let gw = cfg.service_on("s", "pool").route("", &["~/users/(?<uid>[0-9]+)", "/other"]).start().await;
    let mut targets = std::collections::HashSet::new();
    for uid in 0..30 {
        let path = format!("/users/{uid}/orders");
        let first = request(gw.port, "GET", &path, &[], b"").await.header("x-upstream").unwrap().to_string();
        for _ in 0..3 {
            assert_eq!(request(gw.port, "GET", &path, &[], b"").await.header("x-upstream"), Some(first.as_str()));
        }
        targets.insert(first);
    }
    assert_eq!(targets.len(), 3, "the captures spread over the targets");
    let by_header = request(gw.port, "GET", "/other", &[("x-user", "alice")], b"").await;
    let again = request(gw.port, "GET", "/other", &[("x-user", "alice")], b"").await;
    assert_eq!(by_header.header("x-upstream"), again.header("x-upstream"), "the fallback sticks too");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_probes_use_tls_and_verify_certificates_when_asked() {
    let tls = TlsServer::start();
    eventually("the TLS server listens", async || {
        tokio::net::TcpStream::connect(("127.0.0.1", tls.port)).await.is_ok()
    })
    .await;
    let mut cfg = Config::new();
    for (name, verify) in [("lenient", false), ("strict", true)] {
        cfg = cfg
            .upstream(name)
            .set(&format!(
                "[upstreams.healthchecks.active]\ntype = \"https\"\nhttps_verify_certificate = {verify}\n\
                 healthy = {{ interval = 0.1, successes = 1 }}\n\
                 unhealthy = {{ interval = 0.1, tcp_failures = 1, http_failures = 1 }}"
            ))
            .target(&format!("127.0.0.1:{}", tls.port), 100);
    }
    let gw = cfg.start().await;
    let health = |name: &'static str| {
        let admin = gw.admin;
        async move {
            let h = request(admin, "GET", &format!("/upstreams/{name}/health"), &[], b"").await.json();
            h["data"][0]["health"].as_str().unwrap_or_default().to_string()
        }
    };
    eventually("a self-signed certificate fails verification", async || health("strict").await == "UNHEALTHY").await;
    let target = format!("/upstreams/lenient/targets/127.0.0.1:{}/unhealthy", tls.port);
    assert_eq!(request(gw.admin, "PUT", &target, &[], b"").await.status, 204);
    eventually("an https probe without verification brings it back", async || health("lenient").await == "HEALTHY")
        .await;
}
