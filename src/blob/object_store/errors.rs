//! From an `object_store` error (and the call's [`Trace`]) to a
//! [`BlobError`].
//!
//! The rule for mutations: an answer the server gave with a 4xx status
//! (other than 408 and 429) is definite, nothing was done; a failure with no
//! answer after the request may have reached the server (a timeout, a
//! dropped connection, a body that could not be read), or a 5xx answer that
//! the retries did not get past, is [`BlobError::Indeterminate`]: S3 may have
//! applied a PUT that answered 500. Only a request that was never sent (the
//! connection refused) is [`BlobError::Transient`]. Reads are never
//! indeterminate: for them every such failure is `Transient`.

use super::trace::Trace;
use crate::blob::{BlobError, BlobOp};
use object_store::client::{HttpError, HttpErrorKind};

/// Whether `op` changes the store (so a lost answer leaves it unknown).
fn mutates(op: BlobOp) -> bool {
    matches!(
        op,
        BlobOp::Create
            | BlobOp::Put
            | BlobOp::Multipart
            | BlobOp::Complete
            | BlobOp::Abort
            | BlobOp::Delete
    )
}

/// The first [`HttpError`] in `e`'s chain of sources.
fn http_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a HttpError> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            return Some(h);
        }
        cur = err.source();
    }
    None
}

/// `e`, typed, for `op` on `key`.
pub(super) fn map(op: BlobOp, key: &str, e: object_store::Error, trace: &Trace) -> BlobError {
    let key = key.to_string();
    let reason = e.to_string();
    match e {
        object_store::Error::NotFound { .. } => return BlobError::NotFound { operation: op, key },
        object_store::Error::Precondition { .. } | object_store::Error::NotModified { .. } => {
            return BlobError::Precondition {
                operation: op,
                key,
                reason,
            }
        }
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            return BlobError::PermissionDenied {
                operation: op,
                key,
                reason,
            }
        }
        object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. } => {
            return BlobError::Unsupported {
                operation: op,
                key,
                reason,
            }
        }
        _ => {}
    }
    let transport = http_error(&e).map(HttpError::kind);
    match trace.last_status {
        Some(429 | 503) => BlobError::Throttled {
            operation: op,
            key,
            reason,
        },
        Some(408) | Some(500..=599) if mutates(op) => BlobError::Indeterminate {
            operation: op,
            key,
            reason,
        },
        Some(408) | Some(500..=599) => BlobError::Transient {
            operation: op,
            key,
            reason,
        },
        Some(_) if transport.is_none() => BlobError::Backend {
            operation: op,
            key,
            reason,
        },
        _ => match transport {
            Some(HttpErrorKind::Connect) => BlobError::Transient {
                operation: op,
                key,
                reason,
            },
            Some(_) if mutates(op) => BlobError::Indeterminate {
                operation: op,
                key,
                reason,
            },
            Some(_) => BlobError::Transient {
                operation: op,
                key,
                reason,
            },
            None => BlobError::Backend {
                operation: op,
                key,
                reason,
            },
        },
    }
}
