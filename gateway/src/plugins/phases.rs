//! Running a phase over a chain: plugins in order, early answers, and the failure policy
//! (`fail-closed` answers 500; `fail-open` skips the plugin).

use super::chain::{Chain, Configured, PluginSet};
use super::host::types::{Action, Response};
use super::host::{HostState, Plugin};
use super::log_limit::LogKind;
use super::module::{CallError, CallScope};
use super::quarantine::ClientKey;
use crate::metrics::{self, CallOutcome};
use crate::request::answer::Answer;
use crate::request::{Phase, RequestState};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::Store;

/// The outcome of a phase.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Go on.
    Continue,
    /// A plugin answered early.
    Respond(Answer),
    /// A fail-closed plugin failed: answer 500.
    Fail,
    /// A plugin of the chain is not loaded yet (its module is compiling): its 503.
    Unavailable(Answer),
}

fn answer(r: Response) -> Answer {
    Answer { status: r.status, headers: r.headers, body: Bytes::from(r.body) }
}

/// Logs a failure; true when the plugin's policy is fail-closed.
fn fails_closed(p: &Configured, phase: Phase, e: &CallError) -> bool {
    let policy = if p.module.fail_closed { "fail-closed: answering 500" } else { "fail-open: skipped" };
    if p.module.log_limit.allow(&p.module.name, LogKind::of(e)) {
        tracing::error!(plugin = %p.module.name, ?phase, "plugin {e} ({policy})");
    }
    p.module.fail_closed
}

/// Calls one plugin instance in its configuration, unless it is quarantined; deadline hits count
/// towards its quarantine. `clock` is when the call starts (read now if unset), and becomes when
/// it ended: the calls of a phase share their clock readings.
async fn call<R>(
    p: &Configured,
    scope: &mut CallScope<'_>,
    clock: &mut Option<Instant>,
    f: impl AsyncFnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<Result<R, String>>,
) -> Result<R, CallError> {
    let client = || client_key(scope.state);
    if p.quarantine.tracking() && !p.quarantine.admits(client()) {
        return Err(CallError::Quarantined);
    }
    scope.state.scope_to(p.scope.route, p.scope.service);
    let started = *clock.get_or_insert_with(Instant::now);
    let result = p.module.call(scope, Some((p.config_id, p.config_json.as_str())), f).await;
    let ended = Instant::now();
    if scope.state.entities().is_some_and(|e| e.settings.metrics) {
        let outcome = match &result {
            Ok(_) => CallOutcome::Ok,
            Err(CallError::Trap(_)) => CallOutcome::Trap,
            Err(CallError::Timeout(_)) => CallOutcome::Timeout,
            Err(CallError::Memory(_)) => CallOutcome::Memory,
            Err(CallError::Plugin(_) | CallError::Quarantined) => CallOutcome::Error,
        };
        metrics::record_call(&p.module.name, scope.phase, outcome, ended - started);
    }
    *clock = Some(ended);
    let deadline_hit = matches!(result, Err(CallError::Timeout(_)));
    if deadline_hit || p.quarantine.tracking() {
        p.quarantine.record(client_key(scope.state), deadline_hit, &p.module.limits.quarantine, &p.module.name);
    }
    result
}

/// The client a call is for: the authenticated consumer once known, else the client address.
fn client_key(state: &RequestState) -> ClientKey {
    let consumer = state.consumer().zip(state.entities()).map(|(c, e)| &e.consumers.get(c).id);
    match consumer {
        Some(id) => {
            let mut h = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(id, &mut h);
            ClientKey::Consumer(std::hash::Hasher::finish(&h))
        }
        None => ClientKey::Ip(state.info().client),
    }
}

/// Calls a rewrite or access export; `Some` when the chain stops here.
async fn call_action(p: &Configured, scope: &mut CallScope<'_>, clock: &mut Option<Instant>) -> Option<Verdict> {
    let (id, phase) = (p.config_id, scope.phase);
    let result = call(p, scope, clock, async |plugin, store| match phase {
        Phase::Rewrite => plugin.wasmgate_plugin_handler().call_rewrite(store, id).await,
        _ => plugin.wasmgate_plugin_handler().call_access(store, id).await,
    })
    .await;
    match result {
        Ok(Action::Proceed) => None,
        Ok(Action::Respond(r)) => Some(Verdict::Respond(answer(r))),
        Err(e) => fails_closed(p, phase, &e).then_some(Verdict::Fail),
    }
}

/// The rewrite phase: global plugins, before routing.
pub(crate) async fn rewrite(chain: &Chain, scope: &mut CallScope<'_>) -> Verdict {
    scope.phase = Phase::Rewrite;
    if let Some(p) = &chain.pending {
        return Verdict::Unavailable(p.answer());
    }
    let mut clock = None;
    for p in chain.plugins.iter().filter(|p| p.module.phases.has(Phase::Rewrite)) {
        if let Some(verdict) = call_action(p, scope, &mut clock).await {
            return verdict;
        }
    }
    Verdict::Continue
}

/// The access phase. When a plugin authenticates a consumer and consumer-scoped instances exist,
/// the rest of the chain is re-resolved for that consumer; `chain` ends as the chain the later
/// phases use.
pub async fn access(set: &PluginSet, chain: &mut Arc<Chain>, scope: &mut CallScope<'_>) -> Verdict {
    scope.phase = Phase::Access;
    if let Some(p) = &chain.pending {
        return Verdict::Unavailable(p.answer());
    }
    let mut clock = None;
    let mut i = 0;
    while let Some(p) = chain.plugins.get(i) {
        i += 1;
        if !p.module.phases.has(Phase::Access) {
            continue;
        }
        let consumer_before = scope.state.consumer();
        if let Some(verdict) = call_action(p, scope, &mut clock).await {
            return verdict;
        }
        if let Some(consumer) =
            scope.state.consumer().filter(|c| Some(*c) != consumer_before && set.has_consumer_scope())
        {
            let p = p.clone();
            *chain = set.for_consumer(scope.state.info().route, scope.state.info().service, consumer);
            if let Some(pending) = &chain.pending {
                return Verdict::Unavailable(pending.answer());
            }
            i = chain.position_after(&p);
        }
    }
    Verdict::Continue
}

/// The header-filter phase (upstream responses and the gateway's own answers alike).
pub(crate) async fn header_filter(chain: &Chain, scope: &mut CallScope<'_>) -> Verdict {
    scope.phase = Phase::HeaderFilter;
    let mut clock = None;
    for p in chain.plugins.iter().filter(|p| p.module.phases.has(Phase::HeaderFilter)) {
        let id = p.config_id;
        let filter = async |plugin: &Plugin, store: &mut Store<HostState>| {
            plugin.wasmgate_plugin_handler().call_header_filter(store, id).await
        };
        if let Err(e) = call(p, scope, &mut clock, filter).await
            && fails_closed(p, Phase::HeaderFilter, &e)
        {
            return Verdict::Fail;
        }
    }
    Verdict::Continue
}

/// The body-filter phase for one chunk; plugins may replace it. Synchronous, as Pingora's body
/// filter is: each call is driven to completion here.
pub(crate) fn body_filter(
    chain: &Chain,
    scope: &mut CallScope<'_>,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) -> Verdict {
    scope.phase = Phase::BodyFilter;
    let mut clock = None;
    for p in chain.plugins.iter().filter(|p| p.filters_body) {
        let id = p.config_id;
        let chunk: &[u8] = body.as_deref().unwrap_or_default();
        let filter = async |plugin: &Plugin, store: &mut Store<HostState>| {
            plugin.wasmgate_plugin_handler().call_body_filter(store, id, chunk, end_of_stream).await
        };
        match super::module::block_on(call(p, scope, &mut clock, filter)) {
            Ok(Some(replacement)) => *body = Some(Bytes::from(replacement)),
            Ok(None) => {}
            Err(e) if fails_closed(p, Phase::BodyFilter, &e) => return Verdict::Fail,
            Err(_) => {}
        }
    }
    Verdict::Continue
}

/// The log phase: runs after every request; failures are only logged.
pub(crate) async fn log(chain: &Chain, scope: &mut CallScope<'_>) {
    scope.phase = Phase::Log;
    let mut clock = None;
    for p in chain.plugins.iter().filter(|p| p.module.phases.has(Phase::Log)) {
        let id = p.config_id;
        let log = async |plugin: &Plugin, store: &mut Store<HostState>| {
            plugin.wasmgate_plugin_handler().call_log(store, id).await
        };
        if let Err(e) = call(p, scope, &mut clock, log).await
            && p.module.log_limit.allow(&p.module.name, LogKind::of(&e))
        {
            tracing::error!(plugin = %p.module.name, phase = ?Phase::Log, "plugin {e}");
        }
    }
}
