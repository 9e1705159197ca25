//! What every authentication plugin does once it knows the consumer (Kong's `set_consumer`).

use crate::bindings::wasmgate::plugin::{consumers, request};
use crate::{Consumer, Credential};

/// Marks the request as authenticated and tells the upstream who the consumer is:
/// `X-Consumer-ID`, `X-Consumer-Custom-ID`, `X-Consumer-Username`, `X-Credential-Identifier`, and
/// `X-Anonymous-Consumer: true` for the anonymous fallback. Headers a client may have sent under
/// these names are replaced or removed, so they cannot be spoofed.
pub fn set_consumer(consumer: &Consumer, credential: Option<&Credential>, anonymous: bool) -> Result<(), String> {
    consumers::authenticate(Some(&consumer.id), credential.map(|c| c.id.as_str()))?;
    request::set_header("x-consumer-id", &consumer.id);
    set_or_clear("x-consumer-custom-id", consumer.custom_id.as_deref());
    set_or_clear("x-consumer-username", consumer.username.as_deref());
    set_or_clear("x-credential-identifier", credential.map(|c| c.id.as_str()));
    set_or_clear("x-anonymous-consumer", anonymous.then_some("true"));
    Ok(())
}

fn set_or_clear(name: &str, value: Option<&str>) {
    match value {
        Some(v) => request::set_header(name, v),
        None => request::remove_header(name),
    }
}
