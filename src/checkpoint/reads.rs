//! The manager's reads: the [`CheckpointStore`]'s reads of the same names, which
//! also make the checkpoint read the base of the writer's next delta (the
//! parent rule, on [`IncrementalCheckpointManager`]).

use super::manager::IncrementalCheckpointManager;
use super::metadata::IncrementalCheckpointMetadata;
use super::parent::{self, Base};
#[cfg(doc)]
use super::store::CheckpointStore;
use super::store::LatestCheckpoint;
use super::view::CheckpointStateView;
use crate::error::Result;
use crate::state::StateSnapshot;

impl IncrementalCheckpointManager {
    /// The newest restorable checkpoint: the one a writer builds on. Newer
    /// damaged checkpoints are skipped with a warning (the list of them, with
    /// reasons, is [`CheckpointStore::find_latest`]'s). Unlike the store's
    /// reader, a checkpoint that cannot be read now (a failed read, not
    /// damage: its restorability is unknown) is an error, never skipped for an
    /// older one: what a writer restores is what it builds on.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed, or when a checkpoint newer
    /// than the one that would be returned cannot be read (retry).
    pub fn find_latest_checkpoint(&self) -> Result<Option<IncrementalCheckpointMetadata>> {
        Ok(self.latest_strict()?.metadata)
    }

    /// [`find_latest_checkpoint`](Self::find_latest_checkpoint) with the
    /// checkpoints it skipped.
    pub(crate) fn latest_strict(&self) -> Result<LatestCheckpoint> {
        parent::find_latest_strict(&self.store)
    }

    // The loads below are the store's reads of the same name (a writer reads
    // what it builds on through its manager); on success checkpoint `id`
    // becomes the manager's base (the parent rule above).

    /// [`CheckpointStore::load_checkpoint_state`], then `id` becomes the base:
    /// the full state of the default part, delta chain merged — the bytes of a
    /// [`StateSnapshot`] for key/value state, or the bytes given to
    /// `create_checkpoint_with_state` for opaque state.
    ///
    /// # Errors
    /// `CheckpointNotFound` when `id` is missing or not restorable; corruption
    /// errors for damage found while reading.
    pub fn load_checkpoint_state(&self, id: u64) -> Result<Vec<u8>> {
        self.loaded(id, self.store.load_checkpoint_state(id))
    }

    /// [`CheckpointStore::load_snapshot`], then `id` becomes the base.
    ///
    /// # Errors
    /// As [`CheckpointStore::load_snapshot`].
    pub fn load_snapshot(&self, id: u64, name: &str) -> Result<StateSnapshot> {
        self.loaded(id, self.store.load_snapshot(id, name))
    }

    /// [`CheckpointStore::open_state_view`] (the zero-copy read), then `id`
    /// becomes the base.
    ///
    /// # Errors
    /// As [`CheckpointStore::open_state_view`].
    pub fn open_state_view(&self, id: u64, name: &str) -> Result<CheckpointStateView> {
        self.loaded(id, self.store.open_state_view(id, name))
    }

    /// [`CheckpointStore::open_arrow_part`], then `id` becomes the base.
    ///
    /// # Errors
    /// As [`CheckpointStore::open_arrow_part`].
    #[cfg(feature = "arrow")]
    pub fn open_arrow_part(&self, id: u64, name: &str) -> Result<crate::ArrowPart> {
        self.loaded(id, self.store.open_arrow_part(id, name))
    }

    /// [`CheckpointStore::list_checkpoints`]: metadata of every checkpoint
    /// whose metadata verifies, ascending by id.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed.
    pub fn list_checkpoints(&self) -> Result<Vec<IncrementalCheckpointMetadata>> {
        self.store.list_checkpoints()
    }

    /// Records that the caller loaded the state of checkpoint `id`.
    fn loaded<T>(&self, id: u64, loaded: Result<T>) -> Result<T> {
        if loaded.is_ok() {
            self.set_base(Base::Checkpoint(id));
        }
        loaded
    }
}
