//! Garbage collection of a checkpoint location, as a pure plan: from what
//! was listed (every commit record, decoded or damaged; every floor marker;
//! every part object) to what to create and delete. [`gc_run`](super::gc_run)
//! executes a plan.
//!
//! Invariants of [`plan_gc`] (the tests check each):
//! - **Live** records are those at or above the current floor (the largest
//!   floor marker; 0 without one). Records below it are dead and play no
//!   part in retention.
//! - **Retained** checkpoints: walking the live checkpoint records newest
//!   (highest slot) first, each is retained with its whole chain (its
//!   `parent_id`, found by checkpoint id among the live checkpoint records
//!   in lower slots, and so on down to a full checkpoint), until
//!   `max_retained` (at least 1) **restorable** ones are retained: a chain
//!   that reaches a full checkpoint and whose every part object is listed
//!   with its size. A chain whose parent is missing, or whose parts are, is
//!   retained as far as it goes but does not count, so the walk goes on to
//!   older checkpoints: GC never deletes because of a confusion. (Two
//!   records with one id, which the protocol never writes, are both kept.)
//!   The newest checkpoint record is always retained.
//! - With no live checkpoint record at all, the plan deletes nothing.
//! - **Floor**: `new_floor` is the lowest slot of a retained checkpoint when
//!   that is above the current floor, else `None`. The floor never goes
//!   down and never passes the newest checkpoint record.
//! - **Records** below the floor (the new one, or the current) are deleted,
//!   whatever they are (checkpoint, claim, damaged) and however young: the
//!   floor marker that kills them is created first. Records at or above the
//!   floor are never deleted.
//! - **Parts**: an object under `parts/` is deleted only when no checkpoint
//!   record at or above the floor names it *and* its `last_modified` is
//!   before `now - grace` (an upload in progress, whose record does not
//!   exist yet, is protected by the grace; an object with no
//!   `last_modified` is never deleted). The parts of a damaged record cannot
//!   be known: the record is unrestorable, so they are deleted once older
//!   than the grace. A retained checkpoint's parts are named by a live
//!   record, so they survive any grace, 0 included.
//! - **Floor markers** below the floor are deleted.
//! - **Abandoned uploads** started before `now - grace` are aborted.
//! - The plan is a function of its input: every list in it is sorted and
//!   free of duplicates, whatever the order of the input.

use super::layout::{folder, PARTS};
use super::record::{CommittedCheckpoint, SlotRecord};
use crate::blob::{BlobKey, BlobMeta};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

/// One record of the commit sequence, as listed and read.
#[derive(Debug, Clone)]
pub(crate) struct ListedRecord {
    /// Its slot.
    pub slot: u64,
    /// The decoded record; `None` when it is damaged (fails to decode).
    /// A record of a newer format version is not damaged: a caller that
    /// meets one must not collect (this build cannot tell what it names).
    pub record: Option<SlotRecord>,
}

/// What a collection plans from.
#[derive(Debug, Clone)]
pub(crate) struct GcInput<'a> {
    /// Every record listed (any order; sorted by slot is usual).
    pub records: &'a [ListedRecord],
    /// The slot of every floor marker.
    pub floor_markers: &'a [u64],
    /// Every object under `parts/` (key, size, last_modified).
    pub parts: &'a [BlobMeta],
    /// The time the listing was made.
    pub now: SystemTime,
    /// How old an unnamed part object or an upload must be to be collected.
    pub grace: Duration,
    /// How many restorable checkpoints to keep (0 counts as 1).
    pub max_retained: usize,
}

/// What a collection does, in order (module docs: the rules).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GcPlan {
    /// The floor before the plan (the largest marker), for reports.
    pub current_floor: Option<u64>,
    /// Create `floor/<slot>` first (`None`: the floor stays).
    pub new_floor: Option<u64>,
    /// Slots of the records below the (new) floor, ascending.
    pub delete_records: Vec<u64>,
    /// Part objects named by no live record and older than the grace.
    pub delete_parts: Vec<BlobKey>,
    /// Floor markers below the largest (after `new_floor`), ascending.
    pub delete_floor_markers: Vec<u64>,
    /// Abort the uploads started before this (`None`: none).
    pub abort_uploads_before: Option<SystemTime>,
    /// The ids of the checkpoints kept, ascending.
    pub retained: Vec<u64>,
    /// The lowest `wal_position` of a retained checkpoint: the log is
    /// needed from there on.
    pub wal_needed_from: Option<u64>,
}

impl GcPlan {
    /// The floor once the plan is carried out.
    pub(crate) fn floor(&self) -> Option<u64> {
        self.new_floor.or(self.current_floor)
    }
}

/// The plan for `input` (module docs: the rules).
pub(crate) fn plan_gc(input: &GcInput<'_>) -> GcPlan {
    let current_floor = input.floor_markers.iter().copied().max();
    let mut plan = GcPlan {
        current_floor,
        ..GcPlan::default()
    };
    let live = live_checkpoints(input.records, current_floor.unwrap_or(0));
    if live.is_empty() {
        return plan;
    }
    let retained = retain(&live, input.parts, input.max_retained.max(1));
    let lowest = retained
        .iter()
        .map(|&i| live[i].slot)
        .min()
        .expect("the newest checkpoint is always retained");
    if lowest > current_floor.unwrap_or(0) {
        plan.new_floor = Some(lowest);
    }
    let floor = plan.floor().unwrap_or(0);

    plan.delete_records = input
        .records
        .iter()
        .map(|r| r.slot)
        .filter(|&s| s < floor)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    let named: BTreeSet<&BlobKey> = input
        .records
        .iter()
        .filter(|r| r.slot >= floor)
        .filter_map(|r| checkpoint(r))
        .flat_map(|c| c.files.iter().map(|(_, key)| key))
        .collect();
    let cutoff = input.now.checked_sub(input.grace);
    let parts_folder = folder(PARTS);
    if let Some(cutoff) = cutoff {
        plan.delete_parts = input
            .parts
            .iter()
            .filter(|m| m.key.is_under(&parts_folder) && !named.contains(&m.key))
            .filter(|m| m.last_modified.is_some_and(|t| t < cutoff))
            .map(|m| m.key.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
    }
    plan.abort_uploads_before = cutoff;

    plan.delete_floor_markers = input
        .floor_markers
        .iter()
        .copied()
        .filter(|&s| s < floor)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    let kept: BTreeSet<u64> = retained.iter().map(|&i| live[i].metadata.id).collect();
    plan.retained = kept.into_iter().collect();
    plan.wal_needed_from = retained
        .iter()
        .map(|&i| live[i].metadata.wal_position)
        .min();
    plan
}

fn checkpoint(r: &ListedRecord) -> Option<&CommittedCheckpoint> {
    match &r.record {
        Some(SlotRecord::Checkpoint(c)) => Some(c),
        _ => None,
    }
}

/// The checkpoint records at or above `floor`, ascending by slot (ties,
/// which a listing never has, by id).
fn live_checkpoints(records: &[ListedRecord], floor: u64) -> Vec<&CommittedCheckpoint> {
    let mut live: Vec<&CommittedCheckpoint> = records
        .iter()
        .filter(|r| r.slot >= floor)
        .filter_map(checkpoint)
        .collect();
    live.sort_by_key(|c| (c.slot, c.metadata.id));
    live.dedup_by_key(|c| (c.slot, c.metadata.id));
    live
}

/// The indexes into `live` of the retained checkpoints (module docs).
fn retain(live: &[&CommittedCheckpoint], parts: &[BlobMeta], want: usize) -> BTreeSet<usize> {
    let mut by_id: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, c) in live.iter().enumerate() {
        by_id.entry(c.metadata.id).or_default().push(i);
    }
    // The parent records of `live[i]`: its parent id, in lower slots.
    let parents = |i: usize| -> Vec<usize> {
        let c = live[i];
        c.metadata
            .parent_id
            .and_then(|p| by_id.get(&p))
            .map(|js| {
                js.iter()
                    .copied()
                    .filter(|&j| live[j].slot < c.slot)
                    .collect()
            })
            .unwrap_or_default()
    };
    let listed: HashMap<&BlobKey, u64> = parts.iter().map(|m| (&m.key, m.size)).collect();
    // Parents sit in lower slots, so one ascending pass settles each chain.
    let mut restorable = vec![false; live.len()];
    for i in 0..live.len() {
        let c = live[i];
        let whole = c
            .files
            .iter()
            .all(|(f, key)| listed.get(key) == Some(&f.size));
        let base = c.metadata.parent_id.is_none() || parents(i).iter().any(|&j| restorable[j]);
        restorable[i] = whole && base;
    }
    let mut kept = BTreeSet::new();
    let mut counted = 0;
    for i in (0..live.len()).rev() {
        let mut stack = vec![i];
        while let Some(x) = stack.pop() {
            if kept.insert(x) {
                stack.extend(parents(x));
            }
        }
        if restorable[i] {
            counted += 1;
            if counted == want {
                break;
            }
        }
    }
    kept
}

#[cfg(test)]
#[path = "gc_tests.rs"]
pub(crate) mod tests;
