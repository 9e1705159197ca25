//! The remaining imports: counters, the shared cache, logging, time and upstream choice.

use super::HostState;
use super::wasmgate::plugin::types::{
    CounterOp, CounterResult, CounterState, CredentialPlace, LimitKey, LogLevel, Window,
};
use super::wasmgate::plugin::{cache, clock, counters, logging, upstreams};
use crate::plugins::counters::{CounterRequest, Period};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds on a monotonic clock that starts with the process.
pub(crate) fn monotonic_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl counters::Host for HostState {
    fn increment(&mut self, ops: Vec<CounterOp>) -> Result<CounterResult, String> {
        let requests: Vec<CounterRequest> = ops
            .into_iter()
            .map(|op| CounterRequest {
                key: op.key,
                period: match op.window {
                    Window::Second => Period::Second,
                    Window::Minute => Period::Minute,
                    Window::Hour => Period::Hour,
                    Window::Day => Period::Day,
                    Window::Month => Period::Month,
                    Window::Year => Period::Year,
                },
                delta: op.delta,
                limit: op.limit,
            })
            .collect();
        let reply = self.counters.increment(now_ms(), &requests)?;
        Ok(CounterResult {
            admitted: reply.admitted,
            states: reply.states.into_iter().map(|(count, reset_ms)| CounterState { count, reset_ms }).collect(),
        })
    }

    fn limit(&mut self, key: String, windows: Vec<(Window, u64)>, hide_headers: bool) -> Result<CounterResult, String> {
        self.rate_limit(key, windows, hide_headers)
    }

    fn limit_by(
        &mut self,
        by: LimitKey,
        windows: Vec<(Window, u64)>,
        hide_headers: bool,
    ) -> Result<CounterResult, String> {
        let key = self.limit_key(&by);
        self.rate_limit(key, windows, hide_headers)
    }
}

impl cache::Host for HostState {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.shared.cache.get(&self.plugin, &key)
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: u64) {
        if !self.shared.cache.set(&self.plugin, key, value, ttl_ms, self.limits.cache_bytes) && self.may_log() {
            tracing::warn!(plugin = %self.plugin, "a cache entry larger than the module's cache_bytes was not stored");
        }
    }

    fn delete(&mut self, key: String) {
        self.shared.cache.delete(&self.plugin, &key);
    }
}

impl logging::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        let plugin = &*self.plugin;
        match level {
            LogLevel::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            LogLevel::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            LogLevel::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
    }

    fn redact(&mut self, place: CredentialPlace) -> Result<(), String> {
        if self.call.phase != crate::request::Phase::Configure {
            return Err("redact: declare credential places in configure".into());
        }
        let r = &mut self.usage.redactions;
        match place {
            CredentialPlace::Header(name) => r.header(&name),
            CredentialPlace::QueryArg(name) => r.query_arg(&name),
            CredentialPlace::Cookie(name) => r.cookie(&name),
        }
        Ok(())
    }
}

impl clock::Host for HostState {
    fn now_ms(&mut self) -> u64 {
        now_ms()
    }

    fn monotonic_ns(&mut self) -> u64 {
        monotonic_ns()
    }
}

impl upstreams::Host for HostState {
    fn exists(&mut self, name: String) -> bool {
        self.entities().is_some_and(|e| e.upstream(&name).is_some())
    }

    fn set_upstream(&mut self, name: String) -> Result<(), String> {
        let index =
            self.entities().and_then(|e| e.upstream(&name)).ok_or_else(|| format!("no upstream named {name:?}"))?;
        self.call.state.choose_upstream(index);
        Ok(())
    }
}
