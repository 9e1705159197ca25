//! The connection to a service's upstream: TLS (server name, verification, trusted CAs, client
//! certificate, chain depth), HTTP/2 for `grpc` (h2c) and `grpcs` (h2 through ALPN), and the
//! service's timeouts.

use crate::entities::Service;
use pingora_core::protocols::Digest;
use pingora_core::protocols::tls::HandshakeCompleteHook;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use std::net::SocketAddr;
use std::sync::Arc;
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
    if service.h2 {
        peer.options.set_http_version(2, 2);
    }
    peer.options.connection_timeout = Some(service.connect_timeout);
    peer.options.read_timeout = Some(service.read_timeout);
    peer.options.write_timeout = Some(service.write_timeout);
    peer.options.idle_timeout = Some(UPSTREAM_IDLE_TIMEOUT);
    peer
}

/// Marks a handshake whose verified chain is longer than `tls_verify_depth` allows.
struct ChainTooDeep {
    length: usize,
    depth: u32,
}

/// The handshake hook of `tls_verify_depth = depth`. OpenSSL's meaning: depth N accepts the
/// certificate, N intermediates and the trust anchor. Pingora does not expose the verify
/// parameters, so the chain is measured after the handshake and refused in
/// [`check_chain_depth`] before a request is sent.
pub(crate) fn depth_check(depth: u32) -> HandshakeCompleteHook {
    Arc::new(move |ssl| {
        let length = ssl.verified_chain().map_or(0, |c| c.len());
        (length > depth as usize + 2).then(|| Arc::new(ChainTooDeep { length, depth }) as Arc<_>)
    })
}

/// Refuses a connection that [`depth_check`] marked, as a failed handshake (502).
pub(super) fn check_chain_depth(digest: Option<&Digest>) -> Result<()> {
    let ssl = digest.and_then(|d| d.ssl_digest.as_ref());
    match ssl.and_then(|s| s.extension.get::<ChainTooDeep>()) {
        Some(deep) => Err(Error::create(
            ErrorType::TLSHandshakeFailure,
            ErrorSource::Upstream,
            Some(
                format!(
                    "the upstream's certificate chain has {} certificates; tls_verify_depth = {} allows {}",
                    deep.length,
                    deep.depth,
                    deep.depth + 2
                )
                .into(),
            ),
            None,
        )),
        None => Ok(()),
    }
}
