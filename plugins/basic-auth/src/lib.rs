//! basic-auth: authenticates the consumer by HTTP Basic credentials (`Authorization` or
//! `Proxy-Authorization`), as Kong's plugin of the same name does. Passwords are checked by the
//! host against the stored argon2id hash (`set-consumer-by-password`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use schemars::JsonSchema;
use serde::Deserialize;
use wasmgate_plugin_sdk::{
    Action, ConfigNeeds, CredentialPlace, Phases, Plugin, authenticate_or_anonymous, check_anonymous, consumers,
    export_plugin, json_message, redact, request, set_consumer_by_password,
};

/// Configuration of basic-auth.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Consumer (id or username) to fall back to when authentication fails.
    anonymous: Option<String>,
    /// Remove the credentials header before the request goes upstream.
    #[serde(default)]
    hide_credentials: bool,
    /// Realm in the `WWW-Authenticate: Basic realm="..."` header of 401 answers.
    #[serde(default = "default_realm")]
    realm: String,
}

fn default_realm() -> String {
    "service".into()
}

/// The headers credentials are read from, in Kong's order.
const HEADERS: [&str; 2] = ["proxy-authorization", "authorization"];

/// The user name and password in a `Basic` header value.
fn credentials(value: &str) -> Option<(String, String)> {
    let at = value.find("asic").filter(|&i| i > 0 && matches!(&value[i - 1..i], "B" | "b"))?;
    let encoded = value[at + 4..].trim_start();
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim_end()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_string(), password.to_string()))
}

struct BasicAuth;

impl BasicAuth {
    fn authenticate(config: &Config) -> Result<(), ()> {
        let [proxy, plain] = HEADERS.map(|h| request::header(h).as_deref().and_then(credentials));
        if config.hide_credentials {
            HEADERS.iter().for_each(|h| request::remove_header(h));
        }
        // Proxy-Authorization counts when its user exists; else Authorization.
        let proxy_known = proxy.as_ref().is_some_and(|(u, _)| consumers::find_credential("basic-auth", u).is_some());
        let (user, password) = if proxy_known { proxy } else { plain }.ok_or(())?;
        match set_consumer_by_password(&user, &password) {
            Ok(true) => {
                // Kong names a basic-auth credential upstream by its user name.
                request::set_header("x-credential-identifier", &user);
                Ok(())
            }
            _ => Err(()),
        }
    }
}

impl Plugin for BasicAuth {
    type Config = Config;
    const PRIORITY: i32 = 1100;
    const PHASES: Phases = Phases::ACCESS;
    const FAIL_CLOSED: bool = true;
    const NO_CONSUMER: bool = true;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        check_anonymous(config.anonymous.as_deref())?;
        for h in HEADERS {
            redact(&CredentialPlace::Header(h.into()))?;
        }
        Ok(ConfigNeeds { request_body: false })
    }

    fn access(config: &Config) -> Result<Action, String> {
        authenticate_or_anonymous(config.anonymous.as_deref(), || {
            Self::authenticate(config).map_err(|()| {
                let challenge = format!("Basic realm=\"{}\"", config.realm);
                json_message(401, "Unauthorized", &[("www-authenticate", &challenge)])
            })
        })
    }
}

export_plugin!(BasicAuth);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_values() {
        // "Aladdin:open sesame"
        let v = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==";
        assert_eq!(credentials(v), Some(("Aladdin".into(), "open sesame".into())));
        assert_eq!(credentials("basic   dTpwOng="), Some(("u".into(), "p:x".into())), "colons stay in the password");
        assert_eq!(credentials("Basic Og=="), None, "an empty user name");
        assert_eq!(credentials("Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ=="), None);
        assert_eq!(credentials("Basic !!"), None);
    }
}
