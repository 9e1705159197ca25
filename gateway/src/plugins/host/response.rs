//! `wasmgate:plugin/response`: the response in header-filter, body-filter and log; header writes
//! in rewrite and access are kept in the request state for the response.

use super::HostState;
use super::headers;
use super::wasmgate::plugin::response::Host;
use super::wasmgate::plugin::types::ResponseSource;
use crate::request::header_access::HeaderAccess;
use crate::request::{HeaderOp, Phase};

impl HostState {
    /// The response, if this phase has one (writes go to it only in header-filter).
    fn resp(&mut self, write: bool) -> Option<&mut pingora_http::ResponseHeader> {
        let allowed = self.call.has_resp && (!write || self.call.phase == Phase::HeaderFilter);
        if !allowed {
            tracing::debug!(plugin = %self.plugin, phase = ?self.call.phase, "response not available in this phase");
        }
        allowed.then_some(&mut self.call.resp)
    }

    /// A header write: applied in header-filter, kept for the response in rewrite and access.
    pub(super) fn write_header(&mut self, op: HeaderOp) {
        let counted = match &op {
            HeaderOp::Set(n, v) | HeaderOp::Add(n, v) => self.header_write(n, v),
            HeaderOp::Remove(_) => true,
        };
        if !counted {
            return;
        }
        if matches!(self.call.phase, Phase::Rewrite | Phase::Access) {
            return self.call.state.keep_response_header(op);
        }
        let Some(r) = self.resp(true) else { return };
        let (name, result) = match op {
            HeaderOp::Set(name, value) => (name.clone(), r.set(name, value)),
            HeaderOp::Add(name, value) => (name.clone(), r.add(name, value)),
            HeaderOp::Remove(name) => return r.remove(&name),
        };
        if let Err(e) = result {
            headers::rejected(self, &name, e);
        }
    }
}

impl Host for HostState {
    fn buffer_body(&mut self) {
        self.call.state.want_whole_body();
    }

    fn skip_body_filter(&mut self) -> Result<(), String> {
        if self.call.phase != Phase::Configure {
            return Err("skip-body-filter: declare it in configure".into());
        }
        self.usage.skips_body_filter = true;
        Ok(())
    }

    fn status(&mut self) -> u16 {
        self.resp(false).map_or(0, |r| r.status.as_u16())
    }

    fn set_status(&mut self, status: u16) {
        if let Some(r) = self.resp(true)
            && let Err(e) = r.set_status(status)
            && self.may_log()
        {
            tracing::warn!(plugin = %self.plugin, status, error = %e, "plugin set an invalid status; ignored");
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
        self.write_header(HeaderOp::Set(name.into(), value));
    }

    fn add_header(&mut self, name: String, value: String) {
        self.write_header(HeaderOp::Add(name.into(), value));
    }

    fn remove_header(&mut self, name: String) {
        self.write_header(HeaderOp::Remove(name.into()));
    }

    fn set_headers(&mut self, fields: Vec<(String, String)>) {
        for (name, value) in fields {
            self.write_header(HeaderOp::Set(name.into(), value));
        }
    }

    fn source(&mut self) -> ResponseSource {
        match self.call.state.source() {
            crate::request::Source::Service => ResponseSource::Service,
            crate::request::Source::Exit => ResponseSource::Exit,
            crate::request::Source::Error => ResponseSource::Error,
        }
    }
}
