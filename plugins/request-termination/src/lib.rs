//! request-termination: answers requests itself with a fixed status and message or body (or an
//! echo of the request), optionally only when a trigger header or query argument is present.
//! Kong's plugin of the same name; useful for maintenance windows and switching off routes.

use schemars::JsonSchema;
use serde::Deserialize;
use wasmgate_plugin_sdk::{
    Action, ConfigNeeds, Phases, Plugin, context, export_plugin, json_message, request, respond,
};

/// Configuration of request-termination.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Status of the answer.
    #[serde(default = "default_status")]
    status_code: u16,
    /// Message, answered as `{"message": ...}` (default: the status's reason).
    message: Option<String>,
    /// Raw body instead of a message (needs `content_type`).
    body: Option<String>,
    /// Content type of `body`.
    content_type: Option<String>,
    /// Answer with the request itself, as JSON.
    #[serde(default)]
    echo: bool,
    /// Only terminate requests that carry this header or query argument.
    trigger: Option<String>,
}

fn default_status() -> u16 {
    503
}

/// Kong's default message for a status.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        429 => "API rate limit exceeded",
        500 => "An unexpected error occurred",
        502 => "Bad Gateway",
        503 => "Service unavailable",
        504 => "Gateway timeout",
        _ => "Request terminated",
    }
}

/// The request, as the echo answer shows it.
fn echo(config: &Config) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> =
        request::headers().into_iter().map(|(k, v)| (k, v.into())).collect();
    serde_json::json!({
        "message": config.message.as_deref().unwrap_or(reason(config.status_code)),
        "request": {
            "scheme": request::scheme(),
            "host": request::host(),
            "port": request::port(),
            "method": request::method(),
            "path": request::path(),
            "query": request::query(),
            "headers": headers,
        },
        "matched_route": { "id": context::route_id(), "name": context::route_name() },
        "matched_service": { "id": context::service_id(), "name": context::service_name() },
    })
}

struct RequestTermination;

impl Plugin for RequestTermination {
    type Config = Config;
    const PRIORITY: i32 = 2;
    const PHASES: Phases = Phases::ACCESS;
    const FAIL_CLOSED: bool = true;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        if !(100..600).contains(&config.status_code) {
            return Err(format!("config.status_code: {} is not an HTTP status (100-599)", config.status_code));
        }
        match (&config.message, &config.body, &config.content_type) {
            (Some(_), Some(_), _) => Err("config: give either `message` or `body`, not both".into()),
            (_, Some(_), None) => Err("config.content_type: required with `body`".into()),
            (_, None, Some(_)) => Err("config.content_type: only used with `body`".into()),
            _ => Ok(ConfigNeeds { request_body: false }),
        }
    }

    fn access(config: &Config) -> Result<Action, String> {
        if let Some(trigger) = &config.trigger
            && request::header(trigger).is_none()
            && request::query_arg(trigger).is_none()
        {
            return Ok(Action::Proceed);
        }
        if config.echo {
            let body = echo(config).to_string();
            return Ok(respond(config.status_code, &[("content-type", "application/json; charset=utf-8")], body));
        }
        Ok(match (&config.body, &config.content_type) {
            (Some(body), Some(ct)) => respond(config.status_code, &[("content-type", ct)], body.as_bytes()),
            _ => json_message(config.status_code, config.message.as_deref().unwrap_or(reason(config.status_code)), &[]),
        })
    }
}

export_plugin!(RequestTermination);
