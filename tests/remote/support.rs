//! A job directory and a remote location for the tests.

use highwater::blob::{BlobStore, LocalBlobStore, SimBlobStore};
use highwater::{
    CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput, RemoteConfig,
    StateSnapshot,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A bucket shared by several "machines" (cache directories).
pub struct Site {
    pub root: tempfile::TempDir,
    pub store: Arc<dyn BlobStore>,
}

impl Site {
    /// A bucket in a local directory.
    pub fn local() -> Self {
        let root = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalBlobStore::open(root.path().join("bucket")).unwrap());
        Site { root, store }
    }

    /// A bucket in the simulator.
    pub fn sim(seed: u64) -> (Self, SimBlobStore) {
        let root = tempfile::tempdir().unwrap();
        let sim = SimBlobStore::new(seed);
        let store: Arc<dyn BlobStore> = Arc::new(sim.clone());
        (Site { root, store }, sim)
    }

    /// The cache directory of machine `name`.
    pub fn cache(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// The config of a manager on machine `name`.
    pub fn config(&self, name: &str) -> CheckpointConfig {
        CheckpointConfig::new(self.cache(name)).with_remote(
            RemoteConfig::new(self.store.clone()).with_gc_grace(std::time::Duration::ZERO),
        )
    }

    /// A manager on machine `name`.
    pub fn manager(&self, name: &str) -> IncrementalCheckpointManager {
        IncrementalCheckpointManager::new(self.config(name)).unwrap()
    }
}

/// A snapshot of `n` keys whose values carry `tag`.
pub fn snapshot(n: usize, tag: &str) -> StateSnapshot {
    StateSnapshot::new(
        (0..n)
            .map(|i| {
                (
                    format!("k{i:05}").into_bytes(),
                    format!("{tag}-{i}").into_bytes(),
                )
            })
            .collect(),
    )
}

/// Writes a full checkpoint of `state` at offset `offset`.
pub fn full(
    m: &IncrementalCheckpointManager,
    offset: u64,
    state: &StateSnapshot,
) -> highwater::Result<highwater::IncrementalCheckpointMetadata> {
    m.create_checkpoint(
        CheckpointRequest::new(offset)
            .with_offsets(std::collections::HashMap::from([(
                "src".to_string(),
                offset,
            )]))
            .with_part("state", PartInput::Snapshot(state)),
    )
}

/// The checkpoint directories in `dir`.
pub fn cached_ids(dir: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_str()?
                .strip_prefix("checkpoint-")?
                .parse()
                .ok()
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// The checkpoint directories in `dir` on `disk`.
pub fn cached_ids_in(disk: &dyn highwater::storage::Storage, dir: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = disk
        .list_dir(dir)
        .unwrap()
        .into_iter()
        .filter_map(|e| e.name.strip_prefix("checkpoint-")?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}
