//! [`StateFileView`]: a state file read in place, through a memory map, without
//! deserialising it.
//!
//! Invariants:
//! - Opening verifies the header, the block table, and the blocks holding the
//!   archive's root object before bytecheck looks at the root. Nothing else is read
//!   at open, so opening costs the same for ten keys and for ten million.
//! - Every later read first verifies the CRC of each block it touches (once per
//!   block, remembered in a bitmap). A damaged block is reported as
//!   `StateChecksumMismatch` naming its file offset, at the first read that
//!   touches it; bytes of an unverified block are never returned.
//! - End offsets are bounds-checked on every read, so even a file with valid
//!   checksums but a malformed archive yields `StateCorrupted`, never a panic.

use super::codec;
use super::columns::{offset_in, offset_of, search, ArchivedStateColumns};
use super::format::{corrupted, rkyv_format_flags, FileLayout, StateKind, HEADER_LEN};
use super::view_bytes::ViewBytes;
use crate::error::IoContext;
use crate::error::{Error, Result};
use crate::storage::{default_storage, MappedFile, Storage};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What one state file says about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The key is put with this value.
    Put(&'a [u8]),
    /// The key is deleted (deltas only).
    Deleted,
    /// The file does not mention the key.
    Absent,
}

/// Where one `ends` + `bytes` column pair lives in the file.
#[derive(Debug, Clone, Copy, Default)]
struct Column {
    ends: usize,
    count: usize,
    bytes: usize,
    bytes_len: usize,
}

/// A snapshot, delta or blob file opened in place (memory-mapped on the real file
/// system). Look-ups are binary searches over the mapped archive; each 64 KiB
/// block is checksummed the first time a read touches it.
///
/// The files highwater maps are immutable once published; nothing else may
/// modify them while they are mapped.
#[derive(Debug)]
pub struct StateFileView {
    path: PathBuf,
    src: ViewBytes,
    layout: FileLayout,
    verified: Box<[AtomicU64]>,
    keys: Column,
    values: Column,
    deleted: Column,
    big_endian: bool,
}

impl StateFileView {
    /// Opens a state file on the real file system.
    ///
    /// # Errors
    /// `Io` when the file cannot be opened or mapped; `StateCorrupted`,
    /// `StateChecksumMismatch` or `UnsupportedVersion` when its header, block
    /// table or archive root is damaged.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(default_storage().as_ref(), path)
    }

    /// Opens a state file through `storage`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(storage: &dyn Storage, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let map = storage.map_file(path).ctx("map", path)?;
        Self::from_mapped(path, map)
    }

    /// Views bytes already in memory (for example a loaded file).
    pub(crate) fn from_mapped(path: &Path, map: Arc<dyn MappedFile>) -> Result<Self> {
        #[cfg(feature = "encryption")]
        if crate::sealing::is_sealed(map.bytes()) {
            return Err(crate::crypto::sealed_without_key(path, map.bytes()));
        }
        let layout = FileLayout::parse(path, map.bytes())?;
        Self::with_layout(path, ViewBytes::Mapped(map), layout)
    }

    /// Views sealed file `path` (docs/FORMAT.md §8): only its header, block
    /// table and archive root are opened now, the rest as reads touch it.
    ///
    /// # Errors
    /// As [`open`](Self::open); the sealed file's errors.
    #[cfg(feature = "encryption")]
    pub(crate) fn from_sealed(path: &Path, mut sealed: crate::crypto::LazyOpened) -> Result<Self> {
        // The header says where the block table starts; both are opened
        // before the layout is parsed (it checks their CRCs as usual).
        let len = sealed.len();
        let header = sealed.get(0..HEADER_LEN.min(len))?;
        let payload_len = header
            .get(16..24)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
        let table_start = usize::try_from(payload_len)
            .unwrap_or(usize::MAX)
            .saturating_add(HEADER_LEN)
            .min(len);
        sealed.ensure(table_start..len)?;
        let layout = FileLayout::parse(path, sealed.all_exclusive())?;
        Self::with_layout(path, ViewBytes::Sealed(Box::new(sealed)), layout)
    }

    fn with_layout(path: &Path, src: ViewBytes, layout: FileLayout) -> Result<Self> {
        let blocks = layout.block_crcs.len();
        let mut view = StateFileView {
            path: path.to_path_buf(),
            layout,
            verified: (0..blocks.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            keys: Column::default(),
            values: Column::default(),
            deleted: Column::default(),
            big_endian: rkyv_format_flags() & 1 == 1,
            src,
        };
        if view.layout.header.kind != StateKind::Blob {
            view.locate_columns()?;
        }
        Ok(view)
    }

    /// Verifies the root object's blocks, accesses it with bytecheck and records
    /// where each column lives.
    fn locate_columns(&mut self) -> Result<()> {
        let payload_end = HEADER_LEN + self.layout.header.payload_len as usize;
        let root_len = std::mem::size_of::<ArchivedStateColumns>();
        let root_start = payload_end.saturating_sub(root_len).max(HEADER_LEN);
        self.ensure(root_start..payload_end)?;
        let file = self.src.all_exclusive();
        if !(file.as_ptr() as usize).is_multiple_of(16) {
            return Err(corrupted(
                &self.path,
                0,
                "mapped file is not 16-byte aligned; cannot read the archive in place",
            ));
        }
        let archived = codec::access(&self.path, self.layout.payload(file))?;
        let column = |ends: &[rkyv::primitive::ArchivedU64], bytes: &[u8]| Column {
            ends: offset_of(file, ends.as_ptr()) as usize,
            count: ends.len(),
            bytes: offset_in(file, bytes) as usize,
            bytes_len: bytes.len(),
        };
        self.keys = column(&archived.key_ends, &archived.keys);
        self.values = column(&archived.value_ends, &archived.values);
        self.deleted = column(&archived.deleted_ends, &archived.deleted);
        let h = &self.layout.header;
        if self.keys.count as u64 != h.entries
            || self.values.count as u64 != h.entries
            || self.deleted.count as u64 != h.deleted
        {
            return Err(corrupted(
                &self.path,
                root_start as u64,
                "archive entry counts differ from the header's",
            ));
        }
        Ok(())
    }

    /// Verifies (once) every block that overlaps `range` of the file.
    fn ensure(&self, range: Range<usize>) -> Result<()> {
        if range.start >= range.end || self.layout.block_crcs.is_empty() {
            return Ok(());
        }
        let shift = self.layout.header.block_shift;
        let first = (range.start.max(HEADER_LEN) - HEADER_LEN) >> shift;
        let last = (range.end.max(HEADER_LEN + 1) - HEADER_LEN - 1) >> shift;
        for block in first..=last.min(self.layout.block_crcs.len().saturating_sub(1)) {
            let (word, bit) = (block / 64, 1u64 << (block % 64));
            if self.verified[word].load(Ordering::Acquire) & bit != 0 {
                continue;
            }
            let bytes = self.src.get(self.layout.block_range(block))?;
            self.layout.verify_block_bytes(&self.path, bytes, block)?;
            self.verified[word].fetch_or(bit, Ordering::Release);
        }
        Ok(())
    }

    fn end_at(&self, c: &Column, i: usize) -> Result<u64> {
        let at = c.ends + 8 * i;
        self.ensure(at..at + 8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(self.src.get(at..at + 8)?);
        Ok(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// Item `i` of column `c`, verified and bounds-checked.
    fn item(&self, c: &Column, i: usize) -> Result<&[u8]> {
        let start = if i == 0 { 0 } else { self.end_at(c, i - 1)? };
        let end = self.end_at(c, i)?;
        if start > end || end > c.bytes_len as u64 {
            return Err(corrupted(
                &self.path,
                (c.ends + 8 * i) as u64,
                format!(
                    "end offset {end} of item {i} outside {start}..={}",
                    c.bytes_len
                ),
            ));
        }
        let range = c.bytes + start as usize..c.bytes + end as usize;
        self.ensure(range.clone())?;
        self.src.get(range)
    }

    fn require_archive(&self) -> Result<()> {
        if self.layout.header.kind == StateKind::Blob {
            return Err(Error::WrongStateKind {
                path: self.path.clone(),
                expected: "snapshot or delta",
                found: StateKind::Blob.name(),
            });
        }
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file holds.
    pub fn kind(&self) -> StateKind {
        self.layout.header.kind
    }

    /// Number of key/value pairs (keys put, for a delta), from the header.
    pub fn len(&self) -> usize {
        self.layout.header.entries as usize
    }

    /// True when the file holds no pair (and, for a delta, no deleted key).
    pub fn is_empty(&self) -> bool {
        self.layout.header.entries == 0 && self.layout.header.deleted == 0
    }

    /// Number of deleted keys (deltas only).
    pub fn deleted_len(&self) -> usize {
        self.layout.header.deleted as usize
    }

    /// Where the archive's columns lie (what a remote view decodes from the
    /// root object alone).
    #[cfg(test)]
    pub(crate) fn column_map(&self) -> super::column_map::ColumnMap {
        let span = |c: &Column| super::column_map::ColumnSpan {
            ends: c.ends as u64,
            count: c.count as u64,
            bytes: c.bytes as u64,
            bytes_len: c.bytes_len as u64,
        };
        super::column_map::ColumnMap {
            keys: span(&self.keys),
            values: span(&self.values),
            deleted: span(&self.deleted),
        }
    }

    /// How many of the payload's blocks were verified so far, and how many
    /// there are.
    pub(crate) fn verified_blocks(&self) -> (u64, u64) {
        let done = self
            .verified
            .iter()
            .map(|w| u64::from(w.load(Ordering::Acquire).count_ones()))
            .sum::<u64>();
        let total = self.layout.block_crcs.len() as u64;
        (done.min(total), total)
    }

    /// The mapped file's bytes (unverified beyond the header and table);
    /// `None` for a sealed file.
    pub(crate) fn mapped_bytes(&self) -> Option<&[u8]> {
        self.src.mapped()
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.src.file_len()
    }

    /// Key `i` (in key order) and its value.
    ///
    /// # Errors
    /// `StateChecksumMismatch` or `StateCorrupted` when the blocks holding it are
    /// damaged; `InvalidArgument` when `i >= len()`.
    pub fn entry(&self, i: usize) -> Result<(&[u8], &[u8])> {
        self.require_archive()?;
        if i >= self.keys.count {
            return Err(Error::invalid_argument(
                "StateFileView::entry",
                format!("entry {i} of a state with {} entries", self.keys.count),
            ));
        }
        Ok((self.item(&self.keys, i)?, self.item(&self.values, i)?))
    }

    /// The value of `key` if the file puts it (binary search over the mapping).
    ///
    /// # Errors
    /// `StateChecksumMismatch`/`StateCorrupted` for damaged blocks on the search
    /// path; `WrongStateKind` for a blob.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>> {
        Ok(match self.lookup(key)? {
            Lookup::Put(v) => Some(v),
            Lookup::Deleted | Lookup::Absent => None,
        })
    }

    /// What the file says about `key`: put, deleted or absent.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn lookup(&self, key: &[u8]) -> Result<Lookup<'_>> {
        self.require_archive()?;
        if let Ok(i) = search(self.keys.count, key, |i| self.item(&self.keys, i))? {
            return Ok(Lookup::Put(self.item(&self.values, i)?));
        }
        let deleted = search(self.deleted.count, key, |j| self.item(&self.deleted, j))?;
        Ok(if deleted.is_ok() {
            Lookup::Deleted
        } else {
            Lookup::Absent
        })
    }

    /// Deleted key `j` (in key order).
    ///
    /// # Errors
    /// As [`entry`](Self::entry).
    pub fn deleted_key(&self, j: usize) -> Result<&[u8]> {
        self.require_archive()?;
        if j >= self.deleted.count {
            return Err(Error::invalid_argument(
                "StateFileView::deleted_key",
                format!("deleted key {j} of {}", self.deleted.count),
            ));
        }
        self.item(&self.deleted, j)
    }

    /// All pairs in key order. Each item is a `Result` because a block is
    /// verified when the iteration reaches it.
    pub fn iter(&self) -> ViewIter<'_> {
        ViewIter {
            view: self,
            next: 0,
            end: self.keys.count,
        }
    }

    /// The pairs whose keys start with `prefix`.
    ///
    /// # Errors
    /// As [`get`](Self::get), for the search that finds the first key.
    pub fn prefix(&self, prefix: &[u8]) -> Result<impl Iterator<Item = Result<(&[u8], &[u8])>>> {
        self.require_archive()?;
        let (Ok(start) | Err(start)) =
            search(self.keys.count, prefix, |i| self.item(&self.keys, i))?;
        let prefix = prefix.to_vec();
        Ok(ViewIter {
            view: self,
            next: start,
            end: self.keys.count,
        }
        .take_while(move |r| match r {
            Ok((k, _)) => k.starts_with(&prefix),
            Err(_) => true,
        }))
    }

    /// The index of the first put key and of the first deleted key that are
    /// `>= key` (each equals its count when there is none).
    ///
    /// # Errors
    /// As [`get`](Self::get), for the two searches.
    pub(crate) fn lower_bound(&self, key: &[u8]) -> Result<(usize, usize)> {
        self.require_archive()?;
        let (Ok(put) | Err(put)) = search(self.keys.count, key, |i| self.item(&self.keys, i))?;
        let (Ok(del) | Err(del)) =
            search(self.deleted.count, key, |j| self.item(&self.deleted, j))?;
        Ok((put, del))
    }

    /// The payload of a blob file, after verifying every block.
    ///
    /// # Errors
    /// `WrongStateKind` for a snapshot or delta; `StateChecksumMismatch` for a
    /// damaged block.
    pub fn blob(&self) -> Result<&[u8]> {
        codec::expect_kind(&self.path, self.layout.header.kind, StateKind::Blob)?;
        self.verify_all()?;
        self.src
            .get(HEADER_LEN..HEADER_LEN + self.layout.header.payload_len as usize)
    }

    /// Verifies the whole file now: every block, the whole-payload CRC and the
    /// archive's invariants (sorted keys, consistent offsets).
    ///
    /// # Errors
    /// The first problem found, naming its offset.
    pub fn verify_all(&self) -> Result<()> {
        codec::verify(&self.path, self.src.get(0..self.src.len())?)?;
        for word in self.verified.iter() {
            word.store(u64::MAX, Ordering::Release);
        }
        Ok(())
    }
}

/// Iterator over a [`StateFileView`]'s pairs in key order.
#[derive(Debug, Clone)]
pub struct ViewIter<'a> {
    view: &'a StateFileView,
    next: usize,
    end: usize,
}

impl<'a> Iterator for ViewIter<'a> {
    type Item = Result<(&'a [u8], &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let item = self.view.entry(i);
        if item.is_err() {
            // Stop after reporting the damage once.
            self.next = self.end;
        }
        Some(item)
    }
}
