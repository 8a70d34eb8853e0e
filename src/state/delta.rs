//! [`StateDelta`]: the keys put and deleted since a parent state.

use super::codec::{self, StateBytes};
use super::columns::StateColumns;
use super::format::StateKind;
use super::snapshot::StateSnapshot;
use crate::error::Result;
use std::collections::BTreeMap;

/// The changes from a parent state to a child state: keys put (with their new
/// values) and keys deleted, each sorted, the two sets disjoint. Stored in the same
/// file format as a snapshot (kind "delta"); its size is proportional to the
/// changes, not to the state.
///
/// ```
/// use highwater::{StateDelta, StateSnapshot};
/// let base = StateSnapshot::new(vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
/// let delta = StateDelta::from_changes(vec![
///     (b"a".to_vec(), Some(b"10".to_vec())),
///     (b"b".to_vec(), None),
/// ]);
/// let next = base.apply(&delta);
/// assert_eq!(next.get(b"a"), Some(&b"10"[..]));
/// assert_eq!(next.get(b"b"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateDelta {
    columns: StateColumns,
}

impl StateDelta {
    /// Builds a delta from changes in the order they happened: `Some(value)` is a
    /// put, `None` a delete. For a key changed more than once, the last change
    /// wins.
    pub fn from_changes(changes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>) -> Self {
        let last: BTreeMap<Vec<u8>, Option<Vec<u8>>> = changes.into_iter().collect();
        Self::from_sorted_changes(last.iter().map(|(k, v)| (k.as_slice(), v.as_deref())))
    }

    /// Builds a delta from changes with strictly increasing keys.
    pub(crate) fn from_sorted_changes<'a>(
        changes: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) -> Self {
        let mut columns = StateColumns::default();
        for (key, value) in changes {
            match value {
                Some(v) => columns.push_put(key, v),
                None => columns.push_delete(key),
            }
        }
        StateDelta { columns }
    }

    /// The delta that turns `old` into `new` (a sorted merge of both).
    pub fn diff(old: &StateSnapshot, new: &StateSnapshot) -> Self {
        let mut columns = StateColumns::default();
        let mut a = old.iter().peekable();
        let mut b = new.iter().peekable();
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(&(k, _)), None) => {
                    columns.push_delete(k);
                    a.next();
                }
                (None, Some(&(k, v))) => {
                    columns.push_put(k, v);
                    b.next();
                }
                (Some(&(ka, va)), Some(&(kb, vb))) => match ka.cmp(kb) {
                    std::cmp::Ordering::Less => {
                        columns.push_delete(ka);
                        a.next();
                    }
                    std::cmp::Ordering::Greater => {
                        columns.push_put(kb, vb);
                        b.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if va != vb {
                            columns.push_put(kb, vb);
                        }
                        a.next();
                        b.next();
                    }
                },
            }
        }
        StateDelta { columns }
    }

    pub(crate) fn columns(&self) -> &StateColumns {
        &self.columns
    }

    /// Encodes the delta as a state file of kind "delta".
    ///
    /// # Errors
    /// `StateTooLarge` when the changes cannot be archived in one file.
    pub fn to_bytes(&self) -> Result<StateBytes> {
        codec::encode(&self.columns, StateKind::Delta)
    }

    /// Decodes a delta file, verifying it first.
    ///
    /// # Errors
    /// As [`StateSnapshot::from_bytes`]; `WrongStateKind` for a snapshot or blob.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_file_bytes(codec::memory_path(), bytes)
    }

    pub(crate) fn from_file_bytes(path: &std::path::Path, bytes: &[u8]) -> Result<Self> {
        let columns = codec::decode(path, bytes, StateKind::Delta)?;
        Ok(StateDelta { columns })
    }

    /// Number of changes (puts plus deletes).
    pub fn len(&self) -> usize {
        self.columns.len() + self.columns.deleted_len()
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the delta says about `key`: `Some(Some(value))` put, `Some(None)`
    /// deleted, `None` unchanged.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        if let Ok(i) = self.columns.find(key) {
            return Some(Some(self.columns.value(i)));
        }
        self.columns.is_deleted(key).then_some(None)
    }

    /// The keys put, with their values, in key order.
    pub fn puts(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.columns.len()).map(|i| (self.columns.key(i), self.columns.value(i)))
    }

    /// The keys deleted, in key order.
    pub fn deletes(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.columns.deleted_len()).map(|j| self.columns.deleted_key(j))
    }

    /// Bytes of keys and values the delta carries.
    pub fn data_bytes(&self) -> u64 {
        self.columns.data_bytes()
    }
}
