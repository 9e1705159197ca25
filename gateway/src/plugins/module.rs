//! A loaded plugin module: compiled once, pre-instantiated, with a pool of instances. An instance is
//! checked out for one phase call and returned; one that traps or runs out of time is dropped.
//!
//! Calls are async (wasmtime's async support): at every epoch tick a call still running yields
//! its worker thread to other requests and resumes when polled again, until its CPU deadline,
//! when it traps. A slow input so holds up only its own request. The body filters, which Pingora
//! runs synchronously, drive the same calls to completion on the spot ([`block_on`]).

use super::engine::{PluginEngine, TICK};
use super::host::{HostState, Plugin, PluginPre};
use super::log_limit::LogLimit;
use super::quarantine::Quarantine;
use super::shared::Shared;
use super::ticker::Running;
use crate::config::{FailurePolicy, Limits, ModuleSettings};
use crate::entities::Entities;
use crate::request::redact::Redactions;
use crate::request::{Phase, RequestState};
use crate::sinks::SinkGrants;
use parking_lot::Mutex;
use pingora_http::{RequestHeader, ResponseHeader};
use std::cell::Cell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasmtime::Store;

/// What the host keeps of a configuration a plugin accepted.
pub struct Accepted {
    /// Whether it needs the request body before access.
    pub needs_body: bool,
    /// The credential places it reads, hidden in log records.
    pub(crate) redactions: Redactions,
    /// Whether its body-filter runs (the module has one, and the configuration did not skip it).
    pub(crate) filters_body: bool,
}

/// Phases as a bit set (the WIT `phases` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PhaseSet(u8);

impl PhaseSet {
    /// Whether `phase` is in the set.
    pub(crate) fn has(self, phase: Phase) -> bool {
        self.0 & Self::bit(phase) != 0
    }

    fn bit(phase: Phase) -> u8 {
        match phase {
            Phase::Configure => 0,
            Phase::Rewrite => 1,
            Phase::Access => 2,
            Phase::HeaderFilter => 4,
            Phase::BodyFilter => 8,
            Phase::Log => 16,
        }
    }
}

/// A compiled module and what it declared about itself.
pub struct Module {
    /// Module name (the `.wasm` file's stem).
    pub(crate) name: Arc<str>,
    /// The file it came from.
    pub(crate) path: PathBuf,
    /// SHA-256 of the file.
    pub(crate) hash: String,
    /// The plugin's version.
    pub version: String,
    /// Run order, higher first.
    pub(crate) priority: i32,
    /// Phases implemented.
    pub(crate) phases: PhaseSet,
    /// Answer 500 when it fails (otherwise skip it).
    pub(crate) fail_closed: bool,
    /// Cannot be scoped to a consumer.
    pub(crate) no_consumer: bool,
    /// JSON Schema of its configuration.
    pub schema: String,
    /// The limits it was loaded with.
    pub(crate) limits: Limits,
    /// Where it may write logs.
    grants: Arc<SinkGrants>,
    /// The `[modules]` settings and default limits it was loaded with.
    pub(crate) loaded_with: (ModuleSettings, Limits),
    pre: PluginPre<HostState>,
    shared: Arc<Shared>,
    /// Boxed, so that checking one out and back moves a pointer, not the instance's handles
    /// (measured: 286 -> 274 ns per phase call, docs/BENCHMARKS.md).
    #[allow(clippy::vec_box)]
    idle: Mutex<Vec<Box<Instance>>>,
    max_idle: usize,
    /// Instances made before the last [`Module::retire_instances`] are not reused.
    generation: AtomicU64,
    /// What this module's failures and output may write to the log.
    pub(crate) log_limit: Arc<LogLimit>,
    /// Quarantine state per configuration id.
    quarantines: Mutex<HashMap<u64, Arc<Quarantine>>>,
}

struct Instance {
    generation: u64,
    store: Store<HostState>,
    plugin: Plugin,
    configured: Vec<u64>,
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// It ran past its CPU deadline.
    Timeout(u64),
    /// It tried to grow memory past its cap.
    Memory(u64),
    /// It trapped (panic, bad memory access, ...).
    Trap(String),
    /// It returned an error.
    Plugin(String),
    /// It was not called: quarantined after repeated deadline hits.
    Quarantined,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout(ms) => write!(f, "stopped at its CPU deadline ({ms} ms)"),
            CallError::Quarantined => write!(f, "is quarantined after repeated CPU deadline hits; not called"),
            CallError::Memory(mb) => write!(f, "exceeded its memory limit ({mb} MiB)"),
            CallError::Trap(t) => write!(f, "trapped: {t}"),
            CallError::Plugin(e) => write!(f, "returned an error: {e}"),
        }
    }
}

/// What a phase call works on; swapped into the instance's store for the call.
pub struct CallScope<'a> {
    /// The phase.
    pub phase: Phase,
    /// The client request.
    pub req: &'a mut RequestHeader,
    /// The response, in header-filter, body-filter and log.
    pub resp: Option<&'a mut ResponseHeader>,
    /// The request's state (facts, entities, plugin values).
    pub state: &'a mut Box<RequestState>,
}

/// The longest CPU deadline of a call, ms: a minute holds a worker thread long enough.
const MAX_CPU_MS: u64 = 60_000;
/// The least CPU deadline of the calls a load makes (instantiation, `metadata`, validating each
/// configuration): they run once, off the request path, often while the machine is busy
/// starting or reloading, and a `cpu_ms` sized for phase calls would fail the load.
const LOAD_CPU_MS: u64 = 1000;

/// A module file to load.
pub struct Source<'a> {
    /// Module name.
    pub name: &'a str,
    /// Where it was read from.
    pub path: PathBuf,
    /// Its content.
    pub bytes: &'a [u8],
    /// SHA-256 of the content (hex).
    pub hash: String,
    /// Where it may write logs (from its `[modules]` settings).
    pub(crate) grants: SinkGrants,
}

impl<'a> Source<'a> {
    /// A module file with no log grants.
    pub fn new(name: &'a str, path: PathBuf, bytes: &'a [u8], hash: String) -> Source<'a> {
        Source { name, path, bytes, hash, grants: SinkGrants::default() }
    }
}

impl Module {
    /// Compiles (or loads from cache) and checks a module; errors say what is wrong with the file.
    pub fn load(
        engine: &PluginEngine,
        shared: &Arc<Shared>,
        source: Source<'_>,
        settings: &ModuleSettings,
        defaults: Limits,
    ) -> Result<Module, String> {
        let Source { name, path, bytes, hash, grants } = source;
        let (component, cached) =
            engine.compile(bytes, &hash).map_err(|e| format!("not a valid wasm component: {e:#}"))?;
        let pre = engine
            .instantiate_pre(&component)
            .map_err(|e| format!("needs imports wasmgate does not provide: {e:#}"))?;
        let pre = PluginPre::new(pre).map_err(|e| format!("does not implement the wasmgate:plugin world: {e:#}"))?;
        let limits = Limits {
            cpu_ms: settings.cpu_ms.unwrap_or(defaults.cpu_ms),
            memory_mb: settings.memory_mb.unwrap_or(defaults.memory_mb),
            quarantine: settings.quarantine.unwrap_or(defaults.quarantine),
            cache_bytes: settings.cache_bytes.unwrap_or(defaults.cache_bytes),
            counter_bytes: settings.counter_bytes.unwrap_or(defaults.counter_bytes),
            context_bytes: settings.context_bytes.unwrap_or(defaults.context_bytes),
            header_writes: settings.header_writes.unwrap_or(defaults.header_writes),
            header_bytes: settings.header_bytes.unwrap_or(defaults.header_bytes),
            stderr_bytes: settings.stderr_bytes.unwrap_or(defaults.stderr_bytes),
        };
        if limits.memory_mb == 0 || limits.memory_mb > super::engine::MAX_MEMORY_MB {
            return Err(format!("memory_mb: {} is out of range 1-{}", limits.memory_mb, super::engine::MAX_MEMORY_MB));
        }
        if limits.cpu_ms == 0 || limits.cpu_ms > MAX_CPU_MS {
            return Err(format!("cpu_ms: {} is out of range 1-{MAX_CPU_MS}", limits.cpu_ms));
        }
        let mut module = Module {
            name: Arc::from(name),
            path,
            hash,
            version: String::new(),
            priority: 0,
            phases: PhaseSet::default(),
            fail_closed: true,
            no_consumer: false,
            schema: String::new(),
            limits,
            grants: Arc::new(grants),
            loaded_with: (settings.clone(), defaults),
            pre,
            shared: shared.clone(),
            idle: Mutex::new(Vec::new()),
            max_idle: std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
            generation: AtomicU64::new(0),
            log_limit: Arc::default(),
            quarantines: Mutex::default(),
        };
        let load_ms = module.limits.cpu_ms.max(LOAD_CPU_MS);
        let (mut instance, meta) = block_on(async {
            let mut instance = module.instantiate(load_ms).await.map_err(|e| format!("cannot be instantiated: {e}"))?;
            let _running = module.start_call(&mut instance.store, load_ms);
            let meta = instance.plugin.wasmgate_plugin_handler().call_metadata(&mut instance.store).await;
            let meta = meta.map_err(|e| format!("metadata(): {}", module.classify(e, load_ms)))?;
            Ok::<_, String>((instance, meta))
        })?;
        instance.store.data_mut().usage = Default::default();
        module.version = meta.version;
        module.priority = settings.priority.unwrap_or(meta.priority);
        module.phases = PhaseSet(meta.phases.as_array()[0] as u8);
        module.fail_closed = match settings.failure_policy {
            Some(p) => p == FailurePolicy::FailClosed,
            None => meta.fail_closed,
        };
        module.no_consumer = meta.no_consumer;
        module.schema = meta.config_schema;
        module.idle.lock().push(instance);
        tracing::info!(plugin = name, version = %module.version, sha256 = %&module.hash[..12], cached, "plugin module loaded");
        Ok(module)
    }

    /// Starts the CPU deadline of a call: `cpu_ms` from now, plus one tick, because the first
    /// tick may come right after the call starts (otherwise a 1 ms budget could interrupt a call
    /// of a few µs). The call yields at the next tick, and at every one after it.
    /// The epoch ticks until the returned guard is dropped: keep it while the plugin's code runs.
    #[must_use = "the deadline holds only while the guard lives"]
    fn start_call(&self, store: &mut Store<HostState>, cpu_ms: u64) -> Running {
        let running = Running::start();
        let budget = Duration::from_millis(cpu_ms) + TICK;
        store.data_mut().usage.deadline = Some(Instant::now() + budget);
        store.set_epoch_deadline(1);
        running
    }

    async fn instantiate(&self, cpu_ms: u64) -> Result<Box<Instance>, CallError> {
        let state = HostState::new(
            self.name.clone(),
            self.shared.clone(),
            self.log_limit.clone(),
            self.limits,
            self.grants.clone(),
        );
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| s.limiter());
        store.epoch_deadline_callback(|ctx| match ctx.data().usage.deadline {
            Some(deadline) if Instant::now() >= deadline => Err(wasmtime::Trap::Interrupt.into()),
            _ if BLOCKING.get() => Ok(wasmtime::UpdateDeadline::Continue(1)),
            // tokio's yield resumes the call only after the runtime has polled its I/O, so the
            // other requests of this thread move on meanwhile (an immediate wake-up would keep
            // the call first in line, and the I/O waiting, for up to 61 ticks).
            _ => Ok(wasmtime::UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))),
        });
        let _running = self.start_call(&mut store, cpu_ms);
        let plugin = self.pre.instantiate_async(&mut store).await.map_err(|e| self.classify(e, cpu_ms))?;
        let generation = self.generation.load(Ordering::Acquire);
        Ok(Box::new(Instance { generation, store, plugin, configured: Vec::new() }))
    }

    /// Lets the kernel reclaim the pages of its compiled code (see [`crate::memory`]): loading
    /// and validating configurations ran much of it, and the requests run little.
    pub(crate) fn page_out(&self) {
        crate::memory::page_out(self.pre.instance_pre().component().image_range());
    }

    /// The quarantine state of configuration `config_id` (shared by every snapshot using it).
    pub(crate) fn quarantine(&self, config_id: u64) -> Arc<Quarantine> {
        self.quarantines.lock().entry(config_id).or_default().clone()
    }

    /// Validates a configuration (JSON) in an instance, keeping it under `id`. Runs with the
    /// entities of the snapshot being built, so the plugin can check names against them.
    pub fn configure(&self, id: u64, json: &str, entities: &Arc<Entities>) -> Result<Accepted, String> {
        let mut req = RequestHeader::build("GET", b"/", None).expect("static request");
        let mut state = RequestState::new(entities.clone());
        let mut scope = CallScope { phase: Phase::Configure, req: &mut req, resp: None, state: &mut state };
        let validating = self.call_within(self.limits.cpu_ms.max(LOAD_CPU_MS), &mut scope, None, async |p, s| {
            let accepted = p.wasmgate_plugin_handler().call_configure(&mut *s, id, json).await;
            let usage = &mut s.data_mut().usage;
            let (redactions, skips) =
                (std::mem::take(&mut usage.redactions), std::mem::take(&mut usage.skips_body_filter));
            accepted.map(|r| r.map(|needs| (needs, redactions, skips)))
        });
        let (needs, redactions, skips_body) = block_on(validating).map_err(|e| match e {
            CallError::Plugin(msg) => msg,
            other => other.to_string(),
        })?;
        let filters_body = self.phases.has(Phase::BodyFilter) && !skips_body;
        Ok(Accepted { needs_body: needs.request_body, redactions, filters_body })
    }

    /// Runs one phase call for configuration `config` (configuring the instance first if it has
    /// not seen it). The plugin's own `Err` becomes [`CallError::Plugin`].
    pub async fn call<R>(
        &self,
        scope: &mut CallScope<'_>,
        config: Option<(u64, &str)>,
        f: impl AsyncFnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, CallError> {
        self.call_within(self.limits.cpu_ms, scope, config, f).await
    }

    /// [`Module::call`] with a CPU deadline of `cpu_ms`.
    async fn call_within<R>(
        &self,
        cpu_ms: u64,
        scope: &mut CallScope<'_>,
        config: Option<(u64, &str)>,
        f: impl AsyncFnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, CallError> {
        let popped = self.idle.lock().pop();
        let mut instance = match popped {
            Some(i) => i,
            None => self.instantiate(cpu_ms).await?,
        };
        swap_in(&mut instance.store, scope);
        let running = self.start_call(&mut instance.store, cpu_ms);
        let result = match self.configure_instance(&mut instance, config, cpu_ms).await {
            Ok(()) => f(&instance.plugin, &mut instance.store).await.map_err(|e| self.classify(e, cpu_ms)),
            Err(e) => Err(e),
        };
        drop(running);
        instance.store.data_mut().flush_stderr();
        swap_out(&mut instance.store, scope);
        // A call that went past a host-side bound fails as an error would: the failure policy.
        let result = match (result, instance.store.data_mut().usage.over.take()) {
            (Ok(_), Some(what)) => Ok(Err(format!("exceeded its {what} limit (plugins.toml)"))),
            (result, _) => result,
        };
        match result {
            Ok(Ok(value)) => {
                self.put_back(instance);
                Ok(value)
            }
            Ok(Err(message)) => {
                self.put_back(instance);
                Err(CallError::Plugin(message))
            }
            // The instance may be in any state after a trap: drop it (and its store).
            Err(e) => Err(e),
        }
    }

    /// [`Module::call`] driven to completion on this thread, for callers that cannot await: the
    /// body filters (synchronous in Pingora) and validation at load. Yields at ticks cost nothing
    /// here; the deadline holds as in any call.
    pub fn call_blocking<R>(
        &self,
        scope: &mut CallScope<'_>,
        config: Option<(u64, &str)>,
        f: impl AsyncFnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, CallError> {
        block_on(self.call(scope, config, f))
    }

    async fn configure_instance(
        &self,
        instance: &mut Instance,
        config: Option<(u64, &str)>,
        cpu_ms: u64,
    ) -> Result<(), CallError> {
        let Some((id, json)) = config else { return Ok(()) };
        if instance.configured.contains(&id) {
            return Ok(());
        }
        // The plugin is accepting a configuration, whatever the request's phase.
        let phase = std::mem::replace(&mut instance.store.data_mut().call.phase, Phase::Configure);
        let configured = instance.plugin.wasmgate_plugin_handler().call_configure(&mut instance.store, id, json).await;
        instance.store.data_mut().call.phase = phase;
        match configured.map_err(|e| self.classify(e, cpu_ms))? {
            Ok(_) => {
                instance.configured.push(id);
                Ok(())
            }
            Err(msg) => Err(CallError::Plugin(format!("configuration rejected: {msg}"))),
        }
    }

    /// Stops reusing the instances made so far, with the configurations and log sinks they hold:
    /// the configurations this module runs changed. Calls under way finish on theirs.
    pub(crate) fn retire_instances(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.idle.lock().clear();
    }

    fn put_back(&self, instance: Box<Instance>) {
        if instance.generation != self.generation.load(Ordering::Acquire) {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle {
            idle.push(instance);
        }
    }

    /// What a failed call was, `cpu_ms` being its deadline.
    fn classify(&self, e: wasmtime::Error, cpu_ms: u64) -> CallError {
        if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            return CallError::Timeout(cpu_ms);
        }
        let text = format!("{e:#}");
        if text.contains("forcing trap when growing memory") {
            return CallError::Memory(self.limits.memory_mb);
        }
        CallError::Trap(text)
    }
}

thread_local! {
    /// Whether this thread is driving a call in [`block_on`]: the call then never yields.
    static BLOCKING: Cell<bool> = const { Cell::new(false) };
}

/// Drives a call (or a phase of calls) to completion on this thread. A call that reaches an
/// epoch tick goes on without yielding: there is nobody to yield to, and tokio's deferred
/// wake-up would never come while this thread blocks.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            BLOCKING.set(self.0);
        }
    }
    let _reset = Reset(BLOCKING.replace(true));
    futures_executor::block_on(future)
}

fn swap_in(store: &mut Store<HostState>, scope: &mut CallScope<'_>) {
    store.data_mut().usage = Default::default();
    let call = &mut store.data_mut().call;
    call.phase = scope.phase;
    std::mem::swap(&mut call.req, scope.req);
    call.has_resp = scope.resp.is_some();
    if let Some(resp) = scope.resp.as_deref_mut() {
        std::mem::swap(&mut call.resp, resp);
    }
    std::mem::swap(&mut call.state, scope.state);
}

fn swap_out(store: &mut Store<HostState>, scope: &mut CallScope<'_>) {
    let call = &mut store.data_mut().call;
    std::mem::swap(&mut call.req, scope.req);
    if let Some(resp) = scope.resp.as_deref_mut() {
        std::mem::swap(&mut call.resp, resp);
    }
    std::mem::swap(&mut call.state, scope.state);
    call.has_resp = false;
}
