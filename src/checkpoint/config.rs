//! [`CheckpointConfig`]: where checkpoints live and when a delta chain is closed
//! by a new full checkpoint.

use crate::storage::{default_storage, Storage};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Configuration of an [`IncrementalCheckpointManager`](super::IncrementalCheckpointManager).
///
/// ```
/// use highwater::CheckpointConfig;
/// let config = CheckpointConfig::new("/var/lib/job/checkpoints")
///     .with_max_retained(5)
///     .with_max_delta_chain(10)
///     .with_max_delta_ratio(0.5);
/// assert_eq!(config.max_retained(), 5);
/// ```
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    dir: PathBuf,
    max_retained: usize,
    max_delta_chain: u32,
    max_delta_ratio: f64,
    storage: Arc<dyn Storage>,
}

impl CheckpointConfig {
    /// Checkpoints in `dir` (created if missing), keeping the newest 3 restorable
    /// checkpoints, with delta chains of at most 8 deltas whose files add up to at
    /// most half of their base's size.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        CheckpointConfig {
            dir: dir.as_ref().to_path_buf(),
            max_retained: 3,
            max_delta_chain: 8,
            max_delta_ratio: 0.5,
            storage: default_storage(),
        }
    }

    /// Keep the newest `n` restorable checkpoints (at least 1; 0 is treated as
    /// 1), plus every checkpoint a kept delta depends on.
    pub fn with_max_retained(mut self, n: usize) -> Self {
        self.max_retained = n.max(1);
        self
    }

    /// Write a full checkpoint instead of a delta once the chain from the last full
    /// checkpoint would hold more than `n` deltas (0: never write deltas).
    pub fn with_max_delta_chain(mut self, n: u32) -> Self {
        self.max_delta_chain = n;
        self
    }

    /// Write a full checkpoint instead of a delta once the chain's delta files
    /// would add up to more than `ratio` times the size of its base (bases under
    /// 1 MiB count as 1 MiB). Loading a chain reads the base plus every delta, so
    /// this bounds load cost to `(1 + ratio)` times a full load.
    pub fn with_max_delta_ratio(mut self, ratio: f64) -> Self {
        self.max_delta_ratio = if ratio.is_finite() {
            ratio.max(0.0)
        } else {
            0.0
        };
        self
    }

    /// Do all I/O through `storage` (tests use fault-injecting or crash-simulating
    /// storages).
    pub fn with_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many restorable checkpoints retention keeps.
    pub fn max_retained(&self) -> usize {
        self.max_retained
    }

    /// The longest delta chain.
    pub fn max_delta_chain(&self) -> u32 {
        self.max_delta_chain
    }

    /// The largest chain-delta-to-base size ratio.
    pub fn max_delta_ratio(&self) -> f64 {
        self.max_delta_ratio
    }

    /// The storage used.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }
}
