//! JSON Web Tokens made in the test, with keys generated in the test (OpenSSL), for every
//! algorithm the jwt plugin verifies.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};

/// What signs a token: an HS secret or a private key.
pub enum SigningKey {
    Secret(Vec<u8>),
    Private(PKey<Private>),
}

impl SigningKey {
    /// A fresh key for `alg` (HS: a random secret).
    pub fn generate(alg: &str) -> SigningKey {
        let ec = |nid| PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap()).unwrap();
        let key = match alg {
            a if a.starts_with("HS") => return SigningKey::Secret(uuid::Uuid::new_v4().simple().to_string().into()),
            a if a.starts_with("RS") || a.starts_with("PS") => PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap(),
            "ES256" => ec(Nid::X9_62_PRIME256V1),
            "ES384" => ec(Nid::SECP384R1),
            "ES512" => ec(Nid::SECP521R1),
            "EdDSA" => PKey::generate_ed25519().unwrap(),
            other => panic!("no key type for {other}"),
        };
        SigningKey::Private(key)
    }

    /// The `jwt_secrets` fields for this key: `secret = "..."` or `rsa_public_key = """..."""`.
    pub fn credential_fields(&self) -> String {
        match self {
            SigningKey::Secret(s) => format!("secret = {:?}", String::from_utf8_lossy(s)),
            SigningKey::Private(k) => format!("rsa_public_key = '''\n{}'''", self::public_pem(k)),
        }
    }
}

/// The PEM public key of a private key.
pub fn public_pem(key: &PKey<Private>) -> String {
    String::from_utf8(key.public_key_to_pem().unwrap()).unwrap()
}

fn digest(alg: &str) -> MessageDigest {
    match &alg[2..] {
        "384" => MessageDigest::sha384(),
        "512" => MessageDigest::sha512(),
        _ => MessageDigest::sha256(),
    }
}

/// `header.claims.signature` for `alg`, with `header` fields beside `alg` and `typ`.
pub fn token_with_header(alg: &str, key: &SigningKey, header: serde_json::Value, claims: serde_json::Value) -> String {
    let mut h = serde_json::json!({"alg": alg, "typ": "JWT"});
    h.as_object_mut().unwrap().extend(header.as_object().cloned().unwrap_or_default());
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(h.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = sign(alg, key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A token for `alg` with these claims.
pub fn token(alg: &str, key: &SigningKey, claims: serde_json::Value) -> String {
    token_with_header(alg, key, serde_json::json!({}), claims)
}

fn sign(alg: &str, key: &SigningKey, input: &[u8]) -> Vec<u8> {
    match (key, &alg[..2]) {
        (SigningKey::Secret(s), "HS") => {
            Signer::new(digest(alg), &PKey::hmac(s).unwrap()).unwrap().sign_oneshot_to_vec(input).unwrap()
        }
        (SigningKey::Private(k), "RS") => Signer::new(digest(alg), k).unwrap().sign_oneshot_to_vec(input).unwrap(),
        (SigningKey::Private(k), "PS") => {
            let mut s = Signer::new(digest(alg), k).unwrap();
            s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
            s.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
            s.set_rsa_mgf1_md(digest(alg)).unwrap();
            s.sign_oneshot_to_vec(input).unwrap()
        }
        (SigningKey::Private(k), "ES") => {
            let half = match alg {
                "ES384" => 48,
                "ES512" => 66,
                _ => 32,
            };
            let sig = EcdsaSig::sign(&hash(digest(alg), input).unwrap(), &k.ec_key().unwrap()).unwrap();
            let mut raw = sig.r().to_vec_padded(half).unwrap();
            raw.extend(sig.s().to_vec_padded(half).unwrap());
            raw
        }
        (SigningKey::Private(k), "Ed") => Signer::new_without_digest(k).unwrap().sign_oneshot_to_vec(input).unwrap(),
        _ => panic!("{alg} cannot sign with this key"),
    }
}

/// Seconds since the Unix epoch, plus `offset`.
pub fn now_plus(offset: i64) -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    now + offset
}
