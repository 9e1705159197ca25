//! The WASI a plugin gets (see `sandbox-wit/sandbox.wit`), implemented synchronously: a phase
//! call runs on a proxy worker thread and must never block it or enter an async runtime.
//!
//! stdin is empty; stdout is discarded; stderr goes to the gateway's log line by line, tagged
//! with the plugin (so a panic message is seen); the environment and arguments are empty; exit
//! traps; clocks and randomness are the host's. Timers fire at once: plugins cannot sleep, nor block
//! their proxy thread.

use super::HostState;
use wasmtime::component::Resource;

// The resource types named in `with` stay `pub`: the bindings re-export them.
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

/// Most bytes an output stream takes in one write.
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

/// Something to wait on: always ready. Streams never block, and a timer fires at once: waiting
/// would block a proxy thread, so a plugin cannot sleep (one that waits in a loop for time to
/// pass runs into its CPU deadline instead). Go's runtime, for one, sleeps a moment on a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pollable;

type Result<T> = wasmtime::Result<T>;

impl HostState {
    /// Takes plugin output; stderr is kept until the call ends (see [`Self::flush_stderr`]).
    fn output(&mut self, stream: &Resource<OutputStream>, bytes: &[u8]) -> Result<()> {
        if *self.table.get(stream)? == OutputStream::Stderr {
            // Past `stderr_bytes` in this call, the rest is dropped.
            let room = self.limits.stderr_bytes.saturating_sub(self.usage.stderr_bytes) as usize;
            self.usage.stderr_bytes += bytes.len() as u64;
            self.stderr_line.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        Ok(())
    }

    /// Logs what the plugin wrote to stderr during the call as one line (its lines joined by
    /// ` | `), so that a multi-line message such as a Go panic's trace is one entry of the
    /// plugin's log budget.
    pub(crate) fn flush_stderr(&mut self) {
        if self.stderr_line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.stderr_line).into_owned();
        self.stderr_line.clear();
        let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
        if !lines.is_empty() && self.may_log() {
            tracing::warn!(target: "plugin", plugin = %self.plugin, "stderr: {}", lines.join(" | ").replace('\t', " "));
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
        Ok(self.table.push(Pollable)?)
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
        Ok(self.table.push(Pollable)?)
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

impl poll::Host for HostState {
    fn poll(&mut self, pollables: Vec<Resource<Pollable>>) -> Result<Vec<u32>> {
        for p in &pollables {
            self.table.get(p)?;
        }
        Ok((0..pollables.len() as u32).collect())
    }
}

impl poll::HostPollable for HostState {
    fn ready(&mut self, p: Resource<Pollable>) -> Result<bool> {
        self.table.get(&p)?;
        Ok(true)
    }

    fn block(&mut self, p: Resource<Pollable>) -> Result<()> {
        self.table.get(&p)?;
        Ok(())
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
        Ok(self.table.push(Pollable)?)
    }

    fn subscribe_duration(&mut self, _when: u64) -> Result<Resource<Pollable>> {
        Ok(self.table.push(Pollable)?)
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

/// Most random bytes one call may ask for (the host allocates them).
const MAX_RANDOM: u64 = 1 << 20;

fn random_bytes(len: u64) -> Result<Vec<u8>> {
    if len > MAX_RANDOM {
        return Err(wasmtime::Error::msg(format!("asked for {len} random bytes; at most {MAX_RANDOM} at a time")));
    }
    let mut buf = vec![0; len as usize];
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
pub(crate) fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> Result<()> {
    Sandbox::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

/// A filesystem descriptor or directory stream: never created, as there is nothing to open.
pub(crate) struct NoFile;

/// Satisfies a component's `wasi:filesystem` imports with a filesystem that has nothing in it:
/// no preopened directories, so no descriptor can ever exist, and every other function traps.
/// (The WASI preview 1 adapter of core modules, Go's among them, always imports it.)
pub(crate) fn deny_filesystem(
    linker: &mut wasmtime::component::Linker<HostState>,
    component: &wasmtime::component::Component,
) -> Result<()> {
    use wasmtime::component::types::ComponentItem;
    use wasmtime::component::{ResourceType, Val};
    let engine = linker.engine().clone();
    for (name, import) in component.component_type().imports(&engine) {
        let ComponentItem::ComponentInstance(interface) = import.ty else { continue };
        if !name.starts_with("wasi:filesystem/") {
            continue;
        }
        let mut instance = linker.instance(name)?;
        for (item, export) in interface.exports(&engine) {
            match (item, export.ty) {
                // The interface's own resources; the others (`error`, the streams) are wasi:io's.
                ("descriptor" | "directory-entry-stream", ComponentItem::Resource(_)) => {
                    instance.resource(item, ResourceType::host::<NoFile>(), |_, _| Ok(()))?
                }
                ("get-directories", ComponentItem::ComponentFunc(_)) => {
                    instance.func_new(item, |_, _, _, results| {
                        results[0] = Val::List(Vec::new());
                        Ok(())
                    })?
                }
                ("filesystem-error-code", ComponentItem::ComponentFunc(_)) => {
                    instance.func_new(item, |_, _, _, results| {
                        results[0] = Val::Option(None);
                        Ok(())
                    })?
                }
                (_, ComponentItem::ComponentFunc(_)) => {
                    let what = format!("{name}#{item}");
                    instance.func_new(item, move |_, _, _, _| {
                        Err(wasmtime::Error::msg(format!("{what}: plugins have no filesystem")))
                    })?
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;
    use std::sync::Arc;

    #[test]
    fn an_instance_holds_a_bounded_number_of_handles() {
        let mut state =
            HostState::new(Arc::from("p"), Arc::default(), Arc::default(), Limits::default(), Arc::default());
        let held: Vec<_> =
            (0..super::super::MAX_HANDLES).map(|_| monotonic_clock::Host::subscribe_duration(&mut state, 1)).collect();
        assert!(held.iter().all(Result::is_ok));
        assert!(monotonic_clock::Host::subscribe_duration(&mut state, 1).is_err(), "one more is refused");
        let first = held.into_iter().next().unwrap().unwrap();
        poll::HostPollable::drop(&mut state, first).unwrap();
        assert!(monotonic_clock::Host::subscribe_duration(&mut state, 1).is_ok(), "a dropped handle frees its place");
    }
}
