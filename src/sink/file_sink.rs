//! [`FileSink`]: an exactly-once file sink. Each epoch's output is staged in
//! a hidden file and published by an atomic rename (docs/FORMAT.md §4).
//!
//! Invariants:
//! - Readers see only `epoch-<E>.out` files, each complete: a staged file is
//!   renamed into place whole, in the directory it was written in, and only
//!   after `pre_commit` made its bytes and its directory entry durable.
//! - A commit publishes exactly the bytes the handle names (the staged file's
//!   length and CRC32C are checked) or fails; committing again finds the
//!   published file, checks it, and makes it durable by publishing it again
//!   through a fresh change (never by retrying a directory fsync that may
//!   have failed: `republish.rs`); it publishes nothing twice.
//! - Nothing is published for an epoch without output.
//! - One process at a time owns the directory (a lock file).

use super::file_sink_dir::{committed_file_name, scan, staged_file_name, FileSinkContents, Scan};
use super::republish::{republish, republish_file_name, Expected, Names};
use super::stage::Stage;
use super::transactional::{SinkOwner, TransactionalSink};
use crate::error::IoContext;
use crate::error::{Error, Result};
use crate::recovery::SinkError;
use crate::sealing::{SealKind, Sealing};
use crate::storage::{
    create_dir_all_durable, default_storage, load_file, lock_exclusive, MappedFile, OpenMode,
    Storage, StorageLock,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The first bytes of a [`FileSink`] transaction handle.
const HANDLE_MAGIC: [u8; 4] = *b"HWF1";
/// Magic, epoch, length, CRC32C.
const HANDLE_LEN: usize = 4 + 8 + 8 + 4;
const LOCK_FILE: &str = ".lock";

/// What a handle names: the epoch's output length and checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Handle {
    epoch: u64,
    len: u64,
    crc32c: u32,
}

impl Handle {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HANDLE_LEN);
        out.extend_from_slice(&HANDLE_MAGIC);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.crc32c.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Handle> {
        if bytes.len() != HANDLE_LEN || bytes[..4] != HANDLE_MAGIC {
            return None;
        }
        let u64_at =
            |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
        Some(Handle {
            epoch: u64_at(4),
            len: u64_at(12),
            crc32c: u32::from_le_bytes(bytes[20..24].try_into().unwrap_or_default()),
        })
    }
}

/// An exactly-once file sink: a directory holding one published file per
/// epoch with output, `epoch-<E:020>.out`, in epoch order.
///
/// Bytes written during an epoch go to a hidden staged file
/// (`.epoch-<E:020>.staged`), made durable at pre-commit and renamed into
/// place at commit. Readers list `*.out` files and never see partial output.
/// With `with_encryption` (the `encryption`
/// feature) every staged and published file is sealed (docs/FORMAT.md §4
/// "Sealed output").
///
/// ```
/// use highwater::{CheckpointConfig, CheckpointRequest, FileSink, IncrementalCheckpointManager, SinkCoordinator};
/// # fn main() -> highwater::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let mut sink = FileSink::open(dir.path().join("out"), "counts")?;
/// let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path().join("ckpt")))?;
/// let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink])?;
/// sink.write(b"a 1\n")?;
/// coordinator.checkpoint(CheckpointRequest::new(0), &mut [&mut sink])?;
/// assert_eq!(sink.read_committed()?, b"a 1\n");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FileSink {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    name: String,
    _lock: Box<dyn StorageLock>,
    /// The epoch output belongs to; `None` before `begin` (until recovery).
    epoch: Option<u64>,
    stage: Option<Stage>,
    /// A write failed: the staged file's contents are unknown until recovery
    /// aborts it.
    failed: bool,
    /// The coordinator driving the sink.
    owner: Option<SinkOwner>,
    /// Whether output files are sealed.
    sealing: Sealing,
}

impl FileSink {
    /// Opens (creating if missing) the sink's directory on the real file
    /// system and takes its lock. Call
    /// [`SinkCoordinator::recover`](super::SinkCoordinator::recover) before
    /// writing.
    ///
    /// # Errors
    /// `Io` when the directory cannot be created; `Locked` when another
    /// process owns it.
    pub fn open(dir: impl AsRef<Path>, name: impl Into<String>) -> Result<Self> {
        Self::open_with(default_storage(), dir, name)
    }

    /// [`open`](Self::open) through `storage`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(
        storage: Arc<dyn Storage>,
        dir: impl AsRef<Path>,
        name: impl Into<String>,
    ) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        create_dir_all_durable(storage.as_ref(), &dir)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = lock_exclusive(storage.as_ref(), &lock_path)?;
        Ok(FileSink {
            storage,
            dir,
            name: name.into(),
            _lock: lock,
            epoch: None,
            stage: None,
            failed: false,
            owner: None,
            sealing: Sealing::default(),
        })
    }

    /// Seals every output file staged from now on with `keys`' current key
    /// (the `encryption` feature; docs/FORMAT.md §4 "Sealed output"), and
    /// opens sealed published output with them in
    /// [`read_committed`](Self::read_committed). The handles then record
    /// the sealed files' lengths and CRC32Cs. Output published before stays
    /// readable. Default: plaintext.
    #[cfg(feature = "encryption")]
    pub fn with_encryption(mut self, keys: Arc<dyn crate::crypto::KeyProvider>) -> Self {
        self.sealing = Sealing::with_keys(keys);
        self
    }

    /// The sink's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `bytes` to the current epoch's staged output (nothing is staged
    /// for an empty slice).
    ///
    /// # Errors
    /// `InvalidArgument` before the sink was recovered (no epoch begun); `Io`
    /// when the staged file cannot be created or written; with
    /// `with_encryption`, the key provider's errors
    /// when the staged file is created.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(epoch) = self.epoch else {
            return Err(Error::invalid_argument(
                "FileSink::write",
                format!(
                "file sink {:?} has no epoch begun: recover it with SinkCoordinator::recover first",
                self.name
            ),
            ));
        };
        if bytes.is_empty() {
            return Ok(());
        }
        let written = self.append(epoch, bytes);
        // After any failure the staged output is unknown: the epoch must not
        // be pre-committed as if the bytes were there.
        self.failed |= written.is_err();
        written
    }

    /// Appends to the epoch's staged file, creating it first if needed.
    fn append(&mut self, epoch: u64, bytes: &[u8]) -> Result<()> {
        if self.stage.is_none() {
            let path = self.dir.join(staged_file_name(epoch));
            let stage = Stage::create(self.storage.as_ref(), &path, &self.sealing)?;
            self.stage = Some(stage);
        }
        let stage = self.stage.as_mut().expect("stage was just opened");
        stage.append(bytes)
    }

    /// What the sink directory `dir` holds — published and staged epochs with
    /// their sizes — read without taking its lock (beside a running job; the
    /// answer can be stale). For inspection (`highwater sink ls`).
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed or a file's size read.
    pub fn contents(dir: impl AsRef<Path>) -> Result<FileSinkContents> {
        super::file_sink_dir::contents(dir.as_ref())
    }

    /// The epochs with published output, in order.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed.
    pub fn committed_epochs(&self) -> Result<Vec<u64>> {
        Ok(self.scan()?.committed)
    }

    /// Every published file's bytes, concatenated in epoch order; sealed
    /// files opened with the keys of
    /// `with_encryption`.
    ///
    /// # Errors
    /// `Io` when a file cannot be read. For a sealed file: `KeyUnavailable`
    /// naming the file and its key id when the sink has no keys (or the
    /// build has no `encryption` feature); `KeyMismatch` for a key of that
    /// id that is not the one it was sealed with; `AuthenticationFailed` or
    /// `StateCorrupted` for a damaged one.
    pub fn read_committed(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for epoch in self.committed_epochs()? {
            let path = self.dir.join(committed_file_name(epoch));
            let file = load_file(self.storage.as_ref(), &path).ctx("read", &path)?;
            let file = self.sealing.open_by_magic(&path, SealKind::Sink, file)?;
            out.extend_from_slice(file.bytes());
        }
        Ok(out)
    }

    /// Published and staged epochs in the directory, sorted.
    fn scan(&self) -> Result<Scan> {
        scan(self.storage.as_ref(), &self.dir)
    }

    fn sync_dir(&self) -> Result<()> {
        self.storage
            .sync_dir(&self.dir)
            .ctx("sync directory", &self.dir)
    }

    fn commit_handle(&mut self, epoch: u64, handle: &[u8]) -> Result<()> {
        let invalid = |path: &Path, reason: String| Error::SinkTransactionInvalid {
            path: path.to_path_buf(),
            epoch,
            reason,
        };
        let handle = match Handle::decode(handle) {
            Some(h) if h.epoch == epoch => h,
            Some(h) => {
                return Err(invalid(
                    &self.dir,
                    format!("the handle is for epoch {}", h.epoch),
                ))
            }
            None => {
                return Err(invalid(
                    &self.dir,
                    format!("not a file sink handle ({} bytes)", handle.len()),
                ))
            }
        };
        if handle.len == 0 {
            return Ok(()); // nothing was written in the epoch
        }
        let committed = self.dir.join(committed_file_name(epoch));
        let staged = self.dir.join(staged_file_name(epoch));
        let exists = |path: &Path| self.storage.exists(path).ctx("stat", path);
        // The file's length must be the handle's.
        let check_len = |path: &Path, what: &str| {
            let size = self.storage.file_size(path).ctx("stat", path)?;
            if size != handle.len {
                return Err(invalid(
                    path,
                    format!(
                        "{what} file holds {size} bytes, the handle says {}",
                        handle.len
                    ),
                ));
            }
            Ok(())
        };
        if exists(&committed)? {
            // Committed before, perhaps just before a crash, or by a commit
            // whose directory fsync failed: the rename may not be durable, and
            // fsyncing the directory again would not make it so. Publish it
            // again by a fresh change (republish.rs), since the caller forgets
            // the transaction once this returns.
            check_len(&committed, "published")?;
            let names = Names {
                published: &committed,
                staged: &staged,
                copy: &self.dir.join(republish_file_name(epoch)),
            };
            let expected = Expected {
                len: handle.len,
                crc32c: handle.crc32c,
            };
            republish(self.storage.as_ref(), &self.dir, names, epoch, expected)?;
            tracing::info!(sink = %self.name, epoch, "published epoch found again and republished");
            return Ok(());
        }
        if !exists(&staged)? {
            return Err(invalid(
                &staged,
                "the epoch's output is neither staged nor published".into(),
            ));
        }
        check_len(&staged, "staged")?;
        let actual = file_crc32c(self.storage.as_ref(), &staged)?;
        if actual != handle.crc32c {
            return Err(invalid(
                &staged,
                format!(
                    "staged file's CRC32C is {actual:#010x}, the handle says {:#010x}",
                    handle.crc32c
                ),
            ));
        }
        self.storage
            .rename(&staged, &committed)
            .ctx("rename", &staged)?;
        self.sync_dir()?;
        tracing::debug!(sink = %self.name, epoch, bytes = handle.len, "epoch published");
        Ok(())
    }

    fn pre_commit_epoch(&mut self, epoch: u64) -> Result<Vec<u8>> {
        if self.epoch != Some(epoch) {
            return Err(Error::invalid_argument(
                "FileSink::pre_commit",
                format!(
                    "file sink {:?} is in epoch {:?}, asked to pre-commit epoch {epoch}",
                    self.name, self.epoch
                ),
            ));
        }
        if self.failed {
            return Err(Error::invalid_argument(
                "FileSink::pre_commit",
                format!(
                    "file sink {:?}: a write of epoch {epoch} failed; recover before committing it",
                    self.name
                ),
            ));
        }
        let handle = match self.stage.take() {
            None => Handle {
                epoch,
                len: 0,
                crc32c: 0,
            },
            Some(stage) => {
                let (len, crc32c) = stage.finish()?;
                self.sync_dir()?;
                Handle { epoch, len, crc32c }
            }
        };
        self.epoch = None;
        Ok(handle.encode())
    }

    fn abort_epochs_after(&mut self, epoch: u64) -> Result<()> {
        self.stage = None;
        self.epoch = None;
        self.failed = false;
        let scan = self.scan()?;
        if let Some(&later) = scan.committed.iter().find(|&&e| e > epoch) {
            return Err(Error::SinkAheadOfCheckpoint {
                path: self.dir.join(committed_file_name(later)),
                committed_epoch: later,
                restored_epoch: epoch,
            });
        }
        let mut removed = 0;
        if let Some(&orphan) = scan.staged.iter().find(|&&e| e <= epoch) {
            // Every transaction the restored checkpoint owes was committed just
            // before, so this output is owed but no checkpoint names it.
            return Err(Error::SinkTransactionInvalid {
                path: self.dir.join(staged_file_name(orphan)),
                epoch: orphan,
                reason: format!(
                    "output staged for epoch {orphan}, which the restored checkpoint (epoch {epoch}) covers, but no transaction of it names it"
                ),
            });
        }
        let leftovers = scan.leftovers.iter().map(|name| self.dir.join(name));
        for path in scan
            .staged
            .iter()
            .map(|&staged| self.dir.join(staged_file_name(staged)))
            .chain(leftovers)
        {
            self.storage.remove_file(&path).ctx("remove", &path)?;
            removed += 1;
        }
        if removed > 0 {
            self.sync_dir()?;
            tracing::info!(sink = %self.name, after_epoch = epoch, removed, "aborted staged output of unfinished epochs");
        }
        Ok(())
    }
}

/// The CRC32C of a whole file, read in bounded chunks.
fn file_crc32c(storage: &dyn Storage, path: &Path) -> Result<u32> {
    let file = storage.open_file(path, OpenMode::Read).ctx("open", path)?;
    let mut buf = vec![0; 1 << 20];
    let (mut crc, mut offset) = (0, 0u64);
    loop {
        let n = file.read_at(&mut buf, offset).ctx("read", path)?;
        if n == 0 {
            return Ok(crc);
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        offset += n as u64;
    }
}

impl TransactionalSink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn begin(&mut self, epoch: u64) -> std::result::Result<(), SinkError> {
        if let Some(stage) = &self.stage {
            return Err(Error::invalid_argument(
                "FileSink::begin",
                format!(
                    "file sink {:?} still stages {}",
                    self.name,
                    stage.path.display()
                ),
            )
            .into());
        }
        self.epoch = Some(epoch);
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> std::result::Result<Vec<u8>, SinkError> {
        Ok(self.pre_commit_epoch(epoch)?)
    }

    fn commit(&mut self, epoch: u64, handle: &[u8]) -> std::result::Result<(), SinkError> {
        Ok(self.commit_handle(epoch, handle)?)
    }

    fn attach(&mut self, owner: &SinkOwner) -> std::result::Result<(), SinkError> {
        if let Some(current) = &self.owner {
            if current.is_alive() && !current.is(owner) {
                return Err(Box::new(Error::SinkInUse {
                    sink: self.name.clone(),
                }));
            }
        }
        self.owner = Some(owner.clone());
        Ok(())
    }

    fn abort_after(&mut self, epoch: u64) -> std::result::Result<(), SinkError> {
        Ok(self.abort_epochs_after(epoch)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip() {
        let h = Handle {
            epoch: 3,
            len: 99,
            crc32c: 0xdead_beef,
        };
        assert_eq!(Handle::decode(&h.encode()), Some(h));
        assert_eq!(Handle::decode(&h.encode()[1..]), None);
        assert_eq!(Handle::decode(b"HWF2aaaaaaaaaaaaaaaaaaaa"), None);
    }
}
