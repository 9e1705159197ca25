//! Upstreams and their targets, and how a target is picked for a try. The targets are
//! `pingora-load-balancing` [`Backend`]s and the algorithms its [`BackendSelection`] ([`select`]):
//! smooth weighted round-robin, consistent hashing on a `pingora-ketama` ring, least-connections
//! and latency. Unhealthy targets are skipped (see [`crate::health`]); a target due for its
//! half-open trial goes first, and a retry goes to a target not tried yet.

mod select;

use crate::config::Healthchecks;
use crate::health::TargetHealth;
use pingora_load_balancing::Backend;
use pingora_load_balancing::selection::{BackendIter, BackendSelection};
use select::{Algorithm, Selector, Slot};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Kong's port for a target written without one.
pub(crate) const DEFAULT_TARGET_PORT: u16 = 8000;

/// A `host:port` to connect to; the host may be an IP or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Address {
    /// Host name or IP (IPv6 without brackets).
    pub(crate) host: String,
    /// TCP port.
    pub(crate) port: u16,
    /// Set when `host` is an IP literal, so no lookup is needed.
    pub(crate) ip: Option<IpAddr>,
    /// The `Host` header for this target: `host[:port]`, the port only when it is not 80.
    pub(crate) host_header: http::HeaderValue,
}

impl Address {
    /// An address of a host (lower-case name or IP literal) and port.
    pub(crate) fn new(host: String, port: u16, ip: Option<IpAddr>) -> Address {
        let header = match (port, ip) {
            (80, Some(IpAddr::V6(_))) => format!("[{host}]"),
            (80, _) => host.clone(),
            (_, Some(IpAddr::V6(_))) => format!("[{host}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        // Names and IP literals are made of characters a header value allows.
        let host_header = http::HeaderValue::try_from(header).unwrap_or_else(|_| http::HeaderValue::from_static(""));
        Address { host, port, ip, host_header }
    }

    /// Parses `host[:port]` or `[v6][:port]`, using `default_port` when no port is given.
    pub(crate) fn parse(raw: &str, default_port: u16) -> Result<Address, String> {
        let raw = raw.trim();
        let bad = |why: &str| format!("invalid address {raw:?}: {why}; write host:port, e.g. 10.0.0.5:8080");
        let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (h, tail) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            match tail.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if tail.is_empty() => (h, None),
                None => return Err(bad("unexpected text after ']'")),
            }
        } else if raw.matches(':').count() > 1 {
            (raw, None) // a bare IPv6 literal
        } else {
            match raw.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (raw, None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("the port must be 1-65535"))?,
            None => default_port,
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_none()
            && !host
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(bad("the host is neither an IP address nor a DNS name"));
        }
        Ok(Address::new(host.to_ascii_lowercase(), port, ip))
    }

    /// The socket address, when the host is an IP literal.
    pub(crate) fn socket_addr(&self) -> Option<SocketAddr> {
        self.ip.map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            Some(IpAddr::V6(_)) => write!(f, "[{}]:{}", self.host, self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// One server of an upstream.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Where to connect.
    pub(crate) address: Address,
    /// Share of traffic; 0 never receives any.
    pub(crate) weight: u32,
    /// Its health and load, shared across configuration versions.
    pub(crate) health: Arc<TargetHealth>,
}

impl Target {
    /// The target as a backend at position `index`: its IP address, or for a DNS name a stable
    /// stand-in address in `100::/64` (the discard prefix), which orders and places it on a ring
    /// by its name. Connections resolve the name at request time and never use the stand-in.
    fn backend(&self, index: usize) -> Backend {
        let addr = self.address.socket_addr().unwrap_or_else(|| {
            let name = self.address.to_string();
            let (high, low) = (crc32fast::hash(name.as_bytes()), crc32fast::hash(format!("#{name}").as_bytes()));
            let ip = Ipv6Addr::from((0x0100_u128 << 112) | (u128::from(high) << 32) | u128::from(low));
            SocketAddr::new(IpAddr::V6(ip), self.address.port)
        });
        let mut ext = http::Extensions::new();
        ext.insert(Slot { index, health: self.health.clone() });
        Backend { addr: pingora_core::protocols::l4::socket::SocketAddr::Inet(addr), weight: self.weight as usize, ext }
    }
}

/// `upstream/host:port`, for logs; formatted only when written.
pub(crate) struct TargetName<'a>(pub(crate) &'a str, pub(crate) &'a Address);

impl std::fmt::Display for TargetName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.0, self.1)
    }
}

/// A named group of targets with its balancing state.
#[derive(Debug)]
pub(crate) struct Upstream {
    /// Name, as used in a service's `host`.
    pub(crate) name: String,
    /// Targets in configuration order.
    pub(crate) targets: Vec<Target>,
    /// The targets as backends, ordered for each request by the upstream's algorithm.
    selector: Arc<Selector>,
    /// Its health-check settings.
    pub(crate) checks: Healthchecks,
    /// What consistent hashing hashes, and what when that is missing.
    pub(crate) hash_on: (HashOn, HashOn),
    /// `Path` of the cookie set for `hash_on = "cookie"`.
    pub(crate) cookie_path: String,
}

/// The request value consistent hashing uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HashOn {
    /// Nothing: round-robin.
    None,
    /// The authenticated consumer's id.
    Consumer,
    /// The client address.
    Ip,
    /// A request header.
    Header(http::HeaderName),
    /// A cookie, set on the response when the request has none.
    Cookie(String),
    /// The normalised path.
    Path,
    /// A query argument.
    QueryArg(String),
    /// A named capture of the route's regex path.
    UriCapture(String),
}

impl HashOn {
    /// Parses `hash_on` / `hash_fallback` with their companion field (header, cookie, ...).
    /// `field` is `hash_on` or `hash_fallback`; the companion fields are named after it.
    pub(crate) fn parse(
        field: &str,
        kind: &str,
        header: &Option<String>,
        cookie: &Option<String>,
        query: &Option<String>,
        capture: &Option<String>,
    ) -> Result<HashOn, String> {
        let need = |v: &Option<String>, suffix: &str| {
            let companion = if suffix == "cookie" { "hash_on_cookie".to_string() } else { format!("{field}_{suffix}") };
            v.clone().filter(|s| !s.is_empty()).ok_or_else(|| format!("{kind:?} needs `{companion}`"))
        };
        Ok(match kind {
            "none" => HashOn::None,
            "consumer" => HashOn::Consumer,
            "ip" => HashOn::Ip,
            "path" => HashOn::Path,
            "header" => HashOn::Header(
                http::HeaderName::from_bytes(need(header, "header")?.as_bytes())
                    .map_err(|_| "the header name is invalid".to_string())?,
            ),
            "cookie" => HashOn::Cookie(need(cookie, "cookie")?),
            "query_arg" => HashOn::QueryArg(need(query, "query_arg")?),
            "uri_capture" => HashOn::UriCapture(need(capture, "uri_capture")?),
            other => {
                return Err(format!(
                    "{other:?} is not one of none, consumer, ip, header, cookie, path, query_arg, uri_capture"
                ));
            }
        })
    }
}

impl Upstream {
    /// Builds an upstream; targets listed twice keep the last weight (as re-posting a target does
    /// in Kong). `slots` sets the hashing ring's density.
    pub(crate) fn new(
        name: String,
        targets: Vec<Target>,
        algorithm: &str,
        slots: u32,
        checks: Healthchecks,
    ) -> Upstream {
        let mut merged: Vec<Target> = Vec::with_capacity(targets.len());
        for t in targets {
            match merged.iter_mut().find(|m| m.address == t.address) {
                Some(m) => m.weight = t.weight,
                None => merged.push(t),
            }
        }
        let backends: BTreeSet<Backend> = merged.iter().enumerate().map(|(index, t)| t.backend(index)).collect();
        let selector = Arc::new(Selector::build_with_config(&backends, &Algorithm::parse(algorithm, slots)));
        Upstream {
            name,
            targets: merged,
            selector,
            checks,
            hash_on: (HashOn::None, HashOn::None),
            cookie_path: "/".into(),
        }
    }

    /// Picks a target for a try: a target due for its half-open trial first; then, by the
    /// algorithm, a healthy one not in `tried`, else any healthy one. `hash` is the request's
    /// key for consistent hashing (`None`: round-robin). `None` when no target is usable.
    pub(crate) fn pick(&self, hash: Option<u32>, tried: &[usize]) -> Option<usize> {
        if let Some(t) = (0..self.targets.len()).find(|&i| {
            self.targets[i].weight > 0 && !tried.contains(&i) && self.targets[i].health.claim_trial(&self.checks)
        }) {
            return Some(t);
        }
        let key = hash.map(u32::to_be_bytes);
        let key: &[u8] = key.as_ref().map_or(&[], |k| k.as_slice());
        let first = |accept: &dyn Fn(usize) -> bool| {
            let mut picks = self.selector.iter(key);
            while let Some(backend) = picks.next() {
                let index = select::slot(backend).index;
                if accept(index) {
                    return Some(index);
                }
            }
            None
        };
        first(&|i| !tried.contains(&i)).or_else(|| first(&|_| true))
    }

    /// Whether enough of the weight is healthy (`healthchecks.threshold`, a percentage).
    pub(crate) fn healthy_enough(&self) -> bool {
        let threshold = self.checks.threshold;
        if threshold <= 0.0 {
            return true;
        }
        let total: u64 = self.targets.iter().map(|t| u64::from(t.weight)).sum();
        let healthy: u64 = self.targets.iter().filter(|t| t.health.is_healthy()).map(|t| u64::from(t.weight)).sum();
        total > 0 && healthy as f64 * 100.0 >= threshold * total as f64
    }

    /// Whether some target could take a request now.
    pub(crate) fn pick_possible(&self) -> bool {
        self.targets.iter().any(|t| t.weight > 0 && t.health.is_healthy())
    }

    /// Whether any health check (active or passive) is configured.
    pub(crate) fn checks_enabled(&self) -> bool {
        let a = &self.checks.active;
        a.healthy.interval > 0.0 || a.unhealthy.interval > 0.0 || self.passive_checks()
    }

    /// Whether proxied traffic can change a target's health (some passive threshold is set).
    pub(crate) fn passive_checks(&self) -> bool {
        let p = &self.checks.passive;
        p.unhealthy.http_failures + p.unhealthy.tcp_failures + p.unhealthy.timeouts + p.healthy.successes > 0
    }
}

/// The hash of a request's key: CRC32 as Kong hashes, then murmur3's finalizer, because CRC32 is
/// linear and similar keys (`user-1`, `user-2`, ...) would otherwise land in clusters on the ring.
pub(crate) fn hash_key(key: &str) -> u32 {
    let mut h = crc32fast::hash(key.as_bytes());
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(weights: &[u32]) -> Upstream {
        let targets = weights.iter().enumerate().map(|(i, w)| target(&format!("10.0.0.{i}:80"), *w)).collect();
        Upstream::new("u".into(), targets, "round-robin", 10_000, Healthchecks::default())
    }

    fn target(addr: &str, weight: u32) -> Target {
        Target { address: Address::parse(addr, 80).unwrap(), weight, health: Arc::default() }
    }

    #[test]
    fn smooth_weighted_sequence() {
        let u = upstream(&[100, 100, 50]);
        let seq: Vec<usize> = (0..10).map(|_| u.pick(None, &[]).unwrap()).collect();
        assert_eq!(seq, vec![0, 1, 2, 0, 1, 0, 1, 2, 0, 1]);
        let mut counts = [0; 3];
        for _ in 0..500 {
            counts[u.pick(None, &[]).unwrap()] += 1;
        }
        assert_eq!(counts, [200, 200, 100]);
    }

    #[test]
    fn zero_weight_and_skips() {
        let u = upstream(&[0, 10]);
        assert!((0..5).all(|_| u.pick(None, &[]) == Some(1)));
        assert_eq!(u.pick(None, &[1]), Some(1), "a tried target when nothing else is left");
        let u = upstream(&[10, 10]);
        assert!((0..5).all(|_| u.pick(None, &[0]) == Some(1)));
    }

    #[test]
    fn addresses() {
        assert_eq!(Address::parse("localhost", 8000).unwrap().to_string(), "localhost:8000");
        assert_eq!(Address::parse("[::1]:81", 80).unwrap().to_string(), "[::1]:81");
        assert_eq!(Address::parse("127.0.0.1:9", 80).unwrap().socket_addr(), Some("127.0.0.1:9".parse().unwrap()));
        for bad in ["host:0", "host:x", ":80", "ho st:80", "a..b:1", "[::1"] {
            assert!(Address::parse(bad, 80).is_err(), "{bad}");
        }
    }

    #[test]
    fn latency_prefers_the_faster_target_and_unhealthy_targets_are_skipped() {
        let targets = vec![target("10.0.0.1:80", 100), target("10.0.0.2:80", 100)];
        let u = Upstream::new("u".into(), targets, "latency", 10_000, Healthchecks::default());
        u.targets[0].health.record_latency(5_000);
        u.targets[1].health.record_latency(500);
        assert!((0..10).all(|_| u.pick(None, &[]) == Some(1)));
        u.targets[1].health.set(false, "manual", &"t");
        assert!((0..10).all(|_| u.pick(None, &[]) == Some(0)), "the only healthy one");
        u.targets[0].health.set(false, "manual", &"t");
        assert_eq!(u.pick(None, &[]), None);
    }

    #[test]
    fn the_ring_moves_only_the_new_targets_share() {
        let three: Vec<Target> = (1..=3).map(|i| target(&format!("10.0.0.{i}:80"), 100)).collect();
        let mut four = three.clone();
        four.push(target("10.0.0.4:80", 100));
        let ring = |targets: Vec<Target>| {
            Upstream::new("u".into(), targets, "consistent-hashing", 10_000, Healthchecks::default())
        };
        let (a, b) = (ring(three), ring(four));
        let keys: Vec<u32> = (0..10_000).map(|k| hash_key(&format!("key-{k}"))).collect();
        let (before, after): (Vec<_>, Vec<_>) =
            keys.iter().map(|k| (a.pick(Some(*k), &[]), b.pick(Some(*k), &[]))).unzip();
        assert!(before.iter().zip(&after).all(|(x, y)| x == y || *y == Some(3)), "keys move only to the new target");
        let moved = before.iter().zip(&after).filter(|(x, y)| x != y).count();
        assert!((1_800..=3_200).contains(&moved), "about a quarter moved: {moved}");
        let stays = keys.iter().all(|k| a.pick(Some(*k), &[]) == a.pick(Some(*k), &[]));
        assert!(stays, "a key sticks to its target");
    }

    #[test]
    fn a_hashed_retry_goes_to_the_next_target_on_the_ring_and_dns_names_get_a_place() {
        let targets =
            vec![target("10.0.0.1:80", 100), target("backend.internal:8080", 100), target("10.0.0.3:80", 100)];
        let u = Upstream::new("u".into(), targets, "consistent-hashing", 10_000, Healthchecks::default());
        let keys: Vec<u32> = (0..300).map(|k| hash_key(&format!("user-{k}"))).collect();
        let mut seen = [0; 3];
        for k in &keys {
            let first = u.pick(Some(*k), &[]).unwrap();
            seen[first] += 1;
            let second = u.pick(Some(*k), &[first]).unwrap();
            assert_ne!(first, second, "a retry goes to another target");
        }
        assert!(seen.iter().all(|n| *n > 50), "every target, the named one too, takes keys: {seen:?}");
    }

    #[test]
    fn repeated_target_updates_weight() {
        let t = |w| target("10.0.0.1:80", w);
        let u = Upstream::new("u".into(), vec![t(900), t(100)], "round-robin", 10_000, Healthchecks::default());
        assert_eq!(u.targets.len(), 1);
        assert_eq!(u.targets[0].weight, 100);
    }
}
