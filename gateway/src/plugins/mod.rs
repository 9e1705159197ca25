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
pub mod phases;
pub(crate) mod quarantine;
pub mod shared;

use crate::config::{ConfigErrors, relative_to};
use crate::config::{Limits, PluginsFile};
use crate::sinks::SinkGrants;
use engine::PluginEngine;
use module::Module;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use shared::Shared;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

pub(crate) use chain::{Chain, PluginSet};

/// Long-lived plugin machinery: the engine (created when first needed), the shared state, and the
/// loaded modules, reused across reloads while their file and settings are unchanged.
#[derive(Default)]
pub struct PluginHost {
    engine: OnceLock<Result<PluginEngine, String>>,
    shared: Arc<Shared>,
    loaded: Mutex<HashMap<String, Arc<Module>>>,
    /// At start-up: modules that no configuration uses and that are not in the code cache are
    /// left for [`PluginHost::compile_deferred`] instead of compiled before serving.
    deferring: AtomicBool,
    deferred: Mutex<Vec<Deferred>>,
}

/// A module left to compile after start-up.
#[derive(Clone)]
struct Deferred {
    name: String,
    path: PathBuf,
    settings: crate::config::ModuleSettings,
    defaults: Limits,
    plugins_toml: PathBuf,
}

impl PluginHost {
    /// Loads every module `file` names (all `*.wasm` in its `plugins_dir`, plus `[modules]` paths).
    /// `file_path` is where `plugins.toml` lives; relative paths are resolved against it. While
    /// deferring (see [`PluginHost::defer_unused`]), a module that is not in `used`, not loaded
    /// and not in the code cache is left out, for [`PluginHost::compile_deferred`].
    pub fn load_modules(
        &self,
        file: &PluginsFile,
        file_path: &Path,
        used: Option<&BTreeSet<String>>,
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
            let may_defer = self.deferring.load(Ordering::Acquire) && used.is_some_and(|u| !u.contains(&name));
            match self.module(engine, &mut loaded, wanted, may_defer) {
                Ok(Some(m)) => {
                    modules.insert(name, m);
                }
                Ok(None) => {
                    let mut deferred = self.deferred.lock();
                    deferred.retain(|d| d.name != name);
                    let plugins_toml = file_path.to_path_buf();
                    deferred.push(Deferred { name, path, settings, defaults: file.defaults, plugins_toml });
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
        Ok(self.module(engine, &mut self.loaded.lock(), wanted, false)?.expect("not deferred"))
    }

    /// From now on, leaves modules that no configuration uses and that would need compiling to
    /// [`PluginHost::compile_deferred`] (`wasmgate run` at start-up: serve first, compile after).
    pub fn defer_unused(&self) {
        self.deferring.store(true, Ordering::Release);
    }

    /// Stops deferring, and compiles the modules left so far into the loaded ones (without
    /// holding anything a request or a load waits for). How many there were; errors are logged
    /// (a broken module nobody uses does not stop the gateway). They count as compiling until
    /// [`PluginHost::forget_deferred`], once a load has taken them in.
    pub fn compile_deferred(&self) -> usize {
        self.deferring.store(false, Ordering::Release);
        let Some(Ok(engine)) = self.engine.get() else { return 0 };
        let deferred: Vec<Deferred> = self.deferred.lock().iter().map(Deferred::clone).collect();
        for d in &deferred {
            let wanted = Wanted {
                name: &d.name,
                path: &d.path,
                settings: &d.settings,
                defaults: d.defaults,
                plugins_toml: &d.plugins_toml,
            };
            let mut scratch = HashMap::new();
            match self.module(engine, &mut scratch, wanted, false) {
                Ok(Some(m)) => drop(self.loaded.lock().insert(d.name.clone(), m)),
                Ok(None) => {}
                Err(e) => tracing::error!("module {:?} ({}): {e}", d.name, d.path.display()),
            }
        }
        deferred.len()
    }

    /// Ends the start-up compilation: the modules are loaded now.
    pub fn forget_deferred(&self) {
        self.deferred.lock().clear();
    }

    /// The names of the modules left to compile after start-up.
    pub(crate) fn compiling(&self) -> BTreeSet<String> {
        self.deferred.lock().iter().map(|d| d.name.clone()).collect()
    }

    /// The module `name` from `path`, reusing the loaded one when file and settings are unchanged;
    /// `None` when `may_defer` and it would need compiling.
    fn module(
        &self,
        engine: &PluginEngine,
        loaded: &mut HashMap<String, Arc<Module>>,
        wanted: Wanted<'_>,
        may_defer: bool,
    ) -> Result<Option<Arc<Module>>, String> {
        let Wanted { name, path, settings, defaults, plugins_toml } = wanted;
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
        let hash = hex::encode(Sha256::digest(&bytes));
        if let Some(m) = loaded.get(name)
            && m.path == path
            && m.hash == hash
            && m.loaded_with == (settings.clone(), defaults)
        {
            return Ok(Some(m.clone()));
        }
        if may_defer && !engine.is_cached(&hash) {
            return Ok(None);
        }
        let grants = SinkGrants::new(name, &settings.allow_log_files, &settings.allow_log_endpoints, plugins_toml)?;
        let source = module::Source { name, path: path.to_path_buf(), bytes: &bytes, hash, grants };
        let module = Arc::new(Module::load(engine, &self.shared, source, settings, defaults)?);
        loaded.insert(name.to_string(), module.clone());
        Ok(Some(module))
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
