//! The write-ahead log: a directory of checksummed segment files holding
//! [`WalEntry`] records (layout: docs/FORMAT.md §1).
//!
//! Invariants:
//! - Positions are byte offsets in the log's record stream: monotonic, never
//!   reused, unchanged when old segments are dropped.
//! - A record is acknowledged as durable only after the fsync covering it
//!   returned; a failed write or fsync poisons the writer until it is reopened.
//! - A record header's checksum covers the segment identity and the record's own
//!   position, and is verified before its length is used.
//! - Only the newest segment can hold unsynced bytes, so only its tail can be torn;
//!   damage anywhere else is corruption and is never silently cut (unless
//!   [`WalRecoveryMode::PointInTime`] is chosen).
//! - Readers never modify files; only [`WriteAheadLog::repair`] (or the first append
//!   after opening a damaged log) cuts, and it reports what it cut.

mod boundary;
mod cut;
mod damage;
mod end;
mod entry;
pub(crate) mod floor;
pub(crate) mod format;
mod log;
mod open;
mod options;
mod pipe;
pub(crate) mod poison_mark;
mod position_file;
mod read_result;
mod reader;
mod release;
mod repair;
pub(crate) mod scan;
mod scan_recheck;
pub(crate) mod seal;
pub(crate) mod segment;
mod sync;
pub(crate) mod verify;

pub use entry::{DecodeError, WalEntry, WalEntryRef};
pub(crate) use format::MAX_POSITION;
pub use log::{WalStats, WriteAheadLog};
pub(crate) use open::planned_repair;
pub(crate) use options::check_max_record_size;
#[cfg(feature = "encryption")]
pub use options::MAX_SEALED_SEGMENT_SIZE;
pub use options::{
    SyncPolicy, WalOptions, WalRecoveryMode, DEFAULT_MAX_RECORD_SIZE, DEFAULT_SEGMENT_SIZE,
    DEFAULT_SYNC_INTERVAL, DEFAULT_WRITE_BUFFER_SIZE, MAX_RECORD_SIZE_LIMIT, MAX_WRITE_BUFFER_SIZE,
    MIN_SEGMENT_SIZE,
};
pub(crate) use poison_mark::read as poison_mark_position;
pub use reader::{WalReadRef, WalReadResult, WalReader};
pub use release::WalRelease;
pub(crate) use release::{plan as plan_release, probe as probe_release, release, Coverage};
pub use repair::RepairReport;
pub use scan::{Damage, DamageClass, Problem};

use crate::error::IoContext;
use crate::error::Result;
use crate::storage::{default_storage, Storage};
use std::path::Path;

/// Bytes of the log in directory `wal_path` on disk: the sum of its segment
/// files, the newest one counted up to the end of its records (zeros a durable
/// writer preallocated after them are not counted; such a segment is read to
/// find its end); 0 when the log does not exist.
///
/// # Errors
/// I/O errors other than "not found".
pub fn wal_size(wal_path: impl AsRef<Path>) -> Result<u64> {
    wal_size_with(default_storage().as_ref(), wal_path.as_ref())
}

/// [`wal_size`] through a given storage.
///
/// # Errors
/// I/O errors other than "not found".
pub fn wal_size_with(storage: &dyn Storage, wal_path: &Path) -> Result<u64> {
    segment::log_size(storage, wal_path)
}

/// Makes the newest segment of the log in `dir` durable without changing a
/// byte: records a crashed process wrote but did not sync may still be only in
/// the page cache, and must not be returned by recovery before they are durable.
///
/// # Errors
/// I/O errors.
pub(crate) fn sync_newest_segment(storage: &dyn Storage, dir: &Path) -> Result<()> {
    if let Some(newest) = segment::list_segments(storage, dir)?.last() {
        let file = storage
            .open_file(&newest.path, crate::storage::OpenMode::Read)
            .ctx("open", &newest.path)?;
        file.sync_data().ctx("sync", &newest.path)?;
    }
    Ok(())
}

/// The position of the oldest record the log in `wal_path` still holds: the
/// start of its oldest segment, or its floor when that is later (0 when it
/// has none or does not exist). A
/// reader opened there reads the whole log.
///
/// # Errors
/// I/O errors listing the directory.
pub fn oldest_position_with(storage: &dyn Storage, wal_path: &Path) -> Result<u64> {
    Ok(floor::live_segments(storage, wal_path)?.first_position())
}
