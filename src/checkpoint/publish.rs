//! Atomic publication and deletion of checkpoint directories (the publish order
//! and its crash analysis are in `docs/FORMAT.md` §3).
//!
//! Invariants:
//! - A directory named `checkpoint-<id>` only ever appears by a rename of a
//!   temporary directory whose files and entries were all fsynced first, so a
//!   visible checkpoint is complete unless its bytes were damaged later. The
//!   order of the writes and fsyncs inside the temporary directory does not
//!   matter (nothing reads it; a crash leaves a leftover that the next
//!   manager removes), so its files and entries are fsynced together (in
//!   batches of [`MAX_UNSYNCED_OPEN`] files as they are written, the last
//!   batch with the directory after the metadata), all of them before the
//!   rename.
//! - `publish` returns only after the parent directory was fsynced: the rename
//!   is durable when the caller learns of the checkpoint.
//! - Deletion removes `metadata.json` first, so a half-deleted checkpoint is
//!   never mistaken for a valid one.

use super::metadata::{checkpoint_dir_name, METADATA_FILE};
use crate::error::IoContext;
use crate::error::{Error, Result};
use crate::storage::{OpenMode, Storage, StorageFile, WriteBehind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Prefix of temporary checkpoint directories.
pub(crate) const TMP_PREFIX: &str = ".tmp-";
/// The lock file a writer ([`IncrementalCheckpointManager`](super::IncrementalCheckpointManager))
/// holds in the checkpoint directory; readers neither take it nor list it.
pub const LOCK_FILE: &str = ".lock";

/// A file written into a checkpoint's temporary directory, not yet fsynced:
/// [`publish`] fsyncs it (with the others and the directory) before the
/// rename.
#[derive(Debug)]
pub(crate) struct Unsynced {
    pub path: PathBuf,
    pub file: Arc<dyn StorageFile>,
}

/// Creates `path` and writes `bytes` into it with write-behind (the
/// write-back of every few MiB is started as it goes; nothing is durable
/// until the file is synced).
///
/// # Errors
/// `Io` naming the file.
pub(crate) fn write_file(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> Result<Unsynced> {
    let file = storage
        .open_file(path, OpenMode::CreateNew)
        .ctx("create", path)?;
    WriteBehind::new(file.as_ref())
        .write_all(bytes)
        .ctx("write", path)?;
    Ok(Unsynced {
        path: path.to_path_buf(),
        file,
    })
}

/// The most files of a checkpoint held open, unsynced, at once (and so the
/// most sync threads): a checkpoint of many parts fsyncs them in batches of
/// this many while it writes, so it needs a bounded number of descriptors.
pub(crate) const MAX_UNSYNCED_OPEN: usize = 16;

/// The files written into a checkpoint's temporary directory and not yet
/// fsynced, at most [`MAX_UNSYNCED_OPEN`] of them: [`push`](Self::push)ing
/// one more fsyncs the batch (together) and closes it. [`publish`] fsyncs the
/// rest with the directory before the rename, so every file is fsynced,
/// once, before the checkpoint becomes visible.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    files: Vec<Unsynced>,
}

impl Staged {
    /// Adds `file`; when the batch is full, fsyncs it together and closes it.
    ///
    /// # Errors
    /// `Io` naming the first file of the batch whose sync failed.
    pub(crate) fn push(&mut self, file: Unsynced) -> Result<()> {
        self.files.push(file);
        if self.files.len() >= MAX_UNSYNCED_OPEN {
            sync_files(&std::mem::take(&mut self.files), || Ok(()))?;
        }
        Ok(())
    }
}

/// Fsyncs every file of `files`, each once, all at the same time (one thread
/// each; fsyncs of different files may overlap, of one file never), while
/// this thread runs `also` (the directory's fsync), and waits for all of
/// them. A failed sync is never retried.
///
/// # Errors
/// `Io` naming the first file (in `files` order) whose sync failed, else
/// `also`'s error.
fn sync_files(files: &[Unsynced], also: impl FnOnce() -> Result<()>) -> Result<()> {
    let sync = |f: &Unsynced| f.file.sync_all().ctx("sync", &f.path);
    std::thread::scope(|scope| {
        // A thread that cannot be started leaves its file to this thread.
        let syncs: Vec<_> = files
            .iter()
            .map(|f| {
                std::thread::Builder::new()
                    .name("highwater-sync".into())
                    .spawn_scoped(scope, move || sync(f))
                    .map_err(|_| f)
            })
            .collect();
        let also_done = also();
        let mut first_error = None;
        for pending in syncs {
            let synced = match pending {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(f) => sync(f),
            };
            if let Err(e) = synced {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => also_done,
        }
    })
}

/// Publishes checkpoint `id` in `dir`: `write_parts` writes the part files
/// into the temporary directory it is given (unsynced, see [`write_file`])
/// and returns them with the bytes of `metadata.json` (plus a value passed
/// through); the metadata is written last, then every file and the
/// directory are fsynced together, the directory renamed into place, and
/// `dir` fsynced.
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
    write_parts: impl FnOnce(&Path, &mut Staged) -> Result<(Vec<u8>, T)>,
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
    let mut files = Staged::default();
    let staged = write_parts(&tmp, &mut files).and_then(|(metadata, out)| {
        let mut rest = std::mem::take(&mut files.files);
        rest.push(write_file(storage, &tmp.join(METADATA_FILE), &metadata)?);
        sync_files(&rest, || storage.sync_dir(&tmp).ctx("sync directory", &tmp))?;
        Ok(out)
    });
    // Closed (and their descriptors freed) before the directory is renamed
    // or removed.
    drop(files);
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
        let again = super::publish::<()>(storage.as_ref(), dir.path(), meta.id, |_, _| {
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
