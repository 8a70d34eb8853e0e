//! # highwater
//!
//! Incremental checkpoints and exactly-once crash recovery for stream processors.
//!
//! An operator's keyed state, the source offsets it consumed and its event-time
//! watermarks are made durable together, and sink output is published exactly
//! once:
//!
//! - [`wal`]: a segmented, checksummed write-ahead log with group commit, torn-write
//!   detection and repair ([`WriteAheadLog`], [`WalEntry`], [`WalReader`]).
//! - [`state`]: keyed state as sorted rkyv archives with per-block checksums —
//!   full snapshots, deltas, a zero-copy memory-mapped view, and a map that tracks
//!   its own changes ([`StateSnapshot`], [`StateDelta`], [`StateFileView`],
//!   [`TrackedState`]).
//! - [`checkpoint`]: atomic full and delta checkpoints of state parts, source
//!   offsets and watermark, with latest-valid fallback, retention and WAL
//!   truncation ([`IncrementalCheckpointManager`], [`CheckpointStore`]).
//! - [`recovery`]: the newest restorable checkpoint plus the committed log
//!   entries after it, with torn-tail repair, fallback, bounded, streaming and
//!   point-in-time replay ([`RecoveryManager`], [`RecoveredState`]).
//! - [`sink`]: exactly-once output — a two-phase commit that publishes a
//!   sink's output only once the checkpoint covering it is durable
//!   ([`SinkCoordinator`], [`TransactionalSink`], [`FileSink`]); see
//!   `docs/EXACTLY_ONCE.md`.
//! - [`source`]: per-partition offsets and watermarks and the combined
//!   watermark ([`SourcePositions`]).
//! - [`arrow`]: columnar operator state — Arrow record batches checkpointed as
//!   Arrow IPC part files (full and appending deltas) and restored zero-copy
//!   from memory maps ([`ArrowBatches`], [`ArrowPart`]); key/value state and
//!   WAL ranges exported as record batches. Behind the `arrow` cargo feature
//!   (on by default); see "Cargo features" below.
//! - [`storage`]: the trait all file I/O goes through, with a crash simulator
//!   ([`storage::CrashSimStorage`]) that keeps what a crash would leave apart
//!   from what the process sees, for crash-testing highwater and pipelines
//!   built on it (`docs/TESTING.md`).
//!
//! The on-disk format is specified in `docs/FORMAT.md`; tuning in `docs/TUNING.md`.
//!
//! ## Cargo features
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
//! Files in a checkpoint directory are memory-mapped for reading; nothing but
//! highwater may modify them.
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

#![deny(missing_docs)]
#![deny(unsafe_code)]

#[cfg(feature = "arrow")]
pub mod arrow;
pub mod checkpoint;
mod error;
pub mod metrics;
pub mod recovery;
pub mod sink;
pub mod source;
pub mod state;
pub mod storage;
pub mod wal;

#[cfg(feature = "arrow")]
pub use arrow::{ArrowBatches, ArrowPart, ArrowVerification};
pub use checkpoint::{
    CheckpointConfig, CheckpointKind, CheckpointRequest, CheckpointStateView, CheckpointStore,
    IncrementalCheckpointManager, IncrementalCheckpointMetadata, LatestCheckpoint, PartInput,
    PartKind, PartMetadata, RejectedCheckpoint, SinkTransaction,
};
pub use error::{Error, Result};
pub use recovery::{
    validate_checkpoint, CommitInfo, RecoveredState, RecoveryConfig, RecoveryManager,
    RecoveryReport, ReplaySink, TransactionMode, WalShort,
};
pub use sink::{FileSink, SinkCoordinator, TransactionalSink};
pub use source::SourcePositions;
pub use state::{
    Lookup, StateBytes, StateDelta, StateFileView, StateKind, StateSnapshot, TrackedState,
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
