//! What tools, format tests and the `highwater` command-line tool need, and an
//! everyday job does not: the on-disk format's constants and file names, the
//! log's damage classification and whole-log verification, and retention
//! planning as a pure function.
//!
//! Nothing here is needed to write, checkpoint or recover a job; the entry
//! points for that are listed in the crate docs. Everything here only reads
//! or computes: no item of this module modifies a log or a checkpoint
//! directory.
//!
//! The byte layouts these constants belong to are specified in
//! `docs/FORMAT.md`; a change to any of them is a format change.

/// The log's format: segment header, segment and floor file names, the
/// floor and poison-mark files (`docs/FORMAT.md` §1).
pub use crate::wal::floor::{
    decode_floor, encode_floor, read_floor, FLOOR_FILE_NAME, FLOOR_LEN, FLOOR_MAGIC, FLOOR_VERSION,
};
pub use crate::wal::format::{HeaderProblem, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION};
pub use crate::wal::poison_mark::POISON_MARK_FILE_NAME;
pub use crate::wal::segment::{parse_segment_name, segment_file_name};

/// Reading a whole log for damage, without a writer: every segment, every
/// problem, classified the way recovery classifies it.
pub use crate::wal::verify::{verify_log, LogVerification, SegmentVerification};

/// A checkpoint directory's names (`docs/FORMAT.md` §3).
pub use crate::checkpoint::metadata::{checkpoint_dir_name, METADATA_FILE};
pub use crate::checkpoint::publish::LOCK_FILE;

/// Retention as a pure plan over what a directory holds (what
/// [`IncrementalCheckpointManager::enforce_retention`](crate::IncrementalCheckpointManager::enforce_retention)
/// carries out).
pub use crate::checkpoint::retention::{plan_retention, RetentionInput, RetentionPlan};

/// Verifying every checkpoint of a directory at once (what
/// [`CheckpointStore::verify_all`](crate::CheckpointStore::verify_all) returns).
pub use crate::checkpoint::audit::CheckpointVerification;

/// A remote checkpoint location read without writing to it: its commit
/// sequence (claims and checkpoint records, `docs/FORMAT.md` §6) and a local
/// mirror of its committed checkpoints.
pub use crate::checkpoint::remote::{
    mirror_committed, read_commit_sequence, record::decode as decode_commit_record, CommitRecord,
    CommitSequence, CommittedCheckpoint, ListedCommit, RecordBody, RemoteFile, SlotRecord,
    MAX_RECORD_LEN,
};
