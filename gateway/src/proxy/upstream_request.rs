//! The request as it goes upstream: the path and query worked out in `request_filter`, the
//! Host header (the target's, unless the route preserves the client's), a replaced body's
//! length, no hop-by-hop headers, and Kong's `X-Forwarded-*` headers.

use super::{RequestCtx, forwarding};
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;

impl RequestCtx {
    /// Rewrites `upstream` (Pingora's copy of the `client` request) for the chosen target.
    pub(super) fn prepare_upstream_request(&self, client: &RequestHeader, upstream: &mut RequestHeader) -> Result<()> {
        // The client's URI goes as it is when neither the path nor the query changed.
        if self.state.rewritten_query().is_some() || upstream.uri.path() != self.upstream_path {
            let uri = self.upstream_uri(client);
            upstream.set_uri(uri.parse().map_err(|_| Error::explain(ErrorType::InvalidHTTPHeader, "upstream path"))?);
        }

        if let Some(method) = self.state.rewritten_method() {
            upstream.set_method(method.clone());
        }
        forwarding::remove_hop_by_hop(upstream);
        let route = &self.entities().routes[self.state.info().route.expect("routed")];
        if !route.preserve_host
            && !self.state.host_kept()
            && let Some(target) = self.target_address()
        {
            upstream.insert_header(http::header::HOST, target.host_header.clone())?;
        }
        if let Some(body) = self.state.new_body() {
            upstream.remove_header(&http::header::TRANSFER_ENCODING);
            upstream.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
        }
        let prefix = match (route.strip_path, self.matched_len) {
            (true, Some(n)) if n > 1 => Some(&self.state.info().path[..n]),
            _ => None,
        };
        let fwd = forwarding::Forwarded {
            peer: self.peer,
            client: self.state.info().client,
            trusted: self.entities().settings.is_trusted(self.peer),
            host: &self.state.info().host,
            port: self.state.info().port,
            proto: self.state.info().scheme(),
            path: client.uri.path(),
            prefix,
        };
        forwarding::apply(upstream, &fwd)
    }

    /// The path and query sent upstream: the query a plugin set, else the client's.
    pub(super) fn upstream_uri(&self, client: &RequestHeader) -> String {
        match self.state.rewritten_query().unwrap_or_else(|| client.uri.query()) {
            Some(q) => format!("{}?{q}", self.upstream_path),
            None => self.upstream_path.clone(),
        }
    }
}
