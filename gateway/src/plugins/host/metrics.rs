//! `wasmgate:metrics/metrics`: the plugin's own counters and histograms, kept by
//! [`crate::metrics`] and exported with the gateway's.

use super::HostState;
use super::wasmgate::metrics::metrics::{Host, Kind};
use crate::metrics::PluginMetricKind;

impl HostState {
    /// A bad update (a handle that is not this plugin's, or label values that do not fit) is a
    /// bug in the plugin: logged within its log budget, and otherwise ignored.
    fn bad_update(&self, handle: u32) {
        if self.may_log() {
            tracing::warn!(plugin = %self.plugin, handle, "metrics: not one of this plugin's metrics of that kind, or the label values do not fit; ignored");
        }
    }
}

impl Host for HostState {
    fn declare(
        &mut self,
        name: String,
        help: String,
        kind: Kind,
        labels: Vec<String>,
        buckets: Vec<f64>,
    ) -> Result<u32, String> {
        let kind = match kind {
            Kind::Counter => PluginMetricKind::Counter,
            Kind::Histogram => PluginMetricKind::Histogram(buckets),
        };
        crate::metrics::declare(&self.plugin, &name, &help, labels, kind)
    }

    fn declare_top(
        &mut self,
        name: String,
        help: String,
        mut labels: Vec<String>,
        key_label: String,
        size: u32,
    ) -> Result<u32, String> {
        labels.push(key_label);
        crate::metrics::declare(&self.plugin, &name, &help, labels, PluginMetricKind::Top(size))
    }

    fn add(&mut self, metric: u32, label_values: Vec<String>, value: u64) {
        if !crate::metrics::update(&self.plugin, metric, label_values, value, None) {
            self.bad_update(metric);
        }
    }

    fn observe(&mut self, metric: u32, label_values: Vec<String>, value: f64) {
        if !crate::metrics::update(&self.plugin, metric, label_values, 0, Some(value)) {
            self.bad_update(metric);
        }
    }
}
