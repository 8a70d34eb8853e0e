//! The public names ../shared/DESIGN.md fixes, used as written there, so a
//! change that breaks one fails to compile here.

use highwater::{
    validate_checkpoint, wal_size, CheckpointConfig, IncrementalCheckpointManager,
    IncrementalCheckpointMetadata, RecoveredState, RecoveryConfig, RecoveryManager, StateSnapshot,
    WalEntry, WalReadResult, WriteAheadLog,
};
use std::collections::HashMap;
use std::time::Duration;

#[test]
fn the_seed_compatible_names_work_as_the_design_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, wal_dir) = (dir.path().join("ckpt"), dir.path().join("wal"));

    let wal = WriteAheadLog::new(&wal_dir, Duration::from_millis(10)).unwrap();
    wal.set_sync_on_write(true);
    let at: u64 = wal
        .append(&WalEntry::Put {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        })
        .unwrap();
    wal.append(&WalEntry::Delete { key: b"x".to_vec() })
        .unwrap();
    wal.append(&WalEntry::Commit {
        offsets: HashMap::from([("s".to_string(), 1)]),
        watermark: Some(5),
    })
    .unwrap();
    wal.append(&WalEntry::Checkpoint { id: 1 }).unwrap();
    wal.sync().unwrap();
    let end: u64 = wal.position();
    let mut reader = wal.read_from(at).unwrap();
    let mut n = 0;
    loop {
        match reader.read_next().unwrap() {
            WalReadResult::Entry(_) => n += 1,
            WalReadResult::Eof => break,
            WalReadResult::TornWrite { .. }
            | WalReadResult::ChecksumMismatch { .. }
            | WalReadResult::Corrupted { .. } => panic!("damage"),
            _ => panic!("unexpected"),
        }
    }
    assert_eq!(n, 4);
    let _ = reader.position();
    wal.repair().unwrap();
    drop(wal);

    let snapshot = StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())]);
    let bytes = snapshot.to_bytes().unwrap();
    let back = StateSnapshot::from_bytes(&bytes).unwrap();
    assert_eq!((back.len(), back.is_empty()), (1, false));
    assert_eq!(back.get(b"k"), Some(&b"v"[..]));

    let config = CheckpointConfig::new(&ckpt).with_max_retained(3);
    let manager = IncrementalCheckpointManager::new(config).unwrap();
    manager.set_epoch(1);
    assert_eq!(manager.epoch(), 1);
    let meta: IncrementalCheckpointMetadata = manager
        .create_checkpoint_with_state(end, HashMap::new(), Some(5), &bytes)
        .unwrap();
    let (_, _, _, _, _, _) = (
        meta.id,
        meta.epoch,
        meta.wal_position,
        &meta.source_offsets,
        meta.watermark,
        meta.parent_id,
    );
    assert!(meta.checkpoint_path(&ckpt).exists());
    assert_eq!(
        manager.find_latest_checkpoint().unwrap().unwrap().id,
        meta.id
    );
    assert!(!manager.load_checkpoint_state(meta.id).unwrap().is_empty());
    assert_eq!(manager.list_checkpoints().unwrap().len(), 1);
    drop(manager);
    validate_checkpoint(meta.checkpoint_path(&ckpt)).unwrap();
    assert!(wal_size(&wal_dir).unwrap() > 0);

    let config = RecoveryConfig::new(&ckpt, &wal_dir)
        .with_repair_wal(true)
        .with_collect_state_changes(true)
        .with_max_wal_entries(0);
    let _: (bool, bool, u64) = (
        config.repair_wal,
        config.collect_state_changes,
        config.max_wal_entries,
    );
    let recovered: RecoveredState = RecoveryManager::new(config).recover().unwrap();
    assert!(recovered.has_state());
    let _ = (
        recovered.epoch,
        &recovered.state_snapshot,
        recovered.wal_position,
        recovered.wal_entries_replayed,
        &recovered.source_offsets,
        recovered.watermark,
        recovered.checkpoint_id,
        &recovered.state_changes,
    );
    RecoveryManager::recover_simple(&ckpt, &wal_dir).unwrap();
    RecoveryManager::recover_with_changes(&ckpt, &wal_dir).unwrap();
    assert!(!RecoveredState::empty().has_state());
}
