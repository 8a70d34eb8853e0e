//! [`CheckpointRequest`]: everything one checkpoint should hold.

use super::metadata::SinkTransaction;
#[cfg(feature = "arrow")]
use crate::arrow::ArrowBatches;
use crate::source::SourcePositions;
use crate::state::{StateDelta, StateSnapshot};
use crate::wal::WriteAheadLog;
use std::collections::HashMap;

/// The state of one named part, as given to a checkpoint.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum PartInput<'a> {
    /// A full key/value state.
    Snapshot(&'a StateSnapshot),
    /// Changes since the same part of the parent checkpoint.
    Delta(&'a StateDelta),
    /// Opaque operator bytes.
    Blob(&'a [u8]),
    /// The bytes of a state file (`StateSnapshot::to_bytes`,
    /// `StateDelta::to_bytes`); verified before it is written.
    StateFile(&'a [u8]),
    /// A schema and record batches: the whole Arrow part, stored as an Arrow
    /// IPC file (`docs/FORMAT.md` §5). Only with the `arrow` feature.
    #[cfg(feature = "arrow")]
    Arrow(ArrowBatches<'a>),
    /// Record batches appended to the same Arrow part of the parent
    /// checkpoint since it was written (the old batches are not written again).
    /// Only with the `arrow` feature.
    #[cfg(feature = "arrow")]
    ArrowDelta(ArrowBatches<'a>),
}

/// What a checkpoint should hold: its WAL position, offsets, watermark, state
/// parts and sink transactions.
///
/// One rule for every request: **a part that is not mentioned is carried over**
/// from the parent unchanged, and a part is removed only by
/// [`drop_part`](Self::drop_part). The parent is the checkpoint the caller's
/// state was built from: the one named by [`with_parent`](Self::with_parent),
/// else the manager's *base* — the checkpoint it last wrote, or the one whose
/// state was last loaded through it (see
/// [`IncrementalCheckpointManager`](super::IncrementalCheckpointManager)).
///
/// - A request whose parts name every part of the parent in full (or that
///   has no parent) makes a full checkpoint of exactly those parts.
/// - A request holding a [`PartInput::Delta`], a [`PartInput::ArrowDelta`]
///   (or a delta state file), or not mentioning some part of the parent,
///   *builds on* the parent: it becomes a delta checkpoint over it, where
///   unmentioned parts are carried by reference; when the chain limits of the
///   [`CheckpointConfig`](super::CheckpointConfig) are reached it is written
///   as a full checkpoint holding the parent's whole state with the request
///   applied. An epoch in which nothing changed checkpoints its offsets only
///   and keeps the whole state.
/// - A request that builds on a parent is refused (nothing is written) unless
///   the parent is known ([`Error::DeltaParentUnknown`](crate::Error::DeltaParentUnknown)),
///   is the latest restorable checkpoint
///   ([`Error::DeltaParentMismatch`](crate::Error::DeltaParentMismatch)), and
///   verifies now (a read error is returned as it is; the request is never
///   applied to another checkpoint instead).
/// - Dropping a part the parent holds writes a full checkpoint without it.
#[derive(Debug, Clone)]
pub struct CheckpointRequest<'a> {
    pub(crate) wal_position: u64,
    pub(crate) source_offsets: HashMap<String, u64>,
    pub(crate) watermark: Option<i64>,
    pub(crate) source_watermarks: HashMap<String, i64>,
    pub(crate) parts: Vec<(String, PartInput<'a>)>,
    pub(crate) drops: Vec<String>,
    pub(crate) parent: Option<u64>,
    pub(crate) sink_transactions: Vec<SinkTransaction>,
    pub(crate) wal: Option<&'a WriteAheadLog>,
}

impl<'a> CheckpointRequest<'a> {
    /// A checkpoint covering the write-ahead log up to `wal_position`: the
    /// state reflects every transaction committed before that position, and
    /// recovery replays the log from there. Give the log too
    /// ([`with_wal`](Self::with_wal)) so the position is checked; a job that
    /// keeps no log passes 0.
    pub fn new(wal_position: u64) -> Self {
        CheckpointRequest {
            wal_position,
            source_offsets: HashMap::new(),
            watermark: None,
            source_watermarks: HashMap::new(),
            parts: Vec::new(),
            drops: Vec::new(),
            parent: None,
            sink_transactions: Vec::new(),
            wal: None,
        }
    }

    /// The log the position belongs to. Before anything is written the
    /// manager makes the log durable through the position and checks that it
    /// ends a transaction and lies within the log
    /// ([`WriteAheadLog::sync_to_commit_boundary`]), so a checkpoint that could
    /// not be recovered is refused when it is made, not at the next restart.
    /// Give it whenever the job's log has transactions (Commits); a job
    /// without a log uses position 0. A plain change log without Commits has
    /// no commit boundaries: do not give it the log. The check knows the
    /// boundaries this writer saw (the newest 4096, and those found at open):
    /// take the position right after a Commit, not one much older.
    ///
    ///
    /// # Examples
    /// ```
    /// # use highwater::*;
    /// # fn main() -> highwater::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let wal = WriteAheadLog::new(dir.path().join("wal"), std::time::Duration::ZERO)?;
    /// let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path().join("ckpt")))?;
    /// wal.append(&WalEntry::Put { key: b"k".to_vec(), value: b"v".to_vec() })?;
    /// let inside = wal.position(); // the Put has no Commit yet
    /// wal.append(&WalEntry::Commit { offsets: Default::default(), watermark: None })?;
    /// assert!(manager.create_checkpoint(CheckpointRequest::new(inside).with_wal(&wal)).is_err());
    /// manager.create_checkpoint(CheckpointRequest::new(wal.position()).with_wal(&wal))?;
    /// # Ok(()) }
    /// ```
    pub fn with_wal(mut self, wal: &'a WriteAheadLog) -> Self {
        self.wal = Some(wal);
        self
    }

    /// The source offsets the state reflects.
    pub fn with_offsets(mut self, offsets: HashMap<String, u64>) -> Self {
        self.source_offsets = offsets;
        self
    }

    /// The watermark the state reflects.
    pub fn with_watermark(mut self, watermark: Option<i64>) -> Self {
        self.watermark = watermark;
        self
    }

    /// The offsets, per-partition watermarks and combined watermark of
    /// `sources`, in one call: the way to record per-partition watermarks
    /// (what [`SourcePositions::from_checkpoint`] gives back).
    pub fn with_sources(mut self, sources: &SourcePositions) -> Self {
        self.source_watermarks = sources.watermarks();
        self.with_offsets(sources.offsets())
            .with_watermark(sources.combined_watermark())
    }

    /// Adds (or replaces) part `name` (and cancels a [`drop_part`](Self::drop_part)
    /// of it).
    pub fn with_part(mut self, name: impl Into<String>, part: PartInput<'a>) -> Self {
        let name = name.into();
        self.parts.retain(|(n, _)| *n != name);
        self.drops.retain(|n| *n != name);
        self.parts.push((name, part));
        self
    }

    /// Removes part `name` from the checkpoint: it is not carried over from
    /// the parent (and a part of that name given before is withdrawn).
    /// Dropping a part the parent has writes a full checkpoint; dropping one it
    /// does not have changes nothing.
    pub fn drop_part(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.parts.retain(|(n, _)| *n != name);
        if !self.drops.contains(&name) {
            self.drops.push(name);
        }
        self
    }

    /// Names the checkpoint the caller's state was built from (the one it
    /// restored, or last wrote): deltas apply to it and unmentioned parts are
    /// carried over from it. Without it the manager's base is used (see
    /// [`IncrementalCheckpointManager`](super::IncrementalCheckpointManager)).
    /// It must be the latest restorable checkpoint when the request builds on
    /// it, or the request is refused.
    pub fn with_parent(mut self, id: u64) -> Self {
        self.parent = Some(id);
        self
    }

    /// Adds a sink's pre-committed transaction.
    pub fn with_sink_transaction(mut self, transaction: SinkTransaction) -> Self {
        self.sink_transactions.push(transaction);
        self
    }
}
