//! [`Sealing`]: whether the files a component writes are sealed, and the one
//! place that writes and reads write-once files either way (a state file, an
//! Arrow part, a sink's staged output). Without the `encryption` feature it
//! holds nothing and every file is plaintext.
//!
//! Invariants:
//! - A file is written sealed exactly when a key provider is configured; a
//!   sealed file is described by a [`PartSeal`] (key id, file id) and its
//!   sealed size and whole-file CRC32C.
//! - A file is read as sealed exactly when its description says so, and
//!   then only with its file id: a plaintext file is never accepted where a
//!   sealed one was written, nor another sealed file in its place.
//! - A sealed file read without a key is `KeyUnavailable` naming the file
//!   and the key id, never corruption.

use crate::checkpoint::PartSeal;
use crate::error::{Error, IoContext, Result};
use crate::state::Written;
use crate::storage::{load_file, LoadedFile, MappedFile, Storage, StorageFile};
use std::path::Path;

/// What a sealed file holds (its key derivation's kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SealKind {
    /// A state file (snapshot, delta or blob).
    State,
    /// An Arrow part.
    Arrow,
    /// A sink's staged output.
    Sink,
}

impl SealKind {
    /// The kind a checkpoint part of `kind` is sealed as.
    pub(crate) fn of_part(kind: crate::checkpoint::PartKind) -> Self {
        if kind.is_arrow() {
            SealKind::Arrow
        } else {
            SealKind::State
        }
    }
}

#[cfg(feature = "encryption")]
impl SealKind {
    fn file_kind(self) -> crate::crypto::FileKind {
        match self {
            SealKind::State => crate::crypto::FileKind::StateFile,
            SealKind::Arrow => crate::crypto::FileKind::ArrowPart,
            SealKind::Sink => crate::crypto::FileKind::SinkStaging,
        }
    }
}

/// The keys new files are sealed with, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sealing {
    #[cfg(feature = "encryption")]
    keys: Option<std::sync::Arc<dyn crate::crypto::KeyProvider>>,
}

impl Sealing {
    /// Seal with `keys`.
    #[cfg(feature = "encryption")]
    pub(crate) fn with_keys(keys: std::sync::Arc<dyn crate::crypto::KeyProvider>) -> Self {
        Sealing { keys: Some(keys) }
    }

    /// True when new files are sealed.
    pub(crate) fn is_on(&self) -> bool {
        #[cfg(feature = "encryption")]
        return self.keys.is_some();
        #[cfg(not(feature = "encryption"))]
        false
    }

    /// The provider, if one is configured.
    #[cfg(feature = "encryption")]
    pub(crate) fn keys(&self) -> Option<&dyn crate::crypto::KeyProvider> {
        self.keys.as_deref()
    }

    /// Fills the new, empty `file` at `path` with `write` (which writes the
    /// plaintext format through the file it is given), sealed when on.
    /// Returns what the file's description records.
    ///
    /// # Errors
    /// `write`'s errors; `Io` naming `path`; the provider's errors.
    pub(crate) fn write(
        &self,
        file: &dyn StorageFile,
        path: &Path,
        kind: SealKind,
        write: impl FnOnce(&dyn StorageFile) -> Result<Written>,
    ) -> Result<(Written, Option<PartSeal>)> {
        #[cfg(feature = "encryption")]
        if let Some(keys) = self.keys() {
            let sealing = crate::crypto::SealingFile::new(file, keys, kind.file_kind())?;
            write(&sealing)?;
            let sealed = sealing.finish(path)?;
            let seal = PartSeal {
                key_id: sealed.key_id,
                file_id: sealed.file_id,
            };
            let written = Written {
                size: sealed.size,
                crc: sealed.crc,
            };
            return Ok((written, Some(seal)));
        }
        let _ = (path, kind);
        Ok((write(file)?, None))
    }

    /// Loads file `path`, described by `size`, `crc` and `seal`, and opens
    /// it when sealed. A plaintext file is returned as it is, for its
    /// format's own checks (its size and CRC are checked by the caller, who
    /// may derive the CRC from the format's header); a sealed one is mapped,
    /// its size checked, and opened block by block (every block
    /// authenticated: its CRC is not recomputed).
    ///
    /// # Errors
    /// `Io` naming the file; for a sealed file `CheckpointFileMismatch`,
    /// `KeyUnavailable`, `KeyMismatch`, `AuthenticationFailed`, or
    /// `StateCorrupted` for another file's id.
    pub(crate) fn load(
        &self,
        storage: &dyn Storage,
        path: &Path,
        kind: SealKind,
        expected: Expected<'_>,
    ) -> Result<LoadedFile> {
        let Some(seal) = expected.seal else {
            return load_file(storage, path).ctx("read", path);
        };
        // Mapped, not copied: the blocks are opened straight into the
        // plaintext buffer.
        let mapped = storage.map_file(path).ctx("map", path)?;
        expected.check_size(path, mapped.bytes().len() as u64)?;
        self.open_loaded(path, kind, seal, mapped.bytes())
    }

    #[cfg(feature = "encryption")]
    fn open_loaded(
        &self,
        path: &Path,
        kind: SealKind,
        seal: &PartSeal,
        bytes: &[u8],
    ) -> Result<LoadedFile> {
        let keys = self.require_keys(path, seal)?;
        crate::crypto::open_sealed_file(keys, path, bytes, kind.file_kind(), Some(seal.file_id))
    }

    #[cfg(not(feature = "encryption"))]
    fn open_loaded(
        &self,
        path: &Path,
        _: SealKind,
        seal: &PartSeal,
        _: &[u8],
    ) -> Result<LoadedFile> {
        Err(no_key(path, seal))
    }

    #[cfg(feature = "encryption")]
    fn require_keys(
        &self,
        path: &Path,
        seal: &PartSeal,
    ) -> Result<&dyn crate::crypto::KeyProvider> {
        self.keys().ok_or_else(|| no_key(path, seal))
    }

    /// A view of state file `path`: mapped when plaintext, opened block by
    /// block as reads touch it when sealed (its size checked, its header's
    /// file id and last block authenticated now).
    ///
    /// # Errors
    /// As [`load`](Self::load), and the view's.
    pub(crate) fn view(
        &self,
        storage: &dyn Storage,
        path: &Path,
        expected: Expected<'_>,
    ) -> Result<crate::state::StateFileView> {
        let Some(seal) = expected.seal else {
            // The metadata records a plaintext file: a sealed one here is
            // damage (another file in its place), not a missing key.
            let map = storage.map_file(path).ctx("map", path)?;
            if is_sealed(map.bytes()) {
                return Err(Error::StateCorrupted {
                    path: path.to_path_buf(),
                    offset: 0,
                    reason: "a sealed file where the checkpoint's metadata records a plaintext one"
                        .into(),
                });
            }
            return crate::state::StateFileView::from_mapped(path, map);
        };
        expected.check_size(path, storage.file_size(path).ctx("stat", path)?)?;
        #[cfg(feature = "encryption")]
        {
            let keys = self.require_keys(path, seal)?;
            let kind = SealKind::State.file_kind();
            let lazy =
                crate::crypto::LazyOpened::open(storage, keys, path, kind, Some(seal.file_id))?;
            crate::state::StateFileView::from_sealed(path, lazy)
        }
        #[cfg(not(feature = "encryption"))]
        Err(no_key(path, seal))
    }
}

impl Sealing {
    /// A file that seals what is written to it into `file` (empty, new),
    /// across calls, when on; `None` when off.
    ///
    /// # Errors
    /// The provider's errors; `Io` when the random generator fails.
    #[cfg(feature = "encryption")]
    pub(crate) fn sealing_file<F: crate::crypto::SealInto>(
        &self,
        file: F,
        kind: SealKind,
    ) -> Result<Option<crate::crypto::SealingFile<F>>> {
        match self.keys() {
            Some(keys) => crate::crypto::SealingFile::new(file, keys, kind.file_kind()).map(Some),
            None => Ok(None),
        }
    }

    /// Opens `loaded`, the bytes of file `path` that nothing records as
    /// sealed or plaintext (a sink's published output): sealed exactly when
    /// it starts with the sealed-file magic (docs/FORMAT.md §4), then opened
    /// whole with the keys (any file id); plaintext returned as it is.
    ///
    /// # Errors
    /// For a sealed file: `KeyUnavailable` naming the file and its key id
    /// without keys (or without the `encryption` feature); `KeyMismatch`,
    /// `AuthenticationFailed`, `StateCorrupted` from opening it.
    pub(crate) fn open_by_magic(
        &self,
        path: &Path,
        kind: SealKind,
        loaded: LoadedFile,
    ) -> Result<LoadedFile> {
        let bytes = loaded.bytes();
        if !is_sealed(bytes) {
            return Ok(loaded);
        }
        #[cfg(feature = "encryption")]
        {
            let Some(keys) = self.keys() else {
                return Err(crate::crypto::sealed_without_key(path, bytes));
            };
            crate::crypto::open_sealed_file(keys, path, bytes, kind.file_kind(), None)
        }
        #[cfg(not(feature = "encryption"))]
        {
            let _ = kind;
            Err(sealed_without_feature(path, bytes))
        }
    }
}

/// The first bytes of every sealed file, log segments' seal headers
/// included (docs/FORMAT.md §8): the one copy, for builds with and without
/// the `encryption` feature.
pub(crate) const SEALED_MAGIC: &[u8; 8] = b"HWSEAL\0\x01";
/// The length of a sealed file's header (docs/FORMAT.md §8).
pub(crate) const SEALED_HEADER_LEN: usize = 48;

/// True when `bytes` start like a sealed file (its magic number).
pub(crate) fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(SEALED_MAGIC)
}

/// The key id a seal header names (its bytes 12..16, u32 LE), unchecked;
/// `None` for a header cut short of it.
pub(crate) fn header_key_id(header: &[u8]) -> Option<u32> {
    let id = header.get(12..16)?;
    Some(u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
}

/// `KeyUnavailable` for sealed file `path` in a build without the
/// `encryption` feature: its header's key id, unchecked, or
/// `StateCorrupted` for a header cut short.
#[cfg(not(feature = "encryption"))]
fn sealed_without_feature(path: &Path, bytes: &[u8]) -> Error {
    match header_key_id(bytes) {
        Some(key_id) => Error::KeyUnavailable {
            path: path.to_path_buf(),
            key_id,
        },
        None => Error::StateCorrupted {
            path: path.to_path_buf(),
            offset: 0,
            reason: format!("sealed-file header cut short at {} bytes", bytes.len()),
        },
    }
}

/// What a file's description says it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    /// Bytes in the file.
    pub size: u64,
    /// Its whole-file CRC32C.
    pub crc: u32,
    /// Its seal, for a sealed file.
    pub seal: Option<&'a PartSeal>,
}

impl<'a> Expected<'a> {
    /// What a checkpoint's metadata says of part file `part`.
    pub(crate) fn of_part(part: &'a crate::checkpoint::PartMetadata) -> Self {
        Expected {
            size: part.size,
            crc: part.crc32c,
            seal: part.sealed.as_ref(),
        }
    }

    /// Checks a sealed file's size (`actual_size`). Its CRC32C is not
    /// computed: every block it is opened from is authenticated, which the
    /// CRC could only repeat (and a pass over the whole file costs what
    /// opening it does).
    fn check_size(&self, path: &Path, actual_size: u64) -> Result<()> {
        if actual_size != self.size {
            return Err(Error::CheckpointFileMismatch {
                path: path.to_path_buf(),
                expected_size: self.size,
                actual_size,
                expected_crc: self.crc,
                actual_crc: 0,
            });
        }
        Ok(())
    }
}

/// The error for a sealed file read without its key.
fn no_key(path: &Path, seal: &PartSeal) -> Error {
    Error::KeyUnavailable {
        path: path.to_path_buf(),
        key_id: seal.key_id,
    }
}
