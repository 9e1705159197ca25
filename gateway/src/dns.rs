//! Name resolution for services and targets given as DNS names, cached with a TTL so that a lookup
//! happens once per name and period, not once per request. IP literals never come here.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a successful lookup is reused.
const TTL: Duration = Duration::from_secs(30);

/// Addresses of a name and when they were looked up.
type Resolved = (Arc<[SocketAddr]>, Instant);

/// Shared resolver cache (one per process, kept across reloads).
#[derive(Default)]
pub(crate) struct Resolver {
    cache: RwLock<HashMap<(String, u16), Resolved>>,
}

impl Resolver {
    /// Addresses for `host:port`, IPv4 first (test and demo servers commonly bind 127.0.0.1 only).
    pub(crate) async fn resolve(&self, host: &str, port: u16) -> io::Result<Arc<[SocketAddr]>> {
        let key = (host.to_string(), port);
        if let Some((addrs, at)) = self.cache.read().get(&key)
            && at.elapsed() < TTL
        {
            return Ok(addrs.clone());
        }
        let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
        addrs.sort_by_key(|a| a.is_ipv6());
        addrs.dedup();
        if addrs.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{host} has no addresses")));
        }
        let addrs: Arc<[SocketAddr]> = addrs.into();
        self.cache.write().insert(key, (addrs.clone(), Instant::now()));
        Ok(addrs)
    }
}
