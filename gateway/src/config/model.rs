//! The TOML shape of `gateway.toml`. Field names and defaults follow Kong's entities and `kong.conf`.

use super::upstream::Healthchecks;
use crate::config::{ModuleOverrides, PluginEntry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The whole `gateway.toml`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Node settings (listeners, threads, logging). Not reloadable: changes need a restart.
    #[serde(default)]
    pub(crate) server: ServerConfig,
    /// Upstream APIs the gateway forwards to.
    #[serde(default)]
    pub(crate) services: Vec<ServiceConfig>,
    /// Rules that match requests to services.
    #[serde(default)]
    pub(crate) routes: Vec<RouteConfig>,
    /// Named, load-balanced groups of targets. A service whose `host` is an upstream's name is balanced.
    #[serde(default)]
    pub(crate) upstreams: Vec<UpstreamConfig>,
    /// API clients, with their credentials and ACL groups.
    #[serde(default)]
    pub(crate) consumers: Vec<ConsumerConfig>,
    /// TLS certificates and the server names (SNIs) each is for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) certificates: Vec<CertificateConfig>,
    /// CA certificates that services trust for their upstreams (`ca_certificates` on a service).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) ca_certificates: Vec<CaCertificateConfig>,
    /// Plugin instances, as in Kong's declarative file (they may also live in `plugins.toml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginEntry>,
    /// Module settings changed at run time, by module name; they override `plugins.toml`'s.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) modules: BTreeMap<String, ModuleOverrides>,
}

/// `[server]`: settings of this node, named as in `kong.conf`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerConfig {
    /// Proxy listeners, `host:port` with Kong's flags (`ssl`, `http2`, `reuseport`, `backlog=N`);
    /// one string or a list.
    #[serde(deserialize_with = "one_or_many")]
    pub(crate) proxy_listen: Vec<String>,
    /// The default certificate's PEM file (for names no certificate claims); with none, and a
    /// listener with `ssl`, a self-signed one is made at start.
    pub(crate) ssl_cert: Option<PathBuf>,
    /// Its private key's PEM file.
    pub(crate) ssl_cert_key: Option<PathBuf>,
    /// TLS versions the `ssl` listeners accept, oldest to newest without gaps (Kong's default).
    pub(crate) ssl_protocols: String,
    /// Mozilla's cipher suites: `modern` (TLS 1.3 only), `intermediate`, `old`, or `custom`
    /// (with `ssl_ciphers`).
    pub(crate) ssl_cipher_suite: String,
    /// An OpenSSL cipher list, with `ssl_cipher_suite = "custom"`.
    pub(crate) ssl_ciphers: Option<String>,
    /// Session resumption with TLS tickets.
    pub(crate) ssl_session_tickets: bool,
    /// Seconds between ticket-key rotations: a ticket resumes for one to two of them.
    pub(crate) ssl_session_ticket_rotation: u64,
    /// A PEM file of CA certificates: the `ssl` listeners ask clients for a certificate signed
    /// by one of them (mutual TLS); plugins see its subject and fingerprint.
    pub(crate) ssl_client_ca: Option<PathBuf>,
    /// With `ssl_client_ca`: `optional` (a client may present none; one that fails verification
    /// fails the handshake) or `on` (a client without one fails the handshake).
    pub(crate) ssl_verify_client: String,
    /// HTTP/2: streams one client connection may have open at once (nginx's default, 128).
    pub(crate) http2_max_concurrent_streams: u32,
    /// HTTP/2: the largest request header list, in bytes (decoded, as HPACK counts it).
    pub(crate) http2_max_header_list_size: u32,
    /// HTTP/2: each request stream's receive window, in bytes (how much of a body a client may
    /// send before the gateway reads it).
    pub(crate) http2_initial_window_size: u32,
    /// Admin API listener, `host:port`, or `off`.
    pub(crate) admin_listen: String,
    /// Token the Admin API requires (`Authorization: Bearer TOKEN` or `Kong-Admin-Token: TOKEN`).
    /// Required when `admin_listen` is not a loopback address.
    pub(crate) admin_token: Option<String>,
    /// Serve the Admin API on a non-loopback address without a token (only behind a firewall).
    pub(crate) admin_allow_open_bind: bool,
    /// Web origins (`scheme://host[:port]`) whose pages may call the Admin API; any other request
    /// with an `Origin` header is refused.
    pub(crate) admin_allowed_origins: Vec<String>,
    /// Host names the Admin API answers to besides IP addresses and `localhost` (DNS rebinding).
    pub(crate) admin_server_names: Vec<String>,
    /// Status listener (`/metrics`, `/status`), `host:port`, or `off`.
    pub(crate) status_listen: String,
    /// Where entities live: `off` (the TOML files; the Admin API is read-only) or `embedded`
    /// (a database file under `data_dir`, written through the Admin API).
    pub(crate) database: Database,
    /// Directory of the embedded database, relative to this file.
    pub(crate) data_dir: PathBuf,
    /// Proxy worker threads; 0 means one per CPU.
    pub(crate) worker_threads: usize,
    /// Addresses (IPs or CIDRs) whose `X-Forwarded-*` headers are believed.
    pub(crate) trusted_ips: Vec<String>,
    /// Header that carries the client address when the peer is trusted.
    pub(crate) real_ip_header: String,
    /// With `real_ip_header = "X-Forwarded-For"`: skip trusted addresses from the right.
    pub(crate) real_ip_recursive: bool,
    /// Headers the gateway adds: `server_tokens` (Via), `latency_tokens` (X-Gateway-*-Latency), or `off`.
    pub(crate) headers: Vec<String>,
    /// Access log: `text`, `json` or `off`.
    pub(crate) access_log: String,
    /// Per-request metrics (requests, latencies, bandwidth, plugin calls) on `/metrics`.
    pub(crate) metrics: bool,
    /// Log filter for everything else, e.g. `info` or `wasmgate=debug,info`.
    pub(crate) log_level: String,
    /// Seconds that in-flight requests get to finish after SIGTERM.
    pub(crate) graceful_shutdown_timeout: u64,
    /// Seconds a client has to send a whole request header; then the connection is closed
    /// (nginx's name and default).
    pub(crate) client_header_timeout: u64,
    /// Seconds between two reads of a client's request body before it gets 408 (nginx's name).
    pub(crate) client_body_timeout: u64,
    /// Seconds an idle keep-alive client connection is kept open (0: until the client closes it).
    pub(crate) keepalive_timeout: u64,
    /// Keep the identity headers a client sends (`X-Consumer-*`, `X-Credential-Identifier`,
    /// `X-Anonymous-Consumer`, `X-Authenticated-*`): only behind a trusted hop that sets them.
    pub(crate) trust_identity_headers: bool,
    /// `%2F`, `%5C` and `\` in a request path: `reject` (400), `decode` (as `/`) or `keep`.
    pub(crate) path_escaped_slashes: String,
    /// Idle keepalive connections kept per upstream pool.
    pub(crate) upstream_keepalive_pool_size: usize,
    /// The plugins file, relative to this file. `--plugins` on the command line wins.
    pub(crate) plugins_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            proxy_listen: vec!["0.0.0.0:8000".into()],
            ssl_cert: None,
            ssl_cert_key: None,
            ssl_protocols: "TLSv1.2 TLSv1.3".into(),
            ssl_cipher_suite: "intermediate".into(),
            ssl_ciphers: None,
            ssl_session_tickets: true,
            ssl_session_ticket_rotation: 3600,
            ssl_client_ca: None,
            ssl_verify_client: "optional".into(),
            http2_max_concurrent_streams: 128,
            http2_max_header_list_size: 65536,
            http2_initial_window_size: 1 << 20,
            admin_listen: "127.0.0.1:8001".into(),
            admin_token: None,
            status_listen: "off".into(),
            admin_allow_open_bind: false,
            admin_allowed_origins: Vec::new(),
            admin_server_names: Vec::new(),
            database: Database::Off,
            data_dir: PathBuf::from("data"),
            worker_threads: 0,
            trusted_ips: Vec::new(),
            real_ip_header: "X-Forwarded-For".into(),
            real_ip_recursive: true,
            headers: vec!["server_tokens".into(), "latency_tokens".into()],
            access_log: "text".into(),
            metrics: true,
            log_level: "info".into(),
            graceful_shutdown_timeout: 30,
            client_header_timeout: 60,
            client_body_timeout: 60,
            keepalive_timeout: 60,
            trust_identity_headers: false,
            path_escaped_slashes: "reject".into(),
            upstream_keepalive_pool_size: 128,
            plugins_file: None,
        }
    }
}

/// `[[certificates]]`: Kong's certificate entity, with the names (`snis`) it is served for. The
/// PEM is given inline (`cert`, `key`) or read from files (`cert_file`, `key_file`, relative to
/// `gateway.toml`); `cert_alt`/`key_alt` add a second pair (an ECDSA one beside RSA, say).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CertificateConfig {
    /// UUID; derived from the first SNI (or the certificate) when absent.
    pub(crate) id: Option<String>,
    /// PEM certificate, then its chain.
    pub(crate) cert: Option<String>,
    /// PEM private key of `cert`.
    pub(crate) key: Option<String>,
    /// A file with the PEM certificate chain, instead of `cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cert_file: Option<PathBuf>,
    /// A file with the PEM private key, instead of `key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key_file: Option<PathBuf>,
    /// A second PEM certificate (another key type).
    pub(crate) cert_alt: Option<String>,
    /// Its private key.
    pub(crate) key_alt: Option<String>,
    /// Server names: exact (`api.example.com`), or with a leading (`*.example.com`) or trailing
    /// (`example.*`) wildcard.
    #[serde(default)]
    pub(crate) snis: Vec<String>,
    /// Free-form labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// One server name of a certificate: Kong's SNI entity (`/snis`). In TOML they are the
/// certificate's `snis` list.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SniConfig {
    /// UUID.
    pub(crate) id: Option<String>,
    /// The name: exact, `*.suffix` or `prefix.*`.
    pub(crate) name: String,
    /// Free-form labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// `[[ca_certificates]]`: a CA that services may trust for their upstreams' certificates
/// (Kong's `ca_certificates` entity).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaCertificateConfig {
    /// UUID; derived from the certificate when absent.
    pub(crate) id: Option<String>,
    /// PEM of the CA certificate.
    pub(crate) cert: Option<String>,
    /// A file with the PEM, instead of `cert` (relative to `gateway.toml`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cert_file: Option<PathBuf>,
    /// Free-form labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// `[server] database`: where the entities are kept.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Database {
    /// Declarative: the TOML files are the source of truth (Kong's DB-less mode).
    #[default]
    Off,
    /// An embedded database file under `data_dir`, written through the Admin API.
    Embedded,
}

/// `[[services]]`: an upstream API.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServiceConfig {
    /// UUID; derived from the name when absent.
    pub(crate) id: Option<String>,
    /// Unique name.
    pub(crate) name: Option<String>,
    /// Shorthand for protocol, host, port and path: `http://host:port/path`.
    pub(crate) url: Option<String>,
    /// `http`, or `https` (TLS to the upstream).
    pub(crate) protocol: Option<String>,
    /// Host to connect to, or the name of an upstream to balance over.
    pub(crate) host: Option<String>,
    /// Port; 80 by default, 443 for `https`.
    pub(crate) port: Option<u16>,
    /// Path prefix added in front of the proxied path.
    pub(crate) path: Option<String>,
    /// Connection attempts after the first one fails.
    #[serde(default = "defaults::retries")]
    pub(crate) retries: u32,
    /// Milliseconds to establish the connection.
    #[serde(default = "defaults::timeout")]
    pub(crate) connect_timeout: u64,
    /// Milliseconds between two successive reads from the upstream.
    #[serde(default = "defaults::timeout")]
    pub(crate) read_timeout: u64,
    /// Milliseconds between two successive writes to the upstream.
    #[serde(default = "defaults::timeout")]
    pub(crate) write_timeout: u64,
    /// Speak HTTP/2 to the upstream: with `http`, h2c with prior knowledge (the upstream must
    /// speak it); with `https`, offered through ALPN beside HTTP/1.1. (`grpc` and `grpcs` always
    /// do.)
    #[serde(default)]
    pub(crate) http2: bool,
    /// With `https`/`grpcs`: verify the upstream's certificate and name (on unless `false`).
    pub(crate) tls_verify: Option<bool>,
    /// With `https`/`grpcs`: the longest certificate chain accepted (OpenSSL's default, 100, when
    /// absent).
    pub(crate) tls_verify_depth: Option<u32>,
    /// With `https`/`grpcs`: ids of `[[ca_certificates]]` that verify the upstream, instead of
    /// the system's trust store.
    pub(crate) ca_certificates: Option<Vec<String>>,
    /// With `https`/`grpcs`: the id (or an SNI) of a certificate presented to the upstream
    /// (mutual TLS).
    pub(crate) client_certificate: Option<String>,
    /// Free-form labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    /// Routes of this service, as Kong's declarative format nests them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) routes: Vec<RouteConfig>,
}

/// `[[routes]]`: which requests go to which service.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// UUID; derived from the name (or position) when absent.
    pub id: Option<String>,
    /// Unique name.
    pub name: Option<String>,
    /// Name or id of the service (implied when nested under a service).
    pub service: Option<String>,
    /// Host names; `*` as the leftmost or rightmost label; optional `:port`.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path prefixes (`/api`) or regexes (`~/v[0-9]+/`).
    #[serde(default)]
    pub paths: Vec<String>,
    /// HTTP methods.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Header name -> accepted values; a value starting with `~*` is a case-insensitive regex.
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Remove the matched path prefix before proxying (never on a gRPC-only route: the path
    /// names the method).
    #[serde(default = "defaults::yes")]
    pub strip_path: bool,
    /// Send the client's Host header upstream instead of the service's host.
    #[serde(default)]
    pub preserve_host: bool,
    /// Order among regex paths: higher is tried first.
    #[serde(default)]
    pub regex_priority: i64,
    /// Accepted protocols: `http`, `https`, `grpc`, `grpcs`, `ws`, `wss`. Without a plain one
    /// (`http`, `grpc`, `ws`) a plain request gets 426 or a redirect; with gRPC's only, a request
    /// that is not gRPC gets 415.
    #[serde(default = "defaults::protocols")]
    pub protocols: Vec<String>,
    /// The answer to a plain-HTTP request on an `https`-only route: 426 (Kong's "Please use
    /// HTTPS protocol"), or a redirect to `https://` with 301, 302, 307 or 308.
    pub https_redirect_status_code: Option<u16>,
    /// Free-form labels.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `[[upstreams]]`: a virtual host name balanced over targets.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpstreamConfig {
    /// UUID; derived from the name when absent.
    pub(crate) id: Option<String>,
    /// The name services use as their `host`.
    pub(crate) name: String,
    /// `round-robin` (smooth weighted), `consistent-hashing`, `least-connections` or `latency`.
    #[serde(default = "defaults::algorithm")]
    pub(crate) algorithm: String,
    /// Points on the consistent-hashing ring (10-65536).
    #[serde(default = "defaults::slots")]
    pub(crate) slots: u32,
    /// What consistent hashing hashes: `none`, `consumer`, `ip`, `header`, `cookie`, `path`,
    /// `query_arg` or `uri_capture`.
    #[serde(default = "defaults::none")]
    pub(crate) hash_on: String,
    /// What to hash when `hash_on` gives no value (not `cookie`).
    #[serde(default = "defaults::none")]
    pub(crate) hash_fallback: String,
    /// The header for `hash_on = "header"`.
    pub(crate) hash_on_header: Option<String>,
    /// The header for `hash_fallback = "header"`.
    pub(crate) hash_fallback_header: Option<String>,
    /// The cookie for `hash_on = "cookie"`; set on the response when the request has none.
    pub(crate) hash_on_cookie: Option<String>,
    /// The cookie's `Path`.
    #[serde(default = "defaults::root")]
    pub(crate) hash_on_cookie_path: String,
    /// The query argument for `hash_on = "query_arg"`.
    pub(crate) hash_on_query_arg: Option<String>,
    /// The query argument for `hash_fallback = "query_arg"`.
    pub(crate) hash_fallback_query_arg: Option<String>,
    /// The named capture of the route's regex path for `hash_on = "uri_capture"`.
    pub(crate) hash_on_uri_capture: Option<String>,
    /// The named capture for `hash_fallback = "uri_capture"`.
    pub(crate) hash_fallback_uri_capture: Option<String>,
    /// Active and passive health checks.
    #[serde(default)]
    pub(crate) healthchecks: Healthchecks,
    /// The servers behind this upstream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) targets: Vec<TargetConfig>,
    /// Free-form labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// `[[upstreams.targets]]`: one server.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetConfig {
    /// UUID; derived from upstream and target when absent.
    pub(crate) id: Option<String>,
    /// `host:port` (IP or DNS name; port 8000 when omitted, as in Kong).
    pub(crate) target: String,
    /// Share of traffic, 0..=65535; 0 takes the target out.
    #[serde(default = "defaults::weight")]
    pub(crate) weight: u32,
    /// Free-form labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// `[[consumers]]`: an API client.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsumerConfig {
    /// UUID; derived from the username (or custom_id) when absent.
    pub(crate) id: Option<String>,
    /// Unique user name.
    pub(crate) username: Option<String>,
    /// Unique id from another system.
    pub(crate) custom_id: Option<String>,
    /// Free-form labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    /// API keys for key-auth.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) keyauth_credentials: Vec<KeyAuthCredential>,
    /// ACL group memberships.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) acls: Vec<AclGroup>,
    /// JWT issuers and secrets (stored for the jwt plugin).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) jwt_secrets: Vec<JwtCredential>,
    /// Basic-auth user names and password hashes (stored for the basic-auth plugin).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) basicauth_credentials: Vec<BasicAuthCredential>,
    /// HMAC user names and secrets (for the hmac-auth plugin).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) hmacauth_credentials: Vec<HmacAuthCredential>,
}

/// `[[consumers.keyauth_credentials]]`: one API key.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyAuthCredential {
    /// UUID; derived from the key when absent.
    pub(crate) id: Option<String>,
    /// The secret key.
    pub(crate) key: String,
    /// Free-form labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// `[[consumers.acls]]`: membership of one group.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AclGroup {
    /// UUID; derived from consumer and group when absent.
    pub(crate) id: Option<String>,
    /// Group name.
    pub(crate) group: String,
    /// Free-form labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// `[[consumers.jwt_secrets]]`: one JWT issuer key and its secret.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JwtCredential {
    /// UUID; derived from the key when absent.
    pub(crate) id: Option<String>,
    /// The issuer (`iss` claim) this secret belongs to.
    pub(crate) key: String,
    /// The HMAC secret (HS algorithms).
    pub(crate) secret: Option<String>,
    /// `HS256`, `HS384`, `HS512`, `RS256`, `RS384`, `RS512`, `ES256`, `ES384`, `ES512`, `PS256`,
    /// `PS384`, `PS512` or `EdDSA`.
    #[serde(default = "defaults::jwt_algorithm")]
    pub(crate) algorithm: String,
    /// PEM public key (or certificate) for the RS, ES, PS and EdDSA algorithms.
    pub(crate) rsa_public_key: Option<String>,
    /// Free-form labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// `[[consumers.hmacauth_credentials]]`: one user name and its HMAC secret.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HmacAuthCredential {
    /// UUID; derived from the user name when absent.
    pub(crate) id: Option<String>,
    /// The user name clients sign as (`username=` in `Authorization: hmac ...`).
    pub(crate) username: String,
    /// The shared secret.
    pub(crate) secret: String,
    /// Free-form labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// `[[consumers.basicauth_credentials]]`: one user name and password. The password is hashed as
/// it is read (whatever the path: file, Admin API, `POST /config`, import), so only its hash is
/// ever kept or shown.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields, try_from = "BasicAuthInput")]
pub(crate) struct BasicAuthCredential {
    /// UUID; derived from the user name when absent.
    pub(crate) id: Option<String>,
    /// The user name.
    pub(crate) username: String,
    /// The password, or an argon2id hash of it (`wasmgate password-hash`); kept as the hash.
    pub(crate) password: String,
    /// Free-form labels.
    #[serde(default)]
    pub(crate) tags: Vec<String>,
}

/// A basic-auth credential as written, before its password is hashed.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BasicAuthInput {
    /// UUID; derived from the user name when absent.
    id: Option<String>,
    /// The user name.
    username: String,
    /// The password, or an argon2id hash of it (`wasmgate password-hash`); kept as the hash.
    password: String,
    /// Free-form labels.
    #[serde(default)]
    tags: Vec<String>,
}

impl TryFrom<BasicAuthInput> for BasicAuthCredential {
    type Error = String;

    fn try_from(c: BasicAuthInput) -> Result<Self, String> {
        let password = crate::passwords::to_stored(&c.username, &c.password).map_err(|e| format!("password: {e}"))?;
        Ok(BasicAuthCredential { id: c.id, username: c.username, password, tags: c.tags })
    }
}

mod defaults {
    pub(crate) fn jwt_algorithm() -> String {
        "HS256".into()
    }
    pub(crate) fn retries() -> u32 {
        5
    }
    pub(crate) fn timeout() -> u64 {
        60_000
    }
    pub(crate) fn yes() -> bool {
        true
    }
    pub(crate) fn protocols() -> Vec<String> {
        vec!["http".into(), "https".into()]
    }
    pub(crate) fn algorithm() -> String {
        "round-robin".into()
    }
    pub(crate) fn weight() -> u32 {
        100
    }
    pub(crate) fn slots() -> u32 {
        10_000
    }
    pub(crate) fn none() -> String {
        "none".into()
    }
    pub(crate) fn root() -> String {
        "/".into()
    }
}

/// Accepts `"a"` as well as `["a", "b"]`.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}
