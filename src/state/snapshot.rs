//! [`StateSnapshot`]: a full keyed state, sorted by key, held as the
//! caller's pairs, as columns, or as a verified state file in shared bytes
//! (`snapshot_repr`).

use super::codec::{self, StateBytes};
use super::columns::StateColumns;
use super::delta::StateDelta;
use super::shared::{copy_aligned, SharedState};
use super::snapshot_repr::{Cols, Repr, SortedPairs};
use crate::error::{Error, Result};
use crate::storage::MappedFile;
use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

/// A full keyed state: unique keys in bytewise order, each with a value.
///
/// A snapshot built by [`new`](StateSnapshot::new) keeps the caller's pairs
/// (sorted in place); one restored from a file or from
/// [`from_bytes`](StateSnapshot::from_bytes) reads the verified state file in
/// place (the archive's key and value columns), so restoring costs one
/// verification pass and no copy. Cloning is cheap in every form (the pairs
/// are shared). For reading a large snapshot from a file without verifying
/// all of it first, use [`StateFileView`](super::StateFileView).
///
/// ```
/// use highwater::StateSnapshot;
/// # fn main() -> highwater::Result<()> {
/// let snap = StateSnapshot::new(vec![
///     (b"b".to_vec(), b"2".to_vec()),
///     (b"a".to_vec(), b"1".to_vec()),
/// ]);
/// let bytes = snap.to_bytes()?;
/// let back = StateSnapshot::from_bytes(&bytes)?;
/// assert_eq!(back.get(b"a"), Some(&b"1"[..]));
/// assert_eq!(back.iter().map(|(k, _)| k).collect::<Vec<_>>(), [b"a", b"b"]);
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct StateSnapshot {
    repr: Repr,
}

impl PartialEq for StateSnapshot {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for StateSnapshot {}

impl fmt::Debug for StateSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl StateSnapshot {
    /// Builds a snapshot from pairs in any order. When a key appears more than
    /// once, the last pair wins (as if the pairs were applied as puts in order).
    /// The pairs are sorted in place and kept: nothing is copied.
    pub fn new(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        StateSnapshot {
            repr: Repr::Pairs(Arc::new(SortedPairs::new(pairs))),
        }
    }

    /// Builds a snapshot from pairs already in strictly increasing key order (for
    /// example a `BTreeMap`'s iterator), without sorting.
    ///
    /// # Errors
    /// `InvalidArgument` when a key is not greater than the one before it.
    pub fn from_sorted<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut columns = StateColumns::default();
        for (i, (k, v)) in pairs.into_iter().enumerate() {
            let k = k.as_ref();
            if i > 0 && columns.key(i - 1) >= k {
                return Err(Error::invalid_argument(
                    "StateSnapshot::from_sorted",
                    format!("key {i} is not greater than the key before it"),
                ));
            }
            columns.push_put(k, v.as_ref());
        }
        Ok(Self::from_columns(columns))
    }

    /// Builds a snapshot from pairs the caller guarantees are strictly
    /// increasing (a `BTreeMap`'s order).
    pub(crate) fn from_columns_sorted<'a>(
        pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Self {
        let mut columns = StateColumns::default();
        for (k, v) in pairs {
            columns.push_put(k, v);
        }
        Self::from_columns(columns)
    }

    fn from_columns(columns: StateColumns) -> Self {
        StateSnapshot {
            repr: Repr::Owned(Arc::new(columns)),
        }
    }

    /// The pairs, for writers (`file_writer::write_columns`).
    pub(crate) fn columns(&self) -> Cols<'_> {
        self.repr.cols()
    }

    /// Encodes the snapshot as a state file (FORMAT.md §2): header, rkyv archive,
    /// block checksums, written once into one buffer. A snapshot restored from
    /// a state file returns that file's verified bytes, shared (no copy).
    ///
    /// # Errors
    /// `StateTooLarge` when the state cannot be archived in one file.
    pub fn to_bytes(&self) -> Result<StateBytes> {
        codec::encode_snapshot(&self.columns())
    }

    /// Decodes a state file written by [`to_bytes`](Self::to_bytes), verifying the
    /// header, every block checksum and the archive's invariants first. The
    /// bytes are copied once (into an aligned buffer the snapshot then reads in
    /// place).
    ///
    /// # Errors
    /// `StateCorrupted`, `StateChecksumMismatch` or `UnsupportedVersion` for
    /// damaged or foreign bytes, `WrongStateKind` for a delta or blob.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_file_bytes(codec::memory_path(), bytes)
    }

    pub(crate) fn from_file_bytes(path: &Path, bytes: &[u8]) -> Result<Self> {
        Self::from_shared(path, copy_aligned(bytes))
    }

    /// Verifies the whole snapshot file `file` (named `path` in errors) and
    /// stands over it, without copying: the header, every block checksum and
    /// the archive's invariants, before this returns.
    ///
    /// # Errors
    /// As [`from_bytes`](Self::from_bytes).
    pub(crate) fn from_shared(path: &Path, file: Arc<dyn MappedFile>) -> Result<Self> {
        Ok(StateSnapshot {
            repr: Repr::File(Arc::new(SharedState::open(path, file)?)),
        })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.columns().len()
    }

    /// True when the snapshot holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of `key`, if present (binary search).
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let cols = self.columns();
        cols.find(key).ok().map(|i| cols.value(i))
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.columns().find(key).is_ok()
    }

    /// All pairs in key order.
    pub fn iter(&self) -> SnapshotIter<'_> {
        SnapshotIter {
            columns: self.columns(),
            next: 0,
            end: self.len(),
        }
    }

    /// The pairs whose keys fall in `range`, in key order.
    ///
    /// ```
    /// # use highwater::StateSnapshot;
    /// let snap = StateSnapshot::new((0u8..10).map(|i| (vec![i], vec![i])).collect());
    /// let keys: Vec<_> = snap.range(&[3u8][..]..&[6u8][..]).map(|(k, _)| k[0]).collect();
    /// assert_eq!(keys, [3, 4, 5]);
    /// ```
    pub fn range<'r, R: RangeBounds<&'r [u8]>>(&self, range: R) -> SnapshotIter<'_> {
        let columns = self.columns();
        let index = |key: &[u8]| match columns.find(key) {
            Ok(i) | Err(i) => i,
        };
        let next = match range.start_bound() {
            Bound::Included(k) => index(k),
            Bound::Excluded(k) => match columns.find(k) {
                Ok(i) => i + 1,
                Err(i) => i,
            },
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(k) => match columns.find(k) {
                Ok(i) => i + 1,
                Err(i) => i,
            },
            Bound::Excluded(k) => index(k),
            Bound::Unbounded => self.len(),
        };
        SnapshotIter {
            columns,
            next,
            end: end.max(next),
        }
    }

    /// The pairs whose keys start with `prefix`, in key order.
    pub fn prefix(&self, prefix: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let prefix = prefix.to_vec();
        let start = prefix.clone();
        self.range(&start[..]..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
    }

    /// The state after applying `delta`: its deleted keys removed, its puts set.
    /// Costs one pass over both (a sorted merge).
    pub fn apply(&self, delta: &StateDelta) -> StateSnapshot {
        let base = self.columns();
        let d = delta.columns();
        let mut out = StateColumns::default();
        // Three sorted streams: base pairs (i), puts (j) and deleted keys (k).
        let (mut i, mut j, mut k) = (0, 0, 0);
        while i < base.len() || j < d.len() {
            let take_base = j == d.len() || (i < base.len() && base.key(i) < d.key(j));
            if take_base {
                let key = base.key(i);
                while k < d.deleted_len() && d.deleted_key(k) < key {
                    k += 1;
                }
                if k == d.deleted_len() || d.deleted_key(k) != key {
                    out.push_put(key, base.value(i));
                }
                i += 1;
            } else {
                if i < base.len() && base.key(i) == d.key(j) {
                    i += 1;
                }
                out.push_put(d.key(j), d.value(j));
                j += 1;
            }
        }
        Self::from_columns(out)
    }

    /// The pairs as owned vectors, in key order.
    pub fn to_pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    }

    /// Bytes of keys and values held.
    pub fn data_bytes(&self) -> u64 {
        self.columns().data_bytes()
    }
}

/// Iterator over a [`StateSnapshot`]'s pairs in key order.
#[derive(Debug, Clone)]
pub struct SnapshotIter<'a> {
    columns: Cols<'a>,
    next: usize,
    end: usize,
}

impl<'a> Iterator for SnapshotIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        Some((self.columns.key(i), self.columns.value(i)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for SnapshotIter<'_> {}

impl<'a> IntoIterator for &'a StateSnapshot {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = SnapshotIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
