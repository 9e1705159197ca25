//! Writing headers on a Pingora request or response by name, for both directions: the host
//! functions' writes and the response header writes kept for later.

use pingora_http::{RequestHeader, ResponseHeader};
use std::borrow::Cow;

/// A header name to write: static for the host's own headers (no copy), owned for a plugin's.
pub(crate) type Name = Cow<'static, str>;

/// The operations plugins have on a header map, for both directions.
pub(crate) trait HeaderAccess {
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
