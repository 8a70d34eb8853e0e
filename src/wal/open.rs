//! Opening a log: taking its lock, finding where it ends (and the damage a
//! recovery mode tolerates), making what a crashed writer left durable before
//! vouching for it, and acting on a poison mark.
//!
//! Invariants:
//! - Opening reads and fsyncs, but changes no byte: a pending cut is made by
//!   `repair` or the first append (a poison mark's cut back is made here,
//!   before anything is read or appended).
//! - The durable position the opened log starts with was fsynced by this
//!   open (the newest segment, or the damaged one).

use super::cut::CutPoint;
use super::end::{cut_for, find_end, LogEnd};
use super::floor::{live_segments, LogFiles};
use super::log::{Active, Shared, WriteAheadLog, Writer};
use super::options::{SyncPolicy, WalOptions, WalRecoveryMode};
use super::repair::RepairReport;
use super::segment::{create_segment, SegmentMeta, LOCK_FILE_NAME};
use super::sync::Durability;
use crate::error::{Error, IoContext, Result};
use crate::storage::{OpenMode, Storage};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex};

impl WriteAheadLog {
    /// Opens (or creates) the log in directory `path`.
    ///
    /// Opening only reads: it takes the directory's lock, checks every segment
    /// header and scans the newest segment (every segment in `PointInTime` mode) to
    /// find where the log ends, from the log's floor on (records below it were
    /// released by recovery and are never read; an empty log starts at it). Damage the recovery mode tolerates is remembered
    /// and cut by [`repair`](Self::repair) or the first append. The first
    /// append goes to the newest segment only when it is a plaintext
    /// segment and `options` has no encryption; otherwise it starts a new
    /// segment (docs/FORMAT.md §1, "Sealed segments").
    ///
    /// # Errors
    /// [`Error::Locked`] when another writer has the directory,
    /// [`Error::UnsupportedVersion`] for a segment of another format version, a
    /// corruption error ([`Error::WalCorrupted`], [`Error::WalChecksumMismatch`])
    /// for damage the recovery mode does not tolerate, [`Error::InvalidConfig`]
    /// for options out of range ([`WalOptions::validate`]), and I/O errors.
    pub fn open(path: impl AsRef<Path>, options: WalOptions) -> Result<Self> {
        options.validate()?;
        let dir = path.as_ref().to_path_buf();
        let storage = options.storage.clone();
        crate::storage::create_dir_all_durable(storage.as_ref(), &dir)?;
        let lock_path = dir.join(LOCK_FILE_NAME);
        let lock = crate::storage::lock_exclusive(storage.as_ref(), &lock_path)?;
        let mut files = live_segments(storage.as_ref(), &dir)?;
        let mut created = 0;
        if files.segments.is_empty() {
            let start = files.floor;
            // Plaintext and empty: the first append moves on to a segment
            // of this writer's own (sealed when encrypting).
            let keys = super::seal::Keys::default();
            let path = create_segment(storage.as_ref(), &dir, start, &keys)?.path;
            files.segments.push(SegmentMeta { start, path });
            created = 1;
        }
        // A poison mark (poison_mark.rs) says everything after its position
        // is to be cut: damage there, torn or not, in any segment, is
        // accounted for, whatever the mode. So with a mark the end is found
        // as PointInTime finds it (the cut then goes back to the mark);
        // damage below the mark is decided by the log's own mode, as always.
        let mark = super::poison_mark::read(storage.as_ref(), &dir)?;
        let writer = match mark {
            Some(position) if options.recovery_mode != WalRecoveryMode::PointInTime => {
                let lenient = options
                    .clone()
                    .with_recovery_mode(WalRecoveryMode::PointInTime);
                let writer = open_writer(storage.as_ref(), files.clone(), &lenient)?;
                match &writer.pending {
                    Some(cut) if cut.damage.position < position => {
                        open_writer(storage.as_ref(), files, &options)?
                    }
                    _ => writer,
                }
            }
            _ => open_writer(storage.as_ref(), files, &options)?,
        };
        // A previous process may have crashed with written but unsynced records
        // (still in the page cache): make them durable before calling them so.
        // With damage pending, the log ends at the damage, in the damaged
        // segment: that one is synced (its bytes are not changed).
        match (&writer.active, &writer.pending) {
            (Some(active), _) => active.file.sync_data().ctx("sync", &active.path)?,
            (None, Some(cut)) => {
                let path = &cut.damage.path;
                storage
                    .open_file(path, OpenMode::ReadWrite)
                    .and_then(|file| file.sync_data())
                    .ctx("sync", path)?;
            }
            (None, None) => {}
        }
        storage.sync_dir(&dir).ctx("sync directory", &dir)?;
        let durable = writer.next_position;
        let shared = Arc::new(Shared {
            dir,
            storage,
            segment_size: options.segment_size,
            keys: options.keys(),
            max_record_size: options.max_record_size,
            write_buffer_size: options.write_buffer_size,
            mode: options.recovery_mode,
            sync_on_write: AtomicBool::new(options.sync_policy == SyncPolicy::EveryWrite),
            writer: Mutex::new(writer),
            durability: Mutex::new(Durability::new(durable)),
            poisoned: AtomicBool::new(false),
            poison: Mutex::new(None),
            durable_hint: AtomicU64::new(durable),
            sync_lock: Mutex::new(()),
            shutdown: Mutex::new(false),
            shutdown_cv: Condvar::new(),
            appends: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            segments_created: AtomicU64::new(created),
            _lock: lock,
        });
        // A writer poisoned in this boot may have left records the device
        // dropped but the page cache still serves: cut back to what it knew
        // durable before anyone reads or appends (poison_mark.rs).
        if let Some(position) = mark {
            shared.cut_back_after_poisoning(position)?;
        }
        let flusher = match options.sync_policy {
            SyncPolicy::Interval(interval) => {
                Some(super::sync::spawn_flusher(shared.clone(), interval)?)
            }
            _ => None,
        };
        tracing::debug!(dir = %shared.dir.display(), position = durable, "opened write-ahead log");
        Ok(WriteAheadLog { shared, flusher })
    }
}

/// Builds the writer state of an opened log: where it ends, and the cut the
/// recovery mode allows when it is damaged.
fn open_writer(storage: &dyn Storage, files: LogFiles, options: &WalOptions) -> Result<Writer> {
    let (file_end, next_position, active, pending, tail, seen) = match find_end(
        storage, &files, options,
    )? {
        LogEnd::Clean {
            file_end,
            next_position,
            segment_id,
            records_offset,
            tail,
            seen,
        } => {
            let path = files.segments[files.segments.len() - 1].path.clone();
            let file = storage
                .open_file(&path, OpenMode::ReadWrite)
                .ctx("open", &path)?;
            // The scan found only zeros after `file_end` (a preallocated or
            // zero-filled tail): records are written over them.
            let allocated = file.len().ctx("stat", &path)?.max(file_end);
            // Another process's segment: appended to only without keys and
            // when it is plaintext (`Active::appendable`).
            let active = Active {
                file,
                path,
                segment_id,
                allocated,
                records_offset,
                sealer: None,
            };
            (file_end, next_position, Some(active), None, tail, seen)
        }
        LogEnd::Damaged {
            index,
            damage,
            segment_id,
            tail,
            seen,
        } => {
            let cut = cut_for(options, &files, index, damage, segment_id)?;
            tracing::warn!(segment = %cut.damage.path.display(), offset = cut.damage.offset, position = cut.damage.position, problem = %cut.damage.problem, "write-ahead log needs a repair before appending");
            (0, cut.damage.position, None, Some(cut), tail, seen)
        }
    };
    // Whether a transaction is open at the end, and the recent commit
    // boundaries (from the scan above; older segments only when the newest
    // one cannot tell: boundary.rs).
    let (tail, commit_ends) = super::boundary::resolve(
        storage,
        &files,
        seen,
        tail,
        next_position,
        options.max_record_size,
    )?;
    Ok(Writer {
        floor: files.floor,
        segments: files.segments,
        active,
        file_end,
        buf: Vec::with_capacity(options.write_buffer_size),
        next_position,
        pending,
        tail,
        commit_ends,
    })
}

/// What [`WriteAheadLog::plan_repair`] reports: the cut `repair` would make,
/// with the bytes it would remove, computed without writing; and the typed
/// error describing the damage it would cut, if any.
///
/// `floor` is read as the log's floor when it is above the one on disk (a dry
/// run of recovery that would release the log below it first).
pub(crate) fn planned_repair(
    storage: &dyn Storage,
    dir: &Path,
    options: &WalOptions,
    floor: u64,
) -> Result<(RepairReport, Option<Error>)> {
    options.validate()?;
    let mode = options.recovery_mode;
    let files = live_segments(storage, dir)?.with_floor(floor);
    if files.segments.is_empty() {
        return Ok((RepairReport::nothing(mode, files.floor), None));
    }
    match find_end(storage, &files, options)? {
        LogEnd::Clean { next_position, .. } => {
            Ok((RepairReport::nothing(mode, next_position), None))
        }
        LogEnd::Damaged {
            index,
            damage,
            segment_id,
            ..
        } => {
            let cut = cut_for(options, &files, index, damage, segment_id)?;
            let bytes_cut = CutPoint::repairing(&cut).bytes_removed(storage)?;
            let damage = cut.damage.to_error();
            Ok((RepairReport::of_cut(mode, &cut, bytes_cut), Some(damage)))
        }
    }
}
