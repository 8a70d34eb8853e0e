//! [`CheckpointRequest`]: everything one checkpoint should hold.

use super::metadata::SinkTransaction;
use crate::arrow::ArrowBatches;
use crate::source::SourcePositions;
use crate::state::{StateDelta, StateSnapshot};
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
    /// IPC file (`docs/FORMAT.md` §5).
    Arrow(ArrowBatches<'a>),
    /// Record batches appended to the same Arrow part of the parent
    /// checkpoint since it was written (the old batches are not written again).
    ArrowDelta(ArrowBatches<'a>),
}

/// What a checkpoint should hold: its WAL position, offsets, watermark, state
/// parts and sink transactions.
///
/// A request with at least one [`PartInput::Delta`], [`PartInput::ArrowDelta`]
/// (or a delta state file) makes a delta checkpoint over the latest restorable one, in which parts that are not
/// mentioned carry over unchanged; the manager writes a full checkpoint instead
/// when there is no parent or the chain limits of the
/// [`CheckpointConfig`](super::CheckpointConfig) are reached. A request without
/// deltas makes a full checkpoint holding exactly the parts listed.
#[derive(Debug, Clone)]
pub struct CheckpointRequest<'a> {
    pub(crate) wal_position: u64,
    pub(crate) source_offsets: HashMap<String, u64>,
    pub(crate) watermark: Option<i64>,
    pub(crate) source_watermarks: HashMap<String, i64>,
    pub(crate) parts: Vec<(String, PartInput<'a>)>,
    pub(crate) sink_transactions: Vec<SinkTransaction>,
}

impl<'a> CheckpointRequest<'a> {
    /// A checkpoint covering the WAL up to `wal_position`.
    pub fn new(wal_position: u64) -> Self {
        CheckpointRequest {
            wal_position,
            source_offsets: HashMap::new(),
            watermark: None,
            source_watermarks: HashMap::new(),
            parts: Vec::new(),
            sink_transactions: Vec::new(),
        }
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

    /// The watermark of each source partition the state reflects.
    pub fn with_source_watermarks(mut self, watermarks: HashMap<String, i64>) -> Self {
        self.source_watermarks = watermarks;
        self
    }

    /// The offsets, per-partition watermarks and combined watermark of
    /// `sources`, in one call.
    pub fn with_sources(self, sources: &SourcePositions) -> Self {
        self.with_offsets(sources.offsets())
            .with_source_watermarks(sources.watermarks())
            .with_watermark(sources.combined_watermark())
    }

    /// Adds (or replaces) part `name`.
    pub fn with_part(mut self, name: impl Into<String>, part: PartInput<'a>) -> Self {
        let name = name.into();
        self.parts.retain(|(n, _)| *n != name);
        self.parts.push((name, part));
        self
    }

    /// Adds a sink's pre-committed transaction.
    pub fn with_sink_transaction(mut self, transaction: SinkTransaction) -> Self {
        self.sink_transactions.push(transaction);
        self
    }
}
