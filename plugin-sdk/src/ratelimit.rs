//! Building blocks for rate-limiting plugins: Kong's six fixed windows, exact counting through the
//! host's counters, and the `RateLimit-*` / `X-RateLimit-*` / `Retry-After` headers.

use crate::bindings::wasmgate::plugin::{counters, response};
use crate::{Action, CounterOp, Window, json_message};
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
    /// nothing is counted and the request is not admitted.
    pub fn count(&self, key: &str) -> Result<Usage, String> {
        let windows: Vec<_> = self.windows().collect();
        let ops: Vec<CounterOp> = windows
            .iter()
            .map(|(w, _, limit)| CounterOp { key: key.to_string(), window: *w, delta: 1, limit: Some(*limit) })
            .collect();
        let result = counters::increment(&ops)?;
        let windows = windows
            .iter()
            .zip(&result.states)
            .map(|((_, name, limit), state)| WindowUsage {
                name,
                limit: *limit,
                // A refused request still fills the window that refused it.
                remaining: if result.admitted {
                    limit.saturating_sub(state.count)
                } else {
                    limit.saturating_sub(state.count + 1)
                },
                reset: state.reset_ms.div_ceil(1000),
            })
            .collect();
        Ok(Usage { admitted: result.admitted, windows })
    }
}

impl Usage {
    /// The window closest to its limit (Kong's choice for the `RateLimit-*` headers).
    fn tightest(&self) -> Option<&WindowUsage> {
        self.windows.iter().min_by(|a, b| a.remaining.cmp(&b.remaining).then(b.limit.cmp(&a.limit)))
    }

    /// Seconds until the request could be admitted (for `Retry-After`).
    pub fn retry_after(&self) -> u64 {
        self.windows.iter().filter(|w| w.remaining == 0).map(|w| w.reset).max().unwrap_or(0)
    }

    /// `X-RateLimit-Limit-<Window>` / `X-RateLimit-Remaining-<Window>` for every window, then
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` for the tightest, and
    /// `Retry-After` when refused.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = Vec::with_capacity(self.windows.len() * 2 + 4);
        for w in &self.windows {
            headers.push((format!("X-RateLimit-Limit-{}", w.name), w.limit.to_string()));
            headers.push((format!("X-RateLimit-Remaining-{}", w.name), w.remaining.to_string()));
        }
        if let Some(t) = self.tightest() {
            headers.push(("RateLimit-Limit".into(), t.limit.to_string()));
            headers.push(("RateLimit-Remaining".into(), t.remaining.to_string()));
            headers.push(("RateLimit-Reset".into(), t.reset.to_string()));
        }
        if !self.admitted {
            headers.push(("Retry-After".into(), self.retry_after().to_string()));
        }
        headers
    }
}

impl Usage {
    /// The access phase's answer: over a limit, `status` with `{"message": message}`, the
    /// headers (unless `hide`) and always `Retry-After`; otherwise go on, with the headers set on
    /// the response to come (one host call; no header-filter phase needed).
    pub fn verdict(&self, hide: bool, status: u16, message: &str) -> Action {
        let mut headers = if hide { Vec::new() } else { self.headers() };
        if self.admitted {
            if !headers.is_empty() {
                response::set_headers(&headers);
            }
            return Action::Proceed;
        }
        if hide {
            headers.push(("Retry-After".into(), self.retry_after().to_string()));
        }
        let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        json_message(status, message, &refs)
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

    #[test]
    fn headers_follow_kong() {
        let usage = Usage {
            admitted: false,
            windows: vec![
                WindowUsage { name: "Second", limit: 5, remaining: 3, reset: 1 },
                WindowUsage { name: "Minute", limit: 10, remaining: 0, reset: 42 },
            ],
        };
        let h = usage.headers();
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("X-RateLimit-Limit-Second"), Some("5"));
        assert_eq!(get("X-RateLimit-Remaining-Minute"), Some("0"));
        assert_eq!(
            (get("RateLimit-Limit"), get("RateLimit-Remaining"), get("RateLimit-Reset")),
            (Some("10"), Some("0"), Some("42"))
        );
        assert_eq!(get("Retry-After"), Some("42"));
    }
}
