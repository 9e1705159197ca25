//! One request as the gateway's layers share it: the state plugins see and change
//! ([`RequestState`]), the phase and source of a call, header writes, the gateway's own answers
//! and the log record. It sits below plugins, metrics and the proxy, which all work on it, and
//! above the compiled entities it points into.

pub mod answer;
pub(crate) mod grpc;
pub(crate) mod header_access;
pub(crate) mod log_record;
pub(crate) mod redact;
mod state;

pub use state::*;
