//! Commit boundaries: where a checkpoint of the log may be taken.
//!
//! A checkpoint at log position `p` claims that the state reflects every
//! transaction committed before `p` and nothing else, so `p` must end a
//! transaction: the last Put, Delete or Watermarks entry before it is followed
//! by a Commit before it (markers — Checkpoint, sync — change nothing). The
//! writer learns this from the records it appends and from the records `open`
//! reads, and remembers the ends of recent commits, so that
//! [`WriteAheadLog::sync_to_commit_boundary`](super::WriteAheadLog::sync_to_commit_boundary)
//! can check a position without reading the log.
//!
//! Invariants:
//! - `Tail::open` is `Some(true)` exactly when a Put, Delete or Watermarks was
//!   read or appended after the last Commit, `Some(false)` when a Commit was
//!   and nothing transactional after it, `None` when neither was seen (a
//!   segment may continue a transaction begun in an earlier one).
//! - `CommitEnds` holds, ascending, positions known to be commit boundaries
//!   (at most [`KEPT`] of them, the newest); none lies beyond the log's end.

use super::entry::{KIND_COMMIT, KIND_DELETE, KIND_PUT, KIND_WATERMARKS};
use std::collections::VecDeque;

/// How many recent commit boundaries the writer remembers.
pub(super) const KEPT: usize = 4096;

/// What the records read or appended so far say about the log's end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Tail {
    /// The kind of the last record.
    pub last_kind: Option<u8>,
    /// Whether a transaction is open at the end (see the module invariants).
    pub open: Option<bool>,
}

impl Tail {
    /// Takes in one more record of kind `kind`.
    pub(super) fn push(&mut self, kind: u8) {
        self.last_kind = Some(kind);
        match kind {
            KIND_PUT | KIND_DELETE | KIND_WATERMARKS => self.open = Some(true),
            KIND_COMMIT => self.open = Some(false),
            _ => {}
        }
    }
}

/// Recent positions known to end a transaction.
#[derive(Debug, Default)]
pub(super) struct CommitEnds(VecDeque<u64>);

impl CommitEnds {
    /// Records `end` (the log's end after a record) when `tail` says no
    /// transaction is open there.
    pub(super) fn after(&mut self, tail: Tail, end: u64) {
        if tail.open == Some(false) && self.0.back() != Some(&end) {
            if self.0.len() == KEPT {
                self.0.pop_front();
            }
            self.0.push_back(end);
        }
    }

    /// Forgets every boundary after `end` (the log was cut there), then
    /// records `end` as [`after`](Self::after) does.
    pub(super) fn cut(&mut self, tail: Tail, end: u64) {
        while self.0.back().is_some_and(|&p| p > end) {
            self.0.pop_back();
        }
        self.after(tail, end);
    }

    /// Whether `position` is known to end a transaction.
    pub(super) fn contains(&self, position: u64) -> bool {
        self.0.binary_search(&position).is_ok()
    }

    /// The newest known boundary.
    pub(super) fn last(&self) -> Option<u64> {
        self.0.back().copied()
    }
}

/// The log position after a record, and whether a transaction is open there
/// (`None`: not known from the records read so far).
pub(super) type RecordEnd = (u64, Option<bool>);

/// The record ends one scan of a segment saw, bounded: the scan's start, then
/// the end of every record (the newest [`KEPT`] to `2 × KEPT` of them).
#[derive(Debug, Default)]
pub(super) struct SeenEnds(Vec<RecordEnd>);

impl SeenEnds {
    /// Starts a scan at `from` (a record boundary).
    pub(super) fn starting_at(from: u64) -> Self {
        SeenEnds(vec![(from, None)])
    }

    /// A record ended at `position`, with `tail` after it.
    pub(super) fn record(&mut self, position: u64, tail: Tail) {
        self.0.push((position, tail.open));
        if self.0.len() > 2 * KEPT {
            self.0.drain(..KEPT);
        }
    }
}

/// What an opened log knows of its commit boundaries, from what `open`'s scan
/// of the newest segment saw (`seen`, `tail`; the log ends at `end`): when that segment holds no
/// transactional record (only markers, or nothing), older segments are read,
/// newest first, until one says whether a transaction is open at its end; a
/// log with no transactional record since its start (position 0 or its floor,
/// both boundaries) is closed. Reads only.
///
/// # Errors
/// I/O errors reading older segments (damage simply ends a segment's scan).
pub(super) fn resolve(
    storage: &dyn crate::storage::Storage,
    files: &super::floor::LogFiles,
    seen: SeenEnds,
    mut tail: Tail,
    end: u64,
    max_record_size: u32,
) -> crate::Result<(Tail, CommitEnds)> {
    use super::scan::{SegmentScanner, Step};
    let segments = &files.segments;
    // Whether a transaction is open where the newest segment's scan starts.
    let mut before = None;
    if tail.open.is_none() {
        let older_tail = |index: usize| -> crate::Result<Option<bool>> {
            let next_start = segments.get(index + 1).map(|s| s.start);
            let Ok(mut scanner) = SegmentScanner::open_from(
                storage,
                &segments[index],
                files.read_start(index),
                next_start,
                max_record_size,
            )?
            else {
                return Ok(None);
            };
            let mut t = Tail::default();
            while let Step::Record { kind, .. } = scanner.next_record()? {
                t.push(kind);
            }
            Ok(t.open)
        };
        let mut index = segments.len().saturating_sub(1);
        while index > 0 && before.is_none() {
            index -= 1;
            before = older_tail(index)?;
        }
        let start = files.read_start(0);
        if before.is_none() && (start == 0 || start == files.floor) {
            before = Some(false);
        }
        tail.open = before;
    }
    let mut ends = CommitEnds::default();
    for (position, open) in seen.0 {
        let open = open.or(before);
        ends.after(
            Tail {
                last_kind: None,
                open,
            },
            position,
        );
    }
    ends.after(tail, end);
    Ok((tail, ends))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::entry::{KIND_CHECKPOINT, KIND_SYNC_MARKER};

    #[test]
    fn markers_keep_a_closed_transaction_closed_and_an_open_one_open() {
        let mut tail = Tail::default();
        for (kind, open) in [
            (KIND_PUT, Some(true)),
            (KIND_SYNC_MARKER, Some(true)),
            (KIND_COMMIT, Some(false)),
            (KIND_CHECKPOINT, Some(false)),
            (KIND_WATERMARKS, Some(true)),
        ] {
            tail.push(kind);
            assert_eq!(tail.open, open, "after kind {kind}");
        }
    }

    #[test]
    fn ends_are_kept_in_order_bounded_and_cut() {
        let closed = Tail {
            last_kind: Some(KIND_COMMIT),
            open: Some(false),
        };
        let mut ends = CommitEnds::default();
        for p in 0..(KEPT as u64 + 10) {
            ends.after(closed, p * 8);
        }
        assert!(!ends.contains(0), "the oldest are forgotten");
        assert!(ends.contains((KEPT as u64 + 9) * 8));
        ends.cut(Tail::default(), 100 * 8 + 4);
        assert_eq!(ends.last(), Some(100 * 8));
        assert!(!ends.contains(101 * 8));
    }
}
