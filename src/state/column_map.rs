//! Where the columns of a state file's archive lie, decoded from the 48-byte
//! root object alone (FORMAT.md §2, "Archive"), for readers that do not hold
//! the whole file: a remote view fetches the root's block and then only the
//! blocks a look-up touches.
//!
//! Invariants of a [`ColumnMap`] returned by [`decode_root`]: every column
//! lies inside the payload, before the root, and starts at or after the end
//! of the column before it (rkyv's order of subtrees: a root is accepted
//! here exactly when rkyv's validation of the whole archive accepts its
//! columns); the root and the `ends` columns are aligned; the counts equal
//! the header's. The bytes of the columns are not
//! checked here (their blocks are verified when read, and every end offset
//! is bounds-checked by the reader).
//!
//! The decoding follows rkyv 0.8's layout for this build's format flags
//! (little-endian, 32-bit relative pointers, aligned): an `ArchivedVec` is a
//! 32-bit signed offset from its own position followed by a 32-bit length.
//! A unit test checks it against rkyv's own access of the same file.

use super::columns::ArchivedStateColumns;
use super::format::{corrupted, rkyv_format_flags, Header, HEADER_LEN};
use crate::error::Result;
use std::path::Path;

/// Size of the archive's root object (six `ArchivedVec`s).
pub(crate) const ROOT_LEN: usize = std::mem::size_of::<ArchivedStateColumns>();

/// The format flags [`decode_root`] can decode (rkyv's defaults).
const DECODABLE_FLAGS: u8 = 0x02;

/// One `ends` + `bytes` column pair, as file offsets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ColumnSpan {
    /// File offset of the first end offset (`count` little-endian `u64`s).
    pub ends: u64,
    /// Number of items.
    pub count: u64,
    /// File offset of the byte column.
    pub bytes: u64,
    /// Length of the byte column.
    pub bytes_len: u64,
}

/// The three column pairs of an archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ColumnMap {
    /// Keys put.
    pub keys: ColumnSpan,
    /// Their values.
    pub values: ColumnSpan,
    /// Keys deleted.
    pub deleted: ColumnSpan,
}

/// File offset of the root object of a payload of `header.payload_len` bytes.
pub(crate) fn root_offset(header: &Header) -> u64 {
    (HEADER_LEN as u64 + header.payload_len)
        .saturating_sub(ROOT_LEN as u64)
        .max(HEADER_LEN as u64)
}

/// Decodes the root object `root` (the [`ROOT_LEN`] bytes at
/// [`root_offset`], whose blocks the caller verified).
///
/// # Errors
/// `StateCorrupted` naming the offending field's file offset when a column
/// lies outside the payload, is misaligned, or holds another count than the
/// header; also when this build's rkyv layout is not the one decoded here.
pub(crate) fn decode_root(path: &Path, header: &Header, root: &[u8]) -> Result<ColumnMap> {
    let at = root_offset(header);
    if rkyv_format_flags() != DECODABLE_FLAGS || ROOT_LEN != 48 {
        return Err(corrupted(
            path,
            13,
            "this build's rkyv layout cannot be read without the whole file",
        ));
    }
    if root.len() != ROOT_LEN || header.payload_len < ROOT_LEN as u64 {
        return Err(corrupted(
            path,
            at,
            "payload too short for the archive root",
        ));
    }
    if !at.is_multiple_of(std::mem::align_of::<ArchivedStateColumns>() as u64) {
        return Err(corrupted(path, at, "the archive root is not aligned"));
    }
    // rkyv's validator requires each column to start at or after the end of
    // the one before it (its subtree ranges): the same here, so that a file
    // read remotely is accepted exactly when its mapped copy is.
    let floor = std::cell::Cell::new(HEADER_LEN as i64);
    let field = |i: usize, elem: u64| -> Result<(u64, u64)> {
        let pos = at + 8 * i as u64;
        let rel = i32::from_le_bytes(root[8 * i..8 * i + 4].try_into().expect("4 bytes"));
        let len = u32::from_le_bytes(root[8 * i + 4..8 * i + 8].try_into().expect("4 bytes"));
        let start = pos as i64 + i64::from(rel);
        let end = start.checked_add(i64::from(len) * elem as i64);
        match end {
            Some(end) if start >= floor.get() && end <= at as i64 => floor.set(end),
            _ => {
                return Err(corrupted(
                    path,
                    pos,
                    format!("archive column {i} ({len} items at relative offset {rel}) lies outside the payload or overlaps the column before it"),
                ))
            }
        }
        if elem == 8 && start % 8 != 0 {
            return Err(corrupted(
                path,
                pos,
                format!("archive column {i} is not 8-byte aligned"),
            ));
        }
        Ok((start as u64, u64::from(len)))
    };
    let pair = |i: usize| -> Result<ColumnSpan> {
        let (ends, count) = field(i, 8)?;
        let (bytes, bytes_len) = field(i + 1, 1)?;
        Ok(ColumnSpan {
            ends,
            count,
            bytes,
            bytes_len,
        })
    };
    let map = ColumnMap {
        keys: pair(0)?,
        values: pair(2)?,
        deleted: pair(4)?,
    };
    if map.keys.count != header.entries
        || map.values.count != header.entries
        || map.deleted.count != header.deleted
    {
        return Err(corrupted(
            path,
            at,
            "archive entry counts differ from the header's",
        ));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::format::FileLayout;
    use crate::state::{StateFileView, StateSnapshot};

    #[test]
    fn decoded_root_matches_rkyv() {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..5000u32)
            .map(|i| {
                (
                    format!("key-{i:06}").into_bytes(),
                    vec![i as u8; (i % 97) as usize],
                )
            })
            .collect();
        let file = StateSnapshot::new(pairs).to_bytes().unwrap();
        let path = Path::new("snapshot");
        let layout = FileLayout::parse(path, &file).unwrap();
        let at = root_offset(&layout.header) as usize;
        let map = decode_root(path, &layout.header, &file[at..at + ROOT_LEN]).unwrap();
        let view = StateFileView::from_mapped(
            path,
            std::sync::Arc::new(crate::storage::LoadedFile::from_bytes(&file)),
        )
        .unwrap();
        assert_eq!(map, view.column_map());
    }

    #[test]
    fn a_column_outside_the_payload_is_refused() {
        let file = StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())])
            .to_bytes()
            .unwrap();
        let path = Path::new("snapshot");
        let layout = FileLayout::parse(path, &file).unwrap();
        let at = root_offset(&layout.header) as usize;
        let mut root = file[at..at + ROOT_LEN].to_vec();
        root[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decode_root(path, &layout.header, &root).unwrap_err();
        assert!(
            matches!(err, crate::Error::StateCorrupted { offset, .. } if offset == at as u64 + 8),
            "{err}"
        );
    }

    proptest::proptest! {
        /// Any 48 bytes as a root, under any header that could describe a
        /// snapshot: an error or a map whose columns lie inside the payload,
        /// never a panic or an overflow.
        #[test]
        fn any_root_is_a_map_inside_the_payload_or_an_error(
            root in proptest::collection::vec(proptest::prelude::any::<u8>(), ROOT_LEN),
            payload_len in 48u64..(1 << 40),
            entries in 0u64..(1 << 20),
        ) {
            let header = Header {
                kind: crate::state::StateKind::Snapshot,
                format_flags: rkyv_format_flags(),
                block_shift: 16,
                payload_len,
                entries,
                deleted: 0,
                payload_crc: 0,
                table_crc: 0,
            };
            if let Ok(map) = decode_root(Path::new("f"), &header, &root) {
                let at = root_offset(&header);
                for c in [map.keys, map.values, map.deleted] {
                    proptest::prop_assert!(c.ends >= HEADER_LEN as u64 && c.ends + 8 * c.count <= at);
                    proptest::prop_assert!(c.bytes >= HEADER_LEN as u64 && c.bytes + c.bytes_len <= at);
                }
            }
        }
    }
}
