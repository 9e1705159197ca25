//! Test plugin `noop`: an access phase that does nothing, to measure the cost of a call.

use schemars::JsonSchema;
use serde::Deserialize;
use wasmgate_plugin_sdk::{Action, Phases, Plugin, export_plugin};

/// No settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {}

struct Noop;

impl Plugin for Noop {
    type Config = Config;
    const PRIORITY: i32 = 10;
    const PHASES: Phases = Phases::ACCESS;

    fn access(_config: &Config) -> Result<Action, String> {
        Ok(Action::Proceed)
    }
}

export_plugin!(Noop);
