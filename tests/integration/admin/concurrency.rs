//! Many writers at once while traffic flows: no proxied request fails, every write lands whole,
//! and what is saved is what is served, also after a restart.

use super::{call, embedded};
use crate::support::{Upstream, request};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const WRITERS: usize = 8;
const EACH: usize = 6;

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writers_under_traffic_leave_a_consistent_state() {
    let up = Upstream::start("steady").await;
    let mut gw = embedded().await;
    assert_eq!(call(&gw, "POST", "/services", &format!("name=steady&url={}", up.url())).await.status, 201);
    assert_eq!(call(&gw, "POST", "/services/steady/routes", "paths[]=/steady").await.status, 201);

    let done = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let traffic = {
        let (done, served, failed, port) = (done.clone(), served.clone(), failed.clone(), gw.port);
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !done.load(Ordering::Relaxed) && Instant::now() < deadline && served.load(Ordering::Relaxed) < 5000 {
                let status = request(port, "GET", "/steady", &[], b"").await.status;
                let counter = if status == 200 { &served } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (admin, url) = (gw.admin, up.url());
        writers.push(tokio::spawn(async move {
            let form = [("content-type", "application/x-www-form-urlencoded")];
            for i in 0..EACH {
                let body = format!("name=w{w}-{i}&url={url}");
                assert_eq!(request(admin, "POST", "/services", &form, body.as_bytes()).await.status, 201);
                let body = format!("paths[]=/w{w}-{i}");
                let route = request(admin, "POST", &format!("/services/w{w}-{i}/routes"), &form, body.as_bytes()).await;
                assert_eq!(route.status, 201, "{}", route.text());
                let body = format!("retries={i}");
                assert_eq!(request(admin, "PATCH", "/services/steady", &form, body.as_bytes()).await.status, 200);
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no proxied request failed ({} served)",
        served.load(Ordering::Relaxed)
    );
    assert!(served.load(Ordering::Relaxed) > 0);

    let count = |gw_admin: u16, path: &'static str| async move {
        request(gw_admin, "GET", path, &[], b"").await.json()["data"].as_array().unwrap().len()
    };
    assert_eq!(count(gw.admin, "/services?size=1000").await, 1 + WRITERS * EACH);
    assert_eq!(count(gw.admin, "/routes?size=1000").await, 1 + WRITERS * EACH);
    for w in 0..WRITERS {
        for i in 0..EACH {
            assert_eq!(request(gw.port, "GET", &format!("/w{w}-{i}"), &[], b"").await.status, 200, "/w{w}-{i}");
        }
    }
    let before = request(gw.admin, "GET", "/config", &[], b"").await.text();
    gw.restart().await;
    assert_eq!(request(gw.admin, "GET", "/config", &[], b"").await.text(), before, "saved as served");
    assert_eq!(request(gw.port, "GET", &format!("/w{}-{}", WRITERS - 1, EACH - 1), &[], b"").await.status, 200);
}
