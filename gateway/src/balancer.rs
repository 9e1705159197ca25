//! Upstreams and their targets, balanced by smooth weighted round-robin (nginx's algorithm: weights
//! 100/100/50 give 40/40/20 and interleave as a b a c b rather than in runs).

use parking_lot::Mutex;
use std::net::{IpAddr, SocketAddr};

/// Kong's port for a target written without one.
pub const DEFAULT_TARGET_PORT: u16 = 8000;

/// A `host:port` to connect to; the host may be an IP or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Set when `host` is an IP literal, so no lookup is needed.
    pub ip: Option<IpAddr>,
    /// The `Host` header for this target: `host[:port]`, the port only when it is not 80.
    pub host_header: http::HeaderValue,
}

impl Address {
    /// An address of a host (lower-case name or IP literal) and port.
    pub fn new(host: String, port: u16, ip: Option<IpAddr>) -> Address {
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
    pub fn parse(raw: &str, default_port: u16) -> Result<Address, String> {
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
    pub fn socket_addr(&self) -> Option<SocketAddr> {
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
pub struct Target {
    /// Where to connect.
    pub address: Address,
    /// Share of traffic; 0 never receives any.
    pub weight: u32,
}

/// A named group of targets with its balancing state.
#[derive(Debug)]
pub struct Upstream {
    /// UUID.
    pub id: String,
    /// Name, as used in a service's `host`.
    pub name: String,
    /// Targets in configuration order.
    pub targets: Vec<Target>,
    current: Mutex<Vec<i64>>,
}

impl Upstream {
    /// Builds an upstream; targets listed twice keep the last weight (as re-posting a target does in Kong).
    pub fn new(id: String, name: String, targets: Vec<Target>) -> Upstream {
        let mut merged: Vec<Target> = Vec::with_capacity(targets.len());
        for t in targets {
            match merged.iter_mut().find(|m| m.address == t.address) {
                Some(m) => m.weight = t.weight,
                None => merged.push(t),
            }
        }
        let current = Mutex::new(vec![0; merged.len()]);
        Upstream { id, name, targets: merged, current }
    }

    /// Picks the next target by smooth weighted round-robin among targets with weight > 0 for which
    /// `skip` is false. `None` when no target qualifies.
    pub fn pick(&self, skip: impl Fn(usize) -> bool) -> Option<usize> {
        let mut current = self.current.lock();
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, t) in self.targets.iter().enumerate() {
            if t.weight == 0 || skip(i) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(weights: &[u32]) -> Upstream {
        let targets = weights
            .iter()
            .enumerate()
            .map(|(i, w)| Target { address: Address::parse(&format!("10.0.0.{i}:80"), 80).unwrap(), weight: *w })
            .collect();
        Upstream::new("id".into(), "u".into(), targets)
    }

    #[test]
    fn smooth_weighted_sequence() {
        let u = upstream(&[100, 100, 50]);
        let seq: Vec<usize> = (0..10).map(|_| u.pick(|_| false).unwrap()).collect();
        assert_eq!(seq, vec![0, 1, 2, 0, 1, 0, 1, 2, 0, 1]);
        let mut counts = [0; 3];
        for _ in 0..500 {
            counts[u.pick(|_| false).unwrap()] += 1;
        }
        assert_eq!(counts, [200, 200, 100]);
    }

    #[test]
    fn zero_weight_and_skips() {
        let u = upstream(&[0, 10]);
        assert!((0..5).all(|_| u.pick(|_| false) == Some(1)));
        assert_eq!(u.pick(|i| i == 1), None);
        let u = upstream(&[10, 10]);
        assert!((0..5).all(|_| u.pick(|i| i == 0) == Some(1)));
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
    fn repeated_target_updates_weight() {
        let t = |w| Target { address: Address::parse("10.0.0.1:80", 80).unwrap(), weight: w };
        let u = Upstream::new("id".into(), "u".into(), vec![t(900), t(100)]);
        assert_eq!(u.targets.len(), 1);
        assert_eq!(u.targets[0].weight, 100);
    }
}
