//! [`ReplaySink`]: where replay hands committed changes, one at a time, so that a
//! log of any size is applied to the caller's own store in bounded memory.
//!
//! Invariant: a sink sees a change only once the Commit closing its transaction
//! has been read (in `NoTransactions` mode: as soon as it is read), sees each
//! change once, in log order, and sees `commit` after the changes it closes.

use std::collections::HashMap;

/// The error a [`ReplaySink`] may return; recovery wraps it in
/// [`Error::ReplaySink`](crate::Error::ReplaySink) with the log position.
pub type SinkError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A Commit that replay has handed over, after all of its changes.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CommitInfo<'a> {
    /// Log position of the Commit entry.
    pub position: u64,
    /// Log position just after it (where a later replay would resume).
    pub end: u64,
    /// The offsets the Commit carries.
    pub offsets: &'a HashMap<String, u64>,
    /// The watermark it carries.
    pub watermark: Option<i64>,
    /// The partition watermarks its transaction set (`Watermarks` entries).
    pub watermarks: &'a HashMap<String, i64>,
}

/// Receives committed changes during streaming recovery
/// ([`RecoveryManager::recover_into`](super::RecoveryManager::recover_into)).
pub trait ReplaySink {
    /// A committed Put (`Some(value)`) or Delete (`None`) of `key`, in log order.
    /// The slices borrow from replay's buffers; copy what must outlive the call.
    ///
    /// # Errors
    /// Any error of the caller's store; it stops recovery.
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), SinkError>;

    /// The transaction whose changes were just applied ends with this Commit.
    /// The default does nothing.
    ///
    /// # Errors
    /// Any error of the caller's store; it stops recovery.
    fn commit(&mut self, commit: &CommitInfo<'_>) -> Result<(), SinkError> {
        let _ = commit;
        Ok(())
    }
}

/// Collects changes into a vector (`collect_state_changes`).
#[derive(Debug, Default)]
pub(crate) struct CollectChanges {
    pub changes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl ReplaySink for CollectChanges {
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), SinkError> {
        self.changes.push((key.to_vec(), value.map(<[u8]>::to_vec)));
        Ok(())
    }
}

/// Drops changes (they are only counted).
#[derive(Debug, Default)]
pub(crate) struct DiscardChanges;

impl ReplaySink for DiscardChanges {
    fn apply(&mut self, _key: &[u8], _value: Option<&[u8]>) -> Result<(), SinkError> {
        Ok(())
    }
}
