//! Unit tests of the layers and the fold (the integration property test in
//! tests/state checks the public behaviour against an ordered model).

use super::*;
use std::collections::BTreeMap;

fn model_pairs(model: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<(&[u8], &[u8])> {
    model
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect()
}

fn key(i: u32) -> Vec<u8> {
    format!("k{:05}", i.wrapping_mul(7919) % 10_000).into_bytes()
}

#[test]
fn settled_changes_fold_into_the_base_and_reads_agree_with_a_model() {
    let mut state = TrackedState::new();
    let mut model = BTreeMap::new();
    let mut folds = 0;
    for round in 0..40u32 {
        let base_before = state.base.len();
        for i in 0..50 {
            let k = key(round * 37 + i);
            if i % 7 == 3 {
                assert_eq!(state.delete(&k), model.remove(&k));
            } else {
                let v = format!("{round}-{i}").into_bytes();
                assert_eq!(state.put(k.clone(), v.clone()), model.insert(k, v));
            }
        }
        if round % 3 == 0 {
            let frozen = state.freeze();
            assert!(state.checkpoint_succeeded(frozen.id()));
        } else {
            state.mark_checkpointed();
        }
        if state.base.len() != base_before {
            folds += 1;
            assert!(state.settled.is_empty(), "a fold empties the settled layer");
        }
        assert_eq!(state.len(), model.len());
        assert_eq!(state.iter().collect::<Vec<_>>(), model_pairs(&model));
        for (k, v) in &model {
            assert_eq!(state.get(k), Some(v.as_slice()));
        }
    }
    assert!(folds >= 3, "only {folds} folds");
    assert_eq!(state.snapshot().len(), model.len());
}

#[test]
fn a_fold_under_frozen_and_active_layers_keeps_them_on_top() {
    let mut state = TrackedState::new();
    for i in 0..100 {
        state.put(key(i), b"old".to_vec());
    }
    state.mark_checkpointed(); // folds: 100 > 0 / 4 + FOLD_MIN
    assert_eq!(state.base.len(), 100);
    state.put(key(1), b"frozen".to_vec());
    let frozen = state.freeze();
    state.put(key(2), b"active".to_vec());
    state.delete(&key(3));
    for i in 100..200 {
        state.put(key(i), b"new".to_vec());
    }
    drop(frozen);
    state.mark_checkpointed(); // settles all three and folds again
    assert!(state.settled.is_empty());
    assert_eq!(state.get(&key(1)), Some(&b"frozen"[..]));
    assert_eq!(state.get(&key(2)), Some(&b"active"[..]));
    assert_eq!(state.get(&key(3)), None);
    assert_eq!(state.len(), 199);
    assert_eq!(state.changed_len(), 0);
}

#[test]
fn a_superseded_or_reported_freeze_is_refused() {
    let mut state = TrackedState::new();
    state.put(b"a".to_vec(), b"1".to_vec());
    let first = state.freeze();
    state.put(b"b".to_vec(), b"2".to_vec());
    let second = state.freeze();
    assert_eq!(
        second.len(),
        2,
        "the second freeze holds the first's changes"
    );
    assert!(!state.checkpoint_succeeded(first.id()));
    assert!(!state.checkpoint_failed(first.id()));
    assert_eq!(state.outstanding_freeze(), Some(second.id()));
    assert!(state.checkpoint_succeeded(second.id()));
    assert!(
        !state.checkpoint_succeeded(second.id()),
        "reported once only"
    );
    assert_eq!(state.changed_len(), 0);
    assert_eq!(state.outstanding_freeze(), None);
}

#[test]
fn frozen_changes_can_go_to_another_thread() {
    fn sendable<T: Send + Sync + 'static>() {}
    sendable::<FrozenChanges>();
    sendable::<TrackedState>();
}
