//! Moving a checkpoint's part files between the local checkpoint directory
//! (through [`Storage`]) and a [`BlobStore`], many requests at once, with
//! bounded memory: [`upload`] and [`download`].
//!
//! A call splits its files into **work units**: for an upload, one `put` per
//! file of at most `part_bytes` and one part per `part_bytes` of a larger
//! file (a multipart upload); for a download, one `head` and one ranged get
//! per `part_bytes` of each file. `concurrency` workers (the caller's thread
//! and `concurrency - 1` scoped threads) take units from one queue in order,
//! so the parts of one large file go in parallel as well as whole files.
//!
//! Invariants:
//! - **Requests in flight**: at most `concurrency` across all files of a
//!   call. A worker sends one request at a time and waits for its answer,
//!   including a part started with
//!   [`MultipartUpload::start_part`](crate::blob::MultipartUpload::start_part)
//!   (which only fixes the part's place in the object).
//! - **Memory**: at most `concurrency × part_bytes` bytes of file data
//!   (128 MiB with the defaults). Each worker holds at most one buffer of at
//!   most `part_bytes`: a part read from disk, waiting for its turn or in its
//!   request, or a range between its get and its write. The backend's own
//!   copies are not counted (the simulator keeps every object in memory).
//! - **Upload order**: the parts of a multipart upload are started in file
//!   order (a worker holding part `i + 1` waits until part `i` is started);
//!   every part but the last is exactly `part_bytes` (raised to
//!   [`MIN_PART_BYTES`] for uploads). An upload returns `Ok` only once every
//!   object is complete (visible).
//! - **Download integrity**: every file is checked against its size (the
//!   object's `head`, and [`BlobError::InvalidRange`] of a range past its
//!   end) and its whole-file CRC32C, combined from the per-range CRCs in
//!   order (no second read of the file); a difference is
//!   [`Error::CheckpointFileMismatch`] naming the key, never a short file.
//!   Each file is fsynced; its directory is not (the caller renames the
//!   directory into place and syncs it).
//! - **Errors**: the first error is returned and the workers stop taking
//!   units. An upload aborts every multipart upload of the call that was not
//!   completed (a failed abort is logged, not returned; an object already
//!   complete stays: its key is unique and garbage collection removes it).
//!   A download removes every file it created (best effort).
//! - **Retries**: a request answered [`BlobError::Transient`] or
//!   [`BlobError::Throttled`] changed nothing and is repeated up to
//!   [`MAX_RETRIES`] times with jittered exponential backoff (from 50 ms, at
//!   most 2 s), as is an [`BlobError::Indeterminate`] get, head or put (a
//!   put of a unique key is idempotent). A part is repeated only when
//!   `start_part` itself failed (its place is still free); a part whose
//!   answer failed later is not, since its place was taken (`object_store`
//!   retries each part itself). Each retry is logged as a warning.
//!
//! Requests and bytes are counted in [`TransferStats`] (every attempt is a
//! request, an abort too; bytes are those of successful requests) and in
//! the metrics `highwater_remote_{requests,bytes,retries}_total{direction}`
//! and `highwater_remote_transfer_pending_bytes{direction}` (src/metrics.rs):
//! bytes and pending bytes as each range or part lands, requests and
//! retries when the call ends.
//!
//! **Progress**: a call reports into every [`TransferProgress`] of its
//! options (the config's, and any added with
//! [`TransferOptions::with_progress`]): its totals before any unit runs,
//! bytes as each range is written or each part answered, files once
//! complete; a failed (or panicked) call takes back all it added (the
//! module docs of `progress`).

mod downloads;
mod uploads;

pub(crate) use downloads::download;
pub(crate) use uploads::upload;

pub(crate) use super::progress::Direction;
use super::progress::TransferProgress;
use super::{retry, RemoteConfig};
use crate::blob::{BlobError, BlobKey, BlobResult, MIN_PART_BYTES};
use crate::error::Error;
use crate::metrics::RemoteTransferMetrics;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// How many times a failed request is repeated (the backoff is
/// [`retry::backoff`]'s).
pub(crate) const MAX_RETRIES: u32 = retry::ATTEMPTS - 1;

/// How a transfer moves its bytes, and where it reports its progress.
/// Cheap to clone (the progress sinks are shared).
#[derive(Debug, Clone)]
pub(crate) struct TransferOptions {
    /// Requests in flight at once, across all files (at least 1).
    pub concurrency: usize,
    /// Size of a part (upload; raised to [`MIN_PART_BYTES`]) and of a range
    /// (download; at least 1). A file of at most this many bytes is one put.
    pub part_bytes: usize,
    /// Every progress the transfer reports into (no two clones of one).
    progress: Arc<[TransferProgress]>,
    /// Once set, workers take no further unit and the call fails.
    cancel: Option<Arc<AtomicBool>>,
}

impl TransferOptions {
    /// `concurrency` and `part_bytes`, reporting into no progress.
    #[cfg(test)]
    pub(crate) fn new(concurrency: usize, part_bytes: usize) -> Self {
        TransferOptions {
            concurrency,
            part_bytes,
            progress: Arc::new([]),
            cancel: None,
        }
    }

    /// The options of `config`, reporting into its progress (if any).
    pub(crate) fn of(config: &RemoteConfig) -> Self {
        TransferOptions {
            concurrency: config.concurrency(),
            part_bytes: config.part_bytes(),
            progress: config.progress().cloned().into_iter().collect(),
            cancel: None,
        }
    }

    /// These options reporting into `progress` as well as into those they
    /// already report into (a clone of one of those changes nothing: a
    /// transfer never counts twice into one progress).
    pub(crate) fn with_progress(mut self, progress: TransferProgress) -> Self {
        if !self.progress.iter().any(|p| p.same(&progress)) {
            self.progress = self.progress.iter().cloned().chain([progress]).collect();
        }
        self
    }

    /// These options, cancelled once `flag` is set: no unit starts after it
    /// (the requests in flight finish), and the call fails with an `Io`
    /// error of kind `Interrupted`, removing what it created like any
    /// failure.
    pub(crate) fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// The part size of uploads.
    fn upload_part_bytes(&self) -> u64 {
        self.part_bytes.max(MIN_PART_BYTES) as u64
    }

    /// The range size of downloads.
    fn download_part_bytes(&self) -> u64 {
        self.part_bytes.max(1) as u64
    }
}

/// A local file to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UploadFile {
    /// The file, as the [`Storage`](crate::storage::Storage) names it.
    pub path: PathBuf,
    /// Its size: exactly this many bytes are read and sent (a file of
    /// another size is an error).
    pub size: u64,
    /// The object it becomes.
    pub key: BlobKey,
}

/// An object to download into a new local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DownloadFile {
    /// The object.
    pub key: BlobKey,
    /// Its expected size.
    pub size: u64,
    /// Its expected CRC32C (of the whole object).
    pub crc32c: u32,
    /// The file to create (it must not exist; its directory must).
    pub dest: PathBuf,
}

/// What a transfer sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TransferStats {
    /// Requests sent, every retry and abort included.
    pub requests: u64,
    /// Bytes of file data moved by successful requests.
    pub bytes: u64,
}

/// What every worker of one call shares: the first error, the counts, the
/// progress sinks and the metrics it reports into.
///
/// Created on the caller's thread (its metric handles come from the
/// caller's recorder), once the call's totals are known: it adds them to
/// every progress and to the pending-bytes gauge before any unit runs.
/// Settled exactly once, by [`Run::finish`] or, when a worker panicked, by
/// its drop (as a failure).
struct Run {
    direction: Direction,
    failed: AtomicBool,
    first_error: Mutex<Option<Error>>,
    requests: AtomicU64,
    bytes: AtomicU64,
    retries: AtomicU64,
    /// Files complete (verified, visible).
    files: AtomicU64,
    /// The sizes and number of the call's files.
    total_bytes: u64,
    total_files: u64,
    progress: Arc<[TransferProgress]>,
    cancel: Option<Arc<AtomicBool>>,
    metrics: RemoteTransferMetrics,
    settled: AtomicBool,
}

impl Run {
    /// A call moving `total_files` files of `total_bytes` bytes in all.
    fn new(
        direction: Direction,
        opts: &TransferOptions,
        total_bytes: u64,
        total_files: u64,
    ) -> Self {
        for p in opts.progress.iter() {
            p.update(direction, |c| {
                c.bytes_total = c.bytes_total.saturating_add(total_bytes);
                c.files_total = c.files_total.saturating_add(total_files);
            });
        }
        Run {
            direction,
            failed: AtomicBool::new(false),
            first_error: Mutex::new(None),
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            files: AtomicU64::new(0),
            total_bytes,
            total_files,
            progress: opts.progress.clone(),
            cancel: opts.cancel.clone(),
            metrics: RemoteTransferMetrics::start(label(direction), total_bytes),
            settled: AtomicBool::new(false),
        }
    }

    /// True once a unit failed or the call was cancelled: workers stop.
    fn stopped(&self) -> bool {
        self.failed.load(Ordering::SeqCst) || self.cancelled()
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    }

    /// Records `e` (kept if it is the first) and stops the workers.
    fn fail(&self, e: Error) {
        let mut first = lock(&self.first_error);
        if first.is_none() {
            *first = Some(e);
        }
        self.failed.store(true, Ordering::SeqCst);
    }

    /// `bytes` of file data moved (written locally, or answered by the
    /// store): counted, reported to the progress sinks and the metrics.
    fn moved(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        for p in self.progress.iter() {
            p.update(self.direction, |c| c.bytes_done += bytes);
        }
        self.metrics.landed(bytes);
    }

    /// One file complete (verified, or its object visible).
    fn file_done(&self) {
        self.files.fetch_add(1, Ordering::Relaxed);
        for p in self.progress.iter() {
            p.update(self.direction, |c| c.files_done += 1);
        }
    }

    /// One request, not repeated (a complete or abort: it consumes the upload).
    fn once<T>(&self, f: impl FnOnce() -> BlobResult<T>) -> BlobResult<T> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        f()
    }

    /// Sends `f` and repeats it (up to [`MAX_RETRIES`] times, with backoff)
    /// while it fails with an error `repeat` accepts, unless the call has
    /// stopped meanwhile.
    fn request<T>(
        &self,
        operation: &'static str,
        key: &BlobKey,
        repeat: fn(&BlobError) -> bool,
        mut f: impl FnMut() -> BlobResult<T>,
    ) -> BlobResult<T> {
        let mut attempt = 0;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            match f() {
                Err(e) if attempt < MAX_RETRIES && repeat(&e) && !self.stopped() => {
                    attempt += 1;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    let wait = retry::backoff(attempt);
                    tracing::warn!(
                        direction = label(self.direction),
                        operation,
                        key = %key,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        error = %e,
                        "retrying a checkpoint transfer request"
                    );
                    std::thread::sleep(wait);
                }
                other => return other,
            }
        }
    }

    /// The call's stats, or its first error; settles its progress and
    /// metrics.
    fn finish(self) -> crate::Result<TransferStats> {
        let stats = TransferStats {
            requests: self.requests.load(Ordering::SeqCst),
            bytes: self.bytes.load(Ordering::SeqCst),
        };
        let mut first = lock(&self.first_error).take();
        if first.is_none() && self.cancelled() {
            first = Some(Error::io(
                label(self.direction),
                std::path::PathBuf::from("(cancelled transfer)"),
                std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    "the transfer was cancelled",
                ),
            ));
        }
        self.settle(first.is_some());
        match first {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }

    /// Once: records the requests and retries, takes the bytes not moved
    /// off the pending gauge and, for a failed call, takes back from every
    /// progress all the call added (so `done <= total` still holds).
    fn settle(&self, failed: bool) {
        if self.settled.swap(true, Ordering::SeqCst) {
            return;
        }
        let moved = self.bytes.load(Ordering::SeqCst);
        let files = self.files.load(Ordering::SeqCst);
        if failed {
            for p in self.progress.iter() {
                p.update(self.direction, |c| {
                    c.bytes_done = c.bytes_done.saturating_sub(moved);
                    c.bytes_total = c.bytes_total.saturating_sub(self.total_bytes);
                    c.files_done = c.files_done.saturating_sub(files);
                    c.files_total = c.files_total.saturating_sub(self.total_files);
                });
            }
        }
        self.metrics.ended(self.total_bytes.saturating_sub(moved));
        crate::metrics::remote_transfer(
            label(self.direction),
            self.requests.load(Ordering::SeqCst),
            self.retries.load(Ordering::SeqCst),
        );
    }

    /// Runs every unit on `concurrency` workers (the caller's thread among
    /// them) taking units in order from one queue, until the queue is empty
    /// or a unit failed. `wake` is called after a failure (and when a worker
    /// panics), to wake workers waiting for a turn.
    /// `units` is generated as workers take them (a file's listed size
    /// never becomes an allocation); `count` is how many it yields.
    fn work<U>(
        &self,
        concurrency: usize,
        count: u64,
        units: impl Iterator<Item = U> + Send,
        work: impl Fn(U) -> crate::Result<()> + Sync,
        wake: impl Fn() + Sync,
    ) {
        let workers = usize::try_from(count).map_or(concurrency, |n| n.min(concurrency));
        let workers = workers.max(1);
        let queue = Mutex::new(units);
        let span = tracing::Span::current();
        let worker = || {
            let _span = span.enter();
            let _guard = WakeOnPanic {
                run: self,
                wake: &wake,
            };
            while !self.stopped() {
                let Some(unit) = lock(&queue).next() else {
                    break;
                };
                if let Err(e) = work(unit) {
                    self.fail(e);
                    wake();
                }
            }
        };
        std::thread::scope(|s| {
            for i in 1..workers {
                let spawned = std::thread::Builder::new()
                    .name("highwater-transfer".into())
                    .spawn_scoped(s, worker);
                if let Err(e) = spawned {
                    // Fewer workers: the units still all run.
                    tracing::warn!(workers = i, error = %e, "cannot start more transfer threads");
                    break;
                }
            }
            worker();
        });
    }
}

impl Drop for Run {
    /// A call not finished (a worker panicked) failed.
    fn drop(&mut self) {
        self.settle(true);
    }
}

/// The metrics label of `direction`.
fn label(direction: Direction) -> &'static str {
    match direction {
        Direction::Upload => "upload",
        Direction::Download => "download",
    }
}

/// Stops the call and wakes waiting workers if a worker panics, so that
/// none waits forever for a turn the panicked worker held (the panic then
/// reaches the caller when the scope joins).
struct WakeOnPanic<'a, W: Fn()> {
    run: &'a Run,
    wake: &'a W,
}

impl<W: Fn()> Drop for WakeOnPanic<'_, W> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.run.failed.store(true, Ordering::SeqCst);
            (self.wake)();
        }
    }
}

/// Changed nothing: repeat it (a part, the start of an upload).
fn unchanged(e: &BlobError) -> bool {
    retry::unchanged_and_retryable(e)
}

/// Changed nothing, or repeating it is harmless (a get, a head, a put of a
/// unique key).
fn idempotent(e: &BlobError) -> bool {
    unchanged(e) || matches!(e, BlobError::Indeterminate { .. })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
#[path = "transfer_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "transfer_bounds_tests.rs"]
mod bounds_tests;

#[cfg(test)]
#[path = "progress_tests.rs"]
mod progress_tests;
