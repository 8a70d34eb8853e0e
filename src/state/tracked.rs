//! [`TrackedState`]: an operator's keyed state that remembers which keys changed
//! since the last checkpoint, so the operator gets its delta without tracking it
//! by hand.
//!
//! Invariant: `changed` holds exactly the keys whose value (or presence) may
//! differ from the state at the last [`TrackedState::mark_checkpointed`] (or
//! construction). A key put back to its old value stays in it; the delta then
//! carries a redundant put, which is harmless.

use super::delta::StateDelta;
use super::snapshot::StateSnapshot;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeBounds;

/// A keyed state map (bytewise key order) with change tracking.
///
/// Typical use: apply an operator's updates with [`put`](Self::put) and
/// [`delete`](Self::delete); at a checkpoint, write [`delta`](Self::delta) (or
/// [`snapshot`](Self::snapshot) for a full one) and, once the checkpoint is
/// durable, call [`mark_checkpointed`](Self::mark_checkpointed). If the checkpoint
/// fails, the changes stay tracked and the next delta includes them.
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
#[derive(Debug, Clone, Default)]
pub struct TrackedState {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    changed: BTreeSet<Vec<u8>>,
}

impl TrackedState {
    /// An empty state with nothing changed.
    pub fn new() -> Self {
        Self::default()
    }

    /// A state holding `snapshot`'s pairs, with nothing changed (as after
    /// restoring a checkpoint).
    pub fn from_snapshot(snapshot: &StateSnapshot) -> Self {
        TrackedState {
            map: snapshot
                .iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect(),
            changed: BTreeSet::new(),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(key).map(Vec::as_slice)
    }

    /// Sets `key` to `value` and marks it changed. Returns the previous value.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Option<Vec<u8>> {
        self.changed.insert(key.clone());
        self.map.insert(key, value)
    }

    /// Removes `key` and marks it changed. Returns the previous value.
    pub fn delete(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let old = self.map.remove(key);
        if old.is_some() {
            self.changed.insert(key.to_vec());
        }
        old
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
        self.map.len()
    }

    /// True when no key is present.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.map.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// Pairs whose keys fall in `range`, in key order.
    pub fn range<R: RangeBounds<Vec<u8>>>(
        &self,
        range: R,
    ) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.map
            .range(range)
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// Number of keys changed since the last checkpoint.
    pub fn changed_len(&self) -> usize {
        self.changed.len()
    }

    /// The changes since the last checkpoint, as a delta (puts with current
    /// values, deletes for keys now absent). Costs O(changes), not O(state).
    /// Does not clear the tracking: call [`mark_checkpointed`](Self::mark_checkpointed)
    /// once the checkpoint holding it is durable.
    pub fn delta(&self) -> StateDelta {
        StateDelta::from_sorted_changes(
            self.changed
                .iter()
                .map(|k| (k.as_slice(), self.map.get(k).map(Vec::as_slice))),
        )
    }

    /// The whole state as a snapshot.
    pub fn snapshot(&self) -> StateSnapshot {
        // BTreeMap iterates in strictly increasing key order.
        StateSnapshot::from_columns_sorted(self.iter())
    }

    /// Forgets the tracked changes: the state as it is now is what the last
    /// durable checkpoint holds.
    pub fn mark_checkpointed(&mut self) {
        self.changed.clear();
    }
}
