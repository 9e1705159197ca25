//! Per-request state: what plugins see and change of one request. It lives boxed in the proxy's
//! request context and the box is swapped into the store for each phase call (a pointer swap), so
//! it survives across phases while instances go back to the pool.

use super::header_access::{HeaderAccess, Name};
use crate::snapshot::Entities;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// The phase a call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Loading: validating a configuration.
    Configure,
    /// Before routing.
    Rewrite,
    /// After routing.
    Access,
    /// Response headers.
    HeaderFilter,
    /// Response body.
    BodyFilter,
    /// After the response.
    Log,
}

/// Who produced the response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Source {
    /// The upstream.
    #[default]
    Service,
    /// A plugin's early answer.
    Exit,
    /// The gateway, because of an error.
    Error,
}

/// Facts of the request that plugins read; cheap to clone per call.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// Client address (trusted-proxy aware).
    pub client: IpAddr,
    /// Host header without port, lower-cased.
    pub host: Arc<str>,
    /// Port the request was received on.
    pub port: u16,
    /// Normalised path.
    pub path: Arc<str>,
    /// Matched route.
    pub route: Option<usize>,
    /// Its service.
    pub service: Option<usize>,
}

impl Default for RequestInfo {
    fn default() -> Self {
        RequestInfo {
            client: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            host: Arc::from(""),
            port: 0,
            path: Arc::from("/"),
            route: None,
            service: None,
        }
    }
}

/// What plugins see, change or keep during one request.
#[derive(Default)]
pub struct RequestState {
    /// Fixed facts of the request.
    pub info: RequestInfo,
    /// Routes, services, upstreams and consumers of the request's snapshot.
    pub entities: Option<Arc<Entities>>,
    /// Per-plugin values (`kong.ctx.plugin`), by plugin name.
    private: Vec<(Arc<str>, HashMap<String, String>)>,
    /// Values shared by all plugins (`kong.ctx.shared`).
    pub shared: HashMap<String, String>,
    /// The authenticated consumer (index into the snapshot's consumers).
    pub consumer: Option<usize>,
    /// The credential used to authenticate.
    pub credential: Option<String>,
    /// An upstream chosen by a plugin instead of the service's.
    pub upstream: Option<usize>,
    /// Upstream path set by a plugin.
    pub upstream_path: Option<String>,
    /// Upstream query set by a plugin.
    pub upstream_query: Option<Option<String>>,
    /// The buffered request body, when a plugin asked for it.
    pub body: Option<Bytes>,
    /// A replacement request body.
    pub new_body: Option<Bytes>,
    /// Response header writes made before there was a response (rewrite, access), applied to it
    /// by [`RequestState::apply_response_headers`].
    response_headers: Vec<HeaderOp>,
    /// Bytes kept in `response_headers`, and writes refused over [`MAX_KEPT_RESPONSE_HEADERS`].
    response_headers_bytes: usize,
    response_headers_refused: usize,
    /// Who produced the response.
    pub source: Source,
    /// What the log record needs once the request is over; set before the log phase.
    pub facts: Option<Box<crate::log_record::LogFacts>>,
    /// The route and service (indices) the configuration being called is scoped to, if any:
    /// Kong's `conf.route_id` and `conf.service_id`. Set before each plugin call.
    pub plugin_scope: (Option<usize>, Option<usize>),
}

/// Most bytes (names and values) of response header writes kept per request from rewrite and
/// access; a plugin cannot make the host hold more than this for a response that has not come.
pub const MAX_KEPT_RESPONSE_HEADERS: usize = 64 * 1024;

/// A header write kept for later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderOp {
    /// Replace all values.
    Set(Name, String),
    /// Add a value.
    Add(Name, String),
    /// Remove all values.
    Remove(Name),
}

impl RequestState {
    /// A fresh state for a request on `entities`.
    pub fn new(entities: Arc<Entities>) -> Box<RequestState> {
        Box::new(RequestState { entities: Some(entities), ..RequestState::default() })
    }

    /// Keeps a response header write for the response to come, within
    /// [`MAX_KEPT_RESPONSE_HEADERS`]; writes past it are refused (and counted).
    pub fn keep_response_header(&mut self, op: HeaderOp) {
        let size = match &op {
            HeaderOp::Set(n, v) | HeaderOp::Add(n, v) => n.len() + v.len(),
            HeaderOp::Remove(n) => n.len(),
        };
        if self.response_headers_bytes + size > MAX_KEPT_RESPONSE_HEADERS {
            self.response_headers_refused += 1;
            return;
        }
        self.response_headers_bytes += size;
        self.response_headers.push(op);
    }

    /// Applies the kept response header writes, in order (once; they are consumed).
    pub fn apply_response_headers(&mut self, resp: &mut pingora_http::ResponseHeader) {
        if self.response_headers_refused > 0 {
            tracing::warn!(
                refused = self.response_headers_refused,
                "plugins set more than {MAX_KEPT_RESPONSE_HEADERS} bytes of response headers before the response; the rest were ignored"
            );
            self.response_headers_refused = 0;
        }
        for op in self.response_headers.drain(..) {
            let result = match op {
                HeaderOp::Set(name, value) => resp.set(name, value),
                HeaderOp::Add(name, value) => resp.add(name, value),
                HeaderOp::Remove(name) => {
                    resp.remove_header(&*name);
                    Ok(())
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "a plugin wrote an invalid response header; ignored");
            }
        }
    }

    /// The values of plugin `name`, if it stored any.
    pub fn private_values(&self, name: &str) -> Option<&HashMap<String, String>> {
        self.private.iter().find(|(n, _)| &**n == name).map(|(_, m)| m)
    }

    /// The values of plugin `name`, created on first use.
    pub fn private_values_mut(&mut self, name: &Arc<str>) -> &mut HashMap<String, String> {
        let i = match self.private.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.private.push((name.clone(), HashMap::new()));
                self.private.len() - 1
            }
        };
        &mut self.private[i].1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_response_headers_are_bounded_and_applied_in_order() {
        let mut state = RequestState::default();
        state.keep_response_header(HeaderOp::Set("x-a".into(), "1".into()));
        state.keep_response_header(HeaderOp::Add("x-a".into(), "2".into()));
        state.keep_response_header(HeaderOp::Set("x-gone".into(), "1".into()));
        state.keep_response_header(HeaderOp::Remove("x-gone".into()));
        let big = "v".repeat(MAX_KEPT_RESPONSE_HEADERS);
        state.keep_response_header(HeaderOp::Set("x-big".into(), big));
        assert_eq!(state.response_headers_refused, 1, "over the budget");
        let mut resp = pingora_http::ResponseHeader::build(200, None).unwrap();
        state.apply_response_headers(&mut resp);
        let values: Vec<_> = resp.headers.get_all("x-a").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(values, ["1", "2"]);
        assert!(resp.headers.get("x-gone").is_none() && resp.headers.get("x-big").is_none());
        assert!(state.response_headers.is_empty(), "applied once");
    }
}
