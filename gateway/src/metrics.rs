//! Per-request metrics in Kong's shapes (its Prometheus plugin's, under a `wasmgate_` prefix),
//! counted without contention: each thread adds to a tally of its own (a thread-local behind a
//! mutex that only a scrape ever contends for), and a scrape sums the tallies. Labels are
//! bounded by the configuration: service, route, status code, source, plugin and phase; never a
//! client address or a path.

use crate::plugins::state::{Phase, Source};
use parking_lot::Mutex;
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
pub struct RequestSample<'a> {
    /// Service and route names ("" when the request matched none).
    pub service: &'a str,
    /// The route.
    pub route: &'a str,
    /// The status sent.
    pub status: u16,
    /// Who produced the response.
    pub source: Source,
    /// From the request's start to its end.
    pub total: Duration,
    /// Time to the upstream's response header, if it was reached.
    pub upstream: Option<Duration>,
    /// Request body bytes read from the client.
    pub bytes_in: u64,
    /// Response body bytes.
    pub bytes_out: u64,
}

/// How a plugin call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
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

/// A histogram with fixed buckets.
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Counts per bucket (the last one is +Inf), not cumulative.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
        }
        self.counts[bounds.partition_point(|b| *b < value)] += 1;
        self.sum += value;
    }

    fn merge(&mut self, other: &Histogram) {
        if self.counts.is_empty() {
            self.counts = vec![0; other.counts.len()];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count;
            let le = bounds.get(i).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// One route's counts.
#[derive(Debug, Clone, Default)]
struct RouteTally {
    /// By (status, source).
    requests: HashMap<(u16, Source), u64>,
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
    /// Service → route → counts.
    routes: HashMap<String, HashMap<String, RouteTally>>,
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
static CONNECTIONS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

thread_local! {
    static TALLY: Arc<Mutex<Tally>> = {
        let tally = Arc::new(Mutex::new(Tally::default()));
        TALLIES.lock().push(tally.clone());
        tally
    };
}

/// Counts a finished request.
pub fn record_request(s: &RequestSample<'_>) {
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
pub fn record_call(plugin: &Arc<str>, phase: Phase, outcome: CallOutcome, took: Duration) {
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
pub fn connection_opened() -> ConnectionGuard {
    CONNECTIONS[0].fetch_add(1, Ordering::Relaxed);
    CONNECTIONS[1].fetch_add(1, Ordering::Relaxed);
    ConnectionGuard
}

/// Counts an open client connection until dropped.
pub struct ConnectionGuard;

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        CONNECTIONS[1].fetch_sub(1, Ordering::Relaxed);
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

/// Writes a metric's `# HELP` and `# TYPE` lines.
pub fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes the per-request metrics, summed over every thread, in the Prometheus text format.
pub fn render(out: &mut String) {
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
    help(out, "wasmgate_connections", "gauge", "Client connections: accepted since start, and open now.");
    let _ = writeln!(out, "wasmgate_connections{{state=\"accepted\"}} {}", CONNECTIONS[0].load(Ordering::Relaxed));
    let _ = writeln!(out, "wasmgate_connections{{state=\"active\"}} {}", CONNECTIONS[1].load(Ordering::Relaxed));

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
    help(out, "wasmgate_plugin_call_duration_us", "histogram", "Plugin call durations, µs.");
    for (p, ph, t) in &calls {
        t.duration.render(out, "wasmgate_plugin_call_duration_us", &labels(p, ph), &CALL_US);
    }
    render_plugin_metrics(out);
}

/// Most series (label value combinations) one plugin metric keeps; later ones are counted under
/// label values `_other_`.
const MAX_SERIES: usize = 1000;

/// Largest top-N table.
const MAX_TOP: u32 = 100;

/// What a plugin metric is.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginMetricKind {
    /// A counter.
    Counter,
    /// A histogram with these bucket bounds.
    Histogram(Vec<f64>),
    /// A top-N table of this size; the last label is its key.
    Top(u32),
}

/// A metric a plugin declared (`wasmgate:metrics/metrics`).
struct PluginMetric {
    plugin: Arc<str>,
    /// The name on `/metrics`: `wasmgate_plugin_<name>`, with `_total` for counters.
    exported: String,
    help: String,
    kind: PluginMetricKind,
    labels: Vec<String>,
    /// By label values: a counter's total, or a histogram. For a top-N table, by the values of
    /// all labels but the key: the (key, total) entries.
    series: Mutex<HashMap<Vec<String>, Series>>,
}

/// One series of a plugin metric.
#[derive(Debug, Clone, Default)]
struct Series {
    total: u64,
    histogram: Histogram,
    top: Vec<(String, u64)>,
}

impl Series {
    /// Space-Saving: adds `value` to `key`, which takes the smallest entry's place (and total)
    /// when the table is full.
    fn add_top(&mut self, key: String, value: u64, size: usize) {
        if let Some(entry) = self.top.iter_mut().find(|(k, _)| *k == key) {
            entry.1 = entry.1.saturating_add(value);
        } else if self.top.len() < size {
            self.top.push((key, value));
        } else if let Some(smallest) = self.top.iter_mut().min_by_key(|(_, n)| *n) {
            *smallest = (key, smallest.1.saturating_add(value));
        }
    }
}

/// Every plugin metric; a handle is an index here.
static PLUGIN_METRICS: LazyLock<parking_lot::RwLock<Vec<Arc<PluginMetric>>>> = LazyLock::new(Default::default);

/// Whether `s` is a metric or label name a plugin may use.
fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The gateway's own metrics that a plugin metric's name must not take.
const RESERVED: [&str; 5] = [
    "wasmgate_plugin_calls_total",
    "wasmgate_plugin_failures_total",
    "wasmgate_plugin_call_duration_us",
    "wasmgate_plugin_modules_loaded",
    "wasmgate_plugin_module_info",
];

/// Declares metric `name` of `plugin` (or finds it, when declared before with the same shape);
/// its handle.
pub fn declare(
    plugin: &Arc<str>,
    name: &str,
    help: &str,
    labels: Vec<String>,
    kind: PluginMetricKind,
) -> Result<u32, String> {
    if !valid_name(name) || name.starts_with("__") {
        return Err(format!("metric name {name:?}: use lower-case letters, digits and _"));
    }
    let reserved = |l: &String| matches!(l.as_str(), "plugin" | "le") || l.starts_with("__");
    if let Some(bad) = labels.iter().find(|l| !valid_name(l) || reserved(l)) {
        return Err(format!("metric {name}: label {bad:?}: use lower-case letters, digits and _ (not plugin or le)"));
    }
    if let Some((i, l)) = labels.iter().enumerate().find(|(i, l)| labels[..*i].contains(l)) {
        return Err(format!("metric {name}: label {l:?} is given twice (labels[{i}])"));
    }
    match &kind {
        PluginMetricKind::Histogram(b)
            if b.is_empty() || b.windows(2).any(|w| w[0] >= w[1]) || b.iter().any(|v| !v.is_finite()) =>
        {
            return Err(format!("metric {name}: buckets must be finite and ascending"));
        }
        PluginMetricKind::Top(size) if *size == 0 || *size > MAX_TOP => {
            return Err(format!("metric {name}: the size of a top-N table is 1 to {MAX_TOP}"));
        }
        _ => {}
    }
    let is_histogram = matches!(kind, PluginMetricKind::Histogram(_));
    let total = if is_histogram || name.ends_with("_total") { "" } else { "_total" };
    let exported = format!("wasmgate_plugin_{name}{total}");
    if RESERVED.contains(&exported.as_str()) {
        return Err(format!("metric {name}: {exported} is one of the gateway's own metrics; choose another name"));
    }
    let mut all = PLUGIN_METRICS.write();
    if let Some(i) = all.iter().position(|m| *m.plugin == **plugin && m.exported == exported) {
        let m = &all[i];
        if m.labels != labels || m.kind != kind {
            return Err(format!("metric {name} is already declared with other labels or of another kind"));
        }
        return Ok(i as u32);
    }
    if all.iter().any(|m| m.exported == exported && (m.labels != labels || m.kind != kind)) {
        return Err(format!("metric {name}: {exported} already exists with other labels or of another kind"));
    }
    let metric = PluginMetric {
        plugin: plugin.clone(),
        exported,
        help: help.to_string(),
        kind,
        labels,
        series: Mutex::default(),
    };
    all.push(Arc::new(metric));
    Ok(all.len() as u32 - 1)
}

/// Adds `value` to a counter or a top-N table (`observation` `None`), or observes a histogram
/// value; false when `handle` is not one of `plugin`'s metrics of that kind or the label values
/// do not fit it.
pub fn update(plugin: &str, handle: u32, mut label_values: Vec<String>, value: u64, observation: Option<f64>) -> bool {
    let Some(metric) = PLUGIN_METRICS.read().get(handle as usize).cloned() else {
        return false;
    };
    let is_histogram = matches!(metric.kind, PluginMetricKind::Histogram(_));
    if *metric.plugin != *plugin
        || metric.labels.len() != label_values.len()
        || is_histogram != observation.is_some()
        || observation.is_some_and(|v| !v.is_finite())
    {
        return false;
    }
    let top_key = matches!(metric.kind, PluginMetricKind::Top(_)).then(|| label_values.pop().unwrap_or_default());
    let mut series = metric.series.lock();
    let group = if series.len() >= MAX_SERIES && !series.contains_key(&label_values) {
        vec!["_other_".to_string(); label_values.len()]
    } else {
        label_values
    };
    let series = series.entry(group).or_default();
    match (&metric.kind, observation, top_key) {
        (PluginMetricKind::Histogram(bounds), Some(v), _) => series.histogram.observe(bounds, v),
        (PluginMetricKind::Top(size), _, Some(key)) => series.add_top(key, value, *size as usize),
        _ => series.total = series.total.saturating_add(value),
    }
    true
}

/// Writes the plugins' own metrics.
fn render_plugin_metrics(out: &mut String) {
    let all: Vec<Arc<PluginMetric>> = PLUGIN_METRICS.read().clone();
    let mut by_name: Vec<&Arc<PluginMetric>> = all.iter().collect();
    by_name.sort_by(|a, b| (&a.exported, &a.plugin).cmp(&(&b.exported, &b.plugin)));
    let mut described = std::collections::HashSet::new();
    for m in by_name {
        let name = &m.exported;
        let kind = if matches!(m.kind, PluginMetricKind::Histogram(_)) { "histogram" } else { "counter" };
        if described.insert(name.clone()) {
            metric(out, name, kind, &m.help.replace('\n', " "));
        }
        let mut series: Vec<(Vec<String>, Series)> =
            m.series.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        for (values, s) in series {
            let mut labels = format!("plugin=\"{}\"", esc(&m.plugin));
            for (l, v) in m.labels.iter().zip(&values) {
                let _ = write!(labels, ",{l}=\"{}\"", esc(v));
            }
            match &m.kind {
                PluginMetricKind::Histogram(bounds) => s.histogram.render(out, name, &labels, bounds),
                PluginMetricKind::Counter => {
                    let _ = writeln!(out, "{name}{{{labels}}} {}", s.total);
                }
                PluginMetricKind::Top(_) => {
                    let key = m.labels.last().map_or("key", String::as_str);
                    let mut top = s.top.clone();
                    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                    for (k, n) in top {
                        let _ = writeln!(out, "{name}{{{labels},{key}=\"{}\"}} {n}", esc(&k));
                    }
                }
            }
        }
    }
}

/// A label value, escaped for the text format.
pub fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_top_table_keeps_the_heaviest_keys() {
        let mut s = Series::default();
        for (key, n) in [("a", 5), ("b", 1), ("c", 1), ("a", 5), ("d", 1), ("e", 2)] {
            s.add_top(key.to_string(), n, 3);
        }
        assert_eq!(s.top.len(), 3, "fixed size");
        assert!(s.top.contains(&("a".to_string(), 10)), "the heavy hitter, exact: {:?}", s.top);
        assert!(s.top.iter().any(|(k, _)| k == "e"), "the newest takes the smallest's place: {:?}", s.top);
    }

    #[test]
    fn buckets_are_cumulative_and_end_with_inf() {
        let mut h = Histogram::default();
        for v in [0.5, 1.0, 3.0, 10_000.0] {
            h.observe(&LATENCY_MS, v);
        }
        let mut out = String::new();
        h.render(&mut out, "m", "a=\"b\"", &LATENCY_MS);
        assert!(out.contains("m_bucket{a=\"b\",le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("m_bucket{a=\"b\",le=\"5\"} 3\n"), "{out}");
        assert!(out.contains("m_bucket{a=\"b\",le=\"6000\"} 3\n"), "{out}");
        assert!(out.contains("m_bucket{a=\"b\",le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("m_sum{a=\"b\"} 10004.5\n") && out.contains("m_count{a=\"b\"} 4\n"), "{out}");
    }
}
