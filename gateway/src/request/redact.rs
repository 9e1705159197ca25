//! Credentials that log records write as `REDACTED`: `Authorization` and `Proxy-Authorization`
//! always, and the headers, query arguments and cookies that configured plugins declare they read
//! (key-auth's `key_names`, say), whatever those plugins' `hide_credentials` says. Bodies are
//! never logged, so a credential read from a body needs nothing here.

use std::borrow::Cow;

/// The places whose values log records hide.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Redactions {
    /// Lower-case header names.
    headers: Vec<String>,
    /// Query argument names (case-sensitive, as plugins read them).
    query: Vec<String>,
    /// Cookie names.
    cookies: Vec<String>,
}

/// What a hidden value is written as.
pub(crate) const REDACTED: &str = "REDACTED";

fn add(list: &mut Vec<String>, name: String) {
    if !list.contains(&name) {
        list.push(name);
    }
}

impl Redactions {
    /// Hides header `name`.
    pub(crate) fn header(&mut self, name: &str) {
        add(&mut self.headers, name.to_ascii_lowercase());
    }

    /// Hides query argument `name`.
    pub(crate) fn query_arg(&mut self, name: &str) {
        add(&mut self.query, name.to_string());
    }

    /// Hides cookie `name`.
    pub(crate) fn cookie(&mut self, name: &str) {
        add(&mut self.cookies, name.to_string());
    }

    /// Adds what `other` hides.
    pub(crate) fn merge(&mut self, other: &Redactions) {
        for (mine, theirs) in
            [(&mut self.headers, &other.headers), (&mut self.query, &other.query), (&mut self.cookies, &other.cookies)]
        {
            for name in theirs {
                add(mine, name.clone());
            }
        }
    }

    /// Whether header `name` (lower-case) is hidden whole.
    pub(crate) fn hides_header(&self, name: &str) -> bool {
        name == "authorization" || name == "proxy-authorization" || self.headers.iter().any(|h| h == name)
    }

    /// Whether query argument `name` (decoded) is hidden.
    pub(crate) fn hides_arg(&self, name: &str) -> bool {
        self.query.iter().any(|q| q == name)
    }

    /// A `Cookie` header value with the hidden cookies' values replaced.
    pub(crate) fn cookie_header<'a>(&self, value: &'a str) -> Cow<'a, str> {
        if self.cookies.is_empty() {
            return Cow::Borrowed(value);
        }
        replace_values(value, ";", |name| self.cookies.iter().any(|c| c == name.trim()))
    }

    /// A path with its query (`/p?a=1&apikey=k`) with the hidden arguments' values replaced.
    pub(crate) fn uri<'a>(&self, uri: &'a str) -> Cow<'a, str> {
        let Some((path, query)) = uri.split_once('?').filter(|_| !self.query.is_empty()) else {
            return Cow::Borrowed(uri);
        };
        let decoded =
            |name: &str| percent_encoding::percent_decode_str(&name.replace('+', " ")).decode_utf8_lossy().into_owned();
        match replace_values(query, "&", |name| self.hides_arg(&decoded(name))) {
            Cow::Borrowed(_) => Cow::Borrowed(uri),
            Cow::Owned(query) => Cow::Owned(format!("{path}?{query}")),
        }
    }
}

/// `text` as `name=value` pieces joined by `separator`, with the values of the pieces whose name
/// `hide` picks written as [`REDACTED`]; borrowed when nothing is hidden.
fn replace_values<'a>(text: &'a str, separator: &str, hide: impl Fn(&str) -> bool) -> Cow<'a, str> {
    let hidden = |piece: &str| piece.split_once('=').is_some_and(|(name, _)| hide(name));
    if !text.split(separator).any(hidden) {
        return Cow::Borrowed(text);
    }
    let pieces: Vec<String> = text
        .split(separator)
        .map(|piece| match piece.split_once('=') {
            Some((name, _)) if hidden(piece) => format!("{name}={REDACTED}"),
            _ => piece.to_string(),
        })
        .collect();
    Cow::Owned(pieces.join(separator))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_declared_places_and_the_authorization_headers() {
        let mut r = Redactions::default();
        r.header("ApiKey");
        r.query_arg("apikey");
        r.cookie("session");
        assert!(r.hides_header("apikey") && r.hides_header("authorization") && r.hides_header("proxy-authorization"));
        assert!(!r.hides_header("x-other"));
        assert_eq!(r.uri("/p?a=1&apikey=k&b"), "/p?a=1&apikey=REDACTED&b");
        assert_eq!(r.uri("/p?api%6Bey=k"), "/p?api%6Bey=REDACTED", "names are compared decoded");
        assert_eq!(r.uri("/p?a=1"), "/p?a=1");
        assert_eq!(r.cookie_header("a=1; session=s3cret"), "a=1; session=REDACTED");
        assert!(matches!(Redactions::default().uri("/p?apikey=k"), Cow::Borrowed(_)));
        let mut merged = Redactions::default();
        merged.merge(&r);
        merged.merge(&r);
        assert_eq!(merged, r);
    }
}
