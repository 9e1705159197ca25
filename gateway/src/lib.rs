//! wasmgate: an API gateway on Pingora whose plugins are sandboxed WebAssembly components.
//!
//! The request flow is in [`proxy`]; configuration is parsed in [`config`] and compiled into an
//! immutable [`snapshot::Snapshot`] that [`reload`] swaps atomically.

pub mod access_log;
pub mod admin;
pub mod balancer;
pub mod config;
pub mod consumers;
pub mod dns;
pub mod health;
pub mod ids;
pub mod log_record;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod plugins;
pub mod probes;
pub mod proxy;
pub mod reload;
pub mod router;
pub mod server;
pub mod sinks;
pub mod snapshot;
pub mod status;
pub mod transfer;
