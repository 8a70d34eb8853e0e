//! Carrying out a [`GcPlan`]: the I/O of garbage collection.
//!
//! Invariants of [`execute`]:
//! - The floor marker is created (`create_if_absent`; `AlreadyExists` is
//!   fine: another collection raised it to the same slot) **before anything
//!   is deleted**. If that create fails in any way, including an
//!   indeterminate answer, nothing is deleted or aborted: the records below
//!   the new floor are only dead once its marker exists.
//! - Then records, then part objects, then old floor markers, then
//!   abandoned uploads, each in the plan's order. A failed delete is logged
//!   (key and error) and counted in [`GcReport::failures`], never returned:
//!   the next collection plans it again. Nothing but the plan is deleted.
//! - Every count goes to the metrics (src/metrics.rs) as well as the report.

use super::gc::GcPlan;
use super::layout::{commit_key, floor_key};
use crate::blob::{BlobKey, BlobMeta, BlobStore};
use std::collections::HashMap;

/// What one garbage collection of a checkpoint location did.
///
/// Counts are of calls that succeeded; a failed call is counted in
/// `failures` and retried by the next collection.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// The floor after the collection: the lowest slot a restore reads
    /// (`None`: the location has no floor marker).
    pub floor: Option<u64>,
    /// The ids of the checkpoints kept, ascending.
    pub retained: Vec<u64>,
    /// The lowest WAL position a kept checkpoint replays from: the log is
    /// needed from there on (`None` when no checkpoint is kept).
    pub wal_needed_from: Option<u64>,
    /// Commit records deleted (all below the floor).
    pub records_deleted: u64,
    /// Part objects deleted.
    pub parts_deleted: u64,
    /// Bytes of the part objects deleted (as listed).
    pub bytes_freed: u64,
    /// Old floor markers deleted.
    pub floor_markers_deleted: u64,
    /// Abandoned multipart uploads aborted (0 on a backend that cannot list
    /// them: see `BlobStore::abort_abandoned_uploads`).
    pub uploads_aborted: u64,
    /// Calls that failed (each logged as a tracing warning with its key and
    /// error).
    pub failures: u64,
}

/// Carries out `plan` against `store`; `parts` is the listing the plan was
/// made from (for the sizes of the parts deleted). Module docs: the order.
pub(crate) fn execute(store: &dyn BlobStore, plan: &GcPlan, parts: &[BlobMeta]) -> GcReport {
    let mut report = GcReport {
        floor: plan.current_floor,
        retained: plan.retained.clone(),
        wal_needed_from: plan.wal_needed_from,
        ..GcReport::default()
    };
    if let Some(slot) = plan.new_floor {
        let key = floor_key(slot);
        match store.create_if_absent(&key, bytes::Bytes::new()) {
            Ok(_) => report.floor = Some(slot),
            Err(error) => {
                tracing::warn!(key = %key, %error, "garbage collection could not raise the floor; nothing deleted");
                report.failures += 1;
                crate::metrics::remote_gc_finished(&report);
                return report;
            }
        }
    }
    for &slot in &plan.delete_records {
        if delete(store, &commit_key(slot), &mut report) {
            report.records_deleted += 1;
        }
    }
    let sizes: HashMap<&BlobKey, u64> = parts.iter().map(|m| (&m.key, m.size)).collect();
    for key in &plan.delete_parts {
        if delete(store, key, &mut report) {
            report.parts_deleted += 1;
            report.bytes_freed += sizes.get(key).copied().unwrap_or(0);
        }
    }
    for &slot in &plan.delete_floor_markers {
        if delete(store, &floor_key(slot), &mut report) {
            report.floor_markers_deleted += 1;
        }
    }
    if let Some(before) = plan.abort_uploads_before {
        match store.abort_abandoned_uploads(before) {
            Ok(n) => report.uploads_aborted = n,
            Err(error) => {
                tracing::warn!(key = %error.key(), %error, "garbage collection could not abort abandoned uploads");
                report.failures += 1;
            }
        }
    }
    tracing::info!(
        floor = ?report.floor,
        retained = report.retained.len(),
        records_deleted = report.records_deleted,
        parts_deleted = report.parts_deleted,
        bytes_freed = report.bytes_freed,
        floor_markers_deleted = report.floor_markers_deleted,
        uploads_aborted = report.uploads_aborted,
        failures = report.failures,
        "garbage-collected the checkpoint location"
    );
    crate::metrics::remote_gc_finished(&report);
    report
}

/// Deletes `key`; a failure is logged and counted. True when deleted.
fn delete(store: &dyn BlobStore, key: &BlobKey, report: &mut GcReport) -> bool {
    match store.delete(key) {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(key = %key, %error, "garbage collection could not delete an object; the next one retries");
            report.failures += 1;
            false
        }
    }
}

#[cfg(test)]
#[path = "gc_run_tests.rs"]
mod tests;
