//! The cost of wasmtime's async epoch yielding on the fast path (issue: a looping plugin holds
//! its worker until its deadline). The same no-op `access` call into the same component:
//! - `async-yield/sync-call`: `Func::call`, as the gateway calls plugins today;
//! - `async-yield/async-call`: `Func::call_async` with `epoch_deadline_async_yield_and_update`,
//!   which runs the call on a fiber so that a long call could give its worker back every tick.
//!
//! Both use the dynamic `Func` API (the gateway's bindings are sync-only), so the difference
//! between the two is what async calls would add per phase call. Needs the plugins built
//! (`scripts/build-plugins.sh`).

use criterion::{Criterion, criterion_group, criterion_main};
use std::future::Future;
use std::hint::black_box;
use std::path::PathBuf;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use wasmtime::component::{Component, Func, Instance, Linker, Val};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

/// An engine like the gateway's (component model, pooling, epoch deadlines).
fn engine() -> Engine {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(PoolingAllocationConfig::default()));
    Engine::new(&config).unwrap()
}

/// The no-op plugin instantiated on `engine`, and its `access` export. Its imports trap, but for
/// the hash seed that Rust's `HashMap` asks for when it parses its configuration.
fn noop(engine: &Engine) -> (Store<()>, Instance, Func) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugins/noop.wasm");
    let component = Component::from_file(engine, &root).expect("run scripts/build-plugins.sh first");
    let mut linker = Linker::new(engine);
    for (name, _) in component.component_type().imports(engine) {
        if name.starts_with("wasi:random/insecure-seed@") {
            let mut instance = linker.instance(name).unwrap();
            instance
                .func_new("insecure-seed", |_, _, _, out| {
                    out[0] = Val::Tuple(vec![Val::U64(1), Val::U64(2)]);
                    Ok(())
                })
                .unwrap();
        }
    }
    linker.define_unknown_imports_as_traps(&component).unwrap();
    let mut store = Store::new(engine, ());
    store.set_epoch_deadline(50);
    let pre = linker.instantiate_pre(&component).unwrap();
    let instance = pre.instantiate(&mut store).unwrap();
    let handler = instance.get_export_index(&mut store, None, "wasmgate:plugin/handler@0.1.0").unwrap();
    let export = |store: &mut Store<()>, name| {
        let index = instance.get_export_index(&mut *store, Some(&handler), name).unwrap();
        instance.get_func(&mut *store, index).unwrap()
    };
    let (configure, access) = (export(&mut store, "configure"), export(&mut store, "access"));
    let mut out = [Val::Bool(false)];
    let args = [Val::U64(1), Val::String("{}".into())];
    configure.call(&mut store, &args, &mut out).unwrap();
    (store, instance, access)
}

/// Polls a future that never waits (a call that does not reach its yield tick) to its end.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn bench_async_yield(c: &mut Criterion) {
    let engine = engine();
    let (mut store, _instance, access) = noop(&engine);
    let mut out = [Val::Bool(false)];
    c.bench_function("async-yield/sync-call", |b| {
        b.iter(|| {
            store.set_epoch_deadline(50);
            access.call(&mut store, &[Val::U64(1)], &mut out).unwrap();
            black_box(&out);
        })
    });
    let (mut store, _instance, access) = noop(&engine);
    c.bench_function("async-yield/async-call", |b| {
        b.iter(|| {
            store.epoch_deadline_async_yield_and_update(1);
            block_on(access.call_async(&mut store, &[Val::U64(1)], &mut out)).unwrap();
            black_box(&out);
        })
    });
}

criterion_group!(benches, bench_async_yield);
criterion_main!(benches);
