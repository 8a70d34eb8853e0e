//! [`ClusterWorker`]: one worker of a cluster run. It joins a run claimed by
//! a coordinator, restores its key groups' state from the run's base, and
//! at each barrier uploads its part and makes its [`WorkerReport`]
//! (docs/DISTRIBUTED.md, "The protocol", steps 2 and 3).
//!
//! Invariants:
//! - The first checkpoint after `join` is a full part; later ones are deltas
//!   on the worker's previous part until the chain reaches the configured
//!   length, then a full part starts a new chain.
//! - A report names a chain whose every part is uploaded (a successful put)
//!   before the report exists; the state is marked checkpointed only then.
//! - Epochs strictly increase, starting after the run's base epoch.
//! - A worker of a run that a newer claim closed gets `Fenced` at its next
//!   checkpoint and never reports again.

use super::key_group::{KeyGroupRange, KeyGroups};
use super::layout::part_key;
use super::record::{GlobalCheckpoint, RunPlan};
use super::report::{PartKind, PartRef, SinkHandle, SourcePosition, WorkerReport, MAX_CHAIN};
use super::restore::{restore_range, RestoreCounts};
use super::{part, sequence};
use crate::blob::BlobStore;
use crate::checkpoint::remote::retry::retried;
use crate::error::{Error, Result};
use crate::source::SourcePositions;
use crate::state::{StateSnapshot, TrackedState};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The chain length at which a worker writes a full part again.
pub const DEFAULT_MAX_CHAIN: usize = 8;

/// How a worker joins a run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    store: Arc<dyn BlobStore>,
    generation: u64,
    worker: u32,
    max_chain: usize,
}

impl WorkerConfig {
    /// Worker `worker` of the run its coordinator claimed as `generation`
    /// (`Coordinator::generation`), on the job's `store`.
    pub fn new(store: Arc<dyn BlobStore>, generation: u64, worker: u32) -> Self {
        WorkerConfig {
            store,
            generation,
            worker,
            max_chain: DEFAULT_MAX_CHAIN,
        }
    }

    /// Writes a full part once the chain holds `parts` parts (1: every part
    /// is full; at most 64).
    pub fn with_max_chain(mut self, parts: usize) -> Self {
        self.max_chain = parts;
        self
    }
}

/// What a worker restored when it joined.
#[derive(Debug)]
pub struct RestoredWorker {
    /// The epoch restored (0: a new job, nothing restored).
    pub epoch: u64,
    /// The state of the worker's key groups at that epoch.
    pub state: TrackedState,
    /// Every partition's position at that epoch, of every old worker: keep
    /// the partitions this worker reads ([`source_positions`](Self::source_positions)).
    pub positions: BTreeMap<String, SourcePosition>,
    /// What reading the state cost.
    pub counts: RestoreCounts,
}

impl RestoredWorker {
    /// The restored positions of the partitions `mine` accepts, ready to
    /// resume from.
    pub fn source_positions(&self, mut mine: impl FnMut(&str) -> bool) -> SourcePositions {
        let mut out = SourcePositions::new();
        for (p, pos) in self.positions.iter().filter(|(p, _)| mine(p)) {
            out.add_partition(p.clone());
            if let Some(o) = pos.offset {
                out.seek_offset(p.clone(), o);
            }
            if let Some(w) = pos.watermark {
                out.advance_watermark(p.clone(), w);
            }
        }
        out
    }
}

/// One worker of a cluster run (module docs).
#[derive(Debug)]
pub struct ClusterWorker {
    store: Arc<dyn BlobStore>,
    generation: u64,
    worker: u32,
    plan: RunPlan,
    groups: KeyGroups,
    range: KeyGroupRange,
    max_chain: usize,
    chain: Vec<PartRef>,
    last_epoch: u64,
}

impl ClusterWorker {
    /// Joins run `config.generation` as worker `config.worker`: reads the
    /// run's claim and base, and restores the worker's key groups.
    ///
    /// # Errors
    /// `InvalidArgument` when the slot holds no claim; `InvalidConfig` when
    /// the index is not below the run's worker count or the chain length is
    /// out of bounds; `Fenced` when a newer run has started; the restore's
    /// errors (the store's, and damage naming the object).
    ///
    /// # Examples
    /// ```
    /// use highwater::blob::{BlobStore, SimBlobStore};
    /// use highwater::cluster::{ClusterWorker, Coordinator, CoordinatorConfig, WorkerConfig};
    /// use highwater::SourcePositions;
    /// use std::sync::Arc;
    ///
    /// let store: Arc<dyn BlobStore> = Arc::new(SimBlobStore::new(1));
    /// let mut coordinator = Coordinator::start(CoordinatorConfig::new(store.clone(), 2))?;
    /// let mut reports = Vec::new();
    /// for i in 0..2 {
    ///     let config = WorkerConfig::new(store.clone(), coordinator.generation(), i);
    ///     let (mut worker, mut restored) = ClusterWorker::join(config)?;
    ///     let mut sources = SourcePositions::new();
    ///     sources.set_offset(format!("input-{i}"), 10)?;
    ///     for n in 0..100u32 {
    ///         let key = format!("key-{n}").into_bytes();
    ///         if worker.owns(&key) {
    ///             restored.state.put(key, b"1".to_vec());
    ///         }
    ///     }
    ///     reports.push(worker.checkpoint(1, &mut restored.state, &sources, vec![])?);
    /// }
    /// let committed = coordinator.commit(1, reports)?;
    /// assert_eq!(committed.positions().len(), 2);
    /// # Ok::<(), highwater::Error>(())
    /// ```
    pub fn join(config: WorkerConfig) -> Result<(ClusterWorker, RestoredWorker)> {
        if config.max_chain == 0 || config.max_chain > MAX_CHAIN {
            return Err(Error::InvalidConfig {
                setting: "max_chain",
                reason: format!("{} parts; a chain holds 1 to {MAX_CHAIN}", config.max_chain),
            });
        }
        let store = config.store;
        // A worker of a run that a newer one replaced may find its claim or
        // base collected: that is `Fenced`, not a missing claim or damage.
        let (plan, base) = match sequence::run(store.as_ref(), config.generation) {
            Ok(run) => run,
            Err(e) => {
                sequence::check_current(store.as_ref(), config.generation)?;
                return Err(e);
            }
        };
        sequence::check_current(store.as_ref(), config.generation)?;
        let groups = KeyGroups::new(plan.key_groups)?;
        let range = groups.range_of(config.worker, plan.workers)?;
        let restored = restore(store.as_ref(), base.as_ref(), range)?;
        tracing::info!(
            generation = config.generation,
            worker = config.worker,
            workers = plan.workers,
            groups = %range,
            epoch = restored.epoch,
            keys = restored.state.len(),
            bytes = restored.counts.bytes,
            "worker joined"
        );
        Ok((
            ClusterWorker {
                store,
                generation: config.generation,
                worker: config.worker,
                plan,
                groups,
                range,
                max_chain: config.max_chain,
                chain: Vec::new(),
                last_epoch: plan.base_epoch,
            },
            restored,
        ))
    }

    /// The run's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// This worker's index.
    pub fn worker(&self) -> u32 {
        self.worker
    }

    /// The run's plan (worker count, key groups, base).
    pub fn plan(&self) -> &RunPlan {
        &self.plan
    }

    /// The key groups this worker owns.
    pub fn key_groups(&self) -> KeyGroupRange {
        self.range
    }

    /// The job's key-group count.
    pub fn groups(&self) -> KeyGroups {
        self.groups
    }

    /// Whether `key`'s group is this worker's.
    pub fn owns(&self, key: &[u8]) -> bool {
        self.range.contains(self.groups.of(key))
    }

    /// The last epoch checkpointed (the base's epoch before the first).
    pub fn last_epoch(&self) -> u64 {
        self.last_epoch
    }

    /// `Fenced` when a newer run has started (call it at each barrier;
    /// [`checkpoint`](Self::checkpoint) does).
    ///
    /// # Errors
    /// `Fenced`; the store's errors.
    pub fn check_generation(&self) -> Result<()> {
        sequence::check_current(self.store.as_ref(), self.generation)
    }

    /// Checkpoints epoch `epoch`: uploads a part of `state` (full or delta,
    /// module docs), marks `state` checkpointed, and returns the report to
    /// send to the coordinator. `sources` are the worker's partitions at the
    /// barrier; `sinks` its sinks' pre-commit handles for the epoch.
    ///
    /// # Errors
    /// `InvalidArgument` when `epoch` is not above the last one, or a key of
    /// `state` is not in this worker's groups (nothing is uploaded);
    /// `Fenced` when a newer run has started; the store's errors (the state
    /// stays unmarked: a later checkpoint carries its changes).
    pub fn checkpoint(
        &mut self,
        epoch: u64,
        state: &mut TrackedState,
        sources: &SourcePositions,
        sinks: Vec<SinkHandle>,
    ) -> Result<WorkerReport> {
        if epoch <= self.last_epoch {
            return Err(Error::invalid_argument(
                "cluster checkpoint",
                format!("epoch {epoch} is not after epoch {}", self.last_epoch),
            ));
        }
        self.check_generation()?;
        let full = self.chain.is_empty() || self.chain.len() >= self.max_chain;
        let built = if full {
            part::full(self.groups, self.range, state)?
        } else {
            part::delta(self.groups, self.range, state)?
        };
        let key = part_key(self.generation, epoch, self.worker);
        let part = PartRef {
            key: key.to_string(),
            size: built.bytes.len() as u64,
            crc32c: crc32c::crc32c(&built.bytes),
            kind: if full {
                PartKind::Full
            } else {
                PartKind::Delta
            },
            epoch,
            puts: built.puts,
            deletes: built.deletes,
        };
        let bytes = Bytes::from(built.bytes);
        let store = self.store.as_ref();
        let mut attempts = 0;
        loop {
            // An indeterminate put is repeated: same key, same bytes.
            match retried("put", key.as_str(), || store.put(&key, bytes.clone())) {
                Ok(()) => break,
                Err(e) if e.is_indeterminate() && attempts < 3 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
        let mut chain = if full { Vec::new() } else { self.chain.clone() };
        chain.push(part);
        let report = WorkerReport {
            generation: self.generation,
            epoch,
            worker: self.worker,
            workers: self.plan.workers,
            key_groups: self.range,
            chain,
            positions: positions_of(sources),
            sinks,
        };
        report.check(std::path::Path::new("worker report"))?;
        state.mark_checkpointed();
        self.chain = report.chain.clone();
        self.last_epoch = epoch;
        metrics::counter!("highwater_cluster_parts_total", "kind" => if full { "full" } else { "delta" })
            .increment(1);
        Ok(report)
    }
}

/// `sources` as report positions.
fn positions_of(sources: &SourcePositions) -> BTreeMap<String, SourcePosition> {
    sources
        .partitions()
        .map(|p| {
            (
                p.to_string(),
                SourcePosition {
                    offset: sources.offset(p),
                    watermark: sources.watermark(p),
                },
            )
        })
        .collect()
}

/// The restore of `range` from `base` (nothing for a new job).
fn restore(
    store: &dyn BlobStore,
    base: Option<&GlobalCheckpoint>,
    range: KeyGroupRange,
) -> Result<RestoredWorker> {
    let Some(base) = base else {
        return Ok(RestoredWorker {
            epoch: 0,
            state: TrackedState::new(),
            positions: BTreeMap::new(),
            counts: RestoreCounts::default(),
        });
    };
    let (pairs, counts) = restore_range(store, base, range)?;
    let snapshot = StateSnapshot::new(pairs.into_iter().collect());
    Ok(RestoredWorker {
        epoch: base.epoch,
        state: TrackedState::from_snapshot(&snapshot),
        positions: base.positions(),
        counts,
    })
}
