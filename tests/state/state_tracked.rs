//! Property test: `TrackedState` under interleavings of changes, synchronous
//! checkpoints (`mark_checkpointed`) and asynchronous ones (`freeze`, then
//! `checkpoint_succeeded` or `checkpoint_failed`, or a superseding freeze),
//! against an ordered model of the state and of the last durable checkpoint.
//! The key space is wide enough that the settled changes fold into the base.

use highwater::{FreezeId, FrozenChanges, StateSnapshot, TrackedState};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    Change(Vec<u8>, Option<Vec<u8>>),
    Mark,
    Freeze,
    Succeed,
    Fail,
    ReportStale,
}

fn op() -> impl Strategy<Value = Op> {
    let key = prop::collection::vec(0u8..6, 0..3);
    let value = prop::option::of(prop::collection::vec(any::<u8>(), 0..4));
    prop_oneof![
        12 => (key, value).prop_map(|(k, v)| Op::Change(k, v)),
        1 => Just(Op::Mark),
        2 => Just(Op::Freeze),
        2 => Just(Op::Succeed),
        1 => Just(Op::Fail),
        1 => Just(Op::ReportStale),
    ]
}

fn snap(model: &Model) -> StateSnapshot {
    StateSnapshot::from_sorted(model.iter()).unwrap()
}

/// A freeze in flight: its handle, the state it froze and the durable state
/// its delta applies to.
struct Pending {
    frozen: FrozenChanges,
    at_freeze: Model,
    durable_then: Model,
    touched_after: BTreeSet<Vec<u8>>,
    awaiting: bool,
}

proptest! {
    #[test]
    fn tracked_state_with_freezes_agrees_with_an_ordered_model(
        ops in prop::collection::vec(op(), 1..120),
        from in prop::collection::vec(0u8..6, 0..3),
        to in prop::collection::vec(0u8..6, 0..3),
    ) {
        let mut state = TrackedState::new();
        let mut model = Model::new();
        let mut durable = Model::new();
        let mut touched = BTreeSet::new(); // keys changed since `durable`
        let mut pending: Option<Pending> = None;
        let mut stale: Vec<FreezeId> = Vec::new();
        for op in ops {
            match op {
                Op::Change(k, Some(v)) => {
                    prop_assert_eq!(state.put(k.clone(), v.clone()), model.insert(k.clone(), v));
                    touched.insert(k.clone());
                    if let Some(p) = &mut pending {
                        p.touched_after.insert(k);
                    }
                }
                Op::Change(k, None) => {
                    let old = model.remove(&k);
                    prop_assert_eq!(state.delete(&k), old.clone());
                    if old.is_some() {
                        touched.insert(k.clone());
                        if let Some(p) = &mut pending {
                            p.touched_after.insert(k);
                        }
                    }
                }
                Op::Mark => {
                    state.mark_checkpointed();
                    durable = model.clone();
                    touched.clear();
                    stale.extend(pending.take().map(|p| p.frozen.id()));
                }
                Op::Freeze => {
                    let frozen = state.freeze();
                    prop_assert_eq!(state.outstanding_freeze(), Some(frozen.id()));
                    prop_assert_eq!(frozen.len(), touched.len());
                    stale.extend(pending.take().map(|p| p.frozen.id()));
                    pending = Some(Pending {
                        frozen,
                        at_freeze: model.clone(),
                        durable_then: durable.clone(),
                        touched_after: BTreeSet::new(),
                        awaiting: true,
                    });
                }
                Op::Succeed => {
                    if let Some(p) = pending.take() {
                        // The frozen layer did not move while the state went on.
                        prop_assert_eq!(snap(&p.durable_then).apply(&p.frozen.to_delta()), snap(&p.at_freeze));
                        let id = p.frozen.id();
                        drop(p.frozen);
                        prop_assert_eq!(state.checkpoint_succeeded(id), p.awaiting);
                        if p.awaiting {
                            durable = p.at_freeze;
                            touched = p.touched_after;
                        }
                        stale.push(id);
                    }
                }
                Op::Fail => {
                    if let Some(p) = &mut pending {
                        prop_assert_eq!(state.checkpoint_failed(p.frozen.id()), p.awaiting);
                        p.awaiting = false;
                    }
                }
                Op::ReportStale => {
                    if let Some(&id) = stale.last() {
                        prop_assert!(!state.checkpoint_succeeded(id));
                        prop_assert!(!state.checkpoint_failed(id));
                    }
                }
            }
            // Reads agree with the model after every step.
            prop_assert_eq!(state.len(), model.len());
            prop_assert_eq!(state.changed_len(), touched.len());
            let delta = state.delta();
            prop_assert_eq!(delta.len(), touched.len());
            prop_assert_eq!(snap(&durable).apply(&delta), snap(&model));
        }
        let expected: Vec<(&[u8], &[u8])> =
            model.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        prop_assert_eq!(state.iter().collect::<Vec<_>>(), expected);
        for (k, v) in &model {
            prop_assert_eq!(state.get(k), Some(v.as_slice()));
        }
        prop_assert_eq!(state.get(&[9, 9]), None);
        let range = from.clone()..to.clone().max(from.clone());
        let in_range: Vec<(&[u8], &[u8])> = model
            .range(range.clone())
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        prop_assert_eq!(state.range(range).collect::<Vec<_>>(), in_range);
        if from <= to {
            let inclusive: Vec<(&[u8], &[u8])> = model
                .range(from.clone()..=to.clone())
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect();
            prop_assert_eq!(state.range(from.clone()..=to.clone()).collect::<Vec<_>>(), inclusive);
        }
        prop_assert_eq!(state.snapshot(), snap(&model));
        let clone = state.clone();
        prop_assert_eq!(clone.snapshot(), snap(&model));
        prop_assert_eq!(TrackedState::from_snapshot(&snap(&model)).snapshot(), snap(&model));
    }
}
