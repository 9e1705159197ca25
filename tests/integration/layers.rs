//! The gateway's modules stand in layers: each uses only modules of the layers below it, or of
//! its own layer without a circle. This reads `gateway/src` and fails when a `crate::` path
//! breaks that, or when a new top-level module has no place in the table. `docs/ARCHITECTURE.md`
//! says what each layer holds.

use crate::support::plugins::repo;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, bottom first.
const LAYERS: &[(&str, &[&str])] = &[
    ("configuration", &["config", "dns", "memory", "passwords", "signatures", "ticket_keys"]),
    ("entity parts", &["balancer", "consumers", "health", "ids", "router", "tls"]),
    ("compiled entities", &["entities"]),
    ("the request", &["request"]),
    ("plugins and observability", &["access_log", "logging", "metrics", "plugins", "sinks"]),
    ("the snapshot", &["snapshot"]),
    ("serving", &["admin", "probes", "proxy", "reload", "status"]),
    ("the process", &["fuzzing", "server", "transfer"]),
];

#[test]
fn modules_use_only_the_layers_below_them_and_form_no_circle() {
    let src = repo().join("gateway/src");
    let uses = module_uses(&src);
    let layer_of: BTreeMap<&str, usize> =
        LAYERS.iter().enumerate().flat_map(|(i, (_, mods))| mods.iter().map(move |m| (*m, i))).collect();
    let unplaced: Vec<&String> = uses.keys().filter(|m| !layer_of.contains_key(m.as_str())).collect();
    assert!(unplaced.is_empty(), "give these modules a layer in tests/integration/layers.rs: {unplaced:?}");

    let mut upward = Vec::new();
    for (module, used) in &uses {
        let own = layer_of[module.as_str()];
        for u in used.iter().filter(|u| layer_of.get(u.as_str()).is_some_and(|l| *l > own)) {
            upward.push(format!("{module} ({}) uses {u} ({})", LAYERS[own].0, LAYERS[layer_of[u.as_str()]].0));
        }
    }
    assert!(upward.is_empty(), "uses of a higher layer:\n{}", upward.join("\n"));
    if let Some(circle) = find_circle(&uses) {
        panic!("modules in a circle: {}", circle.join(" -> "));
    }
}

#[test]
fn the_checker_sees_grouped_uses_and_circles() {
    let text = "use crate::{config::A, router::{self, B}};\n// crate::proxy in a comment\nlet x = crate::ids::f();";
    assert_eq!(crate_paths(text), ["config", "ids", "router"].map(String::from).into());
    let uses = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(find_circle(&uses), Some(vec!["a".to_string(), "b".to_string(), "a".to_string()]));
}

/// Each top-level module of `src` (a file or a directory) and the top-level modules it names.
fn module_uses(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let mut found = BTreeSet::new();
        for file in rust_files(&path) {
            found.extend(crate_paths(&std::fs::read_to_string(file).unwrap()));
        }
        found.remove(&name);
        uses.entry(name).or_default().extend(found);
    }
    uses
}

fn rust_files(path: &Path) -> Vec<std::path::PathBuf> {
    if path.is_file() {
        return if path.extension().is_some_and(|e| e == "rs") { vec![path.to_path_buf()] } else { vec![] };
    }
    std::fs::read_dir(path).unwrap().flatten().flat_map(|e| rust_files(&e.path())).collect()
}

/// The first segment of every `crate::` path in `text` (comments left out), `crate::{a, b::c}`
/// groups included.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut item_start = true;
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && (c.is_alphabetic() || c == '_') => {
                            out.insert(identifier(&group[j..]));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                out.insert(identifier(rest));
            }
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

fn identifier(s: &str) -> String {
    s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// A circle among the modules, as a path that ends where it starts.
fn find_circle(uses: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == m) {
            let mut circle = path[start..].to_vec();
            circle.push(m.to_string());
            return Some(circle);
        }
        if !done.insert(m.to_string()) {
            return None;
        }
        path.push(m.to_string());
        for next in uses.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, uses, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    uses.keys().find_map(|m| visit(m, uses, &mut Vec::new(), &mut done))
}
