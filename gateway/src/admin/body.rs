//! Request bodies: JSON, or form-encoded as curl sends them (`paths[]=/x`, `config.minute=100`,
//! `service.id=...`), turned into the same JSON. Form values are strings; [`coerce`] gives them
//! the types that the entity's or plugin's JSON Schema asks for.

use super::error::ApiError;
use serde_json::{Map, Value};

/// The body as a JSON object; `true` when it came form-encoded (its values need [`coerce`]).
pub(crate) fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<(Map<String, Value>, bool), ApiError> {
    let mime = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime == "application/json" {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok((Map::new(), false));
        }
        return match serde_json::from_slice(bytes) {
            Ok(Value::Object(map)) => Ok((map, false)),
            Ok(_) => Err(ApiError::bad_body("the JSON body must be an object")),
            Err(e) => Err(ApiError::bad_body(format!("Cannot parse JSON body: {e}"))),
        };
    }
    if mime.starts_with("multipart/") {
        return Err(ApiError::bad_body("multipart bodies are not supported; send form-encoded or JSON"));
    }
    form(bytes).map(|m| (m, true))
}

/// The longest form field name: Kong's deepest (`config.limits.sms.minute`) is a few dozen bytes.
const MAX_KEY_LENGTH: usize = 256;
/// The most steps (names and positions) in a form field name.
const MAX_KEY_DEPTH: usize = 8;

/// Parses `a.b[]=v&c=w` into nested JSON. An empty value is `null` (Kong: unset the field).
/// Field names have a length and depth limit, so that no body can nest without bound.
pub(crate) fn form(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut root = Value::Object(Map::new());
    for (key, value) in form_urlencoded::parse(bytes) {
        if key.len() > MAX_KEY_LENGTH {
            let start: String = key.chars().take(32).collect();
            return Err(ApiError::field(
                &format!("{start}..."),
                format!("the field name is {} bytes long; at most {MAX_KEY_LENGTH} are accepted", key.len()),
            ));
        }
        let path = key_path(&key).ok_or_else(|| ApiError::field(&key, "is not a valid form field name"))?;
        if path.len() > MAX_KEY_DEPTH {
            return Err(ApiError::field(&key, format!("nests {} levels deep; at most {MAX_KEY_DEPTH}", path.len())));
        }
        let value = if value.is_empty() { Value::Null } else { Value::String(value.into_owned()) };
        insert(&mut root, &path, value).map_err(|msg| ApiError::field(&key, msg))?;
    }
    match root {
        Value::Object(m) => Ok(m),
        _ => unreachable!("the root is an object"),
    }
}

/// One step of a form key: a field name, or an array position (`[]` appends).
#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(Option<usize>),
}

/// `config.allow[]` → [config, allow, append]; `paths[2]` → [paths, 2].
fn key_path(key: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return None;
        }
        steps.push(Step::Field(name.to_string()));
        while !rest.is_empty() {
            let end = rest.find(']')?;
            let inner = &rest[1..end];
            steps.push(Step::Index(if inner.is_empty() { None } else { Some(inner.parse().ok()?) }));
            rest = &rest[end + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return None;
            }
        }
    }
    Some(steps)
}

fn insert(node: &mut Value, path: &[Step], value: Value) -> Result<(), String> {
    let Some((step, rest)) = path.split_first() else {
        // A repeated plain key (`methods=GET&methods=POST`) becomes a list.
        match node {
            Value::Null => *node = value,
            Value::Array(items) => items.push(value),
            other => *other = Value::Array(vec![other.take(), value]),
        }
        return Ok(());
    };
    match step {
        Step::Field(name) => {
            if node.is_null() {
                *node = Value::Object(Map::new());
            }
            let Value::Object(map) = node else { return Err("mixes a value and sub-fields".into()) };
            insert(map.entry(name.clone()).or_insert(Value::Null), rest, value)
        }
        Step::Index(at) => {
            if node.is_null() {
                *node = Value::Array(Vec::new());
            }
            let Value::Array(items) = node else { return Err("mixes a value and a list".into()) };
            let i = match at {
                Some(i) if *i < items.len() => *i,
                _ => {
                    items.push(Value::Null);
                    items.len() - 1
                }
            };
            insert(&mut items[i], rest, value)
        }
    }
}

/// Converts form strings to what `schema` (a JSON Schema; `root` holds its `$defs`) expects:
/// integers, numbers, booleans, and lists from single values.
pub(crate) fn coerce(value: &mut Value, schema: &Value, root: &Value) {
    let schema = resolve(schema, root);
    if let Some(alternatives) = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(Value::as_array) {
        if let Some(s) = alternatives.iter().map(|s| resolve(s, root)).find(|s| !is_null_type(s)) {
            coerce(value, s, root);
        }
        return;
    }
    let allows = |t: &str| match schema.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(ts)) => ts.iter().any(|x| x == t),
        _ => false,
    };
    if let Value::String(s) = value {
        if allows("string") {
            return;
        }
        if allows("integer")
            && let Ok(n) = s.parse::<i64>()
        {
            *value = Value::from(n);
        } else if allows("number")
            && let Ok(n) = s.parse::<f64>()
            && let Some(n) = serde_json::Number::from_f64(n)
        {
            *value = Value::Number(n);
        } else if allows("boolean") && (s == "true" || s == "false") {
            *value = Value::Bool(s == "true");
        } else if allows("array") {
            *value = Value::Array(vec![value.take()]);
        }
    }
    match value {
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items.iter_mut().for_each(|i| coerce(i, item_schema, root));
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let sub =
                    schema.get("properties").and_then(|p| p.get(k)).or_else(|| schema.get("additionalProperties"));
                if let Some(sub) = sub.filter(|s| s.is_object()) {
                    coerce(v, sub, root);
                }
            }
        }
        _ => {}
    }
}

/// Follows a local `$ref` (`#/$defs/Name` or `#/definitions/Name`).
fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/")
            .and_then(|path| path.split('/').try_fold(root, |node, part| node.get(part)))
            .unwrap_or(schema),
        None => schema,
    }
}

fn is_null_type(schema: &Value) -> bool {
    schema.get("type").is_some_and(|t| t == "null")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deep_and_long_field_names_are_refused_naming_the_field() {
        for key in ["a[]".repeat(100_000), "a.".repeat(100_000) + "a", "config.a.b.c.d.e.f.g.h".to_string()] {
            let err = form(format!("{key}=1").as_bytes()).unwrap_err();
            assert_eq!(err.status, 400);
            let text = err.body.to_string();
            assert!(text.contains("at most") && text.len() < 400, "{text}");
        }
        assert!(form(b"config.limits.sms.minute=1&paths[]=/a").is_ok(), "Kong's own names still pass");
    }

    #[test]
    fn curl_form_bodies_become_nested_json() {
        let body = b"name=r&paths[]=/a&paths[]=/b&methods=GET&methods=POST&service.id=abc&config.allow[]=x\
                     &config.minute=100&headers.x-v=1&path=";
        let parsed = form(body).unwrap();
        assert_eq!(
            Value::Object(parsed),
            json!({"name": "r", "paths": ["/a", "/b"], "methods": ["GET", "POST"], "service": {"id": "abc"},
                   "config": {"allow": ["x"], "minute": "100"}, "headers": {"x-v": "1"}, "path": null})
        );
    }

    #[test]
    fn form_values_take_the_schema_types() {
        let schema = json!({
            "type": "object",
            "properties": {
                "port": {"type": ["integer", "null"]},
                "strip_path": {"type": "boolean"},
                "paths": {"type": "array", "items": {"type": "string"}},
                "headers": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                "limit": {"$ref": "#/$defs/Limit"},
                "name": {"type": "string"}
            },
            "$defs": {"Limit": {"anyOf": [{"type": "number"}, {"type": "null"}]}}
        });
        let mut v = json!({"port": "8080", "strip_path": "false", "paths": "/x", "headers": {"x-v": "1"},
                           "limit": "2.5", "name": "123"});
        coerce(&mut v, &schema, &schema);
        assert_eq!(
            v,
            json!({"port": 8080, "strip_path": false, "paths": ["/x"], "headers": {"x-v": ["1"]},
                   "limit": 2.5, "name": "123"})
        );
    }

    #[test]
    fn malformed_form_keys_name_the_field() {
        let err = form(b"paths[x]=/a").unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.body["fields"]["paths[x]"].is_string(), "{}", err.body);
    }
}
