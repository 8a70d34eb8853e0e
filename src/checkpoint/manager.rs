//! [`IncrementalCheckpointManager`]: writes full and delta checkpoints atomically
//! and finds the latest restorable one. What a request builds on is decided in
//! `parent`, its parts composed in `compose`; retention, deletion and WAL
//! release are in `prune`.
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
use super::metadata::{
    self, check_handle, check_part_name, CheckpointKind, IncrementalCheckpointMetadata,
    PartMetadata,
};
use super::parent::{self, Base};
use super::parts::plan;
use super::publish::{self, LOCK_FILE};
use super::request::{CheckpointRequest, PartInput};
use super::store::{CheckpointStore, LatestCheckpoint, DEFAULT_PART};
use super::view::CheckpointStateView;
use crate::error::{Error, IoContext, Result};
use crate::recovery::watermarks;
use crate::state::{
    expect_kind, header_summary, is_state_file, memory_path, StateKind, StateSnapshot,
};
use crate::storage::{create_dir_all_durable, StorageLock};
use std::collections::{BTreeSet, HashMap};
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
    /// # Errors
    /// [`Error::Locked`] when another manager (in this process or another)
    /// writes the directory; `Io` when the directory cannot be created, locked,
    /// listed or cleaned, or when the newest checkpoint's metadata cannot be
    /// read now (retry); [`Error::InvalidConfig`] for a setting out of range
    /// ([`CheckpointConfig::validate`]).
    pub fn new(config: CheckpointConfig) -> Result<Self> {
        config.validate()?;
        let storage = config.storage().clone();
        create_dir_all_durable(storage.as_ref(), config.dir())?;
        let lock_path = config.dir().join(LOCK_FILE);
        let lock = crate::storage::lock_exclusive(storage.as_ref(), &lock_path)?;
        let store = CheckpointStore::with_storage(storage.clone(), config.dir());
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
        Ok(IncrementalCheckpointManager {
            inner: Mutex::new(Inner {
                epoch: newest_epoch.unwrap_or(0),
                epoch_set: false,
                has_checkpoint: newest_epoch.is_some(),
                last_id: ids.last().copied().unwrap_or(0),
                wal_needed_from: None,
                base: Base::Unknown,
                verified: BTreeSet::new(),
            }),
            config,
            store,
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

    /// The seed API's door onto [`create_checkpoint`](Self::create_checkpoint):
    /// writes a checkpoint whose part `state` ([`DEFAULT_PART`](crate::checkpoint::DEFAULT_PART))
    /// holds `state`. Other parts of the base are carried over (the checkpoint
    /// is then a delta that replaces `state`); with none, it is a full
    /// checkpoint.
    ///
    /// What `state` is follows one rule, not a guess: bytes that begin with
    /// the state-file magic number `HWSTATE\0` (`docs/FORMAT.md` §2, what
    /// [`StateSnapshot::to_bytes`] writes) are a state file — verified first,
    /// and recovered as a [`StateSnapshot`]; any other bytes are an opaque
    /// blob, returned verbatim by
    /// [`load_checkpoint_state`](Self::load_checkpoint_state). To say which
    /// explicitly, call `create_checkpoint` with [`PartInput::Blob`] or
    /// [`PartInput::StateFile`].
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

    /// Writes a delta checkpoint over the manager's base (see the parent rule
    /// above: the checkpoint it last wrote, or whose state was loaded through
    /// it): `delta` is the bytes of a [`StateDelta`](crate::StateDelta)
    /// (changes to the `state` part since then), verified once and written as
    /// it is. Becomes a full checkpoint when the base is the empty state or the
    /// chain limits are reached.
    ///
    /// # Errors
    /// As [`create_checkpoint`](Self::create_checkpoint) (among them
    /// `DeltaParentUnknown` and `DeltaParentMismatch`); `WrongStateKind` when
    /// `delta` is not a delta file.
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
    ///   errors for a given state file that does not verify;
    /// - `Io` for a failed write, fsync or rename (nothing is published; see
    ///   `docs/FORMAT.md` §3 for a failed final directory fsync);
    /// - with [`CheckpointRequest::with_wal`]: [`Error::PositionBeyondEnd`],
    ///   [`Error::PositionNotCovered`], [`Error::NotACommitBoundary`] and the
    ///   log's sync errors, before anything is written.
    pub fn create_checkpoint(
        &self,
        request: CheckpointRequest<'_>,
    ) -> Result<IncrementalCheckpointMetadata> {
        let started = Instant::now();
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
            .map(|(name, input)| plan(self.config.dir(), name, *input))
            .collect::<Result<Vec<_>>>()?;
        let wants_delta = planned.iter().any(|p| p.kind().is_delta());
        let base = inner.base;
        let choice = parent::choose(
            &self.store,
            &mut inner.verified,
            base,
            &request,
            wants_delta,
            &ids,
        )?;
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
                rebase_orphan_deltas(&self.store, planned, p)?,
            ),
            _ => (
                CheckpointKind::Full,
                full_parts(&self.store, planned, parent, &request.drops)?,
            ),
        };
        let epoch = if inner.has_checkpoint && !inner.epoch_set {
            inner
                .epoch
                .checked_add(1)
                .ok_or_else(|| Error::EpochExhausted {
                    path: self.config.dir().to_path_buf(),
                    epoch: inner.epoch,
                })?
        } else {
            inner.epoch
        };
        let storage = self.config.storage().as_ref();
        let (_, meta) = publish::publish(storage, self.config.dir(), id, |tmp| {
            let written = parts
                .iter()
                .map(|p| p.write(storage, tmp))
                .collect::<Result<Vec<_>>>()?;
            let meta = self.metadata(id, epoch, kind, parent, &request, written)?;
            let meta = raise_watermarks(meta, parent.or(previous.as_ref()));
            Ok((metadata::encode(&meta)?, meta))
        })?;
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
        Ok(meta)
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

    /// Records that the caller loaded the state of checkpoint `id`.
    fn loaded<T>(&self, id: u64, loaded: Result<T>) -> Result<T> {
        if loaded.is_ok() {
            self.set_base(Base::Checkpoint(id));
        }
        loaded
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
    ) -> Result<IncrementalCheckpointMetadata> {
        let bytes = parts.iter().fold(0, |n: u64, p| n.saturating_add(p.size));
        let (parent_id, base_id, chain_length, chain_delta_bytes, base_bytes) = match (kind, parent)
        {
            (CheckpointKind::Delta, Some(p)) => (
                Some(p.id),
                p.base_id,
                p.chain_length
                    .checked_add(1)
                    .ok_or_else(|| Error::CheckpointCorrupted {
                        path: p.checkpoint_path(self.config.dir()),
                        offset: None,
                        reason: format!("chain length {} has no successor", p.chain_length),
                    })?,
                p.chain_delta_bytes.saturating_add(bytes),
                p.base_bytes,
            ),
            _ => (None, id, 0, 0, bytes),
        };
        Ok(IncrementalCheckpointMetadata {
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
        })
    }

    /// The newest restorable checkpoint: the one a writer builds on. Newer
    /// damaged checkpoints are skipped with a warning (the list of them, with
    /// reasons, is [`CheckpointStore::find_latest`]'s). Unlike the store's
    /// reader, a checkpoint that cannot be read now (a failed read, not
    /// damage: its restorability is unknown) is an error, never skipped for an
    /// older one: what a writer restores is what it builds on.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed, or when a checkpoint newer
    /// than the one that would be returned cannot be read (retry).
    pub fn find_latest_checkpoint(&self) -> Result<Option<IncrementalCheckpointMetadata>> {
        Ok(self.latest_strict()?.metadata)
    }

    /// [`find_latest_checkpoint`](Self::find_latest_checkpoint) with the
    /// checkpoints it skipped.
    pub(crate) fn latest_strict(&self) -> Result<LatestCheckpoint> {
        parent::find_latest_strict(&self.store)
    }

    // The loads below are the store's reads of the same name (a writer reads
    // what it builds on through its manager); on success checkpoint `id`
    // becomes the manager's base (the parent rule above).

    /// [`CheckpointStore::load_checkpoint_state`], then `id` becomes the base:
    /// the full state of the default part, delta chain merged — the bytes of a
    /// [`StateSnapshot`] for key/value state, or the bytes given to
    /// `create_checkpoint_with_state` for opaque state.
    ///
    /// # Errors
    /// `CheckpointNotFound` when `id` is missing or not restorable; corruption
    /// errors for damage found while reading.
    pub fn load_checkpoint_state(&self, id: u64) -> Result<Vec<u8>> {
        self.loaded(id, self.store.load_checkpoint_state(id))
    }

    /// [`CheckpointStore::load_snapshot`], then `id` becomes the base.
    ///
    /// # Errors
    /// As [`CheckpointStore::load_snapshot`].
    pub fn load_snapshot(&self, id: u64, name: &str) -> Result<StateSnapshot> {
        self.loaded(id, self.store.load_snapshot(id, name))
    }

    /// [`CheckpointStore::open_state_view`] (the zero-copy read), then `id`
    /// becomes the base.
    ///
    /// # Errors
    /// As [`CheckpointStore::open_state_view`].
    pub fn open_state_view(&self, id: u64, name: &str) -> Result<CheckpointStateView> {
        self.loaded(id, self.store.open_state_view(id, name))
    }

    /// [`CheckpointStore::open_arrow_part`], then `id` becomes the base.
    ///
    /// # Errors
    /// As [`CheckpointStore::open_arrow_part`].
    #[cfg(feature = "arrow")]
    pub fn open_arrow_part(&self, id: u64, name: &str) -> Result<crate::ArrowPart> {
        self.loaded(id, self.store.open_arrow_part(id, name))
    }

    /// [`CheckpointStore::list_checkpoints`]: metadata of every checkpoint
    /// whose metadata verifies, ascending by id.
    ///
    /// # Errors
    /// `Io` when the directory cannot be listed.
    pub fn list_checkpoints(&self) -> Result<Vec<IncrementalCheckpointMetadata>> {
        self.store.list_checkpoints()
    }
}

/// `meta` with its watermarks raised to `previous`'s (its parent, or else the
/// newest checkpoint) where they are lower, for the partitions it records: a
/// watermark only grows.
fn raise_watermarks(
    mut meta: IncrementalCheckpointMetadata,
    previous: Option<&IncrementalCheckpointMetadata>,
) -> IncrementalCheckpointMetadata {
    let Some(p) = previous else { return meta };
    let regressions = watermarks::raise_to_previous(
        &mut meta.watermark,
        &mut meta.source_watermarks,
        p.watermark,
        &p.source_watermarks,
    );
    if regressions > 0 {
        tracing::warn!(
            checkpoint = meta.id,
            previous = p.id,
            regressions,
            "checkpoint watermarks below the previous checkpoint's were raised to its"
        );
    }
    meta
}
