//! Host patterns of routes (`example.com`, `*.example.com`, `example.*`, each with an optional port)
//! and the host of a request.

/// How a route host names the request host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostKind {
    /// `api.example.com`
    Exact(String),
    /// `*.example.com`, stored as the suffix `.example.com`.
    Suffix(String),
    /// `example.*`, stored as the prefix `example.`.
    Prefix(String),
}

/// One entry of a route's `hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPattern {
    /// The name part, lower-cased.
    pub(crate) kind: HostKind,
    /// The port, when the pattern names one; otherwise any port matches.
    pub(crate) port: Option<u16>,
}

impl HostPattern {
    /// Parses a route host; the error says what is wrong and what is allowed.
    pub(crate) fn parse(raw: &str) -> Result<HostPattern, String> {
        let lower = raw.trim().to_ascii_lowercase();
        let (name, port) = split_port(&lower)
            .ok_or_else(|| format!("invalid host {raw:?}: the port must be a number from 1 to 65535"))?;
        if name.is_empty() {
            return Err(format!("invalid host {raw:?}: the name is empty"));
        }
        let stars = name.matches('*').count();
        let kind = match stars {
            0 => HostKind::Exact(name.to_string()),
            1 if name.starts_with("*.") && name.len() > 2 => HostKind::Suffix(name[1..].to_string()),
            1 if name.ends_with(".*") && name.len() > 2 => HostKind::Prefix(name[..name.len() - 1].to_string()),
            _ => {
                return Err(format!(
                    "invalid host {raw:?}: a wildcard must be the whole leftmost or rightmost label \
                     (`*.example.com` or `example.*`), and only one is allowed"
                ));
            }
        };
        let label_part = name.trim_start_matches("*.").trim_end_matches(".*");
        let is_ipv6 = label_part.starts_with('[') && label_part.ends_with(']');
        if !is_ipv6 && !valid_labels(label_part) {
            return Err(format!("invalid host {raw:?}: use letters, digits, '-' and '.' between non-empty labels"));
        }
        Ok(HostPattern { kind, port })
    }

    /// True when this pattern names a specific port.
    pub(crate) fn has_port(&self) -> bool {
        self.port.is_some()
    }

    /// True for a plain (non-wildcard) host.
    pub(crate) fn is_exact(&self) -> bool {
        matches!(self.kind, HostKind::Exact(_))
    }

    /// Specificity for priority: a port beats none, then an exact name beats a wildcard.
    pub(crate) fn rank(&self) -> u8 {
        (u8::from(self.has_port()) << 1) | u8::from(self.is_exact())
    }
}

fn valid_labels(name: &str) -> bool {
    name.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// Splits `name[:port]` (also `[v6]:port`). `None` when a port is present but not valid.
pub(crate) fn split_port(host: &str) -> Option<(&str, Option<u16>)> {
    let colon = if host.starts_with('[') {
        host.find(']').and_then(|i| host[i..].find(':').map(|j| i + j))
    } else {
        host.rfind(':')
    };
    match colon {
        None => Some((host, None)),
        Some(i) => {
            let port: u16 = host[i + 1..].parse().ok().filter(|p| *p != 0)?;
            Some((&host[..i], Some(port)))
        }
    }
}

/// The host of a request, lower-cased, with the port it was addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHost {
    /// Host name without port, lower-cased.
    pub(crate) name: String,
    /// The port from the Host header, or the scheme's default.
    pub(crate) port: u16,
}

impl RequestHost {
    /// Parses a Host header value; a missing or invalid port means `default_port`.
    pub fn parse(raw: &str, default_port: u16) -> RequestHost {
        let lower = raw.trim().to_ascii_lowercase();
        let (name, port) = split_port(&lower).unwrap_or((&lower, None));
        RequestHost { name: name.trim_end_matches('.').to_string(), port: port.unwrap_or(default_port) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_patterns() {
        let p = HostPattern::parse("*.Route.com").unwrap();
        assert_eq!(p.kind, HostKind::Suffix(".route.com".into()));
        let p = HostPattern::parse("route.*:80").unwrap();
        assert_eq!((p.kind, p.port), (HostKind::Prefix("route.".into()), Some(80)));
        let p = HostPattern::parse("domain-1.org:321").unwrap();
        assert_eq!((p.kind, p.port), (HostKind::Exact("domain-1.org".into()), Some(321)));
        assert!(HostPattern::parse("[::1]:8080").is_ok());
    }

    #[test]
    fn rejects_bad_patterns() {
        for bad in ["*.*.com", "a.*.com", "*", "foo:bar", "foo:0", "foo:70000", "a..b", "sp ace.com", ""] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn request_host_default_port() {
        assert_eq!(RequestHost::parse("Domain-1.org:80", 80), RequestHost { name: "domain-1.org".into(), port: 80 });
        assert_eq!(RequestHost::parse("route.org", 80).port, 80);
        assert_eq!(RequestHost::parse("route.org:123", 80).port, 123);
    }
}
