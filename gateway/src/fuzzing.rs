//! Entry points of the fuzz targets (`fuzz/`, run by `make fuzz`) and of their corpus smoke test
//! in `make test`. Each takes any bytes and must return, whatever they are, without a panic, an
//! abort or unbounded work: what a client of the Admin API, an operator's file or a plugin
//! configuration can send the gateway.

use crate::admin::body;
use crate::admin::entity::{self, Write};
use crate::admin::kinds::Kind;
use crate::admin::records::Records;
use crate::config::{EscapedSlashes, GatewayConfig, bundled_plugins_dir, parse_toml};
use crate::entities::Entities;
use crate::plugins::PluginHost;
use crate::plugins::module::Module;
use crate::router::host::{HostPattern, RequestHost};
use crate::router::{RequestView, path};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// The admin body parser and entity checks: the first byte picks the kind and the encoding
/// (form or JSON), the rest is the body. Basic-auth is left out: each of its writes hashes a
/// password on purpose (tens of ms), which would only slow the fuzzer down.
pub fn admin_body(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let kinds: Vec<Kind> = Kind::ALL.iter().copied().filter(|k| *k != Kind::BasicAuths).collect();
    let kind = kinds[usize::from(selector >> 1) % kinds.len()];
    let content_type = if selector & 1 == 1 { "application/json" } else { "application/x-www-form-urlencoded" };
    let Ok((input, form)) = body::parse(Some(content_type), bytes) else { return };
    let (records, modules, compiling) = (Records::default(), HashMap::new(), Default::default());
    let entities = Arc::new(Entities::compile(&GatewayConfig::default()).expect("no entities compile"));
    let w = Write {
        records: &records,
        existing: None,
        id: "0".into(),
        parent: None,
        form,
        modules: &modules,
        compiling: &compiling,
        entities: &entities,
        now: 0,
    };
    let _ = entity::build(kind, input, &w);
}

/// The configuration loader: the text as `gateway.toml` (parsed and compiled), and as the
/// entities-only shape `POST /config` takes.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(cfg) = parse_toml::<GatewayConfig>(text) {
        let _ = Entities::compile(&cfg);
    }
    let _ = crate::admin::parse_entities(text);
}

/// Routes with every kind of host and path the router knows.
const ROUTES: &str = r#"
[[services]]
name = "s"
url = "http://127.0.0.1:1"
[[services.routes]]
paths = ["/public", "/api/v1/"]
hosts = ["example.com", "*.example.org", "api.*"]
[[services.routes]]
paths = ['~/users/(?<id>\d+)$', '~/files/.+']
methods = ["GET", "POST"]
[[services.routes]]
hosts = ["example.com:8443"]
headers = { x-version = ["2"] }
"#;

/// Host and path parsing, path normalisation and routing: the first line is the host, the rest
/// the path.
pub fn router(data: &[u8]) {
    static ENTITIES: LazyLock<Entities> = LazyLock::new(|| {
        Entities::compile(&parse_toml(ROUTES).expect("the fuzz routes parse")).expect("the fuzz routes compile")
    });
    let text = String::from_utf8_lossy(data);
    let (host, raw_path) = text.split_once('\n').unwrap_or(("example.com", &text));
    let _ = HostPattern::parse(host);
    let host = RequestHost::parse(host, 8000);
    let headers = http::HeaderMap::new();
    for setting in [EscapedSlashes::Reject, EscapedSlashes::Decode, EscapedSlashes::Keep] {
        if let Ok(normalized) = path::normalize_checked(raw_path, setting) {
            let view = RequestView { method: "GET", host: &host, path: &normalized, headers: &headers };
            if let Some(found) = ENTITIES.router.find(&view) {
                let stripped = found.matched_len.map(|n| &normalized[..n.min(normalized.len())]);
                let _ = path::upstream_path(&normalized, stripped, true, "/base");
            }
        }
    }
}

/// The bundled plugin modules (`target/plugins`, built by `make plugins`), loaded once.
static LOADED: LazyLock<(Vec<Arc<Module>>, Arc<Entities>)> = LazyLock::new(|| {
    let host = PluginHost::default();
    let mut files: Vec<_> = std::fs::read_dir(bundled_plugins_dir())
        .map(|dir| dir.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "wasm")).collect())
        .unwrap_or_default();
    files.sort();
    let modules = files.iter().filter_map(|f| host.load_file(f).ok()).collect();
    (modules, Arc::new(Entities::compile(&parse_toml(ROUTES).expect("the fuzz routes parse")).expect("compile")))
});

/// Loads the plugin modules before the first input (compiling them takes longer than the
/// fuzzer lets one input run).
pub fn plugin_configure_init() {
    LazyLock::force(&LOADED);
}

/// A plugin configuration through the host: the first byte picks one of the bundled plugins,
/// the rest is its configuration as JSON.
pub fn plugin_configure(data: &[u8]) {
    let (modules, entities) = &*LOADED;
    let Some((&selector, json)) = data.split_first() else { return };
    let Some(module) = modules.get(usize::from(selector) % modules.len().max(1)) else { return };
    let Ok(json) = std::str::from_utf8(json) else { return };
    let _ = module.configure(1, json, entities);
}
