//! Histograms with fixed buckets, rendered in the Prometheus text format.

use std::fmt::Write;

/// A histogram with fixed buckets.
#[derive(Debug, Clone, Default)]
pub(super) struct Histogram {
    /// Counts per bucket (the last one is +Inf), not cumulative.
    pub(super) counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    pub(super) fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
        }
        self.counts[bounds.partition_point(|b| *b < value)] += 1;
        self.sum += value;
    }

    pub(super) fn merge(&mut self, other: &Histogram) {
        if self.counts.is_empty() {
            self.counts = vec![0; other.counts.len()];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
    }

    pub(super) fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: [f64; 17] =
        [1.0, 2.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0, 200.0, 500.0, 750.0, 1000.0, 3000.0, 6000.0];

    #[test]
    fn buckets_are_cumulative_and_end_with_inf() {
        let mut h = Histogram::default();
        for v in [0.5, 1.0, 3.0, 10_000.0] {
            h.observe(&BOUNDS, v);
        }
        let mut out = String::new();
        h.render(&mut out, "m", "a=\"b\"", &BOUNDS);
        assert!(out.contains("m_bucket{a=\"b\",le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("m_bucket{a=\"b\",le=\"5\"} 3\n"), "{out}");
        assert!(out.contains("m_bucket{a=\"b\",le=\"6000\"} 3\n"), "{out}");
        assert!(out.contains("m_bucket{a=\"b\",le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("m_sum{a=\"b\"} 10004.5\n") && out.contains("m_count{a=\"b\"} 4\n"), "{out}");
    }
}
