//! Window counters shared by all instances of a module and kept across reloads. Each module has
//! its own space, bounded in bytes (`counter_bytes`); the store sits behind [`CounterStore`] so
//! that a shared one (Redis) can replace the local one without touching plugins.
//!
//! The local store keeps the counters of a module in 64 shards. Each shard is a segmented LRU: a
//! key seen once waits in *probation*; counted again, it moves to the *protected* segment (at
//! most 4/5 of the shard). When a shard is over its bytes, the least recently used probation
//! entry goes first. A flood of one-off keys (a header or a User-Agent the client makes up) so
//! churns only probation, and keys that keep coming back keep their exact counts. Every step is
//! O(1): nothing scans a shard under its lock.

use lru::LruCache;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Fixed windows, aligned to the start of the period in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Year,
}

impl Period {
    /// `[start, end)` in Unix milliseconds of the window that contains `now_ms`.
    pub fn window(self, now_ms: u64) -> (u64, u64) {
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
pub struct CounterRequest {
    /// Counter name (already namespaced by plugin).
    pub key: String,
    /// Its window.
    pub period: Period,
    /// Amount to add.
    pub delta: u64,
    /// Refuse the batch if the counter would exceed this.
    pub limit: Option<u64>,
}

/// The outcome of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterReply {
    /// Whether the increments were applied.
    pub admitted: bool,
    /// (count, ms until the window resets) per request, in order.
    pub states: Vec<(u64, u64)>,
}

/// A store of window counters: one space per module.
pub trait CounterStore: Send + Sync {
    /// The counters of `module`, made on first use, within `max_bytes` (the latest value given
    /// applies: a reload may change it).
    fn space(&self, module: &str, max_bytes: u64) -> Arc<dyn CounterSpace>;
}

/// The counters of one module. Implementations apply a batch atomically: every increment, or
/// none when one would pass its limit, so that concurrent requests never admit more than the
/// limit.
pub trait CounterSpace: Send + Sync {
    /// Applies a batch at time `now_ms`.
    fn increment(&self, now_ms: u64, batch: &[CounterRequest]) -> Result<CounterReply, String>;
}

/// The counters of this node, per module.
#[derive(Default)]
pub struct LocalCounters {
    spaces: RwLock<HashMap<String, Arc<LocalSpace>>>,
}

impl CounterStore for LocalCounters {
    fn space(&self, module: &str, max_bytes: u64) -> Arc<dyn CounterSpace> {
        let found = self.spaces.read().get(module).cloned();
        let space = found.unwrap_or_else(|| {
            let mut spaces = self.spaces.write();
            spaces.entry(module.to_string()).or_insert_with(|| Arc::new(LocalSpace::new(0))).clone()
        });
        space.set_max_bytes(max_bytes);
        space
    }
}

const SHARDS: usize = 64;

/// The windows of one counter name, indexed by `Period as usize`.
type Windows = [Slot; 6];

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    window_start: u64,
    count: u64,
}

/// What an entry costs besides its key: the windows, and the map's and list's bookkeeping.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Windows>() + 64;

fn entry_bytes(key: &str) -> usize {
    key.len() + ENTRY_OVERHEAD
}

/// One module's counters in sharded tables. Each request of a batch hashes its name once for its
/// shard; a batch locks its shards in order.
pub struct LocalSpace {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    /// Bytes one shard may hold.
    shard_bytes: AtomicUsize,
}

/// One shard: a segmented LRU (see the module's documentation).
struct Shard {
    probation: LruCache<Box<str>, Windows>,
    protected: LruCache<Box<str>, Windows>,
    probation_bytes: usize,
    protected_bytes: usize,
}

impl Shard {
    fn windows(&self, key: &str) -> Option<&Windows> {
        self.protected.peek(key).or_else(|| self.probation.peek(key))
    }

    /// Sets one window of `key`, promoting or inserting it, then evicts down to `max_bytes`.
    fn set(&mut self, key: &str, period: Period, slot: Slot, max_bytes: usize) {
        if let Some(w) = self.protected.get_mut(key) {
            w[period as usize] = slot;
            return;
        }
        let size = entry_bytes(key);
        match self.probation.pop_entry(key) {
            Some((key, mut w)) => {
                w[period as usize] = slot;
                self.probation_bytes -= size;
                self.protected_bytes += size;
                self.protected.put(key, w);
                // Protected keeps at most 4/5 of the shard; its least recently used go back to
                // probation.
                while self.protected_bytes > max_bytes / 5 * 4
                    && let Some((k, w)) = self.protected.pop_lru()
                {
                    let size = entry_bytes(&k);
                    self.protected_bytes -= size;
                    self.probation_bytes += size;
                    self.probation.put(k, w);
                }
            }
            None => {
                let mut w = Windows::default();
                w[period as usize] = slot;
                self.probation_bytes += size;
                self.probation.put(key.into(), w);
            }
        }
        while self.probation_bytes + self.protected_bytes > max_bytes {
            let popped = match self.probation.pop_lru() {
                Some(entry) => Some((entry, &mut self.probation_bytes)),
                None => self.protected.pop_lru().map(|entry| (entry, &mut self.protected_bytes)),
            };
            let Some(((k, _), bytes)) = popped else { break };
            *bytes -= entry_bytes(&k);
        }
    }

    fn bytes(&self) -> usize {
        self.probation_bytes + self.protected_bytes
    }
}

impl LocalSpace {
    /// An empty space within `max_bytes`.
    pub fn new(max_bytes: u64) -> LocalSpace {
        let shard = || Shard {
            probation: LruCache::unbounded(),
            protected: LruCache::unbounded(),
            probation_bytes: 0,
            protected_bytes: 0,
        };
        let space = LocalSpace {
            shards: (0..SHARDS).map(|_| Mutex::new(shard())).collect(),
            hasher: RandomState::new(),
            shard_bytes: AtomicUsize::new(0),
        };
        space.set_max_bytes(max_bytes);
        space
    }

    fn set_max_bytes(&self, max_bytes: u64) {
        let per_shard = usize::try_from(max_bytes).unwrap_or(usize::MAX) / SHARDS;
        self.shard_bytes.store(per_shard, Ordering::Relaxed);
    }

    /// Bytes the entries take, as accounted against the budget.
    pub fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().bytes()).sum()
    }
}

impl CounterSpace for LocalSpace {
    fn increment(&self, now_ms: u64, batch: &[CounterRequest]) -> Result<CounterReply, String> {
        let shard_of: Vec<usize> =
            batch.iter().map(|r| (self.hasher.hash_one(r.key.as_str()) >> 32) as usize % SHARDS).collect();
        let mut order: Vec<usize> = shard_of.clone();
        order.sort_unstable();
        order.dedup();
        let mut guards: Vec<_> = order.iter().map(|&s| self.shards[s].lock()).collect();
        let guard_of: Vec<usize> = shard_of.iter().map(|s| order.binary_search(s).expect("locked")).collect();
        let max_bytes = self.shard_bytes.load(Ordering::Relaxed);

        // First pass: current counts (a stale window counts as zero), and the verdict.
        let mut current = Vec::with_capacity(batch.len());
        let mut admitted = true;
        for (r, &g) in batch.iter().zip(&guard_of) {
            let (start, end) = r.period.window(now_ms);
            let count = match guards[g].windows(&r.key).map(|w| w[r.period as usize]) {
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
        for ((r, &g), &(start, end, count)) in batch.iter().zip(&guard_of).zip(&current) {
            let count = if admitted {
                let count = count + r.delta;
                guards[g].set(&r.key, r.period, Slot { window_start: start, count }, max_bytes);
                count
            } else {
                count
            };
            states.push((count, end - now_ms));
        }
        Ok(CounterReply { admitted, states })
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
        let c = LocalSpace::new(1 << 20);
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
        let c = std::sync::Arc::new(LocalSpace::new(1 << 20));
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

    fn rss_bytes() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: usize = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        pages * 4096
    }

    #[test]
    fn a_million_distinct_keys_stay_within_the_budget_and_returning_keys_keep_exact_counts() {
        let budget = 4 << 20;
        let c = LocalSpace::new(budget);
        let now = 9_000_000_000;
        let rss_before = rss_bytes();
        let steady: Vec<String> = (0..50).map(|i| format!("steady-{i}")).collect();
        for i in 0..1_000_000u32 {
            c.increment(now, &[req(&format!("one-off-{i}"), Some(100))]).unwrap();
            // Fifty clients that keep coming back, between the floods.
            if i % 5_000 == 0 {
                for key in &steady {
                    c.increment(now, &[req(key, Some(1_000))]).unwrap();
                }
            }
        }
        assert!(c.bytes() as u64 <= budget, "{} bytes > {budget}", c.bytes());
        let grown = rss_bytes().saturating_sub(rss_before);
        // A million entries unbounded take about 200 MB.
        assert!(grown < 64 << 20, "RSS grew by {grown} bytes");
        for key in &steady {
            let r = c.increment(now, &[req(key, Some(1_000))]).unwrap();
            assert_eq!(r.states[0].0, 201, "{key} kept its count through the flood");
        }
        let first = c.increment(now, &[req("one-off-0", Some(100))]).unwrap();
        assert_eq!(first.states[0].0, 1, "a one-off key from the start of the flood was evicted");
    }

    #[test]
    fn spaces_are_per_module_and_their_budget_follows_reloads() {
        let store = LocalCounters::default();
        let a = store.space("a", 1 << 20);
        let now = 1_000_000_000;
        assert!(a.increment(now, &[req("k", Some(1))]).unwrap().admitted);
        let b = store.space("b", 1 << 20);
        assert!(b.increment(now, &[req("k", Some(1))]).unwrap().admitted, "another module's key is its own");
        let again = store.space("a", 2 << 20);
        assert!(!again.increment(now, &[req("k", Some(1))]).unwrap().admitted, "the same space after a reload");
    }
}
