//! Retention of a cluster job's location: a pure plan over the listing
//! (records, floor markers, parts, reports), then its execution
//! (docs/DISTRIBUTED.md, "Retention").
//!
//! Invariants of [`plan`]:
//! - **Retained** epochs are the newest `retained` (at least 1) epoch
//!   records at or above the floor; their chains' parts are kept, whatever
//!   their age. With no live epoch record the plan deletes nothing.
//! - **Floor**: raised to the lowest retained slot, so every live epoch
//!   record keeps its parts; but while the newest run has committed no
//!   epoch (its workers may still be joining), never above its claim or its
//!   base. Never down. Records below the floor are deleted after the
//!   marker is created.
//! - **Parts** not named by a retained record are deleted when older than
//!   the grace, except a part of the collecting run (or a newer one) for an
//!   epoch it has not committed yet: an upload in flight, whose record may
//!   still come. A part with no `last_modified` is never deleted.
//! - **Reports** are deleted once their epoch is committed by their run, or
//!   their run is older than the collecting one (a dead run's reports are
//!   never read), and they are older than the grace.
//! - The plan is a function of its input; its lists are sorted.

use super::layout::{PARTS, REPORTS};
use super::record::ClusterRecord;
use crate::blob::{list_all, BlobKey, BlobMeta, BlobStore};
use crate::checkpoint::remote::layout::{commit_key, floor_key};
use crate::checkpoint::remote::retry::retried;
use crate::checkpoint::remote::sequence as seq;
use crate::error::Result;
use bytes::Bytes;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

/// What a collection plans from.
#[derive(Debug, Clone)]
pub(crate) struct Input<'a> {
    /// Every record listed, decoded (a damaged one stops the collection
    /// before a plan is made).
    pub records: &'a [(u64, ClusterRecord)],
    /// The current floor.
    pub floor: u64,
    /// Every object under `parts/` and `reports/`.
    pub objects: &'a [BlobMeta],
    /// The collecting run's generation and the last epoch it committed.
    pub generation: u64,
    pub committed_epoch: u64,
    pub now: SystemTime,
    pub grace: Duration,
    pub retained: usize,
}

/// What a collection does, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// A floor marker to create first.
    pub new_floor: Option<u64>,
    /// Records to delete (below the floor), ascending.
    pub records: Vec<u64>,
    /// Parts and reports to delete, sorted.
    pub objects: Vec<BlobKey>,
    /// The retained epochs, ascending.
    pub epochs: Vec<u64>,
}

/// `(generation, epoch)` of a part or report key.
fn key_numbers(key: &BlobKey) -> Option<(&'static str, u64, u64)> {
    let s = key.as_str();
    let (folder, rest) = if let Some(r) = s.strip_prefix(PARTS) {
        (PARTS, r)
    } else {
        (REPORTS, s.strip_prefix(REPORTS)?)
    };
    let mut it = rest.strip_prefix('/')?.split('/');
    let g = it.next().filter(|d| d.len() == 20)?.parse().ok()?;
    let e = it.next().filter(|d| d.len() == 20)?.parse().ok()?;
    Some((folder, g, e))
}

/// The plan for `input` (module docs).
pub(crate) fn plan(input: &Input<'_>) -> Plan {
    let mut epochs: Vec<(u64, &super::record::GlobalCheckpoint)> = input
        .records
        .iter()
        .filter(|(slot, _)| *slot >= input.floor)
        .filter_map(|(slot, r)| match r {
            ClusterRecord::Epoch(e) => Some((*slot, e.as_ref())),
            _ => None,
        })
        .collect();
    epochs.sort_by_key(|(slot, _)| *slot);
    if epochs.is_empty() {
        return Plan::default();
    }
    let keep = &epochs[epochs.len().saturating_sub(input.retained.max(1))..];
    // The newest run's workers read its claim and its base when they join:
    // until that run has committed an epoch (so all of them joined), the
    // floor stays at or below both.
    let newest_claim = input
        .records
        .iter()
        .filter_map(|(slot, r)| match r {
            ClusterRecord::Claim { plan, .. } => Some((*slot, plan.base_slot)),
            _ => None,
        })
        .max_by_key(|(slot, _)| *slot);
    let joining = newest_claim.filter(|(claim, _)| {
        !input
            .records
            .iter()
            .any(|(_, r)| matches!(r, ClusterRecord::Epoch(e) if e.generation == *claim))
    });
    let lowest = match joining {
        Some((claim, base)) => keep[0].0.min(claim).min(base.unwrap_or(claim)),
        None => keep[0].0,
    };
    // Slots start at 1: a floor of 1 is no floor.
    let new_floor = (lowest > input.floor.max(1)).then_some(lowest);
    let floor = new_floor.unwrap_or(input.floor);
    let named: BTreeSet<&str> = keep.iter().flat_map(|(_, e)| e.part_keys()).collect();
    let cutoff = input.now.checked_sub(input.grace);
    let mut objects: Vec<BlobKey> = input
        .objects
        .iter()
        .filter(|m| !named.contains(m.key.as_str()))
        .filter(|m| match (m.last_modified, cutoff) {
            (Some(t), Some(c)) => t < c,
            _ => false,
        })
        .filter(|m| match key_numbers(&m.key) {
            Some((PARTS, g, e)) => {
                g < input.generation || (g == input.generation && e <= input.committed_epoch)
            }
            Some((_, g, e)) => {
                g < input.generation || (g == input.generation && e <= input.committed_epoch)
            }
            None => false,
        })
        .map(|m| m.key.clone())
        .collect();
    objects.sort();
    objects.dedup();
    let mut records: Vec<u64> = input
        .records
        .iter()
        .map(|(slot, _)| *slot)
        .filter(|slot| *slot < floor)
        .collect();
    records.sort_unstable();
    Plan {
        new_floor,
        records,
        objects,
        epochs: keep.iter().map(|(_, e)| e.epoch).collect(),
    }
}

/// What [`Coordinator::collect_garbage`](super::Coordinator::collect_garbage) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterGcReport {
    /// The floor after the collection (0: none).
    pub floor: u64,
    /// The epochs whose parts are kept, ascending.
    pub retained_epochs: Vec<u64>,
    /// Records deleted (all below the floor).
    pub records_deleted: u64,
    /// Part and report objects deleted.
    pub objects_deleted: u64,
    /// Bytes of the objects deleted (as listed).
    pub bytes_freed: u64,
}

/// Lists the location, plans, and executes the plan for run `generation`
/// whose last committed epoch is `committed_epoch`.
///
/// # Errors
/// The store's errors; `CheckpointCorrupted` for a damaged record (nothing
/// is deleted then: what it names cannot be known).
pub(crate) fn collect(
    store: &dyn BlobStore,
    generation: u64,
    committed_epoch: u64,
    grace: Duration,
    retained: usize,
) -> Result<ClusterGcReport> {
    let floor = seq::floor(store)?;
    let mut records = Vec::new();
    for s in seq::list_slots(store)? {
        if let Some(r) = super::sequence::read(store, s.slot)? {
            records.push((s.slot, r));
        }
    }
    let mut objects = Vec::new();
    for folder in [PARTS, REPORTS] {
        let prefix = BlobKey::new(folder)?;
        objects.extend(retried("list", folder, || list_all(store, Some(&prefix)))?);
    }
    let plan = plan(&Input {
        records: &records,
        floor,
        objects: &objects,
        generation,
        committed_epoch,
        now: SystemTime::now(),
        grace,
        retained,
    });
    if let Some(new) = plan.new_floor {
        let key = floor_key(new);
        retried("create", key.as_str(), || {
            store.create_if_absent(&key, Bytes::new())
        })?;
    }
    let mut report = ClusterGcReport {
        floor: plan.new_floor.unwrap_or(floor),
        retained_epochs: plan.epochs.clone(),
        ..Default::default()
    };
    for slot in &plan.records {
        let key = commit_key(*slot);
        retried("delete", key.as_str(), || store.delete(&key))?;
        report.records_deleted += 1;
    }
    let sizes: std::collections::BTreeMap<&BlobKey, u64> =
        objects.iter().map(|m| (&m.key, m.size)).collect();
    for key in &plan.objects {
        retried("delete", key.as_str(), || store.delete(key))?;
        report.objects_deleted += 1;
        report.bytes_freed += sizes.get(key).copied().unwrap_or(0);
    }
    for marker in seq::floor_markers(store)?
        .into_iter()
        .filter(|m| *m < report.floor)
    {
        let key = floor_key(marker);
        retried("delete", key.as_str(), || store.delete(&key))?;
    }
    tracing::info!(
        generation,
        floor = report.floor,
        records = report.records_deleted,
        objects = report.objects_deleted,
        "cluster garbage collected"
    );
    Ok(report)
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
