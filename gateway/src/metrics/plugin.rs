//! Metrics that plugins declare at configure time and update by handle.

use super::histogram::Histogram;
use super::{esc, metric};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, LazyLock};

/// Most series (label value combinations) one plugin metric keeps; later ones are counted under
/// label values `_other_`.
const MAX_SERIES: usize = 1000;

/// Largest top-N table.
const MAX_TOP: u32 = 100;

/// What a plugin metric is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PluginMetricKind {
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
pub(crate) fn declare(
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
pub(crate) fn update(
    plugin: &str,
    handle: u32,
    mut label_values: Vec<String>,
    value: u64,
    observation: Option<f64>,
) -> bool {
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
pub(super) fn render(out: &mut String) {
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
}
