//! [`RecoveredState`]: what recovery returns — the checkpoint's state, the
//! committed changes after it, and the offsets and watermark that match them.

use super::report::RecoveryReport;
use crate::checkpoint::IncrementalCheckpointMetadata;
use crate::error::{Error, Result};
use crate::state::{StateDelta, StateSnapshot};
use std::collections::HashMap;

/// The result of recovery (docs/RECOVERY.md).
///
/// The state is `state_snapshot` (the checkpoint's, as stored) followed by the
/// committed changes replayed after it, which are in `state_changes` when they
/// were collected, or were handed to a [`ReplaySink`](super::ReplaySink).
/// `source_offsets` and `watermark` match exactly that state.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RecoveredState {
    /// The checkpoint's epoch (0 without a checkpoint).
    pub epoch: u64,
    /// The checkpoint's key/value state, deltas merged; `None` without a
    /// checkpoint, when its state is a blob, when it has no default part, or when
    /// loading was turned off.
    pub state_snapshot: Option<StateSnapshot>,
    /// The checkpoint's state when it is a blob (bytes not in the state-file
    /// format given to `create_checkpoint_with_state`).
    pub state_blob: Option<Vec<u8>>,
    /// The checkpoint used, with every part it holds (load others through a
    /// `CheckpointStore`).
    pub checkpoint: Option<IncrementalCheckpointMetadata>,
    /// Just after the last committed entry replayed: the state is exactly the log
    /// up to here. Resume a bounded replay from here.
    pub wal_position: u64,
    /// Every entry read during replay (Puts, Deletes, Commits, markers and
    /// uncommitted entries), each once: at most `max_wal_entries` (entries read
    /// again to return a transaction whole are in `report.entries_reread`).
    pub wal_entries_replayed: u64,
    /// Where a bounded replay that stopped at its limit continues reading
    /// ([`resume`](super::RecoveryManager::resume) does this): `wal_position`,
    /// or after it when the limit fell inside a transaction (its entries up to
    /// here were read, not returned). Equal to `wal_position` otherwise.
    pub resume_position: u64,
    /// The checkpoint's source offsets, overlaid by every Commit replayed.
    pub source_offsets: HashMap<String, u64>,
    /// The checkpoint's watermark, replaced by every Commit replayed that has one.
    pub watermark: Option<i64>,
    /// The checkpoint's per-partition watermarks, overlaid by every
    /// `Watermarks` entry of the transactions replayed.
    pub source_watermarks: HashMap<String, i64>,
    /// `source_watermarks` as replayed, before partitions without a
    /// watermark of their own got the combined one: what a resumed bounded
    /// piece continues from, so that the pieces joined equal one replay.
    pub(crate) replayed_source_watermarks: HashMap<String, i64>,
    /// The id of the checkpoint used.
    pub checkpoint_id: Option<u64>,
    /// The committed changes replayed, in log order (`None` value: a Delete);
    /// filled only with `collect_state_changes`.
    pub state_changes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Bounded replay stopped at its entry limit with more of the log to read:
    /// call [`resume`](super::RecoveryManager::resume). (Point-in-time replay
    /// that stops at its target does not set it; see
    /// `report.stopped_at_target`.)
    pub has_more: bool,
    /// What recovery found, skipped and cut, and how long it took.
    pub report: RecoveryReport,
}

impl RecoveredState {
    /// Nothing recovered: no checkpoint, no committed change, position 0.
    pub fn empty() -> Self {
        Self::default()
    }

    /// True when anything was recovered: a checkpoint, or at least one
    /// committed transaction (or, without transactions, change) from the log.
    pub fn has_state(&self) -> bool {
        self.checkpoint_id.is_some()
            || self.report.committed_transactions > 0
            || self.report.changes_applied > 0
    }

    /// The key/value state: `state_snapshot` (or an empty one) with
    /// `state_changes` applied.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the result cannot be complete: changes
    /// were replayed but not collected (they went to a sink, or
    /// `collect_state_changes` was off), the checkpoint's state is a blob, or it
    /// was not loaded.
    pub fn current_state(&self) -> Result<StateSnapshot> {
        if self.report.changes_applied != self.state_changes.len() as u64 {
            return Err(Error::invalid_argument("RecoveredState::current_state", format!(
                "{} committed changes were replayed but {} collected: recover with collect_state_changes",
                self.report.changes_applied,
                self.state_changes.len()
            )));
        }
        if self.state_blob.is_some() {
            return Err(Error::invalid_argument(
                "RecoveredState::current_state",
                "the checkpoint's state is a blob, not key/value pairs",
            ));
        }
        if self.checkpoint_id.is_some() && self.state_snapshot.is_none() {
            return Err(Error::invalid_argument(
                "RecoveredState::current_state",
                "the checkpoint's key/value state was not loaded",
            ));
        }
        let base = self.state_snapshot.clone().unwrap_or_default();
        if self.state_changes.is_empty() {
            return Ok(base);
        }
        Ok(base.apply(&StateDelta::from_changes(self.state_changes.clone())))
    }
}
