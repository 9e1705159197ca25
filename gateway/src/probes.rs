//! Active health checks: one background service (not one per worker) probes every target of the
//! upstreams that enable them, at the interval of the target's current state, with at most
//! `concurrency` probes in flight per upstream. A probe is `pingora-load-balancing`'s
//! `TcpHealthCheck` or `HttpHealthCheck`, built once per target and settings (an HTTP check holds
//! the target's `Host` and its own TLS connector).
//!
//! The crate's scheduler (`HealthCheckService` over a `HealthRegistry`) is not used: it runs one
//! check at one frequency for every backend, where Kong has an interval for healthy and one for
//! unhealthy targets, a concurrency bound and settings per upstream; and its health is a flag with
//! one consecutive counter, where Kong counts successes, HTTP failures, TCP failures and timeouts
//! apart, shares them with passive checks and lets an operator set health by hand. Health lives in
//! [`crate::health`], which keeps it across reloads.

use crate::balancer::{Target, TargetName};
use crate::config::ActiveChecks;
use crate::health::{Check, Outcome, now_ms};
use crate::snapshot::Snapshot;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora_core::protocols::l4::socket::SocketAddr;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_error::{Error, ErrorType};
use pingora_http::RequestHeader;
use pingora_load_balancing::Backend;
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How often due probes are looked for.
const TICK: Duration = Duration::from_millis(100);

/// The background service that runs active checks on the live snapshot's upstreams.
pub(crate) struct Prober {
    /// The live configuration.
    pub(crate) live: Arc<ArcSwap<Snapshot>>,
}

#[async_trait]
impl BackgroundService for Prober {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut checks: HashMap<(String, String), (ActiveChecks, Arc<dyn HealthCheck + Send + Sync>)> = HashMap::new();
        let mut limits: HashMap<String, (u32, Arc<Semaphore>)> = HashMap::new();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            let snapshot = self.live.load_full();
            let now = now_ms();
            for (u, upstream) in snapshot.entities.upstreams.iter().enumerate() {
                let active = &upstream.checks.active;
                if active.healthy.interval <= 0.0 && active.unhealthy.interval <= 0.0 {
                    continue;
                }
                let (size, slots) = limits
                    .entry(upstream.name.clone())
                    .or_insert_with(|| (active.concurrency, Arc::new(Semaphore::new(active.concurrency as usize))));
                if *size != active.concurrency {
                    (*size, *slots) = (active.concurrency, Arc::new(Semaphore::new(active.concurrency as usize)));
                }
                for (t, target) in upstream.targets.iter().enumerate() {
                    let interval =
                        if target.health.is_healthy() { active.healthy.interval } else { active.unhealthy.interval };
                    if interval <= 0.0 || now < target.health.next_probe_ms.load(Ordering::Acquire) {
                        continue;
                    }
                    let Ok(permit) = slots.clone().try_acquire_owned() else { break };
                    target.health.next_probe_ms.store(now + (interval * 1000.0) as u64, Ordering::Release);
                    let key = (upstream.name.clone(), target.address.to_string());
                    let (settings, check) =
                        checks.entry(key).or_insert_with(|| (active.clone(), check_for(active, target)));
                    if settings != active {
                        (*settings, *check) = (active.clone(), check_for(active, target));
                    }
                    let (snapshot, check) = (snapshot.clone(), check.clone());
                    tokio::spawn(async move {
                        let _permit = permit;
                        let upstream = &snapshot.entities.upstreams[u];
                        let target = &upstream.targets[t];
                        let outcome = probe(check.as_ref(), &upstream.checks.active, target).await;
                        let label = TargetName(&upstream.name, &target.address);
                        tracing::debug!(target: "wasmgate::health", target_address = %label, ?outcome, "probe");
                        target.health.report(&upstream.checks, Check::Active, outcome, &label);
                    });
                }
            }
            limits.retain(|name, _| snapshot.entities.upstream(name).is_some());
            checks.retain(|(name, address), _| {
                let upstream = snapshot.entities.upstream(name).map(|u| &snapshot.entities.upstreams[u]);
                upstream.is_some_and(|u| u.targets.iter().any(|t| t.address.to_string() == *address))
            });
        }
    }
}

/// The crate's check for a target under `active`: a TCP connection (tcp), or `GET http_path`
/// with the target's `Host`, over TLS for https. Every status comes back as an error carrying it,
/// so that Kong's healthy and unhealthy status lists are applied by [`crate::health`].
fn check_for(active: &ActiveChecks, target: &Target) -> Arc<dyn HealthCheck + Send + Sync> {
    let timeout = Some(Duration::from_secs_f64(active.timeout));
    if active.kind == "tcp" {
        let mut check = TcpHealthCheck::default();
        check.peer_template.options.connection_timeout = timeout;
        return Arc::new(check);
    }
    let mut check = HttpHealthCheck::new(&target.address.host, active.kind == "https");
    if active.kind == "https" {
        check.peer_template.sni = active.https_sni.clone().unwrap_or_else(|| target.address.host.clone());
    }
    let options = &mut check.peer_template.options;
    (options.connection_timeout, options.read_timeout) = (timeout, timeout);
    (options.verify_cert, options.verify_hostname) = (active.https_verify_certificate, active.https_verify_certificate);
    let mut request = RequestHeader::build("GET", active.http_path.as_bytes(), None).expect("a checked path");
    let _ = request.insert_header(http::header::HOST, target.address.host_header.clone());
    let _ = request.insert_header("user-agent", concat!("wasmgate/", env!("CARGO_PKG_VERSION"), " health check"));
    for (name, values) in &active.headers {
        for v in values {
            let _ = request.append_header(name.clone(), v.as_str());
        }
    }
    check.req = request;
    check.validator = Some(Box::new(|resp| {
        Error::e_explain(ErrorType::CustomCode("status", resp.status.as_u16()), "health check answer")
    }));
    Arc::new(check)
}

/// One probe of `target` (its name resolved now), within `active.timeout`, in Kong's terms.
async fn probe(check: &(dyn HealthCheck + Send + Sync), active: &ActiveChecks, target: &Target) -> Outcome {
    let attempt = async {
        let addr = match target.address.socket_addr() {
            Some(a) => a,
            None => tokio::net::lookup_host((target.address.host.as_str(), target.address.port))
                .await
                .ok()
                .and_then(|mut a| a.next())
                .ok_or(Outcome::TcpFailure)?,
        };
        let backend = Backend { addr: SocketAddr::Inet(addr), weight: 1, ext: Default::default() };
        Ok(match check.check(&backend).await {
            Ok(()) => Outcome::Connected,
            Err(e) => match e.etype() {
                ErrorType::CustomCode(_, status) => Outcome::Status(*status),
                ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => Outcome::Timeout,
                _ => Outcome::TcpFailure,
            },
        })
    };
    match tokio::time::timeout(Duration::from_secs_f64(active.timeout), attempt).await {
        Ok(Ok(outcome)) | Ok(Err(outcome)) => outcome,
        Err(_) => Outcome::Timeout,
    }
}
