//! The WebAssembly plugin host.
//!
//! - [`engine`]: wasmtime with the pooling allocator, epoch deadlines and an on-disk code cache.
//! - [`module`]: a compiled module with its instance pool; one instance per phase call.
//! - [`host`]: the functions plugins import.
//! - [`chain`]: plugin instances, scopes and the chains resolved per configuration version.
//! - [`phases`]: running a phase over a chain, with the failure policy.
//! - [`counters`]: window counters per module, bounded in bytes.
//! - [`shared`]: counters and cache shared by all plugins, kept across reloads.

pub mod chain;
pub mod componentize;
pub mod counters;
pub mod doc;
pub mod engine;
pub mod host;
pub(crate) mod log_limit;
pub mod module;
pub mod pending;
pub mod phases;
pub(crate) mod quarantine;
pub mod shared;
pub(crate) mod ticker;

use crate::config::{ConfigErrors, relative_to};
use crate::config::{Limits, PluginsFile};
use crate::sinks::SinkGrants;
use engine::PluginEngine;
use module::Module;
use parking_lot::Mutex;
use pending::Pending;
use sha2::{Digest, Sha256};
use shared::Shared;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub(crate) use chain::{Chain, PluginSet};

/// Long-lived plugin machinery: the engine (created when first needed), the shared state, and the
/// loaded modules, reused across reloads while their file and settings are unchanged.
#[derive(Default)]
pub struct PluginHost {
    engine: OnceLock<Result<PluginEngine, String>>,
    shared: Arc<Shared>,
    loaded: Mutex<HashMap<String, Arc<Module>>>,
    /// Modules left to compile after start-up. Locked after `loaded` when both are.
    deferral: Mutex<Deferral>,
}

/// At start-up, modules that are not in the code cache are left for
/// [`PluginHost::compile_next_deferred`] instead of compiled before serving.
#[derive(Default)]
struct Deferral {
    /// Whether loads defer such modules now.
    on: bool,
    modules: Vec<Deferred>,
}

/// A module left to compile after start-up.
#[derive(Clone)]
struct Deferred {
    name: String,
    path: PathBuf,
    /// SHA-256 of the file deferred.
    hash: String,
    settings: crate::config::ModuleSettings,
    defaults: Limits,
    plugins_toml: PathBuf,
    /// A configuration uses it: compiled first, and its instances wait for it.
    used: bool,
    /// Its compilation has started.
    started: bool,
    pending: Arc<Pending>,
}

/// A module compiled after start-up (see [`PluginHost::compile_next_deferred`]).
pub struct Compiled {
    /// It is loaded now (otherwise it failed, and the log says why).
    pub loaded: bool,
    /// A configuration uses it.
    pub used: bool,
    /// Its placeholder in the snapshots built meanwhile.
    pub pending: Arc<Pending>,
}

impl PluginHost {
    /// Loads every module `file` names (all `*.wasm` in its `plugins_dir`, plus `[modules]` paths).
    /// `file_path` is where `plugins.toml` lives; relative paths are resolved against it. While
    /// deferring (see [`PluginHost::defer_compiling`]), a module that is neither loaded nor in the
    /// code cache is only validated, and left for [`PluginHost::compile_next_deferred`] (those
    /// in `used` first); [`PluginHost::pending`] has it meanwhile.
    pub fn load_modules(
        &self,
        file: &PluginsFile,
        file_path: &Path,
        used: &BTreeSet<String>,
    ) -> Result<HashMap<String, Arc<Module>>, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let sources = module_sources(file, file_path, &mut errors);
        if sources.is_empty() {
            return errors.into_result(HashMap::new());
        }
        let cache_dir = file.cache_dir.as_ref().map(|d| relative_to(file_path, d)).or_else(engine::default_cache_dir);
        let engine = match self.engine.get_or_init(|| PluginEngine::new(cache_dir).map_err(|e| format!("{e:#}"))) {
            Ok(e) => e,
            Err(e) => return Err(ConfigErrors::from(format!("cannot start the wasm engine: {e}"))),
        };
        let mut modules = HashMap::new();
        let mut loaded = self.loaded.lock();
        for (name, path) in sources {
            let settings = file.modules.get(&name).cloned().unwrap_or_default();
            let wanted = Wanted {
                name: &name,
                path: &path,
                settings: &settings,
                defaults: file.defaults,
                plugins_toml: file_path,
            };
            // Held while deciding, so that deferring cannot end between the decision and the entry.
            let mut deferral = Some(self.deferral.lock()).filter(|d| d.on);
            match self.module(engine, &mut loaded, wanted, deferral.is_some()) {
                Ok(Loading::Ready(m)) => {
                    modules.insert(name, m);
                }
                Ok(Loading::Deferred(hash)) => {
                    let used = used.contains(&name);
                    let plugins_toml = file_path.to_path_buf();
                    deferral.as_mut().expect("deferring").keep(Deferred {
                        pending: Pending::new(&name),
                        name,
                        path,
                        hash,
                        settings,
                        defaults: file.defaults,
                        plugins_toml,
                        used,
                        started: false,
                    });
                }
                Err(e) => errors.push(format!("module {name:?} ({}): {e}", path.display())),
            }
        }
        errors.into_result(modules)
    }

    /// Loads one module file on its own (for `wasmgate plugin-doc`).
    pub fn load_file(&self, path: &Path) -> Result<Arc<Module>, String> {
        let name = path.file_stem().and_then(|s| s.to_str()).ok_or("the file has no name")?;
        let cache_dir = engine::default_cache_dir();
        let engine = self.engine.get_or_init(|| PluginEngine::new(cache_dir).map_err(|e| format!("{e:#}"))).as_ref()?;
        let settings = crate::config::ModuleSettings::default();
        let wanted = Wanted { name, path, settings: &settings, defaults: Limits::default(), plugins_toml: path };
        match self.module(engine, &mut self.loaded.lock(), wanted, false)? {
            Loading::Ready(m) => Ok(m),
            Loading::Deferred(_) => unreachable!("not deferring"),
        }
    }

    /// From now on, leaves modules that would need compiling to
    /// [`PluginHost::compile_next_deferred`] (`wasmgate run` at start-up: serve first, compile
    /// after).
    pub fn defer_compiling(&self) {
        self.deferral.lock().on = true;
    }

    /// Compiles the next module left until after start-up (those a configuration uses first)
    /// into the loaded ones, without holding anything a request or a load waits for; a failure
    /// is logged and marks its placeholder failed. `None` when none is left: deferring ends
    /// then. They count as compiling until [`PluginHost::forget_deferred`].
    pub fn compile_next_deferred(&self) -> Option<Compiled> {
        let Some(Ok(engine)) = self.engine.get() else {
            self.deferral.lock().on = false;
            return None;
        };
        let d = {
            let mut deferral = self.deferral.lock();
            let next = deferral.modules.iter_mut().filter(|d| !d.started).min_by_key(|d| !d.used);
            let Some(next) = next else {
                deferral.on = false;
                return None;
            };
            next.started = true;
            next.clone()
        };
        let wanted = Wanted {
            name: &d.name,
            path: &d.path,
            settings: &d.settings,
            defaults: d.defaults,
            plugins_toml: &d.plugins_toml,
        };
        let loaded = match self.module(engine, &mut HashMap::new(), wanted, false) {
            Ok(Loading::Ready(m)) => {
                self.loaded.lock().insert(d.name.clone(), m);
                true
            }
            Ok(Loading::Deferred(_)) => unreachable!("not deferring"),
            Err(e) => {
                tracing::error!("module {:?} ({}): {e}", d.name, d.path.display());
                d.pending.fail();
                false
            }
        };
        Some(Compiled { loaded, used: d.used, pending: d.pending })
    }

    /// Ends the start-up compilation: the modules are loaded now.
    pub fn forget_deferred(&self) {
        self.deferral.lock().modules.clear();
    }

    /// The names of the modules left to compile after start-up (those that failed are not).
    pub(crate) fn compiling(&self) -> BTreeSet<String> {
        let deferral = self.deferral.lock();
        deferral.modules.iter().filter(|d| !d.pending.failed()).map(|d| d.name.clone()).collect()
    }

    /// Placeholders of the modules left to compile after start-up, by name.
    pub(crate) fn pending(&self) -> HashMap<String, Arc<Pending>> {
        self.deferral.lock().modules.iter().map(|d| (d.name.clone(), d.pending.clone())).collect()
    }

    /// The module `name` from `path`, reusing the loaded one when file and settings are unchanged;
    /// when `may_defer` and it would need compiling, only validated and left for later.
    fn module(
        &self,
        engine: &PluginEngine,
        loaded: &mut HashMap<String, Arc<Module>>,
        wanted: Wanted<'_>,
        may_defer: bool,
    ) -> Result<Loading, String> {
        let Wanted { name, path, settings, defaults, plugins_toml } = wanted;
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        let hash = hex::encode(Sha256::digest(&bytes));
        if let Some(m) = loaded.get(name)
            && m.path == path
            && m.hash == hash
            && m.loaded_with == (settings.clone(), defaults)
        {
            return Ok(Loading::Ready(m.clone()));
        }
        let grants = SinkGrants::new(name, &settings.allow_log_files, &settings.allow_log_endpoints, plugins_toml)?;
        if may_defer && !engine.is_cached(&hash) {
            // A file that is not WebAssembly at all is refused now, as a compile would refuse it.
            wasmparser::Validator::new()
                .validate_all(&bytes)
                .map_err(|e| format!("not a valid wasm component: failed to parse WebAssembly module: {e}"))?;
            return Ok(Loading::Deferred(hash));
        }
        let source = module::Source { name, path: path.to_path_buf(), bytes: &bytes, hash, grants };
        let module = Arc::new(Module::load(engine, &self.shared, source, settings, defaults)?);
        loaded.insert(name.to_string(), module.clone());
        Ok(Loading::Ready(module))
    }
}

/// What [`PluginHost::module`] made of a module file.
enum Loading {
    /// Loaded.
    Ready(Arc<Module>),
    /// Left to compile after start-up; the file's SHA-256.
    Deferred(String),
}

impl Deferral {
    /// Keeps `d` for later, replacing what was kept for its name unless that is the same file
    /// (which keeps its state: a module that failed stays failed until its file changes).
    fn keep(&mut self, d: Deferred) {
        if let Some(kept) = self.modules.iter_mut().find(|k| k.name == d.name && k.path == d.path && k.hash == d.hash) {
            kept.used = d.used;
            return;
        }
        self.modules.retain(|k| k.name != d.name);
        self.modules.push(d);
    }
}

/// One module to load.
struct Wanted<'a> {
    name: &'a str,
    /// Its `.wasm` file.
    path: &'a Path,
    /// Its `[modules.NAME]` settings.
    settings: &'a crate::config::ModuleSettings,
    /// The default limits.
    defaults: Limits,
    /// The `plugins.toml` it was named in; relative paths are resolved against it.
    plugins_toml: &'a Path,
}

/// (module name, file) for every module: `plugins_dir/*.wasm`, overridden or extended by
/// `[modules.NAME] path`.
fn module_sources(file: &PluginsFile, file_path: &Path, errors: &mut ConfigErrors) -> Vec<(String, PathBuf)> {
    let mut sources: HashMap<String, PathBuf> = HashMap::new();
    let dir = relative_to(file_path, &file.plugins_dir);
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "wasm")
                    && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                {
                    sources.insert(stem.to_string(), path.clone());
                }
            }
        }
        Err(e) if !file.plugins.is_empty() || !file.modules.is_empty() => {
            errors.push(format!("plugins_dir: cannot read {}: {e}", dir.display()));
        }
        Err(_) => {}
    }
    for (name, m) in &file.modules {
        match &m.path {
            Some(p) => {
                sources.insert(name.clone(), relative_to(file_path, p));
            }
            None if !sources.contains_key(name) => {
                errors.push(format!("modules.{name}: there is no {name}.wasm in {}; set `path`", dir.display()));
            }
            None => {}
        }
    }
    let mut sorted: Vec<_> = sources.into_iter().collect();
    sorted.sort();
    sorted
}

/// The paths whose changes should reload plugins: the plugins file and the module directory.
pub(crate) fn watched_paths(file: &PluginsFile, file_path: &Path) -> Vec<PathBuf> {
    let mut paths = vec![file_path.to_path_buf(), relative_to(file_path, &file.plugins_dir)];
    paths.extend(file.modules.values().filter_map(|m| m.path.as_ref()).map(|p| relative_to(file_path, p)));
    paths
}
