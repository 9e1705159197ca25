//! ua-rate-limiting (rate limiting by agent): classifies requests by User-Agent into roles, each
//! with its own limits. Spiders share one counter per role; users are limited per distinct
//! User-Agent string (scrapers rotate IPs but keep their User-Agent); some User-Agents can be
//! blocked outright. Every refusal is logged with the User-Agent, route and role.

use regex::{Regex, RegexSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wasmgate_plugin_sdk::ratelimit::Limits;
use wasmgate_plugin_sdk::{
    Action, ConfigNeeds, LogLevel, Phases, Plugin, consumers, context, export_plugin, json_message, log, request,
};

/// Who shares a counter within a role.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "snake_case")]
enum LimitBy {
    /// All requests of the role.
    Role,
    /// Each distinct User-Agent string.
    UserAgent,
    /// Each client IP.
    Ip,
    /// Each authenticated consumer (the IP when there is none).
    Consumer,
}

/// A class of clients.
#[derive(Deserialize, Serialize, JsonSchema, Clone)]
#[serde(deny_unknown_fields)]
struct Role {
    /// Name, used in logs and counters.
    name: String,
    /// User-Agent regexes; a role without patterns matches every User-Agent.
    #[serde(default)]
    patterns: Vec<String>,
    /// Who shares a counter: `role`, `user_agent`, `ip` or `consumer`.
    #[serde(default = "default_limit_by")]
    limit_by: LimitBy,
    /// The role's limits.
    limits: Limits,
}

/// Configuration of ua-rate-limiting.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Roles, tried in order: the first whose patterns match applies.
    #[serde(default = "default_roles")]
    roles: Vec<Role>,
    /// User-Agent regexes refused outright.
    #[serde(default)]
    block: Vec<String>,
    /// Status for blocked User-Agents.
    #[serde(default = "default_block_status")]
    block_status: u16,
    /// Do not send the rate-limit headers to the client.
    #[serde(default)]
    hide_client_headers: bool,
    /// Status of the answer when a limit is reached.
    #[serde(default = "default_error_code")]
    error_code: u16,
    /// Message of that answer.
    #[serde(default = "default_error_message")]
    error_message: String,
    #[serde(skip)]
    #[schemars(skip)]
    compiled: Option<Compiled>,
}

struct Compiled {
    block: RegexSet,
    roles: Vec<Option<RegexSet>>,
}

fn default_limit_by() -> LimitBy {
    LimitBy::UserAgent
}
fn default_block_status() -> u16 {
    403
}
fn default_error_code() -> u16 {
    429
}
fn default_error_message() -> String {
    "API rate limit exceeded".into()
}

/// Spiders: 120 a minute between them all; users: 600 a minute per User-Agent.
fn default_roles() -> Vec<Role> {
    vec![
        Role {
            name: "spider".into(),
            patterns: vec![r"(?i)(bot|crawl|spider|slurp|scrape|archiver)".into()],
            limit_by: LimitBy::Role,
            limits: Limits { minute: Some(120), ..Limits::default() },
        },
        Role {
            name: "user".into(),
            patterns: Vec::new(),
            limit_by: LimitBy::UserAgent,
            limits: Limits { minute: Some(600), ..Limits::default() },
        },
    ]
}

fn compile(field: &str, patterns: &[String]) -> Result<RegexSet, String> {
    for (i, p) in patterns.iter().enumerate() {
        Regex::new(p).map_err(|e| {
            format!("{field}[{i}]: invalid regex {p:?}: {}", e.to_string().lines().last().unwrap_or_default())
        })?;
    }
    RegexSet::new(patterns).map_err(|e| format!("{field}: {e}"))
}

/// Longest User-Agent kept in a counter name.
const MAX_UA: usize = 512;

struct UaRateLimiting;

impl UaRateLimiting {
    fn refuse(what: &str, role: &str, ua: &str) {
        let route = context::route_name().or_else(context::route_id).unwrap_or_else(|| "-".into());
        log(
            LogLevel::Warn,
            &format!("ua-rate-limiting {what}: role={role} route={route} client={} ua={ua:?}", request::client_ip()),
        );
    }
}

impl Plugin for UaRateLimiting {
    type Config = Config;
    const PRIORITY: i32 = 905;
    const PHASES: Phases = Phases::ACCESS;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        if config.roles.is_empty() && config.block.is_empty() {
            return Err("config.roles: give at least one role (or `block` patterns)".into());
        }
        let mut roles = Vec::with_capacity(config.roles.len());
        for (i, role) in config.roles.iter().enumerate() {
            let field = format!("config.roles[{i}]");
            if role.name.trim().is_empty() {
                return Err(format!("{field}.name: must not be empty"));
            }
            role.limits.validate(&format!("{field}.limits"))?;
            roles.push(match role.patterns.is_empty() {
                true => None,
                false => Some(compile(&format!("{field}.patterns"), &role.patterns)?),
            });
        }
        config.compiled = Some(Compiled { block: compile("config.block", &config.block)?, roles });
        Ok(ConfigNeeds { request_body: false })
    }

    fn access(config: &Config) -> Result<Action, String> {
        let compiled = config.compiled.as_ref().ok_or("not configured")?;
        let ua = request::header("user-agent").unwrap_or_default();
        if compiled.block.is_match(&ua) {
            Self::refuse("blocked", "-", &ua);
            return Ok(json_message(config.block_status, "Forbidden", &[]));
        }
        let matched =
            config.roles.iter().zip(&compiled.roles).find(|(_, set)| set.as_ref().is_none_or(|s| s.is_match(&ua)));
        let Some((role, _)) = matched else { return Ok(Action::Proceed) };
        let who = match role.limit_by {
            LimitBy::Role => String::new(),
            LimitBy::UserAgent => ua.chars().take(MAX_UA).collect(),
            LimitBy::Ip => request::client_ip(),
            LimitBy::Consumer => consumers::authenticated().map_or_else(request::client_ip, |c| c.id),
        };
        let key = format!("{}:{}:{who}", context::route_id().unwrap_or_default(), role.name);
        let usage = role.limits.count(&key)?;
        if !usage.admitted {
            Self::refuse("rejected", &role.name, &ua);
        }
        Ok(usage.verdict(config.hide_client_headers, config.error_code, &config.error_message))
    }
}

export_plugin!(UaRateLimiting);
