//! Test plugin `misbehave`: fails on purpose in access, as chosen by its `mode` (or, with
//! `mode = "header"`, by the request's `x-misbehave` header): `trap`, `panic`, `loop` (runs until
//! its CPU deadline), `grow` (allocates past its memory cap), `error` (returns an error) or `ok`.
//! It also tries to make the host keep too much: `headers` (10,000 response headers), `bigheader`
//! (one of 1 MiB), `context` (3 MiB of context values), `cache` (three 256 KiB cache entries under
//! keys named after the `x-n` header) and `stderr` (1 MiB to stderr). With `configure_loop`, it
//! loops in `configure` instead, as validation of a configuration.

use schemars::JsonSchema;
use serde::Deserialize;
use std::hint::black_box;
use wasmgate_plugin_sdk::{Action, ConfigNeeds, Phases, Plugin, cache, context, export_plugin, request, response};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// What to do: ok, trap, panic, loop, grow, error, or header (read `x-misbehave`).
    #[serde(default = "header")]
    mode: String,
    /// Loop while the configuration is validated.
    #[serde(default)]
    configure_loop: bool,
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

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        if config.configure_loop {
            loop {
                black_box(());
            }
        }
        Ok(ConfigNeeds { request_body: false })
    }

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
            "headers" => {
                for i in 0..10_000 {
                    response::add_header(&format!("x-flood-{i}"), "x");
                }
            }
            "bigheader" => response::set_header("x-big", &"x".repeat(1 << 20)),
            "context" => {
                for i in 0..3 {
                    context::set(&format!("k{i}"), Some(&"x".repeat(1 << 20)));
                }
            }
            "cache" => {
                let n = request::header("x-n").unwrap_or_default();
                for i in 0..3 {
                    cache::set(&format!("k{n}-{i}"), &vec![7u8; 256 << 10], 600_000);
                }
            }
            "stderr" => eprint!("{}", "e".repeat(1 << 20)),
            _ => request::set_header("x-misbehave-ran", "ok"),
        }
        Ok(Action::Proceed)
    }
}

export_plugin!(Misbehave);
