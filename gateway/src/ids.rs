//! Entity ids: UUIDs, given in the config or derived from the entity's name so that they stay the
//! same across reloads and restarts.

use uuid::Uuid;

const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a8e_53d4_4b7a_9c1e_0d5b_7e2f_a341);

/// The entity's id: `explicit` when given (it must be a UUID), else a UUIDv5 of `kind` and `key`.
pub fn entity_id(kind: &str, explicit: Option<&str>, key: &str) -> Result<String, String> {
    match explicit {
        Some(id) => Uuid::parse_str(id)
            .map(|u| u.to_string())
            .map_err(|_| format!("{id:?} is not a UUID; leave `id` out to have one derived from the name")),
        None => Ok(Uuid::new_v5(&NAMESPACE, format!("{kind}:{key}").as_bytes()).to_string()),
    }
}
