//! Request-path normalisation and the upstream path (strip_path, service.path joining).

use crate::config::EscapedSlashes;
use std::borrow::Cow;

/// A path the gateway refuses (400), with why.
pub(crate) type Refused = &'static str;

/// Normalises a request path as [`normalize`] does, after two checks that keep what is
/// forwarded what was matched (a backend may read a path differently than the router):
///
/// - `%2F`, `%5C` and `\` are refused, decoded to `/`, or kept as they are (`escaped_slashes`);
/// - a dot segment with `;` parameters (`/public/..;/admin`, which Tomcat and Spring read as
///   `..`) is always refused.
pub(crate) fn normalize_checked(path: &str, escaped_slashes: EscapedSlashes) -> Result<Cow<'_, str>, Refused> {
    let bytes = path.as_bytes();
    let has_escaped_slash = memchr::memchr(b'\\', bytes).is_some()
        || memchr::memchr_iter(b'%', bytes)
            .any(|i| matches!(bytes.get(i + 1..i + 3), Some([b'2', b'f' | b'F'] | [b'5', b'c' | b'C'])));
    let normalized = match (has_escaped_slash, escaped_slashes) {
        (true, EscapedSlashes::Reject) => {
            return Err("encoded slashes and backslashes are not allowed in the path (path_escaped_slashes)");
        }
        (true, EscapedSlashes::Decode) => Cow::Owned(normalize(&decode_slashes(path)).into_owned()),
        _ => normalize(path),
    };
    if memchr::memchr(b';', normalized.as_bytes()).is_some()
        && normalized
            .split('/')
            .any(|segment| matches!(segment.split(';').next(), Some("." | "..")) && segment.contains(';'))
    {
        return Err("a dot segment with parameters (such as \"..;\") is not allowed in the path");
    }
    Ok(normalized)
}

/// `%2F`, `%5C` and `\` as `/`.
fn decode_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.find(['%', '\\']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let escaped = tail.get(..3).is_some_and(|e| e.eq_ignore_ascii_case("%2f") || e.eq_ignore_ascii_case("%5c"));
        let taken = match (tail.starts_with('\\'), escaped) {
            (true, _) => 1,
            (false, true) => 3,
            (false, false) => {
                out.push('%');
                rest = &tail[1..];
                continue;
            }
        };
        out.push('/');
        rest = &tail[taken..];
    }
    out.push_str(rest);
    out
}

/// Normalises a request path as Kong does before matching and proxying: percent-escapes of
/// unreserved characters are decoded (others keep their escape, with upper-case hex), runs of `/`
/// are merged, and `.` / `..` segments are resolved. Most paths need none of it and are borrowed.
pub(crate) fn normalize(path: &str) -> Cow<'_, str> {
    if !needs_work(path.as_bytes()) {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let merged = merge_slashes(&decoded);
    Cow::Owned(remove_dot_segments(&merged))
}

fn needs_work(p: &[u8]) -> bool {
    p.iter().enumerate().any(|(i, &b)| b == b'%' || (b == b'/' && matches!(p.get(i + 1), Some(b'/' | b'.'))))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn decode_unreserved(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            let c = h * 16 + l;
            if is_unreserved(c) {
                out.push(c as char);
            } else {
                out.push('%');
                out.push(b[i + 1].to_ascii_uppercase() as char);
                out.push(b[i + 2].to_ascii_uppercase() as char);
            }
            i += 3;
            continue;
        }
        // Copy one UTF-8 character (the path came from a &str, so boundaries are valid).
        let ch_len = utf8_len(b[i]);
        out.push_str(&path[i..i + ch_len]);
        i += ch_len;
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut prev_slash = false;
    for c in path.chars() {
        if c == '/' && prev_slash {
            continue;
        }
        prev_slash = c == '/';
        out.push(c);
    }
    out
}

/// RFC 3986 section 5.2.4, on a path whose slashes are already merged.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let ends_with_dir = path.ends_with("/.") || path.ends_with("/..") || path.ends_with('/');
    for seg in path.split('/').skip(usize::from(path.starts_with('/'))) {
        match seg {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if ends_with_dir && !out.ends_with('/') {
        out.push('/');
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The path sent upstream, following Kong's rules: `strip_path` removes `stripped` (the matched
/// prefix, or the whole regex match) from the front of the normalised request path, and the rest is
/// joined to the service's path without doubling or losing slashes.
pub(crate) fn upstream_path(req_path: &str, stripped: Option<&str>, strip_path: bool, base: &str) -> String {
    let base = if base.is_empty() { "/" } else { base };
    let rest = match stripped.filter(|_| strip_path) {
        Some(prefix) => req_path.get(prefix.len()..).unwrap_or(""),
        None => req_path.get(1..).unwrap_or(""),
    };
    let rest = sanitize_rest(rest);
    let req_has_trailing_slash = req_path.ends_with('/');

    if base.ends_with('/') {
        if !strip_path {
            return format!("{base}{}", &req_path[1.min(req_path.len())..]);
        }
        if rest.is_empty() {
            return if base == "/" || req_has_trailing_slash {
                base.to_string()
            } else {
                base.strip_suffix('/').unwrap_or(base).to_string()
            };
        }
        if let Some(r) = rest.strip_prefix('/') {
            return format!("{base}{r}");
        }
        return format!("{base}{rest}");
    }

    if !strip_path {
        return if req_path == "/" { base.to_string() } else { format!("{base}{req_path}") };
    }
    if rest.is_empty() {
        return if req_path.len() > 1 && req_has_trailing_slash { format!("{base}/") } else { base.to_string() };
    }
    if rest.starts_with('/') { format!("{base}{rest}") } else { format!("{base}/{rest}") }
}

/// Drops a leading `./` or `../` (or a lone `.`/`..`) left over after stripping.
fn sanitize_rest(rest: &str) -> &str {
    match rest {
        "." | ".." => "",
        r => r.strip_prefix("./").or_else(|| r.strip_prefix("../")).unwrap_or(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_slashes_and_dot_segments_with_parameters() {
        use EscapedSlashes::*;
        for refused in ["/a%2Fb", "/a%2fb", "/a%5Cb", "/a\\b"] {
            assert!(normalize_checked(refused, Reject).is_err(), "{refused}");
            assert_eq!(normalize_checked(refused, Keep).unwrap(), refused.replace("%2f", "%2F").replace("%5c", "%5C"));
            assert_eq!(normalize_checked(refused, Decode).unwrap(), "/a/b", "{refused}");
        }
        assert_eq!(normalize_checked("/a/%2F%2f/../b", Decode).unwrap(), "/b", "decoded, then resolved");
        for traversal in ["/public/..;/admin", "/public/.;x/admin", "/public/..;jsessionid=1/admin"] {
            for mode in [Reject, Decode, Keep] {
                assert!(normalize_checked(traversal, mode).is_err(), "{traversal}");
            }
        }
        for fine in ["/public/x;jsessionid=1", "/a;b/c", "/files/...;/x", "/plain"] {
            assert!(normalize_checked(fine, Reject).is_ok(), "{fine}");
        }
    }

    #[test]
    fn normalisation() {
        let cases = [
            ("/plain/path", "/plain/path"),
            ("/foo/a/../bar", "/foo/bar"),
            ("/foo//bar", "/foo/bar"),
            ("/foo/./bar", "/foo/bar"),
            ("/h%65llo/anything/a/../b", "/hello/anything/b"),
            ("/route%2E/req", "/route./req"),
            ("/route%2e%2E/req", "/route../req"),
            ("/endel%2fst", "/endel%2Fst"),
            ("/anything/./a/../wor%6cd/a/../b", "/anything/world/b"),
            ("/anything/world/cat%20and%20dog", "/anything/world/cat%20and%20dog"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/a/%2E%2E/b", "/b"),
            ("/caf\u{e9}/%7Euser", "/caf\u{e9}/~user"),
            ("/bad%zzescape%", "/bad%zzescape%"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "normalize({input:?})");
        }
        assert!(matches!(normalize("/a/b.c/d"), Cow::Borrowed(_)));
    }

    /// Rows 27-42 of router.md: (service.path, matched prefix, strip, request, upstream).
    #[test]
    fn upstream_paths_from_reference_cases() {
        let cases: &[(&str, &str, bool, &str, &str)] = &[
            ("/", "/route", true, "/route", "/"),
            ("/", "/route", true, "/route/", "/"),
            ("/", "/route", true, "/routereq", "/req"),
            ("/", "/route", false, "/routereq", "/routereq"),
            ("/service", "/", true, "/", "/service"),
            ("/service", "/", true, "/route", "/service/route"),
            ("/service", "/", true, "/route/", "/service/route/"),
            ("/service", "/", false, "/", "/service"),
            ("/service", "/", false, "/route", "/service/route"),
            ("/service", "/", false, "/route/", "/service/route/"),
            ("/service", "/route", false, "/route", "/service/route"),
            ("/service", "/route", false, "/route/", "/service/route/"),
            ("/service", "/route/", true, "/route/", "/service/"),
            ("/service", "/route/", true, "/route/req", "/service/req"),
            ("/service/", "/", true, "/", "/service/"),
            ("/service/", "/", true, "/route/req", "/service/route/req"),
            ("/service/", "/", false, "/", "/service/"),
            ("/service/", "/", false, "/route/req", "/service/route/req"),
            ("/srv/", "/rou", true, "/rou", "/srv"),
            ("/srv/", "/rou", false, "/rou", "/srv/rou"),
            ("/service", "/route", false, "/route./req", "/service/route./req"),
            ("/", "/", true, "/my-route/hello/world", "/my-route/hello/world"),
            ("/", "/endel%2Fst", false, "/endel%2Fst", "/endel%2Fst"),
            ("/", "/endel%2Fst", true, "/endel%2Fst", "/"),
            ("/", "/hello", true, "/hello/anything/b", "/anything/b"),
            ("/", "/foo", true, "/foo./bar", "/bar"),
        ];
        for &(base, prefix, strip, req, want) in cases {
            assert_eq!(
                upstream_path(req, Some(prefix), strip, base),
                want,
                "service.path={base} prefix={prefix} strip={strip} request={req}"
            );
        }
    }

    #[test]
    fn route_without_paths_keeps_request_path() {
        assert_eq!(upstream_path("/a/b", None, true, "/"), "/a/b");
        assert_eq!(upstream_path("/a/b", None, true, "/svc"), "/svc/a/b");
        assert_eq!(upstream_path("/", None, true, "/svc"), "/svc");
    }

    proptest::proptest! {
        /// Any path normalises without a panic, to a path that normalising again keeps.
        #[test]
        fn normalisation_never_panics_and_settles(raw in "/[a-zA-Z0-9%./_~+-]{0,40}") {
            let once = normalize(&raw).into_owned();
            proptest::prop_assert!(once.starts_with('/'), "{once:?}");
            let again = normalize(&once).into_owned();
            proptest::prop_assert_eq!(normalize(&again).into_owned(), again);
        }
    }
}
