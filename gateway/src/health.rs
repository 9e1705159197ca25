//! Target health: kept per (upstream, target) across configuration versions, shared by every
//! worker, fed by proxied traffic (passive checks), probes (active checks) and the Admin API.
//!
//! A target is healthy, unhealthy, or on trial: after a passive trip and `half_open_after`
//! seconds, exactly one request is let through; its outcome decides.
//!
//! This is kept apart from `pingora-load-balancing`'s `HealthRegistry`, whose health is one flag
//! and one consecutive counter per backend, fed by one active check: Kong counts successes, TCP
//! failures, timeouts and HTTP failures apart, from probes and from proxied traffic alike, with
//! thresholds per upstream, and an operator may set health by hand.

use crate::config::Healthchecks;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const HEALTHY: u8 = 0;
const UNHEALTHY: u8 = 1;
const TRIAL: u8 = 2;

/// Every target's health, by upstream name and target address.
#[derive(Default)]
pub(crate) struct HealthRegistry {
    targets: Mutex<HashMap<(String, String), Arc<TargetHealth>>>,
}

impl HealthRegistry {
    /// The health of `target` in `upstream`, created healthy when first seen.
    pub(crate) fn target(&self, upstream: &str, target: &str) -> Arc<TargetHealth> {
        self.targets.lock().entry((upstream.to_string(), target.to_string())).or_default().clone()
    }

    /// Forgets targets that the newest configuration no longer has (snapshots still serving keep
    /// their own handles).
    pub(crate) fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        self.targets.lock().retain(|(u, t), _| keep(u, t));
    }
}

/// What happened on one try or probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An HTTP answer with this status.
    Status(u16),
    /// The connection failed.
    TcpFailure,
    /// Connecting or reading timed out.
    Timeout,
    /// A TCP probe connected.
    Connected,
}

/// Where an outcome was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Proxied traffic.
    Passive,
    /// A probe.
    Active,
}

/// The health and load of one target.
#[derive(Debug, Default)]
pub(crate) struct TargetHealth {
    state: AtomicU8,
    /// Tripped by passive checks (so a half-open trial may bring it back).
    tripped_passively: AtomicBool,
    /// When it became unhealthy, in ms since the epoch.
    since_ms: AtomicU64,
    successes: AtomicU32,
    http_failures: AtomicU32,
    tcp_failures: AtomicU32,
    timeouts: AtomicU32,
    /// Requests in flight to it.
    pub(crate) connections: AtomicUsize,
    /// Moving average of its response time, µs (0: no sample yet).
    ewma_us: AtomicU64,
    /// Next active probe, ms since the epoch.
    pub(crate) next_probe_ms: AtomicU64,
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl TargetHealth {
    /// Receives traffic.
    pub(crate) fn is_healthy(&self) -> bool {
        self.state.load(Ordering::Acquire) == HEALTHY
    }

    /// Whether it is unhealthy but due for its one half-open trial; claims it when so.
    pub(crate) fn claim_trial(&self, checks: &Healthchecks) -> bool {
        let after = checks.passive.half_open_after;
        after > 0.0
            && self.state.load(Ordering::Acquire) == UNHEALTHY
            && self.tripped_passively.load(Ordering::Acquire)
            && now_ms().saturating_sub(self.since_ms.load(Ordering::Acquire)) >= (after * 1000.0) as u64
            && self.state.compare_exchange(UNHEALTHY, TRIAL, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Sets the health by hand (Admin API) or by a check; `label` names the target in the log.
    pub(crate) fn set(&self, healthy: bool, why: &str, label: &dyn std::fmt::Display) {
        let new = if healthy { HEALTHY } else { UNHEALTHY };
        let old = self.state.swap(new, Ordering::AcqRel);
        self.reset_counters();
        if !healthy {
            self.since_ms.store(now_ms(), Ordering::Release);
            self.tripped_passively.store(why == "passive", Ordering::Release);
        }
        if (old == HEALTHY) != healthy {
            let state = if healthy { "healthy" } else { "unhealthy" };
            tracing::warn!(target: "wasmgate::health", target_address = %label, state, by = why, "target health changed");
        }
    }

    /// Ends a trial that reported nothing (the client went away first): the target stays
    /// unhealthy, and the next trial comes after the cool-down again.
    pub(crate) fn abandon_trial(&self) {
        if self.state.compare_exchange(TRIAL, UNHEALTHY, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.since_ms.store(now_ms(), Ordering::Release);
        }
    }

    /// Whether its half-open trial request is running.
    pub(crate) fn on_trial(&self) -> bool {
        self.state.load(Ordering::Acquire) == TRIAL
    }

    /// Kong's name for the state.
    pub(crate) fn label(&self) -> &'static str {
        match self.state.load(Ordering::Acquire) {
            HEALTHY => "HEALTHY",
            _ => "UNHEALTHY",
        }
    }

    fn reset_counters(&self) {
        for c in [&self.successes, &self.http_failures, &self.tcp_failures, &self.timeouts] {
            c.store(0, Ordering::Release);
        }
    }

    /// Counts an outcome against the thresholds of `checks`; may flip the state.
    pub(crate) fn report(&self, checks: &Healthchecks, check: Check, outcome: Outcome, label: &dyn std::fmt::Display) {
        let (ok_statuses, bad_statuses, successes, http_failures, tcp_failures, timeouts, why) = match check {
            Check::Passive => {
                let p = &checks.passive;
                let u = &p.unhealthy;
                (
                    &p.healthy.http_statuses,
                    &u.http_statuses,
                    p.healthy.successes,
                    u.http_failures,
                    u.tcp_failures,
                    u.timeouts,
                    "passive",
                )
            }
            Check::Active => {
                let a = &checks.active;
                let u = &a.unhealthy;
                (
                    &a.healthy.http_statuses,
                    &u.http_statuses,
                    a.healthy.successes,
                    u.http_failures,
                    u.tcp_failures,
                    u.timeouts,
                    "active",
                )
            }
        };
        if self.state.load(Ordering::Acquire) == TRIAL {
            // The half-open trial decides alone.
            let good = matches!(outcome, Outcome::Connected)
                || matches!(outcome, Outcome::Status(s) if !bad_statuses.contains(&s));
            self.set(good, "passive", label);
            return;
        }
        let bump = |c: &AtomicU32, limit: u32| limit > 0 && c.fetch_add(1, Ordering::AcqRel) + 1 >= limit;
        let failed = match outcome {
            Outcome::Status(s) if bad_statuses.contains(&s) => bump(&self.http_failures, http_failures),
            Outcome::TcpFailure => bump(&self.tcp_failures, tcp_failures),
            Outcome::Timeout => bump(&self.timeouts, timeouts),
            Outcome::Status(s) if !ok_statuses.contains(&s) => false,
            Outcome::Status(_) | Outcome::Connected => {
                for c in [&self.http_failures, &self.tcp_failures, &self.timeouts] {
                    c.store(0, Ordering::Release);
                }
                if !self.is_healthy() && bump(&self.successes, successes) {
                    self.set(true, why, label);
                }
                return;
            }
        };
        if failed && self.is_healthy() {
            self.set(false, why, label);
        } else if failed {
            self.successes.store(0, Ordering::Release);
        }
    }

    /// Adds a response-time sample to the moving average (weight 1/8 for the new one).
    pub(crate) fn record_latency(&self, micros: u64) {
        let micros = micros.max(1);
        let _ = self.ewma_us.fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
            Some(if old == 0 { micros } else { old - old / 8 + micros / 8 })
        });
    }

    /// The moving average of its response time, µs (0 before the first sample).
    pub(crate) fn latency_us(&self) -> u64 {
        self.ewma_us.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trial_that_reports_nothing_gives_the_target_back_to_the_cool_down() {
        let mut checks = Healthchecks::default();
        checks.passive.unhealthy.tcp_failures = 1;
        checks.passive.half_open_after = 0.001;
        let t = TargetHealth::default();
        t.report(&checks, Check::Passive, Outcome::TcpFailure, &"t");
        assert!(!t.is_healthy());
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(t.claim_trial(&checks));
        assert!(!t.claim_trial(&checks), "one trial at a time");
        t.abandon_trial();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(t.claim_trial(&checks), "a new trial after the cool-down");
        t.report(&checks, Check::Passive, Outcome::Status(200), &"t");
        assert!(t.is_healthy(), "a good trial brings it back");
        t.abandon_trial();
        assert!(t.is_healthy(), "nothing to abandon once decided");
    }
}
