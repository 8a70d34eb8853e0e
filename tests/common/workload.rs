//! A deterministic streaming workload and the model of what it committed, shared
//! by the crash-consistency tests and the process-kill test.
//!
//! Transaction `i` (0-based) puts and deletes a few keys of a small key space,
//! then commits with offsets `p0 = i + 1` (every transaction) and `p1` (every
//! third one), and a watermark of `10 i` (none on every fourth). The model holds
//! the state after each number of commits, so a recovered state is checked by
//! reading its commit number off `p0` and comparing everything else.

use super::sampling::Rng;
use highwater::checkpoint::DEFAULT_PART;
use highwater::storage::{CrashSimStorage, Storage};
use highwater::{
    CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput, RecoveredState,
    RecoveryConfig, SyncPolicy, TrackedState, WalEntry, WalOptions, WriteAheadLog,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// The state, offsets and watermark after some number of commits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    pub state: BTreeMap<Vec<u8>, Vec<u8>>,
    pub offsets: HashMap<String, u64>,
    pub watermark: Option<i64>,
}

/// The transactions of a workload with a given seed.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub seed: u64,
}

/// What a workload commits: the state after each number of commits.
#[derive(Debug, Clone)]
pub struct Model {
    workload: Workload,
    /// `after[k]`: after `k` commits.
    after: Vec<Committed>,
}

/// A well-mixed hash of `z`.
fn mix(z: u64) -> u64 {
    Rng(z).next()
}

impl Committed {
    /// Applies one entry of a transaction.
    fn apply(&mut self, entry: &WalEntry) {
        match entry {
            WalEntry::Put { key, value } => {
                self.state.insert(key.clone(), value.clone());
            }
            WalEntry::Delete { key } => {
                self.state.remove(key);
            }
            WalEntry::Commit { offsets, watermark } => {
                self.offsets.extend(offsets.clone());
                if watermark.is_some() {
                    self.watermark = *watermark;
                }
            }
            other => unreachable!("{other:?}"),
        }
    }
}

impl Model {
    pub fn new(seed: u64, commits: u64) -> Self {
        let mut model = Model {
            workload: Workload { seed },
            after: vec![Committed::default()],
        };
        model.extend_to(commits);
        model
    }

    /// Makes the model cover at least `commits` commits.
    pub fn extend_to(&mut self, commits: u64) {
        for i in self.len()..commits {
            let mut next = self.after[i as usize].clone();
            let (changes, commit) = self.workload.transaction(i);
            for change in changes.iter().chain([&commit]) {
                next.apply(change);
            }
            self.after.push(next);
        }
    }

    /// How many commits the model covers.
    pub fn len(&self) -> u64 {
        self.after.len() as u64 - 1
    }

    /// After `k` commits.
    pub fn after(&self, k: u64) -> &Committed {
        &self.after[k as usize]
    }

    /// The transactions.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }
}

impl Workload {
    /// The changes and the Commit of transaction `i`.
    pub fn transaction(&self, i: u64) -> (Vec<WalEntry>, WalEntry) {
        let h = mix(self.seed ^ mix(i));
        let changes = (0..1 + h % 4)
            .map(|j| {
                let r = mix(h ^ j);
                let key = format!("key-{:02}", r % 12).into_bytes();
                if r.is_multiple_of(5) {
                    WalEntry::Delete { key }
                } else {
                    let len = 8 + (r >> 8) as usize % 600;
                    let mut value = format!("t{i}-c{j}-").into_bytes();
                    value.resize(len.max(value.len()), b'a' + (r % 26) as u8);
                    WalEntry::Put { key, value }
                }
            })
            .collect();
        let mut offsets = HashMap::from([("p0".to_string(), i + 1)]);
        if i.is_multiple_of(3) {
            offsets.insert("p1".to_string(), i / 3 + 1);
        }
        let watermark = (!(i + 1).is_multiple_of(4)).then_some(i as i64 * 10);
        (changes, WalEntry::Commit { offsets, watermark })
    }
}

impl Model {
    /// Which commit `recovered` is, checked against the model: its commit
    /// number `k` must satisfy `acked <= k <= attempted`, and its state, offsets
    /// and watermark must be exactly the model's after `k` commits.
    pub fn check(
        &self,
        recovered: &RecoveredState,
        acked: u64,
        attempted: u64,
    ) -> Result<u64, String> {
        let k = recovered.source_offsets.get("p0").copied().unwrap_or(0);
        if k < acked || k > attempted {
            return Err(format!(
                "recovered commit {k}, outside acknowledged {acked} ..= attempted {attempted}"
            ));
        }
        let want = self.after(k);
        let state: BTreeMap<Vec<u8>, Vec<u8>> = recovered
            .current_state()
            .map_err(|e| format!("current_state: {e}"))?
            .iter()
            .map(|(key, value)| (key.to_vec(), value.to_vec()))
            .collect();
        if state != want.state {
            return Err(format!(
                "commit {k}: state differs ({} keys, model {})",
                state.len(),
                want.state.len()
            ));
        }
        if recovered.source_offsets != want.offsets || recovered.watermark != want.watermark {
            return Err(format!(
                "commit {k}: offsets {:?} / watermark {:?}, model {:?} / {:?}",
                recovered.source_offsets, recovered.watermark, want.offsets, want.watermark
            ));
        }
        Ok(k)
    }
}

/// Where a workload keeps its files.
#[derive(Debug, Clone)]
pub struct Layout {
    pub storage: Arc<dyn Storage>,
    pub wal: PathBuf,
    pub checkpoints: PathBuf,
}

impl Layout {
    pub fn new(storage: Arc<dyn Storage>, root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Layout {
            storage,
            wal: root.join("wal"),
            checkpoints: root.join("checkpoints"),
        }
    }

    /// The job at `/job` on a crash simulator.
    pub fn sim(storage: &CrashSimStorage) -> Self {
        Layout::new(Arc::new(storage.clone()), "/job")
    }

    pub fn recovery(&self) -> RecoveryConfig {
        RecoveryConfig::new(&self.checkpoints, &self.wal)
            .with_collect_state_changes(true)
            .with_storage(self.storage.clone())
    }
}

/// How a workload runs.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// `Manual` (syncs as below) or `EveryWrite` (every append is durable when
    /// it returns, so every commit is acknowledged at once).
    pub sync_policy: SyncPolicy,
    /// Sync the log (acknowledging every commit so far) after every n-th commit.
    pub sync_every: u64,
    /// Checkpoint (after a sync) after every n-th commit; the first checkpoint of
    /// a run is full, later ones deltas (the manager turns some into full ones).
    pub checkpoint_every: u64,
    pub segment_size: u64,
    pub max_retained: usize,
    pub max_delta_chain: u32,
    /// Keep going after a failed checkpoint (the next one carries its changes)
    /// instead of stopping.
    pub retry_failed_checkpoints: bool,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            sync_policy: SyncPolicy::Manual,
            sync_every: 3,
            checkpoint_every: 8,
            segment_size: 4096,
            max_retained: 2,
            max_delta_chain: 2,
            retry_failed_checkpoints: false,
        }
    }
}

/// How far a run got.
#[derive(Debug, Default)]
pub struct Progress {
    /// Commits whose append was attempted (a crash may have kept the last one).
    pub attempted: u64,
    /// Commits acknowledged durable (by a sync, a checkpoint or the close).
    pub acked: u64,
    /// Checkpoints published.
    pub checkpoints: u64,
    /// Checkpoints that failed and were retried later.
    pub failed_checkpoints: u64,
    /// The error that stopped the run, if any.
    pub error: Option<highwater::Error>,
}

/// Where a run starts: the state, offsets and watermark after its first
/// transaction's predecessors (empty for a new job).
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub state: TrackedState,
    pub offsets: HashMap<String, u64>,
    pub watermark: Option<i64>,
}

impl Resume {
    /// Resumes from what recovery returned.
    pub fn from_recovered(recovered: &RecoveredState) -> Self {
        let snapshot = recovered.current_state().expect("current_state");
        let mut state = TrackedState::from_snapshot(&snapshot);
        state.mark_checkpointed();
        Resume {
            state,
            offsets: recovered.source_offsets.clone(),
            watermark: recovered.watermark,
        }
    }
}

/// Runs transactions `start..end` of `workload` on top of `from` (where
/// `start` commits left the job), calling `on_ack` with the number of
/// acknowledged commits each time it grows. Stops at the first error.
pub fn run(
    layout: &Layout,
    plan: &Plan,
    workload: &Workload,
    start: u64,
    end: u64,
    from: Resume,
    mut on_ack: impl FnMut(u64),
) -> Progress {
    let mut progress = Progress {
        attempted: start,
        acked: start,
        ..Progress::default()
    };
    let result = run_inner(
        layout,
        plan,
        workload,
        start..end,
        from,
        &mut progress,
        &mut on_ack,
    );
    progress.error = result.err();
    progress
}

fn run_inner(
    layout: &Layout,
    plan: &Plan,
    workload: &Workload,
    range: std::ops::Range<u64>,
    from: Resume,
    progress: &mut Progress,
    on_ack: &mut dyn FnMut(u64),
) -> highwater::Result<()> {
    let Resume {
        mut state,
        mut offsets,
        mut watermark,
    } = from;
    let wal = WriteAheadLog::open(
        &layout.wal,
        WalOptions::default()
            .with_sync_policy(plan.sync_policy)
            .with_segment_size(plan.segment_size)
            .with_storage(layout.storage.clone()),
    )?;
    let checkpoints = IncrementalCheckpointManager::new(
        CheckpointConfig::new(&layout.checkpoints)
            .with_max_retained(plan.max_retained)
            .with_max_delta_chain(plan.max_delta_chain)
            .with_storage(layout.storage.clone()),
    )?;
    let mut ack = |progress: &mut Progress, n: u64| {
        progress.acked = n;
        on_ack(n);
    };
    let mut full_next = true;
    for i in range {
        let (changes, commit) = workload.transaction(i);
        for change in &changes {
            wal.append(change)?;
            match change {
                WalEntry::Put { key, value } => {
                    state.put(key.clone(), value.clone());
                }
                WalEntry::Delete { key } => {
                    state.delete(key);
                }
                _ => unreachable!(),
            }
        }
        progress.attempted = i + 1;
        wal.append(&commit)?;
        if let WalEntry::Commit {
            offsets: o,
            watermark: w,
        } = &commit
        {
            offsets.extend(o.clone());
            watermark = w.or(watermark);
        }
        let done = i + 1;
        if plan.sync_policy == SyncPolicy::EveryWrite {
            ack(progress, done);
        }
        if done.is_multiple_of(plan.sync_every) || done.is_multiple_of(plan.checkpoint_every) {
            wal.sync()?;
            ack(progress, done);
        }
        if done.is_multiple_of(plan.checkpoint_every) {
            let snapshot;
            let delta;
            let part = if full_next {
                snapshot = state.snapshot();
                PartInput::Snapshot(&snapshot)
            } else {
                delta = state.delta();
                PartInput::Delta(&delta)
            };
            let created = checkpoints.create_checkpoint(
                CheckpointRequest::new(wal.position())
                    .with_offsets(offsets.clone())
                    .with_watermark(watermark)
                    .with_part(DEFAULT_PART, part),
            );
            if let Err(e) = created {
                if !plan.retry_failed_checkpoints {
                    return Err(e);
                }
                progress.failed_checkpoints += 1;
                continue;
            }
            state.mark_checkpointed();
            full_next = false;
            progress.checkpoints += 1;
            checkpoints.release_wal(&wal)?;
        }
    }
    wal.close()?;
    ack(progress, progress.attempted);
    Ok(())
}

/// Runs transactions `0..commits` on a fresh simulator without a crash and
/// returns how many storage operations they took (the crash points) and how
/// many checkpoints they published.
pub fn count_operations(plan: &Plan, workload: &Workload, commits: u64) -> (u64, u64) {
    let clean = CrashSimStorage::new();
    let progress = run_new_job(&clean, plan, workload, commits);
    assert!(progress.error.is_none(), "{:?}", progress.error);
    (clean.operations(), progress.checkpoints)
}

/// Runs transactions `0..commits` of a new job at `/job` on `storage`.
pub fn run_new_job(
    storage: &CrashSimStorage,
    plan: &Plan,
    workload: &Workload,
    commits: u64,
) -> Progress {
    run(
        &Layout::sim(storage),
        plan,
        workload,
        0,
        commits,
        Resume::default(),
        |_| {},
    )
}
