//! Which origins a configuration allows, worked out once when it is configured.

use regex::Regex;

/// An origin reduced to what is compared: `scheme://host[:port]` without a default port, and
/// the host alone.
pub struct Origin {
    pub domain: String,
    pub host: String,
}

impl Origin {
    /// Normalises an origin as Kong does; a value without `scheme://` stays as it is.
    pub fn parse(origin: &str) -> Origin {
        let Some((scheme, rest)) = origin.split_once("://") else {
            return Origin { domain: origin.into(), host: origin.into() };
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, Some(p)),
            _ => (authority, None),
        };
        let port = port.filter(|p| !matches!((scheme, *p), ("http", "80") | ("https", "443")));
        let domain = match port {
            Some(p) => format!("{scheme}://{host}:{p}"),
            None => format!("{scheme}://{host}"),
        };
        Origin { domain, host: host.into() }
    }
}

/// One entry of `origins`.
pub enum Entry {
    /// A plain origin, compared normalised.
    Exact(String),
    /// A pattern, anchored at both ends; matched against the host alone when it has no `:`.
    Pattern { regex: Regex, by_host: bool },
}

/// The `origins` setting, compiled.
pub enum Allowed {
    /// No origins, or `*` among them: `Access-Control-Allow-Origin: *`.
    All,
    /// One plain origin: always sent as it is written.
    One(String),
    /// Origins to find the request's among.
    Some(Vec<Entry>),
}

/// Whether an entry is a plain origin (Kong's test: only these characters).
fn is_plain(entry: &str) -> bool {
    !entry.is_empty() && entry.bytes().all(|b| b.is_ascii_alphanumeric() || b".:/-".contains(&b))
}

impl Allowed {
    /// Compiles `origins`; an error names the entry that is neither `*` nor a valid regex.
    pub fn new(origins: &[String]) -> Result<Allowed, String> {
        if origins.is_empty() || origins.iter().any(|o| o == "*") {
            return Ok(Allowed::All);
        }
        if let [one] = origins
            && is_plain(one)
        {
            return Ok(Allowed::One(one.clone()));
        }
        let entries = origins.iter().enumerate().map(|(i, o)| {
            if is_plain(o) {
                return Ok(Entry::Exact(Origin::parse(o).domain));
            }
            let body = o.strip_prefix('^').unwrap_or(o);
            let body = body.strip_suffix('$').unwrap_or(body);
            let regex = Regex::new(&format!("^(?:{body})$"))
                .map_err(|e| format!("config.origins[{i}]: '{o}' is not a valid regex ({e})"))?;
            Ok(Entry::Pattern { regex, by_host: !o.contains(':') })
        });
        entries.collect::<Result<_, String>>().map(Allowed::Some)
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin` (none: not allowed).
    pub fn allow(&self, origin: Option<&str>) -> Option<String> {
        match self {
            Allowed::All => Some("*".into()),
            Allowed::One(o) => Some(o.clone()),
            Allowed::Some(entries) => {
                let o = Origin::parse(origin.filter(|o| !o.is_empty())?);
                let found = entries.iter().any(|e| match e {
                    Entry::Exact(domain) => *domain == o.domain,
                    Entry::Pattern { regex, by_host } => regex.is_match(if *by_host { &o.host } else { &o.domain }),
                });
                found.then_some(o.domain)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(origins: &[&str]) -> Allowed {
        Allowed::new(&origins.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn like_kong() {
        assert_eq!(allowed(&[]).allow(None).as_deref(), Some("*"));
        assert_eq!(allowed(&["http://a.com", "*"]).allow(Some("http://x")).as_deref(), Some("*"));
        assert_eq!(allowed(&["http://a.com"]).allow(Some("http://b.com")).as_deref(), Some("http://a.com"));
        let some = allowed(&["http://a.com", r"(.*)\.example\.org", "https://api.b.com:8443"]);
        assert_eq!(some.allow(Some("http://a.com:80")).as_deref(), Some("http://a.com"));
        assert_eq!(some.allow(Some("https://x.example.org")).as_deref(), Some("https://x.example.org"));
        assert_eq!(some.allow(Some("https://x.example.org.evil.com")), None, "anchored at the end");
        assert_eq!(some.allow(Some("https://api.b.com:8443")).as_deref(), Some("https://api.b.com:8443"));
        assert_eq!(some.allow(Some("https://api.b.com")), None);
        assert_eq!(some.allow(None), None);
        assert!(Allowed::new(&["(".to_string(), "a".to_string()]).is_err());
    }
}
