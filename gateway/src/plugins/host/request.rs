//! `wasmgate:plugin/request`: the client request; setters change what goes upstream.

use super::HostState;
use super::headers;
use super::wasmgate::plugin::request::Host;
use crate::request::header_access::HeaderAccess;

impl Host for HostState {
    fn method(&mut self) -> String {
        self.call.req.method.as_str().to_string()
    }

    fn scheme(&mut self) -> String {
        let headers = &self.call.req.headers;
        let tls = self.call.state.info().tls;
        let scheme = if crate::request::grpc::is_grpc(headers) {
            if tls { "grpcs" } else { "grpc" }
        } else if crate::request::is_websocket(headers) {
            if tls { "wss" } else { "ws" }
        } else {
            self.call.state.info().scheme()
        };
        scheme.into()
    }

    fn host(&mut self) -> String {
        self.call.state.info().host.to_string()
    }

    fn http_version(&mut self) -> String {
        match self.call.req.version {
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_2 => "2",
            _ => "1.1",
        }
        .into()
    }

    fn tls_server_name(&mut self) -> Option<String> {
        self.call.state.info().sni.as_deref().map(str::to_string)
    }

    fn tls_client_subject(&mut self) -> Option<String> {
        self.call.state.info().client_certificate.as_ref().map(|c| c.subject.clone())
    }

    fn tls_client_fingerprint(&mut self) -> Option<String> {
        self.call.state.info().client_certificate.as_ref().map(|c| c.fingerprint.clone())
    }

    fn port(&mut self) -> u16 {
        self.call.state.info().port
    }

    fn path(&mut self) -> String {
        self.call.state.info().path.to_string()
    }

    fn query(&mut self) -> Option<String> {
        self.call.req.uri.query().map(str::to_string)
    }

    fn query_arg(&mut self, name: String) -> Option<String> {
        let query = self.call.req.uri.query()?;
        form_urlencoded::parse(query.as_bytes()).find(|(k, _)| *k == name).map(|(_, v)| v.into_owned())
    }

    fn header(&mut self, name: String) -> Option<String> {
        headers::get(&self.call.req, &name)
    }

    fn header_values(&mut self, name: String) -> Vec<String> {
        headers::get_all(&self.call.req, &name)
    }

    fn headers(&mut self) -> Vec<(String, String)> {
        headers::all(&self.call.req)
    }

    fn set_header(&mut self, name: String, value: String) {
        if !self.header_write(&name, &value) {
            return;
        }
        if name.eq_ignore_ascii_case("host") {
            // A plugin's Host goes upstream as it is, as a route's preserve_host would send it.
            self.call.state.keep_host();
        }
        if let Err(e) = self.call.req.set(name.clone().into(), value) {
            headers::rejected(self, &name, e);
        }
    }

    fn add_header(&mut self, name: String, value: String) {
        if !self.header_write(&name, &value) {
            return;
        }
        if let Err(e) = self.call.req.add(name.clone().into(), value) {
            headers::rejected(self, &name, e);
        }
    }

    fn remove_header(&mut self, name: String) {
        self.call.req.remove(&name);
    }

    fn set_method(&mut self, method: String) -> Result<(), String> {
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("{method:?} is not an HTTP method (a token such as GET or POST)"))?;
        self.call.state.rewrite_method(method);
        Ok(())
    }

    fn limit_body(&mut self, max_bytes: u64) {
        self.call.state.limit_body(max_bytes);
    }

    fn set_path(&mut self, path: String) {
        self.call.state.rewrite_path(path);
    }

    fn set_query(&mut self, query: Option<String>) {
        self.call.state.rewrite_query(query);
    }

    fn body(&mut self) -> Option<Vec<u8>> {
        self.call.state.body().map(|b| b.to_vec())
    }

    fn set_body(&mut self, body: Vec<u8>) {
        self.call.state.replace_body(body.into());
    }

    fn client_ip(&mut self) -> String {
        self.call.state.info().client.to_string()
    }
}
