//! The compiled gateway entities of one configuration version: services, routes (with the
//! router), upstreams and consumers, checked across entities and indexed for requests. Built by
//! [`Entities::build`], the one code path of `wasmgate check`, start-up, reloads and Admin API writes.

mod routes;
mod services;
mod upstreams;

use crate::balancer::{Address, Upstream};
use crate::config::{ConfigErrors, GatewayConfig, ProxySettings, RouteConfig};
use crate::consumers::Consumers;
use crate::health::HealthRegistry;
use crate::router::Router;
use crate::tls::Certificates;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use services::split_url;

/// The compiled gateway entities of one configuration version.
pub struct Entities {
    /// Per-request settings from `[server]`.
    pub(crate) settings: ProxySettings,
    /// Services by index.
    pub(crate) services: Vec<Service>,
    /// Routes by index (the router's indexes).
    pub(crate) routes: Vec<Route>,
    /// The compiled router.
    pub(crate) router: Router,
    /// Upstreams by index.
    pub(crate) upstreams: Vec<Upstream>,
    upstream_by_name: HashMap<String, usize>,
    service_by_key: HashMap<String, usize>,
    route_by_key: HashMap<String, usize>,
    /// Consumers and credentials.
    pub(crate) consumers: Consumers,
    /// TLS certificates by server name.
    pub(crate) certificates: Certificates,
}

/// A compiled service.
#[derive(Debug)]
pub(crate) struct Service {
    /// UUID.
    pub(crate) id: String,
    /// Name, if any.
    pub(crate) name: Option<String>,
    /// Where requests go.
    pub(crate) destination: Destination,
    /// Path prefix for upstream requests.
    pub(crate) path: String,
    /// Extra connection attempts.
    pub(crate) retries: u32,
    /// Connect timeout.
    pub(crate) connect_timeout: Duration,
    /// Read timeout.
    pub(crate) read_timeout: Duration,
    /// Write timeout.
    pub(crate) write_timeout: Duration,
    /// TLS to the upstream (`https`, `grpcs`), and how its certificate is verified.
    pub(crate) tls: Option<UpstreamTls>,
    /// The HTTP versions spoken to the upstream.
    pub(crate) http: UpstreamHttp,
}

/// The HTTP versions a service speaks to its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamHttp {
    /// HTTP/1.1 (`http`, `https`).
    H1,
    /// HTTP/2 only: `grpc` and `http` with `http2` (h2c with prior knowledge), `grpcs` (ALPN).
    H2,
    /// HTTP/2 when the upstream offers it through ALPN, else HTTP/1.1 (`https` with `http2`).
    H2OrH1,
}

/// TLS to a service's upstream.
#[derive(Clone)]
pub(crate) struct UpstreamTls {
    /// The server name sent (SNI) and verified: the service's host (the client's with
    /// `preserve_host`).
    pub(crate) sni: String,
    /// Verify the certificate chain and the name (`tls_verify`).
    pub(crate) verify: bool,
    /// Refuses chains longer than `tls_verify_depth` allows.
    pub(crate) depth_check: Option<pingora_core::protocols::tls::HandshakeCompleteHook>,
    /// The CAs trusted instead of the system's (`ca_certificates`).
    pub(crate) ca: Option<Arc<Box<[openssl::x509::X509]>>>,
    /// The certificate presented (`client_certificate`).
    pub(crate) client: Option<Arc<pingora_core::utils::tls::CertKey>>,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("sni", &self.sni)
            .field("verify", &self.verify)
            .field("depth_check", &self.depth_check.is_some())
            .field("ca", &self.ca.as_ref().map(|c| c.len()))
            .field("client", &self.client.is_some())
            .finish()
    }
}

/// Where a service sends its requests.
#[derive(Debug, Clone)]
pub(crate) enum Destination {
    /// Balanced over the targets of the upstream with this index.
    Upstream(usize),
    /// One host (IP or DNS name).
    Direct(Address),
}

/// A compiled route (matching itself lives in the [`Router`]).
#[derive(Debug)]
pub(crate) struct Route {
    /// UUID.
    pub(crate) id: String,
    /// Name, if any.
    pub(crate) name: Option<String>,
    /// Index of its service; `None` answers 503.
    pub(crate) service: Option<usize>,
    /// Remove the matched prefix before proxying.
    pub(crate) strip_path: bool,
    /// Forward the client's Host header.
    pub(crate) preserve_host: bool,
    /// Whether a protocol without TLS (`http`, `grpc`, `ws`) is among the route's protocols (426
    /// otherwise).
    pub(crate) accepts_plain: bool,
    /// Whether its protocols are gRPC's only: other requests get 415.
    pub(crate) grpc_only: bool,
    /// The status a plain-HTTP request gets when it does not: 426, or a redirect to `https://`.
    pub(crate) https_redirect: u16,
}

impl Entities {
    /// Compiles and validates a configuration. Every problem is reported, not just the first.
    /// Target health comes from (and is kept in) `health`.
    pub(crate) fn build(cfg: &GatewayConfig, health: &HealthRegistry) -> Result<Entities, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let settings = crate::config::proxy_settings(&cfg.server, &mut errors);

        let certificates = Certificates::build(&cfg.certificates, &cfg.ca_certificates, &mut errors);
        let (upstreams, upstream_by_name) = upstreams::build_upstreams(cfg, health, &mut errors);
        let mut services = Vec::with_capacity(cfg.services.len());
        let mut service_index: HashMap<String, usize> = HashMap::new();
        for (i, s) in cfg.services.iter().enumerate() {
            let label = services::service_label(s, i);
            if let Some(svc) = services::build_service(s, &label, &upstream_by_name, &certificates, &mut errors) {
                for key in [Some(&svc.id), s.name.as_ref()].into_iter().flatten() {
                    if service_index.insert(key.clone(), services.len()).is_some() {
                        errors
                            .push(format!("{label}: {key:?} is used by another service; names and ids must be unique"));
                    }
                }
                services.push(svc);
            } else {
                services.push(services::placeholder_service());
            }
        }

        let flat = routes::flatten_routes(cfg);
        let mut routes = Vec::with_capacity(flat.len());
        let mut route_by_key: HashMap<String, usize> = HashMap::new();
        for fr in &flat {
            if let Some(r) = routes::build_route(fr, &service_index, &mut errors) {
                if let Some(n) = &r.name
                    && route_by_key.insert(n.clone(), routes.len()).is_some()
                {
                    errors.push(format!("{}: name {n:?} is used by another route; names must be unique", fr.label));
                }
                route_by_key.insert(r.id.clone(), routes.len());
                routes.push(r);
            }
        }
        let route_cfgs: Vec<&RouteConfig> = flat.iter().map(|f| f.cfg).collect();
        let router = match Router::build(&route_cfgs) {
            Ok(r) => Some(r),
            Err(errs) => {
                for (i, msg) in errs {
                    match i {
                        Some(i) => errors.push(format!("{}: {msg}", flat[i].label)),
                        None => errors.push(format!("routes: {msg}")),
                    }
                }
                None
            }
        };

        let consumers = Consumers::build(&cfg.consumers, &mut errors);
        match (errors.is_empty(), router) {
            (true, Some(router)) => Ok(Entities {
                settings,
                services,
                routes,
                router,
                upstreams,
                upstream_by_name,
                service_by_key: service_index,
                route_by_key,
                consumers,
                certificates,
            }),
            _ => Err(errors),
        }
    }

    /// Compiles a configuration with no health history, as `wasmgate check` and the benchmarks do.
    pub fn compile(cfg: &GatewayConfig) -> Result<Entities, ConfigErrors> {
        Entities::build(cfg, &HealthRegistry::default())
    }

    /// An upstream by name.
    pub(crate) fn upstream(&self, name: &str) -> Option<usize> {
        self.upstream_by_name.get(name).copied()
    }

    /// A service by name or id.
    pub(crate) fn service_index(&self, name_or_id: &str) -> Option<usize> {
        self.service_by_key.get(name_or_id).copied()
    }

    /// A route by name or id.
    pub(crate) fn route_index(&self, name_or_id: &str) -> Option<usize> {
        self.route_by_key.get(name_or_id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::Entities;
    use crate::config::{GatewayConfig, parse_toml};

    /// Lines, valid and not, that random configurations are made of.
    const LINES: &[&str] = &[
        "[[services]]",
        "name = \"s\"",
        "url = \"http://127.0.0.1:9\"",
        "host = \"a\"",
        "port = 70000",
        "[[services.routes]]",
        "[[routes]]",
        "paths = [\"/a\", \"~/(x\"]",
        "hosts = [\"*.a.*\"]",
        "methods = [\"GET\"]",
        "service = \"s\"",
        "[[upstreams]]",
        "name = \"u u\"",
        "[[upstreams.targets]]",
        "target = \"[::1\"",
        "weight = -1",
        "[[consumers]]",
        "username = \"c\"",
        "[server]",
        "proxy_listen = \"x\"",
        "trusted_ips = [\"1.2.3.4/99\"]",
        "[[plugins]]",
        "config = { a = 1 }",
        "strip_path = \"yes\"",
        "= broken",
        "[upstreams.healthchecks]",
        "threshold = 1e9",
        "algorithm = \"latency\"",
    ];

    proptest::proptest! {
        /// The loader and the compiled entities never panic: any text is a configuration or errors.
        #[test]
        fn loading_never_panics(picks in proptest::collection::vec(0..LINES.len(), 0..24)) {
            let text: String = picks.iter().map(|i| format!("{}\n", LINES[*i])).collect();
            if let Ok(cfg) = parse_toml::<GatewayConfig>(&text) {
                let built = Entities::build(&cfg, &Default::default());
                if let Err(errors) = built {
                    proptest::prop_assert!(!errors.is_empty());
                }
            }
        }

        /// Arbitrary text as well.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            let _ = parse_toml::<GatewayConfig>(&text);
        }
    }
}
