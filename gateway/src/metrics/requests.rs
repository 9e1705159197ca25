//! Per-request and per-plugin-call counts, kept per thread and summed by a scrape.

use super::histogram::Histogram;
use super::{esc, metric};
use crate::request::{Phase, Source};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, milliseconds (Kong's).
const LATENCY_MS: [f64; 17] =
    [1.0, 2.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0, 200.0, 500.0, 750.0, 1000.0, 3000.0, 6000.0];
/// Upper bounds of the plugin call duration buckets, microseconds.
const CALL_US: [f64; 12] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 10000.0, 100000.0];

/// A finished request, as the metrics see it.
pub(crate) struct RequestSample<'a> {
    /// Service and route names ("" when the request matched none).
    pub(crate) service: &'a str,
    /// The route.
    pub(crate) route: &'a str,
    /// The status sent.
    pub(crate) status: u16,
    /// Who produced the response.
    pub(crate) source: Source,
    /// From the request's start to its end.
    pub(crate) total: Duration,
    /// Time to the upstream's response header, if it was reached.
    pub(crate) upstream: Option<Duration>,
    /// Request body bytes read from the client.
    pub(crate) bytes_in: u64,
    /// Response body bytes.
    pub(crate) bytes_out: u64,
}

/// How a plugin call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallOutcome {
    /// It returned.
    Ok,
    /// It trapped (a panic, an exit, a bad access).
    Trap,
    /// It ran past its CPU deadline.
    Timeout,
    /// It went past a memory or host-side bound.
    Memory,
    /// It returned an error.
    Error,
}

/// One route's counts.
#[derive(Debug, Clone, Default)]
struct RouteTally {
    /// By (status, source).
    requests: FxHashMap<(u16, Source), u64>,
    /// Total, upstream and gateway latency.
    latency: [Histogram; 3],
    /// Body bytes in and out.
    bytes: [u64; 2],
}

impl RouteTally {
    fn merge(&mut self, other: &RouteTally) {
        for (k, n) in &other.requests {
            *self.requests.entry(*k).or_default() += n;
        }
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            a.merge(b);
        }
        self.bytes[0] += other.bytes[0];
        self.bytes[1] += other.bytes[1];
    }
}

/// One plugin's counts in one phase.
#[derive(Debug, Clone, Default)]
struct CallTally {
    calls: u64,
    /// Trap, timeout, memory, error.
    failures: [u64; 4],
    duration: Histogram,
}

/// What one thread counted.
#[derive(Debug, Default)]
struct Tally {
    /// Service → route → counts. Keyed by the configuration's names, never by what a client
    /// sends, so the maps hash with Fx: three SipHash lookups were 500 instructions a request.
    routes: FxHashMap<String, FxHashMap<String, RouteTally>>,
    /// By plugin module (the address of its name, hashed as is), counts per phase.
    plugins: HashMap<usize, PluginCalls, std::hash::BuildHasherDefault<AddressHasher>>,
    /// Counts of modules whose name address was reused by another module.
    retired: Vec<PluginCalls>,
}

/// One plugin module's call counts, by phase.
#[derive(Debug)]
struct PluginCalls {
    name: Arc<str>,
    phases: [CallTally; 6],
}

/// Hashes a `usize` address as itself: the plugin call tally's key needs no hashing.
#[derive(Default)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

/// Every thread's tally.
static TALLIES: LazyLock<Mutex<Vec<Arc<Mutex<Tally>>>>> = LazyLock::new(Mutex::default);
/// Client connections accepted, and open now.
/// Client connections accepted, open now, and WebSocket tunnels open now.
static CONNECTIONS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

thread_local! {
    static TALLY: Arc<Mutex<Tally>> = {
        let tally = Arc::new(Mutex::new(Tally::default()));
        TALLIES.lock().push(tally.clone());
        tally
    };
}

/// Counts a finished request.
pub(crate) fn record_request(s: &RequestSample<'_>) {
    TALLY.with(|t| {
        let mut t = t.lock();
        let routes = match t.routes.get_mut(s.service) {
            Some(routes) => routes,
            None => t.routes.entry(s.service.to_string()).or_default(),
        };
        let route = match routes.get_mut(s.route) {
            Some(route) => route,
            None => routes.entry(s.route.to_string()).or_default(),
        };
        *route.requests.entry((s.status, s.source)).or_default() += 1;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        route.latency[0].observe(&LATENCY_MS, ms(s.total));
        if let Some(upstream) = s.upstream {
            route.latency[1].observe(&LATENCY_MS, ms(upstream));
        }
        route.latency[2].observe(&LATENCY_MS, ms(s.total.saturating_sub(s.upstream.unwrap_or_default())));
        route.bytes[0] += s.bytes_in;
        route.bytes[1] += s.bytes_out;
    });
}

/// Counts one plugin call of the module named `plugin` (the module's own `Arc`: its address is
/// the key, so the hot path hashes no string).
pub(crate) fn record_call(plugin: &Arc<str>, phase: Phase, outcome: CallOutcome, took: Duration) {
    TALLY.with(|t| {
        let mut t = t.lock();
        let t = &mut *t;
        let key = Arc::as_ptr(plugin) as *const u8 as usize;
        let calls =
            t.plugins.entry(key).or_insert_with(|| PluginCalls { name: plugin.clone(), phases: Default::default() });
        if !Arc::ptr_eq(&calls.name, plugin) {
            let fresh = PluginCalls { name: plugin.clone(), phases: Default::default() };
            t.retired.push(std::mem::replace(calls, fresh));
        }
        let tally = &mut calls.phases[phase as usize];
        tally.calls += 1;
        match outcome {
            CallOutcome::Ok => {}
            CallOutcome::Trap => tally.failures[0] += 1,
            CallOutcome::Timeout => tally.failures[1] += 1,
            CallOutcome::Memory => tally.failures[2] += 1,
            CallOutcome::Error => tally.failures[3] += 1,
        }
        tally.duration.observe(&CALL_US, took.as_secs_f64() * 1e6);
    });
}

/// A client connection opened; the guard counts it closed when dropped.
pub(crate) fn connection_opened() -> ConnectionGuard {
    CONNECTIONS[0].fetch_add(1, Ordering::Relaxed);
    CONNECTIONS[1].fetch_add(1, Ordering::Relaxed);
    ConnectionGuard
}

/// Counts an open client connection until dropped.
pub(crate) struct ConnectionGuard;

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        CONNECTIONS[1].fetch_sub(1, Ordering::Relaxed);
    }
}

/// A WebSocket tunnel opened (the upstream answered 101); the guard counts it closed when dropped.
pub(crate) fn tunnel_opened() -> TunnelGuard {
    CONNECTIONS[2].fetch_add(1, Ordering::Relaxed);
    TunnelGuard
}

/// Counts an open WebSocket tunnel until dropped.
#[derive(Debug)]
pub(crate) struct TunnelGuard;

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        CONNECTIONS[2].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Phase labels, in the order of [`Phase`].
const PHASES: [&str; 6] = ["configure", "rewrite", "access", "header_filter", "body_filter", "log"];

fn source_label(source: Source) -> &'static str {
    match source {
        Source::Service => "upstream",
        Source::Exit => "plugin",
        Source::Error => "gateway",
    }
}

/// Writes the per-request and plugin-call metrics, summed over every thread.
pub(super) fn render(out: &mut String) {
    let help = metric;
    let mut routes: HashMap<String, HashMap<String, RouteTally>> = HashMap::new();
    let mut plugins: HashMap<String, HashMap<&'static str, CallTally>> = HashMap::new();
    for tally in TALLIES.lock().iter() {
        let tally = tally.lock();
        for (service, by_route) in &tally.routes {
            let merged = routes.entry(service.clone()).or_default();
            for (route, t) in by_route {
                merged.entry(route.clone()).or_default().merge(t);
            }
        }
        for calls in tally.plugins.values().chain(&tally.retired) {
            let merged = plugins.entry(calls.name.to_string()).or_default();
            for (i, t) in calls.phases.iter().enumerate().filter(|(_, t)| t.calls > 0) {
                let m = merged.entry(PHASES[i]).or_default();
                m.calls += t.calls;
                for (a, b) in m.failures.iter_mut().zip(t.failures) {
                    *a += b;
                }
                m.duration.merge(&t.duration);
            }
        }
    }
    let mut routes: Vec<(String, String, RouteTally)> = routes
        .into_iter()
        .flat_map(|(s, by_route)| by_route.into_iter().map(move |(r, t)| (s.clone(), r, t)))
        .collect();
    routes.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let labels = |s: &str, r: &str| format!("service=\"{}\",route=\"{}\"", esc(s), esc(r));

    help(
        out,
        "wasmgate_http_requests_total",
        "counter",
        "Requests by service, route, status code and source (upstream, gateway, plugin).",
    );
    for (s, r, t) in &routes {
        let mut codes: Vec<_> = t.requests.iter().collect();
        codes.sort_by_key(|((code, source), _)| (*code, source_label(*source)));
        for ((code, source), n) in codes {
            let _ = writeln!(
                out,
                "wasmgate_http_requests_total{{{},code=\"{code}\",source=\"{}\"}} {n}",
                labels(s, r),
                source_label(*source)
            );
        }
    }
    let histograms = [
        ("wasmgate_request_latency_ms", "Time from the first byte of the request to the last of the response, ms."),
        ("wasmgate_upstream_latency_ms", "Time the upstream took to send its response header, ms."),
        ("wasmgate_gateway_latency_ms", "Time spent in the gateway and its plugins (total minus upstream), ms."),
    ];
    for (i, (name, text)) in histograms.into_iter().enumerate() {
        help(out, name, "histogram", text);
        for (s, r, t) in routes.iter().filter(|(_, _, t)| !t.latency[i].counts.is_empty()) {
            t.latency[i].render(out, name, &labels(s, r), &LATENCY_MS);
        }
    }
    help(
        out,
        "wasmgate_bandwidth_bytes_total",
        "counter",
        "Body bytes by direction (ingress: from clients, egress: to clients).",
    );
    for (s, r, t) in &routes {
        for (direction, n) in [("ingress", t.bytes[0]), ("egress", t.bytes[1])] {
            let _ = writeln!(out, "wasmgate_bandwidth_bytes_total{{{},direction=\"{direction}\"}} {n}", labels(s, r));
        }
    }
    help(
        out,
        "wasmgate_connections",
        "gauge",
        "Client connections: accepted since start, open now, and WebSocket tunnels open now.",
    );
    let _ = writeln!(out, "wasmgate_connections{{state=\"accepted\"}} {}", CONNECTIONS[0].load(Ordering::Relaxed));
    let _ = writeln!(out, "wasmgate_connections{{state=\"active\"}} {}", CONNECTIONS[1].load(Ordering::Relaxed));
    let _ = writeln!(out, "wasmgate_connections{{state=\"websocket\"}} {}", CONNECTIONS[2].load(Ordering::Relaxed));

    let mut calls: Vec<(String, &'static str, CallTally)> = plugins
        .into_iter()
        .flat_map(|(p, by_phase)| by_phase.into_iter().map(move |(ph, t)| (p.clone(), ph, t)))
        .collect();
    calls.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let labels = |p: &str, ph: &str| format!("plugin=\"{}\",phase=\"{ph}\"", esc(p));
    help(out, "wasmgate_plugin_calls_total", "counter", "Plugin calls by plugin and phase.");
    for (p, ph, t) in &calls {
        let _ = writeln!(out, "wasmgate_plugin_calls_total{{{}}} {}", labels(p, ph), t.calls);
    }
    help(
        out,
        "wasmgate_plugin_failures_total",
        "counter",
        "Failed plugin calls by kind: trap, timeout, memory, error.",
    );
    for (p, ph, t) in &calls {
        for (kind, n) in ["trap", "timeout", "memory", "error"].into_iter().zip(t.failures) {
            let _ = writeln!(out, "wasmgate_plugin_failures_total{{{},kind=\"{kind}\"}} {n}", labels(p, ph));
        }
    }
    help(
        out,
        "wasmgate_plugin_call_duration_us",
        "histogram",
        "Plugin call durations, µs: wall time, with any time yielded to other requests at epoch ticks.",
    );
    for (p, ph, t) in &calls {
        t.duration.render(out, "wasmgate_plugin_call_duration_us", &labels(p, ph), &CALL_US);
    }
}
