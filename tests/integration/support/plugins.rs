//! The repository's plugins as `.wasm`: built once per test run by `scripts/build-plugins.sh`
//! (the script `make` uses), then copied into each test gateway's own plugins directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Builds all plugins (once per run) and returns the directories holding them.
pub fn built() -> &'static [PathBuf; 2] {
    static DIRS: OnceLock<[PathBuf; 2]> = OnceLock::new();
    DIRS.get_or_init(|| {
        let out = Command::new(repo().join("scripts/build-plugins.sh")).output().expect("run build-plugins.sh");
        assert!(
            out.status.success(),
            "building the plugins failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let dirs = [repo().join("target/plugins"), repo().join("target/test-plugins")];
        dirs.iter().for_each(|d| compile_into_cache(d));
        dirs
    })
}

/// Compiles every module in `dir` into the shared cache (`wasmgate check` compiles them all), so
/// that test gateways find them compiled: a gateway leaves uncompiled modules that its
/// configuration does not use until after start-up, which would make a test's timing decide
/// whether a module is there yet. (`unused_modules_compile_after_the_listener_opens` tests that
/// on a cache of its own.)
fn compile_into_cache(dir: &Path) {
    let work = tempfile::tempdir().unwrap();
    let plugins = format!("plugins_dir = {:?}\n", dir.display().to_string());
    std::fs::write(work.path().join("plugins.toml"), plugins).unwrap();
    std::fs::write(work.path().join("gateway.toml"), "[server]\nplugins_file = \"plugins.toml\"\n").unwrap();
    // A module that is refused on purpose (`escape`) fails the check; the others are cached.
    let _ = super::gateway::run_cli(&["check", "-c", "gateway.toml"], work.path());
}

/// The path of a built plugin module, bundled or test-only (`stamp-v2` included).
pub fn wasm(name: &str) -> PathBuf {
    built()
        .iter()
        .map(|d| d.join(format!("{name}.wasm")))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no plugin {name}.wasm"))
}

/// Every built module name that loads (not the second builds of `stamp` and `go-probe`, nor
/// `escape`, which is refused).
pub fn all() -> Vec<String> {
    let mut names: Vec<String> = built()
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().flatten())
        .filter_map(|e| e.path().file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .filter(|n| !matches!(n.as_str(), "stamp-v2" | "go-probe-v2" | "escape"))
        .collect();
    names.sort();
    names
}

/// The `XDG_CACHE_HOME` that every test gateway and command runs with, so that their default
/// compiled-module cache is one shared by them all (`target/test-cache/wasmgate`), filled by
/// [`built`], and not the user's own. A plugins.toml may still name a cache of its own.
pub fn cache_home() -> PathBuf {
    repo().join("target/test-cache")
}
