//! Integration tests: one binary (each links Pingora and wasmtime), one module per area.

mod support;

mod balancing;
mod check;
mod proxying;
mod reload;
mod router;
