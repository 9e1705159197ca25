//! State shared by all instances of all plugins and kept across reloads: window counters and the
//! TTL cache. Counters sit behind [`CounterStore`] so that a shared store (Redis) can replace the
//! local one without touching plugins.

use hashbrown::HashTable;
use lru::LruCache;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
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

/// Fixed windows, aligned to the start of the period in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Period {
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Year,
}

impl Period {
    /// `[start, end)` in Unix milliseconds of the window that contains `now_ms`.
    pub(crate) fn window(self, now_ms: u64) -> (u64, u64) {
        let fixed = |len: u64| {
            let start = now_ms - now_ms % len;
            (start, start + len)
        };
        const DAY: u64 = 86_400_000;
        match self {
            Period::Second => fixed(1_000),
            Period::Minute => fixed(60_000),
            Period::Hour => fixed(3_600_000),
            Period::Day => fixed(DAY),
            Period::Month | Period::Year => {
                let (y, m, _) = civil_from_days((now_ms / DAY) as i64);
                let (start, end) = match self {
                    Period::Month => ((y, m), if m == 12 { (y + 1, 1) } else { (y, m + 1) }),
                    _ => ((y, 1), (y + 1, 1)),
                };
                (days_from_civil(start.0, start.1, 1) as u64 * DAY, days_from_civil(end.0, end.1, 1) as u64 * DAY)
            }
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// One increment of a batch.
#[derive(Debug, Clone)]
pub(crate) struct CounterRequest {
    /// Counter name (already namespaced by plugin).
    pub(crate) key: String,
    /// Its window.
    pub(crate) period: Period,
    /// Amount to add.
    pub(crate) delta: u64,
    /// Refuse the batch if the counter would exceed this.
    pub(crate) limit: Option<u64>,
}

/// The outcome of a batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CounterReply {
    /// Whether the increments were applied.
    pub(crate) admitted: bool,
    /// (count, ms until the window resets) per request, in order.
    pub(crate) states: Vec<(u64, u64)>,
}

/// A store of window counters. Implementations apply a batch atomically: every increment, or none
/// when one would pass its limit, so that concurrent requests never admit more than the limit.
pub(crate) trait CounterStore: Send + Sync {
    /// Applies a batch at time `now_ms`.
    fn increment(&self, now_ms: u64, batch: &[CounterRequest]) -> Result<CounterReply, String>;
}

const SHARDS: usize = 64;

/// The windows of one counter name, indexed by `Period as usize`.
type Windows = [Slot; 6];

/// Counters of this node, in sharded tables. Each request of a batch hashes its name once (for
/// the shard and the look-ups alike); a batch locks its shards in order.
pub(crate) struct LocalCounters {
    shards: Vec<Mutex<HashTable<(String, Windows)>>>,
    hasher: RandomState,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    window_start: u64,
    count: u64,
}

const PERIODS: [Period; 6] = [Period::Second, Period::Minute, Period::Hour, Period::Day, Period::Month, Period::Year];

impl Default for LocalCounters {
    fn default() -> Self {
        LocalCounters {
            shards: (0..SHARDS).map(|_| Mutex::new(HashTable::new())).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl CounterStore for LocalCounters {
    fn increment(&self, now_ms: u64, batch: &[CounterRequest]) -> Result<CounterReply, String> {
        let hashes: Vec<u64> = batch.iter().map(|r| self.hasher.hash_one(r.key.as_str())).collect();
        // Shards by bits the tables' own bucket and tag bits do not use.
        let shard_of: Vec<usize> = hashes.iter().map(|h| (h >> 32) as usize % SHARDS).collect();
        let mut order: Vec<usize> = shard_of.clone();
        order.sort_unstable();
        order.dedup();
        let mut guards: Vec<_> = order.iter().map(|&s| self.shards[s].lock()).collect();
        let guard_of: Vec<usize> = shard_of.iter().map(|s| order.binary_search(s).expect("locked")).collect();
        let rehash = |(name, _): &(String, Windows)| self.hasher.hash_one(name.as_str());

        // First pass: current counts (a stale window counts as zero), and the verdict.
        let mut current = Vec::with_capacity(batch.len());
        let mut admitted = true;
        for ((r, &g), &hash) in batch.iter().zip(&guard_of).zip(&hashes) {
            let (start, end) = r.period.window(now_ms);
            let count = match guards[g].find(hash, |(name, _)| *name == r.key).map(|(_, w)| w[r.period as usize]) {
                Some(slot) if slot.window_start == start => slot.count,
                _ => 0,
            };
            if r.limit.is_some_and(|limit| count + r.delta > limit) {
                admitted = false;
            }
            current.push((start, end, count));
        }
        // Second pass: apply everything, or nothing.
        let mut states = Vec::with_capacity(batch.len());
        for (i, ((r, &g), &hash)) in batch.iter().zip(&guard_of).zip(&hashes).enumerate() {
            let (start, end, count) = current[i];
            let count = if admitted {
                let table = &mut guards[g];
                let windows = match table.find_mut(hash, |(name, _)| *name == r.key) {
                    Some((_, w)) => w,
                    None => &mut table.insert_unique(hash, (r.key.clone(), Windows::default()), rehash).into_mut().1,
                };
                windows[r.period as usize] = Slot { window_start: start, count: count + r.delta };
                if table.len() > 10_000 {
                    table.retain(|(_, w)| {
                        w.iter().zip(PERIODS).any(|(s, p)| s.count > 0 && s.window_start >= p.window(now_ms).0)
                    });
                }
                count + r.delta
            } else {
                count
            };
            states.push((count, end - now_ms));
        }
        Ok(CounterReply { admitted, states })
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
    fn calendar_windows() {
        // 2026-02-14T10:30:12.345Z
        let now = 1_771_065_012_345;
        assert_eq!(Period::Minute.window(now), (1_771_065_000_000, 1_771_065_060_000));
        assert_eq!(Period::Second.window(now), (1_771_065_012_000, 1_771_065_013_000));
        let feb_1 = 1_769_904_000_000; // 2026-02-01
        let mar_1 = 1_772_323_200_000; // 2026-03-01
        assert_eq!(Period::Month.window(now), (feb_1, mar_1));
        assert_eq!(Period::Year.window(now), (1_767_225_600_000, 1_798_761_600_000));
        assert_eq!(Period::Month.window(1_796_083_200_000).1, 1_798_761_600_000, "December ends at New Year");
        for days in [0i64, 59, 365, 10_957, 20_000, -1] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    fn req(key: &str, limit: Option<u64>) -> CounterRequest {
        CounterRequest { key: key.into(), period: Period::Minute, delta: 1, limit }
    }

    #[test]
    fn batches_are_all_or_nothing() {
        let c = LocalCounters::default();
        let now = 1_000_000_000;
        assert!(c.increment(now, &[req("a", Some(2)), req("b", Some(1))]).unwrap().admitted);
        let r = c.increment(now, &[req("a", Some(2)), req("b", Some(1))]).unwrap();
        assert!(!r.admitted);
        assert_eq!(r.states.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 1], "nothing applied");
        assert!(c.increment(now, &[req("a", Some(2))]).unwrap().admitted);
        assert!(c.increment(now + 60_000, &[req("b", Some(1))]).unwrap().admitted, "new window");
    }

    #[test]
    fn exact_under_concurrency() {
        let c = std::sync::Arc::new(LocalCounters::default());
        let now = 5_000_000;
        let admitted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..500 {
                        if c.increment(now, &[req("k", Some(1000))]).unwrap().admitted {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.into_inner(), 1000);
    }

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
