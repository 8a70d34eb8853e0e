//! [`SourcePositions`]: the offset and the watermark of every source partition
//! an operator reads, and the combined watermark they allow.
//!
//! Invariants:
//! - A partition's watermark never moves backwards: an older one is ignored.
//! - The combined watermark is the minimum over every known partition, and
//!   `None` while any known partition has no watermark yet (a partition that
//!   has said nothing could still deliver any event time).
//! - An offset is the position of the **next record to read** in its
//!   partition (Kafka's committed-offset convention): a partition restored at
//!   offset 120 resumes by reading record 120. Offsets never move backwards
//!   unless the caller says so ([`SourcePositions::seek_offset`]): moving one
//!   back by mistake would make a restore read records twice.

use crate::checkpoint::IncrementalCheckpointMetadata;
use crate::error::{Error, Result};
use crate::recovery::RecoveredState;
use crate::wal::WalEntry;
use std::collections::{BTreeMap, HashMap};

/// The progress of one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    offset: Option<u64>,
    watermark: Option<i64>,
}

/// Per-partition source offsets and watermarks, and the combined watermark
/// (the minimum over partitions), as a checkpoint or a Commit records them.
///
/// ```
/// use highwater::SourcePositions;
/// let mut sources = SourcePositions::new();
/// sources.set_offset("clicks-0", 120)?; // the next record to read is 120
/// sources.set_offset("clicks-1", 80)?;
/// assert!(sources.set_offset("clicks-0", 100).is_err()); // never backwards...
/// sources.seek_offset("clicks-0", 100); // ...unless asked
/// assert_eq!(sources.offset("clicks-0"), Some(100));
/// sources.advance_watermark("clicks-0", 5_000);
/// assert_eq!(sources.combined_watermark(), None); // clicks-1 has none yet
/// sources.advance_watermark("clicks-1", 4_000);
/// assert_eq!(sources.combined_watermark(), Some(4_000));
/// sources.advance_watermark("clicks-1", 3_000); // never backwards
/// assert_eq!(sources.watermark("clicks-1"), Some(4_000));
/// # Ok::<(), highwater::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourcePositions {
    partitions: BTreeMap<String, Progress>,
}

impl SourcePositions {
    /// No partitions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `partition` without an offset or a watermark, so that it
    /// holds the combined watermark back until it reports one.
    ///
    /// A partition with neither an offset nor a watermark is not recorded in
    /// checkpoints or Commits: register every partition again after a restore
    /// (or give each an offset from the start).
    pub fn add_partition(&mut self, partition: impl Into<String>) {
        self.partitions.entry(partition.into()).or_default();
    }

    /// Sets `partition`'s offset, the next record to read (registering the
    /// partition). Setting the offset it already has is a no-op.
    ///
    /// # Errors
    /// [`Error::OffsetRegression`] when `offset` is below the partition's
    /// offset; nothing changes. To move back on purpose (a replay, a reset),
    /// use [`seek_offset`](Self::seek_offset).
    pub fn set_offset(&mut self, partition: impl Into<String>, offset: u64) -> Result<()> {
        let partition = partition.into();
        let progress = self.partitions.entry(partition.clone()).or_default();
        match progress.offset {
            Some(current) if offset < current => Err(Error::OffsetRegression {
                partition,
                current,
                requested: offset,
            }),
            _ => {
                progress.offset = Some(offset);
                Ok(())
            }
        }
    }

    /// Sets `partition`'s offset to `offset` even when that moves it back: the
    /// caller rewinds the source on purpose (registering the partition).
    pub fn seek_offset(&mut self, partition: impl Into<String>, offset: u64) {
        self.partitions.entry(partition.into()).or_default().offset = Some(offset);
    }

    /// Moves `partition`'s watermark forward to `watermark` (registering the
    /// partition). Returns false, changing nothing, when the partition's
    /// watermark is already at or past it.
    pub fn advance_watermark(&mut self, partition: impl Into<String>, watermark: i64) -> bool {
        let progress = self.partitions.entry(partition.into()).or_default();
        if progress.watermark.is_some_and(|w| w >= watermark) {
            return false;
        }
        progress.watermark = Some(watermark);
        true
    }

    /// `partition`'s offset.
    pub fn offset(&self, partition: &str) -> Option<u64> {
        self.partitions.get(partition)?.offset
    }

    /// `partition`'s watermark.
    pub fn watermark(&self, partition: &str) -> Option<i64> {
        self.partitions.get(partition)?.watermark
    }

    /// The minimum watermark over all known partitions; `None` when there are
    /// none or any of them has no watermark yet.
    pub fn combined_watermark(&self) -> Option<i64> {
        let mut watermarks = self.partitions.values().map(|p| p.watermark);
        let first = watermarks.next()??;
        watermarks.try_fold(first, |min, w| Some(min.min(w?)))
    }

    /// The known partitions, in name order.
    pub fn partitions(&self) -> impl Iterator<Item = &str> + '_ {
        self.partitions.keys().map(String::as_str)
    }

    /// Every partition's offset (partitions without one are left out).
    pub fn offsets(&self) -> HashMap<String, u64> {
        self.partitions
            .iter()
            .filter_map(|(name, p)| Some((name.clone(), p.offset?)))
            .collect()
    }

    /// Every partition's watermark (partitions without one are left out).
    pub fn watermarks(&self) -> HashMap<String, i64> {
        self.partitions
            .iter()
            .filter_map(|(name, p)| Some((name.clone(), p.watermark?)))
            .collect()
    }

    /// The log entries that commit these positions with a transaction, to
    /// append after its changes: a `Watermarks` entry with every partition
    /// watermark (left out when there is none), then the `Commit` with every
    /// offset and the combined watermark.
    pub fn commit_entries(&self) -> Vec<WalEntry> {
        let watermarks = self.watermarks();
        let mut entries = Vec::with_capacity(2);
        if !watermarks.is_empty() {
            entries.push(WalEntry::Watermarks { watermarks });
        }
        entries.push(WalEntry::Commit {
            offsets: self.offsets(),
            watermark: self.combined_watermark(),
        });
        entries
    }

    /// The positions a checkpoint recorded (partitions registered without an
    /// offset or a watermark were not recorded; see
    /// [`add_partition`](Self::add_partition)).
    ///
    /// A checkpoint that recorded only a combined watermark (the seed-style
    /// `create_checkpoint_with_state`) gives each of its partitions that
    /// watermark, so [`combined_watermark`](Self::combined_watermark) equals
    /// it; a partition's own recorded watermark is kept as it is.
    pub fn from_checkpoint(checkpoint: &IncrementalCheckpointMetadata) -> Self {
        let mut watermarks = checkpoint.source_watermarks.clone();
        crate::recovery::watermarks::settle(
            &mut watermarks,
            &checkpoint.source_offsets,
            checkpoint.watermark,
        );
        Self::from_maps(&checkpoint.source_offsets, &watermarks)
    }

    /// The positions recovery returned (the checkpoint's, overlaid by the
    /// Commits replayed after it).
    pub fn from_recovered(recovered: &RecoveredState) -> Self {
        Self::from_maps(&recovered.source_offsets, &recovered.source_watermarks)
    }

    fn from_maps(offsets: &HashMap<String, u64>, watermarks: &HashMap<String, i64>) -> Self {
        let mut positions = Self::new();
        for (name, offset) in offsets {
            positions.seek_offset(name.clone(), *offset);
        }
        for (name, watermark) in watermarks {
            positions.advance_watermark(name.clone(), *watermark);
        }
        positions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_combined_watermark_waits_for_every_partition() {
        let mut s = SourcePositions::new();
        assert_eq!(s.combined_watermark(), None);
        s.add_partition("p0");
        s.advance_watermark("p1", 10);
        assert_eq!(s.combined_watermark(), None);
        s.advance_watermark("p0", 20);
        assert_eq!(s.combined_watermark(), Some(10));
        assert!(s.advance_watermark("p1", 30));
        assert_eq!(s.combined_watermark(), Some(20));
        assert!(!s.advance_watermark("p0", 19));
        assert_eq!(s.watermark("p0"), Some(20));
        assert_eq!(s.partitions().collect::<Vec<_>>(), ["p0", "p1"]);
        assert!(s.offsets().is_empty());
        assert_eq!(s.watermarks().len(), 2);
    }

    #[test]
    fn offsets_round_trip_through_maps() {
        let mut s = SourcePositions::new();
        s.set_offset("a", 7).unwrap();
        s.set_offset("b", 0).unwrap();
        s.advance_watermark("b", -3);
        let back = SourcePositions::from_maps(&s.offsets(), &s.watermarks());
        assert_eq!(back, s);
        assert_eq!(back.offset("a"), Some(7));
        assert_eq!(back.combined_watermark(), None, "a has no watermark");
    }
}
