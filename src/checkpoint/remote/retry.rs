//! Retrying blob calls that changed nothing: [`BlobError::Transient`] and
//! [`BlobError::Throttled`] answers, with jittered exponential backoff.
//!
//! Invariant: only errors after which the store is known unchanged are
//! retried here. An indeterminate mutation is the caller's to resolve (a
//! create must be read back, never repeated blindly).

use crate::blob::{BlobError, BlobResult};
use std::time::Duration;

/// Attempts of one call (the first and its retries).
pub(crate) const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// True for an answer after which nothing changed and a repeat may succeed.
pub(crate) fn unchanged_and_retryable(e: &BlobError) -> bool {
    matches!(e, BlobError::Transient { .. } | BlobError::Throttled { .. })
}

/// The pause before retry `attempt` (1, 2, …): doubling from 50 ms, capped
/// at 2 s, with up to half of it added at random.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let jitter = super::layout::nonce() % (base.as_millis() as u64 / 2 + 1);
    base + Duration::from_millis(jitter)
}

/// `call`, repeated up to [`ATTEMPTS`] times while it fails with an error
/// that changed nothing; `what` and `key` name it in the logs.
///
/// # Errors
/// The last error, or the first one that is not retryable.
pub(crate) fn retried<T>(
    what: &'static str,
    key: &str,
    mut call: impl FnMut() -> BlobResult<T>,
) -> BlobResult<T> {
    let mut attempt = 1;
    loop {
        match call() {
            Err(e) if attempt < ATTEMPTS && unchanged_and_retryable(&e) => {
                let pause = backoff(attempt);
                tracing::debug!(operation = what, key, attempt, error = %e, pause_ms = pause.as_millis() as u64, "retrying");
                std::thread::sleep(pause);
                attempt += 1;
            }
            other => return other,
        }
    }
}
