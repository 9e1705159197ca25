//! The host side of the WIT world: the store's data ([`HostState`]) and the functions plugins
//! import. For one phase call the request (and response) header is moved into the store and the
//! boxed request state swapped in; both go back afterwards. No header map is copied per call.

mod consumers;
mod context;
mod headers;
mod log;
mod metrics;
mod rate_limit;
mod request;
mod response;
pub(crate) mod sandbox;
mod services;

use super::counters::CounterSpace;
use super::log_limit::LogLimit;
use super::shared::Shared;
use crate::config::Limits;
use crate::entities::Entities;
use crate::request::redact::Redactions;
use crate::request::{Phase, RequestState};
use crate::sinks::{Sink, SinkGrants};
use pingora_http::{RequestHeader, ResponseHeader};
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    // Exports are called async, so that a long call yields at epoch ticks; imports stay sync.
    exports: { default: async },
});

pub(crate) use self::wasmgate::plugin::types;

/// Data of one store (one pooled instance).
pub struct HostState {
    /// Resources of the sandbox's WASI (streams, pollables).
    table: ResourceTable,
    /// A partial line the plugin wrote to stderr.
    stderr_line: Vec<u8>,
    store_limits: StoreLimits,
    /// The module's name: log tag and namespace of its counters and cache.
    pub(crate) plugin: Arc<str>,
    shared: Arc<Shared>,
    /// The module's window counters.
    counters: Arc<dyn CounterSpace>,
    /// The module's log budget (stderr, rejected writes).
    pub(crate) log_limit: Arc<LogLimit>,
    /// The module's limits.
    pub(crate) limits: Limits,
    /// Where the module may write logs.
    grants: Arc<SinkGrants>,
    /// Log sinks this instance opened; a handle is an index.
    sinks: Vec<Arc<Sink>>,
    /// What the current call has written so far, against `limits`.
    pub(crate) usage: Usage,
    /// What the current call may see and change.
    pub(crate) call: Call,
}

/// The request (and response) a phase call works on.
pub(crate) struct Call {
    /// The phase being run.
    pub(crate) phase: Phase,
    /// The client request; swapped in from the session for the call.
    pub(crate) req: RequestHeader,
    /// The response; swapped in for header-filter.
    pub(crate) resp: ResponseHeader,
    /// Whether `resp` holds a real response in this call.
    pub(crate) has_resp: bool,
    /// The request's state (facts, entities, context values, consumer, overrides); swapped in.
    pub(crate) state: Box<RequestState>,
}

impl Call {
    fn empty() -> Call {
        Call {
            phase: Phase::Configure,
            req: RequestHeader::build("GET", b"/", None).expect("static request"),
            resp: ResponseHeader::build(200, None).expect("static response"),
            has_resp: false,
            state: Box::default(),
        }
    }
}

/// Most WASI handles (streams, pollables) one instance may hold at once. Instances outlive
/// calls, so a plugin that never drops its handles would otherwise grow the host's table without
/// bound; past this, creating one traps and the instance is replaced.
pub(crate) const MAX_HANDLES: usize = 1024;

fn bounded_table() -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_HANDLES);
    table
}

impl HostState {
    /// A fresh state for one instance of module `plugin`, with its limits and log grants.
    pub(crate) fn new(
        plugin: Arc<str>,
        shared: Arc<Shared>,
        log_limit: Arc<LogLimit>,
        limits: Limits,
        grants: Arc<SinkGrants>,
    ) -> HostState {
        let memory = (limits.memory_mb as usize) << 20;
        let counters = shared.counters.space(&plugin, limits.counter_bytes);
        HostState {
            table: bounded_table(),
            stderr_line: Vec::new(),
            store_limits: StoreLimitsBuilder::new().memory_size(memory).trap_on_grow_failure(true).build(),
            plugin,
            shared,
            counters,
            log_limit,
            limits,
            grants,
            sinks: Vec::new(),
            usage: Usage::default(),
            call: Call::empty(),
        }
    }

    /// Counts one header write of `name` and `value`; false (and the call fails when it returns)
    /// once the call is past `header_writes` or `header_bytes`.
    pub(crate) fn header_write(&mut self, name: &str, value: &str) -> bool {
        let u = &mut self.usage;
        u.header_writes += 1;
        u.header_bytes += (name.len() + value.len()) as u64;
        if u.header_writes > self.limits.header_writes {
            u.over.get_or_insert("header_writes");
        } else if u.header_bytes > self.limits.header_bytes {
            u.over.get_or_insert("header_bytes");
        }
        u.over.is_none()
    }

    /// Whether this plugin may write one more line of its output or refused host calls to the
    /// log now (see [`LogLimit`]).
    pub(crate) fn may_log(&self) -> bool {
        self.log_limit.allow(&self.plugin, super::log_limit::LogKind::Output)
    }

    /// The memory limiter for `Store::limiter`.
    pub(crate) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.store_limits
    }

    fn entities(&self) -> Option<&Entities> {
        self.call.state.entities()
    }
}

/// What one call wrote that the host keeps, counted against the module's [`Limits`].
#[derive(Debug, Default)]
pub(crate) struct Usage {
    /// Header writes.
    pub(crate) header_writes: u32,
    /// Bytes of header names and values.
    pub(crate) header_bytes: u64,
    /// Bytes written to stderr.
    pub(crate) stderr_bytes: u64,
    /// The first limit the call went past; the call then fails.
    pub(crate) over: Option<&'static str>,
    /// Credential places declared (in `configure`) for the log records to hide.
    pub(crate) redactions: Redactions,
    /// The configuration being accepted declared that it leaves response bodies alone.
    pub(crate) skips_body_filter: bool,
    /// When the call's CPU time is up (the epoch callback traps after it).
    pub(crate) deadline: Option<std::time::Instant>,
}

impl Usage {
    /// Moves the call's deadline by `host_time`: time spent in a costly host function (a
    /// password hash) is not the plugin's.
    pub(crate) fn credit(&mut self, host_time: std::time::Duration) {
        if let Some(deadline) = &mut self.deadline {
            *deadline += host_time;
        }
    }
}

impl wasmgate::plugin::types::Host for HostState {}

/// Adds everything a plugin may import to a linker: the wasmgate world and the sandbox's WASI.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    Plugin::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    sandbox::add_to_linker(linker)
}
