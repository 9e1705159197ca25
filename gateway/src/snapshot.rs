//! The immutable state that requests run on. A [`Snapshot`] is built from configuration (which
//! validates it completely), then swapped in whole; a request keeps the snapshot it started with
//! until it ends. It holds the compiled [`Entities`] and the [`PluginSet`] resolved for them.

use crate::entities::Entities;
use crate::plugins::PluginSet;
use std::sync::Arc;

/// Everything a request needs, for one configuration version.
pub(crate) struct Snapshot {
    /// Increases with every successful load.
    pub(crate) version: u64,
    /// Routes, services, upstreams, consumers.
    pub(crate) entities: Arc<Entities>,
    /// Plugin instances and chains.
    pub(crate) plugins: PluginSet,
}
