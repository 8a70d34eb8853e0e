//! Atomic publication and deletion of checkpoint directories (the publish order
//! and its crash analysis are in `docs/FORMAT.md` §3).
//!
//! Invariants:
//! - A directory named `checkpoint-<id>` only ever appears by a rename of a
//!   temporary directory whose files and entries were all fsynced first, so a
//!   visible checkpoint is complete unless its bytes were damaged later.
//! - `publish` returns only after the parent directory was fsynced: the rename
//!   is durable when the caller learns of the checkpoint.
//! - Deletion removes `metadata.json` first, so a half-deleted checkpoint is
//!   never mistaken for a valid one.

use super::metadata::{checkpoint_dir_name, METADATA_FILE};
use crate::error::{Error, Result};
use crate::storage::{OpenMode, Storage};
use std::path::{Path, PathBuf};

/// Prefix of temporary checkpoint directories.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

fn io<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> Error + 'p {
    move |e| Error::io(op, path, e)
}

/// Writes `bytes` to a new file and fsyncs it.
pub(crate) fn write_file_durably(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<()> {
    let file = storage
        .open_file(path, OpenMode::CreateNew)
        .map_err(io("create", path))?;
    file.write_all_at(bytes, 0).map_err(io("write", path))?;
    file.sync_all().map_err(io("sync", path))
}

/// Publishes checkpoint `id` in `dir`: `files` (name, bytes) and then
/// `metadata` into a temporary directory, each fsynced, the directory fsynced,
/// renamed into place, and `dir` fsynced. Returns the checkpoint's path.
///
/// # Errors
/// `Io` naming the step's file; `InvalidArgument` if the checkpoint already
/// exists. After an error nothing is visible under the final name.
pub(crate) fn publish(
    storage: &dyn Storage,
    dir: &Path,
    id: u64,
    files: &[(String, &[u8])],
    metadata: &[u8],
) -> Result<PathBuf> {
    let name = checkpoint_dir_name(id);
    let tmp = dir.join(format!("{TMP_PREFIX}{name}"));
    let target = dir.join(&name);
    if storage.exists(&target).map_err(io("stat", &target))? {
        return Err(Error::InvalidArgument(format!(
            "checkpoint {} already exists",
            target.display()
        )));
    }
    if storage.exists(&tmp).map_err(io("stat", &tmp))? {
        storage.remove_dir_all(&tmp).map_err(io("remove", &tmp))?;
    }
    storage
        .create_dir_all(&tmp)
        .map_err(io("create directory", &tmp))?;
    for (file_name, bytes) in files {
        write_file_durably(storage, &tmp.join(file_name), bytes)?;
    }
    write_file_durably(storage, &tmp.join(METADATA_FILE), metadata)?;
    storage.sync_dir(&tmp).map_err(io("sync directory", &tmp))?;
    storage.rename(&tmp, &target).map_err(io("rename", &tmp))?;
    storage.sync_dir(dir).map_err(io("sync directory", dir))?;
    Ok(target)
}

/// Deletes a checkpoint directory: its metadata first, then the rest. The caller
/// fsyncs `dir` afterwards (once for a batch of deletions).
///
/// # Errors
/// `Io` naming the file or directory that could not be removed.
pub(crate) fn remove_checkpoint_dir(storage: &dyn Storage, path: &Path) -> Result<()> {
    let meta = path.join(METADATA_FILE);
    match storage.remove_file(&meta) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove", meta, e)),
    }
    storage.remove_dir_all(path).map_err(io("remove", path))
}
