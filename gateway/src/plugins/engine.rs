//! The wasmtime engine: component model, pooling allocator, epoch interruption (ticked by
//! [`super::ticker`]), and compiled components cached on disk (keyed by the module's hash and
//! the engine's compatibility hash) so that a restart does not recompile.
//!
//! Cached code is native code the gateway runs, so the cache is trusted by construction: the
//! directory is created 0700, and one that another user owns, or that group or others may write
//! to, is not used at all (modules are then compiled in memory, with a warning naming the fix).
//! There is no `/tmp` fallback. Files are written under a random name opened with `O_EXCL`, mode
//! 0600, then renamed into place.
//!
//! The `wasmgate` binary compiles a module that is not in the cache in a child process of itself
//! (`wasmgate plugin compile`, see [`compile_in_children`]), which writes the cache, and then maps
//! the cached code: the compiler's memory never becomes the gateway's. Elsewhere (tests, benches)
//! modules are compiled in the process.

use super::host::HostState;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// One epoch tick: the granularity of CPU deadlines.
pub(crate) const TICK: Duration = Duration::from_millis(1);
/// Largest linear memory any plugin may be given.
pub(crate) const MAX_MEMORY_MB: u64 = if cfg!(feature = "valgrind") { 128 } else { 1024 };

/// The instance pool's bounds: instances, memories and tables across all modules.
struct PoolSize {
    components: u32,
    core_instances: u32,
    memories: u32,
    tables: u32,
}

/// Room for every module's idle instances and the calls in flight. It reserves about 4 TiB of
/// address space (each memory slot is 4 GiB plus guard pages), which costs nothing until used.
#[cfg(not(feature = "valgrind"))]
const POOL: PoolSize = PoolSize { components: 1000, core_instances: 5000, memories: 1000, tables: 2000 };
/// Under valgrind (`bench/compare.sh --instructions`), which cannot map 4 TiB: a pool and
/// memory slots small enough for its address space. The host's code is the production one; the
/// guests' code checks memory bounds explicitly (no 4 GiB guard region).
#[cfg(feature = "valgrind")]
const POOL: PoolSize = PoolSize { components: 32, core_instances: 256, memories: 64, tables: 128 };

/// The engine, the linker with the host functions, and the compiled-code cache.
pub struct PluginEngine {
    /// The wasmtime engine.
    pub(crate) engine: Engine,
    /// Host functions (the wasmgate world's imports and the sandbox's WASI).
    pub(crate) linker: Linker<HostState>,
    /// The trusted cache directory; `None` compiles in memory.
    cache_dir: Option<PathBuf>,
    compat: String,
}

impl PluginEngine {
    /// Builds the engine and starts its epoch ticker. `cache_dir` is used only if it can be
    /// trusted (see the module's documentation).
    pub fn new(cache_dir: Option<PathBuf>) -> wasmtime::Result<PluginEngine> {
        let cache_dir = cache_dir.and_then(trusted_cache_dir);
        let engine = Engine::new(&config())?;
        super::ticker::start(&engine);
        let mut linker = Linker::new(&engine);
        super::host::add_to_linker(&mut linker)?;
        let compat = compat_hash(&engine);
        Ok(PluginEngine { engine, linker, cache_dir, compat })
    }

    /// Pre-instantiates a component with the host functions. One that imports WASI's filesystem
    /// gets an empty one (see [`super::host::sandbox::deny_filesystem`]); any other import the
    /// sandbox lacks (sockets, say) is an error.
    pub(crate) fn instantiate_pre(&self, component: &Component) -> wasmtime::Result<InstancePre<HostState>> {
        let imports = component.component_type();
        if !imports.imports(&self.engine).any(|(name, _)| name.starts_with("wasi:filesystem/")) {
            return self.linker.instantiate_pre(component);
        }
        let mut linker = self.linker.clone();
        super::host::sandbox::deny_filesystem(&mut linker, component)?;
        linker.instantiate_pre(component)
    }

    /// Whether the compiled form of the module whose SHA-256 is `hash` is in the cache.
    pub(crate) fn is_cached(&self, hash: &str) -> bool {
        self.cache_dir.as_ref().is_some_and(|dir| cache_file(dir, hash, &self.compat).is_file())
    }

    /// Compiles a component, or loads its compiled form from the cache (`hash` is the SHA-256 of
    /// `bytes`, hex). The flag says whether it came from the cache.
    pub(crate) fn compile(&self, bytes: &[u8], hash: &str) -> wasmtime::Result<(Component, bool)> {
        let Some(cache_dir) = &self.cache_dir else { return Ok((build(&self.engine, bytes, hash)?, false)) };
        let cached = cache_file(cache_dir, hash, &self.compat);
        if cached.is_file() {
            // SAFETY: `deserialize_file` runs the file's code, so it must be what
            // `Component::serialize` of this engine wrote. Relied on: the directory was checked
            // (`trusted_cache_dir`) to belong to this user and to be writable by no one else, so
            // only this user or root put the file there, and every writer renames complete files
            // into place; the name carries the module's SHA-256 and this engine's compatibility
            // hash, which wasmtime checks again in the file's header.
            match unsafe { Component::deserialize_file(&self.engine, &cached) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => tracing::warn!(file = %cached.display(), error = %e, "ignoring unusable compiled module"),
            }
        }
        if let Some(exe) = CHILD_COMPILER.get() {
            match compile_in_child(exe, cache_dir, hash, bytes) {
                // SAFETY: written by `wasmgate plugin compile`: this binary, so this engine.
                Ok(()) => match unsafe { Component::deserialize_file(&self.engine, &cached) } {
                    Ok(c) => return Ok((c, false)),
                    Err(e) => tracing::warn!(file = %cached.display(), error = %e, "cannot map the compiled module"),
                },
                Err(Child::Refused(message)) => return Err(wasmtime::Error::msg(message)),
                Err(Child::Failed(why)) => {
                    tracing::warn!(error = %why, "cannot compile in a child process; compiling here")
                }
            }
        }
        let component = build(&self.engine, bytes, hash)?;
        let written = write_cache(&cached, &component.serialize()?);
        // The compiler's scratch memory is free now: hand it back to the OS.
        crate::memory::release_free();
        match written {
            // Run the code from the file just written, as a restart would: file-backed pages are
            // shared and reclaimable, where the freshly compiled copy is anonymous memory.
            // SAFETY: as above; this process wrote the file a moment ago.
            Ok(()) => match unsafe { Component::deserialize_file(&self.engine, &cached) } {
                Ok(c) => return Ok((c, false)),
                Err(e) => tracing::warn!(file = %cached.display(), error = %e, "cannot map the compiled module"),
            },
            Err(e) => tracing::warn!(dir = %cache_dir.display(), error = %e, "cannot cache compiled module"),
        }
        Ok((component, false))
    }
}

/// The engine's settings: the same in the gateway and in the compiling child, whose code the
/// gateway maps.
fn config() -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL.components)
        .total_core_instances(POOL.core_instances)
        .total_memories(POOL.memories)
        .total_tables(POOL.tables)
        .max_memory_size((MAX_MEMORY_MB as usize) << 20)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(16);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        // One thread compiles: it leaves no per-thread heaps behind, so `release_free` returns
        // all of the compiler's memory, and a hot load takes one core from traffic, not all.
        .parallel_compilation(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // For profilers: /tmp/perf-PID.map names the plugins' compiled functions for `perf` (and
    // `bench/compare.sh --guest`), which otherwise see anonymous addresses.
    if std::env::var_os("WASMGATE_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if cfg!(feature = "valgrind") {
        config.memory_reservation(MAX_MEMORY_MB << 20).memory_guard_size(64 << 10);
    }
    config
}

/// The engine's compatibility hash, part of the cache files' names.
fn compat_hash(engine: &Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn cache_file(dir: &Path, hash: &str, compat: &str) -> PathBuf {
    dir.join(format!("{hash}-{compat}.cwasm"))
}

/// Compiles `bytes` (a component, or a core module made into one first).
fn build(engine: &Engine, bytes: &[u8], hash: &str) -> wasmtime::Result<Component> {
    if super::componentize::is_core_module(bytes) {
        let wrapped = super::componentize::componentize(bytes).map_err(wasmtime::Error::msg)?;
        tracing::info!(sha256 = %&hash[..12.min(hash.len())], "core module made into a component");
        return Component::new(engine, &wrapped);
    }
    Component::new(engine, bytes)
}

/// The binary that compiles modules in child processes (`wasmgate plugin compile`), once set.
static CHILD_COMPILER: OnceLock<PathBuf> = OnceLock::new();

/// From now on, compiles modules missing from the cache in child processes of the running
/// `wasmgate` binary: `/proc/self/exe`, which stays this build even when the file is replaced by
/// an upgrade, or else `exe`.
pub fn compile_in_children(exe: PathBuf) {
    let this = Path::new("/proc/self/exe");
    let _ = CHILD_COMPILER.set(if this.exists() { this.to_path_buf() } else { exe });
}

/// Exit status of `wasmgate plugin compile` for a module that does not compile (not 2, which is
/// the argument parser's).
pub(crate) const REFUSED: i32 = 65;

/// Longest a compiling child may take before it is stopped and the module refused.
const CHILD_DEADLINE: Duration = Duration::from_secs(300);

/// What went wrong in a compiling child.
enum Child {
    /// The module does not compile: the child's message.
    Refused(String),
    /// The child could not do its work (not started, or could not write the cache).
    Failed(String),
}

fn compile_in_child(exe: &Path, cache_dir: &Path, hash: &str, bytes: &[u8]) -> Result<(), Child> {
    let mut child = Command::new(exe)
        .args(["plugin", "compile", "--hash", hash, "--cache-dir"])
        .arg(cache_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Child::Failed(format!("{}: {e}", exe.display())))?;
    // What the child says is read as it comes (up to 64 KiB), so it can never block on a full pipe.
    let stderr = child.stderr.take().expect("piped");
    let said = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::Read::take(stderr, 64 << 10), &mut text);
        text
    });
    // The child reads the whole module before it writes anything; closing stdin ends it.
    let fed = child.stdin.take().expect("piped").write_all(bytes);
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < CHILD_DEADLINE => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Child::Refused(format!("compiling took longer than {} s", CHILD_DEADLINE.as_secs())));
            }
            Err(e) => return Err(Child::Failed(e.to_string())),
        }
    };
    let said = said.join().unwrap_or_default().trim().to_string();
    if let Err(e) = fed {
        return Err(Child::Failed(format!("cannot hand the module over: {e}")));
    }
    match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
        (Some(0), _) => Ok(()),
        (Some(REFUSED), _) => Err(Child::Refused(said)),
        // Killed outright (by the OOM killer, say): what the module did to the child, it would
        // do to the gateway.
        (_, Some(libc::SIGKILL)) => {
            Err(Child::Refused(format!("the compiler was killed ({status}) {said}").trim().to_string()))
        }
        _ => Err(Child::Failed(format!("{status}: {said}"))),
    }
}

/// `wasmgate plugin compile`: compiles `bytes` into the cache in `cache_dir`, as a gateway would.
/// `Err((status, message))`, the status [`REFUSED`] when the module does not compile.
pub fn compile_to_cache(cache_dir: &Path, hash: &str, bytes: &[u8]) -> Result<(), (i32, String)> {
    let engine = Engine::new(&config()).map_err(|e| (1, format!("cannot start the wasm engine: {e:#}")))?;
    let component = build(&engine, bytes, hash).map_err(|e| (REFUSED, format!("{e:#}")))?;
    let code = component.serialize().map_err(|e| (1, format!("{e:#}")))?;
    write_cache(&cache_file(cache_dir, hash, &compat_hash(&engine)), &code)
        .map_err(|e| (1, format!("cannot write the cache in {}: {e}", cache_dir.display())))
}

fn write_cache(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    // Several gateways may share the cache: write aside under a name nobody can predict (and
    // that cannot be a planted file or link: O_EXCL), then rename.
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{:016x}.tmp", fastrand::u64(..)));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    if let Err(e) = file.write_all(data).and_then(|()| file.sync_all()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path)
}

/// The default cache directory: `$XDG_CACHE_HOME/wasmgate` or `~/.cache/wasmgate`; `None` (no
/// cache, with a warning) when neither variable is set, as under some service managers.
pub(crate) fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if base.is_none() {
        tracing::warn!(
            "neither XDG_CACHE_HOME nor HOME is set: plugin modules are compiled at every start; \
             set `cache_dir` in plugins.toml to a directory only the gateway's user may write"
        );
    }
    Some(base?.join("wasmgate"))
}

/// `dir`, created 0700 when absent, if it belongs to this user and no one else may write to
/// it; otherwise `None`, with a warning that says why and how to fix it.
fn trusted_cache_dir(dir: PathBuf) -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let refuse = |why: String| {
        tracing::warn!(
            dir = %dir.display(),
            "not using the compiled-code cache: {why}; plugin modules are compiled in memory. Fix: \
             `chown` it to the gateway's user and `chmod 700` it, or set another `cache_dir`"
        );
        None
    };
    if let Err(e) = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir) {
        return refuse(format!("it cannot be created ({e})"));
    }
    let meta = match std::fs::metadata(&dir) {
        Ok(m) => m,
        Err(e) => return refuse(format!("it cannot be read ({e})")),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return refuse(format!("it belongs to user {}, not to this process's user {me}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return refuse(format!("group or others may write to it (mode {:o})", meta.mode() & 0o777));
    }
    Some(dir)
}
