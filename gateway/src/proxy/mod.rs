//! The request's way through the gateway, as Pingora's `ProxyHttp` phases, top to bottom:
//!
//! 1. `request_filter`: take the config snapshot, find the client address, normalise the path,
//!    route, check the route's protocol and service, work out the upstream path.
//! 2. `upstream_peer`: pick a target (smooth weighted round-robin; a retry avoids targets already
//!    tried), resolve it, and set the service's timeouts.
//! 3. `upstream_request_filter`: upstream path and query, Host (preserve_host), X-Forwarded-*.
//! 4. `response_filter`: Via and latency headers.
//! 5. `fail_to_connect` / `fail_to_proxy`: retries, then Kong's JSON errors (502, 503, 504).
//! 6. `logging`: the access log line.

pub mod answer;
mod forwarding;

use crate::balancer::Address;
use crate::dns::Resolver;
use crate::router::{RequestHost, RequestView, path};
use crate::snapshot::{Destination, Snapshot};
use answer::{Answer, messages};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `Via` / `Server` token.
pub const SERVER_TOKEN: &str = concat!("wasmgate/", env!("CARGO_PKG_VERSION"));
/// How long an idle upstream connection is kept for reuse.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

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
    client: IpAddr,
    /// The normalised request path.
    path: String,
    route: Option<usize>,
    service: Option<usize>,
    matched_len: Option<usize>,
    upstream_path: String,
    tries: u32,
    tried: Vec<usize>,
    target: Option<TargetRef>,
    target_addr: Option<std::net::SocketAddr>,
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
    fn service(&self) -> Option<&crate::snapshot::Service> {
        self.service.map(|s| &self.snapshot.services[s])
    }

    fn target_address(&self) -> Option<&Address> {
        let snap = &self.snapshot;
        match self.target? {
            TargetRef::Upstream(u, t) => Some(&snap.upstreams[u].targets[t].address),
            TargetRef::Direct(s) => match &snap.services[s].destination {
                Destination::Direct(a) => Some(a),
                Destination::Upstream(_) => None,
            },
        }
    }

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestCtx {
            snapshot: self.config.load_full(),
            started: Instant::now(),
            in_flight: self.in_flight.clone(),
            peer: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            client: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            path: String::new(),
            route: None,
            service: None,
            matched_len: None,
            upstream_path: String::new(),
            tries: 0,
            tried: Vec::new(),
            target: None,
            target_addr: None,
            sent_upstream: None,
            upstream_latency: None,
            error_message: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snap = ctx.snapshot.clone();
        let req = session.req_header();
        ctx.peer = session.client_addr().and_then(|a| a.as_inet()).map_or(ctx.peer, |a| a.ip());
        ctx.client = forwarding::client_ip(ctx.peer, &req.headers, &snap.settings);
        ctx.path = path::normalize(req.uri.path()).into_owned();

        let host = RequestHost::parse(request_host(req).unwrap_or_default(), 80);
        let view = RequestView { method: req.method.as_str(), host: &host, path: &ctx.path, headers: &req.headers };
        let Some(found) = snap.router.find(&view) else {
            return self.answer(session, ctx, Answer::message(404, messages::NO_ROUTE)).await;
        };
        let route = &snap.routes[found.route];
        ctx.route = Some(found.route);
        ctx.matched_len = found.matched_len;
        if !route.accepts_http {
            let mut a = Answer::message(426, messages::USE_HTTPS);
            a.headers.push(("connection".into(), "Upgrade".into()));
            a.headers.push(("upgrade".into(), "TLS/1.2, HTTP/1.1".into()));
            return self.answer(session, ctx, a).await;
        }
        let Some(service) = route.service else {
            return self.answer(session, ctx, Answer::message(503, messages::NO_SERVICE)).await;
        };
        ctx.service = Some(service);
        let stripped = found.matched_len.map(|n| &ctx.path[..n]);
        ctx.upstream_path = path::upstream_path(&ctx.path, stripped, route.strip_path, &snap.services[service].path);
        Ok(false)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        ctx.tries += 1;
        let snap = ctx.snapshot.clone();
        let service_index = ctx.service.ok_or_else(|| answer::status_error(503, messages::NO_SERVICE))?;
        let service = &snap.services[service_index];
        let target = match &service.destination {
            Destination::Upstream(u) => {
                let upstream = &snap.upstreams[*u];
                let pick = upstream.pick(|i| ctx.tried.contains(&i)).or_else(|| upstream.pick(|_| false));
                let Some(t) = pick else {
                    ctx.error_message = Some(messages::NO_PEER);
                    return Err(answer::status_error(503, messages::NO_PEER));
                };
                ctx.tried.push(t);
                TargetRef::Upstream(*u, t)
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

    fn fail_to_connect(&self, _session: &mut Session, _peer: &HttpPeer, ctx: &mut RequestCtx, mut e: Box<Error>) -> Box<Error> {
        let retries = ctx.service().map_or(0, |s| s.retries);
        e.set_retry(ctx.tries <= retries);
        e
    }

    async fn upstream_request_filter(&self, session: &mut Session, upstream: &mut RequestHeader, ctx: &mut RequestCtx) -> Result<()> {
        let uri = match session.req_header().uri.query() {
            Some(q) => format!("{}?{q}", ctx.upstream_path),
            None => ctx.upstream_path.clone(),
        };
        upstream.set_uri(uri.parse().map_err(|_| Error::explain(ErrorType::InvalidHTTPHeader, "upstream path"))?);

        let route = &ctx.snapshot.routes[ctx.route.expect("routed")];
        if !route.preserve_host {
            let host = ctx.target_address().map(host_header).unwrap_or_default();
            upstream.insert_header(http::header::HOST, host)?;
        }
        let req = session.req_header();
        let host = request_host(req).unwrap_or_default();
        let port = session.server_addr().and_then(|a| a.as_inet()).map_or(80, |a| a.port());
        let prefix = match (route.strip_path, ctx.matched_len) {
            (true, Some(n)) if n > 1 => Some(&ctx.path[..n]),
            _ => None,
        };
        let fwd = forwarding::Forwarded {
            peer: ctx.peer,
            client: ctx.client,
            trusted: ctx.snapshot.settings.is_trusted(ctx.peer),
            host: crate::router::without_port(host),
            port,
            path: req.uri.path(),
            prefix,
        };
        forwarding::apply(upstream, &fwd)?;
        ctx.sent_upstream = Some(Instant::now());
        Ok(())
    }

    async fn upstream_response_filter(&self, _session: &mut Session, _resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
        ctx.upstream_latency = ctx.sent_upstream.map(|t| t.elapsed());
        Ok(())
    }

    async fn response_filter(&self, _session: &mut Session, resp: &mut ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
        let settings = &ctx.snapshot.settings;
        if settings.server_tokens {
            resp.append_header(http::header::VIA, format!("1.1 {SERVER_TOKEN}"))?;
        }
        if settings.latency_tokens {
            if let Some(up) = ctx.upstream_latency {
                resp.insert_header("x-gateway-upstream-latency", RequestCtx::ms(up).to_string())?;
            }
            if let Some(sent) = ctx.sent_upstream {
                resp.insert_header("x-gateway-proxy-latency", RequestCtx::ms(sent - ctx.started).to_string())?;
            }
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
        let Some(answer) = answer::for_error(e, ctx.error_message) else {
            return FailToProxy { error_code: 0, can_reuse_downstream: false };
        };
        let status = answer.status;
        if session.response_written().is_none() {
            if let Err(write_err) = self.write_answer(session, ctx, answer).await {
                tracing::debug!(error = %write_err, "could not send the error answer");
            }
        }
        FailToProxy { error_code: status, can_reuse_downstream: false }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        crate::access_log::record(session, e, ctx);
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, error: &Error) -> bool {
        // Upstream failures are in the access log with their status; keep the error log for ours.
        matches!(error.etype(), ErrorType::HTTPStatus(_))
    }
}

impl Gateway {
    /// Sends a gateway answer and ends the request (`Ok(true)` for `request_filter`).
    async fn answer(&self, session: &mut Session, ctx: &mut RequestCtx, answer: Answer) -> Result<bool> {
        self.write_answer(session, ctx, answer).await?;
        Ok(true)
    }

    async fn write_answer(&self, session: &mut Session, ctx: &mut RequestCtx, answer: Answer) -> Result<()> {
        let mut resp = ResponseHeader::build(answer.status, Some(answer.headers.len() + 3))?;
        for (name, value) in &answer.headers {
            resp.append_header(name.clone(), value.as_str())?;
        }
        resp.insert_header(http::header::CONTENT_LENGTH, answer.body.len().to_string())?;
        let settings = &ctx.snapshot.settings;
        if settings.server_tokens {
            resp.insert_header(http::header::SERVER, SERVER_TOKEN)?;
        }
        if settings.latency_tokens {
            resp.insert_header("x-gateway-response-latency", RequestCtx::ms(ctx.started.elapsed()).to_string())?;
        }
        let has_body = !answer.body.is_empty() && session.req_header().method != http::Method::HEAD;
        session.write_response_header(Box::new(resp), !has_body).await?;
        if has_body {
            session.write_response_body(Some(Bytes::clone(&answer.body)), true).await?;
        }
        Ok(())
    }
}

/// The Host header, or the URI's authority (HTTP/2, absolute-form requests).
fn request_host(req: &RequestHeader) -> Option<&str> {
    req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri.authority().map(|a| a.as_str()))
}

/// `host[:port]` for the upstream Host header; the port only when it is not 80.
fn host_header(a: &Address) -> String {
    let host = if a.host.contains(':') { format!("[{}]", a.host) } else { a.host.clone() };
    if a.port == 80 { host } else { format!("{host}:{}", a.port) }
}

/// Access-log view of a finished request.
pub struct LogView<'a> {
    /// Route name or id.
    pub route: Option<&'a str>,
    /// Service name or id.
    pub service: Option<&'a str>,
    /// Upstream address of the last try.
    pub upstream: Option<std::net::SocketAddr>,
    /// Total time in the gateway.
    pub total: Duration,
    /// Time before the request went upstream.
    pub proxy: Option<Duration>,
    /// Time the upstream took to answer headers.
    pub upstream_latency: Option<Duration>,
    /// Client address.
    pub client: IpAddr,
    /// Tries made.
    pub tries: u32,
}

impl RequestCtx {
    /// What the access log records of this request.
    pub fn log_view(&self) -> LogView<'_> {
        let snap = &self.snapshot;
        let route = self.route.map(|r| &snap.routes[r]).map(|r| r.name.as_deref().unwrap_or(&r.id));
        let service = self.service().map(|s| s.name.as_deref().unwrap_or(&s.id));
        LogView {
            route,
            service,
            upstream: self.target_addr,
            total: self.started.elapsed(),
            proxy: self.sent_upstream.map(|t| t - self.started),
            upstream_latency: self.upstream_latency,
            client: self.client,
            tries: self.tries,
        }
    }
}
