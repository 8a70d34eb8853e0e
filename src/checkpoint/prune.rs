//! Removing checkpoints: retention after every checkpoint, explicit deletion,
//! and dropping the WAL segments no kept checkpoint needs. Only the manager
//! (the holder of the directory's lock) removes anything.

use super::manager::IncrementalCheckpointManager;
use super::parent::{self, Base};
use super::publish;
use super::retention::{plan_retention, RetentionInput, RetentionPlan};
use super::store::Check;
use crate::error::IoContext;
use crate::error::{Error, Result};
use crate::wal::WriteAheadLog;
use std::collections::{BTreeMap, BTreeSet};

impl IncrementalCheckpointManager {
    /// Plans retention over the directory and deletes what the plan says.
    pub(super) fn apply_retention(&self, verified: &mut BTreeSet<u64>) -> Result<RetentionPlan> {
        let (mut light, mut full) = (BTreeMap::new(), BTreeMap::new());
        let mut restorable = |id: u64| {
            let meta = self.store.check_chain(id, Check::Light, &mut light).ok()?;
            if !verified.contains(&id) {
                // Every checksum of the chain, once per checkpoint per manager.
                self.store.check_chain(id, Check::Full, &mut full).ok()?;
                verified.insert(id);
            }
            Some(meta)
        };
        let inputs: Vec<RetentionInput> = self
            .store
            .checkpoint_ids()?
            .into_iter()
            .map(|id| match restorable(id) {
                Some(m) => RetentionInput {
                    id,
                    parent_id: m.parent_id,
                    restorable: true,
                    wal_position: m.wal_position,
                },
                None => RetentionInput {
                    id,
                    parent_id: None,
                    restorable: false,
                    wal_position: 0,
                },
            })
            .collect();
        let plan = plan_retention(&inputs, self.config.max_retained());
        for id in &plan.delete {
            let path = self.store.checkpoint_path(*id);
            publish::remove_checkpoint_dir(self.config.storage().as_ref(), &path)?;
            self.store.forget(*id);
            tracing::debug!(checkpoint = id, path = %path.display(), "retention removed checkpoint");
        }
        if !plan.delete.is_empty() {
            self.config
                .storage()
                .sync_dir(self.config.dir())
                .ctx("sync directory", self.config.dir())?;
        }
        Ok(plan)
    }

    /// Deletes checkpoint `id` durably. When it is the manager's base, the base
    /// is forgotten (see the parent rule). With a remote location this deletes
    /// the cached copy only: the location keeps it until garbage collection
    /// drops it (docs/OBJECT_STORAGE.md), and the next manager may download it
    /// again.
    ///
    /// # Errors
    /// `CheckpointNotFound` when it does not exist; `CheckpointHasDependents` when
    /// a delta checkpoint builds on it; `Io` when it cannot be removed, or when
    /// a newer checkpoint's metadata cannot be read now (it may build on `id`).
    pub fn delete_checkpoint(&self, id: u64) -> Result<()> {
        let mut inner = self.lock();
        // What the WAL must keep is recomputed at the next release (`release_wal`).
        inner.wal_needed_from = None;
        let ids = self.store.checkpoint_ids()?;
        if !ids.contains(&id) {
            return Err(Error::CheckpointNotFound {
                dir: self.config.dir().to_path_buf(),
                id,
            });
        }
        // A newer checkpoint whose metadata cannot be read now (a failed
        // read, not damage) may be a delta on `id`: refuse rather than guess.
        let mut dependents: Vec<u64> = Vec::new();
        for other in ids.iter().filter(|other| **other > id) {
            match self.store.read_metadata(*other) {
                Ok(m) if m.parent_id == Some(id) => dependents.push(m.id),
                Ok(_) => {}
                Err(e) if parent::is_damage(&e) => {}
                Err(e) => return Err(e),
            }
        }
        if !dependents.is_empty() {
            return Err(Error::CheckpointHasDependents { id, dependents });
        }
        let path = self.store.checkpoint_path(id);
        if inner.base == Base::Checkpoint(id) {
            inner.base = Base::Unknown;
        }
        publish::remove_checkpoint_dir(self.config.storage().as_ref(), &path)?;
        self.store.forget(id);
        self.config
            .storage()
            .sync_dir(self.config.dir())
            .ctx("sync directory", self.config.dir())
    }

    /// Applies retention now (it also runs after every checkpoint) and returns
    /// the plan it carried out. With a remote location it prunes the cache;
    /// the location is collected after commits (docs/OBJECT_STORAGE.md).
    ///
    /// # Errors
    /// `Io` when a checkpoint cannot be removed.
    pub fn enforce_retention(&self) -> Result<RetentionPlan> {
        let mut inner = self.lock();
        let plan = self.apply_retention(&mut inner.verified)?;
        inner.wal_needed_from = plan.wal_needed_from;
        Ok(plan)
    }

    /// Drops the WAL segments no retained checkpoint needs: every segment wholly
    /// below the oldest `wal_position` among the retained checkpoints (the newest
    /// `max_retained` restorable ones and the ancestors their deltas build on).
    /// Returns how many segments were removed (0 when there is no restorable
    /// checkpoint).
    ///
    /// # Errors
    /// The WAL's errors (`Poisoned`, `Io`).
    pub fn release_wal(&self, wal: &WriteAheadLog) -> Result<usize> {
        let known = self.lock().wal_needed_from;
        let needed = match known {
            Some(p) => Some(p),
            None => self.enforce_retention()?.wal_needed_from,
        };
        match needed {
            Some(position) => {
                let removed = wal.drop_segments_before(position)?;
                tracing::debug!(
                    position,
                    removed,
                    "dropped WAL segments below the oldest retained checkpoint"
                );
                Ok(removed)
            }
            None => Ok(0),
        }
    }
}
