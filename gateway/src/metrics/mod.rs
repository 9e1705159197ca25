//! Per-request metrics in Kong's shapes (its Prometheus plugin's, under a `wasmgate_` prefix),
//! counted without contention: each thread adds to a tally of its own (a thread-local behind a
//! mutex that only a scrape ever contends for), and a scrape sums the tallies. Labels are
//! bounded by the configuration: service, route, status code, source, plugin and phase; never a
//! client address or a path.
//!
//! [`requests`](self) counts what the proxy and the plugin host report; plugins declare and update
//! their own series through [`declare`] and [`update`]; [`render`] writes both.

mod histogram;
mod plugin;
mod requests;

pub(crate) use plugin::{PluginMetricKind, declare, update};
pub(crate) use requests::{
    CallOutcome, RequestSample, TunnelGuard, connection_opened, record_call, record_request, tunnel_opened,
};

use std::fmt::Write;

/// Writes every metric, summed over every thread, in the Prometheus text format.
pub(crate) fn render(out: &mut String) {
    requests::render(out);
    plugin::render(out);
}

/// Writes a metric's `# HELP` and `# TYPE` lines.
pub(crate) fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value, escaped for the text format.
pub(crate) fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
