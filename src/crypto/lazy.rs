//! [`LazyOpened`]: a sealed file opened block by block as reads touch it,
//! for views that read a few keys of a large file.
//!
//! Invariants:
//! - The plaintext buffer is allocated zeroed (its pages cost nothing until
//!   written) and each block is written into it at most once, under the
//!   fill lock, before its bit in `ready` is set (Release).
//! - A slice of the buffer is handed out only for a range whose every
//!   block's bit was seen set (Acquire), so no handed-out byte is ever
//!   written again; the only reference to the whole buffer is
//!   [`LazyOpened::all_exclusive`]'s, which takes `&mut self`.
//! - Opening authenticates the last block, so the length the reads trust
//!   is the length the file was sealed with (a file cut at a block
//!   boundary, or with bytes appended, fails at open).

use super::file::{SealedFileReader, Shape};
use super::key::KeyProvider;
use super::seal::{FileKind, SEAL_HEADER_LEN};
use crate::error::{Error, IoContext, Result};
use crate::storage::{OpenMode, Storage, StorageFile};
use std::alloc::Layout;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A sealed file's plaintext, opened on demand.
pub(crate) struct LazyOpened {
    path: PathBuf,
    file: Arc<dyn StorageFile>,
    reader: SealedFileReader,
    buf: NonNull<u8>,
    layout: Layout,
    ready: Box<[AtomicU64]>,
    fill: Mutex<()>,
}

// SAFETY: the buffer is owned by this value; concurrent access to it follows
// the module invariants (each block written once under `fill` before it is
// published through `ready`, and only published blocks are read), so sharing
// the pointer across threads introduces no data race.
unsafe impl Send for LazyOpened {}
// SAFETY: as for `Send`: `&self` methods write only unpublished blocks,
// under the `fill` lock, and read only published ones.
unsafe impl Sync for LazyOpened {}

impl std::fmt::Debug for LazyOpened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyOpened")
            .field("path", &self.path)
            .field("shape", &self.reader.shape())
            .finish_non_exhaustive()
    }
}

impl Drop for LazyOpened {
    fn drop(&mut self) {
        // SAFETY: `buf` was allocated in `open` with exactly `layout`.
        unsafe { std::alloc::dealloc(self.buf.as_ptr(), self.layout) }
    }
}

impl LazyOpened {
    /// Opens sealed file `path` of `kind` through `storage`, authenticating
    /// its header, key and last block; nothing else is read.
    ///
    /// # Errors
    /// `Io` naming the file; [`SealedFileReader::open`]'s errors;
    /// `AuthenticationFailed` for a last block that does not open as the
    /// last (a cut file).
    pub(crate) fn open(
        storage: &dyn Storage,
        keys: &dyn KeyProvider,
        path: &Path,
        kind: FileKind,
        expected_file_id: Option<[u8; 16]>,
    ) -> Result<Self> {
        let file = storage.open_file(path, OpenMode::Read).ctx("open", path)?;
        let len = file.len().ctx("stat", path)?;
        let mut header = [0u8; SEAL_HEADER_LEN];
        // `read_at` may return fewer bytes than asked: a short read is not
        // a cut header.
        let n = len.min(SEAL_HEADER_LEN as u64) as usize;
        file.read_exact_at(&mut header[..n], 0).ctx("read", path)?;
        let reader = SealedFileReader::open(keys, path, &header[..n], len, kind, expected_file_id)?;
        let shape = reader.shape();
        let plain = usize::try_from(shape.plain_len).map_err(|_| Error::StateCorrupted {
            path: path.to_path_buf(),
            offset: 0,
            reason: "sealed file too large to open in memory".into(),
        })?;
        let layout =
            Layout::from_size_align(plain.max(1), 16).map_err(|_| Error::StateCorrupted {
                path: path.to_path_buf(),
                offset: 0,
                reason: "sealed file too large to open in memory".into(),
            })?;
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        // A file larger than the memory the system will commit is an error
        // naming it (not damage), never an abort in the allocator.
        let Some(buf) = NonNull::new(raw) else {
            return Err(Error::io(
                "allocate memory to open",
                path,
                std::io::Error::from(std::io::ErrorKind::OutOfMemory),
            ));
        };
        let opened = LazyOpened {
            path: path.to_path_buf(),
            file,
            reader,
            buf,
            layout,
            ready: (0..shape.blocks.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            fill: Mutex::new(()),
        };
        opened.open_block(shape.blocks - 1)?;
        Ok(opened)
    }

    /// Plaintext bytes.
    pub(crate) fn len(&self) -> usize {
        self.reader.shape().plain_len as usize
    }

    /// The sealed file's length.
    pub(crate) fn sealed_len(&self) -> u64 {
        self.reader.shape().sealed_len()
    }

    fn is_ready(&self, i: u64) -> bool {
        self.ready[(i / 64) as usize].load(Ordering::Acquire) & (1 << (i % 64)) != 0
    }

    /// Opens block `i` into the buffer unless it already is.
    fn open_block(&self, i: u64) -> Result<()> {
        if self.is_ready(i) {
            return Ok(());
        }
        let _fill = self.fill.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_ready(i) {
            return Ok(());
        }
        let shape: Shape = self.reader.shape();
        let s = shape.sealed_range(i);
        let p = shape.plain_range(i);
        let mut sealed = vec![0u8; (s.end - s.start) as usize];
        self.file
            .read_exact_at(&mut sealed, s.start)
            .ctx("read", &self.path)?;
        // SAFETY: block `i` is not published (checked under the fill lock,
        // which every writer holds), so no slice handed out covers
        // `p`, and no other thread writes it; `p` lies inside the buffer
        // (`plain_range` is bounded by the plaintext length).
        let place = unsafe {
            std::slice::from_raw_parts_mut(
                self.buf.as_ptr().add(p.start as usize),
                (p.end - p.start) as usize,
            )
        };
        self.reader.open_block_into(i, &mut sealed, place)?;
        self.ready[(i / 64) as usize].fetch_or(1 << (i % 64), Ordering::Release);
        Ok(())
    }

    /// Opens (once) every block that holds plaintext `range`.
    ///
    /// # Errors
    /// `Io` or `AuthenticationFailed` naming the file and the block.
    pub(crate) fn ensure(&self, range: Range<usize>) -> Result<()> {
        let end = range.end.min(self.len());
        for i in self
            .reader
            .shape()
            .blocks_of(range.start as u64..end as u64)
        {
            self.open_block(i)?;
        }
        Ok(())
    }

    /// Plaintext `range`, opened (clamped to the plaintext).
    ///
    /// # Errors
    /// As [`ensure`](Self::ensure).
    pub(crate) fn get(&self, range: Range<usize>) -> Result<&[u8]> {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        self.ensure(start..end)?;
        // SAFETY: every block holding `start..end` is published, so those
        // bytes are never written again; the range lies inside the buffer.
        Ok(unsafe { std::slice::from_raw_parts(self.buf.as_ptr().add(start), end - start) })
    }

    /// The whole plaintext buffer, blocks not yet opened reading as zeros.
    /// `&mut self` guarantees that nothing writes it while the slice lives.
    pub(crate) fn all_exclusive(&mut self) -> &[u8] {
        // SAFETY: the buffer holds `len()` initialised (zeroed or written)
        // bytes, and `&mut self` excludes every writer for the slice's life.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr(), self.len()) }
    }
}
