//! Active health checks: one background service (not one per worker) probes every target of the
//! upstreams that enable them, at the interval of the target's current state, with at most
//! `concurrency` probes in flight per upstream. Probes go through Pingora's connector, so `https`
//! probes use the same TLS stack as the proxy. Health lives in [`crate::health`], which keeps it
//! across reloads.

use crate::balancer::{Target, TargetName, Upstream};
use crate::health::{Check, Outcome, now_ms};
use crate::snapshot::Snapshot;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora_core::connectors::TransportConnector;
use pingora_core::protocols::http::v1::client::HttpSession;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::ErrorType;
use pingora_http::RequestHeader;
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
        let connector = Arc::new(TransportConnector::new(None));
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
                    let (snapshot, connector) = (snapshot.clone(), connector.clone());
                    tokio::spawn(async move {
                        let _permit = permit;
                        let upstream = &snapshot.entities.upstreams[u];
                        let target = &upstream.targets[t];
                        let outcome = probe(&connector, upstream, target).await;
                        let label = TargetName(&upstream.name, &target.address);
                        tracing::debug!(target: "wasmgate::health", target_address = %label, ?outcome, "probe");
                        target.health.report(&upstream.checks, Check::Active, outcome, &label);
                    });
                }
            }
            limits.retain(|name, _| snapshot.entities.upstream(name).is_some());
        }
    }
}

/// One probe: connect (tcp), or `GET http_path` and read the status (http, https).
async fn probe(connector: &TransportConnector, upstream: &Upstream, target: &Target) -> Outcome {
    let active = &upstream.checks.active;
    let timeout = Duration::from_secs_f64(active.timeout);
    let attempt = async {
        let addr = match target.address.socket_addr() {
            Some(a) => a,
            None => tokio::net::lookup_host((target.address.host.as_str(), target.address.port))
                .await
                .ok()
                .and_then(|mut a| a.next())
                .ok_or(Outcome::TcpFailure)?,
        };
        let tls = active.kind == "https";
        let sni = active.https_sni.clone().unwrap_or_else(|| target.address.host.clone());
        let mut peer = HttpPeer::new(addr, tls, sni);
        peer.options.connection_timeout = Some(timeout);
        peer.options.verify_cert = active.https_verify_certificate;
        peer.options.verify_hostname = active.https_verify_certificate;
        let stream = connector.new_stream(&peer).await.map_err(|e| match e.etype() {
            ErrorType::ConnectTimedout => Outcome::Timeout,
            _ => Outcome::TcpFailure,
        })?;
        if active.kind == "tcp" {
            return Ok(Outcome::Connected);
        }
        let mut request =
            RequestHeader::build("GET", active.http_path.as_bytes(), None).map_err(|_| Outcome::TcpFailure)?;
        let _ = request.insert_header(http::header::HOST, target.address.host_header.clone());
        let _ = request.insert_header("user-agent", concat!("wasmgate/", env!("CARGO_PKG_VERSION"), " health check"));
        for (name, values) in &active.headers {
            for v in values {
                let _ = request.append_header(name.clone(), v.as_str());
            }
        }
        let mut session = HttpSession::new(stream);
        session.write_request_header(Box::new(request)).await.map_err(|_| Outcome::TcpFailure)?;
        session.read_response().await.map_err(|_| Outcome::TcpFailure)?;
        let status = session.resp_header().map(|r| r.status.as_u16()).ok_or(Outcome::TcpFailure)?;
        Ok(Outcome::Status(status))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(outcome)) | Ok(Err(outcome)) => outcome,
        Err(_) => Outcome::Timeout,
    }
}
