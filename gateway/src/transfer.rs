//! `wasmgate config export` and `wasmgate config import`: moving a configuration between the
//! declarative files and the embedded database.

use crate::admin::records::Records;
use crate::admin::{export_toml, now, parse_entities};
use crate::config::{ConfigErrors, Database, load_gateway};
use crate::reload::Loader;
use crate::server::open_store;
use std::path::{Path, PathBuf};

/// The running configuration's entities as TOML (the `GET /config` format): from the database
/// in embedded mode, else from the files (ids made explicit).
pub fn export(config_file: &Path, plugins: Option<PathBuf>) -> Result<String, ConfigErrors> {
    let server = load_gateway(config_file)?.server;
    let records = match server.database {
        Database::Embedded => open_store(config_file, &server)?.1,
        Database::Off => {
            let loaded = Loader::new(config_file.to_path_buf(), plugins).load(None)?;
            Records::from_config(&loaded.config, now()).map_err(ConfigErrors::from)?
        }
    };
    export_toml(&records).map_err(ConfigErrors::from)
}

/// Replaces the embedded database's entities with those of `file` (a declarative `gateway.toml`
/// whose `[server]`, if any, is ignored, or an export), after validating them. Returns how many
/// entities were written.
pub fn import(config_file: &Path, plugins: Option<PathBuf>, file: &Path) -> Result<usize, ConfigErrors> {
    let server = load_gateway(config_file)?.server;
    if server.database != Database::Embedded {
        return Err(ConfigErrors::from(format!(
            "{}: server.database is \"off\"; import writes the embedded database, so set database = \"embedded\"",
            config_file.display()
        )));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| ConfigErrors::from(format!("{}: cannot read: {e}", file.display())))?;
    let mut table: toml::Table = crate::config::parse_toml(&text).map_err(|e| e.in_file(file))?;
    table.remove("server");
    let entities = parse_entities(&toml::to_string(&table).map_err(|e| ConfigErrors::from(e.to_string()))?)
        .map_err(|e| e.in_file(file))?;
    // The same validation as a start: snapshot, plugin modules and their configurations.
    let loaded = Loader::new(config_file.to_path_buf(), plugins).load(Some(&entities)).map_err(|e| e.in_file(file))?;
    let next = Records::from_config(&loaded.config, now()).map_err(ConfigErrors::from)?;
    let (mut store, current) = open_store(config_file, &server)?;
    let changes = current.diff(&next);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ConfigErrors::from(format!("cannot start a runtime: {e}")))?;
    rt.block_on(store.save(&changes))
        .map_err(|e| ConfigErrors::from(format!("{}: cannot write: {e}", store.path().display())))?;
    Ok(crate::admin::kinds::Kind::ALL.iter().map(|k| next.count(*k)).sum())
}

/// The entities a gateway starts with when they are not the file's (embedded mode).
pub fn stored_entities(config_file: &Path) -> Result<Option<crate::config::GatewayConfig>, ConfigErrors> {
    let server = load_gateway(config_file)?.server;
    if server.database == Database::Off {
        return Ok(None);
    }
    let records = open_store(config_file, &server)?.1;
    records.to_config().map(Some).map_err(ConfigErrors::from)
}
