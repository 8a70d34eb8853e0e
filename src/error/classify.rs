//! Questions a caller asks of any [`Error`]: where (path, offset), what kind
//! (corruption, not found) and whether to retry.

use super::Error;

impl Error {
    /// The file or directory the error is about, when it names one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Error::Io { path, .. }
            | Error::Poisoned { path, .. }
            | Error::Locked { path, .. }
            | Error::WalCorrupted { path, .. }
            | Error::WalChecksumMismatch { path, .. }
            | Error::UnsupportedVersion { path, .. }
            | Error::NotARecordBoundary { path, .. }
            | Error::PositionNotCovered { path, .. }
            | Error::PositionBeyondEnd { path, .. }
            | Error::StateCorrupted { path, .. }
            | Error::StateChecksumMismatch { path, .. }
            | Error::WrongStateKind { path, .. }
            | Error::ArrowCorrupted { path, .. }
            | Error::ArrowSchemaMismatch { path, .. }
            | Error::CheckpointCorrupted { path, .. }
            | Error::CheckpointFileMismatch { path, .. }
            | Error::CheckpointChainBroken { path, .. }
            | Error::CheckpointParentUnrestorable { path, .. }
            | Error::PartNotFound { path, .. }
            | Error::CheckpointExists { path, .. }
            | Error::UnsafeName { path, .. }
            | Error::CheckpointNotCovered { path, .. }
            | Error::WalBehindCheckpoint { path, .. }
            | Error::SinkTransactionInvalid { path, .. }
            | Error::SinkAheadOfCheckpoint { path, .. }
            | Error::NotACommitBoundary { path, .. }
            | Error::RecordExceedsMaxSize { path, .. }
            | Error::DeltaParentUnknown { path }
            | Error::DeltaParentMismatch { path, .. }
            | Error::CheckpointIdExhausted { path, .. }
            | Error::EpochExhausted { path, .. }
            | Error::KeyUnavailable { path, .. }
            | Error::KeyMismatch { path, .. }
            | Error::AuthenticationFailed { path, .. } => Some(path),
            #[cfg(feature = "arrow")]
            Error::ArrowEncode { path, .. } => Some(path),
            Error::CheckpointNotFound { dir, .. } => Some(dir),
            _ => None,
        }
    }

    /// The byte offset in [`path`](Self::path) the error is about, when one is
    /// known (damage in a segment, state file or metadata file).
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::WalCorrupted { offset, .. }
            | Error::WalChecksumMismatch { offset, .. }
            | Error::RecordExceedsMaxSize { offset, .. }
            | Error::StateCorrupted { offset, .. }
            | Error::StateChecksumMismatch { offset, .. }
            | Error::AuthenticationFailed { offset, .. } => Some(*offset),
            Error::CheckpointCorrupted { offset, .. } | Error::ArrowCorrupted { offset, .. } => {
                *offset
            }
            _ => None,
        }
    }

    /// True when repeating the same call later, unchanged, may succeed: the
    /// cause can pass without anyone changing the call, the data or the
    /// configuration.
    ///
    /// - Retryable: [`Error::Io`] of any operation but an fsync (a transient
    ///   device, network or resource failure; a writer that must not go on
    ///   after it — the log after a failed write — fails the retry with
    ///   [`Error::Poisoned`]),
    ///   [`Error::Blob`] when its [`BlobError::is_retryable`](crate::blob::BlobError::is_retryable),
    ///   [`Error::Locked`] (another writer holds the directory: retry once it
    ///   is gone), [`Error::SinkCommitPending`] (the commit is retried by the
    ///   next checkpoint or by recovery), [`Error::SinkInUse`] (once the other
    ///   coordinator is dropped), and [`Error::CheckpointParentUnrestorable`]
    ///   when the ancestor's error is and is not damage (its check may pass
    ///   next time).
    /// - Not retryable: a failed fsync ([`Error::Io`] whose operation is
    ///   "sync" or "sync directory": the writes it covered may be lost while
    ///   the page cache still serves them, and a later fsync in the same boot
    ///   succeeds without them — see docs/RECOVERY.md, "After a failed
    ///   fsync"), [`Error::Poisoned`] (reopen instead), damage
    ///   ([`is_corruption`](Self::is_corruption): repair, or restore from an
    ///   older checkpoint; docs/OPERATIONS.md), unsupported versions, and
    ///   every error that names a wrong argument or call order (fix the call).
    ///
    /// # Examples
    /// ```
    /// let e = highwater::Error::InvalidArgument(highwater::ArgumentError::new(
    ///     "current_state",
    ///     "the changes were not collected",
    /// ));
    /// assert!(!e.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Io { operation, .. } => return !operation.starts_with("sync"),
            Error::CheckpointParentUnrestorable { source, .. } => {
                return !self.is_corruption() && source.is_retryable()
            }
            Error::Blob(e) => return e.is_retryable(),
            _ => {}
        }
        matches!(
            self,
            Error::Locked { .. } | Error::SinkCommitPending { .. } | Error::SinkInUse { .. }
        )
    }

    /// True when this error says that data on disk is damaged (as opposed to an
    /// I/O failure, a lock conflict or a bad argument). A checkpoint whose
    /// parent is not restorable is damaged when the parent is damaged or gone.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::WalCorrupted { .. }
                | Error::WalChecksumMismatch { .. }
                | Error::StateCorrupted { .. }
                | Error::StateChecksumMismatch { .. }
                | Error::CheckpointCorrupted { .. }
                | Error::ArrowCorrupted { .. }
                | Error::CheckpointFileMismatch { .. }
                | Error::UnsafeName { .. }
                | Error::SinkTransactionInvalid { .. }
                | Error::CheckpointChainBroken { .. }
                | Error::AuthenticationFailed { .. }
        ) || matches!(self, Error::CheckpointParentUnrestorable { source, .. }
            if source.is_corruption() || source.is_not_found())
    }

    /// True when a sealed file could not be opened for want of its key: the
    /// key is not provided ([`Error::KeyUnavailable`]) or is another key
    /// ([`Error::KeyMismatch`]), for the file itself or a checkpoint's
    /// parent. Not damage: the same data opens once the right key is given,
    /// so recovery and [`find_latest`](crate::CheckpointStore::find_latest)
    /// stop with it instead of falling back to an older checkpoint.
    pub fn is_key_problem(&self) -> bool {
        match self {
            Error::KeyUnavailable { .. } | Error::KeyMismatch { .. } => true,
            Error::CheckpointParentUnrestorable { source, .. } => source.is_key_problem(),
            _ => false,
        }
    }

    /// True when this error says that what was asked for is not there: a
    /// checkpoint ([`Error::CheckpointNotFound`]), a part of one
    /// ([`Error::PartNotFound`]), a file ([`Error::Io`] of kind
    /// `NotFound`), or an object ([`Error::Blob`] of `NotFound`).
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::CheckpointNotFound { .. } | Error::PartNotFound { .. } => true,
            Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            Error::Blob(e) => e.is_not_found(),
            _ => false,
        }
    }

    /// An owned copy of a key problem ([`is_key_problem`](Self::is_key_problem))
    /// shared by the chain checks (other errors are described, not copied).
    pub(crate) fn key_problem_copy(&self) -> Error {
        match self {
            Error::KeyUnavailable { path, key_id } => Error::KeyUnavailable {
                path: path.clone(),
                key_id: *key_id,
            },
            Error::KeyMismatch { path, key_id } => Error::KeyMismatch {
                path: path.clone(),
                key_id: *key_id,
            },
            Error::CheckpointParentUnrestorable {
                path,
                id,
                parent,
                source,
            } => Error::CheckpointParentUnrestorable {
                path: path.clone(),
                id: *id,
                parent: *parent,
                source: source.clone(),
            },
            other => Error::invalid_argument("find_latest", other.to_string()),
        }
    }
}
