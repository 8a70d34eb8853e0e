//! [`RemoteWriter`]: the manager's side of the commit protocol. It claims a
//! generation when the manager opens, fills the cache, and commits each
//! checkpoint the manager publishes locally: parts uploaded under unique
//! keys, then the commit record created in the next slot.
//!
//! Invariants:
//! - A checkpoint is acknowledged only after its record is in its slot (ours
//!   by the create, or by the read-back of an indeterminate create) and the
//!   slot is at or above the floor.
//! - Slots are used one after another from the claim on; a slot is written
//!   with one record only, never with a second checkpoint.
//! - Once fenced, or once creating a record failed in any way (its outcome
//!   may be unknown: a failed floor check comes after the create), the
//!   writer refuses every later commit: a delta over a checkpoint that may
//!   not be committed would be acknowledged and yet unrestorable.

use super::cache::{self, CacheReport};
use super::config::RemoteConfig;
use super::gc_hook::GcSchedule;
use super::gc_run::GcReport;
use super::layout::{self, part_key, parts_prefix};
use super::record;
use super::sequence::{self, Claimed};
use super::transfer::{self, TransferOptions, TransferStats, UploadFile};
use crate::blob::{BlobError, BlobOp};
use crate::checkpoint::metadata::IncrementalCheckpointMetadata;
use crate::checkpoint::CheckpointStore;
use crate::error::{Error, Result};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Why the writer refuses to commit.
#[derive(Debug, Clone)]
enum Stopped {
    Fenced {
        key: String,
        slot: u64,
        winner_generation: Option<u64>,
        reason: String,
    },
    Unknown {
        key: String,
        reason: String,
    },
}

/// The remote half of a manager.
#[derive(Debug)]
pub(crate) struct RemoteWriter {
    config: RemoteConfig,
    generation: u64,
    next_slot: u64,
    stopped: Option<Stopped>,
    gc: GcSchedule,
}

/// What one commit cost.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CommitStats {
    /// The slot it took.
    pub slot: u64,
    /// The part uploads.
    pub upload: TransferStats,
}

impl RemoteWriter {
    /// Claims a generation, then makes `local`'s directory (whose lock the
    /// caller holds) a cache of the newest restorable committed checkpoint.
    ///
    /// # Errors
    /// The store's errors (the claim's outcome included); local I/O errors.
    pub(crate) fn open(
        config: &RemoteConfig,
        local: &CheckpointStore,
    ) -> Result<(Self, CacheReport)> {
        let store = config.store().as_ref();
        // Refused before the claim: a failed open fences nobody.
        cache::claim_as_cache(local)?;
        let Claimed { generation, floor } = sequence::claim(store)?;
        let slots = sequence::list_slots(store)?;
        let started = Instant::now();
        let report = cache::restore_cache(
            store,
            local,
            &slots,
            floor,
            generation,
            &TransferOptions::of(config),
            false,
        )?;
        tracing::info!(
            generation,
            restored = ?report.restored,
            hits = report.hits.len(),
            downloaded = report.downloaded.len(),
            removed = report.removed.len(),
            rejected = report.rejected.len(),
            bytes = report.stats.bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "remote checkpoints restored into the cache"
        );
        let next_slot = generation
            .checked_add(1)
            .ok_or_else(|| Error::invalid_argument("claim", "the commit sequence is full"))?;
        Ok((
            RemoteWriter {
                config: config.clone(),
                generation,
                next_slot,
                stopped: None,
                gc: GcSchedule::default(),
            },
            report,
        ))
    }

    /// This writer's generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Collects the location's garbage when a collection is due (`force`:
    /// now), keeping the newest `max_retained` checkpoints and their chains.
    ///
    /// # Errors
    /// A listing or read that failed: nothing was deleted.
    pub(crate) fn collect(&mut self, max_retained: usize, force: bool) -> Result<Option<GcReport>> {
        if !force && !self.gc.due(self.config.gc_interval()) {
            return Ok(None);
        }
        if let Some(stopped) = &self.stopped {
            return Err(self.refusal(stopped));
        }
        self.gc.collect(&self.config, max_retained).map(Some)
    }

    /// The error for a commit after the writer stopped.
    fn refusal(&self, stopped: &Stopped) -> Error {
        match stopped {
            Stopped::Fenced {
                key,
                slot,
                winner_generation,
                reason,
            } => Error::Fenced {
                key: key.clone(),
                slot: *slot,
                generation: self.generation,
                winner_generation: *winner_generation,
                reason: reason.clone(),
            },
            Stopped::Unknown { key, reason } => Error::Blob(BlobError::Indeterminate {
                operation: BlobOp::Create,
                key: key.clone(),
                reason: format!(
                    "an earlier commit's outcome is unknown ({reason}); open a new manager to find out"
                ),
            }),
        }
    }

    /// Uploads the part files of checkpoint `meta` (published in `dir`, its
    /// `metadata.json` being `metadata_bytes`) and commits it.
    ///
    /// # Errors
    /// [`Error::Fenced`]; `Error::Blob` (an `Indeterminate` one when the
    /// record's outcome is unknown: the writer then stops); local read
    /// errors. Nothing is committed after any error but `Indeterminate`.
    pub(crate) fn commit(
        &mut self,
        local: &CheckpointStore,
        meta: &IncrementalCheckpointMetadata,
        metadata_bytes: &[u8],
    ) -> Result<CommitStats> {
        if let Some(stopped) = &self.stopped {
            return Err(self.refusal(stopped));
        }
        let store = self.config.store().as_ref();
        let dir = local.checkpoint_path(meta.id);
        let prefix = parts_prefix(self.generation, meta.id, layout::nonce());
        let mut keys = BTreeMap::new();
        let mut uploads = Vec::with_capacity(meta.parts.len());
        for part in &meta.parts {
            let key = part_key(&prefix, &part.file)?;
            uploads.push(UploadFile {
                path: Path::new(&dir).join(&part.file),
                size: part.size,
                key: key.clone(),
            });
            keys.insert(part.file.clone(), key);
        }
        let upload = transfer::upload(
            store,
            local.storage(),
            &uploads,
            &TransferOptions::of(&self.config),
        )?;
        let slot = self.next_slot;
        let bytes = Bytes::from(record::encode_checkpoint(
            slot,
            self.generation,
            meta,
            metadata_bytes,
            &keys,
        )?);
        match sequence::commit(store, slot, self.generation, &bytes) {
            Ok(()) => {
                self.next_slot = slot.checked_add(1).ok_or_else(|| {
                    Error::invalid_argument("commit", "the commit sequence is full")
                })?;
                Ok(CommitStats { slot, upload })
            }
            Err(e) => {
                match &e {
                    Error::Fenced {
                        key,
                        slot,
                        winner_generation,
                        reason,
                        ..
                    } => {
                        tracing::error!(
                            generation = self.generation,
                            slot,
                            key,
                            reason,
                            "fenced: another writer took over the checkpoint location"
                        );
                        self.stopped = Some(Stopped::Fenced {
                            key: key.clone(),
                            slot: *slot,
                            winner_generation: *winner_generation,
                            reason: reason.clone(),
                        });
                    }
                    // Whatever else failed, the record may be in its slot
                    // now (a failed floor check comes after the create):
                    // never write another checkpoint into or after it.
                    other => {
                        self.stopped = Some(Stopped::Unknown {
                            key: layout::commit_key(slot).to_string(),
                            reason: other.to_string(),
                        });
                    }
                }
                Err(e)
            }
        }
    }
}
