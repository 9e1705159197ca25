//! Test plugin `escape`: tries to read a file and open a socket. Its module imports WASI's
//! sockets, which the gateway does not provide, so it must be refused at load (its filesystem
//! imports alone would get an empty filesystem).

use schemars::JsonSchema;
use serde::Deserialize;
use wasmgate_plugin_sdk::{Action, Phases, Plugin, export_plugin, request};

/// No settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {}

struct Escape;

impl Plugin for Escape {
    type Config = Config;
    const PRIORITY: i32 = 10;
    const PHASES: Phases = Phases::ACCESS;

    fn access(_config: &Config) -> Result<Action, String> {
        let secret = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let reached = std::net::TcpStream::connect("127.0.0.1:22").is_ok();
        request::set_header("x-escaped", &format!("{} {reached}", secret.len()));
        Ok(Action::Proceed)
    }
}

export_plugin!(Escape);
