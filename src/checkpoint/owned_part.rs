//! Parts a checkpoint request owns: [`OwnedPart`] (the data itself) and
//! [`IntoPart`] (something that becomes one, converted when the checkpoint
//! is written — on the background thread for a
//! [`BackgroundCheckpointer`](super::BackgroundCheckpointer)).
//!
//! One mechanism for owned data in both paths: a part added with
//! [`CheckpointRequest::with_owned_part`](super::CheckpointRequest::with_owned_part)
//! is converted by the manager at the start of
//! [`create_checkpoint`](super::IncrementalCheckpointManager::create_checkpoint),
//! on whichever thread runs it, and is then written exactly as the borrowed
//! [`PartInput`] it lends ([`OwnedPart::input`]).

use super::request::PartInput;
use crate::error::Result;
use crate::state::{FrozenChanges, StateDelta, StateSnapshot};
#[cfg(feature = "arrow")]
use arrow::{datatypes::Schema, record_batch::RecordBatch};

/// The state of one named part, owned: what a [`PartInput`] borrows.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum OwnedPart {
    /// A full key/value state ([`PartInput::Snapshot`]).
    Snapshot(StateSnapshot),
    /// Changes since the same part of the parent checkpoint
    /// ([`PartInput::Delta`]).
    Delta(StateDelta),
    /// Opaque operator bytes ([`PartInput::Blob`]).
    Blob(Vec<u8>),
    /// The bytes of a state file, verified before it is written
    /// ([`PartInput::StateFile`]).
    StateFile(Vec<u8>),
    /// A whole Arrow part ([`PartInput::Arrow`]). Only with the `arrow` feature.
    #[cfg(feature = "arrow")]
    Arrow {
        /// The schema every batch has.
        schema: Schema,
        /// The batches.
        batches: Vec<RecordBatch>,
    },
    /// Batches appended to the parent's Arrow part ([`PartInput::ArrowDelta`]).
    /// Only with the `arrow` feature.
    #[cfg(feature = "arrow")]
    ArrowDelta {
        /// The schema every batch has.
        schema: Schema,
        /// The appended batches.
        batches: Vec<RecordBatch>,
    },
}

impl OwnedPart {
    /// The part as the borrowed input the manager writes.
    pub fn input(&self) -> PartInput<'_> {
        match self {
            OwnedPart::Snapshot(s) => PartInput::Snapshot(s),
            OwnedPart::Delta(d) => PartInput::Delta(d),
            OwnedPart::Blob(b) => PartInput::Blob(b),
            OwnedPart::StateFile(f) => PartInput::StateFile(f),
            #[cfg(feature = "arrow")]
            OwnedPart::Arrow { schema, batches } => {
                PartInput::Arrow(crate::arrow::ArrowBatches::new(schema, batches))
            }
            #[cfg(feature = "arrow")]
            OwnedPart::ArrowDelta { schema, batches } => {
                PartInput::ArrowDelta(crate::arrow::ArrowBatches::new(schema, batches))
            }
        }
    }

    /// A copy of a borrowed input (costs a copy of its data; Arrow batches
    /// share their buffers).
    pub fn copied(input: PartInput<'_>) -> Self {
        match input {
            PartInput::Snapshot(s) => OwnedPart::Snapshot(s.clone()),
            PartInput::Delta(d) => OwnedPart::Delta(d.clone()),
            PartInput::Blob(b) => OwnedPart::Blob(b.to_vec()),
            PartInput::StateFile(f) => OwnedPart::StateFile(f.to_vec()),
            #[cfg(feature = "arrow")]
            PartInput::Arrow(b) => OwnedPart::Arrow {
                schema: b.schema().clone(),
                batches: b.batches().to_vec(),
            },
            #[cfg(feature = "arrow")]
            PartInput::ArrowDelta(b) => OwnedPart::ArrowDelta {
                schema: b.schema().clone(),
                batches: b.batches().to_vec(),
            },
        }
    }
}

/// Something that becomes a part's state when the checkpoint is written:
/// the conversion ([`into_part`](Self::into_part)) runs on the thread that
/// writes the checkpoint — the caller's for
/// [`create_checkpoint`](super::IncrementalCheckpointManager::create_checkpoint),
/// the background thread for a
/// [`BackgroundCheckpointer`](super::BackgroundCheckpointer), so work the
/// caller must not wait for (building a delta from frozen changes, encoding)
/// moves off its thread.
///
/// Implemented by [`OwnedPart`], [`StateSnapshot`], [`StateDelta`] and by any
/// `FnOnce() -> Result<OwnedPart> + Send` closure.
///
/// # Examples
/// ```
/// # use highwater::*;
/// # fn main() -> highwater::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()))?;
/// let pairs = vec![(b"k".to_vec(), b"v".to_vec())];
/// // Built when the checkpoint is written, not now.
/// let part = move || Ok(OwnedPart::Snapshot(StateSnapshot::new(pairs)));
/// manager.create_checkpoint(CheckpointRequest::new(0).with_owned_part("state", part))?;
/// # Ok(()) }
/// ```
pub trait IntoPart: Send {
    /// The part's state.
    ///
    /// # Errors
    /// Whatever the conversion fails with; the checkpoint is then not written
    /// and fails with this error.
    fn into_part(self: Box<Self>) -> Result<OwnedPart>;
}

impl IntoPart for OwnedPart {
    fn into_part(self: Box<Self>) -> Result<OwnedPart> {
        Ok(*self)
    }
}

impl IntoPart for StateSnapshot {
    fn into_part(self: Box<Self>) -> Result<OwnedPart> {
        Ok(OwnedPart::Snapshot(*self))
    }
}

impl IntoPart for StateDelta {
    fn into_part(self: Box<Self>) -> Result<OwnedPart> {
        Ok(OwnedPart::Delta(*self))
    }
}

/// A [`TrackedState::freeze`](crate::TrackedState::freeze)'s changes become a
/// delta part when the checkpoint is written: the sort and the copy
/// ([`FrozenChanges::into_delta`], O(changes · log changes)) run on the
/// thread that writes the checkpoint, so the operator's pause is the
/// `freeze` itself.
///
/// ```
/// use highwater::{BackgroundCheckpointer, CheckpointConfig, CheckpointRequest,
///     IncrementalCheckpointManager, TrackedState};
/// # fn main() -> highwater::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()))?;
/// let mut checkpointer = BackgroundCheckpointer::new(manager);
/// let mut state = TrackedState::new();
/// state.put(b"k".to_vec(), b"v".to_vec());
/// // The pause: freeze (no sort, no copy) and hand over.
/// let frozen = state.freeze();
/// let id = frozen.id();
/// checkpointer.submit(CheckpointRequest::new(0).with_owned_part("state", frozen))?;
/// state.put(b"k2".to_vec(), b"v2".to_vec()); // processing goes on
/// let outcome = checkpointer.wait().expect("one in flight");
/// match outcome.result {
///     Ok(_) => assert!(state.checkpoint_succeeded(id)),
///     // Its changes stay tracked; the next delta names its parent (the last
///     // durable checkpoint) with `with_parent`, as after any failure.
///     Err(_) => assert!(state.checkpoint_failed(id)),
/// }
/// assert_eq!(state.changed_len(), 1); // only k2, written after the freeze
/// # Ok(()) }
/// ```
impl IntoPart for FrozenChanges {
    fn into_part(self: Box<Self>) -> Result<OwnedPart> {
        Ok(OwnedPart::Delta((*self).into_delta()))
    }
}

impl<F> IntoPart for F
where
    F: FnOnce() -> Result<OwnedPart> + Send,
{
    fn into_part(self: Box<Self>) -> Result<OwnedPart> {
        (*self)()
    }
}
