//! What blob-store calls answer: [`CreateOutcome`], [`BlobMeta`], [`ListPage`].

use super::BlobKey;
use std::time::SystemTime;

/// The answer of [`BlobStore::create_if_absent`](super::BlobStore::create_if_absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateOutcome {
    /// This call created the object.
    Created,
    /// An object with this key already existed (possibly written by this
    /// caller's own earlier, indeterminate attempt); it was left unchanged.
    AlreadyExists,
}

/// What [`BlobStore::head`](super::BlobStore::head) and
/// [`BlobStore::list`](super::BlobStore::list) tell about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// The object's key.
    pub key: BlobKey,
    /// Its size in bytes.
    pub size: u64,
    /// A tag that changes whenever the object is replaced (S3's ETag), when
    /// the backend has one. Listings may leave it out.
    pub etag: Option<String>,
    /// When the object was last written, when the backend tells.
    pub last_modified: Option<SystemTime>,
}

/// One page of [`BlobStore::list`](super::BlobStore::list).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    /// The objects, sorted by key.
    pub objects: Vec<BlobMeta>,
    /// Where the next page starts (pass it as `after`), or `None` when there
    /// are no more objects.
    pub next: Option<BlobKey>,
}

impl ListPage {
    /// A page from the sorted objects after the cursor, `limit` at most:
    /// `next` is set when more remain.
    pub(crate) fn from_sorted(mut objects: Vec<BlobMeta>, limit: usize) -> Self {
        let more = objects.len() > limit;
        objects.truncate(limit);
        let next = if more {
            objects.last().map(|m| m.key.clone())
        } else {
            None
        };
        ListPage { objects, next }
    }
}
