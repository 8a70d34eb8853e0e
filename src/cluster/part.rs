//! A worker's part files: its state (full) or its changes (delta) over its
//! key-group range, keys stored behind their group's prefix, with the group
//! index a range restore reads by (docs/DISTRIBUTED.md, "Layout by group").
//!
//! Invariants:
//! - Every stored key's group is the group of its user key and lies in the
//!   worker's range; a key outside the range is refused before anything is
//!   written (it would be restored by another worker, or lost).
//! - The group index entries are the first position of each group in the
//!   file's sorted put and deleted columns, and the columns' lengths last.

use super::key_group::{group_prefix, KeyGroupRange, KeyGroups, GROUP_PREFIX_LEN};
use crate::error::{Error, Result};
use crate::state::{StateDelta, StateSnapshot, TrackedState};

/// A part's bytes and its group indexes.
pub(crate) struct BuiltPart {
    pub bytes: Vec<u8>,
    pub puts: Vec<u64>,
    pub deletes: Vec<u64>,
}

fn stored(groups: KeyGroups, range: KeyGroupRange, key: &[u8]) -> Result<(u32, Vec<u8>)> {
    let g = groups.of(key);
    if !range.contains(g) {
        return Err(Error::invalid_argument(
            "cluster checkpoint",
            format!(
                "key {:?} is in key group {g}, outside this worker's groups {range}",
                String::from_utf8_lossy(&key[..key.len().min(64)])
            ),
        ));
    }
    let mut out = Vec::with_capacity(GROUP_PREFIX_LEN + key.len());
    out.extend_from_slice(&group_prefix(g));
    out.extend_from_slice(key);
    Ok((g, out))
}

/// The group index of a file whose items fall in `range`'s groups as
/// `groups` says (any order: it counts).
fn index(range: KeyGroupRange, groups: impl Iterator<Item = u32>) -> Vec<u64> {
    let mut counts = vec![0u64; range.len() as usize];
    for g in groups {
        counts[(g - range.start) as usize] += 1;
    }
    let mut out = Vec::with_capacity(counts.len() + 1);
    let mut at = 0;
    out.push(0);
    for c in counts {
        at += c;
        out.push(at);
    }
    out
}

/// A full part of `state` (every key must be in `range`).
///
/// `state` iterates in key order, so bucketing its pairs by group keeps
/// each bucket sorted, and the buckets in group order are the file's order:
/// no sort, no second copy of the keys.
///
/// # Errors
/// `InvalidArgument` for a key outside `range`; the encoder's errors.
pub(crate) fn full(
    groups: KeyGroups,
    range: KeyGroupRange,
    state: &TrackedState,
) -> Result<BuiltPart> {
    let mut buckets: Vec<Vec<(Vec<u8>, &[u8])>> = vec![Vec::new(); range.len() as usize];
    for (k, v) in state.iter() {
        let (g, key) = stored(groups, range, k)?;
        buckets[(g - range.start) as usize].push((key, v));
    }
    let puts = index(
        range,
        buckets
            .iter()
            .enumerate()
            .flat_map(|(i, b)| std::iter::repeat_n(range.start + i as u32, b.len())),
    );
    let snapshot = StateSnapshot::from_sorted(buckets.into_iter().flatten())?;
    Ok(BuiltPart {
        bytes: snapshot.to_bytes()?.to_vec(),
        puts,
        deletes: index(range, std::iter::empty()),
    })
}

/// A delta part of the keys changed in `state` since its last checkpoint.
///
/// # Errors
/// As [`full`].
pub(crate) fn delta(
    groups: KeyGroups,
    range: KeyGroupRange,
    state: &TrackedState,
) -> Result<BuiltPart> {
    let changes = state.delta();
    let mut put_groups = Vec::with_capacity(changes.len());
    let mut del_groups = Vec::new();
    let mut out = Vec::with_capacity(changes.len());
    for (k, v) in changes.puts() {
        let (g, key) = stored(groups, range, k)?;
        put_groups.push(g);
        out.push((key, Some(v.to_vec())));
    }
    for k in changes.deletes() {
        let (g, key) = stored(groups, range, k)?;
        del_groups.push(g);
        out.push((key, None));
    }
    let delta = StateDelta::from_changes(out);
    Ok(BuiltPart {
        bytes: delta.to_bytes()?.to_vec(),
        puts: index(range, put_groups.into_iter()),
        deletes: index(range, del_groups.into_iter()),
    })
}
