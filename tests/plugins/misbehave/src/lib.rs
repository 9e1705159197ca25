//! Test plugin `misbehave`: fails on purpose in access, as chosen by its `mode` (or, with
//! `mode = "header"`, by the request's `x-misbehave` header): `trap`, `panic`, `loop` (runs until
//! its CPU deadline), `grow` (allocates past its memory cap), `error` (returns an error) or `ok`.

use schemars::JsonSchema;
use serde::Deserialize;
use std::hint::black_box;
use wasmgate_plugin_sdk::{Action, Phases, Plugin, export_plugin, request};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// What to do: ok, trap, panic, loop, grow, error, or header (read `x-misbehave`).
    #[serde(default = "header")]
    mode: String,
}

fn header() -> String {
    "header".into()
}

struct Misbehave;

/// A WebAssembly `unreachable` trap (a plain abort where there is no wasm).
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

impl Plugin for Misbehave {
    type Config = Config;
    const PRIORITY: i32 = 3000;
    const PHASES: Phases = Phases::ACCESS;
    const FAIL_CLOSED: bool = true;

    fn access(config: &Config) -> Result<Action, String> {
        let mode = match config.mode.as_str() {
            "header" => request::header("x-misbehave").unwrap_or_else(|| "ok".into()),
            m => m.to_string(),
        };
        match mode.as_str() {
            "trap" => trap(),
            "panic" => panic!("misbehave was asked to panic"),
            "loop" => loop {
                black_box(());
            },
            "grow" => {
                let big = vec![7u8; 512 << 20];
                black_box(&big);
            }
            "error" => return Err("misbehave was asked to fail".into()),
            _ => request::set_header("x-misbehave-ran", "ok"),
        }
        Ok(Action::Proceed)
    }
}

export_plugin!(Misbehave);
