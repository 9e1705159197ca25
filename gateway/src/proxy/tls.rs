//! TLS termination: each handshake gets the certificate that the live configuration has for its
//! server name (SNI), else the default one; a certificate added, replaced or removed applies from
//! the next handshake. The name the client asked for, and the certificate it presented (mutual
//! TLS), stay with the connection.

use crate::request::ClientCertificate;
use crate::snapshot::Snapshot;
use crate::tls::CertKey;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use openssl::hash::MessageDigest;
use openssl::x509::X509NameRef;
use pingora_core::listeners::TlsAccept;
use pingora_core::protocols::tls::TlsRef;
use pingora_core::tls::ext;
use pingora_core::tls::ssl::NameType;
use std::any::Any;
use std::sync::Arc;

/// What a connection's handshake settled, kept with the connection (Pingora's TLS digest) for
/// its requests: the server name asked for, and the client's certificate (mutual TLS).
pub(crate) struct Handshake {
    /// The server name (SNI), lower-cased.
    pub(crate) server_name: Option<Arc<str>>,
    /// The certificate the client presented; OpenSSL verified it against `ssl_client_ca`.
    pub(crate) client: Option<Arc<ClientCertificate>>,
}

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
        let server_name = ssl.servername(NameType::HOST_NAME).map(|n| Arc::from(n.to_ascii_lowercase()));
        let client = ssl.peer_certificate().map(|cert| {
            let fingerprint = cert.digest(MessageDigest::sha256()).map(|d| hex(&d)).unwrap_or_default();
            Arc::new(ClientCertificate { subject: subject(cert.subject_name()), fingerprint })
        });
        if server_name.is_none() && client.is_none() {
            return None;
        }
        Some(Arc::new(Handshake { server_name, client }))
    }
}

/// A certificate name as `CN=api,O=Example` (OpenSSL's short names, in the certificate's order).
fn subject(name: &X509NameRef) -> String {
    let parts = name.entries().map(|e| {
        let key = e.object().nid().short_name().unwrap_or("?");
        let value = e.data().to_string().unwrap_or_default();
        format!("{key}={value}")
    });
    parts.collect::<Vec<_>>().join(",")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
