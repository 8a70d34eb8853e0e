//! A [`BlobStore`] that passes every call to the store it wraps and notes
//! when each call started and ended, so the bench can tell the part
//! transfers of a checkpoint from the local publish around them.
//!
//! Only the calls themselves are noted: the parts of a multipart upload go
//! through the upload object the inner store returns, unwrapped (and so
//! untimed); the commit record's create starts after the last part is
//! complete, which closes the upload's window.

use bytes::Bytes;
use highwater::blob::{
    BlobKey, BlobMeta, BlobResult, BlobStore, CreateOutcome, ListPage, MultipartUpload,
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
    calls: Mutex<Vec<Call>>,
}

impl Timed {
    pub fn new(inner: Arc<dyn BlobStore>) -> Self {
        Timed {
            inner,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// The calls noted since the last `take`.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn note<T>(&self, op: &'static str, key: &str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = f();
        self.calls.lock().unwrap().push(Call {
            op,
            key: key.to_string(),
            start,
            end: Instant::now(),
        });
        result
    }
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
        self.note("multipart", key.as_str(), || self.inner.put_multipart(key))
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
