//! [`CheckpointRequest`]: everything one checkpoint should hold.

use super::metadata::SinkTransaction;
use super::owned_part::{IntoPart, OwnedPart};
#[cfg(feature = "arrow")]
use crate::arrow::ArrowBatches;
use crate::error::{Error, Result};
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
///
/// A part is given borrowed ([`with_part`](Self::with_part), a
/// [`PartInput`]) or owned ([`with_owned_part`](Self::with_owned_part), an
/// [`OwnedPart`] or anything that is [`IntoPart`], converted when the
/// checkpoint is written). A request whose parts are all owned and that
/// borrows no log is a `CheckpointRequest<'static>`: what a
/// [`BackgroundCheckpointer`](super::BackgroundCheckpointer) writes on its
/// own thread.
#[derive(Debug)]
pub struct CheckpointRequest<'a> {
    pub(crate) wal_position: u64,
    pub(crate) source_offsets: HashMap<String, u64>,
    pub(crate) watermark: Option<i64>,
    pub(crate) source_watermarks: HashMap<String, i64>,
    pub(crate) parts: Vec<(String, Part<'a>)>,
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
    pub fn with_part(self, name: impl Into<String>, part: PartInput<'a>) -> Self {
        self.with(name.into(), Part::Input(part))
    }

    /// Adds (or replaces) part `name`, owned: an [`OwnedPart`], a
    /// [`StateSnapshot`], a [`StateDelta`], or a closure (any [`IntoPart`])
    /// that builds the part when the checkpoint is written — on the caller's
    /// thread for [`create_checkpoint`](super::IncrementalCheckpointManager::create_checkpoint),
    /// on the background thread for a
    /// [`BackgroundCheckpointer`](super::BackgroundCheckpointer). Otherwise
    /// the same as [`with_part`](Self::with_part) with the part's
    /// [`OwnedPart::input`].
    ///
    /// An owned part owns what it holds (`'static`): give borrowed data with
    /// [`with_part`](Self::with_part).
    pub fn with_owned_part(self, name: impl Into<String>, part: impl IntoPart + 'static) -> Self {
        self.with(name.into(), Part::Deferred(Box::new(part)))
    }

    fn with(mut self, name: String, part: Part<'a>) -> Self {
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

/// A part as the request holds it.
pub(crate) enum Part<'a> {
    /// Borrowed from the caller.
    Input(PartInput<'a>),
    /// Owned, converted.
    Owned(OwnedPart),
    /// Owned, not converted yet ([`IntoPart`]).
    Deferred(Box<dyn IntoPart>),
}

impl std::fmt::Debug for Part<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Input(p) => f.debug_tuple("Input").field(p).finish(),
            Part::Owned(p) => f.debug_tuple("Owned").field(p).finish(),
            Part::Deferred(_) => f.write_str("Deferred(..)"),
        }
    }
}

impl Part<'_> {
    /// The part as the borrowed input the manager writes.
    ///
    /// # Errors
    /// `InvalidArgument` for a part not converted yet
    /// ([`CheckpointRequest::convert_parts`] was not called).
    pub(crate) fn input(&self) -> Result<PartInput<'_>> {
        match self {
            Part::Input(p) => Ok(*p),
            Part::Owned(p) => Ok(p.input()),
            Part::Deferred(_) => Err(Error::invalid_argument(
                "create_checkpoint",
                "an owned part was not converted before it was written",
            )),
        }
    }
}

impl<'a> CheckpointRequest<'a> {
    /// Converts every owned part ([`IntoPart::into_part`]), in the order they
    /// were given, on the calling thread.
    ///
    /// # Errors
    /// The first conversion's error (the later parts are not converted).
    pub(crate) fn convert_parts(mut self) -> Result<Self> {
        for (_, part) in &mut self.parts {
            if let Part::Deferred(_) = part {
                let taken = std::mem::replace(part, Part::Owned(OwnedPart::Blob(Vec::new())));
                *part = match taken {
                    Part::Deferred(deferred) => Part::Owned(deferred.into_part()?),
                    other => other,
                };
            }
        }
        Ok(self)
    }

    /// The request detached from everything it borrows, to be written later
    /// on another thread: the log it names is made durable through the
    /// position and checked now ([`with_wal`](Self::with_wal)); borrowed parts
    /// are copied ([`OwnedPart::copied`]); owned parts move, unconverted.
    ///
    /// # Errors
    /// The log's errors of [`WriteAheadLog::sync_to_commit_boundary`].
    pub(crate) fn detach(self) -> Result<CheckpointRequest<'static>> {
        if let Some(wal) = self.wal {
            wal.sync_to_commit_boundary(self.wal_position)?;
        }
        let parts = self
            .parts
            .into_iter()
            .map(|(name, part)| {
                let part = match part {
                    Part::Input(p) => Part::Owned(OwnedPart::copied(p)),
                    Part::Owned(p) => Part::Owned(p),
                    Part::Deferred(d) => Part::Deferred(d),
                };
                (name, part)
            })
            .collect();
        Ok(CheckpointRequest {
            wal_position: self.wal_position,
            source_offsets: self.source_offsets,
            watermark: self.watermark,
            source_watermarks: self.source_watermarks,
            parts,
            drops: self.drops,
            parent: self.parent,
            sink_transactions: self.sink_transactions,
            wal: None,
        })
    }
}
