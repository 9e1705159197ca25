//! The proxy's side of balancing and health: the request's hash key, requests in flight per
//! target, and what each try tells the passive checks.

use super::{RequestCtx, TargetRef};
use crate::balancer::{HashOn, TargetName, Upstream, hash_key};
use crate::entities::Destination;
use crate::health::{Check, Outcome, TargetHealth};
use crate::request::HeaderOp;
use crate::request::answer::{self, messages};
use pingora_error::Result;
use pingora_proxy::Session;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// One request in flight to a target, counted for least-connections until dropped (the next try,
/// or the end of the request).
pub(crate) struct InFlight(Arc<TargetHealth>);

impl InFlight {
    /// Counts a request to `target`.
    pub(crate) fn new(target: Arc<TargetHealth>) -> InFlight {
        target.connections.fetch_add(1, Ordering::AcqRel);
        InFlight(target)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
        // Only the trial request goes to a target on trial; if it ended without an outcome, the
        // trial must not hold the target forever.
        self.0.abandon_trial();
    }
}

/// Picks the target of this try: of the upstream a plugin chose or the service's, by its
/// algorithm and health, never one already tried; or the service's own host. 503 when no
/// target is healthy enough.
pub(crate) fn pick_target(session: &Session, ctx: &mut RequestCtx, service: usize) -> Result<TargetRef> {
    let snap = ctx.snapshot.clone();
    let destination = match ctx.state.chosen_upstream() {
        Some(u) => Destination::Upstream(u),
        None => snap.entities.services[service].destination.clone(),
    };
    let Destination::Upstream(u) = destination else {
        return Ok(TargetRef::Direct(service));
    };
    let upstream = &snap.entities.upstreams[u];
    let hash = match ctx.hash {
        Some(h) => h,
        None => {
            let h = request_hash(upstream, session, ctx);
            *ctx.hash.insert(h)
        }
    };
    let pick = upstream.healthy_enough().then(|| upstream.pick(hash, &ctx.tried)).flatten();
    let Some(t) = pick else {
        ctx.error_message = Some(messages::NO_PEER);
        return Err(answer::status_error(503, messages::NO_PEER));
    };
    ctx.tried.push(t);
    ctx.load = Some(InFlight::new(upstream.targets[t].health.clone()));
    Ok(TargetRef::Upstream(u, t))
}

/// The request's consistent-hashing key (`hash_on`, else `hash_fallback`), as the ring hashes
/// it; `None` for round-robin. A missing hash cookie is made up and set on the response.
pub(crate) fn request_hash(upstream: &Upstream, session: &Session, ctx: &mut RequestCtx) -> Option<u32> {
    let (on, fallback) = &upstream.hash_on;
    if *on == HashOn::None {
        return None;
    }
    if let HashOn::Cookie(name) = on {
        let value = cookie(session, name).map(str::to_string).unwrap_or_else(|| {
            let value = uuid::Uuid::new_v4().simple().to_string();
            let cookie = format!("{name}={value}; Path={}", upstream.cookie_path);
            ctx.state.keep_response_header(HeaderOp::Add("set-cookie".into(), cookie));
            value
        });
        return Some(hash_key(&value));
    }
    value(on, session, ctx).or_else(|| value(fallback, session, ctx)).map(|v| hash_key(&v))
}

/// The value of one `hash_on` kind for this request.
fn value(on: &HashOn, session: &Session, ctx: &RequestCtx) -> Option<String> {
    let req = session.req_header();
    match on {
        HashOn::None | HashOn::Cookie(_) => None,
        HashOn::Consumer => ctx.state.consumer().map(|c| ctx.entities().consumers.get(c).id.clone()),
        HashOn::Ip => Some(ctx.state.info().client.to_string()),
        HashOn::Path => Some(ctx.state.info().path.to_string()),
        HashOn::Header(name) => {
            let values: Vec<&str> = req.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
            (!values.is_empty()).then(|| values.join(","))
        }
        HashOn::QueryArg(arg) => form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == arg.as_str())
            .map(|(_, v)| v.into_owned()),
        HashOn::UriCapture(name) => {
            let route = ctx.state.info().route?;
            ctx.entities().router.capture(route, &ctx.state.info().path, name).map(str::to_string)
        }
    }
}

/// A cookie of the request.
fn cookie<'a>(session: &'a Session, name: &str) -> Option<&'a str> {
    session
        .req_header()
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| h.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v))
}

/// Tells the passive checks of the current target what happened.
pub(crate) fn report(ctx: &RequestCtx, outcome: Outcome) {
    let Some(TargetRef::Upstream(u, t)) = ctx.target else { return };
    let upstream = &ctx.entities().upstreams[u];
    let target = &upstream.targets[t];
    if !upstream.passive_checks() && !target.health.on_trial() {
        return;
    }
    let outcome = match (upstream.checks.passive.kind.as_str(), outcome) {
        // TCP checks look at connections only; an answer is a success.
        ("tcp", Outcome::Status(_)) => Outcome::Connected,
        (_, o) => o,
    };
    target.health.report(&upstream.checks, Check::Passive, outcome, &TargetName(&upstream.name, &target.address));
}

/// Whether a request with this method may be sent again after it reached an upstream: all but
/// nginx's non-idempotent POST, LOCK and PATCH, and CONNECT.
pub(crate) fn idempotent(method: &http::Method) -> bool {
    !matches!(*method, http::Method::POST | http::Method::PATCH | http::Method::CONNECT) && method.as_str() != "LOCK"
}
