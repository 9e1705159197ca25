//! Smooth weighted round-robin over upstream targets, through the gateway.

use crate::support::{Gateway, Upstream, pool, request};

/// A gateway balancing `/` over one echo upstream per (name, weight).
async fn weighted(weights: &[(&str, u32)]) -> (Gateway, Vec<Upstream>) {
    let mut ups = Vec::new();
    for (name, _) in weights {
        ups.push(Upstream::start(name).await);
    }
    let addresses: Vec<String> = ups.iter().map(Upstream::addr).collect();
    let targets: Vec<(&str, u32)> = addresses.iter().map(String::as_str).zip(weights.iter().map(|w| w.1)).collect();
    (pool(&targets, "").start().await, ups)
}

async fn sequence(gw: &Gateway, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let resp = request(gw.port, "GET", "/", &[], b"").await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        out.push(resp.header("x-upstream").unwrap().to_string());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn weights_100_100_50_give_40_40_20_interleaved() {
    let (gw, _ups) = weighted(&[("a", 100), ("b", 100), ("c", 50)]).await;
    let seq = sequence(&gw, 250).await;
    assert_eq!(&seq[..5], ["a", "b", "c", "a", "b"], "smooth: interleaved, not in runs");
    let count = |n: &str| seq.iter().filter(|s| *s == n).count();
    assert_eq!((count("a"), count("b"), count("c")), (100, 100, 50));
    let longest_run = seq.chunk_by(|x, y| x == y).map(|r| r.len()).max().unwrap();
    assert_eq!(longest_run, 1, "no target is chosen twice in a row with these weights");
}

#[tokio::test(flavor = "multi_thread")]
async fn weight_zero_takes_a_target_out() {
    let (gw, ups) = weighted(&[("on", 100), ("off", 0)]).await;
    let seq = sequence(&gw, 20).await;
    assert!(seq.iter().all(|s| s == "on"));
    assert_eq!(ups[1].hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_without_usable_targets_is_503() {
    let (gw, _ups) = weighted(&[("off", 0)]).await;
    let resp = request(gw.port, "GET", "/", &[], b"").await;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.json()["message"], "failure to get a peer from the ring-balancer");
}
