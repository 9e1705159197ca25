//! Header reads and writes shared by the request and response host functions.

use crate::request::header_access::HeaderAccess;

/// First value of `name`.
pub(crate) fn get(h: &impl HeaderAccess, name: &str) -> Option<String> {
    h.map().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// All values of `name`.
pub(crate) fn get_all(h: &impl HeaderAccess, name: &str) -> Vec<String> {
    h.map().get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect()
}

/// Every header, in order.
pub(crate) fn all(h: &impl HeaderAccess) -> Vec<(String, String)> {
    h.map().iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

/// Logs a header the plugin tried to write but that is not valid HTTP.
pub(crate) fn rejected(state: &super::HostState, name: &str, e: impl std::fmt::Display) {
    if state.may_log() {
        tracing::warn!(plugin = %state.plugin, header = name, error = %e, "plugin wrote an invalid header; ignored");
    }
}
