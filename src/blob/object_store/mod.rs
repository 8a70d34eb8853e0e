//! [`ObjectStoreBlobStore`]: a [`BlobStore`] over Apache Arrow's
//! `object_store` (S3, GCS, Azure), feature `object-store`.
//!
//! Invariants:
//! - the store owns a tokio runtime on its own threads (`highwater-blob-*`);
//!   every call is one task spawned there, and the caller waits on a std
//!   channel, never on a tokio primitive, so calling from inside another tokio
//!   runtime neither panics nor needs `block_in_place` (it blocks that thread
//!   for the call's duration). Dropping the store shuts its runtime down in
//!   the background, which is allowed inside a runtime too.
//! - every write carries `Content-Type: application/octet-stream`, and every
//!   request is signed by `object_store` with the credentials its builder
//!   read from the environment;
//! - transient failures are retried by `object_store`'s `RetryConfig`
//!   (exponential backoff; a conditional create is not retried after a
//!   timeout, because it is not idempotent); what is left is typed by
//!   `errors.rs`;
//! - an object's key is `<prefix>/<key>`; listing strips the prefix and
//!   skips objects whose names are not valid [`BlobKey`]s (foreign objects);
//! - abandoned multipart uploads are left to the bucket's lifecycle rule
//!   (`object_store` cannot list them): `abort_abandoned_uploads` is `Ok(0)`.

mod errors;
mod location;
mod trace;
mod upload;

pub use location::ObjectStoreOptions;

use super::{
    check_range, page_limit, BlobError, BlobKey, BlobMeta, BlobOp, BlobResult, BlobStore,
    CreateOutcome, ListPage, MultipartUpload,
};
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions,
    PutOptions, PutPayload,
};
use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use trace::{Trace, TRACE};

/// The Content-Type of every object highwater writes.
pub(crate) const CONTENT_TYPE: &str = "application/octet-stream";

/// A blob store in S3, GCS, Azure or any other `object_store` backend.
///
/// # Examples
/// ```no_run
/// use highwater::blob::{BlobKey, BlobStore, ObjectStoreBlobStore, ObjectStoreOptions};
/// // Credentials, region and endpoint from AWS_* variables, as object_store reads them.
/// let store = ObjectStoreBlobStore::from_url("s3://my-bucket/jobs/orders", ObjectStoreOptions::default())?;
/// store.put(&BlobKey::new("hello")?, "world".into())?;
/// # Ok::<(), highwater::blob::BlobError>(())
/// ```
pub struct ObjectStoreBlobStore {
    store: Arc<dyn ObjectStore>,
    /// `<bucket>/<prefix>` or the like, for messages.
    label: String,
    /// Prepended to every key (empty: none).
    prefix: String,
    options: ObjectStoreOptions,
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for ObjectStoreBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreBlobStore")
            .field("location", &self.label)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl ObjectStoreBlobStore {
    /// A blob store over `store`, its keys under `prefix` (none when `None`).
    ///
    /// # Errors
    /// [`BlobError::Backend`] if the runtime's threads cannot be started.
    pub fn from_store(
        store: Arc<dyn ObjectStore>,
        prefix: Option<&BlobKey>,
        options: ObjectStoreOptions,
    ) -> BlobResult<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.worker_threads.max(1))
            .thread_name("highwater-blob")
            .enable_all()
            .build()
            .map_err(|e| BlobError::Backend {
                operation: BlobOp::Open,
                key: store.to_string(),
                reason: format!("cannot start the blob store's runtime: {e}"),
            })?;
        Ok(ObjectStoreBlobStore {
            label: store.to_string(),
            store,
            prefix: prefix.map(|p| p.to_string()).unwrap_or_default(),
            options,
            runtime: Some(runtime),
        })
    }

    /// An in-memory `object_store` (its `InMemory`), for tests of this adapter.
    ///
    /// # Errors
    /// As [`from_store`](Self::from_store).
    pub fn in_memory() -> BlobResult<Self> {
        Self::from_store(
            Arc::new(object_store::memory::InMemory::new()),
            None,
            ObjectStoreOptions::default(),
        )
    }

    /// The object's path in the backend.
    fn path(&self, key: &BlobKey) -> Path {
        if self.prefix.is_empty() {
            Path::from(key.as_str())
        } else {
            Path::from(format!("{}/{key}", self.prefix))
        }
    }

    /// Runs `fut` as one task on the store's runtime and waits for it.
    fn run<T: Send + 'static>(
        &self,
        op: BlobOp,
        key: &str,
        fut: impl Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> BlobResult<T> {
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the store");
        Pending::spawn(runtime.handle(), op, key, fut).wait()
    }
}

/// A call running as one task on the store's runtime, inside its trace.
struct Pending<T> {
    op: BlobOp,
    key: String,
    trace: Arc<Mutex<Trace>>,
    rx: std::sync::mpsc::Receiver<object_store::Result<T>>,
}

impl<T: Send + 'static> Pending<T> {
    fn spawn(
        handle: &tokio::runtime::Handle,
        op: BlobOp,
        key: &str,
        fut: impl Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> Self {
        let trace = Arc::new(Mutex::new(Trace {
            operation: Some(op),
            key: key.to_string(),
            ..Trace::default()
        }));
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        handle.spawn(TRACE.scope(trace.clone(), async move {
            let _ = tx.send(fut.await);
        }));
        Pending {
            op,
            key: key.to_string(),
            trace,
            rx,
        }
    }

    /// Waits on a std channel (never a tokio one: this may run inside a
    /// runtime) and types the error.
    fn wait(self) -> BlobResult<T> {
        let result = self.rx.recv().map_err(|_| BlobError::Backend {
            operation: self.op,
            key: self.key.clone(),
            reason: "the blob store's task ended without an answer".into(),
        })?;
        let trace = self.trace.lock().unwrap_or_else(|e| e.into_inner());
        result.map_err(|e| errors::map(self.op, &self.key, e, &trace))
    }
}

/// The [`BlobMeta`] of a listed object under `prefix`, `None` for a name
/// that is not a valid key (an object highwater did not write).
fn to_meta(prefix: &str, m: ObjectMeta) -> Option<BlobMeta> {
    let full = m.location.as_ref();
    let name = if prefix.is_empty() {
        full
    } else {
        full.strip_prefix(prefix)?.strip_prefix('/')?
    };
    Some(BlobMeta {
        key: BlobKey::new(name).ok()?,
        size: m.size,
        etag: m.e_tag,
        last_modified: Some(m.last_modified.into()),
    })
}

/// Attributes of every write: the Content-Type.
fn attributes() -> Attributes {
    let mut a = Attributes::new();
    a.insert(Attribute::ContentType, CONTENT_TYPE.into());
    a
}

impl BlobStore for ObjectStoreBlobStore {
    fn create_if_absent(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<CreateOutcome> {
        let (store, path) = (self.store.clone(), self.path(key));
        let opts = PutOptions {
            mode: PutMode::Create,
            attributes: attributes(),
            ..PutOptions::default()
        };
        let put = self.run(BlobOp::Create, key.as_str(), async move {
            match store.put_opts(&path, PutPayload::from(bytes), opts).await {
                Ok(_) => Ok(CreateOutcome::Created),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(CreateOutcome::AlreadyExists),
                Err(e) => Err(e),
            }
        });
        match put {
            // A 412 that object_store did not itself turn into AlreadyExists.
            Err(BlobError::Precondition { .. }) => Ok(CreateOutcome::AlreadyExists),
            other => other,
        }
    }

    fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()> {
        let (store, path) = (self.store.clone(), self.path(key));
        let opts = PutOptions {
            attributes: attributes(),
            ..PutOptions::default()
        };
        self.run(BlobOp::Put, key.as_str(), async move {
            store
                .put_opts(&path, PutPayload::from(bytes), opts)
                .await
                .map(|_| ())
        })
    }

    fn put_multipart(&self, key: &BlobKey) -> BlobResult<Box<dyn MultipartUpload>> {
        let (store, path) = (self.store.clone(), self.path(key));
        let opts = PutMultipartOptions {
            attributes: attributes(),
            ..PutMultipartOptions::default()
        };
        let upload = self.run(BlobOp::Multipart, key.as_str(), async move {
            store.put_multipart_opts(&path, opts).await
        })?;
        let runtime = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as the store");
        Ok(Box::new(upload::Upload::new(
            runtime.handle().clone(),
            key.clone(),
            upload,
            self.options.part_concurrency,
        )))
    }

    fn get(&self, key: &BlobKey) -> BlobResult<Bytes> {
        let (store, path) = (self.store.clone(), self.path(key));
        self.run(BlobOp::Get, key.as_str(), async move {
            store.get(&path).await?.bytes().await
        })
    }

    fn get_range(&self, key: &BlobKey, range: Range<u64>) -> BlobResult<Bytes> {
        check_range(key, &range)?;
        let (store, path) = (self.store.clone(), self.path(key));
        let asked = range.clone();
        let got = self.run(BlobOp::Get, key.as_str(), async move {
            store.get_range(&path, asked).await
        });
        let invalid = |size| BlobError::InvalidRange {
            operation: BlobOp::Get,
            key: key.to_string(),
            start: range.start,
            end: range.end,
            size,
        };
        match got {
            // The backend clamps a range that ends past the object.
            Ok(bytes) if bytes.len() as u64 == range.end - range.start => Ok(bytes),
            Ok(_) => Err(invalid(self.head(key)?.size)),
            Err(e @ BlobError::NotFound { .. }) => Err(e),
            // A range that starts past the end is refused (416) as a generic error.
            Err(e) => match self.head(key) {
                Ok(meta) if range.end > meta.size => Err(invalid(meta.size)),
                _ => Err(e),
            },
        }
    }

    fn head(&self, key: &BlobKey) -> BlobResult<BlobMeta> {
        let (store, path) = (self.store.clone(), self.path(key));
        let meta = self.run(BlobOp::Head, key.as_str(), async move {
            store.head(&path).await
        })?;
        Ok(BlobMeta {
            key: key.clone(),
            size: meta.size,
            etag: meta.e_tag,
            last_modified: Some(meta.last_modified.into()),
        })
    }

    fn list(
        &self,
        prefix: Option<&BlobKey>,
        after: Option<&BlobKey>,
        limit: usize,
    ) -> BlobResult<ListPage> {
        let limit = page_limit(limit);
        let store = self.store.clone();
        let under = match prefix {
            Some(p) => Some(self.path(p)),
            None if self.prefix.is_empty() => None,
            None => Some(Path::from(self.prefix.as_str())),
        };
        let offset = after.map(|a| self.path(a));
        let label = prefix.map(BlobKey::as_str).unwrap_or("");
        let (base, after_key) = (self.prefix.clone(), after.cloned());
        let mut objects = self.run(BlobOp::List, label, async move {
            let mut stream = match &offset {
                Some(offset) => store.list_with_offset(under.as_ref(), offset),
                None => store.list(under.as_ref()),
            };
            // Backends list in key order, so no more than one page past the
            // cursor is read, unless the order is broken (then all, sorted).
            let (mut objects, mut sorted) = (Vec::<BlobMeta>::new(), true);
            while let Some(meta) = stream.next().await {
                let Some(meta) = to_meta(&base, meta?) else {
                    continue;
                };
                if after_key.as_ref().is_some_and(|a| &meta.key <= a) {
                    continue;
                }
                if objects.last().is_some_and(|l| l.key >= meta.key) {
                    sorted = false;
                }
                objects.push(meta);
                if sorted && objects.len() > limit {
                    break;
                }
            }
            Ok(objects)
        })?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        objects.truncate(limit + 1);
        Ok(ListPage::from_sorted(objects, limit))
    }

    fn delete(&self, key: &BlobKey) -> BlobResult<()> {
        let (store, path) = (self.store.clone(), self.path(key));
        match self.run(BlobOp::Delete, key.as_str(), async move {
            store.delete(&path).await
        }) {
            Err(BlobError::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    /// `Ok(0)`, sending nothing: `object_store` 0.14 cannot list a bucket's
    /// multipart uploads (its `MultipartStore` only creates, completes and
    /// aborts uploads by id). Abandoned uploads are aborted by the bucket's
    /// own lifecycle rule instead (S3 `AbortIncompleteMultipartUpload`, GCS
    /// `AbortIncompleteMultipartUpload`; docs/OBJECT_STORAGE.md); Azure
    /// discards uncommitted blocks after 7 days by itself.
    fn abort_abandoned_uploads(&self, _older_than: std::time::SystemTime) -> BlobResult<u64> {
        Ok(0)
    }
}

impl Drop for ObjectStoreBlobStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Not `drop(runtime)`: that blocks, which panics inside a runtime.
            runtime.shutdown_background();
        }
    }
}
