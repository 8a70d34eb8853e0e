//! One consistent checkpoint across many workers, and rescaling by key
//! groups (docs/DISTRIBUTED.md).
//!
//! A job's keyed state is split into a fixed number of [key groups](mod@key_group);
//! each [`ClusterWorker`] of a run owns a contiguous range of them and some
//! source partitions. At each barrier a worker uploads its part (full or
//! delta) to the job's blob store and makes a [`WorkerReport`]; the
//! [`Coordinator`] collects the reports of an epoch (through any transport;
//! [`StoreTransport`] uses the store) and commits them with one create-only
//! epoch record. Only then are sinks committed. A new run restores the
//! newest committed epoch, with any worker count.
//!
//! Invariants (each module states its own):
//! - An epoch is committed exactly when its record exists in a live slot;
//!   no two records commit the same epoch; a zombie coordinator's commit
//!   collides with the newer claim and is refused with
//!   [`Error::Fenced`](crate::Error::Fenced).
//! - A restore reads one epoch record and, of its parts, only the blocks
//!   holding the restoring worker's key groups.
//! - Output is published only for committed epochs (the caller commits
//!   [`GlobalCheckpoint::sink_handles`] after [`Coordinator::commit`]).
//!
//! Decisions are pure functions (`protocol`); I/O stays in `sequence`,
//! `transport`, `restore`, `worker` and `coordinator`.

mod coordinator;
pub mod key_group;
mod layout;
mod part;
mod protocol;
mod record;
mod report;
mod restore;
mod retention;
mod sequence;
mod transport;
mod worker;

pub use coordinator::{Coordinator, CoordinatorConfig};
pub use key_group::{key_group, KeyGroupRange, KeyGroups, DEFAULT_KEY_GROUPS, MAX_KEY_GROUPS};
pub use record::{decode as decode_record, ClusterRecord, GlobalCheckpoint, RunPlan};
pub use report::{
    PartKind, PartRef, SinkHandle, SourcePosition, WorkerReport, MAX_CHAIN, MAX_REPORT_LEN,
};
pub use restore::RestoreCounts;
pub use retention::ClusterGcReport;
pub use transport::{StoreTransport, DEFAULT_POLL_INTERVAL};
pub use worker::{ClusterWorker, RestoredWorker, WorkerConfig, DEFAULT_MAX_CHAIN};
