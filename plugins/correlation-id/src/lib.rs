//! correlation-id: gives every request an id in a header (kept when the client sent one), sent
//! upstream and, with `echo_downstream`, back to the client. Kong's plugin of the same name.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use wasmgate_plugin_sdk::{Action, Phases, Plugin, clock, context, export_plugin, request, response};

/// How ids are made.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, PartialEq, Debug)]
enum Generator {
    /// A random UUID per request.
    #[serde(rename = "uuid")]
    Uuid,
    /// A random UUID per plugin instance, then `#` and a counter: cheaper, still unique.
    #[serde(rename = "uuid#counter")]
    UuidCounter,
    /// Where and when the request arrived: `host-port-client-millis-counter`.
    #[serde(rename = "tracker")]
    Tracker,
}

/// Configuration of correlation-id.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Header that carries the id (Kong's default was `Kong-Request-ID`).
    #[serde(default = "default_header")]
    header_name: String,
    /// How ids are made: `uuid`, `uuid#counter` or `tracker`.
    #[serde(default = "default_generator")]
    generator: Generator,
    /// Also send the id back to the client in the response.
    #[serde(default)]
    echo_downstream: bool,
}

fn default_header() -> String {
    "X-Request-ID".into()
}

fn default_generator() -> Generator {
    Generator::UuidCounter
}

thread_local! {
    static INSTANCE_ID: String = uuid::Uuid::new_v4().to_string();
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

fn next_count() -> u64 {
    COUNTER.with(|c| {
        c.set(c.get() + 1);
        c.get()
    })
}

fn generate(generator: Generator) -> String {
    match generator {
        Generator::Uuid => uuid::Uuid::new_v4().to_string(),
        Generator::UuidCounter => INSTANCE_ID.with(|id| format!("{id}#{}", next_count())),
        Generator::Tracker => format!(
            "{}-{}-{}-{}-{}",
            request::host(),
            request::port(),
            request::client_ip(),
            clock::now_ms(),
            next_count()
        ),
    }
}

struct CorrelationId;

impl Plugin for CorrelationId {
    type Config = Config;
    const PRIORITY: i32 = 100_001;
    const PHASES: Phases = Phases::ACCESS;

    /// The client's id, or a new one; sent upstream and, with `echo_downstream`, set on the
    /// response to come.
    fn access(config: &Config) -> Result<Action, String> {
        let id = request::header(&config.header_name)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| generate(config.generator));
        request::set_header(&config.header_name, &id);
        // The gateway's access log records it as the request's id.
        context::shared_set("request_id", Some(&id));
        if config.echo_downstream {
            response::set_header(&config.header_name, &id);
        }
        Ok(Action::Proceed)
    }
}

export_plugin!(CorrelationId);
