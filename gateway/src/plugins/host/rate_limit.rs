//! `counters::limit` and `counters::limit-by`: Kong's rate limiting in one host call. The
//! increments go through `counters::increment`; the `X-RateLimit-*`, `RateLimit-*` and
//! `Retry-After` headers are made here from the result and kept for the response, so a plugin
//! neither formats them nor copies them across the boundary. With `limit-by` the host also makes
//! the counter's key, so the plugin reads no ids.

use super::HostState;
use super::wasmgate::plugin::counters::Host as _;
use super::wasmgate::plugin::types::{CounterOp, CounterResult, LimitKey, Window};
use crate::request::HeaderOp;

/// One window after counting a request.
#[derive(Debug, Clone, PartialEq)]
struct WindowUsage {
    window: Window,
    limit: u64,
    /// Requests left in the window.
    remaining: u64,
    /// Seconds until the window resets.
    reset: u64,
}

impl HostState {
    /// Kong's rate-limiting key: `<route id>:<service id>:<identity>`, where the route and service
    /// are the plugin configuration's own (none for a global one, so all routes share its
    /// counters, as in Kong) and the identity is the one `by` names, or the client IP when the
    /// request has none.
    pub(super) fn limit_key(&self, by: &LimitKey) -> String {
        let state = &self.call.state;
        let consumer = || Some(self.entities()?.consumers.get(state.consumer()?).id.as_str());
        let identity = match by {
            LimitKey::Consumer => consumer().or(state.credential()),
            LimitKey::Credential => state.credential(),
            LimitKey::Ip => None,
            LimitKey::Service => self.service().map(|s| s.id.as_str()),
            LimitKey::Header(name) => self.call.req.headers.get(name.as_str()).and_then(|v| v.to_str().ok()),
            LimitKey::Path(path) => (**path == *state.info().path).then_some(path.as_str()),
        };
        let (route, service) = state.plugin_scope();
        let entities = self.entities();
        let route = route.zip(entities).map_or("", |(r, e)| e.routes[r].id.as_str());
        let service = service.zip(entities).map_or("", |(s, e)| e.services[s].id.as_str());
        let ip;
        let identity = match identity {
            Some(identity) => identity,
            None => {
                ip = state.info().client.to_string();
                &ip
            }
        };
        // One allocation; `format!` costs several times more on this path.
        [route, ":", service, ":", identity].concat()
    }

    /// See `counters::limit` in `wit/plugin.wit`.
    pub(super) fn rate_limit(
        &mut self,
        key: String,
        windows: Vec<(Window, u64)>,
        hide_headers: bool,
    ) -> Result<CounterResult, String> {
        let ops =
            windows.iter().map(|&(window, limit)| CounterOp { key: key.clone(), window, delta: 1, limit: Some(limit) });
        let result = self.increment(ops.collect())?;
        let usage: Vec<WindowUsage> = windows
            .iter()
            .zip(&result.states)
            .map(|(&(window, limit), state)| WindowUsage {
                window,
                limit,
                // As Kong: a refused request is not counted, so the windows that refused it show 0
                // and the others what they have left.
                remaining: limit.saturating_sub(state.count),
                reset: state.reset_ms.div_ceil(1000).max(1),
            })
            .collect();
        for (name, value) in headers(&usage, result.admitted, hide_headers) {
            self.write_header(HeaderOp::Set(name.into(), value.to_string()));
        }
        Ok(result)
    }
}

/// Kong's headers: `X-RateLimit-Limit-<Window>` / `X-RateLimit-Remaining-<Window>` for every
/// window, then `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` for the window closest
/// to its limit, and `Retry-After` when refused (only that one when `hide`).
fn headers(windows: &[WindowUsage], admitted: bool, hide: bool) -> Vec<(&'static str, u64)> {
    let mut headers = Vec::with_capacity(windows.len() * 2 + 4);
    if !hide {
        for w in windows {
            let (limit, remaining) = names(w.window);
            headers.push((limit, w.limit));
            headers.push((remaining, w.remaining));
        }
        // Kong's choice: the fewest remaining, then the longer window.
        let tightest =
            windows.iter().min_by(|a, b| a.remaining.cmp(&b.remaining).then(rank(b.window).cmp(&rank(a.window))));
        if let Some(t) = tightest {
            headers.extend([
                ("RateLimit-Limit", t.limit),
                ("RateLimit-Remaining", t.remaining),
                ("RateLimit-Reset", t.reset),
            ]);
        }
    }
    if !admitted {
        let retry_after = windows.iter().filter(|w| w.remaining == 0).map(|w| w.reset).max().unwrap_or(0);
        headers.push(("Retry-After", retry_after));
    }
    headers
}

/// Windows from the shortest.
fn rank(window: Window) -> u8 {
    match window {
        Window::Second => 0,
        Window::Minute => 1,
        Window::Hour => 2,
        Window::Day => 3,
        Window::Month => 4,
        Window::Year => 5,
    }
}

/// The per-window header names.
fn names(window: Window) -> (&'static str, &'static str) {
    match window {
        Window::Second => ("X-RateLimit-Limit-Second", "X-RateLimit-Remaining-Second"),
        Window::Minute => ("X-RateLimit-Limit-Minute", "X-RateLimit-Remaining-Minute"),
        Window::Hour => ("X-RateLimit-Limit-Hour", "X-RateLimit-Remaining-Hour"),
        Window::Day => ("X-RateLimit-Limit-Day", "X-RateLimit-Remaining-Day"),
        Window::Month => ("X-RateLimit-Limit-Month", "X-RateLimit-Remaining-Month"),
        Window::Year => ("X-RateLimit-Limit-Year", "X-RateLimit-Remaining-Year"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_kong() {
        let windows = [
            WindowUsage { window: Window::Second, limit: 5, remaining: 3, reset: 1 },
            WindowUsage { window: Window::Minute, limit: 10, remaining: 0, reset: 42 },
        ];
        let h = headers(&windows, false, false);
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        assert_eq!((get("X-RateLimit-Limit-Second"), get("X-RateLimit-Remaining-Minute")), (Some(5), Some(0)));
        assert_eq!(
            (get("RateLimit-Limit"), get("RateLimit-Remaining"), get("RateLimit-Reset")),
            (Some(10), Some(0), Some(42))
        );
        assert_eq!(get("Retry-After"), Some(42));
        assert_eq!(headers(&windows, false, true), [("Retry-After", 42)], "hidden: Retry-After only");
        assert!(headers(&windows, true, true).is_empty());
        let equal = [
            WindowUsage { window: Window::Second, limit: 5, remaining: 4, reset: 1 },
            WindowUsage { window: Window::Minute, limit: 5, remaining: 4, reset: 59 },
        ];
        let h = headers(&equal, true, false);
        assert!(h.contains(&("RateLimit-Reset", 59)), "a tie goes to the longer window: {h:?}");
    }
}
