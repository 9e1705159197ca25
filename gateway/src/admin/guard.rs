//! Who may drive the Admin API besides its operator's own clients: nobody by default. A browser
//! page on another site can send a `POST` without a preflight (`text/plain`, form bodies), and DNS
//! rebinding can make a page's own host name point at 127.0.0.1. So a request is refused (403)
//! when it carries an `Origin` that `admin_allowed_origins` does not list, when the browser says
//! it is cross-site (`Sec-Fetch-Site`), or when its `Host` is a name other than `localhost` or one
//! in `admin_server_names` (an IP address is always fine: rebinding needs a name). curl, Kong's
//! clients and scripts send none of these headers and are not affected.

use super::error::ApiError;
use crate::config::ServerConfig;
use pingora_http::RequestHeader;

/// The origins and host names the Admin API accepts.
pub(crate) struct Guard {
    origins: Vec<String>,
    names: Vec<String>,
}

impl Guard {
    /// The guard for `server`'s settings.
    pub(crate) fn new(server: &ServerConfig) -> Guard {
        let lower = |v: &[String]| v.iter().map(|s| s.trim_end_matches('/').to_ascii_lowercase()).collect();
        Guard { origins: lower(&server.admin_allowed_origins), names: lower(&server.admin_server_names) }
    }

    /// `Err` (403) for a request a web page could have sent, or one to a foreign host name.
    pub(crate) fn check(&self, req: &RequestHeader) -> Result<(), ApiError> {
        let header = |name: &str| req.headers.get(name).map(|v| v.to_str().unwrap_or("?").to_ascii_lowercase());
        if let Some(origin) = header("origin")
            && !self.origins.contains(&origin)
        {
            return Err(ApiError::forbidden(format!(
                "requests from the web origin {origin:?} are not allowed; list it in `admin_allowed_origins`"
            )));
        }
        if header("sec-fetch-site").as_deref() == Some("cross-site") {
            return Err(ApiError::forbidden("cross-site requests are not allowed".into()));
        }
        if let Some(host) = header("host") {
            let name = host_name(&host);
            if name != "localhost" && name.parse::<std::net::IpAddr>().is_err() && !self.names.iter().any(|n| n == name)
            {
                return Err(ApiError::forbidden(format!(
                    "the host name {name:?} is not served here; use an IP address or localhost, or list it in \
                     `admin_server_names`"
                )));
            }
        }
        Ok(())
    }
}

/// The name part of a `Host` value: `[::1]:8001` → `::1`, `localhost:8001` → `localhost`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("POST", b"/config", None).unwrap();
        for (name, value) in headers {
            req.append_header(name.to_string(), *value).unwrap();
        }
        req
    }

    #[test]
    fn only_listed_origins_known_hosts_and_same_site_requests_pass() {
        let server = ServerConfig {
            admin_allowed_origins: vec!["http://localhost:8002/".into()],
            admin_server_names: vec!["Admin.Internal".into()],
            ..ServerConfig::default()
        };
        let guard = Guard::new(&server);
        for ok in [
            vec![("host", "localhost:8001")],
            vec![("host", "127.0.0.1:8001")],
            vec![("host", "[::1]:8001")],
            vec![("host", "admin.internal")],
            vec![("host", "localhost"), ("origin", "http://localhost:8002"), ("sec-fetch-site", "same-site")],
            vec![],
        ] {
            assert!(guard.check(&request(&ok)).is_ok(), "{ok:?}");
        }
        for refused in [
            vec![("host", "localhost:8001"), ("origin", "http://evil.example")],
            vec![("host", "localhost:8001"), ("origin", "null")],
            vec![("host", "localhost:8001"), ("sec-fetch-site", "cross-site")],
            vec![("host", "rebind.evil.example:8001")],
            vec![("host", "localhost.evil.example")],
        ] {
            let e = guard.check(&request(&refused)).unwrap_err();
            assert_eq!(e.status, 403, "{refused:?}");
        }
    }
}
