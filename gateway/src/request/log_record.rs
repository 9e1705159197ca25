//! Kong's log record (`kong.log.serialize()`): what log plugins send, and what the JSON access log
//! writes, built from one request's header, response and state. Credentials are written as
//! `REDACTED` (see [`super::redact`]) in the headers, the query and the URIs. As in Kong, at most
//! 100 query arguments and 100 header names are listed.

use super::redact::{REDACTED, Redactions};
use crate::entities::{Destination, Entities};
use crate::request::{RequestState, Source};
use http::HeaderMap;
use pingora_http::{RequestHeader, ResponseHeader};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// What is known of a request once it is over, besides its headers and plugin state.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogFacts {
    /// correlation-id's id (shared context key `request_id`), or 32 random hex digits.
    pub(crate) request_id: String,
    /// When the request started, ms since the Unix epoch.
    pub(crate) started_at_ms: u64,
    /// Time in the gateway, from the request's start to the end of the response.
    pub(crate) total: Duration,
    /// Time the upstream took to send its response header.
    pub(crate) upstream: Option<Duration>,
    /// Bytes received: request line, header and body.
    pub(crate) request_size: u64,
    /// Body bytes sent to the client, plus the response header.
    pub(crate) response_size: u64,
    /// The path and query sent upstream, if the request went there.
    pub(crate) upstream_uri: Option<String>,
    /// The address (host or IP, port) of each try, in order.
    pub(crate) tries: Vec<(String, u16)>,
    /// The status sent, when there is no response header to read it from.
    pub(crate) status: u16,
    /// The credential places the configuration's plugins read.
    pub(crate) redactions: Arc<Redactions>,
}

/// A request id as nginx's `$request_id`: 32 random hex digits.
pub(crate) fn random_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// The record as JSON, from what is known now (complete once `state.facts` is set, in the log phase).
pub(crate) fn build(req: &RequestHeader, resp: Option<&ResponseHeader>, state: &RequestState) -> String {
    let empty = LogFacts::default();
    let facts = state.facts().unwrap_or(&empty);
    let e = state.entities();
    let ms = |d: Duration| d.as_millis() as u64;
    let hide = &*facts.redactions;
    let uri = hide.uri(req.uri.path_and_query().map_or("/", |p| p.as_str()));
    let status = resp.map_or(facts.status, |r| r.status.as_u16());
    let upstream_uri = facts.upstream_uri.as_deref().map(|u| hide.uri(u));
    let record = Record {
        request: Request {
            id: &facts.request_id,
            method: req.method.as_str(),
            url: format!("{}://{}:{}{uri}", state.info().scheme(), state.info().host, state.info().port),
            uri: &uri,
            querystring: Query { query: req.uri.query().unwrap_or_default(), hide },
            headers: Headers { map: &req.headers, hide: Some(hide) },
            size: facts.request_size,
        },
        upstream_uri: upstream_uri.as_deref(),
        upstream_status: (state.source() == Source::Service && facts.upstream.is_some()).then_some(status),
        response: Response {
            status,
            headers: resp.map(|r| Headers { map: &r.headers, hide: None }),
            size: facts.response_size,
        },
        tries: facts.tries.iter().map(|(ip, port)| Try { ip, port: *port }).collect(),
        route: e.zip(state.info().route).map(|(e, r)| route(e, r)),
        service: e.zip(state.info().service).map(|(e, s)| service(e, s)),
        consumer: e.zip(state.consumer()).map(|(e, c)| {
            let c = e.consumers.get(c);
            Consumer { id: &c.id, username: c.username.as_deref(), custom_id: c.custom_id.as_deref(), tags: &c.tags }
        }),
        authenticated_entity: e.zip(state.consumer()).and_then(|(e, c)| {
            Some(Entity { id: state.credential()?, consumer_id: IdRef { id: &e.consumers.get(c).id } })
        }),
        latencies: Latencies {
            request: ms(facts.total),
            kong: ms(facts.total.saturating_sub(facts.upstream.unwrap_or_default())),
            proxy: facts.upstream.map_or(-1, |d| ms(d) as i64),
            receive: 0,
        },
        client_ip: state.info().client,
        started_at: facts.started_at_ms,
        source: match state.source() {
            Source::Service => "service",
            Source::Exit => "exit",
            Source::Error => "error",
        },
    };
    serde_json::to_string(&record).expect("a log record serialises")
}

fn route(e: &Entities, r: usize) -> Route<'_> {
    let route = &e.routes[r];
    Route {
        id: &route.id,
        name: route.name.as_deref(),
        strip_path: route.strip_path,
        preserve_host: route.preserve_host,
        service: route.service.map(|s| IdRef { id: &e.services[s].id }),
    }
}

fn service(e: &Entities, s: usize) -> Service<'_> {
    let service = &e.services[s];
    let (host, port) = match &service.destination {
        Destination::Direct(a) => (a.host.as_str(), a.port),
        Destination::Upstream(u) => (e.upstreams[*u].name.as_str(), 80),
    };
    let ms = |d: Duration| d.as_millis() as u64;
    Service {
        id: &service.id,
        name: service.name.as_deref(),
        protocol: "http",
        host,
        port,
        path: &service.path,
        retries: service.retries,
        connect_timeout: ms(service.connect_timeout),
        read_timeout: ms(service.read_timeout),
        write_timeout: ms(service.write_timeout),
    }
}

#[derive(Serialize)]
struct Record<'a> {
    request: Request<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_status: Option<u16>,
    response: Response<'a>,
    tries: Vec<Try<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<Route<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<Service<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer: Option<Consumer<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authenticated_entity: Option<Entity<'a>>,
    latencies: Latencies,
    client_ip: IpAddr,
    started_at: u64,
    source: &'static str,
}

#[derive(Serialize)]
struct Request<'a> {
    id: &'a str,
    method: &'a str,
    uri: &'a str,
    url: String,
    querystring: Query<'a>,
    headers: Headers<'a>,
    size: u64,
}

#[derive(Serialize)]
struct Response<'a> {
    status: u16,
    #[serde(serialize_with = "headers_or_empty")]
    headers: Option<Headers<'a>>,
    size: u64,
}

#[derive(Serialize)]
struct Try<'a> {
    ip: &'a str,
    port: u16,
}

#[derive(Serialize)]
struct IdRef<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct Route<'a> {
    id: &'a str,
    name: Option<&'a str>,
    strip_path: bool,
    preserve_host: bool,
    service: Option<IdRef<'a>>,
}

#[derive(Serialize)]
struct Service<'a> {
    id: &'a str,
    name: Option<&'a str>,
    protocol: &'static str,
    host: &'a str,
    port: u16,
    path: &'a str,
    retries: u32,
    connect_timeout: u64,
    read_timeout: u64,
    write_timeout: u64,
}

#[derive(Serialize)]
struct Consumer<'a> {
    id: &'a str,
    username: Option<&'a str>,
    custom_id: Option<&'a str>,
    tags: &'a [String],
}

#[derive(Serialize)]
struct Entity<'a> {
    id: &'a str,
    consumer_id: IdRef<'a>,
}

#[derive(Serialize)]
struct Latencies {
    request: u64,
    kong: u64,
    proxy: i64,
    receive: u64,
}

/// Header fields by lower-case name: a string, or a list for a repeated header; request headers
/// with their credentials hidden.
struct Headers<'a> {
    map: &'a HeaderMap,
    hide: Option<&'a Redactions>,
}

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.map.keys_len().min(MAX_ARGS)))?;
        for name in self.map.keys().take(MAX_ARGS) {
            let secret = self.hide.is_some_and(|h| h.hides_header(name.as_str()));
            let values: Vec<_> = self
                .map
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()))
                .map(|v| match self.hide {
                    Some(h) if name == http::header::COOKIE => Cow::Owned(h.cookie_header(&v).into_owned()),
                    _ => v,
                })
                .collect();
            match (secret, values.as_slice()) {
                (true, _) => map.serialize_entry(name.as_str(), REDACTED)?,
                (false, [one]) => map.serialize_entry(name.as_str(), one)?,
                (false, many) => map.serialize_entry(name.as_str(), many)?,
            }
        }
        map.end()
    }
}

fn headers_or_empty<S: Serializer>(h: &Option<Headers<'_>>, s: S) -> Result<S::Ok, S::Error> {
    match h {
        Some(h) => h.serialize(s),
        None => s.serialize_map(Some(0))?.end(),
    }
}

/// Query arguments by name, percent-decoded: a string, `true` for a bare name, or a list for a
/// repeated one (as Kong's `querystring`), for the first [`MAX_ARGS`] arguments; hidden ones as
/// `REDACTED`.
struct Query<'a> {
    query: &'a str,
    hide: &'a Redactions,
}

/// Most query arguments and header names a record lists (Kong's default for both).
const MAX_ARGS: usize = 100;

impl Serialize for Query<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut args: Vec<(String, Vec<Arg>)> = Vec::new();
        for piece in self.query.split('&').filter(|p| !p.is_empty()).take(MAX_ARGS) {
            let (name, value) = match piece.split_once('=') {
                Some((n, _)) if self.hide.hides_arg(&decode(n)) => (decode(n), Arg::Value(REDACTED.into())),
                Some((n, v)) => (decode(n), Arg::Value(decode(v))),
                None => (decode(piece), Arg::Bare),
            };
            match args.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value),
                None => args.push((name, vec![value])),
            }
        }
        let mut map = s.serialize_map(Some(args.len()))?;
        for (name, values) in &args {
            match values.as_slice() {
                [one] => map.serialize_entry(name, one)?,
                many => map.serialize_entry(name, &ArgList(many))?,
            }
        }
        map.end()
    }
}

enum Arg {
    Bare,
    Value(String),
}

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Arg::Bare => s.serialize_bool(true),
            Arg::Value(v) => s.serialize_str(v),
        }
    }
}

struct ArgList<'a>(&'a [Arg]);

impl Serialize for ArgList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for a in self.0 {
            seq.serialize_element(a)?;
        }
        seq.end()
    }
}

fn decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn the_record_has_kongs_shape() {
        let mut req = RequestHeader::build("GET", b"/api/x?a=1&a=2&flag&q=h%20i&apikey=k1", None).unwrap();
        req.append_header("authorization", "Bearer secret").unwrap();
        req.append_header("apikey", "k2").unwrap();
        req.append_header("cookie", "theme=dark; session=s3").unwrap();
        req.append_header("x-two", "1").unwrap();
        req.append_header("x-two", "2").unwrap();
        let mut resp = ResponseHeader::build(201, None).unwrap();
        resp.append_header("content-type", "text/plain").unwrap();
        let mut state = RequestState::default();
        let mut hidden = Redactions::default();
        hidden.header("apikey");
        hidden.query_arg("apikey");
        hidden.cookie("session");
        state.set_facts(LogFacts {
            request_id: "abc".into(),
            started_at_ms: 1_700_000_000_000,
            total: Duration::from_millis(30),
            upstream: Some(Duration::from_millis(20)),
            request_size: 100,
            response_size: 50,
            upstream_uri: Some("/x?a=1&apikey=k1".into()),
            tries: vec![("127.0.0.1".into(), 8080)],
            status: 0,
            redactions: Arc::new(hidden),
        });
        let v: Value = serde_json::from_str(&build(&req, Some(&resp), &state)).unwrap();
        assert_eq!(v["request"]["id"], "abc");
        assert_eq!(v["request"]["uri"], "/api/x?a=1&a=2&flag&q=h%20i&apikey=REDACTED");
        assert!(v["request"]["url"].as_str().unwrap().ends_with("&apikey=REDACTED"));
        let query = json!({"a": ["1", "2"], "flag": true, "q": "h i", "apikey": "REDACTED"});
        assert_eq!(v["request"]["querystring"], query);
        assert_eq!(v["request"]["headers"]["authorization"], "REDACTED");
        assert_eq!(v["request"]["headers"]["apikey"], "REDACTED");
        assert_eq!(v["request"]["headers"]["cookie"], "theme=dark; session=REDACTED");
        assert_eq!(v["request"]["headers"]["x-two"], json!(["1", "2"]));
        assert_eq!(v["response"], json!({"status": 201, "headers": {"content-type": "text/plain"}, "size": 50}));
        assert_eq!(v["latencies"], json!({"request": 30, "kong": 10, "proxy": 20, "receive": 0}));
        assert_eq!(v["tries"], json!([{"ip": "127.0.0.1", "port": 8080}]));
        let upstream = (Some("/x?a=1&apikey=REDACTED"), Some(201));
        assert_eq!((v["upstream_uri"].as_str(), v["upstream_status"].as_u64()), upstream);
        assert_eq!((v["started_at"].as_u64(), v["source"].as_str()), (Some(1_700_000_000_000), Some("service")));
        assert!(v.get("route").is_none() && v.get("consumer").is_none(), "no entities known");
    }
}
