//! The archived shape of a state: sorted keys and their values in separate byte
//! columns, with end offsets (FORMAT.md §2, "Archive").
//!
//! Invariants of a [`StateColumns`] built by this module or accepted by
//! [`validate`]: every `ends` column is non-decreasing and ends at its byte
//! column's length; `key_ends` and `value_ends` have the same length; keys are
//! strictly increasing; deleted keys are strictly increasing and disjoint from the
//! keys put. Code that indexes owned columns relies on these.

use super::format::{corrupted, HEADER_LEN};
use crate::error::Result;
use rkyv::primitive::ArchivedU64;
use std::cmp::Ordering;
use std::path::Path;

/// Keys, values and deleted keys, as archived in a state file.
#[derive(rkyv::Archive, rkyv::Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct StateColumns {
    pub key_ends: Vec<u64>,
    pub keys: Vec<u8>,
    pub value_ends: Vec<u64>,
    pub values: Vec<u8>,
    pub deleted_ends: Vec<u64>,
    pub deleted: Vec<u8>,
}

/// Start and end of item `i` in a column with end offsets `ends`.
pub(crate) fn bounds(ends: &[u64], i: usize) -> (usize, usize) {
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    (start, ends[i] as usize)
}

impl StateColumns {
    /// Appends a key/value pair; the caller appends keys in strictly increasing
    /// order.
    pub(crate) fn push_put(&mut self, key: &[u8], value: &[u8]) {
        debug_assert!(self.last_key().is_none_or(|last| last < key));
        self.keys.extend_from_slice(key);
        self.key_ends.push(self.keys.len() as u64);
        self.values.extend_from_slice(value);
        self.value_ends.push(self.values.len() as u64);
    }

    /// Appends a deleted key, in strictly increasing order.
    pub(crate) fn push_delete(&mut self, key: &[u8]) {
        self.deleted.extend_from_slice(key);
        self.deleted_ends.push(self.deleted.len() as u64);
    }

    fn last_key(&self) -> Option<&[u8]> {
        self.key_ends.len().checked_sub(1).map(|i| self.key(i))
    }

    /// Number of key/value pairs.
    pub(crate) fn len(&self) -> usize {
        self.key_ends.len()
    }

    /// Key `i`.
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        let (a, b) = bounds(&self.key_ends, i);
        &self.keys[a..b]
    }

    /// Value `i`.
    pub(crate) fn value(&self, i: usize) -> &[u8] {
        let (a, b) = bounds(&self.value_ends, i);
        &self.values[a..b]
    }

    /// Number of deleted keys.
    pub(crate) fn deleted_len(&self) -> usize {
        self.deleted_ends.len()
    }

    /// Deleted key `j`.
    pub(crate) fn deleted_key(&self, j: usize) -> &[u8] {
        let (a, b) = bounds(&self.deleted_ends, j);
        &self.deleted[a..b]
    }

    /// Index of `key` among the keys put (`Err` = where it would be inserted).
    pub(crate) fn find(&self, key: &[u8]) -> std::result::Result<usize, usize> {
        never_fails(search(self.len(), key, |i| Ok(self.key(i))))
    }

    /// Whether `key` is among the deleted keys.
    pub(crate) fn is_deleted(&self, key: &[u8]) -> bool {
        never_fails(search(self.deleted_ends.len(), key, |j| {
            Ok(self.deleted_key(j))
        }))
        .is_ok()
    }

    /// Bytes of key/value data (what a delta's size is measured in).
    pub(crate) fn data_bytes(&self) -> u64 {
        (self.keys.len() + self.values.len() + self.deleted.len()) as u64
    }

    /// Copies archived columns that [`validate`] accepted.
    pub(crate) fn from_archived(a: &ArchivedStateColumns) -> Self {
        let ends = |e: &[ArchivedU64]| e.iter().map(|v| v.to_native()).collect();
        StateColumns {
            key_ends: ends(&a.key_ends),
            keys: a.keys.as_slice().to_vec(),
            value_ends: ends(&a.value_ends),
            values: a.values.as_slice().to_vec(),
            deleted_ends: ends(&a.deleted_ends),
            deleted: a.deleted.as_slice().to_vec(),
        }
    }
}

fn never_fails<T>(r: std::result::Result<T, std::convert::Infallible>) -> T {
    match r {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

/// Binary search over `n` sorted keys, reading key `i` through `key_at` (which may
/// fail, for a lazily verified mapping).
pub(crate) fn search<K: AsRef<[u8]>, E>(
    n: usize,
    key: &[u8],
    mut key_at: impl FnMut(usize) -> std::result::Result<K, E>,
) -> std::result::Result<std::result::Result<usize, usize>, E> {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match key_at(mid)?.as_ref().cmp(key) {
            Ordering::Less => lo = mid + 1,
            Ordering::Greater => hi = mid,
            Ordering::Equal => return Ok(Ok(mid)),
        }
    }
    Ok(Err(lo))
}

/// File offset of the value at `ptr`, which lies inside `file`.
pub(crate) fn offset_of<T>(file: &[u8], ptr: *const T) -> u64 {
    (ptr as usize).saturating_sub(file.as_ptr() as usize) as u64
}

/// File offset of `inner` within `file` (both slices of the same buffer).
pub(crate) fn offset_in(file: &[u8], inner: &[u8]) -> u64 {
    offset_of(file, inner.as_ptr())
}

/// Checks one `ends` column against its byte column: non-decreasing, last end
/// equal to the byte column's length.
fn validate_ends(
    path: &Path,
    file: &[u8],
    name: &str,
    ends: &[ArchivedU64],
    bytes: &[u8],
) -> Result<()> {
    let mut prev = 0u64;
    for (i, end) in ends.iter().enumerate() {
        let end = end.to_native();
        if end < prev || end > bytes.len() as u64 {
            return Err(corrupted(
                path,
                offset_of(file, &ends[i] as *const ArchivedU64),
                format!(
                    "{name} end offset {i} is {end}, outside {prev}..={}",
                    bytes.len()
                ),
            ));
        }
        prev = end;
    }
    if prev != bytes.len() as u64 {
        return Err(corrupted(
            path,
            offset_in(file, bytes),
            format!(
                "{name} column holds {} bytes but its offsets end at {prev}",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// Checks every invariant of archived columns (O(entries)); `entries` and
/// `deleted` are the header's counts. `file` is the whole state file, used to
/// report offsets.
///
/// # Errors
/// `StateCorrupted` naming the offending column and its file offset.
pub(crate) fn validate(
    path: &Path,
    file: &[u8],
    a: &ArchivedStateColumns,
    entries: u64,
    deleted: u64,
) -> Result<()> {
    let at = |s: &[u8]| offset_in(file, s).max(HEADER_LEN as u64);
    if a.key_ends.len() as u64 != entries || a.value_ends.len() as u64 != entries {
        return Err(corrupted(
            path,
            at(&a.keys),
            format!(
                "archive holds {} keys and {} values, header says {entries}",
                a.key_ends.len(),
                a.value_ends.len()
            ),
        ));
    }
    if a.deleted_ends.len() as u64 != deleted {
        return Err(corrupted(
            path,
            at(&a.deleted),
            format!(
                "archive holds {} deleted keys, header says {deleted}",
                a.deleted_ends.len()
            ),
        ));
    }
    validate_ends(path, file, "key", &a.key_ends, &a.keys)?;
    validate_ends(path, file, "value", &a.value_ends, &a.values)?;
    validate_ends(path, file, "deleted key", &a.deleted_ends, &a.deleted)?;
    let key = |i: usize| archived_item(&a.key_ends, &a.keys, i);
    let del = |j: usize| archived_item(&a.deleted_ends, &a.deleted, j);
    for i in 1..a.key_ends.len() {
        if key(i - 1) >= key(i) {
            return Err(corrupted(
                path,
                at(key(i)),
                format!("key {i} is not greater than key {}", i - 1),
            ));
        }
    }
    for j in 0..a.deleted_ends.len() {
        if j > 0 && del(j - 1) >= del(j) {
            return Err(corrupted(
                path,
                at(del(j)),
                format!("deleted key {j} is not greater than deleted key {}", j - 1),
            ));
        }
        let put = never_fails(search(a.key_ends.len(), del(j), |i| Ok(key(i))));
        if put.is_ok() {
            return Err(corrupted(
                path,
                at(del(j)),
                format!("deleted key {j} is also put"),
            ));
        }
    }
    Ok(())
}

/// Item `i` of an archived column whose ends were validated.
pub(crate) fn archived_item<'a>(ends: &[ArchivedU64], bytes: &'a [u8], i: usize) -> &'a [u8] {
    let start = if i == 0 {
        0
    } else {
        ends[i - 1].to_native() as usize
    };
    &bytes[start..ends[i].to_native() as usize]
}
