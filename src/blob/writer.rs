//! [`BlobWriter`]: streams an object of any size into a multipart upload with
//! bounded memory.
//!
//! Invariant: the writer holds at most one part (`part_bytes`) in memory;
//! each full part is sent before more is buffered, every part but the last is
//! exactly `part_bytes` (at least [`MIN_PART_BYTES`]), and an object that fits
//! in one part is sent with a single [`BlobStore::put`] instead.

use super::{BlobError, BlobKey, BlobResult, BlobStore, MultipartUpload, MIN_PART_BYTES};
use bytes::{Bytes, BytesMut};
use std::io;

/// Writes one object through [`std::io::Write`], in parts of `part_bytes`.
///
/// Nothing is visible until [`finish`](Self::finish) returns `Ok`; a writer
/// dropped before that aborts nothing itself (the upload is abandoned, see
/// [`MultipartUpload`]); call [`abort`](Self::abort) to discard it.
///
/// # Examples
/// ```
/// use highwater::blob::{BlobKey, BlobStore, BlobWriter, SimBlobStore};
/// use std::io::Write;
/// let store = SimBlobStore::new(7);
/// let key = BlobKey::new("parts/p-1")?;
/// let mut writer = BlobWriter::new(&store, key.clone(), BlobWriter::DEFAULT_PART_BYTES);
/// writer.write_all(b"hello").unwrap();
/// writer.finish()?;
/// assert_eq!(&store.get(&key)?[..], b"hello");
/// # Ok::<(), highwater::blob::BlobError>(())
/// ```
#[derive(Debug)]
pub struct BlobWriter<'a> {
    store: &'a dyn BlobStore,
    key: BlobKey,
    part_bytes: usize,
    buffer: BytesMut,
    upload: Option<Box<dyn MultipartUpload>>,
    written: u64,
}

impl<'a> BlobWriter<'a> {
    /// The part size [`BlobWriter::new`] is usually given: 8 MiB.
    pub const DEFAULT_PART_BYTES: usize = 8 * 1024 * 1024;

    /// A writer of `key`; `part_bytes` is raised to [`MIN_PART_BYTES`] if
    /// smaller.
    pub fn new(store: &'a dyn BlobStore, key: BlobKey, part_bytes: usize) -> Self {
        let part_bytes = part_bytes.max(MIN_PART_BYTES);
        BlobWriter {
            store,
            key,
            part_bytes,
            buffer: BytesMut::new(),
            upload: None,
            written: 0,
        }
    }

    /// Bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Sends what is buffered and makes the object visible; returns its size.
    ///
    /// # Errors
    /// The backend's error; for [`BlobError::Indeterminate`] the object may or
    /// may not be visible.
    pub fn finish(mut self) -> BlobResult<u64> {
        let rest = self.buffer.split().freeze();
        match self.upload.take() {
            None => self.store.put(&self.key, rest)?,
            Some(mut upload) => {
                if !rest.is_empty() {
                    upload.put_part(rest)?;
                }
                upload.complete()?;
            }
        }
        Ok(self.written)
    }

    /// Discards the object: aborts the upload if one was started.
    ///
    /// # Errors
    /// The backend's error of the abort.
    pub fn abort(mut self) -> BlobResult<()> {
        match self.upload.take() {
            Some(upload) => upload.abort(),
            None => Ok(()),
        }
    }

    /// Sends one full part from the buffer.
    fn send_part(&mut self) -> BlobResult<()> {
        let part: Bytes = self.buffer.split_to(self.part_bytes).freeze();
        let upload = match &mut self.upload {
            Some(upload) => upload,
            None => self.upload.insert(self.store.put_multipart(&self.key)?),
        };
        upload.put_part(part)
    }
}

impl io::Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // A full part is sent only once a byte beyond it arrives, so the last
        // part is never empty and an object of exactly one part is one put.
        if self.buffer.len() == self.part_bytes {
            self.send_part().map_err(io::Error::other)?;
        }
        let take = (self.part_bytes - self.buffer.len()).min(buf.len());
        self.buffer.extend_from_slice(&buf[..take]);
        self.written += take as u64;
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl From<BlobError> for io::Error {
    fn from(e: BlobError) -> Self {
        io::Error::other(e)
    }
}
