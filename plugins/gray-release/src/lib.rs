//! gray-release: sends part of a route's traffic to a canary upstream. Selectors: client IPs or
//! CIDR ranges, cookies and headers (`name=value`, or `name` for any value), and a sticky
//! percentage of users chosen by a consistent hash of the IP, a cookie, a header or the consumer,
//! so that a user stays on one side. Runs after authentication and limits.

use fnv::FnvHasher;
use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::hash::Hasher;
use std::net::IpAddr;
use wasmgate_plugin_sdk::{
    Action, ConfigNeeds, Phases, Plugin, consumers, export_plugin, request, response, upstreams,
};

/// How selectors combine.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum Combine {
    /// Any matching selector sends the request to the canary.
    Any,
    /// Every configured selector must match.
    All,
}

/// Configuration of gray-release.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The upstream that receives canary traffic.
    canary_upstream: String,
    /// Client IPs or CIDR ranges sent to the canary.
    #[serde(default)]
    ips: Vec<String>,
    /// Cookies sent to the canary: `name=value`, or `name` for any value.
    #[serde(default)]
    cookies: Vec<String>,
    /// Headers sent to the canary: `name=value`, or `name` for any value.
    #[serde(default)]
    headers: Vec<String>,
    /// Share of users (0-100) sent to the canary, chosen by a consistent hash of `hash_on`.
    percentage: Option<f64>,
    /// What identifies a user for `percentage`: `ip`, `consumer`, `cookie:NAME` or `header:NAME`
    /// (the IP when that is missing).
    #[serde(default = "default_hash_on")]
    hash_on: String,
    /// How selectors combine: `any` or `all`.
    #[serde(default = "default_combine")]
    combine: Combine,
    /// Only requests without credentials (users not logged in, including an anonymous fallback
    /// consumer) may go to the canary.
    #[serde(default)]
    anonymous_only: bool,
    /// Response header that says which side served: `canary` or `stable` (none by default).
    response_header: Option<String>,
    #[serde(skip)]
    #[schemars(skip)]
    nets: Vec<IpNet>,
}

fn default_hash_on() -> String {
    "ip".into()
}
fn default_combine() -> Combine {
    Combine::Any
}

/// `name=value` or `name`.
fn pair(s: &str) -> (&str, Option<&str>) {
    match s.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (s.trim(), None),
    }
}

fn cookie(name: &str) -> Option<String> {
    request::header_values("cookie")
        .iter()
        .flat_map(|h| h.split(';').map(|c| c.trim().to_string()).collect::<Vec<_>>())
        .find_map(|c| c.split_once('=').filter(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
}

fn any_pair(pairs: &[String], lookup: impl Fn(&str) -> Option<String>) -> bool {
    pairs.iter().any(|p| {
        let (name, want) = pair(p);
        lookup(name).is_some_and(|v| want.is_none_or(|w| w == v))
    })
}

/// 0..10000: where this user falls, the same on every request and every gateway.
fn bucket(config: &Config) -> u64 {
    let key = match config.hash_on.split_once(':') {
        Some(("cookie", name)) => cookie(name),
        Some(("header", name)) => request::header(name),
        _ if config.hash_on == "consumer" => consumers::authenticated().map(|c| c.id),
        _ => None,
    }
    .unwrap_or_else(request::client_ip);
    let mut h = FnvHasher::default();
    h.write(key.as_bytes());
    h.finish() % 10_000
}

fn to_canary(config: &Config) -> bool {
    if config.anonymous_only && consumers::authenticated_credential().is_some() {
        return false;
    }
    let mut matches = Vec::with_capacity(4);
    if !config.nets.is_empty() {
        let ip = request::client_ip().parse::<IpAddr>().ok();
        matches.push(ip.is_some_and(|ip| config.nets.iter().any(|n| n.contains(&ip))));
    }
    if !config.cookies.is_empty() {
        matches.push(any_pair(&config.cookies, cookie));
    }
    if !config.headers.is_empty() {
        matches.push(any_pair(&config.headers, request::header));
    }
    if let Some(share) = config.percentage {
        matches.push((bucket(config) as f64) < share * 100.0);
    }
    match config.combine {
        Combine::Any => matches.iter().any(|m| *m),
        Combine::All => matches.iter().all(|m| *m),
    }
}

struct GrayRelease;

impl Plugin for GrayRelease {
    type Config = Config;
    const PRIORITY: i32 = 880;
    const PHASES: Phases = Phases::ACCESS;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        if !upstreams::exists(&config.canary_upstream) {
            return Err(format!(
                "config.canary_upstream: no upstream is named {:?}; define it under [[upstreams]]",
                config.canary_upstream
            ));
        }
        if config.ips.is_empty()
            && config.cookies.is_empty()
            && config.headers.is_empty()
            && config.percentage.is_none()
        {
            return Err("config: give at least one selector: ips, cookies, headers or percentage".into());
        }
        if config.percentage.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
            return Err("config.percentage: must be between 0 and 100".into());
        }
        let valid_hash_on = matches!(config.hash_on.as_str(), "ip" | "consumer")
            || config.hash_on.split_once(':').is_some_and(|(k, n)| matches!(k, "cookie" | "header") && !n.is_empty());
        if !valid_hash_on {
            return Err(format!(
                "config.hash_on: {:?} is not one of ip, consumer, cookie:NAME, header:NAME",
                config.hash_on
            ));
        }
        for (field, list) in [("cookies", &config.cookies), ("headers", &config.headers)] {
            if let Some(i) = list.iter().position(|p| pair(p).0.is_empty()) {
                return Err(format!("config.{field}[{i}]: write name=value or name"));
            }
        }
        config.nets = config
            .ips
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("config.ips[{i}]: {s:?} is not an IP address or CIDR range"))
            })
            .collect::<Result<_, _>>()?;
        Ok(ConfigNeeds { request_body: false })
    }

    fn access(config: &Config) -> Result<Action, String> {
        let canary = to_canary(config);
        if canary {
            upstreams::set_upstream(&config.canary_upstream)?;
        }
        if let Some(header) = &config.response_header {
            response::set_header(header, if canary { "canary" } else { "stable" });
        }
        Ok(Action::Proceed)
    }
}

export_plugin!(GrayRelease);
