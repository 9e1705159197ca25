//! A plugin's configuration reference as Markdown, rendered from the JSON Schema the plugin
//! exports, so that its README cannot drift from its code (`wasmgate plugin-doc FILE.wasm`).

use serde_json::Value;
use std::fmt::Write;

/// Defaults longer than this are shown below the table instead of in it.
const INLINE_DEFAULT: usize = 48;

/// The configuration tables (the config, then each nested object type) and long defaults.
pub fn config_markdown(schema: &str) -> Result<String, String> {
    let schema: Value = serde_json::from_str(schema).map_err(|e| format!("the plugin's schema is not JSON: {e}"))?;
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    let mut out = String::new();
    let mut nested: Vec<String> = Vec::new();
    let mut long_defaults = Vec::new();
    table(&mut out, &schema, &defs, &mut nested, &mut long_defaults);
    let mut i = 0;
    while let Some(name) = nested.get(i).cloned() {
        i += 1;
        let def = &defs[&name];
        let _ = write!(
            out,
            "\n`{name}`: {}\n\n",
            one_line(def.get("description").and_then(Value::as_str).unwrap_or_default())
        );
        table(&mut out, def, &defs, &mut nested, &mut long_defaults);
    }
    for (field, default) in long_defaults {
        let pretty = serde_json::to_string_pretty(&default).unwrap_or_default();
        let _ = write!(out, "\nDefault of `{field}`:\n\n```json\n{pretty}\n```\n");
    }
    Ok(out)
}

fn table(
    out: &mut String,
    object: &Value,
    defs: &Value,
    nested: &mut Vec<String>,
    long_defaults: &mut Vec<(String, Value)>,
) {
    out.push_str("| Field | Type | Default | Description |\n|---|---|---|---|\n");
    let Some(props) = object.get("properties").and_then(Value::as_object) else { return };
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (field, prop) in props {
        let ty = type_name(prop, defs, nested);
        let default = match prop.get("default") {
            Some(d) => {
                let compact = d.to_string();
                if compact.len() > INLINE_DEFAULT {
                    long_defaults.push((field.clone(), d.clone()));
                    "see below".to_string()
                } else {
                    format!("`{compact}`")
                }
            }
            None if required.contains(&field.as_str()) => "required".to_string(),
            None => "none".to_string(),
        };
        let description = one_line(prop.get("description").and_then(Value::as_str).unwrap_or_default());
        let _ = writeln!(out, "| `{field}` | {ty} | {default} | {} |", description.replace('|', "\\|"));
    }
}

fn type_name(prop: &Value, defs: &Value, nested: &mut Vec<String>) -> String {
    if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        let def = &defs[name];
        if let Some(values) = enum_values(def) {
            return format!("one of {values}");
        }
        if !nested.iter().any(|n| n == name) {
            nested.push(name.to_string());
        }
        return format!("`{name}`");
    }
    if let Some(values) = enum_values(prop) {
        return format!("one of {values}");
    }
    match prop.get("type") {
        Some(Value::String(t)) if t == "array" => {
            format!("list of {}", prop.get("items").map_or("values".to_string(), |i| type_name(i, defs, nested)))
        }
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => {
            let names: Vec<&str> = types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
            match names.as_slice() {
                ["array"] => format!(
                    "list of {}",
                    prop.get("items").map_or("values".to_string(), |i| type_name(i, defs, nested))
                ),
                _ => names.join(" or "),
            }
        }
        _ => "any".to_string(),
    }
}

/// `` `a`, `b` `` for a string enum (`enum` or `oneOf` of `const`s).
fn enum_values(def: &Value) -> Option<String> {
    let values: Vec<String> = match (def.get("enum"), def.get("oneOf")) {
        (Some(Value::Array(v)), _) => v.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        (_, Some(Value::Array(v))) => {
            v.iter().filter_map(|o| o.get("const").and_then(Value::as_str)).map(str::to_string).collect()
        }
        _ => return None,
    };
    (!values.is_empty()).then(|| values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", "))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::config_markdown;

    #[test]
    fn renders_fields_enums_nested_types_and_defaults() {
        let schema = serde_json::json!({
            "type": "object",
            "required": ["canary"],
            "properties": {
                "canary": {"type": "string", "description": "Upstream\nname."},
                "limit_by": {"$ref": "#/$defs/By", "default": "ip", "description": "Who."},
                "roles": {"type": "array", "items": {"$ref": "#/$defs/Role"}, "default": [{"name": "a-very-long-default-role-name", "x": 12345}]},
                "share": {"type": ["number", "null"], "description": "A | B"}
            },
            "$defs": {
                "By": {"oneOf": [{"const": "ip"}, {"const": "consumer"}]},
                "Role": {"type": "object", "description": "A role.", "properties": {"name": {"type": "string"}}}
            }
        });
        let md = config_markdown(&schema.to_string()).unwrap();
        assert!(md.contains("| `canary` | string | required | Upstream name. |"), "{md}");
        assert!(md.contains("| `limit_by` | one of `ip`, `consumer` | `\"ip\"` | Who. |"), "{md}");
        assert!(md.contains("| `roles` | list of `Role` | see below |"), "{md}");
        assert!(md.contains("| `share` | number | none | A \\| B |"), "{md}");
        assert!(md.contains("`Role`: A role.") && md.contains("| `name` | string | none |"), "{md}");
        assert!(md.contains("Default of `roles`:"), "{md}");
    }
}
