//! [`Coordinator`]: claims a run, collects the workers' reports of each
//! epoch and commits them with one create-only epoch record
//! (docs/DISTRIBUTED.md, "The protocol", steps 1, 5 and 7).
//!
//! Invariants:
//! - Epochs are committed in order, one per slot, each the one after the
//!   last committed (or after the base), into the slot after the last one
//!   this coordinator used: an older coordinator's next slot collides with
//!   a newer claim, so its commit is `Fenced`.
//! - After an abort, a fencing, or any error that leaves an epoch's outcome
//!   unknown, the coordinator refuses every later commit: the run restarts.
//! - Nothing is published by the coordinator; the caller publishes
//!   [`GlobalCheckpoint::sink_handles`] after `commit` returns, and the
//!   base's handles again after `start`.

use super::key_group::{KeyGroups, DEFAULT_KEY_GROUPS};
use super::protocol::{check_epoch, check_partitions};
use super::record::{encode_epoch, GlobalCheckpoint, RunPlan};
use super::report::{SourcePosition, WorkerReport};
use super::retention::{collect, ClusterGcReport};
use super::sequence;
use crate::blob::BlobStore;
use crate::checkpoint::remote::record::MAX_RECORD_LEN;
use crate::error::{Error, Result};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a coordinator runs a job.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub(crate) store: Arc<dyn BlobStore>,
    pub(crate) workers: u32,
    pub(crate) key_groups: u32,
}

impl CoordinatorConfig {
    /// A run of `workers` workers on the job's `store`, with the default
    /// [`DEFAULT_KEY_GROUPS`] key groups.
    pub fn new(store: Arc<dyn BlobStore>, workers: u32) -> Self {
        CoordinatorConfig {
            store,
            workers,
            key_groups: DEFAULT_KEY_GROUPS,
        }
    }

    /// The job's key-group count: fixed when the job is first started; a
    /// later run with another count is refused.
    pub fn with_key_groups(mut self, count: u32) -> Self {
        self.key_groups = count;
        self
    }

    /// The job's store.
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }
}

/// The coordinator of one run (module docs).
#[derive(Debug)]
pub struct Coordinator {
    store: Arc<dyn BlobStore>,
    generation: u64,
    plan: RunPlan,
    restored: Option<GlobalCheckpoint>,
    next_slot: u64,
    next_epoch: u64,
    /// The last epoch whose sinks the caller said are committed (the
    /// epoch before the run's first when there is nothing to publish).
    published: u64,
    /// The partitions of the last committed (or restored) epoch: the next
    /// epoch's reports must name them all.
    partitions: BTreeMap<String, SourcePosition>,
    stopped: Option<String>,
}

impl Coordinator {
    /// Starts a run: claims the next generation (fencing every older
    /// coordinator and its workers) and finds the base it restores, the
    /// newest committed epoch.
    ///
    /// # Errors
    /// `InvalidConfig` for a worker or key-group count out of bounds, or a
    /// key-group count other than the job's; `CheckpointCorrupted` naming
    /// the record when the newest epoch record is damaged; the store's
    /// errors (`Indeterminate`: retry `start`).
    ///
    /// # Examples
    /// ```
    /// use highwater::blob::{BlobStore, SimBlobStore};
    /// use highwater::cluster::{Coordinator, CoordinatorConfig};
    /// use std::sync::Arc;
    ///
    /// let store: Arc<dyn BlobStore> = Arc::new(SimBlobStore::new(1));
    /// let coordinator = Coordinator::start(CoordinatorConfig::new(store, 4))?;
    /// assert!(coordinator.restored().is_none()); // a new job
    /// assert_eq!(coordinator.next_epoch(), 1);
    /// // Start 4 workers with `coordinator.generation()`, collect their
    /// // reports, `commit(1, reports)`, then publish the sinks' handles.
    /// # Ok::<(), highwater::Error>(())
    /// ```
    pub fn start(config: CoordinatorConfig) -> Result<Coordinator> {
        let groups = KeyGroups::new(config.key_groups)?;
        groups.range_of(0, config.workers)?;
        let claimed = sequence::claim(config.store.as_ref(), config.workers, groups.count())?;
        Ok(Coordinator {
            store: config.store,
            generation: claimed.generation,
            plan: claimed.plan,
            next_slot: claimed.generation + 1,
            next_epoch: claimed.plan.base_epoch + 1,
            // A new job has nothing to publish; a restored base must be
            // published again first.
            published: if claimed.base.is_some() {
                0
            } else {
                claimed.plan.base_epoch
            },
            partitions: claimed
                .base
                .as_ref()
                .map(|b| b.positions())
                .unwrap_or_default(),
            restored: claimed.base,
            stopped: None,
        })
    }

    /// The run's generation: start the workers with it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The run's plan.
    pub fn plan(&self) -> &RunPlan {
        &self.plan
    }

    /// The committed epoch the run restores (`None`: a new job). Publish
    /// its [`sink_handles`](GlobalCheckpoint::sink_handles) again, then call
    /// [`sinks_committed`](Self::sinks_committed), before the first commit:
    /// the coordinator before may have crashed before it published them.
    pub fn restored(&self) -> Option<&GlobalCheckpoint> {
        self.restored.as_ref()
    }

    /// The epoch [`commit`](Self::commit) expects next.
    pub fn next_epoch(&self) -> u64 {
        self.next_epoch
    }

    /// Why the coordinator stopped, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Commits epoch `epoch` with the workers' `reports` (any order); on
    /// success the epoch is durable and its sinks may be committed.
    ///
    /// # Errors
    /// `InvalidArgument` when `epoch` is not [`next_epoch`](Self::next_epoch),
    /// the previous epoch's sinks are not [committed](Self::sinks_committed)
    /// yet, or the coordinator stopped (nothing changes); `EpochAborted` when a report is missing
    /// or refused, or a partition of the previous epoch is in no report; `Fenced` when a newer run has claimed the location; the
    /// store's errors (`Indeterminate`: the epoch may be committed; the next
    /// run finds out). Every error but `InvalidArgument` stops the coordinator.
    pub fn commit(&mut self, epoch: u64, reports: Vec<WorkerReport>) -> Result<GlobalCheckpoint> {
        if let Some(why) = &self.stopped {
            return Err(Error::invalid_argument(
                "cluster commit",
                format!("the coordinator of run {} stopped: {why}", self.generation),
            ));
        }
        if epoch != self.next_epoch {
            return Err(Error::invalid_argument(
                "cluster commit",
                format!("epoch {epoch} given; the next epoch is {}", self.next_epoch),
            ));
        }
        if self.published != epoch - 1 {
            return Err(Error::invalid_argument(
                "cluster commit",
                format!(
                    "commit epoch {}'s sink handles and call sinks_committed({0}) first: \
                     after a crash only the newest committed epoch is published again",
                    epoch - 1
                ),
            ));
        }
        let result = self.try_commit(epoch, reports);
        if let Err(e) = &result {
            tracing::warn!(generation = self.generation, epoch, error = %e, "cluster epoch not committed; the coordinator stops");
            self.stopped = Some(e.to_string());
        }
        result
    }

    fn try_commit(&mut self, epoch: u64, reports: Vec<WorkerReport>) -> Result<GlobalCheckpoint> {
        if epoch == u64::MAX {
            return Err(Error::invalid_argument(
                "cluster commit",
                "epoch u64::MAX has no next epoch; no reader accepts its record",
            ));
        }
        let reports = check_epoch(&self.plan, self.generation, epoch, reports)?;
        check_partitions(&self.partitions, self.generation, epoch, &reports)?;
        let slot = self.next_slot;
        let bytes = Bytes::from(encode_epoch(
            slot,
            self.generation,
            epoch,
            self.plan.key_groups,
            &reports,
        )?);
        // A record no reader accepts would stop every later start.
        if bytes.len() as u64 > MAX_RECORD_LEN {
            return Err(Error::EpochAborted {
                epoch,
                generation: self.generation,
                missing: Vec::new(),
                reason: format!(
                    "the epoch record would be {} bytes; a reader reads at most {MAX_RECORD_LEN}",
                    bytes.len()
                ),
            });
        }
        sequence::commit(self.store.as_ref(), slot, self.generation, &bytes)?;
        self.next_slot += 1;
        self.next_epoch += 1;
        self.partitions = reports
            .iter()
            .flat_map(|r| r.positions.iter().map(|(k, v)| (k.clone(), *v)))
            .collect();
        tracing::info!(
            generation = self.generation,
            epoch,
            slot,
            workers = reports.len(),
            "cluster epoch committed"
        );
        metrics::counter!("highwater_cluster_epochs_committed_total").increment(1);
        Ok(GlobalCheckpoint {
            slot,
            generation: self.generation,
            epoch,
            key_groups: self.plan.key_groups,
            reports,
        })
    }

    /// Says that the sinks of `epoch` — the last committed one, or the
    /// restored base — are committed ([`GlobalCheckpoint::sink_handles`]
    /// published). [`commit`](Self::commit) of the next epoch waits for it:
    /// after a crash only the newest committed epoch is published again, so
    /// an epoch must be published before the next one commits.
    ///
    /// # Errors
    /// `InvalidArgument` when `epoch` is not the last committed (or
    /// restored) epoch.
    pub fn sinks_committed(&mut self, epoch: u64) -> Result<()> {
        let last = self.next_epoch - 1;
        if epoch != last || (last == self.plan.base_epoch && self.restored.is_none()) {
            return Err(Error::invalid_argument(
                "sinks committed",
                format!("epoch {epoch} is not the last committed epoch ({last})"),
            ));
        }
        self.published = epoch;
        Ok(())
    }

    /// The job's store.
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    /// Collects garbage: keeps the newest `retained` epochs (at least 1) and
    /// every part their chains name, raises the floor to the oldest kept
    /// record (never above the claim or base of a run still joining),
    /// deletes the records below it, and deletes parts and reports no kept record needs that are
    /// older than `grace` (never a part this run may still commit).
    /// docs/DISTRIBUTED.md, "Retention".
    ///
    /// # Errors
    /// The store's errors; `CheckpointCorrupted` for a damaged record
    /// (nothing is deleted).
    pub fn collect_garbage(
        &self,
        retained: usize,
        grace: std::time::Duration,
    ) -> Result<ClusterGcReport> {
        collect(
            self.store.as_ref(),
            self.generation,
            self.next_epoch - 1,
            grace,
            retained,
        )
    }
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
