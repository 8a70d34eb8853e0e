//! [`BackgroundCheckpointer`]: checkpoints written on a thread of their own,
//! so the caller pauses only to hand over what it will write.
//!
//! Invariants:
//! - At most one checkpoint is in flight: a submit while one is in flight
//!   first waits for it (backpressure), so every checkpoint is written after
//!   the one submitted before it, and its parent is the checkpoint the
//!   caller's state was built from.
//! - Every submitted checkpoint has exactly one outcome, collected in order by
//!   `wait`/`try_complete` (or returned by `close`); a panic on the thread is
//!   the outcome [`Error::CheckpointPanicked`], never lost.
//! - A background checkpoint that fails (or a submit that fails after taking
//!   the request) leaves the manager's base *lost*: the caller's state was
//!   built on a checkpoint that does not exist, so the next request that
//!   builds on a parent is refused ([`Error::DeltaParentUnknown`]) rather
//!   than applied to an older checkpoint; a request giving the whole state,
//!   or naming its parent, is written.
//! - The thread is named `highwater-checkpoint` and joined on `close` and on
//!   drop (after the checkpoint in flight completes).

use super::manager::IncrementalCheckpointManager;
use super::metadata::IncrementalCheckpointMetadata;
use super::parent::Base;
use super::request::CheckpointRequest;
use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Names one checkpoint handed to a [`BackgroundCheckpointer`]; tickets
/// increase with every submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckpointTicket(u64);

impl CheckpointTicket {
    /// The ticket's number (1 for the first submit).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// How a background checkpoint ended.
#[derive(Debug)]
pub struct CheckpointOutcome {
    /// The checkpoint's ticket.
    pub ticket: CheckpointTicket,
    /// The checkpoint written, durable, or why it was not
    /// ([`IncrementalCheckpointManager::create_checkpoint`]'s errors, or
    /// [`Error::CheckpointPanicked`]).
    pub result: Result<IncrementalCheckpointMetadata>,
    /// From the start of `submit` to the end of the checkpoint.
    pub duration: Duration,
}

/// A checkpoint to write.
struct Job {
    ticket: CheckpointTicket,
    request: CheckpointRequest<'static>,
    submitted: Instant,
}

/// The thread and its channels.
#[derive(Debug)]
struct Worker {
    jobs: mpsc::Sender<Job>,
    outcomes: mpsc::Receiver<CheckpointOutcome>,
    thread: JoinHandle<()>,
}

/// Writes the checkpoints of an [`IncrementalCheckpointManager`] on a
/// background thread.
///
/// [`submit`](Self::submit) takes a [`CheckpointRequest`] and returns once
/// it is handed over: the log it names is made durable through its position
/// and checked, borrowed parts are copied, owned parts
/// ([`CheckpointRequest::with_owned_part`]) move as they are and are
/// converted on the thread ([`IntoPart`](super::IntoPart)). Give owned parts
/// (a [`StateDelta`](crate::StateDelta) taken from the operator's state) so
/// that nothing is copied. The checkpoint is then written exactly as
/// [`create_checkpoint`](IncrementalCheckpointManager::create_checkpoint)
/// writes it — same parent rule, same publish order and fsyncs, so a crash
/// while it runs recovers as a crash during a synchronous checkpoint.
///
/// At most one checkpoint is in flight; a submit while one is in flight
/// waits for it first. Outcomes are collected in submission order with
/// [`try_complete`](Self::try_complete) (never blocks) or
/// [`wait`](Self::wait). A failed checkpoint leaves the parent *lost*: the
/// next request that builds on a parent fails with
/// [`Error::DeltaParentUnknown`] — give the whole state (or name the parent
/// with [`CheckpointRequest::with_parent`] and the changes since it).
///
/// Use the manager ([`manager`](Self::manager)) for reads while the
/// checkpointer writes; checkpoints of the same manager written around it
/// would have no defined order with the one in flight.
///
/// # Examples
/// ```
/// # use highwater::*;
/// # fn main() -> highwater::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()))?;
/// let mut checkpointer = BackgroundCheckpointer::new(manager);
/// let mut state = TrackedState::new();
/// state.put(b"k".to_vec(), b"v".to_vec());
/// let request = CheckpointRequest::new(0).with_owned_part("state", state.snapshot());
/// let ticket = checkpointer.submit(request)?; // returns at once
/// state.mark_checkpointed();
/// state.put(b"k".to_vec(), b"v2".to_vec()); // processing goes on
/// let outcome = checkpointer.wait().expect("one checkpoint was submitted");
/// assert_eq!(outcome.ticket, ticket);
/// let written = outcome.result?; // durable
/// // The next one builds on it.
/// checkpointer.submit(CheckpointRequest::new(0).with_owned_part("state", state.delta()))?;
/// assert_eq!(checkpointer.wait().unwrap().result?.parent_id, Some(written.id));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BackgroundCheckpointer {
    manager: Arc<IncrementalCheckpointManager>,
    /// Started by the first submit.
    worker: Option<Worker>,
    in_flight: Option<CheckpointTicket>,
    /// Outcomes received, not yet collected, oldest first.
    completed: VecDeque<CheckpointOutcome>,
    last_ticket: u64,
}

impl BackgroundCheckpointer {
    /// A checkpointer writing through `manager`. The thread starts with the
    /// first [`submit`](Self::submit).
    pub fn new(manager: IncrementalCheckpointManager) -> Self {
        BackgroundCheckpointer {
            manager: Arc::new(manager),
            worker: None,
            in_flight: None,
            completed: VecDeque::new(),
            last_ticket: 0,
        }
    }

    /// The manager (its epoch, its store).
    ///
    /// Its reads follow the manager's rule: `load_snapshot`,
    /// `load_checkpoint_state` and `open_state_view` on the manager make the
    /// checkpoint read the base of the next delta, which is then refused
    /// (`DeltaParentMismatch`) if the operator's state did not come from it.
    /// While the checkpointer writes, read through
    /// [`manager().store()`](IncrementalCheckpointManager::store): the
    /// store's reads of the same names never move the base.
    pub fn manager(&self) -> &IncrementalCheckpointManager {
        &self.manager
    }

    /// The checkpoint in flight, if any.
    pub fn in_flight(&self) -> Option<CheckpointTicket> {
        self.in_flight
    }

    /// Hands `request` to the background thread and returns its ticket; if a
    /// checkpoint is in flight, waits for it first (its outcome is kept for
    /// [`try_complete`](Self::try_complete)/[`wait`](Self::wait)). What runs
    /// on the caller's thread: that wait, the log's sync and check
    /// ([`CheckpointRequest::with_wal`]), and a copy of borrowed parts.
    ///
    /// # Errors
    /// The log's errors ([`CheckpointRequest::with_wal`]); `Io` when the
    /// thread cannot be started. The request is consumed: as after a failed
    /// background checkpoint, the parent is lost (see above). The
    /// checkpoint's own errors are its outcome's.
    pub fn submit(&mut self, request: CheckpointRequest<'_>) -> Result<CheckpointTicket> {
        let submitted = Instant::now();
        self.finish_in_flight(true);
        let ticket = CheckpointTicket(self.last_ticket.saturating_add(1));
        let job = request.detach().map(|request| Job {
            ticket,
            request,
            submitted,
        });
        let sent = job.and_then(|job| self.send(job));
        if let Err(e) = sent {
            self.manager.set_base(Base::Lost);
            return Err(e);
        }
        self.last_ticket = ticket.0;
        self.in_flight = Some(ticket);
        Ok(ticket)
    }

    /// The oldest outcome not yet collected, if the checkpoint has completed;
    /// never blocks. `None` when none has completed since the last call.
    pub fn try_complete(&mut self) -> Option<CheckpointOutcome> {
        self.finish_in_flight(false);
        self.completed.pop_front()
    }

    /// The oldest outcome not yet collected, waiting for the checkpoint in
    /// flight if that is the one. `None` when every outcome was collected
    /// and none is in flight.
    pub fn wait(&mut self) -> Option<CheckpointOutcome> {
        if self.completed.is_empty() {
            self.finish_in_flight(true);
        }
        self.completed.pop_front()
    }

    /// Waits for the checkpoint in flight, stops and joins the thread, and
    /// returns every outcome not yet collected, oldest first (dropping the
    /// checkpointer does the same, logging failed outcomes nobody collected).
    /// The manager is dropped (its directory lock released).
    pub fn close(mut self) -> Vec<CheckpointOutcome> {
        self.finish_in_flight(true);
        self.stop();
        std::mem::take(&mut self.completed).into()
    }

    /// Moves the outcome of the checkpoint in flight, if it has one (waiting
    /// for it when `block`), to `completed`.
    fn finish_in_flight(&mut self, block: bool) {
        let (Some(ticket), Some(worker)) = (self.in_flight, self.worker.as_ref()) else {
            return;
        };
        let received = if block {
            worker.outcomes.recv().map_err(|_| ())
        } else {
            match worker.outcomes.try_recv() {
                Ok(outcome) => Ok(outcome),
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => Err(()),
            }
        };
        let outcome = received.unwrap_or_else(|()| self.thread_died(ticket));
        self.in_flight = None;
        self.completed.push_back(outcome);
    }

    /// The outcome of the checkpoint in flight when the thread ended without
    /// one (it panicked outside a checkpoint): joins it for the message.
    fn thread_died(&mut self, ticket: CheckpointTicket) -> CheckpointOutcome {
        let message = match self.worker.take().map(|w| w.thread.join()) {
            Some(Err(panic)) => panic_message(panic.as_ref()),
            _ => "the thread ended without a result".to_string(),
        };
        self.manager.set_base(Base::Lost);
        CheckpointOutcome {
            ticket,
            result: Err(Error::CheckpointPanicked {
                ticket: ticket.0,
                message,
            }),
            duration: Duration::ZERO,
        }
    }

    /// Sends `job`, starting the thread first if needed.
    fn send(&mut self, job: Job) -> Result<()> {
        if self.worker.is_none() {
            self.worker = Some(self.spawn()?);
        }
        let worker = self.worker.as_ref().ok_or_else(|| {
            Error::invalid_argument("BackgroundCheckpointer", "no background thread")
        })?;
        worker
            .jobs
            .send(job)
            .map_err(|_| Error::CheckpointPanicked {
                ticket: self.last_ticket.saturating_add(1),
                message: "the background thread is gone".into(),
            })
    }

    /// Starts the thread.
    fn spawn(&self) -> Result<Worker> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (outcome_tx, outcomes) = mpsc::channel();
        let manager = Arc::clone(&self.manager);
        let thread = std::thread::Builder::new()
            .name("highwater-checkpoint".into())
            .spawn(move || run(&manager, &job_rx, &outcome_tx))
            .map_err(|e| Error::io("spawn thread", self.manager.config().dir(), e))?;
        Ok(Worker {
            jobs,
            outcomes,
            thread,
        })
    }

    /// Stops the thread (after the job it runs) and joins it.
    fn stop(&mut self) {
        if let Some(worker) = self.worker.take() {
            drop(worker.jobs);
            if let Err(panic) = worker.thread.join() {
                tracing::error!(message = %panic_message(panic.as_ref()), "the background checkpoint thread panicked");
            }
        }
    }
}

impl Drop for BackgroundCheckpointer {
    fn drop(&mut self) {
        self.finish_in_flight(true);
        self.stop();
        for outcome in &self.completed {
            if let Err(e) = &outcome.result {
                tracing::warn!(ticket = outcome.ticket.0, error = %e, "a background checkpoint failed and its outcome was never collected");
            }
        }
    }
}

/// The thread's loop: writes each job's checkpoint and sends its outcome.
fn run(
    manager: &IncrementalCheckpointManager,
    jobs: &mpsc::Receiver<Job>,
    outcomes: &mpsc::Sender<CheckpointOutcome>,
) {
    while let Ok(job) = jobs.recv() {
        let ticket = job.ticket;
        let result = catch_unwind(AssertUnwindSafe(|| manager.create_checkpoint(job.request)))
            .unwrap_or_else(|panic| {
                Err(Error::CheckpointPanicked {
                    ticket: ticket.0,
                    message: panic_message(panic.as_ref()),
                })
            });
        if let Err(e) = &result {
            // The caller's state was built on this checkpoint.
            manager.set_base(Base::Lost);
            tracing::warn!(ticket = ticket.0, error = %e, "background checkpoint failed; the next delta needs a known parent");
        }
        let outcome = CheckpointOutcome {
            ticket,
            result,
            duration: job.submitted.elapsed(),
        };
        if outcomes.send(outcome).is_err() {
            return;
        }
    }
}

/// The message a panic carried.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}
