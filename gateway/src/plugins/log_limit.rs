//! A log budget per plugin module, so that a plugin failing (or printing) on every request cannot
//! flood the log: the first [`BURST`] lines of each [`WINDOW_MS`] window are written in full; the
//! rest are counted, and the count is written as one summary line when the next window opens.

use crate::health::now_ms;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Lines written in full per window.
pub(crate) const BURST: u32 = 10;
/// The window, in milliseconds.
pub(crate) const WINDOW_MS: u64 = 10_000;

/// The budget of one plugin module.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    window_start: AtomicU64,
    used: AtomicU32,
    dropped: AtomicU32,
}

impl LogLimit {
    /// Whether a line about `plugin` may be written now; also writes the summary of the previous
    /// window when one starts.
    pub(crate) fn allow(&self, plugin: &str) -> bool {
        let now = now_ms();
        let start = self.window_start.load(Ordering::Acquire);
        if now.saturating_sub(start) >= WINDOW_MS
            && self.window_start.compare_exchange(start, now, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            self.used.store(0, Ordering::Release);
            let dropped = self.dropped.swap(0, Ordering::AcqRel);
            if dropped > 0 {
                tracing::warn!(
                    plugin,
                    suppressed = dropped,
                    "plugin log lines suppressed in the last {} s",
                    WINDOW_MS / 1000
                );
            }
        }
        if self.used.fetch_add(1, Ordering::AcqRel) < BURST {
            return true;
        }
        self.dropped.fetch_add(1, Ordering::AcqRel);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_silence_within_a_window() {
        let limit = LogLimit::default();
        let allowed = (0..1000).filter(|_| limit.allow("p")).count();
        assert_eq!(allowed, BURST as usize);
        assert_eq!(limit.dropped.load(Ordering::Acquire), 1000 - BURST);
    }
}
