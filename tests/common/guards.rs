//! Helpers of the checkpoint guard tests (`checkpoint_guards.rs`,
//! `review17_attacks.rs`).

use highwater::storage::Storage;
use highwater::{CheckpointConfig, IncrementalCheckpointManager, StateDelta, StateSnapshot};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Offsets of the one source partition the guard tests use.
pub fn offsets(n: u64) -> HashMap<String, u64> {
    HashMap::from([("src-0".to_string(), n)])
}

/// A snapshot of text pairs.
pub fn kv(pairs: &[(&str, &str)]) -> StateSnapshot {
    StateSnapshot::new(
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
    )
}

/// A delta that puts one pair.
pub fn put(key: &str, value: &str) -> StateDelta {
    StateDelta::from_changes(vec![(
        key.as_bytes().to_vec(),
        Some(value.as_bytes().to_vec()),
    )])
}

/// The directory of checkpoint `id`.
pub fn checkpoint_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("checkpoint-{id:020}"))
}

/// A manager over `storage` that keeps ten checkpoints.
pub fn manager_on(dir: &Path, storage: Arc<dyn Storage>) -> IncrementalCheckpointManager {
    IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir)
            .with_storage(storage)
            .with_max_retained(10),
    )
    .unwrap()
}
