//! Consumers, their credentials and ACL groups, indexed for O(1) look-up by id, username, custom_id
//! and credential key.

use crate::config::{ConfigErrors, ConsumerConfig};
use crate::passwords::Verifier;
use crate::signatures::{Check, HmacKey, JwtKey};
use std::collections::HashMap;

/// Credential kind of key-auth keys.
pub(crate) const KEY_AUTH: &str = "key-auth";

/// An API client.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Consumer {
    /// UUID.
    pub(crate) id: String,
    /// Unique user name.
    pub(crate) username: Option<String>,
    /// Unique id from another system.
    pub(crate) custom_id: Option<String>,
    /// Labels.
    pub(crate) tags: Vec<String>,
    /// ACL groups.
    pub(crate) groups: Vec<String>,
}

/// A credential: which consumer it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Credential {
    /// UUID of the credential.
    pub(crate) id: String,
    /// Index of its consumer.
    pub(crate) consumer: usize,
}

/// Where a credential with a signing key sits in the configuration, and its unique key.
struct Signed<'a> {
    /// `jwt_secrets` or `hmacauth_credentials`.
    table: &'static str,
    position: usize,
    /// The field that must be unique (`key`, `username`), and its value.
    key_field: &'static str,
    key: &'a str,
}

/// Indexes a credential whose key was parsed (`parsed`), or says what is wrong with it.
fn index_signed<K>(
    map: &mut HashMap<String, (Credential, K)>,
    at: Signed<'_>,
    explicit_id: Option<&str>,
    parsed: Result<K, (&'static str, String)>,
    consumer: usize,
    label: &str,
    errors: &mut ConfigErrors,
) {
    let place = |field: &str| format!("{label}: {}[{}].{field}", at.table, at.position);
    let kind = at.table.trim_end_matches('s');
    let entry = crate::ids::entity_id(kind, explicit_id, at.key)
        .map_err(|e| (place("id"), e))
        .and_then(|id| parsed.map(|k| (id, k)).map_err(|(f, e)| (place(f), e)));
    match entry {
        Ok((id, key)) => {
            if map.insert(at.key.to_string(), (Credential { id, consumer }, key)).is_some() {
                errors.push(format!("{}: {:?} is already in use; it must be unique", place(at.key_field), at.key));
            }
        }
        Err((place, e)) => errors.push(format!("{place}: {e}")),
    }
}

/// The consumer index of one configuration version.
#[derive(Debug, Default)]
pub(crate) struct Consumers {
    list: Vec<Consumer>,
    by_id: HashMap<String, usize>,
    by_username: HashMap<String, usize>,
    by_custom_id: HashMap<String, usize>,
    credentials: HashMap<&'static str, HashMap<String, Credential>>,
    /// Basic-auth credentials by user name, with their password hashes.
    basic_auth: HashMap<String, (Credential, Verifier)>,
    /// JWT credentials by key, with their parsed secrets or public keys.
    jwt: HashMap<String, (Credential, JwtKey)>,
    /// HMAC credentials by user name, with their secrets.
    hmac: HashMap<String, (Credential, HmacKey)>,
}

impl Consumers {
    /// Indexes the configured consumers; duplicates are errors.
    pub(crate) fn build(configs: &[ConsumerConfig], errors: &mut ConfigErrors) -> Consumers {
        let mut c = Consumers::default();
        for (i, cfg) in configs.iter().enumerate() {
            let label = match (&cfg.username, &cfg.custom_id) {
                (Some(u), _) => format!("consumer {u:?}"),
                (None, Some(id)) => format!("consumer with custom_id {id:?}"),
                (None, None) => {
                    errors.push(format!("consumers[{i}]: set `username` or `custom_id` (at least one is required)"));
                    continue;
                }
            };
            let id = match crate::ids::consumer_id(cfg) {
                Ok(id) => id,
                Err(e) => {
                    errors.push(format!("{label}: id: {e}"));
                    continue;
                }
            };
            let index = c.list.len();
            for (map, value, field) in [
                (&mut c.by_id, Some(&id), "id"),
                (&mut c.by_username, cfg.username.as_ref(), "username"),
                (&mut c.by_custom_id, cfg.custom_id.as_ref(), "custom_id"),
            ] {
                if let Some(v) = value
                    && map.insert(v.clone(), index).is_some()
                {
                    errors.push(format!("{label}: {field}: {v:?} is used by another consumer; it must be unique"));
                }
            }
            for (k, cred) in cfg.keyauth_credentials.iter().enumerate() {
                if cred.key.is_empty() {
                    errors.push(format!("{label}: keyauth_credentials[{k}].key: must not be empty"));
                    continue;
                }
                let cred_id = match crate::ids::keyauth_id(cred, &id, k) {
                    Ok(id) => id,
                    Err(e) => {
                        errors.push(format!("{label}: keyauth_credentials[{k}].id: {e}"));
                        continue;
                    }
                };
                let entry = Credential { id: cred_id, consumer: index };
                if c.credentials.entry(KEY_AUTH).or_default().insert(cred.key.clone(), entry).is_some() {
                    errors.push(format!(
                        "{label}: keyauth_credentials[{k}].key: this key is already in use; keys must be unique"
                    ));
                }
            }
            for (b, cred) in cfg.basicauth_credentials.iter().enumerate() {
                let cred_id = match crate::ids::entity_id("basicauth_credential", cred.id.as_deref(), &cred.username) {
                    Ok(id) => id,
                    Err(e) => {
                        errors.push(format!("{label}: basicauth_credentials[{b}].id: {e}"));
                        continue;
                    }
                };
                let entry = (Credential { id: cred_id, consumer: index }, Verifier::new(cred.password.clone()));
                if c.basic_auth.insert(cred.username.clone(), entry).is_some() {
                    errors.push(format!(
                        "{label}: basicauth_credentials[{b}].username: {:?} is already in use; user names must be unique",
                        cred.username
                    ));
                }
            }
            for (j, cred) in cfg.jwt_secrets.iter().enumerate() {
                let field = Signed { table: "jwt_secrets", position: j, key_field: "key", key: &cred.key };
                let parsed = JwtKey::new(cred);
                index_signed(&mut c.jwt, field, cred.id.as_deref(), parsed, index, &label, errors);
            }
            for (h, cred) in cfg.hmacauth_credentials.iter().enumerate() {
                let field =
                    Signed { table: "hmacauth_credentials", position: h, key_field: "username", key: &cred.username };
                let parsed = HmacKey::new(cred);
                index_signed(&mut c.hmac, field, cred.id.as_deref(), parsed, index, &label, errors);
            }
            let mut groups: Vec<String> = Vec::new();
            for (g, acl) in cfg.acls.iter().enumerate() {
                if acl.group.trim().is_empty() {
                    errors.push(format!("{label}: acls[{g}].group: must not be empty"));
                } else if !groups.contains(&acl.group) {
                    groups.push(acl.group.clone());
                }
            }
            c.list.push(Consumer {
                id,
                username: cfg.username.clone(),
                custom_id: cfg.custom_id.clone(),
                tags: cfg.tags.clone(),
                groups,
            });
        }
        c
    }

    /// A consumer by index.
    pub(crate) fn get(&self, index: usize) -> &Consumer {
        &self.list[index]
    }

    /// Finds a consumer by id, then by username (as Kong's `anonymous` setting does).
    pub(crate) fn find(&self, id_or_username: &str) -> Option<usize> {
        self.by_id.get(id_or_username).or_else(|| self.by_username.get(id_or_username)).copied()
    }

    /// The basic-auth credential of `username`, if `password` is its password.
    pub(crate) fn verify_password(&self, username: &str, password: &str) -> Option<&Credential> {
        let (credential, verifier) = self.basic_auth.get(username)?;
        verifier.verify(password).then_some(credential)
    }

    /// Checks a JWS signature with the jwt credential whose key is `key`: `None` when there is none.
    pub(crate) fn verify_jwt(
        &self,
        key: &str,
        alg: &str,
        input: &[u8],
        signature: &[u8],
        secret_is_base64: bool,
    ) -> Option<(&Credential, Check)> {
        let (credential, jwt) = self.jwt.get(key)?;
        Some((credential, jwt.verify(alg, input, signature, secret_is_base64)))
    }

    /// Checks an HMAC signature with the hmac-auth credential of `username`: `None` when there is
    /// none.
    pub(crate) fn verify_hmac(
        &self,
        username: &str,
        algorithm: &str,
        text: &[u8],
        signature: &[u8],
    ) -> Option<(&Credential, Check)> {
        let (credential, key) = self.hmac.get(username)?;
        Some((credential, key.verify(algorithm, text, signature)))
    }

    /// Finds a credential of `kind` by its key (`key-auth`, `jwt`) or user name (`basic-auth`,
    /// `hmac-auth`).
    pub(crate) fn credential(&self, kind: &str, key: &str) -> Option<&Credential> {
        match kind {
            "basic-auth" => self.basic_auth.get(key).map(|(c, _)| c),
            "jwt" => self.jwt.get(key).map(|(c, _)| c),
            "hmac-auth" => self.hmac.get(key).map(|(c, _)| c),
            _ => self.credentials.get(kind)?.get(key),
        }
    }
}
