//! The Admin API: Kong's endpoints on `admin_listen` (127.0.0.1:8001), in the same process as
//! the proxy.
//!
//! - [`kinds`]: the entity kinds, their keys and references.
//! - [`records`]: entities as Kong-shaped JSON, converted to and from the TOML model.
//! - [`body`]: JSON and curl-style form bodies.
//! - [`entity`]: validating a body into a record.
//! - [`api`]: the endpoints.
//! - [`guard`]: refusing what a web page could send (foreign origins, DNS rebinding).
//! - [`store`]: the embedded database (`database = "embedded"`).
//!
//! Every write builds the whole resulting configuration through the same path as a reload, saves
//! it, then swaps it in; writers are serialized, and requests in flight keep their snapshot.

pub(crate) mod api;
pub(crate) mod body;
pub(crate) mod entity;
pub(crate) mod error;
mod guard;
pub(crate) mod kinds;
pub(crate) mod records;
pub(crate) mod store;

use crate::config::{ConfigErrors, Database, GatewayConfig};
use crate::reload::Reloader;
use crate::status::Status;
use api::WriteContext;
use async_trait::async_trait;
use error::ApiError;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use records::Records;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use store::Store;

/// The largest request body the Admin API reads (a whole configuration for `POST /config`).
const MAX_BODY: usize = 64 << 20;

/// The Admin API's state.
pub(crate) struct Admin {
    reloader: Arc<Reloader>,
    database: Database,
    /// Refuses what a web page could send.
    guard: guard::Guard,
    /// Metrics and status, shared with the status listener.
    pub(crate) status: Arc<Status>,
    /// The entities (embedded mode) and the store; the lock serializes writers.
    inner: tokio::sync::Mutex<Inner>,
    /// Declarative mode: the records of the live configuration, by version.
    view: parking_lot::Mutex<Option<(u64, Arc<Records>)>>,
    node_id: String,
}

struct Inner {
    records: Arc<Records>,
    store: Option<Store>,
}

/// An answer.
pub(crate) struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    /// A JSON answer.
    pub(crate) fn json(status: u16, body: Value) -> Reply {
        Reply { status, content_type: "application/json; charset=utf-8", body: body.to_string().into_bytes() }
    }

    /// A text answer.
    pub(crate) fn text(status: u16, content_type: &'static str, body: String) -> Reply {
        Reply { status, content_type, body: body.into_bytes() }
    }

    /// No body.
    pub(crate) fn empty(status: u16) -> Reply {
        Reply { status, content_type: "", body: Vec::new() }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::json(e.status, e.body)
    }
}

/// Seconds since the epoch (Kong's `created_at`).
pub(crate) fn now() -> i64 {
    (crate::health::now_ms() / 1000) as i64
}

impl Admin {
    /// The Admin API over `reloader`; `store` holds the entities in embedded mode.
    pub(crate) fn new(reloader: Arc<Reloader>, store: Option<(Store, Records)>, status: Arc<Status>) -> Admin {
        let server = reloader.server();
        let (database, guard) = (server.database, guard::Guard::new(server));
        let (store, records) = match store {
            Some((s, r)) => (Some(s), r),
            None => (None, Records::default()),
        };
        Admin {
            reloader,
            database,
            guard,
            status,
            inner: tokio::sync::Mutex::new(Inner { records: Arc::new(records), store }),
            view: parking_lot::Mutex::new(None),
            node_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The entities as they are now.
    pub(crate) async fn records(&self) -> Arc<Records> {
        if self.database == Database::Embedded {
            return self.inner.lock().await.records.clone();
        }
        let (version, config) = self.reloader.config();
        if let Some((v, r)) = &*self.view.lock()
            && *v == version
        {
            return r.clone();
        }
        let records = Arc::new(Records::from_config(&config, now()).unwrap_or_else(|e| {
            tracing::error!(target: "wasmgate::admin", "cannot show the configuration: {e}");
            Records::default()
        }));
        *self.view.lock() = Some((version, records.clone()));
        records
    }

    /// Applies a change to the entities: `f` edits a copy; the result is validated as a whole
    /// configuration (plugins configure themselves), saved in one transaction, and swapped in.
    /// On any error nothing changes.
    async fn write(
        &self,
        f: impl FnOnce(&mut Records, &WriteContext) -> Result<Reply, ApiError>,
    ) -> Result<Reply, ApiError> {
        let mut inner = self.inner.lock().await;
        let mut next = (*inner.records).clone();
        let ctx = WriteContext {
            modules: self.reloader.modules(),
            compiling: self.reloader.compiling(),
            entities: self.reloader.live().load().entities.clone(),
            now: now(),
        };
        let reply = f(&mut next, &ctx)?;
        self.commit(&mut inner, next).await?;
        Ok(reply)
    }

    /// Validates, saves and swaps in `next`.
    async fn commit(&self, inner: &mut Inner, next: Records) -> Result<u64, ApiError> {
        let changes = inner.records.diff(&next);
        if changes.is_empty() {
            return Ok(self.reloader.live().load().version);
        }
        let config = Arc::new(next.to_config().map_err(|e| ApiError::internal("converting the entities", e))?);
        let loaded = self.build(config.clone()).await?;
        if let Some(store) = &mut inner.store {
            store.save(&changes).await.map_err(|e| ApiError::internal("saving to the database", e))?;
        }
        let version = self.reloader.install(loaded, config);
        inner.records = Arc::new(next);
        Ok(version)
    }

    /// Builds (validates) a snapshot off the async threads.
    async fn build(&self, config: Arc<GatewayConfig>) -> Result<crate::reload::Loaded, ApiError> {
        let reloader = self.reloader.clone();
        tokio::task::spawn_blocking(move || reloader.build(&config))
            .await
            .map_err(|e| ApiError::internal("building the configuration", e))?
            .map_err(|e| ApiError::invalid_config(&e))
    }

    /// `GET /config`: the running entities and plugin instances as TOML, ids explicit.
    async fn export(&self) -> Result<String, ApiError> {
        let records = self.records().await;
        export_toml(&records).map_err(|e| ApiError::internal("exporting the configuration", e))
    }

    /// `POST /config`: replaces every entity with a TOML configuration (the `GET /config`
    /// format; a form field `config` works too), validated first. In declarative mode it lasts
    /// until the files are reloaded; in embedded mode it is saved.
    async fn replace_config(&self, req: &api::Request<'_>) -> Result<Reply, ApiError> {
        let text = match &req.body {
            Some((form, true)) if form.contains_key("config") => match form.get("config") {
                Some(Value::String(s)) => s.clone(),
                _ => return Err(ApiError::field("config", "expected the configuration as TOML text")),
            },
            _ => String::from_utf8(req.raw.to_vec()).map_err(|_| ApiError::bad_body("the body is not UTF-8"))?,
        };
        let config = parse_entities(&text).map_err(|e| ApiError::field("config", e.to_string()))?;
        let mut inner = self.inner.lock().await;
        let version = match self.database {
            Database::Embedded => {
                let next = Records::from_config(&config, now()).map_err(|e| ApiError::field("config", e))?;
                self.commit(&mut inner, next).await?
            }
            Database::Off => {
                let config = Arc::new(config);
                let loaded = self.build(config.clone()).await?;
                self.reloader.install(loaded, config)
            }
        };
        Ok(Reply::json(201, json!({ "message": "configuration applied", "version": version })))
    }

    /// `GET /`: node information.
    fn node_info(&self) -> Value {
        let server = self.reloader.server();
        let snapshot = self.reloader.live().load();
        let mut available = serde_json::Map::new();
        for (name, m) in self.reloader.modules() {
            available.insert(name, json!({ "priority": m.priority }));
        }
        let mut in_use: Vec<&str> = snapshot.plugins.instances().map(|c| &*c.module.name).collect();
        in_use.sort();
        in_use.dedup();
        json!({
            "tagline": "Welcome to wasmgate",
            "version": env!("CARGO_PKG_VERSION"),
            "node_id": self.node_id,
            "hostname": hostname(),
            "configuration": {
                "database": server.database,
                "proxy_listen": server.proxy_listen,
                "admin_listen": [server.admin_listen],
                "version": snapshot.version,
            },
            "plugins": { "available_on_server": available, "enabled_in_cluster": in_use },
        })
    }

    /// `GET /status`: the status listener's, plus the database.
    fn status(&self) -> Value {
        let mut status = self.status.status();
        status["database"] = json!({ "reachable": true });
        status
    }

    /// Checks the token (`admin_token` as the last reload read it, so a leaked one is rotated
    /// with SIGHUP); `Err` when one is configured and the request lacks it.
    fn authenticate(&self, session: &ServerSession) -> Result<&'static str, ApiError> {
        let server = self.reloader.server_now();
        let Some(token) = &server.admin_token else { return Ok("anonymous") };
        let headers = &session.req_header().headers;
        let given = headers.get("kong-admin-token").and_then(|v| v.to_str().ok()).or_else(|| {
            headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
        });
        match given {
            Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok("token"),
            _ => Err(ApiError::unauthorized()),
        }
    }

    /// Reads, routes and answers one request.
    async fn serve(&self, session: &mut ServerSession) -> (Reply, &'static str) {
        if let Err(e) = self.guard.check(session.req_header()) {
            return (e.into(), "refused");
        }
        let who = match self.authenticate(session) {
            Ok(who) => who,
            Err(e) => return (e.into(), "rejected"),
        };
        let raw = match read_body(session).await {
            Ok(b) => b,
            Err(e) => return (e.into(), who),
        };
        let header = session.req_header();
        let method = header.method.as_str();
        let segments = header
            .uri
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let query = form_urlencoded::parse(header.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
        let body = match method {
            "POST" | "PUT" | "PATCH" => {
                let content_type = header.headers.get("content-type").and_then(|v| v.to_str().ok());
                match (header.uri.path().trim_end_matches('/') == "/config", body::parse(content_type, &raw)) {
                    (_, Ok(b)) => Some(b),
                    (true, Err(_)) => None,
                    (false, Err(e)) => return (e.into(), who),
                }
            }
            _ => None,
        };
        let req = api::Request { method, segments, query, body, raw: &raw };
        let reply = api::handle(self, &req).await.unwrap_or_else(Reply::from);
        (reply, who)
    }
}

/// Pingora's HTTP app for the admin listener.
pub(crate) struct AdminApp(pub(crate) Arc<Admin>);

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let started = Instant::now();
        let (method, path) = (session.req_header().method.to_string(), session.req_header().uri.to_string());
        let peer = session.client_addr().map(|a| a.to_string()).unwrap_or_default();
        let (reply, who) = self.0.serve(session).await;
        tracing::info!(
            target: "wasmgate::admin",
            %method, %path, status = reply.status, %peer, auth = who,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "admin request"
        );
        let mut resp = http::Response::builder()
            .status(reply.status)
            .header("server", concat!("wasmgate/", env!("CARGO_PKG_VERSION")))
            .header("content-length", reply.body.len());
        if !reply.content_type.is_empty() {
            resp = resp.header("content-type", reply.content_type);
        }
        resp.body(reply.body).unwrap_or_else(|_| http::Response::new(Vec::new()))
    }
}

async fn read_body(session: &mut ServerSession) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(ApiError::bad_body(format!("the body is larger than {} MiB", MAX_BODY >> 20)));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(ApiError::bad_body(format!("cannot read the body: {e}"))),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// The entities and plugin instances as TOML (no `[server]`), ids explicit.
pub(crate) fn export_toml(records: &Records) -> Result<String, String> {
    let config = records.to_config()?;
    let mut value = toml::Table::try_from(&config).map_err(|e| e.to_string())?;
    value.remove("server");
    toml::to_string_pretty(&value).map_err(|e| e.to_string())
}

/// A configuration of entities only (the `GET /config` format): `[server]` is refused.
pub(crate) fn parse_entities(text: &str) -> Result<GatewayConfig, ConfigErrors> {
    let table: toml::Table = crate::config::parse_toml(text)?;
    if table.contains_key("server") {
        return Err(ConfigErrors::from(
            "server: node settings cannot be changed here; edit [server] in gateway.toml and restart".to_string(),
        ));
    }
    crate::config::parse_toml(text)
}
