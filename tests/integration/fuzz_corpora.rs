//! The smoke run of the fuzz targets: every input of every corpus under `fuzz/corpus` (the seeds,
//! and what `make fuzz` found and kept) goes once through its target's entry point, on stable Rust
//! and without the sanitizer. An input that once broke the gateway stays here as a regression test.

use crate::support::plugins::repo;
use std::path::Path;

/// A fuzz target's entry point.
type Target = fn(&[u8]);

/// Each target's directory and entry point (what `fuzz/fuzz_targets/*.rs` call).
const TARGETS: &[(&str, Target)] = &[
    ("admin_body", wasmgate::fuzzing::admin_body),
    ("config", wasmgate::fuzzing::config),
    ("router", wasmgate::fuzzing::router),
    ("plugin_configure", wasmgate::fuzzing::plugin_configure),
];

#[test]
fn every_corpus_input_goes_through_its_target() {
    let corpus = repo().join("fuzz/corpus");
    let mut targets: Vec<String> = std::fs::read_dir(&corpus).unwrap().flatten().map(|e| name(&e.path())).collect();
    targets.sort();
    let mut known: Vec<String> = TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    known.sort();
    assert_eq!(targets, known, "a corpus without a target, or a target without a corpus");
    for (target, run) in TARGETS {
        let mut inputs: Vec<_> = std::fs::read_dir(corpus.join(target)).unwrap().flatten().map(|e| e.path()).collect();
        inputs.sort();
        assert!(inputs.len() >= 3, "{target}: seed its corpus");
        for input in inputs {
            let bytes = std::fs::read(&input).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{target}: {} panicked", input.display());
        }
    }
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}
