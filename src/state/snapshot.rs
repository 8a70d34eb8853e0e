//! [`StateSnapshot`]: a full keyed state, owned, sorted by key.

use super::codec::{self, StateBytes};
use super::columns::StateColumns;
use super::delta::StateDelta;
use super::format::StateKind;
use crate::error::{Error, Result};
use std::ops::{Bound, RangeBounds};

/// A full keyed state: unique keys in bytewise order, each with a value.
///
/// Stored as two byte columns with end offsets, which is also its archived form,
/// so [`to_bytes`](StateSnapshot::to_bytes) and
/// [`from_bytes`](StateSnapshot::from_bytes) are close to a copy. For reading a
/// large snapshot from a file without loading it, use
/// [`StateFileView`](super::StateFileView).
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateSnapshot {
    columns: StateColumns,
}

impl StateSnapshot {
    /// Builds a snapshot from pairs in any order. When a key appears more than
    /// once, the last pair wins (as if the pairs were applied as puts in order).
    pub fn new(mut pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        // A stable sort keeps equal keys in input order, so the last one of each
        // run is the one that wins.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut columns = StateColumns::default();
        let n = pairs.len();
        for i in 0..n {
            if i + 1 < n && pairs[i].0 == pairs[i + 1].0 {
                continue;
            }
            columns.push_put(&pairs[i].0, &pairs[i].1);
        }
        StateSnapshot { columns }
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
        Ok(StateSnapshot { columns })
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
        StateSnapshot { columns }
    }

    pub(crate) fn columns(&self) -> &StateColumns {
        &self.columns
    }

    /// Encodes the snapshot as a state file (FORMAT.md §2): header, rkyv archive,
    /// block checksums.
    ///
    /// # Errors
    /// `StateTooLarge` when the state cannot be archived in one file.
    pub fn to_bytes(&self) -> Result<StateBytes> {
        codec::encode(&self.columns, StateKind::Snapshot)
    }

    /// Decodes a state file written by [`to_bytes`](Self::to_bytes), verifying the
    /// header, every block checksum and the archive's invariants first.
    ///
    /// # Errors
    /// `StateCorrupted`, `StateChecksumMismatch` or `UnsupportedVersion` for
    /// damaged or foreign bytes, `WrongStateKind` for a delta or blob.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_file_bytes(codec::memory_path(), bytes)
    }

    pub(crate) fn from_file_bytes(path: &std::path::Path, bytes: &[u8]) -> Result<Self> {
        let columns = codec::decode(path, bytes, StateKind::Snapshot)?;
        Ok(StateSnapshot { columns })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// True when the snapshot holds no key.
    pub fn is_empty(&self) -> bool {
        self.columns.len() == 0
    }

    /// The value of `key`, if present (binary search).
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.columns.find(key).ok().map(|i| self.columns.value(i))
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.columns.find(key).is_ok()
    }

    /// All pairs in key order.
    pub fn iter(&self) -> SnapshotIter<'_> {
        SnapshotIter {
            columns: &self.columns,
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
        let index = |key: &[u8]| match self.columns.find(key) {
            Ok(i) | Err(i) => i,
        };
        let next = match range.start_bound() {
            Bound::Included(k) => index(k),
            Bound::Excluded(k) => match self.columns.find(k) {
                Ok(i) => i + 1,
                Err(i) => i,
            },
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(k) => match self.columns.find(k) {
                Ok(i) => i + 1,
                Err(i) => i,
            },
            Bound::Excluded(k) => index(k),
            Bound::Unbounded => self.len(),
        };
        SnapshotIter {
            columns: &self.columns,
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
        let base = &self.columns;
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
        StateSnapshot { columns: out }
    }

    /// The pairs as owned vectors, in key order.
    pub fn to_pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    }

    /// Bytes of keys and values held.
    pub fn data_bytes(&self) -> u64 {
        self.columns.data_bytes()
    }
}

/// Iterator over a [`StateSnapshot`]'s pairs in key order.
#[derive(Debug, Clone)]
pub struct SnapshotIter<'a> {
    columns: &'a StateColumns,
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
