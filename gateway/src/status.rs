//! The status listener (`[server] status_listen`, Kong's name, off by default): `GET /metrics` in
//! the Prometheus text format and `GET /status`. The Admin API serves `/metrics` too. The
//! configuration, plugin module and health metrics are read when scraped, from the live snapshot,
//! the reloader and the health registry; the per-request ones are summed from [`crate::metrics`].

use crate::metrics::{esc, metric};
use crate::reload::Reloader;
use async_trait::async_trait;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What the metrics are read from.
pub(crate) struct Status {
    /// The reloader (live snapshot, reload counts, modules).
    pub(crate) reloader: Arc<Reloader>,
    /// Requests being proxied now.
    pub(crate) in_flight: Arc<AtomicUsize>,
}

impl Status {
    /// The metrics, in the Prometheus text format (version 0.0.4).
    pub(crate) fn metrics(&self) -> String {
        let mut out = String::new();
        let snapshot = self.reloader.live().load_full();
        let (ok, failed) = self.reloader.reload_counts();
        metric(&mut out, "wasmgate_config_version", "gauge", "The version of the configuration being served.");
        let _ = writeln!(out, "wasmgate_config_version {}", snapshot.version);
        metric(&mut out, "wasmgate_config_reloads_total", "counter", "Configuration loads after the first, by result.");
        let _ = writeln!(out, "wasmgate_config_reloads_total{{result=\"success\"}} {ok}");
        let _ = writeln!(out, "wasmgate_config_reloads_total{{result=\"failure\"}} {failed}");
        metric(&mut out, "wasmgate_requests_in_flight", "gauge", "Requests being proxied now.");
        let _ = writeln!(out, "wasmgate_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed));

        let mut modules: Vec<_> = self.reloader.modules().into_values().collect();
        modules.sort_by(|a, b| a.name.cmp(&b.name));
        metric(&mut out, "wasmgate_plugin_modules_loaded", "gauge", "Plugin modules loaded.");
        let _ = writeln!(out, "wasmgate_plugin_modules_loaded {}", modules.len());
        metric(&mut out, "wasmgate_plugin_module_info", "gauge", "A loaded plugin module and its version.");
        for m in &modules {
            let _ = writeln!(
                out,
                "wasmgate_plugin_module_info{{plugin=\"{}\",version=\"{}\"}} 1",
                esc(&m.name),
                esc(&m.version)
            );
        }

        metric(
            &mut out,
            "wasmgate_upstream_target_health",
            "gauge",
            "Health of each upstream target: 1 for its state.",
        );
        for u in &snapshot.entities.upstreams {
            for t in &u.targets {
                let state = match (t.health.is_healthy(), u.checks_enabled()) {
                    (false, _) => "unhealthy",
                    (true, false) => "healthchecks_off",
                    (true, true) => "healthy",
                };
                for s in ["healthy", "unhealthy", "healthchecks_off"] {
                    let _ = writeln!(
                        out,
                        "wasmgate_upstream_target_health{{upstream=\"{}\",target=\"{}\",state=\"{s}\"}} {}",
                        esc(&u.name),
                        esc(&t.address.to_string()),
                        u8::from(s == state)
                    );
                }
            }
        }
        crate::metrics::render(&mut out);
        crate::sinks::render(&mut out);
        out
    }

    /// `GET /status`: Kong's shape, for the parts wasmgate has.
    pub(crate) fn status(&self) -> serde_json::Value {
        let snapshot = self.reloader.live().load();
        serde_json::json!({
            "server": { "requests_in_flight": self.in_flight.load(Ordering::Relaxed) },
            "configuration_version": snapshot.version,
        })
    }
}

/// Pingora's HTTP app for the status listener.
pub(crate) struct StatusApp(pub(crate) Arc<Status>);

#[async_trait]
impl ServeHttp for StatusApp {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let (status, content_type, body) = match (session.req_header().method.as_str(), session.req_header().uri.path())
        {
            ("GET", "/metrics") => (200, "text/plain; version=0.0.4", self.0.metrics()),
            ("GET", "/status") => (200, "application/json", self.0.status().to_string()),
            _ => (404, "application/json", r#"{"message":"Not found"}"#.to_string()),
        };
        http::Response::builder()
            .status(status)
            .header("content-type", content_type)
            .header("content-length", body.len())
            .body(body.into_bytes())
            .unwrap_or_else(|_| http::Response::new(Vec::new()))
    }
}
