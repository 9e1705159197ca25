//! The router: Kong's traditional matching rules over an index.
//!
//! Routes are filed by host (exact names in a hash map, wildcards by suffix or prefix, host-less
//! routes apart) and, inside each host bucket, by path: a radix trie of prefixes, regexes grouped
//! by their literal prefix (also in a trie, one `RegexSet` per group), and the routes without paths.
//! A request only visits the buckets of its own host and the entries along its own path, so 10,000
//! routes cost about what 10 do. The few candidates found are checked in full (port, methods,
//! headers) and ranked by Kong's priority rules.

pub(crate) mod host;
pub(crate) mod path;
#[cfg(test)]
mod reference_cases;
mod trie;

pub(crate) use host::HostPattern;
pub use host::RequestHost;

use crate::config::RouteConfig;
use host::HostKind;
use http::HeaderMap;
use regex::{Regex, RegexSet};
use std::cmp::Reverse;
use std::collections::HashMap;
use trie::PrefixTrie;

const HOST: u8 = 0b10000;
const HEADER: u8 = 0b01000;
const PATH: u8 = 0b00100;
const METHOD: u8 = 0b00010;

/// What the router needs to know of a request.
pub struct RequestView<'a> {
    /// Upper-case method.
    pub method: &'a str,
    /// Host and port the request was addressed to.
    pub host: &'a RequestHost,
    /// The normalised path (see [`path::normalize`]).
    pub path: &'a str,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

/// The route that won, and how much of the path its matching path covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch {
    /// Index of the route, in configuration order.
    pub(crate) route: usize,
    /// Length of the matched prefix (or regex match) of the path; `None` for routes without paths.
    pub(crate) matched_len: Option<usize>,
}

/// A compiled, immutable router.
#[derive(Debug)]
pub struct Router {
    routes: Vec<CompiledRoute>,
    exact: HashMap<String, PathIndex>,
    suffix: HashMap<String, PathIndex>,
    prefix: HashMap<String, PathIndex>,
    hostless: PathIndex,
}

#[derive(Debug)]
struct CompiledRoute {
    hosts: Vec<HostPattern>,
    /// The route's regex paths, for named captures (consistent hashing on `uri_capture`).
    regexes: Vec<Regex>,
    methods: Vec<String>,
    headers: Vec<HeaderRule>,
    regex_priority: i64,
    categories: u8,
    field_count: u32,
}

#[derive(Debug)]
struct HeaderRule {
    name: http::HeaderName,
    plain: Vec<String>,
    regexes: Vec<Regex>,
}

impl HeaderRule {
    fn matches(&self, headers: &HeaderMap) -> bool {
        headers.get_all(&self.name).iter().filter_map(|v| v.to_str().ok()).any(|v| {
            let v = v.trim();
            self.plain.iter().any(|p| p.eq_ignore_ascii_case(v)) || self.regexes.iter().any(|r| r.is_match(v))
        })
    }
}

/// A route filed under a host bucket: which of its hosts put it there.
#[derive(Debug, Clone, Copy)]
struct Entry {
    route: u32,
    host: Option<u16>,
}

#[derive(Debug, Default)]
struct PathIndex {
    prefixes: PrefixTrie<Entry>,
    /// Literal prefix of the regexes -> index in `regex_groups`.
    regex_prefixes: PrefixTrie<usize>,
    regex_groups: Vec<RegexGroup>,
    group_of_prefix: HashMap<String, usize>,
    pathless: Vec<Entry>,
}

/// Regexes that share a literal prefix, matched together.
#[derive(Debug, Default)]
struct RegexGroup {
    members: Vec<(Regex, Entry)>,
    set: Option<RegexSet>,
}

#[derive(Clone, Copy)]
enum PathHit {
    None,
    Prefix(usize),
    Regex(usize),
}

impl PathIndex {
    fn add_regex(&mut self, re: &Regex, literal_prefix: String, entry: Entry) {
        let group = *self.group_of_prefix.entry(literal_prefix.clone()).or_insert_with(|| {
            self.regex_groups.push(RegexGroup::default());
            self.regex_prefixes.insert(literal_prefix.as_bytes(), self.regex_groups.len() - 1);
            self.regex_groups.len() - 1
        });
        self.regex_groups[group].members.push((re.clone(), entry));
    }

    fn finish(&mut self) -> Result<(), regex::Error> {
        for group in self.regex_groups.iter_mut().filter(|g| g.members.len() > 1) {
            let patterns = group.members.iter().map(|(r, _)| r.as_str());
            group.set = Some(regex::RegexSetBuilder::new(patterns).size_limit(64 << 20).build()?);
        }
        Ok(())
    }

    fn candidates(&self, path: &str, mut f: impl FnMut(Entry, PathHit)) {
        for e in &self.pathless {
            f(*e, PathHit::None);
        }
        self.prefixes.for_each_prefix(path.as_bytes(), |len, e| f(*e, PathHit::Prefix(len)));
        self.regex_prefixes.for_each_prefix(path.as_bytes(), |_, g| {
            let group = &self.regex_groups[*g];
            let mut try_member = |i: usize| {
                let (re, e) = &group.members[i];
                if let Some(m) = re.find(path) {
                    f(*e, PathHit::Regex(m.end()));
                }
            };
            match &group.set {
                Some(set) => set.matches(path).iter().for_each(&mut try_member),
                None => try_member(0),
            }
        });
    }
}

/// The literal text every match of `pattern` starts with ("" when there is none to rely on).
fn literal_prefix(pattern: &str) -> String {
    use regex_syntax::hir::literal::Extractor;
    let Ok(hir) = regex_syntax::Parser::new().parse(pattern) else { return String::new() };
    let seq = Extractor::new().extract(&hir);
    let Some(literals) = seq.literals() else { return String::new() };
    let Some(first) = literals.first() else { return String::new() };
    let mut len = first.as_bytes().len();
    for lit in &literals[1..] {
        len = len.min(first.as_bytes().iter().zip(lit.as_bytes()).take_while(|(a, b)| a == b).count());
    }
    // Keep whole characters only.
    let bytes = &first.as_bytes()[..len];
    let valid = std::str::from_utf8(bytes).map_or_else(|e| &bytes[..e.valid_up_to()], |s| s.as_bytes());
    String::from_utf8_lossy(valid).into_owned()
}

/// Ranking key; the larger wins. See `router.md`, "Priority".
type Rank = (u32, u8, u8, usize, u8, i64, Reverse<u32>);

impl Router {
    /// Compiles routes (in creation order). Errors come as (route index, message naming the field);
    /// an error about the routes together has no index.
    pub fn build(routes: &[&RouteConfig]) -> Result<Router, Vec<(Option<usize>, String)>> {
        let mut errors = Vec::new();
        let mut router = Router {
            routes: Vec::with_capacity(routes.len()),
            exact: HashMap::new(),
            suffix: HashMap::new(),
            prefix: HashMap::new(),
            hostless: PathIndex::default(),
        };
        for (i, cfg) in routes.iter().enumerate() {
            match compile_route(cfg) {
                Ok((route, paths)) => {
                    router.file(i as u32, &route, &paths);
                    router.routes.push(route);
                }
                Err(msgs) => {
                    errors.extend(msgs.into_iter().map(|m| (Some(i), m)));
                    router.routes.push(CompiledRoute::never());
                }
            }
        }
        let all = router.exact.values_mut().chain(router.suffix.values_mut()).chain(router.prefix.values_mut());
        for index in all.chain(std::iter::once(&mut router.hostless)) {
            if let Err(e) = index.finish() {
                errors.push((None, format!("the path regexes are too large to compile together: {e}")));
            }
        }
        if errors.is_empty() { Ok(router) } else { Err(errors) }
    }

    fn file(&mut self, route: u32, compiled: &CompiledRoute, paths: &[PathRule]) {
        if compiled.hosts.is_empty() {
            add_paths(&mut self.hostless, Entry { route, host: None }, paths);
        }
        for (h, pattern) in compiled.hosts.iter().enumerate() {
            let index = match &pattern.kind {
                HostKind::Exact(n) => self.exact.entry(n.clone()).or_default(),
                HostKind::Suffix(s) => self.suffix.entry(s.clone()).or_default(),
                HostKind::Prefix(p) => self.prefix.entry(p.clone()).or_default(),
            };
            add_paths(index, Entry { route, host: Some(h as u16) }, paths);
        }
    }

    /// The named capture `name` of the first of `route`'s regex paths that matches `path`.
    pub(crate) fn capture<'p>(&self, route: usize, path: &'p str, name: &str) -> Option<&'p str> {
        let route = self.routes.get(route)?;
        route.regexes.iter().find_map(|r| r.captures(path)?.name(name)).map(|m| m.as_str())
    }

    /// Finds the best route for a request, or `None` (the 404 case).
    pub fn find(&self, req: &RequestView<'_>) -> Option<RouteMatch> {
        let mut best: Option<(Rank, RouteMatch)> = None;
        let mut consider = |e: Entry, hit: PathHit| {
            if let Some(rank) = self.rank(e, hit, req)
                && best.as_ref().is_none_or(|(b, _)| rank > *b)
            {
                let matched_len = match hit {
                    PathHit::None => None,
                    PathHit::Prefix(n) | PathHit::Regex(n) => Some(n),
                };
                best = Some((rank, RouteMatch { route: e.route as usize, matched_len }));
            }
        };
        let name = req.host.name.as_str();
        if let Some(index) = self.exact.get(name) {
            index.candidates(req.path, &mut consider);
        }
        if !self.suffix.is_empty() {
            // Every ".rest" of the name, from the longest: a.b.c -> ".b.c", ".c".
            for (i, _) in name.match_indices('.').filter(|(i, _)| *i > 0) {
                if let Some(index) = self.suffix.get(&name[i..]) {
                    index.candidates(req.path, &mut consider);
                }
            }
        }
        if !self.prefix.is_empty() {
            for (i, _) in name.match_indices('.').filter(|(i, _)| *i + 1 < name.len()) {
                if let Some(index) = self.prefix.get(&name[..=i]) {
                    index.candidates(req.path, &mut consider);
                }
            }
        }
        self.hostless.candidates(req.path, &mut consider);
        best.map(|(_, m)| m)
    }

    /// Checks the fields the index did not, and ranks the candidate; `None` if it does not match.
    fn rank(&self, e: Entry, hit: PathHit, req: &RequestView<'_>) -> Option<Rank> {
        let r = &self.routes[e.route as usize];
        let host_rank = match e.host {
            Some(h) => {
                let pattern = &r.hosts[h as usize];
                if pattern.port.is_some_and(|p| p != req.host.port) {
                    return None;
                }
                pattern.rank()
            }
            None => 0,
        };
        if !r.methods.is_empty() && !r.methods.iter().any(|m| m == req.method) {
            return None;
        }
        if !r.headers.iter().all(|h| h.matches(req.headers)) {
            return None;
        }
        let (path_kind, path_value) = match hit {
            PathHit::None => (0, 0),
            PathHit::Prefix(len) => (1, len as i64),
            PathHit::Regex(_) => (2, r.regex_priority),
        };
        Some((r.field_count, r.categories, host_rank, r.headers.len(), path_kind, path_value, Reverse(e.route)))
    }
}

enum PathRule {
    Prefix(String),
    /// The anchored regex and its literal prefix.
    Regex(Regex, String),
}

fn add_paths(index: &mut PathIndex, entry: Entry, paths: &[PathRule]) {
    if paths.is_empty() {
        index.pathless.push(entry);
    }
    for p in paths {
        match p {
            PathRule::Prefix(prefix) => index.prefixes.insert(prefix.as_bytes(), entry),
            PathRule::Regex(re, literal) => index.add_regex(re, literal.clone(), entry),
        }
    }
}

impl CompiledRoute {
    /// A placeholder for a rejected route; it is never filed, so it never matches.
    fn never() -> CompiledRoute {
        CompiledRoute {
            hosts: Vec::new(),
            regexes: Vec::new(),
            methods: Vec::new(),
            headers: Vec::new(),
            regex_priority: 0,
            categories: 0,
            field_count: 0,
        }
    }
}

fn compile_route(cfg: &RouteConfig) -> Result<(CompiledRoute, Vec<PathRule>), Vec<String>> {
    let mut errors = Vec::new();
    let mut hosts = Vec::new();
    for (i, h) in cfg.hosts.iter().enumerate() {
        match HostPattern::parse(h) {
            Ok(p) => hosts.push(p),
            Err(e) => errors.push(format!("hosts[{i}]: {e}")),
        }
    }
    let mut paths = Vec::new();
    for (i, p) in cfg.paths.iter().enumerate() {
        if let Some(re) = p.strip_prefix('~') {
            let anchored = format!("^(?:{re})");
            match Regex::new(&anchored) {
                Ok(r) => paths.push(PathRule::Regex(r, literal_prefix(&anchored))),
                Err(e) => errors.push(format!("paths[{i}]: invalid regex {p:?}: {}", one_line(&e.to_string()))),
            }
        } else if p.starts_with('/') {
            paths.push(PathRule::Prefix(path::normalize(p).into_owned()));
        } else {
            errors.push(format!("paths[{i}]: {p:?} must start with '/' (a prefix) or '~/' (a regex)"));
        }
    }
    let mut methods = Vec::new();
    for (i, m) in cfg.methods.iter().enumerate() {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
            errors.push(format!("methods[{i}]: {m:?} is not an HTTP method (e.g. GET, POST)"));
        }
        methods.push(m.to_ascii_uppercase());
    }
    let mut headers = Vec::new();
    for (name, values) in &cfg.headers {
        match compile_header(name, values) {
            Ok(h) => headers.push(h),
            Err(e) => errors.push(format!("headers.{name}: {e}")),
        }
    }
    let mut categories = 0;
    for (present, bit) in [
        (!hosts.is_empty(), HOST),
        (!headers.is_empty(), HEADER),
        (!paths.is_empty(), PATH),
        (!methods.is_empty(), METHOD),
    ] {
        if present {
            categories |= bit;
        }
    }
    if cfg.hosts.is_empty() && cfg.paths.is_empty() && cfg.methods.is_empty() && cfg.headers.is_empty() {
        errors.push("must have at least one of `hosts`, `paths`, `methods` or `headers`".into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let regexes = paths
        .iter()
        .filter_map(|p| match p {
            PathRule::Regex(r, _) => Some(r.clone()),
            PathRule::Prefix(_) => None,
        })
        .collect();
    let route = CompiledRoute {
        hosts,
        regexes,
        methods,
        headers,
        regex_priority: cfg.regex_priority,
        categories,
        field_count: categories.count_ones(),
    };
    Ok((route, paths))
}

fn compile_header(name: &str, values: &[String]) -> Result<HeaderRule, String> {
    let header =
        http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("{name:?} is not a valid header name"))?;
    if header == http::header::HOST {
        return Err("`host` cannot be matched as a header; use the route's `hosts`".into());
    }
    if values.is_empty() {
        return Err("give at least one value".into());
    }
    let mut rule = HeaderRule { name: header, plain: Vec::new(), regexes: Vec::new() };
    for v in values {
        match v.strip_prefix("~*") {
            Some(re) => rule.regexes.push(
                Regex::new(&format!("(?i){re}"))
                    .map_err(|e| format!("invalid regex {v:?}: {}", one_line(&e.to_string())))?,
            ),
            None => rule.plain.push(v.to_string()),
        }
    }
    Ok(rule)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::literal_prefix;

    #[test]
    fn literal_prefixes_of_path_regexes() {
        assert_eq!(literal_prefix("^(?:/api/v1/users/[0-9]+)"), "/api/v1/users/");
        assert_eq!(literal_prefix("^(?:/v[12]/x)"), "/v");
        assert_eq!(literal_prefix("^(?:/status/(?P<foo>re))"), "/status/re");
        assert_eq!(literal_prefix("^(?:/a|/b)"), "/");
        assert_eq!(literal_prefix("^(?:.*x)"), "");
        assert_eq!(literal_prefix("^(?:(?i)/abc)"), "/");
    }
}
