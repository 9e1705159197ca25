//! The bundled plugins through the real gateway, built from `plugins/` as `.wasm`: defaults, each
//! option, the exact answers and headers (Kong's), and bad configurations refused at load.

mod acl;
mod bot_detection;
mod correlation_id;
mod gray_release;
mod ip_restriction;
mod key_auth;
mod log_plugins;
mod rate_limiting;
mod request_termination;
mod ua_rate_limiting;
mod walkthroughs;

use crate::support::gateway::run_cli;
use crate::support::{Echo, Gateway, Upstream, request};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Consumers: alice (key `k-alice`, groups admins and dev, custom_id alice-7), bob (key `k-bob`,
/// group guests) and guest (no key).
pub const CONSUMERS: &str = r#"
[[consumers]]
id = "8d2b7c7e-4f4e-4b8e-9a55-3a1d2c3b4a01"
username = "alice"
custom_id = "alice-7"
[[consumers.keyauth_credentials]]
id = "0a9e2c1d-1111-4a2b-8c3d-4e5f6a7b8c9d"
key = "k-alice"
[[consumers.acls]]
group = "admins"
[[consumers.acls]]
group = "dev"

[[consumers]]
username = "bob"
[[consumers.keyauth_credentials]]
key = "k-bob"
[[consumers.acls]]
group = "guests"

[[consumers]]
username = "guest"
"#;

/// Alice's id, as configured.
pub const ALICE_ID: &str = "8d2b7c7e-4f4e-4b8e-9a55-3a1d2c3b4a01";

/// One service on `up` with route `api` (`/`), plus [`CONSUMERS`] and `extra` entities.
pub fn entities(up: &Upstream, extra: &str) -> String {
    format!(
        "[[services]]\nname = \"svc\"\nurl = \"{}\"\n[[services.routes]]\nname = \"api\"\npaths = [\"/\"]\n{CONSUMERS}\n{extra}",
        up.url()
    )
}

/// A gateway with the entities above and `plugins` (a plugins.toml body).
pub async fn start(plugins: &str) -> (Gateway, Upstream) {
    start_with(plugins, "", "").await
}

/// Like [`start`], with extra `[server]` lines and extra entities.
pub async fn start_with(plugins: &str, server: &str, extra: &str) -> (Gateway, Upstream) {
    let up = Upstream::start("up").await;
    let gw = Gateway::builder(&entities(&up, extra)).server(server).plugins(plugins).start().await;
    (gw, up)
}

/// `[[plugins]]` for `name` on route `api` with `config` (an inline TOML table body).
pub fn on_route(name: &str, config: &str) -> String {
    format!("[[plugins]]\nname = \"{name}\"\nroute = \"api\"\nconfig = {{ {config} }}\n")
}

/// Runs `wasmgate check` on a configuration with `plugins`, expecting it to fail; the output.
pub fn refused(plugins: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    for m in crate::support::plugins::all() {
        std::fs::copy(crate::support::plugins::wasm(&m), dir.path().join(format!("plugins/{m}.wasm"))).unwrap();
    }
    let entities = format!(
        "[server]\nplugins_file = \"plugins.toml\"\n\
         [[upstreams]]\nname = \"canary\"\n[[upstreams.targets]]\ntarget = \"127.0.0.1:9\"\n\
         [[services]]\nname = \"svc\"\nurl = \"http://127.0.0.1:9\"\n[[services.routes]]\nname = \"api\"\npaths = [\"/\"]\n{CONSUMERS}"
    );
    std::fs::write(dir.path().join("gateway.toml"), entities).unwrap();
    let cache = crate::support::plugins::cache_dir().display().to_string();
    std::fs::write(
        dir.path().join("plugins.toml"),
        format!("plugins_dir = \"plugins\"\ncache_dir = {cache:?}\n{plugins}"),
    )
    .unwrap();
    let (code, out, err) = run_cli(&["check", "-c", "gateway.toml"], dir.path());
    assert_eq!(code, 1, "expected the configuration to be refused:\n{out}{err}");
    err
}

/// Asserts that `plugins` is refused with a message containing `expected`.
pub fn assert_refused(plugins: &str, expected: &str) {
    let err = refused(plugins);
    assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
}

/// GET `path` with headers; the status, what the echo upstream saw (if it was reached) and the
/// response.
pub async fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> (u16, Option<Echo>, crate::support::Response) {
    let resp = request(gw.port, "GET", path, headers, b"").await;
    let echoed = resp.header("x-upstream").is_some() && resp.header("content-type") == Some("application/json");
    let echo = echoed.then(|| Echo::from(&resp));
    (resp.status, echo, resp)
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
