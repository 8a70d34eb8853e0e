//! [`ArgumentError`]: what [`Error::InvalidArgument`](super::Error::InvalidArgument)
//! carries.

/// A call that was refused because of a value it was given or the state it
/// was made in. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {reason}")]
#[non_exhaustive]
pub struct ArgumentError {
    /// The call that was refused (`create_checkpoint`, `current_state`,
    /// `FileSink::write`, ...).
    pub operation: &'static str,
    /// Why.
    pub reason: String,
}

impl ArgumentError {
    /// An [`ArgumentError`] for `operation`.
    pub fn new(operation: &'static str, reason: impl Into<String>) -> Self {
        ArgumentError {
            operation,
            reason: reason.into(),
        }
    }
}

impl super::Error {
    /// Builds an [`Error::InvalidArgument`](super::Error::InvalidArgument).
    pub(crate) fn invalid_argument(operation: &'static str, reason: impl Into<String>) -> Self {
        super::Error::InvalidArgument(ArgumentError::new(operation, reason))
    }

    /// Builds an [`Error::InvalidConfig`](super::Error::InvalidConfig).
    pub(crate) fn invalid_config(setting: &'static str, reason: impl Into<String>) -> Self {
        super::Error::InvalidConfig {
            setting,
            reason: reason.into(),
        }
    }
}
