//! Building blocks for rate-limiting plugins: Kong's six fixed windows, and exact counting with
//! the `RateLimit-*` / `X-RateLimit-*` / `Retry-After` headers in one host call
//! (`counters::limit`, or `counters::limit-by` with Kong's key made by the host).

use crate::bindings::wasmgate::plugin::counters;
use crate::{Action, CounterResult, LimitKey, Window, json_message};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Requests allowed per window; at least one must be set, and a longer window's limit may not be
/// lower than a shorter one's.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second: Option<u64>,
    /// Requests per minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minute: Option<u64>,
    /// Requests per hour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hour: Option<u64>,
    /// Requests per day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<u64>,
    /// Requests per calendar month (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub month: Option<u64>,
    /// Requests per calendar year (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub year: Option<u64>,
}

/// One window's state after counting a request.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowUsage {
    /// `Second`, `Minute`, ... (as in the header names).
    pub name: &'static str,
    /// The limit.
    pub limit: u64,
    /// Requests left in the window.
    pub remaining: u64,
    /// Seconds until the window resets.
    pub reset: u64,
}

/// The outcome of counting one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// Whether the request is within every limit (and was counted).
    pub admitted: bool,
    /// Every configured window.
    pub windows: Vec<WindowUsage>,
}

impl Limits {
    /// The configured windows, shortest first.
    fn windows(&self) -> impl Iterator<Item = (Window, &'static str, u64)> {
        [
            (Window::Second, "Second", self.second),
            (Window::Minute, "Minute", self.minute),
            (Window::Hour, "Hour", self.hour),
            (Window::Day, "Day", self.day),
            (Window::Month, "Month", self.month),
            (Window::Year, "Year", self.year),
        ]
        .into_iter()
        .filter_map(|(w, name, limit)| limit.map(|l| (w, name, l)))
    }

    /// Checks the limits; `field` names them in errors (e.g. `config` or `config.roles[0].limits`).
    pub fn validate(&self, field: &str) -> Result<(), String> {
        let mut previous: Option<(&str, u64)> = None;
        for (_, name, limit) in self.windows() {
            if let Some((shorter, shorter_limit)) = previous
                && limit < shorter_limit
            {
                let (name, shorter) = (name.to_lowercase(), shorter.to_lowercase());
                return Err(format!(
                    "{field}.{name}: the limit for {name} ({limit}) cannot be lower than the limit for {shorter} ({shorter_limit})"
                ));
            }
            previous = Some((name, limit));
        }
        match previous {
            Some(_) => Ok(()),
            None => Err(format!("{field}: set at least one of second, minute, hour, day, month, year")),
        }
    }

    /// Counts one request against counter `key` in every window, exactly: when any window is full
    /// nothing is counted and the request is not admitted. The host sets Kong's headers on the
    /// response to come (only `Retry-After`, when refused, with `hide_headers`).
    pub fn count(&self, key: &str, hide_headers: bool) -> Result<Usage, String> {
        self.count_with(|limits| counters::limit(key, limits, hide_headers))
    }

    /// As [`Limits::count`], with the counter's key made by the host as Kong's rate-limiting makes
    /// it: the ids of the route and service the configuration is scoped to (none for a global
    /// one), then the identity `by` names (the client IP when the request has none). One host
    /// call, and no ids read into the plugin.
    pub fn count_by(&self, by: &LimitKey, hide_headers: bool) -> Result<Usage, String> {
        self.count_with(|limits| counters::limit_by(by, limits, hide_headers))
    }

    fn count_with(
        &self,
        count: impl FnOnce(&[(Window, u64)]) -> Result<CounterResult, String>,
    ) -> Result<Usage, String> {
        // At most six windows: on the stack, not in a `Vec`.
        let mut limits = [(Window::Second, 0); 6];
        let mut n = 0;
        for (window, _, limit) in self.windows() {
            limits[n] = (window, limit);
            n += 1;
        }
        let result = count(&limits[..n])?;
        let windows = self
            .windows()
            .zip(&result.states)
            .map(|((_, name, limit), state)| WindowUsage {
                name,
                limit,
                // As Kong: a refused request is not counted, so the windows that refused it show 0
                // and the others what they have left.
                remaining: limit.saturating_sub(state.count),
                reset: state.reset_ms.div_ceil(1000).max(1),
            })
            .collect();
        Ok(Usage { admitted: result.admitted, windows })
    }
}

impl Usage {
    /// The access phase's answer: over a limit, `status` with `{"message": message}` (the host
    /// adds the headers); otherwise go on.
    pub fn verdict(&self, status: u16, message: &str) -> Action {
        match self.admitted {
            true => Action::Proceed,
            false => json_message(status, message, &[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(json: &str) -> Limits {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn validation() {
        assert!(limits(r#"{"second": 5, "minute": 100}"#).validate("config").is_ok());
        assert_eq!(
            limits(r#"{"second": 100, "minute": 60}"#).validate("config").unwrap_err(),
            "config.minute: the limit for minute (60) cannot be lower than the limit for second (100)"
        );
        assert_eq!(
            limits("{}").validate("config").unwrap_err(),
            "config: set at least one of second, minute, hour, day, month, year"
        );
        assert!(serde_json::from_str::<Limits>(r#"{"minutes": 1}"#).is_err());
    }
}
