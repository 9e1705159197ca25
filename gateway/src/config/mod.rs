//! The declarative gateway configuration (`gateway.toml`): Kong's entities and field names, as TOML.
//!
//! This module only parses. Cross-entity checks and compilation happen when a [`crate::snapshot`]
//! is built, so that `wasmgate check`, start-up and every reload share one code path.

mod model;
mod upstream;

pub use model::*;
pub use upstream::*;

use std::fmt;
use std::path::{Path, PathBuf};

/// Every problem found in a configuration, each naming the entity, the field and the fix.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<String>);

impl ConfigErrors {
    /// Records one problem.
    pub fn push(&mut self, msg: impl Into<String>) {
        self.0.push(msg.into());
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, else the errors.
    pub fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.is_empty() { Ok(value) } else { Err(self) }
    }

    /// Adds a file name in front of every message.
    pub fn in_file(self, path: &Path) -> ConfigErrors {
        ConfigErrors(self.0.into_iter().map(|m| format!("{}: {m}", path.display())).collect())
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<String> for ConfigErrors {
    fn from(msg: String) -> Self {
        ConfigErrors(vec![msg])
    }
}

/// Reads and parses a TOML file into `T`, with errors that name the file, the line and the key.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::from(format!("{}: cannot read: {e}", path.display())))?;
    parse_toml(&text).map_err(|e| e.in_file(path))
}

/// Parses TOML text into `T`; unknown fields are errors. Errors name the line, the column and the
/// field's path (`services[0].routes[1].methods`).
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigErrors> {
    let de = toml::de::Deserializer::parse(text).map_err(|e| ConfigErrors::from(toml_error(text, &e, "")))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = match e.path().to_string() {
            p if p == "." => String::new(),
            p => format!("{p}: "),
        };
        ConfigErrors::from(toml_error(text, e.inner(), &path))
    })
}

/// One line for a TOML error: the line and column, the field's path, then the message.
fn toml_error(text: &str, e: &toml::de::Error, path: &str) -> String {
    let msg = format!("{path}{}", e.message().trim());
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {msg}")
        }
        None => msg,
    }
}

/// Resolves `path` against the directory of the file that named it.
pub fn relative_to(base_file: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    base_file.parent().unwrap_or(Path::new(".")).join(path)
}

/// Loads `gateway.toml`.
pub fn load_gateway(path: &Path) -> Result<GatewayConfig, ConfigErrors> {
    read_toml(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines, valid and not, that random configurations are made of.
    const LINES: &[&str] = &[
        "[[services]]",
        "name = \"s\"",
        "url = \"http://127.0.0.1:9\"",
        "host = \"a\"",
        "port = 70000",
        "[[services.routes]]",
        "[[routes]]",
        "paths = [\"/a\", \"~/(x\"]",
        "hosts = [\"*.a.*\"]",
        "methods = [\"GET\"]",
        "service = \"s\"",
        "[[upstreams]]",
        "name = \"u u\"",
        "[[upstreams.targets]]",
        "target = \"[::1\"",
        "weight = -1",
        "[[consumers]]",
        "username = \"c\"",
        "[server]",
        "proxy_listen = \"x\"",
        "trusted_ips = [\"1.2.3.4/99\"]",
        "[[plugins]]",
        "config = { a = 1 }",
        "strip_path = \"yes\"",
        "= broken",
        "[upstreams.healthchecks]",
        "threshold = 1e9",
        "algorithm = \"latency\"",
    ];

    proptest::proptest! {
        /// The loader and the snapshot never panic: any text is a configuration or errors.
        #[test]
        fn loading_never_panics(picks in proptest::collection::vec(0..LINES.len(), 0..24)) {
            let text: String = picks.iter().map(|i| format!("{}\n", LINES[*i])).collect();
            if let Ok(cfg) = parse_toml::<GatewayConfig>(&text) {
                let built = crate::snapshot::Entities::build(&cfg, &Default::default());
                if let Err(errors) = built {
                    proptest::prop_assert!(!errors.is_empty());
                }
            }
        }

        /// Arbitrary text as well.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            let _ = parse_toml::<GatewayConfig>(&text);
        }
    }
}
