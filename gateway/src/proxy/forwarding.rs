//! The client address behind trusted proxies, and the `X-Forwarded-*` / `X-Real-IP` headers sent
//! upstream, set as Kong sets them.

use crate::config::ProxySettings;
use http::{HeaderMap, HeaderValue};
use pingora_http::RequestHeader;
use std::net::IpAddr;

/// The client's address: the TCP peer, unless the peer is a trusted proxy, in which case the
/// address comes from `real_ip_header` (walking past trusted proxies from the right when recursive).
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, settings: &ProxySettings) -> IpAddr {
    if !settings.is_trusted(peer) {
        return peer;
    }
    let mut chain: Vec<IpAddr> = headers
        .get_all(&settings.real_ip_header)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| parse_ip(s.trim()))
        .collect();
    if !settings.real_ip_recursive {
        return chain.pop().unwrap_or(peer);
    }
    let first = chain.first().copied();
    while let Some(ip) = chain.pop() {
        if !settings.is_trusted(ip) {
            return ip;
        }
    }
    first.unwrap_or(peer)
}

/// Parses `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678`.
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok().or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

/// What the forwarding headers are made of.
pub(crate) struct Forwarded<'a> {
    /// The TCP peer.
    pub(crate) peer: IpAddr,
    /// The client, as found by [`client_ip`].
    pub(crate) client: IpAddr,
    /// Whether the peer is a trusted proxy (its own X-Forwarded-* are then kept).
    pub(crate) trusted: bool,
    /// Host header of the request, without port.
    pub(crate) host: &'a str,
    /// Port the request came in on.
    pub(crate) port: u16,
    /// `http` or `https`.
    pub(crate) proto: &'a str,
    /// The request path as received.
    pub(crate) path: &'a str,
    /// The prefix strip_path removed, if any.
    pub(crate) prefix: Option<&'a str>,
}

/// Whether `name` is one of the identity headers auth plugins set upstream (Kong's
/// `X-Consumer-ID`, `-Custom-ID`, `-Username`, `-Groups`, `X-Credential-Identifier`,
/// `X-Anonymous-Consumer`, `X-Authenticated-Groups`, `-Scope`, `-Userid`).
fn is_identity(name: &str) -> bool {
    ["x-consumer-", "x-credential-", "x-anonymous-", "x-authenticated-"].iter().any(|p| name.starts_with(p))
}

/// Removes the identity headers a client sent, so that only the gateway's plugins set them: an
/// upstream that trusts them is not fooled on a route without auth (one look at each name).
pub(crate) fn remove_identity_headers(req: &mut RequestHeader) {
    if !req.headers.keys().any(|n| is_identity(n.as_str())) {
        return;
    }
    let names: Vec<http::HeaderName> = req.headers.keys().filter(|n| is_identity(n.as_str())).cloned().collect();
    for name in names {
        req.remove_header(&name);
    }
}

/// Removes the hop-by-hop headers of RFC 9110 §7.6.1 from a request going upstream: the names
/// `Connection` lists, `Keep-Alive`, `Proxy-Connection`, `TE` (but for `trailers`) and `Upgrade`,
/// which stays only for a WebSocket handshake. An `Upgrade: h2c` is thus never forwarded: an
/// upstream that took it would give the client a raw HTTP/2 tunnel past every plugin.
/// (`Transfer-Encoding` and the `Connection` of the upstream hop are Pingora's.)
pub(crate) fn remove_hop_by_hop(req: &mut RequestHeader) {
    use http::header::{CONNECTION, TE, UPGRADE};
    const PLAIN: [&str; 3] = ["keep-alive", "proxy-connection", "http2-settings"];
    // One pass over the names (a request has a few): cheaper than a lookup for each of the six.
    let hop = |n: &http::HeaderName| n == CONNECTION || n == TE || n == UPGRADE || PLAIN.contains(&n.as_str());
    if !req.headers.keys().any(hop) {
        return;
    }
    let websocket = crate::request::is_websocket(&req.headers);
    let listed: Vec<String> = req
        .headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for name in listed.iter().map(String::as_str).chain(PLAIN) {
        if !(websocket && name == "upgrade") {
            req.remove_header(name);
        }
    }
    if websocket {
        let _ = req.insert_header(CONNECTION, "upgrade");
    } else {
        req.remove_header(&UPGRADE);
        req.remove_header(&CONNECTION);
    }
    let trailers = req
        .headers
        .get_all(TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("trailers")));
    req.remove_header(&TE);
    if trailers {
        let _ = req.insert_header(TE, "trailers");
    }
}

/// Sets X-Real-IP, X-Forwarded-For (appending the peer) and X-Forwarded-Proto/-Host/-Port/-Path/
/// -Prefix (kept from a trusted peer, otherwise set from this request).
pub(crate) fn apply(req: &mut RequestHeader, f: &Forwarded<'_>) -> pingora_error::Result<()> {
    let mut xff = Vec::with_capacity(IP_TEXT_MAX);
    if let Some(prev) = req.headers.get("x-forwarded-for").map(HeaderValue::as_bytes)
        && !prev.trim_ascii().is_empty()
    {
        xff.extend_from_slice(prev);
        xff.extend_from_slice(b", ");
    }
    write_ip(f.peer, &mut xff);
    req.insert_header("x-real-ip", ip_value(f.client))?;
    req.insert_header("x-forwarded-for", value(xff))?;
    let port = f.port.to_string();
    let own: [(&str, Option<&str>); 5] = [
        ("x-forwarded-proto", Some(f.proto)),
        ("x-forwarded-host", Some(f.host)),
        ("x-forwarded-port", Some(&port)),
        ("x-forwarded-path", Some(f.path)),
        ("x-forwarded-prefix", f.prefix),
    ];
    for (name, value) in own {
        if f.trusted && req.headers.contains_key(name) {
            continue;
        }
        match value {
            Some(v) => req.insert_header(name, v)?,
            None => {
                req.remove_header(name);
            }
        }
    }
    Ok(())
}

/// The longest address [`write_ip`] writes (an IPv6 address with an embedded IPv4 one).
const IP_TEXT_MAX: usize = 45;

/// `ip` as a header value.
fn ip_value(ip: IpAddr) -> HeaderValue {
    let mut text = Vec::with_capacity(IP_TEXT_MAX);
    write_ip(ip, &mut text);
    value(text)
}

/// Appends `ip` as text, as `Display` writes it. IPv4 is written digit by digit: `Display` goes
/// through the formatting machinery, ten times the instructions, twice on every request.
fn write_ip(ip: IpAddr, out: &mut Vec<u8>) {
    let IpAddr::V4(v4) = ip else {
        use std::io::Write;
        let _ = write!(out, "{ip}");
        return;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        if octet >= 100 {
            out.push(b'0' + octet / 100);
        }
        if octet >= 10 {
            out.push(b'0' + octet / 10 % 10);
        }
        out.push(b'0' + octet % 10);
    }
}

/// A header value of bytes that are one already (an address, or a value received with the
/// addresses appended), without copying them again.
fn value(bytes: Vec<u8>) -> HeaderValue {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(bytes)).expect("a received value and an address")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(trusted: &[&str], recursive: bool) -> ProxySettings {
        ProxySettings {
            trusted_ips: trusted.iter().map(|t| crate::config::parse_net(t).unwrap()).collect(),
            real_ip_header: http::HeaderName::from_static("x-forwarded-for"),
            real_ip_recursive: recursive,
            server_tokens: true,
            latency_tokens: true,
            metrics: true,
            client_header_timeout: std::time::Duration::from_secs(60),
            client_body_timeout: std::time::Duration::from_secs(60),
            keepalive_timeout: 60,
            trust_identity_headers: false,
            escaped_slashes: crate::config::EscapedSlashes::Reject,
        }
    }

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let ip = client_ip("9.9.9.9".parse().unwrap(), &headers("1.2.3.4"), &settings(&["10.0.0.0/8"], true));
        assert_eq!(ip, "9.9.9.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_chain_is_walked_from_the_right() {
        let s = settings(&["10.0.0.0/8", "127.0.0.1"], true);
        let h = headers("1.2.3.4, 5.6.7.8, 10.1.1.1");
        assert_eq!(client_ip("127.0.0.1".parse().unwrap(), &h, &s), "5.6.7.8".parse::<IpAddr>().unwrap());
        let s = settings(&["127.0.0.1"], false);
        assert_eq!(client_ip("127.0.0.1".parse().unwrap(), &h, &s), "10.1.1.1".parse::<IpAddr>().unwrap());
        let h = headers("2001:db8::1");
        assert_eq!(client_ip("127.0.0.1".parse().unwrap(), &h, &s), "2001:db8::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let mut ips: Vec<IpAddr> =
            ["::1", "2001:db8::1", "::ffff:10.0.0.1", "fe80::1:2:3:4"].map(|a| a.parse().unwrap()).into();
        ips.extend((0..=255u8).map(|o| IpAddr::from([o, 255 - o, o / 10, o % 10])));
        for ip in ips {
            let mut text = Vec::new();
            write_ip(ip, &mut text);
            assert_eq!(String::from_utf8(text).unwrap(), ip.to_string());
        }
    }

    #[test]
    fn forwarded_for_appends_the_peer_to_what_came() {
        let fwd = |peer: &str| Forwarded {
            peer: peer.parse().unwrap(),
            client: "192.0.2.7".parse().unwrap(),
            trusted: false,
            host: "example.com",
            port: 8000,
            proto: "http",
            path: "/a",
            prefix: None,
        };
        let mut req = RequestHeader::build("GET", b"/a", None).unwrap();
        apply(&mut req, &fwd("10.20.30.40")).unwrap();
        assert_eq!(req.headers["x-forwarded-for"], "10.20.30.40");
        assert_eq!(req.headers["x-real-ip"], "192.0.2.7");
        req.insert_header("x-forwarded-for", "1.2.3.4, 5.6.7.8").unwrap();
        apply(&mut req, &fwd("2001:db8::2")).unwrap();
        assert_eq!(req.headers["x-forwarded-for"], "1.2.3.4, 5.6.7.8, 2001:db8::2");
        req.insert_header("x-forwarded-for", " ").unwrap();
        apply(&mut req, &fwd("127.0.0.1")).unwrap();
        assert_eq!(req.headers["x-forwarded-for"], "127.0.0.1");
    }

    proptest::proptest! {
        /// Any X-Forwarded-For value gives an address, from a trusted peer or not.
        #[test]
        fn any_forwarded_for_gives_an_address(value in "[ -~]{0,80}", recursive in proptest::bool::ANY) {
            let mut h = HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                h.insert("x-forwarded-for", v);
            }
            let peer: IpAddr = "127.0.0.1".parse().unwrap();
            let ip = client_ip(peer, &h, &settings(&["127.0.0.1", "10.0.0.0/8"], recursive));
            // The address is the peer or one of the list's (as written: `::A` is `::a`).
            let listed = value.split(',').any(|t| t.trim().parse::<IpAddr>().is_ok_and(|a| a == ip));
            proptest::prop_assert!(ip == peer || listed, "{ip} from {value:?}");
        }
    }
}
