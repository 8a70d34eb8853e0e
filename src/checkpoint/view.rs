//! [`CheckpointStateView`]: a checkpoint part's state read in place, its delta
//! chain resolved at read time.
//!
//! Invariant: layers are ordered newest first and end with the snapshot the
//! deltas apply to; for any key, the newest layer that mentions it decides.

use crate::error::{Error, Result};
use crate::state::{Lookup, StateFileView, StateKind};

/// The state of one checkpoint part, read through memory maps of its snapshot and
/// deltas without deserialising them. Look-ups cost one binary search per layer.
#[derive(Debug)]
pub struct CheckpointStateView {
    layers: Vec<StateFileView>,
}

impl CheckpointStateView {
    pub(crate) fn new(layers: Vec<StateFileView>) -> Result<Self> {
        match layers.last() {
            Some(base) if base.kind() == StateKind::Snapshot => {}
            Some(base) => {
                return Err(Error::WrongStateKind {
                    path: base.path().to_path_buf(),
                    expected: StateKind::Snapshot.name(),
                    found: base.kind().name(),
                })
            }
            None => {
                return Err(Error::invalid_argument(
                    "CheckpointStateView",
                    "a view needs at least one file",
                ))
            }
        }
        Ok(CheckpointStateView { layers })
    }

    /// The mapped files, taken out of the view.
    pub(crate) fn into_layers(self) -> Vec<StateFileView> {
        self.layers
    }

    /// The mapped files, newest delta first, snapshot last.
    pub fn layers(&self) -> &[StateFileView] {
        &self.layers
    }

    /// The value of `key` in the resolved state.
    ///
    /// # Errors
    /// `StateChecksumMismatch` or `StateCorrupted` when a block on the search path
    /// is damaged.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>> {
        for layer in &self.layers {
            match layer.lookup(key)? {
                Lookup::Put(v) => return Ok(Some(v)),
                Lookup::Deleted => return Ok(None),
                Lookup::Absent => {}
            }
        }
        Ok(None)
    }

    /// All pairs of the resolved state in key order (a merge of the layers).
    pub fn iter(&self) -> MergedIter<'_> {
        MergedIter {
            view: self,
            puts: vec![0; self.layers.len()],
            deletes: vec![0; self.layers.len()],
            failed: false,
        }
    }

    /// The pairs of the resolved state whose keys are `>= start`, in key order
    /// (one binary search per layer, then a merge).
    ///
    /// # Errors
    /// As [`get`](Self::get), for the searches.
    pub fn iter_from(&self, start: &[u8]) -> Result<MergedIter<'_>> {
        let mut iter = self.iter();
        for (i, layer) in self.layers.iter().enumerate() {
            (iter.puts[i], iter.deletes[i]) = layer.lower_bound(start)?;
        }
        Ok(iter)
    }

    /// The pairs of the resolved state whose keys start with `prefix`, in key
    /// order.
    ///
    /// # Errors
    /// As [`iter_from`](Self::iter_from).
    pub fn prefix<'a>(
        &'a self,
        prefix: &'a [u8],
    ) -> Result<impl Iterator<Item = Result<(&'a [u8], &'a [u8])>> + 'a> {
        Ok(self.iter_from(prefix)?.take_while(move |r| match r {
            Ok((k, _)) => k.starts_with(prefix),
            Err(_) => true,
        }))
    }

    /// Number of keys in the resolved state. O(1) for a lone snapshot, a merge
    /// walk otherwise.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn len(&self) -> Result<usize> {
        if let [only] = self.layers.as_slice() {
            return Ok(only.len());
        }
        self.iter().try_fold(0usize, |n, r| r.map(|_| n + 1))
    }

    /// True when the resolved state holds no key.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.iter().next().transpose()?.is_none())
    }

    /// Verifies every block of every layer now.
    ///
    /// # Errors
    /// The first damage found.
    pub fn verify_all(&self) -> Result<()> {
        self.layers.iter().try_for_each(StateFileView::verify_all)
    }
}

/// A key and what one layer says of it (`Some(value)` put, `None` deleted).
type Candidate<'a> = (&'a [u8], Option<&'a [u8]>);

/// Iterator over a [`CheckpointStateView`]'s resolved pairs in key order.
#[derive(Debug)]
pub struct MergedIter<'a> {
    view: &'a CheckpointStateView,
    puts: Vec<usize>,
    deletes: Vec<usize>,
    failed: bool,
}

impl<'a> MergedIter<'a> {
    /// The smallest key any cursor points at, and which layer decides it.
    fn step(&mut self) -> Result<Option<(&'a [u8], &'a [u8])>> {
        loop {
            // (key, value if put / None if deleted) of the newest layer that
            // holds the smallest key seen so far.
            let mut best: Option<Candidate<'a>> = None;
            for (i, layer) in self.view.layers.iter().enumerate() {
                let put = if self.puts[i] < layer.len() {
                    Some(layer.entry(self.puts[i])?)
                } else {
                    None
                };
                let del = if self.deletes[i] < layer.deleted_len() {
                    Some(layer.deleted_key(self.deletes[i])?)
                } else {
                    None
                };
                // Within one layer a key is put or deleted, never both.
                let candidate = match (put, del) {
                    (Some((k, _)), Some(d)) if d < k => Some((d, None)),
                    (Some((k, v)), _) => Some((k, Some(v))),
                    (None, Some(d)) => Some((d, None)),
                    (None, None) => None,
                };
                if let Some((k, v)) = candidate {
                    // Strictly smaller keys win; on equal keys the newer (earlier)
                    // layer already holds the slot.
                    if best.is_none_or(|(bk, _)| k < bk) {
                        best = Some((k, v));
                    }
                }
            }
            let Some((key, value)) = best else {
                return Ok(None);
            };
            for (i, layer) in self.view.layers.iter().enumerate() {
                if self.puts[i] < layer.len() && layer.entry(self.puts[i])?.0 == key {
                    self.puts[i] += 1;
                }
                if self.deletes[i] < layer.deleted_len()
                    && layer.deleted_key(self.deletes[i])? == key
                {
                    self.deletes[i] += 1;
                }
            }
            if let Some(v) = value {
                return Ok(Some((key, v)));
            }
        }
    }
}

impl<'a> Iterator for MergedIter<'a> {
    type Item = Result<(&'a [u8], &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(item) => item.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
