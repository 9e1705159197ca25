//! `[server]` checked, and the part of it that every request reads ([`ProxySettings`]).

use super::{ConfigErrors, Listener, ServerConfig};
use ipnet::IpNet;
use std::net::IpAddr;
use std::time::Duration;

/// The `[server]` settings used on every request; they take effect on reload.
#[derive(Debug, Clone)]
pub(crate) struct ProxySettings {
    /// Peers whose forwarding headers are believed.
    pub(crate) trusted_ips: Vec<IpNet>,
    /// Header carrying the client address from a trusted peer.
    pub(crate) real_ip_header: http::HeaderName,
    /// Walk the header from the right past trusted addresses.
    pub(crate) real_ip_recursive: bool,
    /// Add `Via` (and `Server` on the gateway's own answers).
    pub(crate) server_tokens: bool,
    /// Add the latency headers.
    pub(crate) latency_tokens: bool,
    /// Count per-request metrics.
    pub(crate) metrics: bool,
    /// Longest time to read a whole request header.
    pub(crate) client_header_timeout: Duration,
    /// Longest wait between two reads of a request body.
    pub(crate) client_body_timeout: Duration,
    /// Keep-alive idle timeout, seconds (0: none).
    pub(crate) keepalive_timeout: u64,
    /// Keep client-sent identity headers (otherwise removed before the plugins run).
    pub(crate) trust_identity_headers: bool,
    /// What `%2F`, `%5C` and `\\` in a request path get.
    pub(crate) escaped_slashes: EscapedSlashes,
}

impl ProxySettings {
    /// True when `ip` is one of the trusted proxies.
    pub(crate) fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_ips.iter().any(|n| n.contains(&ip))
    }
}

/// Checks `[server]` and extracts what requests use of it.
pub(crate) fn proxy_settings(s: &ServerConfig, errors: &mut ConfigErrors) -> ProxySettings {
    if s.proxy_listen.is_empty() {
        errors.push("server: proxy_listen: give at least one address, e.g. \"0.0.0.0:8000\"");
    }
    for (i, l) in s.proxy_listen.iter().enumerate() {
        if let Err(e) = Listener::parse(l) {
            errors.push(format!("server: proxy_listen[{i}]: {e}"));
        }
    }
    if s.ssl_cert.is_some() != s.ssl_cert_key.is_some() {
        errors.push("server: ssl_cert and ssl_cert_key: give both (the certificate and its key), or neither");
    }
    if let Err(e) = super::TlsPolicy::from_server(s) {
        errors.push(e);
    }
    for (field, value, min) in [
        ("http2_max_concurrent_streams", s.http2_max_concurrent_streams, 1),
        ("http2_max_header_list_size", s.http2_max_header_list_size, 1024),
        ("http2_initial_window_size", s.http2_initial_window_size, 65535),
    ] {
        if value < min {
            errors.push(format!("server: {field}: {value} is below the least that works, {min}"));
        }
    }
    if s.http2_initial_window_size > (1 << 31) - 1 {
        errors.push("server: http2_initial_window_size: at most 2147483647 (HTTP/2's largest window)");
    }
    check_admin_listen(s, errors);
    if s.status_listen != "off" && s.status_listen.parse::<std::net::SocketAddr>().is_err() {
        errors.push(format!(
            "server: status_listen: {:?} is not an ip:port address, e.g. \"127.0.0.1:8100\", or \"off\"",
            s.status_listen
        ));
    }
    if !matches!(s.access_log.as_str(), "text" | "json" | "off") {
        errors.push(format!("server: access_log: {:?} is not one of text, json, off", s.access_log));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&s.log_level) {
        errors.push(format!(
            "server: log_level: {:?} is not a log filter ({e}); use e.g. \"info\" or \"wasmgate=debug,info\"",
            s.log_level
        ));
    }
    let mut trusted_ips = Vec::new();
    for (i, ip) in s.trusted_ips.iter().enumerate() {
        match parse_net(ip) {
            Some(net) => trusted_ips.push(net),
            None => {
                errors.push(format!("server: trusted_ips[{i}]: {ip:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)"))
            }
        }
    }
    let real_ip_header = http::HeaderName::from_bytes(s.real_ip_header.as_bytes()).unwrap_or_else(|_| {
        errors.push(format!("server: real_ip_header: {:?} is not a valid header name", s.real_ip_header));
        http::HeaderName::from_static("x-forwarded-for")
    });
    let mut settings = ProxySettings {
        trusted_ips,
        real_ip_header,
        real_ip_recursive: s.real_ip_recursive,
        server_tokens: false,
        latency_tokens: false,
        metrics: s.metrics,
        client_header_timeout: Duration::from_secs(s.client_header_timeout),
        client_body_timeout: Duration::from_secs(s.client_body_timeout),
        keepalive_timeout: s.keepalive_timeout,
        trust_identity_headers: s.trust_identity_headers,
        escaped_slashes: match s.path_escaped_slashes.as_str() {
            "decode" => EscapedSlashes::Decode,
            "keep" => EscapedSlashes::Keep,
            other => {
                if other != "reject" {
                    errors.push(format!("server: path_escaped_slashes: {other:?} is not one of reject, decode, keep"));
                }
                EscapedSlashes::Reject
            }
        },
    };
    for (field, value) in
        [("client_header_timeout", s.client_header_timeout), ("client_body_timeout", s.client_body_timeout)]
    {
        if value == 0 || value > 86_400 {
            errors.push(format!("server: {field}: {value} is out of range; use 1 to 86400 (seconds)"));
        }
    }
    for (i, token) in s.headers.iter().enumerate() {
        match token.as_str() {
            "server_tokens" => settings.server_tokens = true,
            "latency_tokens" => settings.latency_tokens = true,
            "off" => {}
            other => errors.push(format!(
                "server: headers[{i}]: unknown token {other:?}; use server_tokens, latency_tokens or off"
            )),
        }
    }
    settings
}

/// `admin_listen` must be an address or `off`; off loopback it needs a token (or an explicit opt-out).
fn check_admin_listen(s: &ServerConfig, errors: &mut ConfigErrors) {
    if s.admin_listen == "off" {
        return;
    }
    let Ok(addr) = s.admin_listen.parse::<std::net::SocketAddr>() else {
        errors.push(format!(
            "server: admin_listen: {:?} is not an ip:port address, e.g. \"127.0.0.1:8001\", or \"off\"",
            s.admin_listen
        ));
        return;
    };
    if s.admin_token.as_deref().is_some_and(str::is_empty) {
        errors.push("server: admin_token: must not be empty; remove it or set a long random string");
    }
    if !addr.ip().is_loopback() && s.admin_token.is_none() && !s.admin_allow_open_bind {
        errors.push(format!(
            "server: admin_listen: {addr} is reachable from other hosts, so the Admin API needs `admin_token` \
             (clients send `Authorization: Bearer TOKEN`); bind 127.0.0.1, or set `admin_allow_open_bind = true` \
             if a firewall guards it"
        ));
    }
}

/// Parses an IP or CIDR.
pub(crate) fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// What a request path's `%2F`, `%5C` and `\\` get (Envoy's `path_with_escaped_slashes_action`):
/// a backend may read them as separators where the router did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EscapedSlashes {
    /// 400.
    Reject,
    /// Read as `/` before matching, and forwarded so.
    Decode,
    /// Left as they are (Kong's behaviour).
    Keep,
}

/// When a change of a `[server]` field takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applies {
    /// With the next snapshot (SIGHUP, `--watch`, an Admin API write): read per request.
    OnReload,
    /// When the process starts: listeners, threads, the store, logging set-up.
    OnRestart,
}

/// One row of [`RELOAD_POLICY`].
pub(crate) struct FieldPolicy {
    /// The field's name in `[server]`.
    pub(crate) field: &'static str,
    /// When a change takes effect.
    pub(crate) applies: Applies,
    /// Whether the field differs between two configurations.
    pub(crate) changed: fn(&ServerConfig, &ServerConfig) -> bool,
}

macro_rules! policy {
    ($($field:ident: $applies:ident),* $(,)?) => {
        &[$(FieldPolicy {
            field: stringify!($field),
            applies: Applies::$applies,
            changed: |a, b| a.$field != b.$field,
        }),*]
    };
}

/// Every `[server]` field and when a change of it takes effect: the one table that the reload
/// warning, the tests and the README's table follow. A field missing here fails a test.
pub(crate) const RELOAD_POLICY: &[FieldPolicy] = policy![
    proxy_listen: OnRestart,
    ssl_cert: OnRestart,
    ssl_cert_key: OnRestart,
    ssl_protocols: OnRestart,
    ssl_cipher_suite: OnRestart,
    ssl_ciphers: OnRestart,
    ssl_session_tickets: OnRestart,
    ssl_session_ticket_rotation: OnRestart,
    ssl_client_ca: OnRestart,
    ssl_verify_client: OnRestart,
    http2_max_concurrent_streams: OnRestart,
    http2_max_header_list_size: OnRestart,
    http2_initial_window_size: OnRestart,
    admin_listen: OnRestart,
    admin_token: OnReload,
    admin_allow_open_bind: OnRestart,
    admin_allowed_origins: OnRestart,
    admin_server_names: OnRestart,
    status_listen: OnRestart,
    database: OnRestart,
    data_dir: OnRestart,
    worker_threads: OnRestart,
    trusted_ips: OnReload,
    real_ip_header: OnReload,
    real_ip_recursive: OnReload,
    headers: OnReload,
    access_log: OnRestart,
    metrics: OnReload,
    log_level: OnRestart,
    graceful_shutdown_timeout: OnRestart,
    client_header_timeout: OnReload,
    client_body_timeout: OnReload,
    keepalive_timeout: OnReload,
    trust_identity_headers: OnReload,
    path_escaped_slashes: OnReload,
    upstream_keepalive_pool_size: OnRestart,
    plugins_file: OnRestart,
];

/// The restart-only fields that differ between the running `[server]` and a reloaded one.
pub(crate) fn restart_only_changes(running: &ServerConfig, loaded: &ServerConfig) -> Vec<&'static str> {
    RELOAD_POLICY
        .iter()
        .filter(|p| p.applies == Applies::OnRestart && (p.changed)(running, loaded))
        .map(|p| p.field)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`RELOAD_POLICY`] as the README's Markdown table.
    fn reload_policy_markdown() -> String {
        let mut out = String::from("| Field | A change applies |\n|---|---|\n");
        for p in RELOAD_POLICY {
            let when = match p.applies {
                Applies::OnReload => "on reload",
                Applies::OnRestart => "on restart",
            };
            out.push_str(&format!("| `{}` | {when} |\n", p.field));
        }
        out
    }

    #[test]
    fn every_server_field_has_a_reload_policy() {
        let every = ServerConfig {
            admin_token: Some("t".into()),
            ssl_cert: Some("c".into()),
            ssl_cert_key: Some("k".into()),
            ssl_ciphers: Some("x".into()),
            ssl_client_ca: Some("ca".into()),
            ..Default::default()
        };
        let fields = toml::Table::try_from(every).expect("[server] serialises");
        let mut named: Vec<&str> = RELOAD_POLICY.iter().map(|p| p.field).collect();
        named.sort();
        let mut expected: Vec<&str> = fields.keys().map(String::as_str).collect();
        expected.push("plugins_file"); // None is not serialised
        expected.sort();
        assert_eq!(named, expected, "add the field to RELOAD_POLICY");
    }

    #[test]
    fn a_changed_restart_field_is_named_and_a_reload_field_is_not() {
        let running = ServerConfig::default();
        let loaded = ServerConfig {
            admin_token: Some("new".into()),
            database: super::super::Database::Embedded,
            trusted_ips: vec!["10.0.0.0/8".into()],
            ..ServerConfig::default()
        };
        assert_eq!(restart_only_changes(&running, &loaded), ["database"]);
    }

    #[test]
    fn the_readme_table_follows_the_policy() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let block = readme
            .split("<!-- reload-policy:start -->")
            .nth(1)
            .and_then(|r| r.split("<!-- reload-policy:end -->").next())
            .expect("README.md has the reload-policy markers");
        assert_eq!(block.trim(), reload_policy_markdown().trim(), "update README.md's table to this");
    }
}
