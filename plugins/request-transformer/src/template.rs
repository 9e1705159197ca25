//! Values with Kong's `$(...)` templates: `$(headers.x_name)`, `$(headers["x-name"])`,
//! `$(query_params.name)`, `$(shared.name)`, each optionally `or 'default'`. Parsed once, when
//! the configuration is; rendered per request from the request.

use wasmgate_plugin_sdk::{context, request};

/// Where a template expression reads from.
#[derive(Debug, PartialEq)]
enum Source {
    Header(String),
    Query(String),
    Shared(String),
}

/// A piece of a template.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Value { source: Source, default: String },
}

/// A parsed template.
#[derive(Debug, PartialEq)]
pub struct Template(Vec<Piece>);

impl Template {
    /// Parses `text`; an error says which expression is not supported.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("$(") {
            let end =
                rest[start..].find(')').map(|e| start + e).ok_or_else(|| format!("'{text}' has an unclosed $("))?;
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].into()));
            }
            pieces.push(expression(&rest[start + 2..end])?);
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.into()));
        }
        Ok(Template(pieces))
    }

    /// The value for this request.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Value { source, default } => {
                    let value = match source {
                        Source::Header(n) => request::header(n),
                        Source::Query(n) => request::query_arg(n),
                        Source::Shared(n) => context::shared_get(n),
                    };
                    out.push_str(value.as_deref().unwrap_or(default));
                }
            }
        }
        out
    }
}

const SUPPORTED: &str = "supported are headers.NAME, query_params.NAME and shared.NAME (or NAME in [\"...\"]), \
                         optionally followed by or 'default'";

fn expression(expr: &str) -> Result<Piece, String> {
    let unsupported = || format!("'$({expr})' is not a supported template; {SUPPORTED}");
    let (path, default) = match expr.split_once(" or ") {
        Some((p, d)) => (p.trim(), literal(d.trim()).ok_or_else(unsupported)?),
        None => (expr.trim(), String::new()),
    };
    let (table, key) = match path.split_once('[') {
        Some((t, k)) => (t, literal(k.strip_suffix(']').ok_or_else(unsupported)?).ok_or_else(unsupported)?),
        None => {
            let (t, k) = path.split_once('.').ok_or_else(unsupported)?;
            // `headers.x_name` is header `x-name`, as in Kong.
            (t, if t == "headers" { k.replace('_', "-") } else { k.to_string() })
        }
    };
    let source = match table {
        "headers" => Source::Header(key.to_ascii_lowercase()),
        "query_params" => Source::Query(key),
        "shared" => Source::Shared(key),
        _ => return Err(unsupported()),
    };
    Ok(Piece::Value { source, default })
}

/// A quoted Lua string literal's content.
fn literal(text: &str) -> Option<String> {
    let inner = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\''));
    inner.or_else(|| text.strip_prefix('"').and_then(|t| t.strip_suffix('"'))).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(Template::parse("plain").unwrap(), Template(vec![Piece::Text("plain".into())]));
        let t = Template::parse("v=$(headers.x_user or 'anon')!").unwrap();
        assert_eq!(t.0[1], Piece::Value { source: Source::Header("x-user".into()), default: "anon".into() }, "{t:?}");
        let t = Template::parse(r#"$(query_params["a_b"])"#).unwrap();
        assert_eq!(t.0[0], Piece::Value { source: Source::Query("a_b".into()), default: String::new() });
        assert!(Template::parse("$(os.execute('x'))").is_err());
        assert!(Template::parse("$(headers.a").is_err());
    }
}
