//! A loaded plugin module: compiled once, pre-instantiated, with a pool of instances. An instance is
//! checked out for one phase call and returned; one that traps or runs out of time is dropped.

use super::engine::{PluginEngine, TICK};
use super::host::{HostState, Plugin, PluginPre};
use super::log_limit::LogLimit;
use super::quarantine::Quarantine;
use super::shared::Shared;
use crate::config::{FailurePolicy, Limits, ModuleSettings};
use crate::entities::Entities;
use crate::request::{Phase, RequestState};
use crate::sinks::SinkGrants;
use parking_lot::Mutex;
use pingora_http::{RequestHeader, ResponseHeader};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::Store;

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
        let mut instance = module.instantiate().map_err(|e| format!("cannot be instantiated: {e}"))?;
        instance.store.set_epoch_deadline(module.deadline_ticks());
        let meta = module
            .pre_call(&mut instance, |p, s| p.wasmgate_plugin_handler().call_metadata(s))
            .map_err(|e| format!("metadata(): {e}"))?;
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

    /// The epoch deadline of a call: one tick more than `cpu_ms`, because the first tick may come
    /// right after the call starts (otherwise a 1 ms budget could interrupt a call of a few µs).
    fn deadline_ticks(&self) -> u64 {
        self.limits.cpu_ms.max(1) * 1_000 / TICK.as_micros() as u64 + 1
    }

    fn instantiate(&self) -> Result<Box<Instance>, CallError> {
        let state = HostState::new(
            self.name.clone(),
            self.shared.clone(),
            self.log_limit.clone(),
            self.limits,
            self.grants.clone(),
        );
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| s.limiter());
        store.set_epoch_deadline(self.deadline_ticks());
        let plugin = self.pre.instantiate(&mut store).map_err(|e| self.classify(e))?;
        let generation = self.generation.load(Ordering::Acquire);
        Ok(Box::new(Instance { generation, store, plugin, configured: Vec::new() }))
    }

    /// Runs `f` on a fresh instance with no request (metadata at load).
    fn pre_call<R>(
        &self,
        instance: &mut Instance,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        f(&instance.plugin, &mut instance.store).map_err(|e| self.classify(e))
    }

    /// The quarantine state of configuration `config_id` (shared by every snapshot using it).
    pub(crate) fn quarantine(&self, config_id: u64) -> Arc<Quarantine> {
        self.quarantines.lock().entry(config_id).or_default().clone()
    }

    /// Validates a configuration (JSON) in an instance, keeping it under `id`. Runs with the
    /// entities of the snapshot being built, so the plugin can check names against them.
    pub fn configure(&self, id: u64, json: &str, entities: &Arc<Entities>) -> Result<bool, String> {
        let mut req = RequestHeader::build("GET", b"/", None).expect("static request");
        let mut state = RequestState::new(entities.clone());
        let mut scope = CallScope { phase: Phase::Configure, req: &mut req, resp: None, state: &mut state };
        let needs = self
            .call(&mut scope, None, |p, s| p.wasmgate_plugin_handler().call_configure(s, id, json))
            .map_err(|e| match e {
                CallError::Plugin(msg) => msg,
                other => other.to_string(),
            })?;
        Ok(needs.request_body)
    }

    /// Runs one phase call for configuration `config` (configuring the instance first if it has
    /// not seen it). The plugin's own `Err` becomes [`CallError::Plugin`].
    pub fn call<R>(
        &self,
        scope: &mut CallScope<'_>,
        config: Option<(u64, &str)>,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, CallError> {
        let popped = self.idle.lock().pop();
        let mut instance = match popped {
            Some(i) => i,
            None => self.instantiate()?,
        };
        swap_in(&mut instance.store, scope);
        instance.store.set_epoch_deadline(self.deadline_ticks());
        let result = self
            .configure_instance(&mut instance, config)
            .and_then(|()| f(&instance.plugin, &mut instance.store).map_err(|e| self.classify(e)));
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

    fn configure_instance(&self, instance: &mut Instance, config: Option<(u64, &str)>) -> Result<(), CallError> {
        let Some((id, json)) = config else { return Ok(()) };
        if instance.configured.contains(&id) {
            return Ok(());
        }
        // The plugin is accepting a configuration, whatever the request's phase.
        let phase = std::mem::replace(&mut instance.store.data_mut().call.phase, Phase::Configure);
        let configured = instance.plugin.wasmgate_plugin_handler().call_configure(&mut instance.store, id, json);
        instance.store.data_mut().call.phase = phase;
        match configured.map_err(|e| self.classify(e))? {
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

    fn classify(&self, e: wasmtime::Error) -> CallError {
        if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            return CallError::Timeout(self.limits.cpu_ms);
        }
        let text = format!("{e:#}");
        if text.contains("forcing trap when growing memory") {
            return CallError::Memory(self.limits.memory_mb);
        }
        CallError::Trap(text)
    }
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
