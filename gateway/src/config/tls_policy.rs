//! The TLS policy of the proxy listeners, in Kong's names: `ssl_protocols` ("TLSv1.2 TLSv1.3"),
//! `ssl_cipher_suite` (Mozilla's `modern`, `intermediate`, `old`, or `custom` with
//! `ssl_ciphers`), `ssl_session_tickets` (with keys rotated every `ssl_session_ticket_rotation`
//! seconds), and client certificates (`ssl_client_ca`,
//! `ssl_verify_client`, nginx's names).

use super::{ServerConfig, relative_to};
use crate::ticket_keys::TicketKeys;
use openssl::ssl::{SslAcceptorBuilder, SslOptions, SslVerifyMode, SslVersion};
use openssl::x509::X509;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Mozilla's "old" TLS 1.0–1.2 cipher list (nginx's, as Kong ships it).
const OLD_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:\
DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:\
ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA:\
ECDHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:\
AES256-SHA256:AES128-SHA:AES256-SHA:DES-CBC3-SHA";

/// What a TLS listener accepts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TlsPolicy {
    /// The oldest and newest protocol versions.
    versions: (SslVersion, SslVersion),
    /// A TLS 1.2 cipher list replacing Mozilla's intermediate one (the acceptor's own).
    ciphers: Option<String>,
    /// Session resumption through tickets, and how often their key is replaced.
    tickets: Option<Duration>,
    /// CAs that sign client certificates, and whether a client must present one.
    client_ca: Option<(Vec<X509>, bool)>,
}

const VERSIONS: [(&str, SslVersion); 4] = [
    ("TLSv1", SslVersion::TLS1),
    ("TLSv1.1", SslVersion::TLS1_1),
    ("TLSv1.2", SslVersion::TLS1_2),
    ("TLSv1.3", SslVersion::TLS1_3),
];

impl TlsPolicy {
    /// Reads the policy from `[server]`; errors name the field and what is accepted.
    pub(crate) fn from_server(s: &ServerConfig) -> Result<TlsPolicy, String> {
        let mut picked = Vec::new();
        for token in s.ssl_protocols.split_whitespace() {
            match VERSIONS.iter().position(|(name, _)| *name == token) {
                Some(i) => picked.push(i),
                None => {
                    return Err(format!(
                        "server: ssl_protocols: {token:?} is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"
                    ));
                }
            }
        }
        picked.sort_unstable();
        picked.dedup();
        let (Some(&lo), Some(&hi)) = (picked.first(), picked.last()) else {
            return Err("server: ssl_protocols: give at least one version, e.g. \"TLSv1.2 TLSv1.3\"".into());
        };
        if hi - lo + 1 != picked.len() {
            return Err("server: ssl_protocols: give a range without gaps, e.g. \"TLSv1.2 TLSv1.3\"".into());
        }
        let mut versions = (VERSIONS[lo].1, VERSIONS[hi].1);
        let ciphers = match (s.ssl_cipher_suite.as_str(), &s.ssl_ciphers) {
            ("custom", Some(list)) => Some(list.clone()),
            ("custom", None) => return Err("server: ssl_ciphers: required with ssl_cipher_suite = \"custom\"".into()),
            (_, Some(_)) => {
                return Err("server: ssl_ciphers: only read with ssl_cipher_suite = \"custom\"; set that too".into());
            }
            ("modern", None) => {
                versions = (SslVersion::TLS1_3, SslVersion::TLS1_3);
                None
            }
            ("intermediate", None) => None,
            ("old", None) => Some(OLD_CIPHERS.to_string()),
            (other, None) => {
                return Err(format!(
                    "server: ssl_cipher_suite: {other:?} is not one of modern, intermediate, old, custom"
                ));
            }
        };
        let require_client = match s.ssl_verify_client.as_str() {
            "optional" => false,
            "on" => true,
            other => return Err(format!("server: ssl_verify_client: {other:?} is not one of optional, on")),
        };
        if s.ssl_session_ticket_rotation == 0 {
            return Err("server: ssl_session_ticket_rotation: give seconds, at least 1 (default 3600)".into());
        }
        let rotation = Duration::from_secs(s.ssl_session_ticket_rotation);
        let policy = TlsPolicy {
            versions,
            ciphers,
            tickets: s.ssl_session_tickets.then_some(rotation),
            client_ca: s.ssl_client_ca.as_ref().map(|_| (Vec::new(), require_client)),
        };
        // A cipher list OpenSSL does not take is found now, not at the first handshake.
        let mut probe = openssl::ssl::SslAcceptor::mozilla_intermediate_v5(openssl::ssl::SslMethod::tls())
            .map_err(|e| format!("server: TLS: {e}"))?;
        policy.apply(&mut probe, None).map_err(|e| format!("server: ssl_ciphers: {e}"))?;
        Ok(policy)
    }

    /// Reads `ssl_client_ca` (relative to `config_file`): PEM CA certificates, at least one.
    pub(crate) fn read_client_ca(mut self, s: &ServerConfig, config_file: &Path) -> Result<TlsPolicy, String> {
        let (Some(file), Some((cas, _))) = (&s.ssl_client_ca, &mut self.client_ca) else { return Ok(self) };
        let path = relative_to(config_file, file);
        let pem =
            std::fs::read(&path).map_err(|e| format!("server: ssl_client_ca: cannot read {}: {e}", path.display()))?;
        *cas = X509::stack_from_pem(&pem)
            .map_err(|e| format!("server: ssl_client_ca: {}: not PEM certificates ({e})", path.display()))?;
        if cas.is_empty() {
            return Err(format!("server: ssl_client_ca: {} holds no certificate", path.display()));
        }
        Ok(self)
    }

    /// The ticket keys the listeners share, if tickets are on.
    pub(crate) fn ticket_keys(&self) -> Result<Option<Arc<TicketKeys>>, openssl::error::ErrorStack> {
        self.tickets.map(TicketKeys::new).transpose()
    }

    /// Sets the policy on a listener's acceptor, with the process's ticket keys.
    pub(crate) fn apply(
        &self,
        b: &mut SslAcceptorBuilder,
        tickets: Option<&Arc<TicketKeys>>,
    ) -> Result<(), openssl::error::ErrorStack> {
        if let Some((cas, required)) = &self.client_ca {
            let mut mode = SslVerifyMode::PEER;
            if *required {
                mode |= SslVerifyMode::FAIL_IF_NO_PEER_CERT;
            }
            b.set_verify(mode);
            for ca in cas {
                b.cert_store_mut().add_cert(ca.clone())?;
                b.add_client_ca(ca)?;
            }
            // Resumed sessions keep their verified certificate; OpenSSL needs a context for that.
            b.set_session_id_context(b"wasmgate")?;
        }
        b.set_min_proto_version(Some(self.versions.0))?;
        b.set_max_proto_version(Some(self.versions.1))?;
        if let Some(list) = &self.ciphers {
            b.set_cipher_list(list)?;
        }
        match (self.tickets, tickets) {
            (None, _) => {
                b.set_options(SslOptions::NO_TICKET);
            }
            (Some(_), Some(keys)) => keys.install(b)?,
            (Some(_), None) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(protocols: &str, suite: &str, ciphers: Option<&str>) -> Result<TlsPolicy, String> {
        let s = ServerConfig {
            ssl_protocols: protocols.into(),
            ssl_cipher_suite: suite.into(),
            ssl_ciphers: ciphers.map(str::to_string),
            ..Default::default()
        };
        TlsPolicy::from_server(&s)
    }

    #[test]
    fn kongs_names_and_clear_refusals() {
        let default = TlsPolicy::from_server(&ServerConfig::default()).unwrap();
        assert_eq!(default.versions, (SslVersion::TLS1_2, SslVersion::TLS1_3));
        assert_eq!(policy("TLSv1.2 TLSv1.3", "modern", None).unwrap().versions.0, SslVersion::TLS1_3);
        assert!(policy("TLSv1.2", "old", None).unwrap().ciphers.is_some());
        assert!(policy("TLSv1.2", "custom", Some("ECDHE-ECDSA-AES128-GCM-SHA256")).is_ok());
        for (p, suite, c, says) in [
            ("TLSv1.4", "intermediate", None, "is not one of TLSv1"),
            ("TLSv1.1 TLSv1.3", "intermediate", None, "without gaps"),
            ("", "intermediate", None, "at least one"),
            ("TLSv1.2", "custom", None, "ssl_ciphers: required"),
            ("TLSv1.2", "custom", Some("NOT-A-CIPHER"), "ssl_ciphers:"),
            ("TLSv1.2", "strong", None, "ssl_cipher_suite: \"strong\""),
            ("TLSv1.2", "intermediate", Some("X"), "only read with"),
        ] {
            let e = policy(p, suite, c).unwrap_err();
            assert!(e.contains(says), "{p} {suite} {c:?}: {e}");
        }
    }
}
