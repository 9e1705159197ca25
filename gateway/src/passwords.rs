//! Basic-auth passwords at rest: argon2id hashes (RFC 9106, OWASP's parameters: 19 MiB, two
//! passes, one lane) in PHC strings, made on every path into the store, since the configuration
//! model hashes a password as it is read. Verification is constant-time, and each credential
//! remembers its last success (as a keyed digest), so a client that sends the right password
//! again costs one SHA-256, not a 19 MiB hash.

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::OnceLock;
use subtle::ConstantTimeEq;

/// How a stored hash begins.
const PREFIX: &str = "$argon2id$";

/// Hashes `password` with a random salt.
pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no random salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// The stored form of a credential's password: kept when it is already an argon2id hash,
/// otherwise hashed. Hashes made in this process are remembered per user name and password, so
/// that reloading a file with plain passwords does not hash them again.
pub(crate) fn to_stored(username: &str, password: &str) -> Result<String, String> {
    if password.starts_with(PREFIX) {
        let parsed = PasswordHash::new(password).map_err(|e| e.to_string()).and_then(|h| {
            let complete = h.salt.is_some() && h.hash.is_some();
            argon2::Params::try_from(&h)
                .map_err(|e| e.to_string())
                .and_then(|_| if complete { Ok(()) } else { Err("no salt or no hash".into()) })
        });
        parsed.map_err(|e| {
            format!("not a valid argon2id hash ({e}); give the password itself or a hash from `wasmgate password-hash`")
        })?;
        return Ok(password.to_string());
    }
    if password.is_empty() {
        return Err("must not be empty".into());
    }
    static MADE: OnceLock<Mutex<HashMap<[u8; 32], String>>> = OnceLock::new();
    let key = keyed_digest(&[username.as_bytes(), b"\0", password.as_bytes()]);
    let made = MADE.get_or_init(Mutex::default);
    if let Some(stored) = made.lock().get(&key) {
        return Ok(stored.clone());
    }
    let stored = hash(password)?;
    let mut made = made.lock();
    // Bounded: a process that has hashed this many distinct passwords starts afresh.
    if made.len() >= 100_000 {
        made.clear();
    }
    made.insert(key, stored.clone());
    Ok(stored)
}

/// SHA-256 of `parts` under a key made at random for this process: what the caches keep instead
/// of a password.
fn keyed_digest(parts: &[&[u8]]) -> [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS random source");
        key
    });
    let mut h = Sha256::new();
    h.update(key);
    for part in parts {
        h.update(part);
    }
    h.finalize().into()
}

/// A stored hash, ready to verify passwords against.
#[derive(Debug)]
pub struct Verifier {
    hash: String,
    /// The keyed digest of the last password that verified.
    last_success: Mutex<Option<[u8; 32]>>,
}

impl Verifier {
    /// A verifier for a stored hash.
    pub fn new(hash: String) -> Verifier {
        Verifier { hash, last_success: Mutex::new(None) }
    }

    /// Whether `password` is the one hashed; constant-time in the password.
    pub fn verify(&self, password: &str) -> bool {
        let digest = keyed_digest(&[password.as_bytes()]);
        if self.last_success.lock().is_some_and(|last| bool::from(last.ct_eq(&digest))) {
            return true;
        }
        let Ok(parsed) = PasswordHash::new(&self.hash) else { return false };
        let ok = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        if ok {
            *self.last_success.lock() = Some(digest);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_passwords_are_hashed_and_hashes_kept() {
        let stored = to_stored("alice", "s3cret").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert_eq!(to_stored("alice", &stored).unwrap(), stored, "a hash is kept as it is");
        assert_eq!(to_stored("alice", "s3cret").unwrap(), stored, "the same password is not hashed twice");
        assert_ne!(to_stored("bob", "s3cret").unwrap(), stored, "another user's hash has its own salt");
        assert_ne!(hash("s3cret").unwrap(), hash("s3cret").unwrap(), "salts are random");
        let broken = to_stored("alice", "$argon2id$v=19$nonsense").unwrap_err();
        assert!(broken.contains("wasmgate password-hash"), "{broken}");
        assert_eq!(to_stored("alice", "").unwrap_err(), "must not be empty");
    }

    #[test]
    fn verification_checks_the_password_and_remembers_only_a_success() {
        let v = Verifier::new(hash("s3cret").unwrap());
        assert!(!v.verify("wrong"));
        assert!(v.last_success.lock().is_none(), "a failure is not remembered");
        assert!(v.verify("s3cret"));
        assert!(v.last_success.lock().is_some());
        assert!(v.verify("s3cret"), "from the cache");
        assert!(!v.verify("s3cret "), "a near miss is not the cached success");
        assert!(!Verifier::new("sha256:abc".into()).verify("abc"), "an unknown hash format never verifies");
    }
}
