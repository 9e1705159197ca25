//! Logging: diagnostics to stderr (filtered by `log_level` or `RUST_LOG`), the access log to stdout
//! as text or JSON. Pingora's `log` records are bridged into `tracing`.

use crate::access_log;
use crate::config::ServerConfig;
use std::io::IsTerminal;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, filter_fn};
use tracing_subscriber::prelude::*;

/// Installs the global subscriber. Call once, before the server starts.
pub(crate) fn init(server: &ServerConfig) {
    let diagnostics_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&server.log_level));
    let diagnostics = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter_fn(|m| m.target() != access_log::TARGET))
        .with_filter(diagnostics_filter);
    // JSON lines are the log record, written by `access_log` itself.
    let format = match server.access_log.as_str() {
        "off" => access_log::Format::Off,
        "json" => access_log::Format::Json,
        _ => access_log::Format::Text,
    };
    access_log::set_format(format);
    let access = (format == access_log::Format::Text).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .with_ansi(std::io::stdout().is_terminal())
            .with_target(false)
            .with_level(false)
            .with_filter(filter_fn(|m| m.target() == access_log::TARGET))
            .with_filter(LevelFilter::INFO)
    });
    let _ = tracing_subscriber::registry().with(diagnostics).with(access).try_init();
}
