//! A log budget per plugin module and kind of line, so that a plugin failing (or printing) on
//! every request cannot flood the log, and one kind of failure cannot hide another: per kind, the
//! first [`BURST`] lines of each [`WINDOW_MS`] window are written in full; the rest are counted,
//! and the counts are written as one summary line, by kind, when the next window opens.

use super::module::CallError;
use crate::health::now_ms;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Lines written in full per kind and window.
pub(crate) const BURST: u32 = 10;
/// The window, in milliseconds.
pub(crate) const WINDOW_MS: u64 = 10_000;

/// What a log line is about; each kind has a budget of its own (its index is its discriminant,
/// the order of [`KINDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogKind {
    /// A call stopped at its CPU deadline.
    Deadline,
    /// A call went past its memory cap.
    Memory,
    /// A call trapped.
    Trap,
    /// A call returned an error.
    Error,
    /// A call skipped while the plugin is quarantined.
    Quarantined,
    /// The plugin's output and refused host calls (stderr, header and cache limits, ...).
    Output,
}

const KINDS: [LogKind; 6] =
    [LogKind::Deadline, LogKind::Memory, LogKind::Trap, LogKind::Error, LogKind::Quarantined, LogKind::Output];

impl LogKind {
    /// The kind of a failed call.
    pub(crate) fn of(e: &CallError) -> LogKind {
        match e {
            CallError::Timeout(_) => LogKind::Deadline,
            CallError::Memory(_) => LogKind::Memory,
            CallError::Trap(_) => LogKind::Trap,
            CallError::Plugin(_) => LogKind::Error,
            CallError::Quarantined => LogKind::Quarantined,
        }
    }

    fn name(self) -> &'static str {
        match self {
            LogKind::Deadline => "deadline",
            LogKind::Memory => "memory",
            LogKind::Trap => "trap",
            LogKind::Error => "error",
            LogKind::Quarantined => "quarantined",
            LogKind::Output => "output",
        }
    }
}

/// The budget of one plugin module.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    window_start: AtomicU64,
    used: [AtomicU32; KINDS.len()],
    dropped: [AtomicU32; KINDS.len()],
}

impl LogLimit {
    /// Whether a line of `kind` about `plugin` may be written now; also writes the summary of
    /// the previous window when one starts.
    pub(crate) fn allow(&self, plugin: &str, kind: LogKind) -> bool {
        let now = now_ms();
        let start = self.window_start.load(Ordering::Acquire);
        if now.saturating_sub(start) >= WINDOW_MS
            && self.window_start.compare_exchange(start, now, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            self.summarize(plugin);
        }
        let i = kind as usize;
        if self.used[i].fetch_add(1, Ordering::AcqRel) < BURST {
            return true;
        }
        self.dropped[i].fetch_add(1, Ordering::AcqRel);
        false
    }

    /// Starts a window: the budgets are full again, and what the last one dropped is reported.
    fn summarize(&self, plugin: &str) {
        let mut dropped = Vec::new();
        for (i, kind) in KINDS.iter().enumerate() {
            self.used[i].store(0, Ordering::Release);
            let n = self.dropped[i].swap(0, Ordering::AcqRel);
            if n > 0 {
                dropped.push(format!("{}={n}", kind.name()));
            }
        }
        if !dropped.is_empty() {
            let by_kind = dropped.join(" ");
            tracing::warn!(plugin, suppressed = %by_kind, "plugin log lines suppressed in the last {} s", WINDOW_MS / 1000);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_kind_then_silence_within_a_window() {
        let limit = LogLimit::default();
        let allowed = (0..1000).filter(|_| limit.allow("p", LogKind::Deadline)).count();
        assert_eq!(allowed, BURST as usize);
        assert!(limit.allow("p", LogKind::Trap), "a flood of one kind leaves the others their budget");
        assert!(limit.allow("p", LogKind::Memory) && limit.allow("p", LogKind::Error));
        assert_eq!(limit.dropped[0].load(Ordering::Acquire), 1000 - BURST);
        assert_eq!(limit.dropped[2].load(Ordering::Acquire), 0);
    }
}
