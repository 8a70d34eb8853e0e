//! Progress of transfers ([`TransferProgress`] and the byte metrics), seen
//! from inside the store: before each range or part goes out, the counts
//! must show exactly the bytes that landed before it.

use super::tests::{downloads, opts, uploads, write_files, P};
use super::*;
use crate::blob::{
    BlobFault, BlobMeta, BlobOp, BlobStore, CreateOutcome, ListPage, MultipartUpload, PartInFlight,
    SimBlobStore,
};
use crate::checkpoint::remote::progress::ProgressCounts;
use crate::storage::FsStorage;
use bytes::Bytes;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::ops::Range;

type Hook = Arc<dyn Fn(&'static str) + Send + Sync>;

/// The counts seen before each request, with its operation.
type Seen = Arc<Mutex<Vec<(&'static str, ProgressCounts)>>>;

/// A store that calls `hook` with the operation before each get, put, part
/// and complete.
struct Watched {
    inner: SimBlobStore,
    hook: Hook,
}

impl BlobStore for Watched {
    fn create_if_absent(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<CreateOutcome> {
        self.inner.create_if_absent(key, bytes)
    }
    fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()> {
        (self.hook)("put");
        self.inner.put(key, bytes)
    }
    fn put_multipart(&self, key: &BlobKey) -> BlobResult<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart(key)?;
        Ok(Box::new(WatchedUpload {
            inner,
            hook: self.hook.clone(),
        }))
    }
    fn get(&self, key: &BlobKey) -> BlobResult<Bytes> {
        self.inner.get(key)
    }
    fn get_range(&self, key: &BlobKey, range: Range<u64>) -> BlobResult<Bytes> {
        (self.hook)("get");
        self.inner.get_range(key, range)
    }
    fn head(&self, key: &BlobKey) -> BlobResult<BlobMeta> {
        self.inner.head(key)
    }
    fn list(
        &self,
        prefix: Option<&BlobKey>,
        after: Option<&BlobKey>,
        limit: usize,
    ) -> BlobResult<ListPage> {
        self.inner.list(prefix, after, limit)
    }
    fn delete(&self, key: &BlobKey) -> BlobResult<()> {
        self.inner.delete(key)
    }
    fn abort_abandoned_uploads(&self, older_than: std::time::SystemTime) -> BlobResult<u64> {
        self.inner.abort_abandoned_uploads(older_than)
    }
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watched")
    }
}

struct WatchedUpload {
    inner: Box<dyn MultipartUpload>,
    hook: Hook,
}

impl std::fmt::Debug for WatchedUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchedUpload")
    }
}

impl MultipartUpload for WatchedUpload {
    fn put_part(&mut self, bytes: Bytes) -> BlobResult<()> {
        (self.hook)("part");
        self.inner.put_part(bytes)
    }
    fn start_part(&mut self, bytes: Bytes) -> BlobResult<PartInFlight> {
        (self.hook)("part");
        self.inner.start_part(bytes)
    }
    fn complete(self: Box<Self>) -> BlobResult<()> {
        (self.hook)("complete");
        self.inner.complete()
    }
    fn abort(self: Box<Self>) -> BlobResult<()> {
        self.inner.abort()
    }
}

/// A store recording, before each request, the operation and the download
/// or upload counts of `progress`.
fn watched(
    inner: SimBlobStore,
    progress: &TransferProgress,
    direction: Direction,
) -> (Watched, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (p, log) = (progress.clone(), seen.clone());
    let hook: Hook = Arc::new(move |op| {
        let counts = match direction {
            Direction::Download => p.download(),
            Direction::Upload => p.upload(),
        };
        lock(&log).push((op, counts));
    });
    (Watched { inner, hook }, seen)
}

fn counts(bytes_done: u64, bytes_total: u64, files_done: u64, files_total: u64) -> ProgressCounts {
    ProgressCounts {
        bytes_done,
        bytes_total,
        files_done,
        files_total,
    }
}

fn with(progress: &TransferProgress, concurrency: usize) -> TransferOptions {
    opts(concurrency, P).with_progress(progress.clone())
}

#[test]
fn a_download_reports_each_range_as_it_lands() {
    let sim = SimBlobStore::new(21);
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let files = write_files(src.path(), &[3 * P + 1, 5]);
    upload(&sim, &FsStorage, &uploads(&files), &opts(2, P)).unwrap();
    let progress = TransferProgress::new();
    let (store, seen) = watched(sim, &progress, Direction::Download);
    let total = 3 * P as u64 + 6;
    // One worker: the ranges go in order.
    download(
        &store,
        &FsStorage,
        &downloads(dst.path(), &files),
        &with(&progress, 1),
    )
    .unwrap();
    let p = P as u64;
    assert_eq!(
        *lock(&seen),
        vec![
            ("get", counts(0, total, 0, 2)),
            ("get", counts(p, total, 0, 2)),
            ("get", counts(2 * p, total, 0, 2)),
            ("get", counts(3 * p, total, 0, 2)),
            ("get", counts(3 * p + 1, total, 1, 2)),
        ]
    );
    assert_eq!(progress.download(), counts(total, total, 2, 2));
    assert_eq!(progress.upload(), ProgressCounts::default());
    assert_eq!(progress.download().fraction(), 1.0);
}

#[test]
fn an_upload_reports_each_part_as_it_is_answered() {
    let progress = TransferProgress::new();
    let (store, seen) = watched(SimBlobStore::new(22), &progress, Direction::Upload);
    let src = tempfile::tempdir().unwrap();
    let files = write_files(src.path(), &[2 * P + 7, 0, 9]);
    let total = 2 * P as u64 + 16;
    upload(&store, &FsStorage, &uploads(&files), &with(&progress, 1)).unwrap();
    let p = P as u64;
    assert_eq!(
        *lock(&seen),
        vec![
            ("part", counts(0, total, 0, 3)),
            ("part", counts(p, total, 0, 3)),
            ("part", counts(2 * p, total, 0, 3)),
            // Every byte answered, the object not yet visible.
            ("complete", counts(2 * p + 7, total, 0, 3)),
            ("put", counts(2 * p + 7, total, 1, 3)),
            ("put", counts(2 * p + 7, total, 2, 3)),
        ]
    );
    assert_eq!(progress.upload(), counts(total, total, 3, 3));
    assert_eq!(progress.download(), ProgressCounts::default());
}

#[test]
fn a_failed_download_takes_back_what_it_added() {
    let sim = SimBlobStore::new(23);
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let files = write_files(src.path(), &[2 * P + 1, 3]);
    upload(&sim, &FsStorage, &uploads(&files), &opts(2, P)).unwrap();
    let progress = TransferProgress::new();
    // A first download succeeds: its counts stay.
    let first = tempfile::tempdir().unwrap();
    download(
        &sim,
        &FsStorage,
        &downloads(first.path(), &files),
        &with(&progress, 2),
    )
    .unwrap();
    let before = progress.download();
    assert_eq!(before, counts(2 * P as u64 + 4, 2 * P as u64 + 4, 2, 2));
    // The second fails at the last range of its first file, after the
    // ranges before it landed (and the small file, on the other worker).
    let mut bad = downloads(dst.path(), &files);
    bad[0].crc32c ^= 1;
    let (store, seen) = watched(sim, &progress, Direction::Download);
    let e = download(&store, &FsStorage, &bad, &with(&progress, 1)).unwrap_err();
    assert!(matches!(e, Error::CheckpointFileMismatch { .. }), "{e:?}");
    let seen = lock(&seen).clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[2].1.bytes_done, before.bytes_done + 2 * P as u64);
    assert_eq!(seen[2].1.bytes_total, 2 * before.bytes_total);
    assert_eq!(progress.download(), before);
}

#[test]
fn a_failed_upload_takes_back_what_it_added() {
    let sim = SimBlobStore::new(24);
    let progress = TransferProgress::new();
    let src = tempfile::tempdir().unwrap();
    let files = write_files(src.path(), &[3 * P + 1, 4]);
    // Multipart operations: create, part 0, part 1 (crash), …
    sim.fail_nth(BlobOp::Multipart, 2, BlobFault::Crash);
    let (store, seen) = watched(sim, &progress, Direction::Upload);
    let e = upload(&store, &FsStorage, &uploads(&files), &with(&progress, 1)).unwrap_err();
    assert!(matches!(e, Error::Blob(BlobError::Crashed { .. })), "{e:?}");
    let seen = lock(&seen).clone();
    assert_eq!(seen[1].1, counts(P as u64, 3 * P as u64 + 5, 0, 2));
    assert_eq!(progress.upload(), ProgressCounts::default());
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn done_never_exceeds_total_while_parallel_transfers_run() {
    let sim = SimBlobStore::new(25);
    let progress = TransferProgress::new();
    let src = tempfile::tempdir().unwrap();
    let sizes = [4 * P + 3, 2 * P, 17, 0, P + 1];
    let files = write_files(src.path(), &sizes);
    let total: u64 = sizes.iter().map(|&s| s as u64).sum();
    let stop = AtomicBool::new(false);
    let reads = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let (mut reads, mut last) = (0u64, ProgressCounts::default());
            while !stop.load(Ordering::SeqCst) {
                let now = progress.download();
                assert!(now.bytes_done <= now.bytes_total, "{now:?}");
                assert!(now.files_done <= now.files_total, "{now:?}");
                assert!(now.bytes_done >= last.bytes_done, "{last:?} then {now:?}");
                assert!(now.files_done >= last.files_done, "{last:?} then {now:?}");
                last = now;
                reads += 1;
            }
            reads
        });
        // Stops the reader however this thread leaves (a failed assert too).
        let _stop = StopOnDrop(&stop);
        upload(&sim, &FsStorage, &uploads(&files), &opts(4, P)).unwrap();
        for round in 0..3 {
            let dst = tempfile::tempdir().unwrap();
            let down = downloads(dst.path(), &files);
            download(&sim, &FsStorage, &down, &with(&progress, 4)).unwrap();
            let n = round + 1;
            assert_eq!(
                progress.download(),
                counts(n * total, n * total, n * 5, n * 5)
            );
        }
        drop(_stop);
        reader.join().unwrap()
    });
    assert!(reads > 0);
}

#[test]
fn a_progress_is_counted_once_however_often_it_is_added() {
    let sim = SimBlobStore::new(26);
    let (a, b) = (TransferProgress::new(), TransferProgress::new());
    let config = RemoteConfig::new(Arc::new(sim.clone())).with_progress(a.clone());
    let options = TransferOptions::of(&config)
        .with_progress(b.clone())
        .with_progress(a.clone())
        .with_progress(b.clone());
    let src = tempfile::tempdir().unwrap();
    let files = write_files(src.path(), &[10, 20]);
    upload(&sim, &FsStorage, &uploads(&files), &options.clone()).unwrap();
    assert_eq!(a.upload(), counts(30, 30, 2, 2));
    assert_eq!(b.upload(), counts(30, 30, 2, 2));
    // Options without a progress report into none.
    upload(&sim, &FsStorage, &uploads(&files), &opts(2, P)).unwrap();
    assert_eq!(a.upload(), counts(30, 30, 2, 2));
}

/// The metrics of a recorder summed over its snapshots (each snapshot of
/// a `DebuggingRecorder` drains its counters and gauges).
struct Meter {
    snapshotter: Snapshotter,
    sums: Mutex<std::collections::BTreeMap<(String, String), f64>>,
}

impl Meter {
    /// The remote byte counter and the pending gauge of `direction` so far.
    fn bytes(&self, direction: &str) -> (u64, f64) {
        let mut sums = lock(&self.sums);
        for (k, _, _, v) in self.snapshotter.snapshot().into_vec() {
            let label = k.key().labels().find(|l| l.key() == "direction");
            let label = label.map_or(String::new(), |l| l.value().to_string());
            let value = match v {
                DebugValue::Counter(c) => c as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(_) => continue,
            };
            *sums.entry((k.key().name().to_string(), label)).or_default() += value;
        }
        let get = |name: &str| {
            sums.get(&(name.to_string(), direction.to_string()))
                .copied()
                .unwrap_or_default()
        };
        (
            get(crate::metrics::REMOTE_BYTES) as u64,
            get(crate::metrics::REMOTE_TRANSFER_PENDING_BYTES),
        )
    }
}

#[test]
fn the_byte_metrics_advance_per_range_and_pending_returns_to_zero() {
    let recorder = DebuggingRecorder::new();
    let meter = Arc::new(Meter {
        snapshotter: recorder.snapshotter(),
        sums: Mutex::default(),
    });
    let sim = SimBlobStore::new(27);
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let files = write_files(src.path(), &[3 * P + 2]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (m, log) = (meter.clone(), seen.clone());
    let store = Watched {
        inner: sim.clone(),
        hook: Arc::new(move |op| lock(&log).push((op, m.bytes("download")))),
    };
    let total = 3 * P as u64 + 2;
    let down = downloads(dst.path(), &files);
    ::metrics::with_local_recorder(&recorder, || {
        upload(&sim, &FsStorage, &uploads(&files), &opts(2, P)).unwrap();
        assert_eq!(meter.bytes("upload"), (total, 0.0));
        // One worker: the ranges go in order.
        download(&store, &FsStorage, &down, &opts(1, P)).unwrap();
    });
    let (p, t) = (P as u64, total as f64);
    assert_eq!(
        *lock(&seen),
        vec![
            ("get", (0, t)),
            ("get", (p, t - p as f64)),
            ("get", (2 * p, t - 2.0 * p as f64)),
            ("get", (3 * p, t - 3.0 * p as f64)),
        ]
    );
    assert_eq!(meter.bytes("download"), (total, 0.0));

    // A failed download on two workers (their handles are the caller's):
    // the bytes it never moved leave the gauge too.
    let other = tempfile::tempdir().unwrap();
    // Gets so far: the 4 above; this call's second fails.
    sim.fail_nth(BlobOp::Get, 5, BlobFault::Crash);
    ::metrics::with_local_recorder(&recorder, || {
        download(
            &sim,
            &FsStorage,
            &downloads(other.path(), &files),
            &opts(2, P),
        )
        .unwrap_err();
    });
    let (bytes, pending) = meter.bytes("download");
    assert!(bytes < 2 * total, "{bytes}");
    assert_eq!(pending, 0.0);
}
