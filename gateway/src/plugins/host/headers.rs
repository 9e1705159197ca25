//! Header reads and writes shared by the request and response host functions.

use pingora_http::{RequestHeader, ResponseHeader};
use std::borrow::Cow;

/// A header name to write: static for the host's own headers (no copy), owned for a plugin's.
pub type Name = Cow<'static, str>;

/// The operations plugins have on a header map, for both directions.
pub trait HeaderAccess {
    /// The headers.
    fn map(&self) -> &http::HeaderMap;
    /// Replaces all values of `name`.
    fn set(&mut self, name: Name, value: String) -> pingora_error::Result<()>;
    /// Adds a value to `name`.
    fn add(&mut self, name: Name, value: String) -> pingora_error::Result<()>;
    /// Removes `name`.
    fn remove(&mut self, name: &str);
}

macro_rules! header_access {
    ($t:ty) => {
        impl HeaderAccess for $t {
            fn map(&self) -> &http::HeaderMap {
                &self.headers
            }
            fn set(&mut self, name: Name, value: String) -> pingora_error::Result<()> {
                match name {
                    Cow::Borrowed(name) => self.insert_header(name, value),
                    Cow::Owned(name) => self.insert_header(name, value),
                }
            }
            fn add(&mut self, name: Name, value: String) -> pingora_error::Result<()> {
                match name {
                    Cow::Borrowed(name) => self.append_header(name, value),
                    Cow::Owned(name) => self.append_header(name, value),
                }
                .map(|_| ())
            }
            fn remove(&mut self, name: &str) {
                self.remove_header(name);
            }
        }
    };
}
header_access!(RequestHeader);
header_access!(ResponseHeader);

/// First value of `name`.
pub fn get(h: &impl HeaderAccess, name: &str) -> Option<String> {
    h.map().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// All values of `name`.
pub fn get_all(h: &impl HeaderAccess, name: &str) -> Vec<String> {
    h.map().get_all(name).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect()
}

/// Every header, in order.
pub fn all(h: &impl HeaderAccess) -> Vec<(String, String)> {
    h.map().iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

/// Logs a header the plugin tried to write but that is not valid HTTP.
pub fn rejected(state: &super::HostState, name: &str, e: impl std::fmt::Display) {
    if state.may_log() {
        tracing::warn!(plugin = %state.plugin, header = name, error = %e, "plugin wrote an invalid header; ignored");
    }
}
