//! hmac-auth: authenticates the consumer by an HMAC signature of the request (`Authorization:
//! hmac username="…", algorithm="…", headers="…", signature="…"`), as Kong's plugin of the same
//! name does. The MAC is checked by the host (`verify-hmac`) with the credential's secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use wasmgate_plugin_sdk::{
    Action, ConfigNeeds, CredentialPlace, Phases, Plugin, SignatureCheck, authenticate_or_anonymous, check_anonymous,
    clock, export_plugin, json_message, redact, request, set_consumer,
};

/// The algorithms Kong's hmac-auth knows.
const ALGORITHMS: [&str; 4] = ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"];

/// Configuration of hmac-auth.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Remove the `Authorization` (or `Proxy-Authorization`) header before the request goes
    /// upstream.
    #[serde(default)]
    hide_credentials: bool,
    /// Most seconds between the request's `X-Date` (or `Date`) and the gateway's clock.
    #[serde(default = "default_clock_skew")]
    clock_skew: f64,
    /// Consumer (id or username) to fall back to when authentication fails.
    anonymous: Option<String>,
    /// Also check the body against the `Digest: SHA-256=…` header (bodies up to 64 KiB).
    #[serde(default)]
    validate_request_body: bool,
    /// Headers the signature must cover.
    #[serde(default)]
    enforce_headers: Vec<String>,
    /// Algorithms accepted: `hmac-sha1`, `hmac-sha256`, `hmac-sha384`, `hmac-sha512`.
    #[serde(default = "default_algorithms")]
    algorithms: Vec<String>,
    /// Realm in the `WWW-Authenticate` header of 401 answers.
    realm: Option<String>,
}

fn default_clock_skew() -> f64 {
    300.0
}
fn default_algorithms() -> Vec<String> {
    ALGORITHMS.map(String::from).to_vec()
}

const NO_DATE: &str =
    "HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication";
const NOT_VALID: &str = "HMAC signature cannot be verified";
const NOT_SAME: &str = "HMAC signature does not match";

/// The parameters of an `hmac` authorization value.
struct Params {
    username: String,
    algorithm: String,
    headers: Vec<String>,
    signature: String,
}

/// Parses `hmac username="…", algorithm="…", headers="…", signature="…"` (Kong's pattern: the
/// four parameters in this order; `hmac` or `Hmac`).
fn params(value: &str) -> Option<Params> {
    let at = value.find("mac").filter(|&i| i > 0 && matches!(&value[i - 1..i], "H" | "h"))?;
    let mut rest = value[at + 3..].trim_start();
    let mut fields = ["username", "algorithm", "headers", "signature"].into_iter().map(|name| {
        let after = rest.strip_prefix(name)?.strip_prefix("=\"")?;
        // The last value runs to the last quote; the others to the quote before the next name.
        let end = match name {
            "signature" => after.rfind('"')?,
            _ => after.find("\",")?,
        };
        rest = after[end + 1..].trim_start_matches(',').trim_start();
        Some(after[..end].to_string()).filter(|v| !v.is_empty())
    });
    let mut next = || fields.next().flatten();
    let (username, algorithm, headers, signature) = (next()?, next()?, next()?, next()?);
    let headers = headers.split(' ').filter(|h| !h.is_empty()).map(str::to_string).collect();
    Some(Params { username, algorithm, headers, signature })
}

/// Whether header `name` holds an HTTP date within `skew` seconds of `now`.
fn date_within(name: &str, skew: f64, now: u64) -> bool {
    let Some(date) = request::header(name).and_then(|d| httpdate::parse_http_date(&d).ok()) else { return false };
    let secs = date.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    now.abs_diff(secs) as f64 <= skew
}

/// The string the client signed: each listed header as `name: value`, with the pseudo-headers
/// `@request-target` and `request-line`, one per line.
fn signing_string(headers: &[String]) -> String {
    let uri = || match request::query() {
        Some(q) => format!("{}?{q}", request::path()),
        None => request::path(),
    };
    let lines: Vec<String> = headers
        .iter()
        .map(|h| match (request::header(h), h.as_str()) {
            (Some(v), _) => format!("{h}: {v}"),
            (None, "@request-target") => format!("{h}: {} {}", request::method().to_lowercase(), uri()),
            (None, "request-line") => {
                let version = match request::http_version().as_str() {
                    "2" => "2.0".to_string(),
                    v => v.to_string(),
                };
                format!("{} {} HTTP/{version}", request::method(), uri())
            }
            (None, _) => format!("{h}:"),
        })
        .collect();
    lines.join("\n")
}

/// Whether the body matches the `Digest` header (or is empty without one).
fn body_matches() -> bool {
    let body = request::body().unwrap_or_default();
    match request::header("digest") {
        None => body.is_empty(),
        Some(digest) => digest == format!("SHA-256={}", STANDARD.encode(Sha256::digest(&body))),
    }
}

struct HmacAuth;

impl HmacAuth {
    fn authenticate(config: &Config) -> Result<(), &'static str> {
        let proxy = request::header("proxy-authorization");
        let plain = request::header("authorization");
        if proxy.is_none() && plain.is_none() {
            return Err("Unauthorized");
        }
        let now = clock::now_ms() / 1000;
        if !date_within("x-date", config.clock_skew, now) && !date_within("date", config.clock_skew, now) {
            return Err(NO_DATE);
        }
        let (p, header) = match proxy.as_deref().and_then(params) {
            Some(p) => (Some(p), "proxy-authorization"),
            None => (plain.as_deref().and_then(params), "authorization"),
        };
        if config.hide_credentials {
            request::remove_header(header);
        }
        let p = p.ok_or(NOT_VALID)?;
        let covered = |h: &String| p.headers.contains(h);
        if !config.enforce_headers.iter().all(covered) || !config.algorithms.contains(&p.algorithm) {
            return Err(NOT_VALID);
        }
        let signature = STANDARD.decode(&p.signature).unwrap_or_default();
        let text = signing_string(&p.headers);
        let credential = match wasmgate_plugin_sdk::consumers::verify_hmac(&p.username, &p.algorithm, &text, &signature)
        {
            SignatureCheck::Verified(c) => c,
            SignatureCheck::Mismatch => return Err(NOT_SAME),
            _ => return Err(NOT_VALID),
        };
        if config.validate_request_body && !body_matches() {
            return Err(NOT_SAME);
        }
        set_consumer(&credential.consumer_id, Some(&credential), false).map_err(|_| NOT_VALID)?;
        // Kong names an hmac-auth credential upstream by its user name.
        request::set_header("x-credential-identifier", &p.username);
        Ok(())
    }
}

impl Plugin for HmacAuth {
    type Config = Config;
    const PRIORITY: i32 = 1030;
    const PHASES: Phases = Phases::ACCESS;
    const FAIL_CLOSED: bool = true;
    const NO_CONSUMER: bool = true;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        if let Some(bad) = config.algorithms.iter().find(|a| !ALGORITHMS.contains(&a.as_str())) {
            return Err(format!("config.algorithms: {bad:?} is not one of {}", ALGORITHMS.join(", ")));
        }
        if config.clock_skew <= 0.0 {
            return Err("config.clock_skew: must be greater than 0 (seconds)".into());
        }
        check_anonymous(config.anonymous.as_deref())?;
        redact(&CredentialPlace::Header("authorization".into()))?;
        redact(&CredentialPlace::Header("proxy-authorization".into()))?;
        Ok(ConfigNeeds { request_body: config.validate_request_body })
    }

    fn access(config: &Config) -> Result<Action, String> {
        authenticate_or_anonymous(config.anonymous.as_deref(), || {
            Self::authenticate(config).map_err(|message| {
                let challenge = match &config.realm {
                    Some(r) => format!("hmac realm=\"{r}\""),
                    None => "hmac".into(),
                };
                json_message(401, message, &[("www-authenticate", &challenge)])
            })
        })
    }
}

export_plugin!(HmacAuth);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_values() {
        let p = params(
            r#"hmac username="alice", algorithm="hmac-sha256", headers="date @request-target", signature="c2ln""#,
        )
        .unwrap();
        assert_eq!((p.username.as_str(), p.algorithm.as_str()), ("alice", "hmac-sha256"));
        assert_eq!(p.headers, ["date", "@request-target"]);
        assert_eq!(p.signature, "c2ln");
        assert!(params(r#"hmac username="alice", signature="c2ln""#).is_none());
        assert!(params("Basic abc").is_none());
    }
}
