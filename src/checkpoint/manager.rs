//! [`IncrementalCheckpointManager`]: writes full and delta checkpoints atomically,
//! finds the latest restorable one, enforces retention and releases WAL segments.
//!
//! Invariants:
//! - A new checkpoint id is greater than every id present in the directory, valid
//!   or not, and than every id this manager issued.
//! - A delta's parent is restorable when the delta is written, and retention
//!   never deletes a checkpoint a kept delta depends on (see `retention`).
//! - Old checkpoints are deleted only after the new one is durable; WAL segments
//!   are dropped only below the oldest checkpoint retention keeps for recovery.

use super::config::CheckpointConfig;
use super::metadata::{
    self, check_handle, check_part_name, CheckpointKind, IncrementalCheckpointMetadata, PartKind,
    PartMetadata,
};
use super::parts::{plan, ArrowSource, PartSource, PlannedPart};
use super::publish;
use super::request::{CheckpointRequest, PartInput};
use super::retention::{plan_retention, RetentionInput, RetentionPlan};
use super::store::{Check, CheckpointStore, LatestCheckpoint, DEFAULT_PART};
use super::view::CheckpointStateView;
use crate::arrow::{check_schema, Layer};
use crate::error::{Error, Result};
use crate::state::{
    expect_kind, header_summary, is_state_file, memory_path, StateKind, StateSnapshot,
};
use crate::storage::create_dir_all_durable;
use crate::wal::WriteAheadLog;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Bases smaller than this are treated as this large by the size-ratio rule: a
/// tiny state would otherwise turn every delta into a full checkpoint, and for
/// such states either costs the same.
pub const RATIO_FLOOR_BYTES: u64 = 1 << 20;

/// Whether a delta of `delta_bytes` on `parent` stays within the chain limits
/// (a pure decision; otherwise a full checkpoint is written).
pub(crate) fn keep_delta(
    parent: &IncrementalCheckpointMetadata,
    delta_bytes: u64,
    config: &CheckpointConfig,
) -> bool {
    let chain = parent.chain_length as u64 + 1;
    let chain_bytes = parent.chain_delta_bytes.saturating_add(delta_bytes);
    let base = parent.base_bytes.max(RATIO_FLOOR_BYTES);
    chain <= config.max_delta_chain() as u64
        && (chain_bytes as f64) <= config.max_delta_ratio() * base as f64
}

/// Mutable state of the manager, behind one lock so every method takes `&self`.
#[derive(Debug)]
struct Inner {
    epoch: u64,
    last_id: u64,
    wal_needed_from: Option<u64>,
    /// The checkpoint this manager published last (the parent of its next delta,
    /// while it is still the newest one present and passes a light check).
    last_published: Option<IncrementalCheckpointMetadata>,
    /// Checkpoints whose every checksum (and their chain's) verified in this
    /// process, or that it wrote: retention does not read them again.
    verified: BTreeSet<u64>,
}

/// Writes and reads the checkpoints of one directory. One manager (one process)
/// should write a directory at a time; readers ([`CheckpointStore`],
/// recovery) may run alongside.
///
/// ```
/// use highwater::{CheckpointConfig, IncrementalCheckpointManager, StateDelta, StateSnapshot};
/// use std::collections::{BTreeMap, BTreeSet, HashMap};
/// # fn main() -> highwater::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()))?;
/// manager.set_epoch(1);
/// let state = StateSnapshot::new(vec![(b"k".to_vec(), b"v1".to_vec())]);
/// let full = manager.create_checkpoint_with_state(
///     100, HashMap::from([("src-0".into(), 10)]), Some(5), &state.to_bytes()?)?;
///
/// let delta = StateDelta::from_changes(vec![(b"k".to_vec(), Some(b"v2".to_vec()))]);
/// let next = manager.create_delta_checkpoint_with_state(
///     200, HashMap::from([("src-0".into(), 20)]), Some(9), &delta.to_bytes()?)?;
/// assert_eq!(next.parent_id, Some(full.id));
///
/// let latest = manager.find_latest_checkpoint()?.unwrap();
/// let restored = StateSnapshot::from_bytes(&manager.load_checkpoint_state(latest.id)?)?;
/// assert_eq!(restored.get(b"k"), Some(&b"v2"[..]));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct IncrementalCheckpointManager {
    config: CheckpointConfig,
    store: CheckpointStore,
    inner: Mutex<Inner>,
}

impl IncrementalCheckpointManager {
    /// Opens (creating if missing) the checkpoint directory, removes leftovers of
    /// interrupted checkpoints, and takes the epoch of the newest checkpoint whose
    /// metadata reads.
    ///
    /// # Errors
    /// `Io` when the directory cannot be created, listed or cleaned.
    pub fn new(config: CheckpointConfig) -> Result<Self> {
        let storage = config.storage().clone();
        create_dir_all_durable(storage.as_ref(), config.dir())?;
        let store = CheckpointStore::with_storage(storage.clone(), config.dir());
        let (ids, leftovers) = store.scan()?;
        for name in &leftovers {
            let path = config.dir().join(name);
            tracing::info!(path = %path.display(), "removing leftover of an interrupted checkpoint");
            storage
                .remove_dir_all(&path)
                .map_err(|e| Error::io("remove", &path, e))?;
        }
        if !leftovers.is_empty() {
            storage
                .sync_dir(config.dir())
                .map_err(|e| Error::io("sync directory", config.dir(), e))?;
        }
        let epoch = ids
            .iter()
            .rev()
            .find_map(|id| store.read_metadata(*id).ok())
            .map_or(0, |m| m.epoch);
        Ok(IncrementalCheckpointManager {
            inner: Mutex::new(Inner {
                epoch,
                last_id: ids.last().copied().unwrap_or(0),
                wal_needed_from: None,
                last_published: None,
                verified: BTreeSet::new(),
            }),
            config,
            store,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration.
    pub fn config(&self) -> &CheckpointConfig {
        &self.config
    }

    /// Read access to the directory (verification, views, loading).
    pub fn store(&self) -> &CheckpointStore {
        &self.store
    }

    /// Sets the epoch recorded in the next checkpoints.
    pub fn set_epoch(&self, epoch: u64) {
        self.lock().epoch = epoch;
    }

    /// The epoch the next checkpoint records.
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Writes a full checkpoint whose one part, `state`, holds `state`: the bytes
    /// of a [`StateSnapshot`] (from `to_bytes`, verified first) or any other
    /// bytes, stored as an opaque blob.
    ///
    /// # Errors
    /// `Io` for a failed write, fsync or rename (nothing is published);
    /// `StateCorrupted`/`StateChecksumMismatch` when `state` starts like a state
    /// file but does not verify.
    pub fn create_checkpoint_with_state(
        &self,
        wal_position: u64,
        offsets: HashMap<String, u64>,
        watermark: Option<i64>,
        state: &[u8],
    ) -> Result<IncrementalCheckpointMetadata> {
        let part = if is_state_file(state) {
            PartInput::StateFile(state)
        } else {
            PartInput::Blob(state)
        };
        self.create_single_part(wal_position, offsets, watermark, part)
    }

    /// Writes a delta checkpoint over the latest restorable checkpoint: `delta` is
    /// the bytes of a [`StateDelta`](crate::StateDelta) (changes to the `state` part since then),
    /// verified once and written as it is. Becomes a full checkpoint when there is
    /// no parent or the chain limits are reached.
    ///
    /// # Errors
    /// As [`create_checkpoint_with_state`](Self::create_checkpoint_with_state);
    /// `WrongStateKind` when `delta` is not a delta file.
    pub fn create_delta_checkpoint_with_state(
        &self,
        wal_position: u64,
        offsets: HashMap<String, u64>,
        watermark: Option<i64>,
        delta: &[u8],
    ) -> Result<IncrementalCheckpointMetadata> {
        let (kind, _, _) = header_summary(memory_path(), delta)?;
        expect_kind(memory_path(), kind, StateKind::Delta)?;
        self.create_single_part(
            wal_position,
            offsets,
            watermark,
            PartInput::StateFile(delta),
        )
    }

    /// A checkpoint of the default part alone.
    fn create_single_part(
        &self,
        wal_position: u64,
        offsets: HashMap<String, u64>,
        watermark: Option<i64>,
        part: PartInput<'_>,
    ) -> Result<IncrementalCheckpointMetadata> {
        self.create_checkpoint(
            CheckpointRequest::new(wal_position)
                .with_offsets(offsets)
                .with_watermark(watermark)
                .with_part(DEFAULT_PART, part),
        )
    }

    /// Writes a checkpoint holding everything in `request` (see
    /// [`CheckpointRequest`] for how full and delta checkpoints are chosen), then
    /// enforces retention. Returns once the checkpoint is durable.
    ///
    /// # Errors
    /// `UnsafeName` for a part name that cannot be a file name; `Io` for a failed
    /// write, fsync or rename (nothing is published); corruption errors for a
    /// given state file that does not verify, or a parent that cannot be read
    /// when a delta must be merged into a full checkpoint.
    pub fn create_checkpoint(
        &self,
        request: CheckpointRequest<'_>,
    ) -> Result<IncrementalCheckpointMetadata> {
        let started = Instant::now();
        let mut inner = self.lock();
        for (name, _) in &request.parts {
            check_part_name(self.config.dir(), name)?;
        }
        for t in &request.sink_transactions {
            check_handle(&t.handle).map_err(|reason| {
                Error::InvalidArgument(format!("sink {:?} epoch {}: {reason}", t.sink, t.epoch))
            })?;
        }
        let (ids, _) = self.store.scan()?;
        let id = ids.last().copied().unwrap_or(0).max(inner.last_id) + 1;

        let planned = request
            .parts
            .iter()
            .map(|(name, input)| plan(self.config.dir(), name, *input))
            .collect::<Result<Vec<_>>>()?;
        let wants_delta = planned.iter().any(|p| p.kind().is_delta());
        let parent = if wants_delta {
            self.delta_parent(&inner, &ids)?
        } else {
            None
        };
        let delta_bytes = planned.iter().map(PlannedPart::estimated_size).sum();
        let (kind, parts) = match &parent {
            Some(p) if keep_delta(p, delta_bytes, &self.config) => (
                CheckpointKind::Delta,
                self.rebase_orphan_deltas(planned, p)?,
            ),
            _ => (
                CheckpointKind::Full,
                self.full_parts(planned, parent.as_ref())?,
            ),
        };
        let storage = self.config.storage().as_ref();
        let (_, meta) = publish::publish(storage, self.config.dir(), id, |tmp| {
            let written = parts
                .iter()
                .map(|p| p.write(storage, tmp))
                .collect::<Result<Vec<_>>>()?;
            let meta = self.metadata(id, inner.epoch, kind, parent.as_ref(), &request, written);
            Ok((metadata::encode(&meta)?, meta))
        })?;
        inner.last_id = id;
        inner.last_published = Some(meta.clone());
        tracing::info!(
            checkpoint = id,
            epoch = meta.epoch,
            kind = ?meta.kind,
            parent = ?meta.parent_id,
            wal_position = meta.wal_position,
            bytes = meta.parts_bytes(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "checkpoint published"
        );
        inner.verified.insert(id);
        match self.apply_retention(&mut inner.verified) {
            Ok(plan) => inner.wal_needed_from = plan.wal_needed_from,
            Err(e) => {
                tracing::warn!(checkpoint = id, error = %e, "retention failed; will retry after the next checkpoint")
            }
        }
        Ok(meta)
    }

    /// The parent of a new delta: the checkpoint this manager published last if
    /// it is still the newest present and passes a light check (it verified when
    /// it was written), else the latest restorable one after full verification.
    fn delta_parent(
        &self,
        inner: &Inner,
        ids: &[u64],
    ) -> Result<Option<IncrementalCheckpointMetadata>> {
        if let Some(last) = &inner.last_published {
            if ids.last() == Some(&last.id)
                && self
                    .store
                    .check_chain(last.id, Check::Light, &mut BTreeMap::new())
                    .is_ok()
            {
                return Ok(Some(last.clone()));
            }
        }
        Ok(self.store.find_latest()?.metadata)
    }

    /// In a delta checkpoint, a delta part whose name has no snapshot in the
    /// parent chain (a new part, or one stored as a blob) is written as the
    /// snapshot it yields over an empty state, so every delta part resolves.
    fn rebase_orphan_deltas<'a>(
        &self,
        planned: Vec<PlannedPart<'a>>,
        parent: &IncrementalCheckpointMetadata,
    ) -> Result<Vec<PlannedPart<'a>>> {
        planned
            .into_iter()
            .map(|part| {
                if part.arrow_delta().is_some() {
                    return self.rebase_orphan_arrow_delta(part, parent);
                }
                let Some(delta) = part.delta()? else {
                    return Ok(part);
                };
                let has_base = match self.store.resolve_part(parent.id, &part.name) {
                    Ok(layers) => layers
                        .last()
                        .is_some_and(|(_, base)| base.kind == PartKind::Snapshot),
                    Err(Error::InvalidArgument(_)) => false,
                    Err(e) => return Err(e),
                };
                if has_base {
                    return Ok(part);
                }
                let snapshot = StateSnapshot::default().apply(&delta);
                Ok(PlannedPart {
                    name: part.name.clone(),
                    source: PartSource::Snapshot(Cow::Owned(snapshot)),
                })
            })
            .collect()
    }

    /// An Arrow delta whose part has no Arrow part in the parent chain is
    /// written as the whole part; one that has must share its schema.
    fn rebase_orphan_arrow_delta<'a>(
        &self,
        part: PlannedPart<'a>,
        parent: &IncrementalCheckpointMetadata,
    ) -> Result<PlannedPart<'a>> {
        let PartSource::Arrow(arrow) = part.source else {
            return Ok(part);
        };
        let source = match self.store.arrow_schema(parent.id, &part.name)? {
            Some((path, schema)) => {
                check_schema(&path, &schema, &arrow.schema)?;
                arrow
            }
            None => ArrowSource {
                layer: Layer::Full,
                ..arrow
            },
        };
        Ok(PlannedPart {
            name: part.name,
            source: PartSource::Arrow(source),
        })
    }

    /// The whole Arrow part `name` of checkpoint `id` as a source for a full
    /// checkpoint (every checksum verified, arrays mapped, not copied).
    fn arrow_base(&self, id: u64, name: &str) -> Result<ArrowSource<'static>> {
        let part = self.store.open_arrow_part(id, name)?;
        let schema = part.schema().as_ref().clone();
        Ok(ArrowSource::full(schema, part.into_batches()))
    }

    /// The parts of a full checkpoint: requested deltas merged into the parent's
    /// state (or an empty one), other requested parts as they are, and (when the
    /// request builds on a parent) the parent's unmentioned parts carried over.
    fn full_parts<'a>(
        &self,
        planned: Vec<PlannedPart<'a>>,
        parent: Option<&IncrementalCheckpointMetadata>,
    ) -> Result<Vec<PlannedPart<'a>>> {
        let parent_parts = match parent {
            Some(p) => self.store.part_names(p.id)?,
            None => Vec::new(),
        };
        let mut parts = Vec::with_capacity(planned.len() + parent_parts.len());
        for part in &planned {
            if let Some(appended) = part.arrow_delta() {
                let existing = match parent {
                    Some(p) => self
                        .store
                        .arrow_schema(p.id, &part.name)?
                        .map(|s| (p.id, s)),
                    None => None,
                };
                let mut whole = match existing {
                    Some((id, (path, schema))) => {
                        check_schema(&path, &schema, &appended.schema)?;
                        self.arrow_base(id, &part.name)?
                    }
                    None => ArrowSource::full(appended.schema.as_ref().clone(), Vec::new()),
                };
                whole
                    .batches
                    .to_mut()
                    .extend(appended.batches.iter().cloned());
                parts.push(PlannedPart {
                    name: part.name.clone(),
                    source: PartSource::Arrow(whole),
                });
            }
            if let Some(delta) = part.delta()? {
                let base = match parent {
                    Some(p) if parent_parts.contains(&part.name) => {
                        self.store.load_snapshot(p.id, &part.name)?
                    }
                    _ => StateSnapshot::default(),
                };
                parts.push(PlannedPart {
                    name: part.name.clone(),
                    source: PartSource::Snapshot(Cow::Owned(base.apply(&delta))),
                });
            }
        }
        let merged: Vec<String> = parts.iter().map(|p| p.name.clone()).collect();
        parts.extend(planned.into_iter().filter(|p| !merged.contains(&p.name)));
        if let Some(p) = parent {
            for name in parent_parts {
                if parts.iter().any(|part| part.name == name) {
                    continue;
                }
                let layers = self.store.resolve_part(p.id, &name)?;
                let source = match layers.as_slice() {
                    [(_, only)] if only.kind == PartKind::Blob => {
                        PartSource::Blob(Cow::Owned(self.store.load_blob(p.id, &name)?))
                    }
                    [.., (_, base)] if base.kind == PartKind::Arrow => {
                        PartSource::Arrow(self.arrow_base(p.id, &name)?)
                    }
                    _ => PartSource::Snapshot(Cow::Owned(self.store.load_snapshot(p.id, &name)?)),
                };
                parts.push(PlannedPart { name, source });
            }
        }
        Ok(parts)
    }

    /// The metadata of a checkpoint about to be published.
    fn metadata(
        &self,
        id: u64,
        epoch: u64,
        kind: CheckpointKind,
        parent: Option<&IncrementalCheckpointMetadata>,
        request: &CheckpointRequest<'_>,
        parts: Vec<PartMetadata>,
    ) -> IncrementalCheckpointMetadata {
        let bytes: u64 = parts.iter().map(|p| p.size).sum();
        let (parent_id, base_id, chain_length, chain_delta_bytes, base_bytes) = match (kind, parent)
        {
            (CheckpointKind::Delta, Some(p)) => (
                Some(p.id),
                p.base_id,
                p.chain_length + 1,
                p.chain_delta_bytes.saturating_add(bytes),
                p.base_bytes,
            ),
            _ => (None, id, 0, 0, bytes),
        };
        IncrementalCheckpointMetadata {
            id,
            epoch,
            kind,
            parent_id,
            base_id,
            chain_length,
            chain_delta_bytes,
            base_bytes,
            wal_position: request.wal_position,
            source_offsets: request.source_offsets.clone(),
            watermark: request.watermark,
            source_watermarks: request.source_watermarks.clone(),
            created_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            parts,
            sink_transactions: request.sink_transactions.clone(),
        }
    }

    /// Plans retention over the directory and deletes what the plan says.
    fn apply_retention(&self, verified: &mut BTreeSet<u64>) -> Result<RetentionPlan> {
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
                .map_err(|e| Error::io("sync directory", self.config.dir(), e))?;
        }
        Ok(plan)
    }

    /// The newest checkpoint whose metadata and files (and whole delta chain)
    /// verify. Newer damaged checkpoints are skipped with a warning; see
    /// [`latest_checkpoint`](Self::latest_checkpoint) for the list.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed.
    pub fn find_latest_checkpoint(&self) -> Result<Option<IncrementalCheckpointMetadata>> {
        Ok(self.store.find_latest()?.metadata)
    }

    /// The newest restorable checkpoint and every newer one that was rejected,
    /// with the reason.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed.
    pub fn latest_checkpoint(&self) -> Result<LatestCheckpoint> {
        self.store.find_latest()
    }

    /// The full state of checkpoint `id`'s default part (`state`), delta chain
    /// merged: the bytes of a [`StateSnapshot`] for key/value state, or the bytes
    /// given to `create_checkpoint_with_state` for opaque state.
    ///
    /// # Errors
    /// `CheckpointNotFound` when `id` is missing or not restorable; corruption
    /// errors for damage found while reading.
    pub fn load_checkpoint_state(&self, id: u64) -> Result<Vec<u8>> {
        self.store.load_state_bytes(id)
    }

    /// Part `name` of checkpoint `id` as a snapshot, delta chain merged.
    ///
    /// # Errors
    /// As [`load_checkpoint_state`](Self::load_checkpoint_state); `WrongStateKind`
    /// for a blob part.
    pub fn load_snapshot(&self, id: u64, name: &str) -> Result<StateSnapshot> {
        self.store.load_snapshot(id, name)
    }

    /// Part `name` of checkpoint `id`, read in place through memory maps (the
    /// zero-copy way to read a checkpoint's state).
    ///
    /// # Errors
    /// As [`load_checkpoint_state`](Self::load_checkpoint_state).
    pub fn open_state_view(&self, id: u64, name: &str) -> Result<CheckpointStateView> {
        self.store.open_view(id, name)
    }

    /// Arrow part `name` of checkpoint `id`, delta chain resolved, its arrays
    /// pointing into the mapped files (see
    /// [`CheckpointStore::open_arrow_part`]).
    ///
    /// # Errors
    /// As [`CheckpointStore::open_arrow_part`].
    pub fn open_arrow_part(&self, id: u64, name: &str) -> Result<crate::ArrowPart> {
        self.store.open_arrow_part(id, name)
    }

    /// Metadata of every checkpoint whose metadata verifies, ascending by id.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed.
    pub fn list_checkpoints(&self) -> Result<Vec<IncrementalCheckpointMetadata>> {
        self.store.list()
    }

    /// Deletes checkpoint `id` durably.
    ///
    /// # Errors
    /// `CheckpointNotFound` when it does not exist; `CheckpointHasDependents` when
    /// a delta checkpoint builds on it; `Io` when it cannot be removed.
    pub fn delete_checkpoint(&self, id: u64) -> Result<()> {
        let mut inner = self.lock();
        // What the WAL must keep is recomputed at the next truncation.
        inner.wal_needed_from = None;
        if inner.last_published.as_ref().is_some_and(|m| m.id == id) {
            inner.last_published = None;
        }
        let ids = self.store.checkpoint_ids()?;
        if !ids.contains(&id) {
            return Err(Error::CheckpointNotFound {
                dir: self.config.dir().to_path_buf(),
                id,
            });
        }
        let dependents: Vec<u64> = ids
            .iter()
            .filter(|other| **other > id)
            .filter_map(|other| self.store.read_metadata(*other).ok())
            .filter(|m| m.parent_id == Some(id))
            .map(|m| m.id)
            .collect();
        if !dependents.is_empty() {
            return Err(Error::CheckpointHasDependents { id, dependents });
        }
        let path = self.store.checkpoint_path(id);
        publish::remove_checkpoint_dir(self.config.storage().as_ref(), &path)?;
        self.store.forget(id);
        self.config
            .storage()
            .sync_dir(self.config.dir())
            .map_err(|e| Error::io("sync directory", self.config.dir(), e))
    }

    /// Applies retention now (it also runs after every checkpoint) and returns
    /// the plan it carried out.
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
    pub fn truncate_wal(&self, wal: &WriteAheadLog) -> Result<usize> {
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
