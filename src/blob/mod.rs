//! Blob stores: the narrow object-storage interface checkpoints are published
//! to beyond one machine (docs/OBJECT_STORAGE.md).
//!
//! [`BlobStore`] is deliberately not the POSIX-like
//! [`Storage`](crate::storage::Storage): an object store has no rename, no
//! append, no fsync and no directories, but it has one thing a file system
//! lacks across machines, an atomic **create-if-absent** that every client
//! sees. That is what a commit record needs.
//!
//! # The contract
//!
//! Every implementation keeps these rules ([`conformance`] checks them):
//!
//! - **Keys** are [`BlobKey`]s: validated when made, so no key escapes the
//!   store's directory or prefix.
//! - **Objects are whole.** A reader sees an object entirely or not at all:
//!   never a prefix of a put, never a mix of two puts.
//! - [`create_if_absent`](BlobStore::create_if_absent) is atomic: of any
//!   number of concurrent creates of one key, exactly one is
//!   [`CreateOutcome::Created`]; the others are
//!   [`CreateOutcome::AlreadyExists`] and the object keeps the winner's bytes.
//!   `AlreadyExists` may also answer the caller's *own* earlier attempt
//!   (a backend that retried a request whose first answer was lost): a caller
//!   that must know reads the object and compares.
//! - A mutation whose answer was lost returns [`BlobError::Indeterminate`]: it
//!   may or may not have taken effect, and it is never reported as a success
//!   or as a clean failure.
//! - [`put`](BlobStore::put) replaces the object; a successful put is visible
//!   to every later read, list and head (read-after-write).
//! - [`put_multipart`](BlobStore::put_multipart) streams an object in parts;
//!   nothing is visible before [`MultipartUpload::complete`], and an aborted
//!   or dropped upload never becomes visible. Every part but the last must be
//!   at least [`MIN_PART_BYTES`] (S3's rule); [`BlobWriter`] keeps it.
//!   Parts are in the order they are sent ([`MultipartUpload::put_part`])
//!   or started ([`MultipartUpload::start_part`], whose answers may come in
//!   any order).
//! - [`get_range`](BlobStore::get_range) returns exactly the bytes asked for,
//!   or [`BlobError::InvalidRange`] for an empty range or one past the end.
//! - [`list`](BlobStore::list) returns the objects under a prefix
//!   (segment-wise, all depths), sorted by key, strictly after a given key,
//!   one page at a time.
//! - [`delete`](BlobStore::delete) is idempotent: deleting a missing object
//!   succeeds.
//! - [`abort_abandoned_uploads`](BlobStore::abort_abandoned_uploads) never
//!   touches an object, nor an upload started at or after the time given.
//! - The API is synchronous and may be called from any thread, including one
//!   inside a tokio runtime (the `object_store` backend runs its own).

pub mod conformance;
mod error;
mod key;
mod local;
mod location;
mod meta;
#[cfg(feature = "object-store")]
mod object_store;
mod sim;
mod writer;

pub use error::{BlobError, BlobOp, BlobResult};
pub use key::{BlobKey, MAX_KEY_BYTES};
pub use local::LocalBlobStore;
pub use location::open_blob_store;
pub use meta::{BlobMeta, CreateOutcome, ListPage};
#[cfg(feature = "object-store")]
pub use object_store::{ObjectStoreBlobStore, ObjectStoreOptions};
pub use sim::{BlobFault, SimBlobStore};
pub use writer::BlobWriter;

use bytes::Bytes;
use std::fmt;
use std::ops::Range;
use std::time::SystemTime;

/// The smallest part of a multipart upload, except the last (5 MiB: S3's
/// minimum).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// The most objects one [`BlobStore::list`] page holds (S3's page size).
pub const MAX_LIST_PAGE: usize = 1000;

/// An object store, as highwater needs it (module docs: the contract).
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Creates `key` holding `bytes` if no object `key` exists.
    ///
    /// # Errors
    /// [`BlobError::Indeterminate`] when the request was sent and its answer
    /// lost: the object may now exist with these bytes. Any other error means
    /// nothing was created by this call.
    fn create_if_absent(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<CreateOutcome>;

    /// Writes `bytes` to `key`, replacing any object there.
    ///
    /// # Errors
    /// [`BlobError::Indeterminate`] when the outcome is unknown (repeat the
    /// put); [`BlobError::Transient`], [`BlobError::Throttled`] and the
    /// others when nothing was written.
    fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()>;

    /// Starts a multipart upload to `key` (it replaces any object there when
    /// completed).
    ///
    /// # Errors
    /// Any error of the backend; nothing is visible.
    fn put_multipart(&self, key: &BlobKey) -> BlobResult<Box<dyn MultipartUpload>>;

    /// The whole object.
    ///
    /// # Errors
    /// [`BlobError::NotFound`], or any error of the backend.
    fn get(&self, key: &BlobKey) -> BlobResult<Bytes>;

    /// Bytes `range` of the object.
    ///
    /// # Errors
    /// [`BlobError::InvalidRange`] for an empty range or one that ends past
    /// the object; [`BlobError::NotFound`]; any error of the backend.
    fn get_range(&self, key: &BlobKey, range: Range<u64>) -> BlobResult<Bytes>;

    /// The object's size and version tag.
    ///
    /// # Errors
    /// [`BlobError::NotFound`], or any error of the backend.
    fn head(&self, key: &BlobKey) -> BlobResult<BlobMeta>;

    /// Up to `limit` objects under `prefix` (all of them when `None`), sorted
    /// by key, each strictly after `after` when given. `limit` is clamped to
    /// `1..=`[`MAX_LIST_PAGE`]. [`ListPage::next`] is where the next page
    /// starts (`None`: this was the last).
    ///
    /// # Errors
    /// Any error of the backend.
    fn list(
        &self,
        prefix: Option<&BlobKey>,
        after: Option<&BlobKey>,
        limit: usize,
    ) -> BlobResult<ListPage>;

    /// Deletes `key`; a missing object is no error.
    ///
    /// # Errors
    /// [`BlobError::Indeterminate`] when the outcome is unknown (repeat the
    /// delete); any other error of the backend.
    fn delete(&self, key: &BlobKey) -> BlobResult<()>;

    /// Aborts the multipart uploads (and removes the temporary files) that
    /// were started before `older_than` and neither completed nor aborted,
    /// as a crashed writer leaves them, and returns how many it aborted.
    /// An upload started at or after `older_than` is left alone, so a
    /// caller that passes "now minus a grace period longer than any upload
    /// takes" never aborts one in progress. It covers the whole store, not
    /// one prefix. A backend that cannot list its uploads returns `Ok(0)`
    /// and says in its docs how they are cleaned instead (for S3, a
    /// lifecycle rule: docs/OBJECT_STORAGE.md).
    ///
    /// # Errors
    /// Any error of the backend; some uploads may have been aborted first.
    fn abort_abandoned_uploads(&self, older_than: SystemTime) -> BlobResult<u64>;
}

/// An upload started by [`BlobStore::put_multipart`].
///
/// Dropping it without [`complete`](Self::complete) or
/// [`abort`](Self::abort) abandons it: the object does not appear, and the
/// parts already sent may occupy the store until the upload is aborted (a
/// crashed writer leaves the same; garbage collection aborts them).
pub trait MultipartUpload: Send + fmt::Debug {
    /// Sends the next part. Every part but the last must hold at least
    /// [`MIN_PART_BYTES`].
    ///
    /// # Errors
    /// Any error of the backend; the upload is then to be aborted.
    fn put_part(&mut self, bytes: Bytes) -> BlobResult<()>;

    /// Sends the next part without waiting for its answer. The part's place
    /// in the object is fixed when it is started (parts are in the order they
    /// are started, whichever answer comes first); [`PartInFlight::wait`]
    /// waits for the answer. One thread can so start parts one after another
    /// while others wait on them, with as many in flight as the caller
    /// allows. Wait for every started part before [`complete`](Self::complete)
    /// (a backend's `complete` waits for them too).
    ///
    /// The default sends the part with [`put_part`](Self::put_part) and
    /// returns its answer as already in; `ObjectStoreBlobStore` starts the
    /// request and returns at once (its `part_concurrency` bounds only
    /// [`put_part`](Self::put_part)).
    ///
    /// # Errors
    /// [`BlobError::Transient`] or [`BlobError::Throttled`] returned here:
    /// nothing was sent and the same part may be started again. Any other
    /// error, here or from [`PartInFlight::wait`]: the upload is to be
    /// aborted.
    fn start_part(&mut self, bytes: Bytes) -> BlobResult<PartInFlight> {
        self.put_part(bytes)?;
        Ok(PartInFlight::done(Ok(())))
    }

    /// Makes the object visible, holding every part in order.
    ///
    /// # Errors
    /// [`BlobError::Indeterminate`] when the answer was lost (read the object
    /// to find out); any other error of the backend.
    fn complete(self: Box<Self>) -> BlobResult<()>;

    /// Discards the upload and its parts.
    ///
    /// # Errors
    /// Any error of the backend.
    fn abort(self: Box<Self>) -> BlobResult<()>;
}

/// A part started by [`MultipartUpload::start_part`], its answer perhaps
/// still to come.
#[must_use = "a part's answer must be waited for before the upload completes"]
pub struct PartInFlight(Box<dyn FnOnce() -> BlobResult<()> + Send>);

impl PartInFlight {
    /// A part whose answer is in: `result`.
    pub fn done(result: BlobResult<()>) -> Self {
        PartInFlight(Box::new(move || result))
    }

    /// A part whose answer `wait` blocks for.
    pub fn pending(wait: impl FnOnce() -> BlobResult<()> + Send + 'static) -> Self {
        PartInFlight(Box::new(wait))
    }

    /// Waits for the part's answer.
    ///
    /// # Errors
    /// The backend's error for the part; the upload is then to be aborted.
    pub fn wait(self) -> BlobResult<()> {
        (self.0)()
    }
}

impl fmt::Debug for PartInFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartInFlight").finish_non_exhaustive()
    }
}

/// Every object under `prefix`, all pages of [`BlobStore::list`] joined.
///
/// # Errors
/// The first error of a page.
pub fn list_all(store: &dyn BlobStore, prefix: Option<&BlobKey>) -> BlobResult<Vec<BlobMeta>> {
    let mut out = Vec::new();
    let mut after: Option<BlobKey> = None;
    loop {
        let page = store.list(prefix, after.as_ref(), MAX_LIST_PAGE)?;
        out.extend(page.objects);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

/// The [`BlobError::InvalidRange`] for an empty range, checked before any
/// request.
pub(crate) fn check_range(key: &BlobKey, range: &Range<u64>) -> BlobResult<()> {
    if range.start >= range.end {
        return Err(BlobError::InvalidRange {
            operation: BlobOp::Get,
            key: key.to_string(),
            start: range.start,
            end: range.end,
            size: 0,
        });
    }
    Ok(())
}

/// `limit` clamped to `1..=MAX_LIST_PAGE`.
pub(crate) fn page_limit(limit: usize) -> usize {
    limit.clamp(1, MAX_LIST_PAGE)
}
