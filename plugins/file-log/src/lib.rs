//! file-log: appends each request's log record (Kong's, as JSON) as one line to a file. Kong's
//! plugin of the same name. The plugin does no I/O: it opens a sink on the file, which the
//! operator must allow in `plugins.toml`, and the gateway writes the lines off the request path.

use schemars::JsonSchema;
use serde::Deserialize;
use wasmgate_plugin_sdk::{ConfigNeeds, Phases, Plugin, export_plugin, sink};

/// Configuration of file-log.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The file, created if missing; relative paths are relative to `plugins.toml`. It must be
    /// listed in `allow_log_files` of `[modules.file-log]` in `plugins.toml`.
    path: String,
    /// Close and reopen the file for every batch of lines (it is reopened anyway when it was moved
    /// or deleted, as by logrotate).
    #[serde(default)]
    reopen: bool,
    /// Lines that may wait to be written; past this, new lines are dropped and counted in
    /// `wasmgate_log_entries_total{outcome="dropped"}`.
    #[serde(default = "default_max_entries")]
    #[schemars(range(min = 1, max = 100_000))]
    max_entries: u32,
    /// Kong's Lua hook: refused when set, as there is no Lua here.
    #[serde(default)]
    custom_fields_by_lua: std::collections::BTreeMap<String, String>,
    /// The sink, once opened.
    #[serde(skip)]
    sink: u32,
}

fn default_max_entries() -> u32 {
    10_000
}

struct FileLog;

impl Plugin for FileLog {
    type Config = Config;
    const PRIORITY: i32 = 9;
    const PHASES: Phases = Phases::LOG;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        wasmgate_plugin_sdk::logs::refuse_custom_fields_by_lua(&config.custom_fields_by_lua)?;
        if config.path.is_empty() {
            return Err("path: must not be empty".into());
        }
        if !(1..=100_000).contains(&config.max_entries) {
            return Err(format!("max_entries: {} is out of range 1-100000", config.max_entries));
        }
        config.sink =
            sink::open_file(&config.path, config.reopen, config.max_entries).map_err(|e| format!("path: {e}"))?;
        Ok(ConfigNeeds { request_body: false })
    }

    fn log(config: &Config) -> Result<(), String> {
        sink::send_record(config.sink);
        Ok(())
    }
}

export_plugin!(FileLog);
