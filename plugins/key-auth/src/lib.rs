//! key-auth: authenticates the consumer by an API key found in a header, the query string or the
//! body, as Kong's plugin of the same name does (same settings, answers and headers).

mod body;

use schemars::JsonSchema;
use serde::Deserialize;
use wasmgate_plugin_sdk::{
    Action, ConfigNeeds, CredentialPlace, Phases, Plugin, authenticate_or_anonymous, check_anonymous, export_plugin,
    json_message, redact, request, set_consumer_by_key,
};

/// Configuration of key-auth.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Names under which the key is looked for (each in header, then query, then body).
    #[serde(default = "default_key_names")]
    key_names: Vec<String>,
    /// Look in request headers.
    #[serde(default = "yes")]
    key_in_header: bool,
    /// Look in the query string.
    #[serde(default = "yes")]
    key_in_query: bool,
    /// Look in the body (form, JSON or multipart; up to 64 KiB).
    #[serde(default)]
    key_in_body: bool,
    /// Remove the key before the request goes upstream.
    #[serde(default)]
    hide_credentials: bool,
    /// Consumer (id or username) to fall back to when authentication fails.
    anonymous: Option<String>,
    /// Realm in the `WWW-Authenticate` header of 401 answers.
    #[serde(default = "default_realm")]
    realm: String,
    /// Also authenticate CORS preflight (`OPTIONS`) requests.
    #[serde(default = "yes")]
    run_on_preflight: bool,
}

fn default_key_names() -> Vec<String> {
    vec!["apikey".into()]
}
fn default_realm() -> String {
    "wasmgate".into()
}
fn yes() -> bool {
    true
}

/// Why authentication failed: the 401 message.
const NO_KEY: &str = "No API key found in request";
const BAD_KEY: &str = "Unauthorized";

struct KeyAuth;

impl KeyAuth {
    /// Finds the key; with `hide_credentials`, removes it wherever it was found.
    fn find_key(config: &Config) -> Result<Option<String>, &'static str> {
        for name in &config.key_names {
            if config.key_in_header {
                let values = request::header_values(name);
                if values.len() > 1 {
                    return Err("Duplicate API key found");
                }
                if let Some(v) = values.into_iter().next() {
                    if config.hide_credentials {
                        request::remove_header(name);
                    }
                    return Ok(Some(v));
                }
            }
            if config.key_in_query
                && let Some(v) = request::query_arg(name)
            {
                if config.hide_credentials {
                    let rest = body::without_form_field(&request::query().unwrap_or_default(), name);
                    request::set_query((!rest.is_empty()).then_some(rest.as_str()));
                }
                return Ok(Some(v));
            }
            if config.key_in_body {
                let content_type = request::header("content-type").unwrap_or_default();
                let raw = request::body().unwrap_or_default();
                if let Some((v, stripped)) = body::take_field(&content_type, &raw, name) {
                    if config.hide_credentials {
                        request::set_body(&stripped);
                    }
                    return Ok(Some(v));
                }
            }
        }
        Ok(None)
    }

    fn authenticate(config: &Config) -> Result<(), &'static str> {
        let key = Self::find_key(config)?.filter(|k| !k.is_empty()).ok_or(NO_KEY)?;
        match set_consumer_by_key("key-auth", &key) {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(BAD_KEY),
        }
    }
}

impl Plugin for KeyAuth {
    type Config = Config;
    const PRIORITY: i32 = 1250;
    const PHASES: Phases = Phases::ACCESS;
    const FAIL_CLOSED: bool = true;
    const NO_CONSUMER: bool = true;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        if config.key_names.is_empty() || config.key_names.iter().any(|k| k.trim().is_empty()) {
            return Err("config.key_names: give at least one non-empty name".into());
        }
        check_anonymous(config.anonymous.as_deref())?;
        // The keys are secrets wherever they are read from: no log record shows them.
        for name in &config.key_names {
            redact(&CredentialPlace::Header(name.clone()))?;
            redact(&CredentialPlace::QueryArg(name.clone()))?;
        }
        Ok(ConfigNeeds { request_body: config.key_in_body })
    }

    fn access(config: &Config) -> Result<Action, String> {
        if !config.run_on_preflight && request::method() == "OPTIONS" {
            return Ok(Action::Proceed);
        }
        authenticate_or_anonymous(config.anonymous.as_deref(), || {
            Self::authenticate(config).map_err(|message| {
                let challenge = format!("Key realm=\"{}\"", config.realm);
                json_message(401, message, &[("www-authenticate", &challenge)])
            })
        })
    }
}

export_plugin!(KeyAuth);
