//! [`IncrementalCheckpointManager`]: writes full and delta checkpoints atomically
//! and finds the latest restorable one. What a request builds on is decided in
//! `parent`, its parts composed in `compose`; retention, deletion and WAL
//! release are in `prune`; the seed API's single-part doors in
//! `default_part`, and the manager's reads (which set its base) in `reads`.
//!
//! Invariants:
//! - A new checkpoint id is greater than every id present in the directory, valid
//!   or not, and than every id this manager issued.
//! - A checkpoint builds only on the checkpoint the caller's state was built
//!   from, when that is the latest restorable one and verifies (see `parent`);
//!   retention never deletes a checkpoint a kept delta depends on (see
//!   `retention`).
//! - One manager writes a directory at a time: it holds the directory's lock
//!   file from `new` until it is dropped, and only the holder removes
//!   leftovers.
//! - Ids, epochs and chain lengths read from disk are never incremented
//!   without a check: a value with no successor is a typed error.
//! - Old checkpoints are deleted only after the new one is durable; WAL segments
//!   are dropped only below the oldest checkpoint retention keeps for recovery.

use super::compose::{full_parts, rebase_orphan_deltas};
use super::config::CheckpointConfig;
use super::describe::{describe, raise_watermarks};
use super::metadata::{
    self, check_handle, check_part_name, CheckpointKind, IncrementalCheckpointMetadata,
};
use super::parent::{self, Base};
use super::parts::{plan, verify_given_files};
use super::publish::{self, LOCK_FILE};
use super::remote::writer::RemoteWriter;
use super::remote::{GcReport, RemoteRestore};
use super::request::CheckpointRequest;
use super::store::CheckpointStore;
use crate::error::{Error, IoContext, Result};
use crate::storage::{create_dir_all_durable, StorageLock};
use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

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
pub(super) struct Inner {
    /// The epoch set for the next checkpoint (`epoch_set`), or else the
    /// epoch of the newest checkpoint, whose successor the next one records.
    epoch: u64,
    /// `set_epoch` was called since the last checkpoint.
    epoch_set: bool,
    /// A checkpoint exists (written or found at open): without `epoch_set`
    /// the next one records `epoch + 1`.
    has_checkpoint: bool,
    last_id: u64,
    pub(super) wal_needed_from: Option<u64>,
    /// What the caller's state was built from: the parent of the next
    /// checkpoint that builds on one (see `parent`).
    pub(super) base: Base,
    /// Checkpoints whose every checksum (and their chain's) verified in this
    /// process, or that it wrote: retention does not read them again.
    pub(super) verified: BTreeSet<u64>,
    /// The remote half, when the checkpoints also live in a blob store.
    remote: Option<RemoteWriter>,
}

/// Writes and reads the checkpoints of one directory.
///
/// One manager writes a directory at a time: [`new`](Self::new) takes the
/// directory's lock file ([`LOCK_FILE`](crate::inspect::LOCK_FILE), `.lock`) and a
/// second manager, in this process or another, gets [`Error::Locked`] until
/// the first is dropped. Readers ([`CheckpointStore`], recovery, the CLI)
/// take no lock and may run alongside.
///
/// **The parent rule.** A request that builds on a parent (a delta, or one
/// that does not mention every part: those are carried over, see
/// [`CheckpointRequest`]) builds on the checkpoint the caller's state was
/// built from, never on whichever is latest. That is the one named with
/// [`CheckpointRequest::with_parent`], else the manager's *base*, set by:
/// - every checkpoint it writes ([`create_checkpoint`](Self::create_checkpoint)
///   and the `create_*` forms) — the new checkpoint;
/// - loading a checkpoint's state through it:
///   [`load_checkpoint_state`](Self::load_checkpoint_state),
///   [`load_snapshot`](Self::load_snapshot),
///   [`open_state_view`](Self::open_state_view) and
///   [`open_arrow_part`](Self::open_arrow_part) — that checkpoint (reading
///   through [`store`](Self::store) sets nothing);
/// - [`SinkCoordinator::recover`](crate::SinkCoordinator::recover) — the
///   restored checkpoint, or the empty state when there is none.
///
/// A fresh manager has no base, unless the directory holds no checkpoint at
/// all (then the base is the empty state); deleting the base checkpoint
/// forgets it. A request that builds on a parent is refused, with nothing
/// written, when no parent is known ([`Error::DeltaParentUnknown`]), when the
/// parent is not the latest restorable checkpoint
/// ([`Error::DeltaParentMismatch`]; write the whole state instead), or when the
/// parent cannot be read or verified now (that error is returned).
///
/// ```
/// use highwater::{CheckpointConfig, IncrementalCheckpointManager, StateDelta, StateSnapshot};
/// use std::collections::{BTreeSet, HashMap};
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
    pub(super) config: CheckpointConfig,
    pub(super) store: CheckpointStore,
    inner: Mutex<Inner>,
    /// What opening a remote location found, when there is one.
    remote_restore: Option<RemoteRestore>,
    /// The directory's lock, held for the manager's life.
    _lock: Box<dyn StorageLock>,
}

impl IncrementalCheckpointManager {
    /// Opens (creating if missing) the checkpoint directory, takes its lock
    /// file, removes leftovers of interrupted checkpoints (only the lock holder
    /// does), and takes the epoch of the newest checkpoint whose metadata
    /// reads (the next checkpoint records the one after it unless
    /// [`set_epoch`](Self::set_epoch) says otherwise).
    ///
    /// With a remote location ([`CheckpointConfig::with_remote`]) it then
    /// claims a writer generation, which fences every older writer of the
    /// location, and makes the directory a cache of the location's newest
    /// restorable committed checkpoint ([`remote_restore`](Self::remote_restore)
    /// says what it found; docs/OBJECT_STORAGE.md).
    ///
    /// # Errors
    /// [`Error::Locked`] when another manager (in this process or another)
    /// writes the directory; `Io` when the directory cannot be created, locked,
    /// listed or cleaned, or when the newest checkpoint's metadata cannot be
    /// read now (retry); [`Error::InvalidConfig`] for a setting out of range
    /// ([`CheckpointConfig::validate`]), or (setting `"remote"`) for a
    /// directory of checkpoints written without a remote location;
    /// [`Error::Blob`] when the location cannot be listed, claimed or read
    /// now (nothing damaged is skipped for that: retry).
    pub fn new(config: CheckpointConfig) -> Result<Self> {
        config.validate()?;
        let storage = config.storage().clone();
        create_dir_all_durable(storage.as_ref(), config.dir())?;
        let lock_path = config.dir().join(LOCK_FILE);
        let lock = crate::storage::lock_exclusive(storage.as_ref(), &lock_path)?;
        let store = CheckpointStore::with_storage(storage.clone(), config.dir())
            .with_sealing(config.sealing().clone());
        let (ids, leftovers) = store.scan()?;
        for name in &leftovers {
            let path = config.dir().join(name);
            tracing::info!(path = %path.display(), "removing leftover of an interrupted checkpoint");
            storage.remove_dir_all(&path).ctx("remove", &path)?;
        }
        if !leftovers.is_empty() {
            storage
                .sync_dir(config.dir())
                .ctx("sync directory", config.dir())?;
        }
        let (remote, restore) = match config.remote() {
            Some(r) => {
                let (writer, report) = RemoteWriter::open(r, &store)?;
                (Some(writer), Some(report))
            }
            None => (None, None),
        };
        let ids = if restore.is_some() {
            store.scan()?.0
        } else {
            ids
        };
        // The newest metadata that reads; one that cannot be read now (a
        // failed read, not damage) is an error, never skipped for an older
        // checkpoint's epoch (the epoch would go back).
        let mut newest_epoch = None;
        for id in ids.iter().rev() {
            match store.read_metadata(*id) {
                Ok(m) => {
                    newest_epoch = Some(m.epoch);
                    break;
                }
                Err(e) if parent::is_damage(&e) => {}
                Err(e) => return Err(e),
            }
        }
        // With a remote location: also every committed checkpoint, cached
        // or not (the id and the epoch never go back).
        let committed = restore.as_ref().and_then(|r| r.committed.last_key_value());
        let newest_epoch = match (newest_epoch, committed) {
            (e, Some((_, c))) => Some(e.unwrap_or(0).max(c.metadata.epoch)),
            (e, None) => e,
        };
        let last_id = ids
            .last()
            .copied()
            .unwrap_or(0)
            .max(committed.map_or(0, |(id, _)| *id));
        let remote_restore = restore.map(|r| RemoteRestore::from_report(remote.as_ref(), r));
        Ok(IncrementalCheckpointManager {
            inner: Mutex::new(Inner {
                epoch: newest_epoch.unwrap_or(0),
                epoch_set: false,
                has_checkpoint: newest_epoch.is_some(),
                last_id,
                wal_needed_from: None,
                base: Base::Unknown,
                verified: BTreeSet::new(),
                remote,
            }),
            config,
            store,
            remote_restore,
            _lock: lock,
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
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

    /// Sets the epoch recorded in the next checkpoint. Without a call the
    /// epoch advances by itself: each checkpoint records the one after the
    /// previous checkpoint's (the first of a new job records 0).
    pub fn set_epoch(&self, epoch: u64) {
        let mut inner = self.lock();
        inner.epoch = epoch;
        inner.epoch_set = true;
    }

    /// The epoch set for the next checkpoint, or else that of the newest
    /// checkpoint (0 for a new job); see [`set_epoch`](Self::set_epoch).
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Writes a checkpoint holding everything in `request` (see
    /// [`CheckpointRequest`] for how full and delta checkpoints are chosen), then
    /// enforces retention. Returns once the checkpoint is durable.
    ///
    /// # Errors
    /// Nothing is written after any of these:
    /// - [`Error::DeltaParentUnknown`]: the request builds on a parent (a delta,
    ///   or a part left out) and none is known (see the parent rule above);
    /// - [`Error::DeltaParentMismatch`]: its parent is not the latest
    ///   restorable checkpoint (write the whole state instead);
    /// - `CheckpointNotFound` for a named parent that is not in the directory;
    /// - `Io` or a corruption error when the parent (or a newer checkpoint)
    ///   cannot be read or verified now — never a fallback to another parent;
    /// - [`Error::CheckpointIdExhausted`] when the directory holds id `u64::MAX`;
    /// - `InvalidArgument` for a WAL position above 2^62 (no log reaches it);
    /// - `UnsafeName` for a part name that cannot be a file name; corruption
    ///   errors for a given state file that does not verify (it takes
    ///   precedence over every error below; its blocks are verified while
    ///   it is written into the temporary directory, which is then removed);
    /// - `Io` for a failed write, fsync or rename (nothing is published; see
    ///   `docs/FORMAT.md` §3 for a failed final directory fsync);
    /// - with a remote location: [`Error::Fenced`] when another writer took
    ///   over (this manager then refuses every later checkpoint), and
    ///   [`Error::Blob`] when an upload or the commit record failed; the
    ///   local copy is withdrawn, and after a failed commit record the
    ///   manager refuses later checkpoints too (its outcome may be unknown:
    ///   open a new manager);
    /// - with [`CheckpointRequest::with_wal`]: [`Error::PositionBeyondEnd`],
    ///   [`Error::PositionNotCovered`], [`Error::NotACommitBoundary`] and the
    ///   log's sync errors, before anything is written.
    pub fn create_checkpoint(
        &self,
        request: CheckpointRequest<'_>,
    ) -> Result<IncrementalCheckpointMetadata> {
        let started = Instant::now();
        let request = request.convert_parts()?;
        if let Some(wal) = request.wal {
            wal.sync_to_commit_boundary(request.wal_position)?;
        }
        let mut inner = self.lock();
        if request.wal_position > crate::wal::MAX_POSITION {
            return Err(Error::invalid_argument(
                "create_checkpoint",
                format!(
                    "WAL position {} is above the largest log position (2^62)",
                    request.wal_position
                ),
            ));
        }
        for (name, _) in &request.parts {
            check_part_name(self.config.dir(), name)?;
        }
        for t in &request.sink_transactions {
            check_handle(&t.handle).map_err(|problem| {
                Error::invalid_argument(
                    "create_checkpoint",
                    format!("sink {:?} epoch {}: {problem}", t.sink, t.epoch),
                )
            })?;
        }
        let (ids, _) = self.store.scan()?;
        let id = self.next_id(&ids, inner.last_id)?;

        let planned = request
            .parts
            .iter()
            .map(|(name, part)| plan(self.config.dir(), name, part.input()?))
            .collect::<Result<Vec<_>>>()?;
        // A given state file is verified in full while it is written; an
        // error on the way there is still that file's when it is damaged.
        let given_first = |e: Error| verify_given_files(self.config.dir(), &request).unwrap_or(e);
        let wants_delta = planned.iter().any(|p| p.kind().is_delta());
        let base = inner.base;
        let choice = parent::choose(
            &self.store,
            &mut inner.verified,
            base,
            &request,
            wants_delta,
            &ids,
        )
        .map_err(given_first)?;
        let parent = choice.parent.as_deref();
        // A checkpoint with no parent still never records a watermark below
        // the newest one that reads (a watermark only grows).
        let previous = match parent {
            Some(_) => None,
            None => ids
                .iter()
                .rev()
                .find_map(|id| self.store.read_metadata(*id).ok()),
        };
        let delta_bytes = planned
            .iter()
            .fold(0, |n: u64, p| n.saturating_add(p.estimated_size()));
        let (kind, parts) = match parent {
            Some(p) if !choice.drops_a_part && keep_delta(p, delta_bytes, &self.config) => (
                CheckpointKind::Delta,
                rebase_orphan_deltas(&self.store, planned, p).map_err(given_first)?,
            ),
            _ => (
                CheckpointKind::Full,
                full_parts(&self.store, planned, parent, &request.drops).map_err(given_first)?,
            ),
        };
        let epoch = if inner.has_checkpoint && !inner.epoch_set {
            inner
                .epoch
                .checked_add(1)
                .ok_or_else(|| Error::EpochExhausted {
                    path: self.config.dir().to_path_buf(),
                    epoch: inner.epoch,
                })
                .map_err(given_first)?
        } else {
            inner.epoch
        };
        let storage = self.config.storage().as_ref();
        let (_, meta) = publish::publish(storage, self.config.dir(), id, |tmp, staged| {
            let mut written = Vec::with_capacity(parts.len());
            for part in &parts {
                let (meta, file) = part.write(storage, self.store.sealing(), tmp)?;
                staged.push(file)?;
                written.push(meta);
            }
            let meta = describe(
                self.config.dir(),
                id,
                epoch,
                kind,
                parent,
                &request,
                written,
            )?;
            let meta = raise_watermarks(meta, parent.or(previous.as_ref()));
            let bytes = metadata::encode(&meta)?;
            Ok((bytes.clone(), (meta, bytes)))
        })
        .map_err(given_first)?;
        let (meta, metadata_bytes) = meta;
        if let Some(remote) = inner.remote.as_mut() {
            match remote.commit(&self.store, &meta, &metadata_bytes) {
                Ok(stats) => tracing::info!(
                    checkpoint = id,
                    slot = stats.slot,
                    generation = remote.generation(),
                    uploaded_bytes = stats.upload.bytes,
                    requests = stats.upload.requests,
                    "checkpoint committed to the remote location"
                ),
                Err(e) => {
                    // Not committed (or not known to be): nothing may build
                    // on the local copy. A committed one comes back from the
                    // location when the next manager opens.
                    inner.last_id = id;
                    self.withdraw(id);
                    return Err(e);
                }
            }
        }
        inner.last_id = id;
        inner.base = Base::Checkpoint(id);
        inner.epoch = meta.epoch;
        inner.epoch_set = false;
        inner.has_checkpoint = true;
        crate::metrics::checkpoint_published(
            meta.kind,
            started.elapsed(),
            meta.parts_bytes(),
            meta.chain_length,
        );
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
        if let Some(remote) = inner.remote.as_mut() {
            if let Err(e) = remote.collect(self.config.max_retained(), false) {
                tracing::warn!(checkpoint = id, error = %e, "garbage collection of the remote location failed; will retry after a later checkpoint");
            }
        }
        Ok(meta)
    }

    /// Removes the local copy of checkpoint `id`, which was not committed
    /// remotely (best effort: the next manager's cache check removes it).
    fn withdraw(&self, id: u64) {
        let storage = self.config.storage().as_ref();
        let path = self.store.checkpoint_path(id);
        let removed = super::publish::remove_checkpoint_dir(storage, &path).and_then(|()| {
            storage
                .sync_dir(self.config.dir())
                .ctx("sync directory", self.config.dir())
        });
        if let Err(e) = removed {
            tracing::warn!(checkpoint = id, error = %e, "could not withdraw a checkpoint whose commit failed; the next open removes it");
        }
    }

    /// Collects the remote location's garbage now (it also runs after a
    /// commit, at most once a minute): keeps the newest `max_retained`
    /// restorable checkpoints and their chains, raises the floor, and
    /// deletes what nothing retained needs once it is older than the grace
    /// period (docs/OBJECT_STORAGE.md, "Garbage collection"). `None` without
    /// a remote location.
    ///
    /// # Errors
    /// [`Error::Blob`] when the location cannot be listed or a record read
    /// now (nothing was deleted; a failed delete is counted in the report,
    /// not returned); [`Error::Fenced`] once this writer is fenced;
    /// `UnsupportedVersion` for a record of a newer format.
    pub fn collect_remote_garbage(&self) -> Result<Option<GcReport>> {
        let max_retained = self.config.max_retained();
        match self.lock().remote.as_mut() {
            Some(remote) => remote.collect(max_retained, true),
            None => Ok(None),
        }
    }

    /// What opening the remote location found (`None` without one):
    /// the writer's generation, the checkpoint restored into the cache and
    /// the committed checkpoints that could not be restored.
    pub fn remote_restore(&self) -> Option<&RemoteRestore> {
        self.remote_restore.as_ref()
    }

    /// The id of the next checkpoint: one more than every id present (valid or
    /// not) and every id this manager issued.
    ///
    /// # Errors
    /// `CheckpointIdExhausted` when the largest is `u64::MAX`.
    fn next_id(&self, ids: &[u64], last_issued: u64) -> Result<u64> {
        let largest = ids.last().copied().unwrap_or(0).max(last_issued);
        largest
            .checked_add(1)
            .ok_or_else(|| Error::CheckpointIdExhausted {
                path: self.store.checkpoint_path(largest),
                id: largest,
            })
    }

    /// Makes checkpoint `id` (or the empty state) what the caller's state is
    /// built from: the parent of the next request that builds on one.
    pub(crate) fn set_base(&self, base: Base) {
        self.lock().base = base;
    }

    /// Tells the manager which checkpoint the caller's state was restored
    /// from by other means, e.g. `RecoveredState::checkpoint_id` after
    /// [`RecoveryManager::recover`](crate::RecoveryManager::recover) (`None`:
    /// from nothing, the empty state). The next request that builds on a
    /// parent (a delta, or one that leaves parts out) builds on it, and is
    /// refused if it is not the latest restorable checkpoint. Loading state
    /// through the manager, writing a checkpoint and
    /// [`SinkCoordinator::recover`](crate::SinkCoordinator::recover) set it
    /// already.
    ///
    /// # Examples
    /// ```
    /// # use highwater::*;
    /// # fn main() -> highwater::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let (ckpt, wal) = (dir.path().join("ckpt"), dir.path().join("wal"));
    /// let recovered = RecoveryManager::recover_simple(&ckpt, &wal)?;
    /// let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt))?;
    /// manager.restored_from(recovered.checkpoint_id);
    /// # Ok(()) }
    /// ```
    pub fn restored_from(&self, checkpoint_id: Option<u64>) {
        self.set_base(checkpoint_id.map_or(Base::Empty, Base::Checkpoint));
    }
}
