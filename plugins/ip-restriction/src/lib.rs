//! ip-restriction: allows or denies clients by IP address or CIDR range (IPv4 and IPv6), as Kong's
//! plugin does. The client address is the gateway's, which believes `X-Forwarded-For` only from
//! the trusted proxies configured in `[server] trusted_ips`.

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::Deserialize;
use std::net::IpAddr;
use wasmgate_plugin_sdk::{Action, ConfigNeeds, Phases, Plugin, export_plugin, json_message, request};

/// Configuration of ip-restriction: `allow`, `deny` or both (deny is checked first).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Addresses or CIDR ranges allowed; others are refused.
    #[serde(default)]
    allow: Vec<String>,
    /// Addresses or CIDR ranges refused.
    #[serde(default)]
    deny: Vec<String>,
    /// Status of the refusal.
    #[serde(default = "default_status")]
    status: u16,
    /// Message of the refusal (default: `IP address not allowed: <ip>`).
    message: Option<String>,
    #[serde(skip)]
    #[schemars(skip)]
    nets: Nets,
}

#[derive(Default)]
struct Nets {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

fn default_status() -> u16 {
    403
}

fn parse_nets(field: &str, list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("config.{field}[{i}]: {s:?} is not an IP address or CIDR range"))
        })
        .collect()
}

struct IpRestriction;

impl Plugin for IpRestriction {
    type Config = Config;
    const PRIORITY: i32 = 990;
    const PHASES: Phases = Phases::ACCESS;
    const FAIL_CLOSED: bool = true;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        if config.allow.is_empty() && config.deny.is_empty() {
            return Err("config: set `allow`, `deny` or both".into());
        }
        if !(100..600).contains(&config.status) {
            return Err(format!("config.status: {} is not an HTTP status", config.status));
        }
        config.nets = Nets { allow: parse_nets("allow", &config.allow)?, deny: parse_nets("deny", &config.deny)? };
        Ok(ConfigNeeds { request_body: false })
    }

    fn access(config: &Config) -> Result<Action, String> {
        let client = request::client_ip();
        let ip: IpAddr = client.parse().map_err(|_| format!("client address {client:?} is not an IP"))?;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let listed = |nets: &[IpNet]| nets.iter().any(|n| n.contains(&ip));
        let refused = listed(&config.nets.deny) || (!config.nets.allow.is_empty() && !listed(&config.nets.allow));
        if refused {
            let message = config.message.clone().unwrap_or_else(|| format!("IP address not allowed: {client}"));
            return Ok(json_message(config.status, &message, &[]));
        }
        Ok(Action::Proceed)
    }
}

export_plugin!(IpRestriction);
