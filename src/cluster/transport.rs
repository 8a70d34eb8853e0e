//! [`StoreTransport`]: the default way reports reach the coordinator, through
//! the job's store itself (docs/DISTRIBUTED.md, "The protocol", step 4).
//!
//! Invariants:
//! - A report is created once (`reports/<generation>/<epoch>/<worker>`,
//!   create-only): a second, different report for the same worker of the
//!   same run is refused with `Fenced`; the same bytes again (a retry after
//!   a lost answer) are accepted.
//! - `wait` returns only when every worker's report is there and decodes,
//!   and aborts the epoch when the deadline passes first or a report is
//!   damaged (it never heals: reports are never replaced).

use super::layout::{parse_report_key, report_key, reports_prefix};
use super::report::{report_path, WorkerReport, MAX_REPORT_LEN};
use crate::blob::{list_all, BlobStore, CreateOutcome};
use crate::checkpoint::remote::record::corrupted;
use crate::checkpoint::remote::retry::retried;
use crate::error::{Error, Result};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often [`StoreTransport::wait`] lists the reports.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Reports carried through the job's store.
#[derive(Debug, Clone)]
pub struct StoreTransport {
    store: Arc<dyn BlobStore>,
    poll: Duration,
}

impl StoreTransport {
    /// Reports in `store` (the job's).
    pub fn new(store: Arc<dyn BlobStore>) -> Self {
        StoreTransport {
            store,
            poll: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Lists the reports every `poll` while waiting.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Sends `report` to the coordinator.
    ///
    /// # Errors
    /// `Fenced` when another report of this worker, run and epoch is there;
    /// `InvalidArgument` for a report that breaks its invariants; the
    /// store's errors (`Indeterminate`: send again).
    pub fn send(&self, report: &WorkerReport) -> Result<()> {
        let key = report_key(report.generation, report.epoch, report.worker);
        let bytes = Bytes::from(report.to_bytes()?);
        let store = self.store.as_ref();
        match retried("create", key.as_str(), || {
            store.create_if_absent(&key, bytes.clone())
        }) {
            Ok(CreateOutcome::Created) => Ok(()),
            Ok(_) => {
                let found = retried("get", key.as_str(), || store.get(&key))?;
                if found == bytes {
                    Ok(())
                } else {
                    Err(Error::Fenced {
                        key: key.to_string(),
                        slot: report.epoch,
                        generation: report.generation,
                        winner_generation: Some(report.generation),
                        reason: format!(
                            "another process reported as worker {} of run {} for epoch {}",
                            report.worker, report.generation, report.epoch
                        ),
                    })
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The reports of `epoch` in run `generation` that are there now, by
    /// worker.
    ///
    /// # Errors
    /// The store's errors; `CheckpointCorrupted` naming the key of a damaged
    /// report.
    pub fn received(&self, generation: u64, epoch: u64) -> Result<BTreeMap<u32, WorkerReport>> {
        let store = self.store.as_ref();
        let prefix = reports_prefix(generation, epoch);
        let listed = retried("list", prefix.as_str(), || list_all(store, Some(&prefix)))?;
        let mut out = BTreeMap::new();
        for meta in listed {
            let Some(worker) = parse_report_key(generation, epoch, &meta.key) else {
                continue;
            };
            let path = report_path(&meta.key);
            if meta.size > MAX_REPORT_LEN {
                return Err(corrupted(
                    &path,
                    format!(
                        "report is {} bytes; at most {MAX_REPORT_LEN} are read",
                        meta.size
                    ),
                ));
            }
            let bytes = retried("get", meta.key.as_str(), || store.get(&meta.key))?;
            let report = WorkerReport::decode_at(&path, &bytes)?;
            if report.worker != worker || report.generation != generation || report.epoch != epoch {
                return Err(corrupted(
                    &path,
                    format!(
                        "the key names worker {worker}, the report worker {} of epoch {} of run {}",
                        report.worker, report.epoch, report.generation
                    ),
                ));
            }
            out.insert(worker, report);
        }
        Ok(out)
    }

    /// Waits until all `workers` reports of `epoch` in run `generation` are
    /// there, or `timeout` passes.
    ///
    /// # Errors
    /// `EpochAborted` naming the missing workers at the deadline, or the
    /// damaged report's worker; the store's errors.
    pub fn wait(
        &self,
        generation: u64,
        epoch: u64,
        workers: u32,
        timeout: Duration,
    ) -> Result<Vec<WorkerReport>> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received(generation, epoch).map_err(|e| match e {
                Error::CheckpointCorrupted { path, reason, .. } => Error::EpochAborted {
                    epoch,
                    generation,
                    missing: Vec::new(),
                    reason: format!("{}: {reason}", path.display()),
                },
                e => e,
            })?;
            if (0..workers).all(|w| got.contains_key(&w)) {
                return Ok(got.into_values().filter(|r| r.worker < workers).collect());
            }
            if Instant::now() >= deadline {
                let missing = (0..workers).filter(|w| !got.contains_key(w)).collect();
                return Err(Error::EpochAborted {
                    epoch,
                    generation,
                    missing,
                    reason: format!("reports missing after {timeout:?}"),
                });
            }
            std::thread::sleep(self.poll);
        }
    }
}
