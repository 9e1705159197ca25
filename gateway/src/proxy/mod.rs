//! The request's way through the gateway, as Pingora's `ProxyHttp` phases, top to bottom:
//!
//! 0. `early_request_filter`: pipelining, and the client timeouts of `[server]`.
//! 1. `request_filter`: take the config snapshot, find the client address, normalise the path
//!    (refusing escaped slashes and `..;` segments), drop client-sent identity headers; REWRITE (global plugins); route; check the route's protocol and service; ACCESS (the route's
//!    plugin chain, re-resolved once a consumer is known); work out the upstream path.
//! 2. `upstream_peer`: pick a target of the service's upstream (or the one a plugin chose) by
//!    smooth weighted round-robin, avoiding targets already tried; resolve it; set timeouts.
//! 3. `upstream_request_filter`: upstream path and query, Host (preserve_host), X-Forwarded-*.
//! 4. `response_filter`: Via and latency headers, then HEADER_FILTER plugins.
//! 5. `response_body_filter`: BODY_FILTER plugins, chunk by chunk.
//! 6. `fail_to_connect` / `fail_to_proxy`: retries, then Kong's JSON errors (502, 503, 504).
//! 7. `logging`: LOG plugins (for every request, also early answers and errors), then the access log.
//!
//! The gateway's own answers (404, plugin early answers, errors) go through HEADER_FILTER and
//! BODY_FILTER too, as in Kong.

/// A plugin call scope over the session's request and the context's request state.
macro_rules! scope {
    ($session:expr, $ctx:expr, $phase:expr, $resp:expr) => {
        $crate::plugins::module::CallScope {
            phase: $phase,
            req: $session.req_header_mut(),
            resp: $resp,
            state: &mut $ctx.state,
        }
    };
}

mod balancing;
mod context;
mod forwarding;
mod header_deadline;
mod log_facts;
mod peer;
mod respond;
mod tls;
mod upstream_request;

use context::{RequestCtx, TargetRef};
use respond::millis;

use crate::dns::Resolver;
use crate::health::Outcome;
use crate::plugins::phases::{self, Verdict};
use crate::request::answer::{self, Answer, messages};
use crate::request::grpc;
use crate::request::{Phase, RequestInfo, Source};
use crate::router::{RequestHost, RequestView, path};
use crate::snapshot::Snapshot;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
pub(crate) use header_deadline::ProxyApp;
use http::HeaderValue;
pub(crate) use tls::SniCertificates;

use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::authority::{RawTargetAuthority, raw_target_authority};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

/// `Via` / `Server` token.
pub(crate) const SERVER_TOKEN: &str = concat!("wasmgate/", env!("CARGO_PKG_VERSION"));
/// The `Via` header of proxied responses.
const VIA: &str = concat!("1.1 wasmgate/", env!("CARGO_PKG_VERSION"));
/// Largest request body buffered for plugins that read it.
const MAX_BUFFERED_BODY: usize = 64 * 1024;

/// The proxy: shared, long-lived state. Everything that changes with configuration is in the
/// [`Snapshot`] behind `config`.
pub(crate) struct Gateway {
    config: Arc<ArcSwap<Snapshot>>,
    resolver: Resolver,
    in_flight: Arc<AtomicUsize>,
}

impl Gateway {
    /// A gateway serving whatever snapshot `config` holds at the start of each request.
    pub(crate) fn new(config: Arc<ArcSwap<Snapshot>>, in_flight: Arc<AtomicUsize>) -> Gateway {
        Gateway { config, resolver: Resolver::default(), in_flight }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.config.load_full(), self.in_flight.clone())
    }

    async fn early_request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        // The client connection: the header is in (`client_header_timeout` met); pipelined
        // requests are answered in order (RFC 9112 §9.3.2); the body read and keep-alive idle
        // timeouts come from `[server]`.
        header_deadline::header_read();
        let settings = &ctx.entities().settings;
        session.set_pipelining_enabled(true);
        session.set_read_timeout(Some(settings.client_body_timeout));
        // Only a connection the request keeps open (HTTP/1.1 without `Connection: close`, or
        // HTTP/1.0 with `Connection: keep-alive`) gets the idle timeout; an HTTP/1.0 client
        // that reads its answer to the end of the connection gets it closed.
        if session.as_ref().get_keepalive().is_some() {
            session.set_keepalive(Some(settings.keepalive_timeout));
        }
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snap = ctx.snapshot.clone();
        let entities = &snap.entities;
        let req = session.req_header();
        ctx.peer = session.client_addr().and_then(|a| a.as_inet()).map_or(ctx.peer, |a| a.ip());
        let host = RequestHost::parse(request_host(req).unwrap_or_default(), 80);
        let (normalized, refused) = match path::normalize_checked(req.uri.path(), entities.settings.escaped_slashes) {
            Ok(p) => (Arc::from(p.as_ref()), None),
            Err(why) => (Arc::from(req.uri.path()), Some(why)),
        };
        let ssl = session.digest().and_then(|d| d.ssl_digest.as_ref());
        let handshake = ssl.and_then(|s| s.extension.get::<tls::Handshake>());
        ctx.state.start(RequestInfo {
            client: forwarding::client_ip(ctx.peer, &req.headers, &entities.settings),
            host: Arc::from(host.name.as_str()),
            port: session.server_addr().and_then(|a| a.as_inet()).map_or(0, |a| a.port()),
            tls: ssl.is_some(),
            sni: handshake.and_then(|h| h.server_name.clone()),
            client_certificate: handshake.and_then(|h| h.client.clone()),
            path: normalized,
            route: None,
            service: None,
        });
        if let Some(why) = refused {
            return self.answer(session, ctx, Answer::message(400, why), Source::Error).await;
        }

        // The identity headers are the gateway's: a client's own go before any plugin runs.
        if !entities.settings.trust_identity_headers {
            forwarding::remove_identity_headers(session.req_header_mut());
        }

        // REWRITE: global plugins, before routing.
        if !ctx.chain.is_empty() {
            let chain = ctx.chain.clone();
            let verdict = phases::rewrite(&chain, &mut scope!(session, ctx, Phase::Rewrite, None)).await;
            if let Some(done) = self.settle(session, ctx, verdict).await? {
                return Ok(done);
            }
        }

        // ROUTE
        let req = session.req_header();
        let view = RequestView {
            method: req.method.as_str(),
            host: &host,
            path: &ctx.state.info().path,
            headers: &req.headers,
        };
        let Some(found) = entities.router.find(&view) else {
            return self.answer(session, ctx, Answer::message(404, messages::NO_ROUTE), Source::Error).await;
        };
        let route = &entities.routes[found.route];
        ctx.state.set_route(found.route);
        ctx.matched_len = found.matched_len;
        ctx.chain = snap.plugins.for_route(found.route).clone();
        if route.grpc_only && !grpc::is_grpc(&req.headers) {
            return self.answer(session, ctx, Answer::message(415, messages::NOT_GRPC), Source::Error).await;
        }
        if !ctx.state.info().tls && !route.accepts_plain {
            let a = match route.https_redirect {
                426 => {
                    let mut a = Answer::message(426, messages::USE_HTTPS);
                    a.headers.push(("connection".into(), "Upgrade".into()));
                    a.headers.push(("upgrade".into(), "TLS/1.2, HTTP/1.1".into()));
                    a
                }
                status => {
                    let uri = req.uri.path_and_query().map_or("/", |p| p.as_str());
                    let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason());
                    let mut a = Answer::message(status, reason.unwrap_or("Moved"));
                    a.headers.push(("location".into(), format!("https://{}{uri}", ctx.state.info().host)));
                    a
                }
            };
            return self.answer(session, ctx, a, Source::Error).await;
        }
        let Some(service) = route.service else {
            return self.answer(session, ctx, Answer::message(503, messages::NO_SERVICE), Source::Error).await;
        };
        ctx.state.set_service(service);

        // ACCESS: the route's plugins (auth, limits, canary, ...), which may answer early.
        if ctx.chain.needs_body
            && let Some(done) = self.buffer_request_body(session, ctx).await?
        {
            return Ok(done);
        }
        if !ctx.chain.is_empty() {
            let mut chain = ctx.chain.clone();
            let verdict =
                phases::access(&snap.plugins, &mut chain, &mut scope!(session, ctx, Phase::Access, None)).await;
            ctx.chain = chain;
            if let Some(done) = self.settle(session, ctx, verdict).await? {
                return Ok(done);
            }
        }

        // UPSTREAM PATH: strip_path and service.path, unless a plugin set one.
        ctx.upstream_path = match ctx.state.take_rewritten_path() {
            Some(p) => p,
            None => {
                let stripped = found.matched_len.map(|n| &ctx.state.info().path[..n]);
                path::upstream_path(
                    &ctx.state.info().path,
                    stripped,
                    route.strip_path,
                    &entities.services[service].path,
                )
            }
        };
        Ok(false)
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        ctx.tries += 1;
        let snap = ctx.snapshot.clone();
        let entities = &snap.entities;
        let service_index = ctx.state.info().service.ok_or_else(|| answer::status_error(503, messages::NO_SERVICE))?;
        let service = &entities.services[service_index];
        let target = balancing::pick_target(session, ctx, service_index)?;
        ctx.target = Some(target);
        let address = ctx.target_address().expect("target was just set").clone();
        let socket = match address.socket_addr() {
            Some(s) => s,
            None => match self.resolver.resolve(&address.host, address.port).await {
                Ok(addrs) => addrs[(ctx.tries as usize - 1) % addrs.len()],
                Err(e) => {
                    tracing::warn!(host = %address.host, error = %e, "name resolution failed");
                    ctx.error_message = Some(messages::DNS_FAILED);
                    return Err(answer::status_error(503, messages::DNS_FAILED));
                }
            },
        };
        ctx.target_addr = Some(socket);
        let route = ctx.state.info().route.map(|r| &entities.routes[r]);
        // A client that sent no host keeps the service's name: an empty one would turn
        // verification off.
        let client_host = route.filter(|r| r.preserve_host).map(|_| ctx.state.info().host.clone());
        let client_host = client_host.filter(|h| !h.is_empty());
        let peer = peer::peer(service, socket, client_host.as_deref());
        Ok(Box::new(peer))
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        _fd: std::os::unix::io::RawFd,
        digest: Option<&pingora_core::protocols::Digest>,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        crate::tls::check_chain_depth(digest)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        balancing::report(
            ctx,
            if e.etype() == &ErrorType::ConnectTimedout { Outcome::Timeout } else { Outcome::TcpFailure },
        );
        let retries = ctx.service().map_or(0, |s| s.retries);
        e.set_retry(ctx.tries <= retries);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        _client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        // A connection that failed before the response header came (Pingora marks those errors
        // "retry if reused") is tried again on the next target when repeating the request is
        // harmless: an idempotent method (nginx's rule) and the body still buffered. On a new
        // connection too: a target that dies mid-request closes those as well. Narrower than
        // nginx's `proxy_next_upstream error timeout`: a read timeout or a failed request write
        // stays final, as Pingora decides them.
        let retries = ctx.service().map_or(0, |s| s.retries);
        let repeatable = balancing::idempotent(&session.req_header().method) && ctx.tries <= retries;
        e.retry.decide_reuse(repeatable && !session.as_ref().retry_buffer_truncated());
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Path and query, Host (unless preserve_host), a replaced body's length, X-Forwarded-*.
        ctx.prepare_upstream_request(session.req_header(), upstream)?;
        ctx.sent_upstream = Some(Instant::now());
        Ok(())
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // A plugin's size limit (request-size-limiting) on a body it could not measure up front.
        if let Some(limit) = ctx.state.body_limit()
            && session.body_bytes_read() as u64 > limit
        {
            ctx.error_message = Some(messages::BODY_TOO_LARGE);
            return Err(answer::status_error(413, messages::BODY_TOO_LARGE));
        }
        // A plugin replaced the (fully buffered) body: each try sends the replacement with the
        // body's last chunk and nothing else (a retry replays the body through here again).
        if let Some(replacement) = ctx.state.new_body() {
            *body = end.then(|| replacement.clone());
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.upstream_latency = ctx.sent_upstream.map(|t| t.elapsed());
        if let (Some(TargetRef::Upstream(u, t)), Some(latency)) = (ctx.target, ctx.upstream_latency) {
            ctx.entities().upstreams[u].targets[t].health.record_latency(latency.as_micros() as u64);
        }
        balancing::report(ctx, Outcome::Status(resp.status.as_u16()));
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if resp.status == http::StatusCode::SWITCHING_PROTOCOLS {
            // A WebSocket tunnel: bytes flow both ways until either side closes, or until
            // neither sends for the service's read_timeout (Kong's idle timeout for it).
            ctx.tunnel = Some(crate::metrics::tunnel_opened());
            session.set_read_timeout(ctx.service().map(|s| s.read_timeout));
        }
        let settings = &ctx.entities().settings;
        if settings.server_tokens {
            resp.append_header("Via", HeaderValue::from_static(VIA))?;
        }
        if settings.latency_tokens {
            if let Some(up) = ctx.upstream_latency {
                resp.insert_header("x-gateway-upstream-latency", millis(up))?;
            }
            if let Some(sent) = ctx.sent_upstream {
                resp.insert_header("x-gateway-proxy-latency", millis(sent - ctx.started))?;
            }
        }
        if self.filter_response(session, ctx, resp).await == Verdict::Fail {
            ctx.plugin_failed = true;
            return Err(answer::status_error(500, messages::UNEXPECTED));
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        if ctx.chain.filters_body && ctx.hold_body(body, end) {
            let chain = ctx.chain.clone();
            let mut resp = ctx.response.take();
            let verdict =
                phases::body_filter(&chain, &mut scope!(session, ctx, Phase::BodyFilter, resp.as_mut()), body, end);
            ctx.response = resp;
            if verdict == Verdict::Fail {
                return Err(Error::explain(ErrorType::InternalError, "a fail-closed plugin failed in body_filter"));
            }
        }
        Ok(None)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
        if matches!(e.etype(), ErrorType::ReadTimedout | ErrorType::WriteTimedout) {
            balancing::report(ctx, Outcome::Timeout);
        }
        let Some(answer) = answer::for_error(e, ctx.error_message) else {
            return FailToProxy { error_code: 0, can_reuse_downstream: false };
        };
        let status = answer.status;
        if session.response_written().is_none() {
            ctx.state.set_source(Source::Error);
            if let Err(write_err) = self.write_answer(session, ctx, answer).await {
                tracing::debug!(error = %write_err, "could not send the error answer");
            }
        }
        FailToProxy { error_code: status, can_reuse_downstream: false }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        if ctx.chain.logs || crate::access_log::writes_records() {
            ctx.state.set_facts(ctx.log_facts(session, status));
        }
        let mut resp = ctx.response.take();
        if ctx.chain.logs {
            let chain = ctx.chain.clone();
            resp = resp.or_else(|| session.response_written().cloned());
            phases::log(&chain, &mut scope!(session, ctx, Phase::Log, resp.as_mut())).await;
        }
        let view = ctx.log_view();
        let resp = resp.as_ref().or(session.response_written());
        crate::access_log::record(session.req_header(), resp, e, status, &view, &ctx.state);
        if ctx.entities().settings.metrics {
            crate::metrics::record_request(&crate::metrics::RequestSample {
                service: view.service.unwrap_or_default(),
                route: view.route.unwrap_or_default(),
                status,
                source: ctx.state.source(),
                total: view.total,
                upstream: view.upstream_latency,
                bytes_in: session.body_bytes_read() as u64,
                bytes_out: session.body_bytes_sent() as u64,
            });
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, error: &Error) -> bool {
        // A client that went away is not the gateway's error (and an attacker could flood the
        // log with it); upstream failures are in the access log with their status.
        if *error.esource() == ErrorSource::Downstream {
            tracing::debug!(error = %error, "the client went away");
            return true;
        }
        matches!(error.etype(), ErrorType::HTTPStatus(_))
    }
}

/// The Host header, or the URI's authority (HTTP/2, absolute-form requests).
/// The request's host: the authority of an absolute-form target (RFC 9112 §3.2.2: it wins over
/// `Host`; Pingora refuses the two when they differ), else `Host`.
fn request_host(req: &RequestHeader) -> Option<&str> {
    if let RawTargetAuthority::Absolute { authority, .. } = raw_target_authority(req.raw_path()) {
        return std::str::from_utf8(authority).ok();
    }
    req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok())
}
