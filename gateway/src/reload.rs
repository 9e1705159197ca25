//! Loading configuration into snapshots and swapping them in: at start, on SIGHUP, and on file
//! changes with `--watch`. A snapshot that fails to build is rejected with its errors and the
//! current one keeps serving; requests in flight keep the snapshot they started with.

use crate::config::PluginsFile;
use crate::config::{self, ConfigErrors, Database, GatewayConfig, ServerConfig, read_toml, relative_to};
use crate::entities::Entities;
use crate::health::HealthRegistry;
use crate::plugins::module::Module;
use crate::plugins::{Compiled, PluginHost, PluginSet};
use crate::snapshot::Snapshot;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use notify::{RecursiveMode, Watcher};
use parking_lot::Mutex;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// Builds snapshots from the configuration files.
pub struct Loader {
    gateway_file: PathBuf,
    plugins_file: Option<PathBuf>,
    host: PluginHost,
    health: Arc<HealthRegistry>,
    version: AtomicU64,
}

/// The result of a successful load.
pub struct Loaded {
    /// `[server]` as loaded.
    pub(crate) server: ServerConfig,
    /// The new snapshot.
    pub(crate) snapshot: Snapshot,
    /// Plugin files and directories to watch for hot loading (empty when off).
    pub(crate) plugin_paths: Vec<PathBuf>,
    /// The plugin modules it was built with, by name.
    pub(crate) modules: HashMap<String, Arc<Module>>,
    /// The entities and plugin instances (of both files) it was built from.
    pub(crate) config: Arc<GatewayConfig>,
}

impl Loaded {
    /// How many plugin instances the snapshot runs.
    pub fn plugin_instances(&self) -> usize {
        self.snapshot.plugins.instances().count()
    }
}

impl Loader {
    /// A loader for `gateway.toml`; `plugins_file` (from `--plugins`) overrides the one it names.
    pub fn new(gateway_file: PathBuf, plugins_file: Option<PathBuf>) -> Loader {
        Loader {
            gateway_file,
            plugins_file,
            host: PluginHost::default(),
            health: Arc::default(),
            version: AtomicU64::new(0),
        }
    }

    /// Reads and compiles everything; errors name file, entity and field. `entities`, when given,
    /// replaces the entities and plugin instances of `gateway.toml` (the embedded store's, or a
    /// configuration posted to the Admin API); `[server]` and `plugins.toml` are always read.
    pub fn load(&self, entities: Option<&GatewayConfig>) -> Result<Loaded, ConfigErrors> {
        let mut cfg = config::load_gateway(&self.gateway_file)?;
        if let Some(e) = entities {
            cfg = GatewayConfig { server: cfg.server, ..e.clone() };
        }
        let plugins_path = self
            .plugins_file
            .clone()
            .or_else(|| cfg.server.plugins_file.as_ref().map(|p| relative_to(&self.gateway_file, p)));
        let mut plugins_file = match &plugins_path {
            Some(p) => read_toml::<PluginsFile>(p)?,
            None => PluginsFile::default_for(cfg.server.database),
        };
        for (name, overrides) in &cfg.modules {
            plugins_file.modules.entry(name.clone()).or_default().overlay(overrides);
        }
        // Entities from the store or the Admin API are not in a file: label their errors plainly.
        let source = if entities.is_some() { Path::new("entities") } else { self.gateway_file.as_path() };
        let mut file_errors = ConfigErrors::default();
        config::read_certificate_files(&mut cfg, &self.gateway_file, &mut file_errors);
        file_errors.in_file(source).into_result(())?;
        let built = Arc::new(Entities::build(&cfg, &self.health).map_err(|e| e.in_file(source))?);
        let plugins_path = plugins_path.unwrap_or_else(|| self.gateway_file.clone());
        // At start-up, modules that need compiling wait (those configurations use come first).
        let used: BTreeSet<String> = cfg.plugins.iter().chain(&plugins_file.plugins).map(|p| p.name.clone()).collect();
        let modules =
            self.host.load_modules(&plugins_file, &plugins_path, &used).map_err(|e| e.in_file(&plugins_path))?;
        let mut errors = ConfigErrors::default();
        match entities {
            // The store (or a posted configuration) holds every plugin instance.
            Some(_) if !plugins_file.plugins.is_empty() => tracing::warn!(
                "{}: its [[plugins]] are ignored while entities come from the Admin API or the database; \
                 move them there (`wasmgate config import`)",
                plugins_path.display()
            ),
            Some(_) => {}
            None => cfg.plugins.append(&mut plugins_file.plugins),
        }
        let plugins = PluginSet::build(&cfg.plugins, &modules, &self.host.pending(), &built, &mut errors);
        let source = if entities.is_some() { source } else { plugins_path.as_path() };
        errors.in_file(source).into_result(())?;

        let version = self.version.fetch_add(1, Ordering::AcqRel) + 1;
        let plugin_paths = match plugins_file.watch {
            true => crate::plugins::watched_paths(&plugins_file, &plugins_path),
            false => Vec::new(),
        };
        let server = std::mem::take(&mut cfg.server);
        let snapshot = Snapshot { version, entities: built, plugins };
        Ok(Loaded { server, snapshot, plugin_paths, modules, config: Arc::new(cfg) })
    }

    /// Leaves modules that would need compiling until after start-up (`wasmgate run`): the
    /// listener opens without waiting for them, and the routes whose plugins wait answer 503.
    pub fn defer_compiling(&self) {
        self.host.defer_compiling();
    }

    /// Drops the health of targets that `snapshot` (about to go live) no longer has.
    fn forget_removed_targets(&self, snapshot: &Snapshot) {
        let upstreams = &snapshot.entities.upstreams;
        self.health.retain(|u, t| {
            snapshot
                .entities
                .upstream(u)
                .is_some_and(|i| upstreams[i].targets.iter().any(|x| x.address.to_string() == t))
        });
    }
}

/// Owns the live snapshot and replaces it.
pub(crate) struct Reloader {
    loader: Loader,
    live: Arc<ArcSwap<Snapshot>>,
    started_with: ServerConfig,
    /// `[server]` as the last successful load read it: what applies on reload comes from here.
    current: arc_swap::ArcSwap<ServerConfig>,
    plugin_paths: Vec<PathBuf>,
    state: Mutex<State>,
    /// Loads after the first that went live, and that were rejected.
    reloads: (AtomicU64, AtomicU64),
}

/// What the next reload builds from, besides the files.
struct State {
    /// Entities that replace the file's: the store's (embedded) or a posted configuration (off).
    entities: Option<Arc<GatewayConfig>>,
    /// The modules of the live snapshot.
    modules: HashMap<String, Arc<Module>>,
    /// The entities and plugin instances the live snapshot was built from.
    config: Arc<GatewayConfig>,
}

/// Why a reload happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// SIGHUP.
    Signal,
    /// `gateway.toml` changed (with `--watch`).
    ConfigFile,
    /// A plugin module or `plugins.toml` changed.
    PluginFile,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "SIGHUP",
            Trigger::ConfigFile => "configuration file changed",
            Trigger::PluginFile => "plugin file changed",
        }
    }
}

impl Reloader {
    /// Loads the first snapshot; fails with every error found. `entities` replaces the file's
    /// entities (the embedded store's).
    pub(crate) fn start(
        loader: Loader,
        entities: Option<GatewayConfig>,
    ) -> Result<(Arc<Reloader>, ServerConfig), ConfigErrors> {
        let entities = entities.map(Arc::new);
        let loaded = loader.load(entities.as_deref())?;
        page_out(&HashMap::new(), &loaded.modules);
        let live = Arc::new(ArcSwap::from_pointee(loaded.snapshot));
        let server = loaded.server.clone();
        let reloader = Reloader {
            loader,
            live,
            current: arc_swap::ArcSwap::from_pointee(loaded.server.clone()),
            started_with: loaded.server,
            plugin_paths: loaded.plugin_paths,
            state: Mutex::new(State { entities, modules: loaded.modules, config: loaded.config }),
            reloads: Default::default(),
        };
        Ok((Arc::new(reloader), server))
    }

    /// The live snapshot holder, shared with the proxy.
    pub(crate) fn live(&self) -> Arc<ArcSwap<Snapshot>> {
        self.live.clone()
    }

    /// `[server]` as the process started with it.
    pub(crate) fn server(&self) -> &ServerConfig {
        &self.started_with
    }

    /// `[server]` as the last successful reload read it (the fields that apply on reload).
    pub(crate) fn server_now(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// The plugin modules of the live snapshot, by name.
    pub(crate) fn modules(&self) -> HashMap<String, Arc<Module>> {
        self.state.lock().modules.clone()
    }

    /// Modules present but still compiling after start-up (not yet among [`Self::modules`]).
    pub(crate) fn compiling(&self) -> BTreeSet<String> {
        self.loader.host.compiling()
    }

    /// Compiles the modules left until after start-up and loads them, as a hot load does: each
    /// one a configuration uses as soon as it is compiled (its routes serve from then on), the
    /// others together at the end. A used module whose load is refused (say, its configuration)
    /// leaves its routes answering 503 without `Retry-After`; the log says why.
    fn compile_deferred(&self) {
        let started = std::time::Instant::now();
        let (mut count, mut unused) = (0, 0);
        while let Some(compiled) = self.loader.host.compile_next_deferred() {
            count += 1;
            match compiled {
                Compiled { loaded: true, used: true, pending } => {
                    if !self.reload(Trigger::PluginFile) {
                        pending.fail();
                    }
                }
                Compiled { loaded: true, used: false, .. } => unused += 1,
                Compiled { loaded: false, .. } => {}
            }
        }
        if count > 0 {
            let elapsed_ms = started.elapsed().as_millis() as u64;
            tracing::info!(count, elapsed_ms, "plugin modules compiled after start-up");
        }
        if unused > 0 {
            self.reload(Trigger::PluginFile);
        }
        self.loader.host.forget_deferred();
        if count > 0 {
            // The loads along the way validated every configuration again: their code is
            // resident once more.
            page_out(&HashMap::new(), &self.state.lock().modules);
        }
        crate::memory::started();
    }

    /// Builds a new snapshot and swaps it in, or logs why not and keeps the current one. In
    /// declarative mode a signal or a changed `gateway.toml` makes the files the source again.
    pub(crate) fn reload(&self, trigger: Trigger) -> bool {
        let mut state = self.state.lock();
        let current = self.live.load().version;
        let from_files = self.started_with.database == Database::Off && trigger != Trigger::PluginFile;
        let entities = if from_files { None } else { state.entities.clone() };
        let reason = trigger.as_str();
        match self.loader.load(entities.as_deref()) {
            Ok(loaded) => {
                warn_restart_only(&self.started_with, &loaded.server);
                self.current.store(Arc::new(loaded.server.clone()));
                let version = loaded.snapshot.version;
                self.swap_in(loaded.snapshot);
                page_out(&state.modules, &loaded.modules);
                *state = State { entities, modules: loaded.modules, config: loaded.config };
                self.reloads.0.fetch_add(1, Ordering::Relaxed);
                tracing::info!(reason, version, "configuration reloaded");
                true
            }
            Err(errors) => {
                self.reloads.1.fetch_add(1, Ordering::Relaxed);
                tracing::error!("configuration rejected ({reason}); still serving version {current}:\n{errors}");
                false
            }
        }
    }

    /// Swaps a snapshot in. A module whose configurations changed stops reusing its instances,
    /// which hold the old configurations and the log sinks those opened.
    fn swap_in(&self, snapshot: Snapshot) {
        self.loader.forget_removed_targets(&snapshot);
        let before = configs_by_module(&self.live.load().plugins);
        let after = configs_by_module(&snapshot.plugins);
        self.live.store(Arc::new(snapshot));
        for (key, (module, ids)) in &after {
            if before.get(key).map(|(_, old)| old) != Some(ids) {
                module.retire_instances();
            }
        }
    }

    /// Builds a snapshot from `entities` (with `[server]` and `plugins.toml` from the files),
    /// validating everything, without swapping it in.
    pub(crate) fn build(&self, entities: &GatewayConfig) -> Result<Loaded, ConfigErrors> {
        self.loader.load(Some(entities))
    }

    /// Swaps in a snapshot made by [`Self::build`]; later reloads keep its entities.
    pub(crate) fn install(&self, loaded: Loaded, entities: Arc<GatewayConfig>) -> u64 {
        let mut state = self.state.lock();
        let version = loaded.snapshot.version;
        self.swap_in(loaded.snapshot);
        page_out(&state.modules, &loaded.modules);
        *state = State { entities: Some(entities), modules: loaded.modules, config: loaded.config };
        self.reloads.0.fetch_add(1, Ordering::Relaxed);
        tracing::info!(version, "configuration applied from the Admin API");
        version
    }

    /// Loads after the first: (applied, rejected). Admin API writes count as applied.
    pub(crate) fn reload_counts(&self) -> (u64, u64) {
        (self.reloads.0.load(Ordering::Relaxed), self.reloads.1.load(Ordering::Relaxed))
    }

    /// The live version, and the entities and plugin instances it was built from.
    pub(crate) fn config(&self) -> (u64, Arc<GatewayConfig>) {
        let state = self.state.lock();
        (self.live.load().version, state.config.clone())
    }
}

/// Pages out the compiled code of the modules in `after` that are not in `before` (they just
/// went live: the load ran their code, the requests bring back what they run). Modules kept from
/// `before` are left alone, so that a reload costs requests no page faults.
fn page_out(before: &HashMap<String, Arc<Module>>, after: &HashMap<String, Arc<Module>>) {
    let new = after.iter().filter(|(name, m)| before.get(*name).is_none_or(|b| !Arc::ptr_eq(b, m)));
    new.for_each(|(_, m)| m.page_out());
}

/// Says which `[server]` changes wait for a restart ([`config::RELOAD_POLICY`]); the rest apply
/// with the new snapshot.
fn warn_restart_only(old: &ServerConfig, new: &ServerConfig) {
    let changed = config::restart_only_changes(old, new);
    if !changed.is_empty() {
        tracing::warn!("server: {} changed; this takes effect on restart", changed.join(", "));
    }
}

/// Background service: SIGHUP, plugin file changes (hot load) and, with `--watch`, configuration
/// changes trigger [`Reloader::reload`].
pub(crate) struct ReloadService {
    /// The reloader to drive.
    pub(crate) reloader: Arc<Reloader>,
    /// Whether to watch the configuration files.
    pub(crate) watch: bool,
}

#[async_trait]
impl BackgroundService for ReloadService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let reloader = self.reloader.clone();
        tokio::task::spawn_blocking(move || reloader.compile_deferred());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Trigger>();
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP; reload by signal is off");
                return;
            }
        };
        let hup_tx = tx.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let _ = hup_tx.send(Trigger::Signal);
            }
        });
        let config_file = self.watch.then(|| self.reloader.loader.gateway_file.clone());
        let plugin_paths = &self.reloader.plugin_paths;
        let _watcher = match config_file.is_some() || !plugin_paths.is_empty() {
            true => watch_paths(config_file, plugin_paths, tx),
            false => None,
        };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                Some(mut trigger) = rx.recv() => {
                    // Editors write in several steps: wait for the burst to settle, then reload once
                    // (from the files, if any event of the burst asks for that).
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    while let Ok(t) = rx.try_recv() {
                        if t != Trigger::PluginFile {
                            trigger = t;
                        }
                    }
                    let reloader = self.reloader.clone();
                    let _ = tokio::task::spawn_blocking(move || reloader.reload(trigger)).await;
                }
            }
        }
    }
}

/// Watches the configuration file and the plugin files (through their directories: editors
/// replace files by renaming) and directories (any `.wasm` in them), and reports changes.
fn watch_paths(
    config_file: Option<PathBuf>,
    plugin_paths: &[PathBuf],
    tx: tokio::sync::mpsc::UnboundedSender<Trigger>,
) -> Option<notify::RecommendedWatcher> {
    let config_file = config_file.map(|f| canonical(&f));
    let paths: Vec<PathBuf> = plugin_paths.iter().map(|p| canonical(p)).chain(config_file.clone()).collect();
    let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = paths.into_iter().partition(|p| p.is_dir());
    let (watched_dirs, watched_files) = (dirs.clone(), files.clone());
    let trigger = move |p: &Path| {
        let p = canonical(p);
        if config_file.as_ref() == Some(&p) {
            return Some(Trigger::ConfigFile);
        }
        let plugin = watched_files.contains(&p)
            || (p.extension().is_some_and(|e| e == "wasm")
                && p.parent().is_some_and(|d| watched_dirs.iter().any(|w| w == d)));
        plugin.then_some(Trigger::PluginFile)
    };
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev
            && !ev.kind.is_access()
            && let Some(t) = ev.paths.iter().filter_map(|p| trigger(p)).min_by_key(|t| *t == Trigger::PluginFile)
        {
            let _ = tx.send(t);
        }
    })
    .map_err(|e| tracing::error!(error = %e, "cannot watch configuration files"))
    .ok()?;
    let mut to_watch: Vec<PathBuf> = files.iter().map(|f| f.parent().unwrap_or(Path::new(".")).to_path_buf()).collect();
    to_watch.extend(dirs);
    to_watch.sort();
    to_watch.dedup();
    for dir in &to_watch {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::error!(dir = %dir.display(), error = %e, "cannot watch directory");
        }
    }
    tracing::info!(directories = to_watch.len(), "watching the configuration and plugin files for changes");
    Some(watcher)
}

/// The absolute path of `p`: a directory resolved whole (a symlinked plugins directory is watched
/// where it points), a file through its directory (the file itself may be absent for a moment).
fn canonical(p: &Path) -> PathBuf {
    if p.is_dir()
        && let Ok(dir) = p.canonicalize()
    {
        return dir;
    }
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    match p.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}

/// The configuration ids each module runs in a plugin set, by module.
fn configs_by_module(set: &PluginSet) -> HashMap<*const Module, (Arc<Module>, BTreeSet<u64>)> {
    let mut by_module: HashMap<*const Module, (Arc<Module>, BTreeSet<u64>)> = HashMap::new();
    for c in set.instances() {
        by_module
            .entry(Arc::as_ptr(&c.module))
            .or_insert_with(|| (c.module.clone(), BTreeSet::new()))
            .1
            .insert(c.config_id);
    }
    by_module
}
