//! rate-limiting: limits how many requests a consumer (or credential, IP, service, header value
//! or path) makes per second, minute, hour, day, month or year, as Kong's plugin does. Counting is
//! exact under concurrency: the host applies all windows' increments atomically.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wasmgate_plugin_sdk::context::RequestIds;
use wasmgate_plugin_sdk::ratelimit::Limits;
use wasmgate_plugin_sdk::{
    Action, ConfigNeeds, Phases, Plugin, context, export_plugin, json_message, metrics, request,
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

/// The identity whose requests are counted together.
fn identifier(config: &Config, ids: &RequestIds) -> String {
    let id = match config.limit_by {
        LimitBy::Consumer => ids.consumer_id.clone().or_else(|| ids.credential_id.clone()),
        LimitBy::Credential => ids.credential_id.clone(),
        LimitBy::Ip => None,
        LimitBy::Service => ids.service_id.clone(),
        LimitBy::Header => config.header_name.as_deref().and_then(request::header),
        LimitBy::Path => config.path.clone().filter(|p| *p == request::path()),
    };
    id.unwrap_or_else(request::client_ip)
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
        // Counters are per route and service, as in Kong: the same consumer is limited separately
        // on each.
        let ids = context::ids();
        let key = format!(
            "{}:{}:{}",
            ids.route_id.as_deref().unwrap_or_default(),
            ids.service_id.as_deref().unwrap_or_default(),
            identifier(config, &ids)
        );
        let usage = match config.limits.count(&key, config.hide_client_headers) {
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
