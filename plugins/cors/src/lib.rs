//! cors: Cross-Origin Resource Sharing as Kong's plugin of the same name does it. Preflight
//! requests (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) are answered by the
//! gateway; other responses get the `Access-Control-Allow-*` headers.
//!
//! This is the SDK README's worked example of a plugin: a typed configuration with defaults and
//! doc comments (they become the JSON Schema and the README's table), the checks serde cannot
//! make done once in `configure` (the compiled origins), an early answer from `access`, and
//! response headers from `header_filter`.

mod origins;

use origins::Allowed;
use schemars::JsonSchema;
use serde::Deserialize;
use wasmgate_plugin_sdk::{Action, ConfigNeeds, Phases, Plugin, export_plugin, request, respond, response};

/// The methods a preflight may allow.
const METHODS: [&str; 9] = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"];

/// Configuration of cors.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Allowed origins: exact (`https://app.example.com`) or regexes (`.*\.example\.com`);
    /// `*` or none allows all.
    #[serde(default)]
    origins: Vec<String>,
    /// `Access-Control-Allow-Headers`; none echoes the preflight's
    /// `Access-Control-Request-Headers`.
    #[serde(default)]
    headers: Vec<String>,
    /// `Access-Control-Expose-Headers`.
    #[serde(default)]
    exposed_headers: Vec<String>,
    /// `Access-Control-Allow-Methods`.
    #[serde(default = "default_methods")]
    methods: Vec<String>,
    /// `Access-Control-Max-Age`: seconds a browser may cache a preflight's answer.
    max_age: Option<u64>,
    /// Send `Access-Control-Allow-Credentials: true`.
    #[serde(default)]
    credentials: bool,
    /// Answer `Access-Control-Request-Private-Network: true` with
    /// `Access-Control-Allow-Private-Network: true`.
    #[serde(default)]
    private_network: bool,
    /// Send preflights on to the upstream instead of answering them.
    #[serde(default)]
    preflight_continue: bool,
    /// Also add the headers to responses to requests without an `Origin`.
    #[serde(default = "yes")]
    allow_origin_absent: bool,
    /// `origins`, compiled.
    #[serde(skip)]
    #[schemars(skip)]
    allowed: Option<Allowed>,
}

fn default_methods() -> Vec<String> {
    METHODS.map(String::from).to_vec()
}
fn yes() -> bool {
    true
}

/// A non-empty `Origin` header.
fn origin() -> Option<String> {
    request::header("origin").filter(|o| !o.is_empty())
}

/// Whether this request is a CORS preflight.
fn is_preflight() -> bool {
    request::method() == "OPTIONS" && origin().is_some() && request::header("access-control-request-method").is_some()
}

struct Cors;

impl Cors {
    /// `Access-Control-Allow-Origin`, `-Credentials` and `Vary` for a request from `origin`.
    /// `in_response`: in header-filter, where `Vary` is added to the upstream's own.
    fn allow_origin(config: &Config, origin: Option<&str>, in_response: bool) {
        let vary = || match in_response {
            true => response::add_header("vary", "Origin"),
            false => response::set_header("vary", "Origin"),
        };
        let allowed = config.allowed.as_ref().expect("configured");
        if !matches!(allowed, Allowed::All) {
            vary();
        }
        let value = allowed.allow(origin);
        match (&value, config.credentials, origin) {
            // Credentials cannot go with `*`: the request's origin is echoed instead.
            (Some(v), true, Some(o)) if v == "*" => {
                vary();
                response::set_header("access-control-allow-origin", o);
            }
            (Some(v), _, _) => response::set_header("access-control-allow-origin", v),
            (None, _, _) => response::remove_header("access-control-allow-origin"),
        }
        let star_without_origin = value.as_deref() == Some("*") && origin.is_none();
        if config.credentials && !star_without_origin {
            response::set_header("access-control-allow-credentials", "true");
        }
    }
}

impl Plugin for Cors {
    type Config = Config;
    const PRIORITY: i32 = 2000;
    const PHASES: Phases = Phases::ACCESS.union(Phases::HEADER_FILTER);
    const NO_CONSUMER: bool = true;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        if let Some(bad) = config.methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
            return Err(format!("config.methods: {bad:?} is not one of {}", METHODS.join(", ")));
        }
        config.allowed = Some(Allowed::new(&config.origins)?);
        Ok(ConfigNeeds { request_body: false })
    }

    fn access(config: &Config) -> Result<Action, String> {
        if !is_preflight() || config.preflight_continue {
            return Ok(Action::Proceed);
        }
        // Headers set here are kept for whatever answer the client gets: this one.
        Self::allow_origin(config, origin().as_deref(), false);
        match (config.headers.is_empty(), request::header("access-control-request-headers")) {
            (false, _) => response::set_header("access-control-allow-headers", &config.headers.join(",")),
            (true, Some(asked)) => response::set_header("access-control-allow-headers", &asked),
            (true, None) => response::remove_header("access-control-allow-headers"),
        }
        response::set_header("access-control-allow-methods", &config.methods.join(","));
        if let Some(age) = config.max_age {
            response::set_header("access-control-max-age", &age.to_string());
        }
        if config.private_network
            && request::header("access-control-request-private-network").as_deref() == Some("true")
        {
            response::set_header("access-control-allow-private-network", "true");
        }
        Ok(respond(200, &[], Vec::new()))
    }

    fn header_filter(config: &Config) -> Result<(), String> {
        let origin = origin();
        if is_preflight() || (origin.is_none() && !config.allow_origin_absent) {
            return Ok(());
        }
        Self::allow_origin(config, origin.as_deref(), true);
        if !config.exposed_headers.is_empty() {
            response::set_header("access-control-expose-headers", &config.exposed_headers.join(","));
        }
        Ok(())
    }
}

export_plugin!(Cors);
