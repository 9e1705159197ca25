//! TLS certificates by server name (SNI), chosen per handshake as Kong does: the exact name, then
//! a leading wildcard (`*.example.com`, one label), then a trailing one (`example.*`), then the
//! default. Names compare case-insensitively. Certificates are parsed and checked once, when a
//! configuration is built, so a handshake only looks a name up.

use crate::config::{CaCertificateConfig, CertificateConfig, ConfigErrors};
use openssl::asn1::Asn1Time;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use std::collections::HashMap;
use std::sync::Arc;

/// A certificate chain and its private key.
pub(crate) struct CertKey {
    /// The certificate, then its chain.
    pub(crate) chain: Vec<X509>,
    /// Its private key.
    pub(crate) key: PKey<Private>,
}

impl CertKey {
    /// Parses PEM text; the key must be the certificate's.
    pub(crate) fn from_pem(cert: &[u8], key: &[u8]) -> Result<CertKey, String> {
        let chain = X509::stack_from_pem(cert).map_err(|e| format!("not a PEM certificate ({e})"))?;
        let Some(leaf) = chain.first() else { return Err("no certificate in the PEM text".into()) };
        let key = PKey::private_key_from_pem(key).map_err(|e| format!("not a PEM private key ({e})"))?;
        let public = leaf.public_key().map_err(|e| format!("the certificate's public key: {e}"))?;
        if !public.public_eq(&key) {
            return Err("the key does not belong to the certificate; give the certificate's own key".into());
        }
        Ok(CertKey { chain, key })
    }

    /// Whether the certificate's validity has ended.
    pub(crate) fn expired(&self) -> bool {
        Asn1Time::days_from_now(0).is_ok_and(|now| self.chain[0].not_after() < now)
    }

    /// A self-signed ECDSA P-256 certificate for `localhost`, valid for a year: Kong's default
    /// when no certificate is configured.
    pub(crate) fn self_signed() -> Result<CertKey, String> {
        use openssl::{bn::BigNum, ec, hash::MessageDigest, nid::Nid, x509};
        let run = || -> Result<CertKey, openssl::error::ErrorStack> {
            let group = ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            let key = PKey::from_ec_key(ec::EcKey::generate(&group)?)?;
            let mut name = x509::X509NameBuilder::new()?;
            name.append_entry_by_nid(Nid::COMMONNAME, "localhost")?;
            name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "wasmgate default certificate")?;
            let name = name.build();
            let mut b = X509::builder()?;
            b.set_version(2)?;
            let mut serial = BigNum::new()?;
            serial.rand(127, openssl::bn::MsbOption::MAYBE_ZERO, false)?;
            let serial = serial.to_asn1_integer()?;
            b.set_serial_number(&serial)?;
            b.set_subject_name(&name)?;
            b.set_issuer_name(&name)?;
            b.set_pubkey(&key)?;
            let (from, until) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(365)?);
            b.set_not_before(&from)?;
            b.set_not_after(&until)?;
            let san =
                x509::extension::SubjectAlternativeName::new().dns("localhost").build(&b.x509v3_context(None, None))?;
            b.append_extension(san)?;
            b.sign(&key, MessageDigest::sha256())?;
            Ok(CertKey { chain: vec![b.build()], key })
        };
        run().map_err(|e| format!("cannot make a self-signed certificate: {e}"))
    }
}

/// The certificates and CA certificates of one configuration: certificates indexed by server
/// name (for handshakes) and by id (for services' `client_certificate`), CAs by id.
#[derive(Default)]
pub(crate) struct Certificates {
    /// Each certificate entity: its pairs (a second one from `cert_alt`).
    list: Vec<Arc<[CertKey]>>,
    /// Each certificate's first pair, as presented to upstreams.
    clients: Vec<Arc<pingora_core::utils::tls::CertKey>>,
    by_id: HashMap<String, usize>,
    exact: HashMap<String, usize>,
    /// `*.example.com` under `example.com`.
    leading: HashMap<String, usize>,
    /// `example.*` under `example`.
    trailing: HashMap<String, usize>,
    /// CA certificates by id.
    cas: HashMap<String, X509>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").field("count", &self.list.len()).field("cas", &self.cas.len()).finish()
    }
}

/// Where a server name's wildcard is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wildcard {
    /// `api.example.com`
    None,
    /// `*.example.com`
    Leading,
    /// `example.*`
    Trailing,
}

/// Checks a certificate's server name and splits off its wildcard: the lower-case name without
/// it, and where it was.
pub(crate) fn sni_key(name: &str) -> Result<(Wildcard, String), String> {
    let name = name.trim().to_ascii_lowercase();
    let (shape, key) = if let Some(rest) = name.strip_prefix("*.") {
        (Wildcard::Leading, rest.to_string())
    } else if let Some(rest) = name.strip_suffix(".*") {
        (Wildcard::Trailing, rest.to_string())
    } else {
        (Wildcard::None, name.clone())
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if key.is_empty() || !key.chars().all(valid) || key.starts_with('.') || key.ends_with('.') {
        return Err(format!("{name:?} is not a server name; use a name, *.suffix or prefix.*"));
    }
    Ok((shape, key))
}

/// A certificate entity's id: given, or derived from its first name (else its position).
pub(crate) fn certificate_id(c: &CertificateConfig, position: usize) -> Result<String, String> {
    let key = c.snis.first().map(|s| s.trim().to_ascii_lowercase()).unwrap_or_else(|| format!("#{position}"));
    crate::ids::entity_id("certificate", c.id.as_deref(), &key)
}

/// A CA certificate entity's id: given, or derived from its position.
pub(crate) fn ca_certificate_id(c: &CaCertificateConfig, position: usize) -> Result<String, String> {
    crate::ids::entity_id("ca_certificate", c.id.as_deref(), &format!("#{position}"))
}

/// Parses a CA certificate: one PEM certificate with the CA basic constraint, not expired.
pub(crate) fn parse_ca(pem: &str) -> Result<X509, String> {
    let cert = X509::from_pem(pem.as_bytes()).map_err(|e| format!("not a PEM certificate ({e})"))?;
    let text = cert.to_text().map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default();
    if !text.contains("CA:TRUE") {
        return Err("not a CA certificate: it lacks the \"CA\" basic constraint".into());
    }
    if Asn1Time::days_from_now(0).is_ok_and(|now| cert.not_after() < now) {
        return Err("the certificate has expired (its \"Not After\" time is past)".into());
    }
    Ok(cert)
}

/// Parses a certificate entity's pairs: `cert`/`key`, and `cert_alt`/`key_alt` when given.
/// Errors name the field.
pub(crate) fn parse_pairs(cfg: &CertificateConfig) -> Result<Vec<CertKey>, (&'static str, String)> {
    let mut pairs = Vec::new();
    for (cert, key, cert_field, key_field) in
        [(&cfg.cert, &cfg.key, "cert", "key"), (&cfg.cert_alt, &cfg.key_alt, "cert_alt", "key_alt")]
    {
        match (cert, key) {
            (Some(cert), Some(key)) => {
                pairs.push(CertKey::from_pem(cert.as_bytes(), key.as_bytes()).map_err(|e| (cert_field, e))?)
            }
            (None, None) if cert_field == "cert_alt" => {}
            (None, None) => {
                return Err((
                    "cert",
                    "required; give the PEM as `cert` and `key`, or files as `cert_file` and `key_file`".into(),
                ));
            }
            (Some(_), None) => return Err((key_field, format!("required with {cert_field}"))),
            (None, Some(_)) => return Err((cert_field, format!("required with {key_field}"))),
        }
    }
    Ok(pairs)
}

impl Certificates {
    /// Parses and indexes `[[certificates]]` and `[[ca_certificates]]` (their files already read
    /// into `cert`/`key`). Unparsable PEM, a key that is not the certificate's, a malformed name
    /// and a name claimed twice are errors; an expired certificate is served, with a warning.
    pub(crate) fn build(
        configs: &[CertificateConfig],
        cas: &[CaCertificateConfig],
        errors: &mut ConfigErrors,
    ) -> Certificates {
        let mut c = Certificates::default();
        for (i, cfg) in configs.iter().enumerate() {
            let label = format!("certificates[{i}]");
            let pairs = match parse_pairs(cfg) {
                Ok(p) => p,
                Err((field, e)) => {
                    errors.push(format!("{label}: {field}: {e}"));
                    continue;
                }
            };
            if pairs.iter().any(CertKey::expired) {
                tracing::warn!(certificate = %label, snis = ?cfg.snis, "the certificate has expired; it is served until replaced");
            }
            let index = c.list.len();
            match certificate_id(cfg, i) {
                Ok(id) => {
                    c.by_id.insert(id, index);
                }
                Err(e) => errors.push(format!("{label}: id: {e}")),
            }
            let first = &pairs[0];
            c.clients.push(Arc::new(pingora_core::utils::tls::CertKey::new(first.chain.clone(), first.key.clone())));
            c.list.push(pairs.into());
            for (s, sni) in cfg.snis.iter().enumerate() {
                let (shape, key) = match sni_key(sni) {
                    Ok(k) => k,
                    Err(e) => {
                        errors.push(format!("{label}: snis[{s}]: {e}"));
                        continue;
                    }
                };
                let map = match shape {
                    Wildcard::None => &mut c.exact,
                    Wildcard::Leading => &mut c.leading,
                    Wildcard::Trailing => &mut c.trailing,
                };
                if map.insert(key, index).is_some() {
                    errors.push(format!(
                        "{label}: snis[{s}]: {sni:?} is claimed by another certificate; each name has one"
                    ));
                }
            }
        }
        for (i, ca) in cas.iter().enumerate() {
            let label = format!("ca_certificates[{i}]");
            let Some(pem) = &ca.cert else {
                errors.push(format!("{label}: cert: required; give the PEM as `cert` or a file as `cert_file`"));
                continue;
            };
            match (parse_ca(pem), ca_certificate_id(ca, i)) {
                (Ok(cert), Ok(id)) => {
                    c.cas.insert(id, cert);
                }
                (Err(e), _) => errors.push(format!("{label}: cert: {e}")),
                (_, Err(e)) => errors.push(format!("{label}: id: {e}")),
            }
        }
        c
    }

    /// The pairs to serve for server name `sni`, if a certificate claims it.
    pub(crate) fn lookup(&self, sni: &str) -> Option<&Arc<[CertKey]>> {
        self.index_of_name(&sni.to_ascii_lowercase()).map(|i| &self.list[i])
    }

    fn index_of_name(&self, name: &str) -> Option<usize> {
        let found = self.exact.get(name).or_else(|| {
            let leading = name.split_once('.').and_then(|(_, rest)| self.leading.get(rest));
            leading.or_else(|| name.rsplit_once('.').and_then(|(prefix, _)| self.trailing.get(prefix)))
        });
        found.copied()
    }

    /// The certificate a service presents to its upstream: by id, or by one of its exact names.
    pub(crate) fn client(&self, id_or_name: &str) -> Option<Arc<pingora_core::utils::tls::CertKey>> {
        let index = self.by_id.get(id_or_name).or_else(|| self.exact.get(&id_or_name.to_ascii_lowercase()))?;
        Some(self.clients[*index].clone())
    }

    /// A CA certificate by id.
    pub(crate) fn ca(&self, id: &str) -> Option<&X509> {
        self.cas.get(id)
    }
}

/// Marks a handshake whose verified chain is longer than `tls_verify_depth` allows.
struct ChainTooDeep {
    length: usize,
    depth: u32,
}

/// The upstream handshake hook of `tls_verify_depth = depth`. OpenSSL's meaning: depth N accepts
/// the certificate, N intermediates and the trust anchor. Pingora does not expose the verify
/// parameters, so the chain is measured after the handshake and refused in
/// [`check_chain_depth`] before a request is sent.
pub(crate) fn depth_check(depth: u32) -> pingora_core::protocols::tls::HandshakeCompleteHook {
    Arc::new(move |ssl| {
        let length = ssl.verified_chain().map_or(0, |c| c.len());
        (length > depth as usize + 2).then(|| Arc::new(ChainTooDeep { length, depth }) as Arc<_>)
    })
}

/// Refuses an upstream connection that [`depth_check`] marked, as a failed handshake (502).
pub(crate) fn check_chain_depth(digest: Option<&pingora_core::protocols::Digest>) -> pingora_error::Result<()> {
    use pingora_error::{Error, ErrorSource, ErrorType};
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(pair: &CertKey) -> (String, String) {
        let cert = String::from_utf8(pair.chain[0].to_pem().unwrap()).unwrap();
        let key = String::from_utf8(pair.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        (cert, key)
    }

    fn entry(pair: &CertKey, snis: &[&str]) -> CertificateConfig {
        let (cert, key) = pem(pair);
        CertificateConfig {
            cert: Some(cert),
            key: Some(key),
            snis: snis.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn names_are_chosen_as_kong_chooses_them() {
        let (a, b, c) =
            (CertKey::self_signed().unwrap(), CertKey::self_signed().unwrap(), CertKey::self_signed().unwrap());
        let mut errors = ConfigErrors::default();
        let certs = Certificates::build(
            &[entry(&a, &["api.example.com"]), entry(&b, &["*.example.com"]), entry(&c, &["example.*"])],
            &[],
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors}");
        let serial = |sni: &str| certs.lookup(sni).map(|p| p[0].chain[0].serial_number().to_bn().unwrap());
        let of = |pair: &CertKey| Some(pair.chain[0].serial_number().to_bn().unwrap());
        assert_eq!(serial("API.example.com"), of(&a), "exact, any case");
        assert_eq!(serial("www.example.com"), of(&b), "leading wildcard");
        assert_eq!(serial("example.org"), of(&c), "trailing wildcard");
        assert_eq!(serial("a.b.example.com"), None, "a wildcard covers one label");
        assert_eq!(serial("other.test"), None, "the default then");
    }

    #[test]
    fn bad_certificates_are_refused_with_the_field_named() {
        let (a, b) = (CertKey::self_signed().unwrap(), CertKey::self_signed().unwrap());
        let mut mismatched = entry(&a, &["x.test"]);
        mismatched.key = entry(&b, &[]).key;
        let mut broken = entry(&a, &["y.test"]);
        broken.cert = Some("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n".into());
        let mut errors = ConfigErrors::default();
        Certificates::build(
            &[mismatched, broken, entry(&a, &["z.test"]), entry(&b, &["Z.test", "*"])],
            &[],
            &mut errors,
        );
        let text = errors.to_string();
        assert!(text.contains("certificates[0]: cert: the key does not belong to the certificate"), "{text}");
        assert!(text.contains("certificates[1]: cert: not a PEM certificate"), "{text}");
        assert!(text.contains("certificates[3]: snis[0]: \"Z.test\" is claimed by another certificate"), "{text}");
        assert!(text.contains("certificates[3]: snis[1]: \"*\" is not a server name"), "{text}");
    }
}
