//! An HTTP sink's sender: gathers entries into batches (Kong's `queue` settings) and sends each
//! batch with Pingora's HTTP client, keeping the connection for the next one. A batch that fails
//! (no connection, a timeout, a status outside 2xx) is retried with a doubling delay until
//! `max-retry-time`; the entries behind it wait in the bounded queue meanwhile.

use super::{Stats, Warner};
use base64::Engine as _;
use bytes::Bytes;
use pingora_core::connectors::http::Connector;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// How entries wait and are retried (times in ms).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueOptions {
    /// Entries per request: 1 sends a JSON object, more a JSON array.
    pub max_batch_size: u32,
    /// How long a batch may wait to fill up.
    pub max_coalescing_delay_ms: u32,
    /// Entries that may wait.
    pub max_entries: u32,
    /// How long a batch is retried before it is dropped.
    pub max_retry_time_ms: u32,
    /// First wait before a retry; doubles with each retry.
    pub initial_retry_delay_ms: u32,
    /// Longest wait between retries.
    pub max_retry_delay_ms: u32,
}

/// How entries are sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpOptions {
    /// `POST`, `PUT` or `PATCH`.
    pub method: String,
    /// The `Content-Type` of a batch.
    pub content_type: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Connect, write and read timeout, ms.
    pub timeout_ms: u32,
    /// How long an idle connection is kept, ms (0: closed after each batch).
    pub keepalive_ms: u32,
    /// Batching and retries.
    pub queue: QueueOptions,
}

impl HttpOptions {
    /// Checks what would make every request fail; errors name the option.
    pub fn check(&self) -> Result<(), String> {
        if !["POST", "PUT", "PATCH"].contains(&self.method.as_str()) {
            return Err(format!("method: {:?} is not one of POST, PUT, PATCH", self.method));
        }
        http::HeaderValue::from_str(&self.content_type)
            .map_err(|_| format!("content-type: {:?} is not a valid header value", self.content_type))?;
        for (name, value) in &self.headers {
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("headers: {name:?} is not a header name"))?;
            http::HeaderValue::from_str(value).map_err(|_| format!("headers.{name}: not a valid header value"))?;
        }
        if self.timeout_ms == 0 {
            return Err("timeout: must be at least 1 ms".into());
        }
        Ok(())
    }
}

/// An `http://` or `https://` URL that entries are sent to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    url: url::Url,
}

impl Endpoint {
    /// Parses an endpoint URL; errors say what is wrong with it.
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{s:?}: the scheme must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{s:?} has no host"));
        }
        Ok(Endpoint { url })
    }

    /// The URL without credentials or fragment: what allow-lists compare and `/metrics` shows.
    pub fn name(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_fragment(None);
        url.to_string()
    }

    fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']')
    }

    fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(80)
    }

    /// The request header for a batch of `len` bytes.
    fn request(&self, options: &HttpOptions, len: usize) -> pingora_error::Result<RequestHeader> {
        let mut path = self.url.path().to_string();
        if let Some(q) = self.url.query() {
            path.push('?');
            path.push_str(q);
        }
        let mut req = RequestHeader::build(options.method.as_str(), path.as_bytes(), Some(options.headers.len() + 5))?;
        let host = match self.url.port() {
            Some(port) => format!("{}:{port}", self.url.host_str().unwrap_or_default()),
            None => self.url.host_str().unwrap_or_default().to_string(),
        };
        req.insert_header("host", host)?;
        req.insert_header("user-agent", concat!("wasmgate/", env!("CARGO_PKG_VERSION")))?;
        req.insert_header("content-type", options.content_type.as_str())?;
        req.insert_header("content-length", len.to_string())?;
        if !self.url.username().is_empty() {
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            let userinfo = format!("{}:{}", decode(self.url.username()), decode(self.url.password().unwrap_or("")));
            let basic = base64::engine::general_purpose::STANDARD.encode(userinfo);
            req.insert_header("authorization", format!("Basic {basic}"))?;
        }
        for (name, value) in &options.headers {
            req.append_header(name.clone(), value.as_str())?;
        }
        Ok(req)
    }
}

fn ms(n: u32) -> Duration {
    Duration::from_millis(n.into())
}

/// Runs until every holder of the sink is gone and its queue is empty.
pub(super) fn run(endpoint: Endpoint, options: HttpOptions, rx: Receiver<String>, stats: Arc<Stats>) {
    let mut warner = Warner::new(endpoint.name());
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return tracing::error!(sink = %endpoint.name(), error = %e, "cannot start the log sink"),
    };
    let connector = Connector::new(None);
    let q = &options.queue;
    let batch_size = q.max_batch_size.max(1) as usize;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let until = Instant::now() + ms(q.max_coalescing_delay_ms);
        while batch.len() < batch_size {
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(entry) => batch.push(entry),
                Err(_) => break,
            }
        }
        let n = batch.len();
        stats.taken(batch.iter().map(String::len).sum());
        let body = match batch_size {
            1 => Bytes::from(batch.pop().expect("one entry")),
            _ => Bytes::from(format!("[{}]", batch.join(","))),
        };
        let started = Instant::now();
        let mut delay = ms(q.initial_retry_delay_ms);
        loop {
            match runtime.block_on(send(&connector, &endpoint, &options, body.clone())) {
                Ok(()) => {
                    stats.written(n);
                    break;
                }
                Err(e) if started.elapsed() + delay > ms(q.max_retry_time_ms) => {
                    warner.warn("the endpoint kept failing for max_retry_time; entries dropped", &e);
                    stats.failed(n);
                    break;
                }
                Err(e) => {
                    warner.warn("the endpoint failed; retrying", &e);
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(ms(q.max_retry_delay_ms)).max(Duration::from_millis(1));
                }
            }
        }
    }
}

/// Sends one batch; `Err` for anything but a 2xx answer.
async fn send(connector: &Connector, endpoint: &Endpoint, options: &HttpOptions, body: Bytes) -> Result<(), String> {
    let timeout = ms(options.timeout_ms);
    let err = |e: Box<pingora_error::Error>| e.to_string();
    let work = async {
        let addr = tokio::net::lookup_host((endpoint.host(), endpoint.port()))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", endpoint.host()))?
            .next()
            .ok_or_else(|| format!("{} has no address", endpoint.host()))?;
        let mut peer = HttpPeer::new(addr, endpoint.url.scheme() == "https", endpoint.host().to_string());
        peer.options.connection_timeout = Some(timeout);
        peer.options.read_timeout = Some(timeout);
        peer.options.write_timeout = Some(timeout);
        let (mut session, _) = connector.get_http_session(&peer).await.map_err(err)?;
        let req = endpoint.request(options, body.len()).map_err(err)?;
        session.write_request_header(Box::new(req)).await.map_err(err)?;
        session.write_request_body(body, true).await.map_err(err)?;
        session.finish_request_body().await.map_err(err)?;
        session.read_response_header().await.map_err(err)?;
        let status = session.response_header().map_or(0, |r| r.status.as_u16());
        while session.read_response_body().await.map_err(err)?.is_some() {}
        if options.keepalive_ms > 0 {
            connector.release_http_session(session, &peer, Some(ms(options.keepalive_ms))).await;
        } else {
            session.shutdown().await;
        }
        match status {
            200..=299 => Ok(()),
            _ => Err(format!("answered {status}")),
        }
    };
    // Each step has its own timeout; this bounds the whole exchange.
    tokio::time::timeout(timeout * 4, work)
        .await
        .map_err(|_| format!("no answer within {} ms", options.timeout_ms * 4))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> HttpOptions {
        HttpOptions {
            method: "PUT".into(),
            content_type: "application/json".into(),
            headers: vec![("x-team".into(), "ops".into())],
            timeout_ms: 1000,
            keepalive_ms: 1000,
            queue: QueueOptions {
                max_batch_size: 1,
                max_coalescing_delay_ms: 0,
                max_entries: 10,
                max_retry_time_ms: 1000,
                initial_retry_delay_ms: 10,
                max_retry_delay_ms: 100,
            },
        }
    }

    #[test]
    fn the_request_carries_host_credentials_and_headers() {
        let e = Endpoint::parse("http://us%20er:p%40ss@Logs.Example:9000/in?k=1#x").unwrap();
        assert_eq!(e.name(), "http://logs.example:9000/in?k=1");
        let req = e.request(&options(), 12).unwrap();
        assert_eq!(req.method, "PUT");
        assert_eq!(req.uri, "/in?k=1");
        let h = |n: &str| req.headers.get(n).unwrap().to_str().unwrap().to_string();
        assert_eq!(h("host"), "logs.example:9000");
        assert_eq!(h("content-length"), "12");
        assert_eq!(h("x-team"), "ops");
        let basic = base64::engine::general_purpose::STANDARD.encode("us er:p@ss");
        assert_eq!(h("authorization"), format!("Basic {basic}"));
    }

    #[test]
    fn bad_endpoints_and_options_are_named() {
        assert!(Endpoint::parse("ftp://x/").unwrap_err().contains("http or https"));
        assert!(Endpoint::parse("not a url").unwrap_err().contains("is not a URL"));
        let mut o = options();
        o.method = "GET".into();
        assert!(o.check().unwrap_err().starts_with("method:"));
        let mut o = options();
        o.headers.push(("bad name".into(), "v".into()));
        assert!(o.check().unwrap_err().starts_with("headers:"));
    }
}
