//! How a [`StateSnapshot`](super::StateSnapshot) holds its pairs, and one
//! read interface over every form.
//!
//! - `Pairs`: the caller's pairs, sorted and deduplicated in place
//!   (`StateSnapshot::new` keeps the vector instead of copying it).
//! - `Owned`: key and value columns built by merges and sorted iterators.
//! - `File`: a verified state file in shared bytes (restores, `from_bytes`),
//!   read in place.
//!
//! Every form is behind an `Arc`, so cloning a snapshot is cheap. Invariant
//! of all three: keys strictly increasing.

use super::columns::{search, StateColumns};
use super::shared::SharedState;
use std::sync::Arc;

/// Pairs sorted by key, keys unique, with their byte totals.
#[derive(Debug, Default)]
pub(crate) struct SortedPairs {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
    key_bytes: usize,
    value_bytes: usize,
}

impl SortedPairs {
    /// Sorts `pairs` by key (stably) and keeps the last pair of each key, in
    /// place (no pair is copied).
    pub(crate) fn new(mut pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        // A stable sort keeps equal keys in input order, so the last one of
        // each run is the one that wins. Sorted input costs one pass.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        // `dedup_by` keeps the first of a run: move each later pair into the
        // kept slot before the later one is dropped, so the last one stays.
        pairs.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        let (mut key_bytes, mut value_bytes) = (0, 0);
        for (k, v) in &pairs {
            key_bytes += k.len();
            value_bytes += v.len();
        }
        SortedPairs {
            pairs,
            key_bytes,
            value_bytes,
        }
    }
}

/// A snapshot's storage.
#[derive(Debug, Clone)]
pub(crate) enum Repr {
    Pairs(Arc<SortedPairs>),
    Owned(Arc<StateColumns>),
    File(Arc<SharedState>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Owned(Arc::default())
    }
}

impl Repr {
    /// The read interface.
    pub(crate) fn cols(&self) -> Cols<'_> {
        match self {
            Repr::Pairs(p) => Cols::Pairs(p),
            Repr::Owned(c) => Cols::Owned(c),
            Repr::File(f) => Cols::File(f),
        }
    }
}

/// Sorted pairs, read through whichever form holds them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cols<'a> {
    /// Sorted, unique pairs.
    Pairs(&'a SortedPairs),
    /// Columns (only their keys put are read here).
    Owned(&'a StateColumns),
    /// A verified snapshot file.
    File(&'a SharedState),
}

impl<'a> Cols<'a> {
    /// Number of pairs.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Cols::Pairs(p) => p.pairs.len(),
            Cols::Owned(c) => c.len(),
            Cols::File(f) => f.len(),
        }
    }

    /// Key `i`.
    #[inline]
    pub(crate) fn key(&self, i: usize) -> &'a [u8] {
        match *self {
            Cols::Pairs(p) => &p.pairs[i].0,
            Cols::Owned(c) => c.key(i),
            Cols::File(f) => f.key(i),
        }
    }

    /// Value `i`.
    #[inline]
    pub(crate) fn value(&self, i: usize) -> &'a [u8] {
        match *self {
            Cols::Pairs(p) => &p.pairs[i].1,
            Cols::Owned(c) => c.value(i),
            Cols::File(f) => f.value(i),
        }
    }

    /// Index of `key` (`Err` = where it would be inserted).
    pub(crate) fn find(&self, key: &[u8]) -> Result<usize, usize> {
        match search(self.len(), key, |i| {
            Ok::<_, std::convert::Infallible>(self.key(i))
        }) {
            Ok(found) => found,
            Err(never) => match never {},
        }
    }

    /// Bytes of all keys.
    pub(crate) fn key_bytes(&self) -> usize {
        match self {
            Cols::Pairs(p) => p.key_bytes,
            Cols::Owned(c) => c.keys.len(),
            Cols::File(f) => f.key_bytes(),
        }
    }

    /// Bytes of all values.
    pub(crate) fn value_bytes(&self) -> usize {
        match self {
            Cols::Pairs(p) => p.value_bytes,
            Cols::Owned(c) => c.values.len(),
            Cols::File(f) => f.value_bytes(),
        }
    }

    /// Bytes of keys and values.
    pub(crate) fn data_bytes(&self) -> u64 {
        (self.key_bytes() + self.value_bytes()) as u64
    }
}
