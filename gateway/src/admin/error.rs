//! Admin API errors, in Kong's shapes: `{"code", "name", "message", "fields"}`.

use super::kinds::Kind;
use serde_json::{Map, Value, json};

/// An error answer: status and JSON body.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// HTTP status.
    pub(crate) status: u16,
    /// JSON body.
    pub(crate) body: Value,
}

impl ApiError {
    fn new(status: u16, body: Value) -> ApiError {
        ApiError { status, body }
    }

    /// 400 schema violation with one message per field.
    pub(crate) fn schema(fields: Map<String, Value>) -> ApiError {
        let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {}", flat(v))).collect();
        let message = match parts.len() {
            1 => format!("schema violation ({})", parts[0]),
            n => format!("{n} schema violations ({})", parts.join("; ")),
        };
        ApiError::new(400, json!({"code": 2, "name": "schema violation", "message": message, "fields": fields}))
    }

    /// 400 schema violation of one field.
    pub(crate) fn field(field: &str, message: impl Into<String>) -> ApiError {
        let mut fields = Map::new();
        fields.insert(field.to_string(), Value::String(message.into()));
        ApiError::schema(fields)
    }

    /// The same error about a nested entity: its fields named under `prefix` (`snis[0].name`).
    pub(crate) fn within(mut self, prefix: &str) -> ApiError {
        if let Some(Value::Object(fields)) = self.body.get_mut("fields") {
            *fields = std::mem::take(fields).into_iter().map(|(k, v)| (format!("{prefix}.{k}"), v)).collect();
        }
        self
    }

    /// 400: the configuration that a write would produce does not validate.
    pub(crate) fn invalid_config(errors: &crate::config::ConfigErrors) -> ApiError {
        let messages: Vec<Value> = errors.0.iter().map(|e| Value::String(e.clone())).collect();
        ApiError::new(
            400,
            json!({"code": 2, "name": "schema violation",
                   "message": format!("the resulting configuration is invalid: {}", errors.0.join("; ")),
                   "fields": {"@entity": messages}}),
        )
    }

    /// 409: another entity already has these unique values.
    pub(crate) fn unique(values: Map<String, Value>) -> ApiError {
        let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k}={}", flat(v))).collect();
        ApiError::new(
            409,
            json!({"code": 5, "name": "unique constraint violation",
                   "message": format!("UNIQUE violation detected on '{{{}}}'", shown.join(",")),
                   "fields": values}),
        )
    }

    /// 400: a reference names no existing entity.
    pub(crate) fn foreign_key(field: &str, kind: Kind, key: &Value) -> ApiError {
        let message =
            format!("the foreign key '{}' does not reference an existing '{}' entity.", flat(key), kind.table());
        ApiError::new(
            400,
            json!({"code": 4, "name": "foreign key violation", "message": message, "fields": {field: key}}),
        )
    }

    /// 400: a delete refused because other entities still name this one.
    pub(crate) fn referenced_by(child: Kind, parent: Kind) -> ApiError {
        let message = format!("an existing '{}' entity references this '{}' entity", child.table(), parent.table());
        ApiError::new(
            400,
            json!({"code": 4, "name": "foreign key violation", "message": message,
                   "fields": {"@referenced_by": child.table()}}),
        )
    }

    /// 404.
    pub(crate) fn not_found() -> ApiError {
        ApiError::new(404, json!({"code": 6, "name": "not found", "message": "Not found"}))
    }

    /// 405 for a method the path does not serve.
    pub(crate) fn method_not_allowed() -> ApiError {
        ApiError::new(405, json!({"message": "Method not allowed"}))
    }

    /// 405 for an entity write while the TOML files are the source of truth (Kong's DB-less mode).
    pub(crate) fn declarative(verb: &str, kind: &str) -> ApiError {
        ApiError::new(
            405,
            json!({"message": format!(
                "cannot {verb} '{kind}' entities when not using a database; edit the TOML files, \
                 POST /config, or set `database = \"embedded\"`"
            )}),
        )
    }

    /// 503 for a write that needs something not ready yet (a module still compiling).
    pub(crate) fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, json!({"message": message.into()}))
    }

    /// 400 for a body that cannot be read.
    pub(crate) fn bad_body(message: impl Into<String>) -> ApiError {
        ApiError::new(400, json!({"message": message.into()}))
    }

    /// 403 for a request from a web page, or to a host name, that the Admin API does not serve.
    pub(crate) fn forbidden(message: String) -> ApiError {
        ApiError::new(403, json!({ "message": message }))
    }

    /// 401 for a missing or wrong admin token.
    pub(crate) fn unauthorized() -> ApiError {
        ApiError::new(
            401,
            json!({"message": "Invalid credentials. Token required: send `Authorization: Bearer TOKEN` \
                               or `Kong-Admin-Token: TOKEN`"}),
        )
    }

    /// 500, logged; the client gets no internals.
    pub(crate) fn internal(context: &str, error: impl std::fmt::Display) -> ApiError {
        tracing::error!(target: "wasmgate::admin", "{context}: {error}");
        ApiError::new(500, json!({"message": "An unexpected error occurred"}))
    }
}

/// A value without JSON quotes around plain strings.
fn flat(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
