//! Loading configuration into snapshots and swapping them in: at start, on SIGHUP, and on file
//! changes with `--watch`. A snapshot that fails to build is rejected with its errors and the
//! current one keeps serving; requests in flight keep the snapshot they started with.

use crate::config::{self, ConfigErrors, GatewayConfig, ServerConfig};
use crate::snapshot::Snapshot;
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
    version: AtomicU64,
}

impl Loader {
    /// A loader for `gateway.toml`.
    pub fn new(gateway_file: PathBuf) -> Loader {
        Loader { gateway_file, version: AtomicU64::new(0) }
    }

    /// Reads and compiles everything; errors name file, entity and field.
    pub fn load(&self) -> Result<(GatewayConfig, Snapshot), ConfigErrors> {
        let cfg = config::load_gateway(&self.gateway_file)?;
        let version = self.version.load(Ordering::Acquire) + 1;
        let snapshot = Snapshot::build(&cfg, version).map_err(|e| e.in_file(&self.gateway_file))?;
        self.version.store(version, Ordering::Release);
        Ok((cfg, snapshot))
    }

    /// The files whose changes trigger a reload under `--watch`.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        vec![self.gateway_file.clone()]
    }
}

/// Owns the live snapshot and replaces it.
pub struct Reloader {
    loader: Loader,
    live: Arc<ArcSwap<Snapshot>>,
    started_with: ServerConfig,
    lock: Mutex<()>,
}

impl Reloader {
    /// Loads the first snapshot; fails with every error found.
    pub fn start(loader: Loader) -> Result<(Arc<Reloader>, ServerConfig), ConfigErrors> {
        let (cfg, snapshot) = loader.load()?;
        let live = Arc::new(ArcSwap::from_pointee(snapshot));
        let reloader = Reloader { loader, live, started_with: cfg.server.clone(), lock: Mutex::new(()) };
        Ok((Arc::new(reloader), cfg.server))
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
            Ok((cfg, snapshot)) => {
                if cfg.server != self.started_with {
                    tracing::warn!("[server] changed; listeners, threads and logging change on restart only");
                }
                let version = snapshot.version;
                self.live.store(Arc::new(snapshot));
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

/// Background service: SIGHUP and (with `--watch`) file changes trigger [`Reloader::reload`].
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
        let _watcher = if self.watch { watch_files(&self.reloader.loader.watched_files(), tx) } else { None };
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

/// Watches the directories of `files` (editors replace files by renaming) and reports changes to them.
fn watch_files(files: &[PathBuf], tx: tokio::sync::mpsc::UnboundedSender<&'static str>) -> Option<notify::RecommendedWatcher> {
    let names: Vec<PathBuf> = files.iter().map(|f| canonical(f)).collect();
    let interesting = names.clone();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            if !ev.kind.is_access() && ev.paths.iter().any(|p| interesting.iter().any(|f| canonical(p) == *f)) {
                let _ = tx.send("file changed");
            }
        }
    })
    .map_err(|e| tracing::error!(error = %e, "cannot watch configuration files"))
    .ok()?;
    for f in &names {
        let dir = f.parent().unwrap_or(Path::new("."));
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::error!(dir = %dir.display(), error = %e, "cannot watch directory");
        }
    }
    Some(watcher)
}

/// The absolute path of `p`, resolving its directory (the file itself may be absent for a moment).
fn canonical(p: &Path) -> PathBuf {
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    match p.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}
