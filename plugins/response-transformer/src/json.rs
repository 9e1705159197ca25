//! The JSON body operations, on dotted paths (`data.user.email`; a number indexes an array).

use serde_json::Value;

/// A JSON path: its segments.
pub type Path = Vec<String>;

/// Splits `a.b.c` into segments.
pub fn path(text: &str) -> Path {
    text.split('.').map(str::to_string).collect()
}

/// The value at `path`.
pub fn get_mut<'v>(root: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(root, |v, seg| match v {
        Value::Object(m) => m.get_mut(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
        _ => None,
    })
}

/// The object holding the last segment, and that segment.
fn parent<'v, 'p>(
    root: &'v mut Value,
    path: &'p [String],
) -> Option<(&'v mut serde_json::Map<String, Value>, &'p str)> {
    let (last, up) = path.split_last()?;
    get_mut(root, up)?.as_object_mut().map(|m| (m, last.as_str()))
}

/// Removes the value at `path`, returning it.
pub fn remove(root: &mut Value, path: &[String]) -> Option<Value> {
    let (object, key) = parent(root, path)?;
    object.remove(key)
}

/// Sets the value at `path` (its parent object must exist).
pub fn set(root: &mut Value, path: &[String], value: Value) {
    if let Some((object, key)) = parent(root, path) {
        object.insert(key.to_string(), value);
    }
}

/// Whether a value counts as present (Lua's truthiness: not absent, null or false).
pub fn truthy(v: Option<&Value>) -> bool {
    !matches!(v, None | Some(Value::Null) | Some(Value::Bool(false)))
}

/// Appends: a string becomes `[string, value]`, an array grows, anything else becomes `[value]`.
pub fn append(root: &mut Value, path: &[String], value: Value) {
    match get_mut(root, path) {
        Some(Value::Array(items)) => items.push(value),
        Some(current @ Value::String(_)) => *current = Value::Array(vec![current.take(), value]),
        _ => set(root, path, Value::Array(vec![value])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        let mut v = json!({"a": {"b": [{"c": 1}], "s": "x"}, "t": 1});
        assert_eq!(get_mut(&mut v, &path("a.b.0.c")), Some(&mut json!(1)));
        assert_eq!(remove(&mut v, &path("a.b.0.c")), Some(json!(1)));
        set(&mut v, &path("a.n"), json!(true));
        append(&mut v, &path("a.s"), json!("y"));
        append(&mut v, &path("a.new"), json!("z"));
        set(&mut v, &path("missing.x"), json!(1));
        assert_eq!(v, json!({"a": {"b": [{}], "s": ["x", "y"], "n": true, "new": ["z"]}, "t": 1}));
    }
}
