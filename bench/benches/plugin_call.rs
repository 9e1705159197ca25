//! Cost of one phase call into a no-op plugin: instance checkout from the pool, moving the request
//! into the store and back, the epoch deadline, and the call through the component model.
//! Needs the plugins built (`scripts/build-plugins.sh`, which `make bench` runs).

use criterion::{Criterion, criterion_group, criterion_main};
use pingora_http::RequestHeader;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use wasmgate::config::GatewayConfig;
use wasmgate::plugins::PluginHost;
use wasmgate::plugins::config::PluginsFile;
use wasmgate::plugins::module::CallScope;
use wasmgate::plugins::state::{Phase, RequestState};
use wasmgate::snapshot::Entities;

fn bench_call(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("wasmgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(root.join("target/test-plugins/noop.wasm"), dir.join("noop.wasm"))
        .expect("run scripts/build-plugins.sh first");
    let file = PluginsFile { plugins_dir: dir.clone(), ..PluginsFile::default() };
    let host = PluginHost::default();
    let modules = host.load_modules(&file, &dir.join("plugins.toml")).expect("noop loads");
    let noop = modules["noop"].clone();
    let entities = Arc::new(Entities::build(&GatewayConfig::default()).unwrap());
    let id = 7;
    noop.configure(id, "{}", &entities).unwrap();

    let mut req = RequestHeader::build("GET", b"/bench?x=1", None).unwrap();
    for i in 0..20 {
        req.insert_header(format!("x-header-{i}"), "value").unwrap();
    }
    let mut state = RequestState::new(entities.clone());
    c.bench_function("plugin/noop-access-call", |b| {
        b.iter(|| {
            let mut scope = CallScope { phase: Phase::Access, req: &mut req, resp: None, state: &mut state };
            let r = noop.call(&mut scope, Some((id, "{}")), |p, s| p.wasmgate_plugin_handler().call_access(s, id));
            black_box(r.is_ok())
        })
    });
}

criterion_group!(benches, bench_call);
criterion_main!(benches);
