//! State shared by all instances of all plugins and kept across reloads: window counters (see
//! [`super::counters`]) and the TTL cache.

use super::counters::{CounterStore, LocalCounters};
use lru::LruCache;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counters and cache, one per process.
pub struct Shared {
    /// Window counters.
    pub(crate) counters: Box<dyn CounterStore>,
    /// Key/value cache with expiry.
    pub(crate) cache: TtlCache,
}

impl Default for Shared {
    fn default() -> Self {
        Shared { counters: Box::new(LocalCounters::default()), cache: TtlCache::default() }
    }
}

/// One plugin's entries, least recently used first, and their size.
struct PluginEntries {
    entries: LruCache<String, (Vec<u8>, Instant)>,
    bytes: usize,
}

/// A cache with a time to live per entry, namespaced by plugin. Each plugin's entries are
/// bounded in bytes (`cache_bytes` of its module); its least recently used entries make room
/// for new ones. One lock per plugin: no bundled plugin uses the cache on the hot path.
#[derive(Default)]
pub(crate) struct TtlCache {
    plugins: RwLock<HashMap<String, Arc<Mutex<PluginEntries>>>>,
}

/// What an entry costs besides its key and value: map and list bookkeeping.
const ENTRY_OVERHEAD: usize = 64;

impl TtlCache {
    fn entries(&self, plugin: &str) -> Arc<Mutex<PluginEntries>> {
        if let Some(e) = self.plugins.read().get(plugin) {
            return e.clone();
        }
        let new = || Arc::new(Mutex::new(PluginEntries { entries: LruCache::unbounded(), bytes: 0 }));
        self.plugins.write().entry(plugin.to_string()).or_insert_with(new).clone()
    }

    /// The value, unless absent or expired.
    pub(crate) fn get(&self, plugin: &str, key: &str) -> Option<Vec<u8>> {
        let entries = self.entries(plugin);
        let mut own = entries.lock();
        let (value, expires) = own.entries.get(key)?;
        (*expires > Instant::now()).then(|| value.clone())
    }

    /// Stores a value for `ttl_ms` milliseconds, evicting this plugin's least recently used
    /// entries beyond `max_bytes`; false when the entry alone is larger than that.
    pub(crate) fn set(&self, plugin: &str, key: String, value: Vec<u8>, ttl_ms: u64, max_bytes: u64) -> bool {
        let size = key.len() + value.len() + ENTRY_OVERHEAD;
        let entries = self.entries(plugin);
        let mut own = entries.lock();
        if let Some((old, _)) = own.entries.pop(&key) {
            own.bytes -= key.len() + old.len() + ENTRY_OVERHEAD;
        }
        if size as u64 > max_bytes {
            return false;
        }
        while (own.bytes + size) as u64 > max_bytes
            && let Some((k, (v, _))) = own.entries.pop_lru()
        {
            own.bytes -= k.len() + v.len() + ENTRY_OVERHEAD;
        }
        own.bytes += size;
        own.entries.put(key, (value, Instant::now() + Duration::from_millis(ttl_ms)));
        true
    }

    /// Removes a value.
    pub(crate) fn delete(&self, plugin: &str, key: &str) {
        let entries = self.entries(plugin);
        let mut own = entries.lock();
        if let Some((old, _)) = own.entries.pop(key) {
            own.bytes -= key.len() + old.len() + ENTRY_OVERHEAD;
        }
    }

    /// Bytes a plugin's entries take.
    #[cfg(test)]
    pub(crate) fn bytes(&self, plugin: &str) -> usize {
        self.entries(plugin).lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_expires_and_is_namespaced() {
        let cache = TtlCache::default();
        cache.set("a", "k".into(), b"v".to_vec(), 60_000, 1 << 20);
        assert_eq!(cache.get("a", "k"), Some(b"v".to_vec()));
        assert_eq!(cache.get("b", "k"), None);
        cache.set("a", "gone".into(), b"v".to_vec(), 0, 1 << 20);
        assert_eq!(cache.get("a", "gone"), None);
        cache.delete("a", "k");
        assert_eq!(cache.get("a", "k"), None);
    }

    #[test]
    fn cache_bytes_are_bounded_per_plugin_by_evicting_the_least_recently_used() {
        let cache = TtlCache::default();
        let max = 1 << 20;
        for i in 0..2000 {
            cache.set("big", format!("k{i}"), vec![0u8; 4096], 60_000, max);
        }
        assert!(cache.bytes("big") as u64 <= max, "{} > {max}", cache.bytes("big"));
        assert!(cache.get("big", "k1999").is_some(), "the newest stays");
        assert!(cache.get("big", "k0").is_none(), "the oldest went");
        assert!(!cache.set("big", "huge".into(), vec![0u8; 1 << 20], 60_000, max), "too large alone");
        cache.set("small", "k".into(), b"v".to_vec(), 60_000, max);
        assert_eq!(cache.get("small", "k"), Some(b"v".to_vec()), "another plugin's budget is its own");
    }
}
