//! The generic implementation of the world's exports for any [`Plugin`]: configurations are parsed
//! once per instance and kept by id; phase calls look them up (in an ordered map: an instance
//! holds a few, and a lookup then costs a comparison or two, not a hash).

use crate::Plugin;
use crate::bindings::exports::wasmgate::plugin::handler::Guest;
use crate::bindings::wasmgate::plugin::types::{Action, ConfigNeeds, PluginInfo};
use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::rc::Rc;

/// The plugin crate's version, filled in by [`crate::export_plugin!`].
pub trait PluginVersion {
    /// `CARGO_PKG_VERSION` of the plugin crate.
    const VERSION: &'static str;
}

/// The `body-filter` export.
pub type BodyFilter = fn(u64, Vec<u8>, bool) -> Result<Option<Vec<u8>>, String>;

/// The exported functions of a plugin, as plain function pointers (what `export_plugin!`
/// provides when building for the host, where there are no component exports).
pub struct Exports {
    /// `metadata`
    pub metadata: fn() -> PluginInfo,
    /// `configure`
    pub configure: fn(u64, String) -> Result<ConfigNeeds, String>,
    /// `rewrite`
    pub rewrite: fn(u64) -> Result<Action, String>,
    /// `access`
    pub access: fn(u64) -> Result<Action, String>,
    /// `header-filter`
    pub header_filter: fn(u64) -> Result<(), String>,
    /// `body-filter`
    pub body_filter: BodyFilter,
    /// `log`
    pub log: fn(u64) -> Result<(), String>,
}

impl Exports {
    /// The exports of plugin `P`.
    pub const fn of<P: Plugin + PluginVersion>() -> Exports {
        Exports {
            metadata: <Glue<P> as Guest>::metadata,
            configure: <Glue<P> as Guest>::configure,
            rewrite: <Glue<P> as Guest>::rewrite,
            access: <Glue<P> as Guest>::access,
            header_filter: <Glue<P> as Guest>::header_filter,
            body_filter: <Glue<P> as Guest>::body_filter,
            log: <Glue<P> as Guest>::log,
        }
    }
}

/// Adapts a [`Plugin`] to the generated `Guest` trait.
pub struct Glue<P>(PhantomData<P>);

thread_local! {
    static CONFIGS: RefCell<BTreeMap<u64, Rc<dyn Any>>> = const { RefCell::new(BTreeMap::new()) };
}

fn with_config<P: Plugin, R>(id: u64, f: impl FnOnce(&P::Config) -> Result<R, String>) -> Result<R, String> {
    let config = CONFIGS.with(|c| c.borrow().get(&id).cloned());
    let config = config.ok_or_else(|| format!("configuration {id} was not configured in this instance"))?;
    let config = config.downcast_ref::<P::Config>().ok_or("configuration has the wrong type")?;
    f(config)
}

/// Refuses top-level keys the configuration's schema does not know, also for configs that
/// `#[serde(flatten)]` shared parts (where serde cannot deny unknown fields itself).
fn check_known_keys(json: &str, schema: &serde_json::Value) -> Result<(), String> {
    let (Some(known), Ok(serde_json::Value::Object(given))) =
        (schema.get("properties").and_then(|p| p.as_object()), serde_json::from_str(json))
    else {
        return Ok(());
    };
    let open = schema.get("additionalProperties").is_some_and(|a| a != &serde_json::Value::Bool(false));
    match given.keys().find(|k| !known.contains_key(*k)) {
        Some(unknown) if !open => {
            let mut expected: Vec<&str> = known.keys().map(String::as_str).collect();
            expected.sort_unstable();
            Err(format!("config.{unknown}: unknown field `{unknown}`, expected one of: {}", expected.join(", ")))
        }
        _ => Ok(()),
    }
}

/// Parses a configuration; errors name the field path, e.g. `config.limits.minute: invalid type`.
pub fn parse<C: serde::de::DeserializeOwned>(json: &str) -> Result<C, String> {
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde_json appends " at line 1 column N", which means nothing to the user.
        let inner = inner.split(" at line ").next().unwrap_or(&inner).to_string();
        if path == "." { format!("config: {inner}") } else { format!("config.{path}: {inner}") }
    })
}

impl<P: Plugin + PluginVersion> Guest for Glue<P> {
    fn metadata() -> PluginInfo {
        let schema = schemars::schema_for!(P::Config);
        PluginInfo {
            version: P::VERSION.to_string(),
            priority: P::PRIORITY,
            phases: P::PHASES,
            fail_closed: P::FAIL_CLOSED,
            no_consumer: P::NO_CONSUMER,
            config_schema: serde_json::to_string(&schema).unwrap_or_default(),
        }
    }

    fn configure(id: u64, config: String) -> Result<ConfigNeeds, String> {
        let schema = serde_json::to_value(schemars::schema_for!(P::Config)).unwrap_or_default();
        check_known_keys(&config, &schema)?;
        let mut parsed: P::Config = parse(&config)?;
        let needs = P::configure(&mut parsed)?;
        CONFIGS.with(|c| c.borrow_mut().insert(id, Rc::new(parsed)));
        Ok(needs)
    }

    fn rewrite(config: u64) -> Result<Action, String> {
        with_config::<P, _>(config, P::rewrite)
    }

    fn access(config: u64) -> Result<Action, String> {
        with_config::<P, _>(config, P::access)
    }

    fn header_filter(config: u64) -> Result<(), String> {
        with_config::<P, _>(config, P::header_filter)
    }

    fn body_filter(config: u64, chunk: Vec<u8>, end_of_stream: bool) -> Result<Option<Vec<u8>>, String> {
        with_config::<P, _>(config, |c| P::body_filter(c, chunk, end_of_stream))
    }

    fn log(config: u64) -> Result<(), String> {
        with_config::<P, _>(config, P::log)
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        minute: Option<u64>,
        roles: Vec<Role>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Role {
        name: String,
    }

    #[test]
    fn unknown_top_level_keys_are_refused_by_schema() {
        let schema = serde_json::json!({"type": "object", "properties": {"minute": {}, "limit_by": {}}});
        assert!(super::check_known_keys(r#"{"minute": 1}"#, &schema).is_ok());
        assert_eq!(
            super::check_known_keys(r#"{"minutes": 1}"#, &schema).unwrap_err(),
            "config.minutes: unknown field `minutes`, expected one of: limit_by, minute"
        );
        let open = serde_json::json!({"type": "object", "properties": {}, "additionalProperties": {"type": "string"}});
        assert!(super::check_known_keys(r#"{"anything": "x"}"#, &open).is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse::<Limits>(r#"{"minute": "x", "roles": []}"#).unwrap_err();
        assert_eq!(e, "config.minute: invalid type: string \"x\", expected u64");
        let e = parse::<Limits>(r#"{"roles": [{"nam": "a"}]}"#).unwrap_err();
        assert_eq!(e, "config.roles[0].nam: unknown field `nam`, expected `name`");
        let e = parse::<Limits>(r#"{}"#).unwrap_err();
        assert_eq!(e, "config: missing field `roles`");
    }
}
