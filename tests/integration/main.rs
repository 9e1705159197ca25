//! Integration tests: one binary (each links Pingora and wasmtime), one module per area.

mod support;

mod admin;
mod balancing;
mod bundled;
mod check;
mod docs;
mod fuzz_corpora;
mod go_plugins;
mod grpc;
mod hardening;
mod health;
mod layers;
mod plugin_host;
mod proxying;
mod reload;
mod router;
mod status;
mod tls;
