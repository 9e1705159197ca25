//! wasmgate: an API gateway on Pingora whose plugins are sandboxed WebAssembly components.
//!
//! The request flow is in `proxy`; configuration is parsed in [`config`], compiled into
//! [`entities`] and, with the plugin chains, into the immutable `snapshot` that [`reload`] swaps
//! atomically. The modules stand in layers, each using only those below it (`docs/ARCHITECTURE.md`;
//! a test keeps it so). What is public here is what the `wasmgate` binary and the benchmarks use.

mod access_log;
mod admin;
mod balancer;
pub mod config;
mod consumers;
mod dns;
pub mod entities;
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod ids;
mod logging;
pub mod memory;
mod metrics;
pub mod passwords;
pub mod plugins;
mod probes;
mod proxy;
pub mod reload;
pub mod request;
pub mod router;
pub mod server;
mod signatures;
mod sinks;
mod snapshot;
mod status;
mod ticket_keys;
mod tls;
pub mod transfer;
