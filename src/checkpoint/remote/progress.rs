//! [`TransferProgress`]: how far the uploads and downloads of remote
//! checkpoints are, for a caller to poll (a restore's progress bar, a
//! readiness probe) while they run.
//!
//! Every transfer call given a progress (through
//! [`RemoteConfig::with_progress`](crate::RemoteConfig::with_progress))
//! reports into it:
//! - **At its start** it adds the sizes of all its files to `bytes_total`
//!   and their number to `files_total`, before any byte lands.
//! - **As bytes land** it adds them to `bytes_done`: a download's range once
//!   it is written to the local file, an upload's put or part once its
//!   request succeeded. A long transfer advances part by part, not at its end.
//! - **A file done**: `files_done` grows once a file is complete — a
//!   download's file written, its size and CRC32C verified and synced; an
//!   upload's object complete (visible).
//! - **A failed call** takes back everything it added, to the totals and to
//!   the done counts alike (its bytes are moved again by whatever retries
//!   the checkpoint or the restore).
//!
//! Invariants: every [`ProgressCounts`] read has `bytes_done <= bytes_total`
//! and `files_done <= files_total` (the counts of one direction change
//! together, under one short lock); once no call is running, `done == total`
//! for both. Counts only grow while calls succeed.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// Progress of remote checkpoint transfers in both directions, shared by
/// every clone: give one to
/// [`RemoteConfig::with_progress`](crate::RemoteConfig::with_progress) and
/// read it from any thread while a manager commits or restores.
///
/// The counts add up over every call that reported into it (they are never
/// reset); the semantics are in the module docs: totals grow when a call
/// starts, done counts as bytes land, a failed call takes back what it
/// added, and `done <= total` in every read.
///
/// # Examples
/// ```
/// use highwater::{RemoteConfig, TransferProgress};
/// # fn main() -> highwater::Result<()> {
/// let bucket = tempfile::tempdir().unwrap();
/// let progress = TransferProgress::new();
/// let remote = RemoteConfig::open(bucket.path().to_str().unwrap())?
///     .with_progress(progress.clone());
/// assert!(remote.progress().is_some());
/// // Elsewhere, while a restore runs:
/// let down = progress.download();
/// assert!(down.bytes_done <= down.bytes_total);
/// assert_eq!(down.fraction(), 1.0); // nothing to move yet
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct TransferProgress {
    inner: Arc<Mutex<Both>>,
}

/// The counts of one direction at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProgressCounts {
    /// Bytes of file data moved by running or finished calls (a failed
    /// call's are taken back). At most `bytes_total`.
    pub bytes_done: u64,
    /// Bytes of every file of the running and succeeded calls.
    pub bytes_total: u64,
    /// Files complete and verified. At most `files_total`.
    pub files_done: u64,
    /// Files of the running and succeeded calls.
    pub files_total: u64,
}

impl ProgressCounts {
    /// `bytes_done / bytes_total`, from 0.0 to 1.0; 1.0 when there is
    /// nothing to move (`bytes_total` is 0).
    pub fn fraction(&self) -> f64 {
        if self.bytes_total == 0 {
            1.0
        } else {
            self.bytes_done as f64 / self.bytes_total as f64
        }
    }
}

#[derive(Debug, Default)]
struct Both {
    download: ProgressCounts,
    upload: ProgressCounts,
}

/// A transfer direction, to choose the counts a call reports into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Upload,
    Download,
}

impl TransferProgress {
    /// A new progress, every count 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counts of downloads (restores of remote checkpoints).
    pub fn download(&self) -> ProgressCounts {
        self.lock().download
    }

    /// The counts of uploads (commits of checkpoints to the remote store).
    pub fn upload(&self) -> ProgressCounts {
        self.lock().upload
    }

    /// True when `self` and `other` are clones of one progress.
    pub(crate) fn same(&self, other: &TransferProgress) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Applies `f` to the counts of `direction`.
    pub(crate) fn update(&self, direction: Direction, f: impl FnOnce(&mut ProgressCounts)) {
        let mut both = self.lock();
        f(match direction {
            Direction::Upload => &mut both.upload,
            Direction::Download => &mut both.download,
        });
    }

    fn lock(&self) -> MutexGuard<'_, Both> {
        // Counts are updated in one step each: a poisoned lock holds valid ones.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for TransferProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let both = self.lock();
        f.debug_struct("TransferProgress")
            .field("download", &both.download)
            .field("upload", &both.upload)
            .finish()
    }
}
