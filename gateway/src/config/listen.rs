//! Proxy listeners in Kong's syntax: `0.0.0.0:8443 ssl http2 reuseport`. (Kong's `backlog=N` is
//! refused: Pingora listens with a backlog of its own, 65,535.) `http2` on a TLS listener is
//! negotiated through ALPN; on a plain one it accepts h2c with prior knowledge (as gRPC clients
//! speak it) beside HTTP/1.1.

use std::net::SocketAddr;

/// One `proxy_listen` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listener {
    /// Address and port.
    pub(crate) addr: SocketAddr,
    /// TLS (`ssl`).
    pub(crate) ssl: bool,
    /// HTTP/2 (`http2`): through ALPN on an `ssl` listener, h2c with prior knowledge on a plain one.
    pub(crate) http2: bool,
    /// `SO_REUSEPORT` (`reuseport`).
    pub(crate) reuseport: bool,
}

impl Listener {
    /// Parses an entry; the error names the part that is wrong and what is accepted.
    pub(crate) fn parse(entry: &str) -> Result<Listener, String> {
        let mut parts = entry.split_whitespace();
        let addr = parts.next().unwrap_or_default();
        let addr = addr.parse().map_err(|_| {
            format!("{addr:?} is not an ip:port address, e.g. \"0.0.0.0:8000\" or \"0.0.0.0:8443 ssl\"")
        })?;
        let mut l = Listener { addr, ssl: false, http2: false, reuseport: false };
        for flag in parts {
            match flag {
                "ssl" => l.ssl = true,
                "http2" => l.http2 = true,
                "reuseport" => l.reuseport = true,
                _ if flag.starts_with("backlog=") => {
                    return Err(format!("{flag:?}: the backlog is Pingora's own (65535); remove the flag"));
                }
                _ => return Err(format!("{flag:?} is not a listener flag; use ssl, http2 or reuseport")),
            }
        }
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kongs_listener_syntax() {
        let l = Listener::parse("0.0.0.0:8443 ssl http2 reuseport").unwrap();
        assert_eq!((l.addr.port(), l.ssl, l.http2, l.reuseport), (8443, true, true, true));
        assert!(!Listener::parse("127.0.0.1:8000").unwrap().ssl);
        assert!(Listener::parse("127.0.0.1:8000 tls").unwrap_err().contains("use ssl, http2"));
        assert!(Listener::parse("localhost:8000").unwrap_err().contains("ip:port"));
        assert!(Listener::parse("127.0.0.1:8000 backlog=512").unwrap_err().contains("Pingora's own"));
        assert!(Listener::parse("127.0.0.1:8000 http2").unwrap().http2, "h2c");
    }
}
