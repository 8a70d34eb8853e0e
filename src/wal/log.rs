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
use super::entry::WalEntry;
use super::entry::KIND_SYNC_MARKER;
use super::options::{SyncPolicy, WalOptions, WalRecoveryMode};
use super::reader::WalReader;
use super::repair::{PendingCut, RepairReport};
use super::segment::SegmentMeta;
use super::sync::Durability;
use crate::error::{Error, IoContext, Result};
use crate::storage::{Storage, StorageFile, StorageLock};
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
    pub(super) shared: Arc<Shared>,
    pub(super) flusher: Option<JoinHandle<()>>,
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
    /// The file's length as this writer left it: past `file_end` when a
    /// durable writer preallocated zeros ahead of its records (`pipe.rs`).
    pub allocated: u64,
    /// Where its records start (its header's `records_offset`).
    pub records_offset: u64,
    /// What seals its records: only for a sealed segment this writer
    /// created, and dropped at any cut, so no offset is sealed twice.
    pub sealer: Option<super::seal::Sealer>,
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

impl Writer {
    /// Fails unless `position` lies in the log: not after its end
    /// ([`Error::PositionBeyondEnd`]) and not below its first position, the
    /// oldest segment's start or the floor ([`Error::PositionNotCovered`]).
    pub(super) fn check_held(&self, dir: &Path, position: u64) -> Result<()> {
        if position > self.next_position {
            return Err(Error::PositionBeyondEnd {
                position,
                path: dir.to_path_buf(),
                end: self.next_position,
            });
        }
        let first = self.segments[0].start.max(self.floor);
        if position < first {
            return Err(Error::PositionNotCovered {
                position,
                path: dir.to_path_buf(),
                first_available: first,
            });
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(super) struct Shared {
    pub dir: PathBuf,
    pub storage: Arc<dyn Storage>,
    pub segment_size: u64,
    /// The keys new segments are sealed with (none: plaintext segments).
    pub keys: super::seal::Keys,
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
    /// [`Error::RecordTooLarge`] (with encryption, the entry's encoding plus
    /// the 16-byte tag is what must fit), [`Error::Poisoned`], I/O errors
    /// (which poison the log), and with encryption the key provider's errors
    /// when a new segment is sealed.
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
            let size = e.encoded_len() + u64::from(shared.keys.overhead());
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
    /// and found at open (the newest 4,096 commit
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
            w.check_held(&shared.dir, position)?;
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
    /// does not tolerate, [`Error::UnsupportedVersion`], [`Error::InvalidConfig`]
    /// for unusable options, and I/O errors.
    pub fn plan_repair(path: impl AsRef<Path>, options: &WalOptions) -> Result<RepairReport> {
        Ok(super::open::planned_repair(options.storage.as_ref(), path.as_ref(), options, 0)?.0)
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
    pub fn cut_from(&self, position: u64) -> Result<u64> {
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
        Ok(WalReader::open_with(
            shared.storage.clone(),
            &shared.dir,
            position,
            shared.max_record_size,
        )?
        .with_keys(shared.keys.clone()))
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
    /// damage to them is reported as corruption, not cut as a torn tail). Zeros
    /// preallocated after the last record are cut, so a closed log's files end
    /// with their records.
    fn shutdown(&mut self) -> Result<()> {
        self.stop_flusher();
        self.sync()?;
        let shared = &self.shared;
        let (end, marker, trimmed) = {
            let mut w = lock(&shared.writer);
            if w.active.is_none() {
                return Ok(());
            }
            let marker = !matches!(w.tail.last_kind, None | Some(KIND_SYNC_MARKER));
            if marker {
                shared.write_record_locked(&mut w, KIND_SYNC_MARKER, 0, |_| {})?;
            }
            shared.write_buffer_locked(&mut w, false)?;
            (w.next_position, marker, shared.trim_locked(&mut w)?)
        };
        match trimmed {
            Some((file, path)) => {
                // Data and metadata: the length changed.
                shared.fsync(file.as_ref(), &path, true)?;
                shared.mark_durable(end);
                Ok(())
            }
            None if marker => shared.sync_to(end),
            None => Ok(()),
        }
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
