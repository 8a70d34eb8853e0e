//! The metrics highwater records (src/metrics.rs, docs/OPERATIONS.md
//! "Metrics"), seen through a debugging recorder installed for this thread.

use highwater::metrics as names;
use highwater::{
    CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput, RecoveryConfig,
    RecoveryManager, StateSnapshot, WalEntry, WriteAheadLog,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;

/// Every metric recorded while `run` ran: (kind, name, labels, value).
fn recorded(run: impl FnOnce()) -> Vec<(MetricKind, String, Vec<String>, DebugValue)> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, run);
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let labels = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            (kind, key.name().to_string(), labels, value)
        })
        .collect()
}

fn count(
    all: &[(MetricKind, String, Vec<String>, DebugValue)],
    name: &str,
    label: Option<&str>,
) -> u64 {
    all.iter()
        .filter(|(_, n, l, _)| n == name && label.is_none_or(|x| l.iter().any(|y| y == x)))
        .map(|(_, _, _, v)| match v {
            DebugValue::Counter(c) => *c,
            DebugValue::Histogram(h) => h.len() as u64,
            DebugValue::Gauge(_) => 1,
        })
        .sum()
}

#[test]
fn appends_fsyncs_checkpoints_and_recoveries_are_measured() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, wal_dir) = (dir.path().join("ckpt"), dir.path().join("wal"));
    let all = recorded(|| {
        let wal = WriteAheadLog::new(&wal_dir, std::time::Duration::ZERO).unwrap();
        for i in 0..3u8 {
            wal.append(&WalEntry::Put {
                key: vec![i],
                value: vec![i],
            })
            .unwrap();
        }
        wal.append(&WalEntry::Commit {
            offsets: Default::default(),
            watermark: None,
        })
        .unwrap();
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
        let state = StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())]);
        m.create_checkpoint(
            CheckpointRequest::new(wal.position())
                .with_wal(&wal)
                .with_part("state", PartInput::Snapshot(&state)),
        )
        .unwrap();
        drop((m, wal));
        RecoveryManager::new(RecoveryConfig::new(&ckpt, &wal_dir))
            .recover()
            .unwrap();
    });
    assert_eq!(count(&all, names::WAL_APPENDS, None), 4);
    assert!(
        count(&all, names::WAL_FSYNC_SECONDS, None) >= 4,
        "every durable append fsyncs"
    );
    assert!(count(&all, names::WAL_GROUP_COMMIT_SIZE, None) >= 4);
    assert_eq!(count(&all, names::WAL_FSYNC_FAILURES, None), 0);
    assert_eq!(count(&all, names::CHECKPOINTS, Some("kind=full")), 1);
    assert_eq!(count(&all, names::CHECKPOINT_SECONDS, Some("kind=full")), 1);
    assert_eq!(count(&all, names::CHECKPOINT_BYTES, Some("kind=full")), 1);
    assert_eq!(
        count(&all, names::RECOVERY_PHASE_SECONDS, Some("phase=total")),
        1
    );
    assert_eq!(
        count(&all, names::RECOVERY_PHASE_SECONDS, Some("phase=replay")),
        1
    );
}
