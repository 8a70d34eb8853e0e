//! [`WriteAheadLog`]: the writer side of the log.
//!
//! Invariants:
//! - Only the newest segment is ever written; a segment is fsynced before the next
//!   one is created, and a new segment's header and directory entry are durable
//!   before a record is written to it. So every unsynced byte of the log is at the
//!   end of the newest segment (which is what makes torn-tail detection sound).
//! - `next_position` is the position of the next record; records are written at
//!   `file_end + buf.len()` of the active segment, contiguous, in order.
//! - Nothing is written behind damage: a cut found by `open` is made (by `repair`
//!   or the first `append`) before any record is written.
//! - After a failed write or sync the log is poisoned: every later call fails,
//!   nothing is retried, and closing does not sync.
//! - Lock order: `writer` before `durability`, never the reverse.

use super::boundary::{CommitEnds, Tail};
use super::end::{cut_for, find_end, LogEnd};
use super::entry::WalEntry;
use super::entry::KIND_SYNC_MARKER;
use super::floor::{live_segments, LogFiles};
use super::format::{
    record_size, sync_distance, RecordHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use super::options::{SyncPolicy, WalOptions, WalRecoveryMode};
use super::reader::WalReader;
use super::repair::{PendingCut, RepairReport};
use super::scan::{SegmentScanner, Step};
use super::segment::{create_segment, SegmentMeta, LOCK_FILE_NAME};
use super::sync::Durability;
use crate::error::{Error, IoContext, Result};
use crate::storage::{OpenMode, Storage, StorageFile, StorageLock};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// A segmented, checksummed write-ahead log with group commit. Share it between
/// threads behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct WriteAheadLog {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

/// Counters describing what the log has done since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WalStats {
    /// Records appended.
    pub appends: u64,
    /// Data fsyncs issued for commits (group commit makes this lower than the
    /// number of durable appends).
    pub syncs: u64,
    /// Segments created.
    pub segments_created: u64,
}

/// The segment being written.
#[derive(Debug)]
pub(super) struct Active {
    pub file: Arc<dyn StorageFile>,
    pub path: PathBuf,
    pub segment_id: u64,
}

#[derive(Debug)]
pub(super) struct Writer {
    /// The log's floor: records below it are released (never read).
    pub floor: u64,
    /// Every segment on disk not wholly below the floor, oldest first; the
    /// last one is the active one.
    pub segments: Vec<SegmentMeta>,
    /// `None` only while a cut is pending.
    pub active: Option<Active>,
    /// File offset up to which the active segment has been written.
    pub file_end: u64,
    /// Encoded records not yet written, to be written at `file_end`.
    pub buf: Vec<u8>,
    pub next_position: u64,
    pub pending: Option<PendingCut>,
    /// What the log's last records say about its end: the last record's kind
    /// (a sync marker is written at close unless the log already ends with
    /// one) and whether a transaction is open there.
    pub tail: Tail,
    /// Recent positions known to end a transaction (`boundary.rs`).
    pub commit_ends: CommitEnds,
}

/// Where [`Shared::cut_locked`] cuts the log.
struct CutPoint<'a> {
    /// The segment cut (it stays, as the active segment).
    path: &'a Path,
    /// File offset of the cut in that segment.
    offset: u64,
    /// Log position of the cut: the new end of the log.
    position: u64,
    /// Start position of the segment.
    segment_start: u64,
    /// Its identity; `None` when its header is damaged (it is rewritten empty).
    segment_id: Option<u64>,
    /// Every segment after it, all removed.
    later_segments: &'a [PathBuf],
}

impl<'a> CutPoint<'a> {
    /// The cut that repairs `pending`.
    fn repairing(pending: &'a PendingCut) -> Self {
        CutPoint {
            path: &pending.damage.path,
            offset: pending.damage.offset,
            position: pending.damage.position,
            segment_start: pending.segment_start,
            segment_id: pending.segment_id,
            later_segments: &pending.later_segments,
        }
    }

    /// Whether the segment is truncated at the cut (its header stays); if not,
    /// it is rewritten empty.
    fn keeps_header(&self) -> bool {
        self.segment_id.is_some() && self.offset >= SEGMENT_HEADER_LEN
    }

    /// The bytes making the cut removes: the later segments, and the segment's
    /// bytes from the cut on (all of them when it is rewritten).
    fn bytes_removed(&self, storage: &dyn Storage) -> Result<u64> {
        let len = storage.file_size(self.path).ctx("stat", self.path)?;
        let mut bytes = if self.keeps_header() {
            len.saturating_sub(self.offset)
        } else {
            len
        };
        for later in self.later_segments {
            bytes += storage.file_size(later).ctx("stat", later)?;
        }
        Ok(bytes)
    }
}

#[derive(Debug)]
pub(super) struct Shared {
    pub dir: PathBuf,
    pub storage: Arc<dyn Storage>,
    pub segment_size: u64,
    pub max_record_size: u32,
    pub write_buffer_size: usize,
    pub mode: WalRecoveryMode,
    pub sync_on_write: AtomicBool,
    pub writer: Mutex<Writer>,
    pub durability: Mutex<Durability>,
    pub poisoned: AtomicBool,
    pub poison: Mutex<Option<(&'static str, String)>>,
    /// Held across every fsync of a segment ([`Shared::fsync`]), so that two
    /// fsyncs of one file never overlap (Linux reports a write-back error to
    /// only one of them); see `sync.rs` for the rule.
    pub sync_lock: Mutex<()>,
    /// Mirror of `durability.durable`, read without the lock when encoding a
    /// record's sync distance.
    pub durable_hint: AtomicU64,
    pub shutdown: Mutex<bool>,
    pub shutdown_cv: Condvar,
    pub appends: AtomicU64,
    pub syncs: AtomicU64,
    pub segments_created: AtomicU64,
    pub _lock: Box<dyn StorageLock>,
}

/// Locks a mutex, ignoring poisoning by a panicked thread (the protected state is
/// kept consistent by the log's own poisoning on I/O failure).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WriteAheadLog {
    /// Opens (or creates) the log in directory `path`, syncing every
    /// `sync_interval` in the background (a zero interval syncs every write).
    ///
    /// # Errors
    /// As [`WriteAheadLog::open`].
    pub fn new(path: impl AsRef<Path>, sync_interval: Duration) -> Result<Self> {
        let policy = if sync_interval.is_zero() {
            SyncPolicy::EveryWrite
        } else {
            SyncPolicy::Interval(sync_interval)
        };
        Self::open(path, WalOptions::default().with_sync_policy(policy))
    }

    /// Opens (or creates) the log in directory `path`.
    ///
    /// Opening only reads: it takes the directory's lock, checks every segment
    /// header and scans the newest segment (every segment in `PointInTime` mode) to
    /// find where the log ends, from the log's floor on (records below it were
    /// released by recovery and are never read; an empty log starts at it). Damage the recovery mode tolerates is remembered
    /// and cut by [`repair`](Self::repair) or the first append.
    ///
    /// # Errors
    /// [`Error::Locked`] when another writer has the directory,
    /// [`Error::UnsupportedVersion`] for a segment of another format version, a
    /// corruption error ([`Error::WalCorrupted`], [`Error::WalChecksumMismatch`])
    /// for damage the recovery mode does not tolerate, [`Error::InvalidArgument`]
    /// for unusable options, and I/O errors.
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
            let (_, _, path) = create_segment(storage.as_ref(), &dir, start)?;
            files.segments.push(SegmentMeta { start, path });
            created = 1;
        }
        // A poison mark (poison_mark.rs) says everything after its position
        // is to be cut: damage there, torn or not, is accounted for. Under
        // AbsoluteConsistency the end is found as for a torn tail then, and
        // damage below the mark is still refused.
        let mark = super::poison_mark::read(storage.as_ref(), &dir)?;
        let marked_strict =
            mark.is_some() && options.recovery_mode == WalRecoveryMode::AbsoluteConsistency;
        let scan_options = if marked_strict {
            options
                .clone()
                .with_recovery_mode(WalRecoveryMode::TolerateTornTail)
        } else {
            options.clone()
        };
        let writer = open_writer(storage.as_ref(), files, &scan_options)?;
        if let (Some(position), Some(cut), true) = (mark, &writer.pending, marked_strict) {
            if cut.damage.position < position {
                return Err(cut.damage.to_error());
            }
        }
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

    /// The log directory.
    pub fn path(&self) -> &Path {
        &self.shared.dir
    }

    /// Makes every later `append` wait until its record is durable (`true`), or
    /// return once it is buffered (`false`). With `false`, a log opened with
    /// [`SyncPolicy::Interval`] is still synced by its background flusher; one opened
    /// with [`SyncPolicy::EveryWrite`] or [`SyncPolicy::Manual`] has no flusher, so
    /// data becomes durable at [`sync`](Self::sync), at segment rotation or at close.
    pub fn set_sync_on_write(&self, sync_on_write: bool) {
        self.shared
            .sync_on_write
            .store(sync_on_write, Ordering::SeqCst);
    }

    /// Appends `entry` and returns its position. Under [`SyncPolicy::EveryWrite`]
    /// (or after `set_sync_on_write(true)`) it returns only once the entry is
    /// durable, sharing the fsync with concurrent appenders.
    ///
    /// # Errors
    /// [`Error::RecordTooLarge`], [`Error::Poisoned`], and I/O errors (which poison
    /// the log).
    pub fn append(&self, entry: &WalEntry) -> Result<u64> {
        self.append_batch(std::slice::from_ref(entry))
            .map(|r| r.start)
    }

    /// Appends `entries` contiguously (no other thread's record lands between them)
    /// and returns the range of positions they occupy. Durability as for
    /// [`append`](Self::append).
    ///
    /// # Errors
    /// As [`append`](Self::append); a too-large entry fails the whole batch before
    /// anything is written.
    pub fn append_batch(&self, entries: &[WalEntry]) -> Result<Range<u64>> {
        let shared = &self.shared;
        shared.check_poison()?;
        for e in entries {
            let size = e.encoded_len();
            if size > shared.max_record_size as u64 {
                return Err(Error::RecordTooLarge {
                    size,
                    max: shared.max_record_size as u64,
                });
            }
        }
        let range = {
            let mut w = lock(&shared.writer);
            shared.check_poison()?;
            if w.pending.is_some() {
                shared.repair_locked(&mut w)?;
            }
            let start = w.next_position;
            for e in entries {
                shared.append_locked(&mut w, e)?;
            }
            start..w.next_position
        };
        shared
            .appends
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        ::metrics::counter!(crate::metrics::WAL_APPENDS).increment(entries.len() as u64);
        if shared.sync_on_write.load(Ordering::SeqCst) {
            shared.sync_to(range.end)?;
        }
        Ok(range)
    }

    /// Makes everything appended so far durable (group commit: concurrent callers
    /// share one fsync).
    ///
    /// # Errors
    /// [`Error::Poisoned`] and I/O errors (which poison the log).
    pub fn sync(&self) -> Result<()> {
        let target = lock(&self.shared.writer).next_position;
        self.shared.sync_to(target)
    }

    /// Makes the log durable through `position` and checks that a checkpoint
    /// may be taken there: it is not beyond the log's end, not below what the
    /// log still holds, and it ends a transaction (the last Put, Delete or
    /// Watermarks entry before it is followed by a Commit before it; `0` and
    /// the log's floor qualify too). The check uses what this writer appended
    /// and found at open (the newest [`KEPT`](super::boundary::KEPT) commit
    /// boundaries); it reads nothing. A checkpoint request given the log
    /// ([`CheckpointRequest::with_wal`](crate::CheckpointRequest::with_wal))
    /// calls it before anything is written.
    ///
    /// # Errors
    /// [`Error::PositionBeyondEnd`], [`Error::PositionNotCovered`],
    /// [`Error::NotACommitBoundary`] (also for a boundary older than the ones
    /// remembered: take checkpoints at `position()` after a Commit),
    /// [`Error::Poisoned`] and I/O errors of the sync.
    pub fn sync_to_commit_boundary(&self, position: u64) -> Result<()> {
        let shared = &self.shared;
        shared.check_poison()?;
        {
            let w = lock(&shared.writer);
            let end = w.next_position;
            if position > end {
                return Err(Error::PositionBeyondEnd {
                    position,
                    path: shared.dir.clone(),
                    end,
                });
            }
            let first = w.segments[0].start.max(w.floor);
            if position < first {
                return Err(Error::PositionNotCovered {
                    position,
                    path: shared.dir.clone(),
                    first_available: first,
                });
            }
            let boundary = position == 0 || position == w.floor || w.commit_ends.contains(position);
            if !boundary {
                return Err(Error::NotACommitBoundary {
                    position,
                    path: shared.dir.clone(),
                    last_commit_end: w.commit_ends.last(),
                });
            }
        }
        shared.sync_to(position)
    }

    /// The position the next entry will get (the end of the log).
    pub fn position(&self) -> u64 {
        lock(&self.shared.writer).next_position
    }

    /// Everything before this position is durable.
    pub fn durable_position(&self) -> u64 {
        lock(&self.shared.durability).durable
    }

    /// The oldest position still readable: the start of the oldest segment, or
    /// the log's floor when that is later (records below it are released).
    pub fn first_position(&self) -> u64 {
        let w = lock(&self.shared.writer);
        w.segments[0].start.max(w.floor)
    }

    /// Counters since the log was opened.
    pub fn stats(&self) -> WalStats {
        WalStats {
            appends: self.shared.appends.load(Ordering::Relaxed),
            syncs: self.shared.syncs.load(Ordering::Relaxed),
            segments_created: self.shared.segments_created.load(Ordering::Relaxed),
        }
    }

    /// The log position a pending repair would cut the log at, and the typed
    /// error describing the damage, if `open` found damage to cut.
    pub(crate) fn pending_cut(&self) -> Option<(u64, Error)> {
        lock(&self.shared.writer)
            .pending
            .as_ref()
            .map(|p| (p.damage.position, p.damage.to_error()))
    }

    /// The damage `open` found and a repair would cut, if any.
    pub fn pending_repair(&self) -> Option<String> {
        lock(&self.shared.writer)
            .pending
            .as_ref()
            .map(|p| p.damage.to_error().to_string())
    }

    /// Cuts the damage that `open` found, durably: removes later segments (in
    /// `PointInTime` mode), truncates the damaged segment at the damage (or rewrites
    /// its header) and fsyncs. Returns what was cut; a no-op report when the log
    /// was clean.
    ///
    /// # Errors
    /// [`Error::Poisoned`] and I/O errors (which poison the log).
    pub fn repair(&self) -> Result<RepairReport> {
        let shared = &self.shared;
        shared.check_poison()?;
        let mut w = lock(&shared.writer);
        shared.repair_locked(&mut w)
    }

    /// What [`repair`](Self::repair) would cut in the log in directory `path`
    /// if it were opened with `options` now, computed by reading only: no lock
    /// is taken and nothing is created, cut or synced. The report's `bytes_cut`
    /// is what the repair would remove; a log that needs no repair (or does not
    /// exist) gives a report that cut nothing. A writer appending at the same
    /// time can make the answer stale.
    ///
    /// # Errors
    /// The corruption error `open` would fail with for damage the recovery mode
    /// does not tolerate, [`Error::UnsupportedVersion`], [`Error::InvalidArgument`]
    /// for unusable options, and I/O errors.
    pub fn plan_repair(path: impl AsRef<Path>, options: &WalOptions) -> Result<RepairReport> {
        Ok(planned_repair(options.storage.as_ref(), path.as_ref(), options, 0)?.0)
    }

    /// Removes every record at or after `position`, durably, so that the log ends
    /// there and the next record gets `position`. Later segments are removed
    /// (newest first), the segment holding `position` is truncated and fsynced.
    /// Returns the bytes removed (0 when `position` is already the end).
    ///
    /// This discards records that may have been acknowledged: use it for
    /// records no result depends on, like the uncommitted tail recovery cuts.
    /// Call it while no other thread is appending.
    ///
    /// # Errors
    /// [`Error::PositionBeyondEnd`], [`Error::PositionNotCovered`],
    /// [`Error::NotARecordBoundary`], [`Error::InvalidArgument`] while another
    /// thread waits for an append to become durable, corruption errors for
    /// damage before `position` in its segment, [`Error::Poisoned`], and I/O
    /// errors (a failed truncate or fsync poisons the log).
    pub fn truncate_from(&self, position: u64) -> Result<u64> {
        let shared = &self.shared;
        shared.check_poison()?;
        let mut w = lock(&shared.writer);
        shared.truncate_locked(&mut w, position, true)
    }

    /// A reader positioned at `position`. Buffered records are written to the
    /// segment file first, so the reader sees everything appended so far.
    ///
    /// # Errors
    /// As [`WalReader::open_with`], plus [`Error::Poisoned`].
    pub fn read_from(&self, position: u64) -> Result<WalReader> {
        let shared = &self.shared;
        shared.check_poison()?;
        {
            let mut w = lock(&shared.writer);
            shared.flush_locked(&mut w)?;
        }
        WalReader::open_with(
            shared.storage.clone(),
            &shared.dir,
            position,
            shared.max_record_size,
        )
    }

    /// Removes every segment whose records all lie below `position` (never the
    /// segment being written), oldest first, fsyncing the directory after each
    /// removal so that a crash leaves a contiguous suffix. Positions of the
    /// remaining records do not change. Returns how many segments were removed.
    ///
    /// # Errors
    /// [`Error::Poisoned`] and I/O errors (a failed directory fsync poisons).
    pub fn drop_segments_before(&self, position: u64) -> Result<usize> {
        let shared = &self.shared;
        shared.check_poison()?;
        let mut w = lock(&shared.writer);
        if w.pending.is_some() {
            // The cut may remove segments too: settle the log's shape first.
            shared.repair_locked(&mut w)?;
        }
        let mut removed = 0;
        while w.segments.len() > 1 && w.segments[1].start <= position {
            let path = w.segments[0].path.clone();
            shared.storage.remove_file(&path).ctx("remove", &path)?;
            w.segments.remove(0);
            removed += 1;
            shared.sync_dir()?;
            tracing::debug!(path = %path.display(), "dropped segment");
        }
        Ok(removed)
    }

    /// Writes out the buffer, syncs and closes the log, reporting any error
    /// (dropping the log does the same but can only log errors).
    ///
    /// # Errors
    /// [`Error::Poisoned`] and I/O errors.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    /// Stops the flusher, makes everything durable, then appends and fsyncs a sync
    /// marker whose sync distance vouches for every record before it (so that later
    /// damage to them is reported as corruption, not cut as a torn tail).
    fn shutdown(&mut self) -> Result<()> {
        self.stop_flusher();
        self.sync()?;
        let shared = &self.shared;
        let target = {
            let mut w = lock(&shared.writer);
            if w.active.is_none() || matches!(w.tail.last_kind, None | Some(KIND_SYNC_MARKER)) {
                return Ok(());
            }
            shared.write_record_locked(&mut w, KIND_SYNC_MARKER, 0, |_| {})?;
            w.next_position
        };
        shared.sync_to(target)
    }

    fn stop_flusher(&mut self) {
        if let Some(handle) = self.flusher.take() {
            *lock(&self.shared.shutdown) = true;
            self.shared.shutdown_cv.notify_all();
            let _ = handle.join();
        }
    }
}

impl Drop for WriteAheadLog {
    fn drop(&mut self) {
        if self.shared.poisoned.load(Ordering::SeqCst) {
            self.stop_flusher();
            return;
        }
        if let Err(error) = self.shutdown() {
            tracing::error!(dir = %self.shared.dir.display(), %error, "closing the write-ahead log failed to sync");
        }
    }
}

/// Builds the writer state of an opened log: where it ends, and the cut the
/// recovery mode allows when it is damaged.
fn open_writer(storage: &dyn Storage, files: LogFiles, options: &WalOptions) -> Result<Writer> {
    let (file_end, next_position, active, pending, tail) = match find_end(storage, &files, options)?
    {
        LogEnd::Clean {
            file_end,
            next_position,
            segment_id,
            tail,
        } => {
            let path = files.segments[files.segments.len() - 1].path.clone();
            let file = storage
                .open_file(&path, OpenMode::ReadWrite)
                .ctx("open", &path)?;
            let active = Active {
                file,
                path,
                segment_id,
            };
            (file_end, next_position, Some(active), None, tail)
        }
        LogEnd::Damaged {
            index,
            damage,
            segment_id,
            tail,
        } => {
            let cut = cut_for(options, &files, index, damage, segment_id)?;
            tracing::warn!(segment = %cut.damage.path.display(), offset = cut.damage.offset, position = cut.damage.position, problem = %cut.damage.problem, "write-ahead log needs a repair before appending");
            (0, cut.damage.position, None, Some(cut), tail)
        }
    };
    let mut commit_ends = CommitEnds::default();
    commit_ends.after(tail, next_position);
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

impl Shared {
    /// Fails with [`Error::Poisoned`] once the log is poisoned.
    pub(super) fn check_poison(&self) -> Result<()> {
        if !self.poisoned.load(Ordering::SeqCst) {
            return Ok(());
        }
        let (operation, cause) = lock(&self.poison)
            .clone()
            .unwrap_or(("unknown", String::new()));
        Err(Error::Poisoned {
            path: self.dir.clone(),
            operation,
            cause,
        })
    }

    /// Poisons the log and returns the original error, typed.
    pub(super) fn poison(&self, operation: &'static str, path: &Path, e: std::io::Error) -> Error {
        let first = {
            let mut p = lock(&self.poison);
            let first = p.is_none();
            if first {
                *p = Some((operation, format!("{}: {e}", path.display())));
            }
            first
        };
        self.poisoned.store(true, Ordering::SeqCst);
        if first {
            let durable = self.durable_hint.load(Ordering::Acquire);
            super::poison_mark::leave(self.storage.as_ref(), &self.dir, durable);
        }
        self.wake_all();
        tracing::error!(dir = %self.dir.display(), path = %path.display(), operation, error = %e, "write-ahead log poisoned");
        Error::io(operation, path, e)
    }

    fn sync_dir(&self) -> Result<()> {
        self.storage
            .sync_dir(&self.dir)
            .map_err(|e| self.poison("sync directory", &self.dir, e))
    }

    /// Encodes `entry` into the buffer, rotating first if the segment is full.
    fn append_locked(&self, w: &mut Writer, entry: &WalEntry) -> Result<()> {
        self.write_record_locked(w, entry.kind(), entry.encoded_len() as u32, |buf| {
            entry.encode_into(buf)
        })
    }

    /// Encodes one record (header, the payload `encode` appends, padding) into the
    /// buffer, rotating first if the segment is full.
    fn write_record_locked(
        &self,
        w: &mut Writer,
        kind: u8,
        payload_len: u32,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        let size = record_size(payload_len);
        let used = w.file_end + w.buf.len() as u64;
        if used > SEGMENT_HEADER_LEN && used + size > self.segment_size {
            self.rotate_locked(w)?;
        }
        let Some(active) = &w.active else {
            unreachable!("a pending cut is repaired before appending")
        };
        let segment_id = active.segment_id;
        let start = w.buf.len();
        w.buf.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
        encode(&mut w.buf);
        let payload = &w.buf[start + RECORD_HEADER_LEN..];
        debug_assert_eq!(payload.len(), payload_len as usize);
        let durable = self.durable_hint.load(Ordering::Acquire);
        let header = RecordHeader {
            payload_len,
            kind,
            sync_distance: sync_distance(w.next_position, durable),
            payload_crc: crc32c::crc32c(payload),
        };
        let encoded = header.encode(segment_id, w.next_position);
        w.buf[start..start + RECORD_HEADER_LEN].copy_from_slice(&encoded);
        w.buf.resize(start + size as usize, 0);
        w.next_position += size;
        w.tail.push(kind);
        let (tail, end) = (w.tail, w.next_position);
        w.commit_ends.after(tail, end);
        if w.buf.len() >= self.write_buffer_size {
            self.flush_locked(w)?;
        }
        Ok(())
    }

    /// Writes the buffer to the active segment.
    pub(super) fn flush_locked(&self, w: &mut Writer) -> Result<()> {
        if w.buf.is_empty() {
            return Ok(());
        }
        let Some(active) = &w.active else {
            unreachable!("records are only buffered into an active segment")
        };
        if let Err(e) = active.file.write_all_at(&w.buf, w.file_end) {
            return Err(self.poison("write", &active.path.clone(), e));
        }
        w.file_end += w.buf.len() as u64;
        w.buf.clear();
        Ok(())
    }

    /// Seals the active segment (write, fsync) and starts a new one at the current
    /// position (header and directory entry fsynced).
    fn rotate_locked(&self, w: &mut Writer) -> Result<()> {
        self.flush_locked(w)?;
        let Some(active) = &w.active else {
            unreachable!("rotation needs an active segment")
        };
        self.fsync(active.file.as_ref(), &active.path, false)?;
        let sealed_end = w.next_position;
        let (file, header, path) = create_segment(self.storage.as_ref(), &self.dir, sealed_end)
            .map_err(|e| self.poison_with(e))?;
        self.segments_created.fetch_add(1, Ordering::Relaxed);
        w.segments.push(SegmentMeta {
            start: sealed_end,
            path: path.clone(),
        });
        w.active = Some(Active {
            file,
            path,
            segment_id: header.segment_id,
        });
        w.file_end = SEGMENT_HEADER_LEN;
        self.mark_durable(sealed_end);
        Ok(())
    }

    /// [`WriteAheadLog::truncate_from`] with the writer lock held; with
    /// `refuse_waiters`, refused while appends wait to become durable.
    fn truncate_locked(
        &self,
        w: &mut MutexGuard<'_, Writer>,
        position: u64,
        refuse_waiters: bool,
    ) -> Result<u64> {
        let shared = self;
        if w.pending.is_some() {
            shared.repair_locked(w)?;
        }
        shared.flush_locked(w)?;
        if position == w.next_position {
            return Ok(0);
        }
        if position > w.next_position {
            return Err(Error::PositionBeyondEnd {
                position,
                path: shared.dir.clone(),
                end: w.next_position,
            });
        }
        let first = w.segments[0].start.max(w.floor);
        if position < first {
            return Err(Error::PositionNotCovered {
                position,
                path: shared.dir.clone(),
                first_available: first,
            });
        }
        if refuse_waiters {
            let d = lock(&shared.durability);
            if d.has_waiters() {
                return Err(Error::InvalidArgument(
                    "truncate_from while appends are waiting to become durable".into(),
                ));
            }
        }
        let index = w.segments.partition_point(|s| s.start <= position) - 1;
        let from = w.segments[index].start.max(w.floor);
        let (offset, segment_id, tail) =
            shared.find_boundary(&w.segments, index, from, position)?;
        let later: Vec<PathBuf> = w.segments[index + 1..]
            .iter()
            .map(|s| s.path.clone())
            .collect();
        let path = w.segments[index].path.clone();
        let segment_start = w.segments[index].start;
        let bytes_cut = shared.cut_locked(
            w,
            &CutPoint {
                path: &path,
                offset,
                position,
                segment_start,
                segment_id: Some(segment_id),
                later_segments: &later,
            },
        )?;
        w.tail = tail;
        w.commit_ends.cut(tail, position);
        tracing::info!(dir = %shared.dir.display(), position, bytes_cut, segments_removed = later.len(), "truncated write-ahead log");
        Ok(bytes_cut)
    }

    /// Cuts the log back to `position`, the durable position a poisoned
    /// writer left in its poison mark (`poison_mark.rs`), and removes the
    /// mark durably.
    ///
    /// # Errors
    /// As [`WriteAheadLog::truncate_from`]; I/O errors removing the mark.
    fn cut_back_after_poisoning(&self, position: u64) -> Result<()> {
        let mut w = lock(&self.writer);
        if w.pending.is_some() {
            self.repair_locked(&mut w)?;
        }
        // Records below the log's first position were released (a checkpoint
        // covers them): cut back only to there.
        let position = position.max(w.segments[0].start.max(w.floor));
        if position < w.next_position {
            let bytes_cut = self.truncate_locked(&mut w, position, true)?;
            tracing::warn!(dir = %self.dir.display(), position, bytes_cut, "cut the log back to where a poisoned writer left it durable");
        }
        drop(w);
        super::poison_mark::clear(self.storage.as_ref(), &self.dir)
    }

    /// Poisons the log with an already typed error.
    fn poison_with(&self, e: Error) -> Error {
        match e {
            Error::Io {
                operation,
                path,
                source,
            } => self.poison(operation, &path, source),
            other => other,
        }
    }

    /// Makes the pending cut, if any.
    fn repair_locked(&self, w: &mut Writer) -> Result<RepairReport> {
        let Some(cut) = w.pending.clone() else {
            return Ok(RepairReport::nothing(self.mode, w.next_position));
        };
        let damage = &cut.damage;
        let bytes_cut = self.cut_locked(w, &CutPoint::repairing(&cut))?;
        w.pending = None;
        let report = RepairReport::of_cut(self.mode, &cut, bytes_cut);
        tracing::warn!(segment = %damage.path.display(), offset = damage.offset, position = damage.position, bytes_cut, segments_removed = report.segments_removed.len(), reason = %report.reason, "repaired write-ahead log");
        Ok(report)
    }

    /// Walks segment `index` of `segments` from `from` (its start, or the
    /// floor) up to `position`: its file offset, the
    /// segment's identity, and what the records before it in that segment say
    /// about the end there.
    fn find_boundary(
        &self,
        segments: &[SegmentMeta],
        index: usize,
        from: u64,
        position: u64,
    ) -> Result<(u64, u64, Tail)> {
        let segment = &segments[index];
        let next_start = segments.get(index + 1).map(|s| s.start);
        let mut scanner = SegmentScanner::open_from(
            self.storage.as_ref(),
            segment,
            from,
            next_start,
            self.max_record_size,
        )?
        .map_err(|d| d.to_error())?;
        let mut tail = Tail::default();
        let mut before = scanner.position();
        while scanner.position() < position {
            before = scanner.position();
            match scanner.next_record()? {
                Step::Record { kind, .. } => tail.push(kind),
                Step::End => break,
                Step::Damaged(d) => return Err(d.to_error()),
            }
        }
        if scanner.position() != position {
            return Err(Error::NotARecordBoundary {
                position,
                path: segment.path.clone(),
                before,
                after: Some(scanner.position()),
            });
        }
        Ok((scanner.offset(), scanner.header().segment_id, tail))
    }

    /// Cuts the log at `cut`, durably: removes the later segments (newest first,
    /// fsyncing the directory after each, so an interrupted cut leaves a
    /// contiguous log that still ends at or after the cut), truncates the segment at
    /// the cut offset (or rewrites it empty when its header is damaged) and fsyncs
    /// it. The segment becomes the active one and the log ends at `cut.position`.
    /// Returns the bytes removed.
    fn cut_locked(&self, w: &mut Writer, cut: &CutPoint<'_>) -> Result<u64> {
        // A cut that fails half way leaves files and the writer's view of them
        // apart: poison, so nothing is appended until the log is reopened.
        self.cut_files_locked(w, cut).map_err(|e| match e {
            Error::Poisoned { .. } => e,
            Error::Io {
                operation,
                path,
                source,
            } => self.poison(operation, &path, source),
            other => {
                self.poison("cut", &self.dir, std::io::Error::other(other.to_string()));
                other
            }
        })
    }

    fn cut_files_locked(&self, w: &mut Writer, cut: &CutPoint<'_>) -> Result<u64> {
        let storage = self.storage.as_ref();
        let bytes_cut = cut.bytes_removed(storage)?;
        for path in cut.later_segments.iter().rev() {
            storage.remove_file(path).ctx("remove", path)?;
            self.sync_dir()?;
        }
        let path = cut.path;
        let (file, segment_id, file_end) = match cut.segment_id {
            Some(segment_id) if cut.keeps_header() => {
                let file = storage
                    .open_file(path, OpenMode::ReadWrite)
                    .ctx("open", path)?;
                if let Err(e) = file.truncate(cut.offset) {
                    return Err(self.poison("truncate", path, e));
                }
                self.fsync(file.as_ref(), path, true)?;
                (file, segment_id, cut.offset)
            }
            _ => {
                // The header itself is damaged: start the segment afresh.
                let (file, header, _) = create_segment(storage, &self.dir, cut.segment_start)
                    .map_err(|e| self.poison_with(e))?;
                (file, header.segment_id, SEGMENT_HEADER_LEN)
            }
        };
        let keep = w
            .segments
            .iter()
            .position(|s| s.path == path)
            .map_or(w.segments.len(), |i| i + 1);
        w.segments.truncate(keep);
        w.active = Some(Active {
            file,
            path: path.to_path_buf(),
            segment_id,
        });
        w.buf.clear();
        w.file_end = file_end;
        w.next_position = cut.position;
        self.reset_durable(cut.position);
        Ok(bytes_cut)
    }
}
