//! `wasmgate:plugin/context`: route and service identity, and per-request values (Kong's
//! `kong.ctx.plugin` and `kong.ctx.shared`).

use super::HostState;
use super::wasmgate::plugin::context::Host;

impl HostState {
    fn route(&self) -> Option<&crate::snapshot::Route> {
        Some(&self.entities()?.routes[self.call.state.info.route?])
    }

    fn service(&self) -> Option<&crate::snapshot::Service> {
        Some(&self.entities()?.services[self.call.state.info.service?])
    }
}

impl Host for HostState {
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
    }

    fn shared_get(&mut self, key: String) -> Option<String> {
        self.call.state.shared.get(&key).cloned()
    }

    fn shared_set(&mut self, key: String, value: Option<String>) {
        match value {
            Some(v) => self.call.state.shared.insert(key, v),
            None => self.call.state.shared.remove(&key),
        };
    }
}
