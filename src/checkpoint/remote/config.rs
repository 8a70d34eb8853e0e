//! [`RemoteConfig`]: where a manager publishes its checkpoints beyond its
//! own disk, and how it moves the bytes.

use super::progress::TransferProgress;
use crate::blob::{open_blob_store, BlobStore, MIN_PART_BYTES};
use crate::error::{Error, Result};
use std::sync::Arc;
use std::time::Duration;

/// Default [`RemoteConfig::with_concurrency`]: 8 requests in flight.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Default [`RemoteConfig::with_part_bytes`]: 16 MiB.
pub const DEFAULT_PART_BYTES: usize = 16 << 20;
/// Default [`RemoteConfig::with_gc_grace`]: 10 minutes.
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(600);
/// Default [`RemoteConfig::with_gc_interval`]: 1 minute.
pub const DEFAULT_GC_INTERVAL: Duration = Duration::from_secs(60);

/// A remote home for checkpoints: a blob store (S3, GCS, Azure, a shared
/// directory) that holds every checkpoint's parts and its commit record.
/// Given to [`CheckpointConfig::with_remote`](crate::CheckpointConfig::with_remote);
/// the checkpoint directory then becomes the staging area and the cache
/// (docs/OBJECT_STORAGE.md).
///
/// | setting | default | range |
/// |---|---|---|
/// | `concurrency` | 8 | 1 to 256 requests in flight per transfer |
/// | `part_bytes` | 16 MiB | 5 MiB ([`MIN_PART_BYTES`]) to 1 GiB; files up to it are one `put` |
/// | `gc_grace` | 10 minutes | any: part objects no record names are deleted once this old |
/// | `gc_interval` | 1 minute | any: a collection after a commit at most this often; `Duration::MAX`: only when asked |
///
/// Memory: a transfer holds at most `concurrency × part_bytes` bytes (128 MiB
/// by default).
///
/// # Examples
/// ```
/// use highwater::{CheckpointConfig, RemoteConfig};
/// # fn main() -> highwater::Result<()> {
/// let bucket = tempfile::tempdir().unwrap(); // stands in for s3://bucket/job
/// let remote = RemoteConfig::open(bucket.path().to_str().unwrap())?.with_concurrency(4);
/// let config = CheckpointConfig::new("/var/lib/job/checkpoints").with_remote(remote);
/// assert!(config.validate().is_ok());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    store: Arc<dyn BlobStore>,
    concurrency: usize,
    part_bytes: usize,
    gc_grace: Duration,
    gc_interval: Duration,
    progress: Option<TransferProgress>,
}

impl RemoteConfig {
    /// Checkpoints in `store`, with the defaults above.
    pub fn new(store: Arc<dyn BlobStore>) -> Self {
        RemoteConfig {
            store,
            concurrency: DEFAULT_CONCURRENCY,
            part_bytes: DEFAULT_PART_BYTES,
            gc_grace: DEFAULT_GC_GRACE,
            gc_interval: DEFAULT_GC_INTERVAL,
            progress: None,
        }
    }

    /// Checkpoints at `location` (`s3://bucket/prefix`, `gs://…`, `az://…`,
    /// `file:///path` or a plain path; see
    /// [`open_blob_store`](crate::blob::open_blob_store)).
    ///
    /// # Errors
    /// [`Error::Blob`] when the location names no store or it cannot be
    /// opened.
    pub fn open(location: &str) -> Result<Self> {
        Ok(Self::new(open_blob_store(location)?))
    }

    /// At most `n` requests in flight per transfer (upload or download).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Upload files above `bytes` in parts of `bytes` (multipart), and
    /// download in ranges of `bytes`.
    pub fn with_part_bytes(mut self, bytes: usize) -> Self {
        self.part_bytes = bytes;
        self
    }

    /// Delete part objects that no live record names only once they are this
    /// old: a checkpoint being uploaded has its parts before its record, so
    /// this must exceed the longest upload of one checkpoint.
    pub fn with_gc_grace(mut self, grace: Duration) -> Self {
        self.gc_grace = grace;
        self
    }

    /// Collect garbage after a commit at most once per `interval` (each
    /// collection lists the whole location). `Duration::ZERO`: after every
    /// commit; `Duration::MAX`: never by itself, only through
    /// [`IncrementalCheckpointManager::collect_remote_garbage`](crate::IncrementalCheckpointManager::collect_remote_garbage).
    pub fn with_gc_interval(mut self, interval: Duration) -> Self {
        self.gc_interval = interval;
        self
    }

    /// Report every upload (a commit) and download (a restore) made with
    /// this config into `progress`, a clone of which the caller keeps to
    /// read it (the semantics: [`TransferProgress`]). Replaces a progress
    /// given before.
    pub fn with_progress(mut self, progress: TransferProgress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The progress transfers report into, if one was given.
    pub fn progress(&self) -> Option<&TransferProgress> {
        self.progress.as_ref()
    }

    /// The least time between two collections after commits.
    pub fn gc_interval(&self) -> Duration {
        self.gc_interval
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    /// Requests in flight per transfer.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Part and range size.
    pub fn part_bytes(&self) -> usize {
        self.part_bytes
    }

    /// The garbage collection grace period.
    pub fn gc_grace(&self) -> Duration {
        self.gc_grace
    }

    /// Checks every setting against its range (the table above).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first setting out of range.
    pub fn validate(&self) -> Result<()> {
        if !(1..=256).contains(&self.concurrency) {
            return Err(Error::invalid_config(
                "remote.concurrency",
                format!("{}; 1 to 256 requests in flight", self.concurrency),
            ));
        }
        if !(MIN_PART_BYTES..=1 << 30).contains(&self.part_bytes) {
            return Err(Error::invalid_config(
                "remote.part_bytes",
                format!(
                    "{}; from {MIN_PART_BYTES} (S3's smallest part) to 1 GiB",
                    self.part_bytes
                ),
            ));
        }
        Ok(())
    }
}
