//! [`FrozenChanges`]: the changes a [`TrackedState`](super::TrackedState) froze
//! for an asynchronous checkpoint, immutable and shareable with another thread.

use super::base::Slot;
use super::Changes;
use crate::state::delta::StateDelta;
use std::fmt;
use std::sync::Arc;

/// Names one [`TrackedState::freeze`](super::TrackedState::freeze), so the state
/// can be told the outcome of the checkpoint that carried it
/// ([`checkpoint_succeeded`](super::TrackedState::checkpoint_succeeded),
/// [`checkpoint_failed`](super::TrackedState::checkpoint_failed)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FreezeId(pub(super) u64);

/// The changes of a [`TrackedState`](super::TrackedState) since its last durable
/// checkpoint, frozen by [`TrackedState::freeze`](super::TrackedState::freeze):
/// an immutable, reference-counted layer (`Send + Sync + 'static`) that the live
/// state keeps reading through while new writes go to a fresh layer.
///
/// Turn it into the [`StateDelta`] to write with [`into_delta`](Self::into_delta)
/// or [`to_delta`](Self::to_delta), on any thread: that is where the sorting and
/// copying happen (O(changes · log changes) time, one copy of the changed keys
/// and values), not in `freeze`.
///
/// ```
/// use highwater::TrackedState;
/// let mut state = TrackedState::new();
/// state.put(b"a".to_vec(), b"1".to_vec());
/// let frozen = state.freeze();
/// let delta = std::thread::spawn(move || frozen.into_delta()).join().unwrap();
/// assert_eq!(delta.puts().collect::<Vec<_>>(), [(&b"a"[..], &b"1"[..])]);
/// ```
#[derive(Clone)]
pub struct FrozenChanges {
    pub(super) id: FreezeId,
    pub(super) changes: Arc<Changes>,
}

impl FrozenChanges {
    /// The freeze this is; pass it to
    /// [`checkpoint_succeeded`](super::TrackedState::checkpoint_succeeded) or
    /// [`checkpoint_failed`](super::TrackedState::checkpoint_failed).
    pub fn id(&self) -> FreezeId {
        self.id
    }

    /// Number of keys changed (puts and deletes).
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// True when nothing changed since the last durable checkpoint.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The frozen changes as a delta (puts with their values at the freeze,
    /// deletes for keys absent then). Sorts the changed keys and copies them
    /// and their values: O(changes · log changes); meant to run off the
    /// operator's thread.
    pub fn to_delta(&self) -> StateDelta {
        delta_of(&[&self.changes])
    }

    /// Like [`to_delta`](Self::to_delta), consuming the handle (the live state
    /// keeps its own reference to the layer, so the cost is the same).
    pub fn into_delta(self) -> StateDelta {
        self.to_delta()
    }
}

impl fmt::Debug for FrozenChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrozenChanges")
            .field("id", &self.id)
            .field("len", &self.len())
            .finish()
    }
}

/// The changes of `layers` (newest first: a key's first occurrence wins) as a
/// delta.
pub(super) fn delta_of(layers: &[&Changes]) -> StateDelta {
    let sorted = sorted_union(layers, |_| true);
    StateDelta::from_sorted_changes(sorted.into_iter())
}

/// The entries of `layers` (newest first) whose keys pass `keep`, one per key
/// (the newest), sorted by key.
pub(super) fn sorted_union<'a>(
    layers: &[&'a Changes],
    keep: impl Fn(&[u8]) -> bool,
) -> Vec<Slot<'a>> {
    let total = layers.iter().map(|l| l.len()).sum();
    let mut out: Vec<Slot<'a>> = Vec::with_capacity(total);
    for (n, layer) in layers.iter().enumerate() {
        let newer = &layers[..n];
        out.extend(
            layer
                .iter()
                .filter(|(k, _)| keep(k) && !newer.iter().any(|l| l.contains_key(k.as_slice())))
                .map(|(k, v)| (k.as_slice(), v.as_deref())),
        );
    }
    out.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out
}
