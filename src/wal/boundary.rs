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
