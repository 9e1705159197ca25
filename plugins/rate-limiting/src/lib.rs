//! rate-limiting: limits how many requests a consumer (or credential, IP, service, header value
//! or path) makes per second, minute, hour, day, month or year, as Kong's plugin does. Counting is
//! exact under concurrency: the host applies all windows' increments atomically.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wasmgate_plugin_sdk::ratelimit::Limits;
use wasmgate_plugin_sdk::{
    Action, ConfigNeeds, LimitKey, Phases, Plugin, context, export_plugin, json_message, metrics,
};

/// What requests are counted together.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum LimitBy {
    /// The authenticated consumer.
    Consumer,
    /// The credential used.
    Credential,
    /// The client IP.
    Ip,
    /// The service.
    Service,
    /// The value of `header_name`.
    Header,
    /// Requests to exactly `path`.
    Path,
}

/// Where counters live.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum Policy {
    /// In this gateway node.
    Local,
    /// In Redis, shared by all nodes (not available yet).
    Redis,
}

/// Configuration of rate-limiting.
#[derive(Deserialize, JsonSchema)]
struct Config {
    /// Limits per window.
    #[serde(flatten)]
    limits: Limits,
    /// What requests are counted together; falls back to the client IP when that is missing.
    #[serde(default = "default_limit_by")]
    limit_by: LimitBy,
    /// Header whose value is counted, with `limit_by = "header"`.
    header_name: Option<String>,
    /// Path that is counted, with `limit_by = "path"`.
    path: Option<String>,
    /// Where counters live: `local` (this node); `redis` is reserved for the shared store, not available yet.
    #[serde(default = "default_policy")]
    policy: Policy,
    /// When the counter store fails, let requests through (otherwise answer 500).
    #[serde(default = "yes")]
    fault_tolerant: bool,
    /// Do not send the rate-limit headers to the client.
    #[serde(default)]
    hide_client_headers: bool,
    /// Status of the answer when a limit is reached.
    #[serde(default = "default_error_code")]
    error_code: u16,
    /// Message of that answer.
    #[serde(default = "default_error_message")]
    error_message: String,
    /// Handle of `rate_limiting_refused_total{route}`.
    #[serde(skip)]
    #[schemars(skip)]
    refused: u32,
    /// `limit_by` with its header name or path, for the host to make the counter's key.
    #[serde(skip)]
    #[schemars(skip)]
    key: Option<LimitKey>,
}

fn default_limit_by() -> LimitBy {
    LimitBy::Consumer
}
fn default_policy() -> Policy {
    Policy::Local
}
fn yes() -> bool {
    true
}
fn default_error_code() -> u16 {
    429
}
fn default_error_message() -> String {
    "API rate limit exceeded".into()
}

struct RateLimiting;

impl Plugin for RateLimiting {
    type Config = Config;
    const PRIORITY: i32 = 910;
    const PHASES: Phases = Phases::ACCESS;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        config.limits.validate("config")?;
        match config.limit_by {
            LimitBy::Header if config.header_name.is_none() => {
                return Err("config.header_name: required with limit_by = \"header\"".into());
            }
            LimitBy::Path if config.path.is_none() => {
                return Err("config.path: required with limit_by = \"path\"".into());
            }
            _ => {}
        }
        config.key = Some(match config.limit_by {
            LimitBy::Consumer => LimitKey::Consumer,
            LimitBy::Credential => LimitKey::Credential,
            LimitBy::Ip => LimitKey::Ip,
            LimitBy::Service => LimitKey::Service,
            LimitBy::Header => LimitKey::Header(config.header_name.clone().unwrap_or_default()),
            LimitBy::Path => LimitKey::Path(config.path.clone().unwrap_or_default()),
        });
        if config.policy == Policy::Redis {
            return Err("config.policy: \"redis\" is not available yet; use \"local\"".into());
        }
        if !(400..600).contains(&config.error_code) {
            return Err(format!("config.error_code: {} is not an error status (400-599)", config.error_code));
        }
        config.refused = metrics::declare(
            "rate_limiting_refused_total",
            "Requests rate-limiting refused, by route.",
            metrics::Kind::Counter,
            &["route".to_string()],
            &[],
        )?;
        Ok(ConfigNeeds { request_body: false })
    }

    fn access(config: &Config) -> Result<Action, String> {
        // The host makes Kong's key: counters belong to this configuration's route and service
        // (a global configuration's are shared by all routes); a request without the identity
        // counts by client IP.
        let by = config.key.as_ref().ok_or("configuration was not prepared")?;
        let usage = match config.limits.count_by(by, config.hide_client_headers) {
            Ok(usage) => usage,
            Err(e) if config.fault_tolerant => {
                wasmgate_plugin_sdk::log(
                    wasmgate_plugin_sdk::LogLevel::Error,
                    &format!("counter store failed, request let through: {e}"),
                );
                return Ok(Action::Proceed);
            }
            Err(_) => return Ok(json_message(500, "An unexpected error occurred", &[])),
        };
        if !usage.admitted {
            let route = context::route_name().or_else(context::route_id).unwrap_or_default();
            metrics::add(config.refused, &[route], 1);
        }
        Ok(usage.verdict(config.error_code, &config.error_message))
    }
}

export_plugin!(RateLimiting);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_flattened_into_the_config() {
        let ok: Config = serde_json::from_str(r#"{"minute": 5, "limit_by": "ip"}"#).unwrap();
        assert_eq!((ok.limits.minute, ok.limit_by), (Some(5), LimitBy::Ip));
    }
}
