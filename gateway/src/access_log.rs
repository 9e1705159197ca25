//! The access log: one line per request on stdout. As text it goes through `tracing` (target
//! `access`); as JSON the line is the request's log record, the one log plugins send
//! ([`crate::request::log_record`]). Its request id is the one correlation-id gave the request (its value
//! of the shared context key `request_id`), or else 32 hex digits, as nginx's `$request_id`.

use crate::request::RequestState;
use pingora_error::Error;
use pingora_http::{RequestHeader, ResponseHeader};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// Access-log view of a finished request.
pub(crate) struct LogView<'a> {
    /// Route name or id.
    pub(crate) route: Option<&'a str>,
    /// Service name or id.
    pub(crate) service: Option<&'a str>,
    /// Upstream address of the last try.
    pub(crate) upstream: Option<SocketAddr>,
    /// Total time in the gateway.
    pub(crate) total: Duration,
    /// Time before the request went upstream.
    pub(crate) proxy: Option<Duration>,
    /// Time the upstream took to answer headers.
    pub(crate) upstream_latency: Option<Duration>,
    /// Client address.
    pub(crate) client: IpAddr,
    /// Tries made.
    pub(crate) tries: u32,
    /// The authenticated consumer's username or id.
    pub(crate) consumer: Option<&'a str>,
    /// The chosen target's health after the request (`HEALTHY`, `UNHEALTHY`), `-` without one.
    pub(crate) target_health: &'static str,
}

/// The tracing target of text access-log events.
pub(crate) const TARGET: &str = "access";

/// How the access log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Format {
    /// Not at all.
    Off,
    /// `key=value` text, through `tracing`.
    Text,
    /// The log record as JSON.
    Json,
}

static FORMAT: AtomicU8 = AtomicU8::new(Format::Off as u8);

/// Sets the format (once, when logging starts).
pub(crate) fn set_format(format: Format) {
    FORMAT.store(format as u8, Ordering::Relaxed);
}

/// Whether the access log writes log records (which need [`RequestState::facts`]).
pub(crate) fn writes_records() -> bool {
    FORMAT.load(Ordering::Relaxed) == Format::Json as u8
}

/// Writes the line of a finished request, answered with `status`; as JSON when `state.facts`
/// is set.
pub(crate) fn record(
    req: &RequestHeader,
    resp: Option<&ResponseHeader>,
    error: Option<&Error>,
    status: u16,
    v: &LogView<'_>,
    state: &RequestState,
) {
    if writes_records() {
        let mut line = crate::request::log_record::build(req, resp, state);
        line.push('\n');
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
        return;
    }
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let made;
    let request_id = match state.facts().map(|f| &f.request_id).or(state.shared().get("request_id")) {
        Some(id) => id,
        None => {
            made = crate::request::log_record::random_id();
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
