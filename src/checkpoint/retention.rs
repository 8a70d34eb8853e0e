//! Retention as a pure decision over the checkpoints present.
//!
//! Invariants of a [`RetentionPlan`]: it keeps the newest `max_retained`
//! restorable checkpoints and every ancestor of a kept delta; it deletes only
//! checkpoints older than the oldest kept one; the WAL position it reports is the
//! smallest `wal_position` among all kept checkpoints, ancestors included, so
//! that recovery can start from any of them. An ancestor kept only because a
//! delta builds on it is the fallback when that delta's chain is damaged above
//! it; without its log it would be kept for nothing.

use std::collections::{BTreeMap, BTreeSet};

/// What retention decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Checkpoint ids kept, ascending.
    pub keep: Vec<u64>,
    /// Checkpoint ids to delete, ascending.
    pub delete: Vec<u64>,
    /// WAL segments wholly below this position are no longer needed (`None`
    /// when no checkpoint is restorable: the whole log is needed).
    pub wal_needed_from: Option<u64>,
}

/// One checkpoint as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionInput {
    /// Its id.
    pub id: u64,
    /// Its parent, for a delta.
    pub parent_id: Option<u64>,
    /// Whether it (and its chain) verified.
    pub restorable: bool,
    /// The WAL position it covers.
    pub wal_position: u64,
}

/// Decides what to keep and delete. A `max_retained` of 0 plans as 1: a plan
/// never deletes the newest restorable checkpoint (a [`CheckpointConfig`]
/// refuses 0 before it gets here).
///
/// [`CheckpointConfig`]: crate::CheckpointConfig
pub fn plan_retention(checkpoints: &[RetentionInput], max_retained: usize) -> RetentionPlan {
    let by_id: BTreeMap<u64, &RetentionInput> = checkpoints.iter().map(|c| (c.id, c)).collect();
    let newest: Vec<&RetentionInput> = by_id
        .values()
        .rev()
        .filter(|c| c.restorable)
        .take(max_retained.max(1))
        .copied()
        .collect();
    let mut keep = BTreeSet::new();
    for c in &newest {
        let mut at = Some(c.id);
        while let Some(id) = at {
            if !keep.insert(id) {
                break;
            }
            at = by_id.get(&id).and_then(|c| c.parent_id);
        }
    }
    let oldest_kept = keep.first().copied();
    let wal_needed_from = keep
        .iter()
        .filter_map(|id| by_id.get(id))
        .filter(|c| c.restorable)
        .map(|c| c.wal_position)
        .min();
    let delete = match oldest_kept {
        Some(oldest) => by_id
            .keys()
            .copied()
            .filter(|id| *id < oldest && !keep.contains(id))
            .collect(),
        None => Vec::new(),
    };
    RetentionPlan {
        keep: keep.into_iter().collect(),
        delete,
        wal_needed_from,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(id: u64, parent: Option<u64>, ok: bool) -> RetentionInput {
        RetentionInput {
            id,
            parent_id: parent,
            restorable: ok,
            wal_position: id * 100,
        }
    }

    #[test]
    fn keeps_the_parents_of_kept_deltas() {
        // 1 full, 2..4 deltas on it, 5 full, 6 delta on 5.
        let all = [
            cp(1, None, true),
            cp(2, Some(1), true),
            cp(3, Some(2), true),
            cp(4, Some(3), true),
            cp(5, None, true),
            cp(6, Some(5), true),
        ];
        let plan = plan_retention(&all, 3);
        assert_eq!(plan.keep, [1, 2, 3, 4, 5, 6]);
        assert!(plan.delete.is_empty());
        assert_eq!(
            plan.wal_needed_from,
            Some(100),
            "1 is kept for 4's chain, and is the fallback when 2 or 3 is damaged"
        );
        let plan = plan_retention(&all, 2);
        assert_eq!(plan.keep, [5, 6]);
        assert_eq!(plan.delete, [1, 2, 3, 4]);
        assert_eq!(plan.wal_needed_from, Some(500));
    }

    #[test]
    fn damaged_checkpoints_age_out_but_are_not_counted() {
        let all = [
            cp(1, None, true),
            cp(2, None, false),
            cp(3, None, true),
            cp(4, None, false),
        ];
        let plan = plan_retention(&all, 1);
        assert_eq!(plan.keep, [3]);
        assert_eq!(
            plan.delete,
            [1, 2],
            "4 is newer than every kept one and stays"
        );
        let none = plan_retention(&[cp(1, None, false)], 2);
        assert!(none.keep.is_empty() && none.delete.is_empty());
        assert_eq!(none.wal_needed_from, None);
    }
}
