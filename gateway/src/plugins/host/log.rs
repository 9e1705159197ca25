//! `wasmgate:log/sink`: the request's log record, and sinks on the destinations this module was
//! allowed ([`crate::sinks`]). A sink's handle indexes this instance's list of open sinks.

use super::HostState;
use super::wasmgate::log::sink::{Host, HttpOptions};
use crate::request::Phase;
use crate::sinks::{self, QueueOptions, Sink};
use std::sync::Arc;

/// Most sinks one instance may hold (instances are replaced when their module's configurations
/// change, and the sinks with them).
const MAX_SINKS: usize = 64;

impl HostState {
    /// Sinks are opened while a configuration is accepted.
    fn may_open(&self) -> Result<(), String> {
        match self.call.phase {
            Phase::Configure => Ok(()),
            _ => Err("sinks are opened in configure, not per request".into()),
        }
    }

    /// The handle of `sink` in this instance, adding it if new (up to [`MAX_SINKS`]).
    fn keep_sink(&mut self, sink: Arc<Sink>) -> Result<u32, String> {
        if let Some(i) = self.sinks.iter().position(|s| Arc::ptr_eq(s, &sink)) {
            return Ok(i as u32);
        }
        if self.sinks.len() >= MAX_SINKS {
            return Err(format!("this plugin has opened {MAX_SINKS} sinks, the most it may"));
        }
        self.sinks.push(sink);
        Ok(self.sinks.len() as u32 - 1)
    }

    /// The sink of `handle`; a bad handle is a bug in the plugin, logged within its budget.
    fn sink(&self, handle: u32) -> Option<&Arc<Sink>> {
        let sink = self.sinks.get(handle as usize);
        if sink.is_none() && self.may_log() {
            tracing::warn!(plugin = %self.plugin, handle, "log: not a sink this plugin opened; entry ignored");
        }
        sink
    }

    fn record(&self) -> String {
        let resp = self.call.has_resp.then_some(&self.call.resp);
        crate::request::log_record::build(&self.call.req, resp, &self.call.state)
    }
}

impl Host for HostState {
    fn open_file(&mut self, path: String, reopen: bool, max_entries: u32) -> Result<u32, String> {
        self.may_open()?;
        let file = self.grants.file(&path)?;
        self.keep_sink(sinks::file(file, reopen, max_entries))
    }

    fn open_http(&mut self, endpoint: String, o: HttpOptions) -> Result<u32, String> {
        self.may_open()?;
        let q = o.queue;
        let options = sinks::HttpOptions {
            method: o.method,
            content_type: o.content_type,
            headers: o.headers,
            timeout_ms: o.timeout_ms,
            keepalive_ms: o.keepalive_ms,
            queue: QueueOptions {
                max_batch_size: q.max_batch_size,
                max_coalescing_delay_ms: q.max_coalescing_delay_ms,
                max_entries: q.max_entries,
                max_retry_time_ms: q.max_retry_time_ms,
                initial_retry_delay_ms: q.initial_retry_delay_ms,
                max_retry_delay_ms: q.max_retry_delay_ms,
            },
        };
        options.check()?;
        let endpoint = self.grants.endpoint(&endpoint).map_err(|e| format!("endpoint: {e}"))?;
        if endpoint.has_credentials() && options.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization")) {
            return Err("headers: Authorization is set, and so is user:password@ in the endpoint; keep one".into());
        }
        self.keep_sink(sinks::http(endpoint, options))
    }

    fn serialize(&mut self) -> String {
        self.record()
    }

    fn send_record(&mut self, sink: u32) {
        if self.sink(sink).is_some() {
            let record = self.record();
            self.sinks[sink as usize].send(record);
        }
    }

    fn send(&mut self, sink: u32, entry: String) {
        if let Some(s) = self.sink(sink) {
            s.send(entry);
        }
    }
}
