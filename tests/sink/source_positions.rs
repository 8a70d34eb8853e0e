//! Per-partition offsets and watermarks through checkpoints and the log: a
//! `Watermarks` entry becomes visible with its transaction's Commit, exactly
//! like a change; recovery overlays the checkpoint's partition watermarks with
//! the committed ones, and never takes them from an uncommitted tail.

use highwater::recovery::{CommitInfo, SinkError};
use highwater::{
    CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput, RecoveryConfig,
    RecoveryManager, ReplaySink, SourcePositions, StateSnapshot, TransactionMode, WalEntry,
    WriteAheadLog,
};
use std::collections::HashMap;
use std::time::Duration;

fn put(key: &str) -> WalEntry {
    WalEntry::Put {
        key: key.as_bytes().to_vec(),
        value: b"v".to_vec(),
    }
}

fn positions(parts: &[(&str, u64, i64)]) -> SourcePositions {
    let mut s = SourcePositions::new();
    for &(name, offset, watermark) in parts {
        s.set_offset(name, offset).unwrap();
        s.advance_watermark(name, watermark);
    }
    s
}

#[test]
fn committed_partition_watermarks_are_recovered_and_the_uncommitted_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, wal_dir) = (dir.path().join("ckpt"), dir.path().join("wal"));
    let wal = WriteAheadLog::new(&wal_dir, Duration::from_millis(5)).unwrap();
    let committed = positions(&[("p0", 10, 500), ("p1", 4, 300)]);
    wal.append(&put("a")).unwrap();
    for e in committed.commit_entries() {
        wal.append(&e).unwrap();
    }
    // An uncommitted tail: a later watermark that must not be recovered.
    wal.append(&put("b")).unwrap();
    wal.append(&WalEntry::Watermarks {
        watermarks: HashMap::from([("p1".into(), 900)]),
    })
    .unwrap();
    wal.sync().unwrap();
    drop(wal);

    let recovered = RecoveryManager::recover_simple(&ckpt, &wal_dir).unwrap();
    assert_eq!(
        recovered.source_watermarks,
        HashMap::from([("p0".into(), 500), ("p1".into(), 300)])
    );
    assert_eq!(recovered.watermark, Some(300), "the combined watermark");
    assert_eq!(SourcePositions::from_recovered(&recovered), committed);
    assert_eq!(recovered.report.uncommitted_entries, 2);
}

#[test]
fn the_log_overlays_the_checkpoints_partition_watermarks() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, wal_dir) = (dir.path().join("ckpt"), dir.path().join("wal"));
    let wal = WriteAheadLog::new(&wal_dir, Duration::from_millis(5)).unwrap();
    let mut sources = positions(&[("p0", 1, 100), ("p1", 1, 200), ("p2", 1, 50)]);
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    let state = StateSnapshot::new(vec![]);
    let meta = manager
        .create_checkpoint(
            CheckpointRequest::new(wal.position())
                .with_sources(&sources)
                .with_part("state", PartInput::Snapshot(&state)),
        )
        .unwrap();
    assert_eq!(meta.watermark, Some(50));
    assert_eq!(SourcePositions::from_checkpoint(&meta), sources);

    // One transaction moves p2 only.
    sources.set_offset("p2", 2).unwrap();
    sources.advance_watermark("p2", 400);
    wal.append(&put("a")).unwrap();
    wal.append(&WalEntry::Watermarks {
        watermarks: HashMap::from([("p2".into(), 400)]),
    })
    .unwrap();
    wal.append(&WalEntry::Commit {
        offsets: HashMap::from([("p2".into(), 2)]),
        watermark: sources.combined_watermark(),
    })
    .unwrap();
    wal.sync().unwrap();
    drop(wal);

    struct Seen(Vec<HashMap<String, i64>>);
    impl ReplaySink for Seen {
        fn apply(&mut self, _: &[u8], _: Option<&[u8]>) -> Result<(), SinkError> {
            Ok(())
        }
        fn commit(&mut self, c: &CommitInfo<'_>) -> Result<(), SinkError> {
            self.0.push(c.watermarks.clone());
            Ok(())
        }
    }
    let mut seen = Seen(Vec::new());
    let recovered = RecoveryManager::new(RecoveryConfig::new(&ckpt, &wal_dir))
        .recover_into(&mut seen)
        .unwrap();
    assert_eq!(seen.0, [HashMap::from([("p2".into(), 400)])]);
    assert_eq!(SourcePositions::from_recovered(&recovered), sources);
    assert_eq!(recovered.watermark, Some(100));
}

#[test]
fn without_transactions_watermarks_apply_as_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, wal_dir) = (dir.path().join("ckpt"), dir.path().join("wal"));
    let wal = WriteAheadLog::new(&wal_dir, Duration::from_millis(5)).unwrap();
    wal.append(&put("a")).unwrap();
    wal.append(&WalEntry::Watermarks {
        watermarks: HashMap::from([("p0".into(), 7)]),
    })
    .unwrap();
    wal.sync().unwrap();
    drop(wal);
    let recovered = RecoveryManager::new(
        RecoveryConfig::new(&ckpt, &wal_dir).with_transaction_mode(TransactionMode::NoTransactions),
    )
    .recover()
    .unwrap();
    assert_eq!(
        recovered.source_watermarks,
        HashMap::from([("p0".into(), 7)])
    );
    assert_eq!(recovered.report.uncommitted_entries, 0);
}

#[test]
fn an_offset_never_moves_backwards_unless_the_caller_seeks() {
    let mut sources = SourcePositions::new();
    sources.set_offset("p0", 10).unwrap();
    sources.set_offset("p0", 10).unwrap(); // the same offset again is fine
    match sources.set_offset("p0", 9) {
        Err(highwater::Error::OffsetRegression {
            partition,
            current,
            requested,
        }) => assert_eq!((partition.as_str(), current, requested), ("p0", 10, 9)),
        other => panic!("expected OffsetRegression, got {other:?}"),
    }
    assert_eq!(
        sources.offset("p0"),
        Some(10),
        "a refused offset changes nothing"
    );
    sources.seek_offset("p0", 3);
    assert_eq!(sources.offset("p0"), Some(3));
}

mod watermarks_only_grow {
    use super::*;
    use highwater::{
        CheckpointConfig, IncrementalCheckpointManager, RecoveryManager, StateSnapshot,
        WriteAheadLog,
    };
    use std::collections::HashMap;

    fn commit(watermark: i64) -> WalEntry {
        WalEntry::Commit {
            offsets: HashMap::from([("p0".to_string(), watermark as u64)]),
            watermark: Some(watermark),
        }
    }

    #[test]
    fn a_lower_watermark_in_the_log_never_lowers_the_recovered_one_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let (ckpt, wal_dir) = (dir.path().join("ckpt"), dir.path().join("wal"));
        let wal = WriteAheadLog::new(&wal_dir, std::time::Duration::ZERO).unwrap();
        wal.append(&put("a")).unwrap();
        wal.append(&commit(100)).unwrap();
        wal.append(&put("b")).unwrap();
        wal.append(&commit(50)).unwrap();
        wal.close().unwrap();
        let recovered = RecoveryManager::recover_with_changes(&ckpt, &wal_dir).unwrap();
        assert_eq!(recovered.watermark, Some(100));
        assert_eq!(recovered.report.watermark_regressions, 1);
        assert_eq!(
            recovered.source_offsets["p0"], 50,
            "offsets are the last Commit's"
        );
    }

    #[test]
    fn a_checkpoint_never_records_a_watermark_below_its_parents() {
        let dir = tempfile::tempdir().unwrap();
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path())).unwrap();
        let state = StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())]);
        let offsets = HashMap::from([("p0".to_string(), 1)]);
        m.create_checkpoint_with_state(0, offsets.clone(), Some(100), &state.to_bytes().unwrap())
            .unwrap();
        let delta = highwater::StateDelta::from_changes(vec![(b"j".to_vec(), Some(b"w".to_vec()))]);
        let second = m
            .create_delta_checkpoint_with_state(0, offsets, Some(40), &delta.to_bytes().unwrap())
            .unwrap();
        assert_eq!(second.watermark, Some(100));
    }

    #[test]
    fn a_seed_style_checkpoint_gives_back_per_partition_watermarks_and_advances_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let (ckpt, wal_dir) = (dir.path().join("ckpt"), dir.path().join("wal"));
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
        let state = StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())]);
        let offsets = HashMap::from([("p0".to_string(), 10), ("p1".to_string(), 20)]);
        let first = m
            .create_checkpoint_with_state(0, offsets.clone(), Some(77), &state.to_bytes().unwrap())
            .unwrap();
        let second = m
            .create_checkpoint_with_state(0, offsets, Some(78), &state.to_bytes().unwrap())
            .unwrap();
        assert_eq!(
            (first.epoch, second.epoch),
            (0, 1),
            "the epoch advances by itself"
        );
        drop(m);

        let recovered = RecoveryManager::recover_simple(&ckpt, &wal_dir).unwrap();
        assert_eq!(recovered.epoch, 1);
        assert_eq!(
            recovered.source_watermarks,
            HashMap::from([("p0".to_string(), 78), ("p1".to_string(), 78)])
        );
        let sources = SourcePositions::from_recovered(&recovered);
        assert_eq!(sources.combined_watermark(), Some(78));
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
        let third = m
            .create_checkpoint_with_state(0, Default::default(), None, &state.to_bytes().unwrap())
            .unwrap();
        assert_eq!(third.epoch, 2, "after a restart too");
        m.set_epoch(10);
        let fourth = m
            .create_checkpoint_with_state(0, Default::default(), None, &state.to_bytes().unwrap())
            .unwrap();
        assert_eq!(fourth.epoch, 10, "unless the caller sets it");
    }
}

#[test]
fn a_checkpoint_without_a_parent_never_records_a_watermark_below_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path())).unwrap();
    let state = StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())]);
    m.create_checkpoint_with_state(0, HashMap::new(), Some(100), &state.to_bytes().unwrap())
        .unwrap();
    drop(m);
    // A fresh manager, nothing restored through it: a full checkpoint.
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path())).unwrap();
    let second = m
        .create_checkpoint_with_state(0, HashMap::new(), Some(40), &state.to_bytes().unwrap())
        .unwrap();
    assert_eq!(second.parent_id, None);
    assert_eq!(second.watermark, Some(100));
}
