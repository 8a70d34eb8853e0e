//! Writing a state file straight to storage: the archive is streamed through a
//! buffer into the file while its block checksums are computed, so a large state
//! is never copied into one big in-memory buffer first.
//!
//! Invariant: the bytes written are exactly those [`super::codec::encode`]
//! produces for the same input (the same rkyv serialisation, positions offset by
//! the same 64-byte header), which `tests/checkpoint_basic.rs` checks.

use super::columns::StateColumns;
use super::format::{BlockCrcs, StateKind, HEADER_LEN};
use crate::error::{Error, Result};
use crate::storage::StorageFile;
use std::io;
use std::path::Path;

/// Writes larger than this go straight to the file instead of through the buffer.
const DIRECT_WRITE: usize = 256 << 10;
const BUFFER: usize = 1 << 20;

/// An rkyv writer over a [`StorageFile`] that checksums what it writes.
struct FileWriter<'f> {
    file: &'f dyn StorageFile,
    /// File offset of `buf[0]`.
    flushed: u64,
    buf: Vec<u8>,
    crcs: BlockCrcs,
    /// The first I/O error (rkyv's error type cannot carry it structurally).
    failed: Option<io::Error>,
}

impl FileWriter<'_> {
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all_at(&self.buf, self.flushed)?;
            self.flushed += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crcs.update(bytes);
        if bytes.len() >= DIRECT_WRITE {
            self.flush()?;
            self.file.write_all_at(bytes, self.flushed)?;
            self.flushed += bytes.len() as u64;
        } else {
            if self.buf.len() + bytes.len() > BUFFER {
                self.flush()?;
            }
            self.buf.extend_from_slice(bytes);
        }
        Ok(())
    }
}

impl rkyv::ser::Positional for FileWriter<'_> {
    fn pos(&self) -> usize {
        // File offsets: the header placeholder counts, as in `codec::encode`.
        self.flushed as usize + self.buf.len()
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
    let payload_len = w.flushed + w.buf.len() as u64 - HEADER_LEN as u64;
    let crcs = std::mem::replace(&mut w.crcs, BlockCrcs::new());
    let (table, header) = crcs.finish(kind, payload_len, entries, deleted);
    w.buf.extend_from_slice(&table);
    w.flush().map_err(|e| write_error(path, e))?;
    w.file
        .write_all_at(&header, 0)
        .map_err(|e| write_error(path, e))?;
    let size = HEADER_LEN as u64 + payload_len + table.len() as u64;
    let crc = super::codec::layout_crc(&header, payload_len, table.len());
    Ok(Written { size, crc })
}

fn writer(file: &dyn StorageFile) -> FileWriter<'_> {
    FileWriter {
        file,
        flushed: 0,
        buf: {
            let mut b = Vec::with_capacity(BUFFER);
            b.extend_from_slice(&[0u8; HEADER_LEN]);
            b
        },
        crcs: BlockCrcs::new(),
        failed: None,
    }
}

/// Writes `columns` as a state file of `kind` into the empty `file`.
///
/// # Errors
/// `Io` naming `path`; `StateTooLarge`.
pub(crate) fn write_columns(
    file: &dyn StorageFile,
    path: &Path,
    columns: &StateColumns,
    kind: StateKind,
) -> Result<Written> {
    super::codec::check_archivable(columns)?;
    let mut w = writer(file);
    let archived = rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(columns, &mut w)
        .map(|_| ())
        .map_err(|e| e.to_string());
    if let Some(e) = w.failed.take() {
        return Err(write_error(path, e));
    }
    archived.map_err(|e| Error::InvalidArgument(format!("state could not be archived: {e}")))?;
    let (entries, deleted) = (columns.len() as u64, columns.deleted_len() as u64);
    finish(w, path, kind, entries, deleted)
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
