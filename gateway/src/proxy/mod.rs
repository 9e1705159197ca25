//! The request's way through the gateway, as Pingora's `ProxyHttp` phases, top to bottom:
//!
//! 0. `early_request_filter`: pipelining, and the client timeouts of `[server]`.
//! 1. `request_filter`: take the config snapshot, find the client address, normalise the path;
//!    REWRITE (global plugins); route; check the route's protocol and service; ACCESS (the route's
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

pub mod answer;
mod balancing;
mod forwarding;
mod header_deadline;
mod log_facts;

use crate::balancer::Address;
use crate::dns::Resolver;
use crate::health::Outcome;
use crate::plugins::Chain;
use crate::plugins::module::CallScope;
use crate::plugins::phases::{self, Verdict};
use crate::plugins::state::{Phase, RequestInfo, RequestState, Source};
use crate::router::{RequestHost, RequestView, path};
use crate::snapshot::{Destination, Entities, Snapshot};
use answer::{Answer, messages};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
pub use header_deadline::ProxyApp;
use http::HeaderValue;
pub use log_facts::LogView;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::authority::{RawTargetAuthority, raw_target_authority};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `Via` / `Server` token.
pub const SERVER_TOKEN: &str = concat!("wasmgate/", env!("CARGO_PKG_VERSION"));
/// The `Via` header of proxied responses.
const VIA: &str = concat!("1.1 wasmgate/", env!("CARGO_PKG_VERSION"));
/// How long an idle upstream connection is kept for reuse.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest request body buffered for plugins that read it.
const MAX_BUFFERED_BODY: usize = 64 * 1024;

/// The proxy: shared, long-lived state. Everything that changes with configuration is in the
/// [`Snapshot`] behind `config`.
pub struct Gateway {
    config: Arc<ArcSwap<Snapshot>>,
    resolver: Resolver,
    in_flight: Arc<AtomicUsize>,
}

impl Gateway {
    /// A gateway serving whatever snapshot `config` holds at the start of each request.
    pub fn new(config: Arc<ArcSwap<Snapshot>>, in_flight: Arc<AtomicUsize>) -> Gateway {
        Gateway { config, resolver: Resolver::default(), in_flight }
    }
}

/// Which target a try went to.
#[derive(Debug, Clone, Copy)]
enum TargetRef {
    /// Target `t` of upstream `u`.
    Upstream(usize, usize),
    /// The service's own host.
    Direct(usize),
}

/// Per-request state.
pub struct RequestCtx {
    snapshot: Arc<Snapshot>,
    started: Instant,
    in_flight: Arc<AtomicUsize>,
    peer: IpAddr,
    matched_len: Option<usize>,
    upstream_path: String,
    /// The plugins that run for this request.
    chain: Arc<Chain>,
    /// What plugins (and the log) know and keep of the request.
    state: Box<RequestState>,
    /// The final response header, kept for body-filter and log plugins.
    response: Option<ResponseHeader>,
    /// A plugin failed closed; the 500 answer skips the plugins.
    plugin_failed: bool,
    tries: u32,
    tried: Vec<usize>,
    /// The consistent-hashing key, worked out at the first try.
    hash: Option<Option<u32>>,
    /// The current try, counted against its target for least-connections.
    load: Option<balancing::InFlight>,
    target: Option<TargetRef>,
    target_addr: Option<SocketAddr>,
    sent_upstream: Option<Instant>,
    upstream_latency: Option<Duration>,
    error_message: Option<&'static str>,
}

impl Drop for RequestCtx {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl RequestCtx {
    fn entities(&self) -> &Entities {
        &self.snapshot.entities
    }

    fn service(&self) -> Option<&crate::snapshot::Service> {
        self.state.info.service.map(|s| &self.entities().services[s])
    }

    fn target_address(&self) -> Option<&Address> {
        let e = self.entities();
        match self.target? {
            TargetRef::Upstream(u, t) => Some(&e.upstreams[u].targets[t].address),
            TargetRef::Direct(s) => match &e.services[s].destination {
                Destination::Direct(a) => Some(a),
                Destination::Upstream(_) => None,
            },
        }
    }
}

/// A plugin call scope over the session's request and the context's request state.
macro_rules! scope {
    ($session:expr, $ctx:expr, $phase:expr, $resp:expr) => {
        CallScope { phase: $phase, req: $session.req_header_mut(), resp: $resp, state: &mut $ctx.state }
    };
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let snapshot = self.config.load_full();
        let entities = snapshot.entities.clone();
        RequestCtx {
            chain: snapshot.plugins.global().clone(),
            snapshot,
            started: Instant::now(),
            in_flight: self.in_flight.clone(),
            peer: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            matched_len: None,
            upstream_path: String::new(),
            state: RequestState::new(entities),
            response: None,
            plugin_failed: false,
            tries: 0,
            tried: Vec::new(),
            hash: None,
            load: None,
            target: None,
            target_addr: None,
            sent_upstream: None,
            upstream_latency: None,
            error_message: None,
        }
    }

    async fn early_request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        // The client connection: the header is in (`client_header_timeout` met); pipelined
        // requests are answered in order (RFC 9112 §9.3.2); the body read and keep-alive idle
        // timeouts come from `[server]`.
        header_deadline::header_read();
        let settings = &ctx.entities().settings;
        session.set_pipelining_enabled(true);
        session.set_read_timeout(Some(settings.client_body_timeout));
        session.set_keepalive(Some(settings.keepalive_timeout));
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snap = ctx.snapshot.clone();
        let entities = &snap.entities;
        let req = session.req_header();
        ctx.peer = session.client_addr().and_then(|a| a.as_inet()).map_or(ctx.peer, |a| a.ip());
        let host = RequestHost::parse(request_host(req).unwrap_or_default(), 80);
        ctx.state.info = RequestInfo {
            client: forwarding::client_ip(ctx.peer, &req.headers, &entities.settings),
            host: Arc::from(host.name.as_str()),
            port: session.server_addr().and_then(|a| a.as_inet()).map_or(0, |a| a.port()),
            path: Arc::from(path::normalize(req.uri.path())),
            route: None,
            service: None,
        };

        // REWRITE: global plugins, before routing.
        if !ctx.chain.plugins.is_empty() {
            let chain = ctx.chain.clone();
            let verdict = phases::rewrite(&chain, &mut scope!(session, ctx, Phase::Rewrite, None));
            if let Some(done) = self.settle(session, ctx, verdict).await? {
                return Ok(done);
            }
        }

        // ROUTE
        let req = session.req_header();
        let view =
            RequestView { method: req.method.as_str(), host: &host, path: &ctx.state.info.path, headers: &req.headers };
        let Some(found) = entities.router.find(&view) else {
            return self.answer(session, ctx, Answer::message(404, messages::NO_ROUTE), Source::Error).await;
        };
        let route = &entities.routes[found.route];
        ctx.state.info.route = Some(found.route);
        ctx.matched_len = found.matched_len;
        ctx.chain = snap.plugins.for_route(found.route).clone();
        if !route.accepts_http {
            let mut a = Answer::message(426, messages::USE_HTTPS);
            a.headers.push(("connection".into(), "Upgrade".into()));
            a.headers.push(("upgrade".into(), "TLS/1.2, HTTP/1.1".into()));
            return self.answer(session, ctx, a, Source::Error).await;
        }
        let Some(service) = route.service else {
            return self.answer(session, ctx, Answer::message(503, messages::NO_SERVICE), Source::Error).await;
        };
        ctx.state.info.service = Some(service);

        // ACCESS: the route's plugins (auth, limits, canary, ...), which may answer early.
        if ctx.chain.needs_body
            && let Some(done) = self.buffer_request_body(session, ctx).await?
        {
            return Ok(done);
        }
        if !ctx.chain.plugins.is_empty() {
            let mut chain = ctx.chain.clone();
            let verdict = phases::access(&snap.plugins, &mut chain, &mut scope!(session, ctx, Phase::Access, None));
            ctx.chain = chain;
            if let Some(done) = self.settle(session, ctx, verdict).await? {
                return Ok(done);
            }
        }

        // UPSTREAM PATH: strip_path and service.path, unless a plugin set one.
        ctx.upstream_path = match ctx.state.upstream_path.take() {
            Some(p) => p,
            None => {
                let stripped = found.matched_len.map(|n| &ctx.state.info.path[..n]);
                path::upstream_path(&ctx.state.info.path, stripped, route.strip_path, &entities.services[service].path)
            }
        };
        Ok(false)
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        ctx.tries += 1;
        let snap = ctx.snapshot.clone();
        let entities = &snap.entities;
        let service_index = ctx.state.info.service.ok_or_else(|| answer::status_error(503, messages::NO_SERVICE))?;
        let service = &entities.services[service_index];
        let destination = match ctx.state.upstream {
            Some(u) => Destination::Upstream(u),
            None => service.destination.clone(),
        };
        let target = match destination {
            Destination::Upstream(u) => {
                let upstream = &entities.upstreams[u];
                let hash = match ctx.hash {
                    Some(h) => h,
                    None => {
                        let h = balancing::request_hash(upstream, session, ctx);
                        *ctx.hash.insert(h)
                    }
                };
                let pick = upstream.healthy_enough().then(|| upstream.pick(hash, &ctx.tried)).flatten();
                let Some(t) = pick else {
                    ctx.error_message = Some(messages::NO_PEER);
                    return Err(answer::status_error(503, messages::NO_PEER));
                };
                ctx.tried.push(t);
                ctx.load = Some(balancing::InFlight::new(upstream.targets[t].health.clone()));
                TargetRef::Upstream(u, t)
            }
            Destination::Direct(_) => TargetRef::Direct(service_index),
        };
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
        let mut peer = HttpPeer::new(socket, false, String::new());
        peer.options.connection_timeout = Some(service.connect_timeout);
        peer.options.read_timeout = Some(service.read_timeout);
        peer.options.write_timeout = Some(service.write_timeout);
        peer.options.idle_timeout = Some(UPSTREAM_IDLE_TIMEOUT);
        Ok(Box::new(peer))
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
        // The client's URI goes as it is when neither the path nor the query changed.
        if ctx.state.upstream_query.is_some() || upstream.uri.path() != ctx.upstream_path {
            let query = match &ctx.state.upstream_query {
                Some(q) => q.as_deref(),
                None => session.req_header().uri.query(),
            };
            let uri = match query {
                Some(q) => format!("{}?{q}", ctx.upstream_path),
                None => ctx.upstream_path.clone(),
            };
            upstream.set_uri(uri.parse().map_err(|_| Error::explain(ErrorType::InvalidHTTPHeader, "upstream path"))?);
        }

        let route = &ctx.entities().routes[ctx.state.info.route.expect("routed")];
        if !route.preserve_host
            && let Some(target) = ctx.target_address()
        {
            upstream.insert_header(http::header::HOST, target.host_header.clone())?;
        }
        if let Some(body) = &ctx.state.new_body {
            upstream.remove_header(&http::header::TRANSFER_ENCODING);
            upstream.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
        }
        let prefix = match (route.strip_path, ctx.matched_len) {
            (true, Some(n)) if n > 1 => Some(&ctx.state.info.path[..n]),
            _ => None,
        };
        let fwd = forwarding::Forwarded {
            peer: ctx.peer,
            client: ctx.state.info.client,
            trusted: ctx.entities().settings.is_trusted(ctx.peer),
            host: &ctx.state.info.host,
            port: ctx.state.info.port,
            path: session.req_header().uri.path(),
            prefix,
        };
        forwarding::apply(upstream, &fwd)?;
        ctx.sent_upstream = Some(Instant::now());
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // A plugin replaced the (fully buffered) body: each try sends the replacement with the
        // body's last chunk and nothing else (a retry replays the body through here again).
        if let Some(replacement) = &ctx.state.new_body {
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
        if self.filter_response(session, ctx, resp) == Verdict::Fail {
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
        if ctx.chain.filters_body {
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
            ctx.state.source = Source::Error;
            if let Err(write_err) = self.write_answer(session, ctx, answer).await {
                tracing::debug!(error = %write_err, "could not send the error answer");
            }
        }
        FailToProxy { error_code: status, can_reuse_downstream: false }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        if ctx.chain.logs || crate::access_log::writes_records() {
            ctx.state.facts = Some(Box::new(ctx.log_facts(session, status)));
        }
        let mut resp = ctx.response.take();
        if ctx.chain.logs {
            let chain = ctx.chain.clone();
            resp = resp.or_else(|| session.response_written().cloned());
            phases::log(&chain, &mut scope!(session, ctx, Phase::Log, resp.as_mut()));
        }
        let view = ctx.log_view();
        let resp = resp.as_ref().or(session.response_written());
        crate::access_log::record(session.req_header(), resp, e, status, &view, &ctx.state);
        if ctx.entities().settings.metrics {
            crate::metrics::record_request(&crate::metrics::RequestSample {
                service: view.service.unwrap_or_default(),
                route: view.route.unwrap_or_default(),
                status,
                source: ctx.state.source,
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

impl Gateway {
    /// Acts on a rewrite/access verdict: `Some(true)` when the request was answered.
    async fn settle(&self, session: &mut Session, ctx: &mut RequestCtx, verdict: Verdict) -> Result<Option<bool>> {
        match verdict {
            Verdict::Continue => Ok(None),
            Verdict::Respond(a) => self.answer(session, ctx, a, Source::Exit).await.map(Some),
            Verdict::Fail => {
                ctx.plugin_failed = true;
                self.answer(session, ctx, Answer::message(500, messages::UNEXPECTED), Source::Error).await.map(Some)
            }
        }
    }

    /// Sends a gateway answer and ends the request (`Ok(true)` for `request_filter`).
    async fn answer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        answer: Answer,
        source: Source,
    ) -> Result<bool> {
        ctx.state.source = source;
        self.write_answer(session, ctx, answer).await?;
        Ok(true)
    }

    /// Writes a gateway answer, through the header and body filters unless a plugin failed.
    async fn write_answer(&self, session: &mut Session, ctx: &mut RequestCtx, answer: Answer) -> Result<()> {
        let mut resp = ResponseHeader::build(answer.status, Some(answer.headers.len() + 3))?;
        for (name, value) in &answer.headers {
            resp.append_header(name.clone(), value.as_str())?;
        }
        let settings = &ctx.entities().settings;
        if settings.server_tokens {
            resp.insert_header(http::header::SERVER, SERVER_TOKEN)?;
        }
        if settings.latency_tokens {
            resp.insert_header("x-gateway-response-latency", millis(ctx.started.elapsed()))?;
        }
        let mut body = Some(answer.body);
        if !ctx.plugin_failed
            && self.filter_response(session, ctx, &mut resp) == Verdict::Continue
            && ctx.chain.filters_body
        {
            let chain = ctx.chain.clone();
            let mut kept = ctx.response.take();
            phases::body_filter(&chain, &mut scope!(session, ctx, Phase::BodyFilter, kept.as_mut()), &mut body, true);
            ctx.response = kept;
        }
        let body = body.unwrap_or_default();
        resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
        let has_body = !body.is_empty() && session.req_header().method != http::Method::HEAD;
        session.write_response_header(Box::new(resp), !has_body).await?;
        if has_body {
            session.write_response_body(Some(body), true).await?;
        }
        Ok(())
    }

    /// Header writes plugins made in rewrite and access, then HEADER_FILTER plugins, on a
    /// response; keeps a copy for body-filter and log plugins.
    fn filter_response(&self, session: &mut Session, ctx: &mut RequestCtx, resp: &mut ResponseHeader) -> Verdict {
        ctx.state.apply_response_headers(resp);
        if ctx.chain.plugins.is_empty() {
            return Verdict::Continue;
        }
        let chain = ctx.chain.clone();
        let verdict = phases::header_filter(&chain, &mut scope!(session, ctx, Phase::HeaderFilter, Some(resp)));
        if chain.filters_body {
            // The body may change length: let it be chunked.
            resp.remove_header(&http::header::CONTENT_LENGTH);
        }
        if chain.filters_body || chain.logs {
            ctx.response = Some(resp.clone());
        }
        verdict
    }

    /// Reads the whole request body (up to 64 KiB) for plugins that declared they need it; it is
    /// still sent upstream. `Some(true)` when the request was answered (too large).
    async fn buffer_request_body(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Option<bool>> {
        session.enable_retry_buffering();
        let mut buf = BytesMut::new();
        while let Some(chunk) = session.read_request_body().await? {
            buf.extend_from_slice(&chunk);
            if buf.len() > MAX_BUFFERED_BODY {
                let a = Answer::message(413, "Request size limit exceeded");
                return self.answer(session, ctx, a, Source::Error).await.map(Some);
            }
        }
        ctx.state.body = Some(buf.freeze());
        Ok(None)
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

/// A duration as a header value in whole milliseconds.
fn millis(d: Duration) -> HeaderValue {
    HeaderValue::from(d.as_millis() as u64)
}
