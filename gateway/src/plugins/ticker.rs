//! The epoch ticker: one thread per engine advances its epoch every [`TICK`], which is what
//! interrupts a plugin call at its CPU deadline and makes a long one yield. Ticks only matter
//! while a call runs, so a ticker that has seen no call for [`IDLE_TICKS`] sleeps until one
//! starts: a gateway whose requests run no plugin is not woken a thousand times a second, on the
//! core its requests run on.
//!
//! Every call holds a [`Running`] for as long as its plugin code may run (instantiation, the call,
//! its yields). The count is process-wide, so with several engines (tests) every ticker ticks
//! while any call runs: more ticks than needed, never fewer.

use super::engine::TICK;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Duration;
use wasmtime::Engine;

/// Ticks without a call running before a ticker sleeps: 100 ms.
const IDLE_TICKS: u32 = 100;
/// How long a sleeping ticker waits before it checks that its engine still exists.
const IDLE_SLEEP: Duration = Duration::from_secs(5);

/// Plugin calls running now, in every engine.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
/// Tickers asleep until a call starts, and how many there are (read on every call start).
static ASLEEP: Mutex<Vec<Thread>> = Mutex::new(Vec::new());
static SLEEPING: AtomicUsize = AtomicUsize::new(0);

/// A plugin call in progress: its engine's epoch ticks until this is dropped.
pub(crate) struct Running(());

impl Running {
    /// Marks a call as running, and wakes the tickers that sleep for want of one.
    pub(crate) fn start() -> Running {
        // SeqCst here and in `sleep`: either the ticker sees this call, or this sees the ticker.
        RUNNING.fetch_add(1, Ordering::SeqCst);
        if SLEEPING.load(Ordering::SeqCst) > 0 {
            let mut asleep = ASLEEP.lock();
            SLEEPING.store(0, Ordering::SeqCst);
            for ticker in asleep.drain(..) {
                ticker.unpark();
            }
        }
        Running(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Starts the ticker of `engine`; it ends soon after the engine is dropped.
pub(crate) fn start(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            let mut idle = 0;
            loop {
                if idle < IDLE_TICKS {
                    std::thread::sleep(TICK);
                    let Some(engine) = weak.upgrade() else { return };
                    engine.increment_epoch();
                    idle = if RUNNING.load(Ordering::SeqCst) > 0 { 0 } else { idle + 1 };
                } else if sleep() {
                    idle = 0;
                } else if weak.upgrade().is_none() {
                    return;
                }
            }
        })
        .expect("spawn epoch ticker");
}

/// Sleeps until a call starts, or for [`IDLE_SLEEP`]; true if a call started.
fn sleep() -> bool {
    let me = std::thread::current();
    {
        let mut asleep = ASLEEP.lock();
        asleep.push(me.clone());
        SLEEPING.store(asleep.len(), Ordering::SeqCst);
    }
    if RUNNING.load(Ordering::SeqCst) == 0 {
        std::thread::park_timeout(IDLE_SLEEP);
    }
    // A call that started took this thread off the list as it woke it.
    let mut asleep = ASLEEP.lock();
    let before = asleep.len();
    asleep.retain(|t| t.id() != me.id());
    SLEEPING.store(asleep.len(), Ordering::SeqCst);
    asleep.len() == before || RUNNING.load(Ordering::SeqCst) > 0
}
