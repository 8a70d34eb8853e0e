//! The one way an I/O error gets its context.
//!
//! Every `std::io::Error` from the [`Storage`](crate::storage::Storage)
//! traits becomes an [`Error::Io`] naming the operation and the path, at the
//! call that failed:
//!
//! ```ignore
//! let file = storage.open_file(&path, OpenMode::Read).ctx("open", &path)?;
//! ```
//!
//! Where the error is in hand (a `match` arm that looks at its kind first),
//! [`Error::io`] builds the same value. No closures returning `Error::Io`, no
//! `map_err` spelled out at each call.
//!
//! The operation is a short lower-case verb phrase from one vocabulary:
//! "open", "create", "read", "write", "stat", "list", "truncate", "rename",
//! "remove", "map", "lock", "create directory", "sync", "sync directory".
//! Every fsync is "sync" or "sync directory":
//! [`Error::is_retryable`](Error::is_retryable) relies on that prefix to
//! refuse retrying a failed fsync.

use super::{Error, Result};
use std::path::{Path, PathBuf};

impl Error {
    /// Builds an [`Error::Io`]: `operation` on `path` failed with `source`.
    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            operation,
            path: path.into(),
            source,
        }
    }
}

/// Adds the operation and path to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Wraps the error in [`Error::Io`] with `operation` and `path`.
    ///
    /// # Errors
    /// The `io::Error`, as [`Error::Io`].
    fn ctx(self, operation: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, operation: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(operation, path, e))
    }
}
