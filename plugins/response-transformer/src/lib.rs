//! response-transformer: changes the response's headers and its JSON body, as Kong's plugin of
//! the same name does (`remove`, `rename`, `replace`, `add`, `append`, in that order). JSON
//! names may be dotted paths into nested objects; the body is transformed whole, once the host
//! has all of it (`buffer-body`).

mod json;

use json::Path;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasmgate_plugin_sdk::transform::{Operations, split_entry};
use wasmgate_plugin_sdk::{LogLevel, Phases, Plugin, context, export_plugin, log, response};

/// JSON members and headers: names for `remove`, `old:new` for `rename`.
#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
struct Lists {
    /// JSON members (dotted paths).
    #[serde(default)]
    json: Vec<String>,
    /// Headers.
    #[serde(default)]
    headers: Vec<String>,
}

/// `name:value` entries, with the JSON values' types.
#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
struct Values {
    /// JSON members (dotted paths) and values.
    #[serde(default)]
    json: Vec<String>,
    /// The type of each `json` value, by position: `string` (default), `number` or `boolean`.
    #[serde(default)]
    json_types: Vec<JsonType>,
    /// Headers and values.
    #[serde(default)]
    headers: Vec<String>,
}

/// The type a configured JSON value is written as.
#[derive(Deserialize, Serialize, JsonSchema, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum JsonType {
    String,
    Number,
    Boolean,
}

/// Configuration of response-transformer.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Remove these, if present.
    #[serde(default)]
    remove: Lists,
    /// `old:new`: rename, if present.
    #[serde(default)]
    rename: Lists,
    /// `name:value`: set, if present.
    #[serde(default)]
    replace: Values,
    /// `name:value`: set, if absent.
    #[serde(default)]
    add: Values,
    /// `name:value`: add one more value (headers) or make an array (JSON).
    #[serde(default)]
    append: Values,
    #[serde(skip)]
    #[schemars(skip)]
    body: Body,
}

/// The JSON operations, parsed once.
type Body = Operations<Path, Value>;

/// Applying them to a JSON document.
trait Apply {
    fn apply(&self, doc: &mut Value);
}

impl Apply for Body {
    fn apply(&self, doc: &mut Value) {
        for p in &self.remove {
            json::remove(doc, p);
        }
        for (old, new) in &self.rename {
            if let Some(v) = json::remove(doc, old) {
                json::set(doc, new, v);
            }
        }
        for (p, v) in &self.replace {
            if let Some(current) = json::get_mut(doc, p).filter(|c| json::truthy(Some(c))) {
                *current = v.clone();
            }
        }
        for (p, v) in &self.add {
            if !json::truthy(json::get_mut(doc, p).as_deref()) {
                json::set(doc, p, v.clone());
            }
        }
        for (p, v) in &self.append {
            json::append(doc, p, v.clone());
        }
    }
}

/// Splits `name:value`; a missing value is empty.
fn split(entry: &str) -> (&str, &str) {
    let (name, value) = split_entry(entry);
    (name, value.unwrap_or_default())
}

/// A configured value as JSON of its type; none for a number that is not one.
fn typed(value: &str, ty: Option<JsonType>) -> Option<Value> {
    match ty.unwrap_or(JsonType::String) {
        JsonType::String => Some(Value::String(value.into())),
        JsonType::Number => value.trim().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(|n| {
            // Whole numbers stay integers (`5`, not `5.0`).
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => Value::from(f as i64),
                _ => Value::Number(n),
            }
        }),
        JsonType::Boolean => Some(Value::Bool(value == "true")),
    }
}

fn values(field: &str, v: &Values) -> Result<Vec<(Path, Value)>, String> {
    let mut out = Vec::new();
    for (i, entry) in v.json.iter().enumerate() {
        let (name, value) = split(entry);
        if !entry.contains(':') {
            return Err(format!("config.{field}.json[{i}]: {entry:?} has no value; write name:value"));
        }
        if let Some(value) = typed(value, v.json_types.get(i).copied()) {
            out.push((json::path(name), value));
        }
    }
    Ok(out)
}

/// Whether a `Content-Type` is JSON (`application/json` or `application/*+json`).
fn is_json(content_type: &str) -> bool {
    content_type.split(',').any(|ct| {
        let mime = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
    })
}

/// The key under which a request remembers that its body came in pieces.
const STREAMED: &str = "streamed";

struct ResponseTransformer;

impl Plugin for ResponseTransformer {
    type Config = Config;
    const PRIORITY: i32 = 800;
    const PHASES: Phases = Phases::HEADER_FILTER.union(Phases::BODY_FILTER);

    fn configure(config: &mut Config) -> Result<wasmgate_plugin_sdk::ConfigNeeds, String> {
        for (field, headers) in [
            ("rename", &config.rename.headers),
            ("replace", &config.replace.headers),
            ("add", &config.add.headers),
            ("append", &config.append.headers),
        ] {
            if let Some((i, bad)) = headers.iter().enumerate().find(|(_, h)| !h.contains(':')) {
                return Err(format!("config.{field}.headers[{i}]: {bad:?} has no value; write name:value"));
            }
        }
        let mut rename = Vec::new();
        for (i, entry) in config.rename.json.iter().enumerate() {
            match split(entry) {
                (old, new) if entry.contains(':') && !new.is_empty() => rename.push((json::path(old), json::path(new))),
                _ => return Err(format!("config.rename.json[{i}]: {entry:?} must be old:new")),
            }
        }
        config.body = Body {
            remove: config.remove.json.iter().map(|n| json::path(n)).collect(),
            rename,
            replace: values("replace", &config.replace)?,
            add: values("add", &config.add)?,
            append: values("append", &config.append)?,
        };
        if config.body.is_empty() {
            // Headers only: bodies pass untouched, and keep their Content-Length.
            response::skip_body_filter()?;
        }
        Ok(wasmgate_plugin_sdk::ConfigNeeds { request_body: false })
    }

    fn header_filter(config: &Config) -> Result<(), String> {
        for name in &config.remove.headers {
            response::remove_header(name);
        }
        for (old, new) in config.rename.headers.iter().map(|e| split(e)) {
            let values = response::header_values(old);
            if !values.is_empty() && !new.is_empty() {
                response::remove_header(old);
                response::remove_header(new);
                values.iter().for_each(|v| response::add_header(new, v));
            }
        }
        for (name, value) in config.replace.headers.iter().map(|e| split(e)) {
            if !value.is_empty() && response::header(name).is_some() {
                response::set_header(name, value);
            }
        }
        for (name, value) in config.add.headers.iter().map(|e| split(e)) {
            if !value.is_empty() && response::header(name).is_none() {
                response::set_header(name, value);
            }
        }
        for (name, value) in config.append.headers.iter().map(|e| split(e)) {
            response::add_header(name, value);
        }
        if !config.body.is_empty() && response::header("content-type").is_some_and(|ct| is_json(&ct)) {
            response::buffer_body();
        }
        Ok(())
    }

    fn body_filter(config: &Config, chunk: Vec<u8>, end_of_stream: bool) -> Result<Option<Vec<u8>>, String> {
        if config.body.is_empty() || !response::header("content-type").is_some_and(|ct| is_json(&ct)) {
            return Ok(None);
        }
        // The whole body comes in one call; a body too large to hold comes in pieces and passes.
        if !end_of_stream {
            context::set(STREAMED, Some("1"));
            return Ok(None);
        }
        if context::get(STREAMED).is_some() {
            return Ok(None);
        }
        let Ok(mut doc) = serde_json::from_slice::<Value>(&chunk) else {
            log(LogLevel::Warn, "body transform failed: failed parsing json body");
            return Ok(None);
        };
        config.body.apply(&mut doc);
        serde_json::to_vec(&doc).map(Some).map_err(|e| e.to_string())
    }
}

export_plugin!(ResponseTransformer);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_types() {
        assert_eq!(typed("5", Some(JsonType::Number)), Some(Value::from(5)));
        assert_eq!(typed("1.5", Some(JsonType::Number)), Some(serde_json::json!(1.5)));
        assert_eq!(typed("x", Some(JsonType::Number)), None);
        assert_eq!(typed("true", Some(JsonType::Boolean)), Some(Value::Bool(true)));
        assert_eq!(typed("yes", Some(JsonType::Boolean)), Some(Value::Bool(false)));
        assert_eq!(typed("a:b", None), Some(Value::String("a:b".into())));
        assert_eq!(split("h:v:w"), ("h", "v:w"));
        assert!(is_json("application/json; charset=utf-8") && is_json("application/problem+json"));
        assert!(!is_json("text/html"));
    }
}
