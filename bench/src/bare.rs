//! The baseline of `make bench-compare`: Pingora with nothing but `upstream_peer`, on the same
//! pingora version and server settings as wasmgate (one worker thread, keepalive pool). Two
//! binaries run it: `bare-pingora` (the system allocator, as Pingora ships) and
//! `bare-pingora-mimalloc` (the allocator wasmgate uses), so that the allocator's share of a
//! difference is visible. With `TLS_LISTEN CERT KEY` it also terminates TLS there (Pingora's
//! Mozilla-intermediate settings, h2 through ALPN), the baseline of the HTTPS and h2 rows.

use async_trait::async_trait;
use pingora_core::server::Server;
use pingora_core::server::configuration::ServerConf;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::{ProxyHttp, Session};
use std::net::SocketAddr;

struct Bare(SocketAddr);

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> pingora_core::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.0, false, String::new())))
    }
}

/// `bare-pingora LISTEN UPSTREAM [THREADS [TLS_LISTEN CERT KEY]]`: serves until killed.
pub fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream)) = (args.get(1), args.get(2).and_then(|u| u.parse().ok())) else {
        eprintln!("usage: bare-pingora LISTEN UPSTREAM [THREADS [TLS_LISTEN CERT KEY]]");
        std::process::exit(2);
    };
    let threads = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(1);
    let conf = ServerConf { threads, ..ServerConf::default() };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora_proxy::http_proxy_service(&server.configuration, Bare(upstream));
    proxy.add_tcp(listen);
    if let (Some(tls), Some(cert), Some(key)) = (args.get(4), args.get(5), args.get(6)) {
        let mut settings =
            pingora_core::listeners::tls::TlsSettings::intermediate(cert, key).expect("the certificate and key");
        settings.enable_h2();
        proxy.add_tls_with_settings(tls, None, settings);
    }
    server.add_service(proxy);
    server.run_forever();
}
