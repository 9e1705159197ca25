//! The WASI a plugin gets (see `sandbox-wit/sandbox.wit`), implemented synchronously: a phase
//! call runs on a proxy worker thread and must never block it or enter an async runtime.
//!
//! stdin is empty; stdout is discarded; stderr goes to the gateway's log line by line, tagged
//! with the plugin (so a panic message is seen); the environment and arguments are empty; exit
//! traps; clocks and randomness are the host's. Blocking on a timer traps: plugins cannot sleep.

use super::HostState;
use wasmtime::component::Resource;

wasmtime::component::bindgen!({
    path: "sandbox-wit",
    world: "wasmgate:sandbox/sandbox",
    imports: { default: trappable },
    with: {
        "wasi:io/error.error": IoError,
        "wasi:io/poll.pollable": Pollable,
        "wasi:io/streams.input-stream": InputStream,
        "wasi:io/streams.output-stream": OutputStream,
        "wasi:cli/terminal-input.terminal-input": Terminal,
        "wasi:cli/terminal-output.terminal-output": Terminal,
    },
});

use wasi::cli::{environment, exit, stderr, stdin, stdout, terminal_input, terminal_output};
use wasi::cli::{terminal_stderr, terminal_stdin, terminal_stdout};
use wasi::clocks::{monotonic_clock, wall_clock};
use wasi::io::streams::StreamError;
use wasi::io::{error, poll, streams};
use wasi::random::{insecure, insecure_seed, random};

/// Longest stderr line kept before it is logged anyway.
const MAX_LINE: usize = 4096;

/// `wasi:io/error` resource (never produced: streams only report `closed`).
pub struct IoError;
/// An input stream: only stdin, always empty.
pub struct InputStream;
/// Terminal handles: never handed out.
pub struct Terminal;

/// Where a plugin's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Discarded.
    Stdout,
    /// The gateway's log.
    Stderr,
}

/// Something to wait on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pollable {
    /// Streams: always ready.
    Ready,
    /// A clock: waiting would block the proxy, so it traps.
    Timer,
}

type Result<T> = wasmtime::Result<T>;

impl HostState {
    /// Takes plugin output; stderr is logged a line at a time.
    fn output(&mut self, stream: &Resource<OutputStream>, bytes: &[u8]) -> Result<()> {
        if *self.table.get(stream)? == OutputStream::Stderr {
            // Past `stderr_bytes` in this call, the rest is dropped.
            let room = self.limits.stderr_bytes.saturating_sub(self.usage.stderr_bytes) as usize;
            self.usage.stderr_bytes += bytes.len() as u64;
            let bytes = &bytes[..bytes.len().min(room)];
            self.stderr_line.extend_from_slice(bytes);
            while let Some(end) = self.stderr_line.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.stderr_line.drain(..=end).collect();
                self.log_stderr(&line[..line.len() - 1]);
            }
            if self.stderr_line.len() > MAX_LINE {
                self.flush_stderr();
            }
        }
        Ok(())
    }

    fn flush_stderr(&mut self) {
        if !self.stderr_line.is_empty() {
            let line = std::mem::take(&mut self.stderr_line);
            self.log_stderr(&line);
        }
    }

    fn log_stderr(&self, line: &[u8]) {
        if self.may_log() {
            tracing::warn!(target: "plugin", plugin = %self.plugin, "stderr: {}", String::from_utf8_lossy(line));
        }
    }
}

impl streams::Host for HostState {}

impl streams::HostOutputStream for HostState {
    fn check_write(&mut self, _s: Resource<OutputStream>) -> Result<std::result::Result<u64, StreamError>> {
        Ok(Ok(MAX_LINE as u64))
    }

    fn write(&mut self, s: Resource<OutputStream>, contents: Vec<u8>) -> Result<std::result::Result<(), StreamError>> {
        self.output(&s, &contents).map(Ok)
    }

    fn blocking_write_and_flush(
        &mut self,
        s: Resource<OutputStream>,
        contents: Vec<u8>,
    ) -> Result<std::result::Result<(), StreamError>> {
        self.output(&s, &contents).map(Ok)
    }

    fn flush(&mut self, _s: Resource<OutputStream>) -> Result<std::result::Result<(), StreamError>> {
        Ok(Ok(()))
    }

    fn blocking_flush(&mut self, _s: Resource<OutputStream>) -> Result<std::result::Result<(), StreamError>> {
        Ok(Ok(()))
    }

    fn subscribe(&mut self, _s: Resource<OutputStream>) -> Result<Resource<Pollable>> {
        Ok(self.table.push(Pollable::Ready)?)
    }

    fn write_zeroes(&mut self, s: Resource<OutputStream>, len: u64) -> Result<std::result::Result<(), StreamError>> {
        self.output(&s, &vec![0; len.min(MAX_LINE as u64) as usize]).map(Ok)
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        s: Resource<OutputStream>,
        len: u64,
    ) -> Result<std::result::Result<(), StreamError>> {
        self.write_zeroes(s, len)
    }

    fn splice(
        &mut self,
        _d: Resource<OutputStream>,
        _s: Resource<InputStream>,
        _len: u64,
    ) -> Result<std::result::Result<u64, StreamError>> {
        Ok(Err(StreamError::Closed))
    }

    fn blocking_splice(
        &mut self,
        _d: Resource<OutputStream>,
        _s: Resource<InputStream>,
        _len: u64,
    ) -> Result<std::result::Result<u64, StreamError>> {
        Ok(Err(StreamError::Closed))
    }

    fn drop(&mut self, s: Resource<OutputStream>) -> Result<()> {
        if self.table.delete(s)? == OutputStream::Stderr {
            self.flush_stderr();
        }
        Ok(())
    }
}

impl streams::HostInputStream for HostState {
    fn read(&mut self, _s: Resource<InputStream>, _len: u64) -> Result<std::result::Result<Vec<u8>, StreamError>> {
        Ok(Err(StreamError::Closed))
    }

    fn blocking_read(
        &mut self,
        _s: Resource<InputStream>,
        _len: u64,
    ) -> Result<std::result::Result<Vec<u8>, StreamError>> {
        Ok(Err(StreamError::Closed))
    }

    fn skip(&mut self, _s: Resource<InputStream>, _len: u64) -> Result<std::result::Result<u64, StreamError>> {
        Ok(Err(StreamError::Closed))
    }

    fn blocking_skip(&mut self, _s: Resource<InputStream>, _len: u64) -> Result<std::result::Result<u64, StreamError>> {
        Ok(Err(StreamError::Closed))
    }

    fn subscribe(&mut self, _s: Resource<InputStream>) -> Result<Resource<Pollable>> {
        Ok(self.table.push(Pollable::Ready)?)
    }

    fn drop(&mut self, s: Resource<InputStream>) -> Result<()> {
        self.table.delete(s)?;
        Ok(())
    }
}

impl error::Host for HostState {}

impl error::HostError for HostState {
    fn to_debug_string(&mut self, _e: Resource<IoError>) -> Result<String> {
        Ok("error".into())
    }

    fn drop(&mut self, e: Resource<IoError>) -> Result<()> {
        self.table.delete(e)?;
        Ok(())
    }
}

/// Waiting would block a proxy thread: only already-ready pollables may be waited on.
fn must_be_ready(p: Pollable) -> Result<()> {
    match p {
        Pollable::Ready => Ok(()),
        Pollable::Timer => Err(wasmtime::Error::msg("plugins cannot sleep or wait on timers")),
    }
}

impl poll::Host for HostState {
    fn poll(&mut self, pollables: Vec<Resource<Pollable>>) -> Result<Vec<u32>> {
        let mut ready = Vec::new();
        for (i, p) in pollables.iter().enumerate() {
            if *self.table.get(p)? == Pollable::Ready {
                ready.push(i as u32);
            }
        }
        if ready.is_empty() && !pollables.is_empty() {
            must_be_ready(Pollable::Timer)?;
        }
        Ok(ready)
    }
}

impl poll::HostPollable for HostState {
    fn ready(&mut self, p: Resource<Pollable>) -> Result<bool> {
        Ok(*self.table.get(&p)? == Pollable::Ready)
    }

    fn block(&mut self, p: Resource<Pollable>) -> Result<()> {
        must_be_ready(*self.table.get(&p)?)
    }

    fn drop(&mut self, p: Resource<Pollable>) -> Result<()> {
        self.table.delete(p)?;
        Ok(())
    }
}

impl environment::Host for HostState {
    fn get_environment(&mut self) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }

    fn get_arguments(&mut self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn initial_cwd(&mut self) -> Result<Option<String>> {
        Ok(None)
    }
}

impl exit::Host for HostState {
    fn exit(&mut self, status: std::result::Result<(), ()>) -> Result<()> {
        self.exit_with_code(u8::from(status.is_err()))
    }

    fn exit_with_code(&mut self, code: u8) -> Result<()> {
        self.flush_stderr();
        Err(wasmtime::Error::msg(format!("plugin called exit({code})")))
    }
}

impl stdin::Host for HostState {
    fn get_stdin(&mut self) -> Result<Resource<InputStream>> {
        Ok(self.table.push(InputStream)?)
    }
}

impl stdout::Host for HostState {
    fn get_stdout(&mut self) -> Result<Resource<OutputStream>> {
        Ok(self.table.push(OutputStream::Stdout)?)
    }
}

impl stderr::Host for HostState {
    fn get_stderr(&mut self) -> Result<Resource<OutputStream>> {
        Ok(self.table.push(OutputStream::Stderr)?)
    }
}

impl terminal_input::Host for HostState {}
impl terminal_output::Host for HostState {}

impl terminal_input::HostTerminalInput for HostState {
    fn drop(&mut self, t: Resource<Terminal>) -> Result<()> {
        self.table.delete(t)?;
        Ok(())
    }
}

impl terminal_output::HostTerminalOutput for HostState {
    fn drop(&mut self, t: Resource<Terminal>) -> Result<()> {
        self.table.delete(t)?;
        Ok(())
    }
}

impl terminal_stdin::Host for HostState {
    fn get_terminal_stdin(&mut self) -> Result<Option<Resource<Terminal>>> {
        Ok(None)
    }
}

impl terminal_stdout::Host for HostState {
    fn get_terminal_stdout(&mut self) -> Result<Option<Resource<Terminal>>> {
        Ok(None)
    }
}

impl terminal_stderr::Host for HostState {
    fn get_terminal_stderr(&mut self) -> Result<Option<Resource<Terminal>>> {
        Ok(None)
    }
}

impl monotonic_clock::Host for HostState {
    fn now(&mut self) -> Result<u64> {
        Ok(super::services::monotonic_ns())
    }

    fn resolution(&mut self) -> Result<u64> {
        Ok(1)
    }

    fn subscribe_instant(&mut self, _when: u64) -> Result<Resource<Pollable>> {
        Ok(self.table.push(Pollable::Timer)?)
    }

    fn subscribe_duration(&mut self, _when: u64) -> Result<Resource<Pollable>> {
        Ok(self.table.push(Pollable::Timer)?)
    }
}

impl wall_clock::Host for HostState {
    fn now(&mut self) -> Result<wall_clock::Datetime> {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Ok(wall_clock::Datetime { seconds: d.as_secs(), nanoseconds: d.subsec_nanos() })
    }

    fn resolution(&mut self) -> Result<wall_clock::Datetime> {
        Ok(wall_clock::Datetime { seconds: 0, nanoseconds: 1 })
    }
}

fn random_bytes(len: u64) -> Result<Vec<u8>> {
    let mut buf = vec![0; usize::try_from(len).map_err(|_| wasmtime::Error::msg("too many random bytes"))?];
    getrandom::fill(&mut buf).map_err(|e| wasmtime::Error::msg(format!("no randomness: {e}")))?;
    Ok(buf)
}

fn random_u64() -> Result<u64> {
    let b = random_bytes(8)?;
    Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

impl random::Host for HostState {
    fn get_random_bytes(&mut self, len: u64) -> Result<Vec<u8>> {
        random_bytes(len)
    }

    fn get_random_u64(&mut self) -> Result<u64> {
        random_u64()
    }
}

impl insecure::Host for HostState {
    fn get_insecure_random_bytes(&mut self, len: u64) -> Result<Vec<u8>> {
        random_bytes(len)
    }

    fn get_insecure_random_u64(&mut self) -> Result<u64> {
        random_u64()
    }
}

impl insecure_seed::Host for HostState {
    fn insecure_seed(&mut self) -> Result<(u64, u64)> {
        Ok((random_u64()?, random_u64()?))
    }
}

/// Adds the sandbox's WASI to a linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> Result<()> {
    Sandbox::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}
