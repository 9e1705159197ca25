//! Entity ids: UUIDs, given in the config or derived from the entity's natural key so that they
//! stay the same across reloads and restarts. The snapshot and the Admin API's view of a
//! declarative configuration both derive them here, so they always agree.

use crate::config::PluginEntry;
use crate::config::{ConsumerConfig, RouteConfig, ServiceConfig};
use uuid::Uuid;

const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a8e_53d4_4b7a_9c1e_0d5b_7e2f_a341);

/// The entity's id: `explicit` when given (it must be a UUID), else a UUIDv5 of `kind` and `key`.
pub(crate) fn entity_id(kind: &str, explicit: Option<&str>, key: &str) -> Result<String, String> {
    match explicit {
        Some(id) => Uuid::parse_str(id)
            .map(|u| u.to_string())
            .map_err(|_| format!("{id:?} is not a UUID; leave `id` out to have one derived from the name")),
        None => Ok(Uuid::new_v5(&NAMESPACE, format!("{kind}:{key}").as_bytes()).to_string()),
    }
}

/// A service's id; `host` is its host after `url` is expanded.
pub(crate) fn service_id(s: &ServiceConfig, host: &str) -> Result<String, String> {
    entity_id("service", s.id.as_deref(), s.name.as_deref().unwrap_or(host))
}

/// A route's id; `position` is its place among all routes (nested ones first, in service order).
pub(crate) fn route_id(r: &RouteConfig, position: usize) -> Result<String, String> {
    let key = r.name.clone().unwrap_or_else(|| format!("#{position}"));
    entity_id("route", r.id.as_deref(), &key)
}

/// A consumer's id, from its username or custom_id.
pub(crate) fn consumer_id(c: &ConsumerConfig) -> Result<String, String> {
    let key = c.username.as_deref().or(c.custom_id.as_deref()).unwrap_or_default();
    entity_id("consumer", c.id.as_deref(), key)
}

/// A plugin instance's id, from its name and scope.
pub(crate) fn plugin_id(e: &PluginEntry) -> Result<String, String> {
    let key = format!("{}:{:?}:{:?}:{:?}", e.name, e.route, e.service, e.consumer);
    entity_id("plugin", e.id.as_deref(), &key)
}

/// An upstream's id, from its name.
pub(crate) fn upstream_id(u: &crate::config::UpstreamConfig) -> Result<String, String> {
    entity_id("upstream", u.id.as_deref(), &u.name)
}

/// A key-auth credential's id, from its consumer's id and its place among that consumer's keys:
/// never from the key, since the id is sent upstream (`X-Credential-Identifier`) and logged, and
/// a short key could be found from it offline.
pub(crate) fn keyauth_id(
    c: &crate::config::KeyAuthCredential,
    consumer_id: &str,
    position: usize,
) -> Result<String, String> {
    entity_id("keyauth_credential", c.id.as_deref(), &format!("{consumer_id}#{position}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_auth_id_says_nothing_about_the_key() {
        let key = |k: &str| crate::config::KeyAuthCredential { id: None, key: k.into(), tags: Vec::new() };
        let consumer = "8d2b7c7e-4f4e-4b8e-9a55-3a1d2c3b4a01";
        let (a, b) = (keyauth_id(&key("k1"), consumer, 0).unwrap(), keyauth_id(&key("k2"), consumer, 0).unwrap());
        assert_eq!(a, b, "the same place, another key: the same id");
        assert_ne!(a, keyauth_id(&key("k1"), consumer, 1).unwrap());
        assert_ne!(a, entity_id("keyauth_credential", None, "k1").unwrap(), "not the key's UUIDv5");
    }
}
