//! bot-detection: refuses requests whose User-Agent is a well-known bot or matches your `deny`
//! patterns; `allow` patterns win over both. Kong's plugin of the same name.

mod rules;

use regex::{Regex, RegexSet};
use schemars::JsonSchema;
use serde::Deserialize;
use wasmgate_plugin_sdk::{Action, ConfigNeeds, Phases, Plugin, export_plugin, json_message, request};

/// Configuration of bot-detection.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// User-Agent regexes always let through (over `deny` and the built-in list).
    #[serde(default)]
    allow: Vec<String>,
    /// User-Agent regexes refused.
    #[serde(default)]
    deny: Vec<String>,
    #[serde(skip)]
    #[schemars(skip)]
    compiled: Option<Compiled>,
}

struct Compiled {
    allow: RegexSet,
    deny: RegexSet,
}

fn compile(field: &str, patterns: &[String]) -> Result<RegexSet, String> {
    for (i, p) in patterns.iter().enumerate() {
        Regex::new(p).map_err(|e| {
            format!("config.{field}[{i}]: invalid regex {p:?}: {}", e.to_string().lines().last().unwrap_or_default())
        })?;
    }
    RegexSet::new(patterns).map_err(|e| format!("config.{field}: {e}"))
}

struct BotDetection;

impl Plugin for BotDetection {
    type Config = Config;
    const PRIORITY: i32 = 2500;
    const PHASES: Phases = Phases::ACCESS;
    const FAIL_CLOSED: bool = true;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        let mut deny = config.deny.clone();
        deny.extend(rules::BOTS.iter().map(|s| s.to_string()));
        config.compiled = Some(Compiled { allow: compile("allow", &config.allow)?, deny: compile("deny", &deny)? });
        Ok(ConfigNeeds { request_body: false })
    }

    fn access(config: &Config) -> Result<Action, String> {
        let Some(ua) = request::header("user-agent") else { return Ok(Action::Proceed) };
        let compiled = config.compiled.as_ref().ok_or("not configured")?;
        if !compiled.allow.is_match(&ua) && compiled.deny.is_match(&ua) {
            return Ok(json_message(403, "Forbidden", &[]));
        }
        Ok(Action::Proceed)
    }
}

export_plugin!(BotDetection);
