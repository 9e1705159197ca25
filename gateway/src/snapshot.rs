//! The immutable, compiled state that requests run on. A [`Snapshot`] is built from configuration
//! (which validates it completely), then swapped in whole; a request keeps the snapshot it started
//! with until it ends. It holds the compiled [`Entities`] and the [`PluginSet`] resolved for them.

use crate::balancer::{Address, HashOn, Target, Upstream};
use crate::config::{ConfigErrors, GatewayConfig, RouteConfig, ServerConfig, ServiceConfig};
use crate::consumers::Consumers;
use crate::health::HealthRegistry;
use crate::plugins::PluginSet;
use crate::router::Router;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Everything a request needs, for one configuration version.
pub struct Snapshot {
    /// Increases with every successful load.
    pub version: u64,
    /// Routes, services, upstreams, consumers.
    pub entities: Arc<Entities>,
    /// Plugin instances and chains.
    pub plugins: PluginSet,
}

/// The compiled gateway entities of one configuration version.
pub struct Entities {
    /// Per-request settings from `[server]`.
    pub settings: ProxySettings,
    /// Services by index.
    pub services: Vec<Service>,
    /// Routes by index (the router's indexes).
    pub routes: Vec<Route>,
    /// The compiled router.
    pub router: Router,
    /// Upstreams by index.
    pub upstreams: Vec<Upstream>,
    upstream_by_name: HashMap<String, usize>,
    service_by_key: HashMap<String, usize>,
    route_by_key: HashMap<String, usize>,
    /// Consumers and credentials.
    pub consumers: Consumers,
}

/// A compiled service.
#[derive(Debug)]
pub struct Service {
    /// UUID.
    pub id: String,
    /// Name, if any.
    pub name: Option<String>,
    /// Where requests go.
    pub destination: Destination,
    /// Path prefix for upstream requests.
    pub path: String,
    /// Extra connection attempts.
    pub retries: u32,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read timeout.
    pub read_timeout: Duration,
    /// Write timeout.
    pub write_timeout: Duration,
}

/// Where a service sends its requests.
#[derive(Debug, Clone)]
pub enum Destination {
    /// Balanced over the targets of the upstream with this index.
    Upstream(usize),
    /// One host (IP or DNS name).
    Direct(Address),
}

/// A compiled route (matching itself lives in the [`Router`]).
#[derive(Debug)]
pub struct Route {
    /// UUID.
    pub id: String,
    /// Name, if any.
    pub name: Option<String>,
    /// Index of its service; `None` answers 503.
    pub service: Option<usize>,
    /// Remove the matched prefix before proxying.
    pub strip_path: bool,
    /// Forward the client's Host header.
    pub preserve_host: bool,
    /// Whether plain HTTP is among the route's protocols (426 otherwise).
    pub accepts_http: bool,
}

/// The `[server]` settings used on every request; they take effect on reload.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Peers whose forwarding headers are believed.
    pub trusted_ips: Vec<IpNet>,
    /// Header carrying the client address from a trusted peer.
    pub real_ip_header: http::HeaderName,
    /// Walk the header from the right past trusted addresses.
    pub real_ip_recursive: bool,
    /// Add `Via` (and `Server` on the gateway's own answers).
    pub server_tokens: bool,
    /// Add the latency headers.
    pub latency_tokens: bool,
    /// Count per-request metrics.
    pub metrics: bool,
    /// Longest time to read a whole request header.
    pub client_header_timeout: Duration,
    /// Longest wait between two reads of a request body.
    pub client_body_timeout: Duration,
    /// Keep-alive idle timeout, seconds (0: none).
    pub keepalive_timeout: u64,
}

impl ProxySettings {
    /// True when `ip` is one of the trusted proxies.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_ips.iter().any(|n| n.contains(&ip))
    }
}

impl Entities {
    /// Compiles and validates a configuration. Every problem is reported, not just the first.
    /// Target health comes from (and is kept in) `health`.
    pub fn build(cfg: &GatewayConfig, health: &HealthRegistry) -> Result<Entities, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let settings = proxy_settings(&cfg.server, &mut errors);

        let (upstreams, upstream_by_name) = build_upstreams(cfg, health, &mut errors);
        let mut services = Vec::with_capacity(cfg.services.len());
        let mut service_index: HashMap<String, usize> = HashMap::new();
        for (i, s) in cfg.services.iter().enumerate() {
            let label = service_label(s, i);
            if let Some(svc) = build_service(s, &label, &upstream_by_name, &mut errors) {
                for key in [Some(&svc.id), s.name.as_ref()].into_iter().flatten() {
                    if service_index.insert(key.clone(), services.len()).is_some() {
                        errors
                            .push(format!("{label}: {key:?} is used by another service; names and ids must be unique"));
                    }
                }
                services.push(svc);
            } else {
                services.push(placeholder_service());
            }
        }

        let flat = flatten_routes(cfg);
        let mut routes = Vec::with_capacity(flat.len());
        let mut route_by_key: HashMap<String, usize> = HashMap::new();
        for fr in &flat {
            if let Some(r) = build_route(fr, &service_index, &mut errors) {
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
            }),
            _ => Err(errors),
        }
    }

    /// An upstream by name.
    pub fn upstream(&self, name: &str) -> Option<usize> {
        self.upstream_by_name.get(name).copied()
    }

    /// A service by name or id.
    pub fn service_index(&self, name_or_id: &str) -> Option<usize> {
        self.service_by_key.get(name_or_id).copied()
    }

    /// A route by name or id.
    pub fn route_index(&self, name_or_id: &str) -> Option<usize> {
        self.route_by_key.get(name_or_id).copied()
    }
}

fn placeholder_service() -> Service {
    Service {
        id: String::new(),
        name: None,
        destination: Destination::Direct(Address::new(String::new(), 0, None)),
        path: "/".into(),
        retries: 0,
        connect_timeout: Duration::ZERO,
        read_timeout: Duration::ZERO,
        write_timeout: Duration::ZERO,
    }
}

/// Checks `[server]` and extracts what requests use of it.
fn proxy_settings(s: &ServerConfig, errors: &mut ConfigErrors) -> ProxySettings {
    if s.proxy_listen.is_empty() {
        errors.push("server: proxy_listen: give at least one address, e.g. \"0.0.0.0:8000\"");
    }
    for (i, l) in s.proxy_listen.iter().enumerate() {
        if l.parse::<std::net::SocketAddr>().is_err() {
            errors.push(format!("server: proxy_listen[{i}]: {l:?} is not an ip:port address, e.g. \"0.0.0.0:8000\""));
        }
    }
    check_admin_listen(s, errors);
    if s.status_listen != "off" && s.status_listen.parse::<std::net::SocketAddr>().is_err() {
        errors.push(format!(
            "server: status_listen: {:?} is not an ip:port address, e.g. \"127.0.0.1:8100\", or \"off\"",
            s.status_listen
        ));
    }
    if !matches!(s.access_log.as_str(), "text" | "json" | "off") {
        errors.push(format!("server: access_log: {:?} is not one of text, json, off", s.access_log));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&s.log_level) {
        errors.push(format!(
            "server: log_level: {:?} is not a log filter ({e}); use e.g. \"info\" or \"wasmgate=debug,info\"",
            s.log_level
        ));
    }
    let mut trusted_ips = Vec::new();
    for (i, ip) in s.trusted_ips.iter().enumerate() {
        match parse_net(ip) {
            Some(net) => trusted_ips.push(net),
            None => {
                errors.push(format!("server: trusted_ips[{i}]: {ip:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)"))
            }
        }
    }
    let real_ip_header = http::HeaderName::from_bytes(s.real_ip_header.as_bytes()).unwrap_or_else(|_| {
        errors.push(format!("server: real_ip_header: {:?} is not a valid header name", s.real_ip_header));
        http::HeaderName::from_static("x-forwarded-for")
    });
    let mut settings = ProxySettings {
        trusted_ips,
        real_ip_header,
        real_ip_recursive: s.real_ip_recursive,
        server_tokens: false,
        latency_tokens: false,
        metrics: s.metrics,
        client_header_timeout: Duration::from_secs(s.client_header_timeout),
        client_body_timeout: Duration::from_secs(s.client_body_timeout),
        keepalive_timeout: s.keepalive_timeout,
    };
    for (field, value) in
        [("client_header_timeout", s.client_header_timeout), ("client_body_timeout", s.client_body_timeout)]
    {
        if value == 0 || value > 86_400 {
            errors.push(format!("server: {field}: {value} is out of range; use 1 to 86400 (seconds)"));
        }
    }
    for (i, token) in s.headers.iter().enumerate() {
        match token.as_str() {
            "server_tokens" => settings.server_tokens = true,
            "latency_tokens" => settings.latency_tokens = true,
            "off" => {}
            other => errors.push(format!(
                "server: headers[{i}]: unknown token {other:?}; use server_tokens, latency_tokens or off"
            )),
        }
    }
    settings
}

/// `admin_listen` must be an address or `off`; off loopback it needs a token (or an explicit opt-out).
fn check_admin_listen(s: &ServerConfig, errors: &mut ConfigErrors) {
    if s.admin_listen == "off" {
        return;
    }
    let Ok(addr) = s.admin_listen.parse::<std::net::SocketAddr>() else {
        errors.push(format!(
            "server: admin_listen: {:?} is not an ip:port address, e.g. \"127.0.0.1:8001\", or \"off\"",
            s.admin_listen
        ));
        return;
    };
    if s.admin_token.as_deref().is_some_and(str::is_empty) {
        errors.push("server: admin_token: must not be empty; remove it or set a long random string");
    }
    if !addr.ip().is_loopback() && s.admin_token.is_none() && !s.admin_allow_open_bind {
        errors.push(format!(
            "server: admin_listen: {addr} is reachable from other hosts, so the Admin API needs `admin_token` \
             (clients send `Authorization: Bearer TOKEN`); bind 127.0.0.1, or set `admin_allow_open_bind = true` \
             if a firewall guards it"
        ));
    }
}

/// Parses an IP or CIDR.
pub fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

fn service_label(s: &ServiceConfig, i: usize) -> String {
    match &s.name {
        Some(n) => format!("service {n:?}"),
        None => format!("services[{i}]"),
    }
}

fn build_upstreams(
    cfg: &GatewayConfig,
    health: &HealthRegistry,
    errors: &mut ConfigErrors,
) -> (Vec<Upstream>, HashMap<String, usize>) {
    let mut list = Vec::new();
    let mut by_name = HashMap::new();
    for u in &cfg.upstreams {
        let label = format!("upstream {:?}", u.name);
        if Address::parse(&u.name, 80).is_err() || u.name.contains(':') {
            errors.push(format!(
                "{label}: name: must be a host name (letters, digits, '-', '.'), as services use it as their host"
            ));
        }
        if !matches!(u.algorithm.as_str(), "round-robin" | "consistent-hashing" | "least-connections" | "latency") {
            errors.push(format!(
                "{label}: algorithm: {:?} is not one of round-robin, consistent-hashing, least-connections, latency",
                u.algorithm
            ));
        }
        if !(10..=65_536).contains(&u.slots) {
            errors.push(format!("{label}: slots: {} is out of range 10-65536", u.slots));
        }
        check_healthchecks(&u.healthchecks, &label, errors);
        let id = crate::ids::upstream_id(u).unwrap_or_else(|e| {
            errors.push(format!("{label}: id: {e}"));
            String::new()
        });
        let mut targets = Vec::new();
        for (t, target) in u.targets.iter().enumerate() {
            if target.weight > 65535 {
                errors.push(format!("{label}: targets[{t}].weight: {} is out of range 0-65535", target.weight));
            }
            match Address::parse(&target.target, crate::balancer::DEFAULT_TARGET_PORT) {
                Ok(address) => {
                    let health = health.target(&u.name, &address.to_string());
                    targets.push(Target { address, weight: target.weight, health });
                }
                Err(e) => errors.push(format!("{label}: targets[{t}].target: {e}")),
            }
        }
        if by_name.insert(u.name.clone(), list.len()).is_some() {
            errors.push(format!("{label}: name is used by another upstream; names must be unique"));
        }
        let mut upstream = Upstream::new(id, u.name.clone(), targets, &u.algorithm, u.slots, u.healthchecks.clone());
        let mut hash = |field: &str, kind: &str, header, query, capture| {
            HashOn::parse(field, kind, header, &u.hash_on_cookie, query, capture).unwrap_or_else(|e| {
                errors.push(format!("{label}: {field}: {e}"));
                HashOn::None
            })
        };
        let on = hash("hash_on", &u.hash_on, &u.hash_on_header, &u.hash_on_query_arg, &u.hash_on_uri_capture);
        let fallback = hash(
            "hash_fallback",
            &u.hash_fallback,
            &u.hash_fallback_header,
            &u.hash_fallback_query_arg,
            &u.hash_fallback_uri_capture,
        );
        if matches!(fallback, HashOn::Cookie(_)) || (matches!(on, HashOn::Cookie(_)) && fallback != HashOn::None) {
            errors.push(format!(
                "{label}: hash_fallback: a cookie always gives a value (one is set when absent), so it is neither a fallback nor has one; use \"none\""
            ));
        }
        upstream.hash_on = (on, fallback);
        upstream.cookie_path = u.hash_on_cookie_path.clone();
        list.push(upstream);
    }
    (list, by_name)
}

/// Checks `healthchecks` ranges and names.
fn check_healthchecks(h: &crate::config::Healthchecks, label: &str, errors: &mut ConfigErrors) {
    for (field, kind) in [("active.type", &h.active.kind), ("passive.type", &h.passive.kind)] {
        if !matches!(kind.as_str(), "http" | "https" | "tcp") {
            errors.push(format!("{label}: healthchecks.{field}: {kind:?} is not one of http, https, tcp"));
        }
    }
    let numbers = [
        ("active.timeout", h.active.timeout, 0.001),
        ("active.healthy.interval", h.active.healthy.interval, 0.0),
        ("active.unhealthy.interval", h.active.unhealthy.interval, 0.0),
        ("passive.half_open_after", h.passive.half_open_after, 0.0),
    ];
    for (field, value, min) in numbers {
        if !(value >= min && value <= 86_400.0) {
            errors.push(format!("{label}: healthchecks.{field}: {value} is out of range {min}-86400 (seconds)"));
        }
    }
    if !(0.0..=100.0).contains(&h.threshold) {
        errors.push(format!("{label}: healthchecks.threshold: {} is out of range 0-100 (a percentage)", h.threshold));
    }
    if h.active.concurrency == 0 {
        errors.push(format!("{label}: healthchecks.active.concurrency: must be at least 1"));
    }
    if !h.active.http_path.starts_with('/') {
        errors.push(format!("{label}: healthchecks.active.http_path: {:?} must start with '/'", h.active.http_path));
    }
    let statuses = [
        ("active.healthy.http_statuses", &h.active.healthy.http_statuses),
        ("active.unhealthy.http_statuses", &h.active.unhealthy.http_statuses),
        ("passive.healthy.http_statuses", &h.passive.healthy.http_statuses),
        ("passive.unhealthy.http_statuses", &h.passive.unhealthy.http_statuses),
    ];
    for (field, list) in statuses {
        if let Some(bad) = list.iter().find(|s| !(100..=999).contains(*s)) {
            errors.push(format!("{label}: healthchecks.{field}: {bad} is not an HTTP status (100-999)"));
        }
    }
}

fn build_service(
    s: &ServiceConfig,
    label: &str,
    upstreams: &HashMap<String, usize>,
    errors: &mut ConfigErrors,
) -> Option<Service> {
    let before = errors.0.len();
    let (mut protocol, mut host, mut port, mut path) = (s.protocol.clone(), s.host.clone(), s.port, s.path.clone());
    if let Some(url) = &s.url {
        if s.protocol.is_some() || s.host.is_some() || s.port.is_some() || s.path.is_some() {
            errors.push(format!("{label}: url: give either `url` or protocol/host/port/path, not both"));
        }
        match split_url(url) {
            Ok((p, h, po, pa)) => (protocol, host, port, path) = (Some(p), Some(h), po, pa),
            Err(e) => errors.push(format!("{label}: url: {e}")),
        }
    }
    let protocol = protocol.unwrap_or_else(|| "http".into());
    if protocol != "http" {
        errors.push(format!(
            "{label}: protocol: {protocol:?} is not supported by this build; use \"http\" (TLS to upstreams is planned)"
        ));
    }
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        errors.push(format!("{label}: host: required (or give `url`, e.g. url = \"http://10.0.0.5:8080\")"));
        return None;
    };
    let port = port.unwrap_or(80);
    let path = path.unwrap_or_else(|| "/".into());
    if !path.starts_with('/') {
        errors.push(format!("{label}: path: {path:?} must start with '/'"));
    }
    let destination = match upstreams.get(&host) {
        Some(u) => Destination::Upstream(*u),
        None => match Address::parse(&format!("{host}:{port}"), port) {
            Ok(a) => Destination::Direct(a),
            Err(e) => {
                errors.push(format!("{label}: host: {e}"));
                return None;
            }
        },
    };
    let id = crate::ids::service_id(s, &host).unwrap_or_else(|e| {
        errors.push(format!("{label}: id: {e}"));
        String::new()
    });
    for (field, ms) in
        [("connect_timeout", s.connect_timeout), ("read_timeout", s.read_timeout), ("write_timeout", s.write_timeout)]
    {
        if ms == 0 {
            errors.push(format!("{label}: {field}: must be at least 1 (milliseconds)"));
        }
    }
    if errors.0.len() > before {
        return None;
    }
    Some(Service {
        id,
        name: s.name.clone(),
        destination,
        path,
        retries: s.retries,
        connect_timeout: Duration::from_millis(s.connect_timeout),
        read_timeout: Duration::from_millis(s.read_timeout),
        write_timeout: Duration::from_millis(s.write_timeout),
    })
}

/// Splits `http://host[:port][/path]`.
pub(crate) fn split_url(url: &str) -> Result<(String, String, Option<u16>, Option<String>), String> {
    let (scheme, rest) =
        url.split_once("://").ok_or_else(|| format!("{url:?} is not a URL like http://host:port/path"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(rest[i..].to_string())),
        None => (rest, None),
    };
    let default_port = if scheme == "https" { 443 } else { 80 };
    let addr = Address::parse(authority, default_port).map_err(|e| format!("in {url:?}: {e}"))?;
    let explicit_port = authority.rsplit_once(':').filter(|(_, p)| p.parse::<u16>().is_ok()).map(|_| addr.port);
    Ok((scheme.to_ascii_lowercase(), addr.host, explicit_port, path))
}

/// A route with where it came from in the file.
struct FlatRoute<'a> {
    cfg: &'a RouteConfig,
    label: String,
    /// Index of the service it is nested under, if any.
    parent: Option<usize>,
    position: usize,
}

/// Routes in creation order: those nested under services (in service order), then `[[routes]]`.
fn flatten_routes(cfg: &GatewayConfig) -> Vec<FlatRoute<'_>> {
    let mut out = Vec::new();
    for (si, s) in cfg.services.iter().enumerate() {
        for (ri, r) in s.routes.iter().enumerate() {
            let label = match &r.name {
                Some(n) => format!("route {n:?}"),
                None => format!("services[{si}].routes[{ri}]"),
            };
            out.push(FlatRoute { cfg: r, label, parent: Some(si), position: out.len() });
        }
    }
    for (ri, r) in cfg.routes.iter().enumerate() {
        let label = match &r.name {
            Some(n) => format!("route {n:?}"),
            None => format!("routes[{ri}]"),
        };
        out.push(FlatRoute { cfg: r, label, parent: None, position: out.len() });
    }
    out
}

fn build_route(fr: &FlatRoute<'_>, services: &HashMap<String, usize>, errors: &mut ConfigErrors) -> Option<Route> {
    let r = fr.cfg;
    let label = &fr.label;
    let named = match &r.service {
        None => None,
        Some(name) => match services.get(name.as_str()) {
            Some(i) => Some(*i),
            None => {
                errors.push(format!(
                    "{label}: service: no service is named {name:?}; define it under [[services]] or fix the name"
                ));
                return None;
            }
        },
    };
    let service = match (fr.parent, named) {
        (Some(parent), Some(other)) if parent != other => {
            errors.push(format!("{label}: service: names a different service than the one it is nested under"));
            return None;
        }
        (parent, named) => parent.or(named),
    };
    let mut accepts_http = false;
    for (i, p) in r.protocols.iter().enumerate() {
        match p.as_str() {
            "http" => accepts_http = true,
            "https" => {}
            other => errors.push(format!("{label}: protocols[{i}]: {other:?} is not one of http, https")),
        }
    }
    let id = crate::ids::route_id(r, fr.position).unwrap_or_else(|e| {
        errors.push(format!("{label}: id: {e}"));
        String::new()
    });
    Some(Route {
        id,
        name: r.name.clone(),
        service,
        strip_path: r.strip_path,
        preserve_host: r.preserve_host,
        accepts_http,
    })
}
