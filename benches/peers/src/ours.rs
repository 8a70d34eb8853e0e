//! highwater through its seed-compatible API, and its own incremental path
//! (`TrackedState` + delta checkpoints, the mapped view).

use crate::workload::Op;
use highwater::checkpoint::{CheckpointRequest, PartInput};
use highwater::{
    CheckpointConfig, CheckpointStore, IncrementalCheckpointManager, RecoveryConfig,
    RecoveryManager, StateSnapshot, TrackedState, WalEntry, WriteAheadLog,
};
use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

pub use crate::seed::FullSteps;

/// The workload as highwater's entries.
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

/// Buffered appends of every entry into a new log directory `wal` (the
/// background sync interval is an hour, so nothing syncs in the timed loop).
pub fn append(wal: &Path, entries: &[WalEntry]) -> Duration {
    let log = WriteAheadLog::new(wal, Duration::from_secs(3600)).expect("wal");
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
    let log = WriteAheadLog::new(wal, Duration::from_secs(3600)).expect("wal");
    log.set_sync_on_write(true);
    let start = Instant::now();
    for e in entries {
        log.append(e).expect("append");
    }
    start.elapsed()
}

/// `recover_with_changes` over an empty checkpoint directory and the log.
pub fn replay(cp_dir: &Path, wal: &Path) -> (Duration, u64, usize) {
    let start = Instant::now();
    let r = RecoveryManager::recover_with_changes(cp_dir, wal).expect("recover");
    let t = start.elapsed();
    (t, r.wal_entries_replayed, r.state_changes.len())
}

fn manager(dir: &Path) -> IncrementalCheckpointManager {
    IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir)
            .with_max_retained(1_000_000)
            .with_max_delta_chain(u32::MAX)
            .with_max_delta_ratio(1e9),
    )
    .expect("manager")
}

/// `StateSnapshot::new` + `to_bytes` + `create_checkpoint_with_state` into
/// `cp_dir` (with its fsyncs).
pub fn full_checkpoint(cp_dir: &Path, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> (FullSteps, u64) {
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(cp_dir)).expect("mgr");
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

/// `recover()` of the checkpoint in `cp_dir` (no log), every checksum
/// verified before the state is returned.
pub fn restore(cp_dir: &Path, wal: &Path) -> (Duration, usize) {
    let start = Instant::now();
    let r = RecoveryManager::new(RecoveryConfig::new(cp_dir, wal))
        .recover()
        .expect("recover");
    let snap = r.state_snapshot.expect("state_snapshot");
    let t = start.elapsed();
    (t, snap.len())
}

/// Mapped restore: a read-only `CheckpointStore` over the directory (the
/// operator's manager holds its lock), the newest checkpoint's id, its "state"
/// part's view (metadata + chain check + map, the blocks a look-up touches
/// verified as it reads them) and one `get`.
pub fn mapped_open_get(cp_dir: &Path, probe: &[u8]) -> Duration {
    let start = Instant::now();
    let store = CheckpointStore::new(cp_dir);
    let id = *store
        .checkpoint_ids()
        .expect("ids")
        .last()
        .expect("a checkpoint");
    let view = store.open_state_view(id, "state").expect("view");
    black_box(view.get(probe).expect("get").map(<[u8]>::len));
    start.elapsed()
}

/// `CheckpointStore::find_latest` alone (it verifies every byte of the
/// newest restorable checkpoint).
pub fn find_latest(cp_dir: &Path) -> Duration {
    let start = Instant::now();
    let store = CheckpointStore::new(cp_dir);
    black_box(
        store
            .find_latest()
            .expect("latest")
            .metadata
            .expect("a checkpoint")
            .id,
    );
    start.elapsed()
}

/// The operator's state with a checkpoint chain behind it.
pub struct Operator {
    pub state: TrackedState,
    pub manager: IncrementalCheckpointManager,
    pub next_position: u64,
}

/// Steps of one incremental round.
#[derive(Clone, Copy, Default)]
pub struct RoundSteps {
    pub puts: Duration,
    pub delta: Duration,
    pub checkpoint: Duration,
}

impl RoundSteps {
    pub fn total(&self) -> Duration {
        self.puts + self.delta + self.checkpoint
    }
}

impl Operator {
    /// A base full checkpoint of `pairs` in `dir`, and the state restored
    /// from it (set up outside any clock).
    pub fn new(dir: &Path, pairs: &[(Vec<u8>, Vec<u8>)]) -> Self {
        let snap = StateSnapshot::new(pairs.to_vec());
        let manager = manager(dir);
        manager
            .create_checkpoint(
                CheckpointRequest::new(1).with_part("state", PartInput::Snapshot(&snap)),
            )
            .expect("base checkpoint");
        Operator {
            state: TrackedState::from_snapshot(&snap),
            manager,
            next_position: 2,
        }
    }

    /// One round: the changes `put` into the state, its `delta()`, the delta
    /// checkpoint, `mark_checkpointed`.
    pub fn round(&mut self, changes: Vec<(Vec<u8>, Vec<u8>)>) -> RoundSteps {
        let t0 = Instant::now();
        for (k, v) in changes {
            self.state.put(k, v);
        }
        let t1 = Instant::now();
        let delta = self.state.delta();
        let t2 = Instant::now();
        self.manager
            .create_checkpoint(
                CheckpointRequest::new(self.next_position)
                    .with_part("state", PartInput::Delta(&delta)),
            )
            .expect("delta checkpoint");
        self.state.mark_checkpointed();
        let t3 = Instant::now();
        self.next_position += 1;
        RoundSteps {
            puts: t1 - t0,
            delta: t2 - t1,
            checkpoint: t3 - t2,
        }
    }
}
