//! Writing a state file straight to storage: the archive is streamed through a
//! buffer into the file while its block checksums are computed, so a large state
//! is never copied into one big in-memory buffer first.
//!
//! Invariant: the bytes written are exactly those [`super::codec::encode`]
//! produces for the same input (the same rkyv serialisation, positions offset by
//! the same 64-byte header), which `tests/checkpoint/checkpoint_basic.rs` checks.

use super::archive_writer::{write_archive, ArchiveOut};
use super::columns::StateColumns;
use super::format::{BlockCrcs, StateKind, HEADER_LEN};
use super::snapshot_repr::Cols;
use crate::error::{Error, Result};
use crate::storage::{SequentialWriter, StorageFile};
use std::io;
use std::path::Path;

/// An rkyv writer over a [`StorageFile`] that checksums what it writes.
struct FileWriter<'f> {
    out: SequentialWriter<'f>,
    crcs: BlockCrcs,
    /// The first I/O error (rkyv's error type cannot carry it structurally).
    failed: Option<io::Error>,
}

impl FileWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crcs.update(bytes);
        self.out.put(bytes)
    }
}

impl rkyv::ser::Positional for FileWriter<'_> {
    fn pos(&self) -> usize {
        // File offsets: the header placeholder counts, as in `codec::encode`.
        self.out.position() as usize
    }
}

impl<E: rkyv::rancor::Source> rkyv::ser::Writer<E> for FileWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::result::Result<(), E> {
        self.put(bytes).map_err(|e| {
            let err = E::new(io::Error::new(e.kind(), e.to_string()));
            self.failed = Some(e);
            err
        })
    }
}

/// What was written: the file's size and its whole-file CRC32C.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    pub size: u64,
    pub crc: u32,
}

fn write_error(path: &Path, e: io::Error) -> Error {
    Error::io("write", path, e)
}

fn finish(
    mut w: FileWriter<'_>,
    path: &Path,
    kind: StateKind,
    entries: u64,
    deleted: u64,
) -> Result<Written> {
    let payload_len = w.out.position() - HEADER_LEN as u64;
    let crcs = std::mem::replace(&mut w.crcs, BlockCrcs::new());
    let (table, header) = crcs.finish(kind, payload_len, entries, deleted);
    w.out.put(&table).map_err(|e| write_error(path, e))?;
    w.out.flush().map_err(|e| write_error(path, e))?;
    w.out
        .file()
        .write_all_at(&header, 0)
        .map_err(|e| write_error(path, e))?;
    let size = HEADER_LEN as u64 + payload_len + table.len() as u64;
    let crc = super::codec::layout_crc(&header, payload_len, table.len());
    Ok(Written { size, crc })
}

/// A writer whose first [`HEADER_LEN`] bytes are a placeholder for the header
/// (written last, and not part of the block checksums).
fn writer(file: &dyn StorageFile) -> FileWriter<'_> {
    FileWriter {
        out: SequentialWriter::with_prefix(file, &[0u8; HEADER_LEN]),
        crcs: BlockCrcs::new(),
        failed: None,
    }
}

/// Columns a state file can be written from: a delta's or snapshot's
/// [`StateColumns`] (archived by rkyv) or a snapshot's pairs in any form
/// (`archive_writer`; a verified snapshot file is written as it is).
pub(crate) trait WritableColumns {
    /// Writes a state file of `kind` into the empty `file`.
    ///
    /// # Errors
    /// As [`write_columns`].
    fn write_into(self, file: &dyn StorageFile, path: &Path, kind: StateKind) -> Result<Written>;
}

impl WritableColumns for &StateColumns {
    fn write_into(self, file: &dyn StorageFile, path: &Path, kind: StateKind) -> Result<Written> {
        super::codec::check_archivable(self)?;
        let mut w = writer(file);
        let archived = rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(self, &mut w)
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Some(e) = w.failed.take() {
            return Err(write_error(path, e));
        }
        archived.map_err(|e| {
            Error::invalid_argument("archive state", format!("state could not be archived: {e}"))
        })?;
        let (entries, deleted) = (self.len() as u64, self.deleted_len() as u64);
        finish(w, path, kind, entries, deleted)
    }
}

/// Gathers small writes into large ones (one CRC32C call per chunk, not per
/// key) before they reach the [`FileWriter`].
struct Chunked<'w, 'f> {
    w: &'w mut FileWriter<'f>,
    buf: Vec<u8>,
    path: &'w Path,
}

const CHUNK: usize = 1 << 18;

impl Chunked<'_, '_> {
    fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.w
                .put(&self.buf)
                .map_err(|e| write_error(self.path, e))?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl ArchiveOut for Chunked<'_, '_> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        if self.buf.len() + bytes.len() > CHUNK {
            self.flush()?;
        }
        if bytes.len() >= CHUNK {
            return self.w.put(bytes).map_err(|e| write_error(self.path, e));
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn pos(&self) -> usize {
        self.w.out.position() as usize + self.buf.len()
    }
}

impl WritableColumns for Cols<'_> {
    fn write_into(self, file: &dyn StorageFile, path: &Path, kind: StateKind) -> Result<Written> {
        if let (Cols::File(shared), StateKind::Snapshot) = (&self, kind) {
            // A verified snapshot file: written as it is.
            let bytes = shared.file().bytes();
            file.write_all_at(bytes, 0)
                .map_err(|e| write_error(path, e))?;
            let crc = super::codec::encoded_file_crc(path, bytes)?;
            return Ok(Written {
                size: bytes.len() as u64,
                crc,
            });
        }
        let mut w = writer(file);
        let mut out = Chunked {
            w: &mut w,
            buf: Vec::with_capacity(CHUNK),
            path,
        };
        write_archive(&self, &mut out)?;
        out.flush()?;
        finish(w, path, kind, self.len() as u64, 0)
    }
}

/// Writes `columns` as a state file of `kind` into the empty `file`.
///
/// # Errors
/// `Io` naming `path`; `StateTooLarge`.
pub(crate) fn write_columns<C: WritableColumns>(
    file: &dyn StorageFile,
    path: &Path,
    columns: C,
    kind: StateKind,
) -> Result<Written> {
    columns.write_into(file, path, kind)
}

/// Writes `bytes` as a blob state file into the empty `file`.
///
/// # Errors
/// `Io` naming `path`.
pub(crate) fn write_blob(file: &dyn StorageFile, path: &Path, bytes: &[u8]) -> Result<Written> {
    let mut w = writer(file);
    w.put(bytes).map_err(|e| write_error(path, e))?;
    finish(w, path, StateKind::Blob, 0, 0)
}
