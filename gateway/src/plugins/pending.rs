//! Modules that a configuration uses but that are still compiling: `wasmgate run` started with an
//! empty code cache (a first start, an upgrade). Their instances are kept as placeholders, and a
//! chain that holds one answers 503 with `Retry-After` instead of running without the plugin; the
//! routes whose plugins are ready serve meanwhile. Once the module is compiled, a reload swaps in
//! the real instances (and validates their configurations).

use crate::request::answer::Answer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Seconds a client is told to wait (`Retry-After`): about what one module takes to compile.
pub(crate) const RETRY_AFTER_SECS: u32 = 2;

/// A module still compiling, shared by the snapshots built while it is.
#[derive(Debug)]
pub struct Pending {
    /// Module name.
    pub(crate) name: Arc<str>,
    /// It failed to compile or load, or its configurations were refused (the log says why).
    failed: AtomicBool,
}

impl Pending {
    /// Module `name`, compiling.
    pub(crate) fn new(name: &str) -> Arc<Pending> {
        Arc::new(Pending { name: Arc::from(name), failed: AtomicBool::new(false) })
    }

    /// Marks it failed: its routes stop telling clients to retry.
    pub(crate) fn fail(&self) {
        self.failed.store(true, Ordering::Release);
    }

    /// Whether it failed.
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// What a request whose chain holds it gets: 503, with `Retry-After` while it compiles.
    pub(crate) fn answer(&self) -> Answer {
        if self.failed() {
            let message = format!("plugin '{}' could not be loaded; the gateway's log says why", self.name);
            return Answer::message(503, &message);
        }
        let message = format!("plugin '{}' is still compiling; retry in a few seconds", self.name);
        let mut answer = Answer::message(503, &message);
        answer.headers.push(("retry-after".into(), RETRY_AFTER_SECS.to_string()));
        answer
    }
}
