//! The cluster protocol's decisions, as pure functions over what was read
//! (docs/DISTRIBUTED.md). I/O stays in `sequence`, `transport`, `worker` and
//! `coordinator`.
//!
//! Invariants:
//! - An epoch is committable only with exactly one valid report per worker
//!   of the plan, each of the run's generation and the epoch, each holding
//!   exactly the key groups its index owns, no partition in two reports.
//! - An epoch's reports name every partition of the epoch before: a
//!   partition's position is never dropped.
//! - A restore of a range takes, from each report of the base whose range
//!   overlaps it, exactly the overlap: together they are the range.

use super::key_group::{KeyGroupRange, KeyGroups};
use super::record::{GlobalCheckpoint, RunPlan};
use super::report::{SourcePosition, WorkerReport};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Whether `reports` (sorted by worker) are one per worker of `workers`,
/// each of `generation` and `epoch`, owning its index's range of `groups`,
/// with disjoint partitions. `Err` says what is wrong.
pub(crate) fn check_cover(
    groups: KeyGroups,
    generation: u64,
    epoch: u64,
    workers: u32,
    reports: &[WorkerReport],
) -> std::result::Result<(), String> {
    if reports.len() != workers as usize || workers == 0 {
        return Err(format!("{} reports for {workers} workers", reports.len()));
    }
    let mut partitions = BTreeSet::new();
    for (i, r) in reports.iter().enumerate() {
        let i = i as u32;
        let range = groups.range_of(i, workers).map_err(|e| e.to_string())?;
        if r.worker != i || r.workers != workers {
            return Err(format!(
                "report {i} is worker {} of {}",
                r.worker, r.workers
            ));
        }
        if r.generation != generation || r.epoch != epoch {
            return Err(format!(
                "worker {i} reported epoch {} of run {}, not epoch {epoch} of run {generation}",
                r.epoch, r.generation
            ));
        }
        if r.key_groups != range {
            return Err(format!(
                "worker {i} holds groups {}, it owns {range}",
                r.key_groups
            ));
        }
        for p in r.positions.keys() {
            if !partitions.insert(p.as_str()) {
                return Err(format!("partition {p:?} is in two reports"));
            }
        }
    }
    Ok(())
}

/// The reports of `epoch`, checked against `plan` and sorted by worker, or
/// the reason the epoch aborts.
///
/// # Errors
/// [`Error::EpochAborted`] naming the workers whose report is missing or
/// refused.
pub(crate) fn check_epoch(
    plan: &RunPlan,
    generation: u64,
    epoch: u64,
    mut reports: Vec<WorkerReport>,
) -> Result<Vec<WorkerReport>> {
    let aborted = |missing: Vec<u32>, reason: String| Error::EpochAborted {
        epoch,
        generation,
        missing,
        reason,
    };
    let groups = KeyGroups::new(plan.key_groups)?;
    let mut refused = Vec::new();
    let mut why = Vec::new();
    reports.retain(|r| match r.check(Path::new("worker report")) {
        Ok(()) if r.generation == generation && r.epoch == epoch && r.worker < plan.workers => true,
        Ok(()) => {
            why.push(format!(
                "a report of worker {} for epoch {} of run {}",
                r.worker, r.epoch, r.generation
            ));
            false
        }
        Err(e) => {
            refused.push(r.worker);
            why.push(e.to_string());
            false
        }
    });
    reports.sort_by_key(|r| r.worker);
    if let Some(w) = reports
        .windows(2)
        .find(|w| w[0].worker == w[1].worker && w[0] != w[1])
    {
        return Err(aborted(
            vec![w[0].worker],
            format!("two different reports of worker {}", w[0].worker),
        ));
    }
    reports.dedup_by_key(|r| r.worker);
    let have: BTreeSet<u32> = reports.iter().map(|r| r.worker).collect();
    let mut missing: Vec<u32> = (0..plan.workers).filter(|w| !have.contains(w)).collect();
    if !missing.is_empty() {
        missing.extend(refused);
        missing.sort_unstable();
        missing.dedup();
        why.insert(0, "reports missing".into());
        return Err(aborted(missing, why.join("; ")));
    }
    check_cover(groups, generation, epoch, plan.workers, &reports)
        .map_err(|reason| aborted(Vec::new(), reason))?;
    Ok(reports)
}

/// Whether `reports` of `epoch` name every partition of `previous` (the
/// positions of the last committed epoch) at an offset no lower: a
/// partition no report names would lose its position and be read again
/// from its start; one whose offset went back would have records counted
/// twice in the state.
///
/// # Errors
/// [`Error::EpochAborted`] naming the first partition missing or gone back.
pub(crate) fn check_partitions(
    previous: &BTreeMap<String, SourcePosition>,
    generation: u64,
    epoch: u64,
    reports: &[WorkerReport],
) -> Result<()> {
    let aborted = |reason: String| Error::EpochAborted {
        epoch,
        generation,
        missing: Vec::new(),
        reason,
    };
    let named: BTreeMap<&str, &SourcePosition> = reports
        .iter()
        .flat_map(|r| r.positions.iter().map(|(k, v)| (k.as_str(), v)))
        .collect();
    for (p, before) in previous {
        let Some(now) = named.get(p.as_str()) else {
            return Err(aborted(format!(
                "partition {p:?} of the last committed epoch is in no report: its position \
                 would be lost (assign every partition of RestoredWorker::positions to a worker)"
            )));
        };
        if let (Some(b), Some(n)) = (before.offset, now.offset) {
            if n < b {
                return Err(aborted(format!(
                    "partition {p:?} went back from offset {b} to {n}: the state would not \
                     match its offsets (records {n}..{b} counted twice)"
                )));
            }
        }
        if before.offset.is_some() && now.offset.is_none() {
            return Err(aborted(format!(
                "partition {p:?} lost its offset {:?}",
                before.offset
            )));
        }
    }
    Ok(())
}

/// Where the state of `range` comes from in `base`: each overlapping
/// report's index and the overlap, in key-group order.
pub(crate) fn restore_sources(
    base: &GlobalCheckpoint,
    range: KeyGroupRange,
) -> Vec<(usize, KeyGroupRange)> {
    base.reports
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.key_groups.intersect(&range).map(|o| (i, o)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::report::{PartKind, PartRef, SourcePosition};

    fn report(generation: u64, epoch: u64, worker: u32, workers: u32) -> WorkerReport {
        let groups = KeyGroups::new(8).unwrap();
        WorkerReport {
            generation,
            epoch,
            worker,
            workers,
            key_groups: groups.range_of(worker, workers).unwrap(),
            chain: vec![PartRef {
                key: format!("parts/x/{worker}"),
                size: 1,
                crc32c: 0,
                kind: PartKind::Full,
                epoch,
                puts: vec![0; groups.range_of(worker, workers).unwrap().len() as usize + 1],
                deletes: vec![0; groups.range_of(worker, workers).unwrap().len() as usize + 1],
            }],
            positions: [(format!("p{worker}"), Default::default())].into(),
            sinks: vec![],
        }
    }

    fn plan(workers: u32) -> RunPlan {
        RunPlan {
            workers,
            key_groups: 8,
            base_slot: None,
            base_epoch: 0,
        }
    }

    #[test]
    fn complete_reports_commit_in_worker_order() {
        let reports = vec![report(1, 2, 1, 2), report(1, 2, 0, 2)];
        let ok = check_epoch(&plan(2), 1, 2, reports).unwrap();
        assert_eq!(ok.iter().map(|r| r.worker).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn a_missing_late_or_foreign_report_aborts() {
        let abort = |reports| match check_epoch(&plan(3), 1, 2, reports) {
            Err(Error::EpochAborted { missing, .. }) => missing,
            other => panic!("{other:?}"),
        };
        assert_eq!(abort(vec![report(1, 2, 0, 3), report(1, 2, 2, 3)]), [1]);
        // Another run's report, or another epoch's, does not count.
        assert_eq!(
            abort(vec![
                report(1, 2, 0, 3),
                report(0, 2, 1, 3),
                report(1, 1, 2, 3)
            ]),
            [1, 2]
        );
        // A report that holds another worker's range is refused.
        let mut wrong = report(1, 2, 1, 3);
        wrong.key_groups = report(1, 2, 0, 3).key_groups;
        wrong.chain = report(1, 2, 0, 3).chain;
        assert!(abort(vec![report(1, 2, 0, 3), wrong.clone(), report(1, 2, 2, 3)]).is_empty());
        // A damaged one counts as missing.
        wrong.chain.clear();
        assert_eq!(
            abort(vec![report(1, 2, 0, 3), wrong, report(1, 2, 2, 3)]),
            [1]
        );
        // Shared partitions.
        let mut dup = report(1, 2, 1, 3);
        dup.positions = [("p0".to_string(), Default::default())].into();
        assert!(abort(vec![report(1, 2, 0, 3), dup, report(1, 2, 2, 3)]).is_empty());
    }

    #[test]
    fn two_different_reports_of_a_worker_abort_after_an_identical_pair() {
        let mut other = report(1, 2, 1, 2);
        other.positions = [(
            "p1".to_string(),
            SourcePosition {
                offset: Some(9),
                watermark: None,
            },
        )]
        .into();
        let reports = vec![
            report(1, 2, 0, 2),
            report(1, 2, 0, 2),
            report(1, 2, 1, 2),
            other,
        ];
        match check_epoch(&plan(2), 1, 2, reports) {
            Err(Error::EpochAborted { missing, .. }) => assert_eq!(missing, [1]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn restore_sources_are_the_overlaps() {
        let base = GlobalCheckpoint {
            slot: 2,
            generation: 1,
            epoch: 1,
            key_groups: 8,
            reports: vec![report(1, 1, 0, 2), report(1, 1, 1, 2)],
        };
        assert_eq!(
            restore_sources(&base, KeyGroupRange::new(3, 6)),
            [(0, KeyGroupRange::new(3, 4)), (1, KeyGroupRange::new(4, 6))]
        );
    }
}
