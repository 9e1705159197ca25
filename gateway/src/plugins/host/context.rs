//! `wasmgate:plugin/context`: route and service identity, and per-request values (Kong's
//! `kong.ctx.plugin` and `kong.ctx.shared`).

use super::HostState;
use super::wasmgate::plugin::context::{Host, RequestIds};

impl HostState {
    /// The matched route.
    pub(super) fn route(&self) -> Option<&crate::entities::Route> {
        Some(&self.entities()?.routes[self.call.state.info().route?])
    }

    /// Its service.
    pub(super) fn service(&self) -> Option<&crate::entities::Service> {
        Some(&self.entities()?.services[self.call.state.info().service?])
    }

    /// The plugin's own values plus the shared ones must stay within `context_bytes`; past it the
    /// call fails (its failure policy applies) and the values it set are dropped.
    fn check_context_bytes(&mut self) {
        let size =
            |m: &std::collections::HashMap<String, String>| m.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        let own = self.call.state.private_values(&self.plugin).map_or(0, size);
        if (own + size(self.call.state.shared())) as u64 > self.limits.context_bytes {
            self.call.state.private_values_mut(&self.plugin).clear();
            self.call.state.shared_mut().clear();
            self.usage.over.get_or_insert("context_bytes");
        }
    }
}

impl Host for HostState {
    fn ids(&mut self) -> RequestIds {
        let consumer = self.call.state.consumer().and_then(|c| Some(self.entities()?.consumers.get(c).id.clone()));
        RequestIds {
            route_id: self.route().map(|r| r.id.clone()),
            service_id: self.service().map(|s| s.id.clone()),
            consumer_id: consumer,
            credential_id: self.call.state.credential().map(str::to_string),
        }
    }

    fn route_id(&mut self) -> Option<String> {
        self.route().map(|r| r.id.clone())
    }

    fn route_name(&mut self) -> Option<String> {
        self.route().and_then(|r| r.name.clone())
    }

    fn service_id(&mut self) -> Option<String> {
        self.service().map(|s| s.id.clone())
    }

    fn service_name(&mut self) -> Option<String> {
        self.service().and_then(|s| s.name.clone())
    }

    fn get(&mut self, key: String) -> Option<String> {
        self.call.state.private_values(&self.plugin).and_then(|m| m.get(&key).cloned())
    }

    fn set(&mut self, key: String, value: Option<String>) {
        let map = self.call.state.private_values_mut(&self.plugin);
        match value {
            Some(v) => map.insert(key, v),
            None => map.remove(&key),
        };
        self.check_context_bytes();
    }

    fn shared_get(&mut self, key: String) -> Option<String> {
        self.call.state.shared().get(&key).cloned()
    }

    fn shared_set(&mut self, key: String, value: Option<String>) {
        match value {
            Some(v) => self.call.state.shared_mut().insert(key, v),
            None => self.call.state.shared_mut().remove(&key),
        };
        self.check_context_bytes();
    }
}
