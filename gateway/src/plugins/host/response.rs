//! `wasmgate:plugin/response`: the response in header-filter, body-filter and log.

use super::HostState;
use super::headers::{self, HeaderAccess};
use super::wasmgate::plugin::response::Host;
use super::wasmgate::plugin::types::ResponseSource;

impl HostState {
    /// The response, if this phase has one (writes are refused outside header-filter).
    fn resp(&mut self, write: bool) -> Option<&mut pingora_http::ResponseHeader> {
        let allowed = self.call.has_resp && (!write || self.call.phase == super::Phase::HeaderFilter);
        if !allowed {
            tracing::debug!(plugin = %self.plugin, phase = ?self.call.phase, "response not available in this phase");
        }
        allowed.then_some(&mut self.call.resp)
    }
}

impl Host for HostState {
    fn status(&mut self) -> u16 {
        self.resp(false).map_or(0, |r| r.status.as_u16())
    }

    fn set_status(&mut self, status: u16) {
        let plugin = self.plugin.clone();
        if let Some(r) = self.resp(true)
            && let Err(e) = r.set_status(status)
        {
            tracing::warn!(plugin = %plugin, status, error = %e, "plugin set an invalid status; ignored");
        }
    }

    fn header(&mut self, name: String) -> Option<String> {
        self.resp(false).and_then(|r| headers::get(r, &name))
    }

    fn header_values(&mut self, name: String) -> Vec<String> {
        self.resp(false).map(|r| headers::get_all(r, &name)).unwrap_or_default()
    }

    fn headers(&mut self) -> Vec<(String, String)> {
        self.resp(false).map(|r| headers::all(r)).unwrap_or_default()
    }

    fn set_header(&mut self, name: String, value: String) {
        let plugin = self.plugin.clone();
        if let Some(Err(e)) = self.resp(true).map(|r| r.set(name.clone(), &value)) {
            headers::rejected(&plugin, &name, e);
        }
    }

    fn add_header(&mut self, name: String, value: String) {
        let plugin = self.plugin.clone();
        if let Some(Err(e)) = self.resp(true).map(|r| r.add(name.clone(), &value)) {
            headers::rejected(&plugin, &name, e);
        }
    }

    fn remove_header(&mut self, name: String) {
        if let Some(r) = self.resp(true) {
            r.remove(&name);
        }
    }

    fn source(&mut self) -> ResponseSource {
        match self.call.state.source {
            super::super::state::Source::Service => ResponseSource::Service,
            super::super::state::Source::Exit => ResponseSource::Exit,
            super::super::state::Source::Error => ResponseSource::Error,
        }
    }
}
