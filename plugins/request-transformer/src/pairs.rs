//! Kong's five operations on name/value pairs (a query string, a form body): remove, rename,
//! replace, add and append, in that order. Order of the pairs is kept.

/// Decoded `name=value` pairs.
pub type Pairs = Vec<(String, String)>;

/// Parses an `application/x-www-form-urlencoded` text.
pub fn decode(text: &str) -> Pairs {
    form_urlencoded::parse(text.as_bytes()).into_owned().collect()
}

/// Encodes pairs as `application/x-www-form-urlencoded`.
pub fn encode(pairs: &Pairs) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

fn has(pairs: &Pairs, name: &str) -> bool {
    pairs.iter().any(|(k, _)| k == name)
}

pub fn remove(pairs: &mut Pairs, name: &str) {
    pairs.retain(|(k, _)| k != name);
}

/// Renames `old` to `new` when present (replacing what `new` had).
pub fn rename(pairs: &mut Pairs, old: &str, new: &str) {
    if old == new || !has(pairs, old) {
        return;
    }
    remove(pairs, new);
    pairs.iter_mut().filter(|(k, _)| k == old).for_each(|(k, _)| *k = new.to_string());
}

/// Gives `name` this one value, when it is present.
pub fn replace(pairs: &mut Pairs, name: &str, value: &str) {
    let Some(first) = pairs.iter().position(|(k, _)| k == name) else { return };
    pairs[first].1 = value.to_string();
    let mut seen = 0;
    pairs.retain(|(k, _)| k != name || (seen += 1, seen == 1).1);
}

/// Adds `name` when absent.
pub fn add(pairs: &mut Pairs, name: &str, value: &str) {
    if !has(pairs, name) {
        pairs.push((name.into(), value.into()));
    }
}

/// Adds one more value of `name`.
pub fn append(pairs: &mut Pairs, name: &str, value: &str) {
    pairs.push((name.into(), value.into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations() {
        let mut p = decode("a=1&b=2&a=3&c=x%20y");
        replace(&mut p, "a", "9");
        assert_eq!(encode(&p), "a=9&b=2&c=x+y");
        rename(&mut p, "b", "c");
        assert_eq!(encode(&p), "a=9&c=2");
        add(&mut p, "a", "0");
        add(&mut p, "d", "4");
        append(&mut p, "a", "5");
        remove(&mut p, "c");
        assert_eq!(encode(&p), "a=9&d=4&a=5");
    }
}
