//! One request as the gateway's layers share it: the state plugins see and change
//! ([`RequestState`]), the phase and source of a call, header writes, the gateway's own answers
//! and the log record. It sits below plugins, metrics and the proxy, which all work on it, and
//! above the compiled entities it points into.

pub mod answer;
pub(crate) mod grpc;
pub(crate) mod header_access;
pub(crate) mod log_record;
pub(crate) mod redact;
mod state;

pub use state::*;

/// Whether a request asks to become a WebSocket (`Upgrade: websocket`).
pub(crate) fn is_websocket(headers: &http::HeaderMap) -> bool {
    let upgrade = headers.get(http::header::UPGRADE).and_then(|v| v.to_str().ok());
    upgrade.is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}
