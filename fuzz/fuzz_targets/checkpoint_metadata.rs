//! The checkpoint metadata parser: arbitrary bytes as `metadata.json` of a
//! checkpoint directory give a typed error or metadata whose every part
//! verifies, never a panic; the chosen checkpoint is never one that fails
//! validation.
#![no_main]

use highwater::inspect::checkpoint_dir_name;
use highwater::recovery::validate_checkpoint_with;
use highwater::storage::{CrashSimStorage, OpenMode, Storage};
use highwater::{CheckpointConfig, IncrementalCheckpointManager};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let sim = CrashSimStorage::new();
    let root = Path::new("/checkpoints");
    let dir = root.join(checkpoint_dir_name(1));
    sim.create_dir_all(&dir).unwrap();
    let file = sim
        .open_file(&dir.join("metadata.json"), OpenMode::CreateNew)
        .unwrap();
    file.write_all_at(data, 0).unwrap();
    let storage: Arc<dyn Storage> = Arc::new(sim);
    let validated = validate_checkpoint_with(storage.clone(), &dir);
    let Ok(manager) =
        IncrementalCheckpointManager::new(CheckpointConfig::new(root).with_storage(storage))
    else {
        return;
    };
    if let Ok(latest) = manager.find_latest_checkpoint() {
        if latest.is_some() {
            assert!(
                validated.is_ok(),
                "a checkpoint that fails validation was chosen"
            );
        }
    }
});
