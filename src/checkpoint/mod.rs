//! Checkpoints: the state, source offsets and watermark of a job, published
//! atomically as a directory, full or as a delta over a parent.
//!
//! - [`IncrementalCheckpointManager`] writes checkpoints, enforces retention and
//!   tells the WAL which segments are no longer needed.
//! - [`CheckpointStore`] reads a checkpoint directory: lists, verifies, finds the
//!   latest restorable checkpoint, resolves delta chains, loads state or maps it
//!   ([`CheckpointStateView`]).
//!
//! Layout, publish order and crash analysis: `docs/FORMAT.md` §3. Invariants kept
//! here:
//! - a checkpoint directory becomes visible only complete and durable (rename of
//!   a fully fsynced temporary directory), and leftovers of interrupted publishes
//!   are invisible to readers and removed when a manager opens the directory
//!   (only the manager holding the directory's lock file, `.lock`, removes
//!   anything);
//! - a checkpoint builds only on the checkpoint the caller's state was built
//!   from, and only when that is the latest restorable one (`parent`); a part
//!   a request does not mention is carried over, never dropped;
//! - nothing is used from a checkpoint unless its metadata, every file it lists
//!   and its whole parent chain verify;
//! - retention never deletes a checkpoint a kept delta depends on, nor the WAL a
//!   kept checkpoint still needs;
//! - names read from metadata never become paths outside the checkpoint.
//!
//! Decisions (which checkpoint is latest, delta or full, what retention deletes)
//! are functions over what was read; I/O stays in `publish` and `store`.

#[cfg(feature = "arrow")]
mod arrow_parts;
mod arrow_verify;
pub(crate) mod audit;
mod background;
mod chain;
mod compose;
mod config;
mod default_part;
mod describe;
pub(crate) mod envelope;
mod load;
mod manager;
pub(crate) mod metadata;
mod owned_part;
mod parent;
mod parts;
mod prune;
pub(crate) mod publish;
mod reads;
pub(crate) mod remote;
mod request;
pub(crate) mod retention;
mod store;
mod view;

pub use background::{BackgroundCheckpointer, CheckpointOutcome, CheckpointTicket};
pub use chain::ChainProblem;
pub use config::{
    CheckpointConfig, DEFAULT_MAX_DELTA_CHAIN, DEFAULT_MAX_DELTA_RATIO, DEFAULT_MAX_RETAINED,
};
pub use manager::{IncrementalCheckpointManager, RATIO_FLOOR_BYTES};
pub(crate) use metadata::parse_checkpoint_dir_name;
pub use metadata::{
    CheckpointKind, IncrementalCheckpointMetadata, PartKind, PartMetadata, PartSeal,
    SinkTransaction,
};
pub use owned_part::{IntoPart, OwnedPart};
pub(crate) use parent::{is_damage, verify_chain, Base};
pub use remote::{
    GcReport, ProgressCounts, RemoteConfig, RemoteIter, RemoteLayerReport, RemoteRestore,
    RemoteStateView, RemoteViewConfig, RemoteViewReport, TransferProgress, DEFAULT_CONCURRENCY,
    DEFAULT_GC_GRACE, DEFAULT_GC_INTERVAL, DEFAULT_PART_BYTES, DEFAULT_VIEW_CACHE_BYTES,
};
pub use request::{CheckpointRequest, PartInput};
pub(crate) use store::{Check, Memo};
pub use store::{CheckpointStore, LatestCheckpoint, RejectedCheckpoint, DEFAULT_PART};
pub use view::{CheckpointStateView, MergedIter};
