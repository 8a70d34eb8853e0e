//! The crate's error type, [`enum@Error`], and what it is built from.
//!
//! Every variant carries structured fields (the operation that failed, the file,
//! the offset or position, expected and actual checksums, the typed problem)
//! so that a caller can act on an error without parsing its message, and so
//! that the message alone is enough to find the damaged byte.
//!
//! One enum for the whole crate, flat, so a caller matches one type. Each
//! subsystem keeps its own typed *problem* and folds it into a variant: the
//! log's [`Problem`](crate::wal::Problem) (with its
//! [`DamageClass`](crate::wal::DamageClass)) in [`Error::WalCorrupted`], a
//! checkpoint chain's [`ChainProblem`](crate::checkpoint::ChainProblem) in
//! [`Error::CheckpointChainBroken`]. Where a variant also has a `reason`
//! string, it is the problem's message (kept for printing and for callers
//! that only log), built from the typed value in one place.
//!
//! The kinds callers branch on:
//! - not there: [`Error::CheckpointNotFound`], [`Error::PartNotFound`]
//!   ([`Error::is_not_found`] also covers an [`Error::Io`] of a missing file);
//! - already there: [`Error::CheckpointExists`];
//! - busy: [`Error::Locked`], [`Error::SinkInUse`];
//! - damage: [`Error::is_corruption`];
//! - configuration: [`Error::InvalidConfig`]; a wrong value or call:
//!   [`Error::InvalidArgument`];
//! - worth retrying: [`Error::is_retryable`];
//! - object storage: [`Error::Blob`], whose
//!   [`BlobError`](crate::blob::BlobError) is the blob layer's own typed
//!   enum (an indeterminate outcome is its own kind there).
//!
//! I/O errors get their context one way, described in `io.rs`:
//! `result.ctx("operation", path)?`.

mod argument;
mod classify;
mod io;

pub use argument::ArgumentError;
pub(crate) use io::IoContext;

use crate::checkpoint::ChainProblem;
use crate::wal::{DamageClass, Problem as WalProblem};
use std::path::PathBuf;
use std::sync::Arc;

/// A `Result` whose error is [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in highwater.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on `path` failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done ("open", "write", "sync", "rename", ...).
        operation: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// An earlier write or fsync of this log failed, so the log's durable state is
    /// unknown. Every later call fails with this error until the log is reopened;
    /// fsync is never retried. After a failed fsync, a restart is not enough:
    /// the kernel may have dropped the unsynced pages while still serving them
    /// from its cache, to any process. Reboot or evict the log's pages before
    /// reopening (docs/RECOVERY.md, "After a failed fsync").
    #[error("write-ahead log {path} is poisoned: {operation} failed earlier ({cause}); reopen it to recover (after a failed fsync, only once its cached pages are evicted: docs/RECOVERY.md)")]
    Poisoned {
        /// The log directory.
        path: PathBuf,
        /// The operation that failed first.
        operation: &'static str,
        /// The error it failed with.
        cause: String,
    },

    /// Another writer holds the lock file of this directory.
    #[error("{path} is locked by another writer ({source})")]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A record or header of the log is damaged in a way that is not a torn tail
    /// (or the recovery mode does not tolerate torn tails).
    #[error("write-ahead log corrupted in {path} at offset {offset} (log position {position}): {reason}")]
    WalCorrupted {
        /// The segment file.
        path: PathBuf,
        /// Byte offset in that file.
        offset: u64,
        /// Log position of the damaged record.
        position: u64,
        /// Torn tail or corruption.
        class: DamageClass,
        /// What is wrong, typed.
        problem: WalProblem,
        /// What is wrong, in words (the problem's message, prefixed with
        /// "torn tail: " for a torn tail).
        reason: String,
    },

    /// A checksum of the log did not match.
    #[error("{region} checksum mismatch in {path} at offset {offset} (log position {position}): stored {expected:#010x}, computed {actual:#010x}")]
    WalChecksumMismatch {
        /// What the checksum covers: "record header", "payload", "segment
        /// header" or "floor file".
        region: &'static str,
        /// The segment file.
        path: PathBuf,
        /// Byte offset in that file.
        offset: u64,
        /// Log position of the damaged record.
        position: u64,
        /// The checksum stored in the file.
        expected: u32,
        /// The checksum of the bytes actually read.
        actual: u32,
    },

    /// A file was written by a format version this build does not understand.
    #[error("{path}: unsupported format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// A record is larger than the configured maximum record size.
    #[error("record of {size} bytes exceeds the maximum record size of {max} bytes")]
    RecordTooLarge {
        /// Encoded payload size.
        size: u64,
        /// The limit.
        max: u64,
    },

    /// A read was asked to start at a position that is not the start of a record.
    #[error("position {position} is not a record boundary in {path} (nearest boundaries: {before}{})", after.map(|a| format!(" and {a}")).unwrap_or_default())]
    NotARecordBoundary {
        /// The requested position.
        position: u64,
        /// The segment that covers it.
        path: PathBuf,
        /// The last record boundary before the requested position.
        before: u64,
        /// The first record boundary after it, if any.
        after: Option<u64>,
    },

    /// A position is older than the oldest segment still on disk.
    #[error("position {position} is no longer covered by the log at {path}: its oldest record is at {first_available}")]
    PositionNotCovered {
        /// The requested position.
        position: u64,
        /// The log directory.
        path: PathBuf,
        /// The oldest position still present.
        first_available: u64,
    },

    /// A position is past the end of the log.
    #[error("position {position} is beyond the end of the log at {path} (end: {end})")]
    PositionBeyondEnd {
        /// The requested position.
        position: u64,
        /// The log directory.
        path: PathBuf,
        /// The position just past the last valid record.
        end: u64,
    },

    /// A state file (snapshot, delta or blob) is damaged or malformed.
    #[error("state file {path} is corrupted at offset {offset}: {reason}")]
    StateCorrupted {
        /// The file (`<bytes>` for an in-memory buffer).
        path: PathBuf,
        /// Byte offset in the file of the damaged field or region.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// A checksum of a state file (header, block table or payload block) did not
    /// match.
    #[error("checksum mismatch in state file {path} ({region} at offset {offset}): expected {expected:#010x}, found {actual:#010x}")]
    StateChecksumMismatch {
        /// The file (`<bytes>` for an in-memory buffer).
        path: PathBuf,
        /// Which checksummed region: "header", "block table", "payload block" or
        /// "payload".
        region: &'static str,
        /// Byte offset in the file where that region starts.
        offset: u64,
        /// The checksum stored in the file.
        expected: u32,
        /// The checksum of the bytes actually read.
        actual: u32,
    },

    /// A state file holds a different kind of state than the caller asked for
    /// (for example a delta given where a full snapshot is expected).
    #[error("{path} holds a {found}, expected a {expected}")]
    WrongStateKind {
        /// The file (`<bytes>` for an in-memory buffer).
        path: PathBuf,
        /// The kind the caller needs.
        expected: &'static str,
        /// The kind in the file.
        found: &'static str,
    },

    /// A state is too large to be archived in one state file.
    #[error("state of {size} bytes exceeds the largest archivable state part of {max} bytes; split it into several parts")]
    StateTooLarge {
        /// Bytes the archive would need.
        size: u64,
        /// The limit of this build's rkyv format.
        max: u64,
    },

    /// An Arrow part file is damaged: its structure, a message or an array does
    /// not decode or validate (`docs/FORMAT.md` §5).
    #[error("Arrow part {path} is damaged{}: {reason}", offset.map(|o| format!(" at offset {o}")).unwrap_or_default())]
    ArrowCorrupted {
        /// The file.
        path: PathBuf,
        /// Byte offset of the damaged region (the block, the footer), when known.
        offset: Option<u64>,
        /// What is wrong.
        reason: String,
    },

    /// Record batches given for an Arrow part do not all have the part's schema
    /// (or an Arrow delta's schema differs from the part it appends to).
    #[error("Arrow part {path}: schema {found} does not match the part's schema {expected}")]
    ArrowSchemaMismatch {
        /// The part file being written (or the file holding the expected schema).
        path: PathBuf,
        /// The part's schema.
        expected: String,
        /// The schema given.
        found: String,
    },

    /// Arrow refused to encode an Arrow part's batches (for example a
    /// dictionary replaced between batches, which the IPC file format cannot
    /// hold). Only with the `arrow` feature.
    #[cfg(feature = "arrow")]
    #[error("cannot write Arrow part {path}: {source}")]
    ArrowEncode {
        /// The part file being written.
        path: PathBuf,
        /// Arrow's error.
        #[source]
        source: arrow::error::ArrowError,
    },

    /// A checkpoint's metadata or one of its files is damaged, missing or
    /// inconsistent.
    #[error("checkpoint {path} is invalid{}: {reason}", offset.map(|o| format!(" at offset {o}")).unwrap_or_default())]
    CheckpointCorrupted {
        /// The checkpoint directory or the file in it that is damaged.
        path: PathBuf,
        /// Byte offset in that file, when one is known.
        offset: Option<u64>,
        /// What is wrong.
        reason: String,
    },

    /// A file of a checkpoint has a different size or CRC32C than its metadata
    /// lists.
    #[error("checkpoint file {path} does not match its metadata: expected {expected_size} bytes with CRC32C {expected_crc:#010x}, found {actual_size} bytes with CRC32C {actual_crc:#010x}")]
    CheckpointFileMismatch {
        /// The part file.
        path: PathBuf,
        /// Size listed in the metadata.
        expected_size: u64,
        /// Size on disk.
        actual_size: u64,
        /// CRC32C listed in the metadata.
        expected_crc: u32,
        /// CRC32C of the file on disk (0 when the size already differs).
        actual_crc: u32,
    },

    /// The metadata of checkpoint `id` does not fit its chain: it disagrees
    /// with its parent's, or a delta part has nothing to apply to.
    #[error("{problem}")]
    CheckpointChainBroken {
        /// The directory of the checkpoint that does not fit
        /// ([`ChainProblem::checkpoint_id`]).
        path: PathBuf,
        /// What does not fit.
        problem: ChainProblem,
    },

    /// Checkpoint `id` is a delta on checkpoint `parent`, which is not
    /// restorable: so `id` is not either.
    #[error("checkpoint {id} depends on checkpoint {parent}, which is not restorable: {source}")]
    CheckpointParentUnrestorable {
        /// The checkpoint's directory.
        path: PathBuf,
        /// The checkpoint.
        id: u64,
        /// The ancestor that is not restorable (the nearest one that fails).
        parent: u64,
        /// Why the ancestor is not restorable (shared: one check serves every
        /// checkpoint that depends on it).
        #[source]
        source: Arc<Error>,
    },

    /// No checkpoint with this id exists (or it is not restorable).
    #[error("no checkpoint {id} in {dir}")]
    CheckpointNotFound {
        /// The checkpoint directory searched.
        dir: PathBuf,
        /// The id asked for.
        id: u64,
    },

    /// Checkpoint `checkpoint_id` (and its parents) has no part named `part`.
    #[error("checkpoint {checkpoint_id} in {path} has no part named {part:?}")]
    PartNotFound {
        /// The checkpoint directory searched.
        path: PathBuf,
        /// The checkpoint.
        checkpoint_id: u64,
        /// The part asked for.
        part: String,
    },

    /// A checkpoint with this id is already published: a published
    /// checkpoint is never overwritten.
    #[error("checkpoint {id} already exists at {path}")]
    CheckpointExists {
        /// The existing checkpoint's directory.
        path: PathBuf,
        /// Its id.
        id: u64,
    },

    /// A checkpoint cannot be deleted because delta checkpoints build on it.
    #[error("checkpoint {id} cannot be deleted: delta checkpoints {dependents:?} build on it")]
    CheckpointHasDependents {
        /// The checkpoint asked for.
        id: u64,
        /// The deltas whose parent it is.
        dependents: Vec<u64>,
    },

    /// A name that would become a file name is unsafe: it could leave its
    /// directory or is not in the allowed alphabet.
    #[error("unsafe name {name:?} in {path}: {reason}")]
    UnsafeName {
        /// Where the name came from (a metadata file, or the checkpoint directory
        /// for a name given by the caller).
        path: PathBuf,
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// A checkpoint request builds on a parent (it holds a delta, or carries
    /// over parts it does not mention) but the manager does not know what the
    /// caller's state was built from: it restored nothing through the manager
    /// and wrote nothing, and the request names no parent. Load the state
    /// through the manager (or recover through the `SinkCoordinator`), name the
    /// parent with `CheckpointRequest::with_parent`, or give the whole state.
    /// Also after a background checkpoint failed
    /// ([`BackgroundCheckpointer`](crate::BackgroundCheckpointer)): the
    /// caller's state was built on the checkpoint that failed, so no
    /// checkpoint holds its parent.
    #[error("checkpoint directory {path}: the request builds on a parent, but none is known (nothing was restored or written through this manager, or the background checkpoint the state was built on failed); name it with CheckpointRequest::with_parent, restore through the manager, or give the whole state")]
    DeltaParentUnknown {
        /// The checkpoint directory.
        path: PathBuf,
    },

    /// A checkpoint request builds on `parent` (`None`: the empty state), but
    /// the newest restorable checkpoint is `latest`: applying the request to
    /// `latest` would give a state the caller never had. Nothing was written.
    /// Write the whole state (a full checkpoint) instead.
    #[error("checkpoint directory {path}: the request builds on {}, but the latest restorable checkpoint is {}; nothing was written (write the whole state as a full checkpoint)", parent.map_or("the empty state".to_string(), |p| format!("checkpoint {p}")), latest.map_or("none".to_string(), |l| l.to_string()))]
    DeltaParentMismatch {
        /// The checkpoint directory.
        path: PathBuf,
        /// The parent the request builds on.
        parent: Option<u64>,
        /// The newest restorable checkpoint.
        latest: Option<u64>,
    },

    /// A checkpoint directory holds checkpoint `id` (valid or not), and a new
    /// checkpoint's id must be greater: none is left. Remove or rename `path`.
    #[error("{path} has checkpoint id {id}, so no greater id is left for a new checkpoint; remove or rename it")]
    CheckpointIdExhausted {
        /// The checkpoint (directory) with the largest id.
        path: PathBuf,
        /// Its id.
        id: u64,
    },

    /// The epoch `epoch` (read from the checkpoint at `path`, or set by the
    /// caller) has no successor, so no epoch can follow it.
    #[error("{path}: epoch {epoch} has no successor")]
    EpochExhausted {
        /// The checkpoint that records the epoch (or the checkpoint directory).
        path: PathBuf,
        /// The epoch.
        epoch: u64,
    },

    /// Recovery found a checkpoint (or, with none, the start of the log) whose
    /// write-ahead log position the log no longer holds: its segments were
    /// deleted or lost, the log ends before it, or no record starts there.
    /// Replaying from anywhere else would lose or invent changes.
    #[error("{} needs the write-ahead log {path} from position {position}, which it does not cover: {source}", match checkpoint_id { Some(id) => format!("checkpoint {id}"), None => "recovery without a checkpoint".to_string() })]
    CheckpointNotCovered {
        /// The checkpoint chosen, or `None` when there is none (replay from 0).
        checkpoint_id: Option<u64>,
        /// The log position replay must start at.
        position: u64,
        /// The log directory.
        path: PathBuf,
        /// What the log reported (`PositionNotCovered`, `PositionBeyondEnd`,
        /// `NotARecordBoundary`).
        #[source]
        source: Box<Error>,
    },

    /// Recovery was told to require the log
    /// ([`RecoveryConfig::with_require_wal`](crate::RecoveryConfig::with_require_wal)),
    /// and the log is absent or ends below the checkpoint's position. (By
    /// default recovery returns the checkpoint and the log continues at its
    /// position: docs/RECOVERY.md, "The log below a checkpoint".)
    #[error("checkpoint {checkpoint_id} is at write-ahead log position {position}, but the log {path} {}, and recovery requires the log", match end { Some(end) => format!("ends at position {end}"), None => "does not exist".to_string() })]
    WalBehindCheckpoint {
        /// The checkpoint chosen.
        checkpoint_id: u64,
        /// Its log position.
        position: u64,
        /// The log directory.
        path: PathBuf,
        /// Where the log ends; `None` when it has no segment at all.
        end: Option<u64>,
    },

    /// A [`ReplaySink`](crate::ReplaySink) given to streaming recovery failed.
    #[error("replay sink failed at write-ahead log position {position}: {source}")]
    ReplaySink {
        /// Log position of the Commit (or, without transactions, the entry)
        /// being handed over.
        position: u64,
        /// The sink's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A [`TransactionalSink`](crate::TransactionalSink) failed a step of the
    /// two-phase commit (docs/EXACTLY_ONCE.md).
    #[error("sink {sink:?} failed to {operation} epoch {epoch}: {source}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// The step: "pre-commit", "commit" (during recovery), "abort" or "begin".
        operation: &'static str,
        /// The epoch of the step.
        epoch: u64,
        /// The sink's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// Checkpoint `checkpoint_id` is durable, but a sink failed to commit a
    /// transaction it covers. Nothing is lost: the transaction stays pending,
    /// is recorded again in the next checkpoint and committed after it, or by
    /// recovery. Processing may continue.
    #[error("checkpoint {checkpoint_id} is durable, but sink {sink:?} failed to commit epoch {epoch}; it stays pending and is committed after the next checkpoint or by recovery: {source}")]
    SinkCommitPending {
        /// The durable checkpoint that records the transaction.
        checkpoint_id: u64,
        /// The sink's name.
        sink: String,
        /// The transaction's epoch.
        epoch: u64,
        /// The sink's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// A sink's staged or committed output does not match the transaction
    /// handle that names it (missing, of another length, or another checksum),
    /// or the handle itself is malformed.
    #[error("sink transaction of epoch {epoch} in {path}: {reason}")]
    SinkTransactionInvalid {
        /// The staged or committed file (or the sink's directory).
        path: PathBuf,
        /// The transaction's epoch.
        epoch: u64,
        /// What does not match.
        reason: String,
    },

    /// A sink already published output of an epoch after the checkpoint being
    /// restored (the newer checkpoint that covered it was lost or damaged):
    /// restoring would produce that output a second time, so the sink refuses.
    #[error("{path} holds committed output of epoch {committed_epoch}, after epoch {restored_epoch} of the checkpoint being restored: restoring would duplicate it")]
    SinkAheadOfCheckpoint {
        /// The committed file.
        path: PathBuf,
        /// Its epoch.
        committed_epoch: u64,
        /// The restored checkpoint's epoch.
        restored_epoch: u64,
    },

    /// The background checkpoint thread panicked while writing the checkpoint
    /// with ticket `ticket` (a bug, or a part conversion that panicked). The
    /// checkpoint's outcome is unknown, as after a crash: it is treated as
    /// failed (its sink transactions stay pending, the next delta needs a
    /// known parent).
    #[error(
        "the background checkpoint thread panicked while writing checkpoint {ticket}: {message}"
    )]
    CheckpointPanicked {
        /// The ticket of the checkpoint being written.
        ticket: u64,
        /// The panic's message.
        message: String,
    },

    /// A sink step failed earlier, so the sinks' state is unknown: recover
    /// (create the coordinator again with [`SinkCoordinator::recover`](crate::SinkCoordinator::recover)).
    #[error("the sink coordinator failed earlier ({cause}); recover before checkpointing again")]
    SinkCoordinatorFailed {
        /// The earlier error.
        cause: String,
    },

    /// [`SinkCoordinator::checkpoint`](crate::SinkCoordinator::checkpoint) was
    /// given other sinks than the ones it recovered. Nothing was done (no
    /// pre-commit, no checkpoint, the coordinator is unchanged): call it again
    /// with exactly the sinks given to
    /// [`SinkCoordinator::recover`](crate::SinkCoordinator::recover).
    #[error("the coordinator recovered sinks {registered:?} but this call gave {given:?}: pass exactly the sinks given to SinkCoordinator::recover, every time (nothing was done)")]
    SinkMismatch {
        /// The names of the sinks the coordinator recovered, sorted.
        registered: Vec<String>,
        /// The names of the sinks this call gave, sorted.
        given: Vec<String>,
    },

    /// A sink is already driven by another coordinator that is still alive in
    /// this process; a second one would abort the first one's staged output.
    /// Use the first coordinator, or drop it before recovering a new one.
    #[error("sink {sink:?} is driven by another live coordinator in this process: use that one, or drop it before recovering a new one")]
    SinkInUse {
        /// The sink's name.
        sink: String,
    },

    /// [`SourcePositions::set_offset`](crate::SourcePositions::set_offset)
    /// would move a partition's offset backwards; nothing changed. Use
    /// [`SourcePositions::seek_offset`](crate::SourcePositions::seek_offset)
    /// to rewind on purpose.
    #[error("partition {partition:?} is at offset {current}; setting {requested} would move it backwards (use seek_offset to rewind on purpose)")]
    OffsetRegression {
        /// The partition.
        partition: String,
        /// Its offset (the next record to read).
        current: u64,
        /// The lower offset asked for.
        requested: u64,
    },

    /// A checkpoint was asked for at a log position that does not end a
    /// transaction (a Put, Delete or Watermarks before it has no Commit before
    /// it), or that is too old for the log to tell. Nothing was written. Take
    /// checkpoints at `WriteAheadLog::position()` right after a Commit.
    #[error("log position {position} in {path} does not end a transaction (or is older than the boundaries the log remembers); the last commit ends at {last_commit_end:?}: checkpoint at the log's position right after a Commit")]
    NotACommitBoundary {
        /// The position asked for.
        position: u64,
        /// The log directory.
        path: PathBuf,
        /// The newest position known to end a transaction.
        last_commit_end: Option<u64>,
    },

    /// A log record whose header verifies is longer than the maximum record
    /// size this reader was opened with: the log was written with a larger
    /// limit. A configuration mismatch, not damage: open it with a limit of at
    /// least `len` (`WalOptions::with_max_record_size`, the CLI's
    /// `--max-record-size`, `RecoveryConfig::with_max_record_size`).
    #[error("record in {path} at offset {offset} (log position {position}) is {len} bytes, above this reader's maximum record size {max}: the log was written with a larger limit; open it with a maximum record size of at least {len}")]
    RecordExceedsMaxSize {
        /// The segment.
        path: PathBuf,
        /// File offset of the record.
        offset: u64,
        /// Its log position.
        position: u64,
        /// Its payload length.
        len: u32,
        /// The reader's limit.
        max: u32,
    },

    /// A configuration setting holds a value that cannot be used; nothing was
    /// opened or changed. Fix the setting.
    #[error("invalid configuration: {setting}: {reason}")]
    InvalidConfig {
        /// The setting, as its builder method names it (`segment_size`,
        /// `max_record_size`, `sync_policy`, ...).
        setting: &'static str,
        /// Why the value is refused.
        reason: String,
    },

    /// A call was given a value it cannot use, or was made when it cannot be
    /// (a sink written before it was recovered, changes asked for that were
    /// not collected). Nothing was changed; fix the call.
    #[error("invalid argument: {0}")]
    InvalidArgument(ArgumentError),

    /// The data needs a cargo feature this build of highwater was compiled
    /// without (for example an Arrow part of a checkpoint without the `arrow`
    /// feature). Rebuild with the feature; the data is not damaged.
    #[error("{what} needs highwater's `{feature}` feature, which this build lacks")]
    FeatureDisabled {
        /// The cargo feature.
        feature: &'static str,
        /// What needed it ("Arrow part \"orders\" of checkpoint 7", ...).
        what: String,
    },

    /// A blob-store (object storage) call failed; the
    /// [`BlobError`](crate::blob::BlobError) names the operation and the key,
    /// and says whether the outcome is indeterminate.
    #[error(transparent)]
    Blob(#[from] crate::blob::BlobError),

    /// Another writer took over the remote checkpoint location: this
    /// writer's commit was refused and it must stop (open a new manager to
    /// continue; it restores what the new writer committed). Nothing this
    /// writer had not already committed is visible. docs/OBJECT_STORAGE.md,
    /// "Fencing".
    #[error("writer generation {generation} is fenced at {key} (slot {slot}): {reason}")]
    Fenced {
        /// The object that showed it: the taken commit record, or the floor.
        key: String,
        /// The slot this writer tried to commit into.
        slot: u64,
        /// This writer's generation.
        generation: u64,
        /// The generation of the writer whose record holds the slot, when
        /// it could be read.
        winner_generation: Option<u64>,
        /// What happened.
        reason: String,
    },

    /// The key a sealed file names is not provided: the file cannot be
    /// read until the `KeyProvider` (`highwater::crypto`, the `encryption`
    /// feature) has it (a retired key dropped too early, a wrong key file).
    #[error("{path}: key {key_id} is not provided")]
    KeyUnavailable {
        /// The file.
        path: PathBuf,
        /// The key id its header names.
        key_id: u32,
    },

    /// The key provided under the id a sealed file names is not the key it
    /// was sealed with (its check value differs): a wrong key file, or a
    /// key id reused for another key. The file is not damaged; nothing was
    /// decrypted. Give the right key; never fall back past it as damage.
    #[error("{path}: the key provided as key {key_id} is not the one the file was sealed with")]
    KeyMismatch {
        /// The file.
        path: PathBuf,
        /// The key id its header names.
        key_id: u32,
    },

    /// A sealed block did not authenticate: a wrong key, a changed byte, a
    /// block moved from another file or position, or a file cut short.
    /// Nothing of the block is used.
    #[error("{path}: the block at offset {offset} does not authenticate under key {key_id}")]
    AuthenticationFailed {
        /// The file.
        path: PathBuf,
        /// The block's offset in the file.
        offset: u64,
        /// The key id the file's header names.
        key_id: u32,
    },

    /// A cluster epoch was aborted: a worker's report was missing at the
    /// deadline, damaged, or did not fit the run's plan. Nothing of the
    /// epoch is published; the coordinator refuses every later commit, and
    /// the run restarts from the newest committed epoch
    /// (docs/DISTRIBUTED.md, "The protocol", step 7).
    #[error("epoch {epoch} of run {generation} aborted (workers {missing:?} missing): {reason}")]
    EpochAborted {
        /// The epoch.
        epoch: u64,
        /// The coordinator's generation.
        generation: u64,
        /// The workers whose report was missing or refused.
        missing: Vec<u32>,
        /// What happened.
        reason: String,
    },

    /// The background download of a
    /// [`RemoteStateView`](crate::checkpoint::RemoteStateView) failed; the
    /// view stays remote and keeps answering look-ups.
    #[error("the background download of checkpoint {checkpoint_id} failed: {source}")]
    RemoteViewDownload {
        /// The checkpoint the view serves.
        checkpoint_id: u64,
        /// Why (shared with the view's report).
        source: Arc<Error>,
    },

    /// The background download thread of a remote view panicked (a bug, or
    /// a [`Storage`](crate::storage::Storage) that panicked); what it left
    /// in the cache directory is verified by the next open before use.
    #[error("the background download thread panicked: {message}")]
    RemoteViewPanicked {
        /// The panic's message.
        message: String,
    },
}

#[cfg(test)]
mod tests;

/// The setting an [`Error::InvalidConfig`] names (for the configs' tests).
#[cfg(test)]
pub(crate) fn rejected_setting(result: Result<()>) -> &'static str {
    match result {
        Err(Error::InvalidConfig { setting, .. }) => setting,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}
