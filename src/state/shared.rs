//! A snapshot file held as shared immutable bytes (a memory map of a
//! published state file, or one aligned buffer), verified once and then read
//! in place.
//!
//! Invariants:
//! - [`SharedState::open`] verifies the whole file before it returns: the
//!   header, the block table, every payload block and the whole-payload CRC
//!   (two threads for a large file), then bytecheck and every invariant of the
//!   archive (`columns::validate`). No look-up ever reads an unverified byte.
//! - The bytes never change afterwards: they are behind an `Arc` of a
//!   [`MappedFile`], which hands out only `&[u8]`; a map is of a published
//!   state file, which nothing writes or truncates (see `storage::fs`, whose
//!   `// SAFETY:` comment on the map states the rule).
//! - Because `validate` accepted the end offsets (non-decreasing, ending at
//!   their byte column's length), every item slice taken here is in bounds.

use super::codec;
use super::columns::{self, offset_in, offset_of};
use super::format::{corrupted, rkyv_format_flags, FileLayout, StateKind};
use crate::error::Result;
use crate::storage::MappedFile;
use rkyv::util::AlignedVec;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Bytes in one 16-byte aligned buffer, shareable as a [`MappedFile`].
pub(crate) struct AlignedBytes(pub(crate) AlignedVec<16>);

impl MappedFile for AlignedBytes {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlignedBytes({} bytes)", self.0.len())
    }
}

/// Copies `bytes` once into a shareable aligned buffer.
pub(crate) fn copy_aligned(bytes: &[u8]) -> Arc<dyn MappedFile> {
    let mut buf = AlignedVec::<16>::with_capacity(bytes.len());
    buf.extend_from_slice(bytes);
    Arc::new(AlignedBytes(buf))
}

/// Where one `ends` + `bytes` column pair lives in the file.
#[derive(Debug, Clone, Copy)]
struct Column {
    ends: usize,
    count: usize,
    bytes: usize,
    bytes_len: usize,
}

/// A verified snapshot file read in place.
pub(crate) struct SharedState {
    file: Arc<dyn MappedFile>,
    keys: Column,
    values: Column,
    big_endian: bool,
}

impl fmt::Debug for SharedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SharedState({} keys, {} bytes)",
            self.keys.count,
            self.file.bytes().len()
        )
    }
}

impl SharedState {
    /// Verifies every byte of the snapshot file `file` (named `path` in
    /// errors) and stands over it.
    ///
    /// # Errors
    /// Every error of `codec::decode`: `StateCorrupted`,
    /// `StateChecksumMismatch`, `UnsupportedVersion`, `WrongStateKind`.
    pub(crate) fn open(path: &Path, file: Arc<dyn MappedFile>) -> Result<Self> {
        let bytes = file.bytes();
        let layout = FileLayout::parse(path, bytes)?;
        layout.verify_payload(path, bytes)?;
        if layout.header.kind == StateKind::Blob {
            // A blob has no archive to check (the error is WrongStateKind).
            codec::expect_kind(path, layout.header.kind, StateKind::Snapshot)?;
        }
        if !(bytes.as_ptr() as usize).is_multiple_of(16) {
            return Err(corrupted(
                path,
                0,
                "state bytes are not 16-byte aligned; cannot read the archive in place",
            ));
        }
        let archived = codec::access(path, layout.payload(bytes))?;
        let h = &layout.header;
        columns::validate(path, bytes, archived, h.entries, h.deleted)?;
        codec::expect_kind(path, h.kind, StateKind::Snapshot)?;
        let column = |ends: &[rkyv::primitive::ArchivedU64], items: &[u8]| Column {
            ends: offset_of(bytes, ends.as_ptr()) as usize,
            count: ends.len(),
            bytes: offset_in(bytes, items) as usize,
            bytes_len: items.len(),
        };
        let keys = column(&archived.key_ends, &archived.keys);
        let values = column(&archived.value_ends, &archived.values);
        Ok(SharedState {
            file: file.clone(),
            keys,
            values,
            big_endian: rkyv_format_flags() & 1 == 1,
        })
    }

    /// The whole (verified) state file.
    pub(crate) fn file(&self) -> &Arc<dyn MappedFile> {
        &self.file
    }

    /// Number of pairs.
    pub(crate) fn len(&self) -> usize {
        self.keys.count
    }

    fn end(&self, c: &Column, i: usize) -> usize {
        let at = c.ends + 8 * i;
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.file.bytes()[at..at + 8]);
        (if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        }) as usize
    }

    fn item(&self, c: &Column, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.end(c, i - 1) };
        let end = self.end(c, i);
        &self.file.bytes()[c.bytes + start..c.bytes + end]
    }

    /// Key `i`.
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        self.item(&self.keys, i)
    }

    /// Value `i`.
    pub(crate) fn value(&self, i: usize) -> &[u8] {
        self.item(&self.values, i)
    }

    /// Bytes of all keys.
    pub(crate) fn key_bytes(&self) -> usize {
        self.keys.bytes_len
    }

    /// Bytes of all values.
    pub(crate) fn value_bytes(&self) -> usize {
        self.values.bytes_len
    }
}
