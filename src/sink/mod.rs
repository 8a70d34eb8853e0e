//! Exactly-once sinks: the two-phase commit between checkpoints and external
//! output (docs/EXACTLY_ONCE.md).
//!
//! A [`TransactionalSink`] stages each epoch's output and, at the epoch's end,
//! pre-commits it into a durable, invisible transaction with a handle. The
//! [`SinkCoordinator`] stores the handles in the checkpoint that closes the
//! epoch and tells the sinks to commit only once that checkpoint is durable.
//! On restart it commits the restored checkpoint's handles again (commits are
//! idempotent) and aborts what later, unfinished epochs staged. [`FileSink`]
//! is a sink that publishes each epoch's file by atomic rename.
//!
//! Invariants:
//! - Output is published only for epochs a durable checkpoint covers, so the
//!   published output always matches some restorable state.
//! - After recovery the published output is exactly that of the epochs up to
//!   the restored checkpoint's: none lost (its handles are committed), none
//!   twice (later staged output is aborted, and a sink refuses to restore a
//!   checkpoint older than output it already published).

mod async_checkpoint;
mod coordinator;
mod file_sink;
mod file_sink_dir;
mod republish;
mod stage;
mod transactional;

pub use crate::recovery::SinkError;
pub use coordinator::SinkCoordinator;
pub use file_sink::FileSink;
pub use file_sink_dir::{committed_file_name, FileSinkContents, SinkEpochFile};
pub use transactional::{SinkOwner, TransactionalSink};
