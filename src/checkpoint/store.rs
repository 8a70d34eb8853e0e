//! [`CheckpointStore`]: read-only access to a checkpoint directory — listing,
//! verification, choosing the latest restorable checkpoint, resolving delta
//! chains and loading state.
//!
//! Invariants:
//! - A checkpoint is *restorable* when its metadata verifies, every part file has
//!   the listed size and CRC32C and a valid state-file structure, and its parent
//!   (if any) is restorable. Nothing is loaded from a checkpoint that is not.
//! - Verification results are remembered per id: published files are immutable,
//!   so a file that verified once is not read again to decide restorability
//!   (loading it still checks every checksum it reads).
//! - Reading never modifies the directory.

use super::metadata::{
    self, parse_checkpoint_dir_name, CheckpointKind, IncrementalCheckpointMetadata, PartKind,
    PartMetadata, MAX_METADATA_LEN, METADATA_FILE,
};
use super::publish::TMP_PREFIX;
use super::view::CheckpointStateView;
use crate::error::{Error, Result};
use crate::state::{decode_blob, verify_state_file, StateDelta, StateFileView, StateKind, StateSnapshot};
use crate::storage::{default_storage, load_file, OpenMode, Storage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The name of the part that [`load_checkpoint_state`](super::IncrementalCheckpointManager::load_checkpoint_state)
/// and `create_checkpoint_with_state` use.
pub const DEFAULT_PART: &str = "state";

/// A checkpoint that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedCheckpoint {
    /// Its id.
    pub id: u64,
    /// Its directory.
    pub path: PathBuf,
    /// Why it is not restorable (the error's message).
    pub reason: String,
}

/// The outcome of looking for the latest restorable checkpoint.
#[derive(Debug, Clone, Default)]
pub struct LatestCheckpoint {
    /// The newest restorable checkpoint, if any.
    pub metadata: Option<IncrementalCheckpointMetadata>,
    /// Every newer checkpoint that was skipped, newest first.
    pub rejected: Vec<RejectedCheckpoint>,
}

/// What is known about one checkpoint id.
#[derive(Debug, Clone)]
enum Status {
    /// Metadata and files verified.
    Valid(Arc<IncrementalCheckpointMetadata>),
    /// Something did not verify.
    Damaged(String),
}

/// Read-only access to a checkpoint directory.
#[derive(Debug)]
pub struct CheckpointStore {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    checked: Mutex<BTreeMap<u64, Status>>,
}

impl CheckpointStore {
    /// A store over `dir` on the real file system.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self::with_storage(default_storage(), dir)
    }

    /// A store over `dir` through `storage`.
    pub fn with_storage(storage: Arc<dyn Storage>, dir: impl AsRef<Path>) -> Self {
        CheckpointStore {
            storage,
            dir: dir.as_ref().to_path_buf(),
            checked: Mutex::new(BTreeMap::new()),
        }
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The ids of every directory named like a checkpoint, ascending (valid or
    /// not). A missing directory has none.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed.
    pub fn checkpoint_ids(&self) -> Result<Vec<u64>> {
        Ok(self.scan()?.0)
    }

    /// Checkpoint ids and names of leftover temporary directories.
    pub(crate) fn scan(&self) -> Result<(Vec<u64>, Vec<String>)> {
        let entries = match self.storage.list_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], vec![])),
            Err(e) => return Err(Error::io("list", &self.dir, e)),
        };
        let mut ids = Vec::new();
        let mut leftovers = Vec::new();
        for entry in entries {
            if let Some(id) = parse_checkpoint_dir_name(&entry.name) {
                ids.push(id);
            } else if entry.name.starts_with(TMP_PREFIX) {
                leftovers.push(entry.name);
            } else {
                tracing::debug!(dir = %self.dir.display(), name = %entry.name, "ignoring unknown entry in checkpoint directory");
            }
        }
        ids.sort_unstable();
        Ok((ids, leftovers))
    }

    /// The directory of checkpoint `id`.
    pub fn checkpoint_path(&self, id: u64) -> PathBuf {
        self.dir.join(metadata::checkpoint_dir_name(id))
    }

    /// Reads and verifies the metadata of checkpoint `id` (not its files).
    ///
    /// # Errors
    /// `Io` (a missing file included), `CheckpointCorrupted`, `UnsupportedVersion`,
    /// `UnsafeName`.
    pub fn read_metadata(&self, id: u64) -> Result<IncrementalCheckpointMetadata> {
        read_metadata_at(self.storage.as_ref(), &self.checkpoint_path(id), id)
    }

    /// Verifies checkpoint `id` on its own: metadata, and the size, CRC32C and
    /// structure of every part file (not its parent).
    ///
    /// # Errors
    /// The first problem found, as a typed error naming the file.
    pub fn verify_checkpoint(&self, id: u64) -> Result<IncrementalCheckpointMetadata> {
        let path = self.checkpoint_path(id);
        let meta = read_metadata_at(self.storage.as_ref(), &path, id)?;
        for part in &meta.parts {
            self.verify_part(&path, part)?;
        }
        Ok(meta)
    }

    fn verify_part(&self, checkpoint: &Path, part: &PartMetadata) -> Result<()> {
        let path = checkpoint.join(&part.file);
        let size = self
            .storage
            .file_size(&path)
            .map_err(|e| Error::io("stat", &path, e))?;
        let mismatch = |actual_size, actual_crc| Error::CheckpointFileMismatch {
            path: path.clone(),
            expected_size: part.size,
            actual_size,
            expected_crc: part.crc32c,
            actual_crc,
        };
        if size != part.size {
            return Err(mismatch(size, 0));
        }
        let bytes = load_file(self.storage.as_ref(), &path).map_err(|e| Error::io("read", &path, e))?;
        let (kind, crc) = verify_state_file(&path, crate::storage::MappedFile::bytes(&bytes))?;
        if crc != part.crc32c {
            return Err(mismatch(size, crc));
        }
        let expected = match part.kind {
            PartKind::Snapshot => StateKind::Snapshot,
            PartKind::Delta => StateKind::Delta,
            PartKind::Blob => StateKind::Blob,
        };
        if kind != expected {
            return Err(Error::WrongStateKind {
                path,
                expected: expected.name(),
                found: kind.name(),
            });
        }
        Ok(())
    }

    /// Whether `id` is restorable (memoised); `Err` carries the reason it is not.
    fn restorable(&self, id: u64) -> std::result::Result<Arc<IncrementalCheckpointMetadata>, String> {
        let mut chain = Vec::new();
        let mut at = Some(id);
        let mut result = None;
        while let Some(current) = at {
            let status = self.status(current);
            match status {
                Status::Valid(meta) => {
                    chain.push(meta.clone());
                    at = meta.parent_id;
                }
                Status::Damaged(reason) => {
                    result = Some(if current == id {
                        reason
                    } else {
                        format!("it depends on checkpoint {current}, which is not restorable: {reason}")
                    });
                    break;
                }
            }
        }
        match result {
            None => chain.first().cloned().ok_or_else(|| "empty chain".to_string()),
            Some(reason) => Err(reason),
        }
    }

    fn status(&self, id: u64) -> Status {
        if let Some(s) = self.lock().get(&id) {
            return s.clone();
        }
        let status = match self.verify_checkpoint(id) {
            Ok(meta) => Status::Valid(Arc::new(meta)),
            Err(e) => Status::Damaged(e.to_string()),
        };
        self.lock().insert(id, status.clone());
        status
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Status>> {
        self.checked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The metadata of `id` if it is restorable.
    pub(crate) fn restorable_meta(&self, id: u64) -> Option<Arc<IncrementalCheckpointMetadata>> {
        self.restorable(id).ok()
    }

    /// Names of every part of checkpoint `id`, including parts carried over from
    /// its parents.
    ///
    /// # Errors
    /// `CheckpointNotFound` when `id` or an ancestor is not restorable.
    pub fn part_names(&self, id: u64) -> Result<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        let mut at = Some(id);
        while let Some(current) = at {
            let meta = self.restorable(current).map_err(|_| Error::CheckpointNotFound {
                dir: self.dir.clone(),
                id: current,
            })?;
            for part in &meta.parts {
                if !names.contains(&part.name) {
                    names.push(part.name.clone());
                }
            }
            at = if meta.is_delta() { meta.parent_id } else { None };
        }
        Ok(names)
    }

    /// Records a checkpoint this process just published (it verified as written).
    pub(crate) fn remember_valid(&self, meta: IncrementalCheckpointMetadata) {
        self.lock().insert(meta.id, Status::Valid(Arc::new(meta)));
    }

    /// Forgets what is known about `id` (after deleting it).
    pub(crate) fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Whether checkpoint `id` is restorable (verifying it and its chain if not
    /// done yet).
    pub fn is_restorable(&self, id: u64) -> bool {
        self.restorable(id).is_ok()
    }

    /// The newest restorable checkpoint, and every newer one that was skipped.
    /// Each skipped one is logged as a warning.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed.
    pub fn find_latest(&self) -> Result<LatestCheckpoint> {
        let mut out = LatestCheckpoint::default();
        for id in self.checkpoint_ids()?.into_iter().rev() {
            match self.restorable(id) {
                Ok(meta) => {
                    out.metadata = Some((*meta).clone());
                    break;
                }
                Err(reason) => {
                    let path = self.checkpoint_path(id);
                    tracing::warn!(checkpoint = id, path = %path.display(), %reason, "skipping checkpoint that is not restorable");
                    out.rejected.push(RejectedCheckpoint { id, path, reason });
                }
            }
        }
        Ok(out)
    }

    /// Metadata of every checkpoint whose metadata reads and verifies, ascending
    /// by id (their files are not checked here; see
    /// [`verify_checkpoint`](Self::verify_checkpoint)).
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed.
    pub fn list(&self) -> Result<Vec<IncrementalCheckpointMetadata>> {
        Ok(self
            .checkpoint_ids()?
            .into_iter()
            .filter_map(|id| self.read_metadata(id).ok())
            .collect())
    }

    /// The files that make up part `name` of checkpoint `id`, newest first: zero or
    /// more deltas, then the snapshot or blob they apply to.
    ///
    /// # Errors
    /// `CheckpointNotFound` when `id` is not restorable, `InvalidArgument` when it
    /// has no such part.
    pub fn resolve_part(&self, id: u64, name: &str) -> Result<Vec<(PathBuf, PartMetadata)>> {
        let mut meta = self.restorable(id).map_err(|reason| {
            tracing::warn!(checkpoint = id, %reason, "checkpoint is not restorable");
            Error::CheckpointNotFound {
                dir: self.dir.clone(),
                id,
            }
        })?;
        let mut layers = Vec::new();
        loop {
            let path = meta.checkpoint_path(&self.dir);
            match meta.part(name) {
                Some(part) => {
                    layers.push((path.join(&part.file), part.clone()));
                    if part.kind != PartKind::Delta {
                        return Ok(layers);
                    }
                }
                None if meta.kind == CheckpointKind::Full => break,
                None => {}
            }
            let Some(parent) = meta.parent_id else { break };
            meta = self.restorable(parent).map_err(|_| Error::CheckpointNotFound {
                dir: self.dir.clone(),
                id: parent,
            })?;
        }
        Err(Error::InvalidArgument(format!(
            "checkpoint {id} has no part named {name:?}"
        )))
    }

    fn load(&self, path: &Path) -> Result<crate::storage::LoadedFile> {
        load_file(self.storage.as_ref(), path).map_err(|e| Error::io("read", path, e))
    }

    /// The full key/value state of part `name` of checkpoint `id`, deltas merged.
    ///
    /// # Errors
    /// As [`resolve_part`](Self::resolve_part); `WrongStateKind` for a blob part;
    /// any corruption found while reading.
    pub fn load_snapshot(&self, id: u64, name: &str) -> Result<StateSnapshot> {
        let layers = self.resolve_part(id, name)?;
        let mut layers = layers.into_iter().rev();
        let Some((base_path, _)) = layers.next() else {
            return Err(Error::InvalidArgument(format!("checkpoint {id} has no part {name:?}")));
        };
        let base = self.load(&base_path)?;
        let mut state = StateSnapshot::from_file_bytes(&base_path, crate::storage::MappedFile::bytes(&base))?;
        drop(base);
        for (path, _) in layers {
            let bytes = self.load(&path)?;
            let delta = StateDelta::from_file_bytes(&path, crate::storage::MappedFile::bytes(&bytes))?;
            state = state.apply(&delta);
        }
        Ok(state)
    }

    /// The bytes of blob part `name` of checkpoint `id`.
    ///
    /// # Errors
    /// As [`resolve_part`](Self::resolve_part); `WrongStateKind` for a key/value part.
    pub fn load_blob(&self, id: u64, name: &str) -> Result<Vec<u8>> {
        let layers = self.resolve_part(id, name)?;
        match layers.as_slice() {
            [(path, part)] if part.kind == PartKind::Blob => {
                let bytes = self.load(path)?;
                decode_blob(path, crate::storage::MappedFile::bytes(&bytes))
            }
            [(path, part), ..] => Err(Error::WrongStateKind {
                path: path.clone(),
                expected: "blob",
                found: match part.kind {
                    PartKind::Delta => "delta",
                    _ => "snapshot",
                },
            }),
            [] => Err(Error::InvalidArgument(format!("checkpoint {id} has no part {name:?}"))),
        }
    }

    /// The default part's state as bytes: a blob's bytes verbatim, or a
    /// key/value state (deltas merged) as `StateSnapshot::to_bytes` bytes.
    ///
    /// # Errors
    /// As [`load_snapshot`](Self::load_snapshot).
    pub fn load_state_bytes(&self, id: u64) -> Result<Vec<u8>> {
        let name = self.default_part_name(id)?;
        let layers = self.resolve_part(id, &name)?;
        match layers.as_slice() {
            [(path, part)] => {
                let bytes = self.load(path)?;
                let file = crate::storage::MappedFile::bytes(&bytes);
                if part.kind == PartKind::Blob {
                    return decode_blob(path, file);
                }
                // A lone snapshot is returned as stored, after full verification.
                StateSnapshot::from_file_bytes(path, file)?;
                Ok(file.to_vec())
            }
            _ => Ok(self.load_snapshot(id, &name)?.to_bytes()?.to_vec()),
        }
    }

    /// The default part of checkpoint `id`: `state`, or its only part.
    fn default_part_name(&self, id: u64) -> Result<String> {
        let meta = self.restorable(id).map_err(|_| Error::CheckpointNotFound {
            dir: self.dir.clone(),
            id,
        })?;
        if meta.part(DEFAULT_PART).is_some() || meta.is_delta() {
            return Ok(DEFAULT_PART.to_string());
        }
        match meta.parts.as_slice() {
            [only] => Ok(only.name.clone()),
            _ => Err(Error::InvalidArgument(format!(
                "checkpoint {id} has no part named {DEFAULT_PART:?}; name one of its parts"
            ))),
        }
    }

    /// Opens part `name` of checkpoint `id` for zero-copy reading: every file of
    /// its delta chain is mapped, and look-ups consult the newest first.
    ///
    /// # Errors
    /// As [`resolve_part`](Self::resolve_part); corruption in a file's header.
    pub fn open_view(&self, id: u64, name: &str) -> Result<CheckpointStateView> {
        let layers = self
            .resolve_part(id, name)?
            .into_iter()
            .map(|(path, _)| StateFileView::open_with(self.storage.as_ref(), &path))
            .collect::<Result<Vec<_>>>()?;
        CheckpointStateView::new(layers)
    }
}

/// Reads and verifies `checkpoint/metadata.json`, bounded in size.
pub(crate) fn read_metadata_at(
    storage: &dyn Storage,
    checkpoint: &Path,
    id: u64,
) -> Result<IncrementalCheckpointMetadata> {
    let path = checkpoint.join(METADATA_FILE);
    let file = storage
        .open_file(&path, OpenMode::Read)
        .map_err(|e| Error::io("open", &path, e))?;
    let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
    if len > MAX_METADATA_LEN {
        return Err(Error::CheckpointCorrupted {
            path,
            offset: None,
            reason: format!("metadata is {len} bytes, larger than the {MAX_METADATA_LEN}-byte limit"),
        });
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| Error::io("read", &path, e))?;
    metadata::decode(&path, &bytes, id)
}
