//! A [`BlobStore`] that passes every call to the store it wraps and notes
//! when each call started and ended, so the bench can tell the part
//! transfers of a checkpoint from the local publish around them.
//!
//! The parts of a multipart upload are noted too (op `part`: from
//! `start_part` or `put_part` to its answer; `complete`), through a wrapper
//! of the upload the inner store returns; the commit record's create starts
//! after the last part is complete, which closes the upload's window.

use bytes::Bytes;
use highwater::blob::{
    BlobKey, BlobMeta, BlobResult, BlobStore, CreateOutcome, ListPage, MultipartUpload,
    PartInFlight,
};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One call: its operation, key, start and end.
#[derive(Debug, Clone)]
pub struct Call {
    pub op: &'static str,
    pub key: String,
    pub start: Instant,
    pub end: Instant,
}

/// The wrapper.
#[derive(Debug)]
pub struct Timed {
    inner: Arc<dyn BlobStore>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Timed {
    pub fn new(inner: Arc<dyn BlobStore>) -> Self {
        Timed {
            inner,
            calls: Arc::default(),
        }
    }

    /// The calls noted since the last `take`.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn note<T>(&self, op: &'static str, key: &str, f: impl FnOnce() -> T) -> T {
        note(&self.calls, op, key, f)
    }
}

fn note<T>(calls: &Mutex<Vec<Call>>, op: &'static str, key: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = f();
    calls.lock().unwrap().push(Call {
        op,
        key: key.to_string(),
        start,
        end: Instant::now(),
    });
    result
}

/// A multipart upload whose parts are noted.
#[derive(Debug)]
struct TimedUpload {
    inner: Box<dyn MultipartUpload>,
    key: String,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl MultipartUpload for TimedUpload {
    fn put_part(&mut self, bytes: Bytes) -> BlobResult<()> {
        note(&self.calls, "part", &self.key, || {
            self.inner.put_part(bytes)
        })
    }

    fn start_part(&mut self, bytes: Bytes) -> BlobResult<PartInFlight> {
        let start = Instant::now();
        let part = self.inner.start_part(bytes)?;
        let (calls, key) = (self.calls.clone(), self.key.clone());
        Ok(PartInFlight::pending(move || {
            let result = part.wait();
            calls.lock().unwrap().push(Call {
                op: "part",
                key,
                start,
                end: Instant::now(),
            });
            result
        }))
    }

    fn complete(self: Box<Self>) -> BlobResult<()> {
        let TimedUpload { inner, key, calls } = *self;
        note(&calls, "complete", &key, || inner.complete())
    }

    fn abort(self: Box<Self>) -> BlobResult<()> {
        self.inner.abort()
    }
}

/// The parts of uploads: (count, mean seconds from start to answer, mean
/// parts in flight over the window from the first start to the last answer,
/// most in flight at once).
pub fn part_profile(calls: &[Call]) -> Option<(usize, f64, f64, usize)> {
    let parts: Vec<&Call> = calls.iter().filter(|c| c.op == "part").collect();
    let first = parts.iter().map(|c| c.start).min()?;
    let last = parts.iter().map(|c| c.end).max()?;
    let busy: f64 = parts.iter().map(|c| (c.end - c.start).as_secs_f64()).sum();
    let mut edges: Vec<(Instant, i32)> = parts
        .iter()
        .flat_map(|c| [(c.start, 1), (c.end, -1)])
        .collect();
    edges.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    let window = (last - first).as_secs_f64().max(1e-9);
    Some((
        parts.len(),
        busy / parts.len() as f64,
        busy / window,
        most as usize,
    ))
}

/// The window of the calls on part objects (`parts/…`) whose operation is
/// one of `ops`: (first start, last end), or `None` when there were none.
pub fn parts_window(calls: &[Call], ops: &[&str]) -> Option<(Instant, Instant)> {
    let parts = calls
        .iter()
        .filter(|c| c.key.starts_with("parts/") && ops.contains(&c.op));
    parts.fold(None, |w, c| match w {
        None => Some((c.start, c.end)),
        Some((s, e)) => Some((s.min(c.start), e.max(c.end))),
    })
}

/// The start of the first create of a commit record (`commits/…`).
pub fn first_commit_create(calls: &[Call]) -> Option<Instant> {
    calls
        .iter()
        .filter(|c| c.op == "create" && c.key.starts_with("commits/"))
        .map(|c| c.start)
        .min()
}

impl BlobStore for Timed {
    fn create_if_absent(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<CreateOutcome> {
        self.note("create", key.as_str(), || {
            self.inner.create_if_absent(key, bytes)
        })
    }

    fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()> {
        self.note("put", key.as_str(), || self.inner.put(key, bytes))
    }

    fn put_multipart(&self, key: &BlobKey) -> BlobResult<Box<dyn MultipartUpload>> {
        let inner = self.note("multipart", key.as_str(), || self.inner.put_multipart(key))?;
        Ok(Box::new(TimedUpload {
            inner,
            key: key.to_string(),
            calls: self.calls.clone(),
        }))
    }

    fn get(&self, key: &BlobKey) -> BlobResult<Bytes> {
        self.note("get", key.as_str(), || self.inner.get(key))
    }

    fn get_range(&self, key: &BlobKey, range: Range<u64>) -> BlobResult<Bytes> {
        self.note("get_range", key.as_str(), || {
            self.inner.get_range(key, range)
        })
    }

    fn head(&self, key: &BlobKey) -> BlobResult<BlobMeta> {
        self.note("head", key.as_str(), || self.inner.head(key))
    }

    fn list(
        &self,
        prefix: Option<&BlobKey>,
        after: Option<&BlobKey>,
        limit: usize,
    ) -> BlobResult<ListPage> {
        let label = prefix.map(BlobKey::as_str).unwrap_or("");
        self.note("list", label, || self.inner.list(prefix, after, limit))
    }

    fn delete(&self, key: &BlobKey) -> BlobResult<()> {
        self.note("delete", key.as_str(), || self.inner.delete(key))
    }

    fn abort_abandoned_uploads(&self, older_than: std::time::SystemTime) -> BlobResult<u64> {
        self.inner.abort_abandoned_uploads(older_than)
    }
}
