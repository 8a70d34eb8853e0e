//! Writing a snapshot's archive (FORMAT.md §2, "Archive") straight from its
//! pairs, in one pass, into any byte sink: the same bytes rkyv's serialiser
//! produces for the equivalent `StateColumns`, without building the columns
//! first.
//!
//! Invariant: for the same pairs, the bytes written are exactly those of
//! `rkyv::api::high::to_bytes_in(&columns)` at the same start position (each
//! column aligned for its element type and written in field order, then the
//! root object aligned for its type, holding for each column a relative
//! pointer and a length). The test `agrees_with_rkyv` below checks this
//! byte for byte, including empty columns and unaligned lengths.

use super::codec::check_estimate;
use super::columns::ArchivedStateColumns;
use super::snapshot_repr::Cols;
use crate::error::Result;
use rkyv::primitive::{ArchivedU64, ArchivedUsize};
use std::mem::{align_of, size_of};

/// Where archive bytes go: an in-memory buffer or a file stream.
pub(crate) trait ArchiveOut {
    /// Appends `bytes`.
    ///
    /// # Errors
    /// Whatever the sink fails with.
    fn put(&mut self, bytes: &[u8]) -> Result<()>;
    /// The position of the next byte (file offset: the header counts).
    fn pos(&self) -> usize;
}

impl ArchiveOut for rkyv::util::AlignedVec<16> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }
    fn pos(&self) -> usize {
        self.len()
    }
}

/// Whether this build's rkyv archives integers big-endian.
fn big_endian() -> bool {
    super::format::rkyv_format_flags() & 1 == 1
}

fn u64_bytes(v: u64, big: bool) -> [u8; 8] {
    if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

/// Pads `out` with zeros to a multiple of `align`; returns the new position.
fn pad<O: ArchiveOut>(out: &mut O, align: usize) -> Result<usize> {
    const ZEROS: [u8; 16] = [0; 16];
    let pos = out.pos();
    let padded = pos.next_multiple_of(align);
    let mut left = padded - pos;
    while left > 0 {
        let n = left.min(ZEROS.len());
        out.put(&ZEROS[..n])?;
        left -= n;
    }
    Ok(padded)
}

/// Writes the end offsets of `count` items whose lengths `len_of` gives.
fn put_ends<O: ArchiveOut>(
    out: &mut O,
    count: usize,
    mut len_of: impl FnMut(usize) -> usize,
) -> Result<usize> {
    let pos = pad(out, align_of::<ArchivedU64>())?;
    let big = big_endian();
    let mut chunk = [0u8; 4096];
    let mut fill = 0;
    let mut end = 0u64;
    for i in 0..count {
        end += len_of(i) as u64;
        chunk[fill..fill + 8].copy_from_slice(&u64_bytes(end, big));
        fill += 8;
        if fill == chunk.len() {
            out.put(&chunk)?;
            fill = 0;
        }
    }
    out.put(&chunk[..fill])?;
    Ok(pos)
}

/// Writes `count` byte items one after the other.
fn put_items<'a, O: ArchiveOut>(
    out: &mut O,
    count: usize,
    mut item: impl FnMut(usize) -> &'a [u8],
) -> Result<usize> {
    let pos = out.pos();
    for i in 0..count {
        out.put(item(i))?;
    }
    Ok(pos)
}

/// Writes one signed or unsigned archived integer of the build's width.
fn put_word<O: ArchiveOut>(out: &mut O, v: i64, big: bool) -> Result<()> {
    let width = size_of::<ArchivedUsize>();
    let bytes = if big {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    };
    if big {
        out.put(&bytes[8 - width..])
    } else {
        out.put(&bytes[..width])
    }
}

/// An upper bound of the archive's size for `n` pairs of `data` bytes.
pub(crate) fn estimate(n: usize, data: u64) -> u64 {
    data + 16 * n as u64 + 256
}

/// Writes the archive of the snapshot `cols` (no deleted keys) into `out`,
/// which is positioned after the header placeholder.
///
/// # Errors
/// `StateTooLarge`; whatever `out` fails with.
pub(crate) fn write_archive<O: ArchiveOut>(cols: &Cols<'_>, out: &mut O) -> Result<()> {
    let n = cols.len();
    let (key_bytes, value_bytes) = (cols.key_bytes(), cols.value_bytes());
    check_estimate(estimate(n, (key_bytes + value_bytes) as u64))?;
    let key_ends = put_ends(out, n, |i| cols.key(i).len())?;
    let keys = put_items(out, n, |i| cols.key(i))?;
    let value_ends = put_ends(out, n, |i| cols.value(i).len())?;
    let values = put_items(out, n, |i| cols.value(i))?;
    let deleted_ends = put_ends(out, 0, |_| 0)?;
    let deleted = out.pos();
    let root = pad(out, align_of::<ArchivedStateColumns>())?;
    let big = big_endian();
    let width = size_of::<ArchivedUsize>();
    let columns = [
        (key_ends, n),
        (keys, key_bytes),
        (value_ends, n),
        (values, value_bytes),
        (deleted_ends, 0),
        (deleted, 0),
    ];
    for (i, (at, len)) in columns.into_iter().enumerate() {
        let field = root + 2 * width * i;
        put_word(out, at as i64 - field as i64, big)?;
        put_word(out, len as i64, big)?;
    }
    debug_assert_eq!(out.pos() - root, size_of::<ArchivedStateColumns>());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::columns::StateColumns;
    use crate::state::format::new_file_buffer;
    use crate::state::snapshot_repr::SortedPairs;

    fn pairs(n: usize, salt: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let key = format!("{i:08}").into_bytes();
                let value = vec![(i * 7 + salt) as u8; (i * 13 + salt) % 11];
                (key, value)
            })
            .collect()
    }

    #[test]
    fn agrees_with_rkyv() {
        assert_eq!(
            size_of::<ArchivedStateColumns>(),
            12 * size_of::<ArchivedUsize>()
        );
        for (n, salt) in [(0, 0), (1, 0), (1, 3), (2, 5), (3, 1), (100, 2), (1000, 9)] {
            let pairs = pairs(n, salt);
            let mut columns = StateColumns::default();
            for (k, v) in &pairs {
                columns.push_put(k, v);
            }
            let pairs = pairs.into_iter().rev().collect();
            let expected = rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(
                &columns,
                new_file_buffer(0),
            )
            .expect("rkyv");
            let mut ours = new_file_buffer(0);
            let sorted = SortedPairs::new(pairs);
            write_archive(&Cols::Pairs(&sorted), &mut ours).expect("write");
            assert_eq!(
                ours.as_slice(),
                expected.as_slice(),
                "{n} pairs, salt {salt}"
            );
            let mut from_columns = new_file_buffer(0);
            write_archive(&Cols::Owned(&columns), &mut from_columns).expect("write");
            assert_eq!(from_columns.as_slice(), expected.as_slice());
        }
    }
}
