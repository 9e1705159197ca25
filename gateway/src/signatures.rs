//! Checking signatures with consumers' credentials: JWT (JWS) secrets and public keys for the jwt
//! plugin, HMAC secrets for hmac-auth. Keys are parsed once, when a configuration is built, and
//! the crypto is OpenSSL's (what Pingora's TLS already links) for public keys and RustCrypto's
//! `hmac` for the MACs (a tenth of the cost of an OpenSSL 3 EVP HMAC on short inputs).

use crate::config::{HmacAuthCredential, JwtCredential};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use lru::LruCache;
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use parking_lot::Mutex;
use std::num::NonZeroUsize;

/// What a signature check found (the WIT `signature-check`, before the credential is named).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// The credential is for another algorithm.
    WrongAlgorithm,
    /// The credential has no usable key for it.
    NoKey,
    /// The signature does not match.
    Mismatch,
    /// It matches.
    Verified,
}

/// A JWS algorithm (RFC 7518, and RFC 8037's EdDSA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Jws {
    /// HMAC with SHA-2 (HS256, HS384, HS512).
    Hs(Sha),
    /// RSASSA-PKCS1-v1_5 (RS*).
    Rs(Sha),
    /// ECDSA on P-256, P-384 or P-521 (ES*).
    Es(Sha),
    /// RSASSA-PSS (PS*).
    Ps(Sha),
    /// Ed25519 or Ed448.
    EdDsa,
}

/// A SHA-2 size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sha {
    S256,
    S384,
    S512,
}

impl Sha {
    fn digest(self) -> MessageDigest {
        match self {
            Sha::S256 => MessageDigest::sha256(),
            Sha::S384 => MessageDigest::sha384(),
            Sha::S512 => MessageDigest::sha512(),
        }
    }
}

/// The algorithms a jwt credential may name, as Kong spells them.
pub(crate) const JWT_ALGORITHMS: &str =
    "HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, ES512, PS256, PS384, PS512 or EdDSA";

impl Jws {
    fn parse(name: &str) -> Option<Jws> {
        let sha = |bits: &str| match bits {
            "256" => Some(Sha::S256),
            "384" => Some(Sha::S384),
            "512" => Some(Sha::S512),
            _ => None,
        };
        if name == "EdDSA" {
            return Some(Jws::EdDsa);
        }
        let (family, bits) = name.split_at_checked(2)?;
        let sha = sha(bits)?;
        Some(match family {
            "HS" => Jws::Hs(sha),
            "RS" => Jws::Rs(sha),
            "ES" => Jws::Es(sha),
            "PS" => Jws::Ps(sha),
            _ => return None,
        })
    }
}

/// An HS credential's secret, ready to MAC with: HMAC hashes the key's two padded blocks once,
/// here, and each token then costs only its own blocks.
#[derive(Clone)]
enum HsKey {
    S256(Hmac<sha2::Sha256>),
    S384(Hmac<sha2::Sha384>),
    S512(Hmac<sha2::Sha512>),
}

impl HsKey {
    fn new(sha: Sha, secret: &[u8]) -> HsKey {
        const ANY_LENGTH: &str = "HMAC takes keys of any length";
        match sha {
            Sha::S256 => HsKey::S256(Hmac::new_from_slice(secret).expect(ANY_LENGTH)),
            Sha::S384 => HsKey::S384(Hmac::new_from_slice(secret).expect(ANY_LENGTH)),
            Sha::S512 => HsKey::S512(Hmac::new_from_slice(secret).expect(ANY_LENGTH)),
        }
    }

    /// Whether `signature` is the MAC of `data`, compared in constant time.
    fn matches(&self, data: &[u8], signature: &[u8]) -> bool {
        match self {
            HsKey::S256(mac) => mac_verifies(mac.clone(), data, signature),
            HsKey::S384(mac) => mac_verifies(mac.clone(), data, signature),
            HsKey::S512(mac) => mac_verifies(mac.clone(), data, signature),
        }
    }
}

/// Most asymmetric signatures remembered per credential as verified.
const VERIFIED_MEMORY: usize = 4096;

/// A jwt credential's algorithm and key, ready to verify with.
pub(crate) struct JwtKey {
    name: String,
    algorithm: Jws,
    /// HS: the secret as written, and decoded when it is base64 (for `secret_is_base64`).
    secret: Option<HsKey>,
    secret_decoded: Option<HsKey>,
    /// The others: the public key.
    public: Option<PKey<Public>>,
    /// SHA-256 of (signing input, signature) of tokens that verified: RSA and ECDSA cost tens
    /// of microseconds, and clients send the same token many times.
    verified: Mutex<LruCache<[u8; 32], ()>>,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey").field("algorithm", &self.name).finish_non_exhaustive()
    }
}

impl JwtKey {
    /// Parses a credential's key; errors name the field (`algorithm`, `secret`, `rsa_public_key`).
    pub(crate) fn new(c: &JwtCredential) -> Result<JwtKey, (&'static str, String)> {
        let algorithm = Jws::parse(&c.algorithm)
            .ok_or_else(|| ("algorithm", format!("{:?} is not supported; expected {JWT_ALGORITHMS}", c.algorithm)))?;
        let mut key = JwtKey {
            name: c.algorithm.clone(),
            algorithm,
            secret: None,
            secret_decoded: None,
            public: None,
            verified: Mutex::new(LruCache::new(NonZeroUsize::new(VERIFIED_MEMORY).expect("non-zero"))),
        };
        if let Jws::Hs(sha) = algorithm {
            let secret = c
                .secret
                .as_deref()
                .filter(|s| !s.is_empty())
                .ok_or(("secret", format!("required for {}: the shared secret tokens are signed with", c.algorithm)))?;
            key.secret = Some(HsKey::new(sha, secret.as_bytes()));
            key.secret_decoded = decode_base64(secret).map(|bytes| HsKey::new(sha, &bytes));
            return Ok(key);
        }
        let pem = c.rsa_public_key.as_deref().ok_or((
            "rsa_public_key",
            format!("required for {}: the PEM public key tokens are verified with", c.algorithm),
        ))?;
        let public = public_key(pem).map_err(|e| ("rsa_public_key", e))?;
        let fits = match algorithm {
            Jws::Rs(_) | Jws::Ps(_) => public.id() == Id::RSA,
            Jws::Es(sha) => public.ec_key().ok().and_then(|k| k.group().curve_name()) == Some(curve(sha)),
            Jws::EdDsa => matches!(public.id(), Id::ED25519 | Id::ED448),
            Jws::Hs(_) => unreachable!("handled above"),
        };
        if !fits {
            return Err(("rsa_public_key", format!("this key cannot verify {}; give a key of that type", c.algorithm)));
        }
        key.public = Some(public);
        Ok(key)
    }

    /// Checks `signature` over `input` for a token whose header says `alg`.
    pub(crate) fn verify(&self, alg: &str, input: &[u8], signature: &[u8], secret_is_base64: bool) -> Check {
        if alg != self.name {
            return Check::WrongAlgorithm;
        }
        if let Jws::Hs(_) = self.algorithm {
            let secret = if secret_is_base64 { &self.secret_decoded } else { &self.secret };
            let Some(secret) = secret else { return Check::NoKey };
            return if secret.matches(input, signature) { Check::Verified } else { Check::Mismatch };
        }
        let Some(public) = &self.public else { return Check::NoKey };
        let seen = token_hash(input, signature);
        if self.verified.lock().get(&seen).is_some() {
            return Check::Verified;
        }
        if verify_asymmetric(self.algorithm, public, input, signature).unwrap_or(false) {
            self.verified.lock().put(seen, ());
            Check::Verified
        } else {
            Check::Mismatch
        }
    }
}

/// An hmac-auth credential's secret.
pub(crate) struct HmacKey(Vec<u8>);

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacKey")
    }
}

impl HmacKey {
    /// The credential's secret; an error names `secret`.
    pub(crate) fn new(c: &HmacAuthCredential) -> Result<HmacKey, (&'static str, String)> {
        if c.secret.is_empty() {
            return Err(("secret", "must not be empty".into()));
        }
        Ok(HmacKey(c.secret.as_bytes().to_vec()))
    }

    /// Checks `signature` (the raw MAC) of `text` with `algorithm` (`hmac-sha1`, ...).
    pub(crate) fn verify(&self, algorithm: &str, text: &[u8], signature: &[u8]) -> Check {
        let verified = match algorithm {
            "hmac-sha1" => mac_matches::<sha1::Sha1>(&self.0, text, signature),
            "hmac-sha256" => mac_matches::<sha2::Sha256>(&self.0, text, signature),
            "hmac-sha384" => mac_matches::<sha2::Sha384>(&self.0, text, signature),
            "hmac-sha512" => mac_matches::<sha2::Sha512>(&self.0, text, signature),
            _ => return Check::WrongAlgorithm,
        };
        if verified { Check::Verified } else { Check::Mismatch }
    }
}

/// Whether `signature` is the HMAC of `data` under `key`, compared in constant time.
fn mac_matches<D>(key: &[u8], data: &[u8], signature: &[u8]) -> bool
where
    Hmac<D>: KeyInit + Mac,
    D: hmac::digest::block_api::EagerHash,
{
    mac_verifies(<Hmac<D> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length"), data, signature)
}

/// Whether `signature` is what `mac` makes of `data`, compared in constant time.
fn mac_verifies(mut mac: impl Mac, data: &[u8], signature: &[u8]) -> bool {
    mac.update(data);
    mac.verify_slice(signature).is_ok()
}

/// A JWS's signing input (`header.payload`, as sent) and its signature decoded: `None` without
/// three parts or when the signature part is not base64url (padded or not).
pub(crate) fn jws_parts(token: &str) -> Option<(&[u8], Vec<u8>)> {
    let header = token.find('.')?;
    let signed = header + 1 + token[header + 1..].find('.')?;
    let signature =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token[signed + 1..].trim_end_matches('=')).ok()?;
    Some((&token.as_bytes()[..signed], signature))
}

fn token_hash(input: &[u8], signature: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::new().chain_update(input).chain_update(b".").chain_update(signature).finalize().into()
}

fn curve(sha: Sha) -> Nid {
    match sha {
        Sha::S256 => Nid::X9_62_PRIME256V1,
        Sha::S384 => Nid::SECP384R1,
        Sha::S512 => Nid::SECP521R1,
    }
}

/// A public key from PEM: a public key, an RSA public key, or a certificate's.
fn public_key(pem: &str) -> Result<PKey<Public>, String> {
    let bytes = pem.trim().as_bytes();
    if let Ok(k) = PKey::public_key_from_pem(bytes) {
        return Ok(k);
    }
    if let Ok(rsa) = openssl::rsa::Rsa::public_key_from_pem_pkcs1(bytes) {
        return PKey::from_rsa(rsa).map_err(|e| e.to_string());
    }
    if let Ok(cert) = openssl::x509::X509::from_pem(bytes) {
        return cert.public_key().map_err(|e| e.to_string());
    }
    Err("not a PEM public key (`-----BEGIN PUBLIC KEY-----`) or certificate".into())
}

fn verify_asymmetric(
    alg: Jws,
    key: &PKey<Public>,
    input: &[u8],
    signature: &[u8],
) -> Result<bool, openssl::error::ErrorStack> {
    match alg {
        Jws::Rs(sha) => Verifier::new(sha.digest(), key)?.verify_oneshot(signature, input),
        Jws::Ps(sha) => {
            let mut v = Verifier::new(sha.digest(), key)?;
            v.set_rsa_padding(Padding::PKCS1_PSS)?;
            v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            v.set_rsa_mgf1_md(sha.digest())?;
            v.verify_oneshot(signature, input)
        }
        Jws::Es(sha) => {
            // JWS carries R and S as two fixed-size big-endian halves (RFC 7518 §3.4).
            let half = match sha {
                Sha::S256 => 32,
                Sha::S384 => 48,
                Sha::S512 => 66,
            };
            if signature.len() != 2 * half {
                return Ok(false);
            }
            let (r, s) = signature.split_at(half);
            let sig = EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?;
            let digest = hash(sha.digest(), input)?;
            let ec = key.ec_key()?;
            sig.verify(&digest, &ec)
        }
        Jws::EdDsa => Verifier::new_without_digest(key)?.verify_oneshot(signature, input),
        Jws::Hs(_) => Ok(false),
    }
}

/// Standard or URL-safe base64, padded or not (Kong's `secret_is_base64` accepts either).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(text.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::rsa::Rsa;

    /// The MAC as OpenSSL computes it: what the RustCrypto one must agree with.
    fn openssl_hmac(md: MessageDigest, key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = PKey::hmac(key).unwrap();
        openssl::sign::Signer::new(md, &key).unwrap().sign_oneshot_to_vec(data).unwrap()
    }

    fn credential(algorithm: &str, secret: Option<&str>, public: Option<String>) -> JwtCredential {
        JwtCredential {
            id: None,
            key: "iss".into(),
            secret: secret.map(str::to_string),
            algorithm: algorithm.into(),
            rsa_public_key: public,
            tags: Vec::new(),
        }
    }

    #[test]
    fn hmac_secrets_plain_and_base64() {
        let key = JwtKey::new(&credential("HS256", Some("c2VjcmV0"), None)).unwrap();
        let mac = openssl_hmac(MessageDigest::sha256(), b"c2VjcmV0", b"a.b");
        assert_eq!(key.verify("HS256", b"a.b", &mac, false), Check::Verified);
        assert_eq!(key.verify("HS256", b"a.c", &mac, false), Check::Mismatch);
        assert_eq!(key.verify("HS512", b"a.b", &mac, false), Check::WrongAlgorithm);
        let decoded = openssl_hmac(MessageDigest::sha256(), b"secret", b"a.b");
        assert_eq!(key.verify("HS256", b"a.b", &decoded, true), Check::Verified);
        let not_b64 = JwtKey::new(&credential("HS256", Some("not base64!"), None)).unwrap();
        assert_eq!(not_b64.verify("HS256", b"a.b", &decoded, true), Check::NoKey);
        // The prepared key is used again and again, unchanged by each use.
        assert_eq!(key.verify("HS256", b"a.b", &mac, false), Check::Verified);
        let long = JwtKey::new(&credential("HS512", Some(&"k".repeat(200)), None)).unwrap();
        let mac = openssl_hmac(MessageDigest::sha512(), "k".repeat(200).as_bytes(), b"a.b");
        assert_eq!(long.verify("HS512", b"a.b", &mac, false), Check::Verified, "a key longer than a block");
    }

    #[test]
    fn tokens_split_as_sent() {
        assert_eq!(jws_parts("aGk.e30.c2ln"), Some((&b"aGk.e30"[..], b"sig".to_vec())));
        assert_eq!(jws_parts("aGk.e30.c2lnbg=="), Some((&b"aGk.e30"[..], b"sign".to_vec())), "padded");
        assert_eq!(jws_parts("aGk.e30."), Some((&b"aGk.e30"[..], Vec::new())));
        assert_eq!(jws_parts("aGk.e30"), None);
        assert_eq!(jws_parts("aGk.e30.c2ln.x"), None, "a dot in the signature is not base64url");
        assert_eq!(jws_parts("aGk.e30.c2l+"), None, "base64url only");
    }

    #[test]
    fn asymmetric_keys_are_checked_against_the_algorithm() {
        let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let rsa_pem = String::from_utf8(rsa.public_key_to_pem().unwrap()).unwrap();
        let ec = PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap())
            .unwrap();
        let ec_pem = String::from_utf8(ec.public_key_to_pem().unwrap()).unwrap();
        assert!(JwtKey::new(&credential("RS256", None, Some(rsa_pem.clone()))).is_ok());
        assert_eq!(JwtKey::new(&credential("ES256", None, Some(rsa_pem))).unwrap_err().0, "rsa_public_key");
        assert_eq!(JwtKey::new(&credential("ES384", None, Some(ec_pem.clone()))).unwrap_err().0, "rsa_public_key");
        assert_eq!(JwtKey::new(&credential("RS256", None, None)).unwrap_err().0, "rsa_public_key");
        assert_eq!(JwtKey::new(&credential("HS256", None, None)).unwrap_err().0, "secret");
        assert_eq!(JwtKey::new(&credential("none", None, None)).unwrap_err().0, "algorithm");

        // ES256: the JWS form (R || S) of an OpenSSL signature verifies, and is remembered.
        let key = JwtKey::new(&credential("ES256", None, Some(ec_pem))).unwrap();
        let digest = hash(MessageDigest::sha256(), b"h.p").unwrap();
        let sig = EcdsaSig::sign(&digest, &ec.ec_key().unwrap()).unwrap();
        let mut jws = sig.r().to_vec_padded(32).unwrap();
        jws.extend(sig.s().to_vec_padded(32).unwrap());
        assert_eq!(key.verify("ES256", b"h.p", &jws, false), Check::Verified);
        assert_eq!(key.verified.lock().len(), 1);
        assert_eq!(key.verify("ES256", b"h.q", &jws, false), Check::Mismatch);
        assert_eq!(key.verify("ES256", b"h.p", &jws[1..], false), Check::Mismatch);
    }

    #[test]
    fn hmac_auth_algorithms() {
        let c = HmacAuthCredential { id: None, username: "u".into(), secret: "s".into(), tags: Vec::new() };
        let key = HmacKey::new(&c).unwrap();
        let mac = openssl_hmac(MessageDigest::sha1(), b"s", b"date: x");
        assert_eq!(key.verify("hmac-sha1", b"date: x", &mac), Check::Verified);
        assert_eq!(key.verify("hmac-sha256", b"date: x", &mac), Check::Mismatch);
        assert_eq!(key.verify("hmac-md5", b"date: x", &mac), Check::WrongAlgorithm);
    }
}
