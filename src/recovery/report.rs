//! [`RecoveryReport`]: what recovery found, skipped, cut and how long each phase
//! took.

use crate::checkpoint::RejectedCheckpoint;
use crate::wal::{Damage, RepairReport, WalRelease};
use std::time::Duration;

/// Time spent in each phase of one recovery call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhaseTimings {
    /// Opening the log and cutting damage it tolerates.
    pub repair: Duration,
    /// Choosing, verifying and loading the checkpoint.
    pub checkpoint: Duration,
    /// Reading the log and handing over committed changes.
    pub replay: Duration,
    /// Cutting the uncommitted tail and closing the log.
    pub tail_cut: Duration,
    /// The whole call.
    pub total: Duration,
}

/// A torn tail that was read up to but not cut (repair off).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TornTail {
    /// Log position where the valid prefix ends.
    pub position: u64,
    /// What is torn, in which segment file, at which offset (the damage's
    /// message).
    pub reason: String,
    /// The torn record, typed: segment file, offset and [`Problem`](crate::wal::Problem).
    pub damage: Damage,
}

impl TornTail {
    /// The torn tail `damage` is.
    pub(crate) fn new(damage: Damage) -> Self {
        TornTail {
            position: damage.position,
            reason: damage.to_string(),
            damage,
        }
    }
}

/// A log that ends below the chosen checkpoint's position (its unsynced tail
/// lost in a crash): recovery returned the checkpoint, and the log continues
/// at its position.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalShort {
    /// Where the log's valid records end.
    pub end: u64,
    /// The checkpoint's position (above `end`).
    pub checkpoint_position: u64,
    /// The torn tail the log ends in, if it does not end cleanly.
    pub torn: Option<Damage>,
}

/// What one recovery call did (docs/RECOVERY.md, "The report").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Checkpoints newer than the one used that failed verification or
    /// loading, newest first, with the reason.
    pub rejected_checkpoints: Vec<RejectedCheckpoint>,
    /// Checkpoints passed over because they were taken after the target position.
    pub skipped_after_target: Vec<u64>,
    /// What the log repair cut, when it cut something.
    pub wal_repair: Option<RepairReport>,
    /// A torn tail replay stopped at and left in place (repair off).
    pub torn_tail: Option<TornTail>,
    /// Damage replay stopped at under `PointInTime` without repair (its
    /// typed error: [`Damage::to_error`]).
    pub stopped_at_damage: Option<Damage>,
    /// Point-in-time replay found an entry at or after the target (entries
    /// follow the target in the log; they were not replayed).
    pub stopped_at_target: bool,
    /// Entries after the last Commit read (never returned).
    pub uncommitted_entries: u64,
    /// Where those entries start (the log position the uncommitted tail was cut
    /// at, with repair on).
    pub uncommitted_position: Option<u64>,
    /// Bytes cut with the uncommitted tail (0 when not cut).
    pub uncommitted_bytes_cut: u64,
    /// Commits replayed.
    pub committed_transactions: u64,
    /// Puts and Deletes handed over.
    pub changes_applied: u64,
    /// Transactions larger than the buffer, read from the log a second time.
    pub transactions_reread: u64,
    /// A checkpoint was chosen and the log has no segment at all (its
    /// directory does not exist, or holds none): the checkpoint was returned.
    pub wal_absent: bool,
    /// A checkpoint was chosen and the log ends below its position: the
    /// checkpoint was returned.
    pub wal_short: Option<WalShort>,
    /// Damage found in the log below the checkpoint's position, in records
    /// the checkpoint already covers: released, not fatal (the first damage
    /// found: in the older segments as far as opening the log in the mode
    /// checks them, then in the segment holding the position).
    pub released_damage: Option<Damage>,
    /// The release of the log below the checkpoint's position (the floor
    /// raised, segments removed, a fresh segment at the position), made or,
    /// when `applied` is false (dry run, repair off), the one recovery would
    /// make.
    pub wal_release: Option<WalRelease>,
    /// Entries read a second time to return a transaction whole (one larger
    /// than the buffer, or one a previous bounded call began): not counted in
    /// `wal_entries_replayed`.
    pub entries_reread: u64,
    /// Entries of the transaction still open where a bounded call stopped
    /// (read, not returned; the call that reads its Commit returns it whole).
    pub open_transaction_entries: u64,
    /// Watermarks (combined or per partition) in replayed Commits or
    /// `Watermarks` entries that were lower than the one already recovered:
    /// ignored, since a watermark only grows.
    pub watermark_regressions: u64,
    /// Time per phase.
    pub timings: PhaseTimings,
}

impl RecoveryReport {
    /// Every byte recovery cut from the log: the repaired damage and the
    /// uncommitted tail.
    pub fn bytes_cut(&self) -> u64 {
        self.wal_repair.as_ref().map_or(0, |r| r.bytes_cut) + self.uncommitted_bytes_cut
    }
}
