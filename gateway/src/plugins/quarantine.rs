//! Plugin quarantine: a plugin configuration that keeps running into its CPU deadline (a loop, a
//! pathological input) would hold a worker thread for `cpu_ms` on every such request. After
//! `after` deadline hits within `within_s` seconds, it is not called for `for_s` seconds: its
//! failure policy applies at once. Then one trial call is let through; if it finishes in time the
//! quarantine ends, otherwise it starts again.

use crate::config::QuarantineSettings;
use crate::health::now_ms;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// The quarantine state of one plugin configuration (kept while its module is unchanged).
#[derive(Debug, Default)]
pub(crate) struct Quarantine {
    window_start: AtomicU64,
    hits: AtomicU32,
    /// End of the quarantine, ms since the epoch; 0 when not quarantined.
    until: AtomicU64,
    /// A trial call is running.
    trial: AtomicBool,
}

impl Quarantine {
    /// Whether a call may run now: not quarantined, or the one trial after the cool-down.
    pub(crate) fn admits(&self) -> bool {
        let until = self.until.load(Ordering::Acquire);
        until == 0 || (now_ms() >= until && !self.trial.swap(true, Ordering::AcqRel))
    }

    /// Records how an admitted call ended.
    pub(crate) fn record(&self, deadline_hit: bool, s: &QuarantineSettings, plugin: &str) {
        if self.until.load(Ordering::Acquire) != 0 && self.trial.load(Ordering::Acquire) {
            if deadline_hit {
                self.until.store(now_ms() + s.for_s * 1000, Ordering::Release);
                tracing::warn!(plugin, for_s = s.for_s, "plugin trial call hit its deadline; quarantined again");
            } else {
                self.hits.store(0, Ordering::Release);
                self.until.store(0, Ordering::Release);
                tracing::warn!(plugin, "plugin quarantine ended: a trial call finished in time");
            }
            self.trial.store(false, Ordering::Release);
            return;
        }
        if !deadline_hit || s.after == 0 {
            return;
        }
        let now = now_ms();
        let start = self.window_start.load(Ordering::Acquire);
        let hits = if now.saturating_sub(start) > s.within_s * 1000 {
            self.window_start.store(now, Ordering::Release);
            self.hits.store(1, Ordering::Release);
            1
        } else {
            self.hits.fetch_add(1, Ordering::AcqRel) + 1
        };
        if hits >= s.after && self.until.load(Ordering::Acquire) == 0 {
            self.until.store(now + s.for_s * 1000, Ordering::Release);
            tracing::warn!(
                plugin,
                hits,
                within_s = s.within_s,
                for_s = s.for_s,
                "plugin quarantined: it keeps hitting its CPU deadline; its failure policy applies without calling it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_within_the_window_quarantine_and_a_good_trial_ends_it() {
        let s = QuarantineSettings { after: 3, within_s: 10, for_s: 0 };
        let q = Quarantine::default();
        for _ in 0..2 {
            assert!(q.admits());
            q.record(true, &s, "p");
        }
        assert_eq!(q.until.load(Ordering::Acquire), 0, "two hits are not enough");
        q.record(true, &s, "p");
        assert_ne!(q.until.load(Ordering::Acquire), 0, "the third starts it");
        assert!(q.admits(), "for_s = 0: the trial is due at once");
        assert!(!q.admits(), "only one trial at a time");
        q.record(false, &s, "p");
        assert_eq!(q.until.load(Ordering::Acquire), 0, "a call in time ends it");
        assert!(q.admits());
    }
}
