//! One builder for the configurations tests start gateways with. It writes TOML the way a person
//! does, table by table: each call opens a table (`[[services]]`, `[[services.routes]]`,
//! `[[upstreams]]`, …) and [`Config::set`] adds fields to the table opened last. Entities go to
//! `gateway.toml`; plugin instances, module settings and defaults to `plugins.toml`.

use super::gateway::GatewayBuilder;
use super::{Gateway, Upstream};
use std::fmt::Write;

/// A gateway configuration: entities, and plugins if any were added.
#[derive(Debug, Clone, Default)]
pub struct Config {
    entities: String,
    plugins: Option<String>,
    modules: Option<Vec<String>>,
    server: Vec<String>,
}

/// One service `s` sending to `up`, with one route `r` on `path`: the usual test setup.
pub fn one_route(up: &Upstream, path: &str) -> Config {
    Config::new().service("s", &up.url()).route("r", &[path])
}

/// An upstream `pool` of `targets` (address, weight), behind service `s` (with `service_fields`)
/// and a route on `/`.
pub fn pool(targets: &[(&str, u32)], service_fields: &str) -> Config {
    let mut cfg = Config::new().upstream("pool");
    for (address, weight) in targets {
        cfg = cfg.target(address, *weight);
    }
    cfg.service_on("s", "pool").set(service_fields).route("", &["/"])
}

impl Config {
    /// An empty configuration.
    pub fn new() -> Config {
        Config::default()
    }

    /// `[[services]]` named `name` sending to `url` (`http://host:port/path`).
    pub fn service(self, name: &str, url: &str) -> Config {
        self.table("[[services]]", &format!("name = {name:?}\nurl = {url:?}"))
    }

    /// `[[services]]` named `name` sending to the upstream (or host) `host`.
    pub fn service_on(self, name: &str, host: &str) -> Config {
        self.table("[[services]]", &format!("name = {name:?}\nhost = {host:?}"))
    }

    /// `[[services.routes]]` of the last service, on `paths`; unnamed when `name` is empty.
    pub fn route(self, name: &str, paths: &[&str]) -> Config {
        self.table("[[services.routes]]", &route_fields(name, paths))
    }

    /// A top-level `[[routes]]` (with `service = "…"` set through [`Config::set`], or none).
    pub fn top_route(self, name: &str, paths: &[&str]) -> Config {
        self.table("[[routes]]", &route_fields(name, paths))
    }

    /// `[[upstreams]]` named `name`.
    pub fn upstream(self, name: &str) -> Config {
        self.table("[[upstreams]]", &format!("name = {name:?}"))
    }

    /// A target of the last upstream.
    pub fn target(self, address: &str, weight: u32) -> Config {
        self.table("[[upstreams.targets]]", &format!("target = {address:?}\nweight = {weight}"))
    }

    /// `[[consumers]]` named `username`.
    pub fn consumer(self, username: &str) -> Config {
        self.table("[[consumers]]", &format!("username = {username:?}"))
    }

    /// A key-auth credential of the last consumer.
    pub fn key(self, key: &str) -> Config {
        self.table("[[consumers.keyauth_credentials]]", &format!("key = {key:?}"))
    }

    /// An ACL group of the last consumer.
    pub fn acl(self, group: &str) -> Config {
        self.table("[[consumers.acls]]", &format!("group = {group:?}"))
    }

    /// Fields (TOML lines) for the table opened last.
    pub fn set(mut self, fields: &str) -> Config {
        writeln!(self.entities, "{fields}").unwrap();
        self
    }

    /// Entity tables written by hand, as they are (also to test refusals of broken ones).
    pub fn raw(mut self, toml: &str) -> Config {
        writeln!(self.entities, "\n{toml}").unwrap();
        self
    }

    /// A `[[plugins]]` instance in `plugins.toml`: `scope` lines (`route = "r"`, empty for a
    /// global one) and its `config` as the inside of an inline table.
    pub fn plugin(self, name: &str, scope: &str, config: &str) -> Config {
        self.plugins_toml(&format!("[[plugins]]\nname = {name:?}\n{scope}\nconfig = {{ {config} }}"))
    }

    /// `plugins.toml` text as it is: `[modules.NAME]` and `[defaults]` tables, or instances.
    pub fn plugins_toml(mut self, toml: &str) -> Config {
        let plugins = self.plugins.get_or_insert_with(String::new);
        writeln!(plugins, "\n{toml}").unwrap();
        self
    }

    /// Copies only these built modules into the gateway's plugins directory (all by default).
    pub fn only_modules(mut self, modules: &[&str]) -> Config {
        self.modules = Some(modules.iter().map(|m| m.to_string()).collect());
        self.plugins.get_or_insert_with(String::new);
        self
    }

    /// `[server]` lines for the gateway this starts.
    pub fn server(mut self, lines: &str) -> Config {
        self.server.push(lines.to_string());
        self
    }

    /// The entities, as `gateway.toml` holds them after `[server]`.
    pub fn entities(&self) -> &str {
        &self.entities
    }

    /// A gateway builder with this configuration, the built modules and its `[server]` lines.
    pub fn gateway(&self) -> GatewayBuilder {
        let mut builder = Gateway::builder(&self.entities);
        if let Some(plugins) = &self.plugins {
            builder = match &self.modules {
                Some(modules) => builder.plugins_with(plugins, &modules.iter().map(String::as_str).collect::<Vec<_>>()),
                None => builder.plugins(plugins),
            };
        }
        self.server.iter().fold(builder, |b, lines| b.server(lines))
    }

    /// Runs `wasmgate check` on this configuration (with its `plugins.toml` and modules when it
    /// has plugins): the exit code and everything it printed.
    pub fn check(&self) -> (i32, String) {
        let Some(plugins) = &self.plugins else { return check_files(&self.entities, None) };
        let all = super::plugins::all();
        let modules: Vec<&str> = match &self.modules {
            Some(named) => named.iter().map(String::as_str).collect(),
            None => all.iter().map(String::as_str).collect(),
        };
        let gateway = format!("[server]\nplugins_file = \"plugins.toml\"\n{}", self.entities);
        check_files(&gateway, Some((plugins, &modules)))
    }

    /// Starts a gateway with this configuration.
    pub async fn start(&self) -> Gateway {
        self.gateway().start().await
    }

    fn table(mut self, header: &str, fields: &str) -> Config {
        write!(self.entities, "\n{header}\n{fields}\n").unwrap();
        self
    }
}

fn route_fields(name: &str, paths: &[&str]) -> String {
    let mut fields = String::new();
    if !name.is_empty() {
        writeln!(fields, "name = {name:?}").unwrap();
    }
    if !paths.is_empty() {
        write!(fields, "paths = {paths:?}").unwrap();
    }
    fields
}

/// Runs `wasmgate check` on a `gateway.toml` of `gateway` (as it is, `[server]` included) and,
/// with `plugins`, a `plugins.toml` of that body and the named modules: the exit code and output.
pub fn check_files(gateway: &str, plugins: Option<(&str, &[&str])>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gateway.toml"), gateway).unwrap();
    if let Some((body, modules)) = plugins {
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        for m in modules {
            std::fs::copy(super::plugins::wasm(m), dir.path().join(format!("plugins/{m}.wasm"))).unwrap();
        }
        let plugins_toml = format!("plugins_dir = \"plugins\"\n{body}");
        std::fs::write(dir.path().join("plugins.toml"), plugins_toml).unwrap();
    }
    let (code, out, err) = super::gateway::run_cli(&["check", "-c", "gateway.toml"], dir.path());
    (code, format!("{out}{err}"))
}
