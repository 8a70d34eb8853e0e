//! [`SinkCoordinator`]: the two-phase commit between checkpoints and
//! transactional sinks.
//!
//! Invariants:
//! - A sink commits a transaction only after a durable checkpoint records it.
//! - Every transaction that was pre-committed and is not known to be committed
//!   is recorded in every checkpoint the coordinator writes, so the newest
//!   durable checkpoint always names all output that is owed; commits are
//!   idempotent, so recording one twice is harmless.
//! - A checkpoint that fails is not aborted: its outcome is unknown (a crash
//!   may still leave it durable), so its transactions stay staged and pending.
//! - After a failed pre-commit the sinks' state is unknown and the coordinator
//!   refuses to go on; the pipeline recovers instead.

use super::transactional::{SinkOwner, TransactionalSink};
use crate::checkpoint::metadata::check_handle;
use crate::checkpoint::{
    BackgroundCheckpointer, Base, CheckpointRequest, CheckpointTicket,
    IncrementalCheckpointManager, IncrementalCheckpointMetadata, RejectedCheckpoint,
    SinkTransaction,
};
use crate::error::{Error, Result};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// Drives the two-phase commit of a pipeline's [`TransactionalSink`]s around
/// the checkpoints of an [`IncrementalCheckpointManager`]
/// (docs/EXACTLY_ONCE.md).
///
/// Create it with [`recover`](Self::recover) on every start, restore the
/// operator's state, offsets and watermarks from
/// [`restored`](Self::restored), then call [`checkpoint`](Self::checkpoint) at
/// every epoch boundary. The sinks given to `recover` are the coordinator's:
/// every `checkpoint` call must pass exactly those (by name), and a call that
/// does not is refused before anything is done ([`Error::SinkMismatch`]).
///
/// To keep processing while the checkpoint is written, use
/// [`begin_checkpoint`](Self::begin_checkpoint) and
/// [`finish_checkpoint`](Self::finish_checkpoint) instead (the checkpoint is
/// written on a background thread; the order of the two-phase commit is the
/// same).
///
/// The restored state is the checkpoint's, not the write-ahead log's tail:
/// output produced after the checkpoint was never committed, so the sources
/// must rewind to the checkpoint's offsets and produce it again.
#[derive(Debug)]
pub struct SinkCoordinator {
    /// Owns the manager; writes the checkpoints `begin_checkpoint` begins.
    pub(super) checkpointer: BackgroundCheckpointer,
    /// The epoch being processed.
    pub(super) epoch: u64,
    /// The background checkpoint begun and not finished.
    pub(super) in_flight: Option<CheckpointTicket>,
    /// Outcomes of background checkpoints finished (their sinks committed)
    /// but not yet returned by `finish_checkpoint`/`poll_checkpoint`.
    pub(super) reports: VecDeque<Result<IncrementalCheckpointMetadata>>,
    restored: Option<IncrementalCheckpointMetadata>,
    rejected: Vec<RejectedCheckpoint>,
    /// Pre-committed transactions not known to be committed, oldest first.
    pub(super) pending: Vec<SinkTransaction>,
    pub(super) failed: Option<String>,
    /// The names of the sinks given to `recover`, sorted.
    pub(super) sinks: Vec<String>,
    /// Alive as long as the coordinator: what [`SinkOwner`]s point at.
    _token: Arc<()>,
}

impl SinkCoordinator {
    /// Restores the sinks to the newest restorable checkpoint of `manager`:
    /// commits every transaction it records (again), aborts everything staged
    /// for later epochs, and begins the next epoch. That checkpoint (or, with
    /// none, the empty state) becomes the manager's base: the parent of the
    /// next delta (see [`IncrementalCheckpointManager`]).
    ///
    /// # Errors
    /// `Io` when the checkpoint directory cannot be read, or a checkpoint
    /// cannot be read now (an older one is never restored in its place, see
    /// [`IncrementalCheckpointManager::find_latest_checkpoint`]; retry);
    /// [`Error::EpochExhausted`] when the checkpoint's epoch is `u64::MAX`;
    /// [`Error::Sink`] when a sink fails to commit, abort or begin (among them
    /// a sink refusing because it already published later output);
    /// `InvalidArgument` when the checkpoint records a transaction of a sink
    /// not in `sinks`, or two sinks share a name; [`Error::Sink`] with
    /// operation "attach" (its source [`Error::SinkInUse`]) when a sink is
    /// driven by another live coordinator.
    pub fn recover(
        manager: IncrementalCheckpointManager,
        sinks: &mut [&mut dyn TransactionalSink],
    ) -> Result<Self> {
        let names = check_names(sinks)?;
        let token = Arc::new(());
        let owner = SinkOwner::of(&token);
        for sink in sinks.iter_mut() {
            let name = sink.name().to_string();
            sink.attach(&owner)
                .map_err(|e| sink_error(&name, "attach", manager.epoch(), e))?;
        }
        let latest = manager.latest_strict()?;
        let epoch = latest.metadata.as_ref().map_or(0, |c| c.epoch);
        let next = epoch.checked_add(1).ok_or_else(|| Error::EpochExhausted {
            path: latest.metadata.as_ref().map_or_else(
                || manager.config().dir().to_path_buf(),
                |c| c.checkpoint_path(manager.config().dir()),
            ),
            epoch,
        })?;
        if let Some(checkpoint) = &latest.metadata {
            for transaction in &checkpoint.sink_transactions {
                let sink = find(sinks, &transaction.sink)?;
                sink.commit(transaction.epoch, &transaction.handle)
                    .map_err(|e| sink_error(&transaction.sink, "commit", transaction.epoch, e))?;
            }
        }
        for sink in sinks.iter_mut() {
            let name = sink.name().to_string();
            sink.abort_after(epoch)
                .map_err(|e| sink_error(&name, "abort", next, e))?;
            sink.begin(next)
                .map_err(|e| sink_error(&name, "begin", next, e))?;
        }
        manager.set_epoch(next);
        // The caller restores exactly this checkpoint (or nothing): the
        // parent of its next delta.
        manager.set_base(match &latest.metadata {
            Some(c) => Base::Checkpoint(c.id),
            None => Base::Empty,
        });
        tracing::info!(
            checkpoint = ?latest.metadata.as_ref().map(|c| c.id),
            restored_epoch = epoch,
            rejected = latest.rejected.len(),
            sinks = sinks.len(),
            "sinks recovered"
        );
        Ok(SinkCoordinator {
            checkpointer: BackgroundCheckpointer::new(manager),
            epoch: next,
            in_flight: None,
            reports: VecDeque::new(),
            restored: latest.metadata,
            rejected: latest.rejected,
            pending: Vec::new(),
            failed: None,
            sinks: names,
            _token: token,
        })
    }

    /// The checkpoint the sinks were restored to (`None`: start from nothing).
    /// Restore the operator's state, offsets and watermarks from exactly this
    /// checkpoint.
    pub fn restored(&self) -> Option<&IncrementalCheckpointMetadata> {
        self.restored.as_ref()
    }

    /// Newer checkpoints that were not restorable, newest first.
    pub fn rejected(&self) -> &[RejectedCheckpoint] {
        &self.rejected
    }

    /// The checkpoint manager (to load the restored state). Its reads make
    /// the checkpoint read the base of the next delta; other reads go
    /// through [`manager().store()`](IncrementalCheckpointManager::store),
    /// whose reads never move the base.
    pub fn manager(&self) -> &IncrementalCheckpointManager {
        self.checkpointer.manager()
    }

    /// The epoch being processed: the next checkpoint closes it.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Transactions pre-committed but not yet known to be committed.
    pub fn pending(&self) -> &[SinkTransaction] {
        &self.pending
    }

    /// Closes the current epoch: pre-commits every sink, writes the checkpoint
    /// `request` describes with every pending transaction in it, and once it
    /// is durable commits them. The next epoch begins whatever the outcome.
    /// A background checkpoint in flight ([`begin_checkpoint`](Self::begin_checkpoint))
    /// is finished first; its outcome is returned by the next
    /// [`finish_checkpoint`](Self::finish_checkpoint).
    ///
    /// # Errors
    /// - [`Error::Sink`] when a sink fails to pre-commit or begin; the
    ///   coordinator then fails every later call with
    ///   [`Error::SinkCoordinatorFailed`] (recover instead).
    /// - The checkpoint manager's errors when the checkpoint fails. Its outcome
    ///   is then unknown: its transactions stay staged and pending, are
    ///   recorded in the next checkpoint, and processing may continue.
    /// - [`Error::SinkCommitPending`] when the checkpoint is durable but a sink
    ///   failed to commit; processing may continue.
    /// - [`Error::SinkMismatch`] when `sinks` are not exactly the sinks given
    ///   to [`recover`](Self::recover) (by name); nothing is done.
    /// - [`Error::EpochExhausted`] when the current epoch is `u64::MAX`
    ///   (nothing is done).
    pub fn checkpoint(
        &mut self,
        request: CheckpointRequest<'_>,
        sinks: &mut [&mut dyn TransactionalSink],
    ) -> Result<IncrementalCheckpointMetadata> {
        let (request, epoch, next) = self.prepare(request, sinks)?;
        let written = self.manager().create_checkpoint(request);
        self.set_epoch(next);
        let checkpoint = written.inspect_err(|e| {
            tracing::warn!(epoch, pending = self.pending.len(), error = %e, "checkpoint failed; its sink transactions stay pending");
        })?;
        self.commit_pending(&checkpoint, sinks)?;
        Ok(checkpoint)
    }

    /// Refuses `sinks` unless they are the sinks given to `recover`.
    /// Steps 1–2 of a checkpoint, shared by [`checkpoint`](Self::checkpoint)
    /// and [`begin_checkpoint`](Self::begin_checkpoint): refuses a failed
    /// coordinator or other sinks, finishes the checkpoint in flight, then
    /// pre-commits epoch `e` and begins `e + 1` in every sink. Returns the
    /// request with every pending handle, `e` and `e + 1`.
    pub(super) fn prepare<'a>(
        &mut self,
        request: CheckpointRequest<'a>,
        sinks: &mut [&mut dyn TransactionalSink],
    ) -> Result<(CheckpointRequest<'a>, u64, u64)> {
        if let Some(cause) = &self.failed {
            return Err(Error::SinkCoordinatorFailed {
                cause: cause.clone(),
            });
        }
        self.check_sinks(sinks)?;
        self.finish_in_flight(sinks);
        let (epoch, next) = self.next_epoch()?;
        let request = self.pre_commit_into(request, epoch, next, sinks)?;
        Ok((request, epoch, next))
    }

    pub(super) fn check_sinks(&self, sinks: &[&mut dyn TransactionalSink]) -> Result<()> {
        let given = check_names(sinks)?;
        if given != self.sinks {
            return Err(Error::SinkMismatch {
                registered: self.sinks.clone(),
                given,
            });
        }
        Ok(())
    }

    /// The epoch being processed and the next.
    ///
    /// # Errors
    /// `EpochExhausted` for epoch `u64::MAX`.
    pub(super) fn next_epoch(&self) -> Result<(u64, u64)> {
        let epoch = self.epoch;
        let next = epoch.checked_add(1).ok_or_else(|| Error::EpochExhausted {
            path: self.manager().config().dir().to_path_buf(),
            epoch,
        })?;
        Ok((epoch, next))
    }

    /// Makes `epoch` the one being processed (and the manager's next).
    pub(super) fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.manager().set_epoch(epoch);
    }

    /// Pre-commits every sink for `epoch` (a failure fails the coordinator)
    /// and returns `request` with every pending transaction in it, the
    /// manager set to record `epoch`.
    ///
    /// # Errors
    /// The sink's error.
    pub(super) fn pre_commit_into<'a>(
        &mut self,
        request: CheckpointRequest<'a>,
        epoch: u64,
        next: u64,
        sinks: &mut [&mut dyn TransactionalSink],
    ) -> Result<CheckpointRequest<'a>> {
        if let Err(e) = self.pre_commit(epoch, next, sinks) {
            self.failed = Some(e.to_string());
            return Err(e);
        }
        self.manager().set_epoch(epoch);
        Ok(self
            .pending
            .iter()
            .cloned()
            .fold(request, CheckpointRequest::with_sink_transaction))
    }

    /// Ends `epoch` in every sink and begins the next; the handles join
    /// `pending`.
    fn pre_commit(
        &mut self,
        epoch: u64,
        next: u64,
        sinks: &mut [&mut dyn TransactionalSink],
    ) -> Result<()> {
        for sink in sinks.iter_mut() {
            let name = sink.name().to_string();
            let handle = sink
                .pre_commit(epoch)
                .map_err(|e| sink_error(&name, "pre-commit", epoch, e))?;
            // Refused here, not by the manager later: a handle no checkpoint
            // can record would otherwise stay pending and fail every checkpoint.
            check_handle(&handle)
                .map_err(|reason| sink_error(&name, "pre-commit", epoch, reason.into()))?;
            sink.begin(next)
                .map_err(|e| sink_error(&name, "begin", next, e))?;
            self.pending.push(SinkTransaction {
                sink: name,
                epoch,
                handle,
            });
        }
        Ok(())
    }

    /// Commits every pending transaction, oldest first, now that `checkpoint`
    /// records them all. Those that fail stay pending, and so do the later
    /// ones of the same sink: a sink publishes its epochs in order.
    pub(super) fn commit_pending(
        &mut self,
        checkpoint: &IncrementalCheckpointMetadata,
        sinks: &mut [&mut dyn TransactionalSink],
    ) -> Result<()> {
        let mut first_error = None;
        let mut still_pending: Vec<SinkTransaction> = Vec::new();
        for transaction in std::mem::take(&mut self.pending) {
            if still_pending.iter().any(|t| t.sink == transaction.sink) {
                still_pending.push(transaction);
                continue;
            }
            let result = find(sinks, &transaction.sink).and_then(|sink| {
                sink.commit(transaction.epoch, &transaction.handle)
                    .map_err(|source| Error::SinkCommitPending {
                        checkpoint_id: checkpoint.id,
                        sink: transaction.sink.clone(),
                        epoch: transaction.epoch,
                        source,
                    })
            });
            if let Err(e) = result {
                tracing::warn!(checkpoint = checkpoint.id, sink = %transaction.sink, epoch = transaction.epoch, error = %e, "sink commit failed; it stays pending");
                first_error.get_or_insert(e);
                still_pending.push(transaction);
            }
        }
        self.pending = still_pending;
        first_error.map_or(Ok(()), Err)
    }
}

fn sink_error(
    sink: &str,
    operation: &'static str,
    epoch: u64,
    source: crate::recovery::SinkError,
) -> Error {
    Error::Sink {
        sink: sink.to_string(),
        operation,
        epoch,
        source,
    }
}

/// The sink named `name`.
fn find<'s>(
    sinks: &'s mut [&mut dyn TransactionalSink],
    name: &str,
) -> Result<&'s mut dyn TransactionalSink> {
    match sinks.iter_mut().find(|s| s.name() == name) {
        Some(sink) => Ok(&mut **sink),
        None => Err(Error::invalid_argument(
            "SinkCoordinator",
            format!("a transaction of sink {name:?} is owed but no sink of that name was given"),
        )),
    }
}

/// The sinks' names, sorted; two sinks may not share one.
fn check_names(sinks: &[&mut dyn TransactionalSink]) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    for sink in sinks {
        if !seen.insert(sink.name()) {
            return Err(Error::invalid_argument(
                "SinkCoordinator",
                format!("two sinks are named {:?}", sink.name()),
            ));
        }
    }
    let mut names: Vec<String> = seen.into_iter().map(str::to_string).collect();
    names.sort_unstable();
    Ok(names)
}
