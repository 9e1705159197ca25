//! The per-request context Pingora hands to every phase: the snapshot the request runs on, the
//! plugin chain and state, and what the proxy keeps between phases (tries, target, timings).

use super::balancing;
use crate::balancer::Address;
use crate::entities::{Destination, Entities};
use crate::plugins::Chain;
use crate::request::RequestState;
use crate::snapshot::Snapshot;
use pingora_http::ResponseHeader;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Which target a try went to.
#[derive(Debug, Clone, Copy)]
pub(super) enum TargetRef {
    /// Target `t` of upstream `u`.
    Upstream(usize, usize),
    /// The service's own host.
    Direct(usize),
}

/// Per-request state.
pub(crate) struct RequestCtx {
    pub(super) snapshot: Arc<Snapshot>,
    pub(super) started: Instant,
    pub(super) in_flight: Arc<AtomicUsize>,
    pub(super) peer: IpAddr,
    pub(super) matched_len: Option<usize>,
    pub(super) upstream_path: String,
    /// The plugins that run for this request.
    pub(super) chain: Arc<Chain>,
    /// What plugins (and the log) know and keep of the request.
    pub(super) state: Box<RequestState>,
    /// The final response header, kept for body-filter and log plugins.
    pub(super) response: Option<ResponseHeader>,
    /// A plugin failed closed; the 500 answer skips the plugins.
    pub(super) plugin_failed: bool,
    pub(super) tries: u32,
    pub(super) tried: Vec<usize>,
    /// The consistent-hashing key, worked out at the first try.
    pub(super) hash: Option<Option<u32>>,
    /// The current try, counted against its target for least-connections.
    pub(super) load: Option<balancing::InFlight>,
    pub(super) target: Option<TargetRef>,
    pub(super) target_addr: Option<SocketAddr>,
    pub(super) sent_upstream: Option<Instant>,
    pub(super) upstream_latency: Option<Duration>,
    pub(super) error_message: Option<&'static str>,
    /// An open WebSocket tunnel (counted until the request ends with it).
    pub(super) tunnel: Option<crate::metrics::TunnelGuard>,
    /// The response body held for body filters that want it whole.
    pub(super) held_body: Option<bytes::BytesMut>,
}

impl Drop for RequestCtx {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl RequestCtx {
    /// The context of a new request on `snapshot`, counted in `in_flight` until dropped.
    pub(super) fn new(snapshot: Arc<Snapshot>, in_flight: Arc<AtomicUsize>) -> RequestCtx {
        in_flight.fetch_add(1, Ordering::AcqRel);
        let entities = snapshot.entities.clone();
        RequestCtx {
            chain: snapshot.plugins.global().clone(),
            snapshot,
            started: Instant::now(),
            in_flight,
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
            tunnel: None,
            held_body: None,
        }
    }

    pub(super) fn entities(&self) -> &Entities {
        &self.snapshot.entities
    }

    pub(super) fn service(&self) -> Option<&crate::entities::Service> {
        self.state.info().service.map(|s| &self.entities().services[s])
    }

    pub(super) fn target_address(&self) -> Option<&Address> {
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
