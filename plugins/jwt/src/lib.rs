//! jwt: authenticates the consumer by a JSON Web Token signed with one of its `jwt` credentials,
//! as Kong's plugin of the same name does (same settings, answers and headers). The signature is
//! checked by the host, which keeps the credentials' keys parsed, and which authenticates the
//! request in the same call (`set-consumer-by-jwt`).

mod memo;
mod token;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::rc::Rc;
use token::Token;
use wasmgate_plugin_sdk::{
    Action, ConfigNeeds, CredentialPlace, JwtCheck, Phases, Plugin, SignatureCheck, authenticate_or_anonymous,
    check_anonymous, clock, consumers, export_plugin, json_message, redact, request, respond,
};

/// Configuration of jwt.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Query arguments the token is looked for in.
    #[serde(default = "default_uri_param_names")]
    uri_param_names: Vec<String>,
    /// Cookies the token is looked for in.
    #[serde(default)]
    cookie_names: Vec<String>,
    /// Headers the token is looked for in, as `Bearer <token>`.
    #[serde(default = "default_header_names")]
    header_names: Vec<String>,
    /// The claim (or, failing that, header field) naming the credential's `key`.
    #[serde(default = "default_key_claim_name")]
    key_claim_name: String,
    /// The credentials' HS secrets are base64; tokens are signed with the decoded bytes.
    #[serde(default)]
    secret_is_base64: bool,
    /// Registered claims to check: `exp` (not expired) and `nbf` (already valid).
    #[serde(default)]
    claims_to_verify: Vec<String>,
    /// Most seconds a token may still be valid for (`exp` from now); 0 for no limit. Needs
    /// `exp` in `claims_to_verify`.
    #[serde(default)]
    maximum_expiration: f64,
    /// Consumer (id or username) to fall back to when authentication fails.
    anonymous: Option<String>,
    /// Also authenticate CORS preflight (`OPTIONS`) requests.
    #[serde(default = "yes")]
    run_on_preflight: bool,
    /// Realm in the `WWW-Authenticate` header of 401 answers.
    realm: Option<String>,
}

fn default_uri_param_names() -> Vec<String> {
    vec!["jwt".into()]
}
fn default_header_names() -> Vec<String> {
    vec!["authorization".into()]
}
fn default_key_claim_name() -> String {
    "iss".into()
}
fn yes() -> bool {
    true
}

/// Kong's ceiling for `maximum_expiration`: a year.
const MAX_EXPIRATION: f64 = 31_536_000.0;

/// Why authentication failed: Kong's 401 body and whether the token was at fault.
enum Failure {
    /// `{"message": ...}`; `invalid` adds `error="invalid_token"` to the challenge.
    Message(String, bool),
    /// Claim errors, answered as Kong does: `{"exp": "token expired", ...}`.
    Claims(Map<String, Value>),
}

impl Failure {
    fn invalid(message: impl Into<String>) -> Failure {
        Failure::Message(message.into(), true)
    }

    fn answer(self, realm: Option<&str>) -> Action {
        let base = match realm {
            Some(r) => format!("Bearer realm=\"{r}\""),
            None => "Bearer".into(),
        };
        let with_error = |base: String| match realm {
            Some(_) => format!("{base}, error=\"invalid_token\""),
            None => "Bearer error=\"invalid_token\"".into(),
        };
        match self {
            Failure::Message(m, false) => json_message(401, &m, &[("www-authenticate", &base)]),
            Failure::Message(m, true) => json_message(401, &m, &[("www-authenticate", &with_error(base))]),
            Failure::Claims(errors) => respond(
                401,
                &[("content-type", "application/json; charset=utf-8"), ("www-authenticate", &with_error(base))],
                Value::Object(errors).to_string(),
            ),
        }
    }
}

struct Jwt;

impl Jwt {
    /// The one token in the request, looked for in query arguments, then cookies, then headers
    /// (the same token in several places is one token).
    fn token(config: &Config) -> Result<String, Failure> {
        let mut found: Option<String> = None;
        let mut add = |token: &str| match &found {
            None => {
                found = Some(token.to_string());
                Ok(())
            }
            Some(first) if first == token => Ok(()),
            Some(_) => Err(Failure::invalid("Multiple tokens provided")),
        };
        if let Some(query) = request::query() {
            for (k, v) in form_urlencoded::parse(query.as_bytes()) {
                if !v.is_empty() && config.uri_param_names.iter().any(|n| *n == k) {
                    add(&v)?;
                }
            }
        }
        if !config.cookie_names.is_empty() {
            for header in request::header_values("cookie") {
                for name in &config.cookie_names {
                    if let Some(v) = token::cookie(&header, name).filter(|v| !v.is_empty()) {
                        add(v)?;
                    }
                }
            }
        }
        for name in &config.header_names {
            if let Some(t) = request::header(name).as_deref().and_then(token::bearer) {
                add(t)?;
            }
        }
        found.ok_or_else(|| Failure::Message("Unauthorized".into(), false))
    }

    fn authenticate(config: &Config) -> Result<(), Failure> {
        let raw = Self::token(config)?;
        let (token, remembered) = match memo::get(&raw) {
            Some(token) => (token, true),
            None => (Rc::new(Token::parse(&raw).map_err(|e| Failure::invalid(format!("Bad token; {e}")))?), false),
        };
        let claim = &config.key_claim_name;
        let key = match token.claims.get(claim).or_else(|| token.header.get(claim)) {
            None | Some(Value::Null) => return Err(Failure::invalid(format!("No mandatory '{claim}' in claims"))),
            Some(Value::String(k)) if !k.is_empty() => k.as_str(),
            Some(_) => return Err(Failure::invalid(format!("Invalid '{claim}' in claims"))),
        };
        // (`maximum_expiration` needs `exp` in `claims_to_verify`: nothing to check, no clock read.)
        let claims_failed = (!config.claims_to_verify.is_empty())
            .then(|| {
                let now = (clock::now_ms() / 1000) as f64;
                claim_errors(&token.claims, &config.claims_to_verify, config.maximum_expiration, now)
            })
            .filter(|errors| !errors.is_empty());
        let b64 = config.secret_is_base64;
        let check = match &claims_failed {
            // The usual case: verified and authenticated in one host call.
            None => consumers::set_consumer_by_jwt(key, token.alg(), &raw, b64),
            // Kong checks the signature before the claims: only a token that verifies is told
            // what is wrong with its claims.
            Some(_) => {
                match consumers::verify_jwt(key, token.alg(), token.signing_input(&raw), &token.signature, b64) {
                    // (Verified, and nothing set: the claims' errors are the answer.)
                    SignatureCheck::Verified(_) => JwtCheck::Authenticated,
                    SignatureCheck::UnknownCredential => JwtCheck::UnknownCredential,
                    SignatureCheck::WrongAlgorithm => JwtCheck::WrongAlgorithm,
                    SignatureCheck::NoKey => JwtCheck::NoKey,
                    SignatureCheck::Mismatch => JwtCheck::Mismatch,
                }
            }
        };
        match check {
            JwtCheck::Authenticated => {}
            JwtCheck::UnknownCredential => {
                return Err(Failure::invalid(format!("No credentials found for given '{claim}'")));
            }
            JwtCheck::WrongAlgorithm => return Err(Failure::invalid("Invalid algorithm")),
            JwtCheck::NoKey => return Err(Failure::invalid("Invalid key/secret")),
            JwtCheck::Mismatch => return Err(Failure::invalid("Invalid signature")),
        }
        if !remembered {
            memo::remember(&raw, &token);
        }
        match claims_failed {
            Some(errors) => Err(Failure::Claims(errors)),
            None => Ok(()),
        }
    }
}

/// Kong's checks of the registered claims, then of `maximum_expiration`: claim name to error.
fn claim_errors(claims: &Map<String, Value>, verify: &[String], maximum: f64, now: f64) -> Map<String, Value> {
    let mut errors = Map::new();
    for name in verify {
        let error = match claims.get(name).and_then(Value::as_f64) {
            None => "must be a number",
            Some(nbf) if name == "nbf" && nbf > now => "token not valid yet",
            Some(exp) if name == "exp" && exp <= now => "token expired",
            Some(_) => continue,
        };
        errors.insert(name.clone(), error.into());
    }
    if errors.is_empty() && maximum > 0.0 {
        match claims.get("exp").and_then(Value::as_f64) {
            Some(exp) if exp - now <= maximum => {}
            _ => {
                errors.insert("exp".into(), "exceeds maximum allowed expiration".into());
            }
        }
    }
    errors
}

impl Plugin for Jwt {
    type Config = Config;
    const PRIORITY: i32 = 1450;
    const PHASES: Phases = Phases::ACCESS;
    const FAIL_CLOSED: bool = true;
    const NO_CONSUMER: bool = true;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        if let Some(bad) = config.claims_to_verify.iter().find(|c| !matches!(c.as_str(), "exp" | "nbf")) {
            return Err(format!("config.claims_to_verify: {bad:?} is not one of \"exp\" or \"nbf\""));
        }
        if !(0.0..=MAX_EXPIRATION).contains(&config.maximum_expiration) {
            return Err(format!("config.maximum_expiration: must be between 0 and {MAX_EXPIRATION} (a year)"));
        }
        if config.maximum_expiration > 0.0 && !config.claims_to_verify.iter().any(|c| c == "exp") {
            return Err("config.claims_to_verify: must contain \"exp\" when maximum_expiration is set".into());
        }
        if config.key_claim_name.is_empty() {
            return Err("config.key_claim_name: must not be empty".into());
        }
        check_anonymous(config.anonymous.as_deref())?;
        // Tokens are secrets wherever they are read from: no log record shows them.
        for name in &config.uri_param_names {
            redact(&CredentialPlace::QueryArg(name.clone()))?;
        }
        for name in &config.cookie_names {
            redact(&CredentialPlace::Cookie(name.clone()))?;
        }
        for name in &config.header_names {
            redact(&CredentialPlace::Header(name.clone()))?;
        }
        Ok(ConfigNeeds { request_body: false })
    }

    fn access(config: &Config) -> Result<Action, String> {
        if !config.run_on_preflight && request::method() == "OPTIONS" {
            return Ok(Action::Proceed);
        }
        authenticate_or_anonymous(config.anonymous.as_deref(), || {
            Self::authenticate(config).map_err(|f| f.answer(config.realm.as_deref()))
        })
    }
}

export_plugin!(Jwt);

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: Value) -> Map<String, Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn registered_claims_like_kong() {
        let verify = ["exp".to_string(), "nbf".to_string()];
        let now = 1000.0;
        assert!(claim_errors(&claims(serde_json::json!({"exp": 1001, "nbf": 1000})), &verify, 0.0, now).is_empty());
        let e = claim_errors(&claims(serde_json::json!({"exp": 1000, "nbf": 1001})), &verify, 0.0, now);
        assert_eq!(Value::Object(e), serde_json::json!({"exp": "token expired", "nbf": "token not valid yet"}));
        let e = claim_errors(&claims(serde_json::json!({"exp": "soon"})), &verify[..1], 0.0, now);
        assert_eq!(Value::Object(e), serde_json::json!({"exp": "must be a number"}));
        assert!(claim_errors(&claims(serde_json::json!({})), &[], 0.0, now).is_empty(), "nothing to verify");
        let e = claim_errors(&claims(serde_json::json!({"exp": 5000})), &verify[..1], 3600.0, now);
        assert_eq!(Value::Object(e), serde_json::json!({"exp": "exceeds maximum allowed expiration"}));
        assert!(claim_errors(&claims(serde_json::json!({"exp": 4600})), &verify[..1], 3600.0, now).is_empty());
    }
}
