//! When and how a writer collects garbage: after a commit, at most once per
//! `RemoteConfig::gc_interval` (each run lists the whole location). The listing and
//! reading are here; what to delete is `gc::plan_gc`'s pure decision, and
//! `gc_run::execute` carries it out.
//!
//! Invariant: a collection is planned only from a complete listing; a
//! record that could not be read now (not damage), or one of a newer format
//! version, stops the collection, so nothing is deleted on a partial view.

use super::config::RemoteConfig;
use super::gc::{plan_gc, GcInput, ListedRecord};
use super::gc_run::{execute, GcReport};
use super::layout::{folder, PARTS};
use super::record::SlotRecord;
use super::retry::retried;
use super::sequence;
use crate::blob::list_all;
use crate::checkpoint::parent::is_damage;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// A writer's collections: when the last one ran, and the records it read
/// (records never change once created, so each is read once).
#[derive(Debug, Default)]
pub(crate) struct GcSchedule {
    last: Option<Instant>,
    known: BTreeMap<u64, Option<SlotRecord>>,
}

impl GcSchedule {
    /// True when a collection is due now, `interval` after the last one
    /// (`Duration::MAX`: never).
    pub(crate) fn due(&self, interval: Duration) -> bool {
        interval != Duration::MAX && self.last.is_none_or(|t| t.elapsed() >= interval)
    }

    /// Lists the location, plans and carries out a collection that keeps
    /// the newest `max_retained` checkpoints and their chains.
    ///
    /// # Errors
    /// A listing or a read that failed (not damage): nothing was deleted.
    pub(crate) fn collect(
        &mut self,
        config: &RemoteConfig,
        max_retained: usize,
    ) -> Result<GcReport> {
        self.last = Some(Instant::now());
        let store = config.store().as_ref();
        let floor_markers = sequence::floor_markers(store)?;
        let floor = floor_markers.last().copied().unwrap_or(0);
        let slots = sequence::list_slots(store)?;
        self.known
            .retain(|slot, _| slots.iter().any(|s| s.slot == *slot));
        let mut records = Vec::with_capacity(slots.len());
        for s in &slots {
            let record = if s.slot < floor {
                None
            } else if let Some(known) = self.known.get(&s.slot) {
                known.clone()
            } else {
                let read = match sequence::read_record(store, s.slot) {
                    Ok(Some(r)) => Some(r),
                    Ok(None) => continue,
                    // A newer writer's record names what this build cannot
                    // tell: collect nothing.
                    Err(e @ Error::UnsupportedVersion { .. }) => return Err(e),
                    Err(e) if is_damage(&e) => None,
                    Err(e) => return Err(e),
                };
                self.known.insert(s.slot, read.clone());
                read
            };
            records.push(ListedRecord {
                slot: s.slot,
                record,
            });
        }
        let parts_folder = folder(PARTS);
        let parts = retried("list", PARTS, || list_all(store, Some(&parts_folder)))?;
        let plan = plan_gc(&GcInput {
            records: &records,
            floor_markers: &floor_markers,
            parts: &parts,
            now: SystemTime::now(),
            grace: config.gc_grace(),
            max_retained,
        });
        Ok(execute(store, &plan, &parts))
    }
}
