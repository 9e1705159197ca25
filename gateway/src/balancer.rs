//! Upstreams and their targets, and how a target is picked: smooth weighted round-robin (nginx's
//! algorithm: weights 100/100/50 give 40/40/20 and interleave as a b a c b rather than in runs),
//! consistent hashing on a ketama ring, least-connections and latency. Unhealthy targets are
//! skipped (see [`crate::health`]).

use crate::config::Healthchecks;
use crate::health::TargetHealth;
use parking_lot::Mutex;
use std::net::{IpAddr, SocketAddr};
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

/// `upstream/host:port`, for logs; formatted only when written.
pub(crate) struct TargetName<'a>(pub(crate) &'a str, pub(crate) &'a Address);

impl std::fmt::Display for TargetName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.0, self.1)
    }
}

/// How an upstream picks a target.
#[derive(Debug)]
pub(crate) enum Algorithm {
    /// Smooth weighted round-robin.
    RoundRobin,
    /// A ketama ring over the targets, walked from the request's hash.
    ConsistentHashing(Ring),
    /// The fewest requests in flight, relative to weight.
    LeastConnections,
    /// The lowest moving-average response time times requests in flight, relative to weight.
    Latency,
}

/// A named group of targets with its balancing state.
#[derive(Debug)]
pub(crate) struct Upstream {
    /// Name, as used in a service's `host`.
    pub(crate) name: String,
    /// Targets in configuration order.
    pub(crate) targets: Vec<Target>,
    /// How targets are picked.
    pub(crate) algorithm: Algorithm,
    /// Its health-check settings.
    pub(crate) checks: Healthchecks,
    /// What consistent hashing hashes, and what when that is missing.
    pub(crate) hash_on: (HashOn, HashOn),
    /// `Path` of the cookie set for `hash_on = "cookie"`.
    pub(crate) cookie_path: String,
    current: Mutex<Vec<i64>>,
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
        let algorithm = match algorithm {
            "consistent-hashing" => Algorithm::ConsistentHashing(Ring::new(&merged, slots)),
            "least-connections" => Algorithm::LeastConnections,
            "latency" => Algorithm::Latency,
            _ => Algorithm::RoundRobin,
        };
        let current = Mutex::new(vec![0; merged.len()]);
        Upstream {
            name,
            targets: merged,
            algorithm,
            checks,
            hash_on: (HashOn::None, HashOn::None),
            cookie_path: "/".into(),
            current,
        }
    }

    /// Picks a target for a try: a target due for its half-open trial first; then, by the
    /// algorithm, a healthy one not in `tried`, else any healthy one. `hash` is the request's
    /// key for consistent hashing (`None`: round-robin). `None` when no target is usable.
    pub(crate) fn pick(&self, hash: Option<u32>, tried: &[usize]) -> Option<usize> {
        let live = |i: usize| self.targets[i].weight > 0;
        if let Some(t) = (0..self.targets.len())
            .find(|&i| live(i) && !tried.contains(&i) && self.targets[i].health.claim_trial(&self.checks))
        {
            return Some(t);
        }
        let usable = |i: usize| live(i) && self.targets[i].health.is_healthy();
        let fresh = |i: usize| usable(i) && !tried.contains(&i);
        match (&self.algorithm, hash) {
            (Algorithm::ConsistentHashing(ring), Some(h)) => ring.walk(h, fresh).or_else(|| ring.walk(h, usable)),
            (Algorithm::LeastConnections, _) => self.least(fresh, |_| 1).or_else(|| self.least(usable, |_| 1)),
            (Algorithm::Latency, _) => {
                let latency = |t: &Target| t.health.latency_us() + 1;
                self.least(fresh, latency).or_else(|| self.least(usable, latency))
            }
            _ => self.round_robin(fresh).or_else(|| self.round_robin(usable)),
        }
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

    /// Smooth weighted round-robin among the targets `ok` accepts.
    fn round_robin(&self, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let mut current = self.current.lock();
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, t) in self.targets.iter().enumerate() {
            if !ok(i) {
                continue;
            }
            current[i] += i64::from(t.weight);
            total += i64::from(t.weight);
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        current[b] -= total;
        Some(b)
    }

    /// The target `ok` accepts with the least `cost × (requests in flight + 1) / weight`; ties go
    /// round-robin, so equal targets share the load.
    fn least(&self, ok: impl Fn(usize) -> bool, cost: impl Fn(&Target) -> u64) -> Option<usize> {
        let score = |t: &Target| {
            let load = t.health.connections.load(std::sync::atomic::Ordering::Acquire) as u128 + 1;
            cost(t) as u128 * load * 65_536 / u128::from(t.weight.max(1))
        };
        let best = (0..self.targets.len()).filter(|&i| ok(i)).map(|i| score(&self.targets[i])).min()?;
        self.round_robin(|i| ok(i) && score(&self.targets[i]) == best)
    }
}

/// A consistent-hashing ring (ketama): each target gets `weight × slots / 1000` points (at least
/// one), placed by the [`hash_key`] of its address and the point's number, so adding or removing a target
/// moves only the keys of its own points.
#[derive(Debug)]
pub(crate) struct Ring {
    points: Vec<(u32, usize)>,
}

impl Ring {
    fn new(targets: &[Target], slots: u32) -> Ring {
        let mut points = Vec::new();
        for (i, t) in targets.iter().enumerate().filter(|(_, t)| t.weight > 0) {
            let n = (u64::from(t.weight) * u64::from(slots) / 1_000).max(1);
            for k in 0..n {
                points.push((hash_key(&format!("{}-{k}", t.address)), i));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// The first target `ok` accepts, walking clockwise from `hash`.
    fn walk(&self, hash: u32, ok: impl Fn(usize) -> bool) -> Option<usize> {
        let start = self.points.partition_point(|(h, _)| *h < hash);
        let (after, before) = self.points.split_at(start);
        before.iter().chain(after).map(|(_, i)| *i).find(|i| ok(*i))
    }
}

/// The hash of a key (a request's, or a ring point's): CRC32 as Kong hashes, then murmur3's
/// finalizer, because CRC32 is linear and similar keys (`user-1`, `user-2`, ...) would otherwise
/// land in clusters on the ring.
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
        let (a, b) = (Ring::new(&three, 10_000), Ring::new(&four, 10_000));
        let keys: Vec<u32> = (0..10_000).map(|k| hash_key(&format!("key-{k}"))).collect();
        let moved = keys.iter().filter(|k| a.walk(**k, |_| true) != b.walk(**k, |_| true)).count();
        assert!(keys.iter().all(|k| {
            let (x, y) = (a.walk(*k, |_| true), b.walk(*k, |_| true));
            x == y || y == Some(3)
        }));
        assert!((1_800..=3_200).contains(&moved), "about a quarter moved: {moved}");
    }

    #[test]
    fn repeated_target_updates_weight() {
        let t = |w| target("10.0.0.1:80", w);
        let u = Upstream::new("u".into(), vec![t(900), t(100)], "round-robin", 10_000, Healthchecks::default());
        assert_eq!(u.targets.len(), 1);
        assert_eq!(u.targets[0].weight, 100);
    }
}
