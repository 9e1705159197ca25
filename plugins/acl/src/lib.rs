//! acl: lets consumers through by their ACL groups (an allow list or a deny list), after an
//! authentication plugin identified them, as Kong's plugin does.

use schemars::JsonSchema;
use serde::Deserialize;
use wasmgate_plugin_sdk::{Action, ConfigNeeds, Phases, Plugin, consumers, export_plugin, json_message, request};

/// Configuration of acl: exactly one of `allow` or `deny`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Groups allowed; consumers in none of them get 403.
    allow: Option<Vec<String>>,
    /// Groups denied; consumers in any of them get 403.
    deny: Option<Vec<String>>,
    /// Do not send `X-Consumer-Groups` upstream.
    #[serde(default)]
    hide_groups_header: bool,
}

struct Acl;

impl Plugin for Acl {
    type Config = Config;
    const PRIORITY: i32 = 950;
    const PHASES: Phases = Phases::ACCESS;
    const FAIL_CLOSED: bool = true;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        match (&config.allow, &config.deny) {
            (Some(_), Some(_)) | (None, None) => Err("config: set exactly one of `allow` or `deny`".into()),
            (Some(list), None) | (None, Some(list)) if list.is_empty() => Err(format!(
                "config.{}: give at least one group",
                if config.allow.is_some() { "allow" } else { "deny" }
            )),
            _ => Ok(ConfigNeeds { request_body: false }),
        }
    }

    fn access(config: &Config) -> Result<Action, String> {
        let Some(groups) = consumers::authenticated_groups() else {
            return Ok(json_message(401, "Unauthorized", &[]));
        };
        let member = |list: &Vec<String>| groups.iter().any(|g| list.contains(g));
        let allowed = match (&config.allow, &config.deny) {
            (Some(allow), _) => member(allow),
            (None, Some(deny)) => !member(deny),
            (None, None) => true,
        };
        if !allowed {
            return Ok(json_message(403, "You cannot consume this service", &[]));
        }
        if config.hide_groups_header || groups.is_empty() {
            request::remove_header("x-consumer-groups");
        } else {
            request::set_header("x-consumer-groups", &groups.join(", "));
        }
        Ok(Action::Proceed)
    }
}

export_plugin!(Acl);
