//! The plugin path without the network:
//! - `plugin/noop-access-call`: one phase call into a no-op plugin (instance checkout from the
//!   pool, moving the request into the store and back, the epoch deadline, the component call on
//!   its fiber);
//! - `plugin/key-auth+rate-limiting`: what those two real plugins cost a request (their access
//!   phases and the response headers rate-limiting sets), host functions included;
//! - `plugin/five-plugins`: the access phase of the five-plugin chain `make bench-compare` runs
//!   (key-auth, rate-limiting, acl, correlation-id, gray-release), on a request and response whose
//!   header maps are new and sized as Pingora sizes them, then the response headers applied;
//! - `plugin/gray-release-access` and `plugin/gray-release-go-access`: the same access call into
//!   gray-release and its Go port (a header selector and a sticky percentage);
//! - `plugin/jwt-hs256-access` and `plugin/jwt-rs256-access`: jwt's access call with a valid
//!   token (the RS256 signature is remembered after the first verification, as it is in the
//!   gateway for a client that sends its token again);
//! - `plugin/load-gray-release` and `plugin/load-gray-release-go`: loading the module from the
//!   compiled-code cache, instantiating it and reading its metadata (a hot load, or a restart).
//!
//! Needs the plugins built (`scripts/build-plugins.sh`, which `make bench` runs).

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_executor::block_on;
use pingora_http::{RequestHeader, ResponseHeader};
use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use wasmgate::config::{ConfigErrors, GatewayConfig};
use wasmgate::config::{Limits, ModuleSettings, PluginsFile};
use wasmgate::entities::Entities;
use wasmgate::plugins::PluginHost;
use wasmgate::plugins::chain::PluginSet;
use wasmgate::plugins::engine::PluginEngine;
use wasmgate::plugins::module::{CallScope, Module, Source};
use wasmgate::plugins::phases::{self, Verdict};
use wasmgate::plugins::shared::Shared;
use wasmgate::request::{Phase, RequestState};

/// The gateway's allocator, so that allocation costs what it costs in the gateway.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const GATEWAY: &str = r#"
[[services]]
name = "s"
url = "http://127.0.0.1:1"
[[services.routes]]
name = "r"
paths = ["/"]
[[upstreams]]
name = "canary"
[[upstreams.targets]]
target = "127.0.0.1:2"
[[consumers]]
username = "bench"
[[consumers.keyauth_credentials]]
key = "bench-key"
"#;

/// The built module `name`.
fn built(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = ["target/test-plugins", "target/plugins"].map(|d| root.join(d).join(format!("{name}.wasm")));
    built.into_iter().find(|p| p.is_file()).expect("run scripts/build-plugins.sh first")
}

fn load(names: &[&str]) -> (HashMap<String, Arc<Module>>, Arc<Entities>) {
    let dir = std::env::temp_dir().join(format!("wasmgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in names {
        std::fs::copy(built(name), dir.join(format!("{name}.wasm"))).unwrap();
    }
    let file = PluginsFile { plugins_dir: dir.clone(), ..PluginsFile::default() };
    let modules = PluginHost::default()
        .load_modules(&file, &dir.join("plugins.toml"), &Default::default())
        .expect("plugins load");
    let cfg: GatewayConfig = toml::from_str(GATEWAY).unwrap();
    (modules, Arc::new(Entities::compile(&cfg).unwrap()))
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
            let r = noop.call_blocking(&mut scope, Some((id, "{}")), async |p, s| {
                p.wasmgate_plugin_handler().call_access(s, id).await
            });
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
            state.set_route(0);
            state.set_service(0);
            let mut scope = CallScope { phase: Phase::Access, req: &mut req, resp: None, state: &mut state };
            let auth = key_auth.call_blocking(&mut scope, Some((1, "{}")), async |p, s| {
                p.wasmgate_plugin_handler().call_access(s, 1).await
            });
            let limit = limits.call_blocking(&mut scope, Some((2, limits_json)), async |p, s| {
                p.wasmgate_plugin_handler().call_access(s, 2).await
            });
            assert!(auth.is_ok() && limit.is_ok());
            // The rate-limit headers rate-limiting set in access, as the proxy applies them.
            state.apply_response_headers(&mut resp);
            black_box(resp.headers.len())
        })
    });
}

fn bench_five_plugins(c: &mut Criterion) {
    // The setup `make bench-compare` runs, and the consumer's group that acl lets in.
    const FIVE: &str = concat!(
        include_str!("../plugins/key-auth-rate-limiting.toml"),
        include_str!("../plugins/acl-correlation-id-gray-release.toml"),
        "[[consumers.acls]]\ngroup = \"bench\"\n"
    );
    let (modules, _) = load(&["key-auth", "rate-limiting", "acl", "correlation-id", "gray-release"]);
    let cfg: GatewayConfig = toml::from_str(&format!("{GATEWAY}{FIVE}")).unwrap();
    let entities = Arc::new(Entities::compile(&cfg).unwrap());
    let mut errors = ConfigErrors::default();
    let set = PluginSet::build(&cfg.plugins, &modules, &HashMap::new(), &entities, &mut errors);
    assert!(errors.is_empty(), "{errors:?}");
    // What wrk sends, parsed as Pingora parses it: the maps sized for the headers that came.
    let request = || {
        let mut req = RequestHeader::build("GET", b"/", Some(2)).unwrap();
        req.insert_header("Host", "127.0.0.1:8000").unwrap();
        req.insert_header("apikey", "bench-key").unwrap();
        req
    };
    let response = || {
        let mut resp = ResponseHeader::build(200, Some(5)).unwrap();
        for (name, value) in
            [("Server", "nginx"), ("Date", "Tue, 01 Dec 2026 15:00:00 GMT"), ("Content-Type", "text/plain")]
        {
            resp.insert_header(name, value).unwrap();
        }
        resp.insert_header("Content-Length", "2").unwrap();
        resp.insert_header("Connection", "keep-alive").unwrap();
        resp
    };
    c.bench_function("plugin/five-plugins", |b| {
        b.iter_batched(
            || (request(), response(), RequestState::new(entities.clone())),
            |(mut req, mut resp, mut state)| {
                state.set_route(0);
                state.set_service(0);
                let mut chain = set.for_route(0).clone();
                let mut scope = CallScope { phase: Phase::Access, req: &mut req, resp: None, state: &mut state };
                assert_eq!(block_on(phases::access(&set, &mut chain, &mut scope)), Verdict::Continue);
                state.apply_response_headers(&mut resp);
                (req, resp, state)
            },
            BatchSize::SmallInput,
        )
    });
}

fn bench_gray_release_rust_and_go(c: &mut Criterion) {
    let config = r#"{"canary_upstream":"canary","headers":["x-canary=yes"],"percentage":10,"hash_on":"header:x-user"}"#;
    for name in ["gray-release", "gray-release-go"] {
        let (modules, entities) = load(&[name]);
        let module = modules[name].clone();
        module.configure(3, config, &entities).unwrap();
        let mut req = request();
        req.insert_header("x-user", "user-17").unwrap();
        c.bench_function(&format!("plugin/{name}-access"), |b| {
            b.iter(|| {
                let mut state = RequestState::new(entities.clone());
                let mut scope = CallScope { phase: Phase::Access, req: &mut req, resp: None, state: &mut state };
                let r = module.call_blocking(&mut scope, Some((3, config)), async |p, s| {
                    p.wasmgate_plugin_handler().call_access(s, 3).await
                });
                black_box(r.is_ok())
            })
        });
    }
}

fn bench_jwt(c: &mut Criterion) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::sign::Signer;
    let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let public = String::from_utf8(rsa.public_key_to_pem().unwrap()).unwrap();
    let credentials = format!(
        "[[consumers.jwt_secrets]]\nkey = \"hs\"\nsecret = \"bench-secret\"\n\
         [[consumers.jwt_secrets]]\nkey = \"rs\"\nalgorithm = \"RS256\"\nrsa_public_key = '''\n{public}'''\n"
    );
    let cfg: GatewayConfig = toml::from_str(&format!("{GATEWAY}{credentials}")).unwrap();
    let entities = Arc::new(Entities::compile(&cfg).unwrap());
    let (modules, _) = load(&["jwt"]);
    let jwt = modules["jwt"].clone();
    jwt.configure(4, "{}", &entities).unwrap();
    let hmac = PKey::hmac(b"bench-secret").unwrap();
    for (alg, iss, key) in [("HS256", "hs", &hmac), ("RS256", "rs", &rsa)] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"{iss}","exp":4102444800}}"#));
        let input = format!("{header}.{claims}");
        let signature =
            Signer::new(MessageDigest::sha256(), key).unwrap().sign_oneshot_to_vec(input.as_bytes()).unwrap();
        let mut req = request();
        req.insert_header("authorization", format!("Bearer {input}.{}", URL_SAFE_NO_PAD.encode(signature))).unwrap();
        let call = |req: &mut RequestHeader| {
            let mut state = RequestState::new(entities.clone());
            let mut scope = CallScope { phase: Phase::Access, req, resp: None, state: &mut state };
            let r = jwt.call_blocking(&mut scope, Some((4, "{}")), async |p, s| {
                p.wasmgate_plugin_handler().call_access(s, 4).await
            });
            format!("{r:?}")
        };
        let first = call(&mut req);
        assert!(first.contains("Proceed"), "{alg}: {first}");
        c.bench_function(&format!("plugin/jwt-{}-access", alg.to_lowercase()), |b| {
            b.iter(|| black_box(call(&mut req).len()))
        });
    }
}

fn bench_load(c: &mut Criterion) {
    let cache = std::env::temp_dir().join(format!("wasmgate-bench-cache-{}", std::process::id()));
    let engine = PluginEngine::new(Some(cache)).unwrap();
    let shared = Arc::new(Shared::default());
    for name in ["gray-release", "gray-release-go"] {
        let path = built(name);
        let bytes = std::fs::read(&path).unwrap();
        let hash = format!("{name}-{}", bytes.len());
        let load = || {
            let source = Source::new(name, path.clone(), &bytes, hash.clone());
            Module::load(&engine, &shared, source, &ModuleSettings::default(), Limits::default()).unwrap()
        };
        // The first load compiles into the (new) cache; the others load as a restart or a hot
        // load of a known build does: the compiled code from the cache, one instance, metadata.
        let started = std::time::Instant::now();
        load();
        eprintln!("{name}: {} bytes, first load (compiling) {:?}", bytes.len(), started.elapsed());
        c.bench_function(&format!("plugin/load-{name}"), |b| b.iter(|| black_box(load().version.len())));
    }
}

criterion_group!(
    benches,
    bench_noop,
    bench_key_auth_rate_limiting,
    bench_five_plugins,
    bench_gray_release_rust_and_go,
    bench_jwt,
    bench_load
);
criterion_main!(benches);
