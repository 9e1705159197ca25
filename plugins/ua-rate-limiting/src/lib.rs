//! ua-rate-limiting (rate limiting by agent): classifies requests by User-Agent into roles, each
//! with its own limits. Spiders share one counter per role; users are limited per distinct
//! User-Agent string (scrapers rotate IPs but keep their User-Agent); some User-Agents can be
//! blocked outright. Every refusal is logged with the User-Agent, route and role, and counted in
//! metrics: refusals by route and role, and, for roles limited per User-Agent (users), the
//! `top_user_agents` User-Agents by requests and by refusals per route (a top-N table, so the
//! number of series stays fixed however many User-Agents there are).

use regex::{Regex, RegexSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wasmgate_plugin_sdk::ratelimit::Limits;
use wasmgate_plugin_sdk::{
    Action, ConfigNeeds, LogLevel, Phases, Plugin, consumers, context, export_plugin, json_message, log, metrics,
    request,
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
    /// How many User-Agents of the roles limited per User-Agent the metrics keep per route, by
    /// requests and by refusals (0: none).
    #[serde(default = "default_top_user_agents")]
    top_user_agents: u32,
    #[serde(skip)]
    #[schemars(skip)]
    compiled: Option<Compiled>,
}

struct Compiled {
    block: RegexSet,
    roles: Vec<Option<RegexSet>>,
    metrics: Metrics,
}

/// Handles of the metrics: refusals by route and role; top User-Agents by requests and by
/// refusals (when `top_user_agents` is not 0).
struct Metrics {
    refused: u32,
    top: Option<(u32, u32)>,
}

impl Metrics {
    fn declare(top_user_agents: u32) -> Result<Metrics, String> {
        let labels = ["route".to_string(), "role".to_string()];
        let refused = metrics::declare(
            "ua_rate_limiting_refused_total",
            "Requests ua-rate-limiting refused, by route and role (blocked: a blocked User-Agent).",
            metrics::Kind::Counter,
            &labels,
            &[],
        )?;
        let top = |name: &str, help: &str| metrics::declare_top(name, help, &labels, "user_agent", top_user_agents);
        let top = match top_user_agents {
            0 => None,
            _ => Some((
                top(
                    "ua_rate_limiting_top_user_agents_requests",
                    "The User-Agents with the most requests, per route and role.",
                )?,
                top(
                    "ua_rate_limiting_top_user_agents_refused",
                    "The User-Agents with the most refusals, per route and role.",
                )?,
            )),
        };
        Ok(Metrics { refused, top })
    }
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
fn default_top_user_agents() -> u32 {
    10
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

fn route() -> String {
    context::route_name().or_else(context::route_id).unwrap_or_else(|| "-".into())
}

impl UaRateLimiting {
    fn refuse(metrics: &Metrics, what: &str, role: &str, route: &str, ua: &str) {
        metrics::add(metrics.refused, &[route.to_string(), role.to_string()], 1);
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
        if config.top_user_agents > 100 {
            return Err("config.top_user_agents: at most 100".into());
        }
        let metrics = Metrics::declare(config.top_user_agents)?;
        config.compiled = Some(Compiled { block: compile("config.block", &config.block)?, roles, metrics });
        Ok(ConfigNeeds { request_body: false })
    }

    fn access(config: &Config) -> Result<Action, String> {
        let compiled = config.compiled.as_ref().ok_or("not configured")?;
        let ua = request::header("user-agent").unwrap_or_default();
        if compiled.block.is_match(&ua) {
            Self::refuse(&compiled.metrics, "blocked", "blocked", &route(), &ua);
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
        let usage = role.limits.count(&key, config.hide_client_headers)?;
        let top = compiled.metrics.top.filter(|_| role.limit_by == LimitBy::UserAgent);
        if !usage.admitted || top.is_some() {
            let route = route();
            let labels = || vec![route.clone(), role.name.clone(), ua.chars().take(MAX_UA).collect()];
            if let Some((requests, refused)) = top {
                metrics::add(requests, &labels(), 1);
                if !usage.admitted {
                    metrics::add(refused, &labels(), 1);
                }
            }
            if !usage.admitted {
                Self::refuse(&compiled.metrics, "rejected", &role.name, &route, &ua);
            }
        }
        Ok(usage.verdict(config.error_code, &config.error_message))
    }
}

export_plugin!(UaRateLimiting);
