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
use crate::error::IoContext;
use crate::error::{Error, Result};
use crate::storage::{OpenMode, Storage};
use std::path::{Path, PathBuf};

/// Prefix of temporary checkpoint directories.
pub(crate) const TMP_PREFIX: &str = ".tmp-";
/// The lock file a writer ([`IncrementalCheckpointManager`](super::IncrementalCheckpointManager))
/// holds in the checkpoint directory; readers neither take it nor list it.
pub const LOCK_FILE: &str = ".lock";

/// Writes `bytes` to a new file and fsyncs it.
pub(crate) fn write_file_durably(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<()> {
    let file = storage
        .open_file(path, OpenMode::CreateNew)
        .ctx("create", path)?;
    file.write_all_at(bytes, 0).ctx("write", path)?;
    file.sync_all().ctx("sync", path)
}

/// Publishes checkpoint `id` in `dir`: `write_parts` writes (and fsyncs) the
/// part files into the temporary directory it is given and returns the bytes of
/// `metadata.json` (plus a value passed through); the metadata is written and
/// fsynced last, the directory fsynced, renamed into place, and `dir` fsynced.
///
/// # Errors
/// `Io` naming the step's file; `CheckpointExists` if the checkpoint already
/// exists; any error of `write_parts`. After an error nothing is visible under
/// the final name (the temporary directory is removed when possible, else by the
/// next manager that opens `dir`; a checkpoint whose final directory fsync
/// failed is withdrawn). Whether a crash after an error leaves the checkpoint on
/// disk is unknown when the error came from that last fsync: it is then
/// complete and valid, and recovery may use it.
pub(crate) fn publish<T>(
    storage: &dyn Storage,
    dir: &Path,
    id: u64,
    write_parts: impl FnOnce(&Path) -> Result<(Vec<u8>, T)>,
) -> Result<(PathBuf, T)> {
    let name = checkpoint_dir_name(id);
    let tmp = dir.join(format!("{TMP_PREFIX}{name}"));
    let target = dir.join(&name);
    if storage.exists(&target).ctx("stat", &target)? {
        return Err(Error::CheckpointExists { path: target, id });
    }
    if storage.exists(&tmp).ctx("stat", &tmp)? {
        storage.remove_dir_all(&tmp).ctx("remove", &tmp)?;
    }
    storage.create_dir_all(&tmp).ctx("create directory", &tmp)?;
    let staged = write_parts(&tmp).and_then(|(metadata, out)| {
        write_file_durably(storage, &tmp.join(METADATA_FILE), &metadata)?;
        storage.sync_dir(&tmp).ctx("sync directory", &tmp)?;
        Ok(out)
    });
    let out = match staged {
        Ok(out) => out,
        Err(e) => {
            if let Err(cleanup) = storage.remove_dir_all(&tmp) {
                tracing::debug!(path = %tmp.display(), error = %cleanup, "could not remove an unpublished checkpoint; the next open removes it");
            }
            return Err(e);
        }
    };
    storage.rename(&tmp, &target).ctx("rename", &tmp)?;
    if let Err(e) = storage.sync_dir(dir) {
        // The rename's durability is unknown. Take the checkpoint back out of
        // sight so that the live directory agrees with the error; a crash may
        // still leave it (complete and valid) on disk, like a WAL record whose
        // fsync failed.
        if let Err(cleanup) = remove_checkpoint_dir(storage, &target) {
            tracing::warn!(path = %target.display(), error = %cleanup, "could not withdraw a checkpoint whose directory fsync failed");
        }
        return Err(Error::io("sync directory", dir, e));
    }
    Ok((target, out))
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
    storage.remove_dir_all(path).ctx("remove", path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn publishing_over_a_checkpoint_is_checkpoint_exists() {
        let dir = tempfile::tempdir().unwrap();
        let m = crate::IncrementalCheckpointManager::new(crate::CheckpointConfig::new(dir.path()))
            .unwrap();
        let meta = m
            .create_checkpoint_with_state(
                0,
                std::collections::HashMap::new(),
                None,
                &crate::StateSnapshot::new(vec![(b"a".to_vec(), b"1".to_vec())])
                    .to_bytes()
                    .unwrap(),
            )
            .unwrap();
        let storage = crate::storage::default_storage();
        let again = super::publish::<()>(storage.as_ref(), dir.path(), meta.id, |_| {
            panic!("nothing is written over a published checkpoint")
        });
        match again {
            Err(crate::Error::CheckpointExists { id, path }) => {
                assert_eq!(id, meta.id);
                assert_eq!(path, m.store().checkpoint_path(meta.id));
            }
            other => panic!("expected CheckpointExists, got {:?}", other.map(|_| ())),
        }
    }
}
