//! Per-request state: what plugins see and change of one request. It lives boxed in the proxy's
//! request context and the box is swapped into the store for each phase call (a pointer swap), so
//! it survives across phases while instances go back to the pool.

use super::header_access::{HeaderAccess, Name};
use crate::entities::Entities;
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
pub(crate) enum Source {
    /// The upstream.
    #[default]
    Service,
    /// A plugin's early answer.
    Exit,
    /// The gateway, because of an error.
    Error,
}

/// A verified client certificate (mutual TLS), as plugins see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientCertificate {
    /// Its subject, `CN=…,O=…`.
    pub(crate) subject: String,
    /// Its SHA-256 fingerprint, lower-case hex.
    pub(crate) fingerprint: String,
}

/// Facts of the request that plugins read; cheap to clone per call.
#[derive(Debug, Clone)]
pub(crate) struct RequestInfo {
    /// Client address (trusted-proxy aware).
    pub(crate) client: IpAddr,
    /// Host header without port, lower-cased.
    pub(crate) host: Arc<str>,
    /// Port the request was received on.
    pub(crate) port: u16,
    /// Whether it came over TLS.
    pub(crate) tls: bool,
    /// The server name of the TLS handshake, lower-cased.
    pub(crate) sni: Option<Arc<str>>,
    /// The certificate the client presented in the handshake (verified), if any.
    pub(crate) client_certificate: Option<Arc<ClientCertificate>>,
    /// Normalised path.
    pub(crate) path: Arc<str>,
    /// Matched route.
    pub(crate) route: Option<usize>,
    /// Its service.
    pub(crate) service: Option<usize>,
}

impl RequestInfo {
    /// `https` or `http`.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

impl Default for RequestInfo {
    fn default() -> Self {
        RequestInfo {
            client: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            host: Arc::from(""),
            port: 0,
            tls: false,
            sni: None,
            client_certificate: None,
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
    info: RequestInfo,
    /// Routes, services, upstreams and consumers of the request's snapshot.
    entities: Option<Arc<Entities>>,
    /// Per-plugin values (`kong.ctx.plugin`), by plugin name.
    private: Vec<(Arc<str>, HashMap<String, String>)>,
    /// Values shared by all plugins (`kong.ctx.shared`).
    shared: HashMap<String, String>,
    /// The authenticated consumer (index into the snapshot's consumers).
    consumer: Option<usize>,
    /// The credential used to authenticate.
    credential: Option<String>,
    /// An upstream chosen by a plugin instead of the service's.
    upstream: Option<usize>,
    /// Upstream path set by a plugin.
    upstream_path: Option<String>,
    /// Upstream query set by a plugin.
    upstream_query: Option<Option<String>>,
    /// Upstream method set by a plugin.
    upstream_method: Option<http::Method>,
    /// Most request body bytes a plugin allows (request-size-limiting), checked as it streams.
    body_limit: Option<u64>,
    /// A body filter asked for the response body whole.
    whole_body: bool,
    /// A plugin set the Host header: it goes upstream unchanged.
    host_kept: bool,
    /// The buffered request body, when a plugin asked for it.
    body: Option<Bytes>,
    /// A replacement request body.
    new_body: Option<Bytes>,
    /// Response header writes made before there was a response (rewrite, access), applied to it
    /// by [`RequestState::apply_response_headers`].
    response_headers: Vec<HeaderOp>,
    /// Bytes kept in `response_headers`, and writes refused over [`MAX_KEPT_RESPONSE_HEADERS`].
    response_headers_bytes: usize,
    response_headers_refused: usize,
    /// Who produced the response.
    source: Source,
    /// What the log record needs once the request is over; set before the log phase.
    facts: Option<Box<super::log_record::LogFacts>>,
    /// The route and service (indices) the configuration being called is scoped to, if any:
    /// Kong's `conf.route_id` and `conf.service_id`. Set before each plugin call.
    plugin_scope: (Option<usize>, Option<usize>),
}

/// Most bytes (names and values) of response header writes kept per request from rewrite and
/// access; a plugin cannot make the host hold more than this for a response that has not come.
pub(crate) const MAX_KEPT_RESPONSE_HEADERS: usize = 64 * 1024;

/// A header write kept for later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderOp {
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

    /// Fixed facts of the request.
    pub(crate) fn info(&self) -> &RequestInfo {
        &self.info
    }

    /// Sets the facts known before routing (the proxy, once per request).
    pub(crate) fn start(&mut self, info: RequestInfo) {
        self.info = info;
    }

    /// Records the matched route (the proxy, when it routed the request).
    pub fn set_route(&mut self, route: usize) {
        self.info.route = Some(route);
    }

    /// Records the service the request goes to (the proxy, once the route is known to have one).
    pub fn set_service(&mut self, service: usize) {
        self.info.service = Some(service);
    }

    /// Routes, services, upstreams and consumers of the request's snapshot.
    pub(crate) fn entities(&self) -> Option<&Entities> {
        self.entities.as_deref()
    }

    /// Values shared by all plugins (`kong.ctx.shared`).
    pub(crate) fn shared(&self) -> &HashMap<String, String> {
        &self.shared
    }

    /// Values shared by all plugins, to change.
    pub(crate) fn shared_mut(&mut self) -> &mut HashMap<String, String> {
        &mut self.shared
    }

    /// The authenticated consumer (index into the snapshot's consumers).
    pub(crate) fn consumer(&self) -> Option<usize> {
        self.consumer
    }

    /// The id of the credential the consumer authenticated with.
    pub(crate) fn credential(&self) -> Option<&str> {
        self.credential.as_deref()
    }

    /// Sets (or clears) the authenticated consumer and credential: Kong's `authenticate`.
    pub(crate) fn authenticate(&mut self, consumer: Option<usize>, credential: Option<String>) {
        self.consumer = consumer;
        self.credential = credential;
    }

    /// An upstream a plugin chose instead of the service's.
    pub(crate) fn chosen_upstream(&self) -> Option<usize> {
        self.upstream
    }

    /// Sends the request to upstream `index` instead of the service's (a plugin's choice).
    pub(crate) fn choose_upstream(&mut self, index: usize) {
        self.upstream = Some(index);
    }

    /// Sets the path sent upstream, replacing strip_path and the service path.
    pub(crate) fn rewrite_path(&mut self, path: String) {
        self.upstream_path = Some(path);
    }

    /// The upstream path a plugin set, taken once the access phase is over.
    pub(crate) fn take_rewritten_path(&mut self) -> Option<String> {
        self.upstream_path.take()
    }

    /// Sets the query sent upstream (`None`: no query).
    pub(crate) fn rewrite_query(&mut self, query: Option<String>) {
        self.upstream_query = Some(query);
    }

    /// The query a plugin set: `Some(None)` when it removed the query, `None` when it set none.
    pub(crate) fn rewritten_query(&self) -> Option<Option<&str>> {
        self.upstream_query.as_ref().map(Option::as_deref)
    }

    /// Sets the method sent upstream.
    pub(crate) fn rewrite_method(&mut self, method: http::Method) {
        self.upstream_method = Some(method);
    }

    /// The method a plugin set.
    pub(crate) fn rewritten_method(&self) -> Option<&http::Method> {
        self.upstream_method.as_ref()
    }

    /// Limits the request body to `max` bytes (the lowest of the limits set wins).
    pub(crate) fn limit_body(&mut self, max: u64) {
        self.body_limit = Some(self.body_limit.map_or(max, |m| m.min(max)));
    }

    /// The request body limit a plugin set.
    pub(crate) fn body_limit(&self) -> Option<u64> {
        self.body_limit
    }

    /// Sends the request's Host header upstream as it is (a plugin set it).
    pub(crate) fn keep_host(&mut self) {
        self.host_kept = true;
    }

    /// Whether a plugin set the Host header.
    pub(crate) fn host_kept(&self) -> bool {
        self.host_kept
    }

    /// Asks for the response body in one piece (a body filter's `buffer-body`).
    pub(crate) fn want_whole_body(&mut self) {
        self.whole_body = true;
    }

    /// Whether a body filter asked for the response body in one piece.
    pub(crate) fn wants_whole_body(&self) -> bool {
        self.whole_body
    }

    /// The buffered request body, when a plugin asked for it.
    pub(crate) fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }

    /// Keeps the request body the proxy buffered for plugins.
    pub(crate) fn set_body(&mut self, body: Bytes) {
        self.body = Some(body);
    }

    /// A replacement request body a plugin set.
    pub(crate) fn new_body(&self) -> Option<&Bytes> {
        self.new_body.as_ref()
    }

    /// Replaces the request body sent upstream.
    pub(crate) fn replace_body(&mut self, body: Bytes) {
        self.new_body = Some(body);
    }

    /// Who produced the response.
    pub(crate) fn source(&self) -> Source {
        self.source
    }

    /// Records who produced the response.
    pub(crate) fn set_source(&mut self, source: Source) {
        self.source = source;
    }

    /// What the log record needs; set before the log phase.
    pub(crate) fn facts(&self) -> Option<&crate::request::log_record::LogFacts> {
        self.facts.as_deref()
    }

    /// Sets what the log record needs, once the request is over.
    pub(crate) fn set_facts(&mut self, facts: crate::request::log_record::LogFacts) {
        self.facts = Some(Box::new(facts));
    }

    /// The route and service (indices) the configuration being called is scoped to.
    pub(crate) fn plugin_scope(&self) -> (Option<usize>, Option<usize>) {
        self.plugin_scope
    }

    /// Sets the scope of the configuration about to be called (Kong's `conf.route_id`, `conf.service_id`).
    pub(crate) fn scope_to(&mut self, route: Option<usize>, service: Option<usize>) {
        self.plugin_scope = (route, service);
    }

    /// Keeps a response header write for the response to come, within
    /// [`MAX_KEPT_RESPONSE_HEADERS`]; writes past it are refused (and counted).
    pub(crate) fn keep_response_header(&mut self, op: HeaderOp) {
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
    pub(crate) fn private_values(&self, name: &str) -> Option<&HashMap<String, String>> {
        self.private.iter().find(|(n, _)| &**n == name).map(|(_, m)| m)
    }

    /// The values of plugin `name`, created on first use.
    pub(crate) fn private_values_mut(&mut self, name: &Arc<str>) -> &mut HashMap<String, String> {
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
