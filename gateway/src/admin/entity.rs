//! Turning a request body into a valid record: types from the model's JSON Schema, references
//! resolved, Kong's generated fields (keys, secrets), the model's own checks, the plugin's own
//! `configure`, and uniqueness.

use super::body::coerce;
use super::error::ApiError;
use super::kinds::Kind;
use super::records::{Record, Records, id_of, record, reference};
use crate::config::{
    AclGroup, BasicAuthCredential, CaCertificateConfig, CertificateConfig, ConsumerConfig, HmacAuthCredential,
    JwtCredential, KeyAuthCredential, RouteConfig, ServiceConfig, SniConfig, TargetConfig, UpstreamConfig,
};
use crate::config::{ModuleOverrides, PluginEntry};
use crate::entities::Entities;
use crate::plugins::module::Module;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// What a write needs to know besides its body.
pub(crate) struct Write<'a> {
    /// The entities as they are now.
    pub(crate) records: &'a Records,
    /// The entity being replaced or patched, if any.
    pub(crate) existing: Option<&'a Record>,
    /// The id it gets (from the URL for PUT, else generated or kept).
    pub(crate) id: String,
    /// A reference the URL fixes (`/consumers/{c}/key-auth`: consumer = c).
    pub(crate) parent: Option<(&'static str, String)>,
    /// The body came form-encoded.
    pub(crate) form: bool,
    /// Loaded plugin modules, by name.
    pub(crate) modules: &'a HashMap<String, Arc<Module>>,
    /// Modules still compiling after start-up.
    pub(crate) compiling: &'a std::collections::BTreeSet<String>,
    /// The live entities (plugins check names against them when configured).
    pub(crate) entities: &'a Arc<Entities>,
    /// Seconds since the epoch.
    pub(crate) now: i64,
}

/// The JSON Schema of each kind's model, generated once.
pub(crate) fn entity_schema(kind: Kind) -> &'static Value {
    static SCHEMAS: LazyLock<HashMap<Kind, Value>> = LazyLock::new(|| {
        fn of<T: schemars::JsonSchema>() -> Value {
            schemars::schema_for!(T).to_value()
        }
        HashMap::from([
            (Kind::Certificates, of::<CertificateConfig>()),
            (Kind::Snis, of::<SniConfig>()),
            (Kind::CaCertificates, of::<CaCertificateConfig>()),
            (Kind::Services, of::<ServiceConfig>()),
            (Kind::Routes, of::<RouteConfig>()),
            (Kind::Upstreams, of::<UpstreamConfig>()),
            (Kind::Targets, of::<TargetConfig>()),
            (Kind::Consumers, of::<ConsumerConfig>()),
            (Kind::KeyAuths, of::<KeyAuthCredential>()),
            (Kind::Acls, of::<AclGroup>()),
            (Kind::Jwts, of::<JwtCredential>()),
            (Kind::BasicAuths, of::<BasicAuthCredential>()),
            (Kind::HmacAuths, of::<HmacAuthCredential>()),
            (Kind::Plugins, of::<PluginEntry>()),
            (Kind::Modules, of::<ModuleOverrides>()),
        ])
    });
    &SCHEMAS[&kind]
}

/// Validates `input` as an entity of `kind` and returns its record.
pub(crate) fn build(kind: Kind, mut input: Map<String, Value>, w: &Write<'_>) -> Result<Record, ApiError> {
    if w.form {
        let schema = entity_schema(kind);
        let mut v = Value::Object(input);
        coerce(&mut v, schema, schema);
        let Value::Object(m) = v else { unreachable!("coerce keeps objects") };
        input = m;
    }
    for f in ["id", "created_at", "updated_at"] {
        input.remove(f);
    }
    let mut refs = Map::new();
    for (field, target) in kind.foreign_keys() {
        let value = input.remove(*field).unwrap_or(Value::Null);
        let resolved = match &w.parent {
            Some((f, id)) if f == field => Some(id.clone()),
            _ => resolve_reference(w.records, field, *target, &value)?,
        };
        if resolved.is_none() && kind.owner().is_some_and(|(f, _)| f == *field) {
            return Err(ApiError::field(field, "required field missing"));
        }
        refs.insert(field.to_string(), reference(resolved));
    }
    for h in kind.hidden().iter().filter(|h| **h != "url") {
        if input.contains_key(*h) {
            return Err(ApiError::field(h, format!("unknown field; {h} are their own entities")));
        }
    }
    generate_fields(kind, &mut input)?;
    check_fields(kind, &input)?;
    let mut rec = match kind {
        Kind::Certificates => canonical::<CertificateConfig>(kind, input, w)?,
        Kind::Snis => canonical::<SniConfig>(kind, input, w)?,
        Kind::CaCertificates => canonical::<CaCertificateConfig>(kind, input, w)?,
        Kind::Services => canonical::<ServiceConfig>(kind, input, w)?,
        Kind::Routes => canonical::<RouteConfig>(kind, input, w)?,
        Kind::Upstreams => canonical::<UpstreamConfig>(kind, input, w)?,
        Kind::Targets => canonical::<TargetConfig>(kind, input, w)?,
        Kind::Consumers => canonical::<ConsumerConfig>(kind, input, w)?,
        Kind::KeyAuths => canonical::<KeyAuthCredential>(kind, input, w)?,
        Kind::Acls => canonical::<AclGroup>(kind, input, w)?,
        Kind::Jwts => canonical::<JwtCredential>(kind, input, w)?,
        Kind::BasicAuths => canonical::<BasicAuthCredential>(kind, input, w)?,
        Kind::HmacAuths => canonical::<HmacAuthCredential>(kind, input, w)?,
        Kind::Plugins => canonical::<PluginEntry>(kind, plugin_input(input, w)?, w)?,
        Kind::Modules => canonical::<ModuleOverrides>(kind, input, w)?,
    };
    rec.extend(refs);
    if kind == Kind::Plugins {
        configure_plugin(&rec, w)?;
    }
    w.records.check_unique(kind, &rec)?;
    Ok(rec)
}

/// Checks that need more than the model's types: PEM that parses (and a key that is its
/// certificate's), a CA that is one, a server name that is one, a JWT key that fits its
/// algorithm. Files are the TOML's only.
fn check_fields(kind: Kind, input: &Map<String, Value>) -> Result<(), ApiError> {
    let text = |f: &str| input.get(f).and_then(Value::as_str).map(str::to_string);
    let no_files = |fields: &[&str]| {
        let given = fields.iter().find(|f| input.get(**f).is_some_and(|v| !v.is_null()));
        match given {
            Some(f) => {
                Err(ApiError::field(f, "files are read from gateway.toml only; send the PEM text as `cert`/`key`"))
            }
            None => Ok(()),
        }
    };
    match kind {
        Kind::Certificates => {
            no_files(&["cert_file", "key_file"])?;
            let cfg = CertificateConfig {
                cert: text("cert"),
                key: text("key"),
                cert_alt: text("cert_alt"),
                key_alt: text("key_alt"),
                ..Default::default()
            };
            crate::tls::parse_pairs(&cfg).map(|_| ()).map_err(|(field, e)| ApiError::field(field, e))
        }
        Kind::CaCertificates => {
            no_files(&["cert_file"])?;
            let pem = text("cert").ok_or_else(|| ApiError::field("cert", "required field missing"))?;
            crate::tls::parse_ca(&pem).map(|_| ()).map_err(|e| ApiError::field("cert", e))
        }
        Kind::Snis => match text("name") {
            Some(name) => crate::tls::sni_key(&name).map(|_| ()).map_err(|e| ApiError::field("name", e)),
            None => Ok(()),
        },
        // The algorithm is one we verify, with the secret or a public key of its type. (A body
        // the model refuses is left to its own, more precise error.)
        Kind::Jwts => match serde_json::from_value::<JwtCredential>(Value::Object(input.clone())) {
            Ok(c) => crate::signatures::JwtKey::new(&c).map(|_| ()).map_err(|(f, e)| ApiError::field(f, e)),
            Err(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Deserializes into the model (which checks types and unknown fields), then serializes back,
/// so the record carries every default.
fn canonical<T: DeserializeOwned + Serialize>(
    kind: Kind,
    input: Map<String, Value>,
    w: &Write<'_>,
) -> Result<Record, ApiError> {
    let model: T = serde_path_to_error::deserialize(Value::Object(input)).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        if let Some(f) = quoted(&msg, "missing field `") {
            ApiError::field(&join(&path, f), "required field missing")
        } else if msg.starts_with("unknown field `") {
            // The path already ends with the unknown field.
            ApiError::field(&path, "unknown field")
        } else if let Some((field, rest)) = msg.split_once(": ").filter(|_| path == ".") {
            // A check of the whole entity (`try_from`) names its field first.
            ApiError::field(field, rest)
        } else {
            ApiError::field(&path, msg)
        }
    })?;
    let mut rec = record(&model, kind, w.id.clone(), w.now).map_err(|e| ApiError::internal("record", e))?;
    if let Some(created) = w.existing.and_then(|e| e.get("created_at")) {
        rec.insert("created_at".into(), created.clone());
    }
    Ok(rec)
}

/// The text between `prefix` and the next backtick.
fn quoted<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &msg[msg.find(prefix)? + prefix.len()..];
    rest.split('`').next()
}

fn join(path: &str, field: &str) -> String {
    match path {
        "." | "" => field.to_string(),
        p => format!("{p}.{field}"),
    }
}

/// A reference given as `{"id": ..}`, `{"name": ..}` (any endpoint key), or a plain id or name.
fn resolve_reference(records: &Records, field: &str, kind: Kind, value: &Value) -> Result<Option<String>, ApiError> {
    let key = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.iter().find(|(k, _)| *k == "id" || kind.endpoint_keys().contains(&k.as_str())) {
            Some((_, Value::String(s))) => s.clone(),
            _ => return Err(ApiError::field(field, "expected {\"id\": ...} or {\"name\": ...}")),
        },
        _ => return Err(ApiError::field(field, "expected a reference such as {\"id\": ...}")),
    };
    match records.find(kind, &key) {
        Some(r) => Ok(Some(id_of(r).to_string())),
        None => Err(ApiError::foreign_key(field, kind, value)),
    }
}

/// Kong's generated and derived fields: `url` expanded, keys and secrets made up when absent.
/// (Basic-auth passwords are hashed by the model as it reads them.)
fn generate_fields(kind: Kind, input: &mut Map<String, Value>) -> Result<(), ApiError> {
    let missing = |m: &Map<String, Value>, f: &str| m.get(f).is_none_or(Value::is_null);
    match kind {
        Kind::Services => {
            if let Some(url) = input.remove("url").filter(|u| !u.is_null()) {
                let url = url.as_str().ok_or_else(|| ApiError::field("url", "expected a string"))?;
                let parts = super::records::expand_url(url).map_err(|e| ApiError::field("url", e))?;
                input.insert("protocol".into(), Value::String(parts.protocol));
                input.insert("host".into(), Value::String(parts.host));
                input.insert("port".into(), Value::from(parts.port));
                input.insert("path".into(), parts.path.map_or(Value::Null, Value::String));
            }
            if missing(input, "host") {
                return Err(ApiError::field("host", "required field missing"));
            }
            for (field, default) in [("protocol", serde_json::json!("http")), ("port", serde_json::json!(80))] {
                if missing(input, field) {
                    input.insert(field.into(), default);
                }
            }
        }
        Kind::KeyAuths if missing(input, "key") => {
            input.insert("key".into(), Value::String(random_token()));
        }
        Kind::Jwts => {
            for f in ["key", "secret"] {
                if missing(input, f) {
                    input.insert(f.into(), Value::String(random_token()));
                }
            }
        }
        Kind::HmacAuths if missing(input, "secret") => {
            input.insert("secret".into(), Value::String(random_token()));
        }
        _ => {}
    }
    Ok(())
}

/// A random 32-character key, as Kong generates for key-auth and jwt.
fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A plugin body: its name must be a loaded module; its `config` gets the module's types (form
/// bodies) and defaults, and loses nulls (unset fields).
fn plugin_input(mut input: Map<String, Value>, w: &Write<'_>) -> Result<Map<String, Value>, ApiError> {
    let name = match input.get("name") {
        Some(Value::String(n)) => n.clone(),
        None | Some(Value::Null) => return Err(ApiError::field("name", "required field missing")),
        Some(_) => return Err(ApiError::field("name", "expected a string")),
    };
    if w.compiling.contains(&name) && !w.modules.contains_key(&name) {
        return Err(ApiError::unavailable(format!(
            "plugin '{name}' is still compiling (the gateway started without its compiled code); retry in a few seconds"
        )));
    }
    let Some(module) = w.modules.get(&name) else {
        let mut known: Vec<&str> = w.modules.keys().map(String::as_str).collect();
        known.sort();
        return Err(ApiError::field(
            "name",
            format!(
                "plugin '{name}' is not loaded; loaded plugins: {} (add NAME.wasm to the plugins directory)",
                known.join(", ")
            ),
        ));
    };
    let schema: Value = serde_json::from_str(&module.schema).unwrap_or(Value::Null);
    let config = input.entry("config").or_insert_with(|| Value::Object(Map::new()));
    if config.is_null() {
        *config = Value::Object(Map::new());
    }
    if w.form {
        coerce(config, &schema, &schema);
    }
    let Value::Object(c) = config else { return Err(ApiError::field("config", "expected an object")) };
    c.retain(|_, v| !v.is_null());
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (field, s) in props {
            if let Some(default) = s.get("default").filter(|d| !d.is_null())
                && !c.contains_key(field)
            {
                c.insert(field.clone(), default.clone());
            }
        }
    }
    Ok(input)
}

/// Runs the plugin's own validation (the `configure` call used at load).
fn configure_plugin(rec: &Record, w: &Write<'_>) -> Result<(), ApiError> {
    let name = rec.get("name").and_then(Value::as_str).unwrap_or_default();
    let Some(module) = w.modules.get(name) else { return Ok(()) };
    if module.no_consumer && !rec.get("consumer").is_none_or(Value::is_null) {
        return Err(ApiError::field("consumer", format!("'{name}' cannot be scoped to a consumer")));
    }
    let json = rec.get("config").map(Value::to_string).unwrap_or_else(|| "{}".into());
    let id = crate::plugins::chain::config_id(name, &json);
    module.configure(id, &json, w.entities).map(|_| ()).map_err(|msg| {
        // The SDK names the field: `config.minute: ...`.
        match msg.split_once(": ").filter(|(f, _)| *f == "config" || f.starts_with("config.")) {
            Some((field, rest)) => ApiError::field(field, rest),
            None => ApiError::field("config", msg),
        }
    })
}
