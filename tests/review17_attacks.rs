//! Attacks from review 17 on the checkpoint guards and the WAL floor.

use highwater::storage::{FaultInjectingStorage, FsStorage, Storage};
use highwater::{
    CheckpointConfig, Error, IncrementalCheckpointManager, StateDelta, StateSnapshot,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn offsets(n: u64) -> HashMap<String, u64> {
    HashMap::from([("src-0".to_string(), n)])
}

fn kv(pairs: &[(&str, &str)]) -> StateSnapshot {
    StateSnapshot::new(
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
    )
}

fn put(key: &str, value: &str) -> StateDelta {
    StateDelta::from_changes(vec![(
        key.as_bytes().to_vec(),
        Some(value.as_bytes().to_vec()),
    )])
}

fn checkpoint_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("checkpoint-{id:020}"))
}

fn manager_on(dir: &Path, storage: Arc<dyn Storage>) -> IncrementalCheckpointManager {
    IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir)
            .with_storage(storage)
            .with_max_retained(10),
    )
    .unwrap()
}

/// One transient read error of a delta's metadata must not let
/// `delete_checkpoint` remove the checkpoint that delta builds on: the
/// dependent is not known to be absent, so the deletion is refused.
#[test]
fn a_transient_read_error_of_a_dependent_never_lets_its_parent_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let faulty = FaultInjectingStorage::new(Arc::new(FsStorage));
    let faults = faulty.faults();
    let storage: Arc<dyn Storage> = Arc::new(faulty);
    let m = manager_on(dir.path(), storage);
    m.create_checkpoint_with_state(1, offsets(1), None, &kv(&[("a", "1")]).to_bytes().unwrap())
        .unwrap();
    let second = m
        .create_delta_checkpoint_with_state(2, offsets(2), None, &put("b", "2").to_bytes().unwrap())
        .unwrap();
    assert_eq!(second.parent_id, Some(1));

    faults.fail_reads_under(checkpoint_dir(dir.path(), 2), 1);
    let deleted = m.delete_checkpoint(1);
    assert!(
        deleted.is_err(),
        "checkpoint 1 was deleted while delta 2 builds on it"
    );
    assert!(
        matches!(deleted, Err(Error::Io { .. }) | Err(Error::CheckpointHasDependents { .. })),
        "{deleted:?}"
    );
    // Checkpoint 2 is still restorable.
    let state = StateSnapshot::from_bytes(&m.store().load_state_bytes(2).unwrap()).unwrap();
    assert_eq!(state.get(b"a"), Some(&b"1"[..]));
    assert_eq!(state.get(b"b"), Some(&b"2"[..]));
}
