//! Test plugin `stamp`: appends "stamp" to the `x-order` request header (access) and sets
//! `x-stamp: v1` on responses; built with the `v2` feature it says `v2`. Used to test priorities
//! and hot loading of a new version.

use schemars::JsonSchema;
use serde::Deserialize;
use wasmgate_plugin_sdk::{Action, Phases, Plugin, export_plugin, request, response};

/// No settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {}

const VERSION: &str = if cfg!(feature = "v2") { "v2" } else { "v1" };

struct Stamp;

impl Plugin for Stamp {
    type Config = Config;
    const PRIORITY: i32 = 1000;
    const PHASES: Phases = Phases::ACCESS.union(Phases::HEADER_FILTER);

    fn access(_config: &Config) -> Result<Action, String> {
        let order = request::header("x-order").map_or("stamp".into(), |o| format!("{o},stamp"));
        request::set_header("x-order", &order);
        Ok(Action::Proceed)
    }

    fn header_filter(_config: &Config) -> Result<(), String> {
        response::set_header("x-stamp", VERSION);
        Ok(())
    }
}

export_plugin!(Stamp);
