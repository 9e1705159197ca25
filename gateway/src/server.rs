//! Assembles and runs the Pingora server: proxy listeners, the reload service and graceful shutdown.

use crate::admin::records::Records;
use crate::admin::store::Store;
use crate::admin::{Admin, AdminApp};
use crate::config::{ConfigErrors, Database, Listener, ServerConfig, TlsPolicy, relative_to};
use crate::probes::Prober;
use crate::proxy::{Gateway, ProxyApp, SniCertificates};
use crate::reload::{Loader, ReloadService, Reloader};
use crate::status::{Status, StatusApp};
use crate::tls::CertKey;
use async_trait::async_trait;
use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::TcpSocketOptions;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// What `wasmgate run` was asked to do.
pub struct RunOptions {
    /// `gateway.toml`.
    pub config: PathBuf,
    /// `plugins.toml`, overriding the one `gateway.toml` names.
    pub plugins: Option<PathBuf>,
    /// Reload when the configuration files change.
    pub watch: bool,
}

/// Loads the configuration and serves until SIGTERM (graceful) or SIGINT (immediate).
pub fn run(opts: RunOptions) -> Result<(), ConfigErrors> {
    // Logging first, so that loading is logged; its settings come from `[server]`.
    let server_file = crate::config::load_gateway(&opts.config)?.server;
    crate::logging::init(&server_file);
    let loader = Loader::new(opts.config.clone(), opts.plugins);
    loader.defer_compiling();
    let store = match server_file.database {
        Database::Embedded => Some(open_store(&opts.config, &server_file)?),
        Database::Off => None,
    };
    let entities = store.as_ref().map(|(_, records)| records.to_config()).transpose()?;
    let (reloader, server_cfg) = Reloader::start(loader, entities)?;
    // What loading the configuration and the plugins used and freed is not needed again.
    crate::memory::release_free();

    let in_flight = Arc::new(AtomicUsize::new(0));
    let conf = server_conf(&server_cfg);
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let gateway = Gateway::new(reloader.live(), in_flight.clone());
    let mut http = pingora_proxy::http_proxy(&server.configuration, gateway);
    http.h2_options = Some(h2_options(&server_cfg));
    let mut options = HttpServerOptions::default();
    options.h2c = true;
    http.server_options = Some(options);
    let h2c = server_cfg.proxy_listen.iter().filter_map(|l| Listener::parse(l).ok());
    let h2c = h2c.filter(|l| l.http2 && !l.ssl).map(|l| l.addr).collect();
    let app = ProxyApp::new(http, reloader.live(), h2c);
    let mut proxy = Service::new("proxy".to_string(), app);
    add_listeners(&mut proxy, &server_cfg, &opts.config, &reloader)?;
    server.add_service(proxy);
    let status = Arc::new(Status { reloader: reloader.clone(), in_flight: in_flight.clone() });
    if server_cfg.status_listen != "off" {
        let mut service = Service::new("status".to_string(), StatusApp(status.clone()));
        service.threads = Some(1);
        service.add_tcp(&server_cfg.status_listen);
        server.add_service(service);
    }
    if server_cfg.admin_listen != "off" {
        let admin = Arc::new(Admin::new(reloader.clone(), store, status));
        let mut service = Service::new("admin".to_string(), AdminApp(admin));
        // Writers are serialized anyway; one thread keeps the admin listener off the proxy's cores.
        service.threads = Some(1);
        service.add_tcp(&server_cfg.admin_listen);
        server.add_service(service);
    }
    server.add_service(background_service("health checks", Prober { live: reloader.live() }));
    server.add_service(background_service("reload", ReloadService { reloader, watch: opts.watch }));

    tracing::info!(
        listen = ?server_cfg.proxy_listen, admin = %server_cfg.admin_listen, database = ?server_cfg.database,
        "wasmgate {} starting", env!("CARGO_PKG_VERSION")
    );
    let grace = Duration::from_secs(server_cfg.graceful_shutdown_timeout);
    server.run(RunArgs { shutdown_signal: Box::new(Signals { in_flight, grace }) });
    Ok(())
}

/// Adds the `proxy_listen` listeners to the proxy service: plain TCP, or TLS with the
/// certificates chosen by SNI (and h2 through ALPN with `http2`).
fn add_listeners(
    proxy: &mut Service<ProxyApp>,
    server: &ServerConfig,
    config_file: &Path,
    reloader: &Reloader,
) -> Result<(), ConfigErrors> {
    let listeners: Vec<Listener> = server.proxy_listen.iter().filter_map(|l| Listener::parse(l).ok()).collect();
    let default = match listeners.iter().any(|l| l.ssl) {
        true => Some(default_certificate(server, config_file)?),
        false => None,
    };
    let policy = TlsPolicy::from_server(server)
        .and_then(|p| p.read_client_ca(server, config_file))
        .map_err(ConfigErrors::from)?;
    let tickets = policy.ticket_keys().map_err(|e| ConfigErrors::from(format!("server: TLS session tickets: {e}")))?;
    for l in listeners {
        let addr = l.addr.to_string();
        let mut options = TcpSocketOptions::default();
        options.so_reuseport = l.reuseport.then_some(true);
        match &default {
            Some(default) if l.ssl => {
                let chooser = SniCertificates::new(reloader.live(), default.clone());
                let settings_error = |e: &dyn std::fmt::Display| {
                    ConfigErrors::from(format!("server: proxy_listen: {addr}: TLS settings: {e}"))
                };
                let mut tls = TlsSettings::with_callbacks(Box::new(chooser)).map_err(|e| settings_error(&e))?;
                policy.apply(&mut tls, tickets.as_ref()).map_err(|e| settings_error(&e))?;
                if l.http2 {
                    tls.enable_h2();
                }
                proxy.add_tls_with_settings(&addr, Some(options), tls);
            }
            _ => proxy.add_tcp_with_settings(&addr, options),
        }
    }
    Ok(())
}

/// Checks the TLS files of `[server]` (`ssl_cert`, `ssl_cert_key`, `ssl_client_ca`) of
/// `config_file`, as a start would read them: `wasmgate check` runs it.
pub fn check_tls_files(config_file: &Path) -> Result<(), ConfigErrors> {
    let server = crate::config::load_gateway(config_file)?.server;
    if server.ssl_cert.is_some() {
        read_default_certificate(&server, config_file)?;
    }
    TlsPolicy::from_server(&server).and_then(|p| p.read_client_ca(&server, config_file)).map_err(ConfigErrors::from)?;
    Ok(())
}

/// `ssl_cert` and `ssl_cert_key`, read and checked.
fn read_default_certificate(server: &ServerConfig, config_file: &Path) -> Result<Option<CertKey>, ConfigErrors> {
    let (Some(cert), Some(key)) = (&server.ssl_cert, &server.ssl_cert_key) else { return Ok(None) };
    let read = |field: &str, p: &Path| {
        let path = relative_to(config_file, p);
        std::fs::read(&path)
            .map_err(|e| ConfigErrors::from(format!("server: {field}: cannot read {}: {e}", path.display())))
    };
    let pair = CertKey::from_pem(&read("ssl_cert", cert)?, &read("ssl_cert_key", key)?)
        .map_err(|e| ConfigErrors::from(format!("server: ssl_cert: {e}")))?;
    Ok(Some(pair))
}

/// The certificate for server names no certificate claims: `ssl_cert` and `ssl_cert_key`, or a
/// self-signed one made now (as Kong does), with a warning.
fn default_certificate(server: &ServerConfig, config_file: &Path) -> Result<Arc<[CertKey]>, ConfigErrors> {
    let pair = match read_default_certificate(server, config_file)? {
        Some(pair) => pair,
        None => {
            tracing::warn!(
                "no default certificate (server.ssl_cert, server.ssl_cert_key): a self-signed one for localhost \
                 is served to clients whose server name no certificate claims"
            );
            CertKey::self_signed().map_err(ConfigErrors::from)?
        }
    };
    Ok(Arc::from([pair]))
}

/// Opens the embedded database named by `[server]` and reads every entity.
pub(crate) fn open_store(config_file: &Path, server: &ServerConfig) -> Result<(Store, Records), ConfigErrors> {
    let data_dir = relative_to(config_file, &server.data_dir);
    // The store's connection runs on its own thread; this runtime only drives the opening reads.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ConfigErrors::from(format!("cannot start a runtime: {e}")))?;
    rt.block_on(async {
        let mut store = Store::open(&data_dir).await?;
        let records = store.load().await?;
        tracing::info!(path = %store.path().display(), "embedded database opened");
        Ok::<_, String>((store, records))
    })
    .map_err(ConfigErrors::from)
}

/// The HTTP/2 server settings of `[server]`. Pingora's h2 server (the `h2` crate) also bounds
/// resets: a client that resets streams faster than it lets them finish (rapid reset) gets a
/// GOAWAY.
fn h2_options(s: &ServerConfig) -> pingora_core::protocols::http::v2::server::H2Options {
    let mut options = pingora_core::protocols::http::v2::server::H2Options::new();
    options
        .max_concurrent_streams(s.http2_max_concurrent_streams)
        .max_header_list_size(s.http2_max_header_list_size)
        .initial_window_size(s.http2_initial_window_size)
        .initial_connection_window_size(s.http2_initial_window_size.saturating_mul(4).min((1 << 31) - 1));
    options
}

fn server_conf(s: &ServerConfig) -> ServerConf {
    let threads = match s.worker_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    ServerConf {
        threads,
        grace_period_seconds: Some(s.graceful_shutdown_timeout),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: s.upstream_keepalive_pool_size,
        // One single-threaded runtime per worker thread (Pingora's "no steal" runtime): no
        // cross-thread task handoff on the request path (docs/BENCHMARKS.md).
        work_stealing: false,
        // Retries are decided per service in `fail_to_connect`; this is only Pingora's ceiling.
        max_retries: 100,
        ..ServerConf::default()
    }
}

/// SIGTERM: stop accepting, let requests in flight finish (up to `grace`), then exit as soon as
/// none is left. SIGINT: exit now. SIGQUIT: Pingora's graceful upgrade.
struct Signals {
    in_flight: Arc<AtomicUsize>,
    grace: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let (Ok(mut term), Ok(mut int), Ok(mut quit)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::quit()))
        else {
            tracing::error!("cannot install signal handlers");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = term.recv() => {
                tracing::info!(grace = ?self.grace, "SIGTERM: finishing requests in flight");
                let in_flight = self.in_flight.clone();
                std::thread::spawn(move || exit_when_idle(&in_flight));
                ShutdownSignal::GracefulTerminate
            }
            _ = int.recv() => {
                // Exit here rather than through Pingora's fast shutdown, which can hang: with one
                // runtime per thread, an accept loop whose listener belonged to a runtime already
                // stopped spins on errors, and its thread is never joined.
                tracing::info!("SIGINT: exiting now");
                std::process::exit(0)
            }
            _ = quit.recv() => ShutdownSignal::GracefulUpgrade,
        }
    }
}

/// Longest wait at exit for log sinks to write or send what they hold.
const LOG_DRAIN: Duration = Duration::from_secs(5);

/// Pingora waits out the whole grace period; end the process as soon as no request is left (and
/// the log sinks have written what they hold, for up to [`LOG_DRAIN`]).
fn exit_when_idle(in_flight: &AtomicUsize) {
    // Give the listeners a moment to stop accepting before counting.
    std::thread::sleep(Duration::from_millis(100));
    loop {
        if in_flight.load(Ordering::Acquire) == 0 {
            crate::sinks::drain(LOG_DRAIN);
            tracing::info!("no requests in flight; exiting");
            std::process::exit(0);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
