//! The log below the chosen checkpoint (docs/RECOVERY.md, "The log below a
//! checkpoint"): the checkpoint is the truth up to its position, so a log
//! that is absent, ends below the position, or holds damage below it does not
//! block recovery. Records below the position are released (the log's floor
//! raised); a log that ends below it continues at it.
//!
//! Invariants:
//! - Only a recovery that may write (repair on, not a dry run) writes; the
//!   others report the release they would make.
//! - A log whose oldest segment starts after the position (or whose floor is
//!   above it) is `CheckpointNotCovered`: positions the checkpoint needs are
//!   gone.

use super::choose::Base;
use super::config::RecoveryConfig;
use super::log_access::LogAccess;
use super::report::{RecoveryReport, WalShort};
use crate::error::{Error, Result};
use crate::wal::{plan_release, probe_release, release, Coverage, WalRecoveryMode};

/// Whether replay reads the log after [`release_below_checkpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterRelease {
    /// The log holds the position: replay from it.
    Replay,
    /// The log holds nothing at or after the position (absent, or ended
    /// below it): the checkpoint alone is the result.
    CheckpointOnly,
}

/// Looks at the log relative to `base`'s position, reports what is absent,
/// short or damaged below it (in the segment holding the position, and in the
/// older segments as far as opening the log in the configured mode would
/// read them), and (when recovery may write) releases the log below it.
///
/// # Errors
/// `CheckpointNotCovered` (through `not_covered`) when the log no longer holds
/// the position; [`Error::WalBehindCheckpoint`] for an absent or short log
/// with `require_wal`; corruption errors when damage hides whether the log
/// reaches the position; `Locked` and I/O errors.
pub(crate) fn release_below_checkpoint(
    cfg: &RecoveryConfig,
    base: &Base,
    report: &mut RecoveryReport,
    not_covered: impl Fn(Error) -> Error,
) -> Result<AfterRelease> {
    let position = base.wal_position;
    let dir = &cfg.wal_path;
    let storage = cfg.storage.as_ref();
    let full_scan = cfg.wal_recovery_mode == WalRecoveryMode::PointInTime;
    let probe = probe_release(storage, dir, position, cfg.max_record_size, full_scan)
        .map_err(not_covered)?;
    let checkpoint = base.checkpoint.as_ref().map(|c| c.id);
    let after = match (&probe.coverage, checkpoint) {
        (Coverage::Absent, None) => return Ok(AfterRelease::CheckpointOnly),
        (Coverage::Absent, Some(id)) => {
            report.wal_absent = true;
            tracing::warn!(wal = %dir.display(), checkpoint = id, position, "the write-ahead log is absent; recovering the checkpoint alone, the log continues at its position");
            require(cfg, id, position, None)?;
            if position == 0 {
                // A new log starts at 0 anyway: nothing to write.
                return Ok(AfterRelease::CheckpointOnly);
            }
            AfterRelease::CheckpointOnly
        }
        (Coverage::Short { end, torn }, _) => {
            let id = checkpoint.unwrap_or_default();
            report.wal_short = Some(WalShort {
                end: *end,
                checkpoint_position: position,
                torn: torn.clone(),
            });
            tracing::warn!(wal = %dir.display(), checkpoint = id, position, end, torn = torn.is_some(), "the write-ahead log ends below the checkpoint's position; recovering the checkpoint alone, the log continues at its position");
            require(cfg, id, position, Some(*end))?;
            AfterRelease::CheckpointOnly
        }
        (Coverage::Holds, _) => AfterRelease::Replay,
    };
    if let Some(d) = &probe.damage_below {
        tracing::warn!(segment = %d.path.display(), offset = d.offset, damaged_position = d.position, position, problem = %d.problem, "damage in write-ahead log records the checkpoint already covers; releasing them");
        report.released_damage = Some(d.clone());
    }
    let Some(mut planned) = plan_release(&probe, dir, position) else {
        return Ok(after);
    };
    if LogAccess::of(cfg).writes() {
        release(storage, dir, &mut planned)?;
    }
    report.wal_release = Some(planned);
    Ok(after)
}

/// With `require_wal`, an absent or short log is an error.
fn require(
    cfg: &RecoveryConfig,
    checkpoint_id: u64,
    position: u64,
    end: Option<u64>,
) -> Result<()> {
    if !cfg.require_wal {
        return Ok(());
    }
    Err(Error::WalBehindCheckpoint {
        checkpoint_id,
        position,
        path: cfg.wal_path.clone(),
        end,
    })
}
