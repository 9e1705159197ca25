//! The plugin READMEs' configuration reference is generated from each module's schema
//! (`make docs`); this fails when one is out of date.

use crate::support::gateway::run_cli;
use crate::support::plugins::{built, repo};

#[test]
fn plugin_readmes_match_their_schemas() {
    let modules = &built()[0];
    let mut stale = Vec::new();
    let dirs = ["plugins", "plugins/go"].map(|d| std::fs::read_dir(repo().join(d)).unwrap());
    for entry in dirs.into_iter().flatten().flatten().filter(|e| e.file_name() != "go") {
        let name = entry.file_name().to_string_lossy().into_owned();
        let readme = std::fs::read_to_string(entry.path().join("README.md"))
            .unwrap_or_else(|_| panic!("plugins/{name} has no README.md"));
        let (code, table, err) =
            run_cli(&["plugin-doc", &modules.join(format!("{name}.wasm")).display().to_string()], &repo());
        assert_eq!(code, 0, "{err}");
        let block = readme.split("<!-- config:start -->").nth(1).and_then(|r| r.split("<!-- config:end -->").next());
        if block.map(str::trim) != Some(table.trim()) {
            stale.push(name);
        }
    }
    assert!(stale.is_empty(), "out of date (run `make docs`): {stale:?}");
}
