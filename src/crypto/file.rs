//! Sealed files: a write-once file format (a state file, an Arrow part, a
//! sink's staged output) sealed as a whole, in [`SEALED_BLOCK`]-byte blocks
//! of its plaintext (docs/FORMAT.md §8, "Sealed files").
//!
//! The plaintext is the unencrypted format, byte for byte; offsets into it
//! are the same as in an unencrypted file, so every reader works on the
//! opened bytes unchanged. Block `i` of the plaintext is sealed block `i`
//! at file offset `48 + i * (SEALED_BLOCK + 16)`; only the last is shorter.
//!
//! Invariants:
//! - [`SealingFile`] seals each block index once: blocks 1.. in order as
//!   the writer moves past them, block 0 (which writers patch: a state
//!   file's header is written last) and the last block at
//!   [`SealingFile::finish`]. Bytes below the first block's end may be
//!   rewritten until then; anything else is written once, front to back.
//! - [`SealedFileReader::open`] checks the header, the key and the file's
//!   shape; its callers open the last block before trusting the length
//!   (a file cut at a block boundary fails there).

use super::key::KeyProvider;
use super::seal::{FileKind, SealedReader, SealedWriter, MAX_BLOCKS, SEAL_HEADER_LEN, TAG_LEN};
use crate::error::{Error, Result};
use crate::storage::StorageFile;
use std::io;
use std::path::Path;
use std::sync::Mutex;

/// Plaintext bytes per sealed block of a sealed file.
pub const SEALED_BLOCK: usize = 64 << 10;
/// Bytes one full block takes in the file.
const STEP: u64 = (SEALED_BLOCK + TAG_LEN) as u64;

/// The error for sealed file `path` (whose first bytes are `bytes`) read
/// where no key was given: `KeyUnavailable` naming its key id, or the
/// header's damage.
pub(crate) fn sealed_without_key(path: &Path, bytes: &[u8]) -> Error {
    match super::seal::SealHeader::decode(path, bytes) {
        Ok(header) => Error::KeyUnavailable {
            path: path.to_path_buf(),
            key_id: header.key_id.get(),
        },
        Err(e) => e,
    }
}

/// The blocks of a sealed file of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Sealed blocks (at least 1: an empty plaintext is one empty block).
    pub blocks: u64,
    /// Plaintext bytes.
    pub plain_len: u64,
}

impl Shape {
    /// The shape of a sealed file of `len` bytes.
    ///
    /// # Errors
    /// `StateCorrupted` naming `path` and the offset where the file was cut,
    /// for a length no sealed file has (cut inside its header or a tag).
    pub(crate) fn of(path: &Path, len: u64) -> Result<Shape> {
        let header = SEAL_HEADER_LEN as u64;
        let cut = |reason: &str| Error::StateCorrupted {
            path: path.to_path_buf(),
            offset: len,
            reason: format!("sealed file of {len} bytes: {reason}"),
        };
        if len < header + TAG_LEN as u64 {
            return Err(cut("shorter than its header and one tag"));
        }
        let body = len - header;
        let blocks = body.div_ceil(STEP);
        if body - (blocks - 1) * STEP < TAG_LEN as u64 {
            return Err(cut("cut inside a block's tag"));
        }
        if blocks > MAX_BLOCKS {
            return Err(cut("more blocks than one file seals"));
        }
        Ok(Shape {
            blocks,
            plain_len: body - blocks * TAG_LEN as u64,
        })
    }

    /// The shape of the sealed file of `plain_len` plaintext bytes.
    pub(crate) fn for_plain(plain_len: u64) -> Shape {
        Shape {
            blocks: plain_len.div_ceil(SEALED_BLOCK as u64).max(1),
            plain_len,
        }
    }

    /// The sealed file's length.
    pub(crate) fn sealed_len(&self) -> u64 {
        SEAL_HEADER_LEN as u64 + self.plain_len + self.blocks * TAG_LEN as u64
    }

    /// Where block `i` lies in the file.
    pub(crate) fn sealed_range(&self, i: u64) -> std::ops::Range<u64> {
        let plain = self.plain_range(i);
        let start = SEAL_HEADER_LEN as u64 + i * STEP;
        start..start + (plain.end - plain.start) + TAG_LEN as u64
    }

    /// The plaintext bytes block `i` holds.
    pub(crate) fn plain_range(&self, i: u64) -> std::ops::Range<u64> {
        let start = i * SEALED_BLOCK as u64;
        start..(start + SEALED_BLOCK as u64).min(self.plain_len)
    }

    /// The blocks that hold plaintext `range` (empty for an empty range).
    pub(crate) fn blocks_of(&self, range: std::ops::Range<u64>) -> std::ops::Range<u64> {
        if range.start >= range.end {
            return 0..0;
        }
        let b = SEALED_BLOCK as u64;
        range.start / b..range.end.div_ceil(b).min(self.blocks)
    }
}

/// What sealing a file wrote: the file's size and whole-file CRC32C (as
/// its metadata records them) and its seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealedWritten {
    /// Bytes in the file.
    pub size: u64,
    /// CRC32C of the whole file.
    pub crc: u32,
    /// The file's random id.
    pub file_id: [u8; 16],
    /// The key it was sealed with.
    pub key_id: u32,
}

/// What a [`SealingFile`] writes into: a borrowed file (a checkpoint's
/// part, written in one call) or a shared one (a sink's staged output,
/// written across calls).
pub(crate) trait SealInto: std::fmt::Debug + Send + Sync {
    /// The file written.
    fn file(&self) -> &dyn StorageFile;
}

impl SealInto for &dyn StorageFile {
    fn file(&self) -> &dyn StorageFile {
        *self
    }
}

impl SealInto for std::sync::Arc<dyn StorageFile> {
    fn file(&self) -> &dyn StorageFile {
        self.as_ref()
    }
}

/// A [`StorageFile`] that seals what is written to it into another: the
/// writer of a plaintext format writes through it unchanged.
#[derive(Debug)]
pub(crate) struct SealingFile<F: SealInto> {
    inner: F,
    state: Mutex<Sealing>,
}

#[derive(Debug)]
struct Sealing {
    sealer: SealedWriter,
    /// Block 0's plaintext (with room for its tag), kept until `finish`.
    first: Vec<u8>,
    /// Sealed blocks not yet written, then the plaintext of the block being
    /// filled (from `pending_start`; index `next`, at least 1). Blocks are
    /// sealed in place here and written [`BATCH`] bytes at a time.
    batch: Vec<u8>,
    pending_start: usize,
    next: u64,
    /// File offset of `batch[0]`.
    batch_at: u64,
    /// Plaintext bytes written (the next sequential offset).
    end: u64,
    /// CRC32C and length of what was written after block 0.
    crc_rest: u32,
    rest_len: u64,
    failed: bool,
}

/// Sealed bytes gathered before one write.
const BATCH: usize = 16 * (SEALED_BLOCK + TAG_LEN);

fn refused(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("sealed file: {reason}"))
}

impl<F: SealInto> SealingFile<F> {
    /// Seals into the empty `inner` with `keys`' current key.
    ///
    /// # Errors
    /// The provider's errors; `Io` when the random generator fails.
    pub(crate) fn new(inner: F, keys: &dyn KeyProvider, kind: FileKind) -> Result<Self> {
        Ok(SealingFile {
            inner,
            state: Mutex::new(Sealing {
                sealer: SealedWriter::new(keys, kind)?,
                first: Vec::with_capacity(SEALED_BLOCK + TAG_LEN),
                batch: Vec::new(),
                pending_start: 0,
                next: 1,
                batch_at: SEAL_HEADER_LEN as u64 + STEP,
                end: 0,
                crc_rest: 0,
                rest_len: 0,
                failed: false,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sealing> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seals the last block and block 0 and writes them: the file is then
    /// complete (not yet synced).
    ///
    /// # Errors
    /// `Io` naming `path` for a write that fails or for a file whose
    /// writing failed before.
    pub(crate) fn finish(self, path: &Path) -> Result<SealedWritten> {
        let inner = self.inner.file();
        let mut s = self.state.into_inner().unwrap_or_else(|p| p.into_inner());
        let io_err = |e: io::Error| Error::io("write", path, e);
        if s.failed {
            return Err(io_err(refused("an earlier write failed")));
        }
        let shape = Shape::for_plain(s.end);
        if shape.blocks > 1 {
            s.seal_pending(true).map_err(io_err)?;
            s.flush(inner).map_err(io_err)?;
        }
        let mut first = std::mem::take(&mut s.first);
        let tag = s
            .sealer
            .seal_file_block(0, shape.blocks == 1, &mut first)
            .map_err(|e| io_err(io::Error::other(e.to_string())))?;
        let mut front = Vec::with_capacity(SEAL_HEADER_LEN + first.len() + TAG_LEN);
        front.extend_from_slice(s.sealer.header());
        front.extend_from_slice(&first);
        front.extend_from_slice(&tag);
        inner.write_all_at(&front, 0).map_err(io_err)?;
        let crc = crc32c::crc32c_combine(crc32c::crc32c(&front), s.crc_rest, s.rest_len as usize);
        Ok(SealedWritten {
            size: shape.sealed_len(),
            crc,
            file_id: s.sealer.file_id(),
            key_id: s.sealer.key_id().get(),
        })
    }
}

impl Sealing {
    /// Seals the block being filled, in place, as block `next`.
    fn seal_pending(&mut self, last: bool) -> io::Result<()> {
        let at = self.pending_start;
        let tag = self
            .sealer
            .seal_file_block(self.next, last, &mut self.batch[at..])
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.batch.extend_from_slice(&tag);
        self.pending_start = self.batch.len();
        self.next += 1;
        Ok(())
    }

    /// Writes the sealed blocks gathered (there is no block being filled).
    fn flush(&mut self, inner: &dyn StorageFile) -> io::Result<()> {
        debug_assert_eq!(self.pending_start, self.batch.len());
        if self.batch.is_empty() {
            return Ok(());
        }
        inner.write_all_at(&self.batch, self.batch_at)?;
        self.crc_rest = crc32c::crc32c_append(self.crc_rest, &self.batch);
        self.rest_len += self.batch.len() as u64;
        self.batch_at += self.batch.len() as u64;
        self.batch.clear();
        self.pending_start = 0;
        Ok(())
    }

    /// Appends `bytes` at plaintext offset `self.end` (at or past block 0).
    fn append(&mut self, inner: &dyn StorageFile, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.end < SEALED_BLOCK as u64 {
                let room = SEALED_BLOCK - self.first.len();
                let (now, rest) = bytes.split_at(room.min(bytes.len()));
                self.first.extend_from_slice(now);
                self.end += now.len() as u64;
                bytes = rest;
                continue;
            }
            if self.batch.len() - self.pending_start == SEALED_BLOCK {
                // Full, and more follows: not the last block.
                self.seal_pending(false)?;
                if self.batch.len() >= BATCH {
                    self.flush(inner)?;
                }
            }
            if self.batch.capacity() == 0 {
                self.batch.reserve_exact(BATCH + SEALED_BLOCK + TAG_LEN);
            }
            let room = SEALED_BLOCK - (self.batch.len() - self.pending_start);
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.batch.extend_from_slice(now);
            self.end += now.len() as u64;
            bytes = rest;
        }
        Ok(())
    }
}

impl<F: SealInto> StorageFile for SealingFile<F> {
    fn read_at(&self, _buf: &mut [u8], _offset: u64) -> io::Result<usize> {
        Err(refused("not readable while it is being written"))
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.lock();
        if s.failed {
            return Err(refused("an earlier write failed"));
        }
        let end = offset.saturating_add(buf.len() as u64);
        // Bytes inside block 0 may be rewritten (it is sealed last); past
        // it, the file is written once, front to back.
        // A refused write leaves the file unfinishable, as a failed one does.
        if offset > s.end {
            s.failed = true;
            return Err(refused("written front to back, without holes"));
        }
        let patched_end = s.end.min(end);
        if patched_end > offset && patched_end > SEALED_BLOCK as u64 {
            s.failed = true;
            return Err(refused("only its first block is rewritten"));
        }
        let patched = patched_end.saturating_sub(offset) as usize;
        if patched > 0 {
            let at = offset as usize;
            s.first[at..at + patched].copy_from_slice(&buf[..patched]);
        }
        let result = s.append(self.inner.file(), &buf[patched..]);
        if result.is_err() {
            s.failed = true;
        }
        result
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.lock().end)
    }

    fn truncate(&self, _len: u64) -> io::Result<()> {
        Err(refused("not truncated while it is being written"))
    }

    fn sync_data(&self) -> io::Result<()> {
        Err(refused("synced once finished, through the file itself"))
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

/// Reads the blocks of one sealed file.
#[derive(Debug)]
pub(crate) struct SealedFileReader {
    reader: SealedReader,
    shape: Shape,
}

impl SealedFileReader {
    /// A sealed file of `kind` and `len` bytes whose first bytes are
    /// `header` (at least [`SEAL_HEADER_LEN`] of them; with
    /// `expected_file_id`, the id its metadata records).
    ///
    /// # Errors
    /// [`SealedReader::open`]'s errors; [`Shape::of`]'s.
    pub(crate) fn open(
        keys: &dyn KeyProvider,
        path: &Path,
        header: &[u8],
        len: u64,
        kind: FileKind,
        expected_file_id: Option<[u8; 16]>,
    ) -> Result<Self> {
        let reader = SealedReader::open(keys, path, header, kind, expected_file_id)?;
        Ok(SealedFileReader {
            reader,
            shape: Shape::of(path, len)?,
        })
    }

    /// The file's blocks.
    pub(crate) fn shape(&self) -> Shape {
        self.shape
    }

    /// Opens block `i`, whose sealed bytes are in `sealed` (opened there,
    /// in place), into `out` (its plaintext length).
    ///
    /// # Errors
    /// `AuthenticationFailed` naming the file and the block's offset.
    pub(crate) fn open_block_into(&self, i: u64, sealed: &mut [u8], out: &mut [u8]) -> Result<()> {
        let n = self.open_block_in_place(i, sealed)?;
        self.check_len(i, n, out.len())?;
        out.copy_from_slice(&sealed[..n]);
        Ok(())
    }

    /// Opens block `i` in place: `buf` holds its sealed bytes; returns the
    /// plaintext's length (the first bytes of `buf`).
    ///
    /// # Errors
    /// `AuthenticationFailed` naming the file and the block's offset.
    pub(super) fn open_block_in_place(&self, i: u64, buf: &mut [u8]) -> Result<usize> {
        let at = self.shape.sealed_range(i).start;
        self.reader
            .open_block_in_place(i, i + 1 == self.shape.blocks, buf, at)
    }

    pub(super) fn check_len(&self, i: u64, got: usize, expected: usize) -> Result<()> {
        if got == expected {
            return Ok(());
        }
        Err(Error::StateCorrupted {
            path: self.reader.path().to_path_buf(),
            offset: self.shape.sealed_range(i).start,
            reason: format!("sealed block of {got} bytes, {expected} expected"),
        })
    }
}
