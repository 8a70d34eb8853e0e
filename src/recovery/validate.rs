//! [`validate_checkpoint`]: complete verification of one checkpoint directory.

use crate::checkpoint::{
    parse_checkpoint_dir_name, Check, CheckpointStore, IncrementalCheckpointMetadata, Memo,
};
use crate::error::{Error, Result};
use crate::storage::{default_storage, Storage};
use std::path::Path;
use std::sync::Arc;

/// Verifies the checkpoint directory `checkpoint_path` (a `checkpoint-<id>`
/// directory inside a checkpoint directory) completely: its metadata, the size
/// and every checksum of every file it lists, and its delta chain in the
/// sibling directories. Returns its metadata.
///
/// # Errors
/// [`Error::InvalidArgument`] when the path is not named like a checkpoint
/// directory; the first problem found, as a typed error naming the file
/// (`CheckpointCorrupted`, `CheckpointFileMismatch`, `StateChecksumMismatch`,
/// `UnsupportedVersion`, `Io` for a missing file, ...); when its chain does
/// not verify, `CheckpointChainBroken` (its metadata does not fit its
/// parent's) or `CheckpointParentUnrestorable` (naming the ancestor that
/// fails and why).
pub fn validate_checkpoint(
    checkpoint_path: impl AsRef<Path>,
) -> Result<IncrementalCheckpointMetadata> {
    validate_checkpoint_with(default_storage(), checkpoint_path.as_ref())
}

/// [`validate_checkpoint`] through `storage`.
///
/// # Errors
/// As [`validate_checkpoint`].
pub fn validate_checkpoint_with(
    storage: Arc<dyn Storage>,
    checkpoint_path: &Path,
) -> Result<IncrementalCheckpointMetadata> {
    let id = checkpoint_path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_checkpoint_dir_name)
        .ok_or_else(|| {
            Error::invalid_argument(
                "validate_checkpoint",
                format!(
                    "{} is not a checkpoint directory (named checkpoint-<20 digits>)",
                    checkpoint_path.display()
                ),
            )
        })?;
    let parent = checkpoint_path.parent().unwrap_or(Path::new("."));
    let store = CheckpointStore::with_storage(storage, parent);
    // Its own files first, read once: a checkpoint without a parent is done.
    let meta = store.verify_checkpoint(id)?;
    if meta.parent_id.is_none() {
        return Ok(meta);
    }
    // Then the chain below it, its links and parts; its own files, verified
    // above, are not read again (the memo holds their result).
    let mut memo = Memo::new();
    memo.insert(id, Ok(Arc::new(meta.clone())));
    let checked = store.check_chain(id, Check::Full, &mut memo);
    // With the memo gone, the error is this call's alone.
    drop(memo);
    checked.map_err(|e| {
        Arc::try_unwrap(e).unwrap_or_else(|shared| Error::CheckpointCorrupted {
            path: checkpoint_path.to_path_buf(),
            offset: None,
            reason: shared.to_string(),
        })
    })?;
    Ok(meta)
}
