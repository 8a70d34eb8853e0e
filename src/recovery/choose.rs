//! Choosing what replay starts from: the newest restorable checkpoint (at or
//! before the target position), its state loaded, or the previous piece of a
//! bounded replay.
//!
//! Invariant: a checkpoint lends its offsets, watermark and position only
//! together with its own state: it is used only when its metadata, every file
//! and its whole chain verify and its state loads. One that fails is rejected
//! (reported with the reason) and the next older one is tried. Every byte is
//! verified and each file read once: the files the load decodes are verified
//! by the decode (the same checks as a full verification), the others first.

use super::config::RecoveryConfig;
use super::recovered::RecoveredState;
use super::report::RecoveryReport;
use crate::checkpoint::{
    is_damage, parse_checkpoint_dir_name, verify_chain, Check, CheckpointStore,
    IncrementalCheckpointMetadata, Memo, PartKind, RejectedCheckpoint,
};
use crate::error::{Error, Result};
use crate::state::StateSnapshot;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where replay starts and what it starts from.
#[derive(Debug, Default)]
pub(crate) struct Base {
    pub checkpoint: Option<IncrementalCheckpointMetadata>,
    pub snapshot: Option<StateSnapshot>,
    pub blob: Option<Vec<u8>>,
    pub epoch: u64,
    pub wal_position: u64,
    /// Where reading resumes (after `wal_position` when a bounded call stopped
    /// inside a transaction).
    pub resume_position: u64,
    /// Entries of that open transaction already read.
    pub open_entries: u64,
    pub offsets: HashMap<String, u64>,
    pub watermark: Option<i64>,
    pub watermarks: HashMap<String, i64>,
}

impl Base {
    /// The start of the next piece of a replay that returned `previous` (its
    /// state was already returned; it is not loaded again).
    pub fn continuing(previous: &RecoveredState) -> Self {
        Base {
            checkpoint: previous.checkpoint.clone(),
            snapshot: None,
            blob: None,
            epoch: previous.epoch,
            wal_position: previous.wal_position,
            resume_position: previous.resume_position.max(previous.wal_position),
            open_entries: if previous.resume_position > previous.wal_position {
                previous.report.open_transaction_entries
            } else {
                0
            },
            offsets: previous.source_offsets.clone(),
            watermark: previous.watermark,
            watermarks: previous.replayed_source_watermarks.clone(),
        }
    }

    fn from_checkpoint(meta: IncrementalCheckpointMetadata) -> Self {
        Base {
            epoch: meta.epoch,
            wal_position: meta.wal_position,
            resume_position: meta.wal_position,
            open_entries: 0,
            offsets: meta.source_offsets.clone(),
            watermark: meta.watermark,
            watermarks: meta.source_watermarks.clone(),
            checkpoint: Some(meta),
            snapshot: None,
            blob: None,
        }
    }
}

/// The newest restorable checkpoint of `cfg.checkpoint_dir` taken at or before
/// `cfg.target_position`, with its state loaded (unless turned off); an empty
/// base (position 0) when there is none. Rejections go to `report`.
///
/// # Errors
/// `Io` when the checkpoint directory cannot be listed, or when a checkpoint
/// newer than the one that would be chosen cannot be read now (a failed read
/// is not damage: an older checkpoint is never restored in its place).
pub(crate) fn choose_checkpoint(cfg: &RecoveryConfig, report: &mut RecoveryReport) -> Result<Base> {
    let store = CheckpointStore::with_storage(cfg.storage.clone(), &cfg.checkpoint_dir)
        .with_sealing(cfg.sealing());
    let mut memo = Memo::new();
    for id in store.checkpoint_ids()?.into_iter().rev() {
        if let Some(target) = cfg.target_position {
            if let Ok(meta) = store.read_metadata(id) {
                if meta.wal_position > target {
                    tracing::debug!(
                        checkpoint = id,
                        wal_position = meta.wal_position,
                        target,
                        "passing over a checkpoint taken after the target position"
                    );
                    report.skipped_after_target.push(id);
                    continue;
                }
            }
        }
        // The chain's metadata, sizes and links first; every byte is verified
        // below, each file once (see `verify_and_load`).
        let (loaded, first_error) = match store.check_chain(id, Check::Light, &mut memo) {
            Ok(meta) => (verify_and_load(cfg, &store, &meta), None),
            // Checked once more with typed errors: a failed read (not
            // damage) leaves whether this checkpoint is restorable unknown,
            // and an older one must not be restored in its place (the log
            // would continue below this one's position).
            Err(error) => (
                verify_chain(&store, id, Check::Full).and_then(|meta| load(cfg, &store, &meta)),
                Some(error),
            ),
        };
        match loaded {
            Ok(base) => return Ok(base),
            Err(e) if !is_damage(&e) => {
                tracing::warn!(checkpoint = id, error = %e, "cannot tell whether a checkpoint is restorable; not falling back to an older one");
                return Err(e);
            }
            Err(e) => {
                let error = first_error.unwrap_or_else(|| std::sync::Arc::new(e));
                let path = store.checkpoint_path(id);
                tracing::warn!(checkpoint = id, path = %path.display(), %error, "recovery skips a checkpoint that is not restorable");
                report
                    .rejected_checkpoints
                    .push(RejectedCheckpoint::new(id, path, error));
            }
        }
    }
    Ok(Base::default())
}

/// Verifies every byte of checkpoint `meta` and its chain, then loads its
/// default part — each file read once. The files the load reads (the default
/// part's delta chain) are verified as they are decoded: their identity
/// against the metadata (size, whole-file CRC32C) and then every block and the
/// archive's invariants, the same checks as a full verification. Every other
/// part file of the chain is verified here first. An error in an older
/// checkpoint of the chain is reported as
/// [`Error::CheckpointParentUnrestorable`], as a full chain check reports it.
fn verify_and_load(
    cfg: &RecoveryConfig,
    store: &CheckpointStore,
    meta: &IncrementalCheckpointMetadata,
) -> Result<Base> {
    let parent_error = |parent: u64, error: Error| {
        if parent == meta.id {
            return error;
        }
        Error::CheckpointParentUnrestorable {
            path: store.checkpoint_path(meta.id),
            id: meta.id,
            parent,
            source: Arc::new(error),
        }
    };
    let mut read_by_load: Vec<PathBuf> = Vec::new();
    if cfg.load_checkpoint_state {
        if let Some(name) = store.default_part(meta.id)? {
            read_by_load = store
                .resolve_part(meta.id, &name)?
                .into_iter()
                .map(|(path, _)| path)
                .collect();
        }
    }
    let mut at = Some(meta.id);
    while let Some(current) = at {
        let checkpoint = store
            .check_one(current, Check::Light)
            .map_err(|e| parent_error(current, e))?;
        let dir = store.checkpoint_path(current);
        for part in &checkpoint.parts {
            if !read_by_load.contains(&dir.join(&part.file)) {
                store
                    .verify_part(&dir, part)
                    .map_err(|e| parent_error(current, e))?;
            }
        }
        at = checkpoint.parent_id;
    }
    load(cfg, store, meta).map_err(|e| {
        // Which checkpoint's file failed to load: its directory's name.
        let owner = e
            .path()
            .and_then(|p| p.parent())
            .and_then(|d| d.file_name())
            .and_then(|n| n.to_str())
            .and_then(parse_checkpoint_dir_name);
        match owner {
            Some(owner) => parent_error(owner, e),
            None => e,
        }
    })
}

/// Loads the default part of a verified checkpoint: `state`, or its only part.
fn load(
    cfg: &RecoveryConfig,
    store: &CheckpointStore,
    meta: &IncrementalCheckpointMetadata,
) -> Result<Base> {
    let mut base = Base::from_checkpoint(meta.clone());
    if !cfg.load_checkpoint_state {
        return Ok(base);
    }
    let Some(name) = store.default_part(meta.id)? else {
        return Ok(base);
    };
    let name = name.as_str();
    let layers = store.resolve_part(meta.id, name)?;
    if layers
        .first()
        .is_some_and(|(_, part)| part.kind == PartKind::Blob)
    {
        base.blob = Some(store.load_blob(meta.id, name)?);
    } else {
        base.snapshot = Some(store.load_snapshot(meta.id, name)?);
    }
    Ok(base)
}
