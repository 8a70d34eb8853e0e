//! A manager's commits and restores report into the progress of its
//! remote config: every part file's bytes, up and down.

use crate::support::{full, snapshot, Site};
use highwater::{
    CheckpointConfig, IncrementalCheckpointManager, IncrementalCheckpointMetadata, ProgressCounts,
    RemoteConfig, TransferProgress,
};

fn config(site: &Site, machine: &str, progress: &TransferProgress) -> CheckpointConfig {
    CheckpointConfig::new(site.cache(machine)).with_remote(
        RemoteConfig::new(site.store.clone())
            .with_gc_grace(std::time::Duration::ZERO)
            .with_progress(progress.clone()),
    )
}

/// The counts of moving every part of `checkpoints` once.
fn all_parts(checkpoints: &[&IncrementalCheckpointMetadata]) -> ProgressCounts {
    let bytes: u64 = checkpoints
        .iter()
        .flat_map(|m| &m.parts)
        .map(|p| p.size)
        .sum();
    let files = checkpoints.iter().map(|m| m.parts.len() as u64).sum();
    ProgressCounts {
        bytes_done: bytes,
        bytes_total: bytes,
        files_done: files,
        files_total: files,
    }
}

#[test]
fn commits_and_restores_report_into_the_configs_progress() {
    let site = Site::local();
    let up = TransferProgress::new();
    let a = IncrementalCheckpointManager::new(config(&site, "a", &up)).unwrap();
    let first = full(&a, 10, &snapshot(300, "v1")).unwrap();
    assert_eq!(up.upload(), all_parts(&[&first]));
    let second = full(&a, 20, &snapshot(400, "v2")).unwrap();
    assert_eq!(up.upload(), all_parts(&[&first, &second]));
    assert!(up.upload().bytes_total > 0);
    assert_eq!(up.download(), ProgressCounts::default());
    drop(a);

    let down = TransferProgress::new();
    let b = IncrementalCheckpointManager::new(config(&site, "b", &down)).unwrap();
    assert_eq!(b.remote_restore().unwrap().restored, Some(second.id));
    assert_eq!(down.download(), all_parts(&[&second]));
    assert_eq!(down.upload(), ProgressCounts::default());
}
