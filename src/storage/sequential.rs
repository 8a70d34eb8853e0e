//! Writing a new file front to back through a buffer: small writes are
//! gathered, large ones go straight to the file, so a multi-gigabyte part is
//! streamed without being copied into one big buffer first.
//!
//! Invariant: the file holds exactly the bytes given to [`SequentialWriter::put`],
//! in order, once [`SequentialWriter::flush`] has returned.

use super::StorageFile;
use std::io;

/// Writes larger than this go straight to the file instead of through the buffer.
const DIRECT_WRITE: usize = 256 << 10;
/// The buffer that gathers smaller writes.
const BUFFER: usize = 1 << 20;

/// A buffered front-to-back writer over a [`StorageFile`].
pub(crate) struct SequentialWriter<'f> {
    file: &'f dyn StorageFile,
    /// File offset of `buf[0]`.
    flushed: u64,
    buf: Vec<u8>,
}

impl<'f> SequentialWriter<'f> {
    /// A writer that starts at offset 0 of `file`.
    pub(crate) fn new(file: &'f dyn StorageFile) -> Self {
        SequentialWriter {
            file,
            flushed: 0,
            buf: Vec::with_capacity(BUFFER),
        }
    }

    /// A writer whose file starts with `prefix` (buffered; written at the first
    /// flush).
    pub(crate) fn with_prefix(file: &'f dyn StorageFile, prefix: &[u8]) -> Self {
        let mut w = Self::new(file);
        w.buf.extend_from_slice(prefix);
        w
    }

    /// The file being written.
    pub(crate) fn file(&self) -> &'f dyn StorageFile {
        self.file
    }

    /// The offset the next byte lands at.
    pub(crate) fn position(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    /// Appends `bytes`.
    ///
    /// # Errors
    /// The storage's write error.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
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

    /// Writes out what the buffer holds.
    ///
    /// # Errors
    /// The storage's write error.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all_at(&self.buf, self.flushed)?;
            self.flushed += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}
