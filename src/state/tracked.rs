//! [`TrackedState`]: an operator's keyed state that remembers which keys changed
//! since the last checkpoint, so the operator gets its delta without tracking it
//! by hand, and can freeze those changes for a checkpoint written on another
//! thread ([`TrackedState::freeze`], [`FrozenChanges`]).
//!
//! Layout (newest first; a look-up takes the first layer holding the key):
//! - `active`: changes since the last durable checkpoint or the last freeze;
//! - `frozen`: changes handed to a checkpoint in flight (or one that failed),
//!   an immutable layer shared with its [`FrozenChanges`];
//! - `settled`: changes already durable, not yet folded into the base;
//! - `base`: sorted pairs in one arena with a hash index (`base.rs`).
//!
//! The three change layers are hash maps (`None` = deleted), so a put costs a
//! probe per layer; ordered reads merge the base's sorted run with the sorted
//! changes. When `settled` outgrows a quarter of the base it is folded into a
//! new base (one sorted merge, O(state)); since that takes a quarter of the
//! state's size in changes, a fold costs O(1) amortised per change.
//!
//! Invariants: the keys changed since the last durable checkpoint are exactly
//! the keys of `active` and `frozen` (`changed` counts them); a key put back to
//! its old value stays changed (the delta then carries a redundant put, which
//! is harmless); `len` is the number of keys present.

mod base;
mod frozen;
mod merge;
#[cfg(test)]
mod tests;

pub use frozen::{FreezeId, FrozenChanges};

use super::delta::StateDelta;
use super::snapshot::StateSnapshot;
use base::Base;
use frozen::{delta_of, sorted_union};
use hashbrown::hash_map::Entry;
use merge::Merged;
use std::fmt;
use std::mem;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// One layer of changes: a key's new value, `None` when it was deleted.
type Changes = hashbrown::HashMap<Vec<u8>, Option<Vec<u8>>>;

/// Folding `settled` into the base waits for this many changes beyond a
/// quarter of the base (small states fold often; each fold is small).
const FOLD_MIN: usize = 4;

/// The most changes a new, empty change layer is sized for up front (it
/// starts as large as the layer it replaces, up to this; it grows as any
/// hash map does beyond it).
const MAX_PRESIZED_CHANGES: usize = 1 << 16;

/// A keyed state map (bytewise key order) with change tracking.
///
/// Typical use: apply an operator's updates with [`put`](Self::put) and
/// [`delete`](Self::delete); at a checkpoint, write [`delta`](Self::delta) (or
/// [`snapshot`](Self::snapshot) for a full one) and, once the checkpoint is
/// durable, call [`mark_checkpointed`](Self::mark_checkpointed). If the checkpoint
/// fails, the changes stay tracked and the next delta includes them. For a
/// checkpoint written on another thread, see [`freeze`](Self::freeze).
///
/// Costs: `get`, `put` and `delete` are hash probes (at most four);
/// `delta` sorts the changed keys only; `snapshot` and `iter` merge the sorted
/// base with the sorted changes; `from_snapshot` copies the pairs once and
/// indexes them.
///
/// ```
/// use highwater::TrackedState;
/// let mut state = TrackedState::new();
/// state.put(b"a".to_vec(), b"1".to_vec());
/// state.mark_checkpointed();
/// state.put(b"b".to_vec(), b"2".to_vec());
/// state.delete(b"a");
/// let delta = state.delta();
/// assert_eq!(delta.puts().count(), 1);
/// assert_eq!(delta.deletes().collect::<Vec<_>>(), [b"a"]);
/// ```
#[derive(Clone, Default)]
pub struct TrackedState {
    base: Arc<Base>,
    settled: Changes,
    frozen: Option<Frozen>,
    active: Changes,
    len: usize,
    changed: usize,
    next_freeze: u64,
}

/// The frozen layer and the freeze whose outcome is awaited (`None` once it
/// failed or was superseded: the layer then only stays tracked).
#[derive(Clone)]
struct Frozen {
    changes: Arc<Changes>,
    awaiting: Option<FreezeId>,
}

impl TrackedState {
    /// An empty state with nothing changed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A state holding `snapshot`'s pairs, with nothing changed (as after
    /// restoring a checkpoint). Copies the pairs once into the state's own
    /// arena and builds its hash index: O(state).
    pub fn from_snapshot(snapshot: &StateSnapshot) -> Self {
        let base = Base::from_sorted(
            snapshot.iter(),
            snapshot.len(),
            usize::try_from(snapshot.data_bytes()).unwrap_or(0),
        );
        TrackedState {
            len: base.len(),
            base: Arc::new(base),
            ..Self::default()
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        match self.active.get(key) {
            Some(slot) => slot.as_deref(),
            None => below_active(&self.base, &self.settled, self.frozen.as_ref(), key).0,
        }
    }

    /// Sets `key` to `value` and marks it changed. Returns the previous value.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Option<Vec<u8>> {
        let TrackedState {
            base,
            settled,
            frozen,
            active,
            len,
            changed,
            ..
        } = self;
        match active.entry(key) {
            Entry::Occupied(mut slot) => {
                let old = slot.get_mut().replace(value);
                *len += usize::from(old.is_none());
                old
            }
            Entry::Vacant(slot) => {
                let (old, in_frozen) = below_active(base, settled, frozen.as_ref(), slot.key());
                let old = old.map(<[u8]>::to_vec);
                *changed += usize::from(!in_frozen);
                *len += usize::from(old.is_none());
                slot.insert(Some(value));
                old
            }
        }
    }

    /// Removes `key` and marks it changed. Returns the previous value.
    pub fn delete(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        if let Some(slot) = self.active.get_mut(key) {
            let old = slot.take();
            self.len -= usize::from(old.is_some());
            return old;
        }
        let (old, in_frozen) = below_active(&self.base, &self.settled, self.frozen.as_ref(), key);
        let old = old?.to_vec();
        self.changed += usize::from(!in_frozen);
        self.len -= 1;
        self.active.insert(key.to_vec(), None);
        Some(old)
    }

    /// Applies one change in the form recovery reports them (`None` = delete).
    pub fn apply_change(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        match value {
            Some(v) => {
                self.put(key, v);
            }
            None => {
                self.delete(&key);
            }
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no key is present.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The change layers, newest first.
    fn layers(&self) -> Vec<&Changes> {
        let mut layers = vec![&self.active];
        layers.extend(self.frozen.as_ref().map(|f| &*f.changes));
        layers.push(&self.settled);
        layers
    }

    /// Pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.range::<std::ops::RangeFull>(..)
    }

    /// Pairs whose keys fall in `range`, in key order.
    pub fn range<R: RangeBounds<Vec<u8>>>(
        &self,
        range: R,
    ) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let start = match range.start_bound() {
            Bound::Included(k) => self.base.position(k, false),
            Bound::Excluded(k) => self.base.position(k, true),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(k) => self.base.position(k, true),
            Bound::Excluded(k) => self.base.position(k, false),
            Bound::Unbounded => self.base.len(),
        };
        let changes = sorted_union(&self.layers(), |k| in_range(&range, k));
        Merged {
            base: &self.base,
            next: start,
            end: end.max(start),
            changes: changes.into_iter().peekable(),
        }
    }

    /// Number of keys changed since the last checkpoint.
    pub fn changed_len(&self) -> usize {
        self.changed
    }

    /// The changes since the last checkpoint, as a delta (puts with current
    /// values, deletes for keys now absent). Costs O(changes · log changes)
    /// (a sort of the changed keys), not O(state).
    /// Does not clear the tracking: call [`mark_checkpointed`](Self::mark_checkpointed)
    /// once the checkpoint holding it is durable.
    pub fn delta(&self) -> StateDelta {
        match &self.frozen {
            Some(f) => delta_of(&[&self.active, &f.changes]),
            None => delta_of(&[&self.active]),
        }
    }

    /// The whole state as a snapshot (a merge of the sorted base with the
    /// sorted changes: O(state + changes · log changes)).
    pub fn snapshot(&self) -> StateSnapshot {
        // The merge yields strictly increasing keys (the base's are, the
        // changes are sorted with one entry per key, and a change replaces the
        // base's pair of the same key).
        StateSnapshot::from_columns_sorted(self.iter())
    }

    /// Forgets the tracked changes: the state as it is now is what the last
    /// durable checkpoint holds. Any freeze awaiting its outcome is settled too
    /// (its changes are part of the state now), so reporting its outcome
    /// afterwards does nothing.
    pub fn mark_checkpointed(&mut self) {
        if let Some(frozen) = self.frozen.take() {
            absorb(&mut self.settled, unshare(frozen.changes));
        }
        let room = self.active.len().min(MAX_PRESIZED_CHANGES);
        let active = mem::replace(&mut self.active, Changes::with_capacity(room));
        absorb(&mut self.settled, active);
        self.changed = 0;
        self.maybe_fold();
    }

    /// Freezes the changes since the last durable checkpoint for a checkpoint
    /// written on another thread, in O(1): the current change layer becomes an
    /// immutable layer shared with the returned [`FrozenChanges`] (which the
    /// state keeps reading through) and a new empty layer takes the writes.
    /// Turn the result into a delta with [`FrozenChanges::into_delta`] (off
    /// this thread), and report the checkpoint's outcome with
    /// [`checkpoint_succeeded`](Self::checkpoint_succeeded) or
    /// [`checkpoint_failed`](Self::checkpoint_failed). Until then, the changes
    /// stay tracked: [`delta`](Self::delta) and [`changed_len`](Self::changed_len)
    /// include them.
    ///
    /// One freeze is meant to be outstanding at a time. Freezing again before
    /// the outcome of the previous freeze is reported (or after it failed)
    /// merges the two layers into one new frozen layer (O(changes) then) that
    /// holds every change since the last durable checkpoint, so its delta is
    /// correct whatever happened to the earlier checkpoint; the earlier
    /// [`FreezeId`] is superseded and reporting its outcome does nothing.
    ///
    /// ```
    /// use highwater::TrackedState;
    /// let mut state = TrackedState::new();
    /// state.put(b"a".to_vec(), b"1".to_vec());
    /// let frozen = state.freeze();
    /// let id = frozen.id();
    /// let writer = std::thread::spawn(move || frozen.into_delta()); // writes the checkpoint
    /// state.put(b"b".to_vec(), b"2".to_vec()); // processing goes on meanwhile
    /// let delta = writer.join().unwrap();
    /// assert_eq!(delta.len(), 1);
    /// assert!(state.checkpoint_succeeded(id));
    /// assert_eq!(state.changed_len(), 1, "b stays tracked for the next delta");
    /// assert_eq!(state.delta().puts().collect::<Vec<_>>(), [(&b"b"[..], &b"2"[..])]);
    /// ```
    pub fn freeze(&mut self) -> FrozenChanges {
        let id = FreezeId(self.next_freeze);
        self.next_freeze += 1;
        // The next layer starts with room for as many changes as this one
        // (up to a bound: a bulk load must not leave a huge empty table).
        let room = self.active.len().min(MAX_PRESIZED_CHANGES);
        let mut changes = mem::replace(&mut self.active, Changes::with_capacity(room));
        if let Some(older) = self.frozen.take() {
            absorb_older(&mut changes, unshare(older.changes));
        }
        let changes = Arc::new(changes);
        self.frozen = Some(Frozen {
            changes: Arc::clone(&changes),
            awaiting: Some(id),
        });
        FrozenChanges { id, changes }
    }

    /// Reports that the checkpoint carrying freeze `id` is durable: its changes
    /// are no longer tracked, the changes made since the freeze stay tracked
    /// for the next delta. Returns false, changing nothing, when `id` is not the
    /// freeze awaiting its outcome (superseded by a later freeze, already
    /// reported, or settled by [`mark_checkpointed`](Self::mark_checkpointed)).
    ///
    /// Costs O(frozen changes): they move into the settled layer (a copy when a
    /// [`FrozenChanges`] of that layer is still alive, so drop it first), and
    /// may trigger a fold into the base (amortised O(1) per change).
    pub fn checkpoint_succeeded(&mut self, id: FreezeId) -> bool {
        let Some(frozen) = self.frozen.take_if(|f| f.awaiting == Some(id)) else {
            return false;
        };
        absorb(&mut self.settled, unshare(frozen.changes));
        self.changed = self.active.len();
        self.maybe_fold();
        true
    }

    /// Reports that the checkpoint carrying freeze `id` failed: its changes stay
    /// tracked, so the next [`delta`](Self::delta) or [`freeze`](Self::freeze)
    /// includes them. Returns false when `id` is not the freeze awaiting its
    /// outcome. O(1).
    pub fn checkpoint_failed(&mut self, id: FreezeId) -> bool {
        match &mut self.frozen {
            Some(f) if f.awaiting == Some(id) => {
                f.awaiting = None;
                true
            }
            _ => false,
        }
    }

    /// The freeze awaiting its outcome, if any.
    pub fn outstanding_freeze(&self) -> Option<FreezeId> {
        self.frozen.as_ref().and_then(|f| f.awaiting)
    }

    /// Folds `settled` into a new base once it outgrows a quarter of the base.
    fn maybe_fold(&mut self) {
        if self.settled.len() <= self.base.len() / 4 + FOLD_MIN {
            return;
        }
        let changes = sorted_union(&[&self.settled], |_| true);
        let base = self.base.merged(&changes);
        self.base = Arc::new(base);
        self.settled = Changes::default();
    }
}

impl fmt::Debug for TrackedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedState")
            .field("len", &self.len)
            .field("changed_len", &self.changed)
            .field("base_len", &self.base.len())
            .field("settled_len", &self.settled.len())
            .field("frozen_len", &self.frozen.as_ref().map(|f| f.changes.len()))
            .field("outstanding_freeze", &self.outstanding_freeze())
            .finish()
    }
}

/// The value of `key` in the layers under `active`, and whether `frozen`
/// holds it (then it already counts as changed).
fn below_active<'a>(
    base: &'a Base,
    settled: &'a Changes,
    frozen: Option<&'a Frozen>,
    key: &[u8],
) -> (Option<&'a [u8]>, bool) {
    if let Some(slot) = frozen.and_then(|f| f.changes.get(key)) {
        return (slot.as_deref(), true);
    }
    match settled.get(key) {
        Some(slot) => (slot.as_deref(), false),
        None => (base.get(key), false),
    }
}

fn in_range<R: RangeBounds<Vec<u8>>>(range: &R, key: &[u8]) -> bool {
    let after_start = match range.start_bound() {
        Bound::Included(s) => key >= s.as_slice(),
        Bound::Excluded(s) => key > s.as_slice(),
        Bound::Unbounded => true,
    };
    let before_end = match range.end_bound() {
        Bound::Included(e) => key <= e.as_slice(),
        Bound::Excluded(e) => key < e.as_slice(),
        Bound::Unbounded => true,
    };
    after_start && before_end
}

/// The layer's entries, moved out when no one else holds it, else copied.
fn unshare(layer: Arc<Changes>) -> Changes {
    Arc::try_unwrap(layer).unwrap_or_else(|shared| (*shared).clone())
}

/// Adds the `newer` changes to `into` (newer wins), moving the smaller map into
/// the larger one.
fn absorb(into: &mut Changes, mut newer: Changes) {
    if into.len() < newer.len() {
        mem::swap(into, &mut newer);
        absorb_older(into, newer);
    } else {
        into.extend(newer);
    }
}

/// Adds the `older` changes to `into` where `into` has no change of that key.
fn absorb_older(into: &mut Changes, older: Changes) {
    for (k, v) in older {
        into.entry(k).or_insert(v);
    }
}
