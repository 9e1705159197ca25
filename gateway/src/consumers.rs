//! Consumers, their credentials and ACL groups, indexed for O(1) look-up by id, username, custom_id
//! and credential key.

use crate::config::{ConfigErrors, ConsumerConfig};
use crate::passwords::Verifier;
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

    /// Finds a credential of `kind` by its key.
    pub(crate) fn credential(&self, kind: &str, key: &str) -> Option<&Credential> {
        self.credentials.get(kind)?.get(key)
    }
}
