//! [`BlobError`]: what a [`BlobStore`](super::BlobStore) call can fail with.
//!
//! Every variant names the operation (one of [`BlobOp`]) and the key (the
//! key as given, or the prefix of a listing), so a log line alone tells which
//! request failed. The variants are the answers a caller branches on:
//!
//! - [`BlobError::NotFound`]: the object is not there (never for `delete`);
//! - [`BlobError::Indeterminate`]: the request may or may not have taken
//!   effect (a timeout or a lost connection after it was sent, a crash). For
//!   `create_if_absent` the caller must read the key to find out; for `put`
//!   and `delete`, repeating the call resolves it (both are idempotent);
//! - [`BlobError::Transient`] and [`BlobError::Throttled`]: the request did
//!   not take effect and may succeed later (the backend's own retries were
//!   used up first);
//! - [`BlobError::InvalidKey`], [`BlobError::InvalidRange`],
//!   [`BlobError::InvalidLocation`], [`BlobError::Unsupported`]: fix the call
//!   or the configuration;
//! - [`BlobError::Precondition`], [`BlobError::PermissionDenied`],
//!   [`BlobError::Backend`], [`BlobError::Io`]: everything else, typed as far
//!   as the backend tells.

use std::fmt;
use std::path::PathBuf;

/// A `Result` whose error is [`BlobError`].
pub type BlobResult<T> = std::result::Result<T, BlobError>;

/// The blob-store operation a [`BlobError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlobOp {
    /// [`BlobStore::create_if_absent`](super::BlobStore::create_if_absent).
    Create,
    /// [`BlobStore::put`](super::BlobStore::put).
    Put,
    /// [`BlobStore::put_multipart`](super::BlobStore::put_multipart) and its
    /// parts.
    Multipart,
    /// Completing a multipart upload.
    Complete,
    /// Aborting a multipart upload.
    Abort,
    /// [`BlobStore::get_range`](super::BlobStore::get_range) and
    /// [`BlobStore::get`](super::BlobStore::get).
    Get,
    /// [`BlobStore::head`](super::BlobStore::head).
    Head,
    /// [`BlobStore::list`](super::BlobStore::list).
    List,
    /// [`BlobStore::delete`](super::BlobStore::delete).
    Delete,
    /// Opening a store from a location.
    Open,
}

impl BlobOp {
    /// The operation's name in messages, logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            BlobOp::Create => "create",
            BlobOp::Put => "put",
            BlobOp::Multipart => "multipart put",
            BlobOp::Complete => "complete multipart",
            BlobOp::Abort => "abort multipart",
            BlobOp::Get => "get",
            BlobOp::Head => "head",
            BlobOp::List => "list",
            BlobOp::Delete => "delete",
            BlobOp::Open => "open",
        }
    }
}

impl fmt::Display for BlobOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a blob-store call can fail with (module docs: what to do).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The object does not exist.
    #[error("{operation} {key}: no such object")]
    NotFound {
        /// What was being done.
        operation: BlobOp,
        /// The object's key.
        key: String,
    },

    /// The request may or may not have taken effect: it was sent and no answer
    /// came back (a timeout, a lost connection, a crash). Read the key to find
    /// out; for a create, an object with exactly the bytes sent may be this
    /// caller's own write.
    #[error("{operation} {key}: outcome unknown, the request may or may not have taken effect ({reason}); read the object to find out")]
    Indeterminate {
        /// What was being done.
        operation: BlobOp,
        /// The object's key.
        key: String,
        /// What happened instead of an answer.
        reason: String,
    },

    /// The request did not take effect, and the same call may succeed later
    /// (a server error, a refused connection), after the backend's own
    /// retries were used up.
    #[error("{operation} {key}: failed, retry later ({reason})")]
    Transient {
        /// What was being done.
        operation: BlobOp,
        /// The object's key.
        key: String,
        /// What the backend said.
        reason: String,
    },

    /// The service asked the client to slow down (S3 `SlowDown`, HTTP 429 or
    /// 503) for longer than the backend's retries waited. Nothing was done.
    #[error("{operation} {key}: throttled by the service, retry later ({reason})")]
    Throttled {
        /// What was being done.
        operation: BlobOp,
        /// The object's key.
        key: String,
        /// What the service said.
        reason: String,
    },

    /// A condition of the request did not hold (for example an `If-Match`
    /// on a changed object).
    #[error("{operation} {key}: precondition failed ({reason})")]
    Precondition {
        /// What was being done.
        operation: BlobOp,
        /// The object's key.
        key: String,
        /// What the backend said.
        reason: String,
    },

    /// The credentials are missing, wrong, or lack the permission.
    #[error("{operation} {key}: permission denied ({reason})")]
    PermissionDenied {
        /// What was being done.
        operation: BlobOp,
        /// The object's key.
        key: String,
        /// What the backend said.
        reason: String,
    },

    /// A key (or a prefix) breaks the key rules (`BlobKey`).
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// The rule it breaks.
        reason: &'static str,
    },

    /// A ranged read asked for bytes outside the object, or an empty range.
    #[error("{operation} {key}: range {start}..{end} is not within the object's {size} bytes (or is empty)")]
    InvalidRange {
        /// What was being done.
        operation: BlobOp,
        /// The object's key.
        key: String,
        /// The first byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// The object's size (0 when the range is refused before any request).
        size: u64,
    },

    /// A location (URL or path) cannot be opened as a blob store.
    #[error("cannot open blob store at {location:?}: {reason}")]
    InvalidLocation {
        /// The location as given.
        location: String,
        /// Why not.
        reason: String,
    },

    /// The backend or this build cannot do the operation (a `s3://` location
    /// without the `object-store` feature, a store without conditional put).
    #[error("{operation} {key}: not supported: {reason}")]
    Unsupported {
        /// What was being done.
        operation: BlobOp,
        /// The object's key (or the location).
        key: String,
        /// What is missing.
        reason: String,
    },

    /// The simulator's client crashed at this operation (or earlier); every
    /// later call of the crashed handle fails with this error.
    #[error("{operation} {key}: the simulated client crashed")]
    Crashed {
        /// What was being done.
        operation: BlobOp,
        /// The object's key.
        key: String,
    },

    /// Any other failure the backend reported.
    #[error("{operation} {key}: {reason}")]
    Backend {
        /// What was being done.
        operation: BlobOp,
        /// The object's key.
        key: String,
        /// What the backend said.
        reason: String,
    },

    /// A local directory's file-system call failed.
    #[error("{operation} {key} ({path}): {source}")]
    Io {
        /// What was being done.
        operation: BlobOp,
        /// The object's key.
        key: String,
        /// The file or directory the call was made on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl BlobError {
    /// The operation that failed, when the error names one.
    pub fn operation(&self) -> Option<BlobOp> {
        match self {
            BlobError::NotFound { operation, .. }
            | BlobError::Indeterminate { operation, .. }
            | BlobError::Transient { operation, .. }
            | BlobError::Throttled { operation, .. }
            | BlobError::Precondition { operation, .. }
            | BlobError::PermissionDenied { operation, .. }
            | BlobError::InvalidRange { operation, .. }
            | BlobError::Unsupported { operation, .. }
            | BlobError::Crashed { operation, .. }
            | BlobError::Backend { operation, .. }
            | BlobError::Io { operation, .. } => Some(*operation),
            BlobError::InvalidKey { .. } => None,
            BlobError::InvalidLocation { .. } => Some(BlobOp::Open),
        }
    }

    /// The key (or location) the error is about.
    pub fn key(&self) -> &str {
        match self {
            BlobError::NotFound { key, .. }
            | BlobError::Indeterminate { key, .. }
            | BlobError::Transient { key, .. }
            | BlobError::Throttled { key, .. }
            | BlobError::Precondition { key, .. }
            | BlobError::PermissionDenied { key, .. }
            | BlobError::InvalidKey { key, .. }
            | BlobError::InvalidRange { key, .. }
            | BlobError::Unsupported { key, .. }
            | BlobError::Crashed { key, .. }
            | BlobError::Backend { key, .. }
            | BlobError::Io { key, .. } => key,
            BlobError::InvalidLocation { location, .. } => location,
        }
    }

    /// True when the outcome of a mutation is unknown
    /// ([`BlobError::Indeterminate`], or [`BlobError::Crashed`], after
    /// which nothing is known either).
    pub fn is_indeterminate(&self) -> bool {
        matches!(
            self,
            BlobError::Indeterminate { .. } | BlobError::Crashed { .. }
        )
    }

    /// True when the same call, repeated later unchanged, may succeed:
    /// [`BlobError::Transient`], [`BlobError::Throttled`], and
    /// [`BlobError::Indeterminate`] (resolve a create's outcome by reading
    /// the key before repeating it), and an [`BlobError::Io`] that is not a
    /// missing file.
    pub fn is_retryable(&self) -> bool {
        match self {
            BlobError::Transient { .. }
            | BlobError::Throttled { .. }
            | BlobError::Indeterminate { .. } => true,
            BlobError::Io { source, .. } => source.kind() != std::io::ErrorKind::NotFound,
            _ => false,
        }
    }

    /// True for [`BlobError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, BlobError::NotFound { .. })
    }

    /// An [`BlobError::Io`].
    pub(crate) fn io(
        operation: BlobOp,
        key: &str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        BlobError::Io {
            operation,
            key: key.to_string(),
            path: path.into(),
            source,
        }
    }
}
