//! The access log: one line per request through `tracing` (target `access`), as text or JSON.
//! Its `request_id` is the one correlation-id gave the request (its value of the shared context
//! key `request_id`), or else one made for the line: 32 hex digits, as nginx's `$request_id`.

use crate::proxy::LogView;
use pingora_error::Error;
use pingora_proxy::Session;

/// The tracing target of access-log events.
pub const TARGET: &str = "access";

/// Emits the line for a finished request, answered with `status`; `request_id` is the id a plugin
/// gave it, if any.
pub fn record(session: &Session, error: Option<&Error>, status: u16, v: &LogView<'_>, request_id: Option<&str>) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let req = session.req_header();
    let made;
    let request_id = match request_id {
        Some(id) => id,
        None => {
            made = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
            &made
        }
    };
    let ms = |d: Option<std::time::Duration>| d.map_or(-1, |d| d.as_millis() as i64);
    tracing::info!(
        target: TARGET,
        request_id,
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
