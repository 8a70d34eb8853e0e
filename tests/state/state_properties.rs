//! Property tests: random change sequences applied as deltas (in memory, through
//! files, and through the mapped chain view) agree with a `BTreeMap` model.

use highwater::checkpoint::{CheckpointRequest, PartInput};
use highwater::{CheckpointConfig, IncrementalCheckpointManager, StateDelta, StateSnapshot};
use proptest::prelude::*;
use std::collections::BTreeMap;

type Change = (Vec<u8>, Option<Vec<u8>>);

fn changes() -> impl Strategy<Value = Vec<Change>> {
    // Small key space so that puts, overwrites and deletes of the same keys mix.
    prop::collection::vec(
        (
            prop::collection::vec(0u8..4, 0..3),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..5)),
        ),
        0..30,
    )
}

fn apply(model: &mut BTreeMap<Vec<u8>, Vec<u8>>, changes: &[Change]) {
    for (k, v) in changes {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn delta_chains_agree_with_a_model(base in changes(), rounds in prop::collection::vec(changes(), 1..5)) {
        let dir = tempfile::tempdir().unwrap();
        let m = IncrementalCheckpointManager::new(
            CheckpointConfig::new(dir.path()).with_max_delta_chain(3).with_max_retained(2),
        ).unwrap();
        let mut model = BTreeMap::new();
        apply(&mut model, &base);
        let mut snap = StateSnapshot::new(model.clone().into_iter().collect());
        m.create_checkpoint(CheckpointRequest::new(0).with_part("state", PartInput::Snapshot(&snap))).unwrap();
        for (i, round) in rounds.iter().enumerate() {
            apply(&mut model, round);
            let delta = StateDelta::from_changes(round.clone());
            let back = StateDelta::from_bytes(&delta.to_bytes().unwrap()).unwrap();
            prop_assert_eq!(&back, &delta);
            snap = snap.apply(&delta);
            let expected: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
            prop_assert_eq!(snap.to_pairs(), expected.clone());
            let meta = m
                .create_checkpoint(CheckpointRequest::new(i as u64 + 1).with_part("state", PartInput::Delta(&delta)))
                .unwrap();
            prop_assert_eq!(m.load_snapshot(meta.id, "state").unwrap().to_pairs(), expected.clone());
            let view = m.open_state_view(meta.id, "state").unwrap();
            let via_view: Vec<(Vec<u8>, Vec<u8>)> = view
                .iter()
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<highwater::Result<_>>()
                .unwrap();
            prop_assert_eq!(via_view, expected);
            for k in [vec![], vec![0], vec![1, 2], vec![3, 3], vec![9]] {
                prop_assert_eq!(view.get(&k).unwrap(), model.get(&k).map(|v| v.as_slice()));
            }
        }
    }

    #[test]
    fn diff_then_apply_is_identity(a in changes(), b in changes()) {
        let mut ma = BTreeMap::new();
        apply(&mut ma, &a);
        let mut mb = BTreeMap::new();
        apply(&mut mb, &b);
        let sa = StateSnapshot::new(ma.into_iter().collect());
        let sb = StateSnapshot::new(mb.into_iter().collect());
        prop_assert_eq!(sa.apply(&StateDelta::diff(&sa, &sb)), sb);
    }
}

proptest! {
    /// `TrackedState` (a hash map) agrees with an ordered model: look-ups,
    /// length, key-ordered iteration and ranges, snapshots, and a delta that
    /// turns the state at the last `mark_checkpointed` into the state now.
    #[test]
    fn tracked_state_agrees_with_an_ordered_model(
        rounds in prop::collection::vec(changes(), 1..4),
        from in prop::collection::vec(0u8..4, 0..3),
        to in prop::collection::vec(0u8..4, 0..3),
    ) {
        let mut state = highwater::TrackedState::new();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for round in &rounds {
            let at_mark = StateSnapshot::from_sorted(model.iter()).unwrap();
            for (k, v) in round {
                state.apply_change(k.clone(), v.clone());
            }
            apply(&mut model, round);
            let expected: Vec<(&[u8], &[u8])> =
                model.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
            prop_assert_eq!(state.iter().collect::<Vec<_>>(), expected.clone());
            prop_assert_eq!(state.len(), model.len());
            for (k, v) in &model {
                prop_assert_eq!(state.get(k), Some(v.as_slice()));
            }
            let in_range: Vec<(&[u8], &[u8])> = model
                .range(from.clone()..to.clone().max(from.clone()))
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect();
            prop_assert_eq!(
                state.range(from.clone()..to.clone().max(from.clone())).collect::<Vec<_>>(),
                in_range
            );
            let now = StateSnapshot::from_sorted(model.iter()).unwrap();
            prop_assert_eq!(state.snapshot(), now.clone());
            prop_assert_eq!(at_mark.apply(&state.delta()), now);
            state.mark_checkpointed();
            prop_assert_eq!(state.changed_len(), 0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Every form a `StateSnapshot` can take — the caller's pairs (`new`,
    /// duplicates resolved last-wins), columns (`from_sorted`, `apply`) and a
    /// verified state file read in place (`from_bytes`, a restored
    /// checkpoint) — answers the same as a `BTreeMap` model and encodes to the
    /// same bytes.
    #[test]
    fn every_snapshot_form_agrees_with_a_model(
        changes in changes(),
        probes in prop::collection::vec(prop::collection::vec(0u8..5, 0..3), 0..6),
    ) {
        let mut model = BTreeMap::new();
        let mut puts = Vec::new();
        for (k, v) in &changes {
            let v = v.clone().unwrap_or_default();
            model.insert(k.clone(), v.clone());
            puts.push((k.clone(), v));
        }
        let from_new = StateSnapshot::new(puts);
        let from_sorted = StateSnapshot::from_sorted(model.iter()).unwrap();
        let bytes = from_new.to_bytes().unwrap();
        prop_assert_eq!(&from_sorted.to_bytes().unwrap(), &bytes);
        let from_bytes = StateSnapshot::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&from_bytes.to_bytes().unwrap(), &bytes);
        let applied = StateSnapshot::default().apply(&StateDelta::from_changes(
            model.iter().map(|(k, v)| (k.clone(), Some(v.clone()))),
        ));
        let dir = tempfile::tempdir().unwrap();
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path())).unwrap();
        let meta = m.create_checkpoint_with_state(0, Default::default(), None, &bytes).unwrap();
        let restored = highwater::RecoveryManager::new(highwater::RecoveryConfig::new(
            dir.path(),
            dir.path().join("no-wal"),
        ))
        .recover()
        .unwrap();
        prop_assert_eq!(restored.checkpoint_id, Some(meta.id));
        let restored = restored.state_snapshot.unwrap_or_default();
        let expected: Vec<(&[u8], &[u8])> =
            model.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
        for snap in [&from_new, &from_sorted, &from_bytes, &applied, &restored] {
            prop_assert_eq!(snap.iter().collect::<Vec<_>>(), expected.clone());
            prop_assert_eq!(snap.len(), model.len());
            prop_assert_eq!(snap.is_empty(), model.is_empty());
            prop_assert_eq!(snap, &from_sorted);
            prop_assert_eq!(snap.clone(), from_sorted.clone());
            prop_assert_eq!(
                snap.data_bytes(),
                model.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum::<u64>()
            );
            for p in &probes {
                prop_assert_eq!(snap.get(p), model.get(p).map(|v| v.as_slice()));
                prop_assert_eq!(snap.contains_key(p), model.contains_key(p));
                let after: Vec<(&[u8], &[u8])> = model
                    .range(p.clone()..)
                    .map(|(k, v)| (k.as_slice(), v.as_slice()))
                    .collect();
                prop_assert_eq!(snap.range(p.as_slice()..).collect::<Vec<_>>(), after);
                let with_prefix: Vec<(&[u8], &[u8])> = model
                    .iter()
                    .filter(|(k, _)| k.starts_with(p))
                    .map(|(k, v)| (k.as_slice(), v.as_slice()))
                    .collect();
                prop_assert_eq!(snap.prefix(p).collect::<Vec<_>>(), with_prefix);
            }
        }
    }
}
