//! Checkpoints of the default part alone: the seed API's
//! `create_checkpoint_with_state` and `create_delta_checkpoint_with_state`,
//! thin doors onto [`IncrementalCheckpointManager::create_checkpoint`].

use super::manager::IncrementalCheckpointManager;
use super::metadata::IncrementalCheckpointMetadata;
use super::request::{CheckpointRequest, PartInput};
use super::store::DEFAULT_PART;
use crate::error::Result;
#[cfg(doc)]
use crate::state::StateSnapshot;
use crate::state::{expect_kind, header_summary, is_state_file, memory_path, StateKind};
use std::collections::HashMap;

impl IncrementalCheckpointManager {
    /// The seed API's door onto [`create_checkpoint`](Self::create_checkpoint):
    /// writes a checkpoint whose part `state` ([`DEFAULT_PART`](crate::checkpoint::DEFAULT_PART))
    /// holds `state`. Other parts of the base are carried over (the checkpoint
    /// is then a delta that replaces `state`); with none, it is a full
    /// checkpoint.
    ///
    /// What `state` is follows one rule, not a guess: bytes that begin with
    /// the state-file magic number `HWSTATE\0` (`docs/FORMAT.md` §2, what
    /// [`StateSnapshot::to_bytes`] writes) are a state file — verified first,
    /// and recovered as a [`StateSnapshot`]; any other bytes are an opaque
    /// blob, returned verbatim by
    /// [`load_checkpoint_state`](Self::load_checkpoint_state). To say which
    /// explicitly, call `create_checkpoint` with [`PartInput::Blob`] or
    /// [`PartInput::StateFile`].
    ///
    /// # Errors
    /// `Io` for a failed write, fsync or rename (nothing is published);
    /// `StateCorrupted`/`StateChecksumMismatch` when `state` starts like a state
    /// file but does not verify.
    pub fn create_checkpoint_with_state(
        &self,
        wal_position: u64,
        offsets: HashMap<String, u64>,
        watermark: Option<i64>,
        state: &[u8],
    ) -> Result<IncrementalCheckpointMetadata> {
        let part = if is_state_file(state) {
            PartInput::StateFile(state)
        } else {
            PartInput::Blob(state)
        };
        self.create_single_part(wal_position, offsets, watermark, part)
    }

    /// Writes a delta checkpoint over the manager's base (see the parent rule
    /// above: the checkpoint it last wrote, or whose state was loaded through
    /// it): `delta` is the bytes of a [`StateDelta`](crate::StateDelta)
    /// (changes to the `state` part since then), verified once and written as
    /// it is. Becomes a full checkpoint when the base is the empty state or the
    /// chain limits are reached.
    ///
    /// # Errors
    /// As [`create_checkpoint`](Self::create_checkpoint) (among them
    /// `DeltaParentUnknown` and `DeltaParentMismatch`); `WrongStateKind` when
    /// `delta` is not a delta file.
    pub fn create_delta_checkpoint_with_state(
        &self,
        wal_position: u64,
        offsets: HashMap<String, u64>,
        watermark: Option<i64>,
        delta: &[u8],
    ) -> Result<IncrementalCheckpointMetadata> {
        let (kind, _, _) = header_summary(memory_path(), delta)?;
        expect_kind(memory_path(), kind, StateKind::Delta)?;
        self.create_single_part(
            wal_position,
            offsets,
            watermark,
            PartInput::StateFile(delta),
        )
    }

    /// A checkpoint of the default part alone.
    fn create_single_part(
        &self,
        wal_position: u64,
        offsets: HashMap<String, u64>,
        watermark: Option<i64>,
        part: PartInput<'_>,
    ) -> Result<IncrementalCheckpointMetadata> {
        self.create_checkpoint(
            CheckpointRequest::new(wal_position)
                .with_offsets(offsets)
                .with_watermark(watermark)
                .with_part(DEFAULT_PART, part),
        )
    }
}
