//! The seed: LaminarDB 0.19.11's storage crate (`laminar-storage`) and its
//! `laminar_core::state::StateSnapshot`.

use crate::workload::Op;
use laminar_core::state::StateSnapshot;
use laminar_storage::{
    CheckpointConfig, IncrementalCheckpointManager, RecoveryConfig, RecoveryManager, WalEntry,
    WriteAheadLog,
};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The workload as the seed's entries.
pub fn entries(ops: &[Op]) -> Vec<WalEntry> {
    ops.iter()
        .map(|op| match op {
            Op::Put(k, v) => WalEntry::Put {
                key: k.clone(),
                value: v.clone(),
            },
            Op::Commit(o) => WalEntry::Commit {
                offsets: HashMap::from([("src".to_string(), *o)]),
                watermark: Some(*o as i64),
            },
        })
        .collect()
}

/// Buffered appends of every entry into a new log file at `wal` (no sync in
/// the timed loop; the group-commit interval is an hour).
pub fn append(wal: &Path, entries: &[WalEntry]) -> Duration {
    let mut log = WriteAheadLog::new(wal, Duration::from_secs(3600)).expect("seed wal");
    let start = Instant::now();
    for e in entries {
        log.append(e).expect("append");
    }
    let t = start.elapsed();
    log.sync().expect("sync");
    t
}

/// Durable appends (`set_sync_on_write(true)`) of `entries`.
pub fn durable(wal: &Path, entries: &[WalEntry]) -> Duration {
    let mut log = WriteAheadLog::new(wal, Duration::from_secs(3600)).expect("seed wal");
    log.set_sync_on_write(true);
    let start = Instant::now();
    for e in entries {
        log.append(e).expect("append");
    }
    start.elapsed()
}

/// `recover_with_changes` over an empty checkpoint directory and the log;
/// returns the time and the entries replayed.
pub fn replay(cp_dir: &Path, wal: &Path) -> (Duration, u64, usize) {
    let start = Instant::now();
    let r = RecoveryManager::recover_with_changes(cp_dir, wal).expect("seed recover");
    let t = start.elapsed();
    (t, r.wal_entries_replayed, r.state_changes.len())
}

/// Steps of a full checkpoint.
#[derive(Clone, Copy, Default)]
pub struct FullSteps {
    pub new: Duration,
    pub to_bytes: Duration,
    pub write: Duration,
}

impl FullSteps {
    pub fn total(&self) -> Duration {
        self.new + self.to_bytes + self.write
    }
}

/// `StateSnapshot::new` + `to_bytes` + `create_checkpoint_with_state` into
/// `cp_dir` (the seed writes without fsync).
pub fn full_checkpoint(cp_dir: &Path, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> (FullSteps, u64) {
    let mut m = IncrementalCheckpointManager::new(CheckpointConfig::new(cp_dir)).expect("mgr");
    let t0 = Instant::now();
    let snap = StateSnapshot::new(pairs);
    let t1 = Instant::now();
    let bytes = snap.to_bytes().expect("to_bytes");
    let t2 = Instant::now();
    m.create_checkpoint_with_state(0, HashMap::new(), None, &bytes)
        .expect("checkpoint");
    let t3 = Instant::now();
    let len = bytes.len() as u64;
    drop(bytes);
    drop(snap);
    (
        FullSteps {
            new: t1 - t0,
            to_bytes: t2 - t1,
            write: t3 - t2,
        },
        len,
    )
}

/// `recover()` of the checkpoint in `cp_dir` (no log); returns the time and
/// the restored snapshot's length.
pub fn restore(cp_dir: &Path, wal: &Path) -> (Duration, usize) {
    let start = Instant::now();
    let r = RecoveryManager::new(RecoveryConfig::new(cp_dir, wal))
        .recover()
        .expect("seed recover");
    let snap = r.state_snapshot.expect("seed state_snapshot");
    let t = start.elapsed();
    (t, snap.len())
}
