//! The Rust SDK for wasmgate plugins.
//!
//! A plugin is one type implementing [`Plugin`]: a typed serde configuration (whose JSON Schema is
//! derived with `schemars`), a priority, and the phases it uses. [`export_plugin!`] turns it into a
//! WebAssembly component for `wasm32-wasip2`.
//!
//! ```ignore
//! use wasmgate_plugin_sdk::{Action, Phases, Plugin, export_plugin, request};
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     /// Header to add upstream.
//!     #[serde(default = "default_name")]
//!     header: String,
//! }
//! fn default_name() -> String { "x-hello".into() }
//!
//! struct Hello;
//! impl Plugin for Hello {
//!     type Config = Config;
//!     const PRIORITY: i32 = 1000;
//!     const PHASES: Phases = Phases::ACCESS;
//!     fn access(config: &Config) -> Result<Action, String> {
//!         request::set_header(&config.header, "world");
//!         Ok(Action::Proceed)
//!     }
//! }
//! export_plugin!(Hello);
//! ```

mod auth;
mod glue;
pub mod logs;
pub mod ratelimit;
pub mod transform;

/// Bindings generated from `wit/plugin.wit`.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "export_world",
        default_bindings_module: "wasmgate_plugin_sdk::bindings",
        generate_all,
    });
}

pub use auth::{
    authenticate_or_anonymous, check_anonymous, set_consumer, set_consumer_by_key, set_consumer_by_password,
};
pub use bindings::wasmgate::log::sink;
pub use bindings::wasmgate::metrics::metrics;
pub use bindings::wasmgate::plugin::types::{
    Action, ConfigNeeds, Consumer, CounterOp, CounterResult, CounterState, Credential, CredentialPlace, JwtCheck,
    LimitKey, LogLevel, Phases, Response, ResponseSource, SignatureCheck, Window,
};
pub use bindings::wasmgate::plugin::{cache, clock, consumers, context, counters, request, response, upstreams};
#[doc(hidden)]
pub use glue::{Exports, Glue, PluginVersion};

/// A wasmgate plugin. Implement the phases listed in [`Plugin::PHASES`]; the others are never called.
pub trait Plugin: 'static {
    /// The configuration: a serde type with a JSON Schema. Errors in it name the field.
    type Config: serde::de::DeserializeOwned + schemars::JsonSchema + 'static;
    /// Higher runs first (Kong's PRIORITY).
    const PRIORITY: i32;
    /// The phases this plugin implements.
    const PHASES: Phases;
    /// Answer 500 when the plugin fails (right for auth and access control); otherwise it is skipped.
    const FAIL_CLOSED: bool = false;
    /// The plugin cannot be scoped to a consumer (Kong's `no_consumer`; auth plugins).
    const NO_CONSUMER: bool = false;

    /// Checks what serde cannot and prepares derived state (e.g. compiled patterns) in the
    /// config. Runs when a configuration is loaded; an error rejects that configuration.
    fn configure(_config: &mut Self::Config) -> Result<ConfigNeeds, String> {
        Ok(ConfigNeeds { request_body: false })
    }
    /// Before routing (global plugins only).
    fn rewrite(_config: &Self::Config) -> Result<Action, String> {
        Ok(Action::Proceed)
    }
    /// After routing, before the upstream: authenticate, limit, rewrite, answer early.
    fn access(_config: &Self::Config) -> Result<Action, String> {
        Ok(Action::Proceed)
    }
    /// Response status and headers.
    fn header_filter(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }
    /// A response body chunk: return `Some` to replace it.
    fn body_filter(_config: &Self::Config, _chunk: Vec<u8>, _end_of_stream: bool) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }
    /// After the response: logging and metrics.
    fn log(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }
}

/// Exports a [`Plugin`] as the component's implementation of the wasmgate world. (Built for the
/// host, a plugin crate is a plain library whose logic can be unit-tested; the exports exist only
/// on `wasm32`.)
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        impl $crate::PluginVersion for $plugin {
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
        }
        #[doc(hidden)]
        #[cfg(target_arch = "wasm32")]
        type __WasmgatePlugin = $crate::Glue<$plugin>;
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export_world!(__WasmgatePlugin with_types_in $crate::bindings);
        #[doc(hidden)]
        #[cfg(not(target_arch = "wasm32"))]
        pub static WASMGATE_EXPORTS: $crate::Exports = $crate::Exports::of::<$plugin>();
    };
}

/// An early answer: status, headers and body.
pub fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Action {
    Action::Respond(Response {
        status,
        headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body: body.into(),
    })
}

/// An early answer `{"message": ...}` in JSON, as Kong's plugins give.
pub fn json_message(status: u16, message: &str, headers: &[(&str, &str)]) -> Action {
    let mut all = vec![("content-type", "application/json; charset=utf-8")];
    all.extend_from_slice(headers);
    respond(status, &all, serde_json::json!({ "message": message }).to_string())
}

/// Logs through the gateway's log, tagged with the plugin's name.
pub fn log(level: LogLevel, message: &str) {
    bindings::wasmgate::plugin::logging::log(level, message);
}

/// Declares, in `configure`, a place this configuration reads a credential from (a header, a
/// query argument, a cookie): the gateway's log records then write its value as `REDACTED`.
pub fn redact(place: &CredentialPlace) -> Result<(), String> {
    bindings::wasmgate::plugin::logging::redact(place)
}
