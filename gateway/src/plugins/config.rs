//! The shape of `plugins.toml`: where the `.wasm` modules are, their limits, and the plugin
//! instances (Kong's `plugins` entities) with their scope and configuration.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The whole `plugins.toml`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginsFile {
    /// Directory of modules, relative to this file: every `NAME.wasm` in it is the module `NAME`.
    #[serde(default = "defaults::plugins_dir")]
    pub plugins_dir: PathBuf,
    /// Where compiled modules are cached (default `$XDG_CACHE_HOME/wasmgate` or `~/.cache/wasmgate`).
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

/// Sandbox limits of a module, per call.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Milliseconds one phase call may run before it is stopped.
    pub cpu_ms: u64,
    /// Linear memory an instance may grow to, in MiB.
    pub memory_mb: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { cpu_ms: 50, memory_mb: 32 }
    }
}

/// `[modules.NAME]`: overrides for one module.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModuleSettings {
    /// The `.wasm` file, relative to this file (default `plugins_dir/NAME.wasm`).
    pub path: Option<PathBuf>,
    /// Run order; higher first (default: the plugin's own).
    pub priority: Option<i32>,
    /// `fail-closed` (answer 500) or `fail-open` (skip) when the plugin fails (default: the plugin's own).
    pub failure_policy: Option<FailurePolicy>,
    /// CPU deadline per call, ms.
    pub cpu_ms: Option<u64>,
    /// Memory cap, MiB.
    pub memory_mb: Option<u64>,
}

/// What happens to a request when a plugin traps, times out or returns an error.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Answer 500.
    FailClosed,
    /// Skip the plugin and go on.
    FailOpen,
}

/// `[[plugins]]`: one configured plugin instance (Kong's plugin entity).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
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
    pub config: toml::Table,
    /// Free-form labels.
    #[serde(default)]
    pub tags: Vec<String>,
}

mod defaults {
    use std::path::PathBuf;

    pub fn plugins_dir() -> PathBuf {
        PathBuf::from("plugins")
    }
    pub fn yes() -> bool {
        true
    }
}
