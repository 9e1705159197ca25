//! Loading configuration into snapshots and swapping them in: at start, on SIGHUP, and on file
//! changes with `--watch`. A snapshot that fails to build is rejected with its errors and the
//! current one keeps serving; requests in flight keep the snapshot they started with.

use crate::config::{self, ConfigErrors, ServerConfig, read_toml, relative_to};
use crate::plugins::config::PluginsFile;
use crate::plugins::{PluginHost, PluginSet};
use crate::snapshot::{Entities, Snapshot};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use notify::{RecursiveMode, Watcher};
use parking_lot::Mutex;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
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
    version: AtomicU64,
}

/// The result of a successful load.
pub struct Loaded {
    /// `[server]` as loaded.
    pub server: ServerConfig,
    /// The new snapshot.
    pub snapshot: Snapshot,
    /// Plugin files and directories to watch for hot loading (empty when off).
    pub plugin_paths: Vec<PathBuf>,
}

impl Loader {
    /// A loader for `gateway.toml`; `plugins_file` (from `--plugins`) overrides the one it names.
    pub fn new(gateway_file: PathBuf, plugins_file: Option<PathBuf>) -> Loader {
        Loader { gateway_file, plugins_file, host: PluginHost::default(), version: AtomicU64::new(0) }
    }

    /// Reads and compiles everything; errors name file, entity and field.
    pub fn load(&self) -> Result<Loaded, ConfigErrors> {
        let cfg = config::load_gateway(&self.gateway_file)?;
        let plugins_path = self
            .plugins_file
            .clone()
            .or_else(|| cfg.server.plugins_file.as_ref().map(|p| relative_to(&self.gateway_file, p)));
        let plugins_file = match &plugins_path {
            Some(p) => read_toml::<PluginsFile>(p)?,
            None => PluginsFile::default(),
        };
        let entities = Arc::new(Entities::build(&cfg).map_err(|e| e.in_file(&self.gateway_file))?);
        let plugins_path = plugins_path.unwrap_or_else(|| self.gateway_file.clone());
        let modules = self.host.load_modules(&plugins_file, &plugins_path).map_err(|e| e.in_file(&plugins_path))?;
        let mut errors = ConfigErrors::default();
        let plugins = PluginSet::build(&plugins_file.plugins, &modules, &entities, &mut errors);
        errors.in_file(&plugins_path).into_result(())?;

        let version = self.version.fetch_add(1, Ordering::AcqRel) + 1;
        let plugin_paths = match plugins_file.watch {
            true => crate::plugins::watched_paths(&plugins_file, &plugins_path),
            false => Vec::new(),
        };
        Ok(Loaded { server: cfg.server, snapshot: Snapshot { version, entities, plugins }, plugin_paths })
    }
}

/// Owns the live snapshot and replaces it.
pub struct Reloader {
    loader: Loader,
    live: Arc<ArcSwap<Snapshot>>,
    started_with: ServerConfig,
    plugin_paths: Vec<PathBuf>,
    lock: Mutex<()>,
}

impl Reloader {
    /// Loads the first snapshot; fails with every error found.
    pub fn start(loader: Loader) -> Result<(Arc<Reloader>, ServerConfig), ConfigErrors> {
        let loaded = loader.load()?;
        let live = Arc::new(ArcSwap::from_pointee(loaded.snapshot));
        let server = loaded.server.clone();
        let reloader = Reloader {
            loader,
            live,
            started_with: loaded.server,
            plugin_paths: loaded.plugin_paths,
            lock: Mutex::new(()),
        };
        Ok((Arc::new(reloader), server))
    }

    /// The live snapshot holder, shared with the proxy.
    pub fn live(&self) -> Arc<ArcSwap<Snapshot>> {
        self.live.clone()
    }

    /// Builds a new snapshot and swaps it in, or logs why not and keeps the current one.
    pub fn reload(&self, reason: &str) -> bool {
        let _one_at_a_time = self.lock.lock();
        let current = self.live.load().version;
        match self.loader.load() {
            Ok(loaded) => {
                warn_restart_only(&self.started_with, &loaded.server);
                let version = loaded.snapshot.version;
                self.live.store(Arc::new(loaded.snapshot));
                tracing::info!(reason, version, "configuration reloaded");
                true
            }
            Err(errors) => {
                tracing::error!("configuration rejected ({reason}); still serving version {current}:\n{errors}");
                false
            }
        }
    }
}

/// Says which `[server]` changes wait for a restart (the per-request ones apply now).
fn warn_restart_only(old: &ServerConfig, new: &ServerConfig) {
    let changed: Vec<&str> = [
        ("proxy_listen", old.proxy_listen != new.proxy_listen),
        ("admin_listen", old.admin_listen != new.admin_listen),
        ("worker_threads", old.worker_threads != new.worker_threads),
        ("access_log", old.access_log != new.access_log),
        ("log_level", old.log_level != new.log_level),
        ("graceful_shutdown_timeout", old.graceful_shutdown_timeout != new.graceful_shutdown_timeout),
        ("upstream_keepalive_pool_size", old.upstream_keepalive_pool_size != new.upstream_keepalive_pool_size),
        ("plugins_file", old.plugins_file != new.plugins_file),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect();
    if !changed.is_empty() {
        tracing::warn!("server: {} changed; this takes effect on restart", changed.join(", "));
    }
}

/// Background service: SIGHUP, plugin file changes (hot load) and, with `--watch`, configuration
/// changes trigger [`Reloader::reload`].
pub struct ReloadService {
    /// The reloader to drive.
    pub reloader: Arc<Reloader>,
    /// Whether to watch the configuration files.
    pub watch: bool,
}

#[async_trait]
impl BackgroundService for ReloadService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
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
                let _ = hup_tx.send("SIGHUP");
            }
        });
        let mut files = self.reloader.plugin_paths.clone();
        if self.watch {
            files.push(self.reloader.loader.gateway_file.clone());
        }
        let _watcher = if files.is_empty() { None } else { watch_paths(&files, tx) };
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                Some(reason) = rx.recv() => {
                    // Editors write in several steps: wait for the burst to settle, then reload once.
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    while rx.try_recv().is_ok() {}
                    let reloader = self.reloader.clone();
                    let _ = tokio::task::spawn_blocking(move || reloader.reload(reason)).await;
                }
            }
        }
    }
}

/// Watches files (through their directories: editors replace files by renaming) and directories
/// (any `.wasm` in them), and reports changes.
fn watch_paths(
    paths: &[PathBuf],
    tx: tokio::sync::mpsc::UnboundedSender<&'static str>,
) -> Option<notify::RecommendedWatcher> {
    let paths: Vec<PathBuf> = paths.iter().map(|p| canonical(p)).collect();
    let (dirs, files): (Vec<PathBuf>, Vec<PathBuf>) = paths.into_iter().partition(|p| p.is_dir());
    let (watched_dirs, watched_files) = (dirs.clone(), files.clone());
    let relevant = move |p: &Path| {
        let p = canonical(p);
        watched_files.contains(&p)
            || (p.extension().is_some_and(|e| e == "wasm")
                && p.parent().is_some_and(|d| watched_dirs.iter().any(|w| w == d)))
    };
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev
            && !ev.kind.is_access()
            && ev.paths.iter().any(|p| relevant(p))
        {
            let _ = tx.send("file changed");
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
