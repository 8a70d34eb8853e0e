//! Loading state out of a [`CheckpointStore`]: a part's delta chain merged
//! into a snapshot, a blob, the default part's bytes, or a zero-copy view.
//!
//! Invariants (with the store's):
//! - A part is read only after its chain checked (`resolve_part`), and each
//!   file only after its size and whole-file CRC32C matched its metadata
//!   (`check_identity`); decoding then verifies every block it reads.
//! - Loading never modifies the directory.

use super::metadata::{PartKind, PartMetadata};
use super::store::{CheckpointStore, DEFAULT_PART};
use super::view::CheckpointStateView;
use crate::error::{Error, IoContext, Result};
use crate::sealing::{Expected, SealKind};
use crate::state::{
    decode_blob, encoded_file_crc, expect_kind, verify_state_file, StateDelta, StateFileView,
    StateKind, StateSnapshot,
};
use crate::storage::{LoadedFile, MappedFile};
use std::path::Path;
use std::sync::Arc;

impl CheckpointStore {
    /// Loads part file `path`: a plaintext file as it is (its format's own
    /// checks are the caller's), a sealed one checked against its size and
    /// opened, every block authenticated (docs/FORMAT.md §8).
    pub(crate) fn load_part_file(
        &self,
        path: &Path,
        part: &PartMetadata,
    ) -> Result<crate::storage::LoadedFile> {
        let kind = SealKind::of_part(part.kind);
        self.sealing()
            .load(self.storage(), path, kind, Expected::of_part(part))
    }

    /// Loads a part file and checks that it is the file its metadata lists (size,
    /// and the whole-file CRC32C derived from its verified header and table).
    /// The caller's decode verifies every block.
    fn load(&self, path: &Path, part: &PartMetadata) -> Result<LoadedFile> {
        let loaded = self.load_part_file(path, part)?;
        check_identity(path, part, loaded.bytes())?;
        Ok(loaded)
    }

    /// Maps a part file (a loaded copy on storages that cannot map) and checks
    /// its identity as [`load`](Self::load) does. The caller verifies every
    /// block before using a byte of it.
    ///
    /// Mapping is safe from truncation (SIGBUS) because a published part file
    /// is never written, truncated or reopened for writing; retention only
    /// unlinks it, which leaves the mapping intact (`storage::fs`, the
    /// `// SAFETY:` comment of its map).
    fn map_part(&self, path: &Path, part: &PartMetadata) -> Result<Arc<dyn MappedFile>> {
        if part.sealed.is_some() {
            return Ok(Arc::new(self.load(path, part)?));
        }
        let mapped = self.storage().map_file(path).ctx("map", path)?;
        check_identity(path, part, mapped.bytes())?;
        Ok(mapped)
    }

    /// The full key/value state of part `name` of checkpoint `id`, deltas merged.
    ///
    /// # Errors
    /// As [`resolve_part`](Self::resolve_part); `WrongStateKind` for a blob part;
    /// any corruption found while reading.
    pub fn load_snapshot(&self, id: u64, name: &str) -> Result<StateSnapshot> {
        let mut layers = self.resolve_part(id, name)?.into_iter().rev();
        let Some((base_path, base_part)) = layers.next() else {
            return Err(self.part_not_found(id, name));
        };
        expect_kind(&base_path, base_part.kind, PartKind::Snapshot)?;
        // The base is mapped (a copy for storages that cannot map) and the
        // snapshot stands over it: verified once, every block, no copy.
        let base = self.map_part(&base_path, &base_part)?;
        let mut state = StateSnapshot::from_shared(&base_path, base)?;
        for (path, part) in layers {
            let bytes = self.load(&path, &part)?;
            state = state.apply(&StateDelta::from_file_bytes(&path, bytes.bytes())?);
        }
        Ok(state)
    }

    /// The bytes of blob part `name` of checkpoint `id`.
    ///
    /// # Errors
    /// As [`resolve_part`](Self::resolve_part); `WrongStateKind` for a key/value part.
    pub fn load_blob(&self, id: u64, name: &str) -> Result<Vec<u8>> {
        let layers = self.resolve_part(id, name)?;
        let (path, part) = layers
            .first()
            .ok_or_else(|| self.part_not_found(id, name))?;
        expect_kind(path, part.kind, PartKind::Blob)?;
        decode_blob(path, self.load(path, part)?.bytes())
    }

    /// The default part's state as bytes: a blob's bytes verbatim, or a
    /// key/value state (deltas merged) as `StateSnapshot::to_bytes` bytes.
    ///
    /// # Errors
    /// As [`load_snapshot`](Self::load_snapshot).
    pub fn load_checkpoint_state(&self, id: u64) -> Result<Vec<u8>> {
        let name = self.default_part_name(id)?;
        match self.resolve_part(id, &name)?.as_slice() {
            [(path, part)] if part.kind == PartKind::Blob => {
                decode_blob(path, self.load(path, part)?.bytes())
            }
            [(path, part)] if part.kind == PartKind::Snapshot => {
                // A lone snapshot is returned as stored, after full verification
                // over the mapped file (one copy: the returned vector).
                let mapped = self.map_part(path, part)?;
                let (kind, _) = verify_state_file(path, mapped.bytes())?;
                expect_kind(path, kind, StateKind::Snapshot)?;
                Ok(mapped.bytes().to_vec())
            }
            _ => Ok(self.load_snapshot(id, &name)?.to_bytes()?.to_vec()),
        }
    }

    /// The part recovery loads and [`load_checkpoint_state`](Self::load_checkpoint_state)
    /// returns: [`DEFAULT_PART`] when checkpoint `id` has it, else its only part
    /// (parts carried over from parents included), else `None`. Arrow parts
    /// are never the default: their owners restore them with
    /// [`open_arrow_part`](Self::open_arrow_part).
    ///
    /// # Errors
    /// As [`part_names`](Self::part_names).
    pub fn default_part(&self, id: u64) -> Result<Option<String>> {
        let names: Vec<String> = self
            .parts_of(id)?
            .into_iter()
            .filter(|(_, kind)| !kind.is_arrow())
            .map(|(name, _)| name)
            .collect();
        Ok(match names.as_slice() {
            _ if names.iter().any(|n| n == DEFAULT_PART) => Some(DEFAULT_PART.to_string()),
            [only] => Some(only.clone()),
            _ => None,
        })
    }

    /// [`default_part`](Self::default_part), or an error naming the problem.
    fn default_part_name(&self, id: u64) -> Result<String> {
        self.default_part(id)?
            .ok_or_else(|| self.part_not_found(id, DEFAULT_PART))
    }

    /// Opens part `name` of checkpoint `id` for zero-copy reading: every file of
    /// its delta chain is mapped, and look-ups consult the newest first.
    ///
    /// # Errors
    /// As [`resolve_part`](Self::resolve_part); corruption in a file's header.
    pub fn open_state_view(&self, id: u64, name: &str) -> Result<CheckpointStateView> {
        let layers = self
            .resolve_part(id, name)?
            .into_iter()
            .map(|(path, part)| self.open_layer_at(&path, &part))
            .collect::<Result<Vec<_>>>()?;
        CheckpointStateView::new(layers)
    }
}

impl CheckpointStore {
    /// Opens file `part` of checkpoint `id` for zero-copy reading, checked
    /// against its metadata (size, CRC32C, kind).
    ///
    /// # Errors
    /// As [`open_state_view`](Self::open_state_view).
    pub(crate) fn open_layer(&self, id: u64, part: &PartMetadata) -> Result<StateFileView> {
        self.open_layer_at(&self.checkpoint_path(id).join(&part.file), part)
    }

    fn open_layer_at(&self, path: &Path, part: &PartMetadata) -> Result<StateFileView> {
        let Some(expected) = part.kind.state_kind() else {
            return Err(Error::WrongStateKind {
                path: path.to_path_buf(),
                expected: "key/value state",
                found: part.kind.name(),
            });
        };
        let view = self
            .sealing()
            .view(self.storage(), path, Expected::of_part(part))?;
        if let Some(mapped) = view.mapped_bytes() {
            check_identity(path, part, mapped)?;
        }
        expect_kind(path, view.kind(), expected)?;
        Ok(view)
    }
}

/// Checks that `file` has the size and whole-file CRC32C its metadata lists. The
/// CRC is derived from the header and block table (verified by `encoded_file_crc`),
/// so this costs no pass over the payload; the payload is verified by whoever
/// decodes or views it.
fn check_identity(path: &Path, part: &PartMetadata, file: &[u8]) -> Result<()> {
    if part.sealed.is_some() {
        // Checked (sealed size and CRC) and authenticated as it was opened.
        return Ok(());
    }
    let actual_size = file.len() as u64;
    let actual_crc = if actual_size == part.size {
        encoded_file_crc(path, file)?
    } else {
        0
    };
    if actual_size != part.size || actual_crc != part.crc32c {
        return Err(Error::CheckpointFileMismatch {
            path: path.to_path_buf(),
            expected_size: part.size,
            actual_size,
            expected_crc: part.crc32c,
            actual_crc,
        });
    }
    Ok(())
}
