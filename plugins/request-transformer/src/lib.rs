//! request-transformer: changes the request before it goes upstream, as Kong's plugin of the same
//! name does: the method, the path, then headers, the body (form or JSON) and the query string,
//! each by `remove`, `rename`, `replace`, `add` and `append`, in that order.

mod pairs;
mod template;

use pairs::Pairs;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use template::Template;
use wasmgate_plugin_sdk::transform::{Operations, split_entry};
use wasmgate_plugin_sdk::{Action, ConfigNeeds, Phases, Plugin, export_plugin, request};

/// Body parameters, headers and query arguments: names for `remove`, `name:value` (`old:new`
/// for `rename`) for the others; values may be templates.
#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
struct Lists {
    /// Body parameters.
    #[serde(default)]
    body: Vec<String>,
    /// Headers.
    #[serde(default)]
    headers: Vec<String>,
    /// Query arguments.
    #[serde(default)]
    querystring: Vec<String>,
}

/// `replace`: entries, and the path.
#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
struct Replace {
    /// Body parameters.
    #[serde(default)]
    body: Vec<String>,
    /// Headers.
    #[serde(default)]
    headers: Vec<String>,
    /// Query arguments.
    #[serde(default)]
    querystring: Vec<String>,
    /// The path sent upstream (a template).
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
}

/// Configuration of request-transformer.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The method sent upstream. GET, HEAD and TRACE move a form body's parameters into the
    /// query string.
    http_method: Option<String>,
    /// Remove these, if present.
    #[serde(default)]
    remove: Lists,
    /// `old:new`: rename, if present.
    #[serde(default)]
    rename: Lists,
    /// `name:value`: set, if present; and `uri`.
    #[serde(default)]
    replace: Replace,
    /// `name:value`: set, if absent.
    #[serde(default)]
    add: Lists,
    /// `name:value`: add one more value.
    #[serde(default)]
    append: Lists,
    #[serde(skip)]
    #[schemars(skip)]
    compiled: Compiled,
}

/// Entries parsed once: (name, value template).
type Ops = Vec<(String, Template)>;

/// The operations of one place (headers, query string or body).
type Place = Operations<String, Template>;

/// Applying them, to pairs or to a JSON object's top-level members.
trait Apply {
    fn apply(&self, pairs: &mut Pairs, has_content: bool);
    fn apply_json(&self, object: &mut Map<String, Value>, has_content: bool);
}

impl Apply for Place {
    /// The five operations on pairs; `has_content`: remove, rename and replace apply only then.
    fn apply(&self, pairs: &mut Pairs, has_content: bool) {
        if has_content {
            self.remove.iter().for_each(|n| pairs::remove(pairs, n));
            self.rename.iter().for_each(|(o, n)| pairs::rename(pairs, o, n));
            self.replace.iter().for_each(|(n, t)| pairs::replace(pairs, n, &t.render()));
        }
        self.add.iter().for_each(|(n, t)| pairs::add(pairs, n, &t.render()));
        self.append.iter().for_each(|(n, t)| pairs::append(pairs, n, &t.render()));
    }

    /// The same on a JSON object's top-level members (values are strings; append makes arrays).
    fn apply_json(&self, object: &mut Map<String, Value>, has_content: bool) {
        if has_content {
            self.remove.iter().for_each(|n| drop(object.remove(n)));
            for (old, new) in &self.rename {
                if old != new
                    && let Some(v) = object.remove(old)
                {
                    object.insert(new.clone(), v);
                }
            }
            for (n, t) in &self.replace {
                if let Some(v) = object.get_mut(n) {
                    *v = Value::String(t.render());
                }
            }
        }
        for (n, t) in &self.add {
            object.entry(n.clone()).or_insert_with(|| Value::String(t.render()));
        }
        for (n, t) in &self.append {
            let value = Value::String(t.render());
            match object.get_mut(n) {
                Some(Value::Array(items)) => items.push(value),
                Some(current @ Value::String(_)) => *current = Value::Array(vec![current.take(), value]),
                _ => drop(object.insert(n.clone(), Value::Array(vec![value]))),
            }
        }
    }
}

#[derive(Default)]
struct Compiled {
    headers: Place,
    querystring: Place,
    body: Place,
    uri: Option<Template>,
}

fn valid_header(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses one place's entries; errors name the field (`config.add.headers[0]`).
fn place(name: &str, remove: &[String], rename: &[String], ops: [(&str, &[String]); 3]) -> Result<Place, String> {
    let header = name == "headers";
    let at = |op: &str, i: usize| format!("config.{op}.{name}[{i}]");
    let valued = |op: &str, entries: &[String]| -> Result<Vec<(String, String)>, String> {
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| match split_entry(e) {
                (n, None | Some("")) => Err(format!("{}: key '{n}' has no value; write name:value", at(op, i))),
                (n, _) if header && !valid_header(n) => Err(format!("{}: '{n}' is not a valid header", at(op, i))),
                (n, Some(v)) => Ok((n.to_string(), v.to_string())),
            })
            .collect()
    };
    if let Some((i, bad)) = remove.iter().enumerate().find(|(_, n)| header && !valid_header(n)) {
        return Err(format!("{}: '{bad}' is not a valid header", at("remove", i)));
    }
    let rename = valued("rename", rename)?;
    if let Some((o, n)) = rename.iter().find(|(_, n)| header && !valid_header(n)) {
        return Err(format!("config.rename.headers: '{n}' (the new name of '{o}') is not a valid header"));
    }
    let mut templated = ops.into_iter().map(|(op, entries)| {
        valued(op, entries)?
            .into_iter()
            .map(|(n, v)| Ok((n, Template::parse(&v).map_err(|e| format!("config.{op}.{name}: {e}"))?)))
            .collect::<Result<Ops, String>>()
    });
    let mut next = || templated.next().expect("three lists");
    Ok(Place { remove: remove.to_vec(), rename, replace: next()?, add: next()?, append: next()? })
}

/// Kong's body kinds, by `Content-Type`.
#[derive(PartialEq)]
enum BodyKind {
    Json,
    Form,
}

fn body_kind() -> Option<BodyKind> {
    let content_type = request::header("content-type")?.to_ascii_lowercase();
    if content_type.contains("application/json") {
        Some(BodyKind::Json)
    } else if content_type.contains("application/x-www-form-urlencoded") {
        Some(BodyKind::Form)
    } else {
        None
    }
}

/// Whether the new method moves a form body into the query string.
fn moves_body_to_query(method: Option<&str>) -> bool {
    matches!(method, Some("GET" | "HEAD" | "TRACE"))
}

struct RequestTransformer;

impl RequestTransformer {
    fn headers(place: &Place) {
        for name in &place.remove {
            request::remove_header(name);
        }
        for (old, new) in &place.rename {
            let values = request::header_values(old);
            if values.is_empty() || old.eq_ignore_ascii_case(new) {
                continue;
            }
            request::remove_header(old);
            request::remove_header(new);
            values.iter().for_each(|v| request::add_header(new, v));
        }
        for (name, t) in &place.replace {
            if request::header(name).is_some() || name.eq_ignore_ascii_case("host") {
                request::set_header(name, &t.render());
            }
        }
        for (name, t) in &place.add {
            if request::header(name).is_none() && !name.eq_ignore_ascii_case("host") {
                request::set_header(name, &t.render());
            }
        }
        for (name, t) in &place.append {
            request::add_header(name, &t.render());
        }
    }

    /// The body: a new one when it changed.
    fn body(place: &Place, kind: &BodyKind) -> Option<Vec<u8>> {
        let raw = request::body().unwrap_or_default();
        let has_content = !raw.is_empty();
        match kind {
            BodyKind::Form => {
                let mut pairs = pairs::decode(std::str::from_utf8(&raw).ok()?);
                place.apply(&mut pairs, has_content);
                Some(pairs::encode(&pairs).into_bytes())
            }
            BodyKind::Json => {
                let mut value =
                    if has_content { serde_json::from_slice(&raw).ok()? } else { Value::Object(Map::new()) };
                place.apply_json(value.as_object_mut()?, has_content);
                serde_json::to_vec(&value).ok()
            }
        }
    }
}

impl Plugin for RequestTransformer {
    type Config = Config;
    const PRIORITY: i32 = 801;
    const PHASES: Phases = Phases::ACCESS;

    fn configure(config: &mut Config) -> Result<ConfigNeeds, String> {
        if let Some(method) = &mut config.http_method {
            *method = method.to_ascii_uppercase();
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!("config.http_method: {method:?} is not an HTTP method (letters only, like GET)"));
            }
        }
        let (r, n, p, a, x) = (&config.remove, &config.rename, &config.replace, &config.add, &config.append);
        config.compiled = Compiled {
            headers: place(
                "headers",
                &r.headers,
                &n.headers,
                [("replace", &p.headers), ("add", &a.headers), ("append", &x.headers)],
            )?,
            querystring: place(
                "querystring",
                &r.querystring,
                &n.querystring,
                [("replace", &p.querystring), ("add", &a.querystring), ("append", &x.querystring)],
            )?,
            body: place("body", &r.body, &n.body, [("replace", &p.body), ("add", &a.body), ("append", &x.body)])?,
            uri: p.uri.as_deref().map(Template::parse).transpose().map_err(|e| format!("config.replace.uri: {e}"))?,
        };
        let c = &config.compiled;
        Ok(ConfigNeeds { request_body: !c.body.is_empty() || moves_body_to_query(config.http_method.as_deref()) })
    }

    fn access(config: &Config) -> Result<Action, String> {
        let c = &config.compiled;
        if let Some(uri) = &c.uri {
            request::set_path(&uri.render());
        }
        let mut query: Option<Pairs> = None;
        if let Some(method) = &config.http_method {
            request::set_method(method)?;
            if moves_body_to_query(Some(method)) && body_kind() == Some(BodyKind::Form) {
                let body = request::body().unwrap_or_default();
                let mut pairs = pairs::decode(&request::query().unwrap_or_default());
                pairs.extend(pairs::decode(&String::from_utf8_lossy(&body)));
                query = Some(pairs);
            }
        }
        Self::headers(&c.headers);
        if !c.body.is_empty()
            && let Some(kind) = body_kind()
            && let Some(body) = Self::body(&c.body, &kind)
        {
            request::set_body(&body);
        }
        if !c.querystring.is_empty() {
            let mut pairs = query.take().unwrap_or_else(|| pairs::decode(&request::query().unwrap_or_default()));
            c.querystring.apply(&mut pairs, true);
            query = Some(pairs);
        }
        if let Some(pairs) = query {
            let encoded = pairs::encode(&pairs);
            request::set_query((!encoded.is_empty()).then_some(encoded.as_str()));
        }
        Ok(Action::Proceed)
    }
}

export_plugin!(RequestTransformer);
