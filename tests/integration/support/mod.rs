//! Test support: the real `wasmgate` binary as a child process, real upstream HTTP servers and a
//! real HTTP client, all on 127.0.0.1.

pub mod admin;
pub mod client;
pub mod collector;
pub mod config;
pub mod gateway;
pub mod jwt;
pub mod metrics;
pub mod plugins;
pub mod scenarios;
pub mod upstream;
pub mod wait;

pub use client::{Response, request};
pub use config::{Config, one_route, pool};
pub use gateway::Gateway;
pub use upstream::{Echo, TlsServer, Upstream};
pub use wait::eventually;

/// A port nobody listens on right now, never handed out twice in this run. Ports come from
/// 20000-29999, outside the kernel's ephemeral range that port-0 binds use, because Pingora's
/// listeners set SO_REUSEPORT: two gateways given the same port would share its connections.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ =
        NEXT.compare_exchange(0, 20_000 + (std::process::id() % 400) as u16 * 25, Ordering::AcqRel, Ordering::Acquire);
    loop {
        let port = NEXT.fetch_add(1, Ordering::AcqRel);
        let port = 20_000 + (port - 20_000) % 10_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
