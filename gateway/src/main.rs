//! `wasmgate`: run the gateway, or check a configuration.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: measured faster than glibc's malloc on the proxy path (docs/BENCHMARKS.md); see
/// [`wasmgate::memory`].
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Huge pages off before any constructor runs, the allocator's included (`.preinit_array`), so
/// that no 2 MiB page is taken before they are, and freed memory returned at once during
/// start-up: see [`wasmgate::memory::at_process_start`].
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".preinit_array")]
static AT_PROCESS_START: extern "C" fn() = {
    extern "C" fn at_process_start() {
        wasmgate::memory::at_process_start()
    }
    at_process_start
};

#[derive(Parser)]
#[command(name = "wasmgate", version, about = "API gateway on Pingora with WebAssembly plugins")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve traffic with a configuration.
    Run {
        /// The gateway configuration (TOML).
        #[arg(short, long, default_value = "gateway.toml")]
        config: PathBuf,
        /// The plugins file (TOML); overrides `server.plugins_file`.
        #[arg(short, long)]
        plugins: Option<PathBuf>,
        /// Reload when the configuration files change (SIGHUP always reloads).
        #[arg(long)]
        watch: bool,
    },
    /// Validate a configuration: exit 0, or print every error and exit 1.
    Check {
        /// The gateway configuration (TOML).
        #[arg(short, long, default_value = "gateway.toml")]
        config: PathBuf,
        /// The plugins file (TOML); overrides `server.plugins_file`.
        #[arg(short, long)]
        plugins: Option<PathBuf>,
    },
    /// Move a configuration between the TOML files and the embedded database.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print a plugin's configuration reference (Markdown, from the schema the module exports).
    PluginDoc {
        /// The plugin module (`.wasm`).
        module: PathBuf,
    },
    /// Plugin modules.
    Plugin {
        #[command(subcommand)]
        action: PluginAction,
    },
    /// Print the argon2id hash of the password read from standard input (one line), for a
    /// basic-auth credential's `password` in TOML.
    PasswordHash,
}

#[derive(Subcommand)]
enum PluginAction {
    /// Make a core wasm module (Go: `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`) into
    /// a plugin component: the `plugin` world embedded, WASI preview 1 adapted.
    Componentize {
        /// The core module.
        input: PathBuf,
        /// Where to write the component.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Compile the module on standard input into the compiled-code cache (the gateway runs this
    /// in a child process, so that the compiler's memory is never its own).
    #[command(hide = true)]
    Compile {
        /// SHA-256 of the module (hex): its cache key.
        #[arg(long)]
        hash: String,
        /// The compiled-code cache.
        #[arg(long)]
        cache_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the entities and plugin instances as TOML (from the database in embedded mode).
    Export {
        /// The gateway configuration (TOML).
        #[arg(short, long, default_value = "gateway.toml")]
        config: PathBuf,
        /// The plugins file (TOML); overrides `server.plugins_file`.
        #[arg(short, long)]
        plugins: Option<PathBuf>,
    },
    /// Validate FILE and make its entities the embedded database's (run it while the gateway is
    /// stopped; a running one takes `POST /config`).
    Import {
        /// A declarative configuration or an export.
        file: PathBuf,
        /// The gateway configuration (TOML), with `database = "embedded"`.
        #[arg(short, long, default_value = "gateway.toml")]
        config: PathBuf,
        /// The plugins file (TOML); overrides `server.plugins_file`.
        #[arg(short, long)]
        plugins: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Ok(exe) = std::env::current_exe() {
        wasmgate::plugins::engine::compile_in_children(exe);
    }
    let result = match cli.command {
        Command::Run { config, plugins, watch } => {
            wasmgate::server::run(wasmgate::server::RunOptions { config, plugins, watch })
        }
        Command::Check { config, plugins } => wasmgate::transfer::stored_entities(&config).and_then(|stored| {
            let loaded = wasmgate::reload::Loader::new(config.clone(), plugins).load(stored.as_ref())?;
            wasmgate::server::check_tls_files(&config)?;
            let plugins = loaded.plugin_instances();
            println!("{}: configuration is valid ({plugins} plugin instances)", config.display());
            Ok(())
        }),
        Command::Config { action: ConfigAction::Export { config, plugins } } => {
            wasmgate::transfer::export(&config, plugins).map(|toml| print!("{toml}"))
        }
        Command::Config { action: ConfigAction::Import { file, config, plugins } } => {
            wasmgate::transfer::import(&config, plugins, &file)
                .map(|n| println!("{}: imported {n} entities into the embedded database", file.display()))
        }
        Command::PluginDoc { module } => plugin_doc(&module).map_err(wasmgate::config::ConfigErrors::from),
        Command::Plugin { action: PluginAction::Componentize { input, output } } => {
            componentize(&input, &output).map_err(wasmgate::config::ConfigErrors::from)
        }
        Command::Plugin { action: PluginAction::Compile { hash, cache_dir } } => return compile(&hash, &cache_dir),
        Command::PasswordHash => password_hash().map_err(wasmgate::config::ConfigErrors::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn compile(hash: &str, cache_dir: &std::path::Path) -> ExitCode {
    let mut module = Vec::new();
    if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut module) {
        eprintln!("cannot read the module from standard input: {e}");
        return ExitCode::FAILURE;
    }
    match wasmgate::plugins::engine::compile_to_cache(cache_dir, hash, &module) {
        Ok(()) => ExitCode::SUCCESS,
        Err((status, message)) => {
            eprintln!("{message}");
            ExitCode::from(status as u8)
        }
    }
}

fn password_hash() -> Result<(), String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err("no password on standard input (example: echo 's3cret' | wasmgate password-hash)".into());
    }
    println!("{}", wasmgate::passwords::hash(password)?);
    Ok(())
}

fn componentize(input: &std::path::Path, output: &std::path::Path) -> Result<(), String> {
    let core = std::fs::read(input).map_err(|e| format!("{}: cannot read: {e}", input.display()))?;
    let component =
        wasmgate::plugins::componentize::componentize(&core).map_err(|e| format!("{}: {e}", input.display()))?;
    // Written aside, then renamed: a gateway watching the directory never sees half a file.
    let partial = output.with_extension("wasm.partial");
    std::fs::write(&partial, &component)
        .and_then(|()| std::fs::rename(&partial, output))
        .map_err(|e| format!("{}: cannot write: {e}", output.display()))?;
    println!("{}: component written ({} bytes)", output.display(), component.len());
    Ok(())
}

fn plugin_doc(module: &std::path::Path) -> Result<(), String> {
    let loaded =
        wasmgate::plugins::PluginHost::default().load_file(module).map_err(|e| format!("{}: {e}", module.display()))?;
    print!("{}", wasmgate::plugins::doc::config_markdown(&loaded.schema)?);
    Ok(())
}
