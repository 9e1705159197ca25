//! `[[upstreams]]` balancing and health-check settings, with Kong's names and defaults.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `healthchecks`: active probes, passive checks on proxied traffic, and the healthy-weight
/// threshold below which the whole upstream is unhealthy.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Healthchecks {
    /// Probes sent to each target off the request path.
    pub(crate) active: ActiveChecks,
    /// Checks made on proxied traffic (the circuit breaker).
    pub(crate) passive: PassiveChecks,
    /// Percentage (0-100) of the total weight that must be healthy, else the upstream answers 503.
    pub(crate) threshold: f64,
}

/// `healthchecks.active`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ActiveChecks {
    /// `http`, `https` or `tcp`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Seconds a probe may take.
    pub(crate) timeout: f64,
    /// Probes in flight at once, per upstream.
    pub(crate) concurrency: u32,
    /// Path of HTTP probes.
    pub(crate) http_path: String,
    /// SNI of HTTPS probes (default: the target's host).
    pub(crate) https_sni: Option<String>,
    /// Verify the target's certificate on HTTPS probes.
    pub(crate) https_verify_certificate: bool,
    /// Headers sent with HTTP probes.
    pub(crate) headers: BTreeMap<String, Vec<String>>,
    /// When a target counts as healthy again.
    pub(crate) healthy: ActiveHealthy,
    /// When a target counts as unhealthy.
    pub(crate) unhealthy: ActiveUnhealthy,
}

impl Default for ActiveChecks {
    fn default() -> Self {
        ActiveChecks {
            kind: "http".into(),
            timeout: 1.0,
            concurrency: 10,
            http_path: "/".into(),
            https_sni: None,
            https_verify_certificate: true,
            headers: BTreeMap::new(),
            healthy: ActiveHealthy::default(),
            unhealthy: ActiveUnhealthy::default(),
        }
    }
}

/// `healthchecks.active.healthy`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ActiveHealthy {
    /// Seconds between probes of a healthy target; 0 turns them off.
    pub(crate) interval: f64,
    /// Statuses that count as a success.
    pub(crate) http_statuses: Vec<u16>,
    /// Successes in a row that make a target healthy; 0 never does.
    pub(crate) successes: u32,
}

impl Default for ActiveHealthy {
    fn default() -> Self {
        ActiveHealthy { interval: 0.0, http_statuses: vec![200, 302], successes: 0 }
    }
}

/// `healthchecks.active.unhealthy`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ActiveUnhealthy {
    /// Seconds between probes of an unhealthy target; 0 turns them off.
    pub(crate) interval: f64,
    /// Statuses that count as a failure.
    pub(crate) http_statuses: Vec<u16>,
    /// Connection failures in a row that make a target unhealthy; 0 never does.
    pub(crate) tcp_failures: u32,
    /// Timeouts in a row that make a target unhealthy; 0 never does.
    pub(crate) timeouts: u32,
    /// Failure statuses in a row that make a target unhealthy; 0 never does.
    pub(crate) http_failures: u32,
}

impl Default for ActiveUnhealthy {
    fn default() -> Self {
        ActiveUnhealthy {
            interval: 0.0,
            http_statuses: vec![429, 404, 500, 501, 502, 503, 504, 505],
            tcp_failures: 0,
            timeouts: 0,
            http_failures: 0,
        }
    }
}

/// `healthchecks.passive`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PassiveChecks {
    /// `http`, `https` or `tcp` (`tcp` counts only connection failures and timeouts).
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// When proxied traffic makes a target healthy again.
    pub(crate) healthy: PassiveHealthy,
    /// When proxied traffic makes a target unhealthy.
    pub(crate) unhealthy: PassiveUnhealthy,
    /// Beyond Kong: seconds after a passive trip until one trial request goes to the target
    /// (half-open); its success makes the target healthy again. 0: only an active check or a
    /// manual call brings it back, as in Kong.
    pub(crate) half_open_after: f64,
}

impl Default for PassiveChecks {
    fn default() -> Self {
        PassiveChecks {
            kind: "http".into(),
            healthy: PassiveHealthy::default(),
            unhealthy: PassiveUnhealthy::default(),
            half_open_after: 10.0,
        }
    }
}

/// `healthchecks.passive.healthy`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PassiveHealthy {
    /// Statuses that count as a success.
    pub(crate) http_statuses: Vec<u16>,
    /// Successes in a row that make a target healthy; 0 never does.
    pub(crate) successes: u32,
}

impl Default for PassiveHealthy {
    fn default() -> Self {
        let statuses = [200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308];
        PassiveHealthy { http_statuses: statuses.to_vec(), successes: 0 }
    }
}

/// `healthchecks.passive.unhealthy`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PassiveUnhealthy {
    /// Statuses that count as a failure.
    pub(crate) http_statuses: Vec<u16>,
    /// Connection failures in a row that trip the target; 0 never does.
    pub(crate) tcp_failures: u32,
    /// Timeouts in a row that trip the target; 0 never does.
    pub(crate) timeouts: u32,
    /// Failure statuses in a row that trip the target; 0 never does.
    pub(crate) http_failures: u32,
}

impl Default for PassiveUnhealthy {
    fn default() -> Self {
        PassiveUnhealthy { http_statuses: vec![429, 500, 503], tcp_failures: 0, timeouts: 0, http_failures: 0 }
    }
}
