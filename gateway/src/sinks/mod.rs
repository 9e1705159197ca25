//! Log sinks: where log plugins' entries go. A plugin hands an entry to a [`Sink`] and goes on;
//! the sink's own thread appends it to a file ([`file`]) or sends it to an HTTP endpoint
//! ([`http`]). The queue between them is bounded: when it is full, entries are dropped and
//! counted, so a slow or dead destination never slows requests.
//!
//! Sinks are shared: every instance of every plugin that opens the same destination with the same
//! options gets the same sink, which lives while one of them holds it. What a module may open is
//! decided by its [`SinkGrants`].

mod file;
mod grants;
mod http;

pub(crate) use grants::{AllowedFile, SinkGrants};
pub(crate) use http::{Endpoint, HttpOptions, QueueOptions};

use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

/// Largest entry a sink takes; larger ones are dropped.
const MAX_ENTRY_BYTES: usize = 1 << 20;

/// Most bytes of entries waiting in one sink's queue, whatever its entry count.
const MAX_QUEUE_BYTES: u64 = 64 << 20;

/// Most entries a sink's queue may be configured to hold (its slots are allocated when it opens).
const MAX_QUEUE_ENTRIES: u32 = 100_000;

/// A destination with its queue and writer thread.
pub(crate) struct Sink {
    tx: SyncSender<String>,
    stats: Arc<Stats>,
}

/// What a destination's sinks did, kept for `/metrics` across reloads (per destination name).
#[derive(Default)]
pub(crate) struct Stats {
    /// Entries waiting now, or being written or sent.
    waiting: AtomicU64,
    /// Bytes of the entries waiting now.
    waiting_bytes: AtomicU64,
    /// Entries written or delivered.
    written: AtomicU64,
    /// Entries dropped because the queue was full (or the entry too large).
    dropped: AtomicU64,
    /// Entries given up on: the file could not be written, or the endpoint failed past the retry time.
    failed: AtomicU64,
}

impl Stats {
    /// Marks entries of `bytes` as taken off the queue (to be written or sent).
    fn taken(&self, bytes: usize) {
        self.waiting_bytes.fetch_sub(bytes as u64, Ordering::Relaxed);
    }

    /// `n` taken entries were written or sent.
    fn written(&self, n: usize) {
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        self.waiting.fetch_sub(n as u64, Ordering::Relaxed);
    }

    /// `n` taken entries were given up on.
    fn failed(&self, n: usize) {
        self.failed.fetch_add(n as u64, Ordering::Relaxed);
        self.waiting.fetch_sub(n as u64, Ordering::Relaxed);
    }
}

impl Sink {
    /// Queues an entry without waiting; drops (and counts) it when the queue is full.
    pub(crate) fn send(&self, entry: String) {
        let bytes = entry.len() as u64;
        if bytes <= MAX_ENTRY_BYTES as u64 {
            let before = self.stats.waiting_bytes.fetch_add(bytes, Ordering::Relaxed);
            if before + bytes <= MAX_QUEUE_BYTES {
                // Counted before it is queued: the writer may take it at once.
                self.stats.waiting.fetch_add(1, Ordering::Relaxed);
                if self.tx.try_send(entry).is_ok() {
                    return;
                }
                self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
            }
            self.stats.waiting_bytes.fetch_sub(bytes, Ordering::Relaxed);
        }
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// What identifies a sink: its destination and the options it was opened with.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    File { file: AllowedFile, reopen: bool, max_entries: u32 },
    Http { endpoint: Endpoint, options: HttpOptions },
}

impl Key {
    /// The destination's name on `/metrics` (no credentials).
    fn name(&self) -> String {
        match self {
            Key::File { file, .. } => format!("file:{}", file.path.display()),
            Key::Http { endpoint, .. } => endpoint.label(),
        }
    }
}

static SINKS: LazyLock<Mutex<HashMap<Key, Weak<Sink>>>> = LazyLock::new(Mutex::default);
static STATS: LazyLock<Mutex<HashMap<String, Arc<Stats>>>> = LazyLock::new(Mutex::default);

/// The sink appending lines to `file`, opened or shared.
pub(crate) fn file(file: AllowedFile, reopen: bool, max_entries: u32) -> Arc<Sink> {
    let max = max_entries.clamp(1, MAX_QUEUE_ENTRIES);
    open(Key::File { file, reopen, max_entries: max }, max, |key, rx, stats| match key {
        Key::File { file, reopen, .. } => file::run(file, reopen, rx, stats),
        Key::Http { .. } => unreachable!("a file key"),
    })
}

/// The sink sending entries to `endpoint` (already allowed), opened or shared.
pub(crate) fn http(endpoint: Endpoint, options: HttpOptions) -> Arc<Sink> {
    let max = options.queue.max_entries.clamp(1, MAX_QUEUE_ENTRIES);
    open(Key::Http { endpoint, options }, max, |key, rx, stats| match key {
        Key::Http { endpoint, options } => http::run(endpoint, options, rx, stats),
        Key::File { .. } => unreachable!("an http key"),
    })
}

fn open(key: Key, max_entries: u32, run: fn(Key, Receiver<String>, Arc<Stats>)) -> Arc<Sink> {
    let mut sinks = SINKS.lock();
    if let Some(sink) = sinks.get(&key).and_then(Weak::upgrade) {
        return sink;
    }
    sinks.retain(|_, s| s.strong_count() > 0);
    let name = key.name();
    let stats = STATS.lock().entry(name.clone()).or_default().clone();
    let (tx, rx) = std::sync::mpsc::sync_channel(max_entries as usize);
    let sink = Arc::new(Sink { tx, stats: stats.clone() });
    sinks.insert(key.clone(), Arc::downgrade(&sink));
    let spawned = std::thread::Builder::new().name("wasmgate-log-sink".into()).spawn(move || run(key, rx, stats));
    if let Err(e) = spawned {
        tracing::error!(sink = %name, error = %e, "cannot start the log sink's thread; its entries are dropped");
    }
    sink
}

/// Waits until every sink has written or sent what it holds, or `limit` has passed (at exit).
pub(crate) fn drain(limit: Duration) {
    let deadline = Instant::now() + limit;
    let busy = || STATS.lock().values().any(|s| s.waiting.load(Ordering::Relaxed) > 0);
    while busy() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes the sinks' counters in the Prometheus text format.
pub(crate) fn render(out: &mut String) {
    let stats: Vec<(String, Arc<Stats>)> = {
        let mut all: Vec<_> = STATS.lock().iter().map(|(n, s)| (n.clone(), s.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    };
    let esc = crate::metrics::esc;
    crate::metrics::metric(
        out,
        "wasmgate_log_entries_total",
        "counter",
        "Log plugin entries by sink and outcome: written, dropped (queue full), failed (could not be written or sent in time).",
    );
    for (name, s) in &stats {
        for (outcome, n) in [("written", &s.written), ("dropped", &s.dropped), ("failed", &s.failed)] {
            let _ = writeln!(
                out,
                "wasmgate_log_entries_total{{sink=\"{}\",outcome=\"{outcome}\"}} {}",
                esc(name),
                n.load(Ordering::Relaxed)
            );
        }
    }
    crate::metrics::metric(
        out,
        "wasmgate_log_queue_entries",
        "gauge",
        "Log plugin entries waiting in each sink's queue.",
    );
    for (name, s) in &stats {
        let _ =
            writeln!(out, "wasmgate_log_queue_entries{{sink=\"{}\"}} {}", esc(name), s.waiting.load(Ordering::Relaxed));
    }
}

/// Empties the queue of a sink whose writer cannot work, counting its entries as failed.
fn discard(rx: Receiver<String>, stats: &Stats) {
    while let Ok(entry) = rx.recv() {
        stats.taken(entry.len());
        stats.failed(1);
    }
}

/// Says a sink's problem at most every ten seconds, with how many times it happened meanwhile.
struct Warner {
    sink: String,
    last: Option<Instant>,
    quiet: u64,
}

impl Warner {
    fn new(sink: String) -> Warner {
        Warner { sink, last: None, quiet: 0 }
    }

    fn warn(&mut self, what: &str, error: &dyn std::fmt::Display) {
        if self.last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
            self.quiet += 1;
            return;
        }
        tracing::warn!(sink = %self.sink, error = %error, also_since_last = self.quiet, "log sink: {what}");
        self.last = Some(Instant::now());
        self.quiet = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_destination_is_one_sink_and_its_queue_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let out = AllowedFile { path: path.clone(), within: None };
        let a = file(out.clone(), false, 3);
        assert!(Arc::ptr_eq(&a, &file(out.clone(), false, 3)), "shared while held");
        assert!(!Arc::ptr_eq(&a, &file(out, true, 3)), "other options, another sink");
        a.send("x".repeat(MAX_ENTRY_BYTES + 1));
        assert_eq!(a.stats.dropped.load(Ordering::Relaxed), 1, "too large");
        for i in 0..3 {
            a.send(format!("line {i}"));
        }
        drain(Duration::from_secs(5));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "line 0\nline 1\nline 2\n");
        assert_eq!(a.stats.written.load(Ordering::Relaxed), 3);
        assert_eq!(a.stats.waiting.load(Ordering::Relaxed), 0);
    }
}
