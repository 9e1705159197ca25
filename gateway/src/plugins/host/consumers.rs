//! `wasmgate:plugin/consumers`: consumer and credential look-up (O(1) indexes of the snapshot) and
//! marking the request authenticated (with Kong's `X-Consumer-*` headers upstream).

use super::HostState;
use super::wasmgate::plugin::consumers::Host;
use super::wasmgate::plugin::context::Host as ContextHost;
use super::wasmgate::plugin::types::{Consumer, Credential, JwtCheck, SignatureCheck};
use crate::signatures::Check;

fn to_wit(c: &crate::consumers::Consumer) -> Consumer {
    Consumer { id: c.id.clone(), username: c.username.clone(), custom_id: c.custom_id.clone(), tags: c.tags.clone() }
}

/// A signature check's outcome for the plugin: the credential when it verified.
fn signature_check(
    consumers: &crate::consumers::Consumers,
    found: Option<(&crate::consumers::Credential, Check)>,
) -> SignatureCheck {
    match found {
        None => SignatureCheck::UnknownCredential,
        Some((_, Check::WrongAlgorithm)) => SignatureCheck::WrongAlgorithm,
        Some((_, Check::NoKey)) => SignatureCheck::NoKey,
        Some((_, Check::Mismatch)) => SignatureCheck::Mismatch,
        Some((cred, Check::Verified)) => SignatureCheck::Verified(Credential {
            id: cred.id.clone(),
            consumer_id: consumers.get(cred.consumer).id.clone(),
        }),
    }
}

impl Host for HostState {
    fn find(&mut self, id_or_username: String) -> Option<Consumer> {
        let consumers = &self.entities()?.consumers;
        consumers.find(&id_or_username).map(|i| to_wit(consumers.get(i)))
    }

    fn find_credential(&mut self, kind: String, key: String) -> Option<Credential> {
        let consumers = &self.entities()?.consumers;
        let cred = consumers.credential(&kind, &key)?;
        Some(Credential { id: cred.id.clone(), consumer_id: consumers.get(cred.consumer).id.clone() })
    }

    fn groups(&mut self, consumer_id: String) -> Vec<String> {
        let Some(consumers) = self.entities().map(|e| &e.consumers) else { return Vec::new() };
        consumers.find(&consumer_id).map(|i| consumers.get(i).groups.clone()).unwrap_or_default()
    }

    fn authenticate(&mut self, consumer_id: Option<String>, credential_id: Option<String>) -> Result<(), String> {
        let consumer = match consumer_id {
            None => None,
            Some(id) => {
                let consumers = &self.entities().ok_or("no configuration")?.consumers;
                Some(consumers.find(&id).ok_or_else(|| format!("no consumer with id or username {id:?}"))?)
            }
        };
        self.call.state.authenticate(consumer, credential_id);
        Ok(())
    }

    fn set_consumer(
        &mut self,
        consumer_id: String,
        credential_id: Option<String>,
        anonymous: bool,
    ) -> Result<(), String> {
        self.authenticate(Some(consumer_id), credential_id)?;
        let consumer = self.call.state.consumer().ok_or("no configuration")?;
        self.identify_upstream(consumer, anonymous, None);
        Ok(())
    }

    fn set_consumer_by_key(&mut self, kind: String, key: String) -> Result<bool, String> {
        let entities = self.entities().ok_or("no configuration")?;
        let Some(credential) = entities.consumers.credential(&kind, &key) else { return Ok(false) };
        let (consumer, id) = (credential.consumer, credential.id.clone());
        self.set_credential(consumer, id);
        Ok(true)
    }

    fn set_consumer_by_password(&mut self, username: String, password: String) -> Result<bool, String> {
        let started = std::time::Instant::now();
        let entities = self.entities().ok_or("no configuration")?;
        let verified = entities.consumers.verify_password(&username, &password).map(|c| (c.consumer, c.id.clone()));
        // The argon2 hash is the gateway's work, not the plugin's: it does not count against
        // the call's CPU deadline.
        self.usage.credit(started.elapsed());
        let Some((consumer, id)) = verified else { return Ok(false) };
        self.set_credential(consumer, id);
        Ok(true)
    }

    fn verify_jwt(
        &mut self,
        key: String,
        algorithm: String,
        signing_input: String,
        signature: Vec<u8>,
        secret_is_base64: bool,
    ) -> SignatureCheck {
        let Some(consumers) = self.entities().map(|e| &e.consumers) else {
            return SignatureCheck::UnknownCredential;
        };
        let found = consumers.verify_jwt(&key, &algorithm, signing_input.as_bytes(), &signature, secret_is_base64);
        signature_check(consumers, found)
    }

    fn set_consumer_by_jwt(
        &mut self,
        key: String,
        algorithm: String,
        token: String,
        secret_is_base64: bool,
    ) -> JwtCheck {
        let Some(consumers) = self.entities().map(|e| &e.consumers) else { return JwtCheck::UnknownCredential };
        let Some((signed, signature)) = crate::signatures::jws_parts(&token) else { return JwtCheck::Mismatch };
        let (consumer, id) = match consumers.verify_jwt(&key, &algorithm, signed, &signature, secret_is_base64) {
            None => return JwtCheck::UnknownCredential,
            Some((_, Check::WrongAlgorithm)) => return JwtCheck::WrongAlgorithm,
            Some((_, Check::NoKey)) => return JwtCheck::NoKey,
            Some((_, Check::Mismatch)) => return JwtCheck::Mismatch,
            Some((cred, Check::Verified)) => (cred.consumer, cred.id.clone()),
        };
        self.call.state.authenticate(Some(consumer), Some(id));
        self.identify_upstream(consumer, false, Some(&key));
        ContextHost::shared_set(self, "authenticated_jwt_token".into(), Some(token));
        JwtCheck::Authenticated
    }

    fn verify_hmac(
        &mut self,
        username: String,
        algorithm: String,
        signing_string: String,
        signature: Vec<u8>,
    ) -> SignatureCheck {
        let Some(consumers) = self.entities().map(|e| &e.consumers) else {
            return SignatureCheck::UnknownCredential;
        };
        let found = consumers.verify_hmac(&username, &algorithm, signing_string.as_bytes(), &signature);
        signature_check(consumers, found)
    }

    fn authenticated(&mut self) -> Option<Consumer> {
        let index = self.call.state.consumer()?;
        Some(to_wit(self.entities()?.consumers.get(index)))
    }

    fn authenticated_groups(&mut self) -> Option<Vec<String>> {
        let index = self.call.state.consumer()?;
        Some(self.entities()?.consumers.get(index).groups.clone())
    }

    fn authenticated_credential(&mut self) -> Option<Credential> {
        let id = self.call.state.credential().map(str::to_string)?;
        let consumer = self.call.state.consumer()?;
        Some(Credential { id, consumer_id: self.entities()?.consumers.get(consumer).id.clone() })
    }
}

impl HostState {
    /// Authenticates the request as consumer `consumer` with credential `id`, and tells the
    /// upstream (what `set-consumer-by-key` and `set-consumer-by-password` do once found).
    fn set_credential(&mut self, consumer: usize, id: String) {
        self.call.state.authenticate(Some(consumer), Some(id));
        self.identify_upstream(consumer, false, None);
    }

    /// Tells the upstream who consumer `index` is (Kong's `set_consumer` headers), replacing or
    /// removing what the client sent under those names. `X-Credential-Identifier` is
    /// `identifier`, else the credential's id.
    fn identify_upstream(&mut self, index: usize, anonymous: bool, identifier: Option<&str>) {
        let super::Call { req, state, .. } = &mut self.call;
        let Some(entities) = state.entities() else { return };
        let c = entities.consumers.get(index);
        let identity = [
            ("x-consumer-id", Some(c.id.as_str())),
            ("x-consumer-custom-id", c.custom_id.as_deref()),
            ("x-consumer-username", c.username.as_deref()),
            ("x-credential-identifier", identifier.or(state.credential())),
            ("x-anonymous-consumer", anonymous.then_some("true")),
        ];
        let mut refused = Vec::new();
        for (name, value) in identity {
            let written = match value {
                Some(v) => req.insert_header(name, v),
                None => {
                    req.remove_header(name);
                    Ok(())
                }
            };
            if let Err(e) = written {
                refused.push((name, e));
            }
        }
        for (name, e) in refused {
            super::headers::rejected(self, name, e);
        }
    }
}
