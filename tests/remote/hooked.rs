//! [`Hooked`]: a blob store that runs a test's closure at a chosen call
//! (to interleave a zombie writer with a new one in one thread), and
//! [`linked`], a client whose crash crashes the process's disk too.

use highwater::blob::{
    BlobKey, BlobMeta, BlobOp, BlobResult, BlobStore, CreateOutcome, ListPage, MultipartUpload,
    SimBlobStore,
};
use highwater::storage::CrashSimStorage;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// When a [`Hooked`] store runs its hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Before the call reaches the store.
    Before,
    /// After the store answered, before the caller sees the answer.
    After,
}

type Hook = Box<dyn FnOnce() + Send>;

/// A blob store that runs one closure at the `n`-th call (from 0) of kind
/// `op`, before or after it, and otherwise forwards every call.
pub struct Hooked {
    inner: Arc<dyn BlobStore>,
    hooks: Mutex<Vec<(BlobOp, u64, When, Hook)>>,
    seen: Mutex<HashMap<BlobOp, u64>>,
    /// Run after every call.
    after_each: Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooked")
            .field("inner", &self.inner)
            .finish()
    }
}

impl Hooked {
    /// Forwards to `inner`.
    pub fn new(inner: Arc<dyn BlobStore>) -> Arc<Self> {
        Arc::new(Hooked {
            inner,
            hooks: Mutex::new(Vec::new()),
            seen: Mutex::new(HashMap::new()),
            after_each: Mutex::new(None),
        })
    }

    /// Runs `hook` at the `n`-th call of kind `op` (counted from now on).
    pub fn at(&self, op: BlobOp, n: u64, when: When, hook: impl FnOnce() + Send + 'static) {
        let base = self.seen.lock().unwrap().get(&op).copied().unwrap_or(0);
        self.hooks
            .lock()
            .unwrap()
            .push((op, base + n, when, Box::new(hook)));
    }

    /// Calls of kind `op` so far.
    pub fn calls(&self, op: BlobOp) -> u64 {
        self.seen.lock().unwrap().get(&op).copied().unwrap_or(0)
    }

    /// Hooks not run yet.
    pub fn pending(&self) -> usize {
        self.hooks.lock().unwrap().len()
    }

    fn call<T>(&self, op: BlobOp, f: impl FnOnce() -> BlobResult<T>) -> BlobResult<T> {
        let n = {
            let mut seen = self.seen.lock().unwrap();
            let n = seen.entry(op).or_insert(0);
            *n += 1;
            *n - 1
        };
        // Every hook of this call, in the order they were planned; run
        // without the lock (a hook may use this store).
        let take = |when: When| -> Vec<Hook> {
            let mut hooks = self.hooks.lock().unwrap();
            let (now, later) = std::mem::take(&mut *hooks)
                .into_iter()
                .partition(|(o, k, w, _)| *o == op && *k == n && *w == when);
            *hooks = later;
            now.into_iter()
                .map(|h: (BlobOp, u64, When, Hook)| h.3)
                .collect()
        };
        take(When::Before).into_iter().for_each(|h| h());
        let out = f();
        take(When::After).into_iter().for_each(|h| h());
        if let Some(f) = &*self.after_each.lock().unwrap() {
            f();
        }
        out
    }
}

impl BlobStore for Hooked {
    fn create_if_absent(&self, key: &BlobKey, bytes: bytes::Bytes) -> BlobResult<CreateOutcome> {
        self.call(BlobOp::Create, || self.inner.create_if_absent(key, bytes))
    }
    fn put(&self, key: &BlobKey, bytes: bytes::Bytes) -> BlobResult<()> {
        self.call(BlobOp::Put, || self.inner.put(key, bytes))
    }
    fn put_multipart(&self, key: &BlobKey) -> BlobResult<Box<dyn MultipartUpload>> {
        self.call(BlobOp::Multipart, || self.inner.put_multipart(key))
    }
    fn get(&self, key: &BlobKey) -> BlobResult<bytes::Bytes> {
        self.call(BlobOp::Get, || self.inner.get(key))
    }
    fn get_range(&self, key: &BlobKey, range: Range<u64>) -> BlobResult<bytes::Bytes> {
        self.call(BlobOp::Get, || self.inner.get_range(key, range))
    }
    fn head(&self, key: &BlobKey) -> BlobResult<BlobMeta> {
        self.call(BlobOp::Head, || self.inner.head(key))
    }
    fn list(
        &self,
        prefix: Option<&BlobKey>,
        after: Option<&BlobKey>,
        limit: usize,
    ) -> BlobResult<ListPage> {
        self.call(BlobOp::List, || self.inner.list(prefix, after, limit))
    }
    fn delete(&self, key: &BlobKey) -> BlobResult<()> {
        self.call(BlobOp::Delete, || self.inner.delete(key))
    }
    fn abort_abandoned_uploads(&self, older_than: std::time::SystemTime) -> BlobResult<u64> {
        self.call(BlobOp::Abort, || {
            self.inner.abort_abandoned_uploads(older_than)
        })
    }
}

/// A client whose process is the disk's: once the client crashed (at a
/// planned operation), the disk crashes too, before the caller sees the
/// answer, so nothing the process does after the crash reaches either.
pub fn linked(sim: &SimBlobStore, disk: &CrashSimStorage) -> Arc<Hooked> {
    let hooked = Hooked::new(Arc::new(sim.clone()));
    *hooked.after_each.lock().unwrap() = Some(Box::new({
        let (sim, disk) = (sim.clone(), disk.clone());
        move || {
            if sim.crashed() {
                disk.crash();
            }
        }
    }));
    hooked
}
