//! TLS termination: each handshake gets the certificate that the live configuration has for its
//! server name (SNI), else the default one; a certificate added, replaced or removed applies from
//! the next handshake. The name the client asked for stays with the connection.

use crate::snapshot::Snapshot;
use crate::tls::CertKey;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora_core::listeners::TlsAccept;
use pingora_core::protocols::tls::TlsRef;
use pingora_core::tls::ext;
use pingora_core::tls::ssl::NameType;
use std::any::Any;
use std::sync::Arc;

/// The server name a connection's handshake asked for, kept with the connection (Pingora's TLS
/// digest) for its requests.
pub(crate) struct ServerName(pub(crate) Arc<str>);

/// The certificate chooser of the TLS listeners.
pub(crate) struct SniCertificates {
    live: Arc<ArcSwap<Snapshot>>,
    default: Arc<[CertKey]>,
}

impl SniCertificates {
    /// A chooser over `live`'s certificates, with `default` for names none claims.
    pub(crate) fn new(live: Arc<ArcSwap<Snapshot>>, default: Arc<[CertKey]>) -> SniCertificates {
        SniCertificates { live, default }
    }
}

#[async_trait]
impl TlsAccept for SniCertificates {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let snapshot = self.live.load();
        let sni = ssl.servername(NameType::HOST_NAME).map(str::to_string);
        let pairs = sni.as_deref().and_then(|n| snapshot.entities.certificates.lookup(n)).unwrap_or(&self.default);
        for pair in pairs.iter() {
            let set = ext::ssl_use_certificate(ssl, &pair.chain[0])
                .and_then(|()| ext::ssl_use_private_key(ssl, &pair.key))
                .and_then(|()| pair.chain[1..].iter().try_for_each(|c| ext::ssl_add_chain_cert(ssl, c)));
            if let Err(e) = set {
                tracing::warn!(sni = ?sni, error = %e, "could not use the certificate for this handshake");
            }
        }
    }

    async fn handshake_complete_callback(&self, ssl: &TlsRef) -> Option<Arc<dyn Any + Send + Sync>> {
        let sni = ssl.servername(NameType::HOST_NAME)?.to_ascii_lowercase();
        Some(Arc::new(ServerName(Arc::from(sni))))
    }
}
