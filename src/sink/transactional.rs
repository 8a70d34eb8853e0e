//! [`TransactionalSink`]: what a sink must offer to take part in the two-phase
//! commit that [`SinkCoordinator`](super::SinkCoordinator) drives.

use crate::recovery::SinkError;
use std::sync::{Arc, Weak};

/// An output that publishes exactly once, epoch by epoch (docs/EXACTLY_ONCE.md).
///
/// Output written during epoch `e` is staged where readers cannot see it.
/// `pre_commit(e)` makes the staged output durable and returns a handle; the
/// handle is stored in the checkpoint that closes epoch `e`; `commit(e, handle)`
/// publishes the output only after that checkpoint is durable. After a crash,
/// the restored checkpoint's handles are committed again and everything staged
/// for later epochs is aborted, so the output holds exactly the epochs the
/// restored state reflects.
///
/// Contract (each method may be called by a new process, after a crash of the
/// one that began the work):
/// - `pre_commit` must make the staged output durable before it returns: the
///   handle alone must be enough to publish it later, in another process.
/// - `commit` must be **idempotent**: committing a handle that was already
///   committed (by this process or an earlier one, perhaps just before a
///   crash) succeeds and publishes nothing a second time. It must fail, never
///   succeed silently, when the output the handle names is gone.
/// - `abort_after(e)` discards whatever is staged for epochs after `e`, and
///   fails when output of an epoch after `e` was already published (restoring
///   `e` would then duplicate it).
/// - Output written after `begin(e)` belongs to epoch `e`.
pub trait TransactionalSink {
    /// The sink's name, unique among a pipeline's sinks; its transactions are
    /// recorded in checkpoints under it.
    fn name(&self) -> &str;

    /// Output written from now on belongs to `epoch`.
    ///
    /// # Errors
    /// Any error of the sink.
    fn begin(&mut self, epoch: u64) -> Result<(), SinkError>;

    /// Ends `epoch`: makes its staged output durable (still invisible to
    /// readers) and returns the handle that publishes it.
    ///
    /// # Errors
    /// Any error of the sink; the coordinator then refuses to continue until
    /// the pipeline recovers.
    fn pre_commit(&mut self, epoch: u64) -> Result<Vec<u8>, SinkError>;

    /// Publishes the output `handle` names. Idempotent (see the trait docs).
    ///
    /// # Errors
    /// Any error of the sink; also when the output is neither staged nor
    /// published.
    fn commit(&mut self, epoch: u64, handle: &[u8]) -> Result<(), SinkError>;

    /// Discards the staged output of every epoch after `epoch`.
    ///
    /// # Errors
    /// Any error of the sink; also when output of a later epoch was already
    /// published.
    fn abort_after(&mut self, epoch: u64) -> Result<(), SinkError>;

    /// Called first by [`SinkCoordinator::recover`](super::SinkCoordinator::recover):
    /// `owner` identifies the coordinator that will drive the sink. A sink
    /// object that can be handed to more than one coordinator should keep it
    /// and refuse (with [`Error::SinkInUse`](crate::Error::SinkInUse)) while
    /// another owner [is alive](SinkOwner::is_alive). The default accepts.
    ///
    /// # Errors
    /// [`Error::SinkInUse`](crate::Error::SinkInUse), or any error of the sink.
    fn attach(&mut self, owner: &SinkOwner) -> Result<(), SinkError> {
        let _ = owner;
        Ok(())
    }
}

/// Which [`SinkCoordinator`](super::SinkCoordinator) drives a sink (see
/// [`TransactionalSink::attach`]). It stays alive as long as the coordinator.
#[derive(Debug, Clone)]
pub struct SinkOwner(Weak<()>);

impl SinkOwner {
    /// The owner a coordinator hands out while it holds `token`.
    pub(super) fn of(token: &Arc<()>) -> Self {
        SinkOwner(Arc::downgrade(token))
    }

    /// Whether the coordinator is still alive.
    pub fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }

    /// Whether `self` and `other` are the same coordinator.
    pub fn is(&self, other: &SinkOwner) -> bool {
        Weak::ptr_eq(&self.0, &other.0)
    }
}
