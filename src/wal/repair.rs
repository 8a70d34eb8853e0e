//! What to do about damage found when a log is opened: a pure decision over what
//! the scan found and the configured [`WalRecoveryMode`], plus the
//! [`RepairReport`] describing what a repair cut.

use super::options::WalRecoveryMode;
use super::scan::{Damage, DamageClass, Problem};
use std::path::PathBuf;

/// A cut the log must make before anything is appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCut {
    /// The damage that forces the cut.
    pub damage: Damage,
    /// Start position of the damaged segment (it stays, cut at `damage.offset`).
    pub segment_start: u64,
    /// Its identity, from its header; `None` when the header itself is damaged
    /// (the segment is then rewritten empty).
    pub segment_id: Option<u64>,
    /// Segments after the damaged one, all removed by the cut (PointInTime only).
    pub later_segments: Vec<PathBuf>,
}

/// Decides whether `damage` (in the segment starting at `segment_start` with
/// identity `segment_id`, followed by `later_segments`) may be cut under `mode`, or
/// is an error.
///
/// # Errors
/// The typed corruption error for damage the mode does not tolerate.
pub fn decide(
    mode: WalRecoveryMode,
    damage: Damage,
    segment_start: u64,
    segment_id: Option<u64>,
    later_segments: Vec<PathBuf>,
) -> crate::Result<PendingCut> {
    let allowed = match mode {
        WalRecoveryMode::TolerateTornTail => {
            damage.class == DamageClass::Torn && later_segments.is_empty()
        }
        WalRecoveryMode::AbsoluteConsistency => false,
        WalRecoveryMode::PointInTime => true,
    };
    if !allowed {
        return Err(damage.to_error());
    }
    Ok(PendingCut {
        damage,
        segment_start,
        segment_id,
        later_segments,
    })
}

/// What [`WriteAheadLog::repair`](super::WriteAheadLog::repair) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepairReport {
    /// The recovery mode the log was opened with.
    pub mode: WalRecoveryMode,
    /// The segment that was cut, if any.
    pub segment: Option<PathBuf>,
    /// File offset in that segment where it was cut (0: its header was rewritten).
    pub offset: u64,
    /// The log position where the log now ends.
    pub position: u64,
    /// Bytes removed in all (the cut tail plus removed segments).
    pub bytes_cut: u64,
    /// Whole segments removed (PointInTime only).
    pub segments_removed: Vec<PathBuf>,
    /// Whether the cut was a torn tail (as opposed to corruption cut by PointInTime).
    pub torn_tail: bool,
    /// What was wrong, in words (empty when nothing was cut): the message of
    /// `problem`.
    pub reason: String,
    /// What was wrong, typed (`None` when nothing was cut).
    pub problem: Option<Problem>,
}

impl RepairReport {
    /// A report of a repair that found nothing to cut.
    pub(crate) fn nothing(mode: WalRecoveryMode, position: u64) -> Self {
        RepairReport {
            mode,
            segment: None,
            offset: 0,
            position,
            bytes_cut: 0,
            segments_removed: Vec::new(),
            torn_tail: false,
            reason: String::new(),
            problem: None,
        }
    }

    /// The report of making `cut`, which removed `bytes_cut` bytes.
    pub(crate) fn of_cut(mode: WalRecoveryMode, cut: &PendingCut, bytes_cut: u64) -> Self {
        let damage = &cut.damage;
        RepairReport {
            mode,
            segment: Some(damage.path.clone()),
            offset: damage.offset,
            position: damage.position,
            bytes_cut,
            segments_removed: cut.later_segments.clone(),
            torn_tail: damage.class == DamageClass::Torn,
            reason: damage.problem.to_string(),
            problem: Some(damage.problem.clone()),
        }
    }

    /// True when the repair cut something.
    pub fn cut_anything(&self) -> bool {
        self.segment.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn damage(class: DamageClass) -> Damage {
        Damage {
            class,
            path: PathBuf::from("x.wal"),
            offset: 56,
            position: 16,
            problem: Problem::Incomplete {
                needed: 24,
                available: 3,
            },
        }
    }

    #[test]
    fn each_mode_decides_as_documented() {
        use DamageClass::*;
        use WalRecoveryMode::*;
        let later = || vec![PathBuf::from("y.wal")];
        assert!(decide(TolerateTornTail, damage(Torn), 0, Some(1), vec![]).is_ok());
        assert!(decide(TolerateTornTail, damage(Corrupt), 0, Some(1), vec![]).is_err());
        assert!(decide(TolerateTornTail, damage(Torn), 0, Some(1), later()).is_err());
        assert!(decide(AbsoluteConsistency, damage(Torn), 0, Some(1), vec![]).is_err());
        assert!(decide(PointInTime, damage(Corrupt), 0, Some(1), later()).is_ok());
        let err = decide(TolerateTornTail, damage(Corrupt), 0, Some(1), vec![]).unwrap_err();
        assert!(err.is_corruption());
        assert!(err.to_string().contains("x.wal"), "{err}");
        assert!(err.to_string().contains("offset 56"), "{err}");
    }
}
