//! The access log: one line per request through `tracing` (target `access`), as text or JSON.

use crate::proxy::LogView;
use pingora_error::Error;
use pingora_proxy::Session;

/// The tracing target of access-log events.
pub const TARGET: &str = "access";

/// Emits the line for a finished request, answered with `status`.
pub fn record(session: &Session, error: Option<&Error>, status: u16, v: &LogView<'_>) {
    let req = session.req_header();
    let ms = |d: Option<std::time::Duration>| d.map_or(-1, |d| d.as_millis() as i64);
    tracing::info!(
        target: TARGET,
        method = %req.method,
        path = %req.uri.path(),
        status,
        route = v.route.unwrap_or("-"),
        service = v.service.unwrap_or("-"),
        consumer = v.consumer.unwrap_or("-"),
        upstream = %v.upstream.map_or_else(|| "-".to_string(), |a| a.to_string()),
        target_health = v.target_health,
        tries = v.tries,
        client = %v.client,
        latency_ms = v.total.as_millis() as u64,
        proxy_ms = ms(v.proxy),
        upstream_ms = ms(v.upstream_latency),
        error = error.map(|e| e.etype().as_str()).unwrap_or("-"),
    );
}
