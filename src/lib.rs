//! # highwater
//!
//! Incremental checkpoints and exactly-once crash recovery for stream processors.
//!
//! An operator's keyed state, the source offsets it consumed and its event-time
//! watermarks are made durable together, and sink output is published exactly
//! once. The on-disk format is specified in `docs/FORMAT.md`, recovery's
//! semantics in `docs/RECOVERY.md`, the layers and locks in
//! `docs/ARCHITECTURE.md`, the knobs in `docs/TUNING.md`.
//!
//! # The API by task
//!
//! Each task has one entry point. The names of the seed API
//! (`create_checkpoint_with_state`, `recover_simple`, `load_checkpoint_state`,
//! …) are thin doors onto the same paths, kept for code written against them.
//!
//! | to … | use |
//! |---|---|
//! | log changes and commit them with their offsets | [`WriteAheadLog::open`], [`WriteAheadLog::append`] ([`WalEntry`]) |
//! | track source offsets and watermarks | [`SourcePositions`] |
//! | track state and what changed since the last checkpoint | [`TrackedState`] |
//! | write a checkpoint (full or delta, any parts) | [`IncrementalCheckpointManager::create_checkpoint`] with a [`CheckpointRequest`] |
//! | checkpoint without stopping the operator (written on a background thread) | [`BackgroundCheckpointer::submit`] with owned parts ([`CheckpointRequest::with_owned_part`]); with sinks, [`SinkCoordinator::begin_checkpoint`] then [`SinkCoordinator::finish_checkpoint`] |
//! | drop the log a checkpoint made unnecessary | [`IncrementalCheckpointManager::release_wal`] |
//! | recover after a crash | [`RecoveryManager::recover`] ([`RecoveryConfig`]) |
//! | recover without holding the changes in memory | [`RecoveryManager::recover_into`] with a [`ReplaySink`] |
//! | recover in bounded pieces | [`RecoveryConfig::with_max_wal_entries`], then [`RecoveryManager::resume`] |
//! | publish sink output exactly once | [`SinkCoordinator`] over [`TransactionalSink`]s ([`FileSink`]) |
//! | read a checkpoint without writing (tools, other processes) | [`CheckpointStore`] |
//! | keep columnar (Arrow) state | [`PartInput::Arrow`] and [`CheckpointStore::open_arrow_part`] (the [`arrow`] module; feature `arrow`, on by default) |
//! | check a checkpoint or a log | [`validate_checkpoint`], [`CheckpointStore::verify_all`], [`inspect`] |
//! | crash-test a pipeline built on highwater | [`storage::CrashSimStorage`] (`docs/TESTING.md`) |
//!
//! Errors are one enum, [`Error`]; its variants are what callers branch on,
//! and [`Error::is_retryable`] says which are worth retrying.
//!
//! ## Log changes and commit them
//!
//! A `Commit` makes the changes since the previous one visible together with
//! its offsets and watermark; with `set_sync_on_write(true)` (or
//! [`SyncPolicy::EveryWrite`]) `append` returns once the entry is durable.
//!
//! ```
//! use highwater::{WalEntry, WalReadResult, WriteAheadLog};
//! use std::collections::HashMap;
//! use std::time::Duration;
//!
//! # fn main() -> highwater::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let wal = WriteAheadLog::new(dir.path(), Duration::from_millis(10))?;
//! wal.set_sync_on_write(true);
//! let start = wal.append(&WalEntry::Put { key: b"k".to_vec(), value: b"v".to_vec() })?;
//! wal.append(&WalEntry::Commit { offsets: HashMap::from([("topic-0".into(), 7)]), watermark: Some(1000) })?;
//!
//! let mut reader = wal.read_from(start)?;
//! assert!(matches!(reader.read_next()?, WalReadResult::Entry(WalEntry::Put { .. })));
//! assert!(matches!(reader.read_next()?, WalReadResult::Entry(WalEntry::Commit { .. })));
//! assert_eq!(reader.read_next()?, WalReadResult::Eof);
//! # Ok(()) }
//! ```
//!
//! ## Write a checkpoint
//!
//! A request names its log position, its sources and its parts; a delta
//! applies to the checkpoint the state was built from (the manager's base, or
//! [`CheckpointRequest::with_parent`]). Checkpoints cost in proportion to what
//! changed: [`TrackedState::delta`] is the changes since the last one.
//!
//! ```
//! use highwater::{
//!     CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput,
//!     SourcePositions, TrackedState,
//! };
//! # fn main() -> highwater::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()))?;
//! let (mut state, mut sources) = (TrackedState::new(), SourcePositions::new());
//!
//! state.put(b"user-1".to_vec(), b"3".to_vec());
//! sources.set_offset("orders-0", 120)?; // the next record to read
//! let full = manager.create_checkpoint(
//!     CheckpointRequest::new(0)
//!         .with_sources(&sources)
//!         .with_part("counts", PartInput::Snapshot(&state.snapshot())),
//! )?;
//! state.mark_checkpointed();
//!
//! state.put(b"user-2".to_vec(), b"1".to_vec());
//! let delta = state.delta(); // only what changed
//! let next = manager.create_checkpoint(
//!     CheckpointRequest::new(0).with_sources(&sources).with_part("counts", PartInput::Delta(&delta)),
//! )?;
//! assert_eq!(next.parent_id, Some(full.id));
//! # Ok(()) }
//! ```
//!
//! ## Recover after a crash
//!
//! The newest checkpoint that verifies completely, plus the committed log
//! entries after it; a torn tail is repaired, an uncommitted tail is reported
//! and cut.
//!
//! ```
//! use highwater::{RecoveryConfig, RecoveryManager};
//! # fn main() -> highwater::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let (checkpoints, wal) = (dir.path().join("ckpt"), dir.path().join("wal"));
//! let config = RecoveryConfig::new(&checkpoints, &wal).with_collect_state_changes(true);
//! let recovered = RecoveryManager::new(config).recover()?;
//! let state = recovered.current_state()?; // the checkpoint's state + committed changes
//! let resume_at = &recovered.source_offsets; // where each source partition resumes
//! # assert!(state.is_empty() && resume_at.is_empty());
//! # Ok(()) }
//! ```
//!
//! ## Publish output exactly once
//!
//! A sink's output becomes visible only once the checkpoint that covers it is
//! durable; see `docs/EXACTLY_ONCE.md` for the loop a pipeline runs.
//!
//! ```
//! use highwater::{CheckpointConfig, CheckpointRequest, FileSink, IncrementalCheckpointManager, SinkCoordinator};
//! # fn main() -> highwater::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let mut sink = FileSink::open(dir.path().join("out"), "counts")?;
//! let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path().join("ckpt")))?;
//! let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink])?;
//! sink.write(b"user-1,3\n")?;
//! coordinator.checkpoint(CheckpointRequest::new(0), &mut [&mut sink])?; // now visible
//! # Ok(()) }
//! ```
//!
//! ## Read a checkpoint without writing
//!
//! [`CheckpointStore`] takes no lock and never modifies the directory; the
//! manager's reads of the same names also make the checkpoint the base of the
//! writer's next delta.
//!
//! ```
//! use highwater::{CheckpointConfig, CheckpointStore, IncrementalCheckpointManager, StateSnapshot};
//! # use std::collections::HashMap;
//! # fn main() -> highwater::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()))?;
//! # let state = StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())]);
//! # manager.create_checkpoint_with_state(0, HashMap::new(), None, &state.to_bytes()?)?;
//! let store = CheckpointStore::new(dir.path());
//! let latest = store.find_latest()?.metadata.expect("a checkpoint");
//! let view = store.open_state_view(latest.id, "state")?; // zero-copy, memory-mapped
//! assert_eq!(view.get(b"k")?, Some(&b"v"[..]));
//! # Ok(()) }
//! ```
//!
//! # Cargo features
//!
//! - `arrow` (default): columnar state — the [`arrow`] module,
//!   `PartInput::Arrow`/`ArrowDelta`, `open_arrow_part` and the Arrow
//!   exports. A job without columnar state can turn it off
//!   (`default-features = false`) and skip building Arrow. Such a build still
//!   handles a checkpoint directory holding Arrow parts (written by a build
//!   with the feature): it lists, verifies (size and CRC32C of every Arrow
//!   file), retains and recovers it, and carries its Arrow parts over into
//!   delta checkpoints unchanged; what would need them decoded (a full
//!   checkpoint that carries one over) fails with
//!   [`Error::FeatureDisabled`], never a panic or a silent drop
//!   (`docs/FORMAT.md` §5).
//!
//! # Modules
//!
//! - [`wal`]: the segmented, checksummed write-ahead log with group commit,
//!   torn-write detection and repair.
//! - [`state`]: keyed state as sorted rkyv archives with per-block checksums —
//!   snapshots, deltas, a zero-copy view, a map that tracks its changes.
//! - [`checkpoint`]: atomic full and delta checkpoints, latest-valid fallback,
//!   retention and log release.
//! - [`recovery`]: the newest restorable checkpoint plus the committed log
//!   after it.
//! - [`sink`]: two-phase-commit sinks (`docs/EXACTLY_ONCE.md`).
//! - [`source`]: per-partition offsets and watermarks.
//! - [`arrow`]: Arrow record batches as checkpoint parts (feature `arrow`).
//! - [`storage`]: the trait all file I/O goes through, and the crash
//!   simulator.
//! - [`inspect`]: the format's constants, damage classes and verification,
//!   for tools and format tests.
//! - [`metrics`]: the names of the metrics the library records.
//!
//! Files in a checkpoint directory are memory-mapped for reading; nothing but
//! highwater may modify them.

#![deny(missing_docs)]
#![deny(unsafe_code)]

#[cfg(feature = "arrow")]
pub mod arrow;
pub mod blob;
pub mod checkpoint;
pub mod cluster;
#[cfg(feature = "encryption")]
pub mod crypto;
mod error;
pub mod inspect;
pub mod metrics;
pub mod recovery;
mod sealing;
pub mod sink;
pub mod source;
pub mod state;
pub mod storage;
pub mod wal;

#[cfg(feature = "arrow")]
pub use arrow::{ArrowBatches, ArrowPart, ArrowVerification};
pub use checkpoint::{
    BackgroundCheckpointer, CheckpointConfig, CheckpointKind, CheckpointOutcome, CheckpointRequest,
    CheckpointStateView, CheckpointStore, CheckpointTicket, IncrementalCheckpointManager,
    IncrementalCheckpointMetadata, IntoPart, LatestCheckpoint, OwnedPart, PartInput, PartKind,
    PartMetadata, PartSeal, ProgressCounts, RejectedCheckpoint, RemoteConfig, RemoteRestore,
    SinkTransaction, TransferProgress,
};
pub use error::{ArgumentError, Error, Result};
pub use recovery::{
    validate_checkpoint, CommitInfo, RecoveredState, RecoveryConfig, RecoveryManager,
    RecoveryReport, ReplaySink, TransactionMode, WalShort,
};
pub use sink::{FileSink, SinkCoordinator, TransactionalSink};
pub use source::SourcePositions;
pub use state::{
    FreezeId, FrozenChanges, Lookup, StateBytes, StateDelta, StateFileView, StateKind,
    StateSnapshot, TrackedState,
};
pub use wal::{
    wal_size, RepairReport, SyncPolicy, WalEntry, WalOptions, WalReadResult, WalReader,
    WalRecoveryMode, WalRelease, WalStats, WriteAheadLog,
};

/// The README's code examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// docs/EXACTLY_ONCE.md's code examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/EXACTLY_ONCE.md")]
struct ExactlyOnceDocDoctests;

/// docs/RECOVERY.md's code examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/RECOVERY.md")]
struct RecoveryDocDoctests;
