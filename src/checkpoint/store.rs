//! [`CheckpointStore`]: read-only access to a checkpoint directory — listing,
//! verification, choosing the latest restorable checkpoint, resolving delta
//! chains; loading state out of it is in `load`.
//!
//! Invariants:
//! - A checkpoint is *restorable* when its metadata verifies, every part file has
//!   the listed size and CRC32C and a valid state-file structure, and its parent
//!   (if any) is restorable. Nothing is loaded from a checkpoint that is not.
//! - [`CheckpointStore::find_latest`] verifies every checksum of the checkpoint
//!   it returns and of its whole chain, every time it is called (nothing is
//!   cached: a file damaged since it was written is caught).
//! - Loading and viewing check the chain's metadata and file sizes, then verify
//!   every checksum of the bytes they read (views: lazily, per block) and that
//!   each file's CRC32C is the one its metadata lists.
//! - Reading never modifies the directory.

use super::chain::{chain_resolves, links_to, ChainProblem};
use super::metadata::{
    self, parse_checkpoint_dir_name, CheckpointKind, IncrementalCheckpointMetadata, PartKind,
    PartMetadata, MAX_METADATA_LEN, METADATA_FILE,
};
use super::publish::{LOCK_FILE, TMP_PREFIX};
use crate::error::{Error, IoContext, Result};
use crate::sealing::Sealing;
use crate::state::{expect_kind, verify_state_file};
use crate::storage::{default_storage, MappedFile, OpenMode, Storage};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The name of the part that [`load_checkpoint_state`](super::IncrementalCheckpointManager::load_checkpoint_state)
/// and `create_checkpoint_with_state` use.
pub const DEFAULT_PART: &str = "state";

/// A checkpoint that was not used, and why.
#[derive(Debug, Clone)]
pub struct RejectedCheckpoint {
    /// Its id.
    pub id: u64,
    /// Its directory.
    pub path: PathBuf,
    /// Why it is not restorable (the error's message).
    pub reason: String,
    /// Why it is not restorable, typed (shared: one check of a parent serves
    /// every checkpoint that depends on it).
    pub error: Arc<Error>,
}

impl RejectedCheckpoint {
    /// Checkpoint `id` at `path`, rejected for `error`.
    pub(crate) fn new(id: u64, path: PathBuf, error: Arc<Error>) -> Self {
        RejectedCheckpoint {
            id,
            path,
            reason: error.to_string(),
            error,
        }
    }
}

/// Two rejections are equal when they name the same checkpoint for the same
/// reason (the message renders every field of the typed error).
impl PartialEq for RejectedCheckpoint {
    fn eq(&self, other: &Self) -> bool {
        (self.id, &self.path, &self.reason) == (other.id, &other.path, &other.reason)
    }
}

impl Eq for RejectedCheckpoint {}

/// The outcome of looking for the latest restorable checkpoint.
#[derive(Debug, Clone, Default)]
pub struct LatestCheckpoint {
    /// The newest restorable checkpoint, if any.
    pub metadata: Option<IncrementalCheckpointMetadata>,
    /// Every newer checkpoint that was skipped, newest first.
    pub rejected: Vec<RejectedCheckpoint>,
}

/// How thoroughly a checkpoint is checked before it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Metadata verifies and every part file exists with its listed size.
    Light,
    /// Light, plus every byte of every part file verifies.
    Full,
}

/// Per-call memo of chain checks: id → metadata or the error it failed with.
pub(crate) type Memo =
    BTreeMap<u64, std::result::Result<Arc<IncrementalCheckpointMetadata>, Arc<Error>>>;

/// Read-only access to a checkpoint directory.
#[derive(Debug)]
pub struct CheckpointStore {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    /// Metadata that verified, by id, for light checks only (published metadata
    /// is never rewritten; full checks always read it again).
    metadata: Mutex<HashMap<u64, Arc<IncrementalCheckpointMetadata>>>,
    /// The keys part files are sealed with and opened with.
    sealing: Sealing,
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
            metadata: Mutex::new(HashMap::new()),
            sealing: Sealing::default(),
        }
    }

    /// The same store, reading sealed part files with `keys` (and, for a
    /// manager, sealing the part files it writes: docs/FORMAT.md §8).
    #[cfg(feature = "encryption")]
    pub fn with_encryption(mut self, keys: Arc<dyn crate::crypto::KeyProvider>) -> Self {
        self.sealing = Sealing::with_keys(keys);
        self
    }

    /// The same store with `sealing`.
    pub(crate) fn with_sealing(mut self, sealing: Sealing) -> Self {
        self.sealing = sealing;
        self
    }

    /// How part files are sealed.
    pub(crate) fn sealing(&self) -> &Sealing {
        &self.sealing
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The storage the directory is read through.
    pub(crate) fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
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
            } else if entry.name == LOCK_FILE || entry.name == super::remote::cache::CACHE_MARKER {
                // The writer's lock file, or the mark of a remote
                // location's cache: not a checkpoint.
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

    /// Verifies one part file of the checkpoint in directory `checkpoint`:
    /// size, structure and CRC32C.
    pub(crate) fn verify_part(&self, checkpoint: &Path, part: &PartMetadata) -> Result<()> {
        let path = checkpoint.join(&part.file);
        let size = self.storage.file_size(&path).ctx("stat", &path)?;
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
        let Some(expected) = part.kind.state_kind() else {
            return self.verify_arrow_file(&path, part);
        };
        let bytes = self.load_part_file(&path, part)?;
        let (kind, crc) = verify_state_file(&path, bytes.bytes())?;
        if part.sealed.is_none() && crc != part.crc32c {
            return Err(mismatch(size, crc));
        }
        expect_kind(&path, kind, expected)
    }

    /// Checks checkpoint `id` alone at `level`.
    pub(crate) fn check_one(
        &self,
        id: u64,
        level: Check,
    ) -> Result<Arc<IncrementalCheckpointMetadata>> {
        if level == Check::Full {
            return self.verify_checkpoint(id).map(Arc::new);
        }
        let path = self.checkpoint_path(id);
        let meta = self.cached_metadata(id)?;
        for part in &meta.parts {
            let file = path.join(&part.file);
            let size = self.storage.file_size(&file).ctx("stat", &file)?;
            if size != part.size {
                return Err(Error::CheckpointFileMismatch {
                    path: file,
                    expected_size: part.size,
                    actual_size: size,
                    expected_crc: part.crc32c,
                    actual_crc: 0,
                });
            }
        }
        Ok(meta)
    }

    /// The metadata of `id`, read once and then served from memory.
    fn cached_metadata(&self, id: u64) -> Result<Arc<IncrementalCheckpointMetadata>> {
        let lock = || self.metadata.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(meta) = lock().get(&id) {
            return Ok(meta.clone());
        }
        let meta = Arc::new(self.read_metadata(id)?);
        lock().insert(id, meta.clone());
        Ok(meta)
    }

    /// Forgets cached metadata of `id` (after it was deleted).
    pub(crate) fn forget(&self, id: u64) {
        self.metadata
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// Checks `id` and its whole parent chain at `level`; `Err` carries why
    /// it cannot be restored: its own error,
    /// [`Error::CheckpointChainBroken`], or
    /// [`Error::CheckpointParentUnrestorable`] naming the ancestor that fails.
    pub(crate) fn check_chain(
        &self,
        id: u64,
        level: Check,
        memo: &mut Memo,
    ) -> std::result::Result<Arc<IncrementalCheckpointMetadata>, Arc<Error>> {
        let mut chain = self.check_chain_members(id, level, memo)?;
        Ok(chain.swap_remove(0))
    }

    /// [`check_chain`](Self::check_chain), returning every checkpoint of the
    /// chain, newest (`id`) first.
    pub(crate) fn check_chain_members(
        &self,
        id: u64,
        level: Check,
        memo: &mut Memo,
    ) -> std::result::Result<Vec<Arc<IncrementalCheckpointMetadata>>, Arc<Error>> {
        let mut at = Some(id);
        let mut chain: Vec<Arc<IncrementalCheckpointMetadata>> = Vec::new();
        while let Some(current) = at {
            let status = memo
                .entry(current)
                .or_insert_with(|| self.check_one(current, level).map_err(Arc::new))
                .clone();
            match status {
                Ok(meta) => {
                    if let Some(child) = chain.last() {
                        links_to(child, &meta).map_err(|p| Arc::new(self.chain_broken(p)))?;
                    }
                    at = meta.parent_id;
                    chain.push(meta);
                }
                Err(error) if current == id => return Err(error),
                Err(error) => {
                    return Err(Arc::new(Error::CheckpointParentUnrestorable {
                        path: self.checkpoint_path(id),
                        id,
                        parent: current,
                        source: error,
                    }))
                }
            }
        }
        chain_resolves(&chain).map_err(|p| Arc::new(self.chain_broken(p)))?;
        if chain.is_empty() {
            return Err(Arc::new(Error::CheckpointNotFound {
                dir: self.dir.clone(),
                id,
            }));
        }
        Ok(chain)
    }

    /// The error for `problem`, naming its checkpoint's directory.
    pub(crate) fn chain_broken(&self, problem: ChainProblem) -> Error {
        Error::CheckpointChainBroken {
            path: self.checkpoint_path(problem.checkpoint_id()),
            problem,
        }
    }

    /// The chain of `id` (newest first) after one light check of all of it:
    /// the walks below read their parents from it instead of checking each
    /// parent's chain again (one stat per part file of the chain per call,
    /// not one per level).
    fn chain_members(&self, id: u64) -> Result<Vec<Arc<IncrementalCheckpointMetadata>>> {
        self.check_chain_members(id, Check::Light, &mut Memo::new())
            .map_err(|error| {
                tracing::warn!(checkpoint = id, %error, "checkpoint is not restorable");
                Error::CheckpointNotFound {
                    dir: self.dir.clone(),
                    id,
                }
            })
    }

    /// Names of every part of checkpoint `id`, including parts carried over from
    /// its parents.
    ///
    /// # Errors
    /// `CheckpointNotFound` when `id` or an ancestor is not restorable.
    pub fn part_names(&self, id: u64) -> Result<Vec<String>> {
        Ok(self
            .parts_of(id)?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// Every part of checkpoint `id` (carried-over ones included) with the kind
    /// of its newest file, from one walk down the chain.
    pub(crate) fn parts_of(&self, id: u64) -> Result<Vec<(String, PartKind)>> {
        let mut parts: Vec<(String, PartKind)> = Vec::new();
        for meta in self.chain_members(id)? {
            for part in &meta.parts {
                if !parts.iter().any(|(name, _)| *name == part.name) {
                    parts.push((part.name.clone(), part.kind));
                }
            }
            if !(meta.is_delta() && meta.parent_id.is_some()) {
                break;
            }
        }
        Ok(parts)
    }

    /// Whether checkpoint `id` and its chain verify completely (reads every file).
    pub fn is_restorable(&self, id: u64) -> bool {
        self.check_chain(id, Check::Full, &mut Memo::new()).is_ok()
    }

    /// The newest restorable checkpoint, and every newer one that was skipped.
    /// Each skipped one is logged as a warning.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed; `KeyUnavailable` or
    /// `KeyMismatch` ([`Error::is_key_problem`]) when a sealed checkpoint
    /// cannot be opened with the keys given (older ones are not tried).
    pub fn find_latest(&self) -> Result<LatestCheckpoint> {
        let mut out = LatestCheckpoint::default();
        let mut memo = Memo::new();
        for id in self.checkpoint_ids()?.into_iter().rev() {
            match self.check_chain(id, Check::Full, &mut memo) {
                Ok(meta) => {
                    out.metadata = Some((*meta).clone());
                    break;
                }
                // Without its key no sealed checkpoint reads, older ones
                // included: skipping to one would be a guess, not a fallback.
                Err(error) if error.is_key_problem() => return Err(error.key_problem_copy()),
                Err(error) => {
                    let path = self.checkpoint_path(id);
                    tracing::warn!(checkpoint = id, path = %path.display(), %error, "skipping checkpoint that is not restorable");
                    out.rejected.push(RejectedCheckpoint::new(id, path, error));
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
    pub fn list_checkpoints(&self) -> Result<Vec<IncrementalCheckpointMetadata>> {
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
    /// `CheckpointNotFound` when `id` is not restorable, `PartNotFound` when it
    /// has no such part.
    pub fn resolve_part(&self, id: u64, name: &str) -> Result<Vec<(PathBuf, PartMetadata)>> {
        self.find_part(id, name)?
            .ok_or_else(|| self.part_not_found(id, name))
    }

    /// [`resolve_part`](Self::resolve_part), with `None` for a part the
    /// checkpoint does not have.
    pub(crate) fn find_part(
        &self,
        id: u64,
        name: &str,
    ) -> Result<Option<Vec<(PathBuf, PartMetadata)>>> {
        let chain = self.chain_members(id)?;
        Ok(
            part_layers(chain.iter().map(|m| m.as_ref()), name).map(|layers| {
                layers
                    .into_iter()
                    .map(|(meta, part)| {
                        let path = meta.checkpoint_path(&self.dir).join(&part.file);
                        (path, part.clone())
                    })
                    .collect()
            }),
        )
    }

    /// [`Error::PartNotFound`] for part `name` of checkpoint `id`.
    pub(crate) fn part_not_found(&self, id: u64, name: &str) -> Error {
        Error::PartNotFound {
            path: self.dir.clone(),
            checkpoint_id: id,
            part: name.to_string(),
        }
    }
}

/// The layers of part `name` in `chain` (a checkpoint and its ancestors,
/// newest first), newest first: the checkpoints that mention the part, down
/// to the one holding its snapshot or blob. `None` when the chain does not
/// have the part (a full checkpoint without it ends the search; a delta
/// that does not mention a part carries it over from its parent).
pub(crate) fn part_layers<'a>(
    chain: impl IntoIterator<Item = &'a IncrementalCheckpointMetadata>,
    name: &str,
) -> Option<Vec<(&'a IncrementalCheckpointMetadata, &'a PartMetadata)>> {
    let mut layers = Vec::new();
    for meta in chain {
        match meta.part(name) {
            Some(part) => {
                layers.push((meta, part));
                if !part.kind.is_delta() {
                    return Some(layers);
                }
            }
            None if meta.kind == CheckpointKind::Full => break,
            None => {}
        }
        if meta.parent_id.is_none() {
            break;
        }
    }
    None
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
        .ctx("open", &path)?;
    let len = file.len().ctx("stat", &path)?;
    if len > MAX_METADATA_LEN {
        return Err(Error::CheckpointCorrupted {
            path,
            offset: None,
            reason: format!(
                "metadata is {len} bytes, larger than the {MAX_METADATA_LEN}-byte limit"
            ),
        });
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0).ctx("read", &path)?;
    metadata::decode(&path, &bytes, id)
}
