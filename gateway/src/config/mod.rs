//! The declarative gateway configuration (`gateway.toml`): Kong's entities and field names, as TOML.
//!
//! This module parses both files (`gateway.toml`, and `plugins.toml` in [`PluginsFile`]), checks
//! `[server]` into the [`ProxySettings`] requests read, and says which `[server]` changes apply on
//! reload ([`RELOAD_POLICY`]). Cross-entity checks and compilation happen when
//! [`crate::entities`] are built, so that `wasmgate check`, start-up and every reload share one
//! code path. It is the bottom layer: it uses no other module of the gateway.

mod listen;
mod model;
mod plugins;
mod server;
mod tls_policy;
mod upstream;

pub(crate) use listen::Listener;
pub use model::*;
pub use plugins::*;
pub(crate) use server::*;
pub(crate) use tls_policy::TlsPolicy;
pub(crate) use upstream::*;

use std::fmt;
use std::path::{Path, PathBuf};

/// Every problem found in a configuration, each naming the entity, the field and the fix.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ConfigErrors(pub(crate) Vec<String>);

impl ConfigErrors {
    /// Records one problem.
    pub(crate) fn push(&mut self, msg: impl Into<String>) {
        self.0.push(msg.into());
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, else the errors.
    pub(crate) fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.is_empty() { Ok(value) } else { Err(self) }
    }

    /// Adds a file name in front of every message.
    pub(crate) fn in_file(self, path: &Path) -> ConfigErrors {
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
pub(crate) fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::from(format!("{}: cannot read: {e}", path.display())))?;
    parse_toml(&text).map_err(|e| e.in_file(path))
}

/// Parses TOML text into `T`; unknown fields are errors. Errors name the line, the column and the
/// field's path (`services[0].routes[1].methods`).
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigErrors> {
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
pub(crate) fn relative_to(base_file: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    base_file.parent().unwrap_or(Path::new(".")).join(path)
}

/// Reads the `cert_file` and `key_file` of `[[certificates]]`, and the `cert_file` of
/// `[[ca_certificates]]` (relative to `gateway_file`), into their `cert` and `key`.
pub(crate) fn read_certificate_files(cfg: &mut GatewayConfig, gateway_file: &Path, errors: &mut ConfigErrors) {
    let certs = cfg.certificates.iter_mut().enumerate().flat_map(|(i, c)| {
        [
            (format!("certificates[{i}]"), &c.cert_file, &mut c.cert, "cert_file", "cert"),
            (format!("certificates[{i}]"), &c.key_file, &mut c.key, "key_file", "key"),
        ]
    });
    let cas = cfg
        .ca_certificates
        .iter_mut()
        .enumerate()
        .map(|(i, c)| (format!("ca_certificates[{i}]"), &c.cert_file, &mut c.cert, "cert_file", "cert"));
    for (label, file, pem, file_field, pem_field) in certs.chain(cas) {
        let Some(file) = file else { continue };
        if pem.is_some() {
            errors.push(format!("{label}: {file_field}: give either {pem_field} or {file_field}, not both"));
            continue;
        }
        let path = relative_to(gateway_file, file);
        match std::fs::read_to_string(&path) {
            Ok(text) => *pem = Some(text),
            Err(e) => errors.push(format!("{label}: {file_field}: cannot read {}: {e}", path.display())),
        }
    }
}

/// Loads `gateway.toml`.
pub(crate) fn load_gateway(path: &Path) -> Result<GatewayConfig, ConfigErrors> {
    read_toml(path)
}
