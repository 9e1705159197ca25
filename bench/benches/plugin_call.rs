//! The plugin path without the network:
//! - `plugin/noop-access-call`: one phase call into a no-op plugin (instance checkout from the
//!   pool, moving the request into the store and back, the epoch deadline, the component call);
//! - `plugin/key-auth+rate-limiting`: what those two real plugins cost a request (their access
//!   phases and the response headers rate-limiting sets), host functions included.
//!
//! Needs the plugins built (`scripts/build-plugins.sh`, which `make bench` runs).

use criterion::{Criterion, criterion_group, criterion_main};
use pingora_http::{RequestHeader, ResponseHeader};
use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use wasmgate::config::GatewayConfig;
use wasmgate::plugins::PluginHost;
use wasmgate::plugins::config::PluginsFile;
use wasmgate::plugins::module::{CallScope, Module};
use wasmgate::plugins::state::{Phase, RequestState};
use wasmgate::snapshot::Entities;

const GATEWAY: &str = r#"
[[services]]
name = "s"
url = "http://127.0.0.1:1"
[[services.routes]]
name = "r"
paths = ["/"]
[[consumers]]
username = "bench"
[[consumers.keyauth_credentials]]
key = "bench-key"
"#;

fn load(names: &[&str]) -> (HashMap<String, Arc<Module>>, Arc<Entities>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("wasmgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in names {
        let built = ["target/test-plugins", "target/plugins"].map(|d| root.join(d).join(format!("{name}.wasm")));
        let src = built.iter().find(|p| p.is_file()).expect("run scripts/build-plugins.sh first");
        std::fs::copy(src, dir.join(format!("{name}.wasm"))).unwrap();
    }
    let file = PluginsFile { plugins_dir: dir.clone(), ..PluginsFile::default() };
    let modules = PluginHost::default().load_modules(&file, &dir.join("plugins.toml")).expect("plugins load");
    let cfg: GatewayConfig = toml::from_str(GATEWAY).unwrap();
    (modules, Arc::new(Entities::build(&cfg, &Default::default()).unwrap()))
}

fn request() -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/bench?x=1", None).unwrap();
    for i in 0..20 {
        req.insert_header(format!("x-header-{i}"), "value").unwrap();
    }
    req.insert_header("apikey", "bench-key").unwrap();
    req
}

fn bench_noop(c: &mut Criterion) {
    let (modules, entities) = load(&["noop"]);
    let noop = modules["noop"].clone();
    let id = 7;
    noop.configure(id, "{}", &entities).unwrap();
    let mut req = request();
    let mut state = RequestState::new(entities.clone());
    c.bench_function("plugin/noop-access-call", |b| {
        b.iter(|| {
            let mut scope = CallScope { phase: Phase::Access, req: &mut req, resp: None, state: &mut state };
            let r = noop.call(&mut scope, Some((id, "{}")), |p, s| p.wasmgate_plugin_handler().call_access(s, id));
            black_box(r.is_ok())
        })
    });
}

fn bench_key_auth_rate_limiting(c: &mut Criterion) {
    let (modules, entities) = load(&["key-auth", "rate-limiting"]);
    let (key_auth, limits) = (modules["key-auth"].clone(), modules["rate-limiting"].clone());
    let limits_json = r#"{"second":1000000000,"limit_by":"consumer"}"#;
    key_auth.configure(1, "{}", &entities).unwrap();
    limits.configure(2, limits_json, &entities).unwrap();
    // The plugins' header writes are idempotent, so one request and response serve every
    // iteration; the request state is new each time, as it is per request.
    let mut req = request();
    let mut resp = ResponseHeader::build(200, None).unwrap();
    c.bench_function("plugin/key-auth+rate-limiting", |b| {
        b.iter(|| {
            let mut state = RequestState::new(entities.clone());
            state.info.route = Some(0);
            state.info.service = Some(0);
            let mut scope = CallScope { phase: Phase::Access, req: &mut req, resp: None, state: &mut state };
            let auth = key_auth.call(&mut scope, Some((1, "{}")), |p, s| p.wasmgate_plugin_handler().call_access(s, 1));
            let limit =
                limits.call(&mut scope, Some((2, limits_json)), |p, s| p.wasmgate_plugin_handler().call_access(s, 2));
            assert!(auth.is_ok() && limit.is_ok());
            // The rate-limit headers rate-limiting set in access, as the proxy applies them.
            state.apply_response_headers(&mut resp);
            black_box(resp.headers.len())
        })
    });
}

criterion_group!(benches, bench_noop, bench_key_auth_rate_limiting);
criterion_main!(benches);
