//! The bounds of a transfer: requests in flight and the bytes they carry,
//! seen through a store that counts them.

use super::tests::{downloads, opts, uploads, write_files, P};
use super::*;
use crate::blob::{
    BlobMeta, BlobStore, CreateOutcome, ListPage, MultipartUpload, PartInFlight, SimBlobStore,
};
use crate::storage::FsStorage;
use bytes::Bytes;
use std::ops::Range;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant};

/// A store that counts its requests in flight and the bytes they carry,
/// holding each request until `target` are in flight (or a second passed),
/// so a transfer that sends fewer at once is seen to. Its parts are started
/// like `object_store`'s: placed at once, answered later.
#[derive(Debug)]
struct Gauge {
    inner: SimBlobStore,
    target: usize,
    state: Arc<GaugeState>,
}

#[derive(Debug, Default)]
struct GaugeState {
    now: Mutex<(usize, usize)>,
    changed: Condvar,
    max_requests: AtomicUsize,
    max_bytes: AtomicUsize,
    largest: AtomicUsize,
}

impl GaugeState {
    /// A request of `bytes` goes out.
    fn begin(&self, bytes: usize) {
        let mut now = lock(&self.now);
        now.0 += 1;
        now.1 += bytes;
        self.max_requests.fetch_max(now.0, Ordering::SeqCst);
        self.max_bytes.fetch_max(now.1, Ordering::SeqCst);
        self.largest.fetch_max(bytes, Ordering::SeqCst);
        self.changed.notify_all();
    }

    /// Waits until `target` requests were in flight at once (a second at
    /// most), then a little longer, so that a transfer sending more than
    /// `target` at once gets the chance to show it.
    fn hold(&self, target: usize) {
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut now = lock(&self.now);
        while self.max_requests.load(Ordering::SeqCst) < target && Instant::now() < deadline {
            now = self
                .changed
                .wait_timeout(now, Duration::from_millis(10))
                .unwrap()
                .0;
        }
        drop(now);
        std::thread::sleep(Duration::from_millis(5));
    }

    /// The request of `bytes` is answered.
    fn end(&self, bytes: usize) {
        let mut now = lock(&self.now);
        now.0 -= 1;
        now.1 -= bytes;
    }

    fn held<T>(&self, bytes: usize, target: usize, f: impl FnOnce() -> T) -> T {
        self.begin(bytes);
        self.hold(target);
        let out = f();
        self.end(bytes);
        out
    }
}

impl BlobStore for Gauge {
    fn create_if_absent(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<CreateOutcome> {
        self.inner.create_if_absent(key, bytes)
    }
    fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()> {
        let n = bytes.len();
        self.state
            .held(n, self.target, || self.inner.put(key, bytes))
    }
    fn put_multipart(&self, key: &BlobKey) -> BlobResult<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart(key)?;
        Ok(Box::new(GaugeUpload {
            inner,
            target: self.target,
            state: self.state.clone(),
        }))
    }
    fn get(&self, key: &BlobKey) -> BlobResult<Bytes> {
        self.inner.get(key)
    }
    fn get_range(&self, key: &BlobKey, range: Range<u64>) -> BlobResult<Bytes> {
        let n = (range.end - range.start) as usize;
        self.state
            .held(n, self.target, || self.inner.get_range(key, range))
    }
    fn head(&self, key: &BlobKey) -> BlobResult<BlobMeta> {
        self.state.held(0, self.target, || self.inner.head(key))
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

#[derive(Debug)]
struct GaugeUpload {
    inner: Box<dyn MultipartUpload>,
    target: usize,
    state: Arc<GaugeState>,
}

impl MultipartUpload for GaugeUpload {
    fn put_part(&mut self, bytes: Bytes) -> BlobResult<()> {
        let n = bytes.len();
        let inner = &mut self.inner;
        self.state.held(n, self.target, || inner.put_part(bytes))
    }
    fn start_part(&mut self, bytes: Bytes) -> BlobResult<PartInFlight> {
        let n = bytes.len();
        // Placed now, answered when waited for.
        self.inner.put_part(bytes)?;
        let (state, target) = (self.state.clone(), self.target);
        state.begin(n);
        Ok(PartInFlight::pending(move || {
            state.hold(target);
            state.end(n);
            Ok(())
        }))
    }
    fn complete(self: Box<Self>) -> BlobResult<()> {
        self.inner.complete()
    }
    fn abort(self: Box<Self>) -> BlobResult<()> {
        self.inner.abort()
    }
}

fn gauge(concurrency: usize) -> Gauge {
    Gauge {
        inner: SimBlobStore::new(13),
        target: concurrency,
        state: Arc::default(),
    }
}

#[test]
fn the_parts_of_one_large_file_go_in_parallel_within_the_bounds() {
    let store = gauge(3);
    let src = tempfile::tempdir().unwrap();
    let files = write_files(src.path(), &[5 * P + 3]);
    upload(&store, &FsStorage, &uploads(&files), &opts(3, P)).unwrap();
    assert_eq!(
        store.inner.get(&files[0].0.key).unwrap()[..],
        files[0].1[..]
    );
    let s = &store.state;
    assert_eq!(s.max_requests.load(Ordering::SeqCst), 3, "3 parts at once");
    assert!(s.max_bytes.load(Ordering::SeqCst) <= 3 * P);
    assert_eq!(
        s.largest.load(Ordering::SeqCst),
        P,
        "parts of exactly part_bytes"
    );
}

#[test]
fn requests_in_flight_and_their_bytes_stay_within_concurrency_across_files() {
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sizes = [P + 1, 40, 2 * P, 0, 3, P, 1000, 2 * P + 9];
    let files = write_files(src.path(), &sizes);
    let store = gauge(4);
    upload(&store, &FsStorage, &uploads(&files), &opts(4, P)).unwrap();
    let s = &store.state;
    assert_eq!(s.max_requests.load(Ordering::SeqCst), 4);
    assert!(s.max_bytes.load(Ordering::SeqCst) <= 4 * P);

    let store = Gauge {
        state: Arc::default(),
        ..store
    };
    let down_files = downloads(dst.path(), &files);
    download(&store, &FsStorage, &down_files, &opts(4, P)).unwrap();
    let s = &store.state;
    assert_eq!(s.max_requests.load(Ordering::SeqCst), 4);
    assert!(s.max_bytes.load(Ordering::SeqCst) <= 4 * P);
    assert_eq!(s.largest.load(Ordering::SeqCst), P, "ranges of part_bytes");
    for (d, (_, bytes)) in down_files.iter().zip(&files) {
        assert!(std::fs::read(&d.dest).unwrap() == *bytes);
    }
}
