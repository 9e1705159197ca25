//! The bundled plugins through the real gateway, built from `plugins/` as `.wasm`: defaults, each
//! option, the exact answers and headers (Kong's), and bad configurations refused at load.

mod acl;
mod basic_auth;
mod bot_detection;
mod correlation_id;
mod cors;
mod gray_release;
mod hmac_auth;
mod ip_restriction;
mod jwt;
mod key_auth;
mod log_plugins;
mod rate_limiting;
mod request_size_limiting;
mod request_termination;
mod scopes;
mod transformers;
mod ua_rate_limiting;
mod walkthroughs;

use crate::support::{Config, Echo, Gateway, Upstream, request};

/// Alice's id, as configured.
pub const ALICE_ID: &str = "8d2b7c7e-4f4e-4b8e-9a55-3a1d2c3b4a01";

/// One service on `up` with route `api` (`/`), and consumers: alice (key `k-alice`, groups admins
/// and dev, custom_id alice-7), bob (key `k-bob`, group guests) and guest (no key).
pub fn entities(up: &Upstream) -> Config {
    entities_on(&up.url())
}

fn entities_on(url: &str) -> Config {
    Config::new()
        .service("svc", url)
        .route("api", &["/"])
        .consumer("alice")
        .set(&format!("id = {ALICE_ID:?}\ncustom_id = \"alice-7\""))
        .key("k-alice")
        .set("id = \"0a9e2c1d-1111-4a2b-8c3d-4e5f6a7b8c9d\"")
        .acl("admins")
        .acl("dev")
        .consumer("bob")
        .key("k-bob")
        .acl("guests")
        .consumer("guest")
}

/// A gateway with the entities above and `plugins` (a plugins.toml body).
pub async fn start(plugins: &str) -> (Gateway, Upstream) {
    start_with(plugins, "", "").await
}

/// Like [`start`], with extra `[server]` lines and extra entities (TOML tables).
pub async fn start_with(plugins: &str, server: &str, extra: &str) -> (Gateway, Upstream) {
    let up = Upstream::start("up").await;
    let gw = entities(&up).raw(extra).server(server).plugins_toml(plugins).start().await;
    (gw, up)
}

/// `[[plugins]]` for `name` on route `api` with `config` (an inline TOML table body).
pub fn on_route(name: &str, config: &str) -> String {
    format!("[[plugins]]\nname = \"{name}\"\nroute = \"api\"\nconfig = {{ {config} }}\n")
}

/// Runs `wasmgate check` on a configuration with `plugins`, expecting it to fail; the output.
pub fn refused(plugins: &str) -> String {
    let cfg = entities_on("http://127.0.0.1:9").upstream("canary").target("127.0.0.1:9", 100).plugins_toml(plugins);
    let (code, out) = cfg.check();
    assert_eq!(code, 1, "expected the configuration to be refused:\n{out}");
    out
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
