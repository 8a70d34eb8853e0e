//! Where an opened log ends: the scan `WriteAheadLog::open` and
//! `plan_repair` make (reading only), and the cut the recovery mode allows for
//! the damage it finds.

use super::boundary::{SeenEnds, Tail};
use super::floor::LogFiles;
use super::options::{WalOptions, WalRecoveryMode};
use super::repair::{decide, PendingCut};
use super::scan::{Damage, SegmentScanner, Step};
use crate::error::Result;
use crate::storage::Storage;

/// Where a log's valid records end, as found by reading it (nothing is
/// written).
pub(super) enum LogEnd {
    /// The newest segment ends cleanly.
    Clean {
        /// File offset of the end of its records.
        file_end: u64,
        /// The position of the next record.
        next_position: u64,
        /// The newest segment's identity.
        segment_id: u64,
        /// Where its records start.
        records_offset: u64,
        /// What the records read say about the end.
        tail: Tail,
        /// The record ends the scan of the newest segment saw.
        seen: SeenEnds,
    },
    /// Segment `index` is damaged.
    Damaged {
        /// Index in the segment list.
        index: usize,
        /// What is wrong, where.
        damage: Damage,
        /// The segment's identity; `None` when its header is damaged.
        segment_id: Option<u64>,
        /// What the valid records before the damage say about the end.
        tail: Tail,
        /// The record ends seen in the damaged segment, if it is the newest.
        seen: SeenEnds,
    },
}

/// Finds where the log ends: scans the newest segment (every segment in
/// PointInTime mode) and checks every segment header. Only reads.
pub(super) fn find_end(
    storage: &dyn Storage,
    files: &LogFiles,
    options: &WalOptions,
) -> Result<LogEnd> {
    let segments = &files.segments;
    let Some(newest) = segments.len().checked_sub(1) else {
        return Err(no_segment());
    };
    let full_scan = options.recovery_mode == WalRecoveryMode::PointInTime;
    let mut tail = Tail::default();
    for (index, segment) in segments.iter().enumerate() {
        let next_start = segments.get(index + 1).map(|s| s.start);
        let scanner = SegmentScanner::open_from(
            storage,
            segment,
            files.read_start(index),
            next_start,
            options.max_record_size,
        )?;
        let mut scanner = match scanner {
            Err(damage) => {
                return Ok(LogEnd::Damaged {
                    index,
                    damage,
                    segment_id: None,
                    tail,
                    seen: SeenEnds::default(),
                })
            }
            Ok(_) if index != newest && !full_scan => continue,
            Ok(scanner) => scanner,
        };
        // The commit boundaries of the newest segment are learnt on the way.
        let mut seen = if index == newest {
            SeenEnds::starting_at(scanner.position())
        } else {
            SeenEnds::default()
        };
        loop {
            match scanner.next_record()? {
                Step::Record { kind, .. } => {
                    tail.push(kind);
                    if index == newest {
                        seen.record(scanner.position(), tail);
                    }
                }
                Step::End if index == newest => {
                    return Ok(LogEnd::Clean {
                        file_end: scanner.offset(),
                        next_position: scanner.position(),
                        segment_id: scanner.header().segment_id,
                        records_offset: scanner.header().records_offset(),
                        tail,
                        seen,
                    })
                }
                Step::End => break,
                Step::Damaged(damage) => {
                    return Ok(LogEnd::Damaged {
                        index,
                        damage,
                        segment_id: Some(scanner.header().segment_id),
                        tail,
                        seen,
                    })
                }
            }
        }
    }
    // Unreachable: the newest segment either ends or is damaged.
    Err(no_segment())
}

/// The cut the recovery mode makes for damage found by [`find_end`].
///
/// # Errors
/// The typed corruption error for damage the mode does not tolerate.
pub(super) fn cut_for(
    options: &WalOptions,
    files: &LogFiles,
    index: usize,
    damage: Damage,
    segment_id: Option<u64>,
) -> Result<PendingCut> {
    let segments = &files.segments;
    if segment_id.is_none() && files.read_start(index) > segments[index].start {
        // A damaged header in the segment holding the floor: rewriting it
        // empty would reuse the positions below the floor.
        return Err(damage.to_error());
    }
    let later = segments[index + 1..]
        .iter()
        .map(|s| s.path.clone())
        .collect();
    decide(
        options.recovery_mode,
        damage,
        segments[index].start,
        segment_id,
        later,
    )
}

fn no_segment() -> crate::Error {
    crate::Error::invalid_argument("open", "the log has no segment to end in")
}
