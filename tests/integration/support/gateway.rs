//! The real gateway binary, started on free loopback ports with a config written to a temp dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `wasmgate run`; killed when dropped.
pub struct Gateway {
    pub port: u16,
    /// The Admin API's port.
    pub admin: u16,
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Child,
}

/// How to start a gateway.
pub struct GatewayBuilder {
    server: String,
    config: String,
    plugins: Option<(String, Vec<String>)>,
    plugins_file: Option<String>,
    linked_plugins_dir: bool,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Gateway {
    /// A builder for more control.
    pub fn builder(config: &str) -> GatewayBuilder {
        GatewayBuilder {
            server: String::new(),
            config: config.to_string(),
            plugins: None,
            plugins_file: None,
            linked_plugins_dir: false,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The gateway's plugins directory.
    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// Replaces the `plugins.toml` body (the directory settings are kept).
    pub fn write_plugins(&self, plugins: &str) {
        write_atomically(&self.dir.path().join("plugins.toml"), plugins_toml(plugins).as_bytes());
    }

    /// Path of the gateway configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    /// Replaces the entities part of the configuration (the `[server]` table is kept).
    pub fn write_config(&self, config: &str) {
        let server = std::fs::read_to_string(self.dir.path().join("server.part")).unwrap();
        write_atomically(&self.config_path(), format!("{server}\n{config}").as_bytes());
    }

    /// Changes the `[server]` table of the configurations written from now on.
    pub fn edit_server(&self, edit: impl FnOnce(String) -> String) {
        let part = self.dir.path().join("server.part");
        let server = std::fs::read_to_string(&part).unwrap();
        std::fs::write(part, edit(server)).unwrap();
    }

    /// Writes `cfg`'s entities, sends SIGHUP and waits for the outcome: true when the new
    /// configuration was applied, false when it was rejected.
    pub async fn reload(&self, cfg: &super::Config) -> bool {
        let outcomes = || (self.log_count("configuration reloaded"), self.log_count("configuration rejected"));
        let before = outcomes();
        self.write_config(cfg.entities());
        self.signal(libc::SIGHUP);
        let done = super::wait::until(Duration::from_secs(30), async || outcomes() != before).await;
        assert!(done, "no reload happened after SIGHUP:\n{}", self.stderr());
        outcomes().0 > before.0
    }

    /// The gateway's resident memory, in bytes.
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB");
        kb.trim().parse::<u64>().unwrap() * 1024
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The files the gateway process has open.
    pub fn open_files(&self) -> Vec<PathBuf> {
        let fds = std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).unwrap();
        fds.flatten().filter_map(|fd| std::fs::read_link(fd.path()).ok()).collect()
    }

    /// Sends a signal to the gateway process.
    pub fn signal(&self, sig: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0, "kill failed");
    }

    /// Everything the gateway logged so far (stderr, diagnostics).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// The access log so far (stdout).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// Waits until stderr holds `needle` at least `occurrences` times (30 s at most).
    pub async fn wait_for_log(&self, needle: &str, occurrences: usize) {
        let seen = super::wait::until(Duration::from_secs(30), async || self.log_count(needle) >= occurrences).await;
        assert!(seen, "gave up waiting for {occurrences} × {needle:?} in the log:\n{}", self.stderr());
    }

    /// How often stderr holds `needle` now: with [`Self::wait_for_log`], a wait for the next one.
    pub fn log_count(&self, needle: &str) -> usize {
        self.stderr().matches(needle).count()
    }

    /// Waits until the access log (stdout) satisfies `check`.
    pub async fn wait_for_access_log(&self, what: &str, check: impl Fn(&str) -> bool) {
        super::eventually(&format!("{what} in the access log"), async || check(&self.stdout())).await;
    }

    /// Stops the process (SIGINT) and starts it again on the same files and data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.resume().await;
    }

    /// Stops the process (SIGINT); [`Self::resume`] starts it again.
    pub async fn stop(&mut self) {
        self.signal(libc::SIGINT);
        let stopped = self.wait_exit(Duration::from_secs(10)).await.is_some();
        assert!(stopped, "the gateway did not stop:\n{}", self.stderr());
    }

    /// Starts a stopped gateway again on the same files and data.
    pub async fn resume(&mut self) {
        self.child = spawn(self.dir.path(), &self.args, &self.env);
        self.wait_listening().await;
    }

    async fn wait_listening(&mut self) {
        let (port, admin) = (self.port, self.admin);
        let listening = async || {
            let open = async |port| tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok();
            open(port).await && (admin == 0 || open(admin).await)
        };
        let child = &mut self.child;
        let mut exited = None;
        let up = super::wait::until(Duration::from_secs(60), async || {
            exited = child.try_wait().unwrap();
            exited.is_some() || listening().await
        })
        .await;
        if let Some(status) = exited {
            panic!("wasmgate exited early with {status}:\n{}", self.stderr());
        }
        assert!(up, "wasmgate did not start listening:\n{}", self.stderr());
        // The file watcher starts beside the listeners: a file a test writes before it watches
        // would go unseen. Wait for it (a while, at most: a test may log less).
        if self.dir.path().join("plugins.toml").exists() {
            super::wait::until(Duration::from_secs(5), async || self.stderr().contains("watching the configuration"))
                .await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the process to exit; returns its status code.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = &mut self.child;
        let mut code = None;
        super::wait::until(limit, async || match child.try_wait().unwrap() {
            Some(status) => {
                code = Some(status.code());
                true
            }
            None => false,
        })
        .await;
        code.flatten()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GatewayBuilder {
    /// Extra lines for the `[server]` table.
    pub fn server(mut self, lines: &str) -> Self {
        self.server.push_str(lines);
        self.server.push('\n');
        self
    }

    /// A `plugins.toml` (its `[[plugins]]`, `[modules]`, `[defaults]`), with every built plugin
    /// module copied into the gateway's own plugins directory.
    pub fn plugins(self, plugins: &str) -> Self {
        let all = super::plugins::all();
        let names: Vec<&str> = all.iter().map(String::as_str).collect();
        self.plugins_with(plugins, &names)
    }

    /// Like [`Self::plugins`], with only the named modules in the directory.
    pub fn plugins_with(mut self, plugins: &str, modules: &[&str]) -> Self {
        self.plugins = Some((plugins.to_string(), modules.iter().map(|m| m.to_string()).collect()));
        self.server("plugins_file = \"plugins.toml\"")
    }

    /// Keeps entities in the embedded database (`database = "embedded"`), with the bundled plugins
    /// available by name (and the tests' shared compiled-code cache, as every test gateway).
    pub fn embedded(self) -> Self {
        let bundled = super::plugins::built()[0].display().to_string();
        let mut b = self.server("database = \"embedded\"\nplugins_file = \"plugins.toml\"");
        b.plugins_file = Some(format!("plugins_dir = {bundled:?}\n"));
        b
    }

    /// `plugins.toml` as it is (after `embedded`, replacing the one that sets).
    pub fn plugins_file(mut self, text: &str) -> Self {
        self.plugins_file = Some(text.to_string());
        self
    }

    /// Makes the plugins directory a symlink (to `plugins.real`), as deployments often do.
    pub fn linked_plugins_dir(mut self) -> Self {
        self.linked_plugins_dir = true;
        self
    }

    /// An environment variable for the process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Extra command-line arguments for `wasmgate run`.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    /// Starts the process and waits until the proxy port accepts connections.
    pub async fn start(self) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        // 0 when the test sets its own admin_listen.
        let admin = if self.server.contains("admin_listen") { 0 } else { super::free_port() };
        // `{port}` in the test's own `[server]` lines is the proxy port chosen here.
        let mut server = format!("[server]\n{}", self.server.replace("{port}", &port.to_string()));
        let defaults = [
            ("proxy_listen", format!("\"127.0.0.1:{port}\"")),
            ("admin_listen", format!("\"127.0.0.1:{admin}\"")),
            ("worker_threads", "2".into()),
            ("graceful_shutdown_timeout", "10".into()),
        ];
        for (key, value) in defaults {
            if !self.server.lines().any(|l| l.trim_start().starts_with(key)) {
                server.push_str(&format!("{key} = {value}\n"));
            }
        }
        std::fs::write(dir.path().join("server.part"), &server).unwrap();
        std::fs::write(dir.path().join("gateway.toml"), format!("{server}\n{}", self.config)).unwrap();
        if let Some((plugins, modules)) = &self.plugins {
            let real = dir.path().join(if self.linked_plugins_dir { "plugins.real" } else { "plugins" });
            std::fs::create_dir(&real).unwrap();
            if self.linked_plugins_dir {
                std::os::unix::fs::symlink(&real, dir.path().join("plugins")).unwrap();
            }
            for m in modules {
                std::fs::copy(super::plugins::wasm(m), real.join(format!("{m}.wasm"))).unwrap();
            }
            std::fs::write(dir.path().join("plugins.toml"), plugins_toml(plugins)).unwrap();
        }
        if let Some(file) = &self.plugins_file {
            std::fs::write(dir.path().join("plugins.toml"), file).unwrap();
        }
        let child = spawn(dir.path(), &self.args, &self.env);
        let mut gw = Gateway { port, admin, dir, args: self.args, env: self.env, child };
        gw.wait_listening().await;
        gw
    }
}

/// Starts `wasmgate run` on the files in `dir`, logging to `stdout.log` and `stderr.log` there.
fn spawn(dir: &Path, args: &[String], env: &[(String, String)]) -> Child {
    let log = |name: &str| std::fs::OpenOptions::new().create(true).append(true).open(dir.join(name)).unwrap();
    Command::new(env!("CARGO_BIN_EXE_wasmgate"))
        .arg("run")
        .arg("-c")
        .arg(dir.join("gateway.toml"))
        .args(args)
        .env("XDG_CACHE_HOME", super::plugins::cache_home())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdout(Stdio::from(log("stdout.log")))
        .stderr(Stdio::from(log("stderr.log")))
        .spawn()
        .expect("start wasmgate")
}

/// A test's plugins.toml body, with the directory (the cache is the shared one unless the body
/// names its own: see [`spawn`]).
fn plugins_toml(body: &str) -> String {
    format!("plugins_dir = \"plugins\"\n{body}")
}

/// Writes via a temporary file and a rename, as editors do.
pub fn write_atomically(path: &Path, content: &[u8]) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Runs `wasmgate` with `args` to completion: (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmgate"))
        .args(args)
        .env("XDG_CACHE_HOME", super::plugins::cache_home())
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}
