//! What every authentication plugin does once it knows the consumer (Kong's `set_consumer`).

use crate::bindings::wasmgate::plugin::consumers;
use crate::{Action, Credential};

/// Marks the request as authenticated as `consumer` (an id or username) and tells the upstream who
/// the consumer is: `X-Consumer-ID`, `X-Consumer-Custom-ID`, `X-Consumer-Username`,
/// `X-Credential-Identifier`, and `X-Anonymous-Consumer: true` for the anonymous fallback. Headers
/// a client may have sent under these names are replaced or removed, so they cannot be spoofed.
/// One host call does all of it.
pub fn set_consumer(consumer: &str, credential: Option<&Credential>, anonymous: bool) -> Result<(), String> {
    consumers::set_consumer(consumer, credential.map(|c| c.id.as_str()), anonymous)
}

/// Finds the credential of `kind` (e.g. `"key-auth"`) whose key is `key` and does what
/// [`set_consumer`] does for its consumer, in one host call. `Ok(false)`, with nothing set, when
/// no credential has that key.
pub fn set_consumer_by_key(kind: &str, key: &str) -> Result<bool, String> {
    consumers::set_consumer_by_key(kind, key)
}

/// Checks a basic-auth `username` and `password` against the stored argon2id hash (in constant
/// time; a repeat of the last success is cheap) and does what [`set_consumer`] does for its
/// consumer, in one host call. `Ok(false)`, with nothing set, for an unknown user or a wrong
/// password.
pub fn set_consumer_by_password(username: &str, password: &str) -> Result<bool, String> {
    consumers::set_consumer_by_password(username, password)
}

/// Kong's authentication flow around one attempt, for an auth plugin's access phase.
///
/// Without `anonymous` (auth plugins combine as AND) a failed attempt's answer is returned. With
/// it (OR): a request another auth plugin already authenticated is let through untouched, and a
/// failed attempt falls back to the anonymous consumer (`X-Anonymous-Consumer: true`).
pub fn authenticate_or_anonymous(
    anonymous: Option<&str>,
    attempt: impl FnOnce() -> Result<(), Action>,
) -> Result<Action, String> {
    if anonymous.is_some() && consumers::authenticated_credential().is_some() {
        return Ok(Action::Proceed);
    }
    match (attempt(), anonymous) {
        (Ok(()), _) => Ok(Action::Proceed),
        (Err(_), Some(anonymous)) => {
            set_consumer(anonymous, None, true)?;
            Ok(Action::Proceed)
        }
        (Err(answer), None) => Ok(answer),
    }
}

/// Checks, in `configure`, that an `anonymous` setting names a consumer (by id or username).
pub fn check_anonymous(anonymous: Option<&str>) -> Result<(), String> {
    match anonymous {
        Some(anon) if consumers::find(anon).is_none() => {
            Err(format!("config.anonymous: no consumer with id or username {anon:?}"))
        }
        _ => Ok(()),
    }
}
