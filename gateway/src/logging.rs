//! Logging: diagnostics to stderr (filtered by `log_level` or `RUST_LOG`), the access log to stdout
//! as text or JSON. Pingora's `log` records are bridged into `tracing`, with the levels of the
//! few records whose level misleads corrected on the way ([`corrected_level`]).

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
    let subscriber = tracing_subscriber::registry().with(diagnostics).with(access);
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        let _ = log::set_boxed_logger(Box::new(Bridge(tracing_log::LogTracer::new())));
        // Only records some filter could let through reach the bridge: Pingora's per-request
        // `debug!` and `trace!` calls then cost one comparison, not a call through `tracing`.
        log::set_max_level(tracing_log::AsLog::as_log(&LevelFilter::current()));
    }
}

/// Pingora's `log` records into `tracing`, at [`corrected_level`].
struct Bridge(tracing_log::LogTracer);

impl log::Log for Bridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = corrected_level(record);
        if level == record.level() {
            return self.0.log(record);
        }
        let corrected = log::Record::builder()
            .args(*record.args())
            .level(level)
            .target(record.target())
            .module_path(record.module_path())
            .file(record.file())
            .line(record.line())
            .build();
        if self.0.enabled(corrected.metadata()) {
            self.0.log(&corrected);
        }
    }

    fn flush(&self) {
        self.0.flush()
    }
}

/// The level a record deserves. Pingora's connector logs "failed to acquire reusable stream" at
/// ERROR when a pooled upstream connection it has just taken is still referenced by the idle
/// task that watched it (`Arc::try_unwrap` fails: the idle task's lock guard has released the
/// lock but not yet dropped its `Arc`). Pingora then returns no stream, the request opens a new
/// connection, and the pooled one closes when that task ends: nothing fails, so it is debug.
fn corrected_level(record: &log::Record<'_>) -> log::Level {
    let pool_race = record.target().starts_with("pingora_core::connectors")
        && record.args().as_str() == Some("failed to acquire reusable stream");
    if pool_race { log::Level::Debug } else { record.level() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_race_is_debug_and_other_records_keep_their_level() {
        let record = |target, args| log::Record::builder().level(log::Level::Error).target(target).args(args).build();
        let race = format_args!("failed to acquire reusable stream");
        assert_eq!(corrected_level(&record("pingora_core::connectors", race)), log::Level::Debug);
        let other = format_args!("connection refused");
        assert_eq!(corrected_level(&record("pingora_core::connectors", other)), log::Level::Error);
        let elsewhere = format_args!("failed to acquire reusable stream");
        assert_eq!(corrected_level(&record("wasmgate", elsewhere)), log::Level::Error);
    }
}
