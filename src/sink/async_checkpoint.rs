//! Asynchronous checkpoints of a [`SinkCoordinator`]: the sinks are
//! pre-committed on the caller's thread, the checkpoint is written on the
//! background thread ([`BackgroundCheckpointer`](crate::BackgroundCheckpointer)),
//! and the sinks commit on a later call, once it is durable.
//!
//! Invariants (those of `coordinator`, plus):
//! - The two-phase commit order is unchanged: pre-commit, checkpoint durable,
//!   commit. A sink commits only in `finish_checkpoint`/`poll_checkpoint`
//!   (or when the next checkpoint begins), after the outcome says durable.
//! - At most one checkpoint is in flight, and no sink pre-commits while one
//!   is: beginning a checkpoint (or a synchronous one) finishes the one in
//!   flight first, so the pending transactions are exactly those the
//!   finished checkpoint records.
//! - Every begun checkpoint's outcome is returned once, in order.

use super::coordinator::SinkCoordinator;
use super::transactional::TransactionalSink;
use crate::checkpoint::{CheckpointOutcome, CheckpointRequest, CheckpointTicket};
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::IncrementalCheckpointMetadata;

impl SinkCoordinator {
    /// Closes the current epoch like [`checkpoint`](Self::checkpoint), but
    /// returns once the checkpoint is handed to the background thread:
    /// pre-commits every sink (on this thread), begins the next epoch, and
    /// hands over the checkpoint `request` describes with every pending
    /// transaction in it. Give owned parts
    /// ([`CheckpointRequest::with_owned_part`]); borrowed ones are copied.
    /// The sinks commit when [`finish_checkpoint`](Self::finish_checkpoint)
    /// or [`poll_checkpoint`](Self::poll_checkpoint) learns the checkpoint is
    /// durable.
    ///
    /// A checkpoint still in flight is finished first (waiting for it, its
    /// sinks committed); its outcome is returned by the next
    /// `finish_checkpoint`.
    ///
    /// # Errors
    /// - [`Error::Sink`] when a sink fails to pre-commit or begin; the
    ///   coordinator then fails every later call with
    ///   [`Error::SinkCoordinatorFailed`] (recover instead).
    /// - The log's errors ([`CheckpointRequest::with_wal`]) when the checkpoint
    ///   cannot be handed over: its transactions stay pending and the next
    ///   epoch has begun, as for a failed checkpoint.
    /// - [`Error::SinkMismatch`], [`Error::EpochExhausted`]: nothing is done.
    pub fn begin_checkpoint(
        &mut self,
        request: CheckpointRequest<'_>,
        sinks: &mut [&mut dyn TransactionalSink],
    ) -> Result<CheckpointTicket> {
        let (request, epoch, next) = self.prepare(request, sinks)?;
        let submitted = self.checkpointer.submit(request);
        match submitted {
            Ok(ticket) => {
                // The manager's epoch is set when the checkpoint is finished:
                // the background thread reads it now.
                self.epoch = next;
                self.in_flight = Some(ticket);
                Ok(ticket)
            }
            Err(e) => {
                self.set_epoch(next);
                tracing::warn!(epoch, pending = self.pending.len(), error = %e, "checkpoint could not be handed over; its sink transactions stay pending");
                Err(e)
            }
        }
    }

    /// The outcome of the oldest checkpoint begun and not yet reported,
    /// waiting for it if it is in flight; once it is durable, commits the
    /// sinks. `Ok(None)` when there is none.
    ///
    /// # Errors
    /// As [`checkpoint`](Self::checkpoint): the manager's errors when the
    /// checkpoint failed (its transactions stay pending and are recorded in
    /// the next checkpoint; the parent of the next delta is then unknown, see
    /// [`BackgroundCheckpointer`](crate::BackgroundCheckpointer));
    /// [`Error::SinkCommitPending`] when it is durable but a sink failed to
    /// commit; [`Error::SinkMismatch`] when `sinks` are not the coordinator's
    /// (nothing is done).
    pub fn finish_checkpoint(
        &mut self,
        sinks: &mut [&mut dyn TransactionalSink],
    ) -> Result<Option<IncrementalCheckpointMetadata>> {
        self.check_sinks(sinks)?;
        if self.reports.is_empty() {
            self.finish_in_flight(sinks);
        }
        self.reports.pop_front().transpose()
    }

    /// Like [`finish_checkpoint`](Self::finish_checkpoint) but never waits:
    /// `Ok(None)` also while the checkpoint is still being written (see
    /// [`checkpoint_in_flight`](Self::checkpoint_in_flight)).
    ///
    /// # Errors
    /// As [`finish_checkpoint`](Self::finish_checkpoint).
    pub fn poll_checkpoint(
        &mut self,
        sinks: &mut [&mut dyn TransactionalSink],
    ) -> Result<Option<IncrementalCheckpointMetadata>> {
        self.check_sinks(sinks)?;
        if self.reports.is_empty() && self.in_flight.is_some() {
            if let Some(outcome) = self.checkpointer.try_complete() {
                let report = self.complete(outcome, sinks);
                self.reports.push_back(report);
            }
        }
        self.reports.pop_front().transpose()
    }

    /// The background checkpoint begun and not finished, if any.
    pub fn checkpoint_in_flight(&self) -> Option<CheckpointTicket> {
        self.in_flight
    }

    /// Waits for the checkpoint in flight, if any, commits its sinks once it
    /// is durable, and queues its outcome for `finish_checkpoint`.
    pub(super) fn finish_in_flight(&mut self, sinks: &mut [&mut dyn TransactionalSink]) {
        if self.in_flight.is_none() {
            return;
        }
        if let Some(outcome) = self.checkpointer.wait() {
            let report = self.complete(outcome, sinks);
            self.reports.push_back(report);
        }
    }

    /// Acts on the outcome of the checkpoint in flight: commits the pending
    /// transactions once it is durable; keeps them pending if it failed.
    fn complete(
        &mut self,
        outcome: CheckpointOutcome,
        sinks: &mut [&mut dyn TransactionalSink],
    ) -> Result<IncrementalCheckpointMetadata> {
        self.in_flight = None;
        let epoch = self.epoch;
        self.set_epoch(epoch);
        let checkpoint = outcome.result.inspect_err(|e| {
            tracing::warn!(ticket = outcome.ticket.get(), pending = self.pending.len(), error = %e, "background checkpoint failed; its sink transactions stay pending");
        })?;
        self.commit_pending(&checkpoint, sinks)?;
        Ok(checkpoint)
    }
}
