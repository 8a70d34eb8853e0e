//! [`RemoteStateFile`]: one state file of a committed checkpoint, read from
//! the object store a block at a time.
//!
//! Invariants:
//! - Opening fetches the header (verified by its CRC, then checked against
//!   the record's size), then the file's tail: the block table (verified by
//!   the header's table CRC) and the payload blocks holding the archive's
//!   root (verified against the table). The record's whole-file CRC32C is
//!   derived from the header and table and must equal the record's: the
//!   record pins the header, the header pins the table, the table pins
//!   every block.
//! - A byte is returned only from a block whose CRC32C matched the table.
//!   A block that does not match is an error for the read that needed it
//!   (`StateChecksumMismatch` naming the key and the block's offset), is not
//!   cached and is fetched again by the next read: never a wrong value. A
//!   block fetched ahead of a read (for a scan) that does not match is not
//!   an error for that read: the read that needs it fails on it.
//! - Cached blocks are bounded by the shared [`BlockCache`] (each cached
//!   block owns its bytes: no slice of a larger request's buffer); the set
//!   of blocks verified so far is kept (a bitmap) even when a block is
//!   evicted.

use super::block_cache::BlockCache;
use crate::blob::{BlobError, BlobKey, BlobStore};
use crate::checkpoint::remote::record::RemoteFile;
use crate::checkpoint::remote::retry;
use crate::error::{Error, Result};
use crate::state::column_map::{self, ColumnMap, ColumnSpan, ROOT_LEN};
use crate::state::format::{corrupted, FileLayout, Header, HEADER_LEN};
use crate::state::StateKind;
use bytes::Bytes;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests and bytes a view sent.
#[derive(Debug, Default)]
pub(crate) struct FetchCounts {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

/// Which missing blocks a read fetches besides those it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// The missing blocks after the needed ones, up to this many blocks in
    /// all (scans move forward).
    Ahead(usize),
    /// The missing blocks of the aligned group of this many blocks around
    /// the needed ones (a binary search probes on both sides).
    Around(usize),
}

/// Only the blocks a read needs.
pub(crate) const EXACT: Window = Window::Ahead(1);
/// Scans: up to 1 MiB of 64 KiB blocks ahead per request.
pub(crate) const SCAN: Window = Window::Ahead(16);
/// Binary searches: the aligned 1 MiB group around a probe that misses, so
/// the search's later probes fall in blocks already fetched and a cold
/// `get` costs a few requests per column instead of one per level.
pub(crate) const SEARCH: Window = Window::Around(16);

/// What a read needs besides the file: the store, the shared block cache,
/// the view's counts.
#[derive(Clone, Copy)]
pub(crate) struct Fetch<'a> {
    pub store: &'a dyn BlobStore,
    pub cache: &'a BlockCache,
    pub counts: &'a FetchCounts,
}

/// A remote state file, opened.
#[derive(Debug)]
pub(crate) struct RemoteStateFile {
    /// The object.
    key: BlobKey,
    /// The key as a path, for errors.
    path: PathBuf,
    layout: FileLayout,
    columns: ColumnMap,
    /// Blocks verified so far (one bit each).
    verified: Box<[AtomicU64]>,
    /// This file's number in the shared cache.
    id: u64,
}

impl RemoteStateFile {
    /// Opens `file` (object `key`): two ranged gets (the header, then the
    /// tail: the root's blocks and the block table).
    ///
    /// # Errors
    /// `Blob` for a failed request; `StateCorrupted`,
    /// `StateChecksumMismatch` or `UnsupportedVersion` for a damaged header,
    /// table or root; `CheckpointFileMismatch` when the header and table do
    /// not derive the record's CRC32C or size.
    pub(crate) fn open(
        store: &dyn BlobStore,
        key: &BlobKey,
        file: &RemoteFile,
        id: u64,
        cache: &BlockCache,
        counts: &FetchCounts,
    ) -> Result<Self> {
        let path = PathBuf::from(key.as_str());
        let head = get(store, key, 0..(HEADER_LEN as u64).min(file.size), counts)?;
        let header = Header::decode(&path, &head, file.size)?;
        let payload_end = HEADER_LEN as u64 + header.payload_len;
        let block = 1u64 << header.block_shift;
        let root_at = column_map::root_offset(&header);
        // From the start of the block holding the root's first byte to the
        // end of the file (the table).
        let tail_from = if header.payload_len == 0 {
            payload_end
        } else {
            HEADER_LEN as u64 + (root_at - HEADER_LEN as u64) / block * block
        };
        let tail = get(store, key, tail_from..file.size, counts)?;
        let split = (payload_end - tail_from) as usize;
        let layout = FileLayout::with_table(&path, header, &tail[split..])?;
        let mut head_bytes = [0u8; HEADER_LEN];
        head_bytes.copy_from_slice(&head[..HEADER_LEN]);
        let crc = crate::state::layout_crc(&head_bytes, header.payload_len, tail.len() - split);
        if crc != file.crc32c {
            return Err(Error::CheckpointFileMismatch {
                path,
                expected_size: file.size,
                actual_size: file.size,
                expected_crc: file.crc32c,
                actual_crc: crc,
            });
        }
        let blocks = layout.block_crcs.len();
        let mut this = RemoteStateFile {
            key: key.clone(),
            path,
            layout,
            columns: ColumnMap::default(),
            verified: (0..blocks.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            id,
        };
        // The root's blocks, verified and cached, then the root decoded.
        let first = this.block_of(tail_from);
        this.accept(first, &tail.slice(..split), (first, usize::MAX), cache)?;
        if header.kind != StateKind::Blob {
            let root = this.read(
                root_at..root_at + ROOT_LEN as u64,
                &Fetch {
                    store,
                    cache,
                    counts,
                },
                EXACT,
            )?;
            this.columns = column_map::decode_root(&this.path, &header, &root)?;
        }
        Ok(this)
    }

    /// The object's key as a path (what errors name).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// What the file holds.
    pub(crate) fn kind(&self) -> StateKind {
        self.layout.header.kind
    }

    /// The archive's columns.
    pub(crate) fn columns(&self) -> &ColumnMap {
        &self.columns
    }

    /// Blocks verified so far, as ranges of block numbers, and the count of
    /// blocks.
    pub(crate) fn verified_ranges(&self) -> (Vec<Range<u64>>, u64) {
        let total = self.layout.block_crcs.len() as u64;
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for b in 0..total {
            if self.is_verified(b as usize) {
                match ranges.last_mut() {
                    Some(r) if r.end == b => r.end = b + 1,
                    _ => ranges.push(b..b + 1),
                }
            }
        }
        (ranges, total)
    }

    fn is_verified(&self, block: usize) -> bool {
        self.verified[block / 64].load(Ordering::Acquire) & (1 << (block % 64)) != 0
    }

    /// The block holding file offset `at` (a payload offset).
    fn block_of(&self, at: u64) -> usize {
        ((at.max(HEADER_LEN as u64) - HEADER_LEN as u64) >> self.layout.header.block_shift) as usize
    }

    /// Verifies the consecutive blocks from `first` held in `bytes` (which
    /// start at block `first`'s offset) and caches them. Blocks outside
    /// `needed` (inclusive) were fetched around the read: one that does not
    /// match is skipped without an error (the read that needs it will fail
    /// on it).
    fn accept(
        &self,
        first: usize,
        bytes: &Bytes,
        needed: (usize, usize),
        cache: &BlockCache,
    ) -> Result<()> {
        let mut at = 0usize;
        let mut block = first;
        while at < bytes.len() && block < self.layout.block_crcs.len() {
            let range = self.layout.block_range(block);
            let len = range.len();
            let piece = bytes.slice(at..(at + len).min(bytes.len()));
            let actual = crc32c::crc32c(&piece);
            let expected = self.layout.block_crcs[block];
            if piece.len() != len || actual != expected {
                if block < needed.0 || block > needed.1 {
                    at += len;
                    block += 1;
                    continue;
                }
                return Err(Error::StateChecksumMismatch {
                    path: self.path.clone(),
                    region: "payload block",
                    offset: range.start as u64,
                    expected,
                    actual,
                });
            }
            // A copy: a slice would keep the whole request's buffer alive
            // (the cache's budget counts blocks, not buffers).
            cache.insert(self.id, block, Bytes::copy_from_slice(&piece));
            self.verified[block / 64].fetch_or(1 << (block % 64), Ordering::AcqRel);
            at += len;
            block += 1;
        }
        Ok(())
    }

    /// The verified bytes of file range `range` (inside the payload):
    /// cached blocks, and one ranged get for each run of missing ones,
    /// widened to the missing blocks of the aligned group of `window`
    /// blocks around it (searches and scans: fewer, larger requests).
    ///
    /// # Errors
    /// `Blob` for a failed request; `StateChecksumMismatch` for a block that
    /// does not match the table; `StateCorrupted` for a range outside the
    /// payload.
    pub(crate) fn read(&self, range: Range<u64>, f: &Fetch<'_>, window: Window) -> Result<Vec<u8>> {
        let payload_end = HEADER_LEN as u64 + self.layout.header.payload_len;
        if range.start < HEADER_LEN as u64 || range.end > payload_end || range.start > range.end {
            return Err(corrupted(
                &self.path,
                range.start,
                format!("read {range:?} outside the payload"),
            ));
        }
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        if range.is_empty() {
            return Ok(out);
        }
        let (first, last) = (self.block_of(range.start), self.block_of(range.end - 1));
        let mut block = first;
        while block <= last {
            if let Some(bytes) = f.cache.get(self.id, block) {
                self.copy_part(block, &bytes, &range, &mut out);
                block += 1;
                continue;
            }
            // Fetch the missing blocks around this one, within its aligned
            // group of `window` blocks (a binary search's later probes fall
            // in the blocks of its earlier ones), and at least to `last`;
            // take every needed block from the fetched bytes (the cache may
            // already have evicted the run's first blocks for its last ones).
            let (group, size) = match window {
                Window::Ahead(n) => (block, n.max(1)),
                Window::Around(n) => (block - block % n.max(1), n.max(1)),
            };
            let mut start = block;
            while start > group && f.cache.get(self.id, start - 1).is_none() {
                start -= 1;
            }
            let mut end = block + 1;
            let limit = (group + size)
                .max(last + 1)
                .min(self.layout.block_crcs.len());
            while end < limit && (end <= last || f.cache.get(self.id, end).is_none()) {
                end += 1;
            }
            let from = self.layout.block_range(start).start;
            let to = self.layout.block_range(end - 1).end;
            let fetched = get(f.store, &self.key, from as u64..to as u64, f.counts)?;
            self.accept(start, &fetched, (block, last), f.cache)?;
            for b in block..end.min(last + 1) {
                let r = self.layout.block_range(b);
                self.copy_part(b, &fetched[r.start - from..r.end - from], &range, &mut out);
            }
            block = end;
        }
        Ok(out)
    }

    /// Appends the part of block `block` (its verified bytes `bytes`) that
    /// lies in file range `range`.
    fn copy_part(&self, block: usize, bytes: &[u8], range: &Range<u64>, out: &mut Vec<u8>) {
        let r = self.layout.block_range(block);
        let lo = range.start.max(r.start as u64) - r.start as u64;
        let hi = range.end.min(r.end as u64) - r.start as u64;
        out.extend_from_slice(&bytes[lo as usize..hi as usize]);
    }

    /// End offset `i` of column `c`.
    pub(crate) fn end_at(
        &self,
        c: &ColumnSpan,
        i: u64,
        f: &Fetch<'_>,
        window: Window,
    ) -> Result<u64> {
        let at = c.ends + 8 * i;
        let b = self.read(at..at + 8, f, window)?;
        Ok(u64::from_le_bytes(b[..8].try_into().expect("8 bytes")))
    }

    /// Item `i` of column `c`, bounds-checked against its byte column.
    pub(crate) fn item(
        &self,
        c: &ColumnSpan,
        i: u64,
        f: &Fetch<'_>,
        window: Window,
    ) -> Result<Vec<u8>> {
        // A search probes the ends column itself (fetch around the probe);
        // a scan reads it in order, 8 bytes per item (only what it needs).
        let ends_window = match window {
            Window::Around(_) => window,
            Window::Ahead(_) => EXACT,
        };
        let start = if i == 0 {
            0
        } else {
            self.end_at(c, i - 1, f, ends_window)?
        };
        let end = self.end_at(c, i, f, ends_window)?;
        if start > end || end > c.bytes_len {
            return Err(corrupted(
                &self.path,
                c.ends + 8 * i,
                format!(
                    "end offset {end} of item {i} outside {start}..={}",
                    c.bytes_len
                ),
            ));
        }
        self.read(c.bytes + start..c.bytes + end, f, window)
    }
}

/// A ranged get, retried while it changed nothing and may succeed.
fn get(
    store: &dyn BlobStore,
    key: &BlobKey,
    range: Range<u64>,
    counts: &FetchCounts,
) -> Result<Bytes> {
    let want = range.end - range.start;
    let bytes = retry::retried("get", key.as_str(), || {
        counts.requests.fetch_add(1, Ordering::Relaxed);
        store.get_range(key, range.clone())
    })
    .map_err(|e| match e {
        BlobError::InvalidRange { size, .. } => Error::CheckpointFileMismatch {
            path: PathBuf::from(key.as_str()),
            expected_size: range.end,
            actual_size: size,
            expected_crc: 0,
            actual_crc: 0,
        },
        e => Error::Blob(e),
    })?;
    if bytes.len() as u64 != want {
        return Err(Error::Blob(BlobError::Backend {
            operation: crate::blob::BlobOp::Get,
            key: key.to_string(),
            reason: format!("range {range:?} answered with {} bytes", bytes.len()),
        }));
    }
    counts.bytes.fetch_add(want, Ordering::Relaxed);
    crate::metrics::remote_view_fetch(want);
    Ok(bytes)
}
