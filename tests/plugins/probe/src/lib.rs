//! Test plugin `probe`: calls every host function in every phase and reports what it saw, so the
//! integration tests can check each one through a real gateway.
//!
//! - rewrite: `x-probe-rewrite` on the request sets `x-rewritten: yes` (routes can match on it).
//! - access: reports the request as the host shows it in `x-probe-*` request headers (the echo
//!   upstream sends them back); appends `tag` to `x-order`; counts, caches and keeps context
//!   values; obeys control headers (`x-probe-respond`, `-path`, `-query`, `-upstream`,
//!   `-authenticate`, `-basic` (`user:password`, reported as `x-probe-basic`), `-log`,
//!   `-response-header`).
//! - header-filter: reports status, context values and source in `x-probe-*` response headers.
//! - body-filter: appends `body_suffix`.
//! - log: logs one line per request.
//! - metrics: `probe_requests_total{tag,method}` counts requests in access, and the histogram
//!   `probe_path_length{tag}` their path lengths.

use schemars::JsonSchema;
use serde::Deserialize;
use wasmgate_plugin_sdk::{
    Action, ConfigNeeds, CounterOp, LogLevel, Phases, Plugin, ResponseSource, Window, cache, clock, consumers, context,
    counters, export_plugin, json_message, log, metrics, request, respond, response, set_consumer,
    set_consumer_by_password, upstreams,
};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Appended to the `x-order` request header; reported as `x-probe-tag`.
    #[serde(default)]
    tag: String,
    /// A consumer (id or username) to look up.
    consumer: Option<String>,
    /// A key-auth key to look up.
    credential_key: Option<String>,
    /// Appended to the response body.
    body_suffix: Option<String>,
    /// Status the header filter sets.
    set_status: Option<u16>,
    /// Read the request body (and send it upstream upper-cased).
    #[serde(default)]
    read_body: bool,
    /// Limit of the per-minute request counter.
    counter_limit: Option<u64>,
    /// Handles of the metrics declared in configure: requests, path lengths.
    #[serde(skip)]
    #[schemars(skip)]
    metrics: (u32, u32),
}

struct Probe;

fn report(name: &str, value: impl AsRef<str>) {
    request::set_header(&format!("x-probe-{name}"), value.as_ref());
}

impl Probe {
    fn control(config: &Config) -> Result<Option<Action>, String> {
        // Response headers written before there is a response: kept for it.
        if let Some(value) = request::header("x-probe-response-header") {
            response::set_headers(&[("x-probe-from-access".into(), value), ("x-probe-dropped".into(), "yes".into())]);
            response::add_header("x-probe-from-access", "second");
            response::remove_header("x-probe-dropped");
        }
        if let Some(status) = request::header("x-probe-respond") {
            let status = status.parse().map_err(|_| "x-probe-respond must be a status code")?;
            return Ok(Some(respond(
                status,
                &[("x-probe-early", "yes"), ("content-type", "text/plain")],
                "early answer",
            )));
        }
        if let Some(path) = request::header("x-probe-path") {
            request::set_path(&path);
        }
        if let Some(query) = request::header("x-probe-query") {
            request::set_query((query != "-").then_some(query.as_str()));
        }
        if let Some(name) = request::header("x-probe-upstream")
            && let Err(e) = upstreams::set_upstream(&name)
        {
            return Ok(Some(json_message(400, &e, &[])));
        }
        if let Some(who) = request::header("x-probe-authenticate") {
            let consumer = consumers::find(&who).ok_or_else(|| format!("unknown consumer {who}"))?;
            set_consumer(&consumer.id, None, false)?;
        }
        if let Some(basic) = request::header("x-probe-basic") {
            let (user, password) = basic.split_once(':').unwrap_or((&basic, ""));
            report("basic", set_consumer_by_password(user, password)?.to_string());
        }
        if let Some(message) = request::header("x-probe-log") {
            log(LogLevel::Warn, &format!("probe says: {message} ({})", config.tag));
        }
        Ok(None)
    }
}

impl Plugin for Probe {
    type Config = Config;
    const PRIORITY: i32 = 500;
    const PHASES: Phases = Phases::all();

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        if config.tag.contains(',') {
            return Err("config.tag: must not contain ','".into());
        }
        let labels = ["tag".to_string(), "method".to_string()];
        let requests =
            metrics::declare("probe_requests_total", "Requests the probe saw.", metrics::Kind::Counter, &labels, &[])?;
        let lengths = metrics::declare(
            "probe_path_length",
            "Path lengths the probe saw.",
            metrics::Kind::Histogram,
            &labels[..1],
            &[1.0, 4.0, 16.0],
        )?;
        config.metrics = (requests, lengths);
        Ok(ConfigNeeds { request_body: config.read_body })
    }

    fn rewrite(_config: &Config) -> Result<Action, String> {
        if request::header("x-probe-rewrite").is_some() {
            request::set_header("x-rewritten", "yes");
        }
        Ok(Action::Proceed)
    }

    fn access(config: &Config) -> Result<Action, String> {
        let header_count = request::headers().len();
        if let Some(action) = Probe::control(config)? {
            return Ok(action);
        }
        let method = request::method();
        metrics::add(config.metrics.0, &[config.tag.clone(), method], 1);
        metrics::observe(config.metrics.1, std::slice::from_ref(&config.tag), request::path().len() as f64);
        let order = request::header("x-order").map_or(config.tag.clone(), |o| format!("{o},{}", config.tag));
        request::set_header("x-order", &order);
        report("tag", &config.tag);
        report("method", request::method());
        report("scheme", request::scheme());
        report("http-version", request::http_version());
        report("sni", request::tls_server_name().unwrap_or_else(|| "-".into()));
        report("client-subject", request::tls_client_subject().unwrap_or_else(|| "-".into()));
        report("client-fingerprint", request::tls_client_fingerprint().unwrap_or_else(|| "-".into()));
        report("host", request::host());
        report("port", request::port().to_string());
        report("path", request::path());
        report("query", request::query().unwrap_or_else(|| "-".into()));
        report("arg", request::query_arg("q").unwrap_or_else(|| "-".into()));
        report("header", request::header("x-in").unwrap_or_else(|| "-".into()));
        report("values", request::header_values("x-multi").join("|"));
        report("count", header_count.to_string());
        report("client", request::client_ip());
        report("route", context::route_name().unwrap_or_default());
        report("route-id", context::route_id().unwrap_or_default());
        report("service", context::service_name().unwrap_or_default());
        report("service-id", context::service_id().unwrap_or_default());
        if let Some(who) = &config.consumer {
            let found = consumers::find(who);
            report("consumer", found.as_ref().and_then(|c| c.username.clone()).unwrap_or_else(|| "-".into()));
            let groups = found.map(|c| consumers::groups(&c.id).join("|")).unwrap_or_default();
            report("groups", groups);
        }
        if let Some(key) = &config.credential_key {
            report("credential", consumers::find_credential("key-auth", key).map_or("-".into(), |c| c.consumer_id));
        }
        report("authenticated", consumers::authenticated().and_then(|c| c.username).unwrap_or_else(|| "-".into()));
        report("canary-exists", upstreams::exists("canary").to_string());
        report("env", std::env::vars().count().to_string());
        report("clock", (clock::now_ms() > 1_600_000_000_000 && clock::monotonic_ns() > 0).to_string());
        request::remove_header("x-remove-me");
        request::add_header("x-added", "1");
        request::add_header("x-added", "2");

        let op = CounterOp { key: "hits".into(), window: Window::Minute, delta: 1, limit: config.counter_limit };
        let counted = counters::increment(&[op])?;
        if !counted.admitted {
            return Ok(json_message(429, "probe limit", &[]));
        }
        report("counter", counted.states[0].count.to_string());
        let previous = cache::get("last-path").map(|v| String::from_utf8_lossy(&v).into_owned());
        report("cached", previous.unwrap_or_else(|| "none".into()));
        cache::set("last-path", request::path().as_bytes(), 60_000);
        cache::set("scratch", b"x", 60_000);
        cache::delete("scratch");
        context::set("scratch", Some("x"));
        context::set("scratch", None);
        report("deleted", (cache::get("scratch").is_none() && context::get("scratch").is_none()).to_string());

        context::set("seen", Some(&format!("access-{}", config.tag)));
        context::shared_set("who", Some(&config.tag));
        if config.read_body {
            let body = request::body().unwrap_or_default();
            report("body-len", body.len().to_string());
            request::set_body(&body.to_ascii_uppercase());
        }
        Ok(Action::Proceed)
    }

    fn header_filter(config: &Config) -> Result<(), String> {
        let set = response::set_header;
        set("x-probe-status", &response::status().to_string());
        set("x-probe-ctx", &context::get("seen").unwrap_or_else(|| "-".into()));
        set("x-probe-shared", &context::shared_get("who").unwrap_or_else(|| "-".into()));
        let source = match response::source() {
            ResponseSource::Service => "service",
            ResponseSource::Exit => "exit",
            ResponseSource::Error => "error",
        };
        set("x-probe-source", source);
        set("x-probe-ctype", &response::header("content-type").unwrap_or_else(|| "-".into()));
        set("x-probe-upstream-values", &response::header_values("x-upstream").join("|"));
        set("x-probe-response-count", &response::headers().len().to_string());
        let who = consumers::authenticated().and_then(|c| c.username).unwrap_or_else(|| "-".into());
        set("x-probe-authenticated", &who);
        response::remove_header("x-upstream-secret");
        response::add_header("x-probe-multi", "a");
        response::add_header("x-probe-multi", "b");
        if let Some(status) = config.set_status {
            response::set_status(status);
        }
        Ok(())
    }

    fn body_filter(config: &Config, chunk: Vec<u8>, end_of_stream: bool) -> Result<Option<Vec<u8>>, String> {
        Ok(match (&config.body_suffix, end_of_stream) {
            (Some(suffix), true) => Some([chunk, suffix.as_bytes().to_vec()].concat()),
            _ => None,
        })
    }

    fn log(config: &Config) -> Result<(), String> {
        let line = format!(
            "probe log: tag={} status={} route={} consumer={} ctx={}",
            config.tag,
            response::status(),
            context::route_name().unwrap_or_else(|| "-".into()),
            consumers::authenticated().and_then(|c| c.username).unwrap_or_else(|| "-".into()),
            context::get("seen").unwrap_or_else(|| "-".into()),
        );
        log(LogLevel::Info, &line);
        Ok(())
    }
}

export_plugin!(Probe);
