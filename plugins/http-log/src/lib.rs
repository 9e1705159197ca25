//! http-log: sends each request's log record (Kong's, as JSON) to an HTTP endpoint. Kong's plugin
//! of the same name, with its `queue` settings: entries are batched, a failing endpoint is retried
//! with backoff, and entries wait in a bounded queue meanwhile. The plugin does no I/O: the
//! endpoint must be allowed in `plugins.toml`, and the gateway sends off the request path.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wasmgate_plugin_sdk::sink::{self, HttpOptions, QueueOptions};
use wasmgate_plugin_sdk::{ConfigNeeds, LogLevel, Phases, Plugin, export_plugin, log};

/// The request method.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy)]
enum Method {
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "PATCH")]
    Patch,
}

/// The `Content-Type` of what is sent.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy)]
enum ContentType {
    #[serde(rename = "application/json")]
    Json,
    #[serde(rename = "application/json; charset=utf-8")]
    JsonUtf8,
}

/// How entries wait and are retried (Kong's `queue`; times in seconds).
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
struct Queue {
    /// Entries per request: 1 sends the record as a JSON object, more send a JSON array.
    #[schemars(range(min = 1, max = 1_000_000))]
    max_batch_size: u32,
    /// How long a batch may wait to fill up, s.
    #[schemars(range(min = 0, max = 3600))]
    max_coalescing_delay: f64,
    /// Entries that may wait (also while the endpoint is down); past this, new entries are dropped
    /// and counted in `wasmgate_log_entries_total{outcome="dropped"}`.
    #[schemars(range(min = 1, max = 100_000))]
    max_entries: u32,
    /// How long a failing batch is retried before it is dropped (and counted as failed), s.
    #[schemars(range(min = 0, max = 86400))]
    max_retry_time: f64,
    /// The first wait before a retry, s; it doubles with each retry.
    #[schemars(range(min = 0.001, max = 1000000))]
    initial_retry_delay: f64,
    /// The longest wait between retries, s.
    #[schemars(range(min = 0.001, max = 1000000))]
    max_retry_delay: f64,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            max_batch_size: 1,
            max_coalescing_delay: 1.0,
            max_entries: 10_000,
            max_retry_time: 60.0,
            initial_retry_delay: 0.01,
            max_retry_delay: 60.0,
        }
    }
}

/// Configuration of http-log.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Where entries go (`http://` or `https://`); `user:password@` in it becomes Basic auth. It
    /// must be listed in `allow_log_endpoints` of `[modules.http-log]` in `plugins.toml`.
    http_endpoint: String,
    /// `POST`, `PUT` or `PATCH`.
    #[serde(default = "default_method")]
    method: Method,
    /// `application/json` or `application/json; charset=utf-8`.
    #[serde(default = "default_content_type")]
    content_type: ContentType,
    /// Connect, write and read timeout, ms.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 3_600_000))]
    timeout: u32,
    /// How long an idle connection is kept for the next batch, ms (0: closed after each).
    #[serde(default = "default_keepalive")]
    keepalive: u32,
    /// Extra request headers.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Batching and retries.
    #[serde(default)]
    queue: Queue,
    /// Deprecated in Kong: taken as `queue.max_batch_size` when set.
    #[serde(default)]
    queue_size: Option<u32>,
    /// Deprecated in Kong: taken as `queue.max_coalescing_delay` (s) when set.
    #[serde(default)]
    flush_timeout: Option<f64>,
    /// Deprecated in Kong, and ignored as there: a failing batch is retried for
    /// `queue.max_retry_time`.
    #[serde(default)]
    retry_count: Option<u32>,
    /// Kong's Lua hook: refused when set, as there is no Lua here.
    #[serde(default)]
    custom_fields_by_lua: BTreeMap<String, String>,
    /// The sink, once opened.
    #[serde(skip)]
    sink: u32,
}

fn default_method() -> Method {
    Method::Post
}
fn default_content_type() -> ContentType {
    ContentType::Json
}
fn default_timeout() -> u32 {
    10_000
}
fn default_keepalive() -> u32 {
    60_000
}

/// Seconds as whole milliseconds, checked against `min..=max` seconds.
fn millis(field: &str, s: f64, min: f64, max: f64) -> Result<u32, String> {
    if !(min..=max).contains(&s) {
        return Err(format!("queue.{field}: {s} is out of range {min}-{max} (seconds)"));
    }
    Ok((s * 1000.0).round() as u32)
}

impl Config {
    fn options(&self) -> Result<HttpOptions, String> {
        let q = &self.queue;
        let max_batch_size = self.queue_size.unwrap_or(q.max_batch_size);
        if !(1..=1_000_000).contains(&max_batch_size) {
            return Err(format!("queue.max_batch_size: {max_batch_size} is out of range 1-1000000"));
        }
        if !(1..=100_000).contains(&q.max_entries) {
            return Err(format!("queue.max_entries: {} is out of range 1-100000", q.max_entries));
        }
        if !(1..=3_600_000).contains(&self.timeout) {
            return Err(format!("timeout: {} is out of range 1-3600000 (ms)", self.timeout));
        }
        let method = match self.method {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        };
        let content_type = match self.content_type {
            ContentType::Json => "application/json",
            ContentType::JsonUtf8 => "application/json; charset=utf-8",
        };
        Ok(HttpOptions {
            method: method.into(),
            content_type: content_type.into(),
            headers: self.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            timeout_ms: self.timeout,
            keepalive_ms: self.keepalive,
            queue: QueueOptions {
                max_batch_size,
                max_coalescing_delay_ms: millis(
                    "max_coalescing_delay",
                    self.flush_timeout.unwrap_or(q.max_coalescing_delay),
                    0.0,
                    3600.0,
                )?,
                max_entries: q.max_entries,
                max_retry_time_ms: millis("max_retry_time", q.max_retry_time, 0.0, 86400.0)?,
                initial_retry_delay_ms: millis("initial_retry_delay", q.initial_retry_delay, 0.001, 1e6)?,
                max_retry_delay_ms: millis("max_retry_delay", q.max_retry_delay, 0.001, 1e6)?,
            },
        })
    }
}

struct HttpLog;

impl Plugin for HttpLog {
    type Config = Config;
    const PRIORITY: i32 = 12;
    const PHASES: Phases = Phases::LOG;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        wasmgate_plugin_sdk::logs::refuse_custom_fields_by_lua(&config.custom_fields_by_lua)?;
        if config.retry_count.is_some() {
            log(
                LogLevel::Info,
                "http-log: retry_count is deprecated and ignored; failed batches are retried for queue.max_retry_time",
            );
        }
        let options = config.options()?;
        config.sink =
            sink::open_http(&config.http_endpoint, &options).map_err(|e| match e.strip_prefix("endpoint: ") {
                Some(e) => format!("http_endpoint: {e}"),
                None => e,
            })?;
        Ok(ConfigNeeds { request_body: false })
    }

    fn log(config: &Config) -> Result<(), String> {
        sink::send_record(config.sink);
        Ok(())
    }
}

export_plugin!(HttpLog);
