//! The sorted base of a [`TrackedState`](super::TrackedState): every pair it held
//! at the last fold, in key order, in one byte arena, with a hash index over the
//! positions so that a point look-up costs one probe instead of a binary search.
//!
//! Invariants: keys are strictly increasing; `ends[i]` is (end of key `i`, end
//! of value `i`) in `data`, record `i` starting where record `i - 1`'s value
//! ends; `index` holds every position once, filed under the hash of its key.

use hashbrown::{DefaultHashBuilder, HashTable};
use std::cmp::Ordering;
use std::hash::BuildHasher;

/// A change as the layers hold it: `None` is a delete.
pub(super) type Slot<'a> = (&'a [u8], Option<&'a [u8]>);

/// Sorted pairs and a hash index over them. Immutable once built.
#[derive(Default)]
pub(super) struct Base {
    data: Vec<u8>,
    ends: Vec<(usize, usize)>,
    index: HashTable<usize>,
    hasher: DefaultHashBuilder,
}

impl Base {
    /// Builds a base from pairs in strictly increasing key order. `len` and
    /// `bytes` size the allocations (hints: wrong values cost only reallocation).
    pub(super) fn from_sorted<'a>(
        pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        len: usize,
        bytes: usize,
    ) -> Base {
        let mut data = Vec::with_capacity(bytes);
        let mut ends = Vec::with_capacity(len);
        for (k, v) in pairs {
            debug_assert!(ends.is_empty() || last_key(&data, &ends) < k);
            data.extend_from_slice(k);
            let key_end = data.len();
            data.extend_from_slice(v);
            ends.push((key_end, data.len()));
        }
        Self::indexed(data, ends)
    }

    fn indexed(data: Vec<u8>, ends: Vec<(usize, usize)>) -> Base {
        let hasher = DefaultHashBuilder::default();
        let mut index = HashTable::with_capacity(ends.len());
        let key = |i: usize| key_at(&data, &ends, i);
        for i in 0..ends.len() {
            // Every key is distinct (strictly increasing), so `insert_unique` holds.
            index.insert_unique(hasher.hash_one(key(i)), i, |&j| hasher.hash_one(key(j)));
        }
        Base {
            data,
            ends,
            index,
            hasher,
        }
    }

    /// Number of pairs.
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Key `i` (`i < len`).
    pub(super) fn key(&self, i: usize) -> &[u8] {
        key_at(&self.data, &self.ends, i)
    }

    /// Key and value `i` (`i < len`).
    pub(super) fn pair(&self, i: usize) -> (&[u8], &[u8]) {
        let (key_end, value_end) = self.ends[i];
        (self.key(i), &self.data[key_end..value_end])
    }

    /// The value of `key` (one hash probe).
    pub(super) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let hash = self.hasher.hash_one(key);
        self.index
            .find(hash, |&i| self.key(i) == key)
            .map(|&i| self.pair(i).1)
    }

    /// The first position whose key is not less than `key` (`strict`: greater
    /// than `key`).
    pub(super) fn position(&self, key: &[u8], strict: bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let go_right = match self.key(mid).cmp(key) {
                Ordering::Less => true,
                Ordering::Equal => strict,
                Ordering::Greater => false,
            };
            if go_right {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The base after applying `changes` (strictly increasing keys; a `None`
    /// deletes): one sorted merge, then a new index. Costs O(len + changes).
    pub(super) fn merged(&self, changes: &[Slot<'_>]) -> Base {
        let mut data = Vec::with_capacity(self.data.len() + changes.len() * 32);
        let mut ends = Vec::with_capacity(self.len() + changes.len());
        let mut push = |k: &[u8], v: &[u8]| {
            data.extend_from_slice(k);
            let key_end = data.len();
            data.extend_from_slice(v);
            ends.push((key_end, data.len()));
        };
        let merged = super::merge::Merged {
            base: self,
            next: 0,
            end: self.len(),
            changes: changes.iter().copied().peekable(),
        };
        for (k, v) in merged {
            push(k, v);
        }
        Self::indexed(data, ends)
    }
}

fn key_at<'a>(data: &'a [u8], ends: &[(usize, usize)], i: usize) -> &'a [u8] {
    let start = if i == 0 { 0 } else { ends[i - 1].1 };
    &data[start..ends[i].0]
}

fn last_key<'a>(data: &'a [u8], ends: &[(usize, usize)]) -> &'a [u8] {
    key_at(data, ends, ends.len() - 1)
}
