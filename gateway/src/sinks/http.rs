//! An HTTP sink's sender: gathers entries into batches (Kong's `queue` settings) and sends each
//! batch with Pingora's HTTP client, keeping the connection for the next one. A batch that fails
//! (no connection, a timeout, a status of 400 or more) is retried with a doubling delay until
//! `max-retry-time`; the entries behind it wait in the bounded queue meanwhile.

use super::{Stats, Warner};
use base64::Engine as _;
use bytes::Bytes;
use pingora_core::connectors::http::Connector;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How entries wait and are retried (times in ms).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct QueueOptions {
    /// Entries per request: 1 sends a JSON object, more a JSON array.
    pub(crate) max_batch_size: u32,
    /// How long a batch may wait to fill up.
    pub(crate) max_coalescing_delay_ms: u32,
    /// Entries that may wait.
    pub(crate) max_entries: u32,
    /// How long a batch is retried before it is dropped.
    pub(crate) max_retry_time_ms: u32,
    /// First wait before a retry; doubles with each retry.
    pub(crate) initial_retry_delay_ms: u32,
    /// Longest wait between retries.
    pub(crate) max_retry_delay_ms: u32,
}

/// How entries are sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HttpOptions {
    /// `POST`, `PUT` or `PATCH`.
    pub(crate) method: String,
    /// The `Content-Type` of a batch.
    pub(crate) content_type: String,
    /// Extra request headers.
    pub(crate) headers: Vec<(String, String)>,
    /// Connect, write and read timeout, ms.
    pub(crate) timeout_ms: u32,
    /// How long an idle connection is kept, ms (0: closed after each batch).
    pub(crate) keepalive_ms: u32,
    /// Batching and retries.
    pub(crate) queue: QueueOptions,
}

impl HttpOptions {
    /// Checks what would make every request fail; errors name the option.
    pub(crate) fn check(&self) -> Result<(), String> {
        if !["POST", "PUT", "PATCH"].contains(&self.method.as_str()) {
            return Err(format!("method: {:?} is not one of POST, PUT, PATCH", self.method));
        }
        http::HeaderValue::from_str(&self.content_type)
            .map_err(|_| format!("content-type: {:?} is not a valid header value", self.content_type))?;
        for (name, value) in &self.headers {
            let parsed = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("headers: {name:?} is not a header name"))?;
            if FRAMING.contains(&parsed.as_str()) {
                return Err(format!("headers: {name:?} is set by the gateway; remove it"));
            }
            http::HeaderValue::from_str(value).map_err(|_| format!("headers.{name}: not a valid header value"))?;
        }
        if self.timeout_ms == 0 {
            return Err("timeout: must be at least 1 ms".into());
        }
        Ok(())
    }
}

/// Headers the sender sets itself, which configured headers may not repeat (as Kong's schema).
const FRAMING: [&str; 7] =
    ["host", "content-length", "content-type", "transfer-encoding", "connection", "te", "upgrade"];

/// An `http://` or `https://` URL that entries are sent to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Endpoint {
    url: url::Url,
}

impl Endpoint {
    /// Parses an endpoint URL; errors say what is wrong with it.
    pub(crate) fn parse(s: &str) -> Result<Endpoint, String> {
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
    pub(crate) fn name(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_fragment(None);
        url.to_string()
    }

    /// Scheme, host, port and path: the sink's name on `/metrics` and in warnings (a query may
    /// carry a token).
    pub(crate) fn label(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        url.to_string()
    }

    /// Whether the URL carries `user:password@`.
    pub(crate) fn has_credentials(&self) -> bool {
        !self.url.username().is_empty()
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

/// Most bytes of entries in one request.
const MAX_BATCH_BYTES: usize = 8 << 20;

fn ms(n: u32) -> Duration {
    Duration::from_millis(n.into())
}

/// Runs until every holder of the sink is gone and its queue is empty.
pub(super) fn run(endpoint: Endpoint, options: HttpOptions, rx: Receiver<String>, stats: Arc<Stats>) {
    let mut warner = Warner::new(endpoint.label());
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(sink = %endpoint.label(), error = %e, "cannot start the log sink; its entries are dropped");
            return super::discard(rx, &stats);
        }
    };
    let connector = Connector::new(None);
    let q = &options.queue;
    let batch_size = q.max_batch_size.max(1) as usize;
    let idle = ms(options.keepalive_ms) + Duration::from_millis(50);
    // An entry that did not fit in the last batch's bytes starts the next one.
    let mut carried: Option<String> = None;
    loop {
        let first = match carried.take().map_or_else(|| rx.recv_timeout(idle), Ok) {
            Ok(entry) => entry,
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                // Idle past `keepalive`: let the runtime close the kept connections (their timers
                // run only while it runs), then wait for the next entry.
                runtime.block_on(tokio::time::sleep(Duration::from_millis(1)));
                match rx.recv() {
                    Ok(entry) => entry,
                    Err(_) => return,
                }
            }
        };
        let mut bytes = first.len();
        let mut batch = vec![first];
        let until = Instant::now() + ms(q.max_coalescing_delay_ms);
        while batch.len() < batch_size {
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(entry) if bytes + entry.len() > MAX_BATCH_BYTES => {
                    carried = Some(entry);
                    break;
                }
                Ok(entry) => {
                    bytes += entry.len();
                    batch.push(entry);
                }
                Err(_) => break,
            }
        }
        let n = batch.len();
        let body = match batch_size {
            1 => Bytes::from(batch.pop().expect("one entry")),
            _ => {
                let mut array = String::with_capacity(bytes + n + 1);
                array.push('[');
                for (i, entry) in batch.iter().enumerate() {
                    if i > 0 {
                        array.push(',');
                    }
                    array.push_str(entry);
                }
                array.push(']');
                Bytes::from(array)
            }
        };
        drop(batch);
        let started = Instant::now();
        let mut delay = ms(q.initial_retry_delay_ms);
        loop {
            match runtime.block_on(send(&connector, &endpoint, &options, body.clone())) {
                Ok(()) => {
                    stats.written(n);
                    // Let the kept connection's idle watch start its clock now (it runs only
                    // while the runtime does); the idle branch above then closes it in time.
                    runtime.block_on(tokio::task::yield_now());
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
        // Held until sent or given up on, so the batch counts against the queue's bytes.
        stats.taken(bytes);
    }
}

/// Sends one batch; `Err` unless it is answered with a status below 400.
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
        // Kong's http-log takes any status below 400 as delivered.
        match status {
            100..=399 => Ok(()),
            _ => Err(format!("answered {status}")),
        }
    };
    // Each step has its own timeout; this bounds the whole exchange.
    let limit = timeout * 4;
    tokio::time::timeout(limit, work).await.map_err(|_| format!("no answer within {} ms", limit.as_millis()))?
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
        assert_eq!(e.label(), "http://logs.example:9000/in", "no query on /metrics");
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
        let mut o = options();
        o.headers.push(("Content-Length".into(), "1".into()));
        assert!(o.check().unwrap_err().contains("is set by the gateway"), "no second framing header");
    }
}
