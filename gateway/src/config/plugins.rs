//! The shape of `plugins.toml`: where the `.wasm` modules are, their limits, and the plugin
//! instances (Kong's `plugins` entities) with their scope and configuration.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole `plugins.toml`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginsFile {
    /// Directory of modules, relative to this file: every `NAME.wasm` in it is the module `NAME`.
    #[serde(default = "defaults::plugins_dir")]
    pub plugins_dir: PathBuf,
    /// Where compiled modules are cached (default `$XDG_CACHE_HOME/wasmgate` or `~/.cache/wasmgate`;
    /// none when neither is set). Used only when this user owns it and no one else may write it.
    pub cache_dir: Option<PathBuf>,
    /// Load new and changed modules, and edits of this file, without a restart.
    #[serde(default = "defaults::yes")]
    pub watch: bool,
    /// Limits for every module, unless the module overrides them.
    #[serde(default)]
    pub defaults: Limits,
    /// Per-module settings, by module name.
    #[serde(default)]
    pub modules: BTreeMap<String, ModuleSettings>,
    /// Plugin instances.
    #[serde(default)]
    pub plugins: Vec<PluginEntry>,
}

impl Default for PluginsFile {
    fn default() -> Self {
        PluginsFile {
            plugins_dir: defaults::plugins_dir(),
            cache_dir: None,
            watch: false,
            defaults: Limits::default(),
            modules: BTreeMap::new(),
            plugins: Vec::new(),
        }
    }
}

impl PluginsFile {
    /// The settings used when no `plugins.toml` is given. In declarative mode, modules come from
    /// `plugins/` next to `gateway.toml`. With the embedded database, the bundled modules are
    /// available by name (see [`bundled_plugins_dir`]) and new ones load without a restart.
    pub(crate) fn default_for(database: crate::config::Database) -> PluginsFile {
        match database {
            crate::config::Database::Off => PluginsFile::default(),
            crate::config::Database::Embedded => {
                PluginsFile { plugins_dir: bundled_plugins_dir(), watch: true, ..PluginsFile::default() }
            }
        }
    }
}

/// Where the bundled plugin modules are: `$WASMGATE_PLUGINS_DIR`, else the directory set by that
/// variable at build time, else `target/plugins` of the source tree (where `make plugins` puts them).
pub(crate) fn bundled_plugins_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WASMGATE_PLUGINS_DIR") {
        return PathBuf::from(dir);
    }
    match option_env!("WASMGATE_PLUGINS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"),
    }
}

/// Sandbox limits of a module, per call.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Milliseconds one phase call may run before it is stopped.
    pub(crate) cpu_ms: u64,
    /// Linear memory an instance may grow to, in MiB.
    pub(crate) memory_mb: u64,
    /// When a plugin that keeps hitting its deadline stops being called.
    pub(crate) quarantine: QuarantineSettings,
    /// Bytes the module's entries in the shared cache may take (least recently used go first).
    pub(crate) cache_bytes: u64,
    /// Bytes the module's window counters may take (keys seen once go first; see
    /// `plugins::counters`).
    pub(crate) counter_bytes: u64,
    /// Bytes of per-request context values (`context::set`, `shared-set`) one call may leave.
    pub(crate) context_bytes: u64,
    /// Request and response header writes per call.
    pub(crate) header_writes: u32,
    /// Bytes of header names and values written per call.
    pub(crate) header_bytes: u64,
    /// Bytes of stderr kept per call (the rest is dropped).
    pub(crate) stderr_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_ms: 50,
            memory_mb: 32,
            quarantine: QuarantineSettings::default(),
            cache_bytes: 16 << 20,
            counter_bytes: 16 << 20,
            context_bytes: 1 << 20,
            header_writes: 100,
            header_bytes: 64 << 10,
            stderr_bytes: 8 << 10,
        }
    }
}

/// `[modules.NAME]`: overrides for one module.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModuleSettings {
    /// The `.wasm` file, relative to this file (default `plugins_dir/NAME.wasm`).
    pub(crate) path: Option<PathBuf>,
    /// Run order; higher first (default: the plugin's own).
    pub(crate) priority: Option<i32>,
    /// `fail-closed` (answer 500) or `fail-open` (skip) when the plugin fails (default: the plugin's own).
    pub(crate) failure_policy: Option<FailurePolicy>,
    /// CPU deadline per call, ms.
    pub(crate) cpu_ms: Option<u64>,
    /// Memory cap, MiB.
    pub(crate) memory_mb: Option<u64>,
    /// Quarantine after repeated deadline hits.
    pub(crate) quarantine: Option<QuarantineSettings>,
    /// Shared-cache bytes.
    pub(crate) cache_bytes: Option<u64>,
    /// Window-counter bytes.
    pub(crate) counter_bytes: Option<u64>,
    /// Per-request context bytes.
    pub(crate) context_bytes: Option<u64>,
    /// Header writes per call.
    pub(crate) header_writes: Option<u32>,
    /// Header bytes per call.
    pub(crate) header_bytes: Option<u64>,
    /// Stderr bytes per call.
    pub(crate) stderr_bytes: Option<u64>,
    /// Files the module's log sinks may append to, relative to this file; an entry ending in `/`
    /// allows any file below that directory.
    #[serde(default)]
    pub(crate) allow_log_files: Vec<String>,
    /// HTTP endpoints the module's log sinks may send to.
    #[serde(default)]
    pub(crate) allow_log_endpoints: Vec<String>,
}

/// Module settings that may be changed at run time (through the Admin API, or `[modules.NAME]`
/// in `gateway.toml`); they override `plugins.toml`'s. The file path is not among them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModuleOverrides {
    /// Run order; higher first.
    pub(crate) priority: Option<i32>,
    /// `fail-closed` (answer 500) or `fail-open` (skip) when the plugin fails.
    pub(crate) failure_policy: Option<FailurePolicy>,
    /// CPU deadline per call, ms.
    pub(crate) cpu_ms: Option<u64>,
    /// Memory cap, MiB.
    pub(crate) memory_mb: Option<u64>,
}

impl ModuleSettings {
    /// Applies the overrides that are set.
    pub(crate) fn overlay(&mut self, o: &ModuleOverrides) {
        self.priority = o.priority.or(self.priority);
        self.failure_policy = o.failure_policy.or(self.failure_policy);
        self.cpu_ms = o.cpu_ms.or(self.cpu_ms);
        self.memory_mb = o.memory_mb.or(self.memory_mb);
    }
}

/// What happens to a request when a plugin traps, times out or returns an error.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum FailurePolicy {
    /// Answer 500.
    FailClosed,
    /// Skip the plugin and go on.
    FailOpen,
}

/// `[[plugins]]`: one configured plugin instance (Kong's plugin entity).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// UUID; derived when absent.
    pub id: Option<String>,
    /// The module (plugin) name.
    pub name: String,
    /// Scope: a route (name or id).
    pub route: Option<String>,
    /// Scope: a service (name or id).
    pub service: Option<String>,
    /// Scope: a consumer (username or id).
    pub consumer: Option<String>,
    /// Disabled instances are validated but not run.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// The plugin's configuration; the plugin validates it.
    #[serde(default)]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub config: toml::Table,
    /// Free-form labels.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `quarantine = { after, within_s, for_s }` in `plugins.toml`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct QuarantineSettings {
    /// Deadline hits that start a quarantine (0: never).
    pub(crate) after: u32,
    /// The window the hits are counted in, seconds.
    pub(crate) within_s: u64,
    /// How long a quarantine lasts before the trial call, seconds.
    pub(crate) for_s: u64,
}

impl Default for QuarantineSettings {
    fn default() -> Self {
        QuarantineSettings { after: 3, within_s: 10, for_s: 30 }
    }
}

mod defaults {
    use std::path::PathBuf;

    pub(crate) fn plugins_dir() -> PathBuf {
        PathBuf::from("plugins")
    }
    pub(crate) fn yes() -> bool {
        true
    }
}
