//! What the log phase, the access log and the metrics know of a finished request.

use super::{RequestCtx, TargetRef};
use crate::access_log::LogView;
use crate::request::log_record::LogFacts;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use std::time::{SystemTime, UNIX_EPOCH};

impl RequestCtx {
    /// What the access log records of this request.
    pub(crate) fn log_view(&self) -> LogView<'_> {
        let e = self.entities();
        let route = self.state.info().route.map(|r| &e.routes[r]).map(|r| r.name.as_deref().unwrap_or(&r.id));
        let service = self.service().map(|s| s.name.as_deref().unwrap_or(&s.id));
        let consumer =
            self.state.consumer().map(|c| e.consumers.get(c)).map(|c| c.username.as_deref().unwrap_or(&c.id));
        LogView {
            route,
            service,
            upstream: self.target_addr,
            total: self.started.elapsed(),
            proxy: self.sent_upstream.map(|t| t - self.started),
            upstream_latency: self.upstream_latency,
            client: self.state.info().client,
            tries: self.tries,
            consumer,
            target_health: match self.target {
                Some(TargetRef::Upstream(u, t)) => e.upstreams[u].targets[t].health.label(),
                _ => "-",
            },
        }
    }
}

impl RequestCtx {
    /// What the log record needs of the request, once it is over (sent with `status`).
    pub(crate) fn log_facts(&self, session: &Session, status: u16) -> LogFacts {
        let total = self.started.elapsed();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let req = session.req_header();
        let upstream_uri = (self.tries > 0).then(|| self.upstream_uri(req));
        LogFacts {
            request_id: self
                .state
                .shared()
                .get("request_id")
                .cloned()
                .unwrap_or_else(crate::request::log_record::random_id),
            started_at_ms: now.saturating_sub(total).as_millis() as u64,
            total,
            upstream: self.upstream_latency,
            request_size: request_header_size(req) + session.body_bytes_read() as u64,
            response_size: session.response_written().map_or(0, response_header_size)
                + session.body_bytes_sent() as u64,
            upstream_uri,
            tries: self.tries_made(),
            status,
            redactions: self.snapshot.plugins.redactions().clone(),
        }
    }

    /// The address of each try: the last as connected, earlier ones as the targets picked.
    fn tries_made(&self) -> Vec<(String, u16)> {
        let n = self.tries as usize;
        let e = self.entities();
        (0..n)
            .filter_map(|i| match (self.target, self.tried.get(i)) {
                _ if i + 1 == n => self.target_addr.map(|a| (a.ip().to_string(), a.port())),
                (Some(TargetRef::Upstream(u, _)), Some(&t)) => {
                    let a = &e.upstreams[u].targets[t].address;
                    Some((a.host.clone(), a.port))
                }
                _ => self.target_addr.map(|a| (a.ip().to_string(), a.port())),
            })
            .collect()
    }
}

/// Bytes of the request line and header (as HTTP/1.1).
fn request_header_size(req: &RequestHeader) -> u64 {
    let line = req.method.as_str().len() + req.raw_path().len() + " HTTP/1.1\r\n".len() + 1;
    (line + fields_size(&req.headers)) as u64
}

/// Bytes of the status line and header (as HTTP/1.1).
fn response_header_size(resp: &ResponseHeader) -> u64 {
    ("HTTP/1.1 200 OK\r\n".len() + fields_size(&resp.headers)) as u64
}

fn fields_size(headers: &http::HeaderMap) -> usize {
    headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum::<usize>() + 2
}
