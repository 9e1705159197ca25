//! request-size-limiting: refuses request bodies over a size, as Kong's plugin of the same name
//! does: by `Content-Length` before the body is read (413, or 417 to an `Expect: 100-continue`),
//! and by the host as the body streams when no length was given.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use wasmgate_plugin_sdk::{Action, Phases, Plugin, export_plugin, json_message, request};

/// Configuration of request-size-limiting.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The largest body allowed, in `size_unit`s.
    #[serde(default = "default_size")]
    allowed_payload_size: u64,
    /// `megabytes` (2^20 bytes), `kilobytes` (2^10) or `bytes`.
    #[serde(default)]
    size_unit: SizeUnit,
    /// Refuse (411) requests without a valid `Content-Length`, unless they are chunked.
    #[serde(default)]
    require_content_length: bool,
}

fn default_size() -> u64 {
    128
}

/// The unit of `allowed_payload_size`.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
enum SizeUnit {
    #[default]
    Megabytes,
    Kilobytes,
    Bytes,
}

impl Config {
    fn allowed_bytes(&self) -> u64 {
        let factor = match self.size_unit {
            SizeUnit::Megabytes => 1 << 20,
            SizeUnit::Kilobytes => 1 << 10,
            SizeUnit::Bytes => 1,
        };
        self.allowed_payload_size.saturating_mul(factor)
    }
}

const TOO_LARGE: &str = "Request size limit exceeded";

struct RequestSizeLimiting;

impl Plugin for RequestSizeLimiting {
    type Config = Config;
    const PRIORITY: i32 = 951;
    const PHASES: Phases = Phases::ACCESS;

    fn access(config: &Config) -> Result<Action, String> {
        let allowed = config.allowed_bytes();
        match request::header("content-length").and_then(|l| l.trim().parse::<u64>().ok()) {
            Some(length) if length > allowed => {
                let expects = request::header("expect").is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"));
                Ok(json_message(if expects { 417 } else { 413 }, TOO_LARGE, &[]))
            }
            Some(_) => Ok(Action::Proceed),
            None if config.require_content_length
                && request::header("transfer-encoding").as_deref() != Some("chunked") =>
            {
                Ok(json_message(411, "A valid Content-Length header is required", &[]))
            }
            None => {
                // The size is known only as the body streams: the host counts it.
                request::limit_body(allowed);
                Ok(Action::Proceed)
            }
        }
    }
}

export_plugin!(RequestSizeLimiting);
