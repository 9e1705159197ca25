//! Waiting for something to become true, with a deadline: the one polling loop of the tests.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a wait lasts by default: long enough for a loaded CI machine, short enough to fail.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Polls `check` every 25 ms until it returns true (then `true`), or until `limit` has passed
/// (then `false`).
pub async fn until(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `check` returns true; panics naming `what` after `limit`.
pub async fn eventually_within(limit: Duration, what: &str, check: impl AsyncFnMut() -> bool) {
    assert!(until(limit, check).await, "gave up after {limit:?} waiting for {what}");
}

/// [`eventually_within`] the default [`PATIENCE`].
pub async fn eventually(what: &str, check: impl AsyncFnMut() -> bool) {
    eventually_within(PATIENCE, what, check).await
}

/// Waits until at least `margin` remains in the current minute, so that a test counting within
/// one minute is not split across two windows.
pub async fn away_from_minute_end(margin: Duration) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = Duration::from_millis((now.as_millis() % 60_000) as u64);
    if Duration::from_secs(60) - into < margin {
        tokio::time::sleep(Duration::from_secs(60) - into + Duration::from_millis(100)).await;
    }
}

/// The JSON lines of the file at `path` once it has at least `n` (or what it has after 10 s).
pub async fn json_lines(path: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let read = || -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
    };
    until(Duration::from_secs(10), async || read().len() >= n).await;
    read()
}
