//! Test support: the real `wasmgate` binary as a child process, real upstream HTTP servers and a
//! real HTTP client, all on 127.0.0.1.

pub mod client;
pub mod gateway;
pub mod plugins;
pub mod upstream;

pub use client::{Response, request};
pub use gateway::Gateway;
pub use upstream::{Echo, Upstream};

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
