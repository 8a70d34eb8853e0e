//! A [`FileSink`](super::FileSink)'s staged output of one epoch: written by
//! appending, plaintext or sealed (docs/FORMAT.md §4, §8 "Sealed files").
//!
//! Invariants:
//! - The length and CRC32C [`Stage::finish`] returns are those of the bytes
//!   in the file (the sealed bytes when sealed), which the epoch's handle
//!   records and its commit checks.
//! - A sealed stage is complete only after `finish`: its first and last
//!   blocks are written there, before the file is synced.

use crate::error::{IoContext, Result};
use crate::sealing::Sealing;
use crate::storage::{OpenMode, Storage, StorageFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The staged output of the current epoch.
#[derive(Debug)]
pub(super) struct Stage {
    file: Arc<dyn StorageFile>,
    /// The staged file.
    pub path: PathBuf,
    writer: Writer,
}

#[derive(Debug)]
enum Writer {
    Plain {
        len: u64,
        crc32c: u32,
    },
    #[cfg(feature = "encryption")]
    Sealed(Box<crate::crypto::SealingFile<Arc<dyn StorageFile>>>),
}

impl Stage {
    /// Creates the new staged file `path`, sealed when `sealing` is on.
    ///
    /// # Errors
    /// `Io` naming `path`; the key provider's errors.
    pub(super) fn create(storage: &dyn Storage, path: &Path, sealing: &Sealing) -> Result<Stage> {
        let file = storage
            .open_file(path, OpenMode::CreateNew)
            .ctx("create", path)?;
        #[cfg(feature = "encryption")]
        if let Some(sealed) = sealing.sealing_file(file.clone(), crate::sealing::SealKind::Sink)? {
            return Ok(Stage {
                file,
                path: path.to_path_buf(),
                writer: Writer::Sealed(Box::new(sealed)),
            });
        }
        let _ = sealing;
        Ok(Stage {
            file,
            path: path.to_path_buf(),
            writer: Writer::Plain { len: 0, crc32c: 0 },
        })
    }

    /// Appends `bytes`.
    ///
    /// # Errors
    /// `Io` naming the file.
    pub(super) fn append(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.writer {
            Writer::Plain { len, crc32c } => {
                self.file
                    .write_all_at(bytes, *len)
                    .ctx("write", &self.path)?;
                *len += bytes.len() as u64;
                *crc32c = crc32c::crc32c_append(*crc32c, bytes);
            }
            #[cfg(feature = "encryption")]
            Writer::Sealed(sealed) => {
                let end = sealed.len().ctx("write", &self.path)?;
                sealed.write_all_at(bytes, end).ctx("write", &self.path)?;
            }
        }
        Ok(())
    }

    /// Completes the file and syncs it; returns its length and CRC32C.
    ///
    /// # Errors
    /// `Io` naming the file.
    pub(super) fn finish(self) -> Result<(u64, u32)> {
        let written = match self.writer {
            Writer::Plain { len, crc32c } => (len, crc32c),
            #[cfg(feature = "encryption")]
            Writer::Sealed(sealed) => {
                let w = (*sealed).finish(&self.path)?;
                (w.size, w.crc)
            }
        };
        self.file.sync_all().ctx("sync", &self.path)?;
        Ok(written)
    }
}
