//! `[[upstreams]]` compiled into balancers, with their health checks validated.

use crate::balancer::{Address, HashOn, Target, Upstream};
use crate::config::{ConfigErrors, GatewayConfig};
use crate::health::HealthRegistry;
use std::collections::HashMap;

pub(super) fn build_upstreams(
    cfg: &GatewayConfig,
    health: &HealthRegistry,
    errors: &mut ConfigErrors,
) -> (Vec<Upstream>, HashMap<String, usize>) {
    let mut list = Vec::new();
    let mut by_name = HashMap::new();
    for u in &cfg.upstreams {
        let label = format!("upstream {:?}", u.name);
        if Address::parse(&u.name, 80).is_err() || u.name.contains(':') {
            errors.push(format!(
                "{label}: name: must be a host name (letters, digits, '-', '.'), as services use it as their host"
            ));
        }
        if !matches!(u.algorithm.as_str(), "round-robin" | "consistent-hashing" | "least-connections" | "latency") {
            errors.push(format!(
                "{label}: algorithm: {:?} is not one of round-robin, consistent-hashing, least-connections, latency",
                u.algorithm
            ));
        }
        if !(10..=65_536).contains(&u.slots) {
            errors.push(format!("{label}: slots: {} is out of range 10-65536", u.slots));
        }
        check_healthchecks(&u.healthchecks, &label, errors);
        if let Err(e) = crate::ids::upstream_id(u) {
            errors.push(format!("{label}: id: {e}"));
        }
        let mut targets = Vec::new();
        for (t, target) in u.targets.iter().enumerate() {
            if target.weight > 65535 {
                errors.push(format!("{label}: targets[{t}].weight: {} is out of range 0-65535", target.weight));
            }
            match Address::parse(&target.target, crate::balancer::DEFAULT_TARGET_PORT) {
                Ok(address) => {
                    let health = health.target(&u.name, &address.to_string());
                    targets.push(Target { address, weight: target.weight, health });
                }
                Err(e) => errors.push(format!("{label}: targets[{t}].target: {e}")),
            }
        }
        if by_name.insert(u.name.clone(), list.len()).is_some() {
            errors.push(format!("{label}: name is used by another upstream; names must be unique"));
        }
        let mut upstream = Upstream::new(u.name.clone(), targets, &u.algorithm, u.slots, u.healthchecks.clone());
        let mut hash = |field: &str, kind: &str, header, query, capture| {
            HashOn::parse(field, kind, header, &u.hash_on_cookie, query, capture).unwrap_or_else(|e| {
                errors.push(format!("{label}: {field}: {e}"));
                HashOn::None
            })
        };
        let on = hash("hash_on", &u.hash_on, &u.hash_on_header, &u.hash_on_query_arg, &u.hash_on_uri_capture);
        let fallback = hash(
            "hash_fallback",
            &u.hash_fallback,
            &u.hash_fallback_header,
            &u.hash_fallback_query_arg,
            &u.hash_fallback_uri_capture,
        );
        if matches!(fallback, HashOn::Cookie(_)) || (matches!(on, HashOn::Cookie(_)) && fallback != HashOn::None) {
            errors.push(format!(
                "{label}: hash_fallback: a cookie always gives a value (one is set when absent), so it is neither a fallback nor has one; use \"none\""
            ));
        }
        upstream.hash_on = (on, fallback);
        upstream.cookie_path = u.hash_on_cookie_path.clone();
        list.push(upstream);
    }
    (list, by_name)
}

/// Checks `healthchecks` ranges and names.
fn check_healthchecks(h: &crate::config::Healthchecks, label: &str, errors: &mut ConfigErrors) {
    for (field, kind) in [("active.type", &h.active.kind), ("passive.type", &h.passive.kind)] {
        if !matches!(kind.as_str(), "http" | "https" | "tcp") {
            errors.push(format!("{label}: healthchecks.{field}: {kind:?} is not one of http, https, tcp"));
        }
    }
    let numbers = [
        ("active.timeout", h.active.timeout, 0.001),
        ("active.healthy.interval", h.active.healthy.interval, 0.0),
        ("active.unhealthy.interval", h.active.unhealthy.interval, 0.0),
        ("passive.half_open_after", h.passive.half_open_after, 0.0),
    ];
    for (field, value, min) in numbers {
        if !(value >= min && value <= 86_400.0) {
            errors.push(format!("{label}: healthchecks.{field}: {value} is out of range {min}-86400 (seconds)"));
        }
    }
    if !(0.0..=100.0).contains(&h.threshold) {
        errors.push(format!("{label}: healthchecks.threshold: {} is out of range 0-100 (a percentage)", h.threshold));
    }
    if h.active.concurrency == 0 {
        errors.push(format!("{label}: healthchecks.active.concurrency: must be at least 1"));
    }
    if !h.active.http_path.starts_with('/') {
        errors.push(format!("{label}: healthchecks.active.http_path: {:?} must start with '/'", h.active.http_path));
    }
    let statuses = [
        ("active.healthy.http_statuses", &h.active.healthy.http_statuses),
        ("active.unhealthy.http_statuses", &h.active.unhealthy.http_statuses),
        ("passive.healthy.http_statuses", &h.passive.healthy.http_statuses),
        ("passive.unhealthy.http_statuses", &h.passive.unhealthy.http_statuses),
    ];
    for (field, list) in statuses {
        if let Some(bad) = list.iter().find(|s| !(100..=999).contains(*s)) {
            errors.push(format!("{label}: healthchecks.{field}: {bad} is not an HTTP status (100-999)"));
        }
    }
}
