//! Recovery: the state, source offsets and watermark a job resumes from after a
//! crash — the newest restorable checkpoint plus the committed log entries after
//! it (docs/RECOVERY.md).
//!
//! Invariants:
//! - Only committed changes are returned; an uncommitted tail is reported, never
//!   returned, and (with repair on) durably cut so no later Commit adopts it.
//! - Offsets and watermark always match the state returned: the chosen
//!   checkpoint's, overlaid by exactly the Commits whose changes were returned.
//! - A checkpoint is used only if it verifies completely and its state loads;
//!   otherwise it is reported and an older one is tried.
//! - Replay starts exactly at the chosen checkpoint's log position, or fails
//!   with `CheckpointNotCovered` (the log lost positions the checkpoint
//!   needs); it never silently starts elsewhere. A log that is absent or ends
//!   below the position returns the checkpoint alone and continues at the
//!   position; damage below it is reported and released (`release`).
//! - Bounded replay reads at most `max_wal_entries` entries per call.
//! - Damage that is not a torn tail is an error naming segment file and offset,
//!   unless `PointInTime` mode was chosen.
//! - With repair off, recovery never writes.

mod choose;
mod config;
mod log_access;
mod manager;
mod recovered;
mod release;
mod replay;
mod replay_sink;
mod report;
mod run;
mod validate;
pub(crate) mod watermarks;

pub use config::{RecoveryConfig, TransactionMode, DEFAULT_TRANSACTION_BUFFER_BYTES};
pub use manager::RecoveryManager;
pub use recovered::RecoveredState;
pub use replay_sink::{CommitInfo, ReplaySink, SinkError};
pub use report::{PhaseTimings, RecoveryReport, TornTail, WalShort};
pub use validate::{validate_checkpoint, validate_checkpoint_with};
