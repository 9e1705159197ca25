//! The connection to a service's upstream: TLS (server name, verification, trusted CAs, client
//! certificate, chain depth), HTTP/2 (`grpc`, `grpcs`, `http2 = true`), and the service's
//! timeouts.

use crate::entities::{Service, UpstreamHttp};
use pingora_core::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::time::Duration;

/// How long an idle upstream connection is kept for reuse.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The peer for one attempt at `service`'s upstream at `socket`. `client_host` is the client's
/// host when the route preserves it: it is then the server name sent and verified, as Kong does.
pub(super) fn peer(service: &Service, socket: SocketAddr, client_host: Option<&str>) -> HttpPeer {
    let mut peer = match &service.tls {
        // Pingora verifies nothing for an empty name; the service's host is never empty.
        Some(tls) => {
            let mut peer = HttpPeer::new(socket, true, client_host.unwrap_or(&tls.sni).to_string());
            (peer.options.verify_cert, peer.options.verify_hostname) = (tls.verify, tls.verify);
            peer.options.ca = tls.ca.clone();
            peer.client_cert_key = tls.client.clone();
            peer.options.upstream_tls_handshake_complete_hook = tls.depth_check.clone();
            peer
        }
        None => HttpPeer::new(socket, false, String::new()),
    };
    match service.http {
        UpstreamHttp::H1 => {}
        UpstreamHttp::H2 => peer.options.set_http_version(2, 2),
        UpstreamHttp::H2OrH1 => peer.options.set_http_version(2, 1),
    }
    peer.options.connection_timeout = Some(service.connect_timeout);
    peer.options.read_timeout = Some(service.read_timeout);
    peer.options.write_timeout = Some(service.write_timeout);
    peer.options.idle_timeout = Some(UPSTREAM_IDLE_TIMEOUT);
    peer
}
