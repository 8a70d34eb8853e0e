//! Group commit and the background flusher.
//!
//! Leader/follower group commit: a thread that needs position `p` durable waits
//! while another thread's fsync is in flight; when none is, it becomes the leader,
//! writes out everything buffered so far (its own records and those of every thread
//! that appended meanwhile), fsyncs once outside the writer lock, publishes the new
//! durable position and wakes the followers, most of whom find their records
//! covered. A failed fsync poisons the log and wakes everyone with the error; it is
//! never retried. Waiters are parked individually and the leader wakes only those
//! its fsync covered, plus one that was not covered to lead the next round.
//!
//! The fsync rule (what makes `durable` true):
//! - Every fsync of a segment other threads can reach goes through
//!   [`Shared::fsync`]: the group-commit leader's, `sync()`'s and the
//!   flusher's (all through [`Shared::sync_to`]), rotation's seal and a cut's.
//!   (A segment being created is fsynced before it is published to other
//!   threads, under the writer lock; open's fsyncs run before the log is
//!   shared.) It holds `sync_lock` across the call, so two
//!   fsyncs of the log's files never overlap: Linux reports a write-back error
//!   to one fsync only and drops the failed pages, so an overlapping fsync
//!   could succeed over lost data.
//! - Under that lock the poison is checked before the fsync and set, on
//!   failure, before the lock is released: no fsync that starts after a
//!   failure can succeed, and no result is acted on before the poison is set.
//! - `durable` only grows after an fsync of the file holding those records
//!   returned `Ok` in this process (or, at open, an fsync of the newest
//!   segment); a cut resets it to the cut position. Nothing else moves it.

use super::log::{lock, Shared};
use crate::error::IoContext;
use crate::error::Result;
use crate::storage::StorageFile;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

/// A thread waiting for its records to become durable.
#[derive(Debug)]
struct Waiter {
    /// The position it needs durable.
    target: u64,
    thread: Thread,
    /// Set (under the durability lock) when it should re-check; guards against
    /// spurious unparks.
    woken: AtomicBool,
}

/// Durability bookkeeping, guarded by `Shared::durability`.
#[derive(Debug)]
pub(super) struct Durability {
    /// Every record before this position is durable.
    pub durable: u64,
    /// A leader is writing out and fsyncing right now.
    syncing: bool,
    /// Threads parked until a sync covers their target.
    waiters: Vec<Arc<Waiter>>,
    /// Committers whose records the last completed sync covered (leader included).
    last_round_covered: u64,
    /// Calls to `sync_to` so far, and their number when the last sync captured.
    arrivals: u64,
    arrivals_at_capture: u64,
    /// How long the last fsync took.
    last_sync_time: Duration,
}

impl Durability {
    pub(super) fn new(durable: u64) -> Self {
        Durability {
            durable,
            syncing: false,
            waiters: Vec::new(),
            last_round_covered: 0,
            arrivals: 0,
            arrivals_at_capture: 0,
            last_sync_time: Duration::ZERO,
        }
    }

    /// Wakes every waiter whose target is durable and the first one that is not,
    /// to lead the next sync; with `all` (an error), every waiter. Waking only those keeps a round of
    /// group commit at one wake-up per committer instead of one per waiter.
    /// Returns how many committers the durable position covered (the caller
    /// included).
    fn wake(&mut self, all: bool) -> u64 {
        let durable = self.durable;
        let mut leader_woken = false;
        let mut covered = 1;
        self.waiters.retain(|w| {
            let wake = all || w.target <= durable || !leader_woken;
            if wake {
                leader_woken |= w.target > durable;
                covered += u64::from(w.target <= durable);
                w.woken.store(true, Ordering::Release);
                w.thread.unpark();
            }
            !wake
        });
        covered
    }

    /// Whether a sync is running or a committer waits for one.
    pub(super) fn has_waiters(&self) -> bool {
        self.syncing || !self.waiters.is_empty()
    }

    /// Called by a thread that leaves without leading a sync: if nobody is
    /// syncing, parked waiters must not be left without a leader.
    fn hand_over(&mut self) {
        if !self.syncing && !self.waiters.is_empty() {
            self.wake(false);
        }
    }
}

impl Shared {
    /// Returns once every record before `target` is durable.
    pub(super) fn sync_to(&self, target: u64) -> Result<()> {
        let mut d = lock(&self.durability);
        d.arrivals += 1;
        loop {
            self.check_poison()?;
            if d.durable >= target {
                // A waiter woken to lead may find its target covered by someone
                // else's sync (a segment rotation): pass the lead on.
                d.hand_over();
                return Ok(());
            }
            if d.syncing {
                let waiter = Arc::new(Waiter {
                    target,
                    thread: std::thread::current(),
                    woken: AtomicBool::new(false),
                });
                d.waiters.push(waiter.clone());
                drop(d);
                while !waiter.woken.load(Ordering::Acquire) {
                    std::thread::park();
                }
                d = lock(&self.durability);
                continue;
            }
            d.syncing = true;
            d = self.gather(d);
            d.arrivals_at_capture = d.arrivals;
            drop(d);
            let started = Instant::now();
            let result = self.write_out_and_sync();
            d = lock(&self.durability);
            d.last_sync_time = started.elapsed();
            d.syncing = false;
            if let Ok(upto) = result {
                d.durable = d.durable.max(upto);
                self.durable_hint.store(d.durable, Ordering::Release);
            }
            d.last_round_covered = d.wake(result.is_err());
            if result.is_ok() {
                ::metrics::histogram!(crate::metrics::WAL_GROUP_COMMIT_SIZE)
                    .record(d.last_round_covered as f64);
            }
            if result? < target {
                // The log was cut below `target` (cut_from) after the caller
                // took it: those records no longer exist and never will.
                d.hand_over();
                return Err(crate::Error::invalid_argument(
                    "wait for durability",
                    format!("position {target} was removed by cut_from before it became durable"),
                ));
            }
        }
    }

    /// Adaptive batching, for the leader before it captures: when the last round
    /// covered several committers, most of them were just woken and are appending
    /// their next records. Yield until as many have arrived as the last round
    /// covered, or half the last fsync's duration (at most 200 us) has passed, so
    /// that this fsync covers them instead of leaving them for the next one. A
    /// lone committer never waits.
    fn gather<'a>(&'a self, d: MutexGuard<'a, Durability>) -> MutexGuard<'a, Durability> {
        let expected = d.last_round_covered;
        if expected <= 1 {
            return d;
        }
        let base = d.arrivals_at_capture;
        let budget = (d.last_sync_time / 2).min(Duration::from_micros(200));
        drop(d);
        let start = Instant::now();
        loop {
            std::thread::yield_now();
            let d = lock(&self.durability);
            if d.arrivals - base >= expected || start.elapsed() >= budget {
                return d;
            }
        }
    }

    /// Wakes every waiting committer (the log was poisoned).
    pub(super) fn wake_all(&self) {
        lock(&self.durability).wake(true);
    }

    /// Writes the buffer and fsyncs the active segment; returns the position up to
    /// which the log is now durable.
    fn write_out_and_sync(&self) -> Result<u64> {
        let (file, path, upto) = {
            let mut w = lock(&self.writer);
            self.check_poison()?;
            self.flush_locked(&mut w)?;
            match &w.active {
                Some(a) => (a.file.clone(), a.path.clone(), w.next_position),
                None => return Ok(w.next_position),
            }
        };
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.fsync(file.as_ref(), &path, false)?;
        Ok(upto)
    }

    /// The one way the log fsyncs one of its files (`all`: data and metadata,
    /// else data). Serialised with every other fsync of the log by
    /// `sync_lock`; refused with [`Error::Poisoned`](crate::Error::Poisoned)
    /// once the log is poisoned (a failed fsync is never retried); a failure
    /// poisons the log before the lock is released.
    ///
    /// # Errors
    /// [`Error::Poisoned`](crate::Error::Poisoned), or the fsync's I/O error.
    pub(super) fn fsync(&self, file: &dyn StorageFile, path: &Path, all: bool) -> Result<()> {
        let _serial = lock(&self.sync_lock);
        self.check_poison()?;
        let started = Instant::now();
        let synced = if all {
            file.sync_all()
        } else {
            file.sync_data()
        };
        ::metrics::histogram!(crate::metrics::WAL_FSYNC_SECONDS)
            .record(started.elapsed().as_secs_f64());
        synced.map_err(|e| {
            ::metrics::counter!(crate::metrics::WAL_FSYNC_FAILURES).increment(1);
            self.poison("sync", path, e)
        })
    }

    /// Records that the log was cut at `position`: everything before it is
    /// durable, nothing at or after it exists.
    pub(super) fn reset_durable(&self, position: u64) {
        let mut d = lock(&self.durability);
        d.durable = position;
        self.durable_hint.store(position, Ordering::Release);
        d.hand_over();
    }

    /// Records that everything before `position` is durable (a sealed segment was
    /// fsynced, or a repair cut the log there).
    pub(super) fn mark_durable(&self, position: u64) {
        let mut d = lock(&self.durability);
        d.durable = d.durable.max(position);
        self.durable_hint.store(d.durable, Ordering::Release);
        d.hand_over();
    }
}

/// Starts the thread that makes appended records durable within `interval`.
///
/// # Errors
/// An I/O error when the thread cannot be spawned.
pub(super) fn spawn_flusher(shared: Arc<Shared>, interval: Duration) -> Result<JoinHandle<()>> {
    let dir = shared.dir.clone();
    std::thread::Builder::new()
        .name("highwater-wal-flusher".into())
        .spawn(move || loop {
            {
                let stop = lock(&shared.shutdown);
                let (stop, _) = shared
                    .shutdown_cv
                    .wait_timeout_while(stop, interval, |stop| !*stop)
                    .unwrap_or_else(|e| e.into_inner());
                if *stop {
                    return;
                }
            }
            if shared.poisoned.load(Ordering::SeqCst) {
                return;
            }
            let target = lock(&shared.writer).next_position;
            if let Err(error) = shared.sync_to(target) {
                if shared.poisoned.load(Ordering::SeqCst) {
                    tracing::error!(dir = %shared.dir.display(), %error, "background sync failed");
                    return;
                }
                // Not an I/O failure: the log was cut below the target.
                tracing::debug!(dir = %shared.dir.display(), %error, "background sync target was cut");
            }
        })
        .ctx("spawn flusher thread", &dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiters(d: &mut Durability, targets: &[u64]) -> Vec<Arc<Waiter>> {
        let ws: Vec<_> = targets
            .iter()
            .map(|&target| {
                Arc::new(Waiter {
                    target,
                    thread: std::thread::current(),
                    woken: AtomicBool::new(false),
                })
            })
            .collect();
        d.waiters.extend(ws.iter().cloned());
        ws
    }

    #[test]
    fn a_round_wakes_the_covered_waiters_and_one_next_leader() {
        let mut d = Durability::new(100);
        let ws = waiters(&mut d, &[50, 200, 100, 300]);
        assert_eq!(d.wake(false), 3, "leader plus the two covered waiters");
        let woken: Vec<bool> = ws.iter().map(|w| w.woken.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, [true, true, true, false]);
        assert_eq!(d.waiters.len(), 1);
    }

    #[test]
    fn an_error_wakes_every_waiter() {
        let mut d = Durability::new(0);
        let ws = waiters(&mut d, &[10, 20, 30]);
        d.wake(true);
        assert!(ws.iter().all(|w| w.woken.load(Ordering::SeqCst)));
        assert!(d.waiters.is_empty(), "a waiter left parked after an error");
    }
}
