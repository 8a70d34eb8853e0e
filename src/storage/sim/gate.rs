//! [`SimGate`]: a point inside a simulated operation where threads of the
//! simulated process wait until the test lets them through.
//!
//! Gates turn the simulator into a scheduler for interleavings that timing
//! alone would hit only by luck: one thread's fsync failing, its error not yet
//! returned, while another thread's fsync of the same file runs. A thread waits
//! at a gate without holding the simulator's lock, so every other thread keeps
//! running.
//!
//! Invariants:
//! - `arrived` counts threads that reached the gate, whether or not it was open;
//!   it only grows.
//! - Once opened, a gate stays open: every waiting and every later thread passes.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct GateState {
    arrived: u64,
    open: bool,
}

/// A gate operations wait at (see [`SimFault::pause`](super::SimFault::pause)
/// and [`SimFault::paused`](super::SimFault::paused)). Clones share one gate.
///
/// # Examples
///
/// ```
/// use highwater::storage::{CrashSimStorage, OpenMode, SimFault, SimGate, SimOp, Storage};
/// use std::path::Path;
/// use std::time::Duration;
///
/// let sim = CrashSimStorage::new();
/// let file = sim.open_file(Path::new("/f"), OpenMode::CreateNew).unwrap();
/// let gate = SimGate::new();
/// sim.inject(SimFault::pause(SimOp::SyncFile, &gate));
/// let syncing = std::thread::spawn(move || file.sync_data());
/// assert!(gate.wait_arrivals(1, Duration::from_secs(10)), "the sync reached the gate");
/// gate.open();
/// syncing.join().unwrap().unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct SimGate {
    inner: Arc<(Mutex<GateState>, Condvar)>,
}

impl SimGate {
    /// A closed gate.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, GateState> {
        self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the gate for good: every waiting thread and every later one passes.
    pub fn open(&self) {
        self.state().open = true;
        self.inner.1.notify_all();
    }

    /// How many threads have reached the gate so far.
    pub fn arrivals(&self) -> u64 {
        self.state().arrived
    }

    /// Waits until at least `n` threads have reached the gate, or `timeout`
    /// has passed; returns whether they had.
    pub fn wait_arrivals(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.state();
        while s.arrived < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self
                .inner
                .1
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Called by a simulated operation: counts the arrival, then blocks until
    /// the gate is open.
    pub(super) fn pass(&self) {
        let mut s = self.state();
        s.arrived += 1;
        self.inner.1.notify_all();
        while !s.open {
            s = self.inner.1.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}
